//! requirements.txt as pip reads it, and inline specifiers like `numpy==2.1.*`.
//!
//! Why: the researcher's Dockerfile already has a requirements file; pinfold must read
//! the same file pip would, with the same includes (`-r`, `-c`), index options and
//! `--hash` pins, and say which file and line is wrong when it cannot. Each requirement is
//! parsed by `pep508_rs` (PEP 508 with extras and markers); only the line format around
//! it (continuations, comments, options) is pip's own and is handled here.
//!
//! What pip does and pinfold refuses, with a message: editable and direct-URL
//! requirements, `--find-links`, `--no-index`, `--trusted-host`, `--no-binary` (pinfold
//! installs wheels only), and `${VAR}` expansion (the lock must not depend on the
//! machine's environment).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep508_rs::{Requirement as Pep508, VersionOrUrl};

use crate::error::RequirementsError;

/// Deepest chain of `-r`/`-c` includes followed.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Largest requirements file read.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Where a requirement was written: a file and its 1-based line, or the n-th inline
/// specifier (`file` is then `<packages>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One requirement with its `--hash` pins (lowercase sha256 hex digests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub requirement: Pep508,
    pub sha256: Vec<String>,
    pub origin: Origin,
}

impl Requirement {
    /// The normalized distribution name.
    pub fn name(&self) -> &str {
        self.requirement.name.as_ref()
    }
}

/// Everything a requirements file set says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// What to install, in file order.
    pub requirements: Vec<Requirement>,
    /// Version limits that apply only if something else requires the package (`-c`).
    pub constraints: Vec<Requirement>,
    /// `--index-url` / `-i`: replaces the discovered index.
    pub index_url: Option<String>,
    /// `--extra-index-url`, in order.
    pub extra_index_urls: Vec<String>,
    /// `--pre`: pre-releases may be picked.
    pub pre: bool,
}

impl Requirements {
    /// Reads a requirements file and its includes. With `root`, every included file must
    /// lie under it (after resolving symlinks).
    pub fn from_file(path: &Path, root: Option<&Path>) -> Result<Requirements, RequirementsError> {
        let mut out = Requirements::default();
        let mut reader = Reader { root: root.map(canonical_root).transpose()?, stack: Vec::new() };
        reader.read_file(path, false, &mut out)?;
        Ok(out)
    }

    /// Parses the text of a requirements file named `file` (includes are read relative
    /// to `file`'s directory).
    pub fn from_str_in(text: &str, file: &Path) -> Result<Requirements, RequirementsError> {
        let mut out = Requirements::default();
        let mut reader = Reader { root: None, stack: vec![file.to_path_buf()] };
        reader.parse_text(text, file, false, &mut out)?;
        Ok(out)
    }

    /// Inline specifiers (`"numpy==2.1.*"`, `"scikit-learn>=1.5; python_version>='3.10'"`).
    pub fn from_specifiers<S: AsRef<str>>(specs: &[S]) -> Result<Requirements, RequirementsError> {
        let file = PathBuf::from("<packages>");
        let mut out = Requirements::default();
        for (i, spec) in specs.iter().enumerate() {
            let origin = Origin { file: file.clone(), line: i + 1 };
            out.requirements.push(parse_requirement(spec.as_ref(), Vec::new(), &origin)?);
        }
        Ok(out)
    }
}

fn canonical_root(root: &Path) -> Result<PathBuf, RequirementsError> {
    root.canonicalize().map_err(|source| RequirementsError::Read { file: root.to_path_buf(), source })
}

/// Follows includes, remembering the chain to refuse cycles.
struct Reader {
    root: Option<PathBuf>,
    stack: Vec<PathBuf>,
}

impl Reader {
    fn read_file(&mut self, path: &Path, constraint: bool, out: &mut Requirements) -> Result<(), RequirementsError> {
        let text = read_bounded(path)?;
        self.stack.push(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
        let result = self.parse_text(&text, path, constraint, out);
        self.stack.pop();
        result
    }

    fn parse_text(
        &mut self,
        text: &str,
        file: &Path,
        constraint: bool,
        out: &mut Requirements,
    ) -> Result<(), RequirementsError> {
        for (line_no, line) in logical_lines(text) {
            let origin = Origin { file: file.to_path_buf(), line: line_no };
            self.parse_line(&line, &origin, constraint, out)?;
        }
        Ok(())
    }

    fn parse_line(
        &mut self,
        line: &str,
        origin: &Origin,
        constraint: bool,
        out: &mut Requirements,
    ) -> Result<(), RequirementsError> {
        let line = strip_comment(line).trim();
        if line.is_empty() {
            return Ok(());
        }
        if line.contains("${") {
            return Err(at(origin, "environment variables (${...}) are not expanded: write the value"));
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let split = tokens.iter().position(|t| t.starts_with('-')).unwrap_or(tokens.len());
        let options = parse_options(&tokens[split..], origin)?;
        if split == 0 {
            return self.apply_file_options(options, origin, constraint, out);
        }
        let hashes = requirement_hashes(options, origin)?;
        let req = parse_requirement(&tokens[..split].join(" "), hashes, origin)?;
        if constraint {
            out.constraints.push(req);
        } else {
            out.requirements.push(req);
        }
        Ok(())
    }

    fn apply_file_options(
        &mut self,
        options: Vec<Opt>,
        origin: &Origin,
        constraint: bool,
        out: &mut Requirements,
    ) -> Result<(), RequirementsError> {
        for opt in options {
            match opt {
                Opt::Requirement(f) => self.include(&f, origin, constraint, out)?,
                Opt::Constraint(f) => self.include(&f, origin, true, out)?,
                Opt::IndexUrl(u) => out.index_url = Some(u),
                Opt::ExtraIndexUrl(u) => out.extra_index_urls.push(u),
                Opt::Pre => out.pre = true,
                Opt::Ignored => {}
                Opt::Hash(_) => return Err(at(origin, "--hash belongs on a requirement line")),
            }
        }
        Ok(())
    }

    fn include(
        &mut self,
        name: &str,
        origin: &Origin,
        constraint: bool,
        out: &mut Requirements,
    ) -> Result<(), RequirementsError> {
        let base = origin.file.parent().unwrap_or(Path::new(""));
        let path = base.join(name);
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(at(origin, &format!("includes nest deeper than {MAX_INCLUDE_DEPTH} files")));
        }
        let canonical = path.canonicalize().map_err(|e| at(origin, &format!("cannot read {}: {e}", path.display())))?;
        if self.stack.contains(&canonical) {
            return Err(at(origin, &format!("{} includes itself (a cycle)", path.display())));
        }
        if let Some(root) = &self.root {
            if !canonical.starts_with(root) {
                return Err(at(origin, &format!("{} is outside {}", path.display(), root.display())));
            }
        }
        self.read_file(&path, constraint, out)
    }
}

fn read_bounded(path: &Path) -> Result<String, RequirementsError> {
    use std::io::Read;
    let read_err = |source| RequirementsError::Read { file: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(RequirementsError::TooLarge { file: path.to_path_buf(), limit: MAX_FILE_BYTES });
    }
    let text = String::from_utf8(bytes).map_err(|_| RequirementsError::NotUtf8 { file: path.to_path_buf() })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(&text).to_string())
}

/// Joins `\`-continued lines; each logical line carries the number of its first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        match raw.strip_suffix('\\') {
            Some(head) => {
                acc.push_str(head);
                acc.push(' ');
                pending = Some((start, acc));
            }
            None => {
                acc.push_str(raw);
                out.push((start, acc));
            }
        }
    }
    out.extend(pending);
    out
}

/// Cuts a comment: `#` at the start or after whitespace (pip's rule, so a URL fragment
/// like `x.whl#sha256=` is not one).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

enum Opt {
    Requirement(String),
    Constraint(String),
    IndexUrl(String),
    ExtraIndexUrl(String),
    Hash(String),
    Pre,
    Ignored,
}

/// Parses `-r F`, `-rF`, `--requirement=F`, `--requirement F`, … in order.
fn parse_options(tokens: &[&str], origin: &Origin) -> Result<Vec<Opt>, RequirementsError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (name, inline) = split_option(tokens[i]);
        i += 1;
        if let Some(opt) = flag(name, origin)? {
            out.push(opt);
            continue;
        }
        let value = match inline {
            Some(v) => v.to_string(),
            None => {
                let v = tokens.get(i).ok_or_else(|| at(origin, &format!("{name} needs a value")))?;
                i += 1;
                v.to_string()
            }
        };
        out.push(valued(name, value, origin)?);
    }
    Ok(out)
}

/// `--name=value` → (`--name`, value); `-rfile` → (`-r`, file).
fn split_option(token: &str) -> (&str, Option<&str>) {
    if let Some((n, v)) = token.split_once('=').filter(|_| token.starts_with("--")) {
        return (n, Some(v));
    }
    if !token.starts_with("--") && token.len() > 2 && token.is_char_boundary(2) {
        return (&token[..2], Some(&token[2..]));
    }
    (token, None)
}

/// Options without a value.
fn flag(name: &str, origin: &Origin) -> Result<Option<Opt>, RequirementsError> {
    Ok(match name {
        "--pre" => Some(Opt::Pre),
        "--prefer-binary" | "--require-hashes" => Some(Opt::Ignored),
        "--no-index" => return Err(at(origin, "--no-index is not supported: pinfold reads an index")),
        _ => None,
    })
}

/// Options with a value.
fn valued(name: &str, value: String, origin: &Origin) -> Result<Opt, RequirementsError> {
    Ok(match name {
        "-r" | "--requirement" => Opt::Requirement(value),
        "-c" | "--constraint" => Opt::Constraint(value),
        "-i" | "--index-url" => Opt::IndexUrl(value),
        "--extra-index-url" => Opt::ExtraIndexUrl(value),
        "--hash" => Opt::Hash(value),
        "--only-binary" => Opt::Ignored,
        "--no-binary" => return Err(at(origin, "--no-binary is not supported: pinfold installs wheels; build the wheel in a pinfold `step` and pass it as a file")),
        "-e" | "--editable" => return Err(at(origin, "editable requirements are not supported: build the wheel in a pinfold `step`")),
        "-f" | "--find-links" => return Err(at(origin, "--find-links is not supported: pass local wheels as files")),
        "--trusted-host" => return Err(at(origin, "--trusted-host is not supported: the index must serve verified HTTPS")),
        other => return Err(at(origin, &format!("unknown option {other}"))),
    })
}

/// The sha256 pins of a requirement line's `--hash` options.
fn requirement_hashes(options: Vec<Opt>, origin: &Origin) -> Result<Vec<String>, RequirementsError> {
    let mut out = Vec::new();
    for opt in options {
        let Opt::Hash(value) = opt else {
            return Err(at(origin, "only --hash may follow a requirement on its line"));
        };
        let (algo, digest) =
            value.split_once(':').ok_or_else(|| at(origin, &format!("--hash {value}: expected sha256:<hex>")))?;
        if algo != "sha256" {
            return Err(at(origin, &format!("--hash {algo}: pinfold checks sha256 digests only")));
        }
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(at(origin, &format!("--hash sha256:{digest}: not 64 hex digits")));
        }
        out.push(digest.to_ascii_lowercase());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn parse_requirement(text: &str, sha256: Vec<String>, origin: &Origin) -> Result<Requirement, RequirementsError> {
    // The message quotes the requirement: pep508_rs's own error names only a column.
    let requirement = crate::pep508_guard(|| Pep508::from_str(text.trim()))
        .map_err(|e| at(origin, &format!("`{}`: {}", text.trim(), first_line(&e))))?;
    if let Some(VersionOrUrl::Url(_)) = requirement.version_or_url {
        return Err(at(
            origin,
            &format!("{}: direct URL requirements are not supported: pass the wheel as a file", requirement.name),
        ));
    }
    Ok(Requirement { requirement, sha256, origin: origin.clone() })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

fn at(origin: &Origin, message: &str) -> RequirementsError {
    RequirementsError::Line { file: origin.file.clone(), line: origin.line, message: message.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const H1: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const H2: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn parse(text: &str) -> Result<Requirements, RequirementsError> {
        Requirements::from_str_in(text, Path::new("req.txt"))
    }

    fn line_of(err: RequirementsError) -> (String, usize, String) {
        match err {
            RequirementsError::Line { file, line, message } => (file.display().to_string(), line, message),
            other => panic!("not a line error: {other}"),
        }
    }

    #[test]
    fn reads_requirements_extras_markers_and_options() {
        let text = "# a comment\n\nnumpy==2.1.* # pinned\nrequests[socks,security] >=2.31 ; python_version >= '3.8'\n\
                    -i https://index.invalid/simple\n--extra-index-url=https://extra.invalid/simple\n--pre\n";
        let r = parse(text).unwrap();
        assert_eq!(r.requirements.len(), 2);
        assert_eq!(r.requirements[0].name(), "numpy");
        assert_eq!(r.requirements[0].origin.line, 3);
        assert_eq!(r.requirements[1].requirement.extras.len(), 2);
        assert!(r.requirements[1].requirement.marker.contents().is_some());
        assert_eq!(r.index_url.as_deref(), Some("https://index.invalid/simple"));
        assert_eq!(r.extra_index_urls, vec!["https://extra.invalid/simple"]);
        assert!(r.pre);
    }

    #[test]
    fn hashes_across_continuations() {
        let text =
            format!("numpy==2.1.0 \\\n    --hash=sha256:{H1} \\\n    --hash sha256:{}\nscipy\n", H2.to_uppercase());
        let r = parse(&text).unwrap();
        assert_eq!(r.requirements[0].sha256, vec![H1.to_string(), H2.to_string()]);
        assert_eq!(r.requirements[0].origin.line, 1);
        assert_eq!(r.requirements[1].origin.line, 4);
    }

    #[test]
    fn errors_name_file_and_line() {
        let (file, line, msg) = line_of(parse("numpy\n\nnot a ==== requirement\n").unwrap_err());
        assert_eq!((file.as_str(), line), ("req.txt", 3));
        assert!(!msg.is_empty());
        let (_, line, msg) = line_of(parse("a\n--bogus x\n").unwrap_err());
        assert_eq!(line, 2);
        assert!(msg.contains("--bogus"), "{msg}");
        let (_, line, msg) = line_of(parse("x==1 --hash=md5:abc\n").unwrap_err());
        assert_eq!(line, 1);
        assert!(msg.contains("sha256"), "{msg}");
        let (_, _, msg) = line_of(parse("x==1 \\\n --hash=sha256:abc\n").unwrap_err());
        assert!(msg.contains("64 hex"), "{msg}");
        let (_, line, msg) = line_of(parse("a\nfoo @ https://x.invalid/foo.whl\n").unwrap_err());
        assert_eq!(line, 2);
        assert!(msg.contains("foo") && msg.contains("direct URL"), "{msg}");
        let (_, _, msg) = line_of(parse("-e .\n").unwrap_err());
        assert!(msg.contains("editable"), "{msg}");
        let (_, _, msg) = line_of(parse("foo==${VERSION}\n").unwrap_err());
        assert!(msg.contains("environment"), "{msg}");
    }

    #[test]
    fn crlf_and_bom_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.txt");
        fs::write(&p, "\u{feff}numpy==2.1.0\r\nscipy \\\r\n  >=1.10\r\n").unwrap();
        let r = Requirements::from_file(&p, None).unwrap();
        assert_eq!(r.requirements.len(), 2);
        assert_eq!(r.requirements[1].requirement.to_string(), "scipy>=1.10");
    }

    #[test]
    fn includes_are_relative_and_constraints_apply_only() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("top.txt"), "-r sub/base.txt\n-c sub/pins.txt\ntqdm\n").unwrap();
        fs::write(dir.path().join("sub/base.txt"), "numpy\n-r more.txt\n").unwrap();
        fs::write(dir.path().join("sub/more.txt"), "scipy\n").unwrap();
        fs::write(dir.path().join("sub/pins.txt"), "numpy<3\n-r more-pins.txt\n").unwrap();
        fs::write(dir.path().join("sub/more-pins.txt"), "scipy<2\n").unwrap();
        let r = Requirements::from_file(&dir.path().join("top.txt"), Some(dir.path())).unwrap();
        let names: Vec<_> = r.requirements.iter().map(|q| q.name().to_string()).collect();
        assert_eq!(names, ["numpy", "scipy", "tqdm"]);
        let cons: Vec<_> = r.constraints.iter().map(|q| q.requirement.to_string()).collect();
        assert_eq!(cons, ["numpy<3", "scipy<2"]);
        assert!(r.requirements[1].origin.file.ends_with("sub/more.txt"));
    }

    #[test]
    fn cycles_depth_and_escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "x\n-r b.txt\n").unwrap();
        fs::write(dir.path().join("b.txt"), "-r a.txt\n").unwrap();
        let (file, line, msg) = line_of(Requirements::from_file(&dir.path().join("a.txt"), None).unwrap_err());
        assert!(file.ends_with("b.txt") && line == 1 && msg.contains("cycle"), "{file}:{line} {msg}");
        for i in 0..20 {
            fs::write(dir.path().join(format!("d{i}.txt")), format!("-r d{}.txt\n", i + 1)).unwrap();
        }
        let (_, _, msg) = line_of(Requirements::from_file(&dir.path().join("d0.txt"), None).unwrap_err());
        assert!(msg.contains("deeper"), "{msg}");
        let inner = dir.path().join("inner");
        fs::create_dir(&inner).unwrap();
        fs::write(inner.join("r.txt"), "-r ../a.txt\n").unwrap();
        let (_, _, msg) = line_of(Requirements::from_file(&inner.join("r.txt"), Some(&inner)).unwrap_err());
        assert!(msg.contains("outside"), "{msg}");
        let (_, line, msg) = line_of(parse("x\n-r missing.txt\n").unwrap_err());
        assert!(line == 2 && msg.contains("missing.txt"), "{msg}");
    }

    #[test]
    fn inline_specifiers() {
        let r = Requirements::from_specifiers(&["numpy==2.1.*", "scikit-learn>=1.5; python_version>='3.10'"]).unwrap();
        assert_eq!(r.requirements[1].name(), "scikit-learn");
        let err = Requirements::from_specifiers(&["ok", "bad name!"]).unwrap_err();
        let (file, line, _) = line_of(err);
        assert_eq!((file.as_str(), line), ("<packages>", 2));
    }
}
