//! Package sets against the machine's real Debian mirror and Python index (read from
//! its apt sources and pip's configuration; no host is named here): lock, build from
//! scratch, run on amd64 and arm64, and the same digest from a cold and a warm store
//! and from a vendor-like mirror directory with --offline.

use crate::harness::*;

const DEBIAN_BUILD: &str = r#"pinfold 1
epoch 1704067200
platforms "linux/amd64" "linux/arm64"

debian os {
    suite "bookworm" "bookworm-updates" "bookworm-security"
    components "main"
    packages "python3" "python3-numpy" "ca-certificates"
}

image py {
    from scratch
    layer os { install "os" }
    env PATH="/usr/local/bin:/usr/bin:/bin"
    cmd "python3" "-c" "import numpy, ssl, json; print(numpy.__version__)"
}
"#;

fn locked_version(lock: &serde_json::Value, set: &str, platform: &str, name: &str) -> String {
    lock["debian"][set]["platforms"][platform]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} is locked for {platform}"))["version"]
        .as_str()
        .unwrap()
        .to_string()
}

fn blobs_of_lock(lock: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for set in lock["debian"].as_object().into_iter().flat_map(|m| m.values()) {
        for debs in set["platforms"].as_object().unwrap().values() {
            out.extend(debs.as_array().unwrap().iter().map(|d| d["sha256"].as_str().unwrap().to_string()));
        }
    }
    out
}

#[test]
fn network_debian_set_locks_builds_and_runs_on_both_platforms() {
    let tmp = tempdir();
    let dir = tmp.path();
    std::fs::write(dir.join("pinfold.kdl"), DEBIAN_BUILD).unwrap();
    let cache = dir.join("cache");
    let lock_out = Test::new().dir(dir).env("PINFOLD_CACHE_DIR", &cache).arg("lock").run().success().stdout();
    assert!(lock_out.contains("+ debian os linux/arm64 python3.11"), "{lock_out}");
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pinfold.lock")).unwrap()).unwrap();
    // The lock names files by their pool path and hash, never a host.
    let text = std::fs::read_to_string(dir.join("pinfold.lock")).unwrap();
    assert!(!text.contains("://"), "the lock names a host:\n{text}");
    let numpy = locked_version(&lock, "os", "linux/amd64", "python3-numpy");
    let numpy_upstream =
        numpy.split(['-', ':']).find(|p| p.contains('.')).unwrap().split('+').next().unwrap().to_string();

    let first = Test::new().dir(dir).env("PINFOLD_CACHE_DIR", &cache).args(["build", "--locked"]).run().success();
    let digest = first.digest();

    // Runs on both platforms; numpy is the locked one.
    let run = |platform: &str| {
        Test::new()
            .dir(dir)
            .env("PINFOLD_CACHE_DIR", &cache)
            .args(["run", "--platform", platform, "oci:pinfold-out/py"])
            .run()
    };
    let amd64 = run("linux/amd64").success().stdout();
    assert_eq!(amd64.trim(), numpy_upstream, "amd64 printed {amd64}");
    if arm64_runs() {
        let arm64 = run("linux/arm64").success().stdout();
        assert_eq!(arm64.trim(), numpy_upstream, "arm64 printed {arm64}");
    }
    // dpkg's database lists every locked package.
    let status = Test::new()
        .dir(dir)
        .env("PINFOLD_CACHE_DIR", &cache)
        .args(["run", "oci:pinfold-out/py", "--", "python3", "-c", "print(open('/var/lib/dpkg/status').read())"])
        .run()
        .success()
        .stdout();
    for deb in lock["debian"]["os"]["platforms"]["linux/amd64"].as_array().unwrap() {
        assert!(status.contains(&format!("Package: {}\n", deb["name"].as_str().unwrap())), "{} missing", deb["name"]);
    }
    // `inspect --packages` reads the same from the image's layers, on each platform,
    // with the locked versions.
    let layout = format!("oci:{}", dir.join("pinfold-out/py").display());
    let doc = Test::new().args(["inspect", "--packages", "--json", &layout]).run().success().json();
    for manifest in doc["manifests"].as_array().unwrap() {
        let platform = manifest["platform"].as_str().unwrap();
        let listed: Vec<(String, String)> = manifest["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_string(), p["version"].as_str().unwrap().to_string()))
            .collect();
        for deb in lock["debian"]["os"]["platforms"][platform].as_array().unwrap() {
            let want = (deb["name"].as_str().unwrap().to_string(), deb["version"].as_str().unwrap().to_string());
            assert!(listed.contains(&want), "{platform}: {want:?} not listed by inspect --packages");
        }
    }

    // A cold store gives the same digest; so does a mirror directory of the lock's
    // files with --offline (what `pinfold vendor` deposits).
    let cold = dir.join("cold-cache");
    let again = Test::new().dir(dir).env("PINFOLD_CACHE_DIR", &cold).args(["build", "--locked"]).run().success();
    assert_eq!(again.digest(), digest);
    let mirror = dir.join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    for hex in blobs_of_lock(&lock) {
        std::fs::copy(cold.join("blobs/sha256").join(&hex), mirror.join(&hex)).unwrap();
    }
    let offline = Test::new()
        .dir(dir)
        .env("PINFOLD_CACHE_DIR", dir.join("offline-cache"))
        .args(["build", "--locked", "--offline", "--mirror"])
        .arg(&mirror)
        .run()
        .success();
    assert_eq!(offline.digest(), digest);
}

#[test]
fn network_a_package_that_does_not_exist_is_named_and_nothing_is_written() {
    let tmp = tempdir();
    let text = DEBIAN_BUILD.replace("\"ca-certificates\"", "\"no-such-package-pinfold\"");
    std::fs::write(tmp.path().join("pinfold.kdl"), text).unwrap();
    let ran = Test::in_dir(tmp.path()).arg("lock").run().code(2);
    assert!(ran.stderr().contains("no-such-package-pinfold"), "{}", ran.stderr());
    assert!(!tmp.path().join("pinfold.lock").exists());
}

#[test]
fn network_a_deb_whose_sha256_differs_from_the_lock_is_refused_naming_both() {
    // A lock whose only package's hash is wrong: the build fetches it from the
    // machine's mirror and refuses it, naming the lock's digest.
    let tmp = tempdir();
    let dir = tmp.path();
    std::fs::write(dir.join("pinfold.kdl"), DEBIAN_BUILD).unwrap();
    let wrong = "0".repeat(64);
    let lock = serde_json::json!({
        "archives": {}, "bases": {}, "build-file": "", "downloads": {}, "version": 1,
        "debian": { "os": { "releases": {}, "platforms": {
            "linux/amd64": [{ "architecture": "all", "name": "ca-certificates", "version": "20230311", "path": "pool/main/c/ca-certificates/ca-certificates_20230311_all.deb", "sha256": wrong, "size": 1 }],
            "linux/arm64": []
        }}}
    });
    std::fs::write(dir.join("pinfold.lock"), serde_json::to_string_pretty(&lock).unwrap()).unwrap();
    let ran = Test::in_dir(dir).args(["build", "--platform", "linux/amd64"]).run().code(2);
    assert!(ran.stderr().contains("ca-certificates"), "{}", ran.stderr());
    assert!(!dir.join("pinfold-out").exists() || std::fs::read_dir(dir.join("pinfold-out")).unwrap().next().is_none());
}

const PYTHON_BUILD: &str = r#"pinfold 1
epoch 1704067200
platforms "linux/amd64" "linux/arm64"

debian os {
    suite "bookworm" "bookworm-updates" "bookworm-security"
    components "main"
    packages "python3" "ca-certificates" "libstdc++6" "libgomp1"
}

python deps {
    packages "scikit-learn" "tqdm"
    python "3.11"
}

image train {
    from scratch
    layer os { install "os" }
    layer py { install "deps" to="/opt/venv" }
    env PATH="/opt/venv/bin:/usr/bin:/bin"
    cmd "python" "-c" "from sklearn.datasets import load_iris; from sklearn.linear_model import LogisticRegression; X,y=load_iris(return_X_y=True); print('score', round(LogisticRegression(max_iter=500).fit(X,y).score(X,y),3))"
}
"#;

#[test]
fn network_python_set_on_the_debian_interpreter_fits_a_model_on_both_platforms() {
    let tmp = tempdir();
    let dir = tmp.path();
    std::fs::write(dir.join("pinfold.kdl"), PYTHON_BUILD).unwrap();
    let cache = dir.join("cache");
    let locked = Test::new().dir(dir).env("PINFOLD_CACHE_DIR", &cache).arg("lock").run().success().stdout();
    for name in ["scikit-learn", "scipy", "joblib", "threadpoolctl", "numpy", "tqdm"] {
        assert!(locked.contains(&format!("+ python deps linux/arm64 {name} ")), "{name} not locked:\n{locked}");
    }
    let text = std::fs::read_to_string(dir.join("pinfold.lock")).unwrap();
    assert!(!text.contains("://"), "the lock names a host");
    let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
    for wheel in lock["python"]["deps"]["platforms"]["linux/arm64"].as_array().unwrap() {
        let file = wheel["file"].as_str().unwrap();
        assert!(file.contains("aarch64") || file.ends_with("-any.whl"), "{file} is not for arm64");
    }
    let built = Test::new().dir(dir).env("PINFOLD_CACHE_DIR", &cache).args(["build", "--locked"]).run().success();
    let run = |platform: &str, extra: &[&str]| {
        Test::new()
            .dir(dir)
            .env("PINFOLD_CACHE_DIR", &cache)
            .args(["run", "--platform", platform, "oci:pinfold-out/train"])
            .args(extra)
            .run()
            .success()
            .stdout()
    };
    assert!(run("linux/amd64", &[]).contains("score 0.9"), "no score on amd64");
    // The console script runs, with the venv's python as its interpreter.
    let tqdm = lock["python"]["deps"]["platforms"]["linux/amd64"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "tqdm")
        .unwrap()["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(run("linux/amd64", &["--", "tqdm", "--version"]).trim(), tqdm);
    if arm64_runs() {
        assert!(run("linux/arm64", &[]).contains("score 0.9"), "no score on arm64");
    }
    // The same digest from a cold store.
    let again =
        Test::new().dir(dir).env("PINFOLD_CACHE_DIR", dir.join("cold")).args(["build", "--locked"]).run().success();
    assert_eq!(again.digest(), built.digest());
}

const PIP_BUILD: &str = r#"pinfold 1
epoch 1704067200
platforms "linux/amd64"

debian os {
    suite "bookworm" "bookworm-updates" "bookworm-security"
    components "main"
    packages "python3"
}

python deps {
    packages "pip" "tqdm"
    python "3.11"
}

image tools {
    from scratch
    layer os { install "os" }
    layer py { install "deps" to="/opt/venv" }
    env PATH="/opt/venv/bin:/usr/bin:/bin" PIP_DISABLE_PIP_VERSION_CHECK="1"
    test pip-check {
        run "/opt/venv/bin/python" "-m" "pip" "check"
        expect-stdout equals="No broken requirements found."
    }
LIST
}
"#;

/// A `test` whose `pip list` must show each (name, version).
fn pip_list_test(versions: &[(String, String)]) -> String {
    let mut out = String::from(
        "    test pip-list {\n        run \"/opt/venv/bin/python\" \"-m\" \"pip\" \"list\" \"--format\" \"freeze\"\n",
    );
    for (name, version) in versions {
        out.push_str(&format!("        expect-stdout matches=\"(?m)^{name}=={}$\"\n", version.replace('.', "\\\\.")));
    }
    out.push_str("    }");
    out
}

#[test]
fn network_pip_in_a_venv_on_the_debian_interpreter_checks_clean_lists_the_lock_and_builds_one_digest() {
    let tmp = tempdir();
    let dir = tmp.path();
    let cache = dir.join("cache");
    let pinfold = || Test::new().dir(dir).env("PINFOLD_CACHE_DIR", &cache);
    std::fs::write(dir.join("pinfold.kdl"), PIP_BUILD.replace("LIST", "")).unwrap();
    pinfold().arg("lock").run().success();
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pinfold.lock")).unwrap()).unwrap();
    let versions: Vec<(String, String)> = lock["python"]["deps"]["platforms"]["linux/amd64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap().to_string(), w["version"].as_str().unwrap().to_string()))
        .collect();
    assert!(versions.iter().any(|(n, _)| n == "pip") && versions.iter().any(|(n, _)| n == "tqdm"), "{versions:?}");
    std::fs::write(dir.join("pinfold.kdl"), PIP_BUILD.replace("LIST", &pip_list_test(&versions))).unwrap();
    pinfold().arg("lock").run().success().stdout_contains("pinfold.lock is up to date");

    // Three builds that must agree: run 1 from an empty store (fetching), runs 2 and 3
    // from fresh caches under another umask, TZ, LANG, thread count and PYTHONHASHSEED.
    let checked = pinfold()
        .env("PYTHONHASHSEED", "12345")
        .env("TZ", "Europe/Paris")
        .args(["build", "--locked", "--check", "3"])
        .run()
        .success();
    let digest = checked.digest();
    // From the warm store, with yet another seed and thread count: the same digest.
    let warm =
        pinfold().env("PYTHONHASHSEED", "0").env("RAYON_NUM_THREADS", "2").args(["build", "--locked"]).run().success();
    assert_eq!(warm.digest(), digest);

    let tested = pinfold().arg("test").run().success();
    let out = tested.stdout();
    assert!(out.contains("pip-check") && out.contains("pip-list"), "{out}");

    // A version expected wrong fails the test: exit 1.
    let wrong: Vec<(String, String)> =
        versions.iter().map(|(n, v)| (n.clone(), if n == "tqdm" { format!("{v}.999") } else { v.clone() })).collect();
    std::fs::write(dir.join("pinfold.kdl"), PIP_BUILD.replace("LIST", &pip_list_test(&wrong))).unwrap();
    let failed = pinfold().arg("test").run().code(1);
    assert!(failed.stdout().contains("pip-list") && failed.stdout().contains(".999"), "{}", failed.stdout());
}
