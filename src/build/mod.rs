//! `pinfold build`: plan → layers (cached, in parallel) → assembled images → outputs.
//! This is the one place where the stages meet; each stage lives in its own module.

use crate::cache::{layer_key, Cache, FileHashes, LayerKey};
use crate::plan::steps::{self, BuildNode, RunImage, StepId, StepRun};
use crate::plan::{self, LayerPlan, Plan, PlanInput};
use crate::progress::{LayerOutcome, Progress, ProgressMode, StepLog, StepOutcome};
use pinfold_image::digest::Digest;
use pinfold_image::layer::{self, LayerBlob};
use pinfold_image::oci::assemble::{assemble_image, AssembledImage, TargetSpec};
use pinfold_image::oci::output::OutputError;
use pinfold_image::oci::reference::ImageRef;
use pinfold_lang::diag::Code;
use pinfold_lang::diag::{Diagnostic, Diagnostics};
pub mod step;

use crate::build::step::{run_step, Done, StepContext};
use pinfold_sandbox::PreparedImage;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub file: PathBuf,
    /// Images to build; all when empty.
    pub names: Vec<String>,
    /// `-o`: only with one image.
    pub output: Option<ImageRef>,
    pub plan_input: PlanInput,
    /// The cache directory; `None` takes [`Cache::default_dir`].
    pub cache_dir: Option<PathBuf>,
    pub no_cache: bool,
    /// Where `oci:pinfold-out/NAME` outputs go by default.
    pub out_root: PathBuf,
    /// `--cache docker://HOST/REPO`: the shared layer cache in a registry.
    pub registry_cache: Option<crate::cache::remote::RegistryCache>,
    /// How much the build says of its steps (`--quiet`, `--verbose`).
    pub step_log: StepLog,
    /// `--progress`: bars or lines.
    pub progress: ProgressMode,
}

impl BuildRequest {
    /// A build of `names` (all when empty) of `file`, with the environment's
    /// `SOURCE_DATE_EPOCH`, the default cache and outputs in `pinfold-out/NAME`: what
    /// `pinfold build NAME…` does without flags. Callers change fields from here.
    pub fn new(file: &Path, names: &[String]) -> Self {
        BuildRequest {
            file: file.to_path_buf(),
            names: names.to_vec(),
            plan_input: PlanInput::from_env(),
            out_root: default_out_root(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltImage {
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    pub output: String,
    pub platforms: Vec<BuiltPlatform>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltPlatform {
    pub platform: String,
    pub manifest: Digest,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BuildStats {
    /// Layers written (tar and compression ran).
    pub layers_built: usize,
    /// Layers found in the cache.
    pub layers_cached: usize,
    /// Steps whose command ran.
    pub steps_run: usize,
    /// Steps whose outputs were found in the cache.
    pub steps_cached: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildReport {
    pub images: Vec<BuiltImage>,
    pub epoch: u64,
    pub epoch_origin: plan::EpochOrigin,
    pub stats: BuildStats,
    #[serde(skip)]
    pub warnings: Diagnostics,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The build file has errors; every one of them is here.
    #[error("the build file has errors")]
    Invalid(Diagnostics),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Layer(String),
    /// A step failed; the message names it and holds its output. The warnings of the
    /// cache so far come with it: there is no report to carry them.
    #[error("{message}")]
    Step { message: String, cache_warnings: Vec<String> },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("the cache at {path}: {source}")]
    Cache { path: PathBuf, source: std::io::Error },
}

/// The lock file beside a build file.
pub fn lock_path(build_file: &Path) -> PathBuf {
    build_file.with_file_name(pinfold_lang::lock::LOCK_FILE)
}

/// Plans the build file (with the lock beside it), or returns every diagnostic of it.
pub fn load_plan(request: &BuildRequest, cache: &Cache) -> Result<(Plan, Diagnostics), BuildError> {
    let mut diags = Diagnostics::default();
    let mut input = request.plan_input.clone();
    input.only = request.names.clone();
    if input.lock.is_none() {
        match pinfold_lang::lock::Lock::read(&lock_path(&request.file)) {
            Ok(lock) => input.lock = lock,
            Err(e) => {
                diags.push(
                    Diagnostic::error(Code::Lock, e.to_string())
                        .help("fix or remove pinfold.lock, then run `pinfold lock`"),
                );
                return Err(BuildError::Invalid(diags));
            }
        }
    }
    match plan::load(&request.file, &input, Some(cache), &mut diags) {
        Some(plan) if !diags.has_errors() => Ok((plan, diags)),
        _ => Err(BuildError::Invalid(diags)),
    }
}

/// Opens the cache the request asks for.
pub fn open_cache(request: &BuildRequest) -> Result<Cache, BuildError> {
    match (&request.cache_dir, request.no_cache) {
        (_, true) => Cache::temporary(),
        (Some(dir), false) => Cache::open(dir),
        (None, false) => match Cache::default_dir() {
            Some(dir) => Cache::open(&dir),
            None => Cache::temporary(),
        },
    }
    .map_err(|source| BuildError::Cache { path: request.cache_dir.clone().unwrap_or_default(), source })
}

pub fn build(request: &BuildRequest) -> Result<BuildReport, BuildError> {
    let cache = open_cache(request)?;
    // The remembered fingerprints are read while the build file is planned: for a
    // repository of 100,000 files each takes a good part of a no-op build.
    let (planned, hashes) = std::thread::scope(|s| {
        let hashes = s.spawn(|| FileHashes::load(&cache));
        let planned = load_plan(request, &cache);
        (planned, hashes.join().unwrap_or_default())
    });
    let (plan, warnings) = planned?;
    let (selected, step_names) = select_work(request, &plan)?;
    let waves = waves(&plan, &selected, &step_names);

    // Dropped on every return, which clears the bars before an error is rendered.
    let progress = Progress::new(request.step_log, request.progress);
    progress.expect(waves.iter().flatten().filter(|n| matches!(n, BuildNode::Step(_))).count());
    let engine = std::sync::OnceLock::new();
    let cx = BuildCx {
        request,
        cache: &cache,
        plan: &plan,
        hashes: &hashes,
        selected: &selected,
        progress: &progress,
        engine: &engine,
    };
    let mut state = BuildState { warnings, ..BuildState::default() };
    for here in &waves {
        if let Err(failures) = run_steps(&cx, here, &mut state) {
            let _ = hashes.save();
            let cache_warnings = cache.take_warnings();
            return Err(BuildError::Step { message: failures.join("\n"), cache_warnings });
        }
        let images_here: Vec<&plan::ImagePlan> = here
            .iter()
            .filter_map(|n| match n {
                BuildNode::Image(i) => plan.images.iter().find(|p| &p.name == i),
                BuildNode::Step(_) => None,
            })
            .collect();
        if !images_here.is_empty() {
            let built = build_images(&cx, &images_here, &mut state)?;
            state.written.extend(built);
        }
    }
    let _ = hashes.save();
    let BuildState { stats, mut warnings, mut written, .. } = state;
    for w in cache.take_warnings() {
        warnings.push(Diagnostic::warning(Code::Cache, w));
    }
    let images = selected.iter().map(|i| written.remove(&i.name).expect("every selected image was built").0).collect();
    Ok(BuildReport { images, epoch: plan.epoch, epoch_origin: plan.epoch_origin, stats, warnings })
}

/// What one build shares between its waves: what was asked, where it is cached, and
/// where it reports.
struct BuildCx<'a> {
    request: &'a BuildRequest,
    cache: &'a Cache,
    plan: &'a Plan,
    hashes: &'a FileHashes,
    /// The images the request names (or all): these go to `-o` when it is given.
    selected: &'a [&'a plan::ImagePlan],
    progress: &'a Progress,
    /// The engine steps run in: chosen when the first step must run, once per build.
    engine: &'a std::sync::OnceLock<Result<pinfold_sandbox::Engine, String>>,
}

/// What the waves of a build have made so far.
#[derive(Default)]
struct BuildState {
    stats: BuildStats,
    warnings: Diagnostics,
    /// The directory holding the outputs of each run of a step that ran.
    step_outputs: BTreeMap<StepId, PathBuf>,
    /// The images written, by name.
    written: BTreeMap<String, Written>,
}

/// The images to build and the steps named on the command line. A name may be a step
/// (when no image has it): that step, and what it needs, run. With no name, every
/// image and every step.
fn select_work<'p>(
    request: &BuildRequest,
    plan: &'p Plan,
) -> Result<(Vec<&'p plan::ImagePlan>, Vec<String>), BuildError> {
    let (step_names, image_names): (Vec<String>, Vec<String>) = if request.names.is_empty() {
        (plan.steps.keys().cloned().collect(), Vec::new())
    } else {
        request
            .names
            .iter()
            .cloned()
            .partition(|n| plan.steps.contains_key(n) && !plan.images.iter().any(|i| &i.name == n))
    };
    let selected =
        if image_names.is_empty() && !step_names.is_empty() && (plan.images.is_empty() || !request.names.is_empty()) {
            Vec::new()
        } else {
            select_images(plan, &image_names)?
        };
    if request.output.is_some() && selected.len() != 1 {
        return Err(BuildError::Usage(format!(
            "-o names one output, and {} images are to be built; name one image (`pinfold build NAME -o …`)",
            selected.len()
        )));
    }
    if let Some(image) = selected.iter().find(|i| i.targets.is_empty()) {
        return Err(BuildError::Usage(format!(
            "image `{}` is built for none of the platforms given with --platform",
            image.name
        )));
    }
    Ok((selected, step_names))
}

/// What the selected images and named steps need (runs of steps, and images that
/// steps run in), in waves: a node's wave comes after those of everything it needs,
/// and the work of one wave runs in parallel. A step named on the command line runs
/// for every platform it has a run for.
fn waves(plan: &Plan, selected: &[&plan::ImagePlan], step_names: &[String]) -> Vec<Vec<BuildNode>> {
    let targets: Vec<BuildNode> = selected
        .iter()
        .map(|i| BuildNode::Image(i.name.clone()))
        .chain(plan.runs.keys().filter(|id| step_names.contains(&id.name)).map(|id| BuildNode::Step(id.clone())))
        .collect();
    let order = steps::needed_order(&plan.build_graph, &targets);
    let mut wave: BTreeMap<&BuildNode, usize> = BTreeMap::new();
    for node in &order {
        let deps = plan.build_graph.get(node).map(Vec::as_slice).unwrap_or_default();
        let w = deps.iter().filter_map(|(d, _)| wave.get(d)).map(|w| w + 1).max().unwrap_or(0);
        wave.insert(node, w);
    }
    let count = wave.values().copied().max().map_or(0, |w| w + 1);
    (0..count).map(|w| order.iter().filter(|n| wave[n] == w).cloned().collect()).collect()
}

/// Runs the steps of one wave, as many at once as `-j` (or the cores) allow, and
/// records their outputs. When any fails, the messages of all the failures.
fn run_steps(cx: &BuildCx, here: &[BuildNode], state: &mut BuildState) -> Result<(), Vec<String>> {
    let plan = cx.plan;
    let runs_here: Vec<&StepRun> = here
        .iter()
        .filter_map(|n| match n {
            BuildNode::Step(id) => plan.runs.get(id),
            BuildNode::Image(_) => None,
        })
        .collect();
    if runs_here.is_empty() {
        return Ok(());
    }
    let step_cx = StepContext { cache: cx.cache, hashes: cx.hashes, epoch: plan.epoch, engine: cx.engine };
    let (written, step_outputs) = (&state.written, &state.step_outputs);
    // In rayon's pool.
    let results: Vec<Result<Done, String>> = runs_here
        .par_iter()
        .map(|run| {
            cx.progress.step_started(&run.label);
            let step = &plan.steps[&run.id.name];
            let done = step_image(run, written, cx.cache)
                .and_then(|prepared| run_step(step, run, &prepared, step_outputs, &step_cx).map_err(|e| e.to_string()));
            match &done {
                Ok(done) => cx.progress.step_finished(&run.label, done.outcome, &done.log),
                Err(_) => cx.progress.step_failed(&run.label),
            }
            done
        })
        .collect();
    let mut failures = Vec::new();
    for (run, result) in runs_here.iter().zip(results) {
        match result {
            Ok(done) => {
                match done.outcome {
                    StepOutcome::Ran => state.stats.steps_run += 1,
                    StepOutcome::Cached => state.stats.steps_cached += 1,
                }
                state.step_outputs.insert(run.id.clone(), done.dir);
            }
            Err(message) => failures.push(message),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// An image written: what the report says of it, and where it went.
type Written = (BuiltImage, ImageRef);

/// The image a run of a step runs in, ready to run: a base, or an image built before
/// it, for the platform the run runs on.
fn step_image(run: &StepRun, written: &BTreeMap<String, Written>, cache: &Cache) -> Result<PreparedImage, String> {
    match &run.image {
        RunImage::Base(base) => Ok(PreparedImage::new(&base.name, &base.image, base.platform_image(), cache.root())),
        RunImage::Image(name) => {
            let (_, out) =
                written.get(name).ok_or_else(|| format!("step `{}`: image `{name}` was not built", run.label))?;
            let opened =
                crate::resolve::open_image(out).map_err(|e| format!("step `{}`: image `{name}`: {e}", run.label))?;
            let platform_image = pinfold_sandbox::select_platform(&opened, Some(&run.runs_on))
                .map_err(|e| format!("step `{}`: image `{name}`: {e}", run.label))?;
            Ok(PreparedImage::new(name, &opened, platform_image, cache.root()))
        }
    }
}

/// Builds `images` (their steps have run): layers from the cache or written anew, in
/// parallel, then each image assembled and written to its output.
fn build_images(
    cx: &BuildCx,
    images: &[&plan::ImagePlan],
    state: &mut BuildState,
) -> Result<Vec<(String, Written)>, BuildError> {
    let (layer_plans, keys) = layer_plans(cx, images, &state.step_outputs)?;
    let mut unique: BTreeMap<LayerKey, &LayerPlan> = BTreeMap::new();
    for (key, l) in keys.iter().zip(&layer_plans) {
        unique.entry(*key).or_insert(l);
    }
    let labels = crate::progress::layer_labels(images, &keys);
    let done = layers(cx, unique, &labels, state)?;
    let mut out_images = Vec::new();
    let mut key_iter = keys.iter();
    for image in images {
        let targets: Vec<(TargetSpec, Vec<(LayerBlob, PathBuf)>)> = image
            .targets
            .iter()
            .map(|target| {
                let layers =
                    target.layers.iter().map(|_| done[key_iter.next().expect("one key per layer")].clone()).collect();
                (target.spec(), layers)
            })
            .collect();
        let written = write_image(cx, image, &targets)?;
        out_images.push((image.name.clone(), written));
    }
    Ok(out_images)
}

/// Every layer of every image and platform, with its key: a layer that is the same
/// on two platforms (or in two images) has one key, and is built once. Layers that
/// copy step outputs get them now.
fn layer_plans<'i>(
    cx: &BuildCx,
    images: &[&'i plan::ImagePlan],
    step_outputs: &BTreeMap<StepId, PathBuf>,
) -> Result<(Vec<Cow<'i, LayerPlan>>, Vec<LayerKey>), BuildError> {
    let mut layer_plans: Vec<Cow<LayerPlan>> = Vec::new();
    for (t, l) in images.iter().flat_map(|i| &i.targets).flat_map(|t| t.layers.iter().map(move |l| (t, l))) {
        if l.pending.is_empty() {
            layer_plans.push(Cow::Borrowed(l));
        } else {
            let tree = plan::apply_step_copies(cx.plan, l, &t.platform, step_outputs).map_err(BuildError::Invalid)?;
            layer_plans.push(Cow::Owned(LayerPlan { tree, pending: Vec::new(), ..l.clone() }));
        }
    }
    let keys: Vec<LayerKey> = layer_plans
        .par_iter()
        .map(|l| layer_key(&l.tree, l.compression, cx.plan.epoch, cx.hashes))
        .collect::<Result<_, _>>()
        .map_err(|e| BuildError::Layer(format!("cannot read a source file: {e}")))?;
    Ok((layer_plans, keys))
}

/// The blob of every layer of `unique`: from the local cache, the shared cache of a
/// registry, or written anew (in parallel, and then shared).
fn layers(
    cx: &BuildCx,
    unique: BTreeMap<LayerKey, &LayerPlan>,
    labels: &BTreeMap<LayerKey, String>,
    state: &mut BuildState,
) -> Result<BTreeMap<LayerKey, (LayerBlob, PathBuf)>, BuildError> {
    let (request, cache, progress) = (cx.request, cx.cache, cx.progress);
    let label = |key: &LayerKey| labels.get(key).map_or("", String::as_str);
    progress.expect(unique.len());
    let mut done: BTreeMap<LayerKey, (LayerBlob, PathBuf)> = BTreeMap::new();
    let mut todo: Vec<(LayerKey, &LayerPlan)> = Vec::new();
    for (key, l) in unique {
        match cache.lookup_layer(&key) {
            Some(hit) => {
                state.stats.layers_cached += 1;
                progress.layer_finished(label(&key), LayerOutcome::Cached);
                done.insert(key, hit);
            }
            None => todo.push((key, l)),
        }
    }
    // What the local cache lacks may be in the shared cache of a registry.
    let mut shared_warnings = Vec::new();
    if let Some(remote) = request.registry_cache.as_ref().filter(|_| !request.no_cache) {
        let (hits, left) = crate::cache::remote::fetch_missing(remote, cache, todo, &mut shared_warnings);
        state.stats.layers_cached += hits.len();
        hits.iter().for_each(|(key, _)| progress.layer_finished(label(key), LayerOutcome::Cached));
        done.extend(hits);
        todo = left;
    }
    state.stats.layers_built += todo.len();
    let built: Vec<(LayerKey, (LayerBlob, PathBuf))> = todo
        .par_iter()
        .map(|(key, l)| {
            progress.layer_started(label(key));
            let built = build_layer(cache, key, l, cx.plan.epoch);
            match &built {
                Ok(_) => progress.layer_finished(label(key), LayerOutcome::Built),
                Err(_) => progress.layer_failed(label(key)),
            }
            built.map(|b| (*key, b))
        })
        .collect::<Result<_, _>>()?;
    if let Some(remote) = &request.registry_cache {
        crate::cache::remote::store_built(remote, &built, &mut shared_warnings);
    }
    for w in shared_warnings {
        state.warnings.push(Diagnostic::warning(Code::SharedCache, w));
    }
    done.extend(built);
    Ok(done)
}

/// Assembles `image` from the layers of each of its targets and writes it: to `-o`
/// when the image is the one selected, else to `pinfold-out/NAME`.
fn write_image(
    cx: &BuildCx,
    image: &plan::ImagePlan,
    targets: &[(TargetSpec, Vec<(LayerBlob, PathBuf)>)],
) -> Result<Written, BuildError> {
    let annotations = if image.targets.len() > 1 { image.targets[0].annotations.clone() } else { BTreeMap::new() };
    let assembled = assemble_image(&image.name, targets, cx.plan.epoch, &annotations);
    let is_selected = cx.selected.iter().any(|s| s.name == image.name);
    let out = match &cx.request.output {
        Some(o) if is_selected => o.clone(),
        _ => ImageRef::Layout { dir: cx.request.out_root.join(&image.name), reference: None },
    };
    cx.progress.suspend(|| crate::resolve::write_output(&assembled, &out, cx.plan.epoch))?;
    Ok((report_image(&assembled, &out), out))
}

fn report_image(image: &AssembledImage, out: &ImageRef) -> BuiltImage {
    BuiltImage {
        name: image.name.clone(),
        digest: image.top.digest,
        media_type: image.top.media_type.clone(),
        output: out.to_string(),
        platforms: image
            .manifests
            .iter()
            .map(|m| BuiltPlatform { platform: m.platform.to_string(), manifest: m.digest })
            .collect(),
    }
}

fn select_images<'p>(plan: &'p Plan, names: &[String]) -> Result<Vec<&'p plan::ImagePlan>, BuildError> {
    if names.is_empty() {
        if plan.images.is_empty() {
            return Err(BuildError::Usage("the build file declares no image".into()));
        }
        return Ok(plan.images.iter().collect());
    }
    let known: Vec<&str> = plan.images.iter().map(|i| i.name.as_str()).collect();
    names
        .iter()
        .map(|n| {
            plan.images.iter().find(|i| &i.name == n).ok_or_else(|| {
                let hint = match pinfold_lang::parse::did_you_mean(n, &known) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => format!(" (images: {})", known.join(", ")),
                };
                BuildError::Usage(format!("the build file has no image `{n}`{hint}"))
            })
        })
        .collect()
}

fn build_layer(cache: &Cache, key: &LayerKey, l: &LayerPlan, epoch: u64) -> Result<(LayerBlob, PathBuf), BuildError> {
    let cache_err = |source| BuildError::Cache { path: cache.root().to_path_buf(), source };
    let tmp = cache.blob_tempfile().map_err(cache_err)?;
    let out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    let (blob, out) = layer::write_layer(&l.tree, epoch, l.compression, out)
        .map_err(|e| BuildError::Layer(format!("layer `{}`: {e}", l.name)))?;
    out.into_inner().map_err(|e| cache_err(e.into_error()))?;
    let path = cache.commit_blob(tmp, &blob.digest).map_err(cache_err)?;
    cache.store_layer(key, &blob).map_err(cache_err)?;
    Ok((blob, path))
}

/// Renders a build error for stderr, after the warnings that came with it.
pub fn render_error(error: &BuildError) -> String {
    match error {
        BuildError::Invalid(diags) => diags.render_for_stderr(),
        BuildError::Step { message, cache_warnings } => {
            let mut d = Diagnostics::default();
            d.push(Diagnostic::error(Code::Step, message.clone()));
            let warnings: String = cache_warnings.iter().map(|w| format!("pinfold: warning: {w}\n")).collect();
            warnings + &d.render_for_stderr()
        }
        other => {
            let mut d = Diagnostics::default();
            d.push(Diagnostic::error(Code::Build, other.to_string()));
            d.render_for_stderr()
        }
    }
}

/// The default output root: `pinfold-out` in the current directory.
pub fn default_out_root() -> PathBuf {
    Path::new("pinfold-out").to_path_buf()
}
