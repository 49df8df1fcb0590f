//! The validated build plan: names resolved, files found, bases opened and checked
//! against their digests, every layer's tree made for every platform. What reaches
//! [`pinfold_image::layer`] and [`pinfold_image::oci`] from here has no error left in it.

pub mod copy;
pub mod epoch;
pub mod inputs;
mod packages;
pub mod steps;

use crate::cache::Cache;
use crate::input::FetchOptions;
use pinfold_image::layer::{Compression, EntryKind, FileSource, LayerEntry, LayerTree};
pub use pinfold_image::oci::assemble::set_env;
use pinfold_image::oci::assemble::{BaseSpec, ConfigSpec, TargetSpec};
use pinfold_image::oci::read::OpenedImage;
use pinfold_image::oci::reference::ImageRef;
use pinfold_lang::diag::Code;
use pinfold_lang::diag::{Diagnostic, Diagnostics, Source};
use pinfold_lang::lock::Lock;
use pinfold_lang::{self as lang, BaseSource, BuildFile, ConfigDecl, EntryDecl, FromDecl, Platform, Spanned};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use epoch::EpochOrigin;

/// The platform an image is built for when neither the image nor the file names one.
/// It is fixed, not the host's: the same build file gives the same output on an arm64
/// laptop and an amd64 CI runner.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

#[derive(Debug)]
pub struct Plan {
    /// The directory of the build file: every source path is relative to it.
    pub root: PathBuf,
    pub epoch: u64,
    pub epoch_origin: EpochOrigin,
    pub images: Vec<ImagePlan>,
    /// Every input as it was resolved, in the form of the lock file.
    pub resolved: Lock,
    /// The steps of the build file, by name.
    pub steps: BTreeMap<String, steps::StepPlan>,
    /// Every run of a step the build may need, one per step and target platform.
    pub runs: BTreeMap<steps::StepId, steps::StepRun>,
    /// What each image and run needs first (acyclic once planned).
    pub build_graph: steps::BuildGraph,
    /// The build file's text, for diagnostics of later stages.
    pub source: Source,
}

#[derive(Debug)]
pub struct ImagePlan {
    pub name: String,
    pub targets: Vec<TargetPlan>,
}

/// One image for one platform.
#[derive(Debug)]
pub struct TargetPlan {
    pub platform: Platform,
    pub base: Option<BaseImage>,
    pub layers: Vec<LayerPlan>,
    pub config: ConfigPlan,
    pub annotations: BTreeMap<String, String>,
}

/// A base image, opened and checked against its pinned digest.
#[derive(Debug, Clone)]
pub struct BaseImage {
    pub name: String,
    pub image: Arc<OpenedImage>,
    /// Which of `image.manifests` serves this target's platform.
    pub manifest: usize,
}

impl BaseImage {
    pub fn platform_image(&self) -> &pinfold_image::oci::read::PlatformImage {
        &self.image.manifests[self.manifest]
    }
}

impl TargetPlan {
    /// What the image crate needs of this target to assemble its config and manifest.
    pub fn spec(&self) -> TargetSpec<'_> {
        TargetSpec {
            platform: &self.platform,
            base: self.base.as_ref().map(|b| BaseSpec {
                name: &b.name,
                image: &b.image,
                platform_image: b.platform_image(),
            }),
            config: &self.config,
            layer_names: self.layers.iter().map(|l| l.name.as_str()).collect(),
            annotations: &self.annotations,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LayerPlan {
    pub name: String,
    pub tree: LayerTree,
    pub compression: Compression,
    /// `copy step=…` entries: added to `tree` by [`apply_step_copies`] once the steps
    /// have run.
    pub pending: Vec<EntryDecl>,
}

/// The config nodes of an image with its platform's override applied.
pub type ConfigPlan = ConfigSpec;

/// Applies an image's (or a platform override's) config nodes, later ones winning.
fn apply_config(config: &mut ConfigPlan, decl: &ConfigDecl) {
    for (key, value) in &decl.env {
        set_env(&mut config.env, &key.value, &value.value);
    }
    if let Some(e) = &decl.entrypoint {
        config.entrypoint = Some(e.value.clone());
    }
    if let Some(c) = &decl.cmd {
        config.cmd = Some(c.value.clone());
    }
    if let Some(w) = &decl.workdir {
        config.workdir = Some(w.value.clone());
    }
    if let Some(u) = &decl.user {
        config.user = Some(u.value.clone());
    }
    for (k, v) in &decl.labels {
        config.labels.insert(k.value.clone(), v.value.clone());
    }
    for p in &decl.expose {
        if !config.expose.contains(&p.value) {
            config.expose.push(p.value.clone());
        }
    }
    for v in &decl.volumes {
        if !config.volumes.contains(&v.value) {
            config.volumes.push(v.value.clone());
        }
    }
    if let Some(s) = &decl.stop_signal {
        config.stop_signal = Some(s.value.clone());
    }
}

impl PlanInput {
    /// The plan's input with the environment's `SOURCE_DATE_EPOCH` and nothing else.
    pub fn from_env() -> Self {
        PlanInput { source_date_epoch: crate::env::source_date_epoch(), ..Default::default() }
    }
}

/// What the plan reads from outside the build file.
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// `SOURCE_DATE_EPOCH` from the environment.
    pub source_date_epoch: Option<String>,
    /// `--platform` on the command line: narrows every image's platforms.
    pub only_platforms: Vec<Platform>,
    /// Compression from the command line, over the build file's.
    pub compression: Option<Compression>,
    pub fetch: FetchOptions,
    /// `pinfold.lock` beside the build file, when there is one.
    pub lock: Option<Lock>,
    /// `--locked`: every input must be pinned, by the build file or a current lock.
    pub locked: bool,
    /// The images and steps a build was asked for (`pinfold build NAME…`): only what
    /// they need is planned. Empty: everything.
    pub only: Vec<String>,
    /// `pinfold lock`: the package sets are being resolved (into `lock`), so `install`
    /// entries make no tree.
    pub lock_only: bool,
}

/// Parses and plans a build file; every problem of both stages goes into `diags`.
pub fn load(path: &Path, input: &PlanInput, cache: Option<&Cache>, diags: &mut Diagnostics) -> Option<Plan> {
    let source = lang::read_build_file(path, diags)?;
    let file = lang::parse(&source, diags)?;
    let planned = plan_in_dir(path, &file, &source, input, cache, diags).map(|mut plan| {
        plan.resolved.build_file = pinfold_lang::lock::build_file_checksum(&source.text).unwrap_or_default();
        plan
    });
    // Shown in the order of the file, whichever stage found them.
    diags.0.sort_by_key(|d| d.span.map_or(usize::MAX, |s| s.offset()));
    planned
}

fn plan_in_dir(
    path: &Path,
    file: &BuildFile,
    source: &Source,
    input: &PlanInput,
    cache: Option<&Cache>,
    diags: &mut Diagnostics,
) -> Option<Plan> {
    let root = match path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).canonicalize() {
        Ok(root) => root,
        Err(e) => {
            diags.push(Diagnostic::error(Code::Unreadable, format!("cannot resolve the build file's directory: {e}")));
            return None;
        }
    };
    if input.locked {
        check_lock(input.lock.as_ref(), &source.text, diags);
    }
    plan(file, source, &root, input, cache, diags)
}

/// Under `--locked`, a lock must exist and belong to this build file.
fn check_lock(lock: Option<&Lock>, text: &str, diags: &mut Diagnostics) {
    match lock {
        None => diags.push(
            Diagnostic::error(Code::Lock, "--locked, and there is no pinfold.lock beside the build file")
                .help("run `pinfold lock` and commit pinfold.lock"),
        ),
        Some(lock) if Some(&lock.build_file) != pinfold_lang::lock::build_file_checksum(text).as_ref() => diags.push(
            Diagnostic::error(
                Code::Lock,
                "--locked, and pinfold.lock is stale: the build file changed since it was written",
            )
            .help("run `pinfold lock` to resolve the build file again, and commit pinfold.lock"),
        ),
        Some(_) => {}
    }
}

/// Plans a parsed build file whose sources are relative to `root`.
pub fn plan(
    file: &BuildFile,
    source: &Source,
    root: &Path,
    input: &PlanInput,
    cache: Option<&Cache>,
    diags: &mut Diagnostics,
) -> Option<Plan> {
    let narrowed = steps::narrowed_to(file, &input.only);
    let file = narrowed.as_ref().unwrap_or(file);
    let mut cx = Cx::new(source, root, diags);
    cx.lock = input.lock.clone();
    cx.locked = input.locked;
    cx.fetch = input.fetch.clone();
    cx.resolved = Lock { version: pinfold_lang::lock::LOCK_VERSION, ..Default::default() };
    cx.step_outputs = file
        .steps
        .iter()
        .map(|s| (s.name.value.clone(), s.outputs.iter().map(|o| o.value.clone()).collect()))
        .collect();
    cx.packages = packages::PackageSet::of(file);
    cx.cache_root = cache.map(|c| c.root().to_path_buf());
    cx.lock_only = input.lock_only;
    let (epoch, epoch_origin) = cx.epoch(file, input);
    let wanted = wanted_platforms(file, input);
    let bases: Bases =
        file.bases.iter().map(|b| (b.name.value.as_str(), (b, cx.open_base(b, cache, &wanted)))).collect();
    cx.inputs = cx.resolve_inputs(file, cache);
    let file_compression = file.compression.as_ref().and_then(|c| c.value.parse::<Compression>().ok());
    let images: Vec<ImagePlan> =
        file.images.iter().map(|decl| cx.plan_image(file, decl, input, &bases, file_compression)).collect();
    let steps = cx.plan_steps(file, &bases);
    // A step that nothing needs runs for the first platform of `--platform`, if given.
    let default_platform = match input.only_platforms.first() {
        Some(p) => p.clone(),
        None => default_platform(),
    };
    let (runs, build_graph) = cx.plan_runs(&images, &steps, &default_platform);
    if cx.diags.has_errors() {
        return None;
    }
    let resolved = std::mem::take(&mut cx.resolved);
    Some(Plan {
        root: root.to_path_buf(),
        epoch,
        epoch_origin,
        images,
        resolved,
        steps,
        runs,
        build_graph,
        source: source.clone(),
    })
}

/// The bases of a build file by name, each opened unless it could not be (and was
/// reported).
type Bases<'f> = BTreeMap<&'f str, (&'f lang::BaseDecl, Option<Arc<OpenedImage>>)>;

fn default_platform() -> Platform {
    DEFAULT_PLATFORM.parse().expect("the default platform parses")
}

/// The platforms `decl` declares (or the file does), in their order.
fn declared_platforms(file: &BuildFile, decl: &lang::ImageDecl) -> Vec<Platform> {
    match decl.platforms.as_ref().or(file.platforms.as_ref()) {
        Some(list) => list.value.iter().map(|p| p.value.clone()).collect(),
        None => vec![default_platform()],
    }
}

/// Of the platforms `decl` declares, those it is built for after `--platform`.
fn selected_platforms(file: &BuildFile, decl: &lang::ImageDecl, input: &PlanInput) -> Vec<Platform> {
    let narrowed = !input.only_platforms.is_empty() && !runs_steps(file, &decl.name.value);
    declared_platforms(file, decl).into_iter().filter(|p| !narrowed || input.only_platforms.contains(p)).collect()
}

/// Whether a step runs in the image `name`. `--platform` does not narrow such an
/// image: the runs of its steps need the platforms they run on.
fn runs_steps(file: &BuildFile, name: &str) -> bool {
    file.steps.iter().any(|s| s.image.as_ref().is_some_and(|i| i.value == name))
        && !file.bases.iter().any(|b| b.name.value == name)
}

/// The platforms some image of the file is built for (after `--platform`): a base in
/// a registry fetches the manifests of these only.
/// Every platform an image of the file is built for (as narrowed by `--platform`).
pub fn wanted_platforms(file: &BuildFile, input: &PlanInput) -> Vec<Platform> {
    let mut wanted: Vec<Platform> = Vec::new();
    for decl in &file.images {
        for p in selected_platforms(file, decl, input) {
            if !wanted.contains(&p) {
                wanted.push(p);
            }
        }
    }
    wanted
}

struct Cx<'a> {
    source: &'a Source,
    root: &'a Path,
    diags: &'a mut Diagnostics,
    lock: Option<Lock>,
    locked: bool,
    fetch: FetchOptions,
    /// What was resolved so far, for `pinfold lock`.
    resolved: Lock,
    inputs: inputs::ResolvedInputs,
    /// The platform of the layer [`Cx::layer_tree`] is making, for the entries that
    /// read it (a download's file for that platform); `None` outside of it.
    platform: Option<Platform>,
    /// The declared outputs of each step.
    step_outputs: BTreeMap<String, Vec<String>>,
    /// The package sets of the build file, by name (`install NAME` reads them).
    packages: BTreeMap<String, packages::PackageSet>,
    /// The cache whose store holds what package sets fetch.
    cache_root: Option<PathBuf>,
    /// `pinfold lock`: package sets are being resolved, not installed.
    lock_only: bool,
}

impl<'a> Cx<'a> {
    /// A walk over files below `root` with nothing locked, resolved or declared yet.
    fn new(source: &'a Source, root: &'a Path, diags: &'a mut Diagnostics) -> Self {
        Cx {
            source,
            root,
            diags,
            lock: None,
            locked: false,
            fetch: FetchOptions::default(),
            resolved: Lock::default(),
            inputs: inputs::ResolvedInputs::default(),
            platform: None,
            step_outputs: BTreeMap::new(),
            packages: BTreeMap::new(),
            cache_root: None,
            lock_only: false,
        }
    }
}

impl Cx<'_> {
    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d.in_source(self.source));
    }

    /// The file's `epoch`, else `SOURCE_DATE_EPOCH` or the repository's last commit.
    fn epoch(&mut self, file: &BuildFile, input: &PlanInput) -> (u64, EpochOrigin) {
        match &file.epoch {
            Some(e) => (e.value, EpochOrigin::BuildFile),
            None => match epoch::resolve(self.root, input.source_date_epoch.as_deref()) {
                Ok(found) => found,
                Err(message) => {
                    self.diags.push(Diagnostic::error(Code::Epoch, message));
                    (0, EpochOrigin::Zero)
                }
            },
        }
    }

    /// One image: a target for each platform it is built for.
    fn plan_image(
        &mut self,
        file: &BuildFile,
        decl: &lang::ImageDecl,
        input: &PlanInput,
        bases: &Bases,
        file_compression: Option<Compression>,
    ) -> ImagePlan {
        self.check_overrides(decl, &declared_platforms(file, decl));
        let compression = input
            .compression
            .or_else(|| decl.compression.as_ref().and_then(|c| c.value.parse().ok()))
            .or(file_compression)
            .unwrap_or_default();
        let targets = selected_platforms(file, decl, input)
            .into_iter()
            .map(|platform| self.plan_target(file, decl, platform, bases, compression))
            .collect();
        ImagePlan { name: decl.name.value.clone(), targets }
    }

    /// A `platform "…" { … }` block must name a platform the image is built for.
    fn check_overrides(&mut self, decl: &lang::ImageDecl, platforms: &[Platform]) {
        for o in &decl.overrides {
            if !platforms.contains(&o.platform.value) {
                let known: Vec<String> = platforms.iter().map(|p| p.to_string()).collect();
                self.error(
                    Diagnostic::error(
                        Code::UnusedPlatformBlock,
                        format!("image `{}` is not built for {}", decl.name.value, o.platform.value),
                    )
                    .at(o.platform.span, "this block would never apply")
                    .help(format!(
                        "the image is built for {}; add the platform to `platforms`, or remove the block",
                        known.join(", ")
                    )),
                );
            }
        }
    }

    /// One image for one platform: its base, its config and its layers, with the
    /// platform's block applied. An image `from` another image of the file starts
    /// where that one ends: its base, its layers and its config, then its own.
    fn plan_target(
        &mut self,
        file: &BuildFile,
        decl: &lang::ImageDecl,
        platform: Platform,
        bases: &Bases,
        compression: Compression,
    ) -> TargetPlan {
        let chain = self.image_chain(file, decl, bases, &platform);
        // The base is that of the first image of the chain. When the walk stopped at an
        // error (already reported), that one is still `from` an image: no base then.
        let from_image = chain[0].from.as_ref().is_some_and(|f| {
            matches!(&f.value, FromDecl::Base(n) if !bases.contains_key(n.as_str())
                && file.images.iter().any(|i| &i.name.value == n))
        });
        let base = if from_image { None } else { self.target_base(chain[0], &platform, bases) };
        let mut config = ConfigPlan::default();
        let mut layer_decls: Vec<(String, Vec<&EntryDecl>)> = Vec::new();
        for image in chain {
            apply_config(&mut config, &image.config);
            let mut own: Vec<(String, Vec<&EntryDecl>)> =
                image.layers.iter().map(|l| (l.name.value.clone(), l.entries.iter().collect())).collect();
            for o in image.overrides.iter().filter(|o| o.platform.value == platform) {
                apply_config(&mut config, &o.config);
                for l in &o.layers {
                    match own.iter_mut().find(|(n, _)| *n == l.name.value) {
                        Some((_, entries)) => entries.extend(l.entries.iter()),
                        None => own.push((l.name.value.clone(), l.entries.iter().collect())),
                    }
                }
            }
            layer_decls.extend(own);
        }
        let layers = layer_decls
            .into_iter()
            .map(|(name, entries)| {
                let (tree, pending) = self.layer_tree(&platform, &entries);
                LayerPlan { name, tree, compression, pending }
            })
            .collect();
        let annotations = decl.config.annotations.iter().map(|(k, v)| (k.value.clone(), v.value.clone())).collect();
        TargetPlan { platform, base, layers, config, annotations }
    }

    /// The images `decl` is built on, oldest first, ending with `decl`: it and, while
    /// `from` names an image of the file (not a base), that image. A cycle, or a
    /// parent not built for `platform`, is reported; the chain then stops there.
    fn image_chain<'f>(
        &mut self,
        file: &'f BuildFile,
        decl: &'f lang::ImageDecl,
        bases: &Bases,
        platform: &Platform,
    ) -> Vec<&'f lang::ImageDecl> {
        let mut chain = vec![decl];
        let mut current = decl;
        while let Some((FromDecl::Base(name), span)) = current.from.as_ref().map(|f| (&f.value, f.span)) {
            if bases.contains_key(name.as_str()) {
                break;
            }
            let Some(parent) = file.images.iter().find(|i| &i.name.value == name) else { break };
            if chain.iter().any(|c| c.name.value == parent.name.value) {
                break; // a cycle, which the graph of the build file reports
            }
            if !declared_platforms(file, parent).contains(platform) {
                self.error(
                    Diagnostic::error(
                        Code::BasePlatform,
                        format!(
                            "image `{name}` is not built for {platform}, which image `{}` is built for",
                            current.name.value
                        ),
                    )
                    .at(span, "built from it")
                    .also_at(parent.name.span, "declared here")
                    .help("add the platform to the image it is built from, or narrow this image's platforms"),
                );
                break;
            }
            chain.push(parent);
            current = parent;
        }
        chain.reverse();
        chain
    }

    /// The base of `decl` for `platform`: the manifest of its base's index that serves
    /// the platform. `None` for `from scratch`, and for what is reported.
    fn target_base(&mut self, decl: &lang::ImageDecl, platform: &Platform, bases: &Bases) -> Option<BaseImage> {
        let (FromDecl::Base(name), span) = decl.from.as_ref().map(|f| (&f.value, f.span))? else { return None };
        match bases.get(name.as_str()) {
            None => {
                let names: Vec<&str> = bases.keys().copied().collect();
                let mut d = Diagnostic::error(Code::UnknownBase, format!("no base is named `{name}`"))
                    .at(span, "not a declared base");
                d.help = Some(match lang::parse::did_you_mean(name, &names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "declare it with `base NAME { … }`, or write `from scratch`".into(),
                });
                self.error(d);
                None
            }
            Some((_, None)) => None, // already reported
            Some((base_decl, Some(image))) => match image.manifests.iter().position(|m| {
                m.platform.as_ref().is_some_and(|p| pinfold_image::oci::read::platforms_match(p, platform))
            }) {
                Some(manifest) => Some(BaseImage { name: name.clone(), image: image.clone(), manifest }),
                None => {
                    self.error(
                        Diagnostic::error(
                            Code::BasePlatform,
                            format!(
                                "base `{name}` has no image for {platform}, which image `{}` is built for",
                                decl.name.value
                            ),
                        )
                        .at(span, format!("base has {}", image.platforms_text()))
                        .also_at(base_decl.name.span, "declared here")
                        .help("pin a base whose index has this platform, or narrow the image's platforms"),
                    );
                    None
                }
            },
        }
    }

    fn open_base(
        &mut self,
        decl: &lang::BaseDecl,
        cache: Option<&Cache>,
        platforms: &[Platform],
    ) -> Option<Arc<OpenedImage>> {
        let reference = decl.reference.as_ref().map(|r| r.value.clone());
        let (reference, location) = match decl.source.as_ref()? {
            BaseSource::Layout(p) => (ImageRef::Layout { dir: self.root.join(&p.value), reference }, p),
            BaseSource::OciArchive(p) => (ImageRef::OciArchive { file: self.root.join(&p.value), reference }, p),
            BaseSource::DockerArchive(p) => (ImageRef::DockerArchive { file: self.root.join(&p.value), reference }, p),
            BaseSource::Registry(r) => return self.open_registry_base(decl, r, cache, platforms),
        };
        if let Some(escape) = self.escapes_root(&location.value) {
            self.error(
                Diagnostic::error(
                    Code::PathEscape,
                    format!("`{}` is outside the build file's directory", location.value),
                )
                .at(location.span, escape),
            );
            return None;
        }
        let image = match crate::resolve::open_image(&reference) {
            Ok(image) => image,
            Err(e) => {
                self.error(
                    // Paths relative to the build file: the message is the same on every machine.
                    Diagnostic::error(
                        Code::BaseUnreadable,
                        format!(
                            "cannot open base `{}`: {}",
                            decl.name.value,
                            e.to_string().replace(&format!("{}/", self.root.display()), "")
                        ),
                    )
                    .at(location.span, "read from here"),
                );
                return None;
            }
        };
        let pinned = match decl.digest.as_ref() {
            None => self.check_locked_base(decl, &image, location),
            Some(digest) => self.check_pinned_base(decl, &image, digest, location),
        }?;
        self.resolved.bases.insert(decl.name.value.clone(), pinned.to_string());
        Some(Arc::new(image))
    }

    /// A local base without a `digest` node: it must match the lock's pin, if there is
    /// one, and is reported as unpinned if there is none. Its digest, unless reported.
    fn check_locked_base(
        &mut self,
        decl: &lang::BaseDecl,
        image: &OpenedImage,
        location: &Spanned<String>,
    ) -> Option<pinfold_image::digest::Digest> {
        let locked = self
            .lock
            .as_ref()
            .and_then(|l| l.bases.get(&decl.name.value))
            .and_then(|d| d.parse::<pinfold_image::digest::Digest>().ok());
        match locked {
            Some(pinned) if pinned != image.top.digest => {
                self.error(
                    Diagnostic::error(
                        Code::DigestMismatch,
                        format!(
                            "base `{}` does not match its digest in pinfold.lock: locked {pinned}, found {}",
                            decl.name.value, image.top.digest
                        ),
                    )
                    .at(location.span, format!("holds {}", image.top.digest))
                    .help("the image changed since it was locked: check where it came from, then `pinfold lock`"),
                );
                return None;
            }
            Some(_) => {}
            None => self.unpinned(
                format!("base `{}`", decl.name.value),
                decl.name.span,
                &format!("add `digest \"{}\"` to the base, or run `pinfold lock`", image.top.digest),
            ),
        }
        Some(image.top.digest)
    }

    /// A local base with a `digest` node must hold that digest. It, unless reported.
    fn check_pinned_base(
        &mut self,
        decl: &lang::BaseDecl,
        image: &OpenedImage,
        digest: &Spanned<String>,
        location: &Spanned<String>,
    ) -> Option<pinfold_image::digest::Digest> {
        // lang already reported a digest that does not parse.
        let Ok(pinned) = digest.value.parse::<pinfold_image::digest::Digest>() else { return None };
        if image.top.digest != pinned {
            self.error(
                Diagnostic::error(
                    Code::DigestMismatch,
                    format!(
                        "base `{}` does not match its pinned digest: pinned {pinned}, found {}",
                        decl.name.value, image.top.digest
                    ),
                )
                .at(digest.span, format!("pinned {pinned}"))
                .also_at(location.span, format!("holds {}", image.top.digest))
                .help("the image changed since it was pinned: check where it came from before updating the digest"),
            );
            return None;
        }
        Some(pinned)
    }

    /// A base in a registry, pulled by digest: the reference's `@sha256:…` or the
    /// `digest` node (they must agree), else the lock's pin. A tag alone is resolved
    /// through the registry (what `pinfold lock` does) and reported as unpinned.
    fn open_registry_base(
        &mut self,
        decl: &lang::BaseDecl,
        r: &Spanned<String>,
        cache: Option<&Cache>,
        platforms: &[Platform],
    ) -> Option<Arc<OpenedImage>> {
        let name = &decl.name.value;
        let reference = match pinfold_registry::Reference::parse(&r.value) {
            Ok(reference) => reference,
            Err(e) => {
                self.error(Diagnostic::error(Code::BadValue, e.to_string()).at(r.span, "not HOST/REPO[:TAG]@sha256:…"));
                return None;
            }
        };
        let declared = decl.digest.as_ref().and_then(|d| d.value.parse::<pinfold_image::digest::Digest>().ok());
        if let (Some(node), Some(inline), Some(span)) =
            (declared, reference.digest, decl.digest.as_ref().map(|d| d.span))
        {
            if node != inline {
                self.error(
                    Diagnostic::error(Code::ConflictingSource, format!("base `{name}` is pinned to two digests"))
                        .at(span, format!("pins {node}"))
                        .also_at(r.span, format!("pins {inline}"))
                        .help("keep one: the `@sha256:…` of the reference or the `digest` node"),
                );
                return None;
            }
        }
        let locked = self
            .lock
            .as_ref()
            .and_then(|l| l.bases.get(name))
            .and_then(|d| d.parse::<pinfold_image::digest::Digest>().ok());
        let pin = declared.or(reference.digest).or(locked);
        if let (Some(pin), Some(cache), Some(_)) = (pin, cache, self.fetch.mirror.as_ref()) {
            seed_from_mirror(cache, &self.fetch, pin);
        }
        let image = match pinfold_registry::open_base(
            crate::env::registries(),
            &reference,
            pin,
            cache.map(|c| c.store()).as_ref(),
            platforms,
            self.fetch.offline,
        ) {
            Ok(image) => image,
            Err(e) => {
                let code = match e {
                    pinfold_image::oci::read::ReadError::DigestMismatch { .. } => Code::DigestMismatch,
                    _ => Code::BaseUnreadable,
                };
                self.error(
                    Diagnostic::error(code, format!("cannot pull base `{name}`: {e}"))
                        .at(r.span, "pulled from here")
                        .help("check the reference and the credentials for the registry (docker login, DOCKER_CONFIG or --creds)"),
                );
                return None;
            }
        };
        if pin.is_none() {
            let help = format!("pin it as \"{}\", or run `pinfold lock`", reference.with_digest(image.top.digest));
            self.unpinned(format!("base `{name}` (a tag)"), r.span, &help);
        }
        self.resolved.bases.insert(name.clone(), image.top.digest.to_string());
        Some(Arc::new(image))
    }

    /// Why `relative` is not inside the root, if it is not (lexically: `..` or absolute).
    fn escapes_root(&self, relative: &str) -> Option<&'static str> {
        let p = Path::new(relative);
        if p.is_absolute() {
            return Some("an absolute path; paths are relative to the build file");
        }
        let mut depth: i64 = 0;
        for c in p.components() {
            match c {
                std::path::Component::ParentDir => depth -= 1,
                std::path::Component::Normal(_) => depth += 1,
                _ => {}
            }
            if depth < 0 {
                return Some("climbs out of the build file's directory");
            }
        }
        // A symlink on the way (or the path itself) must not lead out either.
        match self.root.join(p).canonicalize() {
            Ok(real) if !real.starts_with(self.root.canonicalize().as_deref().unwrap_or(self.root)) => {
                Some("a symlink on this path leads out of the build file's directory")
            }
            _ => None,
        }
    }

    /// The tree of a layer of `entries` for `platform`, and its `copy step=…` entries,
    /// which are added once the steps have run ([`apply_step_copies`]).
    fn layer_tree(&mut self, platform: &Platform, entries: &[&EntryDecl]) -> (LayerTree, Vec<EntryDecl>) {
        self.platform = Some(platform.clone());
        let mut tree = LayerTree::new();
        let mut pending = Vec::new();
        for entry in entries {
            let mut part = LayerTree::new();
            let ok = match entry {
                EntryDecl::Copy { step: Some(step), source, .. } => {
                    self.check_step_copy(step, source);
                    pending.push((*entry).clone());
                    continue;
                }
                EntryDecl::Copy { source, to, attrs, .. } => self.copy_entry(source, to, attrs, &mut part),
                EntryDecl::File { path, content, attrs, .. } => {
                    let bytes = content.value.as_bytes().to_vec();
                    let entry = LayerEntry {
                        kind: EntryKind::File { size: bytes.len() as u64, source: FileSource::Inline(bytes) },
                        mode: attrs.mode.as_ref().map_or(0o644, |m| m.value),
                        uid: attrs.uid.as_ref().map_or(0, |u| u.value),
                        gid: attrs.gid.as_ref().map_or(0, |g| g.value),
                    };
                    self.insert(&mut part, path, entry)
                }
                EntryDecl::Dir { path, attrs, .. } => {
                    let entry = LayerEntry {
                        kind: EntryKind::Dir,
                        mode: attrs.mode.as_ref().map_or(0o755, |m| m.value),
                        uid: attrs.uid.as_ref().map_or(0, |u| u.value),
                        gid: attrs.gid.as_ref().map_or(0, |g| g.value),
                    };
                    self.insert(&mut part, path, entry)
                }
                EntryDecl::Download { name, to, attrs, .. } => self.download_entry(name, to, attrs, &mut part),
                EntryDecl::Extract { name, to, attrs, .. } => self.extract_entry(name, to, attrs, &mut part),
                EntryDecl::Install { name, to, .. } => self.install_entry(platform, name, to.as_ref(), &mut part),
                EntryDecl::Symlink { path, target, attrs, .. } => {
                    let entry = LayerEntry {
                        kind: EntryKind::Symlink { target: target.value.clone() },
                        mode: 0o777,
                        uid: attrs.uid.as_ref().map_or(0, |u| u.value),
                        gid: attrs.gid.as_ref().map_or(0, |g| g.value),
                    };
                    self.insert(&mut part, path, entry)
                }
            };
            if !ok {
                continue;
            }
            if let Err(conflict) = tree.extend(part) {
                self.error(
                    Diagnostic::error(
                        Code::PathConflict,
                        format!("`/{}` is written twice in this layer", conflict.path),
                    )
                    .at(entry.span(), "writes it again")
                    .help("each path of a layer comes from one entry; put the other in a later layer to override it"),
                );
            }
        }
        self.platform = None;
        (tree, pending)
    }

    /// A `copy step=NAME "PATH"` must name a step and one of its outputs.
    fn check_step_copy(&mut self, step: &Spanned<String>, source: &Spanned<String>) {
        match self.step_outputs.get(&step.value) {
            None => {
                let known: Vec<&str> = self.step_outputs.keys().map(String::as_str).collect();
                let mut d = Diagnostic::error(Code::UnknownStep, format!("no step is named `{}`", step.value))
                    .at(step.span, "not a step of this file");
                d.help = lang::parse::did_you_mean(&step.value, &known).map(|s| format!("did you mean `{s}`?"));
                self.error(d);
            }
            Some(outputs) if !steps::covered_by_outputs(&source.value, outputs.iter().map(String::as_str)) => {
                self.error(
                    Diagnostic::error(
                        Code::UnknownOutput,
                        format!("step `{}` declares no output `{}`", step.value, source.value),
                    )
                    .at(source.span, "not among the step's outputs")
                    .help(format!("its outputs: {}", outputs.join(", "))),
                );
            }
            Some(_) => {}
        }
    }

    fn insert(&mut self, tree: &mut LayerTree, path: &Spanned<String>, entry: LayerEntry) -> bool {
        // lang already reported paths that do not normalize.
        let Some(normalized) = pinfold_image::layer::tree::normalize_image_path(&path.value) else { return false };
        if let Err(conflict) = tree.insert(normalized, entry) {
            self.error(
                Diagnostic::error(Code::PathConflict, format!("`/{}` is written twice in this layer", conflict.path))
                    .at(path.span, "written again here"),
            );
            return false;
        }
        true
    }
}

/// The tree of `layer` (of an image for `platform`) with its `copy step=…` entries
/// added, each read from the directory holding the outputs of its step's run for
/// that platform.
pub fn apply_step_copies(
    plan: &Plan,
    layer: &LayerPlan,
    platform: &Platform,
    outputs: &BTreeMap<steps::StepId, PathBuf>,
) -> Result<LayerTree, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut tree = layer.tree.clone();
    for entry in &layer.pending {
        let EntryDecl::Copy { step: Some(step), source, to, attrs, span } = entry else { continue };
        let id = plan
            .steps
            .get(&step.value)
            .map(|s| steps::StepId { name: step.value.clone(), platform: s.target_for(platform) });
        let Some(dir) = id.and_then(|id| outputs.get(&id)).map(|d| d.canonicalize().unwrap_or_else(|_| d.clone()))
        else {
            diags.push(
                Diagnostic::error(Code::Step, format!("step `{}` has not run", step.value))
                    .at(step.span, "used here")
                    .in_source(&plan.source),
            );
            continue;
        };
        let mut cx = Cx::new(&plan.source, &dir, &mut diags);
        let mut part = LayerTree::new();
        if cx.copy_entry(source, to, attrs, &mut part) {
            if let Err(conflict) = tree.extend(part) {
                cx.error(
                    Diagnostic::error(
                        Code::PathConflict,
                        format!("`/{}` is written twice in this layer", conflict.path),
                    )
                    .at(*span, "writes it again"),
                );
            }
        }
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(tree)
    }
}

/// Bound on a blob read as JSON to find the blobs below it (an index or a manifest).
const MAX_SEEDED_JSON: u64 = 4 << 20;

/// A registry base pinned by digest, read back from `--mirror DIR` (what `pinfold
/// vendor` wrote): its top object and every blob below it that DIR holds enter the
/// store, each hashed on the way in, so that the pull that follows finds them there and
/// asks the registry for nothing. What DIR lacks is left to the pull (and to
/// `--offline`'s error, which names it). The walk reads only small JSON objects and
/// visits each digest once.
fn seed_from_mirror(cache: &Cache, fetch: &crate::input::FetchOptions, top: pinfold_image::digest::Digest) {
    let local = crate::input::FetchOptions { offline: true, mirror: fetch.mirror.clone() };
    let mut queue = vec![top];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(digest) = queue.pop() {
        if !seen.insert(digest.to_string()) {
            continue;
        }
        let Ok((_, path)) = crate::input::fetch(&format!("pinfold-store:{digest}"), Some(digest), cache, &local) else {
            continue;
        };
        let small = std::fs::metadata(&path).is_ok_and(|m| m.len() <= MAX_SEEDED_JSON);
        let Some(value) = small
            .then(|| std::fs::read(&path).ok())
            .flatten()
            .filter(|b| b.first() == Some(&b'{'))
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            continue;
        };
        let below = value["manifests"]
            .as_array()
            .into_iter()
            .chain(value["layers"].as_array())
            .flatten()
            .chain(std::iter::once(&value["config"]));
        queue.extend(
            below.filter_map(|d| d["digest"].as_str()).filter_map(|d| d.parse::<pinfold_image::digest::Digest>().ok()),
        );
    }
}
