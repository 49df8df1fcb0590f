//! `pinfold cache verify`: the cache's fsck. A build trusts a cached blob or step
//! output whose metadata has not changed since it was stored (reading every blob on
//! every build would cost more than the cache saves); this reads everything instead,
//! so that damage that keeps size and time (bit rot, a restore that kept times) is
//! found too. What is wrong is removed, so the next build makes it again.

use super::{list_outputs, step_sums_path, Cache, FileHashes, OutputEntry, StoredLayer};
use pinfold_image::digest::Digest;
use rayon::prelude::*;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub blobs_checked: usize,
    pub steps_checked: usize,
    /// What was wrong, one sentence each; all of it was removed.
    pub problems: Vec<String>,
    /// Layer entries removed because their blob was wrong or gone.
    pub layers_removed: usize,
}

/// Checks every blob against its name, every layer entry against its blob, and every
/// step output against its listing; removes what is wrong.
pub fn verify(cache: &Cache) -> io::Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let blobs: Vec<PathBuf> = read_dir_paths(&cache.root.join("blobs/sha256"))?;
    report.blobs_checked = blobs.len();
    let bad: Vec<(PathBuf, String)> = blobs.par_iter().filter_map(|path| check_blob(path)).collect();
    for (path, problem) in bad {
        report.problems.push(problem);
        cache.discard(&path);
    }

    for entry in read_dir_paths(&cache.root.join("layers"))? {
        let stored: Option<StoredLayer> = std::fs::read(&entry).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let ok = stored
            .as_ref()
            .is_some_and(|s| std::fs::metadata(cache.blob_path(&s.blob.digest)).is_ok_and(|m| m.len() == s.blob.size));
        match (ok, stored, layer_key_of(&entry)) {
            // Verified just now: remembered, so that builds do not hash it again.
            (true, Some(stored), Some(key)) => cache.store_layer(&key, &stored.blob)?,
            _ => {
                std::fs::remove_file(&entry)?;
                report.layers_removed += 1;
            }
        }
    }

    // No remembered fingerprints: every output file is read.
    let fresh = FileHashes::default();
    for dir in read_dir_paths(&cache.root.join("steps"))?.into_iter().filter(|p| p.is_dir()) {
        report.steps_checked += 1;
        let stored: Option<Vec<OutputEntry>> =
            std::fs::read(step_sums_path(&dir)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let now = list_outputs(&dir, &fresh).ok();
        if stored.is_none() || stored != now {
            report
                .problems
                .push(format!("the step outputs in {} are not what the step made (or have no listing)", dir.display()));
            cache.discard_step(&dir)?;
        }
    }
    Ok(report)
}

fn read_dir_paths(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<io::Result<_>>()?;
    paths.sort();
    Ok(paths)
}

/// What is wrong with the blob at `path`, if anything.
fn check_blob(path: &Path) -> Option<(PathBuf, String)> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Ok(expected) = format!("sha256:{name}").parse::<Digest>() else {
        return Some((path.to_path_buf(), format!("{} is not named by a sha256 digest", path.display())));
    };
    match pinfold_image::digest::sha256_of_file(path) {
        Ok(actual) if actual == expected => None,
        Ok(actual) => Some((path.to_path_buf(), format!("the blob {expected} hashes to {actual}"))),
        Err(e) => Some((path.to_path_buf(), format!("the blob {expected} cannot be read: {e}"))),
    }
}

/// The key a layer entry is stored under (its file name).
fn layer_key_of(entry: &Path) -> Option<super::LayerKey> {
    let mut key = [0u8; 32];
    let stem = entry.file_stem().and_then(|s| s.to_str())?;
    hex::decode_to_slice(stem, &mut key).ok()?;
    Some(super::LayerKey(key))
}
