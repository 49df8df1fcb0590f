//! A real compile as a step (`spec/steps.md`), end to end: gcc, in a Debian toolchain
//! image that the build file itself makes from a debootstrapped root file system,
//! compiles a small C program statically; a `from scratch` image holds only the
//! binary, and `pinfold run` runs it. A second build runs nothing, and a build with an
//! empty cache gives the same image digest.
//!
//! **Slow.** The first run on a machine debootstraps Debian bookworm with gcc (40–80 s,
//! about 80 MB of packages from the machine's own Debian mirror, as root), cached in
//! $PINFOLD_TEST_TOOLCHAIN (default /var/cache/pinfold-test-toolchain/bookworm-gcc,
//! 330 MB) for later runs; every run then packs that rootfs into a layer, unpacks it
//! for the runtime and compiles, twice (15–30 s in all on a shared two-core machine).
//! Test names start with `slow_`, so that a quick local loop can leave them out with
//! `cargo test -- --skip slow_`; CI runs them (the README's `cargo test --locked`).
//!
//! Tools these tests need are set up by scripts/setup-test-tools.sh. Outside CI a
//! missing tool skips the check with a note; under CI=true it fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

/// What the cached rootfs holds. A cache whose marker says anything else is made again,
/// so that changing this recipe never leaves a stale toolchain trusted.
const SUITE: &str = "bookworm";
const PACKAGES: &str = "gcc,libc6-dev";

/// The machine's Debian mirror for the suite, as its apt sources give it (no host is
/// written here). The recipe leaves it out: any mirror serves the same packages.
fn mirror() -> String {
    let sources = pinfold_debian::apt_sources(Path::new("/")).expect("the machine's apt sources are readable");
    sources
        .iter()
        .find(|s| s.suites.iter().any(|suite| suite == SUITE))
        .map(|s| s.uri.clone())
        .unwrap_or_else(|| panic!("no apt source of this machine serves {SUITE}"))
}

fn recipe() -> String {
    format!("debootstrap --variant=minbase --include={PACKAGES} {SUITE}\nwithout /dev/*, apt's caches and lists\n")
}

/// The marker beside the rootfs (not in it: it would end up in the image).
const MARKER: &str = "recipe";

fn toolchain_dir() -> PathBuf {
    std::env::var_os("PINFOLD_TEST_TOOLCHAIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/pinfold-test-toolchain/bookworm-gcc"))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Puts the toolchain rootfs at `dest`, debootstrapping it into the cache first when
/// the cache has none. `false` (after a note) outside CI when it cannot be made here.
fn place_toolchain(dest: &Path) -> bool {
    if !require_tool("debootstrap", &["--version"]) {
        return false;
    }
    if !is_root() {
        if in_ci() {
            panic!("debootstrap needs root, and CI must run this test as root");
        }
        eprintln!("note: debootstrap needs root; skipping outside CI");
        return false;
    }
    let dir = toolchain_dir();
    let parent = dir.parent().expect("the toolchain directory has a parent");
    std::fs::create_dir_all(parent).unwrap();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    // Held until the rootfs is placed: two test runs at once would both debootstrap,
    // and one that finds a stale recipe must not remove the tree another is linking.
    let lock = std::fs::File::create(parent.join(format!("{name}.lock"))).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();

    remove_temporaries(parent, &name);
    if std::fs::read_to_string(dir.join(MARKER)).ok().as_deref() != Some(recipe().as_str()) {
        if dir.exists() {
            eprintln!("note: {} holds another recipe; making it again", dir.display());
            std::fs::remove_dir_all(&dir).unwrap();
        }
        debootstrap(parent, &name, &dir);
    }
    place_rootfs(&dir.join("rootfs"), dest);
    drop(lock);
    true
}

/// Debootstraps the toolchain beside `dir` and renames it into place once complete,
/// so that a killed run leaves only a temporary, which a later run removes, never half
/// a rootfs that is trusted.
fn debootstrap(parent: &Path, name: &str, dir: &Path) {
    let prefix = format!(".{name}.tmp-");
    let tmp = parent.join(format!("{prefix}{}", std::process::id()));
    let rootfs = tmp.join("rootfs");
    eprintln!("note: debootstrapping {SUITE} with {PACKAGES} into {} (once per machine)", dir.display());
    let started = std::time::Instant::now();
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), SUITE])
        .arg(&rootfs)
        .arg(mirror())
        .output()
        .expect("debootstrap runs");
    if !out.status.success() {
        unmount_below(&tmp);
        let _ = std::fs::remove_dir_all(&tmp);
        panic!(
            "debootstrap failed (it needs the machine's Debian mirror):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("note: debootstrap took {:.0?}", started.elapsed());
    // Device nodes cannot be in a layer (pinfold::special-file), and the runtime
    // provides /dev anyway. apt's downloaded packages and lists are not the toolchain:
    // they only make the layer larger.
    for emptied in ["dev", "var/cache/apt/archives", "var/lib/apt/lists"] {
        for entry in std::fs::read_dir(rootfs.join(emptied)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    std::fs::write(tmp.join(MARKER), recipe()).unwrap();
    std::fs::rename(&tmp, dir).unwrap();
}

/// Removes what killed runs left while debootstrapping (they are never trusted, but
/// they take hundreds of megabytes).
fn remove_temporaries(parent: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    for stale in std::fs::read_dir(parent).unwrap().filter_map(|e| e.ok()) {
        if stale.file_name().to_string_lossy().starts_with(&prefix) {
            eprintln!("note: removing {}, left by a run that was killed", stale.path().display());
            unmount_below(&stale.path());
            // Best effort: a debootstrap orphaned by a killed run may still write there.
            let _ = std::fs::remove_dir_all(stale.path());
        }
    }
}

/// Unmounts what a killed debootstrap left mounted below `dir` (its /proc and /sys),
/// deepest first, so that removing the tree never reaches into them.
fn unmount_below(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else { return };
    let mut points: Vec<&str> =
        mounts.lines().filter_map(|l| l.split(' ').nth(1)).filter(|p| Path::new(p).starts_with(dir)).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount").arg("-l").arg(point).status();
    }
}

/// Puts the toolchain rootfs below the build file: hard links when the cache is on the
/// same file system (instant, and nothing is written through them), else a copy.
fn place_rootfs(rootfs: &Path, dest: &Path) {
    let linked = Command::new("cp").arg("-al").arg(rootfs).arg(dest).status().is_ok_and(|s| s.success());
    if !linked {
        if dest.exists() {
            std::fs::remove_dir_all(dest).unwrap();
        }
        tool("cp", &["-a", rootfs.to_str().unwrap(), dest.to_str().unwrap()]);
    }
}

const BUILD_FILE: &str = r#"pinfold 1
epoch 1704067200

// The toolchain: a debootstrapped Debian with gcc, packed as it is. Uncompressed: it
// never leaves the machine, and gzip would add seconds to every cold build of it.
image toolchain {
    from scratch
    compression "none"
    layer root { copy "rootfs" to="/" }
}

step hello {
    image toolchain
    inputs "hello.c"
    run "gcc" "-static" "-O2" "-o" "hello" "hello.c"
    outputs "hello"
}

image app {
    from scratch
    layer bin { copy step=hello "hello" to="/hello" mode=0o755 }
    cmd "/hello"
}
"#;

// __DATE__ and __TIME__ show that the step's SOURCE_DATE_EPOCH (the epoch above,
// 2024-01-01 00:00:00 UTC) reached gcc: without it they would be the time of the build.
const HELLO_C: &str = r#"#include <stdio.h>

int main(void) {
    printf("hello from gcc %d, built %s %s\n", __GNUC__, __DATE__, __TIME__);
    return 0;
}
"#;

/// The `step NAME: ran|cached` lines of a build.
fn step_lines(ran: &Ran) -> Vec<String> {
    ran.stderr().lines().filter(|l| l.starts_with("step ")).map(str::to_string).collect()
}

#[test]
fn slow_a_c_program_compiled_by_gcc_in_a_debootstrapped_toolchain_runs_from_scratch() {
    if !require_tool("runc", &["--version"]) {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    if !place_toolchain(&src.join("rootfs")) {
        return;
    }
    std::fs::write(src.join("pinfold.kdl"), BUILD_FILE).unwrap();
    std::fs::write(src.join("hello.c"), HELLO_C).unwrap();
    let cache = tmp.path().join("cache");
    let pinfold = |cache: &Path| Test::new().dir(&src).env("PINFOLD_CACHE_DIR", cache);

    let ran = pinfold(&cache).args(["build", "app"]).run().success();
    assert_eq!(step_lines(&ran), ["step hello: ran"]);
    let built = ran.built();
    assert_eq!(built.len(), 1, "{built:?}");
    assert_eq!(built[0].0, "app");
    let digest = built[0].1.clone();

    // Only the binary is in the image, so it runs because it is static.
    let ran = pinfold(&cache).args(["run", "app"]).run().success();
    assert_eq!(ran.stdout(), "hello from gcc 12, built Jan  1 2024 00:00:00\n");

    // Nothing changed: nothing runs, no layer is built, the same image.
    let ran = pinfold(&cache).args(["build", "app"]).run().success();
    assert_eq!(step_lines(&ran), ["step hello: cached"]);
    let ran = ran.stderr_contains("0 layer(s) built");
    assert_eq!(ran.built()[0].1, digest);

    // From an empty cache, gcc runs again and makes the same bytes.
    let ran = pinfold(&tmp.path().join("empty-cache")).args(["build", "app", "-o", "oci:again"]).run().success();
    assert_eq!(step_lines(&ran), ["step hello: ran"]);
    assert_eq!(ran.built()[0].1, digest, "the image differs when built from an empty cache");
}
