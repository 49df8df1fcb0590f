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
        let lock: Lock = serde_json::from_str(&text)
            .map_err(|e| LockError::Read { path: path.display().to_string(), message: e.to_string() })?;
        if lock.version != LOCK_VERSION {
            return Err(LockError::Version { path: path.display().to_string(), found: lock.version });
        }
        Ok(Some(lock))
    }

    /// The lock's text: sorted keys (the maps are `BTreeMap`s), stable indentation.
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a lock serializes");
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
        let text = lock.to_text();
        assert!(text.find("alpha").unwrap() < text.find("zeta").unwrap());
        assert_eq!(serde_json::from_str::<Lock>(&text).unwrap(), lock);
    }
}
