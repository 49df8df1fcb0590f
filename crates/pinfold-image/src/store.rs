//! The content-addressed blob store: `blobs/sha256/HEX`, each file named by the
//! sha256 of its bytes, written through a temporary file in `tmp/` and renamed into
//! place only after it was hashed. It is a value of its own (not the application's
//! cache) so that the registry client and the fetchers of the package sets can store
//! what they verified without knowing how the cache keys layers or steps.

use crate::digest::Digest;
use std::io;
use std::path::{Path, PathBuf};

/// A blob store rooted at a directory (the cache's root): `blobs/sha256/` and `tmp/`
/// below it must exist (the cache makes them when it opens).
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn new(root: &Path) -> Self {
        BlobStore { root: root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// A temporary file for a blob being written; [`BlobStore::commit_blob`] names it.
    pub fn blob_tempfile(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new().prefix(&crate::fsutil::temp_prefix("blob")).tempfile_in(self.root.join("tmp"))
    }

    /// Moves a fully written and hashed blob to its name. When another build already
    /// stored the same digest, its file stays and this one is dropped.
    pub fn commit_blob(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> io::Result<PathBuf> {
        let dest = self.blob_path(digest);
        if dest.exists() {
            return Ok(dest);
        }
        tmp.persist(&dest).map_err(|e| e.error)?;
        Ok(dest)
    }
}
