//! Reading one member of a remote wheel with HTTP range requests.
//!
//! Why: an index without PEP 658 metadata files would otherwise make the resolver
//! download every candidate wheel (numpy is 16 MB) to read a 3 KB METADATA. A zip keeps
//! its directory at the end, so a few ranged reads (end of file, central directory, the
//! member) are enough. A server that ignores ranges gets a whole download instead.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};

use crate::error::IndexError;
use crate::http::Http;

/// Bytes fetched per range request.
const BLOCK: u64 = 128 << 10;
/// Most bytes one remote read may fetch before giving up (then the caller downloads).
const MAX_FETCHED: u64 = 32 << 20;

/// A `Read + Seek` view of a remote file, fetched block by block.
pub(crate) struct RangeReader<'a> {
    http: &'a Http,
    url: String,
    len: u64,
    pos: u64,
    blocks: BTreeMap<u64, Vec<u8>>,
    fetched: u64,
    /// Set when the server stopped serving ranges: the caller falls back.
    pub unsupported: bool,
}

impl<'a> RangeReader<'a> {
    pub(crate) fn new(http: &'a Http, url: &str, len: u64) -> RangeReader<'a> {
        RangeReader { http, url: url.to_string(), len, pos: 0, blocks: BTreeMap::new(), fetched: 0, unsupported: false }
    }

    fn block(&mut self, index: u64) -> io::Result<&[u8]> {
        if !self.blocks.contains_key(&index) {
            let start = index * BLOCK;
            let end = (start + BLOCK).min(self.len);
            self.fetched += end - start;
            if self.fetched > MAX_FETCHED {
                return Err(io::Error::other("too many bytes fetched by range"));
            }
            let bytes = match self.http.range(&self.url, start, end) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    self.unsupported = true;
                    return Err(io::Error::other("the server does not serve byte ranges"));
                }
                Err(e) => return Err(io::Error::other(e.to_string())),
            };
            self.blocks.insert(index, bytes);
        }
        Ok(&self.blocks[&index])
    }
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let pos = self.pos;
        let block = self.block(pos / BLOCK)?;
        let offset = (pos % BLOCK) as usize;
        let n = buf.len().min(block.len().saturating_sub(offset));
        buf[..n].copy_from_slice(&block[offset..offset + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

/// The `*.dist-info/METADATA` member of a wheel read from `reader`, at most `limit` bytes.
pub(crate) fn wheel_metadata<R: Read + Seek>(reader: R, file: &str, limit: u64) -> Result<Vec<u8>, IndexError> {
    let err = |m: String| IndexError::Metadata { file: file.to_string(), message: m };
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| err(e.to_string()))?;
    let name = metadata_member(zip.file_names(), file).ok_or_else(|| err("no .dist-info/METADATA".into()))?;
    let member = zip.by_name(&name).map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    member.take(limit + 1).read_to_end(&mut out).map_err(|e| err(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(err(format!("METADATA larger than {limit} bytes")));
    }
    Ok(out)
}

/// The METADATA member at the top level: exactly one `X.dist-info/METADATA`.
fn metadata_member<'n>(names: impl Iterator<Item = &'n str>, file: &str) -> Option<String> {
    let mut found: Vec<&str> =
        names.filter(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1).collect();
    found.sort();
    match found.as_slice() {
        [one] => Some(one.to_string()),
        many => {
            let prefix = file.split('-').next().unwrap_or("").to_ascii_lowercase();
            many.iter().find(|n| n.to_ascii_lowercase().starts_with(&prefix)).map(|n| n.to_string())
        }
    }
}

/// Download the whole wheel when ranges fail, check its sha256, then read METADATA.
pub(crate) fn metadata_by_download(
    http: &Http,
    url: &str,
    file: &str,
    sha256: Option<&str>,
    limit: u64,
) -> Result<Vec<u8>, IndexError> {
    let tmp = tempfile::tempfile().map_err(|source| IndexError::Io { path: std::env::temp_dir(), source })?;
    let mut writer = crate::http::HashingWriter::new(tmp);
    http.stream(url, &mut writer, crate::http::MAX_WHEEL_BYTES)?;
    let (mut tmp, actual) = writer.finish();
    if let Some(expected) = sha256 {
        if expected != actual {
            return Err(IndexError::Digest { file: file.to_string(), expected: expected.to_string(), actual });
        }
    }
    tmp.seek(SeekFrom::Start(0)).map_err(|source| IndexError::Io { path: std::env::temp_dir(), source })?;
    wheel_metadata(tmp, file, limit)
}
