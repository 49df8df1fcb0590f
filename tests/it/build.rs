//! `pinfold build`: golden digests, outputs in every form, the cache, platforms,
//! bases, and what a failed build leaves behind.

use crate::harness::*;
use std::path::Path;

/// Expected `NAME DIGEST` lines of a fixture. A change here means pinfold's bytes
/// changed: on purpose (bless with PINFOLD_BLESS=1 and say why in the commit), or
/// by a dependency update (then it is a bug this test exists to catch).
pub(crate) fn check_golden(fixture_dir: &Path, built: &[(String, String)]) {
    let golden = fixture_dir.join("golden-digests.txt");
    let actual: String = built.iter().map(|(n, d)| format!("{n} {d}\n")).collect();
    if bless() {
        std::fs::write(&golden, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden).expect("golden-digests.txt exists (PINFOLD_BLESS=1 writes it)");
    assert_eq!(actual, expected, "digests of {} changed", fixture_dir.display());
}

fn build_static(out: &Path, extra: &[&str]) -> Ran {
    let cache = out.join("cache");
    Test::new()
        .dir(out)
        .args(["build", "-f"])
        .arg(fixture("build/static/pinfold.kdl"))
        .arg("--cache-dir")
        .arg(&cache)
        .args(extra)
        .run()
        .success()
}

#[test]
fn static_fixture_matches_golden_digests() {
    let tmp = tempdir();
    let ran = build_static(tmp.path(), &[]);
    check_golden(&fixture("build/static"), &ran.built());
}

#[test]
fn golden_digests_do_not_depend_on_the_thread_count() {
    for threads in ["1", "3"] {
        let tmp = tempdir();
        let ran = Test::new()
            .dir(tmp.path())
            .env("RAYON_NUM_THREADS", threads)
            .args(["build", "--no-cache", "-f"])
            .arg(fixture("build/static/pinfold.kdl"))
            .run()
            .success();
        check_golden(&fixture("build/static"), &ran.built());
    }
}

#[test]
fn two_platforms_give_an_index_with_a_platform_on_each_manifest() {
    let tmp = tempdir();
    build_static(tmp.path(), &["static"]);
    let layout = tmp.path().join("pinfold-out/static");
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let top = &index["manifests"][0];
    assert_eq!(top["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(top["annotations"]["org.opencontainers.image.ref.name"], "static");
    let digest = top["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
    let nested: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(digest)).unwrap()).unwrap();
    let platforms: Vec<String> = nested["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    // The config of each platform names its own architecture.
    for m in nested["manifests"].as_array().unwrap() {
        let mdigest = m["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(mdigest)).unwrap()).unwrap();
        let cdigest = manifest["config"]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(cdigest)).unwrap()).unwrap();
        assert_eq!(config["architecture"], m["platform"]["architecture"]);
        assert_eq!(config["created"], "2024-01-01T00:00:00Z");
        let env = config["config"]["Env"].as_array().unwrap();
        let arch = m["platform"]["architecture"].as_str().unwrap();
        assert!(env.contains(&serde_json::Value::from(format!("ARCH={arch}"))), "{env:?}");
    }
}

#[test]
fn platform_flag_narrows_to_one_manifest() {
    let tmp = tempdir();
    let ran = build_static(tmp.path(), &["static", "--platform", "linux/arm64"]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("pinfold-out/static/index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    // The arm64 manifest of the two-platform build is this very manifest.
    let all = build_static(tmp.path(), &["static"]);
    let arm64 = Test::new()
        .args(["inspect", "--json"])
        .arg(format!("oci:{}", tmp.path().join("pinfold-out/static").display()))
        .run()
        .success();
    let doc: serde_json::Value = serde_json::from_str(&arm64.stdout()).unwrap();
    assert_eq!(doc["manifests"][1]["platform"], "linux/arm64");
    assert_eq!(doc["manifests"][1]["digest"].as_str().unwrap(), ran.built()[0].1);
    drop(all);
}

#[test]
fn rebuild_with_nothing_changed_takes_every_layer_from_the_cache() {
    let tmp = tempdir();
    let first = build_static(tmp.path(), &[]);
    assert!(first.stderr().contains("5 layer(s) built, 0 from the cache"), "{}", first.stderr());
    let second = build_static(tmp.path(), &[]);
    assert!(second.stderr().contains("0 layer(s) built, 5 from the cache"), "{}", second.stderr());
    assert_eq!(first.built(), second.built());
}

#[test]
fn a_cached_blob_changed_after_it_was_stored_is_hashed_again_and_replaced() {
    let tmp = tempdir();
    let first = build_static(tmp.path(), &[]);
    // Corrupt one cached blob on purpose, in place and at the same size, as an edit of
    // an output (a hard link of it) would.
    let blobs = tmp.path().join("cache/blobs/sha256");
    let mut names: Vec<_> = std::fs::read_dir(&blobs).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let victim = &names[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(victim, &bytes).unwrap();
    let second = build_static(tmp.path(), &[])
        .stderr_contains(&format!("the cached blob sha256:{}", victim.file_name().unwrap().to_str().unwrap()))
        .stderr_contains("1 layer(s) built, 4 from the cache");
    assert_eq!(first.built(), second.built());
    // Rebuilt right: the blob is its sha256 again, and the next build trusts it.
    let rehashed = tool("sha256sum", &[victim.to_str().unwrap()]);
    assert!(rehashed.starts_with(victim.file_name().unwrap().to_str().unwrap()), "{rehashed}");
    let third = build_static(tmp.path(), &[]);
    assert!(!third.stderr().contains("warning"), "{}", third.stderr());
    third.stderr_contains("0 layer(s) built, 5 from the cache");
}

#[test]
fn a_changed_file_rebuilds_only_its_layer() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    copy_tree(&fixture("build/static"), &src, false);
    let cache = tmp.path().join("cache");
    let build = || {
        Test::new()
            .dir(tmp.path())
            .args(["build", "static", "-f"])
            .arg(src.join("pinfold.kdl"))
            .arg("--cache-dir")
            .arg(&cache)
            .run()
            .success()
    };
    let first = build();
    std::fs::write(src.join("bin/run.sh"), "#!/bin/sh\necho changed\n").unwrap();
    let second = build();
    // The app layer differs per platform (two layers), the etc layer is shared (one).
    assert!(second.stderr().contains("2 layer(s) built, 1 from the cache"), "{}", second.stderr());
    assert_ne!(first.built(), second.built());
}

#[test]
fn every_output_form_holds_the_same_image() {
    let tmp = tempdir();
    let layout = build_static(tmp.path(), &["single"]).built()[0].1.clone();
    let archive = build_static(tmp.path(), &["single", "-o", "oci-archive:single.tar"]).built()[0].1.clone();
    let docker = build_static(tmp.path(), &["single", "-o", "docker-archive:single-docker.tar"]).built()[0].1.clone();
    assert_eq!(layout, archive);
    assert_eq!(layout, docker);
    for reference in ["oci-archive:single.tar", "docker-archive:single-docker.tar"] {
        let ran = Test::new().dir(tmp.path()).args(["inspect", "--json", reference]).run().success();
        let doc: serde_json::Value = serde_json::from_str(&ran.stdout()).unwrap();
        assert_eq!(doc["manifests"][0]["platform"], "linux/amd64", "{reference}");
    }
}

#[test]
fn output_flag_with_several_images_is_a_usage_error() {
    let tmp = tempdir();
    Test::new()
        .dir(tmp.path())
        .args(["build", "-o", "oci:x", "-f"])
        .arg(fixture("build/static/pinfold.kdl"))
        .run()
        .code(2)
        .stderr_contains("name one image");
}

#[test]
fn unknown_image_name_suggests_the_closest() {
    let tmp = tempdir();
    Test::new()
        .dir(tmp.path())
        .args(["build", "statc", "-f"])
        .arg(fixture("build/static/pinfold.kdl"))
        .run()
        .code(2)
        .stderr_contains("did you mean `static`?");
}

#[test]
fn a_failed_build_leaves_the_previous_output_intact() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    copy_tree(&fixture("build/static"), &src, false);
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("pinfold-out/static");
    Test::new()
        .dir(tmp.path())
        .args(["build", "static", "-f"])
        .arg(src.join("pinfold.kdl"))
        .arg("--cache-dir")
        .arg(&cache)
        .run()
        .success();
    let before = std::fs::read(out.join("index.json")).unwrap();
    let archive = tmp.path().join("static.tar");
    Test::new()
        .dir(tmp.path())
        .args(["build", "static", "-o"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg("-f")
        .arg(src.join("pinfold.kdl"))
        .arg("--cache-dir")
        .arg(&cache)
        .run()
        .success();
    let archive_before = std::fs::read(&archive).unwrap();

    // A source that disappears between planning and packing cannot be planned; a build
    // file that becomes invalid is the simplest failure that reaches no output.
    let text = std::fs::read_to_string(src.join("pinfold.kdl")).unwrap();
    std::fs::write(src.join("pinfold.kdl"), text.replace("copy \"bin/run.sh\"", "copy \"bin/gone.sh\"")).unwrap();
    Test::new()
        .dir(tmp.path())
        .args(["build", "static", "-f"])
        .arg(src.join("pinfold.kdl"))
        .arg("--cache-dir")
        .arg(&cache)
        .run()
        .code(2);
    Test::new()
        .dir(tmp.path())
        .args(["build", "static", "-o"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg("-f")
        .arg(src.join("pinfold.kdl"))
        .arg("--cache-dir")
        .arg(&cache)
        .run()
        .code(2);
    assert_eq!(std::fs::read(out.join("index.json")).unwrap(), before);
    assert_eq!(std::fs::read(&archive).unwrap(), archive_before);
    // No temporary directory or file is left beside the outputs.
    let leftovers: Vec<_> =
        std::fs::read_dir(tmp.path().join("pinfold-out")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["static"], "{leftovers:?}");
}

#[test]
fn an_image_on_a_base_reuses_the_base_layers_byte_for_byte() {
    let tmp = tempdir();
    // The base is pinfold's own `single` image, stored as a layout inside the new build's tree.
    let src = tmp.path().join("derived");
    std::fs::create_dir_all(&src).unwrap();
    let base_digest = Test::new()
        .dir(tmp.path())
        .args(["build", "single", "--no-cache", "-o"])
        .arg(format!("oci:{}", src.join("vendor/single").display()))
        .arg("-f")
        .arg(fixture("build/static/pinfold.kdl"))
        .run()
        .success()
        .built()[0]
        .1
        .clone();
    std::fs::write(
        src.join("pinfold.kdl"),
        format!(
            "pinfold 1\nepoch 1704067200\nbase single {{\n    layout \"vendor/single\"\n    digest \"{base_digest}\"\n}}\nimage derived {{\n    from single\n    layer extra {{\n        file \"/etc/derived\" \"yes\\n\"\n    }}\n    env EXTRA=\"1\"\n}}\n"
        ),
    )
    .unwrap();
    let ran = Test::new().dir(&src).args(["build", "--no-cache"]).run().success();
    // The base is golden, so the image on it is too.
    check_golden(&fixture("build/derived"), &ran.built());
    let inspect = Test::new().dir(&src).args(["inspect", "--json", "oci:pinfold-out/derived"]).run().success();
    let derived: serde_json::Value = serde_json::from_str(&inspect.stdout()).unwrap();
    let base = Test::new().dir(&src).args(["inspect", "--json", "oci:vendor/single"]).run().success();
    let base: serde_json::Value = serde_json::from_str(&base.stdout()).unwrap();
    assert_eq!(derived["digest"].as_str().unwrap(), ran.built()[0].1);
    let derived_layers = derived["manifests"][0]["layers"].as_array().unwrap();
    let base_layers = base["manifests"][0]["layers"].as_array().unwrap();
    assert_eq!(derived_layers.len(), base_layers.len() + 1);
    assert_eq!(derived_layers[0]["digest"], base_layers[0]["digest"]);
    assert_eq!(derived_layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
    // The base's cmd and the derived env are both in the config.
    assert_eq!(derived["manifests"][0]["config"]["config"]["Cmd"][0], "/bin/true");
    assert_eq!(derived["manifests"][0]["config"]["config"]["Env"][0], "EXTRA=1");

    // A base whose bytes changed is refused, naming both digests.
    let other = "sha256:".to_string() + &"0".repeat(64);
    let text = std::fs::read_to_string(src.join("pinfold.kdl")).unwrap().replace(&base_digest, &other);
    std::fs::write(src.join("pinfold.kdl"), text).unwrap();
    Test::new()
        .dir(&src)
        .args(["build", "--no-cache"])
        .run()
        .code(2)
        .stderr_contains(&format!("pinned {other}"))
        .stderr_contains(&format!("holds {base_digest}"));
}

#[test]
fn a_two_platform_base_serves_each_platform_its_own_manifest() {
    let tmp = tempdir();
    let src = tmp.path().join("derived");
    std::fs::create_dir_all(&src).unwrap();
    let base_digest = Test::new()
        .dir(tmp.path())
        .args(["build", "static", "--no-cache", "-o"])
        .arg(format!("oci-archive:{}", src.join("vendor/static.tar").display()))
        .arg("-f")
        .arg(fixture("build/static/pinfold.kdl"))
        .run()
        .success()
        .built()[0]
        .1
        .clone();
    let base_doc: serde_json::Value = serde_json::from_str(
        &Test::new()
            .args(["inspect", "--json"])
            .arg(format!("oci-archive:{}", src.join("vendor/static.tar").display()))
            .run()
            .success()
            .stdout(),
    )
    .unwrap();
    let text = |platforms: &str| {
        format!("pinfold 1\nepoch 1704067200\nplatforms {platforms}\nbase static {{\n    oci-archive \"vendor/static.tar\"\n    digest \"{base_digest}\"\n}}\nimage derived {{\n    from static\n    layer more {{\n        file \"/etc/more\" \"more\\n\"\n    }}\n}}\n")
    };
    std::fs::write(src.join("pinfold.kdl"), text("\"linux/amd64\" \"linux/arm64\"")).unwrap();
    Test::new().dir(&src).args(["build", "--no-cache"]).run().success();
    let doc: serde_json::Value = serde_json::from_str(
        &Test::new().dir(&src).args(["inspect", "--json", "oci:pinfold-out/derived"]).run().success().stdout(),
    )
    .unwrap();
    for i in 0..2 {
        let derived = &doc["manifests"][i];
        let base = &base_doc["manifests"][i];
        assert_eq!(derived["platform"], base["platform"]);
        // The base's layers of that platform, then the new one.
        let base_layers: Vec<&serde_json::Value> =
            base["layers"].as_array().unwrap().iter().map(|l| &l["digest"]).collect();
        let derived_layers: Vec<&serde_json::Value> =
            derived["layers"].as_array().unwrap().iter().map(|l| &l["digest"]).collect();
        assert_eq!(&derived_layers[..base_layers.len()], &base_layers[..]);
        assert_eq!(derived["config"]["config"]["Env"], base["config"]["config"]["Env"]);
    }
    // A platform the base lacks is an error that names what the base has.
    std::fs::write(src.join("pinfold.kdl"), text("\"linux/amd64\" \"linux/s390x\"")).unwrap();
    Test::new()
        .dir(&src)
        .args(["build", "--no-cache"])
        .run()
        .code(2)
        .stderr_contains("base `static` has no image for linux/s390x")
        .stderr_contains("base has linux/amd64, linux/arm64");
}

#[test]
fn a_killed_build_leaves_the_previous_output_and_the_next_build_sweeps_its_leftovers() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // 64 MiB of incompressible bytes at gzip level 9: long enough to be killed mid-layer.
    let mut data = vec![0u8; 64 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(src.join("big.bin"), &data).unwrap();
    let text = |n: u32| {
        format!("pinfold 1\nepoch 0\nimage big {{\n    from scratch\n    compression \"gzip:9\"\n    layer l {{\n        copy \"big.bin\" to=\"/big.bin\"\n        file \"/n\" \"{n}\"\n    }}\n}}\n")
    };
    std::fs::write(src.join("pinfold.kdl"), text(1)).unwrap();
    let archive = tmp.path().join("out/big.tar");
    let cache = tmp.path().join("cache");
    let args = |cmd: &mut std::process::Command| {
        cmd.current_dir(&src)
            .args(["build", "-o"])
            .arg(format!("oci-archive:{}", archive.display()))
            .arg("--cache-dir")
            .arg(&cache);
    };
    let mut first = std::process::Command::new(pinfold_bin());
    args(&mut first);
    assert!(first.status().unwrap().success());
    let before = std::fs::read(&archive).unwrap();

    std::fs::write(src.join("pinfold.kdl"), text(2)).unwrap();
    let mut second = std::process::Command::new(pinfold_bin());
    args(&mut second);
    let mut child = second.stderr(std::process::Stdio::null()).spawn().unwrap();
    // Kill it while the layer is being compressed into the cache.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_dir(cache.join("tmp")).map(|d| d.count()).unwrap_or(0) == 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read(&archive).unwrap(), before, "the previous output changed");
    assert!(std::fs::read_dir(cache.join("tmp")).unwrap().count() > 0, "the kill came after the layer was written");

    // The next build completes and removes what the killed one left behind.
    let mut third = std::process::Command::new(pinfold_bin());
    args(&mut third);
    assert!(third.status().unwrap().success());
    assert_eq!(std::fs::read_dir(cache.join("tmp")).unwrap().count(), 0);
    let leftovers: Vec<_> =
        std::fs::read_dir(tmp.path().join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["big.tar"]);
    assert_ne!(std::fs::read(&archive).unwrap(), before);
}

#[test]
fn copy_of_the_build_directory_to_the_root_skips_git_and_previous_outputs() {
    let tmp = tempdir();
    let src = tmp.path().join("repo");
    std::fs::create_dir_all(src.join(".git")).unwrap();
    std::fs::create_dir_all(src.join("app")).unwrap();
    std::fs::write(src.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(src.join("app/main.py"), "print(1)\n").unwrap();
    std::fs::write(
        src.join("pinfold.kdl"),
        "pinfold 1\nepoch 0\nimage all {\n    from scratch\n    layer l {\n        copy \".\" to=\"/\"\n    }\n}\n",
    )
    .unwrap();
    let build = || Test::new().dir(&src).args(["build", "--no-cache"]).run().success().built();
    let first = build();
    // The second build sees the first one's pinfold-out beside the build file, and
    // must not take it in: the digest stays the same.
    assert!(src.join("pinfold-out/all").is_dir());
    assert_eq!(build(), first);
    let doc: serde_json::Value = serde_json::from_str(
        &Test::new().dir(&src).args(["inspect", "--json", "oci:pinfold-out/all"]).run().success().stdout(),
    )
    .unwrap();
    let layer =
        doc["manifests"][0]["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let listing = tool("tar", &["-tzf", src.join("pinfold-out/all/blobs/sha256").join(layer).to_str().unwrap()]);
    assert_eq!(listing, "app/\napp/main.py\npinfold.kdl\n");

    // Climbing out of the image with `to` is still an error.
    std::fs::write(
        src.join("pinfold.kdl"),
        "pinfold 1\nimage all {\n    from scratch\n    layer l {\n        copy \"app\" to=\"../../x\"\n    }\n}\n",
    )
    .unwrap();
    Test::new().dir(&src).args(["build", "--no-cache"]).run().code(2).stderr_contains("climbs out of the image");
}

#[test]
fn building_one_image_reads_and_fetches_nothing_for_the_others() {
    let tmp = tempdir();
    std::fs::write(tmp.path().join("hello.txt"), "hello\n").unwrap();
    // `other` copies a file that is not there, downloads from a port nothing listens
    // on and starts from a base whose layout is missing: all errors, when it is built.
    std::fs::write(
        tmp.path().join("pinfold.kdl"),
        r#"pinfold 1
epoch 1704067200
base gone {
    layout "no/such/layout"
    digest "sha256:0000000000000000000000000000000000000000000000000000000000000000"
}
download tool url="http://127.0.0.1:9/tool" sha256="0000000000000000000000000000000000000000000000000000000000000000"
image wanted {
    from scratch
    layer l { copy "hello.txt" to="/hello.txt" }
}
image other {
    from gone
    layer l {
        copy "missing.txt" to="/missing.txt"
        download tool to="/bin/tool"
    }
}
"#,
    )
    .unwrap();
    let ran = Test::new().dir(tmp.path()).args(["build", "wanted", "--no-cache", "--offline"]).run().success();
    assert_eq!(ran.built().len(), 1);
    // The whole file: every error of `other`, at once.
    Test::new()
        .dir(tmp.path())
        .args(["build", "--no-cache", "--offline"])
        .run()
        .code(2)
        .stderr_contains("no/such/layout")
        .stderr_contains("missing.txt")
        .stderr_contains("tool");
}

#[test]
fn an_image_from_another_image_of_the_file_is_that_image_with_its_own_layers_on_top() {
    let tmp = tempdir();
    let dir = tmp.path();
    std::fs::write(dir.join("tool"), "#!/bin/sh\necho tool\n").unwrap();
    let image = |name: &str, from: &str, layers: &str, config: &str| {
        format!("image {name} {{\n    from {from}\n{layers}{config}}}\n")
    };
    let tools_layer = "    layer bin { copy \"tool\" to=\"/bin/tool\" mode=0o755 }\n";
    let app_layer = "    layer app { file \"/app/hello\" \"hello\\n\" }\n";
    let text = format!(
        "pinfold 1\nepoch 1704067200\nplatforms \"linux/amd64\" \"linux/arm64\"\n{}{}{}",
        image("tools", "scratch", tools_layer, "    env PATH=\"/bin\"\n    entrypoint \"/bin/tool\"\n"),
        image("app", "tools", app_layer, "    cmd \"--hello\"\n"),
        // The same image written out by hand: the same bytes.
        image(
            "flat",
            "scratch",
            &format!("{tools_layer}{app_layer}"),
            "    env PATH=\"/bin\"\n    entrypoint \"/bin/tool\"\n    cmd \"--hello\"\n"
        ),
    );
    std::fs::write(dir.join("pinfold.kdl"), &text).unwrap();
    let cache = dir.join("cache");
    let built = Test::new().dir(dir).args(["build", "--cache-dir"]).arg(&cache).run().success().built();
    let digest = |name: &str| built.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(digest("app"), digest("flat"));
    assert_ne!(digest("app"), digest("tools"));
    // Building it alone plans the image it comes from too, and gives the same digest.
    let alone = Test::new().dir(dir).args(["build", "app", "--cache-dir"]).arg(&cache).run().success();
    assert_eq!(alone.built(), vec![("app".to_string(), digest("app"))]);

    // A cycle, and a parent without the child's platform, are reported at their spans.
    let cycle = "pinfold 1\nimage a {\n    from b\n}\nimage b {\n    from a\n}\n";
    std::fs::write(dir.join("cycle.kdl"), cycle).unwrap();
    Test::new()
        .dir(dir)
        .args(["build", "-f", "cycle.kdl"])
        .run()
        .code(2)
        .stderr_contains("a cycle: image `a` → image `b` → image `a`");
    let narrow = text.replacen("image tools {\n", "image tools {\n    platforms \"linux/amd64\"\n", 1);
    std::fs::write(dir.join("narrow.kdl"), narrow).unwrap();
    Test::new()
        .dir(dir)
        .args(["build", "-f", "narrow.kdl", "--cache-dir"])
        .arg(&cache)
        .run()
        .code(2)
        .stderr_contains("image `tools` is not built for linux/arm64, which image `app` is built for");
}
