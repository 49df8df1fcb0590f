//! Python package sets against a package index on 127.0.0.1: the committed fixture
//! `fixtures/python-index` (made by its `make.py`), served by Python's own http.server.
//! One set that locks and installs, then bad input: each is exit 2, a message that names
//! the line or package, and nothing written (no pinfold.lock, no image).

use crate::harness::*;
use crate::serve::StaticServer;
use std::path::Path;

/// The fixture index copied into `dir/index` (a test may change its copy) and served.
fn serve_index(dir: &Path) -> StaticServer {
    let index = dir.join("index");
    copy_dir(&fixture("python-index"), &index);
    StaticServer::serve(&index)
}

/// A build file with one `python deps` set whose children are `set`, installed into a
/// venv at /opt/venv of image `app`.
fn build_file(set: &str) -> String {
    format!(
        r#"pinfold 1
epoch 1704067200
platforms "linux/amd64" "linux/arm64"

python deps {{
{set}
}}

image app {{
    from scratch
    layer py {{ install "deps" to="/opt/venv" }}
}}
"#
    )
}

fn index_line(server: &StaticServer) -> String {
    format!("    index \"{}/simple\"\n    python \"3.11\"", server.url())
}

/// Runs `pinfold lock` in `dir` and expects exit 2, stderr naming each of `needles`,
/// and `pinfold.lock` as it was before (absent, or the same bytes).
fn lock_fails(dir: &Path, needles: &[&str]) -> String {
    let before = std::fs::read(dir.join("pinfold.lock")).ok();
    let ran = Test::in_dir(dir).arg("lock").run().code(2);
    let err = ran.stderr_flat();
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    assert_eq!(std::fs::read(dir.join("pinfold.lock")).ok(), before, "pinfold.lock was written");
    assert!(!dir.join("pinfold-out").exists(), "lock wrote an image");
    err
}

/// The paths of the gzip layer blobs of every manifest in an OCI layout.
fn layer_listing(layout: &Path) -> Vec<String> {
    let read = |digest: &str| -> serde_json::Value {
        let hex = digest.strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut names = Vec::new();
    let mut manifests: Vec<serde_json::Value> = vec![read(index["manifests"][0]["digest"].as_str().unwrap())];
    while let Some(m) = manifests.pop() {
        if let Some(children) = m["manifests"].as_array() {
            manifests.extend(children.iter().map(|c| read(c["digest"].as_str().unwrap())));
            continue;
        }
        for layer in m["layers"].as_array().unwrap() {
            let hex = layer["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
            let blob = layout.join("blobs/sha256").join(hex);
            names.extend(tool("tar", &["-tzf", blob.to_str().unwrap()]).lines().map(str::to_string));
        }
    }
    names
}

#[test]
fn a_set_from_a_local_index_locks_by_file_name_and_hash_and_installs_into_a_venv() {
    let tmp = tempdir();
    let dir = tmp.path();
    let server = serve_index(dir);
    std::fs::write(dir.join("pinfold.kdl"), build_file(&format!("    packages \"tinyapp\"\n{}", index_line(&server))))
        .unwrap();
    let locked = Test::in_dir(dir).arg("lock").run().success().stdout();
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(locked.contains(&format!("+ python deps {platform} tinyapp 1.0")), "{locked}");
        // The highest version in range: 1.1, read from its PEP 658 metadata file.
        assert!(locked.contains(&format!("+ python deps {platform} tinylib 1.1")), "{locked}");
    }
    let text = std::fs::read_to_string(dir.join("pinfold.lock")).unwrap();
    assert!(!text.contains("127.0.0.1") && !text.contains("://"), "the lock names a host:\n{text}");
    let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
    let wheels = lock["python"]["deps"]["platforms"]["linux/amd64"].as_array().unwrap();
    let lib = wheels.iter().find(|w| w["name"] == "tinylib").unwrap();
    let bytes = std::fs::read(fixture("python-index/files/tinylib-1.1-py3-none-any.whl")).unwrap();
    use sha2::Digest as _;
    assert_eq!(lib["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(lib["size"], bytes.len());
    assert_eq!(lib["file"], "tinylib-1.1-py3-none-any.whl");

    // A second lock changes nothing.
    Test::in_dir(dir).arg("lock").run().success().stdout_contains("pinfold.lock is up to date");

    let built = Test::in_dir(dir).args(["build", "--locked"]).run().success();
    let files = layer_listing(&dir.join("pinfold-out/app"));
    for path in [
        "opt/venv/pyvenv.cfg",
        "opt/venv/bin/tinyapp",
        "opt/venv/lib/python3.11/site-packages/tinylib.py",
        "opt/venv/lib/python3.11/site-packages/tinyapp/__init__.py",
        "opt/venv/lib/python3.11/site-packages/tinyapp-1.0.dist-info/INSTALLER",
        "opt/venv/lib/python3.11/site-packages/tinyapp-1.0.dist-info/RECORD",
    ] {
        assert!(files.iter().any(|f| f.trim_start_matches("./") == path), "{path} not in the layers:\n{files:#?}");
    }
    assert!(!files.iter().any(|f| f.ends_with(".pyc")), "a .pyc was installed");
    // From an empty store the wheels are fetched again from the index: the same digest.
    let cold = Test::new()
        .dir(dir)
        .env("PINFOLD_CACHE_DIR", dir.join("cold"))
        .args(["build", "--locked", "-o", "oci:cold-out"])
        .run()
        .success();
    assert_eq!(cold.digest(), built.digest());
    // The installer's bytes (RECORD, INSTALLER, launchers, pyvenv.cfg) are pinned: a
    // change of them, or of a dependency that writes them, fails here.
    crate::build::check_golden(&fixture("python-index"), &built.built());
}

#[test]
fn a_requirement_that_does_not_exist_is_named_and_nothing_is_written() {
    let tmp = tempdir();
    let dir = tmp.path();
    let server = serve_index(dir);
    let set = format!("    packages \"tinyapp\" \"no-such-project\"\n{}", index_line(&server));
    std::fs::write(dir.join("pinfold.kdl"), build_file(&set)).unwrap();
    lock_fails(dir, &["no-such-project", "does not exist"]);
}

#[test]
fn a_conflict_names_both_sides_and_leaves_the_old_lock_as_it_was() {
    let tmp = tempdir();
    let dir = tmp.path();
    let server = serve_index(dir);
    // A lock that was good, then a requirement that cannot be met.
    std::fs::write(dir.join("pinfold.kdl"), build_file(&format!("    packages \"tinyapp\"\n{}", index_line(&server))))
        .unwrap();
    Test::in_dir(dir).arg("lock").run().success();
    let set = format!("    packages \"tinyapp\" \"conflict-a\"\n{}", index_line(&server));
    std::fs::write(dir.join("pinfold.kdl"), build_file(&set)).unwrap();
    let err = lock_fails(dir, &["conflict-a depends on conflict-b <1", "no solution", "cannot all be met"]);
    // What the index has, so the user sees why `<1` cannot be met.
    assert!(err.contains("conflict-b: versions with a wheel for this target: 2.0"), "{err}");
}

#[test]
fn an_sdist_only_package_is_named_with_how_to_build_its_wheel() {
    let tmp = tempdir();
    let dir = tmp.path();
    let server = serve_index(dir);
    let set = format!("    packages \"sdistonly\"\n{}", index_line(&server));
    std::fs::write(dir.join("pinfold.kdl"), build_file(&set)).unwrap();
    lock_fails(dir, &["sdistonly 1.0", "only a source distribution", "step"]);
}

#[test]
fn a_malformed_requirements_line_is_pointed_at() {
    let tmp = tempdir();
    let dir = tmp.path();
    let server = serve_index(dir);
    std::fs::write(dir.join("requirements.txt"), "# tools\ntinyapp\ntinylib >= = 1.0\n").unwrap();
    let set = format!("    requirements \"requirements.txt\"\n{}", index_line(&server));
    std::fs::write(dir.join("pinfold.kdl"), build_file(&set)).unwrap();
    lock_fails(dir, &["requirements.txt:3: `tinylib >= = 1.0`"]);
}

#[test]
fn a_pylock_with_a_missing_hash_is_refused_naming_the_package() {
    let tmp = tempdir();
    let dir = tmp.path();
    std::fs::write(
        dir.join("pylock.toml"),
        "lock-version = \"1.0\"\ncreated-by = \"hand\"\n\n[[packages]]\nname = \"tinylib\"\nversion = \"1.1\"\n\
         wheels = [{ name = \"tinylib-1.1-py3-none-any.whl\", hashes = { md5 = \"0123\" } }]\n",
    )
    .unwrap();
    std::fs::write(dir.join("pinfold.kdl"), build_file("    pylock \"pylock.toml\"\n    python \"3.11\"")).unwrap();
    lock_fails(dir, &["pylock.toml", "tinylib", "no sha256"]);
}

/// Locks `tinyapp`, then changes the served copy of the tinylib wheel: a build from an
/// empty store must refuse it, naming the file and both digests, and write no image.
fn build_refuses_a_changed_wheel(also_the_page: bool) {
    let tmp = tempdir();
    let dir = tmp.path();
    let server = serve_index(dir);
    std::fs::write(dir.join("pinfold.kdl"), build_file(&format!("    packages \"tinyapp\"\n{}", index_line(&server))))
        .unwrap();
    Test::in_dir(dir).arg("lock").run().success();
    let lock = std::fs::read(dir.join("pinfold.lock")).unwrap();
    let name = "tinylib-1.1-py3-none-any.whl";
    let served = dir.join("index/files").join(name);
    let locked_hex = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(std::fs::read(&served).unwrap()))
    };
    // Another wheel's bytes under the locked name.
    let other = std::fs::read(dir.join("index/files/tinylib-1.0-py3-none-any.whl")).unwrap();
    std::fs::write(&served, &other).unwrap();
    let other_hex = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&other))
    };
    if also_the_page {
        let page = dir.join("index/simple/tinylib/index.html");
        let text = std::fs::read_to_string(&page).unwrap().replace(&locked_hex, &other_hex);
        std::fs::write(&page, text).unwrap();
    }
    let ran = Test::new()
        .dir(dir)
        .env("PINFOLD_CACHE_DIR", dir.join("empty-store"))
        .args(["build", "--locked"])
        .run()
        .code(2);
    let err = ran.stderr_flat();
    for needle in [name, &locked_hex, &other_hex] {
        assert!(err.contains(needle), "stderr lacks {needle}:\n{err}");
    }
    assert_eq!(std::fs::read(dir.join("pinfold.lock")).unwrap(), lock, "the build changed pinfold.lock");
    let out = dir.join("pinfold-out");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(), "an image was written");
}

#[test]
fn a_wheel_whose_bytes_differ_from_the_lock_is_refused_naming_both_digests() {
    build_refuses_a_changed_wheel(false);
}

#[test]
fn a_wheel_the_index_now_lists_with_another_hash_is_refused_naming_both_digests() {
    build_refuses_a_changed_wheel(true);
}

#[test]
fn network_the_issues_conflict_on_the_machines_index_is_explained_and_nothing_is_written() {
    // numpy<1 with scikit-learn>=1.5 for Python 3.11, against the index pip's
    // configuration names (no `index` in the set): scikit-learn 1.5 needs numpy>=1.19.5.
    let tmp = tempdir();
    let dir = tmp.path();
    std::fs::write(
        dir.join("pinfold.kdl"),
        build_file("    packages \"numpy<1\" \"scikit-learn>=1.5\"\n    python \"3.11\""),
    )
    .unwrap();
    let err =
        lock_fails(dir, &["no solution for Python 3.11", "numpy <1", "scikit-learn >=1.5", "depends on numpy >="]);
    assert!(err.contains("numpy: versions with a wheel for this target:"), "{err}");
}

/// The host's `python3` as `3.X`: the set of the pylock test is locked for it, so that
/// uv can install the export with that interpreter (the wheels are pure).
fn host_python() -> String {
    tool("python3", &["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).trim().to_string()
}

#[test]
fn lock_pylock_writes_pep_751_that_reads_back_to_the_same_lock_and_uv_installs() {
    let tmp = tempdir();
    let dir = tmp.path();
    let server = serve_index(dir);
    let python = host_python();
    let set = format!("    packages \"tinyapp\"\n    index \"{}/simple\"\n    python \"{python}\"", server.url());
    std::fs::write(dir.join("pinfold.kdl"), build_file(&set)).unwrap();
    Test::in_dir(dir).args(["lock", "--pylock", "pylock.toml"]).run().success();
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pinfold.lock")).unwrap()).unwrap();
    let exported = std::fs::read_to_string(dir.join("pylock.toml")).unwrap();
    // A second export is the same bytes.
    Test::in_dir(dir).args(["lock", "--pylock", "deps=again.toml"]).run().success();
    assert_eq!(std::fs::read_to_string(dir.join("again.toml")).unwrap(), exported);

    // PEP 751's fields, read by Python's own TOML reader.
    let check = r#"
import re, sys, tomllib
lock = tomllib.load(open(sys.argv[1], "rb"))
assert lock["lock-version"] == "1.0", lock
assert lock["created-by"] == "pinfold"
assert len(lock["environments"]) == 2, lock["environments"]
names = []
for p in lock["packages"]:
    names.append(p["name"])
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", p["name"]), p
    assert "version" in p and p["wheels"], p
    for w in p["wheels"]:
        assert w["name"].endswith(".whl") and w["url"].endswith("/" + w["name"]), w
        assert re.fullmatch(r"[0-9a-f]{64}", w["hashes"]["sha256"]), w
        assert isinstance(w["size"], int) and w["size"] > 0, w
assert names == sorted(names), names
print(" ".join(names))
"#;
    let path = dir.join("pylock.toml");
    assert_eq!(tool("python3", &["-c", check, path.to_str().unwrap()]).trim(), "tinyapp tinylib");

    // Read back by pinfold's importer (a `pylock` set): the same wheels on each platform.
    let back = dir.join("back");
    std::fs::create_dir_all(&back).unwrap();
    std::fs::copy(&path, back.join("pylock.toml")).unwrap();
    let set = format!("    pylock \"pylock.toml\"\n    index \"{}/simple\"\n    python \"{python}\"", server.url());
    std::fs::write(back.join("pinfold.kdl"), build_file(&set)).unwrap();
    Test::in_dir(&back).arg("lock").run().success();
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(back.join("pinfold.lock")).unwrap()).unwrap();
    assert_eq!(again["python"], lock["python"]);

    // uv installs it: every wheel by its url, checked against its hash.
    if require_tool("uv", &["--version"]) {
        let target = dir.join("uv-target");
        let out = std::process::Command::new("uv")
            .args(["pip", "install", "--no-config", "--preview-features", "pylock", "--python", "python3", "--target"])
            .arg(&target)
            .arg("-r")
            .arg(&path)
            .env("UV_CACHE_DIR", dir.join("uv-cache"))
            .output()
            .unwrap();
        assert!(out.status.success(), "uv refused the export:\n{}", String::from_utf8_lossy(&out.stderr));
        let ran = tool(
            "python3",
            &[
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); import tinyapp; tinyapp.main()",
                target.to_str().unwrap(),
            ],
        );
        assert_eq!(ran.trim(), "tinyapp 1.1");
    }
}

#[test]
fn lock_pylock_without_a_set_name_when_two_sets_exist_writes_nothing() {
    let tmp = tempdir();
    let dir = tmp.path();
    let server = serve_index(dir);
    let two = format!(
        "{}\npython more {{\n    packages \"tinylib\"\n{}\n}}\n",
        build_file(&format!("    packages \"tinyapp\"\n{}", index_line(&server))),
        index_line(&server)
    );
    std::fs::write(dir.join("pinfold.kdl"), two).unwrap();
    let ran = Test::in_dir(dir).args(["lock", "--pylock", "pylock.toml"]).run().code(2);
    assert!(ran.stderr_flat().contains("name the set, as SET=FILE (the sets are deps, more)"), "{}", ran.stderr());
    assert!(!dir.join("pinfold.lock").exists() && !dir.join("pylock.toml").exists());
    // Named, it is written.
    Test::in_dir(dir).args(["lock", "--pylock", "more=pylock.toml"]).run().success();
    let text = std::fs::read_to_string(dir.join("pylock.toml")).unwrap();
    assert!(text.contains("name = \"tinylib\"") && !text.contains("name = \"tinyapp\""), "{text}");
}

#[test]
fn a_requirements_files_index_url_is_where_the_build_fetches_from_too() {
    let tmp = tempdir();
    let dir = tmp.path();
    let server = serve_index(dir);
    std::fs::write(dir.join("requirements.txt"), format!("--index-url {}/simple\ntinyapp\n", server.url())).unwrap();
    std::fs::write(dir.join("pinfold.kdl"), build_file("    requirements \"requirements.txt\"\n    python \"3.11\""))
        .unwrap();
    Test::in_dir(dir).arg("lock").run().success().stdout_contains("+ python deps linux/amd64 tinylib 1.1");
    // An empty store: the wheels come from the index the requirements file names.
    Test::new().dir(dir).env("PINFOLD_CACHE_DIR", dir.join("empty-store")).args(["build", "--locked"]).run().success();
}
