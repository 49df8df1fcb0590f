//! `pinfold.lock`: what `pinfold lock` resolved for the inputs a build file leaves
//! open (a base without `digest`, a download or archive without `sha256`), and a
//! checksum of the build file, so that `pinfold build --locked` can refuse a lock that
//! no longer belongs to its build file.
//!
//! The file is JSON with sorted keys, two-space indentation and a final newline: one
//! text for one content, so that it diffs well and is the same wherever it is written.
//! The build file's checksum is taken over its KDL document, not its text: comments,
//! white space, line endings and the quoting style of values do not change it.

use kdl::{KdlDocument, KdlValue};
use pinfold_image::fsutil::write_atomic;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

pub const LOCK_FILE: &str = "pinfold.lock";
pub const LOCK_VERSION: u64 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Lock {
    pub version: u64,
    /// `sha256:` over the build file's canonical form.
    pub build_file: String,
    /// Base name → the digest of its top object.
    #[serde(default)]
    pub bases: BTreeMap<String, String>,
    /// Download name → platform (or `*` for all) → what was fetched.
    #[serde(default)]
    pub downloads: BTreeMap<String, BTreeMap<String, LockedFile>>,
    /// Archive name → what was read.
    #[serde(default)]
    pub archives: BTreeMap<String, LockedFile>,
    /// Debian package set name → its resolution (absent when the file has none, so a
    /// lock of a build file without package sets is what it always was).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub debian: BTreeMap<String, LockedDebian>,
    /// Python package set name → its resolution.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub python: BTreeMap<String, LockedPython>,
}

/// A Debian package set as `pinfold lock` resolved it: the signed release files it
/// read, and per platform the exact `.deb` files, by their path in the repository's
/// pool and sha256 — never a mirror's host, so any mirror (or a vendor directory)
/// serves the same lock.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedDebian {
    /// Suite → the `InRelease` file the resolution came from.
    pub releases: BTreeMap<String, LockedRelease>,
    /// Platform (`linux/amd64`) → packages, sorted by name.
    pub platforms: BTreeMap<String, Vec<LockedDeb>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedRelease {
    pub sha256: String,
    /// The release's `Date` field.
    pub date: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedDeb {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The file's path below the repository's root (`pool/main/…/x_1.0_amd64.deb`).
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// A Python package set as `pinfold lock` resolved it: per platform one wheel per
/// distribution, by file name and sha256 — never an index's host.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedPython {
    /// The target interpreter's version (`3.11`).
    pub python: String,
    /// Platform → wheels, sorted by distribution name.
    pub platforms: BTreeMap<String, Vec<LockedWheel>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedWheel {
    pub name: String,
    pub version: String,
    /// The wheel's file name, as the index lists it.
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedFile {
    /// Where it came from: a URL, or a path below the build file.
    pub source: String,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} is lock version {found}; this pinfold reads version {LOCK_VERSION}")]
    Version { path: String, found: u64 },
}

impl Lock {
    /// Reads the lock beside a build file; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<Lock>, LockError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LockError::Read { path: path.display().to_string(), message: e.to_string() }),
        };
        Lock::parse(&text, &path.display().to_string()).map(Some)
    }

    /// A lock from its text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Lock, LockError> {
        let lock: Lock = serde_json::from_str(text)
            .map_err(|e| LockError::Read { path: path.to_string(), message: e.to_string() })?;
        if lock.version != LOCK_VERSION {
            return Err(LockError::Version { path: path.to_string(), found: lock.version });
        }
        Ok(lock)
    }

    /// The lock's text: keys sorted at every level (struct fields too, which serde
    /// writes in declaration order: going through a `Value`, whose maps are sorted,
    /// puts them in byte order), two-space indentation, a final newline.
    pub fn to_text(&self) -> String {
        let value = serde_json::to_value(self).expect("a lock serializes");
        let mut text = serde_json::to_string_pretty(&value).expect("a value serializes");
        text.push('\n');
        text
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        write_atomic(path, self.to_text().as_bytes())
    }
}

/// The checksum of a build file's content as KDL: comments, white space, line endings
/// and number or string spelling (`0o755` vs `493`, raw vs quoted strings) do not
/// change it; any change of a node, argument, property or child does.
pub fn build_file_checksum(text: &str) -> Option<String> {
    let doc = crate::parse::parse_kdl_bounded(text).ok()?;
    let mut hasher = Sha256::new();
    canonical_document(&doc, &mut hasher);
    Some(format!("sha256:{}", hex::encode(hasher.finalize())))
}

fn canonical_document(doc: &KdlDocument, h: &mut Sha256) {
    for node in doc.nodes() {
        field(h, b"node");
        field(h, node.name().value().as_bytes());
        if let Some(ty) = node.ty() {
            field(h, b"type");
            field(h, ty.value().as_bytes());
        }
        for entry in node.entries() {
            match entry.name() {
                Some(name) => {
                    field(h, b"prop");
                    field(h, name.value().as_bytes());
                }
                None => field(h, b"arg"),
            }
            let value = match entry.value() {
                KdlValue::String(s) => format!("s:{s}"),
                KdlValue::Integer(i) => format!("i:{i}"),
                KdlValue::Float(f) => format!("f:{f:?}"),
                KdlValue::Bool(b) => format!("b:{b}"),
                KdlValue::Null => "null".to_string(),
            };
            field(h, value.as_bytes());
        }
        if let Some(children) = node.children() {
            field(h, b"{");
            canonical_document(children, h);
            field(h, b"}");
        }
    }
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_ignores_line_endings_comments_and_spelling() {
        let unix = "pinfold 1\nimage a {\n    from scratch // c\n    layer l { dir \"/x\" mode=0o755 }\n}\n";
        let windows = unix.replace('\n', "\r\n");
        let respelled = "pinfold 1\n/* header */ image a {\n  from \"scratch\"\n  layer l { dir #\"/x\"# mode=493 }\n}";
        let a = build_file_checksum(unix).unwrap();
        assert_eq!(a, build_file_checksum(&windows).unwrap());
        assert_eq!(a, build_file_checksum(respelled).unwrap());
        assert_ne!(a, build_file_checksum(&unix.replace("/x", "/y")).unwrap());
    }

    #[test]
    fn lock_text_is_sorted_and_round_trips() {
        let mut lock = Lock { version: 1, build_file: "sha256:00".into(), ..Default::default() };
        lock.bases.insert("zeta".into(), "sha256:1".into());
        lock.bases.insert("alpha".into(), "sha256:2".into());
        lock.debian.insert(
            "os".into(),
            LockedDebian {
                platforms: BTreeMap::from([(
                    "linux/amd64".into(),
                    vec![LockedDeb { name: "a".into(), version: "1".into(), ..Default::default() }],
                )]),
                ..Default::default()
            },
        );
        let text = lock.to_text();
        assert!(text.find("alpha").unwrap() < text.find("zeta").unwrap());
        // Keys at every level in byte order, struct fields included.
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix('"').and_then(|k| k.split_once("\":")).map(|(k, _)| k))
            .collect();
        let top: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \""))
            .map(|l| l.trim_start().trim_start_matches('"').split('"').next().unwrap())
            .collect();
        let mut sorted = top.clone();
        sorted.sort();
        assert_eq!(top, sorted, "top-level keys are sorted: {text}");
        let entry: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| ["architecture", "name", "path", "sha256", "size", "version"].contains(k))
            .take(6)
            .collect();
        assert_eq!(entry, ["architecture", "name", "path", "sha256", "size", "version"]);
        assert_eq!(serde_json::from_str::<Lock>(&text).unwrap(), lock);
    }
}
