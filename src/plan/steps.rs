//! Steps: the commands of `step NAME { … }` blocks, resolved for a build (image,
//! input files, platform, environment), and the graph of steps and images that
//! they form, checked for cycles. They run in [`crate::build::step`].

use super::{BaseImage, Cx, DEFAULT_PLATFORM};
use miette::SourceSpan;
use pinfold_image::oci::read::OpenedImage;
use pinfold_image::walk::FileStat;
use pinfold_lang::diag::Code;
use pinfold_lang::diag::Diagnostic;
use pinfold_lang::{self as lang, BuildFile, EntryDecl, Platform, StepDecl, StepInput};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

/// Where a step's inputs are copied and its command runs, unless it says `workdir`.
pub const DEFAULT_WORKDIR: &str = "/work";

/// Directories a glob never walks into: version control, and pinfold's own outputs.
const SKIPPED_DIRS: &[&str] = &[".git", "pinfold-out"];

#[derive(Debug, Clone)]
pub enum StepImage {
    /// A base, with the manifest for the platform the step runs on chosen per run.
    Base { name: String, image: Arc<OpenedImage>, span: SourceSpan, declared: SourceSpan },
    /// An image of the build file, built before the step runs.
    Image { name: String, span: SourceSpan },
}

/// A step as declared, resolved once: what every run of it shares.
#[derive(Debug, Clone)]
pub struct StepPlan {
    pub name: String,
    pub image: StepImage,
    /// `platform`: the one platform the step is for. `None`: one run per platform
    /// that needs it.
    pub platform: Option<Platform>,
    /// `build-platform`: the platform whose image runs the command, when it is not
    /// the target's.
    pub build_platform: Option<Platform>,
    /// Repository files: (path below the work directory, path on disk, its metadata
    /// when the plan read it in a walk), sorted.
    pub files: Vec<(String, PathBuf, Option<FileStat>)>,
    /// Outputs of other steps: (step, the paths taken; empty for all), in the order
    /// written.
    pub from_steps: Vec<(String, Vec<String>)>,
    /// Package sets whose locked files the step takes: (set, directory below the work
    /// directory). The files differ per platform, so each run gets its own.
    pub packages: Vec<(String, String)>,
    /// Commands, run one after the other.
    pub run: Vec<Vec<String>>,
    pub outputs: Vec<String>,
    /// The step's own variables, over the fixed environment.
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub span: SourceSpan,
}

impl StepPlan {
    /// The target platform of the step's run for `wanted` (the platform of what needs it).
    pub fn target_for(&self, wanted: &Platform) -> Platform {
        self.platform.clone().unwrap_or_else(|| wanted.clone())
    }
}

/// One run of a step: the step for one target platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepId {
    pub name: String,
    /// `TARGETPLATFORM`.
    pub platform: Platform,
}

/// A run of a step, with everything that depends on its platform resolved.
#[derive(Debug, Clone)]
pub struct StepRun {
    pub id: StepId,
    /// The platform of the image that runs the command (`BUILDPLATFORM`); a foreign
    /// one runs under qemu-user.
    pub runs_on: Platform,
    pub image: RunImage,
    /// The runs whose outputs this one takes, with the paths taken (empty for all).
    pub from_steps: Vec<(StepId, Vec<String>)>,
    /// How the build names this run: the step's name, with the platform unless it is
    /// the default one and the step's only run.
    pub label: String,
    /// The locked files of the step's package sets for this run's platform: (path below
    /// the work directory, the file in the store), fetched and checked by the plan.
    pub package_files: Vec<(String, PathBuf)>,
}

/// The root file system of a step's run.
#[derive(Debug, Clone)]
pub enum RunImage {
    Base(BaseImage),
    /// An image of the build file (built for `runs_on` among its platforms).
    Image(String),
}

/// What each node of the build needs first.
pub type BuildGraph = BTreeMap<BuildNode, Vec<(BuildNode, ())>>;

fn add_edge(deps: &mut Vec<(BuildNode, ())>, node: BuildNode) {
    if !deps.iter().any(|(d, _)| *d == node) {
        deps.push((node, ()));
    }
}

/// A node of the build: an image (all its platforms), or one run of a step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BuildNode {
    Step(StepId),
    Image(String),
}

/// A node of the build graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Step(String),
    Image(String),
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::Step(s) => write!(f, "step `{s}`"),
            Node::Image(i) => write!(f, "image `{i}`"),
        }
    }
}

/// Edges of the graph: what each node needs first, with where that was written.
pub fn graph(file: &BuildFile) -> BTreeMap<Node, Vec<(Node, SourceSpan)>> {
    let images: BTreeSet<&str> = file.images.iter().map(|i| i.name.value.as_str()).collect();
    let bases: BTreeSet<&str> = file.bases.iter().map(|b| b.name.value.as_str()).collect();
    let mut edges: BTreeMap<Node, Vec<(Node, SourceSpan)>> = BTreeMap::new();
    for step in &file.steps {
        let deps = edges.entry(Node::Step(step.name.value.clone())).or_default();
        if let Some(image) = &step.image {
            if images.contains(image.value.as_str()) && !bases.contains(image.value.as_str()) {
                deps.push((Node::Image(image.value.clone()), image.span));
            }
        }
        for input in &step.inputs {
            if let StepInput::Step { step: other, .. } = input {
                deps.push((Node::Step(other.value.clone()), other.span));
            }
        }
    }
    for image in &file.images {
        let deps = edges.entry(Node::Image(image.name.value.clone())).or_default();
        // `from NAME` of another image: built on it, so it needs what that one needs.
        if let Some(lang::FromDecl::Base(name)) = image.from.as_ref().map(|f| &f.value) {
            if images.contains(name.as_str()) && !bases.contains(name.as_str()) {
                deps.push((Node::Image(name.clone()), image.from.as_ref().expect("matched").span));
            }
        }
        let entries =
            image.layers.iter().chain(image.overrides.iter().flat_map(|o| &o.layers)).flat_map(|l| &l.entries);
        for entry in entries {
            if let EntryDecl::Copy { step: Some(step), .. } = entry {
                deps.push((Node::Step(step.value.clone()), step.span));
            }
        }
    }
    edges
}

/// The build file narrowed to what `names` need: those images and steps, the images
/// and steps they need, and the bases, downloads and archives these use. So
/// `pinfold build NAME` opens, fetches and walks nothing for other images. `None`
/// when nothing is named, or a name is neither an image nor a step (the whole file is
/// then planned, so that the build can suggest the closest name).
pub fn narrowed_to(file: &BuildFile, names: &[String]) -> Option<BuildFile> {
    if names.is_empty() {
        return None;
    }
    let targets: Vec<Node> = names
        .iter()
        .map(|n| {
            if file.images.iter().any(|i| &i.name.value == n) {
                Some(Node::Image(n.clone()))
            } else if file.steps.iter().any(|s| &s.name.value == n) {
                Some(Node::Step(n.clone()))
            } else {
                None
            }
        })
        .collect::<Option<_>>()?;
    let needed: BTreeSet<Node> = needed_order(&graph(file), &targets).into_iter().collect();
    let mut out = file.clone();
    out.images.retain(|i| needed.contains(&Node::Image(i.name.value.clone())));
    out.steps.retain(|s| needed.contains(&Node::Step(s.name.value.clone())));
    let mut bases: BTreeSet<&str> = BTreeSet::new();
    let mut inputs: BTreeSet<&str> = BTreeSet::new();
    for image in &out.images {
        if let Some(lang::FromDecl::Base(base)) = image.from.as_ref().map(|f| &f.value) {
            bases.insert(base);
        }
        let entries =
            image.layers.iter().chain(image.overrides.iter().flat_map(|o| &o.layers)).flat_map(|l| &l.entries);
        for entry in entries {
            if let EntryDecl::Download { name, .. } | EntryDecl::Extract { name, .. } = entry {
                inputs.insert(&name.value);
            }
        }
    }
    bases.extend(out.steps.iter().filter_map(|s| s.image.as_ref()).map(|i| i.value.as_str()));
    for input in out.steps.iter().flat_map(|s| &s.inputs) {
        if let StepInput::Download { name, .. } | StepInput::Archive { name, .. } = input {
            inputs.insert(&name.value);
        }
    }
    let (bases, inputs): (BTreeSet<String>, BTreeSet<String>) =
        (bases.into_iter().map(str::to_string).collect(), inputs.into_iter().map(str::to_string).collect());
    out.bases.retain(|b| bases.contains(&b.name.value));
    out.downloads.retain(|d| inputs.contains(&d.name.value));
    out.archives.retain(|a| inputs.contains(&a.name.value));
    Some(out)
}

/// Every cycle of the graph, each once, as its path of (node, span of the edge
/// leaving it).
pub fn cycles(edges: &BTreeMap<Node, Vec<(Node, SourceSpan)>>) -> Vec<Vec<(Node, SourceSpan)>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &Node,
        edges: &BTreeMap<Node, Vec<(Node, SourceSpan)>>,
        marks: &mut BTreeMap<Node, Mark>,
        stack: &mut Vec<(Node, SourceSpan)>,
        found: &mut Vec<Vec<(Node, SourceSpan)>>,
    ) {
        marks.insert(node.clone(), Mark::Open);
        for (next, span) in edges.get(node).map(Vec::as_slice).unwrap_or_default() {
            stack.push((node.clone(), *span));
            match marks.get(next) {
                Some(Mark::Open) => {
                    let start = stack.iter().position(|(n, _)| n == next).expect("an open node is on the stack");
                    found.push(stack[start..].to_vec());
                }
                Some(Mark::Done) => {}
                None => visit(next, edges, marks, stack, found),
            }
            stack.pop();
        }
        marks.insert(node.clone(), Mark::Done);
    }
    let mut marks = BTreeMap::new();
    let mut found = Vec::new();
    for node in edges.keys() {
        if !marks.contains_key(node) {
            visit(node, edges, &mut marks, &mut Vec::new(), &mut found);
        }
    }
    found
}

/// What `targets` need, themselves included, each after what it needs.
pub fn needed_order<N: Ord + Clone, E>(edges: &BTreeMap<N, Vec<(N, E)>>, targets: &[N]) -> Vec<N> {
    fn visit<N: Ord + Clone, E>(node: &N, edges: &BTreeMap<N, Vec<(N, E)>>, seen: &mut BTreeSet<N>, out: &mut Vec<N>) {
        if !seen.insert(node.clone()) {
            return;
        }
        for (next, _) in edges.get(node).map(Vec::as_slice).unwrap_or_default() {
            visit(next, edges, seen, out);
        }
        out.push(node.clone());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for t in targets {
        visit(t, edges, &mut seen, &mut out);
    }
    out
}

/// The graph as `pinfold graph` prints it: each step and image with what it needs
/// (and a step's repository inputs), only what `targets` need (all when empty).
pub fn render_text(file: &BuildFile, targets: &[Node]) -> String {
    let edges = graph(file);
    let nodes = shown_nodes(&edges, targets);
    let mut out = String::new();
    for node in &nodes {
        out.push_str(&format!("{node}\n"));
        if let Node::Step(name) = node {
            if let Some(step) = file.steps.iter().find(|s| &s.name.value == name) {
                if let Some(image) = step.image.as_ref().filter(|i| !edges_to_image(&edges, node, &i.value)) {
                    out.push_str(&format!("  runs in base `{}`\n", image.value));
                }
                for input in &step.inputs {
                    if let StepInput::Files(pattern) = input {
                        out.push_str(&format!("  reads {}\n", pattern.value));
                    }
                }
                for output in &step.outputs {
                    out.push_str(&format!("  makes {}\n", output.value));
                }
            }
        }
        let mut seen = BTreeSet::new();
        for (dep, _) in edges.get(node).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(dep) {
                out.push_str(&format!("  needs {dep}\n"));
            }
        }
    }
    out
}

/// The graph in Graphviz dot: an edge from each node to what needs it.
pub fn render_dot(file: &BuildFile, targets: &[Node]) -> String {
    let edges = graph(file);
    let nodes = shown_nodes(&edges, targets);
    let id = |n: &Node| match n {
        Node::Step(s) => format!("\"step:{}\"", s.replace('"', "\\\"")),
        Node::Image(i) => format!("\"image:{}\"", i.replace('"', "\\\"")),
    };
    let mut out = String::from("digraph pinfold {\n  rankdir=LR;\n");
    for node in &nodes {
        let (shape, label) = match node {
            Node::Step(s) => ("box", s),
            Node::Image(i) => ("box3d", i),
        };
        out.push_str(&format!("  {} [shape={shape}, label=\"{}\"];\n", id(node), label.replace('"', "\\\"")));
    }
    for node in &nodes {
        let mut seen = BTreeSet::new();
        for (dep, _) in edges.get(node).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(dep) {
                out.push_str(&format!("  {} -> {};\n", id(dep), id(node)));
            }
        }
    }
    out.push_str("}\n");
    out
}

fn edges_to_image(edges: &BTreeMap<Node, Vec<(Node, SourceSpan)>>, node: &Node, image: &str) -> bool {
    edges.get(node).is_some_and(|deps| deps.iter().any(|(d, _)| *d == Node::Image(image.to_string())))
}

/// The nodes to show, each after what it needs.
fn shown_nodes(edges: &BTreeMap<Node, Vec<(Node, SourceSpan)>>, targets: &[Node]) -> Vec<Node> {
    if targets.is_empty() {
        let all: Vec<Node> = edges.keys().cloned().collect();
        needed_order(edges, &all)
    } else {
        needed_order(edges, targets)
    }
}

/// `*` (within a name), `?`, and `**` (any number of directories) as a regex.
fn glob_regex(glob: &str) -> regex::Regex {
    let mut re = String::from("^");
    let mut rest = glob;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("**/") {
            re.push_str("(?:.*/)?");
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix("**") {
            re.push_str(".*");
            rest = after;
            continue;
        }
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            other => re.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
        }
        rest = &rest[c.len_utf8()..];
    }
    re.push('$');
    regex::Regex::new(&re).expect("a glob makes a valid regex")
}

fn is_glob(path: &str) -> bool {
    path.contains(['*', '?'])
}

impl Cx<'_> {
    pub(super) fn plan_steps(
        &mut self,
        file: &BuildFile,
        bases: &BTreeMap<&str, (&lang::BaseDecl, Option<Arc<OpenedImage>>)>,
    ) -> BTreeMap<String, StepPlan> {
        for cycle in cycles(&graph(file)) {
            let path: Vec<String> =
                cycle.iter().map(|(n, _)| n.to_string()).chain(std::iter::once(cycle[0].0.to_string())).collect();
            let mut d = Diagnostic::error(Code::Cycle, format!("a cycle: {}", path.join(" → ")))
                .at(cycle[0].1, format!("{} needs {}", cycle[0].0, path[1]));
            for (i, (node, span)) in cycle.iter().enumerate().skip(1) {
                d = d.also_at(*span, format!("{node} needs {}", path[i + 1]));
            }
            self.error(d.help(
                "a step cannot need its own outputs, nor an image be built from itself, through other steps and images",
            ));
        }
        let mut out = BTreeMap::new();
        let mut walked: Option<Walked> = None;
        for decl in &file.steps {
            if let Some(plan) = self.plan_step(file, decl, bases, &mut walked) {
                out.insert(plan.name.clone(), plan);
            }
        }
        out
    }

    fn plan_step(
        &mut self,
        file: &BuildFile,
        decl: &StepDecl,
        bases: &BTreeMap<&str, (&lang::BaseDecl, Option<Arc<OpenedImage>>)>,
        walked: &mut Option<Walked>,
    ) -> Option<StepPlan> {
        let name = decl.name.value.clone();
        let image_name = decl.image.as_ref()?;
        let image = match bases.get(image_name.value.as_str()) {
            Some((_, None)) => return None, // already reported
            Some((base_decl, Some(opened))) => StepImage::Base {
                name: image_name.value.clone(),
                image: opened.clone(),
                span: image_name.span,
                declared: base_decl.name.span,
            },
            None if file.images.iter().any(|i| i.name.value == image_name.value) => {
                StepImage::Image { name: image_name.value.clone(), span: image_name.span }
            }
            None => {
                let mut known: Vec<&str> = bases.keys().copied().collect();
                known.extend(file.images.iter().map(|i| i.name.value.as_str()));
                let mut d =
                    Diagnostic::error(Code::UnknownImage, format!("no base or image is named `{}`", image_name.value))
                        .at(image_name.span, "not a base or an image of this file");
                d.help = Some(match lang::parse::did_you_mean(&image_name.value, &known) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "a step runs in a `base` or an `image` of the build file".into(),
                });
                self.error(d);
                return None;
            }
        };
        let mut files: Vec<(String, PathBuf, Option<FileStat>)> = Vec::new();
        let mut from_steps = Vec::new();
        let mut packages = Vec::new();
        let mut ok = true;
        for input in &decl.inputs {
            match input {
                StepInput::Files(pattern) => ok &= self.step_files(pattern, &mut files, walked),
                StepInput::Download { name, to } => ok &= self.step_download(name, to.as_ref(), &mut files),
                StepInput::Archive { name, to } => ok &= self.step_archive(name, to.as_ref(), &mut files),
                StepInput::Packages { name, to } => {
                    if self.package_set(name).is_some() {
                        let dir = to.as_ref().map_or(name.value.as_str(), |t| t.value.as_str());
                        packages
                            .push((name.value.clone(), dir.trim_start_matches("./").trim_end_matches('/').to_string()));
                    } else {
                        ok = false;
                    }
                }
                StepInput::Step { step, paths } => match file.steps.iter().find(|s| s.name.value == step.value) {
                    None => {
                        let known: Vec<&str> = file.steps.iter().map(|s| s.name.value.as_str()).collect();
                        let mut d = Diagnostic::error(Code::UnknownStep, format!("no step is named `{}`", step.value))
                            .at(step.span, "not a step of this file");
                        d.help = lang::parse::did_you_mean(&step.value, &known).map(|s| format!("did you mean `{s}`?"));
                        self.error(d);
                        ok = false;
                    }
                    Some(other) => {
                        for p in paths {
                            if !covered_by_outputs(&p.value, other.outputs.iter().map(|o| o.value.as_str())) {
                                self.error(
                                    Diagnostic::error(
                                        Code::UnknownOutput,
                                        format!("step `{}` declares no output `{}`", step.value, p.value),
                                    )
                                    .at(p.span, "not among its outputs"),
                                );
                                ok = false;
                            }
                        }
                        from_steps.push((step.value.clone(), paths.iter().map(|p| p.value.clone()).collect()));
                    }
                },
            }
        }
        if decl.outputs.is_empty() {
            self.error(
                Diagnostic::error(Code::MissingNode, format!("step `{name}` declares no outputs"))
                    .at(decl.name.span, "no `outputs`")
                    .help("add `outputs \"PATH\"…`: what the step makes, relative to its work directory"),
            );
            ok = false;
        }
        let run: Vec<Vec<String>> = decl.run.iter().map(|r| r.value.clone()).collect();
        if !ok || run.is_empty() {
            return None;
        }
        let mut env = Vec::new();
        for (k, v) in &decl.env {
            super::set_env(&mut env, &k.value, &v.value);
        }
        Some(StepPlan {
            name,
            image,
            platform: decl.platform.as_ref().map(|p| p.value.clone()),
            build_platform: decl.build_platform.as_ref().map(|p| p.value.clone()),
            span: decl.name.span,
            files,
            from_steps,
            packages,
            run,
            outputs: decl.outputs.iter().map(|o| o.value.clone()).collect(),
            env,
            workdir: decl.workdir.as_ref().map_or_else(|| DEFAULT_WORKDIR.to_string(), |w| w.value.clone()),
        })
    }

    /// Every run of a step that the build may need: one for each platform that needs
    /// the step (that of an image copying its outputs, or of a run taking them), or
    /// its one `platform`. A step that nothing needs runs once, for its `platform` or
    /// `default`. Also the graph of runs and images that `pinfold build` walks.
    pub(super) fn plan_runs(
        &mut self,
        images: &[super::ImagePlan],
        steps: &BTreeMap<String, StepPlan>,
        default: &Platform,
    ) -> (BTreeMap<StepId, StepRun>, BuildGraph) {
        let mut graph: BuildGraph = BTreeMap::new();
        let mut wanted: Vec<StepId> = Vec::new();
        for image in images {
            let deps = graph.entry(BuildNode::Image(image.name.clone())).or_default();
            let copies = image.targets.iter().flat_map(|t| t.layers.iter().map(move |l| (&t.platform, l)));
            for (platform, layer) in copies {
                for entry in &layer.pending {
                    let EntryDecl::Copy { step: Some(name), .. } = entry else { continue };
                    let Some(step) = steps.get(&name.value) else { continue };
                    let id = StepId { name: name.value.clone(), platform: step.target_for(platform) };
                    add_edge(deps, BuildNode::Step(id.clone()));
                    wanted.push(id);
                }
            }
        }
        // Steps that no other step takes outputs from seed first, so that a step whose
        // only user fixes a platform does not also run for the default.
        let taken: BTreeSet<&str> = steps.values().flat_map(|s| s.from_steps.iter().map(|(n, _)| n.as_str())).collect();
        let mut seeds = steps
            .values()
            .filter(|s| !taken.contains(s.name.as_str()))
            .chain(steps.values().filter(|s| taken.contains(s.name.as_str())));
        let mut tried: BTreeSet<StepId> = BTreeSet::new();
        let mut runs: BTreeMap<StepId, StepRun> = BTreeMap::new();
        loop {
            while let Some(id) = wanted.pop() {
                if !tried.insert(id.clone()) {
                    continue;
                }
                let Some(step) = steps.get(&id.name) else { continue };
                let runs_on = step.build_platform.clone().unwrap_or_else(|| id.platform.clone());
                let Some(image) = self.run_image(step, &runs_on, images) else { continue };
                let from_steps: Vec<(StepId, Vec<String>)> = step
                    .from_steps
                    .iter()
                    .filter_map(|(other, paths)| {
                        let upstream = steps.get(other)?;
                        Some((
                            StepId { name: other.clone(), platform: upstream.target_for(&id.platform) },
                            paths.clone(),
                        ))
                    })
                    .collect();
                let deps = graph.entry(BuildNode::Step(id.clone())).or_default();
                if let RunImage::Image(name) = &image {
                    add_edge(deps, BuildNode::Image(name.clone()));
                }
                for (upstream, _) in &from_steps {
                    add_edge(deps, BuildNode::Step(upstream.clone()));
                    wanted.push(upstream.clone());
                }
                let package_files = self.step_package_files(step, &id.platform);
                runs.insert(
                    id.clone(),
                    StepRun { id, runs_on, image, from_steps, label: String::new(), package_files },
                );
            }
            match seeds.find(|s| !tried.iter().any(|id| id.name == s.name)) {
                Some(s) => wanted.push(StepId { name: s.name.clone(), platform: s.target_for(default) }),
                None => break,
            }
        }
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for id in runs.keys() {
            *count.entry(id.name.as_str()).or_default() += 1;
        }
        let labels: Vec<String> = runs
            .keys()
            .map(|id| {
                if count[id.name.as_str()] > 1 || id.platform.to_string() != DEFAULT_PLATFORM {
                    format!("{} ({})", id.name, id.platform)
                } else {
                    id.name.clone()
                }
            })
            .collect();
        for (run, label) in runs.values_mut().zip(labels) {
            run.label = label;
        }
        (runs, graph)
    }

    /// The image a run of `step` on `platform` runs in, or an error when the step's
    /// base or image has nothing for that platform.
    fn run_image(&mut self, step: &StepPlan, platform: &Platform, images: &[super::ImagePlan]) -> Option<RunImage> {
        match &step.image {
            StepImage::Base { name, image, span, declared } => {
                match image.manifests.iter().position(|m| {
                    m.platform.as_ref().is_some_and(|p| pinfold_image::oci::read::platforms_match(p, platform))
                }) {
                    Some(manifest) => {
                        Some(RunImage::Base(BaseImage { name: name.clone(), image: image.clone(), manifest }))
                    }
                    None => {
                        self.error(
                            Diagnostic::error(
                                Code::BasePlatform,
                                format!(
                                    "base `{name}` has no image for {platform}, which step `{}` runs on",
                                    step.name
                                ),
                            )
                            .at(*span, format!("base has {}", image.platforms_text()))
                            .also_at(*declared, "declared here")
                            .help(
                                "a step runs for each platform that needs it; give it `platform` or \
                                 `build-platform` to run it on one the base has",
                            ),
                        );
                        None
                    }
                }
            }
            StepImage::Image { name, span } => {
                let built = images.iter().find(|i| &i.name == name).map(|i| &i.targets);
                if built.is_some_and(|targets| targets.iter().any(|t| &t.platform == platform)) {
                    return Some(RunImage::Image(name.clone()));
                }
                let have: Vec<String> = built.into_iter().flatten().map(|t| t.platform.to_string()).collect();
                self.error(
                    Diagnostic::error(
                        Code::BasePlatform,
                        format!("image `{name}` is not built for {platform}, which step `{}` runs on", step.name),
                    )
                    .at(
                        *span,
                        format!("built for {}", if have.is_empty() { "no platform".into() } else { have.join(", ") }),
                    )
                    .help(
                        "add the platform to the image's `platforms`, or give the step `build-platform` to run it \
                         on one the image has",
                    ),
                );
                None
            }
        }
    }

    /// The repository files of one `inputs` path or glob, with the metadata the walk
    /// read (so that a no-op build stats each file once).
    fn step_files(
        &mut self,
        pattern: &lang::Spanned<String>,
        files: &mut Vec<(String, PathBuf, Option<FileStat>)>,
        walked: &mut Option<Walked>,
    ) -> bool {
        let mut found: Vec<(String, Option<FileStat>)> = Vec::new();
        let unreadable = |e: &str| {
            Diagnostic::error(Code::Unreadable, format!("cannot read the files of `{}`: {e}", pattern.value))
                .at(pattern.span, "a step input")
        };
        if is_glob(&pattern.value) {
            let all = walked.get_or_insert_with(|| {
                pinfold_image::walk::regular_files(self.root, SKIPPED_DIRS).map_err(|e| e.to_string())
            });
            let all = match all {
                Ok(all) => all,
                Err(e) => {
                    let d = unreadable(e);
                    self.error(d);
                    return false;
                }
            };
            let re = glob_regex(pattern.value.trim_start_matches("./"));
            found.extend(all.iter().filter(|(f, _)| re.is_match(f)).map(|(f, stat)| (f.clone(), Some(*stat))));
        } else {
            let rel = pattern.value.trim_start_matches("./").trim_end_matches('/');
            let path = self.root.join(rel);
            // A symlinked directory on the way (`vendor -> /etc`) would lead out of the
            // repository. Below this path nothing is followed: walks do not follow links
            // and keep only regular files, so one check of the path itself suffices.
            if path.exists() && !path.canonicalize().is_ok_and(|real| real.starts_with(self.root)) {
                self.error(
                    Diagnostic::error(
                        Code::PathEscape,
                        format!("`{}` resolves outside the build file's directory", pattern.value),
                    )
                    .at(pattern.span, "a symlink on this path leads out of the repository"),
                );
                return false;
            }
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => match pinfold_image::walk::regular_files(&path, SKIPPED_DIRS) {
                    Ok(below) => found.extend(below.into_iter().map(|(f, stat)| (format!("{rel}/{f}"), Some(stat)))),
                    Err(e) => {
                        let d = unreadable(&e.to_string());
                        self.error(d);
                        return false;
                    }
                },
                Ok(m) if m.is_file() => found.push((rel.to_string(), Some(FileStat::from_metadata(&m)))),
                Ok(_) => {
                    self.error(
                        Diagnostic::error(Code::SpecialFile, format!("`{}` is not a regular file", pattern.value))
                            .at(pattern.span, "a step input")
                            .help("step inputs are regular files, or directories of them"),
                    );
                    return false;
                }
                Err(_) => {}
            }
        }
        if found.is_empty() {
            self.error(
                Diagnostic::error(Code::PathMissing, format!("`{}` matches no file", pattern.value))
                    .at(pattern.span, "no file below the build file matches"),
            );
            return false;
        }
        // Kept sorted by path, each once, without a map: a directory input may hold
        // 100,000 files, and each walk comes sorted already.
        let sorted = files.is_empty();
        files.extend(found.into_iter().map(|(rel, stat)| {
            let path = self.root.join(&rel);
            (rel, path, stat)
        }));
        if !sorted {
            files.sort_by(|a, b| a.0.cmp(&b.0));
            files.dedup_by(|a, b| a.0 == b.0);
        }
        true
    }
}

impl Cx<'_> {
    /// `inputs download=NAME [to=PATH]`: the download's one file (the same for every
    /// platform: a step's inputs do not vary by platform) at PATH, by default the URL's
    /// last segment, in the work directory.
    fn step_download(
        &mut self,
        name: &lang::Spanned<String>,
        to: Option<&lang::Spanned<String>>,
        files: &mut Vec<(String, PathBuf, Option<FileStat>)>,
    ) -> bool {
        if self.inputs.failed.contains(&name.value) {
            return false; // already reported
        }
        let Some(sources) = self.inputs.downloads.get(&name.value) else {
            let d = super::inputs::unknown_input("download", name, self.inputs.downloads.keys());
            self.error(d);
            return false;
        };
        let [(None, file_name, stored)] = sources.as_slice() else {
            self.error(
                Diagnostic::error(Code::InputPlatform, format!("download `{}` has a file per platform", name.value))
                    .at(name.span, "a step input")
                    .help("a step's inputs are the same for every platform: give the step a download with one `url`"),
            );
            return false;
        };
        let path = to.map_or_else(
            || if file_name.is_empty() { name.value.clone() } else { file_name.clone() },
            |t| t.value.trim_start_matches("./").to_string(),
        );
        let stat = std::fs::metadata(stored).ok().map(|m| FileStat::from_metadata(&m));
        self.insert_inputs(files, vec![(path, stored.clone(), stat)], name)
    }

    /// `inputs archive=NAME [to=DIR]`: the archive's regular files below DIR, by
    /// default the archive's name, in the work directory.
    fn step_archive(
        &mut self,
        name: &lang::Spanned<String>,
        to: Option<&lang::Spanned<String>>,
        files: &mut Vec<(String, PathBuf, Option<FileStat>)>,
    ) -> bool {
        if self.inputs.failed.contains(&name.value) {
            return false; // already reported
        }
        let Some(dir) = self.inputs.archives.get(&name.value).cloned() else {
            let d = super::inputs::unknown_input("archive", name, self.inputs.archives.keys());
            self.error(d);
            return false;
        };
        let below =
            to.map_or_else(|| name.value.clone(), |t| t.value.trim_start_matches("./").trim_end_matches('/').into());
        match pinfold_image::walk::regular_files(&dir, &[]) {
            Ok(found) => {
                let prefix = if below.is_empty() || below == "." { String::new() } else { format!("{below}/") };
                let found = found.into_iter().map(|(f, stat)| (format!("{prefix}{f}"), dir.join(&f), Some(stat)));
                self.insert_inputs(files, found.collect(), name)
            }
            Err(e) => {
                self.error(
                    Diagnostic::error(Code::Archive, format!("archive `{}`: cannot read its files: {e}", name.value))
                        .at(name.span, "a step input"),
                );
                false
            }
        }
    }
}

impl Cx<'_> {
    /// Adds `more` to the sorted `files`, keeping them sorted by path. Two inputs at one
    /// path are an error at `name` (a download or archive): neither silently wins.
    fn insert_inputs(
        &mut self,
        files: &mut Vec<(String, PathBuf, Option<FileStat>)>,
        more: Vec<(String, PathBuf, Option<FileStat>)>,
        name: &lang::Spanned<String>,
    ) -> bool {
        files.extend(more);
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let clash = files.windows(2).find(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1).map(|w| w[0].0.clone());
        files.dedup_by(|a, b| a.0 == b.0);
        if let Some(path) = clash {
            self.error(
                Diagnostic::error(Code::PathConflict, format!("two inputs of the step are at `{path}`"))
                    .at(name.span, "puts a file there too")
                    .help("give this input another place with `to=`"),
            );
            return false;
        }
        true
    }
}

/// The regular files of the build file's directory (for globs), walked once per plan.
type Walked = Result<Vec<(String, FileStat)>, String>;

/// Whether `path` is one of `outputs` or below one of them.
pub fn covered_by_outputs<'o>(path: &str, mut outputs: impl Iterator<Item = &'o str>) -> bool {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    outputs.any(|o| {
        let o = o.trim_start_matches("./").trim_end_matches('/');
        path == o || path.strip_prefix(o).is_some_and(|rest| rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_and_across_directories() {
        let re = glob_regex("src/*.c");
        assert!(re.is_match("src/main.c"));
        assert!(!re.is_match("src/lib/x.c"));
        let re = glob_regex("**/*.txt");
        assert!(re.is_match("a.txt") && re.is_match("a/b/c.txt"));
        assert!(!re.is_match("a.txt.bak"));
        assert!(glob_regex("data/file?.in").is_match("data/file1.in"));
        assert!(!glob_regex("a+b").is_match("aab"));
    }

    #[test]
    fn outputs_cover_paths_below_them() {
        assert!(covered_by_outputs("out/a.txt", ["out"].into_iter()));
        assert!(covered_by_outputs("out", ["out/"].into_iter()));
        assert!(!covered_by_outputs("outside", ["out"].into_iter()));
    }

    #[test]
    fn a_cycle_is_found_once_with_its_path() {
        let span = SourceSpan::from(0..1);
        let mut edges = BTreeMap::new();
        edges.insert(Node::Step("a".into()), vec![(Node::Step("b".into()), span)]);
        edges.insert(Node::Step("b".into()), vec![(Node::Image("i".into()), span)]);
        edges.insert(Node::Image("i".into()), vec![(Node::Step("a".into()), span)]);
        edges.insert(Node::Step("c".into()), vec![(Node::Step("a".into()), span)]);
        let found = cycles(&edges);
        assert_eq!(found.len(), 1);
        let names: Vec<String> = found[0].iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names, ["step `a`", "step `b`", "image `i`"]);
        let order = needed_order(&edges, &[Node::Step("c".into())]);
        assert_eq!(order.last(), Some(&Node::Step("c".into())));
    }
}
