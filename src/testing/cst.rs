//! container-structure-test configs (`schemaVersion: "2.0.0"`), so that teams that have
//! them keep them: `pinfold test --config FILE.yaml`. The semantics are those of
//! container-structure-test 1.19 (GoogleContainerTools/container-structure-test,
//! `pkg/types/v2`), and `tests/it/run.rs` checks them against its binary:
//!
//! - `globalEnvVars` are added to the image's env (their values expanded against it)
//!   for command tests and for the paths of file existence tests; the metadata test
//!   sees the image's own env.
//! - `commandTests`: `command` and `args` run with the image's entrypoint cleared, the
//!   image's variables (and the global ones) substituted (`$VAR`, `${VAR}`) in them;
//!   a test's `envVars` are set as written; `expectedOutput`/`excludedOutput`/
//!   `expectedError`/`excludedError` are regular expressions searched in stdout and
//!   stderr; `exitCode` defaults to 0; a program that cannot be started fails the
//!   test whatever exit code was expected. `setup` and `teardown` commit changes to
//!   the image, which pinfold runs read-only: such a test is reported as not run.
//! - `fileExistenceTests`: the path as `lstat` sees it (a symlink is not followed);
//!   `shouldExist` defaults to true; `permissions` is Go's `FileMode` string
//!   (`-rwxr-xr-x`, `drwxr-xr-x`, `Lrwxrwxrwx`); `uid`/`gid`; `isExecutableBy`.
//! - `fileContentTests`: the file (symlinks followed; the path taken as written) must
//!   match every `expectedContents` regex and none of `excludedContents`.
//! - `metadataTest`: `envVars`/`labels` (exact, or `isRegex`), `unboundEnvVars`,
//!   `entrypoint`, `cmd`, `workdir`, `user`, `exposedPorts`/`unexposedPorts` (port
//!   numbers: the protocol is dropped, as container-structure-test drops it),
//!   `volumes`/`unmountedVolumes`.
//!
//! Paths resolve inside the image, never on the host, whatever links the image has.
//! Unknown keys are errors, as they are to container-structure-test (its YAML reading
//! is strict), so that a misspelled check is never silently skipped.

use super::check::{read_image_file, run_command};
use super::report::{shown, TestResult};
use pinfold_sandbox::engine::Engine;
use pinfold_sandbox::rootfs::resolve_in_root;
use pinfold_sandbox::{PreparedImage, RunError};
use serde::Deserialize;
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandTest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub setup: Vec<Vec<String>>,
    #[serde(default)]
    pub teardown: Vec<Vec<String>>,
    #[serde(default)]
    pub env_vars: Vec<EnvVar>,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub expected_output: Vec<String>,
    #[serde(default)]
    pub excluded_output: Vec<String>,
    #[serde(default)]
    pub expected_error: Vec<String>,
    #[serde(default)]
    pub excluded_error: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileExistenceTest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub path: String,
    #[serde(default = "yes")]
    pub should_exist: bool,
    #[serde(default)]
    pub permissions: String,
    pub uid: Option<i64>,
    pub gid: Option<i64>,
    #[serde(default)]
    pub is_executable_by: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileContentTest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub expected_contents: Vec<String>,
    #[serde(default)]
    pub excluded_contents: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataTest {
    /// `envVars` (older releases and their documentation say `env`).
    #[serde(default, alias = "env")]
    pub env_vars: Vec<EnvVar>,
    #[serde(default, alias = "unboundEnv")]
    pub unbound_env_vars: Vec<EnvVar>,
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    #[serde(default)]
    pub unexposed_ports: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub workdir: String,
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default)]
    pub unmounted_volumes: Vec<String>,
    #[serde(default)]
    pub labels: Vec<EnvVar>,
    #[serde(default)]
    pub user: String,
}

impl MetadataTest {
    fn is_empty(&self) -> bool {
        self.env_vars.is_empty()
            && self.unbound_env_vars.is_empty()
            && self.exposed_ports.is_empty()
            && self.unexposed_ports.is_empty()
            && self.entrypoint.is_none()
            && self.cmd.is_none()
            && self.workdir.is_empty()
            && self.user.is_empty()
            && self.volumes.is_empty()
            && self.unmounted_volumes.is_empty()
            && self.labels.is_empty()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub schema_version: String,
    #[serde(default)]
    pub global_env_vars: Vec<EnvVar>,
    #[serde(default)]
    pub command_tests: Vec<CommandTest>,
    #[serde(default)]
    pub file_existence_tests: Vec<FileExistenceTest>,
    #[serde(default)]
    pub file_content_tests: Vec<FileContentTest>,
    pub metadata_test: Option<MetadataTest>,
    #[serde(default)]
    pub license_tests: Vec<serde_yaml_ng::Value>,
    pub container_run_options: Option<serde_yaml_ng::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum CstError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a container-structure-test config: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: schemaVersion `{found}` is not supported; pinfold reads schemaVersion \"2.0.0\"")]
    Version { path: String, found: String },
}

/// One test of a config, as pinfold runs it.
#[derive(Debug, Clone)]
pub enum CstCase {
    Command { test: CommandTest },
    FileExistence(FileExistenceTest),
    FileContent(FileContentTest),
    Metadata(MetadataTest),
}

/// A config's tests, in container-structure-test's order, and its `globalEnvVars`.
#[derive(Debug, Clone, Default)]
pub struct CstSuite {
    pub cases: Vec<CstCase>,
    pub global_env: Vec<EnvVar>,
}

/// Reads a config; returns its tests and the warnings about what is not run.
pub fn load(path: &Path) -> Result<(CstSuite, Vec<String>), CstError> {
    let shown_path = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CstError::Io { path: shown_path.clone(), source })?;
    parse(&text, &shown_path)
}

pub fn parse(text: &str, path: &str) -> Result<(CstSuite, Vec<String>), CstError> {
    let config: Config = serde_yaml_ng::from_str(text)
        .map_err(|e| CstError::Invalid { path: path.to_string(), message: e.to_string() })?;
    if config.schema_version != "2.0.0" {
        return Err(CstError::Version { path: path.to_string(), found: config.schema_version });
    }
    let mut warnings = Vec::new();
    if !config.license_tests.is_empty() {
        warnings.push(format!("{path}: licenseTests are not supported by pinfold and are not run"));
    }
    if config.container_run_options.is_some() {
        warnings.push(format!("{path}: containerRunOptions are ignored; pinfold runs every test in its own sandbox"));
    }
    let mut cases = Vec::new();
    for test in config.command_tests {
        cases.push(CstCase::Command { test });
    }
    cases.extend(config.file_content_tests.into_iter().map(CstCase::FileContent));
    cases.extend(config.file_existence_tests.into_iter().map(CstCase::FileExistence));
    if let Some(m) = config.metadata_test.filter(|m| !m.is_empty()) {
        cases.push(CstCase::Metadata(m));
    }
    Ok((CstSuite { cases, global_env: config.global_env_vars }, warnings))
}

/// The image's `Env` as a map, as container-structure-test reads it.
fn env_map(env: &[String]) -> HashMap<String, String> {
    env.iter()
        .map(|e| e.split_once('=').map_or((e.clone(), String::new()), |(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// Go's `os.Expand` over `text`: `${NAME}` and `$NAME` from `vars`, unset ones empty.
pub fn expand(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => {
                    out.push_str(vars.get(&inner[..end]).map_or("", String::as_str));
                    rest = &inner[end + 1..];
                }
                None => {
                    // Go drops a `${` that is never closed.
                    rest = "";
                }
            }
            continue;
        }
        let len = after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
        if len == 0 {
            out.push('$');
            rest = after;
        } else {
            out.push_str(vars.get(&after[..len]).map_or("", String::as_str));
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

/// Go's `regexp.MatchString`, with a pattern that does not compile matching nothing
/// (container-structure-test logs it and fails the check either way).
fn regex_search(pattern: &str, text: &str) -> Option<bool> {
    regex::Regex::new(pattern).ok().map(|r| r.is_match(text))
}

/// Go's `os.FileMode.String()` of an lstat result.
pub fn go_file_mode(meta: &std::fs::Metadata) -> String {
    let mode = meta.mode();
    let ft = meta.file_type();
    use std::os::unix::fs::FileTypeExt;
    let mut out = String::new();
    // Go's order: dalTLDpSugct?
    if ft.is_dir() {
        out.push('d');
    }
    if ft.is_symlink() {
        out.push('L');
    }
    if ft.is_block_device() || ft.is_char_device() {
        out.push('D');
    }
    if ft.is_fifo() {
        out.push('p');
    }
    if ft.is_socket() {
        out.push('S');
    }
    if mode & 0o4000 != 0 {
        out.push('u');
    }
    if mode & 0o2000 != 0 {
        out.push('g');
    }
    if ft.is_char_device() {
        out.push('c');
    }
    if mode & 0o1000 != 0 {
        out.push('t');
    }
    if out.is_empty() {
        out.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        out.push(if mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    out
}

impl CstCase {
    /// The name container-structure-test gives the result.
    pub fn name(&self) -> String {
        match self {
            CstCase::Command { test, .. } => format!("Command Test: {}", test.name),
            CstCase::FileExistence(t) => format!("File Existence Test: {}", t.name),
            CstCase::FileContent(t) => format!("File Content Test: {}", t.name),
            CstCase::Metadata(_) => "Metadata Test".to_string(),
        }
    }

    pub fn run(&self, prepared: &PreparedImage, engine: &Engine, global_env: &[EnvVar]) -> TestResult {
        let mut result = TestResult::new(self.name());
        let config = prepared.config();
        let image_env = env_map(config.env().as_deref().unwrap_or_default());
        // `globalEnvVars` join the image's env (their values expanded against it) for
        // commands and for the paths of file existence tests; the metadata test sees
        // the image's own env, and file content paths are taken as written: this is
        // what container-structure-test 1.19 does with either driver.
        let mut with_globals = image_env.clone();
        for g in global_env {
            with_globals.insert(g.key.clone(), expand(&g.value, &image_env));
        }
        match self {
            CstCase::Command { test } => {
                run_command_test(&mut result, test, global_env, &with_globals, prepared, engine)
            }
            CstCase::FileExistence(t) => match prepared.rootfs() {
                Ok(rootfs) => file_existence(&mut result, t, rootfs, &with_globals),
                Err(e) => result.error(e.to_string()),
            },
            CstCase::FileContent(t) => match prepared.rootfs() {
                Ok(rootfs) => file_content(&mut result, t, rootfs),
                Err(e) => result.error(e.to_string()),
            },
            CstCase::Metadata(m) => metadata(&mut result, m, &config, &image_env),
        }
        result
    }
}

fn run_command_test(
    result: &mut TestResult,
    test: &CommandTest,
    global_env: &[EnvVar],
    image_env: &HashMap<String, String>,
    prepared: &PreparedImage,
    engine: &Engine,
) {
    if test.name.is_empty() {
        return result.error("a command test needs a name");
    }
    if test.command.is_empty() {
        return result.error(format!("command test `{}` has no command", test.name));
    }
    if !test.setup.is_empty() || !test.teardown.is_empty() {
        return result.error(format!(
            "command test `{}`: setup and teardown commands are not supported (pinfold runs images read-only)",
            test.name
        ));
    }
    if test.env_vars.iter().any(|e| e.key.is_empty() || e.value.is_empty()) {
        return result.error("Please provide non-empty keys and values for all specified env vars");
    }
    // The image's variables (with the global ones) are substituted in the command
    // line; a test's own `envVars` are set as written, and are not substituted.
    let args: Vec<String> = std::iter::once(&test.command).chain(&test.args).map(|a| expand(a, image_env)).collect();
    let env: Vec<(String, String)> = global_env
        .iter()
        .filter_map(|g| image_env.get(&g.key).map(|v| (g.key.clone(), v.clone())))
        .chain(test.env_vars.iter().map(|e| (e.key.clone(), e.value.clone())))
        .collect();
    let timeout = Duration::from_secs(pinfold_lang::test_block::DEFAULT_TIMEOUT_SECS);
    let finished = match run_command(prepared, engine, args, &env, None, timeout) {
        Ok(f) => f,
        // container-structure-test cannot create the container: the test fails, as
        // it does whatever exit code was expected.
        Err(e @ (RunError::NotFound(_) | RunError::NotExecutable(_))) => {
            return result.fail("command", "a container that starts", e.to_string());
        }
        Err(e) => return result.error(e.to_string()),
    };
    let stdout = String::from_utf8_lossy(&finished.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&finished.stderr).into_owned();
    let mut check = |list: &[String], text: &str, want: bool, what: &str| {
        for pattern in list {
            if regex_search(pattern, text) != Some(want) {
                let expected = if want { format!("/{pattern}/ found") } else { format!("/{pattern}/ absent") };
                result.fail(what.to_string(), expected, shown(text));
            }
        }
    };
    check(&test.expected_error, &stderr, true, "expectedError");
    check(&test.excluded_error, &stderr, false, "excludedError");
    check(&test.expected_output, &stdout, true, "expectedOutput");
    check(&test.excluded_output, &stdout, false, "excludedOutput");
    if finished.code != test.exit_code {
        result.fail("exitCode", test.exit_code.to_string(), finished.code.to_string());
    }
    if result.status != super::report::Status::Passed {
        result.stdout = Some(stdout);
        result.stderr = Some(stderr);
    }
}

fn file_existence(result: &mut TestResult, t: &FileExistenceTest, rootfs: &Path, env: &HashMap<String, String>) {
    if t.name.is_empty() || t.path.is_empty() {
        return result.error("a file existence test needs a name and a path");
    }
    let path = expand(&t.path, env);
    let meta = resolve_in_root(rootfs, &path, false).ok().and_then(|h| std::fs::symlink_metadata(h).ok());
    let Some(meta) = meta else {
        if t.should_exist {
            result.fail(format!("{} exists", t.path), "exists", "absent");
        }
        return;
    };
    if !t.should_exist {
        result.fail(format!("{} exists", t.path), "absent", "exists");
    }
    if !t.permissions.is_empty() {
        let actual = go_file_mode(&meta);
        if actual != t.permissions {
            result.fail(format!("{} permissions", t.path), t.permissions.clone(), actual);
        }
    }
    if !t.is_executable_by.is_empty() {
        let mode = meta.permissions().mode();
        let bit = match t.is_executable_by.as_str() {
            "any" => Some(0o111),
            "owner" => Some(0o100),
            "group" => Some(0o010),
            "other" => Some(0o001),
            _ => None,
        };
        match bit {
            Some(bit) if mode & bit != 0 => {}
            Some(_) => {
                result.fail(format!("{} isExecutableBy", t.path), t.is_executable_by.clone(), go_file_mode(&meta))
            }
            None => result.fail(
                format!("{} isExecutableBy", t.path),
                "any, owner, group or other",
                t.is_executable_by.clone(),
            ),
        }
    }
    if let Some(uid) = t.uid.filter(|u| *u != -1) {
        if i64::from(meta.uid()) != uid {
            result.fail(format!("{} uid", t.path), uid.to_string(), meta.uid().to_string());
        }
    }
    if let Some(gid) = t.gid.filter(|g| *g != -1) {
        if i64::from(meta.gid()) != gid {
            result.fail(format!("{} gid", t.path), gid.to_string(), meta.gid().to_string());
        }
    }
}

fn file_content(result: &mut TestResult, t: &FileContentTest, rootfs: &Path) {
    if t.name.is_empty() || t.path.is_empty() {
        return result.error("a file content test needs a name and a path");
    }
    let contents = match read_image_file(rootfs, &t.path, 256 << 20) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return result.fail(format!("{} readable", t.path), "a readable file", e),
    };
    for pattern in &t.expected_contents {
        if regex_search(pattern, &contents) != Some(true) {
            result.fail(format!("{} expectedContents", t.path), format!("/{pattern}/ found"), shown(&contents));
        }
    }
    for pattern in &t.excluded_contents {
        if regex_search(pattern, &contents) != Some(false) {
            result.fail(format!("{} excludedContents", t.path), format!("/{pattern}/ absent"), shown(&contents));
        }
    }
}

fn value_matches(expected: &EnvVar, actual: &str) -> bool {
    if expected.is_regex {
        regex_search(&expected.value, actual) == Some(true)
    } else {
        expected.value == actual
    }
}

fn metadata(
    result: &mut TestResult,
    m: &MetadataTest,
    config: &oci_spec::image::Config,
    env: &HashMap<String, String>,
) {
    for pair in &m.env_vars {
        match env.get(&pair.key) {
            Some(v) if value_matches(pair, v) => {}
            Some(v) => result.fail(format!("envVars {}", pair.key), shown(&pair.value), shown(v)),
            None => result.fail(format!("envVars {}", pair.key), shown(&pair.value), "not set"),
        }
    }
    for pair in &m.unbound_env_vars {
        if let Some(v) = env.get(&pair.key) {
            result.fail(format!("unboundEnvVars {}", pair.key), "not set", shown(v));
        }
    }
    let labels = config.labels().clone().unwrap_or_default();
    for pair in &m.labels {
        match labels.get(&pair.key) {
            Some(v) if value_matches(pair, v) => {}
            Some(v) => result.fail(format!("label {}", pair.key), shown(&pair.value), shown(v)),
            None => result.fail(format!("label {}", pair.key), shown(&pair.value), "no such label"),
        }
    }
    let list = |l: &[String]| serde_json::to_string(l).unwrap_or_default();
    if let Some(cmd) = &m.cmd {
        let actual = config.cmd().clone().unwrap_or_default();
        if *cmd != actual {
            result.fail("cmd", list(cmd), list(&actual));
        }
    }
    if let Some(entrypoint) = &m.entrypoint {
        let actual = config.entrypoint().clone().unwrap_or_default();
        if *entrypoint != actual {
            result.fail("entrypoint", list(entrypoint), list(&actual));
        }
    }
    let workdir = config.working_dir().clone().unwrap_or_default();
    if !m.workdir.is_empty() && m.workdir != workdir {
        result.fail("workdir", shown(&m.workdir), shown(&workdir));
    }
    let user = config.user().clone().unwrap_or_default();
    if !m.user.is_empty() && m.user != user {
        result.fail("user", shown(&m.user), shown(&user));
    }
    let ports: Vec<String> = config
        .exposed_ports()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|p| p.split('/').next().unwrap_or_default().to_string())
        .collect();
    for port in &m.exposed_ports {
        if !ports.contains(port) {
            result.fail(format!("exposedPorts {port}"), "exposed", list(&ports));
        }
    }
    for port in &m.unexposed_ports {
        if ports.contains(port) {
            result.fail(format!("unexposedPorts {port}"), "not exposed", list(&ports));
        }
    }
    let volumes = config.volumes().clone().unwrap_or_default();
    for v in &m.volumes {
        if !volumes.contains(v) {
            result.fail(format!("volumes {v}"), "a volume", list(&volumes));
        }
    }
    for v in &m.unmounted_volumes {
        if volumes.contains(v) {
            result.fail(format!("unmountedVolumes {v}"), "not a volume", list(&volumes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_reads_with_the_defaults_of_container_structure_test() {
        let (cases, warnings) = parse(
            r#"
schemaVersion: "2.0.0"
globalEnvVars:
  - key: A
    value: b
commandTests:
  - name: hello
    command: echo
    args: ["hi"]
    expectedOutput: ["hi"]
fileExistenceTests:
  - name: busybox
    path: /bin/busybox
    permissions: "-rwxr-xr-x"
fileContentTests:
  - name: motd
    path: /etc/motd
    expectedContents: ["repro"]
metadataTest:
  workdir: /app
licenseTests:
  - debian: true
"#,
            "cst.yaml",
        )
        .unwrap();
        let cases = cases.cases;
        assert_eq!(cases.len(), 4);
        assert_eq!(
            cases.iter().map(CstCase::name).collect::<Vec<_>>(),
            ["Command Test: hello", "File Content Test: motd", "File Existence Test: busybox", "Metadata Test"]
        );
        match &cases[2] {
            CstCase::FileExistence(t) => assert!(t.should_exist && t.uid.is_none()),
            other => panic!("{other:?}"),
        }
        assert_eq!(warnings.len(), 1);
        assert!(parse("schemaVersion: \"1.0.0\"\n", "x").unwrap_err().to_string().contains("2.0.0"));
    }

    #[test]
    fn variables_expand_as_go_expands_them() {
        let vars: HashMap<String, String> = [("HOME".to_string(), "/root".to_string())].into();
        assert_eq!(expand("$HOME/x ${HOME} $NOPE. $ ${", &vars), "/root/x /root . $ ");
    }

    #[test]
    fn file_modes_read_as_go_prints_them() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4755)).unwrap();
        assert_eq!(go_file_mode(&std::fs::symlink_metadata(&f).unwrap()), "urwxr-xr-x");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(go_file_mode(&std::fs::symlink_metadata(tmp.path()).unwrap()), "dtrwxrwxrwx");
        std::os::unix::fs::symlink("f", tmp.path().join("l")).unwrap();
        assert_eq!(go_file_mode(&std::fs::symlink_metadata(tmp.path().join("l")).unwrap()), "Lrwxrwxrwx");
    }
}
