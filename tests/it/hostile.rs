//! Hostile inputs through the real binary (issue 13): each test builds one hostile
//! input, keeps a victim file or directory outside the root in a temporary directory,
//! and checks that pinfold exits 2 (125 for run) naming the entry, and that the
//! victim is unchanged. Lower-level variants are unit tests beside the code
//! (`pinfold_image::rooted`, `input::extract`, `pinfold_sandbox::rootfs`,
//! `pinfold_registry::pull`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;

/// A copy of `fixtures/build/static` (no network, no tool) with a cache of its own.
fn static_project() -> tempfile::TempDir {
    let tmp = tempdir();
    copy_dir(&fixture("build/static"), &tmp.path().join("src"));
    tmp
}

fn pinfold(dir: &Path) -> Test {
    Test::new().dir(dir).env("PINFOLD_CACHE_DIR", dir.join("../cache"))
}

#[test]
fn oci_output_over_a_directory_that_is_not_a_layout_is_refused_and_left_alone() {
    let tmp = static_project();
    let src = tmp.path().join("src");
    let victim = tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), b"mine").unwrap();
    let target = format!("oci:{}", victim.display());
    pinfold(&src).args(["build", "static", "-o", &target]).run().code(2).stderr_contains(&victim.display().to_string());
    assert_eq!(std::fs::read(victim.join("keep.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
    // An empty directory, and then the layout written there, are fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let target = format!("oci:{}", empty.display());
    pinfold(&src).args(["build", "static", "-o", &target]).run().success();
    pinfold(&src).args(["build", "static", "-o", &target]).run().success();
}

#[test]
fn an_archive_is_not_written_over_a_file_pinfold_did_not_write_unless_forced() {
    let tmp = static_project();
    let src = tmp.path().join("src");
    let victim = tmp.path().join("notes.tar");
    std::fs::write(&victim, b"not a tar of pinfold's").unwrap();
    for kind in ["oci-archive", "docker-archive"] {
        let target = format!("{kind}:{}", victim.display());
        pinfold(&src).args(["build", "static", "-o", &target]).run().code(2).stderr_contains("notes.tar");
        assert_eq!(std::fs::read(&victim).unwrap(), b"not a tar of pinfold's");
    }
    let target = format!("oci-archive:{}", victim.display());
    pinfold(&src).args(["build", "static", "-o", &target, "--force"]).run().success();
    // Now it is pinfold's own: written again without --force.
    pinfold(&src).args(["build", "static", "-o", &target]).run().success();
}

#[test]
fn a_base_layout_behind_a_symlink_out_of_the_root_is_refused() {
    let tmp = static_project();
    let src = tmp.path().join("src");
    // A real layout outside the root, reached through a symlink inside it.
    let outside = tmp.path().join("outside-layout");
    pinfold(&src).args(["build", "static", "-o", &format!("oci:{}", outside.display())]).run().success();
    std::os::unix::fs::symlink(&outside, src.join("layout-link")).unwrap();
    std::fs::write(
        src.join("escape.kdl"),
        "pinfold 1\nepoch 1704067200\nbase b {\n    layout \"layout-link\"\n}\nimage x {\n    from b\n}\n",
    )
    .unwrap();
    pinfold(&src)
        .args(["build", "-f", "escape.kdl", "x", "-o", "oci-archive:out.tar"])
        .run()
        .code(2)
        .stderr_contains("layout-link");
    assert!(!src.join("out.tar").exists());
}

/// Each command that reads a build file, on a hostile one: exit 2, quickly.
fn every_reader_refuses(dir: &Path, file: &str, needle: &str) {
    for args in [vec!["build", "-f", file], vec!["lock", "-f", file], vec!["graph", "-f", file], vec!["lint", file]] {
        let start = Instant::now();
        let ran = pinfold(dir).args(&args).run();
        let elapsed = start.elapsed();
        let ran = ran.code(2);
        if args[0] != "lint" {
            ran.stderr_contains(needle);
        }
        assert!(elapsed < Duration::from_secs(10), "{args:?} took {elapsed:?}");
    }
}

#[test]
fn a_deeply_nested_build_file_is_refused_without_overflowing_the_stack() {
    let tmp = tempdir();
    let text = format!("pinfold 1\nx {}{}\n", "{".repeat(3000), "}".repeat(3000));
    assert!(text.len() > 6000);
    std::fs::write(tmp.path().join("nest.kdl"), text).unwrap();
    every_reader_refuses(tmp.path(), "nest.kdl", "nested more than 64 deep");
}

#[test]
fn twenty_thousand_brackets_that_close_nothing_are_refused_without_overflowing_the_stack() {
    // The KDL crate's error recovery recurses once per stray closer (tests/it/fuzz.rs).
    let tmp = tempdir();
    let text = format!("pinfold 1\nimage x {{}}\n{}\n", "}".repeat(20_000));
    std::fs::write(tmp.path().join("stray.kdl"), text).unwrap();
    every_reader_refuses(tmp.path(), "stray.kdl", "brackets close nothing");
}

#[test]
fn a_diagnostic_past_column_65535_and_a_flood_of_quotes_are_reported_quickly() {
    let tmp = tempdir();
    let long = format!("pinfold 1\nimage x {{\n  label a=\"{}\" bogus=(\n}}\n", "x".repeat(70_000));
    std::fs::write(tmp.path().join("long.kdl"), long).unwrap();
    every_reader_refuses(tmp.path(), "long.kdl", "long.kdl:3:");
    std::fs::write(tmp.path().join("quotes.kdl"), "\"".repeat(40_000)).unwrap();
    every_reader_refuses(tmp.path(), "quotes.kdl", "not shown (the first 50 are above)");
    let big = "// padding\n".repeat(500_000);
    std::fs::write(tmp.path().join("big.kdl"), big).unwrap();
    every_reader_refuses(tmp.path(), "big.kdl", "a build file may have at most");
}

#[test]
fn under_bwrap_proc_sys_is_read_only_and_no_new_privileges_holds() {
    if !require_tool("bwrap", &["--version"]) {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    if busybox("amd64", &src.join("busybox-amd64")).is_none() {
        return;
    }
    std::fs::write(
        src.join("pinfold.kdl"),
        "pinfold 1\nepoch 1704067200\nimage tools {\n    from scratch\n    layer l {\n        \
         copy \"busybox-amd64\" to=\"/bin/busybox\" mode=0o755\n        symlink \"/bin/sh\" target=\"busybox\"\n        \
         symlink \"/bin/grep\" target=\"busybox\"\n    }\n    env PATH=\"/bin\"\n}\n",
    )
    .unwrap();
    let layout = format!("oci:{}", tmp.path().join("tools").display());
    pinfold(&src).args(["build", "tools", "-o", &layout]).run().success();
    let script = "echo 1 > /proc/sys/kernel/ns_last_pid && echo WROTE; grep NoNewPrivs /proc/self/status";
    let ran = pinfold(&src).args(["run", "--engine", "bwrap", &layout, "--", "sh", "-c", script]).run().success();
    assert!(!ran.stdout().contains("WROTE"), "{}", ran.stdout());
    assert!(ran.stdout().contains("NoNewPrivs:\t1"), "{}", ran.stdout());
}

#[test]
fn a_step_output_below_a_symlink_the_step_made_is_refused_and_the_host_file_stays() {
    if !require_tool("runc", &["--version"]) {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    if busybox("amd64", &src.join("busybox-amd64")).is_none() {
        return;
    }
    let victim = tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("secret"), b"host secret").unwrap();
    let v = victim.display();
    std::fs::write(
        src.join("pinfold.kdl"),
        format!(
            "pinfold 1\nepoch 1704067200\nimage tools {{\n    from scratch\n    layer l {{\n        \
             copy \"busybox-amd64\" to=\"/bin/busybox\" mode=0o755\n        dir \"/tmp\" mode=0o1777\n    }}\n}}\n\
             step grab {{\n    image tools\n    run \"/bin/busybox\" \"ln\" \"-s\" \"{v}\" \"link\"\n    \
             outputs \"link/secret\"\n}}\n\
             image app {{\n    from scratch\n    layer l {{ copy step=grab \"link/secret\" to=\"/secret\" }}\n}}\n"
        ),
    )
    .unwrap();
    let out = tmp.path().join("app.tar");
    pinfold(&src)
        .args(["build", "app", "-o", &format!("oci-archive:{}", out.display())])
        .run()
        .code(2)
        .stderr_contains("through the symlink `link`");
    assert_eq!(std::fs::read(victim.join("secret")).unwrap(), b"host secret");
    assert!(!out.exists());
}

// ---- hostile archives, bases and registries, through the binary ----

/// What a victim looked like: content (of a file, or of every file of a directory),
/// mode and modification time, so that a test can show it unchanged.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot(Vec<(String, Vec<u8>, u32, i64)>);

impl Snapshot {
    fn of(path: &Path) -> Snapshot {
        use std::os::unix::fs::MetadataExt;
        let mut seen = Vec::new();
        for e in walkdir::WalkDir::new(path).sort_by_file_name() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let content = if meta.is_file() { std::fs::read(e.path()).unwrap() } else { Vec::new() };
            seen.push((e.path().display().to_string(), content, meta.mode(), meta.mtime()));
        }
        Snapshot(seen)
    }
}

/// A victim directory outside every root: `DIR/victim/secret`, read-only, with an old
/// mtime; returns its path and the secret's content.
fn victim(dir: &Path) -> (std::path::PathBuf, &'static [u8]) {
    use std::os::unix::fs::PermissionsExt;
    let secret: &'static [u8] = b"host secret 7f3a9c that must never leave the host";
    let victim = dir.join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("secret"), secret).unwrap();
    std::fs::set_permissions(victim.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o700)).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for p in [victim.join("secret"), victim.clone()] {
        std::fs::File::open(&p).unwrap().set_modified(old).unwrap();
    }
    (victim, secret)
}

/// Whether `needle` is in any file below `dir` (symlinks not followed), gzip and
/// zstd files (the layers of a layout) searched decompressed.
fn found_below(dir: &Path, needle: &[u8]) -> Option<std::path::PathBuf> {
    for e in walkdir::WalkDir::new(dir) {
        let Ok(e) = e else { continue };
        if !e.file_type().is_file() {
            continue;
        }
        let raw = std::fs::read(e.path()).unwrap_or_default();
        let mut plain = Vec::new();
        match raw.get(..4) {
            Some([0x1f, 0x8b, ..]) => {
                let _ = flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut plain);
            }
            Some([0x28, 0xb5, 0x2f, 0xfd]) => {
                let _ = zstd::stream::read::Decoder::new(&raw[..]).and_then(|mut d| d.read_to_end(&mut plain));
            }
            _ => {}
        }
        if raw.windows(needle.len()).any(|w| w == needle) || plain.windows(needle.len()).any(|w| w == needle) {
            return Some(e.path().to_path_buf());
        }
    }
    None
}

/// A tar written entry by entry, hostile ones included (the tar crate's path setters
/// are used: none of these names climbs with `..`).
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(1_704_067_200);
        h.set_size(0);
        h
    }

    fn dir(mut self, name: &str, mode: u32) -> Tar {
        let mut h = Tar::header(tar::EntryType::Directory, mode);
        self.0.append_data(&mut h, name, &[][..]).unwrap();
        self
    }

    fn file(mut self, name: &str, data: &[u8]) -> Tar {
        let mut h = Tar::header(tar::EntryType::Regular, 0o755);
        h.set_size(data.len() as u64);
        self.0.append_data(&mut h, name, data).unwrap();
        self
    }

    fn symlink(mut self, name: &str, target: &Path) -> Tar {
        let mut h = Tar::header(tar::EntryType::Symlink, 0o777);
        self.0.append_link(&mut h, name, target).unwrap();
        self
    }

    fn hard_link(mut self, name: &str, target: &str) -> Tar {
        let mut h = Tar::header(tar::EntryType::Link, 0o644);
        self.0.append_link(&mut h, name, target).unwrap();
        self
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// An image of uncompressed layers, as blobs: (manifest digest, blobs by digest).
struct HandImage {
    manifest: String,
    blobs: std::collections::BTreeMap<String, Vec<u8>>,
    layers: Vec<String>,
}

impl HandImage {
    fn new(layers: Vec<Vec<u8>>, cmd: &[&str]) -> HandImage {
        let mut blobs = std::collections::BTreeMap::new();
        let digests: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": { "Cmd": cmd, "Env": ["PATH=/bin"] },
            "rootfs": { "type": "layers", "diff_ids": digests },
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(&config),
                "size": config.len(),
            },
            "layers": layers.iter().zip(&digests).map(|(l, d)| serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": d,
                "size": l.len(),
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        let digest = sha256(&manifest);
        blobs.insert(sha256(&config), config);
        for (l, d) in layers.into_iter().zip(&digests) {
            blobs.insert(d.clone(), l);
        }
        blobs.insert(digest.clone(), manifest);
        HandImage { manifest: digest, blobs, layers: digests }
    }

    /// Writes the image as an OCI layout at `dir`.
    fn write_layout(&self, dir: &Path) {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        for (digest, bytes) in &self.blobs {
            std::fs::write(dir.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap()), bytes).unwrap();
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": self.manifest,
                "size": self.blobs[&self.manifest].len(),
                "platform": { "architecture": "amd64", "os": "linux" },
            }],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

/// An image that extracts `archive` (a file beside the build file) below /opt.
fn archive_build_file(archive: &str) -> String {
    format!(
        "pinfold 1\nepoch 1704067200\nplatforms \"linux/amd64\"\narchive a path=\"{archive}\"\n\
         image t {{\n    from scratch\n    layer l {{\n        extract a to=\"/opt\"\n    }}\n}}\n"
    )
}

#[test]
fn an_archive_with_a_symlink_to_a_host_directory_then_a_link_or_file_through_it_touches_nothing() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let (victim, secret) = victim(tmp.path());
    let before = Snapshot::of(&victim);
    let cases = [
        // A symlink to the victim's directory, then a hard link of the same name to an
        // earlier file (tar would unlink and link; a naive unpacker writes through).
        ("link.tar", Tar::new().file("f", b"payload").symlink("x", &victim).hard_link("x", "f").bytes(), "entry `x`"),
        // The symlink, then a regular file written through it.
        ("through.tar", Tar::new().symlink("x", &victim).file("x/secret", b"payload").bytes(), "entry `x/secret`"),
        // The symlink, then a directory entry through it (which would chmod and retime).
        ("dir.tar", Tar::new().symlink("x", &victim).dir("x/", 0o777).dir("x/sub", 0o777).bytes(), "entry `x/`"),
        // A hard link to the symlink: reading it would copy the host's secret in.
        ("read.tar", Tar::new().symlink("s", &victim.join("secret")).hard_link("copy", "s").bytes(), "entry `copy`"),
    ];
    for (name, bytes, entry) in cases {
        std::fs::write(src.join(name), bytes).unwrap();
        std::fs::write(src.join("pinfold.kdl"), archive_build_file(name)).unwrap();
        let out = tmp.path().join(format!("out-{name}"));
        pinfold(&src)
            .args(["build", "t", "-o", &format!("oci:{}", out.display())])
            .run()
            .code(2)
            .stderr_contains(entry)
            .stderr_contains("the archive is refused");
        assert_eq!(Snapshot::of(&victim), before, "{name}: the victim changed");
        assert!(!out.exists(), "{name}: an output was written");
        // Nothing of the victim is in the cache either (extracted trees, temporary files).
        assert_eq!(found_below(&tmp.path().join("cache"), secret), None, "{name}: the secret reached the cache");
    }
}

/// A base whose first layer has `/data/` (mode 0755) and whose second replaces it by
/// a symlink to the victim's directory, then writes `data/planted` and `data/` again
/// with mode 0777 through it.
fn swapping_base(victim: &Path) -> HandImage {
    let first = Tar::new().dir("data/", 0o755).file("data/readme", b"base layer\n").bytes();
    let second =
        Tar::new().symlink("data", victim).file("data/planted", b"planted by the layer").dir("data/", 0o777).bytes();
    HandImage::new(vec![first, second], &["/bin/true"])
}

#[test]
fn a_base_whose_layer_swaps_a_directory_for_a_symlink_to_the_host_touches_nothing() {
    if !require_tool("runc", &["--version"]) && !require_tool("bwrap", &["--version"]) {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let (victim, secret) = victim(tmp.path());
    let before = Snapshot::of(&victim);
    let base = swapping_base(&victim);
    // Below the build file's directory, where a base's layout must be.
    let layout = src.join("base");
    base.write_layout(&layout);

    // `pinfold run` unpacks the layers: the entry through the symlink is refused (125),
    // named with its layer.
    let ran = pinfold(&src)
        .args(["run", "--allow-weaker-sandbox", &format!("oci:{}", layout.display())])
        .run()
        .code(125)
        .stderr_contains("`data/planted`")
        .stderr_contains("through the symlink `data`");
    assert!(ran.stderr().contains(base.layers[1].strip_prefix("sha256:").unwrap()), "{}", ran.stderr());
    assert_eq!(Snapshot::of(&victim), before, "run changed the victim");
    assert!(!victim.join("planted").exists());

    // `pinfold build` on that base copies its layers as they are, byte for byte, and
    // unpacks nothing, so it builds: the symlink stays a symlink inside the image and
    // the host is not touched. (Refusing would be wrong: such a layer is legal OCI; it
    // is only dangerous to an unpacker that follows it, and pinfold's does not.)
    std::fs::write(
        src.join("pinfold.kdl"),
        format!(
            "pinfold 1\nepoch 1704067200\nplatforms \"linux/amd64\"\nbase b {{\n    layout \"base\"\n    digest \"{}\"\n}}\n\
             image app {{\n    from b\n    layer extra {{\n        file \"/etc/extra\" \"on a hostile base\\n\"\n    }}\n}}\n",
            base.manifest
        ),
    )
    .unwrap();
    let out = tmp.path().join("app");
    pinfold(&src).args(["build", "app", "-o", &format!("oci:{}", out.display())]).run().success();
    assert_eq!(Snapshot::of(&victim), before, "build changed the victim");
    assert_eq!(found_below(&out, secret), None, "the victim's secret reached the output");
    // The hostile layer is in the output as it was (a symlink entry, not the host's files).
    let hostile = base.layers[1].strip_prefix("sha256:").unwrap();
    assert!(out.join("blobs/sha256").join(hostile).is_file(), "the base's layers are copied as they are");
    // And running the built image is refused like running the base.
    pinfold(&src)
        .args(["run", "--allow-weaker-sandbox", &format!("oci:{}", out.display())])
        .run()
        .code(125)
        .stderr_contains("`data/planted`");
    assert_eq!(Snapshot::of(&victim), before, "running the built image changed the victim");
}

// ---- a registry on 127.0.0.1 that misbehaves ----

/// How the test's registry serves the one blob it is hostile with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Serve {
    /// The blob, then zeros without end (no Content-Length, up to 1 GiB): more bytes
    /// than the descriptor's size.
    TooLong,
    /// The blob with its Content-Length, 4 KiB every 50 ms: an unpack that takes
    /// minutes.
    Trickle,
}

/// A registry of one repository, `hostile`, serving one [`HandImage`] over plain HTTP
/// on 127.0.0.1 (a std TcpListener, one thread per connection), stopped on drop.
struct HostileRegistry {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Bytes of the hostile blob sent so far.
    sent: Arc<AtomicU64>,
}

impl HostileRegistry {
    fn start(image: &HandImage, hostile: &str, serve: Serve) -> HostileRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let blobs = Arc::new(image.blobs.clone());
        let (s, counted, hostile) = (stop.clone(), sent.clone(), hostile.to_string());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (blobs, counted, hostile, s) = (blobs.clone(), counted.clone(), hostile.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = serve_one(conn, &blobs, &hostile, serve, &counted, &s);
                });
            }
        });
        HostileRegistry { port, stop, sent }
    }

    fn image(&self, digest: &str) -> String {
        format!("127.0.0.1:{}/hostile@{digest}", self.port)
    }
}

impl Drop for HostileRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Answers one request on `conn` and closes it.
fn serve_one(
    mut conn: TcpStream,
    blobs: &std::collections::BTreeMap<String, Vec<u8>>,
    hostile: &str,
    serve: Serve,
    sent: &AtomicU64,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        if conn.read(&mut byte)? == 0 {
            return Ok(());
        }
        // A TLS hello (the client tries HTTPS first): this registry speaks HTTP only.
        if head.is_empty() && byte[0] == 0x16 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let found = path
        .strip_prefix("/v2/hostile/manifests/")
        .or_else(|| path.strip_prefix("/v2/hostile/blobs/"))
        .and_then(|d| blobs.get(d).map(|b| (d, b)));
    let (status, content_type, body): (&str, &str, &[u8]) = match found {
        _ if path == "/v2/" => ("200 OK", "application/json", b"{}"),
        Some((d, bytes)) if path.contains("/manifests/") => {
            let _ = d;
            ("200 OK", "application/vnd.oci.image.manifest.v1+json", bytes)
        }
        Some((d, bytes)) if d == hostile => {
            let body = if method == "HEAD" { &[][..] } else { &bytes[..] };
            return match serve {
                Serve::TooLong => {
                    write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
                    )?;
                    conn.write_all(body)?;
                    sent.fetch_add(body.len() as u64, Ordering::SeqCst);
                    let zeros = vec![0u8; 1 << 20];
                    for _ in 0..1024 {
                        if method == "HEAD" || stop.load(Ordering::SeqCst) {
                            break;
                        }
                        conn.write_all(&zeros)?;
                        sent.fetch_add(zeros.len() as u64, Ordering::SeqCst);
                    }
                    Ok(())
                }
                Serve::Trickle => {
                    write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    )?;
                    for chunk in body.chunks(4096) {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        conn.write_all(chunk)?;
                        sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Ok(())
                }
            };
        }
        Some((_, bytes)) => ("200 OK", "application/octet-stream", bytes),
        None => ("404 Not Found", "application/json", br#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#),
    };
    let digest = found.map(|(d, _)| format!("Docker-Content-Digest: {d}\r\n")).unwrap_or_default();
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{digest}Connection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        conn.write_all(body)?;
    }
    Ok(())
}

#[test]
fn a_registry_that_streams_more_than_the_descriptor_says_is_cut_off_and_nothing_is_stored() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let image = HandImage::new(vec![Tar::new().file("etc/hello", b"hello\n").bytes()], &["/bin/true"]);
    let hostile = image.layers[0].clone();
    let registry = HostileRegistry::start(&image, &hostile, Serve::TooLong);
    std::fs::write(
        src.join("pinfold.kdl"),
        format!(
            "pinfold 1\nepoch 1704067200\nplatforms \"linux/amd64\"\nbase b {{\n    image \"{}\"\n}}\n\
             image app {{\n    from b\n    layer extra {{\n        file \"/etc/extra\" \"x\\n\"\n    }}\n}}\n",
            registry.image(&image.manifest)
        ),
    )
    .unwrap();
    let out = tmp.path().join("app");
    let started = Instant::now();
    pinfold(&src)
        .env("DOCKER_CONFIG", tmp.path().join("no-docker-config"))
        .args(["build", "app", "-o", &format!("oci:{}", out.display())])
        .run()
        .code(2)
        .stderr_contains(&hostile)
        .stderr_contains("longer than its descriptor's size");
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    // Cut off at the size: what the server got out before the connection closed is
    // socket buffers, not the gigabyte it meant to send.
    let sent = registry.sent.load(Ordering::SeqCst);
    assert!(sent < 64 << 20, "the registry sent {sent} bytes before pinfold stopped reading");
    let cache = tmp.path().join("cache");
    let hex = hostile.strip_prefix("sha256:").unwrap();
    assert!(!cache.join("blobs/sha256").join(hex).exists(), "the blob is in the store");
    let left: Vec<_> =
        std::fs::read_dir(cache.join("tmp")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "temporary files are left: {left:?}");
    let big: Vec<_> = walkdir::WalkDir::new(&cache)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.metadata().map(|m| m.len() > 1 << 20).unwrap_or(false))
        .map(|e| e.path().to_path_buf())
        .collect();
    assert!(big.is_empty(), "the cache holds big files: {big:?}");
    assert!(!out.exists(), "an output was written");
}

/// A layer whose one path is 1,500 directories deep, with a file at the bottom.
fn deep_tar() -> Vec<u8> {
    let mut tar = Tar::new();
    let mut name = String::new();
    for _ in 0..1500 {
        name.push_str("d/");
        tar = tar.dir(&name, 0o755);
    }
    tar.file(&format!("{name}bottom"), b"deep\n").bytes()
}

#[test]
fn a_path_1500_directories_deep_unpacks_in_bounded_time_and_sigterm_stops_it() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let deep = deep_tar();

    // As an archive of the build file: built in seconds (once linear, it was a minute).
    std::fs::write(src.join("deep.tar"), &deep).unwrap();
    std::fs::write(src.join("pinfold.kdl"), archive_build_file("deep.tar")).unwrap();
    let started = Instant::now();
    let out = tmp.path().join("deep-image");
    pinfold(&src).args(["build", "t", "-o", &format!("oci:{}", out.display())]).run().success();
    let took = started.elapsed();
    eprintln!("build with a 1,500-deep archive: {took:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");

    // As a layer of an image that `pinfold run` unpacks: bounded too. The image has no
    // program, so after the unpack the run ends with 127 (not found).
    let image = HandImage::new(vec![deep], &["/bin/true"]);
    image.write_layout(&tmp.path().join("layout"));
    let started = Instant::now();
    pinfold(&src)
        .args(["run", "--allow-weaker-sandbox", &format!("oci:{}", tmp.path().join("layout").display())])
        .run()
        .code(127);
    let took = started.elapsed();
    eprintln!("run with a 1,500-deep layer: {took:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");

    // The same layer from a registry that trickles it: pinfold is unpacking, minutes
    // from done, when SIGTERM comes, and it stops at once (SIGTERM is only caught to
    // be forwarded once a program runs).
    let registry = HostileRegistry::start(&image, &image.layers[0], Serve::Trickle);
    let child = pinfold(&src)
        .env("PINFOLD_CACHE_DIR", tmp.path().join("cold-cache"))
        .env("DOCKER_CONFIG", tmp.path().join("no-docker-config"))
        .args(["run", "--allow-weaker-sandbox", &format!("docker://{}", registry.image(&image.manifest))])
        .spawn();
    let waiting = Instant::now();
    while registry.sent.load(Ordering::SeqCst) < 64 * 1024 {
        assert!(waiting.elapsed() < Duration::from_secs(30), "pinfold never read the layer");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: a plain kill(2) of the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let signalled = Instant::now();
    let ran = wait_at_most(child, Duration::from_secs(10));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(ran.output.status.signal(), Some(libc::SIGTERM), "{:?}\n{}", ran.output.status, ran.stderr());
    assert!(signalled.elapsed() < Duration::from_secs(5), "SIGTERM took {:?}", signalled.elapsed());
    assert!(
        !tmp.path().join("cold-cache/rootfs").exists()
            || std::fs::read_dir(tmp.path().join("cold-cache/rootfs")).unwrap().next().is_none(),
        "a partial rootfs was kept"
    );
}

/// Waits for a spawned pinfold, killing it (and failing) past `limit`.
fn wait_at_most(mut child: std::process::Child, limit: Duration) -> Ran {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("pinfold did not stop within {limit:?}:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ran::from_output(child.wait_with_output().unwrap(), "pinfold run (signalled)")
}

// ---- HTTPS with a CA of the test's own ----

/// Python's `http.server` over TLS on 127.0.0.1 with `cert`/`key`, serving `dir`,
/// killed on drop.
struct HttpsServer {
    child: std::process::Child,
    port: u16,
}

impl HttpsServer {
    fn start(dir: &Path, cert: &Path, key: &Path) -> HttpsServer {
        const SERVER: &str = "import http.server, ssl, sys, os\n\
            os.chdir(sys.argv[1])\n\
            httpd = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n\
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
            ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n\
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)\n\
            print(httpd.server_address[1], flush=True)\n\
            httpd.serve_forever()\n";
        let mut child = std::process::Command::new("python3")
            .args(["-u", "-c", SERVER])
            .args([dir, cert, key])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the HTTPS server printed no port: {line:?}"));
        HttpsServer { child, port }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_trusts_ssl_cert_file_and_an_unknown_ca_is_explained_once() {
    if !require_tool("openssl", &["version"]) || !require_tool("python3", &["--version"]) {
        return;
    }
    let tmp = tempdir();
    let at = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    // A CA of this test, and a certificate it signs for 127.0.0.1.
    tool(
        "openssl",
        &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pinfold test CA"]
            .into_iter()
            .chain(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .chain(["-keyout", &at("ca.key"), "-out", &at("ca.pem")])
            .collect::<Vec<_>>(),
    );
    tool(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &at("srv.key"),
            "-out",
            &at("srv.csr"),
        ],
    );
    std::fs::write(
        tmp.path().join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    tool(
        "openssl",
        &["x509", "-req", "-days", "2", "-in", &at("srv.csr"), "-CA", &at("ca.pem"), "-CAkey", &at("ca.key")]
            .into_iter()
            .chain(["-CAcreateserial", "-extfile", &at("ext"), "-out", &at("srv.pem")])
            .collect::<Vec<_>>(),
    );
    let served = tmp.path().join("served");
    std::fs::create_dir(&served).unwrap();
    let payload = b"served over https\n";
    std::fs::write(served.join("payload.txt"), payload).unwrap();
    let server = HttpsServer::start(&served, &tmp.path().join("srv.pem"), &tmp.path().join("srv.key"));
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(
        src.join("pinfold.kdl"),
        format!(
            "pinfold 1\nepoch 1704067200\ndownload p url=\"https://127.0.0.1:{}/payload.txt\" sha256=\"{}\"\n\
             image t {{\n    from scratch\n    layer l {{\n        download p to=\"/payload.txt\"\n    }}\n}}\n",
            server.port,
            sha256(payload).strip_prefix("sha256:").unwrap()
        ),
    )
    .unwrap();
    // Without the CA: exit 2, the certificate named as the problem, the hint once.
    let failed = pinfold(&src).env("SSL_CERT_FILE", "").args(["build", "t"]).run().code(2);
    let err = failed.stderr_flat();
    assert!(err.contains("certificate"), "{err}");
    assert_eq!(err.matches("SSL_CERT_FILE").count(), 1, "the hint is said once:\n{err}");
    // With SSL_CERT_FILE naming the test's CA: built.
    pinfold(&src).env("SSL_CERT_FILE", at("ca.pem")).args(["build", "t"]).run().success();
    // A SSL_CERT_FILE that holds no certificate is an error naming it.
    std::fs::write(tmp.path().join("empty.pem"), "").unwrap();
    let fresh = tempdir();
    pinfold(&src)
        .env("PINFOLD_CACHE_DIR", fresh.path())
        .env("SSL_CERT_FILE", at("empty.pem"))
        .args(["build", "t"])
        .run()
        .code(2)
        .stderr_contains("empty.pem");
}
