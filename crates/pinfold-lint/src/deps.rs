//! Dependency files that an image installs from: pip requirements files and conda
//! `environment.yml`. Both are read here with spans.
//!
//! `environment.yml` is read by a small reader of the YAML subset such files use
//! (block and flow sequences, `key:` mappings, comments, quoted scalars) rather than a
//! YAML crate: none is a dependency of pinfold, a full YAML parser is a large thing to
//! add for one list, and the rules need byte spans that serde-based readers do not
//! keep. Anything outside the subset is skipped, never misread as a dependency.

use super::mapped::MappedText;
use std::ops::Range;

/// One requirement line of a requirements file.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// The specifier as written, e.g. `flask==3.0.3` or `requests[socks] >= 2`.
    pub spec: String,
    /// Normalised project name (lower case, `-` for `_` and `.`).
    pub name: String,
    pub span: Range<usize>,
    pub hashes: usize,
    pub editable: bool,
}

/// An `-r FILE` or `-c FILE` line.
#[derive(Debug, Clone)]
pub struct Include {
    pub constraint: bool,
    pub path: String,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Requirements {
    pub entries: Vec<Requirement>,
    pub includes: Vec<Include>,
    /// `--require-hashes` appears in the file.
    pub require_hashes: bool,
}

/// What the requirement files that include one another say together: pip reads them
/// as one list, so hash-checking mode and constraints apply across all of them.
#[derive(Debug, Clone, Default)]
pub struct Group {
    /// Hash-checking mode: some entry has `--hash`, or `--require-hashes` is given.
    pub hash_mode: bool,
    /// Names pinned with `==` by a constraints file of the group.
    pub constrained: Vec<String>,
}

pub fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace(['_', '.'], "-")
}

pub fn project_name(spec: &str) -> &str {
    let end = spec
        .find(|c: char| matches!(c, '[' | '<' | '>' | '=' | '!' | '~' | ';' | '@' | '(') || c.is_whitespace())
        .unwrap_or(spec.len());
    &spec[..end]
}

impl Requirements {
    pub fn parse(text: &str) -> Requirements {
        let mut out = Requirements::default();
        let mut logical = MappedText::new();
        let mut offset = 0;
        for piece in text.split_inclusive('\n') {
            let line = piece.trim_end_matches(['\n', '\r']);
            let start = offset;
            offset += piece.len();
            match line.strip_suffix('\\') {
                Some(cont) => logical.push(cont, start),
                None => {
                    logical.push(line, start);
                    out.line(&std::mem::take(&mut logical));
                }
            }
        }
        if !logical.text.is_empty() {
            out.line(&logical);
        }
        out
    }

    fn line(&mut self, m: &MappedText) {
        let code_end = comment_start(&m.text);
        let words = super::dockerfile::split_words(&m.text[..code_end]);
        let Some((first, first_range)) = words.first() else {
            return;
        };
        if first.starts_with('-') {
            let (opt, attached) = match first.split_once('=') {
                Some((o, v)) => (o, Some(v)),
                None if first.starts_with("-r") && first.len() > 2 => ("-r", Some(&first[2..])),
                None if first.starts_with("-c") && first.len() > 2 => ("-c", Some(&first[2..])),
                None if first.starts_with("-e") && first.len() > 2 => ("-e", Some(&first[2..])),
                None => (*first, None),
            };
            let value =
                attached.map(|v| (v, first_range.clone())).or_else(|| words.get(1).map(|(v, r)| (*v, r.clone())));
            match opt {
                "-r" | "--requirement" | "-c" | "--constraint" => {
                    if let Some((v, r)) = value {
                        self.includes.push(Include {
                            constraint: opt.starts_with("-c") || opt == "--constraint",
                            path: v.to_string(),
                            span: m.map_range(r),
                        });
                    }
                }
                "-e" | "--editable" => {
                    if let Some((v, r)) = value {
                        self.entries.push(Requirement {
                            spec: v.to_string(),
                            name: normalize(project_name(v)),
                            span: m.map_range(r),
                            hashes: 0,
                            editable: true,
                        });
                    }
                }
                "--require-hashes" => self.require_hashes = true,
                _ => {}
            }
            return;
        }
        // The specifier runs up to the first per-requirement option (`--hash=…`).
        let code = &m.text[..code_end];
        let spec_end = words.iter().find(|(w, _)| w.starts_with("--")).map_or(code.len(), |(_, r)| r.start);
        let spec = code[first_range.start..spec_end].trim_end();
        let hashes = words.iter().filter(|(w, _)| w.starts_with("--hash")).count();
        self.entries.push(Requirement {
            spec: spec.to_string(),
            name: normalize(project_name(spec)),
            span: m.map_range(first_range.start..first_range.start + spec.len()),
            hashes,
            editable: false,
        });
    }
}

/// Where a `#` comment starts: at the line start or after whitespace.
fn comment_start(line: &str) -> usize {
    let b = line.as_bytes();
    (0..b.len()).find(|&i| b[i] == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace())).unwrap_or(b.len())
}

/// A dependency of a conda environment file.
#[derive(Debug, Clone)]
pub struct EnvDependency {
    pub spec: String,
    pub span: Range<usize>,
    /// Listed under `- pip:` rather than as a conda package.
    pub pip: bool,
    /// A `- -e URL` (or `--editable`) line under `pip:`; `spec` is the URL.
    pub editable: bool,
}

/// A conda environment file, a conda spec list (`conda install --file`, one
/// MatchSpec per line) or an explicit lock (`@EXPLICIT`, which pins every package by
/// URL and has no dependencies to report).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub dependencies: Vec<EnvDependency>,
    /// `- -r FILE` lines under `pip:`, relative to the environment file.
    pub pip_includes: Vec<String>,
}

impl Environment {
    pub fn parse(text: &str) -> Environment {
        if is_explicit_lock(text) || is_conda_lock(text) {
            return Environment::default();
        }
        let mut deps = environment_dependencies(text);
        if deps.is_empty() && !has_top_key(text, "dependencies") {
            deps = spec_list(text);
        }
        let mut env = Environment::default();
        for mut d in deps {
            if d.pip && d.spec.starts_with('-') {
                let (opt, value) = d.spec.split_once([' ', '=']).unwrap_or((&d.spec, ""));
                let value = value.trim();
                let value_start = d.span.end - value.len();
                match opt {
                    "-e" | "--editable" if !value.is_empty() => {
                        d.spec = value.to_string();
                        d.span = value_start..d.span.end;
                        d.editable = true;
                    }
                    "-r" | "--requirement" if !value.is_empty() => {
                        env.pip_includes.push(value.to_string());
                        continue;
                    }
                    // Other pip options (`--index-url …`) are not dependencies.
                    _ => continue,
                }
            }
            env.dependencies.push(d);
        }
        env
    }
}

/// `conda list --explicit` output: package URLs (with their md5), nothing to solve.
fn is_explicit_lock(text: &str) -> bool {
    text.lines().map(str::trim).any(|l| l == "@EXPLICIT")
}

/// A conda-lock file (`conda-lock.yml`): every package with its URL and hash.
fn is_conda_lock(text: &str) -> bool {
    has_top_key(text, "package") && has_top_key(text, "metadata")
}

fn has_top_key(text: &str, key: &str) -> bool {
    text.lines().any(|l| l.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with(':')))
}

/// A conda spec list: one MatchSpec per line, `#` comments.
fn spec_list(text: &str) -> Vec<EnvDependency> {
    let mut out = Vec::new();
    let mut offset = 0;
    for piece in text.split_inclusive('\n') {
        let line = piece.trim_end_matches(['\n', '\r']);
        let code = line[..comment_start(line)].trim_end();
        let body = code.trim_start();
        if !body.is_empty() && !body.contains(": ") && !body.ends_with(':') {
            let at = offset + (code.len() - body.len());
            out.push(EnvDependency { spec: body.to_string(), span: at..at + body.len(), pip: false, editable: false });
        }
        offset += piece.len();
    }
    out
}

/// True when a file reads as a conda environment: a top-level `dependencies:` whose
/// items are specs (not mappings, as in a Helm chart), or an explicit lock.
pub fn looks_like_environment(text: &str) -> bool {
    if is_explicit_lock(text) {
        return true;
    }
    if !has_top_key(text, "dependencies") || has_top_key(text, "apiVersion") {
        return false;
    }
    let deps = environment_dependencies(text);
    !deps.is_empty() && deps.iter().all(|d| !d.spec.contains(": "))
}

/// True when every line of a file reads as a pip requirement (`name`, `name[extra]`
/// followed by a version specifier, a URL or a marker) or a pip option (`-r`, `-e`,
/// `--hash`, `--index-url`, …), and there is at least one requirement.
pub fn looks_like_requirements(text: &str) -> bool {
    let mut any = false;
    for line in text.lines() {
        let code = line[..comment_start(line)].trim().trim_end_matches('\\').trim();
        if code.is_empty() || code.starts_with('-') {
            continue;
        }
        if !is_requirement_line(code) {
            return false;
        }
        any = true;
    }
    any
}

fn is_requirement_line(code: &str) -> bool {
    let b = code.as_bytes();
    if !b[0].is_ascii_alphanumeric() {
        // A local path or URL on its own line.
        return code.starts_with("./") || code.starts_with("../");
    }
    let name_end =
        code.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))).unwrap_or(code.len());
    let rest = &code[name_end..];
    if rest.contains("://") {
        // `git+https://…` as a whole line, or `name @ URL`.
        let before = &code[..code.find("://").unwrap_or(0)];
        return before.ends_with("git+https")
            || before.ends_with("git+ssh")
            || before == "https"
            || before == "http"
            || rest.trim_start().starts_with('@')
            || rest.trim_start().starts_with('[');
    }
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(r) => match r.find(']') {
            Some(i) => r[i + 1..].trim_start(),
            None => return false,
        },
        None => rest,
    };
    // What may follow a name: nothing, a version specifier, a marker.
    rest.is_empty()
        || (rest.starts_with(['<', '>', '=', '!', '~', ';', '('])
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || " .*,<>=!~;()'\"_-+".contains(c)))
}

/// The `dependencies` of an `environment.yml`.
pub fn environment_dependencies(text: &str) -> Vec<EnvDependency> {
    struct L<'a> {
        start: usize,
        indent: usize,
        body: &'a str,
    }
    let mut lines = Vec::new();
    let mut offset = 0;
    for piece in text.split_inclusive('\n') {
        let raw = piece.trim_end_matches(['\n', '\r']);
        let start = offset;
        offset += piece.len();
        let code = raw[..comment_start(raw)].trim_end();
        let body = code.trim_start();
        if body.is_empty() {
            continue;
        }
        lines.push(L { start: start + (code.len() - body.len()), indent: code.len() - body.len(), body });
    }

    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        i += 1;
        if l.indent != 0 || !l.body.starts_with("dependencies:") {
            continue;
        }
        let after = &l.body["dependencies:".len()..];
        if after.trim_start().starts_with('[') {
            let at = l.start + "dependencies:".len() + (after.len() - after.trim_start().len());
            flow_items(after.trim_start(), at, false, &mut out);
            continue;
        }
        // The block sequence below the key; YAML lets its dashes sit at the key's indent.
        let mut list_indent = None;
        while let Some(item) = lines.get(i) {
            let Some(value) = item.body.strip_prefix('-').filter(|v| v.is_empty() || v.starts_with(' ')) else {
                break;
            };
            if *list_indent.get_or_insert(item.indent) != item.indent {
                break;
            }
            i += 1;
            let value_trim = value.trim_start();
            let value_start = item.start + 1 + (value.len() - value_trim.len());
            if let Some(rest) = value_trim.strip_prefix("pip:") {
                let rest_trim = rest.trim_start();
                if rest_trim.starts_with('[') {
                    flow_items(rest_trim, value_start + 4 + (rest.len() - rest_trim.len()), true, &mut out);
                    continue;
                }
                // Nested list of pip requirements, deeper than the `- pip:` item.
                while let Some(sub) = lines.get(i) {
                    if sub.indent <= item.indent {
                        break;
                    }
                    i += 1;
                    if let Some(v) = sub.body.strip_prefix("- ") {
                        let vt = v.trim_start();
                        push_scalar(vt, sub.start + 2 + (v.len() - vt.len()), true, &mut out);
                    }
                }
            } else if !value_trim.is_empty() && !value_trim.ends_with(':') {
                push_scalar(value_trim, value_start, false, &mut out);
            }
        }
    }
    out
}

fn flow_items(text: &str, at: usize, pip: bool, out: &mut Vec<EnvDependency>) {
    let Some(inner) = text.strip_prefix('[') else {
        return;
    };
    let end = inner.find(']').unwrap_or(inner.len());
    let mut pos = at + 1;
    for item in inner[..end].split(',') {
        let t = item.trim();
        let lead = item.len() - item.trim_start().len();
        if !t.is_empty() {
            push_scalar(t, pos + lead, pip, out);
        }
        pos += item.len() + 1;
    }
}

fn push_scalar(value: &str, at: usize, pip: bool, out: &mut Vec<EnvDependency>) {
    let (v, at) = match value.as_bytes().first() {
        Some(&q @ (b'"' | b'\'')) if value.len() >= 2 && value.as_bytes()[value.len() - 1] == q => {
            (&value[1..value.len() - 1], at + 1)
        }
        _ => (value, at),
    };
    out.push(EnvDependency { spec: v.to_string(), span: at..at + v.len(), pip, editable: false });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_lines() {
        let text = "# top\nflask==3.0.3 \\\n    --hash=sha256:aa\nrequests >= 2  # why\n-r base.txt\n-cconstraints.txt\n-e ./local\n--require-hashes\n";
        let r = Requirements::parse(text);
        assert_eq!(r.entries.len(), 3);
        assert_eq!((r.entries[0].spec.as_str(), r.entries[0].hashes), ("flask==3.0.3", 1));
        assert_eq!(&text[r.entries[1].span.clone()], "requests >= 2");
        assert_eq!(r.includes.len(), 2);
        assert!(r.includes[1].constraint && r.includes[1].path == "constraints.txt");
        assert!(r.entries[2].editable && r.require_hashes);
    }

    #[test]
    fn environment_subset() {
        let text = "name: x\nchannels: [conda-forge]\ndependencies:\n- python=3.11\n- 'numpy'  # c\n- pip\n- pip:\n    - requests==2.31.0\n    - flask\nother: 1\n";
        let deps = environment_dependencies(text);
        let specs: Vec<_> = deps.iter().map(|d| (d.spec.as_str(), d.pip)).collect();
        assert_eq!(
            specs,
            [("python=3.11", false), ("numpy", false), ("pip", false), ("requests==2.31.0", true), ("flask", true)]
        );
        assert_eq!(&text[deps[1].span.clone()], "numpy");
        let flow = environment_dependencies("dependencies: [a=1, b]\n");
        assert_eq!(flow.iter().map(|d| d.spec.as_str()).collect::<Vec<_>>(), ["a=1", "b"]);
        assert_eq!(flow[1].span, 20..21);
    }
}
