//! The build-file parser, its bounds and its diagnostics, on any bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let source = pinfold_lang::diag::Source::new("fuzz.kdl", text.as_ref());
    let mut diags = pinfold_lang::diag::Diagnostics::default();
    let _ = pinfold_lang::parse(&source, &mut diags);
    let _ = diags.render_plain();
});
