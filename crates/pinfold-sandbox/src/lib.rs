//! pinfold-sandbox: running an image's programs in a sandbox, as `docker run` would.
//! `pinfold run`, `pinfold test` and the build's steps all start containers through
//! here, so every one of them gets the same isolation.
//!
//! The stages, each its own module:
//! 1. [`rootfs`]: the image's layers verified and applied into a cached rootfs
//!    (whiteouts honoured, nothing written outside it), cloned per run.
//! 2. [`bundle`]: the OCI runtime bundle: `config.json` from the image config and the
//!    run's options (user from the rootfs's `/etc/passwd`, read-only root, no network).
//! 3. [`engine`]: execution through an OCI runtime (runc, crun, youki), bubblewrap, or
//!    the Docker engine; stdio, exit codes, signals, and cleanup on every path.
//! 4. [`emulate`]: other architectures through binfmt_misc and qemu-user.
//! 5. [`seccomp`] and [`cgroup`]: the default seccomp profile of every engine, and
//!    the pids and memory limits of bubblewrap, which has no cgroups of its own.
//! 6. [`cdi`]: devices of the host (GPUs) from its Container Device Interface specs,
//!    applied to the container by the bundle and each engine.
//!
//! It imports only `pinfold-image`: it knows nothing of build files, plans, caches
//! or registries. The application opens the image (its resolver), makes a
//! [`PreparedImage`], and hands it here. Entry points: [`PreparedImage::new`],
//! [`Engine::select`], [`run`], [`Engine::execute`].

pub mod bundle;
pub mod cdi;
pub mod cgroup;
pub mod emulate;
pub mod engine;
pub mod rootfs;
pub mod seccomp;
pub mod signals;

use pinfold_image::oci::archive::Archive;
use pinfold_image::oci::read::{platforms_match, OpenedImage, PlatformImage, ReadError};
use pinfold_image::Platform;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub use bundle::{ContainerSpec, Network, Volume};
pub use engine::{Engine, Finished, Io};

/// `docker run`'s code when the engine cannot start the program.
pub const EXIT_CANNOT_RUN: i32 = 125;
/// The program exists and cannot be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The program does not exist.
pub const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    /// The build of a build-file image failed; the text is the rendered diagnostics.
    #[error("{0}")]
    Build(String),
    #[error("{reference}: {source}")]
    Read { reference: String, source: ReadError },
    #[error(transparent)]
    Unpack(#[from] rootfs::UnpackError),
    /// An earlier attempt to unpack or load the image failed with this.
    #[error("{0}")]
    Image(String),
    #[error("{0}")]
    Platform(String),
    #[error("{0}")]
    Emulation(String),
    #[error("{0}")]
    NoEngine(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotExecutable(String),
    #[error("{0}")]
    User(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Runtime(String),
    /// The engine cannot give an untrusted image every protection.
    #[error("{0}")]
    WeakerSandbox(String),
}

impl RunError {
    /// The exit code `pinfold run` returns for this error (the contract's 125/126/127).
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::NotFound(_) => EXIT_NOT_FOUND,
            RunError::NotExecutable(_) => EXIT_NOT_EXECUTABLE,
            _ => EXIT_CANNOT_RUN,
        }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
        let what = what.into();
        move |source| RunError::Io { what, source }
    }
}

pub use pinfold_image::platform::host_platform;

/// The default of `--pids-limit`: room for a parallel build, not for a fork bomb.
pub const DEFAULT_PIDS: u64 = 4096;
/// The default of `--memory`: 4 GiB.
pub const DEFAULT_MEMORY: u64 = 4 << 30;

/// How many processes (threads count) and how much memory a container may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub pids: u64,
    /// Bytes.
    pub memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { pids: DEFAULT_PIDS, memory: DEFAULT_MEMORY }
    }
}

/// A size as `--memory` takes it: bytes, or a number with `k`, `m`, `g` (powers of
/// 1024, as Docker's `--memory`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("`{text}` is not a size (bytes, or a number with k, m or g)"))?;
    n.checked_mul(1 << shift).filter(|&b| b >= 4 << 20).ok_or_else(|| format!("`{text}`: at least 4m, at most 16 EiB"))
}

/// What a container of this image may do, and whether the image is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sandbox {
    pub limits: Limits,
    /// Made by this build file's own layers and steps (`pinfold run NAME`, steps,
    /// `pinfold test` of build-file images). Images from elsewhere are not trusted.
    pub trusted: bool,
    /// `--allow-weaker-sandbox`: run an untrusted image with an engine that cannot
    /// give it every protection of `book/src/run.md`.
    pub allow_weaker: bool,
}

impl Sandbox {
    pub fn trusted() -> Sandbox {
        Sandbox { trusted: true, ..Sandbox::default() }
    }

    /// Why `engine` may not run this container: the protections it lacks here, when
    /// the image is untrusted and the user did not accept a weaker sandbox.
    pub fn refusal(&self, engine: &str, missing: &[String]) -> Option<String> {
        if missing.is_empty() || self.trusted || self.allow_weaker {
            return None;
        }
        Some(format!(
            "the {engine} engine cannot give this image {} here; an image from outside this build file is only run \
             with every protection (use runc, crun, youki or docker, or pass --allow-weaker-sandbox)",
            missing.join(" or ")
        ))
    }
}

/// The manifest to run: the one of `wanted`; else the only one; else the host's;
/// else the first.
pub fn select_platform<'i>(image: &'i OpenedImage, wanted: Option<&Platform>) -> Result<&'i PlatformImage, RunError> {
    if let Some(w) = wanted {
        return image.for_platform(w).ok_or_else(|| {
            RunError::Platform(format!("the image has no {w} manifest (it has: {})", image.platforms_text()))
        });
    }
    if let [one] = image.manifests.as_slice() {
        return Ok(one);
    }
    let host = host_platform();
    image
        .for_platform(&host)
        .or_else(|| image.manifests.first())
        .ok_or_else(|| RunError::Platform("the image has no manifest".into()))
}

/// One platform's image, ready to run: where its layers are, its config, and (made on
/// first use) its unpacked rootfs.
#[derive(Debug)]
pub struct PreparedImage {
    /// The build-file name or the reference, for messages and reports.
    pub label: String,
    pub platform: Platform,
    pub archive: Arc<Archive>,
    pub image: PlatformImage,
    cache_root: PathBuf,
    /// Made once, also when tests on many threads ask at the same time; a failure is
    /// kept so that it is reported, not retried, by every test.
    rootfs: OnceLock<Result<PathBuf, String>>,
    docker: OnceLock<Result<engine::DockerImage, String>>,
    /// Limits and trust of its containers (untrusted, default limits, until the
    /// application says otherwise).
    pub sandbox: Sandbox,
}

impl PreparedImage {
    /// `cache_root` is where rootfs trees and bundles are kept (the cache's root).
    pub fn new(label: &str, opened: &OpenedImage, image: &PlatformImage, cache_root: &Path) -> Self {
        let platform = image.platform.clone().unwrap_or_else(|| Platform {
            os: image.config.os().to_string(),
            architecture: image.config.architecture().to_string(),
            variant: image.config.variant().clone(),
        });
        PreparedImage {
            label: label.to_string(),
            platform,
            archive: opened.archive.clone(),
            image: image.clone(),
            cache_root: cache_root.to_path_buf(),
            rootfs: OnceLock::new(),
            docker: OnceLock::new(),
            sandbox: Sandbox::default(),
        }
    }

    pub fn cache_root(&self) -> &Path {
        &self.cache_root
    }

    /// The image's cached rootfs (read-only by convention: never give it to a
    /// container, clone it with [`rootfs::clone_tree`]).
    pub fn rootfs(&self) -> Result<&Path, RunError> {
        let made = self.rootfs.get_or_init(|| {
            rootfs::unpacked(&self.cache_root, &self.archive, &self.image).map_err(|e| format!("{}: {e}", self.label))
        });
        made.as_deref().map_err(|e| RunError::Image(e.clone()))
    }

    /// The image's config (`config` of the image configuration), empty when absent.
    pub fn config(&self) -> oci_spec::image::Config {
        self.image.config.config().clone().unwrap_or_default()
    }

    /// Whether this platform's programs run natively here.
    pub fn is_native(&self) -> bool {
        emulate::runs_natively(&self.platform)
    }

    pub fn docker_image(&self, docker: &Path) -> Result<&engine::DockerImage, RunError> {
        let loaded = self.docker.get_or_init(|| engine::DockerImage::load(docker, self).map_err(|e| e.to_string()));
        loaded.as_ref().map_err(|e| RunError::Image(e.clone()))
    }
}

/// Whether two platforms are the same, with the OCI variant defaults.
pub fn same_platform(a: &Platform, b: &Platform) -> bool {
    platforms_match(a, b)
}

/// What `pinfold run` was asked to do, beyond the image.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--entrypoint`: replaces the image's entrypoint (and, as in Docker, its cmd).
    pub entrypoint: Option<String>,
    /// `-- CMD…`: replaces the image's cmd.
    pub command: Vec<String>,
    /// `-e K=V` (or `-e K`, taking the value from pinfold's environment).
    pub env: Vec<String>,
    pub volumes: Vec<Volume>,
    pub network: Network,
    /// How long a program may take to exit after SIGTERM or SIGINT was forwarded
    /// before it is killed.
    pub stop_timeout: std::time::Duration,
    /// `--device` and `--gpus`, resolved from the host's CDI specs (empty for Docker,
    /// which resolves `device_requests` and `gpus` itself).
    pub devices: cdi::Edits,
    pub device_requests: Vec<String>,
    pub gpus: Option<String>,
}

/// Runs one image as `pinfold run` does, with stdio passed through; returns the
/// program's exit code.
pub fn run(prepared: &PreparedImage, engine: &Engine, options: &RunOptions) -> Result<i32, RunError> {
    // The rootfs is unpacked first, while SIGTERM still has its default action: an
    // image that takes long to unpack (a hostile one, or a slow registry) must not hold
    // off a SIGTERM meant to stop pinfold, and no program runs yet to forward it to.
    if engine.needs_rootfs() {
        prepared.rootfs()?;
    }
    // From here on a SIGTERM is for the program: it must not kill pinfold between the
    // moment the runtime starts and the moment pinfold waits for it.
    let _signals = signals::Forwarding::install();
    let spec = ContainerSpec::for_run(prepared, options, engine.needs_rootfs())?;
    let control = engine::Control { forward_signals: true, stop_timeout: options.stop_timeout, timeout: None };
    let finished = engine.execute(prepared, &spec, Io::Inherit, &control)?;
    Ok(finished.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_docker_reads_them() {
        assert_eq!(parse_size("4g").unwrap(), 4 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("67108864").unwrap(), 64 << 20);
        assert!(parse_size("1k").is_err(), "below 4 MiB");
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999g").is_err());
    }

    #[test]
    fn only_an_untrusted_image_is_refused_by_a_weaker_engine_unless_allowed() {
        let missing = vec!["a pids limit".to_string()];
        let untrusted = Sandbox::default();
        let why = untrusted.refusal("bwrap", &missing).unwrap();
        assert!(why.contains("bwrap") && why.contains("a pids limit") && why.contains("--allow-weaker-sandbox"));
        assert_eq!(untrusted.refusal("runc", &[]), None);
        assert_eq!(Sandbox::trusted().refusal("bwrap", &missing), None);
        assert_eq!(Sandbox { allow_weaker: true, ..Sandbox::default() }.refusal("bwrap", &missing), None);
    }
}
