//! `archive` inputs: tar, tar.gz or tar.zst bytes extracted through the rooted
//! primitive into a scratch cache.
#![no_main]
use std::sync::OnceLock;

static CACHE: OnceLock<(tempfile::TempDir, pinfold::cache::Cache)> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (dir, cache) = CACHE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cache = pinfold::cache::Cache::open(&dir.path().join("cache")).unwrap();
        (dir, cache)
    });
    let blob = dir.path().join("blob");
    std::fs::write(&blob, data).unwrap();
    let digest = pinfold_image::digest::Digest::of(data);
    if let Ok(out) = pinfold::input::extract::extract_archive(&blob, &digest, cache) {
        let _ = pinfold_sandbox::rootfs::remove_tree(&out);
    }
});
