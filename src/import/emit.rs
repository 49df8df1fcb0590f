//! Writes the translated stages as a build file: inputs first, then each stage's
//! image and step, in the order of the Dockerfile. Strings are quoted as KDL 2.0
//! quotes them; names that are not plain identifiers are quoted too.

use super::{Ctx, Entry, Stage, VENV};
use std::collections::BTreeMap;
use std::fmt::Write;

/// KDL text with indentation.
#[derive(Default)]
pub struct Kdl {
    pub out: String,
    depth: usize,
}

impl Kdl {
    pub fn line(&mut self, text: impl AsRef<str>) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
        self.out.push_str(text.as_ref());
        self.out.push('\n');
    }
    pub fn comment(&mut self, text: impl AsRef<str>) {
        for l in text.as_ref().lines() {
            self.line(format!("// {l}"));
        }
    }
    pub fn open(&mut self, text: impl AsRef<str>) {
        self.line(format!("{} {{", text.as_ref()));
        self.depth += 1;
    }
    pub fn close(&mut self) {
        self.depth -= 1;
        self.line("}");
    }
}

/// A KDL 2.0 quoted string.
pub fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A name as a bare identifier when KDL reads it as one, else quoted.
pub fn ident(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !matches!(s, "true" | "false" | "null" | "inf" | "nan");
    if plain {
        s.to_string()
    } else {
        q(s)
    }
}

fn args(list: &[String]) -> String {
    list.iter().map(|a| q(a)).collect::<Vec<_>>().join(" ")
}

/// How a stage's step is laid out: where its work directory is mounted, and the name
/// of each exported path among its outputs.
struct StepPlan {
    workdir: String,
    outputs: BTreeMap<String, String>,
    inputs: Vec<String>,
    notes: Vec<String>,
    /// The image the step runs in.
    image: String,
}

fn parent(p: &str) -> String {
    match p.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((d, _)) => d.to_string(),
    }
}

fn common_dir(paths: &[String]) -> String {
    let mut it = paths.iter();
    let Some(first) = it.next() else { return "/".into() };
    let mut common: Vec<&str> = first.split('/').filter(|s| !s.is_empty()).collect();
    for p in it {
        let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
        let n = common.iter().zip(&parts).take_while(|(a, b)| a == b).count();
        common.truncate(n);
    }
    format!("/{}", common.join("/"))
}

fn below<'p>(path: &'p str, dir: &str) -> Option<&'p str> {
    if path == dir {
        return Some(".");
    }
    path.strip_prefix(dir)?.strip_prefix('/')
}

impl Ctx<'_> {
    fn step_plan(&self, stage: &Stage) -> StepPlan {
        let mut notes = Vec::new();
        let mut exported: Vec<String> = stage.exported.clone();
        exported.sort();
        exported.dedup();
        if stage.runs.is_empty() {
            // No command: the step copies the paths out of the image, with their
            // directories, into a work directory no image has.
            let outputs = exported.iter().map(|p| (p.clone(), p.trim_start_matches('/').to_string())).collect();
            return StepPlan {
                workdir: "/pinfold-export".into(),
                outputs,
                inputs: Vec::new(),
                notes,
                image: stage.name.clone(),
            };
        }
        let fallback = || match stage.workdir.as_deref() {
            Some(w) if w != "/" => w.to_string(),
            _ => "/work".to_string(),
        };
        let workdir = if stage.whole {
            if !exported.is_empty() {
                notes.push("its outputs are copied both into this image and by another stage: check the paths".into());
            }
            fallback()
        } else {
            let parents: Vec<String> = exported.iter().map(|p| parent(p)).collect();
            let common = common_dir(&parents);
            if common != "/" {
                common
            } else if exported.len() == 1 && exported[0] != "/" {
                exported[0].clone()
            } else {
                notes.push(format!(
                    "the paths other stages copy ({}) share no directory: the work directory is {}; move them below one",
                    exported.join(", "),
                    fallback()
                ));
                fallback()
            }
        };
        let mut outputs = BTreeMap::new();
        if stage.whole {
            outputs.insert(workdir.clone(), ".".to_string());
        }
        for p in &exported {
            match below(p, &workdir) {
                Some(rel) => {
                    outputs.insert(p.clone(), rel.to_string());
                }
                None => notes.push(format!("{p} is outside the work directory {workdir}: it is not an output")),
            }
        }
        // Copies into the work directory are hidden by its mount: they become inputs
        // when they land at their own relative path.
        let mut inputs = Vec::new();
        for e in &stage.entries {
            if let Entry::Copy { src, to, path, .. } = e {
                if let Some(rel) = below(path, &workdir) {
                    if rel == src || (src == "." && rel == ".") {
                        inputs.push(if src == "." { "**".to_string() } else { src.clone() });
                    } else {
                        notes.push(format!("the copy of {src} to {to} is hidden by the work directory {workdir}"));
                    }
                }
            }
        }
        let image = if stage.whole { format!("{}-build", stage.name) } else { stage.name.clone() };
        StepPlan { workdir, outputs, inputs, notes, image }
    }

    pub(super) fn emit(&mut self) -> String {
        let mut k = Kdl::default();
        k.comment(format!(
            "Translated from {} by `pinfold import`: `pinfold lock` pins every input, then `pinfold build`.",
            self.req.name
        ));
        k.line("pinfold 1");
        k.comment("Every time in the images: fixed here, so a copy without .git builds the same bytes.");
        k.line(format!("epoch {}", self.req.epoch));
        k.line("platforms \"linux/amd64\" \"linux/arm64\"");

        let plans: Vec<Option<StepPlan>> = self
            .stages
            .iter()
            .map(|s| (s.needed && (!s.runs.is_empty() || !s.exported.is_empty())).then(|| self.step_plan(s)))
            .collect();
        let used_sets: Vec<String> = self
            .stages
            .iter()
            .filter(|s| s.needed)
            .flat_map(|s| s.entries.iter())
            .filter_map(|e| match e {
                Entry::Install { set, .. } => Some(set.clone()),
                _ => None,
            })
            .collect();

        for (name, image) in &self.bases {
            if !self.stages.iter().any(|s| s.needed && s.from.as_deref() == Some(name.as_str())) {
                continue;
            }
            k.line("");
            k.open(format!("base {}", ident(name)));
            k.line(format!("image {}", q(image)));
            k.close();
        }
        for (name, url) in &self.downloads {
            k.line("");
            k.line(format!("download {} url={}", ident(name), q(url)));
        }
        for (name, path, sha) in &self.archives {
            k.line("");
            k.line(format!("archive {} path={} sha256={}", ident(name), q(path), q(sha)));
        }
        for set in &self.debian {
            if !used_sets.contains(&set.name) {
                continue;
            }
            k.line("");
            for n in &set.notes {
                k.comment(n);
            }
            k.open(format!("debian {}", ident(&set.name)));
            k.line(format!("suite {}", args(&set.release.suites())));
            k.line(format!(
                "components {}",
                args(&set.release.components().iter().map(|s| s.to_string()).collect::<Vec<_>>())
            ));
            if set.packages.is_empty() {
                // A set names at least one package; base-files is Essential, so this
                // adds nothing to what the base image holds.
                k.line("packages \"base-files\"");
            } else {
                k.line(format!("packages {}", args(&set.packages.iter().cloned().collect::<Vec<_>>())));
            }
            k.comment("what the base image holds besides them: a shell, coreutils, …");
            k.line("essential #true");
            k.close();
        }
        for set in &self.python {
            if !used_sets.contains(&set.name) {
                continue;
            }
            k.line("");
            k.open(format!("python {}", ident(&set.name)));
            for r in &set.requirements {
                k.line(format!("requirements {}", q(r)));
            }
            if !set.packages.is_empty() {
                k.line(format!("packages {}", args(&set.packages)));
            }
            k.line(format!("python {}", q(&set.python)));
            if let Some(i) = &set.index {
                k.line(format!("index {}", q(i)));
            }
            k.close();
        }

        let steps_of: BTreeMap<String, (String, BTreeMap<String, String>)> = self
            .stages
            .iter()
            .zip(&plans)
            .filter_map(|(s, p)| {
                p.as_ref().map(|p| (format!("{}-run", s.name), (p.workdir.clone(), p.outputs.clone())))
            })
            .collect();

        for (i, stage) in self.stages.iter().enumerate() {
            if !stage.needed {
                self.report.push(format!(
                    "{}: stage `{}` is not needed by the final stage: not translated (BuildKit skips it too)",
                    self.req.name,
                    stage.alias.clone().unwrap_or(stage.name.clone())
                ));
                continue;
            }
            let plan = plans[i].as_ref();
            let with_step = stage.whole && !stage.runs.is_empty();
            let step_layer = plan.filter(|_| with_step).map(|p| p.workdir.clone());
            if let Some(p) = plan {
                if with_step {
                    self.image(&mut k, stage, &p.image, None, &steps_of, &[]);
                }
            }
            self.image(&mut k, stage, &stage.name, step_layer, &steps_of, &stage.notes);
            if let Some(p) = plan {
                self.step(&mut k, stage, p);
            }
        }
        k.out
    }

    #[allow(clippy::too_many_arguments)]
    fn image(
        &self,
        k: &mut Kdl,
        stage: &Stage,
        name: &str,
        step_layer: Option<String>,
        steps_of: &BTreeMap<String, (String, BTreeMap<String, String>)>,
        notes: &[String],
    ) {
        k.line("");
        for n in notes {
            k.comment(n);
        }
        k.open(format!("image {}", ident(name)));
        k.line(format!("from {}", ident(stage.from.as_deref().unwrap_or("scratch"))));
        // Layers: each install its own; the other entries in order, a new layer when
        // an entry writes where one of the current layer does.
        let mut layers: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
        let mut app = 0;
        let mut current: Option<usize> = None;
        let mut workdir_made = stage.workdir.as_deref().is_none_or(|w| w == "/");
        for e in &stage.entries {
            if let Entry::Install { set, to } = e {
                let line = match to {
                    Some(to) => format!("install {} to={}", q(set), q(to)),
                    None => format!("install {}", q(set)),
                };
                layers.push((set.clone(), vec![line], Vec::new()));
                current = None;
                continue;
            }
            let dest = e.dest().unwrap_or("/").trim_end_matches('/').to_string();
            if let Some(w) = &stage.workdir {
                if dest == *w || dest.starts_with(&format!("{w}/")) {
                    workdir_made = true;
                }
            }
            let clash = current.is_some_and(|c| {
                layers[c]
                    .2
                    .iter()
                    .any(|d| d == &dest || d.starts_with(&format!("{dest}/")) || dest.starts_with(&format!("{d}/")))
            });
            if current.is_none() || clash {
                app += 1;
                let lname = if app == 1 { "app".to_string() } else { format!("app-{app}") };
                layers.push((lname, Vec::new(), Vec::new()));
                current = Some(layers.len() - 1);
            }
            let c = current.expect("set above");
            let line = match e {
                Entry::Copy { src, to, mode, uid, gid, .. } => {
                    let mut l = format!("copy {} to={}", q(src), q(to));
                    if let Some(m) = mode {
                        let _ = write!(l, " mode=0o{m:o}");
                    }
                    if let Some(u) = uid {
                        let _ = write!(l, " uid={u}");
                    }
                    if let Some(g) = gid {
                        let _ = write!(l, " gid={g}");
                    }
                    l
                }
                Entry::Extract { archive, to } => format!("extract {} to={}", ident(archive), q(to)),
                Entry::Download { download, to } => format!("download {} to={}", ident(download), q(to)),
                Entry::FromStep { step, path, to } => match steps_of.get(step).and_then(|(_, o)| o.get(path)) {
                    Some(rel) => format!("copy step={} {} to={}", ident(step), q(rel), q(to)),
                    None => {
                        layers[c].1.push(format!("// NEEDS REVIEW: {path} of step {step} is not among its outputs"));
                        continue;
                    }
                },
                Entry::Install { .. } => unreachable!("handled above"),
            };
            layers[c].1.push(line);
            layers[c].2.push(dest);
        }
        if !workdir_made {
            let w = stage.workdir.clone().expect("checked");
            layers.push(("workdir".into(), vec![format!("dir {}", q(&w))], Vec::new()));
        }
        if let Some(w) = step_layer {
            layers.push((
                "run".into(),
                vec![format!(
                    "copy step={} \".\" to={}",
                    ident(&format!("{}-run", stage.name)),
                    q(&format!("{}/", w.trim_end_matches('/')))
                )],
                Vec::new(),
            ));
        }
        for (name, lines, _) in &layers {
            if lines.len() == 1 && !lines[0].starts_with("//") {
                k.line(format!("layer {} {{ {} }}", ident(name), lines[0]));
            } else {
                k.open(format!("layer {}", ident(name)));
                for l in lines {
                    k.line(l);
                }
                k.close();
            }
        }
        if !stage.env.is_empty() {
            let props: Vec<String> = stage.env.iter().map(|(key, v)| format!("{}={}", ident(key), q(v))).collect();
            k.line(format!("env {}", props.join(" ")));
        }
        if let Some(w) = &stage.workdir {
            k.line(format!("workdir {}", q(w)));
        }
        if let Some(u) = &stage.user {
            k.line(format!("user {}", q(u)));
        }
        for (key, v) in &stage.labels {
            k.line(format!("label {} {}", q(key), q(v)));
        }
        if !stage.expose.is_empty() {
            let ports: Vec<String> = stage
                .expose
                .iter()
                .map(|p| if p.bytes().all(|b| b.is_ascii_digit()) { p.clone() } else { q(p) })
                .collect();
            k.line(format!("expose {}", ports.join(" ")));
        }
        if !stage.volumes.is_empty() {
            k.line(format!("volume {}", args(&stage.volumes)));
        }
        if let Some(e) = stage.entrypoint.as_ref().filter(|e| !e.is_empty()) {
            k.line(format!("entrypoint {}", args(e)));
        }
        if let Some(c) = stage.cmd.as_ref().filter(|c| !c.is_empty()) {
            k.line(format!("cmd {}", args(c)));
        }
        if let Some(s) = &stage.stop_signal {
            k.line(format!("stop-signal {}", q(s)));
        }
        k.close();
    }

    fn step(&self, k: &mut Kdl, stage: &Stage, plan: &StepPlan) {
        let name = format!("{}-run", stage.name);
        k.line("");
        if stage.runs.is_empty() {
            k.comment(format!("Copies what other stages take from stage `{}` out of its image.", stage.name));
        } else {
            let lines: Vec<String> = stage.runs.iter().map(|r| format!("{}:{}", self.req.name, r.line)).collect();
            k.comment(format!(
                "NEEDS REVIEW: the RUN of {} as a step. A step has no network: what it downloads must be\n\
                 a `download` or `archive` passed in, and it sees only its `inputs` and its image.",
                lines.join(", ")
            ));
        }
        for n in &plan.notes {
            k.comment(format!("NEEDS REVIEW: {n}"));
        }
        k.open(format!("step {}", ident(&name)));
        k.line(format!("image {}", ident(&plan.image)));
        if !plan.inputs.is_empty() {
            k.line(format!("inputs {}", args(&plan.inputs)));
        }
        let vars: Vec<String> = stage.args.iter().map(|(key, v)| format!("{}={}", ident(key), q(v))).collect();
        if !vars.is_empty() {
            k.line(format!("env {}", vars.join(" ")));
        }
        k.line(format!("workdir {}", q(&plan.workdir)));
        if stage.runs.is_empty() {
            let mut argv = vec!["cp".to_string(), "-a".into(), "--parents".into()];
            argv.extend(plan.outputs.keys().cloned());
            argv.push(".".into());
            k.line(format!("run {}", args(&argv)));
            let outs: Vec<String> = plan.outputs.keys().map(|p| p.trim_start_matches('/').to_string()).collect();
            k.line(format!("outputs {}", args(&outs)));
        } else {
            for r in &stage.runs {
                let argv = if r.cwd == plan.workdir {
                    r.argv.clone()
                } else if r.argv.len() == 3 && r.argv[1] == "-c" {
                    vec![r.argv[0].clone(), "-c".into(), format!("cd {} && {}", sh_quote(&r.cwd), r.argv[2])]
                } else {
                    let mut v = vec![
                        "/bin/sh".into(),
                        "-c".into(),
                        format!("cd {} && exec \"$@\"", sh_quote(&r.cwd)),
                        "sh".into(),
                    ];
                    v.extend(r.argv.iter().cloned());
                    v
                };
                k.line(format!("run {}", args(&argv)));
            }
            let mut outs: Vec<String> = plan.outputs.values().cloned().collect();
            outs.sort();
            outs.dedup();
            if outs.is_empty() {
                k.comment("NEEDS REVIEW: nothing takes this step's outputs; name what it makes");
                outs.push(".".into());
            }
            k.line(format!("outputs {}", args(&outs)));
        }
        k.close();
        let _ = VENV;
    }
}

/// A path for `sh`: as it is when it has no special characters, else single-quoted.
fn sh_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_')) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
