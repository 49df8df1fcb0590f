//! The shared layer cache in a registry (`--cache docker://HOST/REPO`): every CI
//! runner of a team reuses the layers any of them built, through the registry they
//! already run, with nothing else to operate.
//!
//! Each entry of the local cache (layer key → [`LayerBlob`]) is one OCI artifact in
//! the cache repository, tagged by the key's hex:
//!
//! ```json
//! { "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
//!   "artifactType": "application/vnd.pinfold.cache.layer.v1+json",
//!   "config": { "mediaType": "application/vnd.pinfold.cache.layer.v1+json", … },  // the LayerBlob JSON
//!   "layers": [ { "mediaType": <the layer's>, "digest": …, "size": … } ],          // the layer itself
//!   "annotations": { "dev.pinfold.cache.key": "<hex>" } }
//! ```
//!
//! Every JSON blob is canonical, so two runners that build the same layer write the
//! same bytes. Before building a layer that the local cache lacks, the build asks the
//! registry; a hit is downloaded into the local store (checked against its digest)
//! instead of built. After building, `readwrite` mode pushes the new entries. The
//! registry cache is a help, never a cause of failure: an unreachable or refusing
//! registry is warned about once and the build goes on without it.
//!
//! Trust: a key names a layer's *inputs*; the registry says which blob they produced.
//! Whoever can push to the cache repository can choose what a build's layers hold, so
//! it must be written only by builders as trusted as the machine that reads it.

use crate::cache::{Cache, LayerKey};
use pinfold_image::digest::Digest;
use pinfold_image::layer::LayerBlob;
use pinfold_image::oci::media;
use pinfold_registry::client::MAX_JSON;
use pinfold_registry::pull::{fetch_blob, get_manifest};
use pinfold_registry::push::{ensure_blob, put_manifest, BlobToPush};
use pinfold_registry::reference::Reference;
use pinfold_registry::RegistryError;
use rayon::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The `artifactType` (and config media type) of a cache entry.
pub const ARTIFACT_TYPE: &str = "application/vnd.pinfold.cache.layer.v1+json";
const KEY_ANNOTATION: &str = "dev.pinfold.cache.key";

/// `--cache-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// Use entries, write none (e.g. pull-request builds).
    Read,
    /// Use entries and push the new ones.
    #[default]
    ReadWrite,
}

impl std::str::FromStr for CacheMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(CacheMode::Read),
            "readwrite" => Ok(CacheMode::ReadWrite),
            other => Err(format!("`{other}` is not a cache mode (read, readwrite)")),
        }
    }
}

/// A cache repository and how it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCache {
    pub reference: Reference,
    pub mode: CacheMode,
}

impl RegistryCache {
    /// `docker://HOST/REPO`: a repository, without tag or digest (entries are tagged
    /// by their keys).
    pub fn parse(text: &str, mode: CacheMode) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix("docker://") else {
            return Err(format!("`{text}`: a shared cache is a registry repository, docker://HOST/REPO"));
        };
        let reference = Reference::parse(rest).map_err(|e| e.to_string())?;
        if reference.tag.is_some() || reference.digest.is_some() {
            return Err(format!(
                "`{text}`: name the cache repository without tag or digest (entries are tagged by their keys)"
            ));
        }
        Ok(RegistryCache { reference, mode })
    }

    /// The entry of `key`, downloaded into the local cache; `None` when the registry
    /// has no entry for it.
    pub fn lookup(&self, key: &LayerKey, cache: &Cache) -> Result<Option<(LayerBlob, PathBuf)>, RegistryError> {
        let client = crate::env::registries().client_for(&self.reference)?;
        let repository = &self.reference.repository;
        let manifest = match get_manifest(&client, repository, &key.hex(), None) {
            Ok(m) => m,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let invalid = |message: String| RegistryError::Invalid {
            registry: client.registry.clone(),
            what: format!("cache entry {} of {repository}", key.hex()),
            message,
        };
        let value: serde_json::Value = serde_json::from_slice(&manifest.bytes).map_err(|e| invalid(e.to_string()))?;
        let config_type = value["config"]["mediaType"].as_str().unwrap_or_default();
        if value["artifactType"].as_str().unwrap_or(config_type) != ARTIFACT_TYPE {
            return Err(invalid(format!("it is not a pinfold cache entry ({ARTIFACT_TYPE})")));
        }
        let descriptor = |v: &serde_json::Value| -> Option<(Digest, u64)> {
            Some((v["digest"].as_str()?.parse().ok()?, v["size"].as_u64()?))
        };
        let (config_digest, config_size) =
            descriptor(&value["config"]).ok_or_else(|| invalid("its config descriptor is not valid".into()))?;
        let layer = value["layers"].as_array().and_then(|l| l.first()).and_then(descriptor);
        let (layer_digest, layer_size) = layer.ok_or_else(|| invalid("it holds no layer".into()))?;
        if config_size > MAX_JSON {
            return Err(invalid(format!("its config is {config_size} bytes")));
        }
        let config_path = fetch_blob(&client, repository, config_digest, Some(config_size), &cache.store())?;
        let bytes =
            std::fs::read(&config_path).map_err(|source| RegistryError::Store { path: config_path.clone(), source })?;
        let blob: LayerBlob =
            serde_json::from_slice(&bytes).map_err(|e| invalid(format!("its config is not a layer record: {e}")))?;
        if blob.digest != layer_digest || blob.size != layer_size {
            return Err(invalid(format!(
                "its config names {} ({} bytes) and its layer is {layer_digest} ({layer_size} bytes)",
                blob.digest, blob.size
            )));
        }
        let path = fetch_blob(&client, repository, blob.digest, Some(blob.size), &cache.store())?;
        client.remember(repository, &blob.digest);
        cache
            .store_layer(key, &blob)
            .map_err(|source| RegistryError::Store { path: cache.root().to_path_buf(), source })?;
        Ok(Some((blob, path)))
    }

    /// Pushes the entry `key` → `blob` (stored at `path`) unless the mode is `read`.
    pub fn store(&self, key: &LayerKey, blob: &LayerBlob, path: &Path) -> Result<(), RegistryError> {
        if self.mode == CacheMode::Read {
            return Ok(());
        }
        let client = crate::env::registries().client_for(&self.reference)?;
        let repository = &self.reference.repository;
        let config = pinfold_image::oci::json::canonical(blob);
        let file = path.to_path_buf();
        let layer = BlobToPush {
            digest: blob.digest,
            size: blob.size,
            source: path.display().to_string(),
            open: Box::new(move || Ok(Box::new(std::fs::File::open(&file)?) as Box<dyn std::io::Read + Send>)),
        };
        ensure_blob(&client, repository, &layer)?;
        let config_bytes = config.clone();
        let config_blob = BlobToPush {
            digest: Digest::of(&config),
            size: config.len() as u64,
            source: "this build".into(),
            open: Box::new(move || {
                Ok(Box::new(std::io::Cursor::new(config_bytes.clone())) as Box<dyn std::io::Read + Send>)
            }),
        };
        ensure_blob(&client, repository, &config_blob)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": { "mediaType": ARTIFACT_TYPE, "digest": config_blob.digest.to_string(), "size": config_blob.size },
            "layers": [ { "mediaType": blob.media_type, "digest": blob.digest.to_string(), "size": blob.size } ],
            "annotations": { KEY_ANNOTATION: key.hex() },
        });
        let bytes = pinfold_image::oci::json::canonical(&manifest);
        // Tagged in one step: the blobs it names are already there.
        put_manifest(&client, repository, &key.hex(), media::MANIFEST, &bytes)
    }
}

/// A layer found in a cache: its key, what it became, and where its blob is stored.
pub type CachedLayer = (LayerKey, (LayerBlob, PathBuf));

/// Looks up every layer of `todo` in the registry cache, in parallel. Returns the hits
/// (now in the local cache) and what is left to build. The first failure other than a
/// missing entry turns the registry cache off for the rest of the build, with one
/// warning.
pub fn fetch_missing<T: Send>(
    remote: &RegistryCache,
    cache: &Cache,
    todo: Vec<(LayerKey, T)>,
    warnings: &mut Vec<String>,
) -> (Vec<CachedLayer>, Vec<(LayerKey, T)>) {
    if todo.is_empty() {
        return (Vec::new(), todo);
    }
    let off = AtomicBool::new(false);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    type Looked<T> = (LayerKey, T, Option<(LayerBlob, PathBuf)>);
    let results: Vec<Looked<T>> = todo
        .into_par_iter()
        .map(|(key, item)| {
            if off.load(Ordering::SeqCst) {
                return (key, item, None);
            }
            match remote.lookup(&key, cache) {
                Ok(hit) => (key, item, hit),
                Err(e) => {
                    off.store(true, Ordering::SeqCst);
                    first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| e.to_string());
                    (key, item, None)
                }
            }
        })
        .collect();
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        warnings.push(format!("the shared cache docker://{} is not used: {e}", remote.reference));
    }
    let mut hits = Vec::new();
    let mut left = Vec::new();
    for (key, item, hit) in results {
        match hit {
            Some(h) => hits.push((key, h)),
            None => left.push((key, item)),
        }
    }
    (hits, left)
}

/// Pushes the entries of layers this build made (in `readwrite` mode), in parallel;
/// failures are warnings.
pub fn store_built(remote: &RegistryCache, built: &[CachedLayer], warnings: &mut Vec<String>) {
    if remote.mode == CacheMode::Read || built.is_empty() {
        return;
    }
    let off = AtomicBool::new(false);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    built.par_iter().for_each(|(key, (blob, path))| {
        if off.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = remote.store(key, blob, path) {
            off.store(true, Ordering::SeqCst);
            first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| e.to_string());
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        warnings.push(format!("the shared cache docker://{} was not written: {e}", remote.reference));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_references_name_a_repository() {
        let c = RegistryCache::parse("docker://127.0.0.1:5000/team/cache", CacheMode::Read).unwrap();
        assert_eq!(c.reference.repository, "team/cache");
        assert!(RegistryCache::parse("127.0.0.1:5000/team/cache", CacheMode::Read).is_err());
        assert!(RegistryCache::parse("docker://127.0.0.1:5000/team/cache:v1", CacheMode::Read).is_err());
        assert_eq!("read".parse::<CacheMode>(), Ok(CacheMode::Read));
        assert!("write".parse::<CacheMode>().is_err());
    }
}
