//! Opening an image from a layout or an archive: the top object (index or manifest),
//! the manifest of each platform, configs and layer locations. Every JSON blob is
//! checked against the digest that names it before it is parsed; layers are checked
//! while they are streamed ([`copy_verified`]). A mismatch names both digests.

use super::archive::{blob_member, Archive, ArchiveError};
use super::media;
use super::reference::ImageRef;
use crate::digest::{Digest, HashingWriter};
use crate::platform::Platform;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use std::io::{self, Write};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{what} does not match its digest: expected {expected}, found {actual}")]
    DigestMismatch { what: String, expected: String, actual: Digest },
    #[error("{what} has {actual} bytes, its descriptor says {expected}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },
    #[error("{what} is not valid: {message}")]
    Invalid { what: String, message: String },
    #[error("{location} holds no image named `{reference}` (it holds: {available})")]
    RefNotFound { location: String, reference: String, available: String },
    #[error("{location} holds {count} images; name one with :REF (it holds: {available})")]
    Ambiguous { location: String, count: usize, available: String },
    #[error("{location} holds no image")]
    Empty { location: String },
    #[error("{0}")]
    Unsupported(String),
    /// An image that is not a file here (a registry), read by another crate.
    #[error(transparent)]
    Remote(Box<dyn std::error::Error + Send + Sync>),
}

/// Where a layer's bytes are, and what they must hash to.
#[derive(Debug, Clone)]
pub struct LayerSource {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// Member of the archive holding the blob.
    pub member: String,
}

/// One platform's image: manifest, config and layers.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// The platform as the index names it, else as the config says.
    pub platform: Option<Platform>,
    pub manifest_digest: Digest,
    pub manifest_bytes: Vec<u8>,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfiguration,
    pub layers: Vec<LayerSource>,
}

#[derive(Debug, Clone)]
pub struct TopObject {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// An opened image: its top object and the manifests below it.
#[derive(Debug, Clone)]
pub struct OpenedImage {
    pub archive: Arc<Archive>,
    pub top: TopObject,
    pub manifests: Vec<PlatformImage>,
}

impl OpenedImage {
    /// Opens an image from a layout or an archive. Registries (`docker://`) and
    /// build-file names are opened by the application's resolver, which calls this
    /// for the local forms.
    pub fn open(reference: &ImageRef) -> Result<Self, ReadError> {
        match reference {
            ImageRef::Layout { dir, reference } => open_layout(Archive::open_dir(dir)?, reference.as_deref()),
            ImageRef::OciArchive { file, reference } => open_layout(Archive::open_tar(file)?, reference.as_deref()),
            ImageRef::DockerArchive { file, reference } => {
                open_docker_archive(Archive::open_tar(file)?, reference.as_deref())
            }
            ImageRef::Registry(r) => {
                Err(ReadError::Unsupported(format!("`docker://{r}` is a registry; it is opened by the resolver")))
            }
            ImageRef::Name(n) => Err(ReadError::Unsupported(format!("`{n}` is a build-file name, not a stored image"))),
        }
    }

    /// The manifest for `wanted`, or an error naming the platforms there are.
    pub fn for_platform(&self, wanted: &Platform) -> Option<&PlatformImage> {
        self.manifests.iter().find(|m| m.platform.as_ref().is_some_and(|p| platforms_match(p, wanted)))
    }

    pub fn platforms_text(&self) -> String {
        let names: Vec<String> = self
            .manifests
            .iter()
            .map(|m| m.platform.as_ref().map_or("unknown platform".into(), |p| p.to_string()))
            .collect();
        names.join(", ")
    }
}

pub use crate::platform::platforms_match;

fn check_digest(what: &str, bytes: &[u8], expected: &str) -> Result<Digest, ReadError> {
    let actual = Digest::of(bytes);
    if actual.to_string() != expected {
        return Err(ReadError::DigestMismatch { what: what.to_string(), expected: expected.to_string(), actual });
    }
    Ok(actual)
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, ReadError> {
    serde_json::from_slice(bytes).map_err(|e| ReadError::Invalid { what: what.to_string(), message: e.to_string() })
}

fn parse_digest(what: &str, text: &str) -> Result<Digest, ReadError> {
    text.parse().map_err(|e| ReadError::Invalid { what: what.to_string(), message: format!("digest `{text}`: {e}") })
}

/// Reads the blob `digest` from a layout and checks its bytes.
fn read_blob(archive: &Archive, what: &str, digest: &str, size: Option<u64>) -> Result<(Digest, Vec<u8>), ReadError> {
    let parsed = parse_digest(what, digest)?;
    let bytes = archive.read_small(&blob_member(&parsed))?;
    if let Some(expected) = size {
        if bytes.len() as u64 != expected {
            return Err(ReadError::SizeMismatch { what: what.to_string(), expected, actual: bytes.len() as u64 });
        }
    }
    Ok((check_digest(what, &bytes, digest)?, bytes))
}

fn platform_of_descriptor(d: &oci_spec::image::Descriptor) -> Option<Platform> {
    d.platform().as_ref().map(|p| Platform {
        os: p.os().to_string(),
        architecture: p.architecture().to_string(),
        variant: p.variant().clone(),
    })
}

fn platform_of_config(c: &ImageConfiguration) -> Platform {
    Platform { os: c.os().to_string(), architecture: c.architecture().to_string(), variant: c.variant().clone() }
}

fn open_layout(archive: Archive, reference: Option<&str>) -> Result<OpenedImage, ReadError> {
    let location = archive.path().display().to_string();
    if !archive.contains("oci-layout") {
        return Err(ReadError::Invalid {
            what: location,
            message: "no `oci-layout` file: not an OCI image layout".into(),
        });
    }
    let index_bytes = archive.read_small("index.json")?;
    let index: ImageIndex = parse_json("index.json", &index_bytes)?;
    let name_of = |d: &oci_spec::image::Descriptor| {
        d.annotations().as_ref().and_then(|a| a.get(super::REF_NAME_ANNOTATION)).cloned()
    };
    let candidates: Vec<_> = index
        .manifests()
        .iter()
        .filter(|d| media::is_index(d.media_type().as_ref()) || media::is_manifest(d.media_type().as_ref()))
        // Artifacts beside an image (provenance, signatures) are not images to open.
        .filter(|d| d.artifact_type().is_none())
        .collect();
    let available = {
        let mut names: Vec<String> = candidates.iter().filter_map(|d| name_of(d)).collect();
        names.sort();
        if names.is_empty() {
            "no named image".to_string()
        } else {
            names.join(", ")
        }
    };
    let chosen = match reference {
        Some(r) => {
            candidates.iter().find(|d| name_of(d).as_deref() == Some(r)).ok_or_else(|| ReadError::RefNotFound {
                location: location.clone(),
                reference: r.to_string(),
                available: available.clone(),
            })?
        }
        None => match candidates.as_slice() {
            [] => return Err(ReadError::Empty { location }),
            [one] => one,
            many => return Err(ReadError::Ambiguous { location, count: many.len(), available }),
        },
    };
    let media_type = chosen.media_type().to_string();
    let (digest, bytes) = read_blob(&archive, "the image's top object", chosen.digest().as_ref(), Some(chosen.size()))?;
    let mut manifests = Vec::new();
    if media::is_index(&media_type) {
        let nested: ImageIndex = parse_json("the image index", &bytes)?;
        for d in nested.manifests() {
            if !media::is_manifest(d.media_type().as_ref()) {
                continue; // attestations, nested indexes: not images of a platform
            }
            let (mdigest, mbytes) = read_blob(&archive, "a platform manifest", d.digest().as_ref(), Some(d.size()))?;
            manifests.push(load_manifest(&archive, mdigest, mbytes, platform_of_descriptor(d))?);
        }
    } else {
        manifests.push(load_manifest(&archive, digest, bytes.clone(), platform_of_descriptor(chosen))?);
    }
    Ok(OpenedImage { archive: Arc::new(archive), top: TopObject { digest, media_type, bytes }, manifests })
}

pub fn load_manifest(
    archive: &Archive,
    digest: Digest,
    bytes: Vec<u8>,
    platform: Option<Platform>,
) -> Result<PlatformImage, ReadError> {
    let manifest: ImageManifest = parse_json("a manifest", &bytes)?;
    let config_desc = manifest.config();
    let (config_digest, config_bytes) =
        read_blob(archive, "an image config", config_desc.digest().as_ref(), Some(config_desc.size()))?;
    let config: ImageConfiguration = parse_json("an image config", &config_bytes)?;
    let layers = manifest
        .layers()
        .iter()
        .map(|l| {
            let digest = parse_digest("a layer descriptor", l.digest().as_ref())?;
            Ok(LayerSource {
                media_type: l.media_type().to_string(),
                digest,
                size: l.size(),
                member: blob_member(&digest),
            })
        })
        .collect::<Result<Vec<_>, ReadError>>()?;
    if layers.len() != config.rootfs().diff_ids().len() {
        return Err(ReadError::Invalid {
            what: format!("manifest {digest}"),
            message: format!("{} layers but {} diff_ids in the config", layers.len(), config.rootfs().diff_ids().len()),
        });
    }
    let platform = platform.or_else(|| Some(platform_of_config(&config)));
    Ok(PlatformImage {
        platform,
        manifest_digest: digest,
        manifest_bytes: bytes,
        manifest,
        config_digest,
        config_bytes,
        config,
        layers,
    })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A `docker save` tar. Layers are uncompressed tars whose sha256 is their diff_id, so
/// the image is pinned by its config digest (docker's image ID) and each layer is
/// checked against the config's diff_ids.
fn open_docker_archive(archive: Archive, reference: Option<&str>) -> Result<OpenedImage, ReadError> {
    let location = archive.path().display().to_string();
    let entries: Vec<DockerManifestEntry> = parse_json("manifest.json", &archive.read_small("manifest.json")?)?;
    let available = {
        let tags: Vec<String> = entries.iter().flat_map(|e| e.repo_tags.clone().unwrap_or_default()).collect();
        if tags.is_empty() {
            "untagged images".to_string()
        } else {
            tags.join(", ")
        }
    };
    let entry = match reference {
        Some(r) => entries.iter().find(|e| e.repo_tags.as_ref().is_some_and(|t| t.iter().any(|t| t == r))).ok_or_else(
            || ReadError::RefNotFound { location: location.clone(), reference: r.to_string(), available },
        )?,
        None => match entries.as_slice() {
            [] => return Err(ReadError::Empty { location }),
            [one] => one,
            many => return Err(ReadError::Ambiguous { location, count: many.len(), available }),
        },
    };
    let config_bytes = archive.read_small(&entry.config)?;
    let config_digest = Digest::of(&config_bytes);
    // The config's file name is its digest in both the legacy (`<hex>.json`) and the
    // OCI-in-tar (`blobs/sha256/<hex>`) forms of `docker save`.
    let named = entry.config.rsplit('/').next().unwrap_or_default().trim_end_matches(".json");
    if named.len() == 64 && named != config_digest.hex() {
        return Err(ReadError::DigestMismatch {
            what: format!("the config `{}`", entry.config),
            expected: format!("sha256:{named}"),
            actual: config_digest,
        });
    }
    let config: ImageConfiguration = parse_json("an image config", &config_bytes)?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(ReadError::Invalid {
            what: location,
            message: format!("{} layers but {} diff_ids in the config", entry.layers.len(), diff_ids.len()),
        });
    }
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    for (member, diff_id) in entry.layers.iter().zip(diff_ids) {
        let diff_id = parse_digest("a diff_id", diff_id)?;
        let (mut reader, size) = archive.open(member)?;
        let mut magic = [0u8; 4];
        let sniffed = io::Read::read(&mut reader, &mut magic).unwrap_or(0);
        let media_type = match &magic[..sniffed.min(4)] {
            [0x1f, 0x8b, ..] => media::LAYER_GZIP,
            [0x28, 0xb5, 0x2f, 0xfd] => media::LAYER_ZSTD,
            _ => media::LAYER_TAR,
        };
        // `blobs/sha256/<hex>` (docker 25+) names the blob by its digest; a legacy
        // `<id>/layer.tar` is an uncompressed tar, whose digest is its diff_id.
        let digest = match member.strip_prefix("blobs/sha256/") {
            Some(hex) => parse_digest("a layer's file name", &format!("sha256:{hex}"))?,
            None if media_type == media::LAYER_TAR => diff_id,
            None => {
                return Err(ReadError::Unsupported(format!(
                    "{location}: layer `{member}` is compressed and not named by its digest, so it cannot be checked"
                )))
            }
        };
        layers.push(LayerSource { media_type: media_type.to_string(), digest, size, member: member.clone() });
        descriptors.push(oci_spec::image::Descriptor::new(
            oci_spec::image::MediaType::from(media_type),
            size,
            oci_digest(&digest),
        ));
    }
    let manifest = oci_spec::image::ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(oci_spec::image::MediaType::ImageManifest)
        .config(oci_spec::image::Descriptor::new(
            oci_spec::image::MediaType::ImageConfig,
            config_bytes.len() as u64,
            oci_digest(&config_digest),
        ))
        .layers(descriptors)
        .build()
        .map_err(|e| ReadError::Invalid { what: "docker-archive".into(), message: e.to_string() })?;
    let manifest_bytes = super::json::canonical(&manifest);
    let manifest_digest = Digest::of(&manifest_bytes);
    let platform = Some(platform_of_config(&config));
    let image = PlatformImage {
        platform,
        manifest_digest,
        manifest_bytes,
        manifest,
        config_digest,
        config_bytes: config_bytes.clone(),
        config,
        layers,
    };
    Ok(OpenedImage {
        archive: Arc::new(archive),
        top: TopObject { digest: config_digest, media_type: media::DOCKER_CONFIG.to_string(), bytes: config_bytes },
        manifests: vec![image],
    })
}

/// Our digest as oci-spec's.
pub fn oci_digest(d: &Digest) -> oci_spec::image::Digest {
    d.to_string().parse().expect("a sha256 digest printed by Digest is valid for oci-spec")
}

/// Streams a layer from `archive` to `out`, checking its size and digest on the way.
/// Nothing is trusted: a blob that does not hash to its name is an error that names
/// both digests, and the caller discards what was written.
pub fn copy_verified<W: Write>(archive: &Archive, layer: &LayerSource, out: W) -> Result<W, ReadError> {
    let (reader, _) = archive.open(&layer.member)?;
    let mut reader = crate::digest::SizeLimited::new(reader, layer.size, format!("layer {}", layer.digest));
    let mut writer = HashingWriter::new(out);
    io::copy(&mut reader, &mut writer)
        .map_err(|source| ReadError::Archive(ArchiveError::Io { path: archive.path().join(&layer.member), source }))?;
    let (actual, size, out) = writer.finish();
    if actual != layer.digest {
        return Err(ReadError::DigestMismatch {
            what: format!("layer `{}` of {}", layer.member, archive.path().display()),
            expected: layer.digest.to_string(),
            actual,
        });
    }
    if size != layer.size {
        return Err(ReadError::SizeMismatch {
            what: format!("layer {}", layer.digest),
            expected: layer.size,
            actual: size,
        });
    }
    Ok(out)
}
