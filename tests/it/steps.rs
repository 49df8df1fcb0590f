//! Make-style steps end to end (`spec/steps.md`): steps run in a busybox image built
//! by the same build file (Debian's busybox-static, in $PINFOLD_TEST_DEBS), feed each
//! other and an image that `pinfold run` then runs; only what changed runs again; the
//! sandbox shows a step its declared inputs and nothing else of the repository, no
//! network, and a fixed environment; a failing step stops the build and leaves the
//! cache alone; a step that writes the date is caught by `pinfold build --check`.
//!
//! Tools these tests need are set up by scripts/setup-test-tools.sh. Outside CI a
//! missing tool skips the check with a note; under CI=true it fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::*;

/// The `step NAME: ran|cached` lines of a build, as (name, outcome), sorted by name.
trait StepLines {
    fn steps(&self) -> Vec<(String, String)>;
}

impl StepLines for Ran {
    fn steps(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .stderr()
            .lines()
            .filter_map(|l| l.strip_prefix("step "))
            .filter_map(|l| l.split_once(": "))
            .filter(|(_, outcome)| ["ran", "cached"].contains(outcome))
            .map(|(n, o)| (n.to_string(), o.to_string()))
            .collect();
        out.sort();
        out
    }
}

/// A checkout of `fixtures/steps` with busybox beside the build files, and a cache of
/// its own.
struct Fixture {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    cache: PathBuf,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        if !require_tool("runc", &["--version"]) {
            return None;
        }
        let tmp = tempfile::Builder::new().prefix("pinfold-steps-test-").tempdir().unwrap();
        let src = tmp.path().join("src");
        copy_dir(&fixture("steps"), &src);
        busybox("amd64", &src.join("busybox-amd64"))?;
        let cache = tmp.path().join("cache");
        Some(Fixture { _tmp: tmp, src, cache })
    }

    fn pinfold(&self) -> Test {
        Test::new().dir(&self.src).env("PINFOLD_CACHE_DIR", &self.cache)
    }

    fn write(&self, path: &str, text: &str) {
        std::fs::write(self.src.join(path), text).unwrap();
    }

    /// Entries of the cache's step store.
    fn stored_steps(&self) -> usize {
        std::fs::read_dir(self.cache.join("steps"))
            .map(|d| d.filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir())).count())
            .unwrap_or(0)
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    v.sort();
    v
}

const REPORT: &str = "> HELLO WORLD\n> STEPS RUN HERMETICALLY\n> SECOND FILE\n5 words\nreport.txt\n";

#[test]
fn steps_transform_inputs_feed_each_other_and_the_image_runs_their_result() {
    let Some(f) = Fixture::new() else { return };
    let ran = f.pinfold().args(["build", "app"]).run().success();
    assert_eq!(ran.steps(), pairs(&[("upper", "ran"), ("count", "ran"), ("report", "ran")]));
    ran.stderr_contains("pinfold: 3 step(s) ran, 0 from the cache");
    // The image holds the report made by `report` from the outputs of `upper` and
    // `count`, and the listing of the tar it made.
    let ran = f.pinfold().args(["run", "app"]).run().success();
    assert_eq!(ran.stdout(), REPORT);
    assert_eq!(ran.steps(), pairs(&[("upper", "cached"), ("count", "cached"), ("report", "cached")]));
    // A step by name: it and what it needs, nothing else.
    f.write("src/a.txt", "changed\n");
    let ran = f.pinfold().args(["build", "upper"]).run().success();
    assert_eq!(ran.steps(), pairs(&[("upper", "ran")]));
    assert_eq!(ran.stdout(), "");
    // `pinfold build tools` needs no step.
    let ran = f.pinfold().args(["build", "tools"]).run().success();
    assert!(ran.steps().is_empty(), "{:?}", ran.steps());
    // The steps are reproducible: two builds under perturbed conditions agree.
    f.write("src/a.txt", "hello world\nsteps run hermetically\n");
    f.pinfold().args(["build", "--check", "app"]).run().success().stderr_contains("2 builds agree");
}

#[test]
fn only_the_steps_that_depend_on_a_changed_input_run_again() {
    let Some(f) = Fixture::new() else { return };
    // One at a time (-j 1): the same outputs as in parallel.
    f.pinfold().args(["build", "-j", "1", "app"]).run().success();
    let first = std::fs::read(f.src.join("pinfold-out/app/index.json")).unwrap();

    // An unchanged tree runs nothing and builds no layer.
    let ran = f.pinfold().args(["build", "app"]).run().success();
    assert_eq!(ran.steps(), pairs(&[("upper", "cached"), ("count", "cached"), ("report", "cached")]));
    ran.stderr_contains("0 layer(s) built");
    assert_eq!(std::fs::read(f.src.join("pinfold-out/app/index.json")).unwrap(), first);

    // Touching a file (new mtime, same content) changes nothing either.
    let words = std::fs::File::options().write(true).open(f.src.join("data/words.txt")).unwrap();
    words.set_modified(std::time::SystemTime::now()).unwrap();
    drop(words);
    let ran = f.pinfold().args(["build", "app"]).run().success();
    assert_eq!(ran.steps(), pairs(&[("upper", "cached"), ("count", "cached"), ("report", "cached")]));

    // A file no step declares: nothing runs. (--quiet: not even the lines.)
    f.write("src/notes.md", "edited, and not an input\n");
    let ran = f.pinfold().args(["build", "app"]).run().success();
    assert_eq!(ran.steps(), pairs(&[("upper", "cached"), ("count", "cached"), ("report", "cached")]));
    let ran = f.pinfold().args(["build", "--quiet", "app"]).run().success();
    assert!(!ran.stderr().contains("step"), "{}", ran.stderr());

    // An input of `count`: it runs, and `report` which consumes it; `upper` does not.
    // --verbose shows what the step printed.
    f.write("data/words.txt", "one two three\nfour five six\n");
    let ran = f.pinfold().args(["build", "--verbose", "app"]).run().success();
    assert_eq!(ran.steps(), pairs(&[("upper", "cached"), ("count", "ran"), ("report", "ran")]));
    ran.stderr_contains("step count: ran\n  | counted 6 words\n");
    let ran = f.pinfold().args(["run", "app"]).run().success();
    assert!(ran.stdout().contains("6 words\n"), "{}", ran.stdout());

    // A new file matching `upper`'s glob: `upper` and `report` run, `count` does not.
    f.write("src/c.txt", "third\n");
    let ran = f.pinfold().args(["build", "app"]).run().success();
    assert_eq!(ran.steps(), pairs(&[("upper", "ran"), ("count", "cached"), ("report", "ran")]));
    let ran = f.pinfold().args(["run", "app"]).run().success();
    assert!(ran.stdout().contains("> THIRD\n"), "{}", ran.stdout());

    // A change that leaves `count`'s output as it was: `report` finds its inputs
    // unchanged and does not run.
    f.write("data/words.txt", "six words on a single line\n");
    let ran = f.pinfold().args(["build", "app"]).run().success();
    assert_eq!(ran.steps(), pairs(&[("upper", "cached"), ("count", "ran"), ("report", "cached")]));
}

#[test]
fn the_sandbox_shows_only_declared_inputs_no_network_and_a_fixed_environment() {
    let Some(f) = Fixture::new() else { return };
    f.pinfold().args(["build", "-f", "sandbox.kdl", "probe"]).run().success();
    let cat = |path: &str| f.pinfold().args(["run", "-f", "sandbox.kdl", "probe", "--", path]).run().success().stdout();
    // The work directory holds the declared input, and secret.txt, which lies beside
    // it in the repository, is nowhere in the step's file system.
    assert_eq!(cat("/seen/listing.txt"), ".\n..\nallowed.txt\nlisting.txt\n");
    assert_eq!(cat("/seen/found.txt"), "");
    assert_eq!(cat("/seen/pwd.txt"), "/work\n");
    // No network: only loopback.
    let net = cat("/seen/net.txt");
    assert!(net.starts_with("unreachable\n"), "{net}");
    let interfaces: Vec<&str> = net.lines().skip(3).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(interfaces, ["lo"], "{net}");
    // A fixed environment: the image's PATH, the epoch, UTC, C, the platform.
    let env = cat("/seen/env.txt");
    for line in [
        "EXTRA=set by the step",
        "HOME=/tmp",
        "LC_ALL=C",
        "PATH=/bin",
        "PWD=/build",
        "SOURCE_DATE_EPOCH=1704067200",
        "TARGETARCH=amd64",
        "TARGETOS=linux",
        "TARGETPLATFORM=linux/amd64",
        "TZ=UTC",
    ] {
        assert!(env.lines().any(|l| l == line), "{line:?} not in the step's environment:\n{env}");
    }
    assert_eq!(cat("/seen/host.txt"), "pinfold\n");
    // Inputs and their directories have fixed modes and the epoch as their time,
    // whatever the umask and the checkout's times: archiving them is reproducible.
    let times = cat("/seen/times.txt");
    let lines: Vec<&str> = times.lines().collect();
    assert_eq!(lines.len(), 5, "{times}");
    for line in &lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1], "1704067200", "not the epoch: {line}\n{times}");
        let mode = fields[0];
        assert!(["drwxr-xr-x", "-rw-r--r--"].contains(&mode), "{line}");
    }
}

#[test]
fn a_step_runs_for_each_platform_that_needs_it_the_foreign_one_under_qemu() {
    let Some(f) = Fixture::new() else { return };
    if busybox("arm64", &f.src.join("busybox-arm64")).is_none() || !arm64_runs() {
        return;
    }
    let ran = f.pinfold().args(["build", "-f", "platforms.kdl", "app"]).run().success();
    assert_eq!(
        ran.steps(),
        pairs(&[
            ("machine (linux/amd64)", "ran"),
            ("machine (linux/arm64)", "ran"),
            ("cross (linux/amd64)", "ran"),
            ("cross (linux/arm64)", "ran"),
            ("once", "ran"),
        ])
    );
    // Each platform's image holds what its own runs made: the arm64 run of `machine`
    // ran arm64 busybox (under qemu-user), `cross` ran amd64 busybox for both targets,
    // `once` ran once, for amd64, and both images took its output.
    let shown = |platform: &str| {
        f.pinfold().args(["run", "-f", "platforms.kdl", "--platform", platform, "app"]).run().success().stdout()
    };
    assert_eq!(
        shown("linux/amd64"),
        "for linux/amd64 on x86_64 (linux/amd64)\n\
         amd64 made on x86_64 after: for linux/amd64 on x86_64 (linux/amd64)\n\
         once, for amd64\n"
    );
    assert_eq!(
        shown("linux/arm64"),
        "for linux/arm64 on aarch64 (linux/arm64)\n\
         arm64 made on x86_64 after: for linux/arm64 on aarch64 (linux/arm64)\n\
         once, for amd64\n"
    );
    // Nothing runs again; with --platform only the runs for that platform are needed.
    let ran = f.pinfold().args(["build", "-f", "platforms.kdl", "app"]).run().success();
    assert!(ran.steps().iter().all(|(_, outcome)| outcome == "cached"), "{:?}", ran.steps());
    let ran = f.pinfold().args(["build", "-f", "platforms.kdl", "--platform", "linux/arm64", "app"]).run().success();
    assert_eq!(
        ran.steps(),
        pairs(&[("machine (linux/arm64)", "cached"), ("cross (linux/arm64)", "cached"), ("once", "cached")]),
        "with --platform, only the runs that platform needs"
    );
}

#[test]
fn a_cached_step_output_changed_after_the_step_made_it_is_not_used() {
    let Some(f) = Fixture::new() else { return };
    let first = f.pinfold().args(["build", "app"]).run().success();
    // Edit the stored count.txt of `count` (as a step's output, it is in the cache).
    let stored: Vec<PathBuf> = std::fs::read_dir(f.cache.join("steps"))
        .unwrap()
        .map(|e| e.unwrap().path().join("count.txt"))
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    std::fs::write(&stored[0], "5000 words\n").unwrap();
    let second =
        f.pinfold().args(["build", "app"]).run().success().stderr_contains("were changed after the step made them");
    assert_eq!(second.steps(), pairs(&[("upper", "cached"), ("count", "ran"), ("report", "cached")]));
    assert_eq!(second.stdout(), first.stdout());
    let third = f.pinfold().args(["build", "app"]).run().success();
    assert!(!third.stderr().contains("warning"), "{}", third.stderr());
    assert_eq!(third.steps(), pairs(&[("upper", "cached"), ("count", "cached"), ("report", "cached")]));
}

/// Flips the last byte of `path` and puts its modification time back, as bit rot or
/// a restore that kept times would: nothing in its metadata tells.
fn rot(path: &Path) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(path, &bytes).unwrap();
    std::fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
}

#[test]
fn cache_verify_reads_everything_and_removes_what_rotted() {
    let Some(f) = Fixture::new() else { return };
    let first = f.pinfold().args(["build", "app"]).run().success();
    f.pinfold().args(["cache", "verify"]).run().success().stderr_contains("0 problem(s)");
    // Rot one blob, keeping its size and time: builds trust it (reading every blob on
    // every build would cost more than the cache saves; the ctime that the write
    // changed is not part of a blob's stamp, as every build's hard links change it).
    let blobs = f.cache.join("blobs/sha256");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&blobs).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let blob = names.last().unwrap().clone();
    rot(&blob);
    let unnoticed = f.pinfold().args(["build", "app"]).run().success().stderr_contains("0 layer(s) built");
    assert!(!unnoticed.stderr().contains("warning"), "{}", unnoticed.stderr());
    // And a step output.
    let count = std::fs::read_dir(f.cache.join("steps"))
        .unwrap()
        .map(|e| e.unwrap().path().join("count.txt"))
        .find(|p| p.is_file())
        .unwrap();
    rot(&count);
    // verify finds both, names them, removes them, and says no (exit 1).
    let blob_name = blob.file_name().unwrap().to_str().unwrap().to_string();
    f.pinfold()
        .args(["cache", "verify"])
        .run()
        .code(1)
        .stderr_contains(&format!("the blob sha256:{blob_name} hashes to sha256:"))
        .stderr_contains("are not what the step made")
        .stderr_contains("2 problem(s)");
    assert!(!blob.exists() && !count.exists());
    // The next build makes them again, the same; then all is well.
    let again = f.pinfold().args(["build", "app"]).run().success();
    assert_eq!(again.stdout(), first.stdout());
    assert!(again.steps().contains(&("count".to_string(), "ran".to_string())), "{:?}", again.steps());
    assert!(blob.exists());
    f.pinfold().args(["cache", "verify"]).run().success().stderr_contains("0 problem(s)");
}

#[test]
fn a_failing_step_stops_the_build_with_its_output_and_stores_nothing() {
    let Some(f) = Fixture::new() else { return };
    let ran = f
        .pinfold()
        .args(["build", "-f", "failing.kdl", "broken"])
        .run()
        .code(2)
        .stderr_contains("step `fails`")
        .stderr_contains("exited with code 3")
        .stderr_contains("to-stdout")
        .stderr_contains("to-stderr");
    assert!(ran.steps().is_empty(), "{:?}", ran.steps());
    assert!(!f.src.join("pinfold-out/broken").exists());
    assert_eq!(f.stored_steps(), 0);
    f.pinfold()
        .args(["build", "-f", "failing.kdl", "partial"])
        .run()
        .code(2)
        .stderr_contains("step `incomplete`")
        .stderr_contains("did not make the declared output `nope.txt`");
    assert!(!f.src.join("pinfold-out/partial").exists());
    assert_eq!(f.stored_steps(), 0);
    // `pinfold build` with no name runs every step: both fail, side by side, and both
    // are reported.
    f.pinfold()
        .args(["build", "-f", "failing.kdl"])
        .run()
        .code(2)
        .stderr_contains("step `fails`")
        .stderr_contains("step `incomplete`");
    assert_eq!(f.stored_steps(), 0);
    // No work directory is left behind either.
    let left: Vec<_> = std::fs::read_dir(f.cache.join("tmp")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_step_that_writes_the_date_is_caught_by_check() {
    let Some(f) = Fixture::new() else { return };
    f.pinfold()
        .args(["build", "-f", "stamp.kdl", "--check", "stamped"])
        .run()
        .code(1)
        .stdout_contains("stamped is not reproducible")
        .stdout_contains("/stamp.txt  content");
}

#[test]
fn cycles_and_wrong_references_are_reported_at_their_spans() {
    // Planning fails before anything runs: no runtime or busybox needed.
    let tmp = tempfile::Builder::new().prefix("pinfold-steps-test-").tempdir().unwrap();
    std::fs::copy(fixture("steps/cycle.kdl"), tmp.path().join("pinfold.kdl")).unwrap();
    let ran = Test::new()
        .dir(tmp.path())
        .env("PINFOLD_CACHE_DIR", tmp.path().join("cache"))
        .args(["build"])
        .run()
        .code(2)
        .stderr_contains("a cycle: step `a` → step `b` → step `a`")
        .stderr_contains("step `a` needs step `b`")
        .stderr_contains("step `b` needs step `a`")
        .stderr_contains("a cycle: image `maker` → step `c` → image `maker`")
        .stderr_contains("no step is named `d`")
        .stderr_contains("step `c` declares no output `missing.txt`")
        .stderr_contains("step `no-command` has no command")
        .stderr_contains("no base or image is named `nothing`")
        .stderr_contains("6 error(s) in the build file");
    assert!(ran.stderr().contains("cycle.kdl") || ran.stderr().contains("pinfold.kdl:7:12"), "{}", ran.stderr());
    assert!(!tmp.path().join("pinfold-out").exists());
}

#[test]
fn graph_prints_what_each_step_and_image_needs_as_text_and_dot() {
    let dir = fixture("steps");
    let ran = Test::new().dir(&dir).args(["graph", "app"]).run().success();
    let text = ran.stdout();
    // Each node after what it needs.
    let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in:\n{text}"));
    assert!(at("image `tools`") < at("step `upper`"));
    assert!(at("step `upper`") < at("step `report`") && at("step `count`") < at("step `report`"));
    assert!(at("step `report`") < at("image `app`"));
    assert!(
        text.contains("step `count`\n  reads data/words.txt\n  makes count.txt\n  needs image `tools`\n"),
        "{text}"
    );
    assert!(text.contains("image `app`\n  needs step `report`\n"), "{text}");
    // Only what the named node needs.
    let ran = Test::new().dir(&dir).args(["graph", "count"]).run().success();
    assert!(!ran.stdout().contains("upper"), "{}", ran.stdout());

    let ran = Test::new().dir(&dir).args(["graph", "--dot"]).run().success();
    let dot = ran.stdout();
    assert!(dot.starts_with("digraph pinfold {\n"), "{dot}");
    for edge in [
        "\"step:upper\" -> \"step:report\";",
        "\"step:report\" -> \"image:app\";",
        "\"image:tools\" -> \"step:count\";",
    ] {
        assert!(dot.contains(edge), "{edge} not in:\n{dot}");
    }
    Test::new()
        .dir(&dir)
        .args(["graph", "-f", "cycle.kdl"])
        .run()
        .code(2)
        .stderr_contains("a cycle: step `a` → step `b` → step `a`");
}

#[test]
fn cache_gc_keeps_the_cache_under_a_size_and_clean_removes_the_outputs() {
    let Some(f) = Fixture::new() else { return };
    f.pinfold().args(["build", "app"]).run().success();
    assert_eq!(f.stored_steps(), 3);
    // Without a size: only leftovers go; everything is still a hit.
    f.pinfold().args(["cache", "gc"]).run().success().stderr_contains("removed 0 step output(s) and 0 layer(s)");
    let ran = f.pinfold().args(["build", "app"]).run().success();
    assert_eq!(ran.steps(), pairs(&[("upper", "cached"), ("count", "cached"), ("report", "cached")]));
    // A size of nothing: every step output and layer goes, and the next build makes
    // them again, the same.
    let digest = ran.stdout();
    f.pinfold().args(["cache", "gc", "--max-size", "0"]).run().success().stderr_contains("removed 3 step output(s)");
    assert_eq!(f.stored_steps(), 0);
    let ran = f.pinfold().args(["build", "app"]).run().success();
    assert_eq!(ran.steps(), pairs(&[("upper", "ran"), ("count", "ran"), ("report", "ran")]));
    assert_eq!(ran.stdout(), digest);
    f.pinfold().args(["cache", "gc", "--max-size", "lots"]).run().code(2).stderr_contains("--max-size");

    assert!(f.src.join("pinfold-out/app").is_dir());
    f.pinfold().args(["clean"]).run().success();
    assert!(!f.src.join("pinfold-out").exists());
    f.pinfold().args(["clean"]).run().success();
}

#[test]
fn cache_gc_waits_for_a_running_build_and_the_build_keeps_what_it_uses() {
    let Some(f) = Fixture::new() else { return };
    let build = f.pinfold().args(["build", "-f", "progress.kdl", "shown"]).spawn();
    // Once the step is running (its work directory is in the cache's tmp), collect
    // everything: gc must wait until the build is done with the cache.
    let started = std::time::Instant::now();
    while std::fs::read_dir(f.cache.join("tmp")).map_or(true, |d| d.count() == 0) {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the step never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut build = Some(build);
    let gc = f.pinfold().args(["cache", "gc", "--max-size", "0"]).spawn();
    let gc = gc.wait_with_output().unwrap();
    // gc got the lock only when the build let go of the cache, at its end.
    let build = build.take().unwrap().wait_with_output().unwrap();
    let built = Ran::from_output(build, "the build beside gc").success();
    assert_eq!(built.steps(), pairs(&[("slow", "ran")]));
    let gc = Ran::from_output(gc, "pinfold cache gc").success();
    gc.stderr_contains("waiting for the cache").stderr_contains("removed 1 step output(s)");
    assert_eq!(f.stored_steps(), 0);
    // The image the build wrote is whole (its blobs are in the output, not the cache).
    f.pinfold().args(["build", "-f", "progress.kdl", "shown"]).run().success();
}

#[test]
fn two_builds_at_once_share_the_cache_and_agree() {
    let Some(f) = Fixture::new() else { return };
    let spawn = |out: &str| {
        Command::new(pinfold_bin())
            .current_dir(&f.src)
            .env("PINFOLD_CACHE_DIR", &f.cache)
            .env_remove("SOURCE_DATE_EPOCH")
            .args(["build", "app", "-o", out])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("oci:out-a"), spawn("oci:out-b"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for out in [&a, &b] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(a.stdout, b.stdout);
    // Whoever stored a step's outputs first, one entry per step, complete.
    assert_eq!(f.stored_steps(), 3);
    let ran = f.pinfold().args(["build", "app"]).run().success();
    assert_eq!(ran.steps(), pairs(&[("upper", "cached"), ("count", "cached"), ("report", "cached")]));
    assert_eq!(ran.stdout(), String::from_utf8_lossy(&a.stdout));
    let left: Vec<_> = std::fs::read_dir(f.cache.join("tmp")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn inputs_that_lead_out_of_the_repository_are_refused() {
    // Planning fails before anything runs: no runtime or busybox needed.
    let tmp = tempfile::Builder::new().prefix("pinfold-steps-test-").tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("passwd"), "not yours\n").unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::os::unix::fs::symlink(&outside, repo.join("vendor")).unwrap();
    std::fs::write(
        repo.join("pinfold.kdl"),
        "pinfold 1\nimage tools { from scratch }\n\
         step s {\n image tools\n inputs \"vendor/passwd\"\n inputs \"nothing/*.c\"\n inputs \"../outside/passwd\"\n \
         run \"true\"\n outputs \"x\"\n}\n",
    )
    .unwrap();
    Test::new()
        .dir(&repo)
        .env("PINFOLD_CACHE_DIR", tmp.path().join("cache"))
        .args(["build", "s"])
        .run()
        .code(2)
        .stderr_contains("`vendor/passwd` resolves outside the build file's directory")
        .stderr_contains("`nothing/*.c` matches no file")
        .stderr_contains("the input `../outside/passwd` must be a relative path without `..`");
}

/// Whether `script` (util-linux), which gives pinfold a pseudo-terminal, can be used.
fn script_available() -> bool {
    require_tool("script", &["--version"])
}

#[test]
fn lines_off_a_terminal_have_no_escape_sequences_and_bars_never_reach_stdout() {
    let Some(f) = Fixture::new() else { return };
    // Not a terminal (a pipe, as in CI): the plain lines, layers among them under -v.
    let ran = f.pinfold().args(["build", "-v", "-f", "progress.kdl"]).run().success();
    let err = ran.stderr();
    assert!(!err.contains('\x1b'), "escape sequences off a terminal:\n{err:?}");
    assert_eq!(ran.steps(), pairs(&[("slow", "ran")]));
    let ran = ran
        .stderr_contains("step slow: ran\n  | done sleeping\n")
        .stderr_contains("layer tools/busybox: built\n")
        .stderr_contains("layer shown/out: built\n");
    let plain = ran.stdout();
    // Without -v, layers have no line.
    let ran = f.pinfold().args(["build", "-f", "progress.kdl"]).run().success();
    assert!(!ran.stderr().contains("layer "), "{}", ran.stderr());
    assert_eq!(ran.steps(), pairs(&[("slow", "cached")]));
    // Bars forced onto a pipe: all of them on stderr, stdout as it was.
    let ran = f.pinfold().args(["build", "--progress", "tty", "-f", "progress.kdl"]).run().success();
    assert!(ran.stderr().contains('\x1b'), "no bars were drawn:\n{:?}", ran.stderr());
    let ran = ran.stderr_contains("step slow: cached");
    assert_eq!(ran.stdout(), plain);
    assert!(!ran.stdout().contains('\x1b'));
}

#[test]
fn on_a_terminal_the_build_draws_spinners_and_a_summary_then_clears_them() {
    let Some(f) = Fixture::new() else { return };
    if !script_available() {
        return;
    }
    // `script` runs the build on a pseudo-terminal and copies what it draws, stdout and
    // stderr alike, to its own stdout.
    let command = format!("'{}' build -f progress.kdl", pinfold_bin().display());
    let out = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .current_dir(&f.src)
        .env("PINFOLD_CACHE_DIR", &f.cache)
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let drawn = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{drawn}\n{}", String::from_utf8_lossy(&out.stderr));
    // While the step slept: its spinner (label, elapsed time) and the summary bar.
    assert!(drawn.contains('\x1b'), "nothing was drawn:\n{drawn:?}");
    assert!(drawn.contains("step slow 0s") || drawn.contains("step slow 1s"), "no spinner:\n{drawn:?}");
    let bar = drawn.split(['\r', '\n']).any(|l| l.contains("] ") && l.contains('/') && l.contains(" from the cache"));
    assert!(bar, "no summary bar:\n{drawn:?}");
    // Then the permanent line, and after the last escape sequence (the bars cleared)
    // only plain text: the image and the summary, no bar.
    assert!(drawn.contains("step slow: ran"), "{drawn:?}");
    let tail = &drawn[drawn.rfind('\x1b').unwrap_or(0)..];
    assert!(tail.contains("shown sha256:") && tail.contains("pinfold: 1 step(s) ran"), "{drawn:?}");
    assert!(!tail.contains("] "), "a bar was left on screen:\n{drawn:?}");
}

#[test]
fn a_step_takes_a_download_and_an_archive_as_inputs() {
    let Some(f) = Fixture::new() else { return };
    std::fs::write(f.src.join("tool.sh"), "echo made by the downloaded tool\n").unwrap();
    let status = Command::new("tar")
        .args(["-czf", "data.tar.gz", "--owner=0", "--group=0", "data/words.txt"])
        .current_dir(&f.src)
        .status()
        .unwrap();
    assert!(status.success());
    let tool_url = format!("file://{}", f.src.join("tool.sh").display());
    let base = std::fs::read_to_string(f.src.join("pinfold.kdl")).unwrap();
    f.write(
        "inputs.kdl",
        &format!(
            r#"{base}
download tool url="{tool_url}"
archive data path="data.tar.gz"

step consume {{
    image tools
    inputs download=tool
    inputs archive=data to="vendor"
    run "sh" "-c" "sh tool.sh > made.txt && find vendor -type f > files.txt && cat vendor/data/words.txt >> files.txt"
    outputs "made.txt" "files.txt"
}}

image consumed {{
    from scratch
    layer busybox {{
        copy "busybox-amd64" to="/bin/busybox" mode=0o755
        symlink "/bin/cat" target="busybox"
    }}
    layer made {{
        copy step=consume "made.txt" to="/made.txt"
        copy step=consume "files.txt" to="/files.txt"
    }}
    entrypoint "/bin/cat"
    cmd "/made.txt" "/files.txt"
}}
"#
        ),
    );
    let ran = f.pinfold().args(["run", "-f", "inputs.kdl", "consumed"]).run().success();
    let words = std::fs::read_to_string(f.src.join("data/words.txt")).unwrap();
    assert_eq!(ran.stdout(), format!("made by the downloaded tool\nvendor/data/words.txt\n{words}"));
    assert_eq!(ran.steps(), pairs(&[("consume", "ran")]));
    // The inputs are part of the step's key: a changed download runs it again.
    std::fs::write(f.src.join("tool.sh"), "echo made by the new tool\n").unwrap();
    let ran = f.pinfold().args(["run", "-f", "inputs.kdl", "consumed"]).run().success();
    assert!(ran.stdout().starts_with("made by the new tool\n"), "{}", ran.stdout());
    assert_eq!(ran.steps(), pairs(&[("consume", "ran")]));
    // Names that are not declared are reported at their spans.
    f.write(
        "bad.kdl",
        &format!(
            "{base}\nstep s {{\n    image tools\n    inputs download=tol\n    run \"true\"\n    outputs \"x\"\n}}\n"
        ),
    );
    f.pinfold().args(["build", "-f", "bad.kdl", "s"]).run().code(2).stderr_contains("no download is named `tol`");
    // A repository file and the download at one path: neither silently wins.
    f.write(
        "clash.kdl",
        &format!("{base}\ndownload tool url=\"{tool_url}\"\nstep s {{\n    image tools\n    inputs \"tool.sh\"\n    inputs download=tool\n    run \"true\"\n    outputs \"x\"\n}}\n"),
    );
    f.pinfold()
        .args(["build", "-f", "clash.kdl", "s"])
        .run()
        .code(2)
        .stderr_contains("two inputs of the step are at `tool.sh`");
}
