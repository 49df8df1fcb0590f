//! `pinfold.lock`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pinfold_lang::lock::Lock::parse(&String::from_utf8_lossy(data), "pinfold.lock");
});
