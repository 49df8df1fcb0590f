//! The one place that reads pinfold's environment: `SOURCE_DATE_EPOCH`, the cache
//! directory (`PINFOLD_CACHE_DIR`, `XDG_CACHE_HOME`, `HOME`), the CDI spec
//! directories (`PINFOLD_CDI_SPEC_DIRS`), and the registries a
//! command talks to (its flags and `DOCKER_CONFIG`). Everything else receives these
//! as values, so a test or a library caller can set them without touching the
//! process environment, and a reader can see at a glance what a build depends on.
//!
//! (`TERM` for the progress display, `NO_COLOR` for diagnostics, `PATH` for finding
//! engines and `-e VAR` of `pinfold run` are read where they are used: none of them
//! can change an output's bytes.)

use pinfold_registry::{Options, Registries};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The root whose `etc/apt` holds the apt sources that Debian sets without a `mirror`
/// use: `/`, or `$PINFOLD_APT_ROOT` (tests point it at a directory of their own).
pub fn apt_root() -> PathBuf {
    std::env::var_os("PINFOLD_APT_ROOT").filter(|d| !d.is_empty()).map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// `SOURCE_DATE_EPOCH`, as given (the plan checks and reports it).
pub fn source_date_epoch() -> Option<String> {
    std::env::var("SOURCE_DATE_EPOCH").ok()
}

/// The default cache directory: `$PINFOLD_CACHE_DIR`, else `$XDG_CACHE_HOME/pinfold`,
/// else `$HOME/.cache/pinfold`; `None` when none is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|d| !d.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("PINFOLD_CACHE_DIR") {
        return Some(dir);
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Some(dir.join("pinfold"));
    }
    var("HOME").map(|h| h.join(".cache").join("pinfold"))
}

/// Where `--device` and `--gpus` look for CDI specs: `$PINFOLD_CDI_SPEC_DIRS`
/// (directories separated by `:`, lowest priority first; for tests and unusual
/// hosts), else the CDI specification's `/etc/cdi` and `/var/run/cdi`.
pub fn cdi_spec_dirs() -> Vec<PathBuf> {
    match std::env::var_os("PINFOLD_CDI_SPEC_DIRS").filter(|d| !d.is_empty()) {
        Some(dirs) => std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()).collect(),
        None => pinfold_sandbox::cdi::DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect(),
    }
}

static REGISTRIES: OnceLock<Registries> = OnceLock::new();

/// Sets the registry options of this process (the command line's flags); called once,
/// before any registry is reached. A second call changes nothing.
pub fn configure_registries(options: Options) {
    let _ = REGISTRIES.set(Registries::new(options));
}

/// The registries of this process: what [`configure_registries`] set, else the
/// defaults (credentials from `$DOCKER_CONFIG` or `~/.docker`).
pub fn registries() -> &'static Registries {
    REGISTRIES.get_or_init(|| {
        Registries::new(Options { docker_config: pinfold_registry::default_docker_config(), ..Options::default() })
    })
}
