//! sha256 digests in the OCI `algorithm:hex` form, and writers that hash what passes
//! through them, so that every blob is hashed while it is written, never re-read.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

/// A `sha256:<64 lowercase hex>` content digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Digest(Sha256::digest(data).into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a digest; the message is shown to users as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    #[error("a digest starts with `sha256:`")]
    MissingAlgorithm,
    #[error("unsupported digest algorithm `{0}`: pinfold pins by sha256")]
    UnsupportedAlgorithm(String),
    #[error("a sha256 digest has 64 lowercase hex digits, this one has {0} characters")]
    BadLength(usize),
    #[error("a sha256 digest has lowercase hex digits only")]
    BadHex,
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algorithm, hex_part) = s.split_once(':').ok_or(DigestParseError::MissingAlgorithm)?;
        if algorithm != "sha256" {
            return Err(DigestParseError::UnsupportedAlgorithm(algorithm.to_string()));
        }
        if hex_part.len() != 64 {
            return Err(DigestParseError::BadLength(hex_part.len()));
        }
        if !hex_part.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(DigestParseError::BadHex);
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| DigestParseError::BadHex)?;
        Ok(Digest(bytes))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A writer that passes bytes on to `inner` while hashing and counting them.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), written: 0 }
    }

    /// The digest and size of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (Digest(self.hasher.finalize().into()), self.written, self.inner)
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what it reads; [`VerifyingReader::verify`] then tells whether
/// the content was the one that was pinned. Every blob read from outside goes through
/// one, so a mismatch is found while streaming, not after a second read.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: io::Read> VerifyingReader<R> {
    pub fn new(inner: R) -> Self {
        VerifyingReader { inner, hasher: Sha256::new(), read: 0 }
    }

    /// Reads what is left, then the digest and size of all that was read.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest(self.hasher.finalize().into()), self.read))
    }
}

impl<R: io::Read> io::Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// The sha256 of a file's content, read in a stream.
pub fn sha256_of_file(path: &std::path::Path) -> io::Result<Digest> {
    let file = std::fs::File::open(path)?;
    VerifyingReader::new(io::BufReader::with_capacity(1 << 20, file)).finish().map(|(digest, _)| digest)
}

/// A reader that fails as soon as its source yields more than `limit` bytes: a blob
/// streamed from outside is cut off when it passes its descriptor's size, instead of
/// filling the disk before the digest check could refuse it.
pub struct SizeLimited<R> {
    inner: R,
    limit: u64,
    read: u64,
    what: String,
}

impl<R: Read> SizeLimited<R> {
    /// `what` names the blob in the error.
    pub fn new(inner: R, limit: u64, what: impl Into<String>) -> Self {
        SizeLimited { inner, limit, read: 0, what: what.into() }
    }
}

impl<R: Read> Read for SizeLimited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte more than allowed is asked for, so that a longer stream is seen.
        let room = (self.limit - self.read).saturating_add(1).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is longer than its descriptor's size of {} bytes; it was cut off and is refused",
                    self.what, self.limit
                ),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_one() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_rejects_uppercase_and_short_digests() {
        let upper = format!("sha256:{}", "A".repeat(64));
        assert_eq!(upper.parse::<Digest>(), Err(DigestParseError::BadHex));
        assert_eq!("sha256:abc".parse::<Digest>(), Err(DigestParseError::BadLength(3)));
        assert!("md5:abc".parse::<Digest>().is_err());
    }
}
