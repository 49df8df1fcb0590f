//! The machine's apt sources, read as apt reads them.
//!
//! Why: when the build file names no mirror, pinfold uses the one the machine already
//! trusts (and tests find the reachable mirror this way, never from a host name written
//! in the repository). apt reads `etc/apt/sources.list` (one-line format) and then the
//! files of `etc/apt/sources.list.d/` in name order: `*.list` (one-line) and `*.sources`
//! (deb822). Only `deb` entries count (binary packages); `deb-src` and disabled
//! entries are skipped. A root directory is taken so tests can point at a temporary one.

use crate::deb822;
use crate::error::{io_at, Error, Result};
use std::path::Path;

/// One `deb` entry: a repository base URL, its suites and components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    /// The repository base (`URIs`), without a trailing slash.
    pub uri: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// `Signed-By`: keyring paths or fingerprints as written (an inline key block is
    /// kept as its text).
    pub signed_by: Option<String>,
    /// Where the entry was read (`path:line`), for messages.
    pub origin: String,
}

impl AptSource {
    /// Signed-By's keyring files (absolute paths; fingerprints and inline keys left out).
    pub fn keyring_paths(&self) -> Vec<&str> {
        let Some(value) = &self.signed_by else { return Vec::new() };
        if value.contains("BEGIN PGP") {
            return Vec::new();
        }
        value.split([',', ' ', '\n']).filter(|s| s.starts_with('/')).collect()
    }
}

/// Bound on one sources file (they are a few lines).
const MAX_FILE: u64 = 4 << 20;

/// The `deb` entries of the apt configuration under `root` (`/` for the machine's).
pub fn apt_sources(root: &Path) -> Result<Vec<AptSource>> {
    let etc = root.join("etc/apt");
    let mut out = Vec::new();
    let main = etc.join("sources.list");
    if main.is_file() {
        out.extend(parse_one_line(&read_bounded(&main)?, &main.display().to_string())?);
    }
    for path in source_files(&etc.join("sources.list.d"))? {
        let text = read_bounded(&path)?;
        let origin = path.display().to_string();
        if path.extension().is_some_and(|e| e == "sources") {
            out.extend(parse_deb822(&text, &origin)?);
        } else {
            out.extend(parse_one_line(&text, &origin)?);
        }
    }
    Ok(out)
}

/// The `*.list` and `*.sources` files of `dir`, sorted by name as apt reads them;
/// apt ignores other names (`*.disabled`, backups), and so does this.
fn source_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_at(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let valid = name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if valid && (name.ends_with(".list") || name.ends_with(".sources")) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_bounded(path: &Path) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(io_at(path))?;
    let mut text = String::new();
    file.take(MAX_FILE + 1).read_to_string(&mut text).map_err(io_at(path))?;
    if text.len() as u64 > MAX_FILE {
        return Err(Error::TooLarge { what: path.display().to_string(), limit: MAX_FILE });
    }
    Ok(text)
}

/// Parses deb822 `.sources` text. `Enabled: no` and non-`deb` types are skipped.
pub fn parse_deb822(text: &str, origin: &str) -> Result<Vec<AptSource>> {
    let mut out = Vec::new();
    for stanza in deb822::parse_all(text, origin, true)? {
        let words = |name: &str| -> Vec<String> {
            stanza.get(name).unwrap_or("").split_whitespace().map(str::to_string).collect()
        };
        let enabled = stanza.get("Enabled").is_none_or(|v| !v.trim().eq_ignore_ascii_case("no"));
        if !enabled || !words("Types").iter().any(|t| t == "deb") {
            continue;
        }
        let signed_by = stanza.get("Signed-By").map(|v| v.trim().to_string());
        for uri in words("URIs") {
            out.push(AptSource {
                uri: uri.trim_end_matches('/').to_string(),
                suites: words("Suites"),
                components: words("Components"),
                signed_by: signed_by.clone(),
                origin: format!("{origin}:{}", stanza.line),
            });
        }
    }
    Ok(out)
}

/// Parses one-line format text: `deb [opt=value ...] URI SUITE [COMPONENT ...]`.
pub fn parse_one_line(text: &str, origin: &str) -> Result<Vec<AptSource>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("deb").filter(|r| r.starts_with([' ', '\t', '['])) else {
            continue; // blank, comment, deb-src
        };
        let syntax = |message: &str| Error::Syntax { what: origin.to_string(), line: n + 1, message: message.into() };
        let (options, rest) = split_options(rest.trim_start()).ok_or_else(|| syntax("unclosed `[`"))?;
        let mut words = rest.split_whitespace().map(str::to_string);
        let uri = words.next().ok_or_else(|| syntax("no URI"))?;
        let suite = words.next().ok_or_else(|| syntax("no suite"))?;
        let signed_by = options
            .split_whitespace()
            .find_map(|o| o.strip_prefix("signed-by=").or_else(|| o.strip_prefix("Signed-By=")))
            .map(str::to_string);
        out.push(AptSource {
            uri: uri.trim_end_matches('/').to_string(),
            suites: vec![suite],
            components: words.collect(),
            signed_by,
            origin: format!("{origin}:{}", n + 1),
        });
    }
    Ok(out)
}

/// Splits a leading `[options]` block off; None when it is not closed.
fn split_options(rest: &str) -> Option<(&str, &str)> {
    match rest.strip_prefix('[') {
        Some(inner) => inner.split_once(']'),
        None => Some(("", rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "Types: deb deb-src\n# a comment\nURIs: http://mirror.invalid/debian/\n\
        Suites: bookworm bookworm-updates\nComponents: main contrib\nSigned-By: /usr/share/keyrings/k.gpg\n\n\
        Types: deb-src\nURIs: http://src.invalid/debian\nSuites: bookworm\nComponents: main\n\n\
        Types: deb\nEnabled: no\nURIs: http://off.invalid/debian\nSuites: bookworm\nComponents: main\n";

    #[test]
    fn deb822_sources() {
        let all = parse_deb822(DEB822, "d.sources").unwrap();
        assert_eq!(all.len(), 1);
        let s = &all[0];
        assert_eq!(s.uri, "http://mirror.invalid/debian");
        assert_eq!(s.suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(s.components, ["main", "contrib"]);
        assert_eq!(s.keyring_paths(), ["/usr/share/keyrings/k.gpg"]);
        assert_eq!(s.origin, "d.sources:1");
    }

    #[test]
    fn one_line_sources() {
        let text = "# c\ndeb-src http://x.invalid/d bookworm main\n\
            deb [arch=amd64 signed-by=/k.gpg] http://x.invalid/d/ bookworm main non-free # tail\n\
            deb http://y.invalid/d-security bookworm-security main\n";
        let all = parse_one_line(text, "sources.list").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].uri, "http://x.invalid/d");
        assert_eq!(all[0].components, ["main", "non-free"]);
        assert_eq!(all[0].signed_by.as_deref(), Some("/k.gpg"));
        assert_eq!(all[1].suites, ["bookworm-security"]);
        assert!(parse_one_line("deb [arch=amd64 http://x bookworm\n", "l").is_err());
    }

    #[test]
    fn a_root_directory_in_apt_order() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("etc/apt/sources.list.d");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(root.path().join("etc/apt/sources.list"), "deb http://first.invalid/d bookworm main\n").unwrap();
        std::fs::write(d.join("b.sources"), DEB822).unwrap();
        std::fs::write(d.join("a.list"), "deb http://second.invalid/d bookworm main\n").unwrap();
        std::fs::write(d.join("c.list.disabled"), "deb http://never.invalid/d bookworm main\n").unwrap();
        let uris: Vec<_> = apt_sources(root.path()).unwrap().into_iter().map(|s| s.uri).collect();
        assert_eq!(uris, ["http://first.invalid/d", "http://second.invalid/d", "http://mirror.invalid/debian"]);
    }
}
