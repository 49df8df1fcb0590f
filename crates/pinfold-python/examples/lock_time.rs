//! Measures a lock: `cargo run --example lock_time -- CACHE_DIR PLATFORM SPEC...`.
//!
//! Why: the report compares a cold lock (empty CACHE_DIR) with a warm one (same
//! CACHE_DIR again) and with other tools on the same requirements. With `PYLOCK=1` it
//! also prints the resolution as pylock.toml.

use std::time::Instant;

use pinfold_python::discovery::IndexSettings;
use pinfold_python::index::IndexClient;
use pinfold_python::requirements::Requirements;
use pinfold_python::resolve::resolve;
use pinfold_python::target::Target;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cache, platform, specs) = (&args[0], &args[1], &args[2..]);
    let started = Instant::now();
    let settings = IndexSettings::discover().unwrap();
    eprintln!("index discovery ({}) in {:.2?}", settings.source, started.elapsed());
    let started = Instant::now();
    let client = IndexClient::new(settings, Some(cache.into())).unwrap();
    let req = Requirements::from_specifiers(specs).unwrap();
    let target = Target::new("3.11", platform, "2.36").unwrap();
    let r = resolve(&client, &req, &target).unwrap();
    let elapsed = started.elapsed();
    for p in &r.packages {
        println!("{}=={} {}", p.name, p.version, p.filename);
    }
    println!("{} packages in {:.2?}", r.packages.len(), elapsed);
    if std::env::var_os("PYLOCK").is_some() {
        print!("{}", pinfold_python::pylock::export(&r));
    }
}
