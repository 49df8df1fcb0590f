//! CDI devices without a GPU: the test writes a CDI spec of its own (a device node
//! that is the host's /dev/null under another name, a mounted directory, a variable)
//! and shows all three inside a busybox container under runc and under bubblewrap;
//! a device that no spec names fails with the directories searched.

use crate::harness::*;
use std::path::{Path, PathBuf};

const BUILD_FILE: &str = r#"pinfold 1
epoch 1704067200
platforms "linux/amd64"
image box {
    from scratch
    layer base {
        copy "busybox-amd64" to="/bin/busybox" mode=0o755
        symlink "/bin/sh" target="busybox"
        symlink "/bin/ls" target="busybox"
        symlink "/bin/cat" target="busybox"
        symlink "/bin/echo" target="busybox"
        dir "/tmp" mode=0o1777
    }
    env PATH="/bin"
    entrypoint "/bin/sh" "-c"
    cmd "true"

    test sees-the-device {
        device "test.example/dev=one"
        run "/bin/sh" "-c" "ls -l /dev/pinfold-one; cat /mnt/cdi/file; echo $CDI_GREETING"
        expect-stdout matches="(?m)^c.* /dev/pinfold-one$"
        expect-stdout contains="shared by the device"
        expect-stdout contains="hello-from-cdi"
    }
}
"#;

struct Fixture {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    cdi: PathBuf,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        let tmp = tempdir();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("pinfold.kdl"), BUILD_FILE).unwrap();
        busybox("amd64", &src.join("busybox-amd64"))?;
        let share = tmp.path().join("share");
        std::fs::create_dir_all(&share).unwrap();
        std::fs::write(share.join("file"), "shared by the device\n").unwrap();
        let cdi = tmp.path().join("cdi");
        std::fs::create_dir_all(&cdi).unwrap();
        let spec = serde_json::json!({
            "cdiVersion": "0.6.0",
            "kind": "test.example/dev",
            "containerEdits": { "env": ["CDI_SPEC=whole-spec"] },
            "devices": [{
                "name": "one",
                "containerEdits": {
                    "env": ["CDI_GREETING=hello-from-cdi"],
                    "deviceNodes": [{ "path": "/dev/pinfold-one", "hostPath": "/dev/null" }],
                    "mounts": [{
                        "hostPath": share.to_str().unwrap(),
                        "containerPath": "/mnt/cdi",
                        "options": ["ro", "nosuid", "nodev", "bind"]
                    }]
                }
            }]
        });
        std::fs::write(cdi.join("test.json"), serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        Some(Fixture { _tmp: tmp, src, cdi })
    }

    fn pinfold(&self) -> Test {
        Test::in_dir(&self.src).env("PINFOLD_CDI_SPEC_DIRS", &self.cdi)
    }
}

const SHOW: &str = "ls -l /dev/pinfold-one; cat /mnt/cdi/file; echo $CDI_GREETING $CDI_SPEC; \
                    echo x > /dev/pinfold-one && echo writable; echo y > /mnt/cdi/new || echo read-only";

fn shows_the_device(src: &Path, ran: &Ran) {
    let out = ran.stdout();
    let ls = out.lines().next().unwrap_or_default();
    // The host's /dev/null: a character device 1, 3.
    assert!(
        ls.starts_with('c') && ls.contains("1,") && ls.contains(" 3 ") && ls.ends_with("/dev/pinfold-one"),
        "{out}"
    );
    assert!(out.contains("shared by the device\n"), "{out}");
    assert!(out.contains("hello-from-cdi whole-spec\n"), "{out}");
    assert!(out.contains("writable\n") && out.contains("read-only\n"), "{out}");
    assert!(!src.join("new").exists());
}

#[test]
fn a_cdi_device_brings_its_node_mount_and_environment_under_runc_and_bwrap() {
    let Some(f) = Fixture::new() else { return };
    for engine in ["runc", "bwrap"] {
        if !require_tool(engine, &["--version"]) {
            continue;
        }
        let ran = f.pinfold().args(["run", "--engine", engine, "--device", "test.example/dev=one", "box", "--", SHOW]);
        let ran = ran.run().success();
        shows_the_device(&f.src, &ran);
        // The spec's nosuid and nodev hold on its mount (they were once dropped).
        let ran = f.pinfold().args(["run", "--engine", engine, "--device", "test.example/dev=one", "box", "--"]);
        let mounts = ran.arg("cat /proc/self/mounts").run().success().stdout();
        let line = mounts.lines().find(|l| l.split_whitespace().nth(1) == Some("/mnt/cdi")).unwrap_or_default();
        let options: Vec<&str> = line.split_whitespace().nth(3).unwrap_or_default().split(',').collect();
        assert!(
            options.contains(&"nosuid") && options.contains(&"nodev") && options.contains(&"ro"),
            "{engine}: {line}"
        );
        // Without the device none of it is there.
        let ran = f.pinfold().args(["run", "--engine", engine, "box", "--", "ls /dev/pinfold-one || echo absent"]);
        assert!(ran.run().success().stdout().contains("absent"));
    }
}

#[test]
fn an_unknown_device_or_gpus_without_a_spec_fail_naming_what_was_searched() {
    let Some(f) = Fixture::new() else { return };
    if !require_tool("runc", &["--version"]) {
        return;
    }
    let cdi = f.cdi.display().to_string();
    f.pinfold()
        .args(["run", "--device", "test.example/dev=two", "box"])
        .run()
        .code(125)
        .stderr_contains("test.example/dev=two")
        .stderr_contains(&cdi)
        .stderr_contains("devices one");
    f.pinfold()
        .args(["run", "--device", "other.example/gpu=0", "box"])
        .run()
        .code(125)
        .stderr_contains("no spec of kind `other.example/gpu`");
    f.pinfold()
        .args(["run", "--gpus", "all", "box"])
        .run()
        .code(125)
        .stderr_contains("nvidia.com/gpu")
        .stderr_contains(&cdi);
    f.pinfold().args(["run", "--device", "not-qualified", "box"]).run().code(125).stderr_contains("VENDOR/CLASS=NAME");
    // A hook cannot run under bubblewrap: refused, not dropped.
    let spec = serde_json::json!({
        "cdiVersion": "0.6.0", "kind": "test.example/hooked",
        "devices": [{ "name": "h", "containerEdits": {
            "hooks": [{ "hookName": "createContainer", "path": "/bin/true" }] } }]
    });
    std::fs::write(f.cdi.join("hooked.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    if require_tool("bwrap", &["--version"]) {
        f.pinfold()
            .args(["run", "--engine", "bwrap", "--device", "test.example/hooked=h", "box"])
            .run()
            .code(125)
            .stderr_contains("runs no OCI hooks");
    }
    // runc runs it (a createContainer hook that succeeds).
    f.pinfold()
        .args(["run", "--engine", "runc", "--device", "test.example/hooked=h", "box", "--", "echo ok"])
        .run()
        .success()
        .stdout_contains("ok");
}

#[test]
fn a_test_block_requires_its_device_and_pinfold_test_adds_devices() {
    let Some(f) = Fixture::new() else { return };
    for engine in ["runc", "bwrap"] {
        if !require_tool(engine, &["--version"]) {
            continue;
        }
        f.pinfold().args(["test", "--engine", engine]).run().success().stdout_contains("sees-the-device");
    }
    if !require_tool("runc", &["--version"]) {
        return;
    }
    let cdi = f.cdi.display().to_string();
    // Without the spec the test cannot run: exit 2, naming the device and where it looked.
    let empty = f.cdi.with_file_name("no-specs");
    Test::in_dir(&f.src)
        .env("PINFOLD_CDI_SPEC_DIRS", &empty)
        .arg("test")
        .run()
        .code(2)
        .stderr_contains("test.example/dev=one")
        .stderr_contains(&empty.display().to_string());
    // `--device` adds one to every test; an unknown one is exit 2 as well.
    f.pinfold()
        .args(["test", "--device", "test.example/dev=two"])
        .run()
        .code(2)
        .stderr_contains("test.example/dev=two")
        .stderr_contains(&cdi);
    // A device that is not VENDOR/CLASS=NAME in a test block is a build-file error.
    let text = std::fs::read_to_string(f.src.join("pinfold.kdl")).unwrap();
    std::fs::write(f.src.join("pinfold.kdl"), text.replace("device \"test.example/dev=one\"", "device \"gpu\""))
        .unwrap();
    f.pinfold().arg("test").run().code(2).stderr_contains("is not a CDI device name");
}

#[test]
fn docker_gets_device_and_gpus_as_asked() {
    let Some(f) = Fixture::new() else { return };
    if !require_tool("docker", &["info"]) {
        return;
    }
    // pinfold does not resolve them for Docker (its own "no CDI device" never shows);
    // Docker does, and this host's Docker has no such device: its refusal names CDI
    // (Docker 20 to 24: no "cdi" device driver; with CDI enabled: an unresolvable CDI
    // device) or the device as a path (CDI disabled).
    let ran = f.pinfold().args(["run", "--engine", "docker", "--device", "test.example/dev=one", "box"]).run();
    let stderr = ran.stderr();
    assert!(!stderr.contains("no CDI device"), "{stderr}");
    let named = stderr.to_lowercase().contains("cdi") || stderr.contains("test.example/dev=one");
    assert!(stderr.starts_with("docker") && named, "{stderr}");
    ran.code(125);
    // `--gpus all` reaches Docker: it runs where Docker has GPUs, and is refused for
    // the GPU capability elsewhere.
    let ran = f.pinfold().args(["run", "--engine", "docker", "--gpus", "all", "box", "--", "echo ran"]).run();
    let stderr = ran.stderr();
    assert!(!stderr.contains("nvidia.com/gpu"), "{stderr}");
    if ran.output.status.success() {
        assert!(ran.stdout().contains("ran"));
    } else {
        assert!(stderr.starts_with("docker") && stderr.contains("gpu"), "{stderr}");
        ran.code(125);
    }
}
