//! Hostile inputs through the real binary (issue 13): each test builds one hostile
//! input, keeps a victim file or directory outside the root in a temporary directory,
//! and checks that pinfold exits 2 (125 for run) naming the entry, and that the
//! victim is unchanged. Lower-level variants are unit tests beside the code
//! (`pinfold_image::rooted`, `input::extract`, `pinfold_sandbox::rootfs`,
//! `pinfold_registry::pull`).

use std::path::Path;
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
