//! The promise itself: the same sources built on "two machines" give the same bytes.
//! The two builds differ in every way the host can leak in: directory, file mtimes,
//! permissions as a umask leaves them, creation order, TZ, locale, umask of the
//! process, thread count, and a cold cache each.

use crate::harness::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

fn perturb(dir: &Path, mtime: SystemTime, group_other: bool) {
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.unwrap();
        if e.file_type().is_symlink() {
            continue;
        }
        let meta = e.metadata().unwrap();
        let mode = meta.permissions().mode();
        // umask 022 versus 077: only the group and other bits differ.
        let new_mode = if group_other { mode | 0o044 } else { mode & !0o077 };
        std::fs::set_permissions(
            e.path(),
            std::fs::Permissions::from_mode(new_mode | if e.file_type().is_dir() { 0o700 } else { 0 }),
        )
        .unwrap();
        if e.file_type().is_file() {
            std::fs::File::options().write(true).open(e.path()).unwrap().set_modified(mtime).unwrap();
        }
    }
}

fn build_in(dir: &Path, out: &Path, env: &[(&str, &str)], umask: &str) {
    let script = format!(
        "umask {umask} && exec \"$0\" build --cache-dir \"$1\" -f \"$2\" static -o \"oci-archive:$3\" && exec true"
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg(pinfold_bin())
        .arg(dir.join("cache"))
        .arg(dir.join("src/pinfold.kdl"))
        .arg(out)
        .current_dir(dir)
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().unwrap();
    assert!(status.success());
}

#[test]
fn two_differently_prepared_trees_build_byte_identical_outputs() {
    let a = tempdir();
    let b = tempdir();
    copy_tree(&fixture("build/static"), &a.path().join("src"), false);
    copy_tree(&fixture("build/static"), &b.path().join("src"), true);
    perturb(&a.path().join("src"), SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000), true);
    perturb(&b.path().join("src"), SystemTime::now(), false);
    let out_a = a.path().join("out.tar");
    let out_b = b.path().join("nested/dir/out.tar");
    build_in(a.path(), &out_a, &[("TZ", "UTC"), ("LC_ALL", "C"), ("RAYON_NUM_THREADS", "1")], "022");
    build_in(
        b.path(),
        &out_b,
        &[
            ("TZ", "Asia/Kathmandu"),
            ("LC_ALL", "de_DE.UTF-8"),
            ("LANG", "tr_TR.UTF-8"),
            ("RAYON_NUM_THREADS", "4"),
            ("PINFOLD_UNUSED", "x"),
        ],
        "077",
    );
    let bytes_a = std::fs::read(&out_a).unwrap();
    let bytes_b = std::fs::read(&out_b).unwrap();
    assert!(bytes_a == bytes_b, "oci-archive outputs differ ({} vs {} bytes)", bytes_a.len(), bytes_b.len());
}
