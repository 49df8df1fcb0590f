//! `pinfold run REF [--platform P] [--entrypoint PATH] [-v HOST:CTR[:ro]]… [-e K=V]…
//! [-- CMD…]`: runs an image in a sandbox as `docker run` does and returns the
//! program's exit code; 125 when pinfold cannot start it, 126 when it is not
//! executable, 127 when it is not found (the contract, `cli-contract.md`).

use pinfold_image::oci::reference::ImageRef;
use pinfold_sandbox::{self as run, Engine, Network, RunError, RunOptions, Volume};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub registry: super::RegistryArgs,
    /// The image: oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE, docker://HOST/REPO[:TAG][@DIGEST], or the NAME of an image in the build file (built first).
    pub reference: String,
    /// The build file, for a NAME.
    #[arg(short = 'f', long = "file", default_value = "pinfold.kdl")]
    pub file: PathBuf,
    /// Which platform of a multi-platform image (default: the host's); others run through qemu-user.
    #[arg(long)]
    pub platform: Option<String>,
    /// Replaces the image's entrypoint (and, as in Docker, its cmd).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Bind mount HOST:CONTAINER[:ro] (repeatable).
    #[arg(short = 'v', long = "volume", value_name = "HOST:CTR[:ro]")]
    pub volumes: Vec<String>,
    /// Set a variable, K=V, or K to pass pinfold's own value (repeatable).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// A device of the host from its CDI specs (/etc/cdi, /var/run/cdi), as VENDOR/CLASS=NAME, e.g. nvidia.com/gpu=0 (repeatable).
    #[arg(long = "device", value_name = "VENDOR/CLASS=NAME")]
    pub devices: Vec<String>,
    /// `all`: every NVIDIA GPU of the host's CDI specs (the devices of kind nvidia.com/gpu).
    #[arg(long, value_name = "all")]
    pub gpus: Option<String>,
    /// none (the default: only loopback) or host.
    #[arg(long, default_value = "none")]
    pub network: String,
    /// auto (runc, crun, youki, else bubblewrap), runc, crun, youki, bwrap or docker.
    #[arg(long, default_value = "auto")]
    pub engine: String,
    /// At most this many processes and threads in the container.
    #[arg(long, default_value_t = run::DEFAULT_PIDS, value_parser = clap::value_parser!(u64).range(1..))]
    pub pids_limit: u64,
    /// At most this much memory (bytes, or with k, m, g; default 4g).
    #[arg(long, value_parser = run::parse_size)]
    pub memory: Option<u64>,
    /// Run an image from outside the build file with an engine that cannot give it every protection (bwrap without cgroups).
    #[arg(long)]
    pub allow_weaker_sandbox: bool,
    /// Seconds the program has to exit after SIGINT or SIGTERM before it is killed.
    #[arg(long, default_value_t = 10)]
    pub stop_timeout: u64,
    /// The cache directory (default: $PINFOLD_CACHE_DIR, $XDG_CACHE_HOME/pinfold, ~/.cache/pinfold).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// The command, replacing the image's cmd.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(args: RunArgs) -> i32 {
    match start(args) {
        Ok(code) => code,
        Err(RunError::Build(rendered)) => {
            eprint!("{rendered}");
            eprintln!("error: the image could not be built; nothing was run");
            run::EXIT_CANNOT_RUN
        }
        Err(e) => {
            eprintln!("pinfold: {e}");
            e.exit_code()
        }
    }
}

fn start(args: RunArgs) -> Result<i32, RunError> {
    let reference: ImageRef = args.reference.parse().map_err(RunError::Usage)?;
    let platform = match &args.platform {
        Some(p) => Some(p.parse().map_err(|e| RunError::Usage(format!("--platform {p}: {e}")))?),
        None => None,
    };
    let volumes = args
        .volumes
        .iter()
        .map(|v| v.parse::<Volume>().map_err(|e| RunError::Usage(format!("-v {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let network: Network = args.network.parse().map_err(RunError::Usage)?;
    let engine = Engine::select(&args.engine)?;
    let cache = crate::resolve::open_cache(args.cache_dir.as_deref())?;
    let (label, opened) = super::names::open_reference(&reference, &args.file, args.cache_dir.as_deref())?;
    let image = run::select_platform(&opened, platform.as_ref())?;
    let mut prepared = run::PreparedImage::new(&label, &opened, image, cache.root());
    prepared.sandbox = run::Sandbox {
        limits: run::Limits { pids: args.pids_limit, memory: args.memory.unwrap_or(run::DEFAULT_MEMORY) },
        // A NAME is built by this build file's own layers and steps; any other
        // reference comes from outside.
        trusted: matches!(reference, ImageRef::Name(_)),
        allow_weaker: args.allow_weaker_sandbox,
    };
    let (devices, device_requests, gpus) = devices(&engine, &args.devices, args.gpus.as_deref())?;
    let options = RunOptions {
        entrypoint: args.entrypoint,
        command: args.command,
        env: args.env,
        volumes,
        network,
        stop_timeout: Duration::from_secs(args.stop_timeout),
        devices,
        device_requests,
        gpus,
    };
    run::run(&prepared, &engine, &options)
}

/// `--device` and `--gpus`: resolved from the host's CDI specs, or, for Docker, handed
/// on as asked (Docker reads the CDI specs itself).
pub fn devices(
    engine: &Engine,
    requested: &[String],
    gpus: Option<&str>,
) -> Result<(run::cdi::Edits, Vec<String>, Option<String>), RunError> {
    if let Some(g) = gpus {
        if g != "all" {
            return Err(RunError::Usage(format!(
                "--gpus {g}: pinfold takes `--gpus all`; name single GPUs with --device nvidia.com/gpu=NAME"
            )));
        }
    }
    for name in requested {
        run::cdi::parse_qualified(name).map_err(|e| RunError::Usage(e.to_string()))?;
    }
    if matches!(engine, Engine::Docker { .. }) {
        return Ok((run::cdi::Edits::default(), requested.to_vec(), gpus.map(str::to_string)));
    }
    let edits = resolve_devices(requested, gpus.is_some()).map_err(|e| RunError::Usage(e.to_string()))?;
    Ok((edits, Vec::new(), None))
}

/// The edits of CDI devices (and of every GPU with `all_gpus`) from the host's specs.
pub fn resolve_devices(requested: &[String], all_gpus: bool) -> Result<run::cdi::Edits, run::cdi::CdiError> {
    if requested.is_empty() && !all_gpus {
        return Ok(run::cdi::Edits::default());
    }
    let registry = run::cdi::Registry::load(&crate::env::cdi_spec_dirs())?;
    let mut names = requested.to_vec();
    if all_gpus {
        names.extend(registry.all_gpus()?);
    }
    registry.resolve(&names)
}
