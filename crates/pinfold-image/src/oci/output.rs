//! Writing an assembled image in the forms of the contract: an OCI image layout
//! directory (`oci:DIR[:REF]`), a tar of one (`oci-archive:FILE`), or a tar that
//! `docker load` accepts (`docker-archive:FILE[:REPO:TAG]`).
//!
//! Every output is made beside its destination under a temporary name and moved into
//! place in one step (a rename, or for a directory that already exists, an atomic
//! exchange of the two directories), so a build that fails or is killed leaves the
//! previous output as it was. A registry (`docker://`) is written by the registry
//! crate's `push`, which keeps the same promise (the tag moves last); the application's
//! output writer sends `docker://` there and everything else here.

use super::assemble::{AssembledImage, Blob, BlobSource};
use super::json::canonical;
use super::read::{copy_verified, ReadError};
use super::reference::ImageRef;
use super::REF_NAME_ANNOTATION;
use crate::digest::VerifyingReader;
use crate::layer::tar::DeterministicTar;
use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{0}")]
    Unsupported(String),
    #[error("will not write the output {path}: it {why}")]
    Refused { path: PathBuf, why: String },
    /// An output that is not a file here (a registry), written by another crate.
    #[error(transparent)]
    Remote(Box<dyn std::error::Error + Send + Sync>),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io { path: path.to_path_buf(), source }
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The `index.json` of a layout holding `image` under the name `reference`.
pub fn layout_index(image: &AssembledImage, reference: &str) -> Vec<u8> {
    let mut top = Descriptor::new(
        MediaType::from(image.top.media_type.as_str()),
        image.top.size,
        super::read::oci_digest(&image.top.digest),
    );
    top.set_annotations(Some(HashMap::from([(REF_NAME_ANNOTATION.to_string(), reference.to_string())])));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![top])
        .build()
        .expect("index fields are set");
    canonical(&index)
}

/// Whether `target` may be written: an `oci:` directory only when it is absent, empty
/// or an OCI layout (it has `oci-layout`); an archive only over nothing, an empty file,
/// or a tar that begins as pinfold's do (`oci-layout` first), unless `force`. Anything
/// else is an error naming the path, and nothing is changed. Callers check before
/// they build; [`write`] checks again before it replaces anything.
pub fn check_target(target: &ImageRef, force: bool) -> Result<(), OutputError> {
    let refused = |path: &Path, why: &str| OutputError::Refused { path: path.to_path_buf(), why: why.to_string() };
    match target {
        ImageRef::Layout { dir, .. } => match fs::symlink_metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(OutputError::Io { path: dir.clone(), source: e }),
            Ok(m) if m.file_type().is_symlink() => {
                Err(refused(dir, "is a symlink; an oci: output is written only to a directory it can replace"))
            }
            Ok(m) if !m.is_dir() => Err(refused(dir, "exists and is not a directory; an oci: output is a directory")),
            Ok(_) => {
                let layout = fs::symlink_metadata(dir.join("oci-layout")).is_ok_and(|m| m.is_file());
                let empty = fs::read_dir(dir).map_err(io_err(dir))?.next().is_none();
                if layout || empty {
                    Ok(())
                } else {
                    Err(refused(
                        dir,
                        "is a directory that is neither empty nor an OCI layout (no oci-layout file); \
                         it is left as it is",
                    ))
                }
            }
        },
        ImageRef::OciArchive { file, .. } | ImageRef::DockerArchive { file, .. } if !force => {
            match fs::symlink_metadata(file) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(OutputError::Io { path: file.clone(), source: e }),
                Ok(m) if !m.is_file() => {
                    Err(refused(file, "exists and is not a regular file (use --force to replace it)"))
                }
                Ok(m) if m.len() == 0 => Ok(()),
                Ok(_) => {
                    let mut head = [0u8; 512];
                    let mut f = fs::File::open(file).map_err(io_err(file))?;
                    let n = read_up_to(&mut f, &mut head).map_err(io_err(file))?;
                    if n == 512 && head.starts_with(b"oci-layout\0") && &head[257..262] == b"ustar" {
                        Ok(())
                    } else {
                        Err(refused(file, "exists and is not an archive pinfold wrote (use --force to replace it)"))
                    }
                }
            }
        }
        _ => Ok(()),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Writes `image` to `target`; `default_ref` names it when the target gives no name.
/// An `oci:` directory that is not absent, empty or a layout is refused (see
/// [`check_target`]); archives are checked by the caller, which knows `--force`.
pub fn write(image: &AssembledImage, target: &ImageRef, epoch: u64) -> Result<(), OutputError> {
    if let ImageRef::Layout { .. } = target {
        check_target(target, true)?;
    }
    match target {
        ImageRef::Layout { dir, reference } => {
            write_layout_dir(image, dir, reference.as_deref().unwrap_or(&image.name))
        }
        ImageRef::OciArchive { file, reference } => write_atomic_file(file, |out| {
            write_layout_tar(image, out, reference.as_deref().unwrap_or(&image.name), epoch, None)
        }),
        ImageRef::DockerArchive { file, reference } => {
            let tag = match reference {
                Some(r) if r.contains(':') => r.clone(),
                Some(r) => format!("{r}:latest"),
                None => format!("{}:latest", image.name),
            };
            write_atomic_file(file, |out| write_layout_tar(image, out, &image.name, epoch, Some(&tag)))
        }
        ImageRef::Registry(r) => Err(OutputError::Unsupported(format!(
            "`docker://{r}` is a registry; it is written by the registry client, not as a file"
        ))),
        ImageRef::Name(n) => Err(OutputError::Unsupported(format!(
            "`{n}` is not an output; use oci:DIR, oci-archive:FILE or docker-archive:FILE"
        ))),
    }
}

/// Opens a blob's bytes for reading, with a check of its digest where it was not
/// made by this build.
fn blob_reader(blob: &Blob) -> Result<Box<dyn Read + '_>, OutputError> {
    Ok(match &blob.source {
        BlobSource::Bytes(bytes) => Box::new(&bytes[..]),
        BlobSource::File(path) => Box::new(fs::File::open(path).map_err(io_err(path))?),
        BlobSource::Base { archive, layer } => Box::new(archive.open(&layer.member).map_err(ReadError::from)?.0),
    })
}

fn write_blob_file(blob: &Blob, dest: &Path) -> Result<(), OutputError> {
    match &blob.source {
        BlobSource::Bytes(bytes) => fs::write(dest, &bytes[..]).map_err(io_err(dest)),
        BlobSource::File(path) => {
            // A hard link costs nothing for a layer of any size; the cache never
            // rewrites a blob in place, so the link cannot change under the output.
            if fs::hard_link(path, dest).is_err() {
                fs::copy(path, dest).map_err(io_err(dest))?;
            }
            Ok(())
        }
        BlobSource::Base { archive, layer } => {
            let file = fs::File::create(dest).map_err(io_err(dest))?;
            copy_verified(archive, layer, io::BufWriter::new(file))?
                .into_inner()
                .map_err(|e| OutputError::Io { path: dest.to_path_buf(), source: e.into_error() })?;
            Ok(())
        }
    }
}

fn write_layout_dir(image: &AssembledImage, dir: &Path, reference: &str) -> Result<(), OutputError> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    crate::fsutil::sweep_dead_temporaries(parent);
    let tmp = tempfile::Builder::new()
        .prefix(&crate::fsutil::temp_prefix("layout"))
        .tempdir_in(parent)
        .map_err(io_err(parent))?;
    let root = tmp.path();
    let blobs_dir = root.join("blobs").join("sha256");
    fs::create_dir_all(&blobs_dir).map_err(io_err(&blobs_dir))?;
    fs::write(root.join("oci-layout"), OCI_LAYOUT).map_err(io_err(root))?;
    for blob in image.blobs.values() {
        write_blob_file(blob, &blobs_dir.join(blob.digest.hex()))?;
    }
    fs::write(root.join("index.json"), layout_index(image, reference)).map_err(io_err(root))?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).map_err(io_err(root))?;
    replace_dir(root, dir)?;
    Ok(())
}

/// Moves the finished directory `new` to `dest` in one step. The old content, if any,
/// ends up at `new` and is removed by the caller's temporary-directory guard.
fn replace_dir(new: &Path, dest: &Path) -> Result<(), OutputError> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::rename(new, dest).map_err(io_err(dest)),
        Err(e) => Err(OutputError::Io { path: dest.to_path_buf(), source: e }),
        Ok(m) if !m.is_dir() => Err(OutputError::Io {
            path: dest.to_path_buf(),
            source: io::Error::other("exists and is not a directory; an oci: output is a directory"),
        }),
        Ok(_) => {
            rustix::fs::renameat_with(rustix::fs::CWD, new, rustix::fs::CWD, dest, rustix::fs::RenameFlags::EXCHANGE)
                .map_err(|e| OutputError::Io { path: dest.to_path_buf(), source: e.into() })
        }
    }
}

/// Writes through `fill` into a temporary file beside `path`, then renames it over `path`.
fn write_atomic_file(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<(), OutputError>,
) -> Result<(), OutputError> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    crate::fsutil::sweep_dead_temporaries(parent);
    let tmp = tempfile::Builder::new()
        .prefix(&crate::fsutil::temp_prefix("archive"))
        .tempfile_in(parent)
        .map_err(io_err(parent))?;
    {
        let mut out = io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        fill(&mut out)?;
        out.flush().map_err(io_err(path))?;
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644)).map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| OutputError::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry<'a> {
    config: String,
    repo_tags: Vec<&'a str>,
    layers: Vec<String>,
}

/// A tar of the layout, in a fixed order: `oci-layout`, `index.json`, `manifest.json`
/// (docker-archive only), `blobs/`, `blobs/sha256/`, then the blobs by digest.
fn write_layout_tar(
    image: &AssembledImage,
    out: &mut dyn Write,
    reference: &str,
    epoch: u64,
    docker_tag: Option<&str>,
) -> Result<(), OutputError> {
    let here = Path::new("archive");
    let mut tar = DeterministicTar::new(out, epoch);
    tar.append_file("oci-layout", 0o644, 0, 0, OCI_LAYOUT.len() as u64, OCI_LAYOUT).map_err(io_err(here))?;
    let index = layout_index(image, reference);
    tar.append_file("index.json", 0o644, 0, 0, index.len() as u64, &index[..]).map_err(io_err(here))?;
    if let Some(tag) = docker_tag {
        // docker load reads one image per entry; the first platform's image is the one
        // listed (a fixed choice, never the host's platform, so the bytes are the same
        // everywhere). The whole index is in the layout beside it.
        let (config, layers) = &image.per_platform[0];
        let entries = [DockerManifestEntry {
            config: format!("blobs/sha256/{}", config.hex()),
            repo_tags: vec![tag],
            layers: layers.iter().map(|d| format!("blobs/sha256/{}", d.hex())).collect(),
        }];
        let manifest = serde_json::to_vec(&entries).expect("manifest.json serializes");
        tar.append_file("manifest.json", 0o644, 0, 0, manifest.len() as u64, &manifest[..]).map_err(io_err(here))?;
    }
    tar.append_dir("blobs", 0o755, 0, 0).map_err(io_err(here))?;
    tar.append_dir("blobs/sha256", 0o755, 0, 0).map_err(io_err(here))?;
    for blob in image.blobs.values() {
        let name = format!("blobs/sha256/{}", blob.digest.hex());
        let mut reader = VerifyingReader::new(blob_reader(blob)?);
        tar.append_file(&name, 0o644, 0, 0, blob.size, &mut reader).map_err(io_err(Path::new(&name)))?;
        let (actual, _) = reader.finish().map_err(io_err(Path::new(&name)))?;
        if actual != blob.digest {
            return Err(ReadError::DigestMismatch {
                what: format!("blob {name}"),
                expected: blob.digest.to_string(),
                actual,
            }
            .into());
        }
    }
    tar.finish().map_err(io_err(here))?;
    Ok(())
}
