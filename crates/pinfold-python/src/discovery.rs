//! Which package index to read, found the way pip (and uv) would find it.
//!
//! Why: the repository never names an index host (a lock must build from any mirror), so
//! the index comes from the machine: the environment, pip's configuration files, or pip's
//! own default, asked from the machine's pip. Without any of them the error asks for one.
//!
//! Order, first found wins: `PIP_INDEX_URL`; `UV_DEFAULT_INDEX`, `UV_INDEX_URL`; pip's
//! configuration files (`index-url` in `[global]`, overridden by `[install]`; later files
//! override earlier ones as in pip: /etc/xdg/pip/pip.conf, /etc/pip.conf,
//! ~/.pip/pip.conf, ~/.config/pip/pip.conf, then `PIP_CONFIG_FILE`); pip's default.
//! Extra indexes: `PIP_EXTRA_INDEX_URL`, `UV_INDEX`, `UV_EXTRA_INDEX_URL` and
//! `extra-index-url` from the files, in that order, all of them.
//!
//! pip.conf is read by a small hand-written INI reader: pip needs two keys from it, and
//! the format (sections, `key = value`, indented continuation lines, `#`/`;` comments)
//! is a few lines; an INI crate would not follow Python's configparser any closer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::IndexError;
use crate::requirements::Requirements;

/// Largest pip.conf read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The indexes to read, primary first, and where they came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSettings {
    pub index_url: String,
    pub extra_index_urls: Vec<String>,
    /// `PIP_INDEX_URL`, `/etc/pip.conf`, `pip's default`, …
    pub source: String,
}

impl IndexSettings {
    /// One index, for tests and callers that name it themselves.
    pub fn single(url: &str) -> Result<IndexSettings, IndexError> {
        check_url(url)?;
        Ok(IndexSettings { index_url: url.to_string(), extra_index_urls: Vec::new(), source: "given".into() })
    }

    /// What the machine says, as pip would read it.
    pub fn discover() -> Result<IndexSettings, IndexError> {
        discover_from(&Sources::from_process())
    }

    /// Applies a requirements file's `--index-url` (replaces) and `--extra-index-url`
    /// (appended), as pip does.
    pub fn with_requirements(mut self, req: &Requirements) -> Result<IndexSettings, IndexError> {
        if let Some(url) = &req.index_url {
            check_url(url)?;
            self.index_url = url.clone();
            self.source = "the requirements file".into();
        }
        for url in &req.extra_index_urls {
            check_url(url)?;
            push_unique(&mut self.extra_index_urls, url);
        }
        Ok(self)
    }

    /// All indexes, primary first.
    pub fn all(&self) -> Vec<&str> {
        std::iter::once(self.index_url.as_str()).chain(self.extra_index_urls.iter().map(String::as_str)).collect()
    }
}

/// What discovery reads: environment variables, pip's configuration files in load order,
/// and whether to ask the machine's pip. Made from the process by [`Sources::from_process`];
/// tests make their own.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub vars: BTreeMap<String, String>,
    pub config_files: Vec<PathBuf>,
    pub ask_pip: bool,
}

impl Sources {
    /// The process's environment and pip's configuration file locations.
    pub fn from_process() -> Sources {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        let config_files = pip_config_files(&vars);
        Sources { vars, config_files, ask_pip: true }
    }
}

/// pip's configuration files, lowest priority first.
fn pip_config_files(vars: &BTreeMap<String, String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let xdg_dirs = vars.get("XDG_CONFIG_DIRS").cloned().unwrap_or_else(|| "/etc/xdg".into());
    for dir in xdg_dirs.split(':').filter(|d| !d.is_empty()) {
        files.push(Path::new(dir).join("pip/pip.conf"));
    }
    files.push(PathBuf::from("/etc/pip.conf"));
    if let Some(home) = vars.get("HOME") {
        files.push(Path::new(home).join(".pip/pip.conf"));
        let config_home = vars.get("XDG_CONFIG_HOME").cloned().unwrap_or_else(|| format!("{home}/.config"));
        files.push(Path::new(&config_home).join("pip/pip.conf"));
    }
    if let Some(venv) = vars.get("VIRTUAL_ENV") {
        files.push(Path::new(venv).join("pip.conf"));
    }
    match vars.get("PIP_CONFIG_FILE").map(String::as_str) {
        Some("/dev/null") | Some("os.devnull") => files.clear(),
        Some(f) => files.push(PathBuf::from(f)),
        None => {}
    }
    files
}

/// Discovery over explicit sources.
pub fn discover_from(sources: &Sources) -> Result<IndexSettings, IndexError> {
    let config = read_configs(&sources.config_files)?;
    let env = |k: &str| sources.vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let (index_url, source) = if let Some(u) = env("PIP_INDEX_URL") {
        (u.to_string(), "PIP_INDEX_URL".to_string())
    } else if let Some((k, u)) = ["UV_DEFAULT_INDEX", "UV_INDEX_URL"].iter().find_map(|k| env(k).map(|u| (k, u))) {
        (u.to_string(), k.to_string())
    } else if let Some((u, file)) = &config.index_url {
        (u.clone(), file.display().to_string())
    } else if let Some(u) = sources.ask_pip.then(ask_pip).flatten() {
        (u, "pip's default".to_string())
    } else {
        return Err(IndexError::NoIndex);
    };
    check_url(&index_url)?;
    let mut extras = Vec::new();
    for key in ["PIP_EXTRA_INDEX_URL", "UV_INDEX", "UV_EXTRA_INDEX_URL"] {
        for url in env(key).unwrap_or("").split_whitespace() {
            push_unique(&mut extras, url);
        }
    }
    for url in &config.extra_index_urls {
        push_unique(&mut extras, url);
    }
    for url in &extras {
        check_url(url)?;
    }
    extras.retain(|u| u != &index_url);
    Ok(IndexSettings { index_url, extra_index_urls: extras, source })
}

fn push_unique(list: &mut Vec<String>, url: &str) {
    if !list.iter().any(|u| u == url) {
        list.push(url.to_string());
    }
}

/// Index URLs are HTTPS; plain HTTP only to this machine (a test or a local proxy).
pub(crate) fn check_url(url: &str) -> Result<(), IndexError> {
    let bad = |reason: &str| IndexError::BadUrl { url: url.to_string(), reason: reason.to_string() };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let loopback = matches!(parsed.host_str(), Some("localhost") | Some("127.0.0.1") | Some("[::1]"));
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(bad("an index must be an https:// URL")),
    }
}

/// What pip's configuration files say, the later file winning.
#[derive(Debug, Default)]
struct PipConfig {
    index_url: Option<(String, PathBuf)>,
    extra_index_urls: Vec<String>,
}

fn read_configs(files: &[PathBuf]) -> Result<PipConfig, IndexError> {
    let mut config = PipConfig::default();
    for file in files {
        let Some(text) = read_optional(file)? else { continue };
        let ini = parse_ini(&text);
        let get = |key: &str| {
            ini.get(&("install".to_string(), key.to_string()))
                .or_else(|| ini.get(&("global".to_string(), key.to_string())))
        };
        if let Some(v) = get("index-url").or_else(|| get("index_url")) {
            config.index_url = Some((v.trim().to_string(), file.clone()));
        }
        if let Some(v) = get("extra-index-url").or_else(|| get("extra_index_url")) {
            config.extra_index_urls.extend(v.split_whitespace().map(str::to_string));
        }
    }
    Ok(config)
}

fn read_optional(file: &Path) -> Result<Option<String>, IndexError> {
    use std::io::Read;
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(None),
        Err(source) => return Err(IndexError::Io { path: file.to_path_buf(), source }),
    };
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|source| IndexError::Io { path: file.to_path_buf(), source })?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// `(section, key) → value`, keys lowercased; continuation lines join with a newline.
fn parse_ini(text: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    let mut section = String::new();
    let mut last: Option<(String, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            if let Some(v) = last.as_ref().and_then(|k| out.get_mut(k)) {
                let v: &mut String = v;
                v.push('\n');
                v.push_str(trimmed);
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.trim().to_string();
            last = None;
            continue;
        }
        if let Some(i) = trimmed.find(['=', ':']) {
            let key = (section.clone(), trimmed[..i].trim().to_ascii_lowercase());
            out.insert(key.clone(), trimmed[i + 1..].trim().to_string());
            last = Some(key);
        }
    }
    out
}

/// The machine's pip's default index, if a pip is there.
fn ask_pip() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .ok()?;
    let url = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !url.is_empty()).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(vars: &[(&str, &str)], files: Vec<PathBuf>) -> Sources {
        Sources {
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            config_files: files,
            ask_pip: false,
        }
    }

    #[test]
    fn environment_beats_config_and_extras_accumulate() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pip.conf");
        std::fs::write(&conf, "[global]\nindex-url = https://conf.invalid/simple\nextra-index-url =\n    https://e1.invalid/simple\n    https://e2.invalid/simple\n").unwrap();
        let s = sources(
            &[("PIP_INDEX_URL", "https://env.invalid/simple"), ("PIP_EXTRA_INDEX_URL", "https://e0.invalid/simple")],
            vec![conf.clone()],
        );
        let got = discover_from(&s).unwrap();
        assert_eq!(got.index_url, "https://env.invalid/simple");
        assert_eq!(got.source, "PIP_INDEX_URL");
        assert_eq!(
            got.extra_index_urls,
            ["https://e0.invalid/simple", "https://e1.invalid/simple", "https://e2.invalid/simple"]
        );
        let got =
            discover_from(&sources(&[("UV_DEFAULT_INDEX", "https://uv.invalid/simple")], vec![conf.clone()])).unwrap();
        assert_eq!(got.index_url, "https://uv.invalid/simple");
        let got = discover_from(&sources(&[], vec![conf.clone()])).unwrap();
        assert_eq!(got.index_url, "https://conf.invalid/simple");
        assert_eq!(got.source, conf.display().to_string());
    }

    #[test]
    fn later_files_and_install_section_win() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.conf");
        let b = dir.path().join("b.conf");
        std::fs::write(&a, "[global]\nindex-url = https://a.invalid/simple\n").unwrap();
        std::fs::write(&b, "# comment\n[global]\nindex-url = https://b.invalid/simple\n[install]\nindex-url: https://bi.invalid/simple\n").unwrap();
        let missing = dir.path().join("missing.conf");
        let got = discover_from(&sources(&[], vec![a, b, missing])).unwrap();
        assert_eq!(got.index_url, "https://bi.invalid/simple");
    }

    #[test]
    fn nothing_configured_asks_for_an_index() {
        let err = discover_from(&sources(&[], vec![])).unwrap_err();
        assert!(matches!(err, IndexError::NoIndex));
        assert!(err.to_string().contains("PIP_INDEX_URL"));
    }

    #[test]
    fn plain_http_is_refused_except_loopback() {
        assert!(discover_from(&sources(&[("PIP_INDEX_URL", "http://mirror.invalid/simple")], vec![])).is_err());
        assert!(discover_from(&sources(&[("PIP_INDEX_URL", "http://127.0.0.1:8080/simple")], vec![])).is_ok());
    }

    #[test]
    fn requirements_file_options_apply() {
        let base = IndexSettings::single("https://a.invalid/simple").unwrap();
        let req = Requirements {
            index_url: Some("https://b.invalid/simple".into()),
            extra_index_urls: vec!["https://c.invalid/simple".into()],
            ..Default::default()
        };
        let got = base.with_requirements(&req).unwrap();
        assert_eq!(got.all(), ["https://b.invalid/simple", "https://c.invalid/simple"]);
    }

    #[test]
    fn pip_config_file_devnull_disables_files() {
        let vars: BTreeMap<_, _> =
            [("HOME".to_string(), "/root".to_string()), ("PIP_CONFIG_FILE".to_string(), "/dev/null".to_string())]
                .into();
        assert!(pip_config_files(&vars).is_empty());
    }
}
