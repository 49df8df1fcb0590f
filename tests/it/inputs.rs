//! Inputs from outside: downloads served by a real HTTP server on 127.0.0.1 (started
//! and stopped by the test), archives with hostile entries, and the lock round trip.

use crate::harness::*;
use sha2::{Digest as _, Sha256};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Python's http.server on an ephemeral port of 127.0.0.1, serving `dir`; stopped on drop.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start(dir: &Path) -> HttpServer {
        let script = "import http.server,socketserver,sys,functools\n\
h=functools.partial(http.server.SimpleHTTPRequestHandler,directory=sys.argv[1])\n\
s=socketserver.TCPServer(('127.0.0.1',0),h)\n\
print(s.server_address[1],flush=True)\n\
s.serve_forever()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        HttpServer { child, port: line.trim().parse().expect("the server prints its port") }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn store_holds(cache: &Path, hex: &str) -> bool {
    cache.join("blobs/sha256").join(hex).exists()
}

#[test]
fn downloads_are_checked_cached_and_work_offline() {
    let tmp = tempdir();
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let payload = b"#!/bin/sh\necho downloaded\n".to_vec();
    std::fs::write(served.join("tool.sh"), &payload).unwrap();
    let server = HttpServer::start(&served);
    let url = format!("http://127.0.0.1:{}/tool.sh", server.port);
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let cache = tmp.path().join("cache");
    let write_build = |sha256: &str| {
        std::fs::write(
            src.join("pinfold.kdl"),
            format!("pinfold 1\nepoch 0\ndownload tool url=\"{url}\" sha256=\"{sha256}\"\nimage t {{\n    from scratch\n    layer l {{\n        download tool to=\"/bin/tool\" mode=0o755\n    }}\n}}\n"),
        )
        .unwrap()
    };
    let build = |extra: &[&str]| Test::new().dir(&src).args(["build", "--cache-dir"]).arg(&cache).args(extra).run();

    // A wrong hash: exit 2, both hashes named, nothing in the store.
    let wrong = "ab".repeat(32);
    write_build(&wrong);
    let ran = build(&[]).code(2);
    assert!(
        ran.stderr().contains(&format!("sha256:{wrong}"))
            && ran.stderr().contains(&format!("sha256:{}", sha(&payload))),
        "{}",
        ran.stderr()
    );
    assert!(!store_holds(&cache, &sha(&payload)));
    assert_eq!(std::fs::read_dir(cache.join("blobs/sha256")).unwrap().count(), 0, "a mismatching download was stored");

    // The right hash: built, stored once.
    write_build(&sha(&payload));
    let first = build(&[]).success().built();
    assert!(store_holds(&cache, &sha(&payload)));

    // Offline with the server stopped: the store serves it, same digest.
    drop(server);
    assert_eq!(build(&["--offline"]).success().built(), first);

    // Offline with an empty store fails clearly; a mirror directory serves it.
    let other_cache = tmp.path().join("cache2");
    Test::new()
        .dir(&src)
        .args(["build", "--offline", "--cache-dir"])
        .arg(&other_cache)
        .run()
        .code(2)
        .stderr_contains("--offline forbids fetching it");
    let mirror = tmp.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(mirror.join(sha(&payload)), &payload).unwrap();
    let mirrored = Test::new()
        .dir(&src)
        .args(["build", "--offline", "--mirror"])
        .arg(&mirror)
        .arg("--cache-dir")
        .arg(&other_cache)
        .run()
        .success()
        .built();
    assert_eq!(mirrored, first);

    // A mirror entry that is a symlink (here to the good file, elsewhere to a host
    // file or a FIFO) is refused by name, not followed.
    let linked = tmp.path().join("linked-mirror");
    std::fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink(mirror.join(sha(&payload)), linked.join(sha(&payload))).unwrap();
    Test::new()
        .dir(&src)
        .args(["build", "--offline", "--mirror"])
        .arg(&linked)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache3"))
        .run()
        .code(2)
        .stderr_contains("is a symlink");
}

/// Writes a tar with Python's tarfile, which (unlike the tar crate) writes hostile
/// member names as asked.
fn python_tar(path: &Path, members: &str) {
    let script = format!(
        "import tarfile,io,sys\nt=tarfile.open(sys.argv[1],'w:gz')\n\
def f(n,d=b'x'):\n  i=tarfile.TarInfo(n); i.size=len(d); t.addfile(i,io.BytesIO(d))\n\
def l(n,target):\n  i=tarfile.TarInfo(n); i.type=tarfile.SYMTYPE; i.linkname=target; t.addfile(i)\n\
def d(n):\n  i=tarfile.TarInfo(n); i.type=tarfile.DIRTYPE; i.mode=0o755; t.addfile(i)\n\
def x(n,data):\n  i=tarfile.TarInfo(n); i.size=len(data); i.mode=0o755; t.addfile(i,io.BytesIO(data))\n\
{members}\nt.close()\n"
    );
    let status = Command::new("python3").args(["-c", &script]).arg(path).status().unwrap();
    assert!(status.success());
}

fn archive_build(archive: &str) -> String {
    format!("pinfold 1\nepoch 0\narchive a path=\"{archive}\"\nimage t {{\n    from scratch\n    layer l {{\n        extract a to=\"/opt\"\n    }}\n}}\n")
}

#[test]
fn archives_are_unpacked_normalized_and_hostile_entries_refused() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let cache = tmp.path().join("cache");
    python_tar(
        &src.join("good.tar.gz"),
        "d('pkg')\nx('pkg/run', b'#!/bin/sh\\n')\nf('pkg/data.txt', b'data')\nl('pkg/link', 'data.txt')",
    );
    std::fs::write(src.join("pinfold.kdl"), archive_build("good.tar.gz")).unwrap();
    let ran = Test::new().dir(&src).args(["build", "--cache-dir"]).arg(&cache).run().success();
    assert!(ran.stderr().contains("archive `a` is not pinned"), "{}", ran.stderr());
    let layout = src.join("pinfold-out/t");
    let doc: serde_json::Value = serde_json::from_str(
        &Test::new().args(["inspect", "--json"]).arg(format!("oci:{}", layout.display())).run().success().stdout(),
    )
    .unwrap();
    let layer =
        doc["manifests"][0]["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let listing = tool("tar", &["-tvzf", layout.join("blobs/sha256").join(layer).to_str().unwrap()]);
    assert!(listing.contains("-rwxr-xr-x 0/0") && listing.contains("opt/pkg/run"), "{listing}");
    assert!(listing.contains("opt/pkg/link -> data.txt"), "{listing}");
    assert!(listing.contains("1970-01-01 00:00"), "mtimes come from the epoch: {listing}");

    for (name, members, message) in [
        ("dotdot.tar.gz", "f('../escape')", "climbs out of the archive"),
        ("absolute.tar.gz", "f('/etc/passwd')", "absolute path"),
        ("symlink.tar.gz", "l('evil', '/etc')\nf('evil/passwd')", "through the symlink `evil`"),
    ] {
        python_tar(&src.join(name), members);
        std::fs::write(src.join("pinfold.kdl"), archive_build(name)).unwrap();
        Test::new().dir(&src).args(["build", "--cache-dir"]).arg(&cache).run().code(2).stderr_contains(message);
    }
    assert!(!Path::new("/etc/passwd.pinfold-test").exists());
}

#[test]
fn lock_records_a_local_archives_sha256_and_lint_fix_writes_it_into_the_build_file() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let cache = tmp.path().join("cache");
    python_tar(&src.join("data.tar.gz"), "f('data.txt', b'data')");
    let expected = sha(&std::fs::read(src.join("data.tar.gz")).unwrap());
    std::fs::write(src.join("pinfold.kdl"), archive_build("data.tar.gz")).unwrap();
    // Unpinned, --locked refuses it; `pinfold lock` pins it by the file's own sha256.
    Test::new().dir(&src).args(["build", "--locked", "--cache-dir"]).arg(&cache).run().code(2);
    let out = Test::new().dir(&src).args(["lock", "--cache-dir"]).arg(&cache).run().success().stdout();
    assert!(out.contains(&format!("+ archive a sha256:{expected} data.tar.gz")), "{out}");
    let built = Test::new().dir(&src).args(["build", "--locked", "--cache-dir"]).arg(&cache).run().success().stdout();
    // `lint --fix` writes the same sha256 into the build file itself.
    Test::new().dir(&src).args(["lint", "--fix", "pinfold.kdl"]).run();
    let text = std::fs::read_to_string(src.join("pinfold.kdl")).unwrap();
    assert!(text.contains(&format!("archive a path=\"data.tar.gz\" sha256=\"{expected}\"")), "{text}");
    let lint = Test::new().dir(&src).args(["lint", "pinfold.kdl"]).run();
    assert!(!lint.stdout().contains("PF106") && !lint.stderr().contains("PF106"), "{}", lint.stderr());
    // The pin is the same either way, so the image is too.
    let again = Test::new().dir(&src).args(["build", "--cache-dir"]).arg(&cache).run().success().stdout();
    assert_eq!(built, again);
}

#[test]
fn cache_gc_collects_stored_inputs_and_unpacked_trees_by_age_and_the_next_build_makes_them_again() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let cache = tmp.path().join("cache");
    python_tar(&src.join("data.tar.gz"), "f('data.txt', b'data')");
    std::fs::write(src.join("pinfold.kdl"), archive_build("data.tar.gz")).unwrap();
    let build = || Test::new().dir(&src).args(["build", "--cache-dir"]).arg(&cache).run().success();
    let digest = build().digest();
    let gc = |args: &[&str]| Test::new().args(["cache", "gc", "--cache-dir"]).arg(&cache).args(args).run().success();
    // Used just now: an age of a day keeps everything.
    gc(&["--max-age", "1d"]).stderr_contains("0 stored input(s) and 0 unpacked tree(s)");
    // Make every entry a year old: the stored archive, its unpacked tree and the layer go.
    let year_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(365 * 86_400);
    for entry in walkdir::WalkDir::new(&cache).min_depth(2).max_depth(3) {
        let entry = entry.unwrap();
        std::fs::File::open(entry.path()).unwrap().set_modified(year_ago).unwrap();
    }
    gc(&["--max-age", "30d"]).stderr_contains("and 1 layer(s), 1 stored input(s) and 1 unpacked tree(s)");
    assert_eq!(std::fs::read_dir(cache.join("extracted")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(cache.join("blobs/sha256")).unwrap().count(), 0);
    // The next build reads the archive again and gives the same image.
    assert_eq!(build().digest(), digest);
    Test::new().args(["cache", "gc", "--max-age", "soon", "--cache-dir"]).arg(&cache).run().code(2);
}

#[test]
fn lock_round_trip_and_crlf_build_files() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("vendor")).unwrap();
    // A base given only by layout and ref, and a file:// download without sha256.
    Test::new()
        .dir(tmp.path())
        .args(["build", "plain", "--no-cache", "-o"])
        .arg(format!("oci:{}", src.join("vendor/plain").display()))
        .arg("-f")
        .arg(fixture("build/static/pinfold.kdl"))
        .run()
        .success();
    std::fs::write(src.join("vendor/tool"), b"tool\n").unwrap();
    let text = format!(
        "pinfold 1\nepoch 0\nbase plain {{\n    layout \"vendor/plain\"\n    ref \"plain\"\n}}\ndownload tool url=\"file://{}\"\nimage t {{\n    from plain\n    platforms \"linux/arm64\"\n    layer l {{\n        download tool to=\"/bin/\"\n    }}\n}}\n",
        src.join("vendor/tool").display()
    );
    std::fs::write(src.join("pinfold.kdl"), &text).unwrap();
    let cache = tmp.path().join("cache");
    let build = |extra: &[&str]| Test::new().dir(&src).args(["build", "--cache-dir"]).arg(&cache).args(extra).run();

    build(&["--locked"]).code(2).stderr_contains("no pinfold.lock");
    let locked = Test::new().dir(&src).args(["lock", "--cache-dir"]).arg(&cache).run().success();
    assert!(locked.stdout().contains("+ base plain sha256:"), "{}", locked.stdout());
    assert!(locked.stdout().contains("+ download tool * sha256:"), "{}", locked.stdout());
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("pinfold.lock")).unwrap()).unwrap();
    assert_eq!(lock["version"], 1);
    assert_eq!(lock["downloads"]["tool"]["*"]["sha256"], sha(b"tool\n"));
    let digest = build(&["--locked"]).success().built();
    assert!(!build(&[]).success().stderr().contains("not pinned"), "the lock pins what the file leaves open");
    Test::new().dir(&src).args(["lock", "--cache-dir"]).arg(&cache).run().success().stdout().contains("up to date");

    // CRLF line endings and a comment do not make the lock stale.
    std::fs::write(src.join("pinfold.kdl"), format!("// a comment\r\n{}", text.replace('\n', "\r\n"))).unwrap();
    assert_eq!(build(&["--locked"]).success().built(), digest);

    // An edit does; and a changed download under the lock's pin is caught.
    std::fs::write(src.join("pinfold.kdl"), text.replace("to=\"/bin/\"", "to=\"/usr/bin/\"")).unwrap();
    build(&["--locked"]).code(2).stderr_contains("pinfold.lock is stale");
    std::fs::write(src.join("pinfold.kdl"), &text).unwrap();
    std::fs::write(src.join("vendor/tool"), b"changed\n").unwrap();
    let ran = build(&["--locked", "--no-cache"]).code(2);
    assert!(
        ran.stderr().contains(&format!("sha256:{}", sha(b"tool\n")))
            && ran.stderr().contains(&format!("sha256:{}", sha(b"changed\n"))),
        "{}",
        ran.stderr()
    );
}

#[test]
fn a_download_into_a_directory_is_named_after_its_url() {
    let tmp = tempdir();
    let served = tmp.path().join("served/files");
    std::fs::create_dir_all(&served).unwrap();
    let payload = b"#!/bin/sh\necho named\n".to_vec();
    std::fs::write(served.join("tool-1.2.sh"), &payload).unwrap();
    let server = HttpServer::start(&tmp.path().join("served"));
    let url = format!("http://127.0.0.1:{}/files/tool-1.2.sh?mirror=1", server.port);
    std::fs::write(
        tmp.path().join("pinfold.kdl"),
        format!(
            "pinfold 1\nepoch 0\ndownload tool url=\"{url}\" sha256=\"{}\"\nimage t {{\n    from scratch\n    layer l {{\n        download tool to=\"/opt/\" mode=0o755\n    }}\n}}\n",
            sha(&payload)
        ),
    )
    .unwrap();
    Test::in_dir(tmp.path()).args(["build", "-o", "oci-archive:t.tar"]).run().success();
    let listing = tool("tar", &["-xOf", &tmp.path().join("t.tar").display().to_string(), "index.json"]);
    assert!(listing.contains("manifests"), "{listing}");
    let unpacked = tmp.path().join("unpacked");
    let layout = tmp.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    tool("tar", &["-xf", &tmp.path().join("t.tar").display().to_string(), "-C", &layout.display().to_string()]);
    // Every layer blob, unpacked: the file is /opt/tool-1.2.sh.
    for blob in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let blob = blob.unwrap().path();
        std::fs::create_dir_all(&unpacked).unwrap();
        let _ = Command::new("tar").arg("-xzf").arg(&blob).arg("-C").arg(&unpacked).stderr(Stdio::null()).status();
    }
    assert_eq!(std::fs::read(unpacked.join("opt/tool-1.2.sh")).unwrap(), payload);
}
