//! A real compile as a step (`spec/steps.md`), end to end: gcc, in a Debian toolchain
//! image that the build file itself makes from a debootstrapped root file system,
//! compiles a small C program statically; a `from scratch` image holds only the
//! binary, and `pinfold run` runs it. A second build runs nothing, and a build with an
//! empty cache gives the same image digest.
//!
//! **Slow.** The first run on a machine debootstraps Debian bookworm with gcc (about a
//! minute and 200 MB from deb.debian.org, as root), cached in $PINFOLD_TEST_TOOLCHAIN
//! (default /var/cache/pinfold-test-toolchain/bookworm-gcc) for later runs; every run
//! then packs that rootfs into a layer and compiles. Test names start with `slow_`, so
//! that a quick local loop can leave them out with `cargo test -- --skip slow_`; CI
//! runs them (the README's `cargo test --locked`).
//!
//! Tools these tests need are set up by scripts/setup-test-tools.sh. Outside CI a
//! missing tool skips the check with a note; under CI=true it fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "it/harness.rs"]
mod harness;
use harness::*;

/// What the cached rootfs holds. A cache whose marker says anything else is made again,
/// so that changing this recipe never leaves a stale toolchain trusted.
const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
const PACKAGES: &str = "gcc,libc6-dev";

fn recipe() -> String {
    format!(
        "debootstrap --variant=minbase --include={PACKAGES} {SUITE} {MIRROR}\nwithout /dev/*, apt's caches and lists\n"
    )
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

/// The cached toolchain rootfs, debootstrapped first when there is none. `None` (after
/// a note) outside CI when it cannot be made here.
fn toolchain_rootfs() -> Option<PathBuf> {
    if !require_tool("debootstrap", &["--version"]) {
        return None;
    }
    if !is_root() {
        if in_ci() {
            panic!("debootstrap needs root, and CI must run this test as root");
        }
        eprintln!("note: debootstrap needs root; skipping outside CI");
        return None;
    }
    let dir = toolchain_dir();
    let parent = dir.parent().expect("the toolchain directory has a parent");
    std::fs::create_dir_all(parent).unwrap();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    // Two test runs at once would both debootstrap: the second waits for the first.
    let lock = std::fs::File::create(parent.join(format!("{name}.lock"))).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();

    if std::fs::read_to_string(dir.join(MARKER)).ok().as_deref() == Some(recipe().as_str()) {
        return Some(dir.join("rootfs"));
    }
    if dir.exists() {
        eprintln!("note: {} holds another recipe; making it again", dir.display());
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // Made beside its place and renamed into it once complete, so that a killed run
    // leaves only a temporary that the next run removes, never half a rootfs.
    let tmp = parent.join(format!(".{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).unwrap();
    }
    let rootfs = tmp.join("rootfs");
    eprintln!("note: debootstrapping {SUITE} with {PACKAGES} into {} (once per machine)", dir.display());
    let started = std::time::Instant::now();
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), SUITE])
        .arg(&rootfs)
        .arg(MIRROR)
        .output()
        .expect("debootstrap runs");
    assert!(
        out.status.success(),
        "debootstrap failed (it needs deb.debian.org):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
    std::fs::rename(&tmp, &dir).unwrap();
    Some(dir.join("rootfs"))
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
    let Some(rootfs) = toolchain_rootfs() else { return };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("pinfold.kdl"), BUILD_FILE).unwrap();
    std::fs::write(src.join("hello.c"), HELLO_C).unwrap();
    place_rootfs(&rootfs, &src.join("rootfs"));
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
