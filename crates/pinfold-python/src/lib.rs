//! Python package sets for pinfold: from a requirements file to installed wheel files.
//!
//! Why a crate of its own: resolving and installing Python wheels is a closed problem
//! (PEP 440/508 versions and markers, the Simple Repository API, wheel tags, the wheel
//! format) that needs none of pinfold's build machinery, and its types stay neutral so
//! the build language, the lock file and the layer builder can each wrap them.
//!
//! The stages, each a module:
//! - [`requirements`]: requirements.txt and inline specifiers;
//! - [`discovery`]: which index pip would read, from its environment and config;
//! - [`index`]: the Simple Repository API (JSON, HTML), core metadata, fetching;
//! - [`target`] and [`resolve`]: the wheels one target platform needs;
//! - [`pylock`]: PEP 751 export and import;
//! - [`install`]: a wheel's files as they land in an image, without pip.

pub mod discovery;
pub mod error;
pub mod fetch;
mod html;
pub mod http;
pub mod index;
pub mod install;
pub mod metadata;
pub mod pylock;
mod remote_zip;
pub mod requirements;
pub mod resolve;
pub mod target;
pub mod wheel_name;

/// Runs a parse of `pep508_rs` on text from outside (requirements files, wheel
/// metadata, locks), turning a panic of the crate into an error: pep508_rs 0.9.2
/// panics on some malformed names and markers (an `expect` on a name it accepted,
/// a slice inside a multi-byte character), which tests/it/fuzz.rs found. It also panics
/// while displaying some of its own errors, so the error is made a string inside the
/// guard too.
pub(crate) fn pep508_guard<T, E: std::fmt::Display>(parse: impl FnOnce() -> Result<T, E>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse().map_err(|e| e.to_string()))) {
        Ok(result) => result,
        Err(_) => Err("the PEP 508 parser could not read it".to_string()),
    }
}

pub use pep440_rs;
pub use pep508_rs;
