//! `pinfold build`: plan → layers (cached, in parallel) → assembled images → outputs.
//! This is the one place where the stages meet; each stage lives in its own module.

use crate::cache::{layer_key, Cache, FileHashes, LayerKey};
use crate::diag::{Diagnostic, Diagnostics};
use crate::digest::Digest;
use crate::layer::{self, LayerBlob};
use crate::oci::assemble::{assemble_image, AssembledImage};
use crate::oci::output::{self, OutputError};
use crate::oci::reference::ImageRef;
use crate::plan::{self, LayerPlan, Plan, PlanInput};
use rayon::prelude::*;
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
    pub registry_cache: Option<crate::registry::RegistryCache>,
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
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("the cache at {path}: {source}")]
    Cache { path: PathBuf, source: std::io::Error },
}

/// The lock file beside a build file.
pub fn lock_path(build_file: &Path) -> PathBuf {
    build_file.with_file_name(crate::lock::LOCK_FILE)
}

/// Plans the build file (with the lock beside it), or returns every diagnostic of it.
pub fn load_plan(request: &BuildRequest, cache: &Cache) -> Result<(Plan, Diagnostics), BuildError> {
    let mut diags = Diagnostics::default();
    let mut input = request.plan_input.clone();
    if input.lock.is_none() {
        match crate::lock::Lock::read(&lock_path(&request.file)) {
            Ok(lock) => input.lock = lock,
            Err(e) => {
                diags.push(
                    Diagnostic::error("pinfold::lock", e.to_string())
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
    let (plan, mut warnings) = load_plan(request, &cache)?;
    let selected = select_images(&plan, &request.names)?;
    if request.output.is_some() && selected.len() != 1 {
        return Err(BuildError::Usage(format!(
            "-o names one output, and {} images are to be built; name one image (`pinfold build NAME -o …`)",
            selected.len()
        )));
    }
    for image in &selected {
        if image.targets.is_empty() {
            return Err(BuildError::Usage(format!(
                "image `{}` is built for none of the platforms given with --platform",
                image.name
            )));
        }
    }
    let hashes = FileHashes::load(&cache);

    // Every layer of every selected image and platform, keyed by content: a layer
    // that is the same on two platforms (or in two images) is built once.
    let layer_plans: Vec<&LayerPlan> = selected.iter().flat_map(|i| &i.targets).flat_map(|t| &t.layers).collect();
    let keys: Vec<LayerKey> = layer_plans
        .par_iter()
        .map(|l| layer_key(&l.tree, l.compression, plan.epoch, &hashes))
        .collect::<Result<_, _>>()
        .map_err(|e| BuildError::Layer(format!("cannot read a source file: {e}")))?;
    let mut unique: BTreeMap<LayerKey, &LayerPlan> = BTreeMap::new();
    for (key, l) in keys.iter().zip(&layer_plans) {
        unique.entry(*key).or_insert(l);
    }
    let mut stats = BuildStats::default();
    let mut done: BTreeMap<LayerKey, (LayerBlob, PathBuf)> = BTreeMap::new();
    let mut todo: Vec<(LayerKey, &LayerPlan)> = Vec::new();
    for (key, l) in unique {
        match cache.lookup_layer(&key) {
            Some(hit) => {
                stats.layers_cached += 1;
                done.insert(key, hit);
            }
            None => todo.push((key, l)),
        }
    }
    // What the local cache lacks may be in the shared cache of a registry.
    let mut shared_warnings = Vec::new();
    if let Some(remote) = request.registry_cache.as_ref().filter(|_| !request.no_cache) {
        let (hits, left) = crate::registry::cache::fetch_missing(remote, &cache, todo, &mut shared_warnings);
        stats.layers_cached += hits.len();
        done.extend(hits);
        todo = left;
    }
    stats.layers_built = todo.len();
    let built: Vec<(LayerKey, (LayerBlob, PathBuf))> = todo
        .par_iter()
        .map(|(key, l)| build_layer(&cache, key, l, plan.epoch).map(|b| (*key, b)))
        .collect::<Result<_, _>>()?;
    if let Some(remote) = &request.registry_cache {
        crate::registry::cache::store_built(remote, &built, &mut shared_warnings);
    }
    for w in shared_warnings {
        warnings.push(Diagnostic::warning("pinfold::shared-cache", w));
    }
    done.extend(built);
    let _ = hashes.save();

    let mut images = Vec::new();
    let mut key_iter = keys.iter();
    for image in &selected {
        let mut targets = Vec::new();
        for target in &image.targets {
            let layers: Vec<(LayerBlob, PathBuf)> =
                target.layers.iter().map(|_| done[key_iter.next().expect("one key per layer")].clone()).collect();
            targets.push((target, layers));
        }
        let annotations = if image.targets.len() > 1 { image.targets[0].annotations.clone() } else { BTreeMap::new() };
        let assembled = assemble_image(&image.name, &targets, plan.epoch, &annotations);
        let out = match &request.output {
            Some(o) => o.clone(),
            None => ImageRef::Layout { dir: request.out_root.join(&image.name), reference: None },
        };
        output::write(&assembled, &out, plan.epoch)?;
        images.push(report_image(&assembled, &out));
    }
    Ok(BuildReport { images, epoch: plan.epoch, epoch_origin: plan.epoch_origin, stats, warnings })
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
                let hint = match crate::lang::parse::did_you_mean(n, &known) {
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

/// Renders a build error for stderr.
pub fn render_error(error: &BuildError) -> String {
    match error {
        BuildError::Invalid(diags) => diags.render_for_stderr(),
        other => {
            let mut d = Diagnostics::default();
            d.push(Diagnostic::error("pinfold::build", other.to_string()));
            d.render_for_stderr()
        }
    }
}

/// The default output root: `pinfold-out` in the current directory.
pub fn default_out_root() -> PathBuf {
    Path::new("pinfold-out").to_path_buf()
}
