//! Fetching a file by URL into the store, checked against its sha256 while it streams.
//!
//! Order of sources: the store (a file there was checked when it entered), then
//! `--mirror DIR` (files named by their sha256 hex), then the URL itself (`http://`,
//! `https://` through ureq with proxies from the usual environment variables, or
//! `file://`). `--offline` stops before the URL.

use crate::cache::Cache;
use pinfold_image::digest::{Digest, HashingWriter};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    pub offline: bool,
    pub mirror: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url} does not match its pinned sha256: expected {expected}, got {actual}; nothing was stored")]
    Mismatch { url: String, expected: Digest, actual: Digest },
    #[error("{url}: {message}")]
    Transfer { url: String, message: String },
    #[error("{url} is not in the store{mirror}, and --offline forbids fetching it")]
    Offline { url: String, mirror: String },
    #[error("the store at {path}: {source}")]
    Store { path: PathBuf, source: io::Error },
}

/// Fetches `url` into the store. With `expected`, the bytes must hash to it; without,
/// whatever was fetched is stored and its digest returned (an unpinned input, which
/// the caller reports).
pub fn fetch(
    url: &str,
    expected: Option<Digest>,
    cache: &Cache,
    options: &FetchOptions,
) -> Result<(Digest, PathBuf), FetchError> {
    if let Some(expected) = expected {
        let path = cache.blob_path(&expected);
        if path.is_file() {
            pinfold_image::fsutil::mark_used(&path);
            return Ok((expected, path));
        }
        if let Some(mirror) = &options.mirror {
            let candidate = mirror.join(expected.hex());
            let shown = candidate.display().to_string();
            match open_mirrored(mirror, &expected) {
                Ok(Some(file)) => return store(&shown, file, Some(expected), cache),
                Ok(None) => {}
                Err(message) => return Err(FetchError::Transfer { url: shown, message }),
            }
        }
    }
    if options.offline {
        let mirror = options.mirror.as_ref().map_or(String::new(), |m| format!(" or the mirror {}", m.display()));
        return Err(FetchError::Offline { url: url.to_string(), mirror });
    }
    let transfer = |message: String| FetchError::Transfer { url: url.to_string(), message };
    if let Some(path) = url.strip_prefix("file://") {
        let file = std::fs::File::open(Path::new(path)).map_err(|e| transfer(e.to_string()))?;
        return store(url, file, expected, cache);
    }
    let response =
        agent().map_err(transfer)?.get(url).call().map_err(|e| transfer(pinfold_tls::explain(e.to_string())))?;
    let reader = response.into_body().into_reader();
    store(url, reader, expected, cache)
}

/// The file of `digest` in the mirror directory `mirror` (named by its sha256 hex),
/// `None` when it has none. Opened through the rooted primitive: the directory is the
/// user's, but its entries come from wherever it was filled, so a symlink, a FIFO or a
/// directory under that name is refused (an error naming it) instead of followed or
/// blocked on.
pub fn open_mirrored(mirror: &Path, digest: &Digest) -> Result<Option<std::fs::File>, String> {
    use pinfold_image::rooted::{Kind, Root};
    let mut root = match Root::open(mirror) {
        Ok(root) => root,
        // As for a missing file: the next source is tried.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("the mirror {}: {e}", mirror.display())),
    };
    let name = digest.hex();
    let parts = [name.as_bytes()];
    let refused = |e: pinfold_image::rooted::RootedError| format!("the mirror {}: {e}", mirror.display());
    match root.kind(&parts).map_err(refused)? {
        Kind::Missing => Ok(None),
        _ => root.open_file(&parts).map(Some).map_err(refused),
    }
}

/// One HTTP agent for every fetch: it trusts what [`pinfold_tls::root_certs`] says
/// (the system's CAs and `SSL_CERT_FILE`), so downloads work behind a TLS-intercepting
/// proxy whose CA the machine trusts.
fn agent() -> Result<&'static ureq::Agent, String> {
    static AGENT: std::sync::OnceLock<Result<ureq::Agent, String>> = std::sync::OnceLock::new();
    AGENT
        .get_or_init(|| {
            let tls = pinfold_tls::tls_config()?;
            // A server that stops sending fails the fetch instead of hanging the build
            // (the same limits as the Debian and Python clients).
            let config = ureq::Agent::config_builder()
                .tls_config(tls)
                .timeout_connect(Some(std::time::Duration::from_secs(15)))
                .timeout_recv_response(Some(std::time::Duration::from_secs(120)))
                .timeout_per_read(Some(std::time::Duration::from_secs(120)))
                .build();
            Ok(ureq::Agent::new_with_config(config))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Streams `reader` into a temporary file of the store while hashing it; commits it
/// under its digest only when it matches `expected`.
fn store(
    url: &str,
    mut reader: impl Read,
    expected: Option<Digest>,
    cache: &Cache,
) -> Result<(Digest, PathBuf), FetchError> {
    let store_err = |source| FetchError::Store { path: cache.root().to_path_buf(), source };
    let tmp = cache.blob_tempfile().map_err(store_err)?;
    let mut writer = HashingWriter::new(io::BufWriter::new(tmp.as_file()));
    io::copy(&mut reader, &mut writer)
        .map_err(|e| FetchError::Transfer { url: url.to_string(), message: e.to_string() })?;
    let (actual, _, out) = writer.finish();
    out.into_inner().map_err(|e| store_err(e.into_error()))?;
    if let Some(expected) = expected {
        if actual != expected {
            // `tmp` is dropped here: the store never holds bytes that were not pinned.
            return Err(FetchError::Mismatch { url: url.to_string(), expected, actual });
        }
    }
    let path = cache.commit_blob(tmp, &actual).map_err(store_err)?;
    Ok((actual, path))
}
