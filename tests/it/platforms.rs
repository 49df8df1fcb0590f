//! Two platforms from real binaries: Debian's busybox-static for amd64 and for arm64
//! (downloaded as .debs by scripts/setup-test-tools.sh into $PINFOLD_TEST_DEBS,
//! extracted here). One build gives one index; each platform's /bin/busybox is the
//! binary of its architecture, as `file` tells.

use crate::harness::*;
use std::path::{Path, PathBuf};

fn extract_busybox(deb_dir: &Path, arch: &str, into: &Path) -> Option<PathBuf> {
    let deb = std::fs::read_dir(deb_dir).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        name.starts_with("busybox-static_") && name.ends_with(&format!("_{arch}.deb"))
    })?;
    let dir = into.join(format!("deb-{arch}"));
    tool("dpkg-deb", &["-x", deb.to_str().unwrap(), dir.to_str().unwrap()]);
    Some(dir.join("bin/busybox"))
}

fn debs() -> Option<PathBuf> {
    let dir =
        PathBuf::from(std::env::var("PINFOLD_TEST_DEBS").unwrap_or_else(|_| "/var/cache/pinfold-test-debs".into()));
    let ok = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().ends_with("_arm64.deb")))
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("busybox-static .debs for amd64 and arm64 are required in CI in {}; scripts/setup-test-tools.sh downloads them", dir.display());
        }
        eprintln!("note: no busybox-static .debs in {}; skipping", dir.display());
        return None;
    }
    Some(dir)
}

#[test]
fn one_build_gives_an_index_of_amd64_and_arm64_busybox_images() {
    let Some(deb_dir) = debs() else { return };
    if !require_tool("skopeo", &["--version"]) || !require_tool("file", &["--version"]) {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for arch in ["amd64", "arm64"] {
        let bin = extract_busybox(&deb_dir, arch, tmp.path()).expect("the .deb holds bin/busybox");
        std::fs::copy(bin, src.join(format!("busybox-{arch}"))).unwrap();
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
