//! `pinfold import`: translates a Dockerfile into a build file, and says, line by
//! line, what it did with each instruction.
//!
//! It exists because the first step a researcher takes with pinfold is the Dockerfile
//! they already have. The Dockerfile is read by the lint crate's reader
//! (`pinfold_lint::dockerfile`, with spans) and its shell lines by the lint crate's
//! shell reader and its knowledge of `apt-get` and `pip` command lines, so that
//! pinfold reads a Dockerfile one way only. What a `RUN` installs with apt or pip
//! becomes a package set; anything else a `RUN` does becomes a step, marked for
//! review, because a step has no network. The output is text written here (not
//! through the `kdl` crate's formatter) because it carries comments for the reader at
//! the places they concern; it is parsed back with `pinfold_lang::parse` before it is
//! written, so a translation that is not a valid build file is a bug, never a file.

mod bases;
mod emit;
mod words;

use bases::{BaseKind, Release};
use miette::SourceSpan;
use pinfold_image::rooted::{self, Kind};
use pinfold_lang::diag::{Code, Diagnostic, Diagnostics, Source};
use pinfold_lint::dockerfile::{self, Dockerfile, Instruction};
use pinfold_lint::shell::{positionals, subcommand, Script};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub use bases::{python_releases, DEBIAN_RELEASES};

/// What the user chose on the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--python 3.X`: the interpreter version, instead of the one the base names.
    pub python: Option<String>,
    /// `--keep-base`: keep a registry base (pinned by `pinfold lock`) instead of a
    /// Debian package set.
    pub keep_base: bool,
}

/// The translation: the build file's text and the report, one line per instruction.
#[derive(Debug, Clone)]
pub struct Imported {
    pub build_file: String,
    pub report: Vec<String>,
}

/// Where the venv of a `python` set goes: the path of the python image's own
/// interpreter is `/usr/local/bin`, and `/opt/venv/bin` first in `PATH` makes
/// `python`, `pip`-installed packages and console scripts resolve as they did there.
pub const VENV: &str = "/opt/venv";
const DEBIAN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The inputs of one translation.
pub struct Request<'a> {
    /// The Dockerfile's text and the name it is reported by (`Dockerfile`).
    pub text: &'a str,
    pub name: &'a str,
    /// The build context (the Dockerfile's directory): copies are checked against it
    /// and requirement files are read from it.
    pub context: &'a Path,
    /// The context's path relative to the build file's directory (`""` when the build
    /// file is written into the context), with `/` separators.
    pub prefix: &'a str,
    /// The image's name when the final stage has none.
    pub image_name: &'a str,
    pub options: &'a Options,
    /// The `epoch` written into the build file, so that the images' times no longer
    /// depend on where the repository is (a deposit without `.git` builds the same).
    pub epoch: u64,
}

/// A `debian` set of the output.
#[derive(Debug, Clone)]
struct DebSet {
    name: String,
    release: Release,
    packages: BTreeSet<String>,
    notes: Vec<String>,
}

/// A `python` set of the output.
#[derive(Debug, Clone, Default)]
struct PySet {
    name: String,
    python: String,
    requirements: Vec<String>,
    packages: Vec<String>,
    index: Option<String>,
}

/// One entry of a layer.
#[derive(Debug, Clone)]
enum Entry {
    Install {
        set: String,
        to: Option<String>,
    },
    /// `path`: where it lands in the image (`to`, or `to` + the file's name).
    Copy {
        src: String,
        to: String,
        path: String,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Extract {
        archive: String,
        to: String,
    },
    Download {
        download: String,
        to: String,
    },
    FromStep {
        step: String,
        path: String,
        to: String,
    },
}

impl Entry {
    /// The path in the image this entry writes, to keep one layer free of two entries
    /// for one path (a later copy over an earlier one goes to a layer of its own).
    fn dest(&self) -> Option<&str> {
        match self {
            Entry::Install { .. } => None,
            Entry::Copy { path, .. } => Some(path),
            Entry::Extract { to, .. } | Entry::Download { to, .. } | Entry::FromStep { to, .. } => Some(to),
        }
    }
}

/// A `RUN` that is not (only) an installation: a command of the stage's step.
#[derive(Debug, Clone)]
struct RunCmd {
    line: usize,
    argv: Vec<String>,
    /// The working directory the Dockerfile ran it in.
    cwd: String,
}

/// One stage of the Dockerfile, as it becomes images and a step.
#[derive(Debug, Clone, Default)]
struct Stage {
    /// The name of its image in the build file.
    name: String,
    /// `AS name`, lower-cased as BuildKit compares it.
    alias: Option<String>,
    /// Lines of the build file above the image, for the reader.
    notes: Vec<String>,
    /// `from scratch` or `from BASE`.
    from: Option<String>,
    /// The Debian release (for a set) and the sets it installs.
    release: Option<Release>,
    debian: Option<String>,
    python: Option<String>,
    /// Layer entries in the order of the Dockerfile; `Install` first.
    entries: Vec<Entry>,
    env: Vec<(String, String)>,
    args: Vec<(String, String)>,
    workdir: Option<String>,
    user: Option<String>,
    expose: Vec<String>,
    labels: Vec<(String, String)>,
    volumes: Vec<String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    stop_signal: Option<String>,
    shell: Vec<String>,
    runs: Vec<RunCmd>,
    /// Container paths of what was copied from the context, to find `-r` files:
    /// (path in the image, path in the context, a directory).
    copied: Vec<(String, String, bool)>,
    /// Paths other stages copy out of this one (`COPY --from`).
    exported: Vec<String>,
    /// Another stage this one starts from (`FROM stage`).
    parent: Option<usize>,
    /// Used by the final stage (itself, through `FROM`, or `COPY --from`).
    needed: bool,
    /// Used as a root file system (the final stage, or the parent of a needed stage):
    /// its step's outputs are a layer of its image.
    whole: bool,
}

struct Ctx<'a> {
    req: &'a Request<'a>,
    df: &'a Dockerfile,
    source: Source,
    diags: Diagnostics,
    report: Vec<String>,
    debian: Vec<DebSet>,
    python: Vec<PySet>,
    bases: BTreeMap<String, String>,
    downloads: Vec<(String, String)>,
    archives: Vec<(String, String, String)>,
    stages: Vec<Stage>,
    /// `ARG`s before the first `FROM`, with their defaults.
    meta: std::collections::HashMap<String, Option<String>>,
}

/// Translates a Dockerfile; every problem is a diagnostic with its span.
pub fn translate(req: &Request) -> Result<Imported, Diagnostics> {
    let source = Source::new(req.name, req.text.to_string());
    let df = match Dockerfile::parse(req.text) {
        Ok(df) => df,
        Err(e) => {
            let mut diags = Diagnostics::default();
            diags.push(
                Diagnostic::error(Code::Import, format!("{}: {}", req.name, e.message))
                    .at(span(&e.span), e.label)
                    .help(e.help)
                    .in_source(&source),
            );
            return Err(diags);
        }
    };
    let meta = dockerfile::meta_args(&df);
    let mut cx = Ctx {
        req,
        df: &df,
        source,
        diags: Diagnostics::default(),
        report: Vec::new(),
        debian: Vec::new(),
        python: Vec::new(),
        bases: BTreeMap::new(),
        downloads: Vec::new(),
        archives: Vec::new(),
        stages: Vec::new(),
        meta,
    };
    cx.read_stages();
    if cx.diags.has_errors() {
        return Err(cx.diags);
    }
    if req.context.join(".dockerignore").exists() {
        let note =
            ".dockerignore is not read: a copy of a directory takes all of it but .git and pinfold-out".to_string();
        cx.report.push(format!("{}: {note}", req.name));
        if let Some(last) = cx.stages.last_mut() {
            last.notes.push(note);
        }
    }
    cx.mark_needed();
    let text = cx.emit();
    if cx.diags.has_errors() {
        return Err(cx.diags);
    }
    // The translation must be a build file: parse it back.
    let mut check = Diagnostics::default();
    let parsed = pinfold_lang::parse(&Source::new("pinfold.kdl", text.clone()), &mut check);
    if parsed.is_none() || check.has_errors() {
        let mut diags = Diagnostics::default();
        diags.push(Diagnostic::error(
            Code::Import,
            format!(
                "the translation of {} is not a valid build file (something import does not yet \
                 translate, or a bug of it):\n{}{}",
                req.name,
                check.render_plain(),
                // The text helps a report, but not a megabyte of it.
                if text.len() <= 64 << 10 { format!("\n{text}") } else { String::new() }
            ),
        ));
        return Err(diags);
    }
    Ok(Imported { build_file: text, report: cx.report })
}

fn span(r: &std::ops::Range<usize>) -> SourceSpan {
    SourceSpan::new(r.start.into(), r.end.saturating_sub(r.start))
}

/// The instruction's text on one line, shortened, for the report.
fn summary(ins: &Instruction) -> String {
    let text: String = ins.args.text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = format!("{} ", ins.keyword);
    if text.chars().count() > 48 {
        out.extend(text.chars().take(47));
        out.push('…');
    } else {
        out.push_str(&text);
    }
    out
}

impl<'a> Ctx<'a> {
    fn line(&self, ins: &Instruction) -> usize {
        self.source.line_col(ins.keyword_span.start).0
    }

    fn say(&mut self, ins: &Instruction, what: impl AsRef<str>) {
        let line = format!("{}:{} {} → {}", self.req.name, self.line(ins), summary(ins), what.as_ref());
        self.report.push(line);
    }

    fn error(&mut self, at: std::ops::Range<usize>, message: impl Into<String>, label: &str, help: Option<String>) {
        let mut d = Diagnostic::error(Code::Import, message).at(span(&at), label).in_source(&self.source);
        if let Some(h) = help {
            d = d.help(h);
        }
        self.diags.push(d);
    }

    /// Expands `$VAR` with the stage's `ARG`s and `ENV`s (and the meta `ARG`s for
    /// `FROM`), as BuildKit does; a variable without a value stays as it is written.
    fn expand(&self, text: &str, stage: Option<&Stage>) -> String {
        let mut vars = self.meta.clone();
        if let Some(s) = stage {
            for (k, v) in s.args.iter().chain(s.env.iter()) {
                vars.insert(k.clone(), Some(v.clone()));
            }
        }
        dockerfile::substitute(text, &vars, self.df.escape).unwrap_or_else(|| text.to_string())
    }

    fn read_stages(&mut self) {
        let df = self.df;
        let mut current: Option<Stage> = None;
        for ins in &df.instructions {
            if ins.keyword == "FROM" {
                if let Some(s) = current.take() {
                    self.stages.push(s);
                }
                current = Some(self.from(ins));
                if self.diags.has_errors() {
                    // What follows a base that cannot be translated would only add
                    // errors that come from this one.
                    return;
                }
                continue;
            }
            let Some(stage) = current.as_mut() else {
                if ins.keyword == "ARG" {
                    let names: Vec<String> = words::docker_words(&ins.args.text).into_iter().collect();
                    self.say(ins, format!("a build argument of `FROM` ({})", names.join(" ")));
                } else {
                    self.error(
                        ins.keyword_span.clone(),
                        format!("{} before the first FROM", ins.keyword),
                        "only ARG may come before FROM",
                        None,
                    );
                }
                continue;
            };
            let mut stage = std::mem::take(stage);
            self.instruction(&mut stage, ins);
            current = Some(stage);
        }
        match current {
            Some(s) => self.stages.push(s),
            None => self.diags.push(
                Diagnostic::error(Code::Import, format!("{} has no FROM", self.req.name))
                    .help("a Dockerfile starts its first stage with `FROM IMAGE`"),
            ),
        }
    }

    /// `FROM IMAGE [AS name]`: a stage on a Debian set, a registry base, scratch or
    /// another stage.
    fn from(&mut self, ins: &Instruction) -> Stage {
        let index = self.stages.len();
        let (flags, _) = ins.flags();
        let rest = ins.rest();
        let parts = dockerfile::split_words(&rest.text);
        let image_word = parts.first().map(|(w, r)| (w.to_string(), rest.map_range(r.clone())));
        let alias = match (parts.get(1), parts.get(2)) {
            (Some((kw, _)), Some((name, _))) if kw.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
            _ => None,
        };
        let mut stage = Stage { alias: alias.clone(), ..Stage::default() };
        stage.name = self.stage_name(alias.as_deref(), index);
        if let Some(p) = flags.iter().find(|f| f.name == "platform") {
            stage.notes.push(format!(
                "FROM --platform={}: pinfold builds every stage for each platform of the build file",
                p.value.as_deref().unwrap_or("")
            ));
        }
        let Some((raw, at)) = image_word else {
            self.error(ins.span.clone(), "FROM names no image", "here", None);
            return stage;
        };
        let image = self.expand(&raw, None);
        let lower = image.to_ascii_lowercase();
        // A stage of this file?
        if let Some(parent) = self.stages.iter().position(|s| s.alias.as_deref() == Some(lower.as_str())) {
            let p = self.stages[parent].clone();
            stage.parent = Some(parent);
            stage.from = p.from.clone();
            stage.release = p.release.clone();
            stage.debian = p.debian.clone();
            stage.python = p.python.clone();
            stage.entries = p.entries.clone();
            stage.env = p.env.clone();
            stage.workdir = p.workdir.clone();
            stage.user = p.user.clone();
            stage.expose = p.expose.clone();
            stage.labels = p.labels.clone();
            stage.volumes = p.volumes.clone();
            stage.entrypoint = p.entrypoint.clone();
            stage.cmd = p.cmd.clone();
            stage.stop_signal = p.stop_signal.clone();
            stage.shell = p.shell.clone();
            stage.copied = p.copied.clone();
            stage.notes.push(format!(
                "FROM {raw}: the layers of image `{}` again (the same blobs, so a registry stores them once)",
                p.name
            ));
            let msg = format!("image \"{}\" with the layers of stage `{raw}`", stage.name);
            self.say(ins, msg);
            return stage;
        }
        if lower == "scratch" {
            stage.from = Some("scratch".into());
            let msg = format!("image \"{}\" from scratch", stage.name);
            self.say(ins, msg);
            return stage;
        }
        let later = self.df.instructions.iter().filter(|i| i.keyword == "FROM" && i.span.start > ins.span.start).any(
            |i| {
                let w = dockerfile::split_words(&i.args.text);
                matches!((w.get(1), w.get(2)), (Some((kw, _)), Some((n, _))) if kw.eq_ignore_ascii_case("as") && n.eq_ignore_ascii_case(&lower))
            },
        );
        let named_stages: Vec<String> = self.stages.iter().filter_map(|s| s.alias.clone()).collect();
        let untagged = !image.contains([':', '@', '/']);
        if later || (untagged && !named_stages.is_empty() && !bases::known_repository(&lower)) {
            let help = if later {
                "a stage can only start from a stage above it: move that stage up".to_string()
            } else {
                format!(
                    "the stages above are {}; an image from a registry needs its tag: `{image}:TAG`",
                    named_stages.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
                )
            };
            let label = if later { "defined further down" } else { "no stage of this name" };
            self.error(at, format!("FROM {image}: no stage `{image}` above this line"), label, Some(help));
            return stage;
        }
        let kind = bases::classify(&image);
        if self.req.options.keep_base || matches!(kind, BaseKind::Other) {
            let repo = image.split('@').next().unwrap_or(&image);
            let repo = match repo.rsplit_once(':') {
                Some((r, tag)) if !tag.contains('/') => r,
                _ => repo,
            };
            let base = words::simple_name(repo.rsplit('/').next().unwrap_or("base"));
            let base = self.unique_base(&base, &image);
            stage.from = Some(base.clone());
            let why =
                if self.req.options.keep_base { "--keep-base" } else { "pinfold has no package set for this image" };
            let msg = format!("base \"{base}\" from the registry ({why}; `pinfold lock` pins its digest)");
            self.say(ins, msg);
            if let BaseKind::Python(v) | BaseKind::PythonDefault(v) = &kind {
                stage.env.push(("PATH".into(), format!("{VENV}/bin:{DEBIAN_PATH}")));
                stage.python = None;
                stage.release = Some(Release::python_image(v));
            }
            return stage;
        }
        stage.from = Some("scratch".into());
        match kind {
            BaseKind::Python(_) | BaseKind::PythonDefault(_) => {
                let (asked, tagged) = match &kind {
                    BaseKind::Python(v) => (v.clone(), true),
                    BaseKind::PythonDefault(v) => (v.clone(), false),
                    _ => unreachable!("matched above"),
                };
                let wanted = self.req.options.python.clone().unwrap_or(asked.clone());
                let Some((release, exact)) = bases::python_release(&wanted) else {
                    let have: Vec<String> =
                        bases::python_releases().iter().map(|r| format!("{} ({})", r.python, r.suite)).collect();
                    self.diags.push(
                        Diagnostic::error(Code::Import, format!("--python {wanted}: not a Python version"))
                            .help(format!("the versions Debian ships: {}", have.join(", "))),
                    );
                    return stage;
                };
                if self.req.options.python.as_deref().is_some_and(|p| p != release.python) {
                    self.diags.push(
                        Diagnostic::error(Code::Import, format!("--python {wanted}: no Debian release ships it")).help(
                            format!(
                                "the versions Debian ships: {}",
                                bases::python_releases()
                                    .iter()
                                    .map(|r| format!("{} ({})", r.python, r.suite))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ),
                    );
                    return stage;
                }
                let set = self.debian_set(&stage.name, release.clone());
                stage.release = Some(release.clone());
                stage.debian = Some(set.clone());
                let ds = self.debian.iter_mut().find(|d| d.name == set).expect("just made");
                ds.packages.extend(["python3", "ca-certificates", "libstdc++6"].map(String::from));
                let mut msg = format!("debian set \"{set}\" ({}, python {} as python3)", release.suite, release.python);
                if !exact && self.req.options.python.is_none() {
                    let note = format!(
                        "python {asked} is in no current Debian release: python {} of {} instead \
                         (`pinfold import --python {}` chooses)",
                        release.python,
                        release.suite,
                        bases::python_releases().iter().map(|r| r.python).collect::<Vec<_>>().join("|"),
                    );
                    ds.notes.push(note.clone());
                    msg.push_str(&format!("; {note}"));
                } else if self.req.options.python.is_some() && wanted != asked {
                    let note = format!("python {} (--python) instead of the image's {asked}", release.python);
                    ds.notes.push(note.clone());
                    msg.push_str(&format!("; {note}"));
                } else if !tagged {
                    let note = format!("`{image}` names no version: python {} of {}", release.python, release.suite);
                    ds.notes.push(note.clone());
                    msg.push_str(&format!("; {note}"));
                }
                stage.env.push(("PATH".into(), DEBIAN_PATH.into()));
                stage.env.push(("LANG".into(), "C.UTF-8".into()));
                stage.cmd = Some(vec!["python3".into()]);
                stage.entries.push(Entry::Install { set, to: None });
                self.say(ins, msg);
            }
            BaseKind::Debian(release) => {
                let set = self.debian_set(&stage.name, release.clone());
                stage.release = Some(release.clone());
                stage.debian = Some(set.clone());
                let ds = self.debian.iter_mut().find(|d| d.name == set).expect("just made");
                ds.notes.extend(release.note.clone());
                stage.env.push(("PATH".into(), DEBIAN_PATH.into()));
                stage.cmd = Some(vec!["bash".into()]);
                stage.entries.push(Entry::Install { set: set.clone(), to: None });
                let mut msg =
                    format!("debian set \"{set}\" ({}, the Essential packages as in the image)", release.suite);
                if let Some(n) = &release.note {
                    msg.push_str(&format!("; {n}"));
                }
                self.say(ins, msg);
            }
            BaseKind::Other => unreachable!("handled above"),
        }
        stage
    }

    fn unique_base(&mut self, base: &str, image: &str) -> String {
        if let Some((name, _)) = self.bases.iter().find(|(_, i)| *i == image) {
            return name.clone();
        }
        let mut name = base.to_string();
        let mut n = 2;
        while self.bases.contains_key(&name) || self.stages.iter().any(|s| s.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.bases.insert(name.clone(), image.to_string());
        name
    }

    fn stage_name(&self, alias: Option<&str>, index: usize) -> String {
        let is_last = self.df.instructions.iter().filter(|i| i.keyword == "FROM").count() == index + 1;
        let base = match alias {
            Some(a) => words::simple_name(a),
            None if is_last => words::simple_name(self.req.image_name),
            None => format!("stage-{index}"),
        };
        let mut name = base.clone();
        let mut n = 2;
        while self.stages.iter().any(|s| s.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        name
    }

    fn debian_set(&mut self, stage: &str, release: Release) -> String {
        let name = if self.df.instructions.iter().filter(|i| i.keyword == "FROM").count() == 1 {
            "os".to_string()
        } else {
            format!("{stage}-os")
        };
        self.debian.push(DebSet { name: name.clone(), release, packages: BTreeSet::new(), notes: Vec::new() });
        name
    }

    fn instruction(&mut self, stage: &mut Stage, ins: &Instruction) {
        match ins.keyword.as_str() {
            "RUN" => self.run(stage, ins),
            "COPY" | "ADD" => self.copy(stage, ins),
            "ENV" | "LABEL" => {
                let pairs = words::pairs(&ins.args.text);
                let mut set = Vec::new();
                for (k, v) in pairs {
                    let v = self.expand(&v, Some(stage));
                    let list = if ins.keyword == "ENV" { &mut stage.env } else { &mut stage.labels };
                    match list.iter_mut().find(|(key, _)| *key == k) {
                        Some(slot) => slot.1 = v,
                        None => list.push((k.clone(), v)),
                    }
                    set.push(k);
                }
                let node = if ins.keyword == "ENV" { "env" } else { "label" };
                self.say(ins, format!("{node} {}", set.join(" ")));
            }
            "ARG" => {
                let mut said = Vec::new();
                for w in words::docker_words(&ins.args.text) {
                    let (k, v) = match w.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (w.clone(), self.meta.get(&w).cloned().flatten()),
                    };
                    match v {
                        Some(v) => {
                            said.push(format!("{k}={v}"));
                            stage.args.push((k, v));
                        }
                        None => said.push(format!("{k} (no default: left unset)")),
                    }
                }
                self.say(ins, format!("build argument {}, substituted where it is used", said.join(" ")));
            }
            "WORKDIR" => {
                let w = self.expand(words::unquote(ins.args.text.trim()).as_str(), Some(stage));
                let path = words::join(stage.workdir.as_deref().unwrap_or("/"), &w);
                self.say(ins, format!("workdir \"{path}\""));
                stage.workdir = Some(path);
            }
            "USER" => {
                let u = self.expand(ins.args.text.trim(), Some(stage));
                self.say(ins, format!("user \"{u}\""));
                stage.user = Some(u);
            }
            "EXPOSE" => {
                let ports: Vec<String> =
                    words::docker_words(&ins.args.text).iter().map(|p| self.expand(p, Some(stage))).collect();
                self.say(ins, format!("expose {}", ports.join(" ")));
                stage.expose.extend(ports);
            }
            "VOLUME" => {
                let vols: Vec<String> = match ins.exec_form() {
                    Some(v) => v.into_iter().map(|(s, _)| s).collect(),
                    None => words::docker_words(&ins.args.text),
                };
                let vols: Vec<String> = vols.iter().map(|v| self.expand(v, Some(stage))).collect();
                self.say(ins, format!("volume {}", vols.join(" ")));
                stage.volumes.extend(vols);
            }
            "ENTRYPOINT" | "CMD" => {
                let argv = self.command_form(stage, ins);
                let node = if ins.keyword == "CMD" { "cmd" } else { "entrypoint" };
                self.say(ins, node);
                if ins.keyword == "CMD" {
                    stage.cmd = Some(argv);
                } else {
                    stage.entrypoint = Some(argv);
                    // As in a Dockerfile: ENTRYPOINT clears the base's CMD.
                    if stage.cmd.is_some() && !self.stage_sets_cmd_before(ins) {
                        stage.cmd = None;
                    }
                }
            }
            "STOPSIGNAL" => {
                let s = ins.args.text.trim().to_string();
                self.say(ins, format!("stop-signal \"{s}\""));
                stage.stop_signal = Some(s);
            }
            "MAINTAINER" => {
                let m = ins.args.text.trim().to_string();
                self.say(ins, "label \"maintainer\"");
                stage.labels.push(("maintainer".into(), m));
            }
            "SHELL" => match ins.exec_form() {
                Some(v) => {
                    stage.shell = v.into_iter().map(|(s, _)| s).collect();
                    self.say(ins, "the shell of the RUN steps below");
                }
                None => self.error(
                    ins.args.map_range(0..ins.args.text.len()),
                    "SHELL takes a JSON array",
                    "not [\"…\", …]",
                    Some("write it as SHELL [\"/bin/bash\", \"-c\"]".into()),
                ),
            },
            "HEALTHCHECK" => {
                stage.notes.push(format!("HEALTHCHECK (line {}) is not kept: an OCI image has none", self.line(ins)));
                self.say(ins, "not kept (an OCI image config has no health check; Docker's own format has)");
            }
            "ONBUILD" => {
                stage.notes.push(format!("ONBUILD (line {}) is not kept", self.line(ins)));
                self.say(ins, "not kept (it would run in builds that start from this image)");
            }
            other => {
                // The reader refuses unknown instructions; this is one it knows and
                // import does not.
                self.error(ins.keyword_span.clone(), format!("{other} is not translated"), "here", None);
            }
        }
    }

    /// True when a CMD of this stage comes before `ins` (then ENTRYPOINT keeps it).
    fn stage_sets_cmd_before(&self, ins: &Instruction) -> bool {
        let mut seen = false;
        for i in &self.df.instructions {
            if i.span.start >= ins.span.start {
                break;
            }
            if i.keyword == "FROM" {
                seen = false;
            }
            if i.keyword == "CMD" {
                seen = true;
            }
        }
        seen
    }

    /// The argv of `CMD`/`ENTRYPOINT`/`RUN`: the exec form as it is, the shell form
    /// through the stage's shell.
    fn command_form(&self, stage: &Stage, ins: &Instruction) -> Vec<String> {
        match ins.exec_form() {
            Some(v) => v.into_iter().map(|(s, _)| s).collect(),
            None => {
                let mut argv =
                    if stage.shell.is_empty() { vec!["/bin/sh".into(), "-c".into()] } else { stage.shell.clone() };
                argv.push(words::join_continuations(&ins.rest().text));
                argv
            }
        }
    }

    /// `RUN`: apt and pip lines become package sets, the rest a step.
    fn run(&mut self, stage: &mut Stage, ins: &Instruction) {
        let exec = ins.exec_form();
        if !ins.heredocs.is_empty() {
            let body: Vec<String> = ins.heredocs.iter().map(|h| h.body.text.clone()).collect();
            let argv = vec!["/bin/sh".into(), "-c".into(), body.join("\n")];
            let cwd = stage.workdir.clone().unwrap_or("/".into());
            stage.runs.push(RunCmd { line: self.line(ins), argv, cwd });
            self.say(ins, format!("step \"{}-run\" (a heredoc: NEEDS REVIEW)", stage.name));
            return;
        }
        let script = match &exec {
            Some(argv) => Script::from_argv(argv),
            None => Script::parse(&ins.rest()),
        };
        let mut replaced: Vec<std::ops::Range<usize>> = Vec::new();
        let mut apt: Vec<String> = Vec::new();
        let mut pip: Vec<String> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        // Which commands were taken over by sets, by index: spans can be coarse (a JSON
        // string with escapes maps as one piece), so a range does not tell them apart.
        let mut taken: Vec<usize> = Vec::new();
        for (index, cmd) in script.commands.iter().enumerate() {
            let Some(prog) = cmd.program() else { continue };
            let argv = cmd.argv();
            let whole = match (cmd.words.first(), cmd.words.last()) {
                (Some(a), Some(b)) => a.span.start..b.span.end,
                _ => continue,
            };
            if matches!(prog, "apt-get" | "apt" | "aptitude") {
                use pinfold_lint::rules::pf302_apt_get_unpinned::TAKES_VALUE;
                match subcommand(argv, TAKES_VALUE) {
                    Some(("install", args)) => {
                        if !pinfold_lint::shell::has_option(args, &["--no-install-recommends"]) {
                            notes.push("Recommends are not installed (as with --no-install-recommends)".into());
                        }
                        for p in positionals(args, TAKES_VALUE) {
                            let t = self.expand(&p.text, Some(stage));
                            if t.ends_with(".deb") || t.starts_with(['.', '/']) {
                                self.error(
                                    p.span.clone(),
                                    format!("apt-get install of a local file `{t}`"),
                                    "a .deb file",
                                    Some("add the package's name from the archive instead".into()),
                                );
                                continue;
                            }
                            let name = t.split(['=', '/']).next().unwrap_or(&t).to_string();
                            if name != t {
                                notes.push(format!("`{t}`: the lock chooses the version of `{name}`"));
                            }
                            apt.push(name);
                        }
                    }
                    Some(("update" | "clean" | "autoclean" | "autoremove" | "upgrade" | "dist-upgrade", _)) => {}
                    _ => continue,
                }
                replaced.push(whole);
                taken.push(index);
            } else if let Some(args) = pinfold_lint::rules::pf301_pip_unpinned::pip_install(cmd) {
                self.pip(stage, args, &mut pip, &mut notes);
                replaced.push(whole);
                taken.push(index);
            } else if prog == "rm"
                && argv.iter().skip(1).filter(|w| !w.text.starts_with('-')).all(|w| is_cache(&w.text))
                || (prog.starts_with("pip") && argv.get(1).is_some_and(|w| w.text == "cache"))
            {
                replaced.push(whole);
                taken.push(index);
            }
        }
        let mut parts = Vec::new();
        if !apt.is_empty() {
            let Some(set) = stage.debian.clone() else {
                let at = ins.keyword_span.clone();
                self.error(
                    at,
                    "apt-get install on a base that is not a Debian package set",
                    "apt has no network in pinfold",
                    Some(
                        "without --keep-base, a debian: or ubuntu: base becomes a set that takes these packages".into(),
                    ),
                );
                return;
            };
            let set = self.own_debian_set(stage, &set);
            let ds = self.debian.iter_mut().find(|d| d.name == set).expect("a set of the stage");
            ds.packages.extend(apt.iter().cloned());
            parts.push(format!("debian set \"{set}\": {}", apt.join(" ")));
        }
        if !pip.is_empty()
            || stage.python.is_some()
                && script.commands.iter().any(|c| pinfold_lint::rules::pf301_pip_unpinned::pip_install(c).is_some())
        {
            if let Some(py) = &stage.python {
                parts.push(format!("python set \"{py}\" in {VENV}: {}", pip.join(" ")));
            }
        }
        let leftover: Vec<_> = script
            .commands
            .iter()
            .enumerate()
            .filter(|(i, c)| !taken.contains(i) && !c.words.is_empty())
            .map(|(_, c)| c)
            .collect();
        // What is left becomes a step by cutting the taken commands out of the text.
        // That needs them apart in the text: an exec form's text is JSON, and a command
        // whose span overlaps a taken one cannot be cut around. Refuse rather than
        // drop a command or make a step that cannot run.
        let tangled = leftover.iter().any(|c| {
            let r = c.words[0].span.start..c.words[c.words.len() - 1].span.end;
            replaced.iter().any(|x| r.start < x.end && x.start < r.end)
        });
        if !leftover.is_empty() && !replaced.is_empty() && (exec.is_some() || tangled) {
            self.error(
                ins.keyword_span.clone(),
                "this RUN mixes apt-get or pip install with other commands that import cannot take apart",
                "apt/pip and other commands in one RUN",
                Some(
                    "put the apt-get/pip install in a RUN of its own (shell form), and the other commands in another"
                        .into(),
                ),
            );
            return;
        }
        if !leftover.is_empty() {
            let argv = match &exec {
                Some(v) if replaced.is_empty() => v.iter().map(|(s, _)| s.clone()).collect(),
                _ => {
                    let rest = ins.rest();
                    let start = rest.map(0);
                    let end = rest.map_range(0..rest.text.len()).end;
                    let mut text = self.req.text[start..end].to_string();
                    let mut ranges = replaced.clone();
                    ranges.sort_by_key(|r| std::cmp::Reverse(r.start));
                    let mut last = usize::MAX;
                    for r in ranges {
                        if r.end > last || r.start < start || r.end > end {
                            continue;
                        }
                        text.replace_range(r.start - start..r.end - start, "true");
                        last = r.start;
                    }
                    let mut argv =
                        if stage.shell.is_empty() { vec!["/bin/sh".into(), "-c".into()] } else { stage.shell.clone() };
                    argv.push(words::drop_trues(&words::join_continuations(&text)));
                    argv
                }
            };
            let cwd = stage.workdir.clone().unwrap_or("/".into());
            stage.runs.push(RunCmd { line: self.line(ins), argv, cwd });
            parts.push(format!("step \"{}-run\" (NEEDS REVIEW: it runs without network)", stage.name));
        }
        if parts.is_empty() {
            parts.push("nothing to do (apt/pip housekeeping)".into());
        }
        let mut msg = parts.join("; ");
        notes.dedup();
        for n in notes {
            msg.push_str(&format!("; {n}"));
        }
        self.say(ins, msg);
    }

    /// The stage's own Debian set: a stage that starts from another stage adds its
    /// packages to a copy of the parent's set.
    fn own_debian_set(&mut self, stage: &mut Stage, set: &str) -> String {
        let parent_owns = stage.parent.is_some_and(|p| self.stages[p].debian.as_deref() == Some(set));
        if !parent_owns {
            return set.to_string();
        }
        let mut copy = self.debian.iter().find(|d| d.name == set).expect("the parent's set").clone();
        copy.name = format!("{}-os", stage.name);
        copy.notes = vec![format!("the packages of `{set}` and those of stage `{}`", stage.name)];
        let name = copy.name.clone();
        self.debian.push(copy);
        for e in &mut stage.entries {
            if let Entry::Install { set: s, to: None } = e {
                if s == set {
                    *s = name.clone();
                }
            }
        }
        stage.debian = Some(name.clone());
        name
    }

    /// `pip install …`: requirements and packages of the stage's `python` set.
    fn pip(
        &mut self,
        stage: &mut Stage,
        args: &[pinfold_lint::shell::Word],
        said: &mut Vec<String>,
        notes: &mut Vec<String>,
    ) {
        use pinfold_lint::rules::pf301_pip_unpinned::TAKES_VALUE;
        let set = match &stage.python {
            Some(s) => s.clone(),
            None => {
                let Some(release) = stage.release.clone() else {
                    let at = args.first().map_or(0..0, |w| w.span.clone());
                    self.error(
                        at,
                        "pip install on a base whose Python pinfold does not know",
                        "here",
                        Some("start from python:3.X or a debian:/ubuntu: base, or drop --keep-base".into()),
                    );
                    return;
                };
                let name = if self.stages.is_empty()
                    && self.df.instructions.iter().filter(|i| i.keyword == "FROM").count() == 1
                {
                    "deps".to_string()
                } else {
                    format!("{}-deps", stage.name)
                };
                self.python.push(PySet { name: name.clone(), python: release.python.to_string(), ..PySet::default() });
                stage.python = Some(name.clone());
                if stage.debian.is_some() {
                    stage.entries.insert(
                        stage.entries.iter().take_while(|e| matches!(e, Entry::Install { .. })).count(),
                        Entry::Install { set: name.clone(), to: Some(VENV.into()) },
                    );
                    let path = format!("{VENV}/bin:{DEBIAN_PATH}");
                    match stage.env.iter_mut().find(|(k, _)| k == "PATH") {
                        Some(p) => p.1 = path,
                        None => stage.env.push(("PATH".into(), path)),
                    }
                } else {
                    stage.entries.push(Entry::Install { set: name.clone(), to: Some(VENV.into()) });
                }
                name
            }
        };
        let mut i = 0;
        let cwd = stage.workdir.clone().unwrap_or("/".into());
        while i < args.len() {
            let w = &args[i];
            let t = self.expand(&w.text, Some(stage));
            let (opt, inline) = match t.split_once('=') {
                Some((o, v)) if o.starts_with("--") => (o.to_string(), Some(v.to_string())),
                _ => (t.clone(), None),
            };
            let value = |i: &mut usize| -> Option<(String, std::ops::Range<usize>)> {
                if let Some(v) = &inline {
                    return Some((v.clone(), w.span.clone()));
                }
                *i += 1;
                args.get(*i).map(|v| (v.text.clone(), v.span.clone()))
            };
            match opt.as_str() {
                "-r" | "--requirement" => {
                    if let Some((file, at)) = value(&mut i) {
                        let file = self.expand(&file, Some(stage));
                        self.requirement_file(stage, &set, &words::join(&cwd, &file), at, said);
                    }
                }
                "-i" | "--index-url" => {
                    if let Some((url, _)) = value(&mut i) {
                        let py = self.python.iter_mut().find(|p| p.name == set).expect("the stage's set");
                        py.index = Some(url);
                    }
                }
                "-c" | "--constraint" | "-e" | "--editable" | "--extra-index-url" | "-f" | "--find-links" => {
                    let at = w.span.clone();
                    self.error(
                        at,
                        format!("pip install {opt} is not translated"),
                        "here",
                        Some(
                            "list the requirements in a file given with -r, or in `packages` of the python set".into(),
                        ),
                    );
                    value(&mut i);
                }
                o if o.starts_with('-') => {
                    if TAKES_VALUE.contains(&o) && inline.is_none() {
                        i += 1;
                    }
                }
                spec => {
                    if is_vcs(spec) || spec.starts_with(['.', '/']) || spec.contains("://") {
                        let what = if is_vcs(spec) { "a VCS URL" } else { "not a package from an index" };
                        self.error(
                            w.span.clone(),
                            format!("pip install `{spec}`: {what}"),
                            what,
                            Some(
                                "pinfold installs wheels from an index, pinned by the lock: name a released version \
                                 (`NAME==VERSION`), or build the wheel in a step and install it from there"
                                    .into(),
                            ),
                        );
                    } else if matches!(spec.to_ascii_lowercase().as_str(), "pip" | "pip==*") || spec.starts_with("pip=")
                    {
                        notes.push("pip itself is not installed: pinfold installs the wheels".into());
                    } else {
                        let py = self.python.iter_mut().find(|p| p.name == set).expect("the stage's set");
                        py.packages.push(spec.to_string());
                        said.push(spec.to_string());
                    }
                }
            }
            i += 1;
        }
    }

    /// `-r FILE`: found through the stage's copies, read for VCS lines, and named by
    /// its path below the build file.
    fn requirement_file(
        &mut self,
        stage: &Stage,
        set: &str,
        container_path: &str,
        at: std::ops::Range<usize>,
        said: &mut Vec<String>,
    ) {
        let Some(rel) = words::lookup(&stage.copied, container_path) else {
            self.error(
                at,
                format!("pip install -r {container_path}: no COPY above puts this file into the image"),
                "not from the build context",
                Some("COPY the requirements file from the build context before the RUN".into()),
            );
            return;
        };
        match self.read_in_context(&rel, pinfold_python::requirements::MAX_FILE_BYTES) {
            Ok(text) => {
                let src = Source::new(rel.clone(), text.clone());
                let mut offset = 0;
                for line in text.split_inclusive('\n') {
                    let t = line.trim();
                    if is_vcs(t) || t.starts_with("-e ") || t.starts_with("--editable") {
                        let start = offset + (line.len() - line.trim_start().len());
                        self.diags.push(
                            Diagnostic::error(Code::Import, format!("{rel}: `{t}` is not a package from an index"))
                                .at(SourceSpan::new(start.into(), t.len()), "a VCS URL or an editable install")
                                .help(
                                    "pinfold installs wheels from an index, pinned by the lock: name a released \
                                     version (`NAME==VERSION`), or build the wheel in a step",
                                )
                                .in_source(&src),
                        );
                    }
                    offset += line.len();
                }
            }
            Err(e) => {
                self.error(at, format!("{rel}: {e}"), "this requirements file", None);
                return;
            }
        }
        let path = format!("{}{rel}", self.req.prefix);
        let py = self.python.iter_mut().find(|p| p.name == set).expect("the stage's set");
        py.requirements.push(path.clone());
        said.push(format!("-r {path}"));
    }

    /// What `rel` (clean, relative to the build context) is, looked up through the one
    /// rooted module: a symlink on the way is refused, never followed out of the context.
    fn kind_in_context(&self, rel: &str) -> Result<Kind, String> {
        let parts = rooted::components(rel.as_bytes()).map_err(str::to_string)?;
        let mut root = rooted::Root::open(self.req.context).map_err(|e| e.to_string())?;
        root.kind(&parts).map_err(|e| e.to_string())
    }

    /// The regular file `rel` of the build context, opened as [`Self::kind_in_context`] looks.
    fn open_in_context(&self, rel: &str) -> Result<std::fs::File, String> {
        let parts = rooted::components(rel.as_bytes()).map_err(str::to_string)?;
        let mut root = rooted::Root::open(self.req.context).map_err(|e| e.to_string())?;
        root.open_file(&parts).map_err(|e| e.to_string())
    }

    /// A text file of the build context, at most `limit` bytes.
    fn read_in_context(&self, rel: &str, limit: u64) -> Result<String, String> {
        use std::io::Read;
        let mut bytes = Vec::new();
        self.open_in_context(rel)?.take(limit + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        if bytes.len() as u64 > limit {
            return Err(format!("larger than {limit} bytes"));
        }
        String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
    }

    /// The sha256 (hex) of a file of the build context.
    fn sha256_in_context(&self, rel: &str) -> Result<String, String> {
        let file = self.open_in_context(rel)?;
        let reader = pinfold_image::digest::VerifyingReader::new(std::io::BufReader::new(file));
        reader.finish().map(|(digest, _)| digest.hex().to_string()).map_err(|e| e.to_string())
    }

    /// `COPY`/`ADD`: copies from the context, `--from` a stage, archives and URLs.
    fn copy(&mut self, stage: &mut Stage, ins: &Instruction) {
        let (flags, _) = ins.flags();
        let mut list: Vec<(String, std::ops::Range<usize>)> = match ins.exec_form() {
            Some(v) => v.into_iter().map(|(s, m)| (s, m.map_range(0..m.text.len()))).collect(),
            None => {
                let rest = ins.rest();
                dockerfile::split_words(&rest.text)
                    .into_iter()
                    .map(|(w, r)| (words::unquote(w), rest.map_range(r)))
                    .collect()
            }
        };
        if !ins.heredocs.is_empty() {
            self.error(
                ins.keyword_span.clone(),
                format!("{} of a heredoc is not translated", ins.keyword),
                "here",
                Some("put the text in a file of the build context, or in a `file` entry".into()),
            );
            return;
        }
        if list.len() < 2 {
            self.error(ins.span.clone(), format!("{} needs a source and a destination", ins.keyword), "here", None);
            return;
        }
        let (dest, _) = list.pop().expect("two or more");
        let dest = self.expand(&dest, Some(stage));
        let cwd = stage.workdir.clone().unwrap_or("/".into());
        let into_dir = dest.ends_with('/') || dest == "." || list.len() > 1;
        let dest_abs = words::join(&cwd, &dest);
        let flag = |n: &str| flags.iter().find(|f| f.name == n).and_then(|f| f.value.clone());
        let mode = match flag("chmod") {
            Some(m) => match u32::from_str_radix(&m, 8) {
                Ok(v) if v <= 0o7777 => Some(v),
                _ => {
                    let at = flags.iter().find(|f| f.name == "chmod").map_or(0..0, |f| f.span.clone());
                    self.error(at, format!("--chmod={m}: not an octal mode"), "here", None);
                    return;
                }
            },
            None => None,
        };
        let (uid, gid) = match flag("chown") {
            Some(c) => {
                let (u, g) = c.split_once(':').unwrap_or((&c, &c));
                match (u.parse::<u32>(), g.parse::<u32>()) {
                    (Ok(u), Ok(g)) => (Some(u), Some(g)),
                    _ => {
                        stage.notes.push(format!(
                            "--chown={c} (line {}): names need the image's /etc/passwd; the files are owned by 0:0 (write numeric ids)",
                            self.line(ins)
                        ));
                        (None, None)
                    }
                }
            }
            None => (None, None),
        };
        if let Some(from) = flag("from") {
            let from_l = from.to_ascii_lowercase();
            let source = self
                .stages
                .iter()
                .position(|s| s.alias.as_deref() == Some(from_l.as_str()))
                .or_else(|| from.parse::<usize>().ok().filter(|i| *i < self.stages.len()));
            let Some(src_stage) = source else {
                let at = flags.iter().find(|f| f.name == "from").map_or(0..0, |f| f.span.clone());
                let help = if from.contains([':', '/', '@']) {
                    "copying out of a registry image is not translated: make it a stage (`FROM IMAGE AS name`)"
                        .to_string()
                } else {
                    let names: Vec<String> = self.stages.iter().filter_map(|s| s.alias.clone()).collect();
                    format!("the stages above are: {}", if names.is_empty() { "none".into() } else { names.join(", ") })
                };
                self.error(
                    at,
                    format!("COPY --from={from}: no stage `{from}` above this line"),
                    "no such stage",
                    Some(help),
                );
                return;
            };
            let step = format!("{}-run", self.stages[src_stage].name);
            for (src, _) in &list {
                let src = words::join(self.stages[src_stage].workdir.as_deref().unwrap_or("/"), src);
                let to = if into_dir { format!("{}/", dest_abs.trim_end_matches('/')) } else { dest_abs.clone() };
                let to = if into_dir { format!("{to}{}", words::basename(&src)) } else { to };
                self.stages[src_stage].exported.push(src.clone());
                stage.entries.push(Entry::FromStep { step: step.clone(), path: src, to });
            }
            let msg = format!("a layer copying outputs of step \"{step}\" (stage `{from}`)");
            self.say(ins, msg);
            return;
        }
        let mut what = Vec::new();
        for (src, at) in list {
            let src = self.expand(&src, Some(stage));
            if ins.keyword == "ADD" && (src.starts_with("http://") || src.starts_with("https://")) {
                let name = self.unique_input(&words::simple_name(words::basename(&src)));
                let to = if into_dir {
                    format!("{}/{}", dest_abs.trim_end_matches('/'), url_file(&src))
                } else {
                    dest_abs.clone()
                };
                self.downloads.push((name.clone(), src.clone()));
                stage.entries.push(Entry::Download { download: name.clone(), to });
                what.push(format!("download \"{name}\" (`pinfold lock` pins its sha256)"));
                continue;
            }
            if src.contains(['*', '?', '[']) {
                self.error(
                    at,
                    format!("{} `{src}`: patterns are not translated", ins.keyword),
                    "a pattern",
                    Some("name the files or their directory".into()),
                );
                continue;
            }
            let clean = words::clean_relative(&src);
            let Some(rel) = clean else {
                self.error(at, format!("`{src}` is outside the build context"), "outside the context", None);
                continue;
            };
            let kind = match self.kind_in_context(&rel) {
                Ok(Kind::Missing) => {
                    self.error(
                        at,
                        format!("`{src}` is not in the build context"),
                        "no such file",
                        Some(format!("the build context is {}", self.req.context.display())),
                    );
                    continue;
                }
                Ok(kind) => kind,
                Err(e) => {
                    self.error(at, format!("`{src}`: {e}"), "not read", None);
                    continue;
                }
            };
            let path_in_file = if rel == "." {
                if self.req.prefix.is_empty() {
                    ".".to_string()
                } else {
                    self.req.prefix.trim_end_matches('/').to_string()
                }
            } else {
                format!("{}{rel}", self.req.prefix)
            };
            if ins.keyword == "ADD" && kind == Kind::File && is_tarball(&rel) {
                let name = self.unique_input(&words::simple_name(words::basename(&rel)));
                let sha = match self.sha256_in_context(&rel) {
                    Ok(s) => s,
                    Err(e) => {
                        self.error(at, format!("{rel}: {e}"), "here", None);
                        continue;
                    }
                };
                self.archives.push((name.clone(), path_in_file, sha));
                let to = format!("{}/", dest_abs.trim_end_matches('/'));
                stage.entries.push(Entry::Extract { archive: name.clone(), to });
                what.push(format!("archive \"{name}\" unpacked at {dest_abs}"));
                continue;
            }
            let is_dir = kind == Kind::Dir;
            let to = if is_dir || into_dir { format!("{}/", dest_abs.trim_end_matches('/')) } else { dest_abs.clone() };
            let image_path = if is_dir {
                to.trim_end_matches('/').to_string()
            } else if into_dir {
                format!("{to}{}", words::basename(&rel))
            } else {
                to.clone()
            };
            let image_path = if image_path.is_empty() { "/".to_string() } else { image_path };
            stage.copied.push((image_path.clone(), rel.clone(), is_dir));
            stage.entries.push(Entry::Copy {
                src: path_in_file.clone(),
                to: to.clone(),
                path: image_path,
                mode,
                uid,
                gid,
            });
            what.push(format!("copy \"{path_in_file}\" to \"{to}\""));
        }
        if !what.is_empty() {
            let msg = what.join(", ");
            self.say(ins, msg);
        }
    }

    fn unique_input(&self, base: &str) -> String {
        let taken = |n: &str| self.downloads.iter().any(|d| d.0 == n) || self.archives.iter().any(|a| a.0 == n);
        let mut name = base.to_string();
        let mut n = 2;
        while taken(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        name
    }

    /// Which stages the final stage needs, as BuildKit builds only those.
    fn mark_needed(&mut self) {
        let Some(last) = self.stages.len().checked_sub(1) else { return };
        let mut todo = vec![last];
        self.stages[last].whole = true;
        while let Some(i) = todo.pop() {
            if self.stages[i].needed {
                continue;
            }
            self.stages[i].needed = true;
            if let Some(p) = self.stages[i].parent {
                self.stages[p].whole = true;
                todo.push(p);
            }
            for e in self.stages[i].entries.clone() {
                if let Entry::FromStep { step, .. } = e {
                    if let Some(j) = self.stages.iter().position(|s| format!("{}-run", s.name) == step) {
                        todo.push(j);
                    }
                }
            }
        }
    }
}

fn is_vcs(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    ["git+", "hg+", "svn+", "bzr+"].iter().any(|p| lower.starts_with(p) || lower.contains(&format!("@ {p}")))
        || lower.contains("@git+")
}

/// What `rm` removes after apt or pip: caches that a package set never makes.
fn is_cache(path: &str) -> bool {
    [
        "/var/lib/apt/lists",
        "/var/cache/apt",
        "/root/.cache",
        "/tmp/",
        "/var/cache/debconf",
        "/usr/share/doc",
        "/usr/share/man",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

fn is_tarball(path: &str) -> bool {
    [".tar", ".tar.gz", ".tgz", ".tar.zst"].iter().any(|e| path.ends_with(e))
}

fn url_file(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or("");
    if last.is_empty() {
        "download".into()
    } else {
        last.to_string()
    }
}
