//! Debian package sets against the committed signed test repository
//! (`fixtures/debian-repo`, served on 127.0.0.1 by [`StaticServer`]): no network. Bad
//! input — a tampered InRelease, an index or a `.deb` that does not match its pinned
//! digest, a missing package, an unsatisfiable dependency, the wrong keyring — is exit
//! 2 with an error naming the file or the package, and writes nothing; a small set has
//! a golden digest that neither the store, a second build nor the server's port moves.

use crate::harness::*;
use crate::serve::StaticServer;
use std::path::{Path, PathBuf};

/// The sha256 of `fixtures/debian-repo/keyring.gpg` (make.sh prints it).
const KEYRING_SHA256: &str = "e875af94740be62ded6dd60a150633752b68d2d566755d4f8473fee463343597";
const OTHER_KEYRING_SHA256: &str = "7025a8ef85b7273f238c86c8156f8f6b3dcf45b1fda5807ff1ca9efa68a9cc6c";

/// A build file installing `packages` from the fixture's suite, with the set's own
/// `mirror` when given (else the apt sources of `PINFOLD_APT_ROOT`).
fn build_file(mirror: Option<&str>, keyring: &str, keyring_sha256: &str, packages: &[&str]) -> String {
    let packages: Vec<String> = packages.iter().map(|p| format!("{p:?}")).collect();
    let mirror = mirror.map_or(String::new(), |m| format!("    mirror {m:?}\n"));
    format!(
        r#"pinfold 1
epoch 1704067200
platforms "linux/amd64" "linux/arm64"

debian os {{
    suite "fixture"
    components "main"
    packages {}
{mirror}    keyring {keyring:?} sha256="{keyring_sha256}"
}}

image hello {{
    from scratch
    layer os {{ install "os" }}
    cmd "/usr/bin/pf-hello"
}}
"#,
        packages.join(" ")
    )
}

/// A copy of the fixture repository (tests change files of it) and a project
/// directory beside it holding the build file and both keyrings.
struct Fixture {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    project: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempdir();
        let repo = tmp.path().join("repo");
        copy_dir(&fixture("debian-repo"), &repo);
        let project = tmp.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        for key in ["keyring.gpg", "other-keyring.gpg"] {
            std::fs::copy(repo.join(key), project.join(key)).unwrap();
        }
        Fixture { _tmp: tmp, repo, project }
    }

    fn write_build(&self, text: &str) {
        std::fs::write(self.project.join("pinfold.kdl"), text).unwrap();
    }

    fn pinfold(&self, cache: &str) -> Test {
        Test::new().dir(&self.project).env("PINFOLD_CACHE_DIR", self.project.join(cache))
    }

    /// Nothing of a lock or a build is in the project: no lock, no output.
    fn assert_nothing_written(&self) {
        assert!(!self.project.join("pinfold.lock").exists(), "a pinfold.lock was written");
        assert_no_output(&self.project);
    }
}

fn assert_no_output(project: &Path) {
    let out = project.join("pinfold-out");
    let entries: Vec<_> = std::fs::read_dir(&out).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(entries.is_empty(), "outputs were written: {entries:?}");
}

/// `pinfold lock` against the served fixture fails with exit 2; its stderr (flattened).
fn lock_fails(f: &Fixture) -> String {
    let ran = f.pinfold("cache").arg("lock").run().code(2);
    f.assert_nothing_written();
    ran.stderr_flat()
}

fn flip_byte(path: &Path, needle: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.windows(needle.len()).position(|w| w == needle).expect("the needle is in the file");
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_tampered_inrelease_is_refused_naming_it() {
    let f = Fixture::new();
    // One byte of the signed text: `Label: pinfold-tests` becomes `Label: qinfold-tests`.
    flip_byte(&f.repo.join("dists/fixture/InRelease"), b"pinfold-tests");
    let server = StaticServer::serve(&f.repo);
    f.write_build(&build_file(Some(&server.url()), "keyring.gpg", KEYRING_SHA256, &["pf-hello"]));
    let err = lock_fails(&f);
    assert!(err.contains("dists/fixture/InRelease") && err.contains("no good signature"), "{err}");
}

#[test]
fn a_keyring_that_does_not_sign_the_release_is_refused_naming_it() {
    let f = Fixture::new();
    let server = StaticServer::serve(&f.repo);
    f.write_build(&build_file(Some(&server.url()), "other-keyring.gpg", OTHER_KEYRING_SHA256, &["pf-hello"]));
    let err = lock_fails(&f);
    assert!(err.contains("dists/fixture/InRelease") && err.contains("other-keyring.gpg"), "{err}");
}

#[test]
fn a_keyring_whose_sha256_is_not_the_pinned_one_is_refused_naming_both() {
    let f = Fixture::new();
    let server = StaticServer::serve(&f.repo);
    f.write_build(&build_file(Some(&server.url()), "keyring.gpg", OTHER_KEYRING_SHA256, &["pf-hello"]));
    let err = lock_fails(&f);
    assert!(err.contains("keyring.gpg") && err.contains(KEYRING_SHA256) && err.contains(OTHER_KEYRING_SHA256), "{err}");
}

#[test]
fn a_packages_index_that_does_not_match_the_inrelease_is_refused_naming_both_digests() {
    let f = Fixture::new();
    let index = f.repo.join("dists/fixture/main/binary-amd64/Packages.xz");
    let listed = sha256_hex(&std::fs::read(&index).unwrap());
    // Same size, other bytes: the digest, not the size, must catch it.
    let mut bytes = std::fs::read(&index).unwrap();
    let last = bytes.len() - 1;
    bytes[last / 2] ^= 0x01;
    let served = sha256_hex(&bytes);
    std::fs::write(&index, bytes).unwrap();
    let server = StaticServer::serve(&f.repo);
    f.write_build(&build_file(Some(&server.url()), "keyring.gpg", KEYRING_SHA256, &["pf-hello"]));
    let err = lock_fails(&f);
    assert!(err.contains("main/binary-amd64/Packages.xz") && err.contains(&listed) && err.contains(&served), "{err}");
}

#[test]
fn a_package_that_does_not_exist_is_named() {
    let f = Fixture::new();
    let server = StaticServer::serve(&f.repo);
    f.write_build(&build_file(Some(&server.url()), "keyring.gpg", KEYRING_SHA256, &["pf-hello", "pf-nowhere"]));
    let err = lock_fails(&f);
    assert!(err.contains("pf-nowhere") && err.contains("does not exist"), "{err}");
}

#[test]
fn an_unsatisfiable_dependency_is_named_with_the_package_that_needs_it() {
    let f = Fixture::new();
    let server = StaticServer::serve(&f.repo);
    f.write_build(&build_file(Some(&server.url()), "keyring.gpg", KEYRING_SHA256, &["pf-broken"]));
    let err = lock_fails(&f);
    assert!(err.contains("pf-broken") && err.contains("pf-does-not-exist"), "{err}");
}

#[test]
fn a_deb_whose_sha256_differs_from_the_lock_is_refused_and_nothing_is_written() {
    let f = Fixture::new();
    let server = StaticServer::serve(&f.repo);
    f.write_build(&build_file(Some(&server.url()), "keyring.gpg", KEYRING_SHA256, &["pf-hello"]));
    f.pinfold("cache").arg("lock").run().success();
    let lock_before = std::fs::read(f.project.join("pinfold.lock")).unwrap();
    // The served pf-text is replaced by another (real) package after locking.
    let pool = f.repo.join("pool/main/p");
    let text = pool.join("pf-text/pf-text_2.0-1_all.deb");
    let locked = sha256_hex(&std::fs::read(&text).unwrap());
    std::fs::copy(pool.join("pf-words/pf-words_0.9-1_all.deb"), &text).unwrap();
    let served = sha256_hex(&std::fs::read(&text).unwrap());
    let ran = f.pinfold("cache").arg("build").run().code(2);
    let err = ran.stderr_flat();
    assert!(err.contains("pf-text") && err.contains(&locked) && err.contains(&served), "{err}");
    assert_eq!(std::fs::read(f.project.join("pinfold.lock")).unwrap(), lock_before, "the lock changed");
    assert_no_output(&f.project);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// An apt root whose `sources.list` names `url` for the fixture's suite: the set then
/// takes its mirror from there (as from the machine's apt sources), so the build file
/// — and so the lock — is the same whatever port the server has.
fn apt_root(dir: &Path, url: &str) -> PathBuf {
    let root = dir.join(format!("apt-{}", url.rsplit(':').next().unwrap()));
    std::fs::create_dir_all(root.join("etc/apt")).unwrap();
    std::fs::write(root.join("etc/apt/sources.list"), format!("deb {url}/ fixture main\n")).unwrap();
    root
}

/// Locks and builds `hello` against a fresh server of the fixture with the store in
/// `cache`: the lock's bytes and the `NAME DIGEST` lines.
fn lock_and_build(f: &Fixture, cache: &str) -> (String, Vec<(String, String)>) {
    let server = StaticServer::serve(&f.repo);
    let apt = apt_root(f.project.parent().unwrap(), &server.url());
    f.pinfold(cache).env("PINFOLD_APT_ROOT", &apt).arg("lock").run().success();
    let lock = std::fs::read_to_string(f.project.join("pinfold.lock")).unwrap();
    let built = f.pinfold(cache).env("PINFOLD_APT_ROOT", &apt).args(["build", "--locked"]).run().success().built();
    (lock, built)
}

/// The root file system of `platform`'s image of the layout, unpacked by skopeo and
/// umoci (tools pinfold did not write).
fn unpack(layout: &Path, arch: &str, to: &Path) -> Option<PathBuf> {
    if !require_tool("skopeo", &["--version"]) || !require_tool("umoci", &["--version"]) {
        return None;
    }
    let single = to.join(format!("single-{arch}"));
    let from = format!("oci:{}:hello", layout.display());
    tool("skopeo", &["copy", "-q", "--override-arch", arch, &from, &format!("oci:{}:x", single.display())]);
    let bundle = to.join(format!("bundle-{arch}"));
    tool("umoci", &["unpack", "--rootless", "--image", &format!("{}:x", single.display()), bundle.to_str().unwrap()]);
    Some(bundle.join("rootfs"))
}

#[test]
fn a_small_set_from_the_fixture_has_a_golden_digest_that_store_and_port_do_not_move() {
    let f = Fixture::new();
    f.write_build(&build_file(None, "keyring.gpg", KEYRING_SHA256, &["pf-hello"]));
    let (lock, built) = lock_and_build(&f, "cache-a");
    assert!(!lock.contains("://") && !lock.contains("127.0.0.1"), "the lock names a host:\n{lock}");
    crate::build::check_golden(&fixture("debian-repo"), &built);

    // Another server (another port) and a cold store: the same lock, the same digest;
    // and a warm rebuild too.
    let (lock_b, built_b) = lock_and_build(&f, "cache-b");
    assert_eq!(lock_b, lock, "the port or the store changed the lock");
    assert_eq!(built_b, built, "the port or the store changed the digest");
    let warm = f.pinfold("cache-a").args(["build", "--locked", "--offline"]).run().success().built();
    assert_eq!(warm, built);

    // The image holds the closure — the alternative and the provider resolved — with
    // each platform's own files, and dpkg's status lists every locked package.
    let lock: serde_json::Value = serde_json::from_str(&lock).unwrap();
    for (platform, arch) in [("linux/amd64", "amd64"), ("linux/arm64", "arm64")] {
        let names: Vec<&str> = lock["debian"]["os"]["platforms"][platform]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["pf-hello", "pf-lib", "pf-text", "pf-words"], "{platform}");
        let Some(rootfs) = unpack(&f.project.join("pinfold-out/hello"), arch, f.project.parent().unwrap()) else {
            continue;
        };
        assert_eq!(std::fs::read_to_string(rootfs.join("usr/share/pf-hello/arch.txt")).unwrap(), format!("{arch}\n"));
        assert_eq!(
            std::fs::read_to_string(rootfs.join("usr/lib/pf/libpf.txt")).unwrap(),
            format!("pf-lib for {arch}\n")
        );
        assert!(
            rootfs.join("usr/share/pf-words/words.txt").is_file()
                && rootfs.join("usr/share/doc/pf-text/README").is_file()
        );
        let status = std::fs::read_to_string(rootfs.join("var/lib/dpkg/status")).unwrap();
        for name in &names {
            assert!(
                status.contains(&format!("Package: {name}\nStatus: install ok installed\n")),
                "{name} not in status"
            );
        }
        assert!(!status.contains("Package: pf-broken") && !status.contains("Package: pf-missing-alt"), "{status}");
    }
}

/// Every regular file of `dir` (not below it) with its bytes.
fn files_of(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

#[test]
fn vendor_then_build_and_verify_offline_from_the_vendor_directory_alone() {
    let f = Fixture::new();
    let tmp = f.project.parent().unwrap().to_path_buf();
    let server = StaticServer::serve(&f.repo);
    // Beside the packages, a download and an archive fetched by URL (pinned by the lock).
    std::fs::write(f.repo.join("notes.txt"), "vendored with the packages\n").unwrap();
    std::fs::create_dir_all(tmp.join("data/data")).unwrap();
    std::fs::write(tmp.join("data/data/table.csv"), "x,y\n1,2\n").unwrap();
    tool("tar", &["-cf", f.repo.join("data.tar").to_str().unwrap(), "-C", tmp.join("data").to_str().unwrap(), "data"]);
    let inputs = format!(
        "download notes url=\"{0}/notes.txt\"\narchive data url=\"{0}/data.tar\"\n\nimage hello {{\n    from scratch\n    layer extra {{\n        download \"notes\" to=\"/opt/notes.txt\"\n        extract \"data\" to=\"/opt\"\n    }}\n",
        server.url()
    );
    f.write_build(
        &build_file(None, "keyring.gpg", KEYRING_SHA256, &["pf-hello"])
            .replace("image hello {\n    from scratch\n", &inputs),
    );
    let apt = apt_root(&tmp, &server.url());
    f.pinfold("cache").env("PINFOLD_APT_ROOT", &apt).arg("lock").run().success();
    let digest = f.pinfold("cache").env("PINFOLD_APT_ROOT", &apt).args(["build", "--locked"]).run().success().digest();

    // Vendored from a cold store: each file is fetched from the server by its pool path.
    let vendor = tmp.join("vendor");
    let out = f.pinfold("vendor-cache").env("PINFOLD_APT_ROOT", &apt).arg("vendor").arg(&vendor).run().success();
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.project.join("pinfold.lock")).unwrap()).unwrap();
    let mut locked: Vec<(String, String, String)> = Vec::new();
    for (platform, debs) in lock["debian"]["os"]["platforms"].as_object().unwrap() {
        for d in debs.as_array().unwrap() {
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            locked.push((s("sha256"), format!("debian os {platform}"), s("path")));
        }
    }
    for (kind, name) in [("download", "notes"), ("archive", "data")] {
        let entry = if kind == "download" { &lock["downloads"][name]["*"] } else { &lock["archives"][name] };
        let sha = entry["sha256"].as_str().unwrap_or_else(|| panic!("{kind} {name} is locked")).to_string();
        let input = if kind == "download" { format!("download {name} *") } else { format!("archive {name}") };
        locked.push((sha, input, format!("{name}.{}", if kind == "download" { "txt" } else { "tar" })));
    }
    locked.sort();
    let unique: std::collections::BTreeSet<&String> = locked.iter().map(|(sha, _, _)| sha).collect();
    assert_eq!(out.stdout().lines().filter(|l| l.starts_with("+ ")).count(), unique.len(), "{}", out.stdout());

    // DIR holds each locked file under its sha256 — its bytes hash to the name — and the
    // index lists each (file, input) of the lock with no host.
    let files = files_of(&vendor);
    for sha in &unique {
        assert_eq!(&sha256_hex(&files[sha.as_str()]), *sha, "{sha} in the vendor directory");
    }
    assert_eq!(files.len(), unique.len() + 1, "{:?}", files.keys().collect::<Vec<_>>());
    let index_text = String::from_utf8(files["pinfold-vendor.json"].clone()).unwrap();
    assert!(!index_text.contains("://") && !index_text.contains("127.0.0.1"), "{index_text}");
    let index: serde_json::Value = serde_json::from_str(&index_text).unwrap();
    let mut listed: Vec<(String, String, String)> = index["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let input = e["input"].as_str().unwrap();
            assert!(input.starts_with(&format!("{} ", e["kind"].as_str().unwrap())), "{e}");
            assert_eq!(e["size"].as_u64().unwrap(), files[e["sha256"].as_str().unwrap()].len() as u64);
            let s = |k: &str| e[k].as_str().unwrap().to_string();
            (s("sha256"), s("input"), s("name"))
        })
        .collect();
    listed.sort();
    assert_eq!(listed, locked);

    // A second run adds nothing, says so, and leaves every byte as it was.
    let again = f.pinfold("vendor-cache").env("PINFOLD_APT_ROOT", &apt).arg("vendor").arg(&vendor).run().success();
    assert!(again.stdout().contains("is up to date") && !again.stdout().contains("+ "), "{}", again.stdout());
    assert_eq!(files_of(&vendor), files);
    drop(server);

    // No server, an empty store, --offline: the vendor directory alone builds it.
    let offline =
        f.pinfold("offline-cache").args(["build", "--locked", "--offline", "--mirror"]).arg(&vendor).run().success();
    assert_eq!(offline.digest(), digest);

    // The reviewer: the repository's files and DIR moved elsewhere, a fresh cache, no
    // network: verify says the published image is bit for bit the rebuilt one.
    let elsewhere = tempdir();
    let project = elsewhere.path().join("paper");
    std::fs::create_dir_all(&project).unwrap();
    for name in ["pinfold.kdl", "pinfold.lock", "keyring.gpg"] {
        std::fs::copy(f.project.join(name), project.join(name)).unwrap();
    }
    copy_dir(&vendor, &elsewhere.path().join("deposit"));
    copy_dir(&f.project.join("pinfold-out/hello"), &elsewhere.path().join("published"));
    drop(f);
    let verified = Test::new()
        .dir(&project)
        .env("PINFOLD_CACHE_DIR", elsewhere.path().join("fresh-cache"))
        .args(["verify", "--offline", "--mirror", "../deposit", "oci:../published:hello", "hello"])
        .run()
        .success();
    assert!(verified.stdout().contains("bit for bit"), "{}", verified.stdout());
}

#[test]
fn vendor_never_replaces_a_file_of_the_directory_and_refuses_a_wrong_one() {
    let f = Fixture::new();
    let server = StaticServer::serve(&f.repo);
    f.write_build(&build_file(Some(&server.url()), "keyring.gpg", KEYRING_SHA256, &["pf-hello"]));
    // Without a lock there is nothing pinned to vendor: exit 2, nothing written.
    let vendor = f.project.parent().unwrap().join("vendor");
    let ran = f.pinfold("cache").arg("vendor").arg(&vendor).run().code(2);
    assert!(ran.stderr_flat().contains("pinfold.lock"), "{}", ran.stderr());
    assert!(!vendor.join("pinfold-vendor.json").exists());
    f.pinfold("cache").arg("lock").run().success();
    // A file already named by a locked sha256 but holding other bytes is refused and
    // kept as it is; so is a symlink planted under such a name.
    let pf_text = "f4950fe537eee3026e93bd8c1bca08852f8581b8a269731a8f5ce961698e2321";
    let lock = std::fs::read_to_string(f.project.join("pinfold.lock")).unwrap();
    assert!(lock.contains(pf_text), "the fixture's pf-text is locked");
    std::fs::create_dir_all(&vendor).unwrap();
    std::fs::write(vendor.join(pf_text), "not a package\n").unwrap();
    let ran = f.pinfold("cache").arg("vendor").arg(&vendor).run().code(2);
    assert!(ran.stderr_flat().contains(pf_text) && ran.stderr_flat().contains("left as it is"), "{}", ran.stderr());
    assert_eq!(std::fs::read_to_string(vendor.join(pf_text)).unwrap(), "not a package\n");
    // Checked before anything is added: nothing else was written.
    assert_eq!(files_of(&vendor).into_keys().collect::<Vec<_>>(), [pf_text]);
    std::fs::remove_file(vendor.join(pf_text)).unwrap();
    let outside = f.project.parent().unwrap().join("outside");
    std::os::unix::fs::symlink(&outside, vendor.join(pf_text)).unwrap();
    f.pinfold("cache").arg("vendor").arg(&vendor).run().code(2);
    assert!(!outside.exists(), "vendor wrote through a symlink");
}

#[test]
fn a_step_takes_the_locked_debs_of_a_set_for_its_platform() {
    if !require_tool("runc", &["--version"]) {
        return;
    }
    let f = Fixture::new();
    if busybox("amd64", &f.project.join("busybox")).is_none() {
        return;
    }
    let server = StaticServer::serve(&f.repo);
    let set = build_file(Some(&server.url()), "keyring.gpg", KEYRING_SHA256, &["pf-hello"]);
    let set = set.replace("platforms \"linux/amd64\" \"linux/arm64\"", "platforms \"linux/amd64\"");
    f.write_build(&format!(
        r#"{set}
image tools {{
    from scratch
    layer bin {{
        copy "busybox" to="/bin/busybox" mode=0o755
        symlink "/bin/sh" target="busybox"
        symlink "/bin/ls" target="busybox"
        symlink "/bin/sha256sum" target="busybox"
    }}
    env PATH="/bin"
}}

step list {{
    image tools
    inputs packages=os to="debs"
    run "sh" "-c" "cd debs && ls > ../list.txt && sha256sum * >> ../list.txt"
    outputs "list.txt"
}}

image listing {{
    from scratch
    layer l {{ copy step=list "list.txt" to="/list.txt" }}
}}
"#
    ));
    f.pinfold("cache").arg("lock").run().success();
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.project.join("pinfold.lock")).unwrap()).unwrap();
    let debs = lock["debian"]["os"]["platforms"]["linux/amd64"].as_array().unwrap().clone();
    assert!(debs.len() >= 3, "pf-hello and what it depends on are locked: {debs:?}");
    let out = f.project.join("out");
    f.pinfold("cache")
        .args(["build", "--locked", "listing", "-o"])
        .arg(format!("oci:{}", out.display()))
        .run()
        .success();
    let listed = layer_file(&out, "list.txt");
    for deb in &debs {
        let file = deb["path"].as_str().unwrap().rsplit('/').next().unwrap();
        assert!(listed.contains(&format!("{}  {file}", deb["sha256"].as_str().unwrap())), "{file} missing:\n{listed}");
    }
    // A set that is not declared is reported at the step.
    let text = std::fs::read_to_string(f.project.join("pinfold.kdl")).unwrap().replace("packages=os", "packages=oss");
    f.write_build(&text);
    f.pinfold("cache").args(["build", "listing"]).run().code(2).stderr_contains("no package set is named `oss`");
}

/// The text of `name` in the single layer of the single image of the layout `dir`.
fn layer_file(dir: &Path, name: &str) -> String {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let blob = |digest: &str| dir.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    tool("tar", &["-xzOf", layer.to_str().unwrap(), name])
}
