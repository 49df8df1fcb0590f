//! What a version specifier pins, per ecosystem, and how to say what it does not:
//! "no version", "a range, not a pin", "a prefix match", "a branch, not a commit". The
//! rules share these so that `numpy>=1.20` is described the same way in a `RUN pip
//! install`, a requirements file and an environment file's `pip:` section.

/// A range: something that matches more than one version.
pub const RANGE: &str = "a range, not a pin";
pub const NO_VERSION: &str = "no version";

/// True for a full git commit hash.
pub fn is_full_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a VCS URL (`git+https://host/repo@REF#egg=x`, `https://host/repo.git#REF`)
/// pins: `None` when it names a full commit, else the problem.
pub fn vcs(url: &str) -> Option<&'static str> {
    let no_fragment = url.split('#').next().unwrap_or(url);
    let after_slash = no_fragment.rsplit('/').next().unwrap_or("");
    match after_slash.rsplit_once('@') {
        Some((_, r)) if is_full_commit(r) => None,
        Some((_, r)) if is_moving_ref(r) => Some("a branch, not a commit"),
        Some(_) => Some("a branch or tag, not a commit"),
        None => Some("no commit: the default branch as it is that day"),
    }
}

/// Branch names and words that always move.
pub fn is_moving_ref(r: &str) -> bool {
    matches!(r.to_ascii_lowercase().as_str(), "master" | "main" | "head" | "trunk" | "develop" | "dev" | "latest")
}

/// True for a path or URL that names one file: a local path, a wheel or sdist, a VCS
/// URL at a full commit, or a URL with a `#sha256=` fragment.
pub fn local_or_artifact(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    spec.starts_with('.')
        || spec.starts_with('/')
        || spec.starts_with('~')
        || lower.starts_with("file:")
        || lower.ends_with(".whl")
        || lower.ends_with(".tar.gz")
        || lower.ends_with(".zip")
        || (is_vcs(&lower) && vcs(spec).is_none())
        || lower.contains("#sha256=")
}

fn is_vcs(lower: &str) -> bool {
    ["git+", "hg+", "svn+", "bzr+"].iter().any(|p| lower.contains(p))
}

/// What a pip requirement (`flask==3.0.3`, `numpy>=1.20`, `x @ git+…`) pins: `None`
/// when it names one version or one artifact, else the problem.
pub fn pip(spec: &str) -> Option<&'static str> {
    let spec = spec.split(';').next().unwrap_or("").trim();
    let compact: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    let lower = compact.to_ascii_lowercase();
    if is_vcs(&lower) {
        let url = compact.split_once('@').filter(|(n, _)| !n.contains(':')).map_or(compact.as_str(), |(_, u)| u);
        return vcs(url);
    }
    if local_or_artifact(&compact) {
        return None;
    }
    if let Some((_, url)) = compact.split_once('@') {
        if local_or_artifact(url) {
            return None;
        }
        return Some("a URL without a hash");
    }
    if let Some((_, version)) = compact.split_once("==") {
        let version = version.trim_start_matches('=');
        if version.contains('*') {
            return Some("a prefix match, not a pin");
        }
        if version.contains(',') {
            return Some(RANGE);
        }
        return None;
    }
    if compact.contains(['<', '>', '~', '!', '=']) {
        return Some(RANGE);
    }
    Some(NO_VERSION)
}

/// What a conda MatchSpec pins. Conda's `=1.26` is a prefix (any 1.26.x, any build),
/// `==1.26.4` one version but any of its builds, `*` nothing: only a version with a
/// build string (`numpy=1.26.4=py311h64a7726_0`), a package file or URL, or an
/// explicit lock names one package file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conda {
    /// One package file.
    Pinned,
    /// One version, but the build is left to the solver (PF405).
    AnyBuild,
    /// Not a pin; the phrase says why (PF307, PF403).
    Unpinned(&'static str),
}

pub const CONDA_PREFIX: &str = "a prefix match, not a pin";
pub const CONDA_STAR: &str = "`*` pins nothing";

pub fn conda(spec: &str) -> Conda {
    let s = spec.trim();
    let lower = s.to_ascii_lowercase();
    if s.starts_with('.')
        || s.starts_with('/')
        || lower.contains("://")
        || lower.ends_with(".conda")
        || lower.ends_with(".tar.bz2")
    {
        return Conda::Pinned;
    }
    // `channel::name…` and `channel/subdir::name…`.
    let s = s.rsplit_once("::").map_or(s, |(_, r)| r).trim();
    // Bracket keys: `numpy[version='>=1.20', build=py*]`.
    if let Some((head, rest)) = s.split_once('[') {
        let inner = rest.trim_end_matches(']');
        let mut version = None;
        let mut build = None;
        for kv in inner.split(',') {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = v.trim().trim_matches(['\'', '"']);
            match k.trim() {
                "md5" | "sha256" | "url" => return Conda::Pinned,
                "version" => version = Some(v.to_string()),
                "build" => build = Some(v.to_string()),
                _ => {}
            }
        }
        let outer = conda(head);
        return match (version, outer) {
            (Some(v), _) => classify_conda(&v, build.as_deref(), true),
            (None, c) => c,
        };
    }
    // `name VERSION [BUILD]`, with the version in VersionSpec syntax.
    let mut words = s.split_whitespace();
    let first = words.next().unwrap_or("");
    if let Some(version) = words.next() {
        return classify_conda(version, words.next(), true);
    }
    // `name=VERSION[=BUILD]`, `name==VERSION[=BUILD]`, `name>=…`.
    let Some(op_at) = first.find(['=', '<', '>', '!', '~']) else {
        return Conda::Unpinned(NO_VERSION);
    };
    let rest = &first[op_at..];
    if let Some(v) = rest.strip_prefix("==") {
        let (version, build) = v.split_once('=').map_or((v, None), |(a, b)| (a, Some(b)));
        return classify_conda(version, build, true);
    }
    if let Some(v) = rest.strip_prefix('=').filter(|v| !v.starts_with(['<', '>'])) {
        let (version, build) = v.split_once('=').map_or((v, None), |(a, b)| (a, Some(b)));
        return classify_conda(version, build, false);
    }
    Conda::Unpinned(RANGE)
}

/// `exact`: the version came after `==` or in the spaced form, where conda matches it
/// exactly; after a single `=` it is a prefix.
fn classify_conda(version: &str, build: Option<&str>, exact: bool) -> Conda {
    let version = version.trim();
    if version.is_empty() || version == "*" {
        return Conda::Unpinned(CONDA_STAR);
    }
    if version.contains([',', '|', '<', '>', '!', '~']) || version.starts_with('=') && version.len() > 1 && !exact {
        return Conda::Unpinned(RANGE);
    }
    let version = version.trim_start_matches("==");
    if version.contains('*') {
        return Conda::Unpinned(CONDA_PREFIX);
    }
    let build_pinned = build.is_some_and(|b| !b.is_empty() && !b.contains('*'));
    if !exact {
        // `=1.26.4` matches 1.26.4 and 1.26.4.*: one version in practice when it has
        // three or more parts; `=1.26` and `=3` are any 1.26.x and any 3.x.
        let parts = version.split('.').count();
        if parts < 3 && !build_pinned {
            return Conda::Unpinned(CONDA_PREFIX);
        }
    }
    if build_pinned {
        Conda::Pinned
    } else {
        Conda::AnyBuild
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_specs() {
        assert_eq!(pip("flask==3.0.3"), None);
        assert_eq!(pip("flask === 3.0.3"), None);
        assert_eq!(pip("numpy>=1.20"), Some(RANGE));
        assert_eq!(pip("numpy~=1.20"), Some(RANGE));
        assert_eq!(pip("numpy==1.*"), Some("a prefix match, not a pin"));
        assert_eq!(pip("numpy"), Some(NO_VERSION));
        assert_eq!(pip("torch; python_version<'3.12'"), Some(NO_VERSION));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(pip(&format!("git+https://git.example.org/o/r@{commit}#egg=r")), None);
        assert_eq!(pip(&format!("r @ git+https://git.example.org/o/r@{commit}")), None);
        assert_eq!(pip("git+https://git.example.org/o/r@master#egg=r"), Some("a branch, not a commit"));
        assert_eq!(
            pip("git+ssh://git@git.example.org/o/r#egg=r"),
            Some("no commit: the default branch as it is that day")
        );
        assert_eq!(pip("./local"), None);
        assert_eq!(pip("x @ https://example.org/x-1.0.tar.gz#sha256=ab"), None);
    }

    #[test]
    fn conda_specs() {
        assert_eq!(conda("numpy"), Conda::Unpinned(NO_VERSION));
        assert_eq!(conda("numpy=1.26"), Conda::Unpinned(CONDA_PREFIX));
        assert_eq!(conda("python=3.11"), Conda::Unpinned(CONDA_PREFIX));
        assert_eq!(conda("numpy=1.26.*"), Conda::Unpinned(CONDA_PREFIX));
        assert_eq!(conda("blas=*=openblas"), Conda::Unpinned(CONDA_STAR));
        assert_eq!(conda("numpy>=1.20"), Conda::Unpinned(RANGE));
        assert_eq!(conda("numpy>=1.20,<2"), Conda::Unpinned(RANGE));
        assert_eq!(conda("numpy=1.26.4"), Conda::AnyBuild);
        assert_eq!(conda("numpy==1.26"), Conda::AnyBuild);
        assert_eq!(conda("numpy 1.26.4"), Conda::AnyBuild);
        assert_eq!(conda("numpy=1.26.4=py311h64a7726_0"), Conda::Pinned);
        assert_eq!(conda("conda-forge::numpy==1.26.4=py311h64a7726_0"), Conda::Pinned);
        assert_eq!(conda("numpy 1.26.4 py311h64a7726_0"), Conda::Pinned);
        assert_eq!(conda("numpy=1.26.4=*"), Conda::AnyBuild);
        assert_eq!(conda("numpy[version='>=1.20']"), Conda::Unpinned(RANGE));
        assert_eq!(conda("numpy[md5=abc]"), Conda::Pinned);
        assert_eq!(conda("https://conda.example.org/x-1.0-0.conda"), Conda::Pinned);
    }
}
