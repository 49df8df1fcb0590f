//! `pinfold cache gc`: what the cache holds of pinfold's own products (step outputs,
//! and layers with their blobs) kept under a size, the least recently used removed
//! first. A hit refreshes an entry's modification time, which is its last use.
//! Temporaries of dead processes and layer entries whose blob is gone are removed on
//! every run. Downloads, pulled bases and unpacked root file systems are left alone.

use super::Cache;
use pinfold_image::layer::LayerBlob;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    pub steps_removed: usize,
    pub layers_removed: usize,
    pub bytes_freed: u64,
    /// What the step outputs and layer blobs take after the collection.
    pub bytes_left: u64,
}

/// `10G`, `512M`, `64k`, `1024` (bytes); binary multiples, an optional `B` or `iB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (number, shift) = match t.chars().last() {
        Some(c @ ('k' | 'K' | 'm' | 'M' | 'g' | 'G' | 't' | 'T')) => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                _ => 40,
            };
            (&t[..t.len() - 1], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = number.trim().parse().map_err(|_| format!("`{text}` is not a size such as 10G, 500M or 4096"))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("`{text}` is too large"))
}

enum Entry {
    Step { dir: PathBuf, size: u64 },
    Layer { json: PathBuf, blob: PathBuf },
}

fn dir_size(dir: &std::path::Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.path().symlink_metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn mtime(path: &std::path::Path) -> SystemTime {
    path.symlink_metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Collects the cache; `max_size`: the most that step outputs and layer blobs may take.
pub fn collect(cache: &Cache, max_size: Option<u64>) -> io::Result<GcReport> {
    pinfold_image::fsutil::sweep_dead_temporaries(&cache.root.join("tmp"));
    let mut report = GcReport::default();
    let mut entries: Vec<(SystemTime, Entry)> = Vec::new();
    // Blob → (size, how many layer entries use it).
    let mut blobs: BTreeMap<PathBuf, (u64, usize)> = BTreeMap::new();
    for item in std::fs::read_dir(cache.root.join("steps"))? {
        let path = item?.path();
        if path.is_dir() {
            entries.push((mtime(&path), Entry::Step { size: dir_size(&path), dir: path }));
        } else if path.extension().is_some_and(|e| e == "sums") && !path.with_extension("").is_dir() {
            // The listing of outputs that are gone (a build stopped between the two
            // renames, or a gc between the two removals).
            std::fs::remove_file(&path)?;
        }
    }
    for item in std::fs::read_dir(cache.root.join("layers"))? {
        let json = item?.path();
        let blob = std::fs::read(&json).ok().and_then(|b| serde_json::from_slice::<LayerBlob>(&b).ok());
        let blob_path = blob.as_ref().map(|b| cache.blob_path(&b.digest));
        match blob_path.as_ref().and_then(|p| p.metadata().ok().map(|m| (p.clone(), m.len()))) {
            Some((path, size)) => {
                blobs.entry(path.clone()).or_insert((size, 0)).1 += 1;
                entries.push((mtime(&json), Entry::Layer { json, blob: path }));
            }
            None => {
                // An entry without its blob (or unreadable) is of no use.
                std::fs::remove_file(&json)?;
                report.layers_removed += 1;
            }
        }
    }
    let mut total: u64 = blobs.values().map(|(s, _)| s).sum::<u64>()
        + entries.iter().map(|(_, e)| if let Entry::Step { size, .. } = e { *size } else { 0 }).sum::<u64>();
    if let Some(max) = max_size {
        entries.sort_by_key(|(t, _)| *t);
        for (_, entry) in entries {
            if total <= max {
                break;
            }
            match entry {
                Entry::Step { dir, size } => {
                    cache.discard_step(&dir)?;
                    report.steps_removed += 1;
                    report.bytes_freed += size;
                    total -= size;
                }
                Entry::Layer { json, blob } => {
                    std::fs::remove_file(&json)?;
                    report.layers_removed += 1;
                    let (size, users) = blobs.get_mut(&blob).expect("counted above");
                    *users -= 1;
                    if *users == 0 {
                        std::fs::remove_file(&blob)?;
                        report.bytes_freed += *size;
                        total -= *size;
                    }
                }
            }
        }
    }
    report.bytes_left = total;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_multiples() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("1TB"), Ok(1 << 40));
        assert!(parse_size("ten").is_err());
    }

    #[test]
    fn the_least_recently_used_step_outputs_go_first() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(tmp.path()).unwrap();
        let old = tmp.path().join("steps/aa");
        let new = tmp.path().join("steps/bb");
        for (dir, byte) in [(&old, b'a'), (&new, b'b')] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("out"), vec![byte; 1000]).unwrap();
        }
        let long_ago = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::open(&old).unwrap().set_modified(long_ago).unwrap();
        let report = collect(&cache, Some(1500)).unwrap();
        assert_eq!(report.steps_removed, 1);
        assert_eq!(report.bytes_left, 1000);
        assert!(!old.exists() && new.exists());
        // Under the limit: nothing goes.
        assert_eq!(collect(&cache, Some(1000)).unwrap().steps_removed, 0);
        assert_eq!(collect(&cache, Some(0)).unwrap().steps_removed, 1);
    }
}
