//! A small builder for running `pinfold` (after `just`'s `Test`): set the directory,
//! arguments and environment, run, then assert on status and output.
//!
//! The one harness of the one integration-test binary (`tests/it/main.rs` lists its
//! modules); every module uses it through `crate::harness`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The cache of [`Test::in_dir`], below the directory it runs in.
pub const TEST_CACHE: &str = ".test-cache";

pub fn pinfold_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pinfold"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(path: &str) -> PathBuf {
    repo_root().join("fixtures").join(path)
}

/// The one switch that re-blesses expected output: with `PINFOLD_BLESS=1` the tests
/// rewrite what they compare against — golden digests (`build`), the generated rules
/// page of the book (`lint`) and insta snapshots ([`assert_snapshot!`]) — and pass.
/// Everything else in the tests reads it through here.
pub fn bless() -> bool {
    std::env::var("PINFOLD_BLESS").as_deref() == Ok("1")
}

/// Makes insta follow [`bless`]: under `PINFOLD_BLESS=1` a snapshot that differs is
/// rewritten in place. insta (1.49) takes its update behaviour only from `INSTA_UPDATE`
/// or an `insta.yaml`, read once per process on the first assertion; `insta::Settings`
/// has no such field. So this sets `INSTA_UPDATE=always` once, before any assertion,
/// and only when blessing (Rust's own environment lock orders it against the other
/// test threads' reads); without the switch insta keeps its defaults.
pub fn insta_follows_bless() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if bless() {
            std::env::set_var("INSTA_UPDATE", "always");
        }
    });
}

/// `insta::assert_snapshot!(name, value)` that [`bless`] re-blesses: every snapshot of
/// these tests goes through it. The snapshot keeps the module and file of the caller.
macro_rules! assert_snapshot {
    ($name:expr, $value:expr) => {{
        $crate::harness::insta_follows_bless();
        insta::assert_snapshot!($name, $value);
    }};
}
pub(crate) use assert_snapshot;

pub struct Test {
    command: Command,
    description: String,
}

pub struct Ran {
    pub output: Output,
    description: String,
}

impl Test {
    pub fn new() -> Self {
        let mut command = Command::new(pinfold_bin());
        // Tests must not depend on, or fill, the user's cache.
        command.env_remove("SOURCE_DATE_EPOCH").env("NO_COLOR", "1").stdin(Stdio::null());
        Test { command, description: "pinfold".into() }
    }

    /// Runs in `dir`, with a cache of its own there ([`TEST_CACHE`]).
    pub fn in_dir(dir: &Path) -> Self {
        Test::new().dir(dir).env("PINFOLD_CACHE_DIR", dir.join(TEST_CACHE))
    }

    pub fn dir(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.description.push(' ');
        self.description.push_str(&arg.as_ref().to_string_lossy());
        self.command.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Self {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn run(mut self) -> Ran {
        let output = self.command.output().expect("the pinfold binary runs");
        Ran { output, description: self.description }
    }

    /// Starts pinfold without waiting, its stdout and stderr piped.
    pub fn spawn(mut self) -> Child {
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the pinfold binary starts")
    }
}

impl Ran {
    /// The output of a pinfold that was spawned, `description` naming it in failures.
    pub fn from_output(output: Output, description: impl Into<String>) -> Self {
        Ran { output, description: description.into() }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.output.status.code(),
            Some(expected),
            "`{}` exited with {:?}, expected {expected}\n--- stdout\n{}\n--- stderr\n{}",
            self.description,
            self.output.status.code(),
            self.stdout(),
            self.stderr()
        );
        self
    }

    pub fn success(self) -> Self {
        self.code(0)
    }

    /// stderr with miette's wrapped message lines (`  │ …` continuations) joined, so
    /// that a test can look for a whole sentence whatever the wrap width.
    pub fn stderr_flat(&self) -> String {
        let mut out = String::new();
        for line in self.stderr().lines() {
            match line.trim_start().strip_prefix("│ ") {
                Some(rest) if !out.is_empty() => {
                    out.pop();
                    out.push(' ');
                    out.push_str(rest);
                }
                _ => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }

    pub fn stdout_contains(self, needle: &str) -> Self {
        assert!(
            self.stdout().contains(needle),
            "stdout of `{}` lacks {needle:?}:\n{}\n--- stderr\n{}",
            self.description,
            self.stdout(),
            self.stderr()
        );
        self
    }

    pub fn stderr_contains(self, needle: &str) -> Self {
        assert!(
            self.stderr_flat().contains(needle),
            "stderr of `{}` lacks {needle:?}:\n{}",
            self.description,
            self.stderr()
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{}", self.description, self.stdout()))
    }

    /// The digest of the first `NAME DIGEST` line of `pinfold build`.
    pub fn digest(&self) -> String {
        let out = self.stdout();
        let line = out.lines().next().unwrap_or_else(|| panic!("`{}` printed nothing", self.description));
        line.split_once(' ').expect("NAME DIGEST").1.to_string()
    }

    /// (built, from the cache) of pinfold's `N layer(s) built, M from the cache` line.
    pub fn layer_counts(&self) -> (usize, usize) {
        let err = self.stderr_flat();
        let line = err.lines().find(|l| l.contains("layer(s) built")).expect("the layer count line");
        let numbers: Vec<usize> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .take(2)
            .map(|s| s.parse().unwrap())
            .collect();
        (numbers[0], numbers[1])
    }

    /// `NAME DIGEST` lines of `pinfold build`, as pairs.
    pub fn built(&self) -> Vec<(String, String)> {
        self.stdout()
            .lines()
            .map(|l| {
                let (name, digest) = l.split_once(' ').expect("NAME DIGEST");
                (name.to_string(), digest.to_string())
            })
            .collect()
    }
}

pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether an external tool can be used. Under CI (`CI=true`) a missing tool fails the
/// test instead of skipping it: a green CI run must mean the check ran.
pub fn require_tool(name: &str, probe: &[&str]) -> bool {
    let ok = Command::new(name).args(probe).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "`{name}` is required in CI and is missing or not working (`{name} {}` failed); .ci/run installs it",
                probe.join(" ")
            );
        }
        eprintln!("note: `{name}` is not available; skipping this check outside CI");
    }
    ok
}

/// Runs an external tool and returns its stdout, failing the test with its stderr.
pub fn tool(name: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&tool_bytes(name, args)).into_owned()
}

/// [`tool`], with stdout as the bytes it was.
pub fn tool_bytes(name: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    assert!(
        out.status.success(),
        "`{name} {}` failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Copies a directory tree (files, dirs, symlinks), in the order `order` gives.
pub fn copy_tree(from: &Path, to: &Path, reverse: bool) {
    let mut entries: Vec<_> = walkdir::WalkDir::new(from).min_depth(1).into_iter().map(|e| e.unwrap()).collect();
    // Directories first so that their children have a place, then files in the order asked.
    entries.sort_by_key(|e| (!e.file_type().is_dir(), e.depth()));
    if reverse {
        let (dirs, mut rest): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.file_type().is_dir());
        rest.reverse();
        entries = dirs.into_iter().chain(rest).collect();
    }
    std::fs::create_dir_all(to).unwrap();
    for e in entries {
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        let ft = e.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Copies a directory tree; a symlink to a file is copied as that file's content.
pub fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A fresh temporary directory that is removed at the end of the test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("pinfold-test-").tempdir().unwrap()
}

/// Debian's busybox-static binary for `arch` (`amd64`, `arm64`), extracted from the
/// .deb that scripts/setup-test-tools.sh downloads into $PINFOLD_TEST_DEBS and copied
/// to `to`. `None` after a note outside CI when the .deb is missing; under CI a
/// missing .deb fails the test.
pub fn busybox(arch: &str, to: &Path) -> Option<()> {
    let dir =
        PathBuf::from(std::env::var("PINFOLD_TEST_DEBS").unwrap_or_else(|_| "/var/cache/pinfold-test-debs".into()));
    let deb = std::fs::read_dir(&dir).ok().and_then(|d| {
        d.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("busybox-static_") && name.ends_with(&format!("_{arch}.deb"))
        })
    });
    let Some(deb) = deb else {
        if in_ci() {
            panic!(
                "the busybox-static .deb for {arch} is required in CI in {}; scripts/setup-test-tools.sh downloads it",
                dir.display()
            );
        }
        eprintln!("note: no busybox-static .deb for {arch} in {}; skipping", dir.display());
        return None;
    };
    if !require_tool("dpkg-deb", &["--version"]) {
        return None;
    }
    let out = tempdir();
    tool("dpkg-deb", &["-x", deb.to_str().unwrap(), out.path().to_str().unwrap()]);
    std::fs::copy(out.path().join("bin/busybox"), to).unwrap();
    Some(())
}

/// Whether arm64 programs can run here (a binfmt_misc handler, as qemu-user-static
/// registers); under CI its absence fails the test.
pub fn arm64_runs() -> bool {
    let ok = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64")
        .map(|t| t.starts_with("enabled"))
        .unwrap_or(false);
    if !ok {
        if in_ci() {
            panic!("no binfmt_misc handler for arm64: scripts/setup-test-tools.sh installs qemu-user-static and registers it");
        }
        eprintln!("note: no binfmt_misc handler for arm64 (install qemu-user-static); skipping arm64");
    }
    ok
}
