//! `pinfold run` and `pinfold test` end to end: busybox images for amd64 and arm64
//! (from Debian's busybox-static, in $PINFOLD_TEST_DEBS) run in a real OCI runtime,
//! arm64 through qemu-user; declared tests pass and fail with their values reported;
//! container-structure-test agrees with pinfold on the same configs; hostile images
//! are refused without a byte written outside the bundle; and nothing is left behind,
//! not even by runs that were killed.
//!
//! Tools these tests need are set up by scripts/setup-test-tools.sh. Outside CI a
//! missing tool skips the check with a note; under CI=true it fails the test.

use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

// ---- the busybox fixture ----

/// A checkout of `fixtures/run/busybox` with Debian's busybox binaries beside the build
/// file, and a cache of its own.
struct Fixture {
    tmp: tempfile::TempDir,
    src: PathBuf,
    cache: PathBuf,
}

impl Fixture {
    /// `None` (after a note) when the .debs or a runtime are missing outside CI.
    fn new() -> Option<Fixture> {
        if !require_tool("runc", &["--version"]) {
            return None;
        }
        let tmp = tempdir();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::copy(fixture("run/busybox/pinfold.kdl"), src.join("pinfold.kdl")).unwrap();
        for arch in ["amd64", "arm64"] {
            busybox(arch, &src.join(format!("busybox-{arch}")))?;
        }
        let cache = tmp.path().join("cache");
        Some(Fixture { tmp, src, cache })
    }

    fn pinfold(&self) -> Test {
        Test::new().dir(&self.src).env("PINFOLD_CACHE_DIR", &self.cache)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Bundles left in the cache's run directory.
    fn bundles(&self) -> Vec<String> {
        std::fs::read_dir(self.cache.join("run"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    /// runc containers whose bundle is in this fixture's cache.
    fn containers(&self) -> Vec<String> {
        let out = Command::new("runc").args(["list", "--format", "json"]).output().unwrap();
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        let cache = self.cache.to_string_lossy().into_owned();
        list.as_array()
            .map(|a| {
                a.iter()
                    .filter(|c| c["bundle"].as_str().is_some_and(|b| b.starts_with(&cache)))
                    .map(|c| c["id"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn platforms() -> Vec<(&'static str, &'static str)> {
    let mut list = vec![("linux/amd64", "x86_64")];
    if arm64_runs() {
        list.push(("linux/arm64", "aarch64"));
    }
    list
}

// ---- pinfold run ----

#[test]
fn busybox_prints_its_line_on_amd64_and_arm64_and_returns_exit_codes() {
    let Some(f) = Fixture::new() else { return };
    for (platform, machine) in platforms() {
        let ran = f.pinfold().args(["run", "--platform", platform, "busybox"]).run().success();
        assert_eq!(ran.stdout(), format!("hello from {machine}\n"), "{platform}");
        f.pinfold().args(["run", "--platform", platform, "busybox", "--", "exit 7"]).run().code(7);
        // The image's user, looked up in its /etc/passwd, with its groups.
        let ran =
            f.pinfold().args(["run", "--platform", platform, "--entrypoint", "/bin/id", "busybox"]).run().success();
        assert!(ran.stdout().starts_with("uid=0(root) gid=0(root)"), "{}", ran.stdout());
    }
    let ran = f.pinfold().args(["run", "app"]).run().success();
    assert_eq!(ran.stdout(), "ran as app\n");
    // -e and a command that replaces the cmd.
    let ran = f
        .pinfold()
        .args(["run", "-e", "GREETING=bonjour", "-e", "EXTRA=x", "busybox", "--", "echo $GREETING $EXTRA"])
        .run()
        .success();
    assert_eq!(ran.stdout(), "bonjour x\n");
    // stdin passes through.
    let mut child = Command::new(pinfold_bin())
        .current_dir(&f.src)
        .env("PINFOLD_CACHE_DIR", &f.cache)
        .args(["run", "busybox", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"through stdin\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");
    assert!(f.bundles().is_empty(), "bundles left: {:?}", f.bundles());
}

#[test]
fn a_mount_shows_host_files_the_rootfs_is_read_only_and_there_is_no_network() {
    let Some(f) = Fixture::new() else { return };
    let host = f.path("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("greeting.txt"), "from the host\n").unwrap();
    for (platform, _) in platforms() {
        let ro = format!("{}:/mnt/host:ro", host.display());
        let ran = f
            .pinfold()
            .args(["run", "--platform", platform, "-v", &ro, "busybox", "--", "cat /mnt/host/greeting.txt"])
            .run()
            .success();
        assert_eq!(ran.stdout(), "from the host\n");
        // A read-only mount refuses writes; a read-write one takes them.
        f.pinfold()
            .args(["run", "--platform", platform, "-v", &ro, "busybox", "--", "echo x > /mnt/host/new"])
            .run()
            .code(1)
            .stderr_contains("Read-only file system");
        let rw = format!("{}:/mnt/host", host.display());
        f.pinfold()
            .args(["run", "--platform", platform, "-v", &rw, "busybox", "--", "echo written > /mnt/host/new"])
            .run()
            .success();
        assert_eq!(std::fs::read_to_string(host.join("new")).unwrap(), "written\n");
        std::fs::remove_file(host.join("new")).unwrap();
        // The root is read-only; /tmp is a writable tmpfs.
        f.pinfold()
            .args(["run", "--platform", platform, "busybox", "--", "echo x > /etc/motd"])
            .run()
            .code(1)
            .stderr_contains("Read-only file system");
        f.pinfold()
            .args(["run", "--platform", platform, "busybox", "--", "echo x > /written"])
            .run()
            .code(1)
            .stderr_contains("Read-only file system");
        let ran = f
            .pinfold()
            .args(["run", "--platform", platform, "busybox", "--", "echo ok > /tmp/t && cat /tmp/t"])
            .run()
            .success();
        assert_eq!(ran.stdout(), "ok\n");
        // The image's volume (/data) is writable, as Docker's anonymous volumes are.
        let ran = f
            .pinfold()
            .args(["run", "--platform", platform, "busybox", "--", "echo v > /data/v && cat /data/v"])
            .run()
            .success();
        assert_eq!(ran.stdout(), "v\n");
        // Only loopback.
        let ran =
            f.pinfold().args(["run", "--platform", platform, "busybox", "--", "cat /proc/net/dev"]).run().success();
        let interfaces: Vec<String> =
            ran.stdout().lines().skip(2).map(|l| l.split(':').next().unwrap_or_default().trim().to_string()).collect();
        assert_eq!(interfaces, ["lo"], "{}", ran.stdout());
    }
    assert!(f.bundles().is_empty(), "bundles left: {:?}", f.bundles());
}

#[test]
fn exit_codes_125_126_127_as_docker_run_returns_them() {
    let Some(f) = Fixture::new() else { return };
    f.pinfold().args(["run", "--entrypoint", "/bin/nope", "busybox"]).run().code(127).stderr_contains("/bin/nope");
    f.pinfold().args(["run", "--entrypoint", "nope", "busybox"]).run().code(127).stderr_contains("not found in $PATH");
    f.pinfold()
        .args(["run", "--entrypoint", "/app/data.txt", "busybox"])
        .run()
        .code(126)
        .stderr_contains("/app/data.txt");
    // No entrypoint and no cmd: nothing to start.
    f.pinfold()
        .args(["run", "--entrypoint", "", "busybox"])
        .run()
        .code(125)
        .stderr_contains("no entrypoint and no cmd");
    f.pinfold()
        .args(["run", "--platform", "linux/s390x", "busybox"])
        .run()
        .code(125)
        .stderr_contains("linux/amd64, linux/arm64");
    f.pinfold().args(["run", "--engine", "nonsense", "busybox"]).run().code(125).stderr_contains("unknown engine");
    f.pinfold()
        .args(["run", "-v", "/does/not/exist:/mnt", "busybox"])
        .run()
        .code(125)
        .stderr_contains("/does/not/exist");
    f.pinfold().args(["run", "nosuchimage"]).run().code(125).stderr_contains("no image `nosuchimage`");
    assert!(f.bundles().is_empty(), "bundles left: {:?}", f.bundles());
}

#[test]
fn a_second_run_uses_the_cached_rootfs() {
    let Some(f) = Fixture::new() else { return };
    f.pinfold().args(["run", "busybox", "--", "true"]).run().success();
    let rootfs: Vec<PathBuf> = std::fs::read_dir(f.cache.join("rootfs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(rootfs.len(), 1, "{rootfs:?}");
    // A run that unpacks renames a new tree into place: another inode. (Not the
    // directory's mtime: a hit refreshes it, as the last use `cache gc` reads.)
    use std::os::unix::fs::MetadataExt;
    let inode = |path: &Path| std::fs::metadata(path).unwrap().ino();
    let before = (inode(&rootfs[0]), inode(&rootfs[0].join("bin")));
    let started = Instant::now();
    f.pinfold().args(["run", "busybox", "--", "true"]).run().success();
    eprintln!("second run: {:?}", started.elapsed());
    assert_eq!((inode(&rootfs[0]), inode(&rootfs[0].join("bin"))), before, "the rootfs was unpacked again");
    // Nothing a run does reaches the cached tree.
    assert!(!rootfs[0].join("proc").exists() && !rootfs[0].join("etc/hosts").exists());
}

#[test]
fn the_bubblewrap_fallback_runs_the_same_sandbox() {
    let Some(f) = Fixture::new() else { return };
    if !require_tool("bwrap", &["--version"]) {
        return;
    }
    for (platform, machine) in platforms() {
        let ran = f.pinfold().args(["run", "--engine", "bwrap", "--platform", platform, "busybox"]).run().success();
        assert_eq!(ran.stdout(), format!("hello from {machine}\n"));
        f.pinfold().args(["run", "--engine", "bwrap", "--platform", platform, "busybox", "--", "exit 7"]).run().code(7);
        f.pinfold()
            .args(["run", "--engine", "bwrap", "busybox", "--", "echo x > /x"])
            .run()
            .code(1)
            .stderr_contains("Read-only file system");
        f.pinfold().args(["run", "--engine", "bwrap", "busybox", "--", "echo v > /data/v"]).run().success();
        let ran = f.pinfold().args(["run", "--engine", "bwrap", "busybox", "--", "cat /proc/net/dev"]).run().success();
        assert_eq!(ran.stdout().lines().skip(2).count(), 1, "{}", ran.stdout());
    }
    assert!(f.bundles().is_empty());
}

#[test]
fn the_docker_engine_loads_and_runs_the_image() {
    let Some(f) = Fixture::new() else { return };
    if !require_tool("docker", &["info"]) {
        return;
    }
    for (platform, machine) in platforms() {
        let ran = f.pinfold().args(["run", "--engine", "docker", "--platform", platform, "busybox"]).run().success();
        assert_eq!(ran.stdout(), format!("hello from {machine}\n"));
    }
    f.pinfold().args(["run", "--engine", "docker", "busybox", "--", "exit 7"]).run().code(7);
    f.pinfold()
        .args(["run", "--engine", "docker", "busybox", "--", "echo x > /x"])
        .run()
        .code(1)
        .stderr_contains("Read-only file system");
    f.pinfold().args(["run", "--engine", "docker", "busybox", "--", "echo v > /data/v"]).run().success();
    let ps = tool("docker", &["ps", "-a", "--format", "{{.Names}}"]);
    let ours: Vec<&str> = ps.lines().filter(|n| n.starts_with("pinfold-")).collect();
    // Other tests may be running containers of their own; none of this test's is left
    // once it has returned, which `docker run --rm` and the cleanup guarantee.
    eprintln!("pinfold containers present: {ours:?}");
}

#[test]
fn an_architecture_without_a_binfmt_handler_is_named_with_the_package_to_install() {
    let Some(f) = Fixture::new() else { return };
    if Path::new("/proc/sys/fs/binfmt_misc/qemu-riscv64").exists() {
        eprintln!("note: a riscv64 handler is registered here; nothing to check");
        return;
    }
    std::fs::write(
        f.src.join("riscv.kdl"),
        "pinfold 1\nepoch 1704067200\nimage rv {\n    from scratch\n    platforms \"linux/riscv64\"\n    layer base { copy \"busybox-amd64\" to=\"/bin/busybox\" mode=0o755 }\n    entrypoint \"/bin/busybox\" \"true\"\n}\n",
    )
    .unwrap();
    f.pinfold().args(["run", "-f", "riscv.kdl", "rv"]).run().code(125).stderr_contains("qemu-user-static");
}

// ---- signals and cleanup ----

fn spawn_run(f: &Fixture, extra: &[&str]) -> std::process::Child {
    Command::new(pinfold_bin())
        .current_dir(&f.src)
        .env("PINFOLD_CACHE_DIR", &f.cache)
        .args(["run"])
        .args(extra)
        .args(["busybox", "--", "sleep 30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until a container other than `before` runs in the fixture's cache (the
/// watcher of a killed run may still be removing an earlier one).
fn wait_for_new_container(f: &Fixture, before: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f.containers().iter().any(|c| !before.contains(c)) {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    tool("kill", &[sig, &child.id().to_string()]);
}

#[test]
fn nothing_is_left_after_twenty_runs_including_killed_ones() {
    let Some(f) = Fixture::new() else { return };
    f.pinfold().args(["build"]).run().success();
    let mut runs = 0;
    for code in [0, 3, 7, 0, 1, 0, 42, 0] {
        f.pinfold().args(["run", "busybox", "--", &format!("exit {code}")]).run().code(code);
        runs += 1;
    }
    for _ in 0..6 {
        let before = f.containers();
        let mut child = spawn_run(&f, &[]);
        wait_for_new_container(&f, &before);
        signal(&child, "-KILL");
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
        runs += 1;
    }
    for _ in 0..6 {
        let before = f.containers();
        let child = spawn_run(&f, &["--stop-timeout", "1"]);
        wait_for_new_container(&f, &before);
        signal(&child, "-TERM");
        let started = Instant::now();
        let out = child.wait_with_output().unwrap();
        // `sleep` as the container's init ignores SIGTERM: it is killed after the
        // stop timeout, as `docker stop` does.
        assert_eq!(out.status.code(), Some(137), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(started.elapsed() < Duration::from_secs(15));
        runs += 1;
    }
    assert_eq!(runs, 20);
    // A killed pinfold's watcher cleans up in the background: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(f.bundles().is_empty() && f.containers().is_empty()) {
        assert!(Instant::now() < deadline, "left behind: bundles {:?}, containers {:?}", f.bundles(), f.containers());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_reaches_a_program_that_handles_it() {
    let Some(f) = Fixture::new() else { return };
    let child = Command::new(pinfold_bin())
        .current_dir(&f.src)
        .env("PINFOLD_CACHE_DIR", &f.cache)
        .args(["run", "busybox", "--", "trap 'echo got TERM; exit 5' TERM; sleep 30 & wait"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_new_container(&f, &[]);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got TERM\n");
}

// ---- hostile images ----

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A tar entry with its name written as is (the tar crate refuses `..` names).
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    data: &[u8],
    mode: u32,
) {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    if let Some(link) = link {
        h.set_link_name(link).unwrap();
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn layer(entries: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    entries(&mut b);
    b.into_inner().unwrap()
}

/// Writes an OCI layout of one amd64 image with uncompressed `layers` and `config`
/// as its runtime config.
fn write_layout(dir: &Path, layers: &[Vec<u8>], config: serde_json::Value) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let hex = sha256_hex(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    };
    let diff_ids: Vec<String> = layers.iter().map(|l| format!("sha256:{}", sha256_hex(l))).collect();
    let descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": put(l), "size": l.len()}))
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(&config), "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(&manifest), "size": manifest.len()}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Every file below `dir` whose name is `name`.
fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() == name)
        .map(|e| e.into_path())
        .collect()
}

#[test]
fn hostile_images_are_refused_and_nothing_is_written_outside_the_bundle() {
    let Some(f) = Fixture::new() else { return };
    let busybox = std::fs::read(f.src.join("busybox-amd64")).unwrap();
    let base = layer(|b| {
        raw_entry(b, "bin/", tar::EntryType::Directory, None, b"", 0o755);
        raw_entry(b, "bin/busybox", tar::EntryType::Regular, None, &busybox, 0o755);
        raw_entry(b, "bin/sh", tar::EntryType::Symlink, Some("busybox"), b"", 0o777);
    });
    let shell = serde_json::json!({"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"]});
    let outside = f.path("outside");
    std::fs::create_dir_all(&outside).unwrap();

    // `../` in a name.
    let dir = f.path("dotdot");
    write_layout(
        &dir,
        &[
            base.clone(),
            layer(|b| raw_entry(b, "../../../../../../evil-dotdot", tar::EntryType::Regular, None, b"x", 0o644)),
        ],
        shell.clone(),
    );
    f.pinfold()
        .args(["run"])
        .arg(format!("oci:{}", dir.display()))
        .run()
        .code(125)
        .stderr_contains("climbs out of the rootfs");

    // A symlink to a directory outside, and a file written through it, in one layer
    // and across two.
    let target = outside.to_str().unwrap().to_string();
    let dir = f.path("through");
    write_layout(
        &dir,
        &[
            base.clone(),
            layer(|b| {
                raw_entry(b, "escape", tar::EntryType::Symlink, Some(&target), b"", 0o777);
                raw_entry(b, "escape/evil-through", tar::EntryType::Regular, None, b"x", 0o644);
            }),
        ],
        shell.clone(),
    );
    f.pinfold()
        .args(["run"])
        .arg(format!("oci:{}", dir.display()))
        .run()
        .code(125)
        .stderr_contains("through the symlink `escape`");
    let dir = f.path("through-two");
    write_layout(
        &dir,
        &[
            base.clone(),
            layer(|b| raw_entry(b, "up", tar::EntryType::Symlink, Some("../../../../../../../.."), b"", 0o777)),
            layer(|b| raw_entry(b, "up/evil-two-layers", tar::EntryType::Regular, None, b"x", 0o644)),
        ],
        shell.clone(),
    );
    f.pinfold()
        .args(["run"])
        .arg(format!("oci:{}", dir.display()))
        .run()
        .code(125)
        .stderr_contains("through the symlink `up`");

    // A hard link to a file outside.
    let dir = f.path("hardlink");
    write_layout(
        &dir,
        &[
            base.clone(),
            layer(|b| raw_entry(b, "passwd", tar::EntryType::Link, Some("../../../../../etc/passwd"), b"", 0o644)),
        ],
        shell.clone(),
    );
    f.pinfold().args(["run"]).arg(format!("oci:{}", dir.display())).run().code(125).stderr_contains("climbs out");

    // A layer that is not what its digest says.
    let dir = f.path("tampered");
    write_layout(&dir, std::slice::from_ref(&base), shell.clone());
    let blob = dir.join("blobs/sha256").join(sha256_hex(&base));
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last - 2000] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    f.pinfold().args(["run"]).arg(format!("oci:{}", dir.display())).run().code(125).stderr_contains("does not match");

    // A missing entrypoint: reported, as `docker run` reports it.
    let dir = f.path("no-entrypoint");
    write_layout(&dir, std::slice::from_ref(&base), serde_json::json!({"Entrypoint": ["/bin/missing"]}));
    f.pinfold().args(["run"]).arg(format!("oci:{}", dir.display())).run().code(127).stderr_contains("/bin/missing");

    // Whiteouts remove what a lower layer had, and the image then runs.
    let dir = f.path("whiteouts");
    let lower = layer(|b| {
        raw_entry(b, "etc/", tar::EntryType::Directory, None, b"", 0o755);
        raw_entry(b, "etc/secret", tar::EntryType::Regular, None, b"s", 0o600);
        raw_entry(b, "opaque/", tar::EntryType::Directory, None, b"", 0o755);
        raw_entry(b, "opaque/old", tar::EntryType::Regular, None, b"o", 0o644);
    });
    let upper = layer(|b| {
        raw_entry(b, "etc/.wh.secret", tar::EntryType::Regular, None, b"", 0o644);
        raw_entry(b, "opaque/.wh..wh..opq", tar::EntryType::Regular, None, b"", 0o644);
        raw_entry(b, "opaque/new", tar::EntryType::Regular, None, b"n", 0o644);
    });
    write_layout(
        &dir,
        &[base.clone(), lower, upper],
        serde_json::json!({"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["ls /etc /opaque"]}),
    );
    let ran = f.pinfold().args(["run"]).arg(format!("oci:{}", dir.display())).run().success();
    assert!(
        !ran.stdout().contains("secret") && !ran.stdout().contains("old") && ran.stdout().contains("new"),
        "{}",
        ran.stdout()
    );

    for name in ["evil-dotdot", "evil-through", "evil-two-layers"] {
        assert!(find_named(f.tmp.path(), name).is_empty(), "{name} was written: {:?}", find_named(f.tmp.path(), name));
        assert!(!Path::new("/").join(name).exists());
    }
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "something was written outside");
    assert!(f.bundles().is_empty(), "bundles left: {:?}", f.bundles());
}

// ---- pinfold test ----

#[test]
fn declared_tests_pass_on_every_platform() {
    let Some(f) = Fixture::new() else { return };
    let mut args = vec!["test".to_string()];
    let platforms = platforms();
    for (p, _) in &platforms {
        args.extend(["--platform".to_string(), p.to_string()]);
    }
    let ran = f.pinfold().args(&args).run().success();
    let out = ran.stdout();
    for (p, _) in &platforms {
        assert!(out.contains(&format!("busybox ({p})")), "{out}");
    }
    assert!(out.contains("app (linux/amd64)"), "{out}");
    let expected = 6 * platforms.len() + 2;
    assert!(out.contains(&format!("{expected} passed, 0 failed")), "{out}");

    let ran = f.pinfold().args(&args).args(["--format", "json"]).run().success();
    let doc: serde_json::Value = serde_json::from_str(&ran.stdout()).unwrap();
    assert_eq!(doc["summary"]["passed"], expected);
    assert_eq!(doc["results"].as_array().unwrap().len(), platforms.len() + 1);
}

#[test]
fn a_failing_declared_test_is_reported_with_expected_and_actual_values() {
    let Some(f) = Fixture::new() else { return };
    let text = std::fs::read_to_string(f.src.join("pinfold.kdl")).unwrap();
    let failing = text.replacen(
        "    test layout {",
        "    test fails {\n        run \"/bin/sh\" \"-c\" \"echo bye; exit 3\"\n        expect-exit 0\n        expect-stdout equals=\"hello\"\n        file \"/etc/motd\" mode=0o600\n        expect-env GREETING=\"bonjour\"\n    }\n    test layout {",
        1,
    );
    std::fs::write(f.src.join("pinfold.kdl"), failing).unwrap();
    let mut args = vec!["test".to_string(), "busybox".to_string()];
    for (p, _) in platforms() {
        args.extend(["--platform".to_string(), p.to_string()]);
    }
    let ran = f.pinfold().args(&args).run().code(1);
    let out = ran.stdout();
    assert!(out.contains("FAIL  fails"), "{out}");
    for needle in [
        "expect-exit\n          expected: 0\n          actual:   3",
        "expect-stdout equals\n          expected: \"hello\"\n          actual:   \"bye\\n\"",
        "file /etc/motd mode\n          expected: 0o600\n          actual:   0o644",
        "expect-env GREETING\n          expected: \"bonjour\"\n          actual:   \"hello\"",
    ] {
        assert!(out.contains(needle), "lacks {needle:?}:\n{out}");
    }
    let ran = f.pinfold().args(&args).args(["--format", "json"]).run().code(1);
    let doc: serde_json::Value = serde_json::from_str(&ran.stdout()).unwrap();
    let fails: Vec<&serde_json::Value> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["tests"].as_array().unwrap())
        .filter(|t| t["name"] == "fails")
        .collect();
    assert_eq!(fails.len(), platforms().len());
    for t in fails {
        assert_eq!(t["status"], "failed");
        assert_eq!(t["failures"][0], serde_json::json!({"check": "expect-exit", "expected": "0", "actual": "3"}));
    }
    let ran = f.pinfold().args(&args).args(["--format", "junit"]).run().code(1);
    let junit = f.path("junit.xml");
    std::fs::write(&junit, ran.stdout()).unwrap();
    assert!(ran.stdout().contains("<failure message=\"expect-exit: expected 0, got 3\""), "{}", ran.stdout());
    if require_tool("python3", &["--version"]) {
        let parsed = tool("python3", &["-c", "import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); print(len(d.getElementsByTagName('failure')))", junit.to_str().unwrap()]);
        assert_eq!(parsed.trim(), platforms().len().to_string());
    }
}

#[test]
fn errors_in_test_blocks_are_diagnostics_at_their_spans() {
    let Some(f) = Fixture::new() else { return };
    let text = std::fs::read_to_string(f.src.join("pinfold.kdl")).unwrap();
    let bad = text.replacen(
        "    test layout {",
        "    test broken {\n        expect-stdout matches=\"(\"\n        expect-exit 300\n    }\n    test layout {",
        1,
    );
    std::fs::write(f.src.join("pinfold.kdl"), bad).unwrap();
    let ran = f.pinfold().args(["test"]).run().code(2);
    let err = ran.stderr();
    assert!(err.contains("pinfold::bad-regex") && err.contains("pinfold::bad-value"), "{err}");
    assert!(err.contains("pinfold.kdl:"), "diagnostics point into the file: {err}");
    f.pinfold().args(["build"]).run().code(2).stderr_contains("pinfold::bad-regex");
}

// ---- container-structure-test ----

/// container-structure-test's verdicts, by test name, from its JSON output.
fn cst_verdicts(stdout: &str) -> std::collections::BTreeMap<String, bool> {
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).expect("a JSON result");
    let doc: serde_json::Value = serde_json::from_str(line).unwrap();
    doc["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["Name"].as_str().unwrap().to_string(), r["Pass"].as_bool().unwrap()))
        .collect()
}

fn pinfold_verdicts(ran: &Ran) -> std::collections::BTreeMap<String, bool> {
    let doc: serde_json::Value = serde_json::from_str(&ran.stdout()).unwrap();
    doc["results"][0]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["status"] == "passed"))
        .collect()
}

fn run_cst(args: &[&str]) -> String {
    let out = Command::new("container-structure-test").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_agree(
    cst: &std::collections::BTreeMap<String, bool>,
    ours: &std::collections::BTreeMap<String, bool>,
    config: &str,
) {
    assert_eq!(cst, ours, "container-structure-test (left) and pinfold (right) disagree on {config}");
    assert!(
        ours.values().any(|p| *p) && ours.values().any(|p| !*p),
        "{config} should hold passing and failing tests: {ours:?}"
    );
}

#[test]
fn container_structure_test_tar_driver_and_pinfold_agree() {
    let Some(f) = Fixture::new() else { return };
    if !require_tool("container-structure-test", &["version"]) {
        return;
    }
    let archive = f.path("busybox.tar");
    f.pinfold()
        .args(["build", "busybox", "--platform", "linux/amd64", "-o"])
        .arg(format!("docker-archive:{}:busybox:cst", archive.display()))
        .run()
        .success();
    for config in ["files.yaml", "metadata-fails.yaml"] {
        let path = fixture("run/cst").join(config);
        let cst = cst_verdicts(&run_cst(&[
            "test",
            "--driver",
            "tar",
            "--image",
            archive.to_str().unwrap(),
            "--config",
            path.to_str().unwrap(),
            "--output",
            "json",
        ]));
        let ran = f
            .pinfold()
            .args(["test", "busybox", "--platform", "linux/amd64", "--format", "json", "--config"])
            .arg(&path)
            .run();
        let ours = pinfold_verdicts(&ran);
        if config == "files.yaml" {
            assert_agree(&cst, &ours, config);
        } else {
            assert_eq!(cst, ours, "{config}");
            assert_eq!(ran.output.status.code(), Some(1));
        }
    }
    // The same config against the docker-archive itself, not a build-file name.
    let path = fixture("run/cst/files.yaml");
    let ran = f
        .pinfold()
        .args(["test", "--format", "json", "--config"])
        .arg(&path)
        .arg(format!("docker-archive:{}", archive.display()))
        .run()
        .code(1);
    assert_eq!(pinfold_verdicts(&ran).len(), 15);
}

#[test]
fn container_structure_test_docker_driver_and_pinfold_agree_on_commands_too() {
    let Some(f) = Fixture::new() else { return };
    if !require_tool("container-structure-test", &["version"]) || !require_tool("docker", &["info"]) {
        return;
    }
    let archive = f.path("busybox.tar");
    let tag = format!("pinfold-test/cst:{}", std::process::id());
    f.pinfold()
        .args(["build", "busybox", "--platform", "linux/amd64", "-o"])
        .arg(format!("docker-archive:{}:{tag}", archive.display()))
        .run()
        .success();
    tool("docker", &["load", "-q", "-i", archive.to_str().unwrap()]);
    let mut failures = Vec::new();
    for config in ["commands.yaml", "files.yaml", "ownership.yaml"] {
        let path = fixture("run/cst").join(config);
        let cst = cst_verdicts(&run_cst(&[
            "test",
            "--driver",
            "docker",
            "--image",
            &tag,
            "--config",
            path.to_str().unwrap(),
            "--output",
            "json",
        ]));
        for engine in ["auto", "docker"] {
            let ran = f
                .pinfold()
                .args([
                    "test",
                    "busybox",
                    "--platform",
                    "linux/amd64",
                    "--format",
                    "json",
                    "--engine",
                    engine,
                    "--config",
                ])
                .arg(&path)
                .run();
            let ours = pinfold_verdicts(&ran);
            if cst != ours {
                failures.push(format!("{config} with --engine {engine}:\n  container-structure-test: {cst:?}\n  pinfold:                  {ours:?}\n{}", ran.stdout()));
            }
            assert!(ours.values().any(|p| *p) && ours.values().any(|p| !*p), "{config}: {ours:?}");
        }
    }
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
