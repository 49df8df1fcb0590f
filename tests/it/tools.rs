//! pinfold's outputs checked by tools it did not write: umoci unpacks them, skopeo
//! reads them, oci-image-tool validates the layout, and the Docker engine loads and
//! runs the docker-archive. A busybox from Debian's `busybox-static` package makes
//! the image do something real.

use crate::harness::*;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

/// A build tree with the busybox of this machine (from Debian's busybox-static) as
/// `/bin/busybox`. Its sha256 is computed here, never written down, so a Debian update
/// of the package does not break the test.
fn busybox_tree(dir: &Path) -> Option<(PathBuf, String)> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().map(Path::new).find(|p| p.exists());
    let Some(busybox) = busybox else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("busybox-static is required in CI; .ci/run installs it");
        }
        eprintln!("note: no busybox here; skipping");
        return None;
    };
    let src = dir.join("src");
    copy_tree(&fixture("build/busybox"), &src, false);
    std::fs::copy(busybox, src.join("busybox")).unwrap();
    let sha = hex::encode(Sha256::digest(std::fs::read(busybox).unwrap()));
    Some((src, sha))
}

fn build(dir: &Path, src: &Path, output: &str) -> String {
    Test::new()
        .dir(dir)
        .args(["build", "hello", "--no-cache", "-o", output, "-f"])
        .arg(src.join("pinfold.kdl"))
        .run()
        .success()
        .built()[0]
        .1
        .clone()
}

#[test]
fn umoci_unpacks_the_layout_with_owners_modes_and_busybox_intact() {
    if !require_tool("umoci", &["--version"]) {
        return;
    }
    let tmp = tempdir();
    let Some((src, sha)) = busybox_tree(tmp.path()) else { return };
    let layout = tmp.path().join("layout");
    build(tmp.path(), &src, &format!("oci:{}:v1", layout.display()));
    let bundle = tmp.path().join("bundle");
    tool("umoci", &["unpack", "--rootless", "--image", &format!("{}:v1", layout.display()), bundle.to_str().unwrap()]);
    let rootfs = bundle.join("rootfs");
    let unpacked = std::fs::read(rootfs.join("bin/busybox")).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&unpacked)), sha);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(rootfs.join("bin/busybox")).unwrap().permissions().mode() & 0o7777, 0o755);
    assert_eq!(std::fs::metadata(rootfs.join("tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
    assert_eq!(std::fs::read_link(rootfs.join("bin/sh")).unwrap(), Path::new("busybox"));
    assert_eq!(std::fs::read_to_string(rootfs.join("etc/motd")).unwrap(), "reproducible\n");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["args"][0], "/bin/sh");
}

#[test]
fn skopeo_reads_every_output_form_with_the_same_digest() {
    if !require_tool("skopeo", &["--version"]) {
        return;
    }
    let tmp = tempdir();
    let Some((src, _)) = busybox_tree(tmp.path()) else { return };
    let digest = build(tmp.path(), &src, &format!("oci:{}", tmp.path().join("layout").display()));
    build(tmp.path(), &src, &format!("oci-archive:{}", tmp.path().join("oci.tar").display()));
    build(tmp.path(), &src, &format!("docker-archive:{}", tmp.path().join("docker.tar").display()));
    for reference in [
        format!("oci:{}:hello", tmp.path().join("layout").display()),
        format!("oci-archive:{}", tmp.path().join("oci.tar").display()),
    ] {
        let raw = tool("skopeo", &["inspect", "--raw", &reference]);
        assert_eq!(format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes()))), digest, "{reference}");
        let info: serde_json::Value = serde_json::from_str(&tool("skopeo", &["inspect", &reference])).unwrap();
        assert_eq!(info["Architecture"], "amd64");
        assert_eq!(info["Created"], "2024-01-01T00:00:00Z");
    }
    // A docker-archive has no manifest of its own; skopeo reads the config and layers.
    let info: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", tmp.path().join("docker.tar").display())],
    ))
    .unwrap();
    assert_eq!(info["Layers"].as_array().unwrap().len(), 2);
}

#[test]
fn oci_image_tool_validates_the_layout_and_the_unpacked_archive() {
    if !require_tool("oci-image-tool", &["--version"]) {
        return;
    }
    let tmp = tempdir();
    let layout = tmp.path().join("layout");
    Test::new()
        .dir(tmp.path())
        .args(["build", "--no-cache", "static", "-o"])
        .arg(format!("oci:{}", layout.display()))
        .arg("-f")
        .arg(fixture("build/static/pinfold.kdl"))
        .run()
        .success();
    // Debian's oci-image-tool (1.0.0-rc1) names the layout check `--type image` and
    // autodetects "imageLayout"; it cannot walk tars, so archives are checked unpacked.
    let out =
        tool("oci-image-tool", &["validate", "--type", "image", "--ref", "name=static", layout.to_str().unwrap()]);
    assert!(out.contains("Validation succeeded"), "{out}");
    let archive = tmp.path().join("static.tar");
    Test::new()
        .dir(tmp.path())
        .args(["build", "--no-cache", "static", "-o"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg("-f")
        .arg(fixture("build/static/pinfold.kdl"))
        .run()
        .success();
    let unpacked = tmp.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    tool("tar", &["-xf", archive.to_str().unwrap(), "-C", unpacked.to_str().unwrap()]);
    let out =
        tool("oci-image-tool", &["validate", "--type", "image", "--ref", "name=static", unpacked.to_str().unwrap()]);
    assert!(out.contains("Validation succeeded"), "{out}");
}

fn docker_available() -> bool {
    require_tool("docker", &["info"])
}

#[test]
fn docker_loads_and_runs_the_docker_archive() {
    if !docker_available() {
        return;
    }
    let tmp = tempdir();
    let Some((src, _)) = busybox_tree(tmp.path()) else { return };
    let tag = format!("pinfold-test/hello:{}", std::process::id());
    let archive = tmp.path().join("docker.tar");
    let digest = build(tmp.path(), &src, &format!("docker-archive:{}:{tag}", archive.display()));
    let loaded = tool("docker", &["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains(&tag), "{loaded}");
    let run = std::process::Command::new("docker").args(["run", "--rm", "--network", "none", &tag]).output().unwrap();
    let _ = std::process::Command::new("docker").args(["rmi", "-f", &tag]).output();
    assert!(run.status.success(), "docker run failed: {}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hello from pinfold\n");
    // Docker's image ID is the config digest pinfold wrote: docker kept the bytes.
    let inspect =
        Test::new().args(["inspect", "--json"]).arg(format!("docker-archive:{}", archive.display())).run().success();
    let doc: serde_json::Value = serde_json::from_str(&inspect.stdout()).unwrap();
    assert_eq!(doc["manifests"][0]["digest"].as_str().unwrap(), digest);
}

#[test]
fn a_docker_save_archive_serves_as_a_pinned_base() {
    if !docker_available() {
        return;
    }
    let tmp = tempdir();
    let Some((src, _)) = busybox_tree(tmp.path()) else { return };
    let tag = format!("pinfold-test/base:{}", std::process::id());
    let archive = tmp.path().join("docker.tar");
    build(tmp.path(), &src, &format!("docker-archive:{}:{tag}", archive.display()));
    tool("docker", &["load", "-i", archive.to_str().unwrap()]);
    let derived = tmp.path().join("derived");
    std::fs::create_dir_all(derived.join("vendor")).unwrap();
    let saved = derived.join("vendor/base.tar");
    tool("docker", &["save", "-o", saved.to_str().unwrap(), &tag]);
    let _ = std::process::Command::new("docker").args(["rmi", "-f", &tag]).output();
    let image_id =
        Test::new().args(["inspect", "--json"]).arg(format!("docker-archive:{}", saved.display())).run().success();
    let image_id: serde_json::Value = serde_json::from_str(&image_id.stdout()).unwrap();
    let image_id = image_id["digest"].as_str().unwrap().to_string();
    std::fs::write(
        derived.join("pinfold.kdl"),
        format!("pinfold 1\nepoch 1704067200\nbase saved {{\n    docker-archive \"vendor/base.tar\"\n    digest \"{image_id}\"\n}}\nimage hello {{\n    from saved\n    layer more {{\n        file \"/etc/more\" \"more\\n\"\n    }}\n    cmd \"cat /etc/more\"\n}}\n"),
    )
    .unwrap();
    let out = tmp.path().join("derived.tar");
    let tag2 = format!("pinfold-test/derived:{}", std::process::id());
    Test::new()
        .dir(&derived)
        .args(["build", "--no-cache", "-o"])
        .arg(format!("docker-archive:{}:{tag2}", out.display()))
        .run()
        .success();
    tool("docker", &["load", "-i", out.to_str().unwrap()]);
    let run = std::process::Command::new("docker").args(["run", "--rm", "--network", "none", &tag2]).output().unwrap();
    let _ = std::process::Command::new("docker").args(["rmi", "-f", &tag2]).output();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "more\n", "{}", String::from_utf8_lossy(&run.stderr));
}
