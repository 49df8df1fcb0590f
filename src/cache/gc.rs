//! `pinfold cache gc`: the cache kept under a size (`--max-size`) and free of what was
//! not used for a while (`--max-age`), the least recently used removed first. Every
//! kind of entry is collected: step outputs; layers with their blobs; stored inputs
//! (downloads, packages, wheels, pulled blobs: `blobs/sha256` files no layer entry
//! names, and the Debian index files); unpacked trees (archives, `.deb`s, wheels) and
//! the root file systems of `pinfold run`. Each is made again, the same, when it is needed: an
//! input is fetched again by its pin (so an `--offline` build needs it vendored).
//! A hit refreshes an entry's modification time, which is its last use. Temporaries
//! of dead processes and layer entries whose blob is gone are removed on every run;
//! gc holds the cache's exclusive lock, so no build is using what it removes.

use super::Cache;
use pinfold_image::layer::LayerBlob;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    pub steps_removed: usize,
    pub layers_removed: usize,
    /// Stored inputs: downloads, packages, wheels, pulled blobs, Debian indexes.
    pub inputs_removed: usize,
    /// Unpacked archives, `.deb`s and wheels, and `pinfold run`'s root file systems.
    pub trees_removed: usize,
    pub bytes_freed: u64,
    /// What the collected kinds take after the collection.
    pub bytes_left: u64,
}

/// What `cache gc` keeps: at most `max_size` bytes, nothing unused for `max_age`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_size: Option<u64>,
    pub max_age: Option<Duration>,
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

/// `30d`, `12h`, `90m`, `45s` (a number and one unit; `w` for weeks too).
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not an age such as 30d, 12h, 90m or 45s");
    let t = text.trim();
    let unit = t.chars().last().ok_or_else(bad)?;
    let seconds: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = t[..t.len() - 1].trim().parse().map_err(|_| bad())?;
    n.checked_mul(seconds).map(Duration::from_secs).ok_or_else(bad)
}

/// A size for people: `145 B`, `3.2 MiB` (gc's report, inspect's layers).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

enum Entry {
    Step { dir: PathBuf, size: u64 },
    Layer { json: PathBuf, blob: PathBuf },
    Input { file: PathBuf, size: u64 },
    Tree { dir: PathBuf, size: u64 },
}

fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.path().symlink_metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn mtime(path: &Path) -> SystemTime {
    path.symlink_metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The paths in `dir`, none when it does not exist.
fn children(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(items) => items.map(|i| i.map(|i| i.path())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// A finished tree of `unpacked/` is named `KIND-<64 hex>[-…]`; anything else there is a
/// temporary directory of a process that is gone (gc holds the exclusive lock).
fn is_finished_tree(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.split('-').skip(1).any(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Collects the cache within `limits`; with none, only leftovers go.
pub fn collect(cache: &Cache, limits: Limits) -> io::Result<GcReport> {
    pinfold_image::fsutil::sweep_dead_temporaries(&cache.root.join("tmp"));
    let mut report = GcReport::default();
    let mut entries: Vec<(SystemTime, Entry)> = Vec::new();
    // Blob → (size, how many layer entries use it).
    let mut blobs: BTreeMap<PathBuf, (u64, usize)> = BTreeMap::new();
    for path in children(&cache.root.join("steps"))? {
        if path.symlink_metadata().is_ok_and(|m| m.file_type().is_dir()) {
            entries.push((mtime(&path), Entry::Step { size: dir_size(&path), dir: path }));
        } else if path.extension().is_some_and(|e| e == "sums") && !path.with_extension("").is_dir() {
            // The listing of outputs that are gone (a build stopped between the two
            // renames, or a gc between the two removals).
            std::fs::remove_file(&path)?;
        }
    }
    for json in children(&cache.root.join("layers"))? {
        // Only the entries pinfold writes: regular `KEY.json` files. Anything else
        // (a directory, a link, another format's file) is left alone.
        let is_entry = json.extension().is_some_and(|e| e == "json")
            && json.symlink_metadata().is_ok_and(|m| m.file_type().is_file());
        if !is_entry {
            continue;
        }
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
    // Stored inputs: the store's files that no layer names, and the Debian indexes.
    let layer_blobs: BTreeSet<&PathBuf> = blobs.keys().collect();
    let stored = children(&cache.root.join("blobs/sha256"))?.into_iter().filter(|p| !layer_blobs.contains(p));
    for file in stored.chain(children(&cache.root.join("debian-index/sha256"))?) {
        if let Some(meta) = file.symlink_metadata().ok().filter(|m| m.is_file()) {
            entries.push((mtime(&file), Entry::Input { size: meta.len(), file }));
        }
    }
    let mut trees = Vec::new();
    for kind in ["unpacked", "extracted", "rootfs"] {
        trees.extend(children(&cache.root.join(kind))?);
    }
    for dir in trees {
        // Never through a link: what a link in the cache points at is not the cache's.
        let Ok(kind) = dir.symlink_metadata().map(|m| m.file_type()) else { continue };
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if kind.is_file() && name.starts_with("tree-") && name.ends_with(".postcard") {
            // An installed package set's kept tree (`unpacked/tree-<key>.postcard`).
            let size = dir.symlink_metadata().map_or(0, |m| m.len());
            entries.push((mtime(&dir), Entry::Input { size, file: dir }));
            continue;
        }
        if !kind.is_dir() {
            continue;
        }
        if dir.parent().is_some_and(|p| p.ends_with("unpacked")) && !is_finished_tree(&dir) {
            pinfold_sandbox::rootfs::remove_tree(&dir)?;
            continue;
        }
        entries.push((mtime(&dir), Entry::Tree { size: dir_size(&dir), dir }));
    }
    let mut total: u64 = blobs.values().map(|(s, _)| s).sum::<u64>()
        + entries
            .iter()
            .map(|(_, e)| match e {
                Entry::Step { size, .. } | Entry::Input { size, .. } | Entry::Tree { size, .. } => *size,
                Entry::Layer { .. } => 0,
            })
            .sum::<u64>();
    let now = SystemTime::now();
    let too_old = |used: SystemTime| limits.max_age.is_some_and(|age| now.duration_since(used).is_ok_and(|d| d > age));
    entries.sort_by_key(|(t, _)| *t);
    for (used, entry) in entries {
        let over = limits.max_size.is_some_and(|max| total > max);
        if !over && !too_old(used) {
            // Sorted by last use: nothing after this one is older either.
            break;
        }
        let freed = remove(cache, entry, &mut blobs, &mut report)?;
        report.bytes_freed += freed;
        total -= freed;
    }
    report.bytes_left = total;
    Ok(report)
}

/// Removes one entry; returns the bytes it freed.
fn remove(
    cache: &Cache,
    entry: Entry,
    blobs: &mut BTreeMap<PathBuf, (u64, usize)>,
    report: &mut GcReport,
) -> io::Result<u64> {
    Ok(match entry {
        Entry::Step { dir, size } => {
            cache.discard_step(&dir)?;
            report.steps_removed += 1;
            size
        }
        Entry::Layer { json, blob } => {
            std::fs::remove_file(&json)?;
            report.layers_removed += 1;
            let (size, users) = blobs.get_mut(&blob).expect("counted above");
            *users -= 1;
            if *users == 0 {
                std::fs::remove_file(&blob)?;
                *size
            } else {
                0
            }
        }
        Entry::Input { file, size } => {
            std::fs::remove_file(&file)?;
            report.inputs_removed += 1;
            size
        }
        Entry::Tree { dir, size } => {
            pinfold_sandbox::rootfs::remove_tree(&dir)?;
            report.trees_removed += 1;
            size
        }
    })
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
        let report = collect(&cache, Limits { max_size: Some(1500), max_age: None }).unwrap();
        assert_eq!(report.steps_removed, 1);
        assert_eq!(report.bytes_left, 1000);
        assert!(!old.exists() && new.exists());
        // Under the limit: nothing goes.
        assert_eq!(collect(&cache, Limits { max_size: Some(1000), max_age: None }).unwrap().steps_removed, 0);
        assert_eq!(collect(&cache, Limits { max_size: Some(0), max_age: None }).unwrap().steps_removed, 1);
    }

    #[test]
    fn ages_parse_with_one_unit() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_age("soon").is_err() && parse_age("").is_err() && parse_age("5y").is_err());
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(3 << 20), "3.0 MiB");
    }

    #[test]
    fn stored_inputs_and_unpacked_trees_go_by_age_and_layer_blobs_stay_with_their_layer() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(tmp.path()).unwrap();
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let old = |path: &Path| std::fs::File::open(path).unwrap().set_modified(long_ago).unwrap();
        // A download nobody used for long, and one used just now.
        let stale = tmp.path().join("blobs/sha256").join("a".repeat(64));
        let fresh = tmp.path().join("blobs/sha256").join("b".repeat(64));
        std::fs::write(&stale, vec![1; 100]).unwrap();
        std::fs::write(&fresh, vec![2; 100]).unwrap();
        old(&stale);
        // An unpacked .deb, old; a temporary of a dead build beside it.
        let tree = tmp.path().join("unpacked").join(format!("deb-{}", "c".repeat(64)));
        std::fs::create_dir_all(tree.join("usr")).unwrap();
        std::fs::write(tree.join("usr/file"), vec![3; 50]).unwrap();
        old(&tree);
        let leftover = tmp.path().join("unpacked/deb-Xy12ab");
        std::fs::create_dir_all(&leftover).unwrap();
        // No limits: only the leftover goes.
        let report = collect(&cache, Limits::default()).unwrap();
        assert_eq!((report.inputs_removed, report.trees_removed), (0, 0));
        assert!(!leftover.exists() && stale.exists() && tree.exists());
        let report = collect(&cache, Limits { max_size: None, max_age: Some(Duration::from_secs(86_400)) }).unwrap();
        assert_eq!((report.inputs_removed, report.trees_removed, report.bytes_freed), (1, 1, 150));
        assert!(!stale.exists() && !tree.exists() && fresh.exists());
        assert_eq!(report.bytes_left, 100);
    }

    #[test]
    fn links_in_the_cache_are_never_followed_and_foreign_entries_stay() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        // A directory outside the cache, linked from where trees and steps live.
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("sub")).unwrap();
        std::fs::write(outside.join("sub/file"), vec![0; 100]).unwrap();
        std::fs::set_permissions(outside.join("sub"), std::fs::Permissions::from_mode(0o755)).unwrap();
        for kind in ["unpacked", "rootfs", "steps"] {
            std::fs::create_dir_all(cache.root.join(kind)).unwrap();
            std::os::unix::fs::symlink(&outside, cache.root.join(kind).join(format!("deb-{}", "d".repeat(64))))
                .unwrap();
        }
        // Something in layers/ that is not an entry of pinfold's.
        std::fs::create_dir_all(cache.root.join("layers/not-an-entry")).unwrap();
        let report = collect(&cache, Limits { max_size: Some(0), max_age: Some(Duration::from_secs(0)) }).unwrap();
        assert_eq!((report.steps_removed, report.trees_removed, report.layers_removed), (0, 0, 0));
        assert!(outside.join("sub/file").exists());
        let mode = std::fs::metadata(outside.join("sub")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "a directory outside the cache was chmodded");
        assert!(cache.root.join("layers/not-an-entry").is_dir());
    }
}
