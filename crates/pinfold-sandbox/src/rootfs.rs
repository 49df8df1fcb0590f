//! An image's layers applied into a root file system, the way a container engine
//! does it, and kept in the cache so that the next run starts at once.
//!
//! Layers are data from outside: each is hashed while it streams (its digest, and its
//! diff_id after decompression) and nothing of a layer that does not match is kept.
//! No entry can write outside the rootfs: names that are absolute or climb with `..`,
//! and entries (or hard links) that would be written through a symlink, are refused
//! with the layer and entry named. Device nodes and FIFOs are skipped (a sandboxed
//! program gets its devices from the runtime). Whiteouts (`.wh.NAME`) remove what
//! lower layers put there, and an opaque marker (`.wh..wh..opq`) hides all of a
//! directory's lower content.
//!
//! The result is stored under `rootfs/<key>/` of the cache, where the key hashes the
//! chain of layer digests; it is made in a temporary directory and renamed into
//! place, so a half-unpacked rootfs is never used. The cached tree is never handed to
//! a container: each run gets its own tree of hard links ([`clone_tree`]), so what a
//! runtime creates (mount points) never reaches the cache.

use pinfold_image::digest::{Digest, VerifyingReader};
use pinfold_image::oci::archive::Archive;
use pinfold_image::oci::read::PlatformImage;
use pinfold_image::rooted::{components, Kind as RootedKind, Root, RootedError};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Changes whenever the way layers are applied changes.
const ROOTFS_VERSION: &str = "pinfold-rootfs-v1";

/// How many symlinks a path may pass through before it is a loop (Linux's limit).
const MAX_SYMLINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer {layer}: entry `{entry}` {why}; the image is refused")]
    Unsafe { layer: Digest, entry: String, why: String },
    #[error("layer {layer} does not match its digest: expected {expected}, found {actual}")]
    DigestMismatch { layer: Digest, expected: Digest, actual: Digest },
    #[error("layer {layer} does not match its diff_id in the config: expected {expected}, found {actual}")]
    DiffIdMismatch { layer: Digest, expected: String, actual: Digest },
    #[error("layer {layer}: {source}")]
    Read { layer: Digest, source: io::Error },
    #[error("cannot open layer {layer}: {source}")]
    Open { layer: Digest, source: pinfold_image::oci::archive::ArchiveError },
    #[error("the rootfs cache at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io { path: path.to_path_buf(), source }
}

/// The cache key of a rootfs: the chain of layer digests, and whether owners were
/// applied (an unprivileged unpack cannot give files to other users).
pub fn rootfs_key(image: &PlatformImage, owned: bool) -> String {
    let mut h = blake3::Hasher::new();
    h.update(ROOTFS_VERSION.as_bytes());
    h.update(&[owned as u8]);
    for (layer, diff_id) in image.layers.iter().zip(image.config.rootfs().diff_ids()) {
        h.update(layer.digest.as_bytes());
        h.update(diff_id.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// Whether this process can give files to other owners (it is root).
pub fn can_chown() -> bool {
    rustix::process::geteuid().is_root()
}

/// The unpacked rootfs of `image`, from the cache or made now.
pub fn unpacked(cache_root: &Path, archive: &Archive, image: &PlatformImage) -> Result<PathBuf, UnpackError> {
    let owned = can_chown();
    let dir = cache_root.join("rootfs");
    let dest = dir.join(rootfs_key(image, owned));
    if dest.is_dir() {
        pinfold_image::fsutil::mark_used(&dest);
        return Ok(dest);
    }
    let tmp_parent = cache_root.join("tmp");
    fs::create_dir_all(&tmp_parent).map_err(io_at(&tmp_parent))?;
    fs::create_dir_all(&dir).map_err(io_at(&dir))?;
    let tmp = tempfile::Builder::new().prefix("rootfs-").tempdir_in(&tmp_parent).map_err(io_at(&tmp_parent))?;
    let root = tmp.path().join("root");
    fs::create_dir(&root).map_err(io_at(&root))?;
    let mut unpacker = Unpacker::new(&root, owned)?;
    let diff_ids = image.config.rootfs().diff_ids();
    for (layer, diff_id) in image.layers.iter().zip(diff_ids) {
        let (reader, _) =
            archive.open(&layer.member).map_err(|source| UnpackError::Open { layer: layer.digest, source })?;
        let reader = pinfold_image::digest::SizeLimited::new(reader, layer.size, format!("layer {}", layer.digest));
        let mut blob = VerifyingReader::new(reader);
        let read_err = |source| UnpackError::Read { layer: layer.digest, source };
        {
            let mut buffered = io::BufReader::with_capacity(1 << 20, &mut blob);
            let magic = buffered.fill_buf().map_err(read_err)?.get(..4).map(<[u8]>::to_vec).unwrap_or_default();
            let decompressed: Box<dyn Read + '_> = match magic.as_slice() {
                [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
                [0x28, 0xb5, 0x2f, 0xfd] => {
                    Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(read_err)?)
                }
                _ => Box::new(buffered),
            };
            let mut content = VerifyingReader::new(decompressed);
            unpacker.apply_layer(layer.digest, &mut content)?;
            let (actual, _) = content.finish().map_err(read_err)?;
            if actual.to_string() != *diff_id {
                return Err(UnpackError::DiffIdMismatch { layer: layer.digest, expected: diff_id.clone(), actual });
            }
        }
        let (actual, _) = blob.finish().map_err(read_err)?;
        if actual != layer.digest {
            return Err(UnpackError::DigestMismatch { layer: layer.digest, expected: layer.digest, actual });
        }
    }
    unpacker.finish()?;
    match fs::rename(&root, &dest) {
        Ok(()) => Ok(dest),
        // Another run unpacked the same layers first: its tree is as good.
        Err(_) if dest.is_dir() => Ok(dest),
        Err(e) => Err(UnpackError::Io { path: dest, source: e }),
    }
}

/// Applies layers into `root`. Every name goes through the one rooted file-system
/// primitive ([`pinfold_image::rooted::Root`]): nothing is created, removed, chmod'ed,
/// chown'ed or retimed through a symlink, whichever layer made it.
struct Unpacker {
    tree: Root,
    owned: bool,
    /// Directory modes are set last: a read-only directory must still receive the
    /// entries that follow it.
    dir_modes: Vec<(Vec<Vec<u8>>, u32, i64)>,
}

/// Lets an unprivileged process remove a tree that holds read-only directories.
fn make_writable(path: &Path) {
    if can_chown() {
        return;
    }
    for entry in walkdir::WalkDir::new(path).into_iter().filter_map(Result::ok) {
        if entry.file_type().is_dir() {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700));
        }
    }
}

impl Unpacker {
    fn new(root: &Path, owned: bool) -> Result<Self, UnpackError> {
        Ok(Unpacker { tree: Root::open(root).map_err(io_at(root))?, owned, dir_modes: Vec::new() })
    }

    fn unsafe_entry(layer: Digest, raw: &[u8], why: impl Into<String>) -> UnpackError {
        UnpackError::Unsafe { layer, entry: String::from_utf8_lossy(raw).into_owned(), why: why.into() }
    }

    fn rooted(&self, layer: Digest, raw: &[u8]) -> impl FnOnce(RootedError) -> UnpackError + '_ {
        let raw = raw.to_vec();
        move |e| match e {
            RootedError::Refused { path, why } => {
                let why = if path.as_bytes() == raw.as_slice() { why } else { format!("(`{path}`) {why}") };
                Self::unsafe_entry(layer, &raw, why)
            }
            RootedError::Io { path, source } => UnpackError::Io { path: self.tree.path().join(path), source },
        }
    }

    fn owner(&mut self, layer: Digest, raw: &[u8], parts: &[&[u8]], uid: u64, gid: u64) -> Result<(), UnpackError> {
        if !self.owned {
            return Ok(());
        }
        let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else { return Ok(()) };
        let r = self.tree.chown(parts, uid, gid);
        r.map_err(self.rooted(layer, raw))
    }

    fn apply_layer(&mut self, layer: Digest, reader: &mut dyn Read) -> Result<(), UnpackError> {
        let read_err = |source| UnpackError::Read { layer, source };
        let mut archive = tar::Archive::new(reader);
        // Paths written by this layer: an opaque marker hides only lower layers.
        let mut this_layer: BTreeSet<Vec<u8>> = BTreeSet::new();
        for entry in archive.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            let raw = entry.path_bytes().into_owned();
            let parts = components(&raw)
                .map_err(|why| Self::unsafe_entry(layer, &raw, why.replace("its root", "the rootfs")))?;
            let kind = entry.header().entry_type();
            let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
            let uid = entry.header().uid().unwrap_or(0);
            let gid = entry.header().gid().unwrap_or(0);
            let mtime = entry.header().mtime().unwrap_or(0).min(i64::MAX as u64) as i64;
            let Some((name, dir)) = parts.split_last() else {
                // `./` itself: the root directory's own attributes.
                if kind.is_dir() {
                    self.owner(layer, &raw, &[], uid, gid)?;
                    self.dir_modes.push((Vec::new(), mode, mtime));
                }
                continue;
            };
            if let Some(hidden) = name.strip_prefix(b".wh.") {
                // The directory must be a real one of the rootfs (no symlink on the way).
                let r = self.tree.kind(dir);
                match r.map_err(self.rooted(layer, &raw))? {
                    RootedKind::Dir | RootedKind::Missing => {}
                    _ => return Err(Self::unsafe_entry(layer, &raw, "is a whiteout in something not a directory")),
                }
                if hidden == b".wh..opq" {
                    self.opaque(layer, &raw, dir, &this_layer)?;
                } else if !hidden.is_empty() && hidden != b"." && hidden != b".." && !hidden.contains(&b'/') {
                    let mut target = dir.to_vec();
                    target.push(hidden);
                    let r = self.tree.remove(&target);
                    r.map_err(self.rooted(layer, &raw))?;
                }
                continue;
            }
            let existing = {
                let r = self.tree.kind(&parts);
                r.map_err(self.rooted(layer, &raw))?
            };
            if kind.is_dir() {
                let r = self.tree.make_dir(&parts);
                r.map_err(self.rooted(layer, &raw))?;
                self.owner(layer, &raw, &parts, uid, gid)?;
                self.dir_modes.push((parts.iter().map(|p| p.to_vec()).collect(), mode, mtime));
            } else if kind.is_file() || kind == tar::EntryType::Continuous || kind == tar::EntryType::GNUSparse {
                if existing != RootedKind::Missing {
                    let r = self.tree.remove(&parts);
                    r.map_err(self.rooted(layer, &raw))?;
                }
                let file = {
                    let r = self.tree.create_file(&parts, 0o600);
                    r.map_err(self.rooted(layer, &raw))?
                };
                let path = self.tree.display_path(&parts);
                let mut out = io::BufWriter::new(&file);
                io::copy(&mut entry, &mut out).map_err(read_err)?;
                out.into_inner().map_err(|e| UnpackError::Io { path: path.clone(), source: e.into_error() })?;
                // On the open descriptor: never on what a name points to.
                if self.owned {
                    if let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) {
                        let (uid, gid) = (rustix::fs::Uid::from_raw(uid), rustix::fs::Gid::from_raw(gid));
                        rustix::fs::fchown(&file, Some(uid), Some(gid))
                            .map_err(|e| UnpackError::Io { path: path.clone(), source: e.into() })?;
                    }
                }
                // After chown, which clears setuid and setgid bits.
                file.set_permissions(fs::Permissions::from_mode(mode)).map_err(io_at(&path))?;
                let t = rustix::fs::Timespec { tv_sec: mtime, tv_nsec: 0 };
                let _ = rustix::fs::futimens(&file, &rustix::fs::Timestamps { last_access: t, last_modification: t });
            } else if kind.is_symlink() {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Self::unsafe_entry(layer, &raw, "is a symlink without a target"))?;
                if existing != RootedKind::Missing {
                    let r = self.tree.remove(&parts);
                    r.map_err(self.rooted(layer, &raw))?;
                }
                let r = self.tree.symlink(&parts, &target);
                r.map_err(self.rooted(layer, &raw))?;
                self.owner(layer, &raw, &parts, uid, gid)?;
                let _ = self.tree.set_mtime(&parts, mtime);
            } else if kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Self::unsafe_entry(layer, &raw, "is a hard link without a target"))?;
                let target_parts = components(&target)
                    .map_err(|why| Self::unsafe_entry(layer, &raw, format!("links to a name that {why}")))?;
                if target_parts.is_empty() {
                    return Err(Self::unsafe_entry(layer, &raw, "is a hard link to the root"));
                }
                // A hard link to a symlink is a second symlink: it is linked, never
                // followed.
                let r = self.tree.kind(&target_parts);
                match r.map_err(self.rooted(layer, &raw))? {
                    RootedKind::File | RootedKind::Other | RootedKind::Symlink => {}
                    _ => {
                        let shown = String::from_utf8_lossy(&target).into_owned();
                        return Err(Self::unsafe_entry(
                            layer,
                            &raw,
                            format!("is a hard link to `{shown}`, which is not a file of the rootfs"),
                        ));
                    }
                }
                if target_parts != parts {
                    if existing != RootedKind::Missing {
                        let r = self.tree.remove(&parts);
                        r.map_err(self.rooted(layer, &raw))?;
                    }
                    let r = self.tree.hard_link(&target_parts, &parts);
                    r.map_err(self.rooted(layer, &raw))?;
                }
            } else {
                // Devices, FIFOs, PAX and GNU metadata entries: nothing to write.
                continue;
            }
            this_layer.insert(parts.join(&b'/'));
        }
        Ok(())
    }

    /// Removes everything below `dir` that this layer did not write.
    fn opaque(
        &mut self,
        layer: Digest,
        raw: &[u8],
        dir: &[&[u8]],
        this_layer: &BTreeSet<Vec<u8>>,
    ) -> Result<(), UnpackError> {
        let names = {
            let r = self.tree.list(dir);
            r.map_err(self.rooted(layer, raw))?
        };
        for name in names {
            let mut parts: Vec<&[u8]> = dir.to_vec();
            parts.push(&name);
            let rel = parts.join(&b'/');
            let mut prefix = rel.clone();
            prefix.push(b'/');
            let holds_new = this_layer.range(prefix.clone()..).next().is_some_and(|p| p.starts_with(&prefix));
            let is_dir = {
                let r = self.tree.kind(&parts);
                r.map_err(self.rooted(layer, raw))? == RootedKind::Dir
            };
            if (this_layer.contains(&rel) || holds_new) && is_dir {
                self.opaque(layer, raw, &parts, this_layer)?;
            } else if !this_layer.contains(&rel) {
                let r = self.tree.remove(&parts);
                r.map_err(self.rooted(layer, raw))?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), UnpackError> {
        // The last entry of a directory counts; earlier ones were replaced.
        let mut latest: std::collections::BTreeMap<Vec<Vec<u8>>, (u32, i64)> = Default::default();
        for (path, mode, mtime) in std::mem::take(&mut self.dir_modes) {
            latest.insert(path, (mode, mtime));
        }
        // Deepest first, so that a read-only parent is closed after its children. A
        // directory that a later layer replaced by a symlink is opened without
        // following it, so what the symlink points to keeps its mode and times.
        let mut dirs: Vec<_> = latest.into_iter().collect();
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        for (path, (mode, mtime)) in dirs {
            let parts: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
            match self.tree.set_dir_mode(&parts, mode, Some(mtime)) {
                Ok(()) => {}
                // A parent was replaced by a symlink: that directory is gone.
                Err(RootedError::Refused { .. }) => {}
                Err(RootedError::Io { path, source }) => {
                    return Err(UnpackError::Io { path: self.tree.path().join(path), source })
                }
            }
        }
        Ok(())
    }
}

/// Resolves `path` (absolute, as seen inside the container) to a host path below
/// `root`, following symlinks as the kernel would inside the container: an absolute
/// link starts again from `root`, and `..` never climbs above it. With
/// `follow_last == false` the last component is not followed (lstat semantics).
/// The returned path may not exist; it never leaves `root`.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut todo: Vec<Vec<u8>> = path.as_bytes().split(|b| *b == b'/').rev().map(<[u8]>::to_vec).collect();
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        match part.as_slice() {
            b"" | b"." => continue,
            b".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let mut candidate = root.to_path_buf();
        for p in &done {
            candidate.push(OsStr::from_bytes(p));
        }
        candidate.push(OsStr::from_bytes(&part));
        let is_last = todo.iter().all(|p| p.is_empty() || p == b".");
        let meta = fs::symlink_metadata(&candidate);
        match meta {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !is_last) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::other(format!("too many levels of symbolic links in `{path}`")));
                }
                let target = fs::read_link(&candidate)?;
                let target = target.as_os_str().as_bytes();
                if target.first() == Some(&b'/') {
                    done.clear();
                }
                for p in target.split(|b| *b == b'/').rev() {
                    todo.push(p.to_vec());
                }
            }
            _ => done.push(part),
        }
    }
    let mut out = root.to_path_buf();
    for p in &done {
        out.push(OsStr::from_bytes(p));
    }
    Ok(out)
}

/// The container path of a host path below `root`.
pub fn container_path(root: &Path, host: &Path) -> String {
    match host.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => "/".to_string(),
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => host.display().to_string(),
    }
}

/// Makes `dest` a tree of hard links to the files of `src`, with directories and
/// symlinks recreated (same modes and owners). Cheap for any image size, and nothing
/// done in `dest` (a runtime creating its mount points) reaches `src`.
pub fn clone_tree(src: &Path, dest: &Path) -> io::Result<()> {
    let owned = can_chown();
    let mut dirs = Vec::new();
    for entry in walkdir::WalkDir::new(src).follow_links(false) {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry.path().strip_prefix(src).map_err(io::Error::other)?;
        let target = if rel.as_os_str().is_empty() { dest.to_path_buf() } else { dest.join(rel) };
        let meta = entry.path().symlink_metadata()?;
        let ft = meta.file_type();
        if ft.is_dir() {
            if rel.as_os_str().is_empty() {
                fs::create_dir_all(&target)?;
            } else {
                fs::create_dir(&target)?;
            }
            fs::set_permissions(&target, fs::Permissions::from_mode(0o755))?;
            dirs.push((target.clone(), meta.mode() & 0o7777));
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &target)?;
        } else if fs::hard_link(entry.path(), &target).is_err() {
            fs::copy(entry.path(), &target)?;
        }
        if owned && !ft.is_file() {
            let _ = rustix::fs::chownat(
                rustix::fs::CWD,
                &target,
                Some(rustix::fs::Uid::from_raw(meta.uid())),
                Some(rustix::fs::Gid::from_raw(meta.gid())),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            );
        }
    }
    for (dir, mode) in dirs.into_iter().rev() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Removes a tree made by [`clone_tree`] (or anything below the cache's run dir),
/// also when it holds read-only directories.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(_) => {
            make_writable(path);
            fs::remove_dir_all(path)
        }
    }
}

pub use pinfold_image::layer::tree::is_clean_absolute;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        b: &mut tar::Builder<Vec<u8>>,
        name: &str,
        kind: tar::EntryType,
        link: Option<&str>,
        data: &[u8],
        mode: u32,
    ) {
        let mut h = tar::Header::new_gnu();
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        if let Some(link) = link {
            h.set_link_name(link).unwrap();
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn apply(root: &Path, layers: &[Vec<u8>]) -> Result<(), UnpackError> {
        let mut u = Unpacker::new(root, can_chown())?;
        for l in layers {
            u.apply_layer(Digest::of(l), &mut &l[..])?;
        }
        u.finish()
    }

    use tar::EntryType as E;

    #[test]
    fn hostile_names_are_refused_and_nothing_is_written_outside() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        fs::create_dir(&root).unwrap();
        let dotdot = layer(|b| entry(b, "../evil", E::Regular, None, b"x", 0o644));
        assert!(apply(&root, &[dotdot]).unwrap_err().to_string().contains("`../evil` climbs out"));
        let absolute = layer(|b| entry(b, "/evil", E::Regular, None, b"x", 0o644));
        assert!(apply(&root, &[absolute]).unwrap_err().to_string().contains("absolute"));
        let through = layer(|b| {
            entry(b, "escape", E::Symlink, Some(outer.path().to_str().unwrap()), b"", 0o777);
            entry(b, "escape/evil", E::Regular, None, b"x", 0o644);
        });
        let err = apply(&root, &[through]).unwrap_err().to_string();
        assert!(err.contains("through the symlink `escape`"), "{err}");
        // A later layer cannot write through an earlier layer's symlink either.
        let first = layer(|b| entry(b, "up", E::Symlink, Some(".."), b"", 0o777));
        let second = layer(|b| entry(b, "up/evil", E::Regular, None, b"x", 0o644));
        assert!(apply(&root, &[first, second]).is_err());
        let hard = layer(|b| entry(b, "h", E::Link, Some("../../etc/passwd"), b"", 0o644));
        assert!(apply(&root, &[hard]).is_err());
        assert!(!outer.path().join("evil").exists());
    }

    #[test]
    fn a_layer_that_swaps_a_directory_for_a_symlink_leaves_the_host_alone() {
        let outer = tempfile::tempdir().unwrap();
        let victim = outer.path().join("victim");
        fs::create_dir_all(victim.join("sub")).unwrap();
        fs::write(victim.join("sub/file"), b"host").unwrap();
        fs::set_permissions(victim.join("sub"), fs::Permissions::from_mode(0o700)).unwrap();
        let old = fs::metadata(victim.join("sub")).unwrap().modified().unwrap();
        let root = outer.path().join("root");
        fs::create_dir(&root).unwrap();
        let lower = layer(|b| {
            entry(b, "etc/", E::Directory, None, b"", 0o755);
            entry(b, "etc/sub/", E::Directory, None, b"", 0o777);
        });
        let upper = layer(|b| entry(b, "etc", E::Symlink, Some(victim.to_str().unwrap()), b"", 0o777));
        apply(&root, &[lower, upper.clone()]).unwrap();
        let meta = fs::metadata(victim.join("sub")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700, "the host directory was chmod'ed");
        assert_eq!(meta.modified().unwrap(), old, "the host directory was retimed");
        // And a layer after it cannot write, whiteout or hard-link through it.
        let root2 = outer.path().join("root2");
        fs::create_dir(&root2).unwrap();
        for third in [
            layer(|b| entry(b, "etc/sub/file", E::Regular, None, b"owned", 0o644)),
            layer(|b| entry(b, "etc/sub/.wh.file", E::Regular, None, b"", 0o644)),
            layer(|b| entry(b, "etc/sub/.wh..wh..opq", E::Regular, None, b"", 0o644)),
            layer(|b| entry(b, "copy", E::Link, Some("etc/sub/file"), b"", 0o644)),
        ] {
            let err = apply(&root2, &[upper.clone(), third]).unwrap_err().to_string();
            assert!(err.contains("symlink `etc`"), "{err}");
        }
        assert_eq!(fs::read(victim.join("sub/file")).unwrap(), b"host");
        assert!(!root2.join("copy").exists());
    }

    #[test]
    fn a_deep_path_unpacks_in_linear_time() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("r");
        fs::create_dir(&root).unwrap();
        let deep = layer(|b| {
            let mut name = String::new();
            for _ in 0..1500 {
                name.push_str("d/");
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(E::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, &name, &[][..]).unwrap();
            }
        });
        let start = std::time::Instant::now();
        apply(&root, &[deep]).unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "{:?}", start.elapsed());
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("r");
        fs::create_dir(&root).unwrap();
        let lower = layer(|b| {
            entry(b, "a/", E::Directory, None, b"", 0o755);
            entry(b, "a/one", E::Regular, None, b"1", 0o644);
            entry(b, "a/sub/", E::Directory, None, b"", 0o755);
            entry(b, "a/sub/deep", E::Regular, None, b"d", 0o644);
            entry(b, "b/", E::Directory, None, b"", 0o755);
            entry(b, "b/gone", E::Regular, None, b"g", 0o644);
            entry(b, "b/kept", E::Regular, None, b"k", 0o644);
            entry(b, "dev/null", E::Char, None, b"", 0o666);
        });
        let upper = layer(|b| {
            entry(b, "a/", E::Directory, None, b"", 0o750);
            entry(b, "a/sub/", E::Directory, None, b"", 0o755);
            entry(b, "a/sub/new", E::Regular, None, b"n", 0o600);
            entry(b, "a/.wh..wh..opq", E::Regular, None, b"", 0o644);
            entry(b, "b/.wh.gone", E::Regular, None, b"", 0o644);
        });
        apply(&root, &[lower, upper]).unwrap();
        assert!(!root.join("a/one").exists());
        assert!(!root.join("a/sub/deep").exists());
        assert_eq!(fs::read(root.join("a/sub/new")).unwrap(), b"n");
        assert!(!root.join("b/gone").exists());
        assert!(root.join("b/kept").exists());
        assert!(!root.join("dev/null").exists(), "device nodes are skipped");
        assert_eq!(fs::metadata(root.join("a")).unwrap().permissions().mode() & 0o7777, 0o750);
        assert_eq!(fs::metadata(root.join("a/sub/new")).unwrap().permissions().mode() & 0o7777, 0o600);
    }

    #[test]
    fn paths_resolve_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::write(root.join("usr/bin/tool"), b"x").unwrap();
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
        assert_eq!(resolve_in_root(root, "/bin/tool", true).unwrap(), root.join("usr/bin/tool"));
        assert_eq!(resolve_in_root(root, "/passwd", true).unwrap(), root.join("etc/passwd"));
        assert_eq!(resolve_in_root(root, "/passwd", false).unwrap(), root.join("passwd"));
        assert_eq!(resolve_in_root(root, "/up/usr/bin", true).unwrap(), root.join("usr/bin"));
        assert_eq!(resolve_in_root(root, "/../../x", true).unwrap(), root.join("x"));
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(resolve_in_root(root, "/loop", true).is_err());
    }

    #[test]
    fn a_clone_shares_file_content_and_not_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("d/f"), b"x").unwrap();
        std::os::unix::fs::symlink("d/f", src.join("l")).unwrap();
        let dest = tmp.path().join("dest");
        clone_tree(&src, &dest).unwrap();
        assert_eq!(fs::metadata(dest.join("d/f")).unwrap().ino(), fs::metadata(src.join("d/f")).unwrap().ino());
        fs::create_dir(dest.join("proc")).unwrap();
        assert!(!src.join("proc").exists());
        assert_eq!(fs::read_link(dest.join("l")).unwrap(), Path::new("d/f"));
        remove_tree(&dest).unwrap();
        assert!(!dest.exists());
    }
}
