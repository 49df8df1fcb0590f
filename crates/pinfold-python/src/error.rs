//! The errors of each stage, typed so that a caller can tell them apart.
//!
//! Why: the language front end decides what to print and whether to retry; every message
//! names the file, line, package or URL it is about, so it can be shown as it is.

use std::path::PathBuf;

/// A target that cannot be resolved for.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("python version {0:?}: expected 3.X or 3.X.Y")]
    Python(String),
    #[error("platform {0:?}: expected linux/amd64 or linux/arm64")]
    Platform(String),
    #[error("glibc version {0:?}: expected MAJOR.MINOR such as 2.36")]
    Glibc(String),
}

/// A requirements file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RequirementsError {
    #[error("{}:{line}: {message}", file.display())]
    Line { file: PathBuf, line: usize, message: String },
    #[error("cannot read {}: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{}: larger than {limit} bytes", file.display())]
    TooLarge { file: PathBuf, limit: u64 },
    #[error("{}: not UTF-8", file.display())]
    NotUtf8 { file: PathBuf },
}

/// No index, or an index that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "no Python package index is configured: set PIP_INDEX_URL (or index-url in pip.conf, \
         or UV_DEFAULT_INDEX), or name one in the build file"
    )]
    NoIndex,
    #[error("index URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: cannot read the project page: {message}")]
    Page { url: String, message: String },
    #[error("{url}: larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{file}: sha256 mismatch: expected {expected}, got {actual}")]
    Digest { file: String, expected: String, actual: String },
    #[error("{file}: cannot read core metadata: {message}")]
    Metadata { file: String, message: String },
    #[error("cannot read the certificate authorities: {0}")]
    Tls(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// A resolution that has no answer.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("package {name} (required at {origin}) does not exist on the index")]
    NotFound { name: String, origin: String },
    #[error("no solution for {target}:\n{report}")]
    Conflict { target: String, packages: Vec<String>, report: String },
    #[error(
        "{name} {version} has only a source distribution for {target}: build the wheel in a \
         pinfold `step` and pass it as a file"
    )]
    SdistOnly { name: String, version: String, target: String },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{package}: {message}")]
    Metadata { package: String, message: String },
}

/// A locked file that cannot be found or fetched again.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{file}: no index serves this file (looked in {indexes})")]
    NotServed { file: String, indexes: String },
    #[error("{file}: the index serves it with sha256 {served}, but the lock says {locked}")]
    Changed { file: String, locked: String, served: String },
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// A pylock.toml that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PylockError {
    #[error("{}: {message}", file.display())]
    Invalid { file: PathBuf, message: String },
    #[error("{}: package {package}: {message}", file.display())]
    Package { file: PathBuf, package: String, message: String },
}

/// A wheel that cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{wheel}: {message}")]
    Invalid { wheel: String, message: String },
    #[error("{wheel}: unsafe path {path:?}: {reason}")]
    UnsafePath { wheel: String, path: String, reason: String },
    #[error("{wheel}: {path}: RECORD says sha256 {recorded}, the file has {actual}")]
    RecordMismatch { wheel: String, path: String, recorded: String, actual: String },
    #[error("{path} is installed by both {first} and {second}")]
    Conflict { path: String, first: String, second: String },
    #[error("{wheel}: {source}")]
    Zip { wheel: String, source: zip::result::ZipError },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("scheme: {0}")]
    Scheme(String),
}
