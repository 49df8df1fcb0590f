//! `pinfold diff`, `pinfold verify`, `pinfold build --check` and `--provenance`, driven
//! through the real binary on real builds of fixtures. Published images are tampered
//! with here by hand (bytes changed, layers re-tarred and recompressed, every digest
//! above fixed up), with the tar, flate2 and sha2 crates rather than with pinfold, so
//! that the engine is checked against images it did not write.

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

fn static_file() -> PathBuf {
    fixture("build/static/pinfold.kdl")
}

/// Builds `name` of the static fixture to `output`; returns its digest.
fn build_static(dir: &Path, name: &str, output: &str, extra: &[&str]) -> String {
    let ran = Test::in_dir(dir).args(["build", name, "-o", output, "-f"]).arg(static_file()).args(extra).run().code(0);
    ran.built()[0].1.clone()
}

// ---- editing a layout by hand, fixing every digest up to index.json ----

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap())
}

fn read_json(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&std::fs::read(blob_path(layout, digest)).unwrap()).unwrap()
}

fn write_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha(bytes);
    std::fs::write(blob_path(layout, &digest), bytes).unwrap();
    (digest, bytes.len() as u64)
}

fn write_json(layout: &Path, value: &Value) -> (String, u64) {
    write_blob(layout, &serde_json::to_vec(value).unwrap())
}

/// The manifest digest of each platform of the layout's one image, and whether the
/// top object is an index.
fn manifests(layout: &Path) -> (Vec<String>, bool) {
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let top = &index["manifests"][0];
    let digest = top["digest"].as_str().unwrap().to_string();
    if top["mediaType"] == "application/vnd.oci.image.index.v1+json" {
        let nested = read_json(layout, &digest);
        (
            nested["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap().to_string()).collect(),
            true,
        )
    } else {
        (vec![digest], false)
    }
}

/// The bytes of layer `layer` of platform `platform`.
fn layer_bytes(layout: &Path, platform: usize, layer: usize) -> Vec<u8> {
    let manifest = read_json(layout, &manifests(layout).0[platform]);
    std::fs::read(blob_path(layout, manifest["layers"][layer]["digest"].as_str().unwrap())).unwrap()
}

/// Replaces layer `layer` of platform `platform` with `blob` (and its diff_id in the
/// config when given), then fixes up config, manifest, index and index.json, so the
/// layout is a valid image again: another one.
fn replace_layer(layout: &Path, platform: usize, layer: usize, blob: &[u8], diff_id: Option<String>) {
    let (list, is_index) = manifests(layout);
    let mut manifest = read_json(layout, &list[platform]);
    let (digest, size) = write_blob(layout, blob);
    manifest["layers"][layer]["digest"] = Value::from(digest);
    manifest["layers"][layer]["size"] = Value::from(size);
    if let Some(diff_id) = diff_id {
        let mut config = read_json(layout, manifest["config"]["digest"].as_str().unwrap());
        config["rootfs"]["diff_ids"][layer] = Value::from(diff_id);
        let (cd, cs) = write_json(layout, &config);
        manifest["config"]["digest"] = Value::from(cd);
        manifest["config"]["size"] = Value::from(cs);
    }
    let (md, ms) = write_json(layout, &manifest);
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let (td, ts) = if is_index {
        let mut nested = read_json(layout, index["manifests"][0]["digest"].as_str().unwrap());
        nested["manifests"][platform]["digest"] = Value::from(md);
        nested["manifests"][platform]["size"] = Value::from(ms);
        write_json(layout, &nested)
    } else {
        (md, ms)
    };
    index["manifests"][0]["digest"] = Value::from(td);
    index["manifests"][0]["size"] = Value::from(ts);
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Rewrites a tar: `edit` may change any file's content; `reverse` reverses the order
/// of the entries.
fn retar(tar_bytes: &[u8], edit: impl Fn(&str, &mut Vec<u8>), reverse: bool) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let link = entry.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        edit(&path, &mut data);
        entries.push((path, link, header, data));
    }
    if reverse {
        entries.reverse();
    }
    let mut builder = tar::Builder::new(Vec::new());
    for (path, link, mut header, data) in entries {
        match link {
            Some(target) => builder.append_link(&mut header, &path, &target).unwrap(),
            None => {
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, &path, &data[..]).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

// ---- verify ----

#[test]
fn verify_passes_on_a_fresh_build_through_every_reference_form() {
    let tmp = tempdir();
    let dir = tmp.path();
    let index = build_static(dir, "static", "oci:layout", &[]);
    build_static(dir, "static", "oci-archive:static.tar", &[]);
    build_static(dir, "static", "docker-archive:static-docker.tar", &[]);
    for published in ["oci:layout", "oci:layout:static", "oci-archive:static.tar"] {
        Test::in_dir(dir)
            .args(["verify", published, "-f"])
            .arg(static_file())
            .run()
            .code(0)
            .stdout_contains(&format!("verified static {index}"));
    }
    // A docker-archive is named by its config (docker's image ID); the OCI layout
    // that pinfold puts beside manifest.json is verified too, index and all.
    let ran = Test::in_dir(dir)
        .args(["verify", "docker-archive:static-docker.tar", "--json", "-f"])
        .arg(static_file())
        .run()
        .code(0);
    let doc = ran.json();
    assert_eq!(doc["verdict"], "verified");
    assert_eq!(doc["rebuilt"], index.as_str());
    assert_eq!(doc["report"]["identical"], true);
    // The single-platform zstd image and the uncompressed one, named explicitly.
    build_static(dir, "single", "oci:single", &[]);
    build_static(dir, "plain", "oci-archive:plain.tar", &[]);
    Test::in_dir(dir).args(["verify", "oci:single", "single", "-f"]).arg(static_file()).run().code(0);
    Test::in_dir(dir).args(["verify", "oci-archive:plain.tar", "plain", "-f"]).arg(static_file()).run().code(0);
    // The wrong image of the build file is a "no", with the differences.
    Test::in_dir(dir)
        .args(["verify", "oci:single", "plain", "-f"])
        .arg(static_file())
        .run()
        .code(1)
        .stdout_contains("differs plain");
}

#[test]
fn verify_names_a_changed_file_in_a_valid_but_different_image() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_static(dir, "static", "oci:published", &[]);
    let layout = dir.join("published");
    // Layer #2 of linux/amd64 holds /app; one byte of /app/main.py changes, and every
    // digest above it is fixed up: a valid image, just not the one the sources make.
    let plain = gunzip(&layer_bytes(&layout, 0, 1));
    let edited = retar(
        &plain,
        |path, data| {
            if path == "app/main.py" {
                data[0] ^= 0x20;
            }
        },
        false,
    );
    assert_ne!(plain, edited);
    replace_layer(&layout, 0, 1, &gzip(&edited, 6), Some(sha(&edited)));
    let ran = Test::in_dir(dir).args(["verify", "oci:published", "-f"]).arg(static_file()).run().code(1);
    let out = ran.stdout();
    assert!(out.starts_with("differs static"), "{out}");
    assert!(out.contains("~ /app/main.py  content:"), "{out}");
    assert!(!out.contains("tampered ("), "a valid image is not tampered:\n{out}");

    let ran = Test::in_dir(dir).args(["verify", "oci:published", "--json", "-f"]).arg(static_file()).run().code(1);
    let doc = ran.json();
    assert_eq!(doc["verdict"], "differs");
    let layer = doc["report"]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "layer-content")
        .expect("a layer-content difference");
    assert_eq!(layer["platform"], "linux/amd64");
    let files = layer["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "only the edited file differs: {files:?}");
    assert_eq!(files[0]["path"], "app/main.py");
    assert_eq!(files[0]["change"], "content");
    assert_eq!(files[0]["size_a"], files[0]["size_b"]);
    assert_ne!(files[0]["sha256_a"], files[0]["sha256_b"]);
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_reported_as_tampered() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_static(dir, "static", "oci:pristine", &[]);

    // A layer's bytes changed in place: every JSON blob is intact, so the top digest
    // is the rebuilt one, and only reading the layer shows the lie.
    let layout = dir.join("layer-tampered");
    copy_dir(&dir.join("pristine"), &layout);
    let manifest = read_json(&layout, &manifests(&layout).0[1]);
    let named = manifest["layers"][1]["digest"].as_str().unwrap().to_string();
    let mut bytes = std::fs::read(blob_path(&layout, &named)).unwrap();
    let last = bytes.len() - 9; // inside the deflate stream, before the gzip trailer
    bytes[last] ^= 0xff;
    std::fs::write(blob_path(&layout, &named), &bytes).unwrap();
    let ran = Test::in_dir(dir).args(["verify", "oci:layer-tampered", "-f"]).arg(static_file()).run().code(1);
    let out = ran.stdout();
    assert!(out.starts_with("tampered static"), "{out}");
    assert!(out.contains(&format!("expected {named}, found {}", sha(&bytes))), "{out}");
    assert!(out.contains("linux/arm64 layer #2"), "the blob is named by where it is:\n{out}");

    // A config's bytes changed in place: the reader refuses it before anything else.
    let layout = dir.join("config-tampered");
    copy_dir(&dir.join("pristine"), &layout);
    let manifest = read_json(&layout, &manifests(&layout).0[0]);
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(blob_path(&layout, &config)).unwrap().replace("SIGTERM", "SIGKILL");
    std::fs::write(blob_path(&layout, &config), &text).unwrap();
    let ran =
        Test::in_dir(dir).args(["verify", "oci:config-tampered", "--json", "-f"]).arg(static_file()).run().code(1);
    let doc = ran.json();
    assert_eq!(doc["verdict"], "tampered");
    let t = &doc["report"]["tampered"][0];
    assert_eq!(t["expected"], config.as_str());
    assert_eq!(t["actual"], sha(text.as_bytes()).as_str());
    assert!(t["blob"].as_str().unwrap().contains("config of linux/amd64"), "{t}");

    // diff says the same about either side.
    Test::in_dir(dir)
        .args(["diff", "oci:pristine", "oci:layer-tampered"])
        .run()
        .code(1)
        .stdout_contains("tampered (B)");
    Test::in_dir(dir)
        .args(["diff", "oci:config-tampered", "oci:pristine"])
        .run()
        .code(1)
        .stdout_contains("tampered (A)");
}

#[test]
fn a_recompressed_layer_is_compression_only_and_semantically_equal() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_static(dir, "static", "oci:pristine", &[]);
    let layout = dir.join("recompressed");
    copy_dir(&dir.join("pristine"), &layout);
    let original = layer_bytes(&layout, 0, 0);
    let recompressed = gzip(&gunzip(&original), 1);
    assert_ne!(original, recompressed);
    replace_layer(&layout, 0, 0, &recompressed, None);

    Test::in_dir(dir)
        .args(["verify", "oci:recompressed", "-f"])
        .arg(static_file())
        .run()
        .code(1)
        .stdout_contains("layer #1: compression differs, content equal");
    let ran = Test::in_dir(dir).args(["diff", "oci:pristine", "oci:recompressed", "--json"]).run().code(1);
    let doc = ran.json();
    let kinds: Vec<&str> = doc["differences"].as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["layer-compression"], "{doc:#}");
    assert_eq!(doc["differences"][0]["a"]["diffId"], doc["differences"][0]["b"]["diffId"]);
    assert!(doc["tampered"].as_array().unwrap().is_empty());
    Test::in_dir(dir).args(["diff", "oci:pristine", "oci:recompressed", "--semantic"]).run().code(0);
}

// ---- diff ----

fn changes(doc: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = doc["differences"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["files"].as_array().cloned().unwrap_or_default())
        .map(|f| (f["path"].as_str().unwrap().to_string(), f["change"].as_str().unwrap().to_string()))
        .collect();
    out.sort();
    out
}

#[test]
fn diff_names_every_kind_of_difference() {
    let tmp = tempdir();
    let dir = tmp.path();
    // Two build files that differ in every way a file can, and in the epoch.
    for name in ["before", "after"] {
        let file = fixture(&format!("compare/{name}/pinfold.kdl"));
        Test::in_dir(dir).args(["build", "-o", &format!("oci:{name}.oci"), "-f"]).arg(file).run().code(0);
    }
    let doc = Test::in_dir(dir).args(["diff", "oci:before.oci", "oci:after.oci", "--json"]).run().code(1).json();
    let expected = [
        ("added", "added"),
        ("content", "content"),
        ("content", "mtime"),
        ("kind", "entry-type"),
        ("kind", "mode"),
        ("kind", "mtime"),
        ("link", "link-target"),
        ("link", "mtime"),
        ("mode", "mode"),
        ("mode", "mtime"),
        ("owner", "mtime"),
        ("owner", "owner"),
        ("removed", "removed"),
        ("same", "mtime"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect();
    assert_eq!(changes(&doc), expected);
    let paths: Vec<&str> = doc["differences"].as_array().unwrap().iter().filter_map(|d| d["path"].as_str()).collect();
    assert!(
        paths.contains(&".config.Env[0]") && paths.contains(&".created") && paths.contains(&".history[0].created"),
        "{paths:?}"
    );

    // --semantic keeps what is not a timestamp.
    let doc = Test::in_dir(dir)
        .args(["diff", "oci:before.oci", "oci:after.oci", "--json", "--semantic"])
        .run()
        .code(1)
        .json();
    assert!(changes(&doc).iter().all(|(_, c)| c != "mtime"));
    assert_eq!(changes(&doc).len(), 8);
    let paths: Vec<&str> = doc["differences"].as_array().unwrap().iter().filter_map(|d| d["path"].as_str()).collect();
    assert_eq!(paths, [".config.Env[0]"]);

    // The human form shows the same.
    let text = Test::in_dir(dir).args(["diff", "oci:before.oci", "oci:after.oci"]).run().code(1).stdout();
    for line in [
        "~ /owner  owner: 0:0 → 1000:1000",
        "~ /mode  mode: 0644 → 0600",
        "~ /link  link target: /a → /b",
        "~ /kind  entry type: file → dir",
        "- /removed",
        "+ /added",
        "config .config.Env[0]: \"A=1\" → \"A=2\"",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn diff_reports_entry_order_and_semantic_mode_ignores_it() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_static(dir, "static", "oci:pristine", &[]);
    let layout = dir.join("reordered");
    copy_dir(&dir.join("pristine"), &layout);
    let plain = gunzip(&layer_bytes(&layout, 0, 0));
    let reordered = retar(&plain, |_, _| {}, true);
    replace_layer(&layout, 0, 0, &gzip(&reordered, 6), Some(sha(&reordered)));
    let doc = Test::in_dir(dir).args(["diff", "oci:pristine", "oci:reordered", "--json"]).run().code(1).json();
    let found = changes(&doc);
    assert!(!found.is_empty() && found.iter().all(|(_, c)| c == "order"), "{found:?}");
    Test::in_dir(dir)
        .args(["diff", "oci:pristine", "oci:reordered", "--semantic"])
        .run()
        .code(0)
        .stdout_contains("equal (--semantic");
}

#[test]
fn diff_builds_a_bare_name_and_reports_layers_added_and_platforms() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_static(dir, "static", "oci:static", &[]);
    build_static(dir, "single", "oci-archive:single.tar", &[]);
    Test::in_dir(dir)
        .args(["diff", "static", "oci:static", "-f"])
        .arg(static_file())
        .run()
        .code(0)
        .stdout_contains("identical, bit for bit");
    let doc = Test::in_dir(dir).args(["diff", "oci:static", "oci-archive:single.tar", "--json"]).run().code(1).json();
    let kinds: Vec<&str> = doc["differences"].as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"platform-only") && kinds.contains(&"layer-only") && kinds.contains(&"layer-content"),
        "{kinds:?}"
    );
    // A docker-archive holds one platform: the other platforms of an index are not a
    // difference, but a docker-archive of another platform is.
    build_static(dir, "plain", "docker-archive:plain-docker.tar", &[]);
    build_static(dir, "static", "docker-archive:static-docker.tar", &[]);
    Test::in_dir(dir).args(["diff", "docker-archive:static-docker.tar", "oci:static"]).run().code(0);
    let doc = Test::in_dir(dir)
        .args(["diff", "docker-archive:plain-docker.tar", "oci-archive:single.tar", "--json"])
        .run()
        .code(1)
        .json();
    assert_eq!(doc["differences"][0]["kind"], "platform-only", "{doc:#}");
    // Could not do the work: exit 2.
    Test::in_dir(dir).args(["diff", "oci:static", "oci:missing"]).run().code(2);
    Test::in_dir(dir).args(["diff", "oci:static", "nonsense:x"]).run().code(2);
}

// ---- provenance ----

#[test]
fn provenance_is_a_referrer_and_leaves_the_image_digest_alone() {
    let tmp = tempdir();
    let dir = tmp.path();
    let plain = build_static(dir, "static", "oci:plain", &[]);
    let with = build_static(dir, "static", "oci:with", &["--provenance"]);
    assert_eq!(plain, with, "provenance must not change the image");
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("with/index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["annotations"]["org.opencontainers.image.ref.name"], "static", "the image stays first");
    assert_eq!(entries[0]["digest"], with.as_str());
    assert_eq!(entries[1]["artifactType"], "application/vnd.in-toto+json");
    let artifact = read_json(&dir.join("with"), entries[1]["digest"].as_str().unwrap());
    assert_eq!(artifact["subject"]["digest"], with.as_str());
    assert_eq!(artifact["subject"]["mediaType"], entries[0]["mediaType"]);
    assert_eq!(artifact["subject"]["size"], entries[0]["size"]);
    assert_eq!(artifact["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
    assert_eq!(
        std::fs::read(blob_path(&dir.join("with"), artifact["config"]["digest"].as_str().unwrap())).unwrap(),
        b"{}"
    );
    let statement = read_json(&dir.join("with"), artifact["layers"][0]["digest"].as_str().unwrap());
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(statement["subject"][0]["name"], "static");
    assert_eq!(format!("sha256:{}", statement["subject"][0]["digest"]["sha256"].as_str().unwrap()), with);
    let definition = &statement["predicate"]["buildDefinition"];
    let file_digest = hex::encode(Sha256::digest(std::fs::read(static_file()).unwrap()));
    assert_eq!(definition["externalParameters"]["buildFile"]["digest"]["sha256"], file_digest.as_str());
    assert_eq!(definition["externalParameters"]["platforms"], serde_json::json!(["linux/amd64", "linux/arm64"]));
    let run = &statement["predicate"]["runDetails"];
    assert_eq!(run["builder"]["version"]["pinfold"], env!("CARGO_PKG_VERSION"));
    assert_eq!(run["metadata"]["startedOn"], "2024-01-01T00:00:00Z", "times are the epoch, never the clock");

    // Reproducible like the image: a second build writes the same index.json.
    build_static(dir, "static", "oci:again", &["--provenance"]);
    assert_eq!(
        std::fs::read(dir.join("with/index.json")).unwrap(),
        std::fs::read(dir.join("again/index.json")).unwrap()
    );
    // The image is still found without :REF by pinfold, and by skopeo with it.
    Test::in_dir(dir).args(["diff", "oci:with", "oci:plain"]).run().code(0);
    if require_tool("skopeo", &["--version"]) {
        let out =
            Command::new("skopeo").args(["inspect", "--raw", "oci:with:static"]).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(sha(&out.stdout), with);
    }
    // An archive output cannot carry it: refused before building.
    Test::in_dir(dir)
        .args(["build", "static", "--provenance", "-o", "oci-archive:x.tar", "-f"])
        .arg(static_file())
        .run()
        .code(2);
    assert!(!dir.join("x.tar").exists());
}

// ---- --rev ----

fn git(dir: &Path, args: &[&str], date: &str) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn rev_rebuilds_an_older_commit_while_the_working_tree_has_changed() {
    if !require_tool("git", &["--version"]) {
        return;
    }
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    // No `epoch`: it comes from the commit time of HEAD, so the rebuild of an old
    // commit must also take that commit's time.
    copy_dir(&fixture("compare/rev"), &repo);
    std::fs::write(repo.join(".gitignore"), format!("/pinfold-out\n/{TEST_CACHE}\n")).unwrap();
    git(&repo, &["init", "-q"], "2024-01-01T00:00:00Z");
    git(&repo, &["add", "."], "2024-01-01T00:00:00Z");
    git(&repo, &["commit", "-q", "-m", "v1"], "2024-01-01T00:00:00Z");
    let first = git(&repo, &["rev-parse", "HEAD"], "2024-01-01T00:00:00Z");
    let published = tmp.path().join("published");
    let digest = Test::in_dir(&repo)
        .args(["build", "--provenance", "-o"])
        .arg(format!("oci:{}", published.display()))
        .run()
        .code(0)
        .built()[0]
        .1
        .clone();

    std::fs::write(repo.join("app/hello.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "v2"], "2024-02-01T00:00:00Z");
    std::fs::write(repo.join("app/hello.txt"), "v3, not committed\n").unwrap();
    std::fs::write(repo.join("app/untracked.txt"), "new\n").unwrap();

    let published_ref = format!("oci:{}", published.display());
    Test::in_dir(&repo)
        .args(["verify", &published_ref, "hello", "--rev", &first])
        .run()
        .code(0)
        .stdout_contains(&format!("verified hello {digest}"))
        .stdout_contains(&first);
    // Without NAME and --rev, the provenance says which image and which commit.
    let doc = Test::in_dir(&repo).args(["verify", &published_ref, "--json"]).run().code(0).json();
    assert_eq!(doc["source"]["revision"], first.as_str());
    assert_eq!(doc["source"]["fromProvenance"], true);
    assert_eq!(doc["provenance"]["clean"], true);
    // HEAD is another commit (other content, other commit time): a "no", with why.
    let ran = Test::in_dir(&repo).args(["verify", &published_ref, "--rev", "HEAD"]).run().code(1);
    let out = ran.stdout();
    assert!(out.contains("~ /app/hello.txt  content: 3 bytes"), "{out}");
    assert!(out.contains("config .created: \"2024-01-01T00:00:00Z\" → \"2024-02-01T00:00:00Z\""), "{out}");
    // An unknown revision cannot be checked out: exit 2.
    Test::in_dir(&repo).args(["verify", &published_ref, "--rev", "no-such-rev"]).run().code(2);
    // Every temporary worktree is gone, and the working tree is as it was.
    assert_eq!(git(&repo, &["worktree", "list"], "2024-01-01T00:00:00Z").lines().count(), 1);
    assert_eq!(std::fs::read_to_string(repo.join("app/hello.txt")).unwrap(), "v3, not committed\n");
}

// ---- --check ----

#[test]
fn check_passes_on_the_fixtures() {
    let tmp = tempdir();
    let dir = tmp.path();
    let normal = Test::in_dir(dir).args(["build", "-f"]).arg(static_file()).run().code(0).built();
    let checked = Test::in_dir(dir).args(["build", "--check", "3", "-f"]).arg(static_file()).run().code(0).built();
    assert_eq!(checked, normal, "--check prints what build prints");
    // `--check NAME`: NAME is an image, and N is 2.
    let ran = Test::in_dir(dir).args(["build", "--check", "single", "-f"]).arg(static_file()).run().code(0);
    assert_eq!(ran.built().len(), 1);
    assert!(ran.stderr().contains("2 builds agree"), "{}", ran.stderr());

    // The busybox fixture, with this machine's static busybox in it.
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"].into_iter().map(Path::new).find(|p| p.exists()) else {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "busybox-static is required in CI");
        return;
    };
    let src = dir.join("busybox");
    copy_dir(&fixture("build/busybox"), &src);
    std::fs::copy(busybox, src.join("busybox")).unwrap();
    Test::in_dir(dir).args(["build", "--check", "-f"]).arg(src.join("pinfold.kdl")).run().code(0);
}

/// Which non-reproducible input to use, and why this one: pinfold takes almost nothing
/// from the machine on purpose (owners, modes beyond the executable bit, mtimes and
/// order are all fixed by the build file and the spec; symlinks are stored, never
/// followed), so a file "changed by the perturbation" cannot reach the image through
/// `copy`: that is what the other perturbations check. The one input from the
/// environment that the language allows is `SOURCE_DATE_EPOCH`, used when the build
/// file sets no `epoch` and is not in a git checkout. `--check` sets it to another
/// value in the other runs exactly when nothing pinned the epoch, so a build file like
/// this one, in a temporary directory outside any checkout, gives images whose every
/// timestamp depends on the builder's environment, and `--check` must say so, naming
/// `created` and the mtimes.
#[test]
fn check_catches_an_epoch_that_leaks_from_the_environment() {
    let tmp = tempdir();
    let dir = tmp.path();
    // The fixture is inside pinfold's own checkout, where git would pin the epoch.
    copy_dir(&fixture("compare/leaky"), dir);
    let ran = Test::in_dir(dir).args(["build", "--check"]).run().code(1);
    let out = ran.stdout();
    assert!(out.starts_with("leaky is not reproducible: run 1: sha256:"), "{out}");
    assert!(out.contains("config .created: \"1970-01-01T00:00:00Z\""), "{out}");
    assert!(out.contains("~ /hello.txt  mtime: 0 (1970-01-01T00:00:00Z) →"), "{out}");
    assert!(out.contains("hint: the build file sets no `epoch`"), "{out}");
    let doc = Test::in_dir(dir).args(["build", "--check", "--json"]).run().code(1).json();
    assert_eq!(doc["reproducible"], false);
    assert_eq!(doc["mismatches"][0]["runs"], serde_json::json!([1, 2]));

    // Pinning the epoch in the file fixes it, whatever SOURCE_DATE_EPOCH says.
    let pinned = std::fs::read_to_string(dir.join("pinfold.kdl"))
        .unwrap()
        .replace("pinfold 1\n", "pinfold 1\nepoch 1704067200\n");
    std::fs::write(dir.join("pinfold.kdl"), pinned).unwrap();
    Test::in_dir(dir).args(["build", "--check", "3"]).run().code(0);
}
