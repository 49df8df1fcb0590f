//! Tests against the machine's real package index (found as pip finds it), never a mock:
//! the point is that resolution, metadata and downloads work on what indexes serve.
//! Every test here has `network` in its name so an offline run can filter them out.

use std::path::PathBuf;
use std::time::Instant;

use pinfold_python::discovery::IndexSettings;
use pinfold_python::error::ResolveError;
use pinfold_python::index::IndexClient;
use pinfold_python::requirements::Requirements;
use pinfold_python::resolve::{resolve, Resolution};
use pinfold_python::target::Target;

fn client(cache: Option<PathBuf>) -> IndexClient {
    IndexClient::new(IndexSettings::discover().expect("an index is configured"), cache).unwrap()
}

fn target(platform: &str) -> Target {
    Target::new("3.11", platform, "2.36").unwrap()
}

fn names(r: &Resolution) -> Vec<&str> {
    r.packages.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn network_resolves_the_ml_set_for_amd64_and_arm64() {
    let cache = tempfile::tempdir().unwrap();
    let req = Requirements::from_specifiers(&["numpy", "scikit-learn", "tqdm"]).unwrap();
    for platform in ["linux/amd64", "linux/arm64"] {
        let t = target(platform);
        let started = Instant::now();
        let r = resolve(&client(Some(cache.path().to_path_buf())), &req, &t).unwrap();
        eprintln!("{platform}: {:?} in {:?}", names(&r), started.elapsed());
        for want in ["joblib", "numpy", "scikit-learn", "scipy", "threadpoolctl", "tqdm"] {
            assert!(names(&r).contains(&want), "{want} missing from {:?}", names(&r));
        }
        let machine = t.arch.machine();
        for p in &r.packages {
            eprintln!("  {} {} {} {}", p.name, p.version, p.filename, p.size);
            assert_eq!(p.sha256.len(), 64);
            let pure = p.filename.ends_with("-any.whl");
            assert!(pure || p.filename.contains(machine), "{} does not fit {platform}", p.filename);
            assert!(pure || p.filename.contains("cp311") || p.filename.contains("abi3"), "{}", p.filename);
        }
    }
}
