//! Which package set stands for a Dockerfile's base image: the Debian or Ubuntu
//! release a `debian:`/`ubuntu:` tag names, and for `python:3.X` the Debian release
//! whose `python3` is that version (or the nearest one, when none ships it).
//!
//! The tables are the releases' facts (their codenames, numbers and `python3`
//! versions), kept here because no file of the machine says them and the lock must
//! not depend on what a mirror calls `stable` today.

/// One release of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub suite: String,
    pub ubuntu: bool,
    /// The version of its `python3`.
    pub python: &'static str,
    /// Said in the report and the build file (an old release, a moving tag).
    pub note: Option<String>,
}

impl Release {
    pub fn suites(&self) -> Vec<String> {
        vec![self.suite.clone(), format!("{}-updates", self.suite), format!("{}-security", self.suite)]
    }

    pub fn components(&self) -> Vec<&'static str> {
        if self.ubuntu {
            vec!["main", "universe"]
        } else {
            vec!["main"]
        }
    }

    /// The release of a kept `python:` base: only its interpreter version matters.
    pub fn python_image(version: &str) -> Release {
        let python = python_releases().iter().find(|r| r.python == version).map_or("3", |r| r.python);
        Release { suite: String::new(), ubuntu: false, python, note: None }
    }
}

/// Debian releases: codename, number, python3. Bullseye (11) is listed for
/// `FROM debian:bullseye`; only the current releases stand in for a `python:` image.
pub const DEBIAN_RELEASES: &[(&str, &str, &str)] =
    &[("bullseye", "11", "3.9"), ("bookworm", "12", "3.11"), ("trixie", "13", "3.13")];
const DEBIAN_CURRENT: &[&str] = &["bookworm", "trixie"];
const DEBIAN_STABLE: &str = "trixie";
const UBUNTU_RELEASES: &[(&str, &str, &str)] =
    &[("focal", "20.04", "3.8"), ("jammy", "22.04", "3.10"), ("noble", "24.04", "3.12")];
const UBUNTU_LATEST: &str = "noble";

pub struct PythonRelease {
    pub suite: &'static str,
    pub python: &'static str,
}

/// The current Debian releases and their `python3`, oldest first.
pub fn python_releases() -> Vec<PythonRelease> {
    DEBIAN_RELEASES
        .iter()
        .filter(|(s, _, _)| DEBIAN_CURRENT.contains(s))
        .map(|(s, _, p)| PythonRelease { suite: s, python: p })
        .collect()
}

/// What a `FROM` image is to import.
#[derive(Debug, Clone)]
pub enum BaseKind {
    /// `python:3.X…`: the version asked for.
    Python(String),
    /// `python`, `python:3`, `python:slim`: no minor version (the newest is taken).
    PythonDefault(String),
    Debian(Release),
    Other,
}

fn minor(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The Debian release for Python `version` (`3.11`), and whether it is that version;
/// the nearest otherwise (ties go to the newer release, whose interpreter has the
/// syntax of both). `None` for what is not a `3.N` version.
pub fn python_release(version: &str) -> Option<(Release, bool)> {
    let (major, want) = minor(version)?;
    if major != 3 {
        return None;
    }
    let best = python_releases().into_iter().min_by_key(|r| {
        let have = minor(r.python).map_or(0, |m| m.1);
        (have.abs_diff(want), std::cmp::Reverse(have))
    })?;
    let exact = minor(best.python).map(|m| m.1) == Some(want);
    Some((Release { suite: best.suite.to_string(), ubuntu: false, python: best.python, note: None }, exact))
}

/// Repositories that are images of their own, not misspelt stage names.
pub fn known_repository(name: &str) -> bool {
    matches!(
        name,
        "python" | "debian" | "ubuntu" | "alpine" | "busybox" | "node" | "golang" | "rust" | "fedora" | "centos"
    )
}

/// `debian:bookworm-slim`, `python:3.11-slim`, `ubuntu:22.04`, or another image.
pub fn classify(image: &str) -> BaseKind {
    let no_digest = image.split('@').next().unwrap_or(image);
    let (repo, tag) = match no_digest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (no_digest, "latest"),
    };
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    let repo = repo.strip_prefix("library/").unwrap_or(repo);
    let first = tag.split('-').next().unwrap_or(tag);
    match repo {
        "python" => {
            let newest = python_releases().last().map_or("3", |r| r.python).to_string();
            match minor(first) {
                Some((3, m)) => BaseKind::Python(format!("3.{m}")),
                _ => BaseKind::PythonDefault(newest),
            }
        }
        "debian" => {
            let code = first.split('.').next().unwrap_or(first);
            let found = DEBIAN_RELEASES.iter().find(|(s, n, _)| *s == code || *n == code);
            match (found, code) {
                (Some((s, _, p)), _) => {
                    let note = (!DEBIAN_CURRENT.contains(s)).then(|| {
                        format!("{s} is no longer a current Debian release: its packages may be gone from the mirror")
                    });
                    BaseKind::Debian(Release { suite: s.to_string(), ubuntu: false, python: p, note })
                }
                (None, "latest" | "stable") => {
                    let p = DEBIAN_RELEASES.iter().find(|r| r.0 == DEBIAN_STABLE).map_or("3", |r| r.2);
                    BaseKind::Debian(Release {
                        suite: DEBIAN_STABLE.to_string(),
                        ubuntu: false,
                        python: p,
                        note: Some(format!("`{image}` moves with each release: {DEBIAN_STABLE}, stable today")),
                    })
                }
                _ => BaseKind::Other,
            }
        }
        "ubuntu" => {
            let found = UBUNTU_RELEASES.iter().find(|(s, n, _)| *s == first || *n == first);
            let (suite, python, moving) = match (found, first) {
                (Some((s, _, p)), _) => (*s, *p, false),
                (None, "latest" | "rolling") => {
                    let p = UBUNTU_RELEASES.iter().find(|r| r.0 == UBUNTU_LATEST).map_or("3", |r| r.2);
                    (UBUNTU_LATEST, p, true)
                }
                _ => return BaseKind::Other,
            };
            let mut note =
                "an Ubuntu release: the packages come from an Ubuntu archive (the machine's apt sources, `--mirror` or `mirror` must serve it)".to_string();
            if moving {
                note.push_str(&format!("; `{image}` moves with each release: {suite} today"));
            }
            BaseKind::Debian(Release { suite: suite.to_string(), ubuntu: true, python, note: Some(note) })
        }
        _ => BaseKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_versions_map_to_releases_and_fall_back_to_the_nearest() {
        assert_eq!(python_release("3.11").map(|(r, e)| (r.suite, e)), Some(("bookworm".into(), true)));
        assert_eq!(python_release("3.13").map(|(r, e)| (r.suite, e)), Some(("trixie".into(), true)));
        assert_eq!(python_release("3.8").map(|(r, e)| (r.suite, e)), Some(("bookworm".into(), false)));
        assert_eq!(python_release("3.12").map(|(r, e)| (r.suite, e)), Some(("trixie".into(), false)));
        assert!(python_release("2.7").is_none());
        assert!(python_release("x").is_none());
    }

    #[test]
    fn tags_name_releases() {
        assert!(matches!(classify("python:3.11-slim"), BaseKind::Python(v) if v == "3.11"));
        assert!(matches!(classify("python:3.8.18-slim-bullseye"), BaseKind::Python(v) if v == "3.8"));
        assert!(matches!(classify("python"), BaseKind::PythonDefault(_)));
        assert!(matches!(classify("debian:bookworm-slim"), BaseKind::Debian(r) if r.suite == "bookworm"));
        assert!(matches!(classify("debian:12.5"), BaseKind::Debian(r) if r.suite == "bookworm"));
        assert!(
            matches!(classify("docker.io/library/ubuntu:22.04"), BaseKind::Debian(r) if r.suite == "jammy" && r.ubuntu)
        );
        assert!(matches!(classify("node:20"), BaseKind::Other));
        assert!(matches!(classify("debian:sid"), BaseKind::Other));
    }
}
