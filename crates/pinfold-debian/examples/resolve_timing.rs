//! Times resolving `python3 python3-numpy ca-certificates` for amd64 and arm64 from
//! the machine's apt sources: once with an empty index cache (cold), once warm.
//!
//! Why: the cost of a lock is the indexes (download, digest, decompression, parsing);
//! this shows what a cache saves. Run: `cargo run -j1 --example resolve_timing`
//! (`-- --list` also prints `arch name version` for every package, to compare with
//! `apt-get -s install` on an empty status).

use pinfold_debian::*;
use std::path::Path;
use std::time::Instant;

fn run(cache: &Cache, list: bool) -> Result<Vec<(String, usize)>> {
    let http = Http::new();
    let keyring = Keyring::load(Path::new(DEFAULT_KEYRING), None)?;
    let mut indexes = Vec::new();
    for repo in repositories(&apt_sources(Path::new("/"))?) {
        let (_, idx) = load_repository(&http, &repo, &["amd64", "arm64"], &keyring, cache, ReleaseFrom::Network)?;
        indexes.extend(idx);
    }
    let request: Vec<String> = ["python3", "python3-numpy", "ca-certificates"].map(String::from).to_vec();
    let start = Instant::now();
    let mut counts = Vec::new();
    for arch in ["amd64", "arm64"] {
        let locked = resolve(&indexes, arch, &request, Base::None)?;
        for p in locked.iter().filter(|_| list) {
            eprintln!("{arch} {} {}", p.name, p.version);
        }
        counts.push((arch.to_string(), locked.len()));
    }
    println!("  resolution alone (both architectures): {:.3} s", start.elapsed().as_secs_f64());
    Ok(counts)
}

fn main() -> Result<()> {
    let list = std::env::args().any(|a| a == "--list");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache = Cache::new(dir.path());
    for label in ["cold", "warm"] {
        let start = Instant::now();
        let counts = run(&cache, list && label == "warm")?;
        println!("{label}: {:.2} s, packages per architecture {counts:?}", start.elapsed().as_secs_f64());
    }
    Ok(())
}
