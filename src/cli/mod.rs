//! The command line of the contract (`spec/cli.md`): names,
//! flags, stdout and exit codes are binding, because CI scripts depend on them.
//! Exit codes: 0 success; 1 the answer is no (findings, failed tests, images differ);
//! 2 pinfold could not do its work.

mod diff;
mod import;
mod inspect;
mod lock;
mod names;
mod run;
mod test;
mod vendor;
mod verify;

use crate::build::{self, BuildError, BuildRequest};
use crate::plan::PlanInput;
use clap::{Parser, Subcommand};
use pinfold_image::layer::Compression;
use pinfold_image::oci::reference::ImageRef;
use pinfold_lang::Platform;
use std::path::PathBuf;

pub const EXIT_OK: i32 = 0;
pub const EXIT_NO: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

#[derive(Debug, Parser)]
#[command(name = "pinfold", version, about = "Bit-for-bit reproducible OCI images from a hash-pinned build file")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// How registries (`docker://`) are reached: only on the commands that reach one.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Registries")]
pub struct RegistryArgs {
    /// Credentials for every registry, before ~/.docker/config.json ($DOCKER_CONFIG).
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// A registry reached over plain HTTP, or HTTPS without certificate checks (repeatable;
    /// localhost and 127.0.0.1 need none).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}

impl RegistryArgs {
    /// Makes these the registry options of this process ([`crate::env`]); an exit code
    /// when `--creds` is malformed.
    pub fn configure(&self) -> Result<(), i32> {
        let creds = match self.creds.as_deref().map(pinfold_registry::auth::Credentials::parse_user_pass).transpose() {
            Ok(c) => c,
            Err(e) => return Err(usage_error(format!("--creds: {e}"))),
        };
        crate::env::configure_registries(pinfold_registry::Options {
            creds,
            insecure: self.insecure_registries.clone(),
            docker_config: pinfold_registry::default_docker_config(),
        });
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build images (all when none is named); prints `NAME DIGEST` per image.
    Build(BuildArgs),
    /// Show an image's index, manifests, config and layers.
    Inspect(InspectArgs),
    /// Translate a Dockerfile into a build file, saying what became of each instruction.
    Import(import::ImportArgs),
    /// Lint build files, Dockerfiles and dependency files for unpinned inputs.
    Lint(pinfold_lint::LintArgs),
    /// Resolve unpinned inputs and write pinfold.lock.
    Lock(LockArgs),
    /// Compare two images, from the index down to single files; exit 1 when they differ.
    Diff(diff::DiffArgs),
    /// Rebuild an image from its sources and compare it, bit for bit, with a published one.
    Verify(verify::VerifyArgs),
    /// Run an image in a sandbox, as `docker run` does; exits with the program's code.
    Run(run::RunArgs),
    /// Run the images' `test` blocks (or a container-structure-test config) on every platform.
    Test(test::TestArgs),
    /// Copy every pinned input of the lock (packages, downloads, archives, registry bases) into DIR, named by
    /// sha256 as --mirror DIR reads them, with an index; only adds files.
    Vendor(vendor::VendorArgs),
    /// Print the graph of steps and images (text, or Graphviz dot with --dot).
    Graph(GraphArgs),
    /// Manage the cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Remove the outputs of `pinfold build` (pinfold-out) in the current directory.
    Clean,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove the least recently used step outputs and layers until the cache's share of
    /// them fits --max-size; always removes leftovers of killed builds.
    Gc(CacheGcArgs),
    /// Read everything in the cache and check it against its digest or listing;
    /// removes what is wrong (exit 1 when anything was), so builds make it again.
    Verify(CacheVerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct CacheVerifyArgs {
    /// The cache directory (default: PINFOLD_CACHE_DIR, else ~/.cache/pinfold).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CacheGcArgs {
    /// The most that the cache may take (step outputs, layers, stored downloads and
    /// packages, unpacked trees): 10G, 500M, 4096 (bytes). The least recently used go first.
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Remove what was not used for this long: 30d, 12h, 90m.
    #[arg(long, value_name = "AGE")]
    pub max_age: Option<String>,
    /// The cache directory (default: PINFOLD_CACHE_DIR, else ~/.cache/pinfold).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Steps or images whose needs to show (default: all).
    pub names: Vec<String>,
    /// The build file.
    #[arg(short = 'f', long = "file", default_value = "pinfold.kdl")]
    pub file: PathBuf,
    /// Graphviz dot instead of text.
    #[arg(long)]
    pub dot: bool,
}

#[derive(Debug, clap::Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The build file.
    #[arg(short = 'f', long = "file", default_value = "pinfold.kdl")]
    pub file: PathBuf,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Also write a python set's lock as a PEP 751 pylock.toml (SET= may be left out when
    /// the build file has one python set); repeatable.
    #[arg(long, value_name = "[SET=]FILE")]
    pub pylock: Vec<String>,
}

/// How inputs from outside are fetched.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// Use only the store and --mirror: fetch nothing over the network.
    #[arg(long)]
    pub offline: bool,
    /// A directory of files named by their sha256 (hex), tried before any URL.
    #[arg(long)]
    pub mirror: Option<PathBuf>,
    /// The cache directory (default: $PINFOLD_CACHE_DIR, $XDG_CACHE_HOME/pinfold, ~/.cache/pinfold).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

impl InputArgs {
    pub fn fetch_options(&self) -> crate::input::FetchOptions {
        crate::input::FetchOptions { offline: self.offline, mirror: self.mirror.clone() }
    }
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Images to build (default: all).
    pub names: Vec<String>,
    /// The build file.
    #[arg(short = 'f', long = "file", default_value = "pinfold.kdl")]
    pub file: PathBuf,
    /// Output reference (only with one image): oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE[:REPO:TAG],
    /// docker://HOST/REPO[:TAG].
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// Write an -o archive over an existing file that is not an archive pinfold wrote.
    #[arg(long)]
    pub force: bool,
    /// Build only these platforms of each image (repeatable).
    #[arg(long = "platform")]
    pub platforms: Vec<String>,
    /// Layer compression over the build file's: gzip, gzip:LEVEL, zstd, zstd:LEVEL, none.
    #[arg(long)]
    pub compression: Option<String>,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Refuse to build unless pinfold.lock exists, is current, and every input is pinned.
    #[arg(long)]
    pub locked: bool,
    /// Build every layer anew, with a cache that is removed afterwards.
    #[arg(long)]
    pub no_cache: bool,
    /// One JSON document on stdout instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Print each step's output as it finishes.
    #[arg(short = 'v', long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print nothing about steps but their errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// How the build shows its work on stderr.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = crate::progress::ProgressMode::Auto)]
    pub progress: crate::progress::ProgressMode,
    /// Run at most N steps and layer builds at once (default: the number of cores).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Build each image N times (default 2) under perturbed conditions; exit 1 unless all digests agree.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "2")]
    pub check: Option<String>,
    /// Attach an in-toto SLSA provenance statement to each oci: output, as an OCI referrer.
    #[arg(long)]
    pub provenance: bool,
    /// Attach an SPDX 2.3 SBOM (packages, downloads, archives, bases) to each oci: output, as an OCI referrer.
    #[arg(long)]
    pub sbom: bool,
    /// A shared layer cache in a registry, docker://HOST/REPO: read before building a layer, written after.
    #[arg(long, value_name = "docker://HOST/REPO")]
    pub cache: Option<String>,
    /// How --cache is used: read (never written) or readwrite.
    #[arg(long, value_name = "MODE", default_value = "readwrite", value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<crate::cache::remote::CacheMode>()))]
    pub cache_mode: crate::cache::remote::CacheMode,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The image: oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE, docker://HOST/REPO[:TAG][@DIGEST], or the NAME of an image in the build file (built first).
    pub reference: String,
    /// The build file, for a NAME reference.
    #[arg(short = 'f', long = "file", default_value = "pinfold.kdl")]
    pub file: PathBuf,
    #[arg(long)]
    pub json: bool,
    /// Also list the Debian packages and Python distributions the image holds (read
    /// from its layers: dpkg's status file and *.dist-info/METADATA).
    #[arg(long)]
    pub packages: bool,
}

impl Command {
    /// The registry flags of the commands that can reach a registry.
    fn registry_args(&self) -> Option<&RegistryArgs> {
        match self {
            Command::Build(a) => Some(&a.registry),
            Command::Inspect(a) => Some(&a.registry),
            Command::Lock(a) => Some(&a.registry),
            Command::Diff(a) => Some(&a.registry),
            Command::Verify(a) => Some(&a.registry),
            Command::Run(a) => Some(&a.registry),
            Command::Test(a) => Some(&a.registry),
            Command::Vendor(a) => Some(&a.registry),
            _ => None,
        }
    }
}

/// Runs the command line; returns the exit code.
pub fn main() -> i32 {
    main_from(std::env::args_os())
}

/// Runs the command line `args` (the program's name first); returns the exit code.
/// The fuzz run (tests/fuzz.rs) calls it in-process: spawning the binary per input
/// made that campaign 100 times slower than the parsers it drives.
pub fn main_from<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => EXIT_OK,
                _ => EXIT_ERROR,
            };
        }
    };
    if let Some(registry) = cli.command.registry_args() {
        if let Err(code) = registry.configure() {
            return code;
        }
    }
    match cli.command {
        Command::Build(args) => run_build(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Import(args) => import::run(args),
        Command::Lint(args) => pinfold_lint::cli_main(args),
        Command::Lock(args) => lock::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Run(args) => run::run(args),
        Command::Test(args) => test::run(args),
        Command::Vendor(args) => vendor::run(args),
        Command::Graph(args) => run_graph(args),
        Command::Cache(CacheCommand::Gc(args)) => run_cache_gc(args),
        Command::Cache(CacheCommand::Verify(args)) => run_cache_verify(args),
        Command::Clean => run_clean(),
    }
}

/// The cache for `cache gc` and `cache verify`, locked against builds: what they
/// remove may be what a build just looked up. `None` (after a note) when there is no
/// cache; `Err` holds the exit code of a usage error, already reported.
fn open_cache_alone(dir: Option<PathBuf>) -> Result<Option<(PathBuf, crate::cache::Cache)>, i32> {
    let Some(dir) = dir.or_else(crate::cache::Cache::default_dir) else {
        return Err(usage_error("no cache directory: set PINFOLD_CACHE_DIR or HOME, or give --cache-dir"));
    };
    if !dir.is_dir() {
        eprintln!("pinfold: no cache at {}", dir.display());
        return Ok(None);
    }
    match crate::cache::Cache::open_with(&dir, crate::cache::CacheLock::Exclusive) {
        Ok(cache) => Ok(Some((dir, cache))),
        Err(e) => Err(usage_error(format!("the cache at {}: {e}", dir.display()))),
    }
}

fn run_cache_gc(args: CacheGcArgs) -> i32 {
    let max_size = match args.max_size.as_deref().map(crate::cache::gc::parse_size).transpose() {
        Ok(m) => m,
        Err(e) => return usage_error(format!("--max-size {e}")),
    };
    let max_age = match args.max_age.as_deref().map(crate::cache::gc::parse_age).transpose() {
        Ok(m) => m,
        Err(e) => return usage_error(format!("--max-age {e}")),
    };
    let (dir, cache) = match open_cache_alone(args.cache_dir) {
        Ok(Some(opened)) => opened,
        Ok(None) => return EXIT_OK,
        Err(code) => return code,
    };
    use crate::cache::gc::human_size;
    match crate::cache::gc::collect(&cache, crate::cache::gc::Limits { max_size, max_age }) {
        Ok(r) => {
            eprintln!(
                "pinfold: removed {} step output(s) and {} layer(s), {} stored input(s) and {} unpacked tree(s): {} freed, {} left",
                r.steps_removed,
                r.layers_removed,
                r.inputs_removed,
                r.trees_removed,
                human_size(r.bytes_freed),
                human_size(r.bytes_left)
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: cache gc in {}: {e}", dir.display());
            EXIT_ERROR
        }
    }
}

fn run_cache_verify(args: CacheVerifyArgs) -> i32 {
    let (dir, cache) = match open_cache_alone(args.cache_dir) {
        Ok(Some(opened)) => opened,
        Ok(None) => return EXIT_OK,
        Err(code) => return code,
    };
    match crate::cache::verify::verify(&cache) {
        Ok(r) => {
            for problem in &r.problems {
                eprintln!("pinfold: removed: {problem}");
            }
            eprintln!(
                "pinfold: checked {} blob(s) and {} step output(s): {} problem(s); {} layer entr(ies) removed",
                r.blobs_checked,
                r.steps_checked,
                r.problems.len(),
                r.layers_removed
            );
            if r.problems.is_empty() && r.layers_removed == 0 {
                EXIT_OK
            } else {
                EXIT_NO
            }
        }
        Err(e) => {
            eprintln!("error: cache verify in {}: {e}", dir.display());
            EXIT_ERROR
        }
    }
}

fn run_clean() -> i32 {
    let out = build::default_out_root();
    match std::fs::remove_dir_all(&out) {
        Ok(()) => {
            eprintln!("pinfold: removed {}", out.display());
            EXIT_OK
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => EXIT_OK,
        Err(e) => {
            eprintln!("error: cannot remove {}: {e}", out.display());
            EXIT_ERROR
        }
    }
}

/// `pinfold graph`: the build file parsed (not planned: nothing is read or fetched),
/// its graph checked for cycles, and printed.
fn run_graph(args: GraphArgs) -> i32 {
    use crate::plan::steps::{self, Node};
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => return usage_error(format!("cannot read the build file {}: {e}", args.file.display())),
    };
    let name = args.file.file_name().map_or_else(|| args.file.display().to_string(), |n| n.to_string_lossy().into());
    let source = pinfold_lang::diag::Source::new(name, text);
    let mut diags = pinfold_lang::diag::Diagnostics::default();
    let Some(file) = pinfold_lang::parse(&source, &mut diags) else {
        eprint!("{}", diags.render_for_stderr());
        return EXIT_ERROR;
    };
    let mut targets = Vec::new();
    for n in &args.names {
        if file.steps.iter().any(|s| &s.name.value == n) {
            targets.push(Node::Step(n.clone()));
        } else if file.images.iter().any(|i| &i.name.value == n) {
            targets.push(Node::Image(n.clone()));
        } else {
            return usage_error(format!("the build file has no step or image `{n}`"));
        }
    }
    let cycles = steps::cycles(&steps::graph(&file));
    if !cycles.is_empty() {
        for cycle in cycles {
            let path: Vec<String> = cycle.iter().map(|(n, _)| n.to_string()).collect();
            eprintln!("error: a cycle: {} → {}", path.join(" → "), path[0]);
        }
        return EXIT_ERROR;
    }
    if args.dot {
        print!("{}", steps::render_dot(&file, &targets));
    } else {
        print!("{}", steps::render_text(&file, &targets));
    }
    EXIT_OK
}

fn usage_error(message: impl std::fmt::Display) -> i32 {
    eprintln!("error: {message}");
    EXIT_ERROR
}

pub(crate) fn build_request(args: &BuildArgs) -> Result<BuildRequest, String> {
    let mut only_platforms = Vec::new();
    for p in &args.platforms {
        only_platforms.push(p.parse::<Platform>().map_err(|e| format!("--platform {p}: {e}"))?);
    }
    let compression = match &args.compression {
        Some(c) => Some(c.parse::<Compression>().map_err(|e| format!("--compression {c}: {e}"))?),
        None => None,
    };
    let output = match &args.output {
        Some(o) => Some(o.parse::<ImageRef>().map_err(|e| format!("-o {o}: {e}"))?),
        None => None,
    };
    if let Some(ImageRef::Name(n)) = &output {
        return Err(format!("-o {n}: an output is oci:DIR[:REF], oci-archive:FILE or docker-archive:FILE"));
    }
    // Before anything is built: an output never replaces what is not pinfold's.
    if let Some(target) = &output {
        pinfold_image::oci::output::check_target(target, args.force).map_err(|e| format!("-o: {e}"))?;
    }
    Ok(BuildRequest {
        file: args.file.clone(),
        names: args.names.clone(),
        output,
        plan_input: PlanInput {
            source_date_epoch: crate::env::source_date_epoch(),
            only_platforms,
            compression,
            fetch: args.inputs.fetch_options(),
            lock: None,
            locked: args.locked,
            // Filled in from `names` by the build.
            only: Vec::new(),
            lock_only: false,
        },
        cache_dir: args.inputs.cache_dir.clone(),
        no_cache: args.no_cache,
        out_root: build::default_out_root(),
        registry_cache: match &args.cache {
            Some(c) => Some(
                crate::cache::remote::RegistryCache::parse(c, args.cache_mode).map_err(|e| format!("--cache {e}"))?,
            ),
            None => None,
        },
        step_log: match (args.quiet, args.verbose) {
            (true, _) => crate::progress::StepLog::Quiet,
            (_, true) => crate::progress::StepLog::Verbose,
            _ => crate::progress::StepLog::Lines,
        },
        progress: args.progress,
    })
}

fn run_build(args: BuildArgs) -> i32 {
    if args.check.is_some() {
        return verify::run_check(args);
    }
    let request = match build_request(&args) {
        Ok(r) => r,
        Err(message) => return usage_error(message),
    };
    if let Some(jobs) = args.jobs {
        // The pool every parallel stage of the build runs in.
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(usize::from(jobs)).build_global() {
            return usage_error(format!("-j {jobs}: {e}"));
        }
    }
    if args.provenance || args.sbom {
        if let Err(message) = verify::provenance_preflight(&request) {
            return usage_error(
                message.replace("--provenance", if args.provenance { "--provenance" } else { "--sbom" }),
            );
        }
    }
    match build::build(&request) {
        Ok(report) => {
            if args.provenance && !verify::attach_provenance(&request, &report) {
                return EXIT_ERROR;
            }
            if args.sbom && !verify::attach_sbom(&request, &report) {
                return EXIT_ERROR;
            }
            if !report.warnings.is_empty() {
                eprint!("{}", report.warnings.render_for_stderr());
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).expect("the report serializes"));
            } else {
                for image in &report.images {
                    println!("{} {}", image.name, image.digest);
                }
            }
            if report.stats.steps_run + report.stats.steps_cached > 0 && !args.quiet {
                eprintln!(
                    "pinfold: {} step(s) ran, {} from the cache",
                    report.stats.steps_run, report.stats.steps_cached
                );
            }
            eprintln!(
                "pinfold: {} layer(s) built, {} from the cache; epoch {} ({})",
                report.stats.layers_built,
                report.stats.layers_cached,
                report.epoch,
                serde_json::to_value(report.epoch_origin)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            );
            EXIT_OK
        }
        Err(e) => {
            eprint!("{}", build::render_error(&e));
            if let BuildError::Invalid(d) = &e {
                let n = d.0.iter().filter(|d| d.severity == pinfold_lang::diag::Severity::Error).count();
                eprintln!("error: {n} error(s) in the build file; nothing was written");
            }
            EXIT_ERROR
        }
    }
}
