//! `pinfold build --sbom`: an SPDX 2.3 document beside the image, as an OCI referrer,
//! validated by `pyspdxtools` (spdx-tools from PyPI, which pinfold did not write);
//! the same bytes from two builds; the image's digest untouched. Without the network
//! the image has a base, a download and an archive; `network_…` adds a Debian set.

use crate::harness::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A build file with a base (pinfold's own `single` image, as a layout), a file://
/// download and a local archive, in `dir`.
fn project(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("vendor")).unwrap();
    let base = Test::new()
        .dir(dir)
        .args(["build", "single", "--no-cache", "-o"])
        .arg(format!("oci:{}", src.join("vendor/single").display()))
        .arg("-f")
        .arg(fixture("build/static/pinfold.kdl"))
        .run()
        .success()
        .built()[0]
        .1
        .clone();
    std::fs::write(src.join("vendor/tool"), b"tool\n").unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "data.txt", &b"data\n"[..]).unwrap();
    let archive = tar.into_inner().unwrap();
    std::fs::write(src.join("vendor/a.tar"), &archive).unwrap();
    let text = format!(
        "pinfold 1\nepoch 1704067200\nbase single {{\n    layout \"vendor/single\"\n    digest \"{base}\"\n}}\n\
         download tool url=\"file://{}\" sha256=\"{}\"\narchive data path=\"vendor/a.tar\" sha256=\"{}\"\n\
         image derived {{\n    from single\n    layer extra {{\n        download tool to=\"/bin/\"\n        extract data to=\"/opt\"\n    }}\n}}\n",
        src.join("vendor/tool").display(),
        sha256_hex(b"tool\n"),
        sha256_hex(&archive)
    );
    std::fs::write(src.join("pinfold.kdl"), text).unwrap();
    src
}

/// The SBOM blob of the image in the layout `dir`: (image digest, SBOM bytes).
fn sbom_of(dir: &Path) -> (String, Vec<u8>) {
    let read =
        |digest: &str| std::fs::read(dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap();
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    let image = entries.iter().find(|d| d.get("artifactType").is_none()).unwrap()["digest"].as_str().unwrap();
    let artifact = entries
        .iter()
        .find(|d| d["artifactType"] == "application/spdx+json")
        .unwrap_or_else(|| panic!("no SBOM in {index}"));
    let manifest: Value = serde_json::from_slice(&read(artifact["digest"].as_str().unwrap())).unwrap();
    assert_eq!(manifest["artifactType"], "application/spdx+json");
    assert_eq!(manifest["subject"]["digest"], image, "the SBOM refers to the image");
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], "application/spdx+json");
    (image.to_string(), read(layer["digest"].as_str().unwrap()))
}

/// pyspdxtools reads the document and finds nothing invalid.
fn validate(dir: &Path, bytes: &[u8]) {
    if !require_tool("pyspdxtools", &["--help"]) {
        return;
    }
    let file = dir.join("sbom.spdx.json");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("pyspdxtools").arg("-i").arg(&file).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !said.contains("invalid"), "pyspdxtools refused the SBOM:\n{said}");
}

fn package<'d>(doc: &'d Value, name: &str) -> &'d Value {
    doc["packages"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn an_sbom_lists_base_download_and_archive_validates_and_is_reproducible() {
    let tmp = tempdir();
    let src = project(tmp.path());
    let cache = tmp.path().join("cache");
    let build = |out: &str, extra: &[&str]| {
        Test::new().dir(&src).env("PINFOLD_CACHE_DIR", &cache).args(["build", "-o", out]).args(extra).run()
    };
    let plain = build("oci:plain", &[]).success().built();
    let with = build("oci:with", &["--sbom", "--provenance"]).success();
    assert_eq!(with.built(), plain, "the SBOM must not change the image");
    let (image, bytes) = sbom_of(&src.join("with"));
    assert_eq!(image, plain[0].1);
    validate(tmp.path(), &bytes);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], "2024-01-01T00:00:00Z", "created is the epoch");
    assert!(doc["documentNamespace"].as_str().unwrap().ends_with(image.trim_start_matches("sha256:")));
    let tool = package(&doc, "tool");
    assert_eq!(tool["checksums"][0]["checksumValue"], sha256_hex(b"tool\n"));
    let archive = std::fs::read(src.join("vendor/a.tar")).unwrap();
    assert_eq!(package(&doc, "data")["checksums"][0]["checksumValue"], sha256_hex(&archive));
    let base_index: Value =
        serde_json::from_slice(&std::fs::read(src.join("vendor/single/index.json")).unwrap()).unwrap();
    let base_digest = base_index["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(package(&doc, "single")["checksums"][0]["checksumValue"], base_digest.trim_start_matches("sha256:"));
    // The provenance is still there beside it.
    let index = std::fs::read_to_string(src.join("with/index.json")).unwrap();
    assert!(index.contains("application/vnd.in-toto+json"), "{index}");

    // Again, into another layout and from an empty cache: the same bytes; and a second
    // --sbom into the same layout replaces the first, never adds one.
    std::fs::remove_dir_all(&cache).unwrap();
    build("oci:again", &["--sbom"]).success();
    assert_eq!(sbom_of(&src.join("again")).1, bytes);
    build("oci:again", &["--sbom"]).success();
    let again = std::fs::read_to_string(src.join("again/index.json")).unwrap();
    assert_eq!(again.matches("application/spdx+json").count(), 1, "{again}");

    // The reproducibility gate attaches the same document once the builds agree.
    build("oci:checked", &["--check", "--sbom"]).success();
    assert_eq!(sbom_of(&src.join("checked")).1, bytes);

    // An archive output cannot hold a referrer: refused before building.
    build("oci-archive:x.tar", &["--sbom"]).code(2).stderr_contains("--sbom");
}

const DEBIAN_BUILD: &str = r#"pinfold 1
epoch 1704067200
platforms "linux/amd64" "linux/arm64"

debian os {
    suite "bookworm"
    components "main"
    packages "busybox-static"
}

image box {
    from scratch
    layer os { install "os" }
}
"#;

#[test]
fn network_an_sbom_lists_the_debian_packages_of_the_set_with_purls() {
    let tmp = tempdir();
    let dir = tmp.path();
    std::fs::write(dir.join("pinfold.kdl"), DEBIAN_BUILD).unwrap();
    let cache = dir.join("cache");
    Test::new().dir(dir).env("PINFOLD_CACHE_DIR", &cache).arg("lock").run().success();
    let lock: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("pinfold.lock")).unwrap()).unwrap();
    Test::new().dir(dir).env("PINFOLD_CACHE_DIR", &cache).args(["build", "--locked", "--sbom"]).run().success();
    let (_, bytes) = sbom_of(&dir.join("pinfold-out/box"));
    validate(dir, &bytes);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    for (platform, arch) in [("linux/amd64", "amd64"), ("linux/arm64", "arm64")] {
        let debs = lock["debian"]["os"]["platforms"][platform].as_array().unwrap();
        assert!(!debs.is_empty());
        for deb in debs {
            let sha = deb["sha256"].as_str().unwrap();
            let listed = doc["packages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["checksums"][0]["checksumValue"] == sha)
                .unwrap_or_else(|| panic!("{deb} is not in the SBOM"));
            assert_eq!(listed["name"], deb["name"]);
            assert_eq!(listed["versionInfo"], deb["version"]);
            let purl = listed["externalRefs"][0]["referenceLocator"].as_str().unwrap();
            assert!(purl.starts_with(&format!("pkg:deb/debian/{}@", deb["name"].as_str().unwrap())), "{purl}");
            let deb_arch = deb["architecture"].as_str().unwrap();
            assert!(deb_arch == arch || deb_arch == "all");
            assert!(purl.ends_with(&format!("?arch={deb_arch}")), "{purl}");
        }
    }
}

const PYTHON_BUILD: &str = r#"pinfold 1
epoch 1704067200
platforms "linux/amd64"

debian os {
    suite "bookworm"
    components "main"
    packages "python3"
}

python deps {
    packages "tqdm"
    python "3.11"
}

image py {
    from scratch
    layer os { install "os" }
    layer deps { install "deps" to="/opt/venv" }
}
"#;

#[test]
fn network_an_sbom_lists_the_python_distributions_of_the_set_with_purls() {
    let tmp = tempdir();
    let dir = tmp.path();
    std::fs::write(dir.join("pinfold.kdl"), PYTHON_BUILD).unwrap();
    let cache = dir.join("cache");
    Test::new().dir(dir).env("PINFOLD_CACHE_DIR", &cache).arg("lock").run().success();
    let lock: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("pinfold.lock")).unwrap()).unwrap();
    Test::new().dir(dir).env("PINFOLD_CACHE_DIR", &cache).args(["build", "--locked", "--sbom"]).run().success();
    let (_, bytes) = sbom_of(&dir.join("pinfold-out/py"));
    validate(dir, &bytes);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let wheels = lock["python"]["deps"]["platforms"]["linux/amd64"].as_array().unwrap();
    assert!(wheels.iter().any(|w| w["name"].as_str().unwrap().eq_ignore_ascii_case("tqdm")), "{wheels:?}");
    for wheel in wheels {
        let listed = package(&doc, wheel["name"].as_str().unwrap());
        assert_eq!(listed["checksums"][0]["checksumValue"], wheel["sha256"]);
        assert_eq!(listed["packageFileName"], wheel["file"]);
        let purl = listed["externalRefs"][0]["referenceLocator"].as_str().unwrap();
        let expected = format!(
            "pkg:pypi/{}@{}",
            wheel["name"].as_str().unwrap().to_lowercase().replace('_', "-"),
            wheel["version"].as_str().unwrap()
        );
        assert_eq!(purl, expected);
    }
    // The interpreter's Debian packages are there too.
    assert!(doc["packages"].as_array().unwrap().iter().any(|p| p["name"] == "python3"));
}
