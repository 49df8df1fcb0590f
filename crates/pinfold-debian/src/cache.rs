//! A directory of files named by their sha256 (`DIR/sha256/HEX`).
//!
//! Why: a warm lock must not download the Packages indexes again when the signed
//! InRelease still names the same digests, and an offline lock must find the InRelease
//! its lock recorded. Files enter only after their digest matched, by an atomic rename,
//! and are hashed again when read, so a damaged cache is noticed, not trusted.

use crate::digest::{sha256_hex, HashingReader};
use crate::error::{io_at, Error, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join("sha256").join(sha256)
    }

    /// The file with this digest, when present and still intact.
    pub fn get(&self, sha256: &str) -> Result<Option<PathBuf>> {
        let path = self.path(sha256);
        let Ok(mut file) = std::fs::File::open(&path) else { return Ok(None) };
        let mut hashing = HashingReader::new(&mut file, u64::MAX);
        std::io::copy(&mut hashing, &mut std::io::sink()).map_err(io_at(&path))?;
        if hashing.finish().0 != sha256 {
            std::fs::remove_file(&path).map_err(io_at(&path))?;
            return Ok(None);
        }
        Ok(Some(path))
    }

    /// Reads the whole of the file with this digest, if present and intact.
    pub fn read(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(sha256);
        let Ok(bytes) = std::fs::read(&path) else { return Ok(None) };
        Ok((sha256_hex(&bytes) == sha256).then_some(bytes))
    }

    /// Stores `bytes` (already checked by the caller) under their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<String> {
        let sha = sha256_hex(bytes);
        let mut tmp = self.tempfile()?;
        tmp.write_all(bytes).map_err(io_at(tmp.path()))?;
        self.commit(tmp, &sha)?;
        Ok(sha)
    }

    /// Streams `reader` into the cache, checking size and sha256 against `expected`;
    /// nothing is kept on a mismatch.
    pub fn put_checked(&self, reader: impl Read, expected: &Expected, what: &str) -> Result<PathBuf> {
        let mut tmp = self.tempfile()?;
        let mut hashing = HashingReader::new(reader, expected.size);
        std::io::copy(&mut hashing, &mut tmp)
            .map_err(|e| Error::Transfer { url: what.to_string(), message: e.to_string() })?;
        let (sha, size) = hashing.finish();
        expected.check(what, &sha, size)?;
        self.commit(tmp, &sha)
    }

    fn tempfile(&self) -> Result<tempfile::NamedTempFile> {
        let dir = self.dir.join("sha256");
        std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        tempfile::NamedTempFile::new_in(&dir).map_err(io_at(&dir))
    }

    fn commit(&self, tmp: tempfile::NamedTempFile, sha: &str) -> Result<PathBuf> {
        let path = self.path(sha);
        tmp.persist(&path).map_err(|e| Error::Io { path: path.clone(), source: e.error })?;
        Ok(path)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The size and sha256 a file must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub sha256: String,
    pub size: u64,
}

impl Expected {
    /// Fails naming both digests (or sizes) when `sha`/`size` are not the expected ones.
    pub fn check(&self, what: &str, sha: &str, size: u64) -> Result<()> {
        if sha != self.sha256 {
            let what = match size == self.size {
                true => what.to_string(),
                false => format!("{what} ({size} bytes where {} were expected)", self.size),
            };
            return Err(Error::DigestMismatch { what, expected: self.sha256.clone(), actual: sha.to_string() });
        }
        if size != self.size {
            return Err(Error::SizeMismatch { what: what.to_string(), expected: self.size, actual: size });
        }
        Ok(())
    }
}
