//! Read access to the files of an image layout, whether it is a directory or a tar
//! (oci-archive, docker-archive). A tar is indexed once (member name → offset and
//! size) and members are then streamed by seeking, so a multi-GiB archive is never
//! unpacked or held in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// JSON documents (index, manifests, configs) larger than this are refused: a real one
/// is a few KiB, and a hostile archive must not make pinfold allocate gigabytes.
pub const MAX_JSON_SIZE: u64 = 16 << 20;

#[derive(Debug)]
pub enum Archive {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        members: BTreeMap<String, (u64, u64)>,
    },
    /// Blobs fetched on demand (a registry: [`crate::registry`]); members are
    /// `blobs/sha256/<hex>`.
    Remote(std::sync::Arc<dyn RemoteBlobs>),
}

/// Blobs that live elsewhere, named by digest. The reader is checked by whoever
/// reads it, as for any archive ([`super::read::copy_verified`]).
pub trait RemoteBlobs: std::fmt::Debug + Send + Sync {
    /// Where the blobs are, as messages show it (`docker://HOST/REPO@…`).
    fn location(&self) -> &Path;
    /// The blob's bytes as a stream, with its size (0 when it is not known yet).
    fn open_blob(&self, digest: &crate::digest::Digest) -> io::Result<(Box<dyn Read + Send>, u64)>;
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} has no member `{member}`")]
    Missing { path: PathBuf, member: String },
    #[error("{path}: `{member}` is {size} bytes, more than the {MAX_JSON_SIZE} bytes a JSON document may have")]
    TooLarge { path: PathBuf, member: String, size: u64 },
}

fn normalize_member(name: &str) -> String {
    name.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/').to_string()
}

impl Archive {
    pub fn open_dir(dir: &Path) -> Result<Self, ArchiveError> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => Ok(Archive::Dir(dir.to_path_buf())),
            Ok(_) => Err(ArchiveError::Io {
                path: dir.to_path_buf(),
                source: io::Error::other("not a directory (an archive is named oci-archive: or docker-archive:)"),
            }),
            Err(source) => Err(ArchiveError::Io { path: dir.to_path_buf(), source }),
        }
    }

    pub fn open_tar(path: &Path) -> Result<Self, ArchiveError> {
        let err = |source| ArchiveError::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(err)?;
        let mut tar = tar::Archive::new(io::BufReader::new(file));
        let mut members = BTreeMap::new();
        for entry in tar.entries().map_err(err)? {
            let entry = entry.map_err(err)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = normalize_member(&String::from_utf8_lossy(&entry.path_bytes()));
            members.insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(Archive::Tar { path: path.to_path_buf(), members })
    }

    pub fn path(&self) -> &Path {
        match self {
            Archive::Dir(p) => p,
            Archive::Tar { path, .. } => path,
            Archive::Remote(r) => r.location(),
        }
    }

    pub fn contains(&self, member: &str) -> bool {
        let member = normalize_member(member);
        match self {
            Archive::Dir(dir) => dir.join(&member).is_file(),
            Archive::Tar { members, .. } => members.contains_key(&member),
            Archive::Remote(_) => remote_digest(&member).is_some(),
        }
    }

    /// The member's bytes as a stream, with its size.
    pub fn open(&self, member: &str) -> Result<(Box<dyn Read + Send>, u64), ArchiveError> {
        let member = normalize_member(member);
        if member.split('/').any(|c| c == "..") {
            return Err(ArchiveError::Missing { path: self.path().to_path_buf(), member });
        }
        match self {
            Archive::Remote(remote) => {
                let missing =
                    || ArchiveError::Missing { path: remote.location().to_path_buf(), member: member.clone() };
                let digest = remote_digest(&member).ok_or_else(missing)?;
                remote.open_blob(&digest).map_err(|source| match source.kind() {
                    io::ErrorKind::NotFound => missing(),
                    _ => ArchiveError::Io { path: remote.location().to_path_buf(), source },
                })
            }
            Archive::Dir(dir) => {
                let path = dir.join(&member);
                let file = File::open(&path).map_err(|source| match source.kind() {
                    io::ErrorKind::NotFound => ArchiveError::Missing { path: dir.clone(), member: member.clone() },
                    _ => ArchiveError::Io { path: path.clone(), source },
                })?;
                let size = file.metadata().map_err(|source| ArchiveError::Io { path, source })?.len();
                Ok((Box::new(file), size))
            }
            Archive::Tar { path, members } => {
                let (offset, size) = *members
                    .get(&member)
                    .ok_or_else(|| ArchiveError::Missing { path: path.clone(), member: member.clone() })?;
                let err = |source| ArchiveError::Io { path: path.clone(), source };
                let mut file = File::open(path).map_err(err)?;
                file.seek(SeekFrom::Start(offset)).map_err(err)?;
                Ok((Box::new(file.take(size)), size))
            }
        }
    }

    /// Reads a small member (JSON) whole.
    pub fn read_small(&self, member: &str) -> Result<Vec<u8>, ArchiveError> {
        let (mut reader, size) = self.open(member)?;
        if size > MAX_JSON_SIZE {
            return Err(ArchiveError::TooLarge { path: self.path().to_path_buf(), member: member.to_string(), size });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        reader.read_to_end(&mut bytes).map_err(|source| ArchiveError::Io { path: self.path().join(member), source })?;
        Ok(bytes)
    }
}

/// The digest a remote member `blobs/sha256/<hex>` names.
fn remote_digest(member: &str) -> Option<crate::digest::Digest> {
    format!("sha256:{}", member.strip_prefix("blobs/sha256/")?).parse().ok()
}

/// The member name of a blob in an OCI layout.
pub fn blob_member(digest: &crate::digest::Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}
