//! Running the checks of a `test` block (see `spec/tests.md`) against one platform of
//! a built image, and running many tests at once.
//!
//! Files are checked in the image's unpacked rootfs, with paths resolved as a process
//! in the container would see them; configuration is checked in the image config;
//! commands run in a container like `pinfold run`, with their output captured.
//! Each failure keeps the expected and the actual value, for the report.

use super::report::{shown, PlatformResults, Status, TestResult};
use pinfold_lang::test_block::{CheckDecl, CommandDecl, Matcher, Stream, TestDecl, DEFAULT_TIMEOUT_SECS};
use pinfold_sandbox::bundle::{command_line, ContainerSpec, Network};
use pinfold_sandbox::engine::{Control, Engine, Finished, Io};
use pinfold_sandbox::rootfs::resolve_in_root;
use pinfold_sandbox::{PreparedImage, RunError};
use rayon::prelude::*;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// A test to run on every platform of an image: a declared one, or one made from a
/// container-structure-test config.
#[derive(Debug, Clone)]
pub enum Case {
    /// A test block, with the host devices its command gets (its `device` nodes and
    /// `pinfold test --device`).
    Declared(TestDecl, std::sync::Arc<Devices>),
    /// A container-structure-test test, with its config's `globalEnvVars`.
    Cst(super::cst::CstCase, std::sync::Arc<Vec<super::cst::EnvVar>>),
}

impl Case {
    pub fn name(&self) -> String {
        match self {
            Case::Declared(t, _) => t.name.value.clone(),
            Case::Cst(c, _) => c.name(),
        }
    }

    pub fn run(&self, prepared: &PreparedImage, engine: &Engine) -> TestResult {
        let started = Instant::now();
        let mut result = match self {
            Case::Declared(t, devices) => run_declared(t, devices, prepared, engine),
            Case::Cst(c, global_env) => c.run(prepared, engine, global_env),
        };
        result.duration_ms = started.elapsed().as_millis() as u64;
        result
    }
}

/// Runs every case on every prepared platform, in parallel (each command test has
/// its own container), and returns the results in a fixed order: image, platform,
/// then the order of the cases.
pub fn run_all(targets: &[(PreparedImage, Vec<Case>)], engine: &Engine) -> Vec<PlatformResults> {
    let jobs: Vec<(usize, usize)> =
        targets.iter().enumerate().flat_map(|(i, (_, cases))| (0..cases.len()).map(move |j| (i, j))).collect();
    let results: Vec<TestResult> = jobs.par_iter().map(|&(i, j)| targets[i].1[j].run(&targets[i].0, engine)).collect();
    let mut iter = results.into_iter();
    targets
        .iter()
        .map(|(prepared, cases)| PlatformResults {
            image: prepared.label.clone(),
            platform: prepared.platform.to_string(),
            tests: iter.by_ref().take(cases.len()).collect(),
        })
        .collect()
}

/// Host devices from CDI specs for a test's container: resolved (every engine but
/// Docker) or the names as asked (Docker resolves them itself).
#[derive(Debug, Clone, Default)]
pub struct Devices {
    pub edits: pinfold_sandbox::cdi::Edits,
    pub requests: Vec<String>,
}

/// Runs a command in a fresh container with output captured.
pub fn run_command(
    prepared: &PreparedImage,
    engine: &Engine,
    args: Vec<String>,
    env: &[(String, String)],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Finished, RunError> {
    run_command_with(prepared, engine, args, env, stdin, timeout, &Devices::default())
}

/// [`run_command`] with host devices.
pub fn run_command_with(
    prepared: &PreparedImage,
    engine: &Engine,
    args: Vec<String>,
    env: &[(String, String)],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    devices: &Devices,
) -> Result<Finished, RunError> {
    let spec = ContainerSpec::new(prepared, args, env, Vec::new(), Network::None, engine.needs_rootfs())?.with_devices(
        devices.edits.clone(),
        devices.requests.clone(),
        None,
    );
    let control = Control { forward_signals: false, stop_timeout: Duration::from_secs(10), timeout: Some(timeout) };
    engine.execute(prepared, &spec, Io::Capture { stdin }, &control)
}

/// `equals` ignores trailing newlines on both sides: a program's line ends in one,
/// and a test should not have to write it.
pub fn matcher_holds(matcher: &Matcher, text: &str) -> bool {
    match matcher {
        Matcher::Equals(s) => text.trim_end_matches('\n') == s.trim_end_matches('\n'),
        Matcher::Contains(s) => text.contains(s.as_str()),
        Matcher::Matches(re) => regex::Regex::new(re).is_ok_and(|r| r.is_match(text)),
    }
}

/// Reads a file of the rootfs (symlinks followed inside it), at most `limit` bytes.
pub fn read_image_file(rootfs: &Path, path: &str, limit: u64) -> Result<Vec<u8>, String> {
    let host = resolve_in_root(rootfs, path, true).map_err(|e| e.to_string())?;
    let meta = std::fs::metadata(&host).map_err(|_| "no such file".to_string())?;
    if meta.is_dir() {
        return Err("is a directory".into());
    }
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(&host).and_then(|f| f.take(limit).read_to_end(&mut bytes)).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Files larger than this are hashed, never read whole for `matches`.
const CONTENT_LIMIT: u64 = 256 << 20;

fn describe_kind(meta: &std::fs::Metadata, host: &Path) -> String {
    let ft = meta.file_type();
    if ft.is_symlink() {
        format!("a symlink to {}", std::fs::read_link(host).map(|t| shown(&t.to_string_lossy())).unwrap_or_default())
    } else if ft.is_dir() {
        "a directory".into()
    } else {
        "a file".into()
    }
}

fn config_list(list: &Option<Vec<String>>) -> String {
    serde_json::to_string(list.as_deref().unwrap_or_default()).unwrap_or_default()
}

fn run_declared(test: &TestDecl, devices: &Devices, prepared: &PreparedImage, engine: &Engine) -> TestResult {
    let mut result = TestResult::new(&test.name.value);
    let config = prepared.config();
    let finished = match &test.command {
        Some(command) => match run_declared_command(command, devices, prepared, engine) {
            Ok(f) => Some(f),
            Err(e) => {
                result.error(e.to_string());
                return result;
            }
        },
        None => None,
    };
    if let Some(f) = &finished {
        check_finished(&mut result, test, f);
    }
    let rootfs = if test
        .checks
        .iter()
        .any(|c| matches!(c, CheckDecl::File { .. } | CheckDecl::Absent { .. } | CheckDecl::Symlink { .. }))
    {
        match prepared.rootfs() {
            Ok(r) => Some(r),
            Err(e) => {
                result.error(e.to_string());
                return result;
            }
        }
    } else {
        None
    };
    // In the order of the test, whatever their kind: the report lists failures so.
    for check in &test.checks {
        match check {
            CheckDecl::Exit { .. } | CheckDecl::Output { .. } => {
                if let Some(f) = &finished {
                    check_output(&mut result, check, f);
                }
            }
            CheckDecl::File { .. } | CheckDecl::Absent { .. } | CheckDecl::Symlink { .. } => {
                if let Some(rootfs) = rootfs {
                    check_path(&mut result, check, rootfs);
                }
            }
            _ => check_config(&mut result, check, &config),
        }
    }
    if result.status != Status::Passed {
        if let Some(f) = finished {
            result.stdout = Some(String::from_utf8_lossy(&f.stdout).into_owned());
            result.stderr = Some(String::from_utf8_lossy(&f.stderr).into_owned());
        }
    }
    result
}

/// What holds of every command whatever its checks: it finished in time, and with 0
/// when no `expect-exit` says otherwise.
fn check_finished(result: &mut TestResult, test: &TestDecl, f: &Finished) {
    if f.timed_out {
        let limit = test.command.as_ref().and_then(|c| c.timeout.as_ref()).map_or(DEFAULT_TIMEOUT_SECS, |t| t.value);
        result.fail("run", format!("to finish within {limit}s"), "still running; killed");
    }
    if !test.checks.iter().any(|c| matches!(c, CheckDecl::Exit { .. })) && f.code != 0 && !f.timed_out {
        result.fail("expect-exit (default)", "0", f.code.to_string());
    }
}

/// `expect-exit`, `expect-stdout`, `expect-stderr` against the finished command.
fn check_output(result: &mut TestResult, check: &CheckDecl, f: &Finished) {
    match check {
        CheckDecl::Exit { code, .. } if i64::from(f.code) != code.value as i64 => {
            result.fail("expect-exit", code.value.to_string(), f.code.to_string());
        }
        CheckDecl::Output { stream, matcher, .. } => {
            let bytes = if *stream == Stream::Stdout { &f.stdout } else { &f.stderr };
            let text = String::from_utf8_lossy(bytes);
            if !matcher_holds(matcher, &text) {
                let (how, expected) = match matcher {
                    Matcher::Equals(s) => ("equals", shown(s)),
                    Matcher::Contains(s) => ("contains", shown(s)),
                    Matcher::Matches(s) => ("matches", format!("/{s}/")),
                };
                result.fail(format!("expect-{} {how}", stream.name()), expected, shown(&text));
            }
        }
        _ => {}
    }
}

/// `file`, `absent`, `symlink` in the unpacked image.
fn check_path(result: &mut TestResult, check: &CheckDecl, rootfs: &Path) {
    match check {
        CheckDecl::File { path, mode, uid, gid, sha256, matches, .. } => check_file(
            result,
            rootfs,
            &path.value,
            mode.as_ref().map(|m| m.value),
            uid.as_ref().map(|u| u.value),
            gid.as_ref().map(|g| g.value),
            sha256.as_ref().map(|s| s.value.as_str()),
            matches.as_ref().map(|m| m.value.as_str()),
        ),
        CheckDecl::Absent { path, .. } => match resolve_in_root(rootfs, &path.value, false) {
            Ok(host) => {
                if let Ok(meta) = std::fs::symlink_metadata(&host) {
                    result.fail(format!("absent {}", path.value), "absent", describe_kind(&meta, &host));
                }
            }
            Err(e) => result.fail(format!("absent {}", path.value), "absent", e.to_string()),
        },
        CheckDecl::Symlink { path, target, .. } => {
            let what = format!("symlink {}", path.value);
            let expected = format!("a symlink to {}", shown(&target.value));
            match resolve_in_root(rootfs, &path.value, false)
                .and_then(|h| std::fs::symlink_metadata(&h).map(|m| (h, m)))
            {
                Ok((host, meta)) if meta.file_type().is_symlink() => {
                    let actual =
                        std::fs::read_link(&host).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                    if actual != target.value {
                        result.fail(what, expected, format!("a symlink to {}", shown(&actual)));
                    }
                }
                Ok((host, meta)) => result.fail(what, expected, describe_kind(&meta, &host)),
                Err(_) => result.fail(what, expected, "absent"),
            }
        }
        _ => {}
    }
}

/// `expect-env`, `expect-entrypoint`, … against the image's configuration.
fn check_config(result: &mut TestResult, check: &CheckDecl, config: &oci_spec::image::Config) {
    match check {
        CheckDecl::Env { key, value, .. } => {
            let env = config.env().clone().unwrap_or_default();
            match pinfold_sandbox::bundle::get_env(&env, &key.value) {
                Some(v) if v == value.value => {}
                Some(v) => result.fail(format!("expect-env {}", key.value), shown(&value.value), shown(v)),
                None => result.fail(format!("expect-env {}", key.value), shown(&value.value), "not set"),
            }
        }
        CheckDecl::Entrypoint { args, .. } => {
            let actual = config.entrypoint().clone().unwrap_or_default();
            if &actual != args {
                result.fail("expect-entrypoint", config_list(&Some(args.clone())), config_list(config.entrypoint()));
            }
        }
        CheckDecl::Cmd { args, .. } => {
            let actual = config.cmd().clone().unwrap_or_default();
            if &actual != args {
                result.fail("expect-cmd", config_list(&Some(args.clone())), config_list(config.cmd()));
            }
        }
        CheckDecl::Workdir { path, .. } => {
            let actual = config.working_dir().clone().unwrap_or_default();
            if actual != path.value {
                result.fail("expect-workdir", shown(&path.value), shown(&actual));
            }
        }
        CheckDecl::User { user, .. } => {
            let actual = config.user().clone().unwrap_or_default();
            if actual != user.value {
                result.fail("expect-user", shown(&user.value), shown(&actual));
            }
        }
        CheckDecl::Label { key, value, .. } => match config.labels().as_ref().and_then(|l| l.get(&key.value)) {
            Some(v) if *v == value.value => {}
            Some(v) => result.fail(format!("expect-label {}", key.value), shown(&value.value), shown(v)),
            None => result.fail(format!("expect-label {}", key.value), shown(&value.value), "no such label"),
        },
        CheckDecl::Exposed { ports, .. } => {
            let exposed = config.exposed_ports().clone().unwrap_or_default();
            for port in ports {
                if !exposed.contains(&port.value) {
                    result.fail(
                        format!("expect-exposed {}", port.value),
                        format!("{} exposed", port.value),
                        config_list(config.exposed_ports()),
                    );
                }
            }
        }
        _ => {}
    }
}

fn run_declared_command(
    command: &CommandDecl,
    devices: &Devices,
    prepared: &PreparedImage,
    engine: &Engine,
) -> Result<Finished, RunError> {
    let args = if command.args.is_empty() {
        command_line(&prepared.config(), None, &[])
    } else {
        command.args.iter().map(|a| a.value.clone()).collect()
    };
    let env: Vec<(String, String)> = command.env.iter().map(|(k, v)| (k.value.clone(), v.value.clone())).collect();
    let stdin = command.stdin.as_ref().map(|s| s.value.clone().into_bytes());
    let timeout = Duration::from_secs(command.timeout.as_ref().map_or(DEFAULT_TIMEOUT_SECS, |t| t.value));
    match run_command_with(prepared, engine, args, &env, stdin, timeout, devices) {
        // As from `docker run`: the program not being there (127) or not being
        // executable (126) is a result a test can expect.
        Err(e @ (RunError::NotFound(_) | RunError::NotExecutable(_))) => Ok(Finished {
            code: e.exit_code(),
            stdout: Vec::new(),
            stderr: format!("pinfold: {e}\n").into_bytes(),
            timed_out: false,
        }),
        other => other,
    }
}

#[allow(clippy::too_many_arguments)]
fn check_file(
    result: &mut TestResult,
    rootfs: &Path,
    path: &str,
    mode: Option<u32>,
    uid: Option<u64>,
    gid: Option<u64>,
    sha256: Option<&str>,
    matches: Option<&str>,
) {
    let what = format!("file {path}");
    let host = match resolve_in_root(rootfs, path, true) {
        Ok(h) => h,
        Err(e) => {
            result.fail(what, "exists", e.to_string());
            return;
        }
    };
    let meta = match std::fs::metadata(&host) {
        Ok(m) => m,
        Err(_) => {
            result.fail(what, "exists", "absent");
            return;
        }
    };
    if let Some(mode) = mode {
        let actual = meta.permissions().mode() & 0o7777;
        if actual != mode {
            result.fail(format!("{what} mode"), format!("0o{mode:o}"), format!("0o{actual:o}"));
        }
    }
    if let Some(uid) = uid {
        if u64::from(meta.uid()) != uid {
            result.fail(format!("{what} uid"), uid.to_string(), meta.uid().to_string());
        }
    }
    if let Some(gid) = gid {
        if u64::from(meta.gid()) != gid {
            result.fail(format!("{what} gid"), gid.to_string(), meta.gid().to_string());
        }
    }
    if (sha256.is_some() || matches.is_some()) && !meta.is_file() {
        result.fail(
            format!("{what} content"),
            "a regular file",
            if meta.is_dir() { "a directory" } else { "a special file" },
        );
        return;
    }
    if let Some(expected) = sha256 {
        let actual = std::fs::File::open(&host).and_then(|mut f| {
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            std::io::copy(&mut f, &mut h)?;
            Ok(hex::encode(h.finalize()))
        });
        match actual {
            Ok(actual) if actual == expected => {}
            Ok(actual) => result.fail(format!("{what} sha256"), expected, actual),
            Err(e) => result.fail(format!("{what} sha256"), expected, e.to_string()),
        }
    }
    if let Some(re) = matches {
        match read_image_file(rootfs, path, CONTENT_LIMIT) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                if !matcher_holds(&Matcher::Matches(re.to_string()), &text) {
                    let mut excerpt: String = text.chars().take(200).collect();
                    if text.chars().count() > 200 {
                        excerpt.push('…');
                    }
                    result.fail(format!("{what} matches"), format!("/{re}/"), shown(&excerpt));
                }
            }
            Err(e) => result.fail(format!("{what} matches"), format!("/{re}/"), e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_ignores_the_final_newline_and_matches_searches() {
        assert!(matcher_holds(&Matcher::Equals("hi".into()), "hi\n"));
        assert!(!matcher_holds(&Matcher::Equals("hi".into()), "hi there\n"));
        assert!(matcher_holds(&Matcher::Contains("there".into()), "hi there\n"));
        assert!(matcher_holds(&Matcher::Matches("^h.*e$".into()), "hi there"));
        assert!(!matcher_holds(&Matcher::Matches("(".into()), "("));
    }
}
