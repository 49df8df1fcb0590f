//! Against the machine's real Debian mirror (read from its apt sources, never written
//! here): signatures, resolution, fetching and unpacking. Every test name contains
//! `network`. Indexes are cached under Cargo's per-target temporary directory, so a
//! second run reads them from there.

use pinfold_debian::deb::{read_deb, Contents, EntryKind};
use pinfold_debian::release::{inrelease_url, verify_release};
use pinfold_debian::*;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The machine's repositories: bookworm, bookworm-updates, bookworm-security.
fn machine_repositories() -> Vec<Repository> {
    let sources = apt_sources(Path::new("/")).expect("the machine's apt sources");
    let repos = repositories(&sources);
    assert!(repos.iter().any(|r| r.suite == "bookworm"), "the machine's apt sources have no bookworm: {repos:?}");
    repos
}

fn bookworm() -> Repository {
    machine_repositories().into_iter().find(|r| r.suite == "bookworm").unwrap()
}

fn host_keyring() -> Keyring {
    Keyring::load(Path::new(DEFAULT_KEYRING), None).expect("the host's Debian archive keyring")
}

fn cache() -> Cache {
    Cache::new(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pinfold-debian-cache"))
}

fn raw_inrelease(repo: &Repository) -> Vec<u8> {
    let mut body = Http::new().get(&inrelease_url(&repo.mirrors[0], &repo.suite)).unwrap().expect("an InRelease");
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn network_bookworm_inrelease_verifies_against_the_host_keyring() {
    let repo = bookworm();
    let release = fetch_release(&Http::new(), &repo.mirrors, "bookworm", &host_keyring(), &cache()).unwrap();
    println!("bookworm InRelease sha256 {} Date {}", release.sha256, release.date);
    assert_eq!(release.codename.as_deref(), Some("bookworm"));
    assert_eq!(release.sha256.len(), 64);
    assert!(release.architectures.iter().any(|a| a == "arm64"));
    assert!(release.files.contains_key("main/binary-amd64/Packages.xz"));
    // The wrong suite name for a signed file is refused.
    let err = verify_release(&raw_inrelease(&repo), &host_keyring(), "trixie", "x").unwrap_err();
    assert!(err.to_string().contains("not trixie"), "{err}");
}

#[test]
fn network_a_one_byte_tampered_inrelease_is_refused() {
    let repo = bookworm();
    let mut bytes = raw_inrelease(&repo);
    let at = find(&bytes, b"Codename: bookworm").expect("a Codename line") + 10;
    bytes[at] = b'B';
    let err = verify_release(&bytes, &host_keyring(), "bookworm", "tampered").unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    println!("{err}");
}

#[test]
fn network_a_keyring_that_does_not_sign_the_release_is_refused() {
    let repo = bookworm();
    // Keys Debian retired long ago (same package as the archive keyring).
    let removed = Keyring::load(Path::new("/usr/share/keyrings/debian-archive-removed-keys.gpg"), None).unwrap();
    let err = verify_release(&raw_inrelease(&repo), &removed, "bookworm", "bookworm InRelease").unwrap_err();
    assert!(err.to_string().contains("no good signature"), "{err}");
    // And a pinned keyring whose bytes differ is refused before any signature.
    let err = Keyring::load(Path::new(DEFAULT_KEYRING), Some(&"0".repeat(64))).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// All indexes of the machine's suites for `arches`.
fn indexes(arches: &[&str]) -> Vec<PackagesIndex> {
    let (http, keyring, cache) = (Http::new(), host_keyring(), cache());
    let mut all = Vec::new();
    for repo in machine_repositories() {
        let (_, idx) = load_repository(&http, &repo, arches, &keyring, &cache, ReleaseFrom::Network).unwrap();
        all.extend(idx);
    }
    all
}

fn request() -> Vec<String> {
    ["python3", "python3-numpy", "ca-certificates"].map(String::from).to_vec()
}

#[test]
fn network_resolve_python3_numpy_ca_certificates_for_amd64_and_arm64() {
    let all = indexes(&["amd64", "arm64"]);
    for arch in ["amd64", "arm64"] {
        let locked = resolve(&all, arch, &request(), Base::None).unwrap();
        let bytes: u64 = locked.iter().map(|p| p.size).sum();
        println!("{arch}: {} packages, {} MB of .deb", locked.len(), bytes / 1_000_000);
        for name in ["python3", "python3.11", "libc6", "python3-numpy", "ca-certificates"] {
            assert!(locked.iter().any(|p| p.name == name), "{name} missing for {arch}");
        }
        assert!(locked.iter().all(|p| p.architecture == arch || p.architecture == "all"));
        assert!(locked.windows(2).all(|w| w[0].name < w[1].name), "sorted by name");
        assert!(locked.iter().all(|p| p.filename.starts_with("pool/") && !p.filename.contains("://")));
        assert_eq!(locked, resolve(&all, arch, &request(), Base::None).unwrap(), "deterministic");
    }
    let err = resolve(&all, "amd64", &["no-such-package-xyz".to_string()], Base::None).unwrap_err();
    assert!(err.to_string().contains("no-such-package-xyz"), "{err}");
}

/// ca-certificates, locked for amd64.
fn locked_ca_certificates() -> LockedPackage {
    let all = indexes(&["amd64"]);
    let locked = resolve(&all, "amd64", &["ca-certificates".to_string()], Base::None).unwrap();
    locked.into_iter().find(|p| p.name == "ca-certificates").unwrap()
}

fn all_mirrors() -> Vec<String> {
    machine_repositories().into_iter().flat_map(|r| r.mirrors).collect()
}

#[test]
fn network_fetch_and_unpack_a_small_deb() {
    let pkg = locked_ca_certificates();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("ca.deb");
    fetch::fetch_deb(&Http::new(), &all_mirrors(), &pkg, &dest).unwrap();
    let bytes = std::fs::read(&dest).unwrap();
    assert_eq!(digest::sha256_hex(&bytes), pkg.sha256);
    let deb = read_deb(bytes.as_slice(), &pkg.filename, &Contents::InMemory).unwrap();
    assert_eq!(deb.control.name(), "ca-certificates");
    assert!(deb.control.scripts().contains(&"postinst"));
    let certs = deb.entries.iter().filter(|e| e.path.starts_with("usr/share/ca-certificates/mozilla/")).count();
    assert!(certs > 100, "{certs} certificates");
    assert!(deb.entries.iter().any(|e| e.path == "usr/sbin/update-ca-certificates" && e.mode == 0o755));
    let bundle = fixups::ca_certificates(&deb.entries).unwrap();
    let crt = bundle.iter().find(|e| e.path == "etc/ssl/certs/ca-certificates.crt").unwrap();
    let EntryKind::File { data, .. } = &crt.kind else { panic!() };
    let text = String::from_utf8(data.read().unwrap()).unwrap();
    assert_eq!(text.matches("-----BEGIN CERTIFICATE-----").count(), certs);
    let db = dpkg::dpkg_database(&[&deb]);
    assert!(db.iter().any(|e| e.path == "var/lib/dpkg/info/ca-certificates.list"));
    println!(
        "{} {}: {} entries, {certs} certificates, bundle {} bytes",
        pkg.name,
        pkg.version,
        deb.entries.len(),
        text.len()
    );
}

#[test]
fn network_a_deb_whose_sha256_differs_is_refused_naming_both_digests() {
    let mut pkg = locked_ca_certificates();
    let real = pkg.sha256.clone();
    pkg.sha256 = "0".repeat(64);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("ca.deb");
    let err = fetch::fetch_deb(&Http::new(), &all_mirrors(), &pkg, &dest).unwrap_err().to_string();
    assert!(err.contains(&real) && err.contains(&pkg.sha256) && err.contains("ca-certificates"), "{err}");
    assert!(!dest.exists(), "nothing is left at the destination");
    println!("{err}");
}
