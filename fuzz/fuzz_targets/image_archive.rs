//! Bases and `pinfold run` images: bytes opened as an oci-archive and as a
//! docker-archive (tar members, OCI and Docker JSON), and the first platform's
//! layers unpacked (gzip, zstd or plain tar) into a scratch cache.
#![no_main]
use std::sync::OnceLock;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap()).path();
    let file = dir.join("image.tar");
    std::fs::write(&file, data).unwrap();
    for kind in ["oci-archive", "docker-archive"] {
        let reference = format!("{kind}:{}", file.display()).parse().unwrap();
        if let Ok(opened) = pinfold_image::oci::read::OpenedImage::open(&reference) {
            if let Some(image) = opened.manifests.first() {
                let cache = dir.join("cache");
                let _ = pinfold_sandbox::PreparedImage::new("fuzz", &opened, image, &cache).rootfs();
                let _ = pinfold_sandbox::rootfs::remove_tree(&cache);
            }
        }
    }
});
