//! The OCI JSON readers: bytes as the `index.json` of a layout (the one document no
//! digest protects), read as `pinfold run oci:DIR` reads it.
#![no_main]
use std::sync::OnceLock;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        dir
    });
    std::fs::write(dir.path().join("index.json"), data).unwrap();
    let reference = format!("oci:{}", dir.path().display()).parse().unwrap();
    let _ = pinfold_image::oci::read::OpenedImage::open(&reference);
});
