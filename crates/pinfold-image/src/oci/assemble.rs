//! Assembling OCI objects from a plan and its built layers: the image config (the
//! base's, with the build file's nodes applied), the manifest of each platform, and
//! the image index when there are several. Every JSON blob is written canonically,
//! and every `created` is the epoch.

use super::archive::Archive;
use super::json::canonical;
use super::media;
use super::read::{oci_digest, LayerSource};
use crate::digest::Digest;
use crate::layer::LayerBlob;
use crate::oci::read::{OpenedImage, PlatformImage};
use crate::platform::Platform;
use oci_spec::image::{
    Arch, Config, Descriptor, HistoryBuilder, ImageConfiguration, ImageIndexBuilder, ImageManifestBuilder, MediaType,
    Os, PlatformBuilder, RootFsBuilder,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the bytes of a blob of the output come from.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// JSON made by this build.
    Bytes(Arc<Vec<u8>>),
    /// A layer made by this build, in the cache (already hashed when it was written).
    File(PathBuf),
    /// A layer of a base image, checked against its digest when it is copied.
    Base { archive: Arc<Archive>, layer: LayerSource },
}

#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub source: BlobSource,
}

/// One platform's manifest of an assembled image.
#[derive(Debug, Clone)]
pub struct AssembledManifest {
    pub platform: Platform,
    pub digest: Digest,
    pub size: u64,
}

/// An image ready to be written: its top object and all blobs it needs.
#[derive(Debug, Clone)]
pub struct AssembledImage {
    pub name: String,
    /// The index when there are several platforms, else the one manifest.
    pub top: Blob,
    pub manifests: Vec<AssembledManifest>,
    /// Every blob, the top object included, by digest (each stored once).
    pub blobs: BTreeMap<Digest, Blob>,
    /// Config and layer blobs of each manifest, in order (for docker-archive).
    pub per_platform: Vec<(Digest, Vec<Digest>)>,
}

/// The config an image's build file gives (its platform's override applied); merged
/// with the base's config when the image is assembled. Env keeps the order it was
/// given in (a key given again keeps its first place), as `spec/language.md` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSpec {
    pub env: Vec<(String, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub expose: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
}

/// Sets `key` in an ordered environment: a key given again keeps its first place.
pub fn set_env(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value.to_string(),
        None => env.push((key.to_string(), value.to_string())),
    }
}

/// The base an image starts from: its layers are copied as they are.
#[derive(Debug, Clone, Copy)]
pub struct BaseSpec<'a> {
    /// The base's name in the build file (the `base.name` annotation).
    pub name: &'a str,
    pub image: &'a OpenedImage,
    pub platform_image: &'a PlatformImage,
}

/// One platform of an image, as the plan describes it: what [`assemble_image`] needs
/// and nothing of how the plan was made.
#[derive(Debug, Clone)]
pub struct TargetSpec<'a> {
    pub platform: &'a Platform,
    pub base: Option<BaseSpec<'a>>,
    pub config: &'a ConfigSpec,
    /// The names of the layers this build made, in order (for `history`).
    pub layer_names: Vec<&'a str>,
    pub annotations: &'a BTreeMap<String, String>,
}

/// RFC 3339 UTC time of the epoch, as OCI `created` fields hold it.
pub fn rfc3339(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch)).to_string()
}

fn json_blob(media_type: &str, bytes: Vec<u8>) -> Blob {
    Blob {
        digest: Digest::of(&bytes),
        size: bytes.len() as u64,
        media_type: media_type.to_string(),
        source: BlobSource::Bytes(Arc::new(bytes)),
    }
}

fn descriptor(blob: &Blob) -> Descriptor {
    Descriptor::new(MediaType::from(blob.media_type.as_str()), blob.size, oci_digest(&blob.digest))
}

fn env_pairs(env: &[String]) -> Vec<(String, String)> {
    env.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

/// Builds the config and manifest of one platform. `layers` are the blobs of the plan's
/// layers in order, `layer_files` where each is stored.
pub fn assemble_target(
    target: &TargetSpec<'_>,
    layers: &[(LayerBlob, PathBuf)],
    epoch: u64,
    blobs: &mut BTreeMap<Digest, Blob>,
) -> (Blob, Vec<Digest>) {
    let created = rfc3339(epoch);
    let base = target.base.map(|b| (b, b.platform_image));
    let mut config: Config = base.and_then(|(_, p)| p.config.config().clone()).unwrap_or_default();
    let plan = target.config;

    let mut env = env_pairs(config.env().as_deref().unwrap_or_default());
    for (k, v) in &plan.env {
        set_env(&mut env, k, v);
    }
    if !env.is_empty() {
        config.set_env(Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()));
    }
    if let Some(entrypoint) = &plan.entrypoint {
        config.set_entrypoint(Some(entrypoint.clone()));
        // As in a Dockerfile: a new entrypoint drops the base's cmd unless one is given.
        if plan.cmd.is_none() {
            config.set_cmd(None);
        }
    }
    if let Some(cmd) = &plan.cmd {
        config.set_cmd(Some(cmd.clone()));
    }
    if let Some(w) = &plan.workdir {
        config.set_working_dir(Some(w.clone()));
    }
    if let Some(u) = &plan.user {
        config.set_user(Some(u.clone()));
    }
    if !plan.labels.is_empty() {
        let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
        labels.extend(plan.labels.clone());
        config.set_labels(Some(labels));
    }
    if !plan.expose.is_empty() {
        let mut ports = config.exposed_ports().clone().unwrap_or_default();
        ports.extend(plan.expose.iter().cloned());
        ports.sort();
        ports.dedup();
        config.set_exposed_ports(Some(ports));
    }
    if !plan.volumes.is_empty() {
        let mut volumes = config.volumes().clone().unwrap_or_default();
        volumes.extend(plan.volumes.iter().cloned());
        volumes.sort();
        volumes.dedup();
        config.set_volumes(Some(volumes));
    }
    if let Some(s) = &plan.stop_signal {
        config.set_stop_signal(Some(s.clone()));
    }

    let mut diff_ids: Vec<String> = base.map(|(_, p)| p.config.rootfs().diff_ids().clone()).unwrap_or_default();
    let mut history = base.and_then(|(_, p)| p.config.history().clone()).unwrap_or_default();
    let mut layer_descriptors: Vec<Descriptor> = Vec::new();
    let mut layer_digests: Vec<Digest> = Vec::new();
    if let Some((_, p)) = base {
        for (layer, desc) in p.layers.iter().zip(p.manifest.layers()) {
            layer_descriptors.push(desc.clone());
            layer_digests.push(layer.digest);
            blobs.entry(layer.digest).or_insert_with(|| Blob {
                digest: layer.digest,
                size: layer.size,
                media_type: layer.media_type.clone(),
                source: BlobSource::Base { archive: b_archive(target), layer: layer.clone() },
            });
        }
    }
    for (layer_name, (blob, file)) in target.layer_names.iter().zip(layers) {
        diff_ids.push(blob.diff_id.to_string());
        history.push(
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(format!("pinfold: layer {layer_name}"))
                .build()
                .expect("history has no required fields"),
        );
        let b = Blob {
            digest: blob.digest,
            size: blob.size,
            media_type: blob.media_type.clone(),
            source: BlobSource::File(file.clone()),
        };
        layer_descriptors.push(descriptor(&b));
        layer_digests.push(blob.digest);
        blobs.entry(blob.digest).or_insert(b);
    }

    let platform = target.platform;
    let mut image_config = ImageConfiguration::default();
    image_config.set_created(Some(created));
    image_config.set_architecture(Arch::from(platform.architecture.as_str()));
    image_config.set_os(Os::from(platform.os.as_str()));
    image_config.set_variant(platform.variant.clone());
    image_config.set_config(Some(config));
    image_config
        .set_rootfs(RootFsBuilder::default().typ("layers").diff_ids(diff_ids).build().expect("rootfs fields are set"));
    image_config.set_history(if history.is_empty() { None } else { Some(history) });
    let config_blob = json_blob(media::CONFIG, canonical(&image_config));

    let mut annotations: HashMap<String, String> = target.annotations.clone().into_iter().collect();
    if let Some((b, p)) = base {
        annotations.insert("org.opencontainers.image.base.name".into(), b.name.to_string());
        annotations.insert("org.opencontainers.image.base.digest".into(), p.manifest_digest.to_string());
    }
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(&config_blob))
        .layers(layer_descriptors);
    if !annotations.is_empty() {
        builder = builder.annotations(annotations);
    }
    let manifest = builder.build().expect("manifest fields are set");
    let manifest_blob = json_blob(media::MANIFEST, canonical(&manifest));
    let config_digest = config_blob.digest;
    blobs.insert(config_blob.digest, config_blob);
    blobs.insert(manifest_blob.digest, manifest_blob.clone());
    let mut order = vec![config_digest];
    order.extend(layer_digests);
    (manifest_blob, order)
}

fn b_archive(target: &TargetSpec<'_>) -> Arc<Archive> {
    target.base.expect("called only with a base").image.archive.clone()
}

/// The whole image: one manifest per target, and an index over them when there are
/// several platforms.
pub fn assemble_image(
    name: &str,
    targets: &[(TargetSpec<'_>, Vec<(LayerBlob, PathBuf)>)],
    epoch: u64,
    annotations: &BTreeMap<String, String>,
) -> AssembledImage {
    let mut blobs = BTreeMap::new();
    let mut manifests = Vec::new();
    let mut per_platform = Vec::new();
    for (target, layers) in targets {
        let (manifest, order) = assemble_target(target, layers, epoch, &mut blobs);
        manifests.push((target.platform.clone(), manifest));
        per_platform.push((order[0], order[1..].to_vec()));
    }
    let top = if manifests.len() == 1 {
        manifests[0].1.clone()
    } else {
        let descriptors: Vec<Descriptor> = manifests
            .iter()
            .map(|(platform, blob)| {
                let mut d = descriptor(blob);
                let mut p = PlatformBuilder::default()
                    .architecture(Arch::from(platform.architecture.as_str()))
                    .os(Os::from(platform.os.as_str()));
                if let Some(v) = &platform.variant {
                    p = p.variant(v.clone());
                }
                d.set_platform(Some(p.build().expect("platform fields are set")));
                d
            })
            .collect();
        let mut builder =
            ImageIndexBuilder::default().schema_version(2u32).media_type(MediaType::ImageIndex).manifests(descriptors);
        if !annotations.is_empty() {
            builder = builder.annotations(annotations.clone().into_iter().collect::<HashMap<_, _>>());
        }
        let index = builder.build().expect("index fields are set");
        let blob = json_blob(media::INDEX, canonical(&index));
        blobs.insert(blob.digest, blob.clone());
        blob
    };
    AssembledImage {
        name: name.to_string(),
        top,
        manifests: manifests
            .into_iter()
            .map(|(platform, b)| AssembledManifest { platform, digest: b.digest, size: b.size })
            .collect(),
        blobs,
        per_platform,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn created_is_rfc3339_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1704067200), "2024-01-01T00:00:00Z");
    }
}
