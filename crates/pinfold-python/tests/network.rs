//! Tests against the machine's real package index (found as pip finds it), never a mock:
//! the point is that resolution, metadata and downloads work on what indexes serve.
//! Every test here has `network` in its name so an offline run can filter them out.

use std::path::PathBuf;
use std::time::Instant;

use base64::Engine;
use sha2::{Digest, Sha256};

use pinfold_python::discovery::IndexSettings;
use pinfold_python::error::ResolveError;
use pinfold_python::fetch::fetch_locked;
use pinfold_python::index::IndexClient;
use pinfold_python::install::{install_wheel, Content, EntryKind, InstallOptions, Scheme};
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
        eprintln!("{platform} cold: {:?} in {:?}", names(&r), started.elapsed());
        let started = Instant::now();
        let warm = resolve(&client(Some(cache.path().to_path_buf())), &req, &t).unwrap();
        eprintln!("{platform} warm: {:?}", started.elapsed());
        assert_eq!(warm, r, "a warm lock gives the same answer");
        for want in ["joblib", "numpy", "scikit-learn", "scipy", "threadpoolctl", "tqdm"] {
            assert!(names(&r).contains(&want), "{want} missing from {:?}", names(&r));
        }
        let machine = t.arch.machine();
        for p in &r.packages {
            eprintln!("  {} {} {} {:?}", p.name, p.version, p.filename, p.size);
            assert_eq!(p.sha256.len(), 64);
            let pure = p.filename.ends_with("-any.whl");
            assert!(pure || p.filename.contains(machine), "{} does not fit {platform}", p.filename);
            assert!(pure || p.filename.contains("cp311") || p.filename.contains("abi3"), "{}", p.filename);
        }
    }
}

#[test]
fn network_missing_requirement_is_named() {
    let req = Requirements::from_specifiers(&["numpy", "pinfold-no-such-package-4f2a9c"]).unwrap();
    let err = resolve(&client(None), &req, &target("linux/amd64")).unwrap_err();
    assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("pinfold-no-such-package-4f2a9c") && msg.contains("<packages>:2"), "{msg}");
}

#[test]
fn network_conflict_names_both_requirements() {
    let req = Requirements::from_specifiers(&["numpy<1", "scikit-learn>=1.5"]).unwrap();
    let err = resolve(&client(None), &req, &target("linux/amd64")).unwrap_err();
    let ResolveError::Conflict { packages, .. } = &err else { panic!("not a conflict: {err}") };
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(packages.contains(&"numpy".to_string()) && packages.contains(&"scikit-learn".to_string()), "{packages:?}");
    assert!(msg.contains("numpy") && msg.contains("scikit-learn"), "{msg}");
}

#[test]
fn network_sdist_only_version_is_named_with_the_way_out() {
    let req = Requirements::from_specifiers(&["numpy==1.21.0"]).unwrap();
    let err = resolve(&client(None), &req, &target("linux/arm64")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ResolveError::SdistOnly { .. }), "{msg}");
    assert!(msg.contains("numpy") && msg.contains("1.21.0") && msg.contains("step"), "{msg}");
}

#[test]
fn network_metadata_from_the_wheel_by_range_is_cached_by_sha256() {
    let cache = tempfile::tempdir().unwrap();
    let c = client(Some(cache.path().to_path_buf()));
    let page = c.project("tqdm").unwrap().unwrap();
    let file = page.files.iter().rev().find(|f| f.filename.ends_with("py3-none-any.whl")).unwrap();
    let mut bare = file.clone();
    bare.metadata = None;
    let from_wheel = c.metadata(&bare).unwrap();
    let version = file.filename.split('-').nth(1).unwrap();
    assert_eq!((from_wheel.name.to_lowercase().as_str(), from_wheel.version.as_str()), ("tqdm", version));
    if file.metadata.is_some() {
        assert_eq!(client(None).metadata(file).unwrap(), from_wheel, "PEP 658 file and wheel agree");
    }
    let sha = file.sha256.as_ref().unwrap();
    assert!(cache.path().join("metadata").join(&sha[..2]).join(format!("{sha}.METADATA")).is_file());
}

#[test]
fn network_fetch_verifies_and_installs_with_a_matching_record() {
    let c = client(None);
    let t = target("linux/arm64");
    let r = resolve(&c, &Requirements::from_specifiers(&["tqdm"]).unwrap(), &t).unwrap();
    let wheel = r.packages.iter().find(|p| p.name == "tqdm").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(&wheel.filename);
    let size = fetch_locked(&c, wheel, &dest).unwrap();
    assert_eq!(Some(size), wheel.size);

    let mut bad = wheel.clone();
    bad.sha256 = "0".repeat(64);
    let err = fetch_locked(&c, &bad, &dir.path().join("bad.whl")).unwrap_err().to_string();
    assert!(err.contains(&wheel.sha256) && err.contains(&bad.sha256) && err.contains("tqdm"), "{err}");
    let mut bad_file = wheel.clone();
    bad_file.filename = "tqdm-0.0.0-py3-none-any.whl".into();
    let err = fetch_locked(&c, &bad_file, &dir.path().join("x.whl")).unwrap_err().to_string();
    assert!(err.contains("tqdm-0.0.0-py3-none-any.whl"), "{err}");
    assert!(!dir.path().join("bad.whl").exists());

    let scheme = Scheme::venv("/opt/venv", "/usr/bin/python3.11", "3.11.2".parse().unwrap()).unwrap();
    let entries = install_wheel(&dest, &scheme, &InstallOptions::default()).unwrap();
    let bytes = |path: &str| match &entries.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("{path}")).kind {
        EntryKind::File(Content::Bytes(b)) => b.clone(),
        other => panic!("{other:?}"),
    };
    let launcher = String::from_utf8(bytes("/opt/venv/bin/tqdm")).unwrap();
    assert!(launcher.starts_with("#!/opt/venv/bin/python\n"), "{launcher}");
    let site = "/opt/venv/lib/python3.11/site-packages";
    let info = format!("tqdm-{}.dist-info", wheel.version);
    let record = String::from_utf8(bytes(&format!("{site}/{info}/RECORD"))).unwrap();
    let files: Vec<_> = entries.iter().filter(|e| matches!(e.kind, EntryKind::File(_))).collect();
    assert_eq!(record.lines().count(), files.len());
    for line in record.lines() {
        let mut parts = line.rsplitn(3, ',');
        let (size, hash, path) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let abs = if let Some(up) = path.strip_prefix("../../../") {
            format!("/opt/venv/{up}")
        } else {
            format!("{site}/{path}")
        };
        if path.ends_with("/RECORD") {
            assert_eq!((hash, size), ("", ""));
            continue;
        }
        let b = bytes(&abs);
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&b));
        assert_eq!(hash, format!("sha256={digest}"), "{path}");
        assert_eq!(size, b.len().to_string(), "{path}");
    }
}
