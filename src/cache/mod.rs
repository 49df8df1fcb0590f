//! The content-addressed layer cache. A layer's key is a blake3 hash over everything
//! that decides its bytes: the format version, the compression, the epoch, and every
//! entry of its tree (path, type, owner, mode, link target, and the blake3 of each
//! file's content). A hit skips tar and compression entirely.
//!
//! Layout under the cache directory:
//! - `blobs/sha256/<hex>`: layer blobs, written once through a temporary file;
//! - `layers/<key>.json`: what a key produced (digest, diff_id, size, media type);
//! - `steps/<key>/`: the outputs of a step that ran (see [`step_key`]), moved into
//!   place whole by one rename, so that a key's directory is complete or absent;
//! - `files-v2.postcard`: file fingerprints (size, mtime, ctime, inode → blake3), so
//!   a rebuild reads only the metadata of files that did not change.
//!
//! Every write is a temporary file renamed into place, so two builds sharing a cache
//! never see half an entry; a blob named by a digest is never rewritten in place.

pub mod gc;
pub mod remote;
pub mod verify;

use pinfold_image::digest::Digest;
use pinfold_image::fsutil::write_atomic;
use pinfold_image::layer::{Compression, EntryKind, FileSource, LayerBlob, LayerTree};
use pinfold_image::store::BlobStore;
use pinfold_image::walk::FileStat;
use rayon::prelude::*;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Changes whenever the bytes pinfold writes for the same input may change.
const KEY_VERSION: &str = "pinfold-layer-key-v1";

#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
    /// Held for a `--no-cache` build: the cache lives and dies with the build.
    _temporary: Option<tempfile::TempDir>,
    /// `lock` in the cache directory, flock'ed while the cache is open: shared by
    /// builds (which only add entries, each atomically), exclusive for `cache gc`
    /// (which removes entries a build may have looked up). Released when dropped.
    _lock: std::fs::File,
    /// What the cache found wrong and mended (entries changed after they were
    /// stored), for the build to report with its other warnings: printing from here
    /// would cut through a progress display.
    warnings: Mutex<Vec<String>>,
}

/// How [`Cache::open_with`] locks the cache directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLock {
    /// Builds, runs and pulls: any number at once.
    Shared,
    /// `pinfold cache gc`: alone.
    Exclusive,
}

/// A cache key: blake3 over a layer's definition and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerKey(pub [u8; 32]);

impl LayerKey {
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl Cache {
    /// The default cache directory ([`crate::env::default_cache_dir`]).
    pub fn default_dir() -> Option<PathBuf> {
        crate::env::default_cache_dir()
    }

    pub fn open(root: &Path) -> io::Result<Self> {
        Cache::open_with(root, CacheLock::Shared)
    }

    /// Opens the cache at `root`, waiting (with a note on stderr) while another
    /// process holds a lock that excludes `lock`.
    pub fn open_with(root: &Path, lock: CacheLock) -> io::Result<Self> {
        for sub in ["blobs/sha256", "layers", "steps", "tmp"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(root.join("lock"))?;
        use rustix::fs::FlockOperation as Op;
        let (try_op, wait_op, holder) = match lock {
            CacheLock::Shared => (Op::NonBlockingLockShared, Op::LockShared, "`pinfold cache gc` is collecting it"),
            CacheLock::Exclusive => (Op::NonBlockingLockExclusive, Op::LockExclusive, "builds are using it"),
        };
        if let Err(e) = rustix::fs::flock(&file, try_op) {
            if e != rustix::io::Errno::WOULDBLOCK {
                return Err(e.into());
            }
            eprintln!("pinfold: waiting for the cache at {}: {holder}", root.display());
            rustix::fs::flock(&file, wait_op)?;
        }
        pinfold_image::fsutil::sweep_dead_temporaries(&root.join("tmp"));
        Ok(Cache { root: root.to_path_buf(), _temporary: None, _lock: file, warnings: Mutex::default() })
    }

    /// A cache that is removed when the build ends (`--no-cache`). It is made in the
    /// system's temporary directory, so a build that fails writes nothing beside its
    /// outputs; blobs are then copied, not linked, into the output.
    pub fn temporary() -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("pinfold-cache-").tempdir()?;
        let mut cache = Cache::open(dir.path())?;
        cache._temporary = Some(dir);
        Ok(cache)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The content-addressed blobs of this cache, as the registry client and the
    /// fetchers store them.
    pub fn store(&self) -> BlobStore {
        BlobStore::new(&self.root)
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.store().blob_path(digest)
    }

    /// A temporary file for a blob being written; [`Cache::commit_blob`] names it.
    pub fn blob_tempfile(&self) -> io::Result<tempfile::NamedTempFile> {
        self.store().blob_tempfile()
    }

    /// Moves a fully written and hashed blob to its name (see [`BlobStore::commit_blob`]).
    pub fn commit_blob(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> io::Result<PathBuf> {
        self.store().commit_blob(tmp, digest)
    }

    /// The blob a key produced, when both the entry and a blob that is still what was
    /// stored exist. A blob whose metadata changed since it was stored (an edit
    /// through a hard link of an output, a copy over it) is hashed again: one that
    /// no longer hashes to its name is removed, with a warning, and the key is a miss.
    pub fn lookup_layer(&self, key: &LayerKey) -> Option<(LayerBlob, PathBuf)> {
        let entry = self.root.join("layers").join(format!("{}.json", key.hex()));
        let bytes = std::fs::read(&entry).ok()?;
        let stored: StoredLayer = serde_json::from_slice(&bytes).ok()?;
        let path = self.blob_path(&stored.blob.digest);
        let stat = FileStat::from_metadata(&std::fs::metadata(&path).ok()?);
        if stat.size != stored.blob.size {
            return None;
        }
        if stored.stamp != Some(BlobStamp::of(&stat)) {
            match pinfold_image::digest::sha256_of_file(&path) {
                Ok(actual) if actual == stored.blob.digest => {
                    // Still right: remembered, so that it is not read again.
                    let _ = self.store_layer(key, &stored.blob);
                }
                Ok(actual) => {
                    self.warn(format!(
                        "the cached blob {} hashes to {actual}: it was changed after it was stored; it is \
                         removed and its layer built again",
                        stored.blob.digest
                    ));
                    self.discard(&path);
                    let _ = std::fs::remove_file(&entry);
                    return None;
                }
                Err(_) => return None,
            }
        }
        touch(&entry);
        Some((stored.blob, path))
    }

    fn warn(&self, text: String) {
        self.warnings.lock().expect("cache warnings").push(text);
    }

    /// What the cache found wrong and mended since it was opened (or last asked).
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().expect("cache warnings"))
    }

    /// Removes a file of the cache: renamed into `tmp` first, so that nothing reads
    /// half of it under its name.
    pub(crate) fn discard(&self, path: &Path) {
        let doomed = self.root.join("tmp").join(format!("{}discarded", pinfold_image::fsutil::temp_prefix("bad")));
        if std::fs::rename(path, &doomed).is_ok() {
            let _ = std::fs::remove_file(&doomed);
        }
    }

    /// Removes a step's stored outputs and their listing (for gc, verify and a hit
    /// that failed its check). The directory is renamed into `tmp` first, so that a
    /// build never reads half of it; its listing goes after, and one left alone by
    /// an interruption is removed by the next gc.
    pub(crate) fn discard_step(&self, dir: &Path) -> io::Result<()> {
        let doomed = self.step_tempdir()?;
        std::fs::rename(dir, doomed.path().join("gone"))?;
        drop(doomed);
        let _ = std::fs::remove_file(step_sums_path(dir));
        Ok(())
    }

    /// The directory of a step's outputs, when that step ran before with this key and
    /// its outputs are still what it made: each is checked against the listing stored
    /// with it (content by the remembered fingerprints, so an unchanged file is not
    /// read). Outputs changed since are removed, with a warning, and the key is a miss.
    pub fn lookup_step(&self, key: &LayerKey, hashes: &FileHashes) -> Option<PathBuf> {
        let dir = self.root.join("steps").join(key.hex());
        if !dir.is_dir() {
            return None;
        }
        let stored: Option<Vec<OutputEntry>> =
            std::fs::read(step_sums_path(&dir)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let now = list_outputs(&dir, hashes);
        match (stored, now) {
            (Some(stored), Ok(now)) if stored == now => {}
            (stored, _) => {
                if stored.is_some() {
                    self.warn(format!(
                        "the cached outputs in {} were changed after the step made them; they are removed and \
                         the step runs again",
                        dir.display()
                    ));
                }
                let _ = self.discard_step(&dir);
                return None;
            }
        }
        touch(&dir);
        Some(dir)
    }

    /// A temporary directory for a step's work, in the cache's file system (so that
    /// its outputs can be renamed into place).
    pub fn step_tempdir(&self) -> io::Result<tempfile::TempDir> {
        // The kind holds no `-`: the sweep of dead temporaries reads the pid after it.
        tempfile::Builder::new().prefix(&pinfold_image::fsutil::temp_prefix("step")).tempdir_in(self.root.join("tmp"))
    }

    /// Moves a step's fully collected outputs to their key. When another build stored
    /// the same key meanwhile, its directory stays and `dir` is left to be removed.
    /// The listing of the outputs (paths, kinds, executable bits, link targets,
    /// content hashes) is stored beside them first, for [`Cache::lookup_step`].
    pub fn commit_step(&self, dir: &Path, key: &LayerKey, hashes: &FileHashes) -> io::Result<PathBuf> {
        let dest = self.root.join("steps").join(key.hex());
        let listing = list_outputs(dir, hashes)?;
        write_atomic(&step_sums_path(&dest), &serde_json::to_vec(&listing).map_err(io::Error::other)?)?;
        match std::fs::rename(dir, &dest) {
            Ok(()) => Ok(dest),
            Err(_) if dest.is_dir() => Ok(dest),
            Err(e) => Err(e),
        }
    }

    /// Records what `key` produced, with the blob's metadata as it is now (the blob
    /// was hashed as it was written, or verified just before).
    pub fn store_layer(&self, key: &LayerKey, blob: &LayerBlob) -> io::Result<()> {
        let stat = FileStat::from_metadata(&std::fs::metadata(self.blob_path(&blob.digest))?);
        let stored = StoredLayer { blob: blob.clone(), stamp: Some(BlobStamp::of(&stat)) };
        let bytes = serde_json::to_vec(&stored).map_err(io::Error::other)?;
        write_atomic(&self.root.join("layers").join(format!("{}.json", key.hex())), &bytes)
    }
}

/// Where the listing of a step's outputs is kept: beside their directory, so that it
/// is not among them.
pub(crate) fn step_sums_path(dir: &Path) -> PathBuf {
    dir.with_extension("sums")
}

/// One output of a step, as its listing records it.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum OutputEntry {
    Dir { path: String },
    File { path: String, executable: bool, blake3: String },
    Symlink { path: String, target: String },
}

/// The outputs below `dir`, sorted by path.
pub(crate) fn list_outputs(dir: &Path, hashes: &FileHashes) -> io::Result<Vec<OutputEntry>> {
    pinfold_image::walk::entries(dir, &|_| false)?
        .into_par_iter()
        .map(|(rel, stat)| {
            let path = dir.join(&rel);
            Ok(if stat.is_dir() {
                OutputEntry::Dir { path: rel }
            } else if stat.is_file() {
                let (hash, _) = hashes.hash_with_stat(&path, Some(stat))?;
                OutputEntry::File { path: rel, executable: stat.executable(), blake3: hex::encode(hash) }
            } else if stat.is_symlink() {
                let target = std::fs::read_link(&path)?.to_string_lossy().into_owned();
                OutputEntry::Symlink { path: rel, target }
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("`{rel}` is a socket, FIFO or device, which a step output cannot be"),
                ));
            })
        })
        .collect()
}

/// A layer entry of the cache: the blob, and the blob file's metadata when its
/// content was last known to hash to its name.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredLayer {
    #[serde(flatten)]
    pub(crate) blob: LayerBlob,
    /// Absent in entries of earlier versions: their blob is hashed once.
    #[serde(default)]
    stamp: Option<BlobStamp>,
}

/// Not the ctime: every build hard-links cached blobs into its outputs, which changes
/// it. A write changes the mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct BlobStamp {
    size: u64,
    mtime_ns: i128,
    ino: u64,
    dev: u64,
}

impl BlobStamp {
    fn of(stat: &FileStat) -> Self {
        BlobStamp { size: stat.size, mtime_ns: stat.mtime_ns, ino: stat.ino, dev: stat.dev }
    }
}

/// Marks a cache entry as used now, for `pinfold cache gc` (best effort).
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// What a file looked like when its content was hashed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Fingerprint {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
    blake3: [u8; 32],
}

/// The file of remembered fingerprints in the cache directory. Binary (postcard), not
/// JSON: a no-op build of a repository of 100,000 files reads it whole, and parsing
/// 25 MB of JSON into path-keyed maps was most of that build's time.
const FINGERPRINTS_FILE: &str = "files-v2.postcard";
/// The JSON index of earlier versions, removed when the new one is written.
const OLD_FINGERPRINTS_FILE: &str = "files-v1.json";

/// Content hashes of source files, remembered by their metadata.
///
/// A file whose mtime is within two seconds of the moment it was hashed is not
/// remembered: it could still change within the file system's timestamp granularity
/// without its metadata changing (git's "racily clean" problem).
///
/// Looked up by the path's bytes in a hash map (never iterated to make an output: the
/// file is written sorted by path).
#[derive(Debug, Default)]
pub struct FileHashes {
    path: Option<PathBuf>,
    known: HashMap<OsString, Fingerprint>,
    fresh: Mutex<Vec<(OsString, Fingerprint)>>,
}

impl FileHashes {
    pub fn load(cache: &Cache) -> Self {
        let path = cache.root.join(FINGERPRINTS_FILE);
        let known = std::fs::read(&path)
            .ok()
            .and_then(|b| postcard::from_bytes::<Vec<(Vec<u8>, Fingerprint)>>(&b).ok())
            .map(|list| list.into_iter().map(|(p, f)| (OsString::from_vec(p), f)).collect())
            .unwrap_or_default();
        FileHashes { path: Some(path), known, fresh: Mutex::default() }
    }

    /// blake3 of the file's content, from the remembered fingerprint when its metadata
    /// is unchanged.
    pub fn hash(&self, path: &Path) -> io::Result<[u8; 32]> {
        self.hash_with_stat(path, None).map(|(hash, _)| hash)
    }

    /// [`FileHashes::hash`], given the file's metadata when the caller has just read
    /// it (a walk of its directory), and the metadata used (one `stat` at most).
    pub fn hash_with_stat(&self, path: &Path, stat: Option<FileStat>) -> io::Result<([u8; 32], FileStat)> {
        let stat = match stat {
            Some(stat) => stat,
            None => FileStat::from_metadata(&std::fs::metadata(path)?),
        };
        let same = |f: &Fingerprint| {
            f.size == stat.size
                && f.mtime_ns == stat.mtime_ns
                && f.ctime_ns == stat.ctime_ns
                && f.ino == stat.ino
                && f.dev == stat.dev
        };
        if let Some(f) = self.known.get(path.as_os_str()).filter(|f| same(f)) {
            return Ok((f.blake3, stat));
        }
        let mut hasher = blake3::Hasher::new();
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let hash = *hasher.finalize().as_bytes();
        let now_ns =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
        if now_ns - stat.mtime_ns > 2_000_000_000 {
            let f = Fingerprint {
                size: stat.size,
                mtime_ns: stat.mtime_ns,
                ctime_ns: stat.ctime_ns,
                ino: stat.ino,
                dev: stat.dev,
                blake3: hash,
            };
            self.fresh.lock().expect("fingerprint lock").push((path.as_os_str().to_os_string(), f));
        }
        Ok((hash, stat))
    }

    /// Writes the remembered fingerprints back, when any are new.
    pub fn save(self) -> io::Result<()> {
        let fresh = self.fresh.into_inner().expect("fingerprint lock");
        let Some(path) = self.path else { return Ok(()) };
        if fresh.is_empty() {
            return Ok(());
        }
        let mut all = self.known;
        all.extend(fresh);
        // Forget files that are gone, so the index does not grow without bound.
        let mut list: Vec<(Vec<u8>, Fingerprint)> =
            all.into_par_iter().filter(|(p, _)| Path::new(p).exists()).map(|(p, f)| (p.into_vec(), f)).collect();
        list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        write_atomic(&path, &postcard::to_stdvec(&list).map_err(io::Error::other)?)?;
        let _ = std::fs::remove_file(path.with_file_name(OLD_FINGERPRINTS_FILE));
        Ok(())
    }
}

/// The key of a layer. File contents are hashed in parallel.
pub fn layer_key(tree: &LayerTree, compression: Compression, epoch: u64, hashes: &FileHashes) -> io::Result<LayerKey> {
    let contents: Vec<Option<[u8; 32]>> = tree
        .iter()
        .collect::<Vec<_>>()
        .par_iter()
        .map(|(path, entry)| match &entry.kind {
            // The error names the file: a copied rootfs holds files that only root may
            // read (/etc/shadow), and "permission denied" alone does not say which.
            EntryKind::File { source: FileSource::Path(p, stat), .. } => hashes
                .hash_with_stat(p, *stat)
                .map(|(h, _)| Some(h))
                .map_err(|e| io::Error::new(e.kind(), format!("`{}` (for `/{path}` in the layer): {e}", p.display()))),
            EntryKind::File { source: FileSource::Inline(bytes), .. } => Ok(Some(*blake3::hash(bytes).as_bytes())),
            _ => Ok(None),
        })
        .collect::<io::Result<_>>()?;
    let mut h = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(KEY_VERSION.as_bytes());
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(&pinfold_image::layer::compress::COMPRESSION_REVISION.to_le_bytes());
    field(compression.to_string().as_bytes());
    field(&epoch.to_le_bytes());
    for ((path, entry), content) in tree.iter().zip(contents) {
        field(path.as_bytes());
        let (kind, extra): (&[u8], &[u8]) = match &entry.kind {
            EntryKind::Dir => (b"dir", b""),
            EntryKind::File { .. } => (b"file", b""),
            EntryKind::Symlink { target } => (b"symlink", target.as_bytes()),
        };
        field(kind);
        field(extra);
        field(&entry.mode.to_le_bytes());
        field(&entry.uid.to_le_bytes());
        field(&entry.gid.to_le_bytes());
        if let (EntryKind::File { size, .. }, Some(hash)) = (&entry.kind, content) {
            field(&size.to_le_bytes());
            field(&hash);
        }
    }
    Ok(LayerKey(*h.finalize().as_bytes()))
}

/// Changes whenever what a step is given (its sandbox, its environment) changes.
const STEP_KEY_VERSION: &str = "pinfold-step-key-v2";

/// The key of a step: blake3 over its definition (command, environment, work
/// directory, outputs), the digest of the image it runs in, its platform, the epoch,
/// the pinfold version, and each input's path, executable bit and content.
pub fn step_key(
    definition: &[&[u8]],
    image: &Digest,
    platform: &str,
    epoch: u64,
    inputs: &[(&str, bool, [u8; 32])],
) -> LayerKey {
    let mut h = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(STEP_KEY_VERSION.as_bytes());
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(&pinfold_image::layer::compress::COMPRESSION_REVISION.to_le_bytes());
    field(&(definition.len() as u64).to_le_bytes());
    for d in definition {
        field(d);
    }
    field(image.to_string().as_bytes());
    field(platform.as_bytes());
    field(&epoch.to_le_bytes());
    field(&(inputs.len() as u64).to_le_bytes());
    for (path, executable, hash) in inputs {
        field(path.as_bytes());
        field(&[u8::from(*executable)]);
        field(hash);
    }
    LayerKey(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinfold_image::layer::LayerEntry;

    #[test]
    fn a_source_file_that_cannot_be_read_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let readable = dir.path().join("passwd");
        std::fs::write(&readable, "root:x:0:0::/root:/bin/sh\n").unwrap();
        let missing = dir.path().join("shadow");
        let mut tree = LayerTree::new();
        for (path, source) in [("etc/passwd", &readable), ("etc/shadow", &missing)] {
            let kind = EntryKind::File { source: FileSource::Path(source.clone(), None), size: 0 };
            tree.insert(path.into(), LayerEntry { kind, mode: 0o644, uid: 0, gid: 0 }).unwrap();
        }
        let err = layer_key(&tree, Compression::default(), 0, &FileHashes::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let message = err.to_string();
        assert!(message.contains(&format!("`{}`", missing.display())), "{message}");
        assert!(message.contains("`/etc/shadow` in the layer"), "{message}");
        assert!(!message.contains("passwd"), "{message}");
    }
}
