//! Packages indexes: fetched by the digest the signed InRelease names, cached by it,
//! decompressed and read into the fields the resolver and the lock need.
//!
//! Why: an index is trusted only through the InRelease's SHA256 list, so its size and
//! digest are checked as it streams, before a byte of it is parsed. Indexes are kept in
//! the caller's cache by sha256: a warm lock whose InRelease names the same digests
//! downloads nothing more. With `Acquire-By-Hash` the file is fetched under its digest,
//! which cannot race with the mirror's next publish. Reading is bounded (decompressed
//! size, line and stanza size).

use crate::cache::{Cache, Expected};
use crate::deb822::{self, Stanza};
use crate::error::{io_at, Error, Result};
use crate::http::{join, Http};
use crate::relation::{parse_provides, parse_version, Version};
use crate::release::Release;
use std::io::{BufReader, Read};
use std::path::Path;

/// Bound on a decompressed Packages index (bookworm main amd64 is about 50 MB).
pub const MAX_INDEX: u64 = 2 << 30;

/// `Multi-Arch` of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

/// One package of an index, with what resolution and the lock need.
#[derive(Debug, Clone)]
pub struct IndexPackage {
    pub name: String,
    pub version: Version,
    /// The version exactly as the index writes it (for the lock).
    pub version_text: String,
    pub architecture: String,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub priority: Option<String>,
    /// Raw Depends and Pre-Depends, parsed only for packages the resolver reaches.
    pub depends: Option<String>,
    pub pre_depends: Option<String>,
    /// Raw Conflicts and Breaks, checked over the chosen closure.
    pub conflicts: Option<String>,
    pub breaks: Option<String>,
    pub provides: Vec<(String, Option<Version>)>,
    /// The pool path relative to the repository base (`pool/main/...deb`).
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    pub installed_size: Option<u64>,
}

/// One component's index for one architecture of one suite.
#[derive(Debug, Clone)]
pub struct PackagesIndex {
    pub suite: String,
    pub component: String,
    pub arch: String,
    /// The index file's path under `dists/SUITE/` and its sha256 (for the lock).
    pub path: String,
    pub sha256: String,
    pub packages: Vec<IndexPackage>,
}

/// Where indexes come from: mirrors to try in order, the cache, and whether the
/// network may be used at all.
pub struct Source<'a> {
    pub http: &'a Http,
    pub mirrors: &'a [String],
    pub cache: &'a Cache,
    pub offline: bool,
}

/// Loads `COMPONENT/binary-ARCH/Packages.{xz,gz}` of `release`.
pub fn load_packages(src: &Source, release: &Release, component: &str, arch: &str) -> Result<PackagesIndex> {
    let (path, expected) = pick_index(release, component, arch)?;
    let what = format!("dists/{}/{path}", release.suite);
    let file = match src.cache.get(&expected.sha256)? {
        Some(file) => file,
        None if src.offline => return Err(Error::Offline { what }),
        None => download(src, release, &path, &expected, &what)?,
    };
    let packages = read_index_file(&file, &path, &what)?;
    Ok(PackagesIndex {
        suite: release.suite.clone(),
        component: component.to_string(),
        arch: arch.to_string(),
        path,
        sha256: expected.sha256,
        packages,
    })
}

/// The compressed index the InRelease lists (xz preferred, then gz).
fn pick_index(release: &Release, component: &str, arch: &str) -> Result<(String, Expected)> {
    for ext in ["xz", "gz"] {
        let path = format!("{component}/binary-{arch}/Packages.{ext}");
        if let Some(expected) = release.files.get(&path) {
            return Ok((path, expected.clone()));
        }
    }
    Err(Error::Release {
        what: format!("the InRelease of {}", release.suite),
        message: format!("lists no Packages.xz or Packages.gz for {component}/binary-{arch}"),
    })
}

/// Fetches an index into the cache from the first mirror that has it.
fn download(
    src: &Source,
    release: &Release,
    path: &str,
    expected: &Expected,
    what: &str,
) -> Result<std::path::PathBuf> {
    let mut tried = Vec::new();
    for base in src.mirrors {
        for url in index_urls(base, release, path, expected) {
            match src.http.get(&url)? {
                Some(body) => return src.cache.put_checked(body, expected, what),
                None => tried.push(url),
            }
        }
    }
    Err(Error::NotFound { what: what.to_string(), tried: tried.join(", ") })
}

/// The by-hash URL first when the suite offers it, then the plain one.
fn index_urls(base: &str, release: &Release, path: &str, expected: &Expected) -> Vec<String> {
    let dists = join(base, &format!("dists/{}", release.suite));
    let plain = join(&dists, path);
    if !release.acquire_by_hash {
        return vec![plain];
    }
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    vec![join(&dists, &format!("{dir}/by-hash/SHA256/{}", expected.sha256)), plain]
}

/// Decompresses (by `path`'s extension) and parses an index file.
fn read_index_file(file: &Path, path: &str, what: &str) -> Result<Vec<IndexPackage>> {
    let raw = std::fs::File::open(file).map_err(io_at(file))?;
    let reader: Box<dyn Read> = match path.rsplit_once('.').map(|(_, e)| e) {
        Some("xz") => Box::new(liblzma::read::XzDecoder::new(BufReader::new(raw))),
        Some("gz") => Box::new(flate2::read::GzDecoder::new(BufReader::new(raw))),
        _ => Box::new(raw),
    };
    parse_packages(crate::digest::BoundedReader::new(reader, MAX_INDEX), what)
}

/// The fields read from an index (the rest, mostly descriptions, is skipped).
const FIELDS: &[&str] = &[
    "Package",
    "Version",
    "Architecture",
    "Multi-Arch",
    "Essential",
    "Priority",
    "Depends",
    "Pre-Depends",
    "Conflicts",
    "Breaks",
    "Provides",
    "Filename",
    "Size",
    "SHA256",
    "Installed-Size",
];

/// Parses Packages text; `what` names it in errors.
pub fn parse_packages(reader: impl Read, what: &str) -> Result<Vec<IndexPackage>> {
    let mut out = Vec::new();
    let reader = deb822::Reader::new(BufReader::with_capacity(1 << 16, reader), what, false).only_fields(FIELDS);
    for stanza in reader {
        out.push(index_package(&stanza?, what)?);
    }
    Ok(out)
}

fn index_package(s: &Stanza, what: &str) -> Result<IndexPackage> {
    let bad = |message: String| Error::Syntax { what: what.to_string(), line: s.line, message };
    let name = s.require("Package", what)?.to_string();
    let version_text = s.require("Version", what)?.to_string();
    let version = parse_version(&version_text).map_err(|m| bad(format!("{name}: {m}")))?;
    let provides = match s.get("Provides") {
        Some(p) => parse_provides(p).map_err(|m| bad(format!("{name}: Provides: {m}")))?,
        None => Vec::new(),
    };
    let number = |field: &str, value: &str| value.parse::<u64>().map_err(|_| bad(format!("{name}: bad {field}")));
    let sha256 = s.require("SHA256", what)?.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!("{name}: bad SHA256")));
    }
    Ok(IndexPackage {
        architecture: s.require("Architecture", what)?.to_string(),
        multi_arch: multi_arch(s.get("Multi-Arch")),
        essential: s.get("Essential").is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        priority: s.get("Priority").map(str::to_string),
        depends: s.get("Depends").map(str::to_string),
        pre_depends: s.get("Pre-Depends").map(str::to_string),
        conflicts: s.get("Conflicts").map(str::to_string),
        breaks: s.get("Breaks").map(str::to_string),
        filename: s.require("Filename", what)?.to_string(),
        size: number("Size", s.require("Size", what)?)?,
        installed_size: s.get("Installed-Size").map(|v| number("Installed-Size", v)).transpose()?,
        sha256,
        provides,
        version,
        version_text,
        name,
    })
}

fn multi_arch(value: Option<&str>) -> MultiArch {
    match value.map(str::trim) {
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        _ => MultiArch::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_text() {
        let sha = "0".repeat(64);
        let text = format!(
            "Package: libc6\nVersion: 2.36-9+deb12u10\nArchitecture: arm64\nMulti-Arch: same\nPriority: optional\n\
             Depends: libgcc-s1\nFilename: pool/main/g/glibc/libc6_2.36-9+deb12u10_arm64.deb\nSize: 10\nSHA256: {sha}\n\
             Description: GNU C Library\n more\n\nPackage: x\nVersion: 1\nArchitecture: all\nProvides: y (= 2), z\n\
             Essential: yes\nFilename: pool/x.deb\nSize: 1\nSHA256: {sha}\n"
        );
        let all = parse_packages(text.as_bytes(), "P").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].multi_arch, MultiArch::Same);
        assert_eq!(all[0].version_text, "2.36-9+deb12u10");
        assert!(all[1].essential);
        assert_eq!(all[1].provides.len(), 2);
        let bad = text.replace("Size: 1\n", "Size: one\n");
        let err = parse_packages(bad.as_bytes(), "P").unwrap_err().to_string();
        assert!(err.contains("P:13") && err.contains("x: bad Size"), "{err}");
    }
}
