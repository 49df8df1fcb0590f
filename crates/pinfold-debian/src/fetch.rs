//! Fetching a locked `.deb`: from the first mirror that has it, checked as it streams.
//!
//! Why store-agnostic: pinfold keeps files in its content-addressed store; this module
//! only guarantees that `dest` appears (by an atomic rename) with exactly the locked
//! bytes, or not at all. Which mirror served the file cannot change the result: the
//! lock pins the path in the repository and the sha256, never a host.

use crate::cache::Expected;
use crate::digest::HashingReader;
use crate::error::{io_at, Error, Result};
use crate::http::{join, Http};
use crate::resolve::LockedPackage;
use std::path::Path;

/// Fetches `pkg` into `dest`; a digest or size mismatch names both values and the
/// package, and leaves `dest` untouched.
pub fn fetch_deb(http: &Http, mirrors: &[String], pkg: &LockedPackage, dest: &Path) -> Result<()> {
    check_pool_path(pkg)?;
    let what = describe(pkg);
    let mut tried = Vec::new();
    for base in mirrors {
        let url = join(base, &pkg.filename);
        let Some(body) = http.get(&url)? else {
            tried.push(url);
            continue;
        };
        return write_checked(body, pkg, &what, &url, dest);
    }
    Err(Error::NotFound { what, tried: tried.join(", ") })
}

/// `package python3 3.11.2-1+b1 (amd64, pool/main/...)`.
pub fn describe(pkg: &LockedPackage) -> String {
    format!("package {} {} ({}, {})", pkg.name, pkg.version, pkg.architecture, pkg.filename)
}

fn write_checked(body: impl std::io::Read, pkg: &LockedPackage, what: &str, url: &str, dest: &Path) -> Result<()> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_at(dir))?;
    let mut hashing = HashingReader::new(body, pkg.size);
    std::io::copy(&mut hashing, &mut tmp)
        .map_err(|e| Error::Transfer { url: url.to_string(), message: format!("{what}: {e}") })?;
    let (sha, size) = hashing.finish();
    Expected { sha256: pkg.sha256.clone(), size: pkg.size }.check(what, &sha, size)?;
    tmp.persist(dest).map_err(|e| Error::Io { path: dest.to_path_buf(), source: e.error })?;
    Ok(())
}

/// A lock's file name must stay inside the repository.
fn check_pool_path(pkg: &LockedPackage) -> Result<()> {
    let p = &pkg.filename;
    let bad = p.is_empty() || p.starts_with('/') || p.contains('\\') || p.split('/').any(|c| c == ".." || c.is_empty());
    if bad {
        return Err(Error::BadDeb { deb: describe(pkg), message: "its file name leaves the repository".into() });
    }
    Ok(())
}
