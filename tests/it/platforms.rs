//! Two platforms from real binaries: Debian's busybox-static for amd64 and for arm64
//! (downloaded as .debs by scripts/setup-test-tools.sh into $PINFOLD_TEST_DEBS,
//! extracted here). One build gives one index; each platform's /bin/busybox is the
//! binary of its architecture, as `file` tells.

use crate::harness::*;

#[test]
fn one_build_gives_an_index_of_amd64_and_arm64_busybox_images() {
    if !require_tool("skopeo", &["--version"]) || !require_tool("file", &["--version"]) {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for arch in ["amd64", "arm64"] {
        if busybox(arch, &src.join(format!("busybox-{arch}"))).is_none() {
            return;
        }
    }
    std::fs::write(
        src.join("pinfold.kdl"),
        r#"pinfold 1
epoch 1704067200
platforms "linux/amd64" "linux/arm64"
image busybox {
    from scratch
    layer base {
        symlink "/bin/sh" target="busybox"
    }
    platform "linux/amd64" {
        layer base { copy "busybox-amd64" to="/bin/busybox" mode=0o755 }
    }
    platform "linux/arm64" {
        layer base { copy "busybox-arm64" to="/bin/busybox" mode=0o755 }
    }
    entrypoint "/bin/sh" "-c"
    cmd "echo hello"
}
"#,
    )
    .unwrap();
    let layout = tmp.path().join("layout");
    Test::new().dir(&src).args(["build", "--no-cache", "-o"]).arg(format!("oci:{}", layout.display())).run().success();
    let raw: serde_json::Value =
        serde_json::from_str(&tool("skopeo", &["inspect", "--raw", &format!("oci:{}:busybox", layout.display())]))
            .unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let archs: Vec<&str> =
        raw["manifests"].as_array().unwrap().iter().map(|m| m["platform"]["architecture"].as_str().unwrap()).collect();
    assert_eq!(archs, ["amd64", "arm64"]);

    let inspect = Test::new().args(["inspect", "--json"]).arg(format!("oci:{}", layout.display())).run().success();
    let doc: serde_json::Value = serde_json::from_str(&inspect.stdout()).unwrap();
    for (m, expected) in doc["manifests"].as_array().unwrap().iter().zip(["x86-64", "ARM aarch64"]) {
        let layer = m["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
        let out = tmp.path().join(format!("rootfs-{}", m["platform"].as_str().unwrap().replace('/', "-")));
        std::fs::create_dir_all(&out).unwrap();
        tool("tar", &["-xzf", layout.join("blobs/sha256").join(layer).to_str().unwrap(), "-C", out.to_str().unwrap()]);
        let described = tool("file", &[out.join("bin/busybox").to_str().unwrap()]);
        assert!(described.contains(expected) && described.contains("statically linked"), "{described}");
    }
}
