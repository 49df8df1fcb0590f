//! Reading one layer blob in a single streaming pass, as deep as the comparison needs:
//! only its digest (same blob on both sides), also the digest of its uncompressed
//! content (same diff_id, other compression), or every tar entry with a streaming
//! sha256 of each file (content differs). Nothing of a layer is held in memory but
//! per-entry metadata, so the cost is one read of the blob whatever its size.
//!
//! ```text
//! blob ─▶ sha256 (digest) ─▶ gunzip / unzstd / as is ─▶ sha256 (diff_id) ─▶ tar entries ─▶ sha256 per file
//! ```
//!
//! The blob is always read to its end, even when its content cannot be decoded, so
//! that a blob whose bytes were changed is reported as tampered (it is not the blob
//! its digest names) rather than as merely unreadable.

use pinfold_image::digest::{Digest, HashingWriter};
use pinfold_image::oci::archive::{Archive, ArchiveError};
use sha2::{Digest as _, Sha256};
use std::io::{self, BufRead, BufReader, Read};

/// How much of a layer to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Depth {
    /// The digest of the blob.
    Digest,
    /// Also the digest of the uncompressed stream.
    Content,
    /// Also every tar entry.
    Entries,
}

/// The type of a tar entry, as the diff names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
    Other,
}

impl Kind {
    fn of(t: tar::EntryType) -> Kind {
        match t {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => Kind::Hardlink,
            tar::EntryType::Char => Kind::Char,
            tar::EntryType::Block => Kind::Block,
            tar::EntryType::Fifo => Kind::Fifo,
            _ => Kind::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Hardlink => "hardlink",
            Kind::Char => "char device",
            Kind::Block => "block device",
            Kind::Fifo => "fifo",
            Kind::Other => "other",
        }
    }
}

/// One tar entry: what the diff compares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Relative, without `./`, a leading `/` or a trailing `/`.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uname: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gname: String,
    pub mtime: u64,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:04o}"))
}

impl Entry {
    /// `uid:gid`, with the names when the tar holds them.
    pub fn owner(&self) -> String {
        let part = |id: u64, name: &str| if name.is_empty() { id.to_string() } else { format!("{id}({name})") };
        format!("{}:{}", part(self.uid, &self.uname), part(self.gid, &self.gname))
    }
}

/// What reading a layer found.
#[derive(Debug, Clone)]
pub struct Scan {
    /// sha256 and size of the blob's bytes, all of them.
    pub digest: Digest,
    pub size: u64,
    /// sha256 of the uncompressed stream (depth `Content` and more, when decodable).
    pub diff_id: Option<Digest>,
    /// Entries in the order of the tar (depth `Entries`).
    pub entries: Vec<Entry>,
    /// Why the content could not be decoded, when it could not.
    pub unreadable: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("cannot read {member} of {path}: {source}")]
    Io { member: String, path: String, source: io::Error },
}

/// A reader that hashes and counts what passes, and remembers whether a failure
/// came from the storage beneath (an I/O error, exit 2) rather than from a decoder
/// above it (undecodable content, a finding).
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    failed: Option<io::Error>,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing { inner, hasher: Sha256::new(), count: 0, failed: None }
    }

    fn drain(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn digest(self) -> (Digest, u64) {
        (Digest::from_bytes(self.hasher.finalize().into()), self.count)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = Some(io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// Reads `member` of `archive` as deep as `depth` asks.
pub fn scan(archive: &Archive, member: &str, depth: Depth) -> Result<Scan, ScanError> {
    let io_err =
        |source| ScanError::Io { member: member.to_string(), path: archive.path().display().to_string(), source };
    let (reader, _) = archive.open(member)?;
    let mut blob = Hashing::new(reader);
    let mut found = Scan { digest: Digest::of(b""), size: 0, diff_id: None, entries: Vec::new(), unreadable: None };
    if depth > Depth::Digest {
        match decode(&mut blob, depth) {
            Ok((diff_id, entries)) => {
                found.diff_id = Some(diff_id);
                found.entries = entries;
            }
            Err(e) => {
                if let Some(source) = blob.failed.take() {
                    return Err(io_err(source));
                }
                found.unreadable = Some(e.to_string());
            }
        }
    }
    // The rest of the blob (trailing bytes a decoder stopped before) still counts.
    blob.drain().map_err(io_err)?;
    (found.digest, found.size) = blob.digest();
    Ok(found)
}

/// Decompresses (by the stream's magic bytes, not its claimed media type) and reads
/// the tar, returning the diff_id and, at depth `Entries`, the entries.
fn decode<R: Read>(blob: &mut Hashing<R>, depth: Depth) -> io::Result<(Digest, Vec<Entry>)> {
    let mut buffered = BufReader::with_capacity(256 * 1024, blob);
    let magic = buffered.fill_buf()?.get(..4).map(<[u8]>::to_vec).unwrap_or_default();
    let plain: Box<dyn Read + '_> = match magic.as_slice() {
        [0x1f, 0x8b, ..] => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        _ => Box::new(buffered),
    };
    let mut content = Hashing::new(plain);
    let mut entries = Vec::new();
    if depth == Depth::Entries {
        let mut tar = tar::Archive::new(BufReader::with_capacity(256 * 1024, &mut content));
        for entry in tar.entries()? {
            entries.push(read_entry(entry?)?);
        }
        // What follows the end-of-archive blocks is part of the diff_id too.
        io::copy(&mut tar.into_inner(), &mut io::sink())?;
    }
    content.drain()?;
    Ok((content.digest().0, entries))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Entry names as tars write them (`./a/`, `/a`, `a/`) all become `a`.
pub fn normalize(path: &str) -> String {
    let trimmed = path.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
    if trimmed == "." {
        String::new()
    } else {
        trimmed.to_string()
    }
}

fn read_entry<R: Read>(mut entry: tar::Entry<'_, R>) -> io::Result<Entry> {
    let header = entry.header().clone();
    let kind = Kind::of(header.entry_type());
    let path = normalize(&text(&entry.path_bytes()));
    let link = match kind {
        Kind::Symlink | Kind::Hardlink => entry.link_name_bytes().map(|l| text(&l)),
        _ => None,
    };
    // A PAX record overrides the header's whole seconds; sub-second parts are ignored.
    let mut mtime = header.mtime().unwrap_or(0);
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax.flatten() {
            if ext.key() == Ok("mtime") {
                if let Some(secs) = ext.value().ok().and_then(|v| v.split('.').next()).and_then(|s| s.parse().ok()) {
                    mtime = secs;
                }
            }
        }
    }
    let sha256 = if kind == Kind::File {
        let mut sink = HashingWriter::new(io::sink());
        io::copy(&mut entry, &mut sink)?;
        Some(sink.finish().0)
    } else {
        None
    };
    Ok(Entry {
        path,
        kind,
        mode: header.mode().unwrap_or(0) & 0o7777,
        uid: header.uid().unwrap_or(0),
        gid: header.gid().unwrap_or(0),
        uname: header.username_bytes().map(text).unwrap_or_default(),
        gname: header.groupname_bytes().map(text).unwrap_or_default(),
        mtime,
        size: entry.size(),
        sha256,
        link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinfold_image::layer::{CompressWriter, Compression, DeterministicTar};

    fn layer(compression: Compression) -> (Vec<u8>, Digest) {
        let mut tar = DeterministicTar::new(HashingWriter::new(Vec::new()), 42);
        tar.append_dir("etc", 0o755, 0, 0).unwrap();
        tar.append_file("etc/motd", 0o644, 0, 0, 3, &b"hi\n"[..]).unwrap();
        tar.append_symlink("etc/localtime", "/usr/share/zoneinfo/UTC", None, 0, 0).unwrap();
        let (diff_id, _, plain) = tar.finish().unwrap().finish();
        let mut out = CompressWriter::new(Vec::new(), compression).unwrap();
        std::io::Write::write_all(&mut out, &plain).unwrap();
        (out.finish().unwrap(), diff_id)
    }

    fn scan_bytes(bytes: &[u8], depth: Depth) -> Scan {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        std::fs::write(&blob, bytes).unwrap();
        scan(&Archive::open_dir(dir.path()).unwrap(), "blob", depth).unwrap()
    }

    #[test]
    fn every_compression_gives_the_same_entries_and_diff_id() {
        for compression in [Compression::Gzip { level: 6 }, Compression::Zstd { level: 3 }, Compression::None] {
            let (bytes, diff_id) = layer(compression);
            let found = scan_bytes(&bytes, Depth::Entries);
            assert_eq!(found.digest, Digest::of(&bytes));
            assert_eq!(found.diff_id, Some(diff_id), "{compression}");
            let names: Vec<&str> = found.entries.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(names, ["etc", "etc/motd", "etc/localtime"]);
            assert_eq!(found.entries[1].sha256, Some(Digest::of(b"hi\n")));
            assert_eq!(found.entries[1].mtime, 42);
            assert_eq!(found.entries[2].link.as_deref(), Some("/usr/share/zoneinfo/UTC"));
        }
    }

    #[test]
    fn undecodable_content_is_a_finding_and_the_digest_still_covers_every_byte() {
        let (mut bytes, _) = layer(Compression::Gzip { level: 6 });
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        let found = scan_bytes(&bytes, Depth::Entries);
        assert!(found.unreadable.is_some() || found.diff_id.is_some());
        assert_eq!(found.digest, Digest::of(&bytes));
        assert_eq!(found.size, bytes.len() as u64);
    }
}
