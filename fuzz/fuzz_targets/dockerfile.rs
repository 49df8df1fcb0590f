//! The Dockerfile reader of `pinfold lint`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pinfold_lint::dockerfile::Dockerfile::parse(&String::from_utf8_lossy(data));
});
