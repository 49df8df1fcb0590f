//! sha256 while bytes stream, with a size bound.
//!
//! Why: every file read from a mirror is checked against the digest its signed parent
//! names as it streams, and no download may grow past the size it was announced at
//! (a hostile mirror cannot fill the disk or the memory).

use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};

/// The lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A reader that hashes and counts what passes through it and fails once more than
/// `limit` bytes came.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        HashingReader { inner, hasher: Sha256::new(), count: 0, limit }
    }

    /// The hex sha256 and the byte count of everything read.
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.limit {
            return Err(io::Error::other(format!("more than the expected {} bytes", self.limit)));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that hashes what passes through it.
pub struct HashingWriter<W> {
    pub inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), count: 0 }
    }

    pub fn finish(self) -> (String, u64, W) {
        (hex::encode(self.hasher.finalize()), self.count, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that fails (instead of ending early) once more than `limit` bytes came:
/// a decompression bomb is an error, never a silently truncated file.
pub struct BoundedReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> BoundedReader<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        BoundedReader { inner, left: limit }
    }
}

impl<R: Read> Read for BoundedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| io::Error::other("larger than its size limit"))?;
        Ok(n)
    }
}
