//! The two sides of a comparison, from any reference form of the contract: stored
//! images are opened through the verifying reader of [`pinfold_image::oci::read`]; a bare
//! NAME is first built from the build file into a temporary layout.
//!
//! Two things are added over [`OpenedImage::open`]. A JSON blob that does not match
//! its digest is not an error here but a finding (the image is tampered), located and
//! named with both digests. And a layout whose `index.json` lists, beside its one
//! named image, OCI 1.1 referrers (the provenance `pinfold build --provenance` adds)
//! opens as that image without `:REF`, since a referrer is not an image of its own.

use super::report::{Side, SideInfo, Tampered};
use super::CompareError;
use crate::build::{self, BuildRequest, BuiltImage};
use crate::plan::PlanInput;
use pinfold_image::digest::Digest;
use pinfold_image::oci::archive::{blob_member, Archive};
use pinfold_image::oci::read::{OpenedImage, ReadError};
use pinfold_image::oci::reference::ImageRef;
use pinfold_image::oci::{media, REF_NAME_ANNOTATION};
use pinfold_lang::diag::Diagnostics;
use serde_json::Value;
use std::path::PathBuf;

/// One side of a comparison: an opened image and how the user named it.
#[derive(Debug)]
pub struct View {
    pub label: String,
    pub reference: ImageRef,
    pub image: OpenedImage,
}

impl View {
    /// A docker-archive read through its `manifest.json`: the top object is the config.
    pub fn is_docker(&self) -> bool {
        self.image.top.media_type == media::DOCKER_CONFIG
    }

    pub fn info(&self) -> SideInfo {
        SideInfo {
            reference: self.label.clone(),
            digest: Some(self.image.top.digest),
            media_type: Some(self.image.top.media_type.clone()),
        }
    }
}

/// An image, or the proof that it is not what it claims to be.
#[derive(Debug)]
pub enum Opened {
    View(View),
    Tampered(Tampered),
}

/// Opens a stored image (not a NAME: see [`build_name`]).
pub fn open(reference: &ImageRef, label: &str, side: Side) -> Result<Opened, CompareError> {
    let result = match crate::resolve::open_image(reference) {
        Err(e @ ReadError::Ambiguous { .. }) => match sole_image_name(reference) {
            Some(name) => crate::resolve::open_image(&with_reference(reference, name)),
            None => Err(e),
        },
        other => other,
    };
    match result {
        Ok(image) => Ok(Opened::View(View { label: label.to_string(), reference: reference.clone(), image })),
        Err(e @ (ReadError::DigestMismatch { .. } | ReadError::SizeMismatch { .. })) => {
            let located = locate_tampered(reference);
            let tampered = match (located, e) {
                (Some((blob, expected, actual)), _) => {
                    Tampered { side, blob: format!("{blob} of {label}"), expected, actual }
                }
                (None, ReadError::DigestMismatch { what, expected, actual }) => {
                    Tampered { side, blob: format!("{what} of {label}"), expected, actual: actual.to_string() }
                }
                (None, ReadError::SizeMismatch { what, expected, actual }) => Tampered {
                    side,
                    blob: format!("{what} of {label}"),
                    expected: format!("{expected} bytes"),
                    actual: format!("{actual} bytes"),
                },
                (None, other) => return Err(CompareError::Open { reference: label.to_string(), source: other }),
            };
            Ok(Opened::Tampered(tampered))
        }
        Err(source) => Err(CompareError::Open { reference: label.to_string(), source }),
    }
}

fn with_reference(reference: &ImageRef, name: String) -> ImageRef {
    match reference {
        ImageRef::Layout { dir, .. } => ImageRef::Layout { dir: dir.clone(), reference: Some(name) },
        ImageRef::OciArchive { file, .. } => ImageRef::OciArchive { file: file.clone(), reference: Some(name) },
        other => other.clone(),
    }
}

/// The storage of a layout or archive reference.
pub fn archive_of(reference: &ImageRef) -> Option<Archive> {
    match reference {
        ImageRef::Layout { dir, .. } => Archive::open_dir(dir).ok(),
        ImageRef::OciArchive { file, .. } | ImageRef::DockerArchive { file, .. } => Archive::open_tar(file).ok(),
        _ => None,
    }
}

/// The `index.json` of a layout, parsed; `None` when there is none.
pub fn layout_index(archive: &Archive) -> Option<Value> {
    serde_json::from_slice(&archive.read_small("index.json").ok()?).ok()
}

/// The ref name of the one image in `index.json` that is not a referrer (a manifest
/// whose descriptor has an `artifactType`), when there is exactly one.
pub fn sole_image_name(reference: &ImageRef) -> Option<String> {
    let index = layout_index(&archive_of(reference)?)?;
    let images: Vec<&Value> = index["manifests"]
        .as_array()?
        .iter()
        .filter(|d| d.get("artifactType").is_none())
        .filter(|d| d["mediaType"].as_str().is_some_and(|m| media::is_index(m) || media::is_manifest(m)))
        .collect();
    match images.as_slice() {
        [one] => one["annotations"][REF_NAME_ANNOTATION].as_str().map(str::to_string),
        _ => None,
    }
}

/// Walks the JSON blobs of a layout from `index.json` down to the configs and returns
/// the first one whose bytes are not what its descriptor says: (what and where,
/// expected digest, actual digest).
fn locate_tampered(reference: &ImageRef) -> Option<(String, String, String)> {
    let archive = archive_of(reference)?;
    let index = layout_index(&archive)?;
    let mut queue: Vec<(Value, String)> =
        index["manifests"].as_array()?.iter().rev().map(|d| (d.clone(), "the top object".to_string())).collect();
    while let Some((descriptor, role)) = queue.pop() {
        let media_type = descriptor["mediaType"].as_str().unwrap_or_default().to_string();
        let is_json = media::is_index(&media_type) || media::is_manifest(&media_type) || media_type.ends_with("+json");
        let Some(digest) = descriptor["digest"].as_str().and_then(|d| d.parse::<Digest>().ok()) else { continue };
        if !is_json || media_type.starts_with("application/vnd.oci.image.layer") {
            continue;
        }
        let Ok(bytes) = archive.read_small(&blob_member(&digest)) else { continue };
        let actual = Digest::of(&bytes);
        let size_ok = descriptor["size"].as_u64().is_none_or(|s| s == bytes.len() as u64);
        if actual != digest || !size_ok {
            return Some((format!("{role} `{}`", blob_member(&digest)), digest.to_string(), actual.to_string()));
        }
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else { continue };
        if media::is_index(&media_type) {
            for d in value["manifests"].as_array().into_iter().flatten().rev() {
                let platform = format!(
                    "{}/{}",
                    d["platform"]["os"].as_str().unwrap_or("?"),
                    d["platform"]["architecture"].as_str().unwrap_or("?")
                );
                queue.push((d.clone(), format!("the manifest of {platform}")));
            }
        } else if media::is_manifest(&media_type) {
            let of = role.strip_prefix("the manifest of ").map_or(String::new(), |p| format!(" of {p}"));
            queue.push((value["config"].clone(), format!("the config{of}")));
        }
    }
    None
}

/// How a bare NAME is built.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    pub file: PathBuf,
    pub plan_input: PlanInput,
    pub cache_dir: Option<PathBuf>,
    /// Build every layer anew (verify does, so that a cache cannot vouch for itself).
    pub no_cache: bool,
}

/// An image built into a temporary layout, removed when this is dropped.
#[derive(Debug)]
pub struct Built {
    pub reference: ImageRef,
    pub image: BuiltImage,
    pub warnings: Diagnostics,
    pub epoch: u64,
    _dir: tempfile::TempDir,
}

/// Builds image `name` of the build file into a temporary layout.
pub fn build_name(name: &str, context: &BuildContext) -> Result<Built, CompareError> {
    let dir = tempfile::Builder::new().prefix("pinfold-rebuild-").tempdir().map_err(CompareError::Temp)?;
    let reference = ImageRef::Layout { dir: dir.path().join("image"), reference: None };
    let request = BuildRequest {
        output: Some(reference.clone()),
        plan_input: context.plan_input.clone(),
        cache_dir: context.cache_dir.clone(),
        no_cache: context.no_cache,
        out_root: dir.path().to_path_buf(),
        ..BuildRequest::new(&context.file, &[name.to_string()])
    };
    let report = build::build(&request)?;
    let image = report
        .images
        .into_iter()
        .next()
        .ok_or_else(|| CompareError::Usage(format!("building `{name}` gave no image")))?;
    Ok(Built { reference, image, warnings: report.warnings, epoch: report.epoch, _dir: dir })
}

/// Both sides of `pinfold diff`; images built from NAMEs live as long as this.
#[derive(Debug)]
pub struct Pair {
    pub built: Vec<Built>,
    pub a: Result<Opened, CompareError>,
    pub b: Result<Opened, CompareError>,
}

/// Opens both sides of `pinfold diff`, building NAMEs first. A side that cannot be
/// opened is kept as its error, so that a tampered side is reported whatever the other.
pub fn open_pair(a: &str, b: &str, context: &BuildContext) -> Result<Pair, CompareError> {
    let mut built = Vec::new();
    let mut opened = Vec::new();
    for (text, side) in [(a, Side::A), (b, Side::B)] {
        let reference: ImageRef = text.parse().map_err(CompareError::Usage)?;
        let (reference, label) = match reference {
            ImageRef::Name(name) => {
                let image = build_name(&name, context)?;
                let r = image.reference.clone();
                built.push(image);
                (r, format!("{name} (built from {})", context.file.display()))
            }
            other => (other, text.to_string()),
        };
        opened.push(open(&reference, &label, side));
    }
    let b = opened.pop().expect("two sides");
    let a = opened.pop().expect("two sides");
    Ok(Pair { built, a, b })
}
