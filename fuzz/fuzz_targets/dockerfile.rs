//! The Dockerfile reader of `pinfold lint`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(df) = pinfold_lint::dockerfile::Dockerfile::parse(&String::from_utf8_lossy(data)) {
        for ins in &df.instructions {
            let _ = ins.exec_form();
        }
    }
});
