//! The content of one layer as a normalized tree: every path relative to the root,
//! `/`-separated, no `.`/`..` components, owner and mode given explicitly, ordered by
//! the bytes of the path (a `BTreeMap`), with every parent directory present.
//!
//! Byte order of whole paths puts a parent before its children (a prefix sorts first),
//! and it is what the spec documents: `a`, `a.txt`, `a/x` (not walkdir's per-directory
//! order, which would give `a`, `a/x`, `a.txt`).

use crate::walk::FileStat;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FileSource {
    /// A file of the build context, streamed when the layer is written, with its
    /// metadata when the plan read it in a walk (so that keying the layer need not
    /// stat it again).
    Path(PathBuf, Option<FileStat>),
    /// Bytes given in the build file.
    Inline(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    Dir,
    /// `size` is the size the file had when the tree was made; the writer fails
    /// if the file changed size since (a build never packs a file half-written).
    File {
        source: FileSource,
        size: u64,
    },
    Symlink {
        target: String,
    },
}

/// One entry of a layer. Times are not stored: every mtime is the build's epoch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerEntry {
    pub kind: EntryKind,
    /// Permission bits, including setuid/setgid/sticky (`0o7777` at most).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl LayerEntry {
    /// The directory that is created for a parent nobody declared: root-owned, 0o755.
    pub fn implicit_dir() -> Self {
        LayerEntry { kind: EntryKind::Dir, mode: 0o755, uid: 0, gid: 0 }
    }
}

/// A normalized path inside a layer: relative, `/`-separated, no empty, `.` or `..`
/// components, and not empty (the root itself is never an entry).
pub type LayerPath = String;

/// Normalizes an absolute or relative path inside the image (`/usr//bin/./x` →
/// `usr/bin/x`). `None` when it names the root or climbs out of it with `..`.
pub fn normalize_image_path(path: &str) -> Option<LayerPath> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

/// Whether a path component list (from an image path) is acceptable as a mount or
/// working-directory target: absolute and without `..`.
pub fn is_clean_absolute(path: &str) -> bool {
    let p = std::path::Path::new(path);
    p.is_absolute() && !p.components().any(|c| matches!(c, std::path::Component::ParentDir))
}

/// A layer's entries by path. Insertion adds missing parents as implicit directories;
/// an explicit directory replaces an implicit one.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerTree {
    entries: BTreeMap<LayerPath, LayerEntry>,
    /// Parents that were added implicitly and may still be replaced by an explicit `dir`.
    implicit: std::collections::BTreeSet<LayerPath>,
}

/// Two entries of one layer claim the same path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathConflict {
    pub path: LayerPath,
}

impl LayerTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts `entry` at the normalized `path`, creating implicit parents.
    /// A path that is already taken by an explicit entry is a conflict, except that
    /// the same directory declared twice with equal attributes is accepted.
    pub fn insert(&mut self, path: LayerPath, entry: LayerEntry) -> Result<(), PathConflict> {
        let mut parent = path.as_str();
        while let Some((head, _)) = parent.rsplit_once('/') {
            match self.entries.get(head) {
                // Every entry's parents were made when it was inserted, and nothing is
                // ever removed: above a directory that exists, all exist. (A copy of
                // 100,000 files would otherwise look up every parent of every file.)
                Some(existing) if matches!(existing.kind, EntryKind::Dir) => break,
                Some(_) => return Err(PathConflict { path: head.to_string() }),
                None => {
                    self.entries.insert(head.to_string(), LayerEntry::implicit_dir());
                    self.implicit.insert(head.to_string());
                }
            }
            parent = head;
        }
        match self.entries.get(&path) {
            None => {}
            Some(_) if self.implicit.contains(&path) => {
                if !matches!(entry.kind, EntryKind::Dir) {
                    return Err(PathConflict { path });
                }
                self.implicit.remove(&path);
            }
            Some(existing) if *existing == entry && matches!(entry.kind, EntryKind::Dir) => {
                return Ok(());
            }
            Some(_) => return Err(PathConflict { path }),
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&LayerPath, &LayerEntry)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, path: &str) -> Option<&LayerEntry> {
        self.entries.get(path)
    }

    /// Adds every entry of `other`, as [`LayerTree::insert`] would one by one.
    pub fn extend(&mut self, other: LayerTree) -> Result<(), PathConflict> {
        for (path, entry) in other.entries {
            if other.implicit.contains(&path) && self.entries.contains_key(&path) {
                continue;
            }
            let implicit = other.implicit.contains(&path);
            self.insert(path.clone(), entry)?;
            if implicit {
                self.implicit.insert(path);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &str) -> LayerEntry {
        LayerEntry {
            kind: EntryKind::File {
                source: FileSource::Inline(content.as_bytes().to_vec()),
                size: content.len() as u64,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn order_is_bytewise_over_whole_paths_with_parents_first() {
        let mut tree = LayerTree::new();
        tree.insert("a/x".into(), file("x")).unwrap();
        tree.insert("a.txt".into(), file("t")).unwrap();
        let paths: Vec<_> = tree.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["a", "a.txt", "a/x"]);
    }

    #[test]
    fn explicit_dir_replaces_implicit_parent_and_duplicates_conflict() {
        let mut tree = LayerTree::new();
        tree.insert("tmp/x".into(), file("x")).unwrap();
        let sticky = LayerEntry { mode: 0o1777, ..LayerEntry::implicit_dir() };
        tree.insert("tmp".into(), sticky.clone()).unwrap();
        assert_eq!(tree.get("tmp"), Some(&sticky));
        assert!(tree.insert("tmp/x".into(), file("y")).is_err());
        assert!(tree.insert("tmp/x/y".into(), file("y")).is_err());
    }

    #[test]
    fn normalize_refuses_the_root_and_escapes() {
        assert_eq!(normalize_image_path("/usr//bin/./x").as_deref(), Some("usr/bin/x"));
        assert_eq!(normalize_image_path("/"), None);
        assert_eq!(normalize_image_path("../etc"), None);
        assert_eq!(normalize_image_path("a/../b").as_deref(), Some("b"));
    }
}
