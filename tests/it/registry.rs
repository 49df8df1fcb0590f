//! The `docker://` transport against a real registry: Debian's `docker-registry` (the
//! distribution registry), started by these tests on 127.0.0.1 on a free port with its
//! config and storage in a temporary directory, and killed when the test ends.
//!
//! What is shown: a two-platform image pushed and pulled back with the same digests,
//! as skopeo sees them too; bases, `pinfold lock` and `pinfold verify` through the
//! registry; basic auth from a docker config file (and its clear failure without);
//! a registry killed in the middle of a chunked upload (the tag never moves to a
//! partial image, a push resumes or completes next time); a registry serving a blob
//! that does not match its digest (the pull fails naming it, nothing is cached); and
//! the shared cache, with which a second machine builds nothing and gets the same
//! bytes.
//!
//! Outside CI a missing `docker-registry`, `skopeo` or `htpasswd` skips the test that
//! needs it; under CI (`CI=true`) it fails it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;

/// pinfold in `dir`, with a cache of its own there and no credentials of the user's.
fn pinfold(dir: &Path) -> Test {
    Test::in_dir(dir).env("DOCKER_CONFIG", dir.join(".no-docker-config"))
}

/// A project holding a copy of the golden `static` fixture.
fn static_project() -> tempfile::TempDir {
    let dir = tempdir();
    copy_tree(&fixture("build/static"), dir.path(), false);
    dir
}

/// Writes `fixtures/registry/NAME` into `dir` as `pinfold.kdl`, placeholders filled.
fn write_build_file(dir: &Path, name: &str, fills: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(fixture(&format!("registry/{name}"))).unwrap();
    for (k, v) in fills {
        text = text.replace(k, v);
    }
    let path = dir.join("pinfold.kdl");
    std::fs::write(&path, text).unwrap();
    path
}

// ---- the registry ----

/// A `docker-registry` of this test: config and storage in a temporary directory,
/// listening on 127.0.0.1 only, killed on drop.
struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Registry {
    /// Starts a registry (with htpasswd auth for `user`, when given); `None` outside CI
    /// when the registry is not installed.
    fn start(user: Option<(&str, &str)>) -> Option<Registry> {
        if !require_tool("docker-registry", &["--version"]) {
            return None;
        }
        let dir = tempdir();
        let auth = match user {
            Some((name, password)) => {
                if !require_tool("htpasswd", &["-nbB", "probe", "probe"]) {
                    return None;
                }
                let line = tool("htpasswd", &["-nbB", name, password]);
                std::fs::write(dir.path().join("htpasswd"), line).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: pinfold-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                )
            }
            None => String::new(),
        };
        let mut registry = Registry { dir, port: 0, child: None };
        for _ in 0..5 {
            registry.port = free_port();
            // A fixed secret keeps upload sessions valid across a restart, as a real
            // deployment's would be.
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{}\n  secret: pinfold-test-secret\n{auth}",
                registry.data().display(),
                registry.port
            );
            std::fs::write(registry.dir.path().join("config.yml"), config).unwrap();
            if registry.launch() {
                return Some(registry);
            }
        }
        panic!("docker-registry did not start; see {}", registry.dir.path().join("registry.log").display());
    }

    /// Starts the process on the configured port; true when it answers.
    fn launch(&mut self) -> bool {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false; // exited: the port was taken
            }
            if http_status(&format!("http://{}/v2/", self.host()), "").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        false
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the registry logged (its access log included).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The file in which the registry stores blob `digest`.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.data().join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    /// The digest a tag points to, or `None` when the registry does not know it.
    fn tag_digest(&self, repository: &str, tag: &str) -> Option<String> {
        let url = format!("http://{}/v2/{repository}/manifests/{tag}", self.host());
        let accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json";
        let response = ureq::get(&url).header("accept", accept).call().ok()?;
        let mut body = response.into_body();
        let bytes = body.read_to_vec().ok()?;
        Some(format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The status of a GET, or `None` when nothing answers.
fn http_status(url: &str, accept: &str) -> Option<u16> {
    let mut request = ureq::get(url);
    if !accept.is_empty() {
        request = request.header("accept", accept);
    }
    match request.config().timeout_global(Some(Duration::from_secs(2))).build().call() {
        Ok(r) => Some(r.status().as_u16()),
        Err(ureq::Error::StatusCode(s)) => Some(s),
        Err(_) => None,
    }
}

// ---- a proxy that can hold a push in the middle ----

/// What the proxy does to the traffic.
#[derive(Clone, Copy)]
enum Fault {
    /// Once more than N bytes went from pinfold to the registry, hold the data back
    /// until released: the test then knows the push is in the middle of an upload, and
    /// can kill the registry at exactly that point.
    PauseUpload(u64),
    /// Once N bytes came from the registry, close that connection (once).
    CutDownload(u64),
}

/// A TCP proxy on 127.0.0.1 in front of the registry, with one [`Fault`].
struct Proxy {
    port: u16,
    paused: Arc<AtomicBool>,
    released: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let forwarded = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let released = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, r, s) = (paused.clone(), released.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (forwarded, p, r) = (forwarded.clone(), p.clone(), r.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match c_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let total = forwarded.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                        let pause = matches!(fault, Fault::PauseUpload(after) if total > after);
                        if pause && !r.load(Ordering::SeqCst) {
                            p.store(true, Ordering::SeqCst);
                            let held = Instant::now();
                            while !r.load(Ordering::SeqCst) && held.elapsed() < Duration::from_secs(120) {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                        }
                        if s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_write.shutdown(std::net::Shutdown::Both);
                    let _ = c_read.shutdown(std::net::Shutdown::Both);
                });
                let (mut s_read, mut c_write) = (server, client);
                let (received, cut) = (received.clone(), cut.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match s_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let before = received.fetch_add(n as u64, Ordering::SeqCst);
                        if let Fault::CutDownload(after) = fault {
                            if before + n as u64 > after && !cut.swap(true, Ordering::SeqCst) {
                                let keep = after.saturating_sub(before) as usize;
                                let _ = c_write.write_all(&buf[..keep.min(n)]);
                                break;
                            }
                        }
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                    let _ = s_read.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Proxy { port, paused, released, stop }
    }

    fn wait_paused(&self, limit: Duration) -> bool {
        let start = Instant::now();
        while !self.paused.load(Ordering::SeqCst) {
            if start.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.release();
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Waits for a spawned pinfold, at most `limit`; kills it past that.
fn wait_child(mut child: Child, limit: Duration) -> Ran {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let output = child.wait_with_output().unwrap();
            return Ran::from_output(output, "pinfold build big (through the proxy)");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("pinfold did not finish within {limit:?}:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 24 MiB of pseudo-random bytes (xorshift): incompressible, three upload chunks.
fn write_big_file(path: &Path) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(24 << 20);
    while bytes.len() < 24 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

// ---- the tests ----

#[test]
fn a_pushed_image_pulls_back_with_the_same_digests() {
    let Some(registry) = Registry::start(None) else { return };
    let host = registry.host();
    let project = static_project();
    let dir = project.path();

    let layout = pinfold(dir).args(["build", "static", "-o", "oci:out/static"]).run().success();
    let digest = layout.digest();
    let pushed = pinfold(dir).args(["build", "static", "-o", &format!("docker://{host}/pf/static:v1")]).run().success();
    assert_eq!(pushed.digest(), digest, "the digest printed for a push is the image's");
    assert_eq!(registry.tag_digest("pf/static", "v1").as_deref(), Some(digest.as_str()));
    let hex = digest.strip_prefix("sha256:").unwrap();
    let index_bytes = std::fs::read(dir.join("out/static/blobs/sha256").join(hex)).unwrap();

    // Pushed again: every blob is already there.
    pinfold(dir)
        .args(["build", "static", "-o", &format!("docker://{host}/pf/static:v1")])
        .run()
        .success()
        .stderr_contains("0 blob(s) uploaded (0 bytes), 0 mounted, 5 already there");

    // pinfold reads it back: the same index and manifests as the layout.
    let by_digest = format!("docker://{host}/pf/static@{digest}");
    let from_registry = pinfold(dir).args(["inspect", "--json", &by_digest]).run().success();
    let from_layout = pinfold(dir).args(["inspect", "--json", "oci:out/static"]).run().success();
    let (r, l) = (json(&from_registry.output.stdout), json(&from_layout.output.stdout));
    assert_eq!(r["digest"], digest.as_str());
    assert_eq!(r["manifests"], l["manifests"], "manifests, configs and layers read from the registry are the layout's");
    assert_eq!(r["manifests"].as_array().unwrap().len(), 2);
    pinfold(dir)
        .args(["inspect", &format!("docker://{host}/pf/static:v1")])
        .run()
        .success()
        .stderr_contains("names a tag, not a digest");

    // `pinfold verify` rebuilds it and finds the registry's copy identical.
    pinfold(dir).args(["verify", &by_digest, "static"]).run().success();

    if require_tool("skopeo", &["--version"]) {
        let raw =
            tool_bytes("skopeo", &["inspect", "--raw", "--tls-verify=false", &format!("docker://{host}/pf/static:v1")]);
        assert_eq!(raw, index_bytes, "skopeo reads the exact bytes pinfold hashed");
        let copied = dir.join("skopeo-copy");
        tool(
            "skopeo",
            &[
                "copy",
                "--all",
                "--preserve-digests",
                "--src-tls-verify=false",
                &format!("docker://{host}/pf/static:v1"),
                &format!("oci:{}:copied", copied.display()),
            ],
        );
        let index = json(&std::fs::read(copied.join("index.json")).unwrap());
        assert_eq!(
            index["manifests"][0]["digest"],
            digest.as_str(),
            "skopeo's copy of the pushed index has its digest"
        );
    }
}

#[test]
fn bases_come_from_the_registry_by_digest_and_lock_resolves_tags() {
    let Some(registry) = Registry::start(None) else { return };
    let host = registry.host();
    let project = static_project();
    let digest = pinfold(project.path())
        .args(["build", "static", "-o", &format!("docker://{host}/pf/static:v1")])
        .run()
        .success()
        .digest();
    pinfold(project.path()).args(["build", "static", "-o", "oci:base-layout"]).run().success();

    // The same image on the same base, read once from the registry and once from a
    // layout: the same bytes.
    let on_registry = tempdir();
    let image = format!("{host}/pf/static:v1@{digest}");
    write_build_file(on_registry.path(), "on-registry.kdl", &[("{{IMAGE}}", &image)]);
    let from_registry = pinfold(on_registry.path()).args(["build", "app"]).run().success();
    assert!(
        !from_registry.stderr_flat().contains("unpinned"),
        "a base pinned by digest is pinned:\n{}",
        from_registry.stderr()
    );
    let on_layout = tempdir();
    copy_tree(&project.path().join("base-layout"), &on_layout.path().join("base"), false);
    write_build_file(on_layout.path(), "on-layout.kdl", &[("{{DIGEST}}", &digest)]);
    let from_layout = pinfold(on_layout.path()).args(["build", "app"]).run().success();
    assert_eq!(from_registry.digest(), from_layout.digest(), "a base from a registry gives the image a layout gives");

    // A second build reads the base from the store alone: the registry may be gone.
    let cache = on_registry.path().join(TEST_CACHE);
    assert!(
        cache.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap()).is_file(),
        "the index is in the store"
    );
    let pinned_app = from_registry.digest();

    // Pushing the image on the base to another repository mounts the base's layers.
    pinfold(on_registry.path())
        .args(["build", "app", "-o", &format!("docker://{host}/pf/app:v1")])
        .run()
        .success()
        .stderr_contains("3 mounted");
    assert_eq!(registry.tag_digest("pf/app", "v1").as_deref(), Some(pinned_app.as_str()));

    // A tag alone: a warning on build; `pinfold lock` resolves it through the registry,
    // and then the build takes the lock's pin, even under --locked.
    let by_tag = tempdir();
    write_build_file(by_tag.path(), "on-registry.kdl", &[("{{IMAGE}}", &format!("{host}/pf/static:v1"))]);
    pinfold(by_tag.path())
        .args(["build", "app"])
        .run()
        .success()
        .stderr_contains("is not pinned")
        .stderr_contains(&digest);
    pinfold(by_tag.path()).args(["lock"]).run().success();
    let lock = json(&std::fs::read(by_tag.path().join("pinfold.lock")).unwrap());
    assert_eq!(lock["bases"]["st"], digest.as_str(), "the lock holds the tag's digest");
    let locked = pinfold(by_tag.path()).args(["build", "app", "--locked"]).run().success();
    assert_eq!(locked.digest(), pinned_app);

    // Offline, a pinned base comes from the store; a tag cannot be resolved.
    registry_offline_checks(on_registry.path(), &pinned_app);
}

#[test]
fn a_registry_base_is_vendored_and_builds_offline_from_the_vendor_directory_alone() {
    let Some(registry) = Registry::start(None) else { return };
    let host = registry.host();
    let project = static_project();
    let digest = pinfold(project.path())
        .args(["build", "static", "-o", &format!("docker://{host}/pf/static:v1")])
        .run()
        .success()
        .digest();
    let dir = tempdir();
    let on_registry = dir.path().join("project");
    std::fs::create_dir_all(&on_registry).unwrap();
    write_build_file(&on_registry, "on-registry.kdl", &[("{{IMAGE}}", &format!("{host}/pf/static:v1"))]);
    pinfold(&on_registry).arg("lock").run().success();
    let built = pinfold(&on_registry).args(["build", "app", "--locked"]).run().success().digest();
    // Vendored from a cold store: the base's blobs are pulled by digest.
    let vendor = dir.path().join("vendor");
    let out = Test::new()
        .dir(&on_registry)
        .env("DOCKER_CONFIG", on_registry.join(".no-docker-config"))
        .env("PINFOLD_CACHE_DIR", dir.path().join("vendor-cache"))
        .arg("vendor")
        .arg(&vendor)
        .run()
        .success();
    let index = json(&std::fs::read(vendor.join("pinfold-vendor.json")).unwrap());
    let files = index["files"].as_array().unwrap();
    assert!(files.iter().all(|f| f["kind"] == "base" && f["input"] == "base st"), "{index}");
    let top = digest.strip_prefix("sha256:").unwrap();
    assert!(files.iter().any(|f| f["sha256"] == top && f["name"] == "top"), "{index}");
    for platform in ["linux/amd64", "linux/arm64"] {
        for role in [format!("manifest {platform}"), format!("config {platform}"), format!("layer 0 {platform}")] {
            assert!(files.iter().any(|f| f["name"] == role.as_str()), "{role} is not vendored: {index}");
        }
    }
    for f in files {
        let bytes = std::fs::read(vendor.join(f["sha256"].as_str().unwrap())).unwrap();
        assert_eq!(f["size"].as_u64().unwrap(), bytes.len() as u64);
    }
    assert!(
        !out.stdout().contains(&host)
            && !std::fs::read_to_string(vendor.join("pinfold-vendor.json")).unwrap().contains(&host)
    );
    // The registry gone, an empty store, --offline: the vendor directory alone builds it.
    drop(registry);
    let offline = Test::new()
        .dir(&on_registry)
        .env("DOCKER_CONFIG", on_registry.join(".no-docker-config"))
        .env("PINFOLD_CACHE_DIR", dir.path().join("offline-cache"))
        .args(["build", "app", "--locked", "--offline", "--mirror"])
        .arg(&vendor)
        .run()
        .success();
    assert_eq!(offline.digest(), built);
    // Without the vendor directory the same offline build cannot find the base.
    Test::new()
        .dir(&on_registry)
        .env("DOCKER_CONFIG", on_registry.join(".no-docker-config"))
        .env("PINFOLD_CACHE_DIR", dir.path().join("empty-cache"))
        .args(["build", "app", "--locked", "--offline"])
        .run()
        .code(2);
}

fn registry_offline_checks(dir: &Path, expected: &str) {
    let again = pinfold(dir).args(["build", "app", "--offline"]).run().success();
    assert_eq!(again.digest(), expected, "a pinned registry base builds offline from the store");
}

#[test]
fn basic_auth_uses_the_docker_config_and_fails_clearly_without_it() {
    let Some(registry) = Registry::start(Some(("pinfold", "s3cret"))) else { return };
    let host = registry.host();
    let project = static_project();
    let dir = project.path();
    let target = format!("docker://{host}/pf/static:v1");

    let denied = pinfold(dir).args(["build", "static", "-o", &target]).run().code(2);
    let denied = denied.stderr_contains(&format!("registry {host} answered 401 Unauthorized"));
    denied.stderr_contains("no credentials for it");
    assert_eq!(registry.tag_digest("pf/static", "v1"), None);

    let config = tempdir();
    std::fs::write(
        config.path().join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#, "cGluZm9sZDpzM2NyZXQ="), // pinfold:s3cret
    )
    .unwrap();
    let digest = pinfold(dir)
        .args(["build", "static", "-o", &target])
        .env("DOCKER_CONFIG", config.path())
        .run()
        .success()
        .digest();
    pinfold(dir)
        .args(["inspect", &format!("docker://{host}/pf/static@{digest}")])
        .env("DOCKER_CONFIG", config.path())
        .env("PINFOLD_CACHE_DIR", dir.join(".cache-inspect"))
        .run()
        .success();

    // --creds, right and wrong.
    pinfold(dir)
        .args(["inspect", &format!("docker://{host}/pf/static@{digest}"), "--creds", "pinfold:s3cret"])
        .run()
        .success();
    pinfold(dir)
        .args(["build", "static", "-o", &format!("docker://{host}/pf/other:v1"), "--creds", "pinfold:wrong"])
        .run()
        .code(2)
        .stderr_contains("the credentials were refused");

    // A credential helper named by the config (`credsStore`), found on PATH.
    let helper_dir = tempdir();
    let helper = helper_dir.path().join("docker-credential-pinfoldtest");
    std::fs::write(&helper, "#!/bin/sh\nread server\necho \"{\\\"ServerURL\\\":\\\"$server\\\",\\\"Username\\\":\\\"pinfold\\\",\\\"Secret\\\":\\\"s3cret\\\"}\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store_config = tempdir();
    std::fs::write(store_config.path().join("config.json"), r#"{"credsStore":"pinfoldtest"}"#).unwrap();
    let path = format!("{}:{}", helper_dir.path().display(), std::env::var("PATH").unwrap_or_default());
    pinfold(dir)
        .args(["build", "static", "-o", &format!("docker://{host}/pf/helper:v1")])
        .env("DOCKER_CONFIG", store_config.path())
        .env("PATH", path)
        .run()
        .success();
    assert_eq!(registry.tag_digest("pf/helper", "v1"), None, "anonymous reads are refused too");
}

#[test]
fn a_push_cut_by_a_dead_registry_never_moves_the_tag_and_completes_later() {
    let Some(mut registry) = Registry::start(None) else { return };
    let host = registry.host();
    let project = static_project();
    // The tag first names a complete image.
    let old = pinfold(project.path())
        .args(["build", "static", "-o", &format!("docker://{host}/pf/app:v1")])
        .run()
        .success()
        .digest();

    let big = tempdir();
    write_build_file(big.path(), "big.kdl", &[]);
    write_big_file(&big.path().join("big.bin"));
    pinfold(big.path()).args(["build", "big"]).run().success(); // layer built and cached

    // Kill the registry while the second chunk of the large layer is on its way.
    let proxy = Proxy::start(registry.port, Fault::PauseUpload(10 << 20));
    let child = pinfold(big.path())
        .args(["build", "big", "-o", &format!("docker://127.0.0.1:{}/pf/app:v1", proxy.port)])
        .spawn();
    assert!(proxy.wait_paused(Duration::from_secs(60)), "the push reached the middle of the large layer");
    registry.kill();
    proxy.release();
    let failed = wait_child(child, Duration::from_secs(120)).code(2);
    failed.stderr_contains(&format!("registry 127.0.0.1:{}", proxy.port));

    // Started again on the same storage: the tag still names the old, complete image.
    assert!(registry.launch(), "the registry starts again");
    assert_eq!(
        registry.tag_digest("pf/app", "v1").as_deref(),
        Some(old.as_str()),
        "the tag never moved to a partial image"
    );

    // The next push completes; the tag then names the new image, whole.
    let new = pinfold(big.path())
        .args(["build", "big", "-o", &format!("docker://{host}/pf/app:v1")])
        .run()
        .success()
        .digest();
    assert_ne!(new, old);
    assert_eq!(registry.tag_digest("pf/app", "v1").as_deref(), Some(new.as_str()));
    let fresh = tempdir();
    let pulled =
        pinfold(fresh.path()).args(["inspect", "--json", &format!("docker://{host}/pf/app@{new}")]).run().success();
    let layer = json(&pulled.output.stdout)["manifests"][0]["layers"][0]["digest"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::metadata(registry.blob_file(&layer)).unwrap().len(),
        std::fs::metadata(
            big.path().join(TEST_CACHE).join("blobs/sha256").join(layer.strip_prefix("sha256:").unwrap())
        )
        .unwrap()
        .len(),
        "the registry holds the whole layer"
    );
    if require_tool("skopeo", &["--version"]) {
        let out = fresh.path().join("copy");
        tool(
            "skopeo",
            &[
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{host}/pf/app:v1"),
                &format!("oci:{}:x", out.display()),
            ],
        );
    }
}

#[test]
fn a_registry_that_comes_back_lets_the_same_push_complete() {
    let Some(mut registry) = Registry::start(None) else { return };
    let big = tempdir();
    write_build_file(big.path(), "big.kdl", &[]);
    write_big_file(&big.path().join("big.bin"));
    let expected = pinfold(big.path()).args(["build", "big"]).run().success().digest();

    let proxy = Proxy::start(registry.port, Fault::PauseUpload(10 << 20));
    let child = pinfold(big.path())
        .args(["build", "big", "-o", &format!("docker://127.0.0.1:{}/pf/big:v1", proxy.port)])
        .spawn();
    assert!(proxy.wait_paused(Duration::from_secs(60)), "the push reached the middle of the large layer");
    registry.kill();
    assert!(registry.launch(), "the registry starts again");
    proxy.release();
    let done = wait_child(child, Duration::from_secs(120)).success();
    assert_eq!(done.digest(), expected);
    assert_eq!(registry.tag_digest("pf/big", "v1").as_deref(), Some(expected.as_str()));
    // pinfold asked the upload session where it stood before sending more. (This
    // registry refuses to resume a session whose last chunk was cut in the middle, so
    // pinfold then starts that blob over; a chunk refused with a 5xx is resumed.)
    let log = registry.log();
    let asked = log.lines().any(|l| l.contains("\"GET /v2/pf/big/blobs/uploads/"));
    assert!(asked, "no GET of the upload's state in the registry's log:\n{log}");
}

#[test]
fn a_download_cut_in_the_middle_resumes_where_it_stopped() {
    let Some(registry) = Registry::start(None) else { return };
    let big = tempdir();
    write_build_file(big.path(), "big.kdl", &[]);
    write_big_file(&big.path().join("big.bin"));
    let digest = pinfold(big.path())
        .args(["build", "big", "-o", &format!("docker://{}/pf/big:v1", registry.host())])
        .run()
        .success()
        .digest();
    let on_layout = pinfold(big.path()).args(["build", "big", "-o", "oci:big-layout"]).run().success();
    assert_eq!(on_layout.digest(), digest);

    // An image on it, built on another machine through a connection that breaks after
    // 10 MiB of the large layer.
    let proxy = Proxy::start(registry.port, Fault::CutDownload(10 << 20));
    let consumer = tempdir();
    write_build_file(
        consumer.path(),
        "on-big.kdl",
        &[("{{IMAGE}}", &format!("127.0.0.1:{}/pf/big:v1@{digest}", proxy.port))],
    );
    pinfold(consumer.path()).args(["build", "app", "-o", "oci:out"]).run().success();
    let layer = json(&pinfold(big.path()).args(["inspect", "--json", "oci:big-layout"]).run().success().output.stdout)
        ["manifests"][0]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let copied = consumer.path().join("out/blobs/sha256").join(layer.strip_prefix("sha256:").unwrap());
    let original = big.path().join("big-layout/blobs/sha256").join(layer.strip_prefix("sha256:").unwrap());
    assert!(std::fs::read(&copied).unwrap() == std::fs::read(&original).unwrap(), "the base layer arrived whole");
    let log = registry.log();
    let resumed = log.lines().any(|l| l.contains(&format!("\"GET /v2/pf/big/blobs/{layer} ")) && l.contains("\" 206 "));
    assert!(resumed, "the download went on with a range request:\n{log}");
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused_and_not_cached() {
    let Some(registry) = Registry::start(None) else { return };
    let host = registry.host();
    let project = static_project();
    let digest = pinfold(project.path())
        .args(["build", "static", "-o", &format!("docker://{host}/pf/static:v1")])
        .run()
        .success()
        .digest();
    let seen = pinfold(project.path())
        .args(["inspect", "--json", &format!("docker://{host}/pf/static@{digest}")])
        .run()
        .success();
    let manifests = json(&seen.output.stdout)["manifests"].clone();
    let layer = manifests[0]["layers"][0]["digest"].as_str().unwrap().to_string();
    let config = manifests[1]["config"]["digest"].as_str().unwrap().to_string();

    // The registry's file of a layer: same size, one byte changed.
    let file = registry.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();

    let consumer = tempdir();
    write_build_file(consumer.path(), "on-registry.kdl", &[("{{IMAGE}}", &format!("{host}/pf/static:v1@{digest}"))]);
    let failed = pinfold(consumer.path()).args(["build", "app"]).run().code(2);
    let failed = failed.stderr_contains(&layer);
    assert!(failed.stdout().is_empty(), "nothing was built");
    let store = consumer.path().join(TEST_CACHE);
    assert!(
        !store.join("blobs/sha256").join(layer.strip_prefix("sha256:").unwrap()).exists(),
        "the bad blob is not in the store"
    );
    let leftovers: Vec<_> = std::fs::read_dir(store.join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "no temporary file is left: {leftovers:?}");
    assert!(!consumer.path().join("pinfold-out/app").exists(), "no output was written");

    // A config that does not match: inspect names it.
    let file = registry.blob_file(&config);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] = b' ';
    std::fs::write(&file, bytes).unwrap();
    let fresh = tempdir();
    pinfold(fresh.path())
        .args(["inspect", &format!("docker://{host}/pf/static@{digest}")])
        .run()
        .code(2)
        .stderr_contains(&format!("expected {config}"));
    assert!(!fresh.path().join(TEST_CACHE).join("blobs/sha256").join(config.strip_prefix("sha256:").unwrap()).exists());
}

#[test]
fn a_second_machine_builds_nothing_with_the_shared_cache() {
    let Some(registry) = Registry::start(None) else { return };
    let cache = format!("docker://{}/pf/cache", registry.host());
    let first = static_project();
    let one = pinfold(first.path())
        .args(["build", "static", "-o", "oci:out", "--cache", &cache, "--cache-dir", "machine-1"])
        .run()
        .success();
    assert_eq!(one.layer_counts(), (3, 0));

    // Another checkout, another (empty) cache directory: every layer comes from the
    // registry, none is compressed, and the bytes are the first machine's.
    let second = static_project();
    let two = pinfold(second.path())
        .args(["build", "static", "-o", "oci:out", "--cache", &cache, "--cache-dir", "machine-2"])
        .run()
        .success();
    assert_eq!(two.layer_counts(), (0, 3), "no layer was built:\n{}", two.stderr());
    assert_eq!(two.digest(), one.digest());
    assert_same_tree(&first.path().join("out"), &second.path().join("out"));

    // --cache-mode read takes entries and writes none.
    std::fs::write(second.path().join("app/config.toml"), "changed = true\n").unwrap();
    let three = pinfold(second.path())
        .args(["build", "static", "--cache", &cache, "--cache-mode", "read", "--cache-dir", "machine-3"])
        .run()
        .success();
    assert_eq!(three.layer_counts(), (2, 1), "the app layers of both platforms changed:\n{}", three.stderr());
    let four =
        pinfold(second.path()).args(["build", "static", "--cache", &cache, "--cache-dir", "machine-4"]).run().success();
    assert_eq!(four.layer_counts(), (2, 1), "read mode wrote nothing to the registry");
}

fn assert_same_tree(a: &Path, b: &Path) {
    let files = |root: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut out: Vec<(PathBuf, Vec<u8>)> = walkdir::WalkDir::new(root)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| (e.path().strip_prefix(root).unwrap().to_path_buf(), std::fs::read(e.path()).unwrap()))
            .collect();
        out.sort();
        out
    };
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa.iter().map(|f| &f.0).collect::<Vec<_>>(), fb.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{} differs", name.display());
    }
}
