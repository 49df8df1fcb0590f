//! The requirements readers: pinfold-python's (package sets) and pinfold-lint's.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = std::path::Path::new("/nonexistent/requirements.txt");
    let _ = pinfold_python::requirements::Requirements::from_str_in(&text, file);
    let _ = pinfold_lint::deps::Requirements::parse(&text);
});
