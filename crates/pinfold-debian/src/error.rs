//! The crate's one error type.
//!
//! Why one enum: the caller (pinfold's lock and build) decides per kind — retry another
//! mirror, report a missing package, refuse a tampered file — so each kind is a variant
//! with the file, package or line it concerns, never a bare string.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{url}: {message}")]
    Transfer { url: String, message: String },

    #[error("{what} was not found on any mirror (tried: {tried})")]
    NotFound { what: String, tried: String },

    #[error("{what} does not match its pinned sha256: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: String, actual: String },

    #[error("{what} does not have its pinned size: expected {expected} bytes, got {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },

    #[error("{what}: larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },

    #[error("{what}:{line}: {message}")]
    Syntax { what: String, line: usize, message: String },

    #[error("keyring {path}: {message}")]
    Keyring { path: PathBuf, message: String },

    #[error("{what}: {message}")]
    Signature { what: String, message: String },

    #[error("{what}: {message}")]
    Release { what: String, message: String },

    #[error("{what} is not in the cache and fetching is off (offline)")]
    Offline { what: String },

    #[error("package {name} does not exist for {arch} in {suites}")]
    UnknownPackage { name: String, arch: String, suites: String },

    #[error("{name} is a virtual package for {arch}, provided by {providers}: name one of them")]
    AmbiguousVirtual { name: String, arch: String, providers: String },

    #[error("for {arch}: {chain}")]
    Unsatisfiable { arch: String, chain: String },

    #[error("{deb}: entry {entry}: {message}")]
    HostileEntry { deb: String, entry: String, message: String },

    #[error("{deb}: {message}")]
    BadDeb { deb: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An `Io` error naming `path`.
pub(crate) fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
