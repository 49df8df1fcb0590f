//! `pinfold test [NAME…] [--config CST.yaml] [--platform P]… [--format human|json|junit]`:
//! builds the named images (all by default), runs their `test` blocks (or a
//! container-structure-test config) on every platform of each, and reports.
//! Exit 0 when every test passed, 1 when one failed, 2 when they could not be run.

use super::EXIT_ERROR;
use crate::testing::check::{self, Case};
use crate::testing::cst;
use crate::testing::report::Report;
use pinfold_image::oci::reference::ImageRef;
use pinfold_lang::diag::Diagnostics;
use pinfold_lang::Platform;
use pinfold_sandbox::{self as run, Engine, PreparedImage, RunError};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Junit,
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub registry: super::RegistryArgs,
    /// Images to test: build-file names (default: all), or with --config any image reference.
    pub names: Vec<String>,
    /// The build file.
    #[arg(short = 'f', long = "file", default_value = "pinfold.kdl")]
    pub file: PathBuf,
    /// A container-structure-test config (schemaVersion 2.0.0) to run instead of the test blocks.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Test only these platforms (repeatable; default: every platform of each image).
    #[arg(long = "platform")]
    pub platforms: Vec<String>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// auto (runc, crun, youki, else bubblewrap), runc, crun, youki, bwrap or docker.
    #[arg(long, default_value = "auto")]
    pub engine: String,
    /// At most this many processes and threads in each container.
    #[arg(long, default_value_t = run::DEFAULT_PIDS, value_parser = clap::value_parser!(u64).range(1..))]
    pub pids_limit: u64,
    /// At most this much memory in each container (bytes, or with k, m, g; default 4g).
    #[arg(long, value_parser = run::parse_size)]
    pub memory: Option<u64>,
    /// Test an image from outside the build file with an engine that cannot give it every protection (bwrap without cgroups).
    #[arg(long)]
    pub allow_weaker_sandbox: bool,
    /// Give every test block's command this device of the host's CDI specs, VENDOR/CLASS=NAME (repeatable; besides the tests' own `device` nodes).
    #[arg(long = "device", value_name = "VENDOR/CLASS=NAME")]
    pub devices: Vec<String>,
    /// The cache directory (default: $PINFOLD_CACHE_DIR, $XDG_CACHE_HOME/pinfold, ~/.cache/pinfold).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

pub fn run(args: TestArgs) -> i32 {
    match test(&args) {
        Ok(report) => {
            let text = match args.format {
                Format::Human => report.human(),
                Format::Json => report.json() + "\n",
                Format::Junit => report.junit(),
            };
            print!("{text}");
            report.exit_code()
        }
        Err(RunError::Build(rendered)) => {
            eprint!("{rendered}");
            eprintln!("error: the images could not be built; no test was run");
            EXIT_ERROR
        }
        Err(e) => {
            eprintln!("pinfold: {e}");
            EXIT_ERROR
        }
    }
}

/// The `test` blocks of each image of the build file.
fn declared_tests(file: &Path) -> Result<Vec<(String, Vec<pinfold_lang::TestDecl>)>, RunError> {
    let mut diags = Diagnostics::default();
    let parsed = match pinfold_lang::read_build_file(file, &mut diags) {
        Some(source) => pinfold_lang::parse(&source, &mut diags),
        None => None,
    };
    match parsed {
        Some(build_file) if !diags.has_errors() => {
            Ok(build_file.images.into_iter().map(|i| (i.name.value, i.tests)).collect())
        }
        _ => Err(RunError::Build(diags.render_for_stderr())),
    }
}

fn test(args: &TestArgs) -> Result<Report, RunError> {
    let wanted: Vec<Platform> = args
        .platforms
        .iter()
        .map(|p| p.parse().map_err(|e| RunError::Usage(format!("--platform {p}: {e}"))))
        .collect::<Result<_, _>>()?;
    let references: Vec<ImageRef> =
        args.names.iter().map(|n| n.parse().map_err(RunError::Usage)).collect::<Result<_, _>>()?;
    let config_cases = match &args.config {
        Some(path) => {
            let (suite, warnings) = cst::load(path).map_err(|e| RunError::Usage(e.to_string()))?;
            for w in warnings {
                eprintln!("pinfold: warning: {w}");
            }
            let global_env = std::sync::Arc::new(suite.global_env);
            Some(suite.cases.into_iter().map(|c| Case::Cst(c, global_env.clone())).collect::<Vec<_>>())
        }
        None => None,
    };
    if config_cases.is_none() {
        if let Some(other) = references.iter().find(|r| !matches!(r, ImageRef::Name(_))) {
            return Err(RunError::Usage(format!(
                "{other} is not an image of the build file: its tests come from --config CST.yaml"
            )));
        }
    }
    let declared = if config_cases.is_none() { declared_tests(&args.file)? } else { Vec::new() };
    // The engine is chosen before the devices are resolved: Docker resolves them itself.
    let engine_choice = Engine::select(&args.engine);
    let docker = matches!(engine_choice, Ok(Engine::Docker { .. }));
    let mut device_sets: std::collections::BTreeMap<Vec<String>, std::sync::Arc<check::Devices>> = Default::default();
    for test in declared.iter().flat_map(|(_, tests)| tests) {
        let mut names: Vec<String> = test.devices.iter().map(|d| d.value.clone()).collect();
        names.extend(args.devices.iter().cloned());
        if device_sets.contains_key(&names) {
            continue;
        }
        let devices = if names.is_empty() {
            check::Devices::default()
        } else if docker {
            check::Devices { edits: Default::default(), requests: names.clone() }
        } else {
            let edits = super::run::resolve_devices(&names, false)
                .map_err(|e| RunError::Usage(format!("test `{}`: {e}", test.name.value)))?;
            check::Devices { edits, requests: Vec::new() }
        };
        device_sets.insert(names, std::sync::Arc::new(devices));
    }
    let devices_of = |test: &pinfold_lang::TestDecl| {
        let mut names: Vec<String> = test.devices.iter().map(|d| d.value.clone()).collect();
        names.extend(args.devices.iter().cloned());
        device_sets.get(&names).cloned().unwrap_or_default()
    };

    // Build-file images are built together (as `pinfold build NAME…`), others opened.
    let names: Vec<String> =
        references.iter().filter_map(|r| if let ImageRef::Name(n) = r { Some(n.clone()) } else { None }).collect();
    let mut images: Vec<(String, ImageRef)> = Vec::new();
    if !names.is_empty() || references.is_empty() {
        images = super::names::build_names(&args.file, &names, args.cache_dir.as_deref()).map_err(RunError::Build)?;
    }
    // Images of the build file come first and are trusted; the others come from outside.
    let built = images.len();
    images.extend(references.iter().filter(|r| !matches!(r, ImageRef::Name(_))).map(|r| (r.to_string(), r.clone())));

    let cache = crate::resolve::open_cache(args.cache_dir.as_deref())?;
    let mut targets: Vec<(PreparedImage, Vec<Case>)> = Vec::new();
    for (index, (label, reference)) in images.iter().enumerate() {
        let sandbox = run::Sandbox {
            limits: run::Limits { pids: args.pids_limit, memory: args.memory.unwrap_or(run::DEFAULT_MEMORY) },
            trusted: index < built,
            allow_weaker: args.allow_weaker_sandbox,
        };
        let cases: Vec<Case> = match &config_cases {
            Some(cases) => cases.clone(),
            None => declared
                .iter()
                .find(|(n, _)| n == label)
                .map(|(_, t)| t.iter().map(|t| Case::Declared(t.clone(), devices_of(t))).collect())
                .unwrap_or_default(),
        };
        if cases.is_empty() {
            eprintln!("pinfold: note: image `{label}` declares no test");
            continue;
        }
        let opened = crate::resolve::open_image(reference)
            .map_err(|source| RunError::Read { reference: reference.to_string(), source })?;
        let manifests: Vec<_> = opened
            .manifests
            .iter()
            .filter(|m| {
                wanted.is_empty()
                    || m.platform.as_ref().is_some_and(|p| wanted.iter().any(|w| run::same_platform(p, w)))
            })
            .collect();
        if manifests.is_empty() {
            return Err(RunError::Platform(format!(
                "image `{label}` has none of the platforms asked for (it has: {})",
                opened.platforms_text()
            )));
        }
        for m in manifests {
            let mut prepared = PreparedImage::new(label, &opened, m, cache.root());
            prepared.sandbox = sandbox;
            targets.push((prepared, cases.clone()));
        }
    }
    if targets.is_empty() {
        return Ok(Report::default());
    }
    let has_commands = targets.iter().flat_map(|(_, c)| c).any(|c| match c {
        Case::Declared(t, _) => t.command.is_some(),
        Case::Cst(cst::CstCase::Command { .. }, _) => true,
        Case::Cst(..) => false,
    });
    let engine = match engine_choice {
        Ok(e) => e,
        Err(e) if has_commands => return Err(e),
        // No test runs a command: the engine is never used.
        Err(_) => Engine::Bwrap { binary: PathBuf::from("bwrap") },
    };
    let platforms: Vec<String> = targets.iter().map(|(p, _)| format!("{} {}", p.label, p.platform)).collect();
    eprintln!("pinfold: testing {} with {}", platforms.join(", "), engine.name());
    // Unpack every platform's rootfs once, in parallel, before the tests share them
    // (Docker unpacks on its own; file checks then unpack on first use).
    if engine.needs_rootfs() {
        targets.par_iter().for_each(|(p, _)| {
            let _ = p.rootfs();
        });
    }
    let results = check::run_all(&targets, &engine);
    Ok(Report::new(results))
}
