//! `pinfold lint`: finds every input of a build that is not pinned, in build files,
//! in Dockerfiles and in the dependency files images install from, and says where,
//! why it matters and how to fix it.
//!
//! A build is only as reproducible as its least pinned input, and most users arrive
//! with Dockerfiles, so the same rules run on both. The pieces:
//!
//! - readers that keep spans: [`buildfile`] (KDL via the `kdl` crate), [`dockerfile`]
//!   (a BuildKit-compatible parser), [`shell`] (the commands of a `RUN`), [`deps`]
//!   (requirements files, `environment.yml`);
//! - [`rules`]: one file per rule, each with its id, severity, documentation and check;
//! - [`suppress`]: `allow` with a reason, per file and per line;
//! - [`fix`]: `--fix`, for what is known without the network;
//! - [`render`]: human (miette), JSON and SARIF output; [`cli`]: the command.
//!
//! Findings are [`pinfold_lang::diag::Diagnostic`]s, the project's one diagnostic model; a
//! file that cannot be read or parsed is a [`LintError`] (exit 2), never a panic.

pub mod buildfile;
pub mod cli;
pub mod deps;
pub mod dockerfile;
pub mod dockerlint;
pub mod docs;
pub mod fix;
pub mod imageref;
pub mod mapped;
pub mod render;
pub mod rule;
pub mod rules;
pub mod shell;
pub mod suppress;

pub use cli::{cli_main, run, LintArgs, OutputFormat};
pub use rule::Rule;

use pinfold_lang::diag::Code;
use pinfold_lang::diag::{Diagnostic, Diagnostics, Severity, Source};
use rayon::prelude::*;
use rule::{Ctx, RawFinding};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Files larger than this are refused rather than read: no build file, Dockerfile or
/// requirements file is anywhere near it, and reading a multi-gigabyte file by mistake
/// should fail fast.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Build files larger than this are refused: real ones are a few kilobytes, and the
/// KDL parser needs seconds per megabyte, so a huge file is a mistake best reported
/// at once rather than after a long wait.
pub const MAX_BUILD_FILE_SIZE: usize = 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// Write fixes into the files (see [`fix`]).
    pub fix: bool,
}

/// The kinds of file lint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    BuildFile,
    Dockerfile,
    Requirements,
    Environment,
}

impl FileKind {
    /// The kind a file name says, if it says one.
    pub fn from_name(name: &str) -> Option<FileKind> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".kdl") {
            return Some(FileKind::BuildFile);
        }
        if lower.ends_with("environment.yml") || lower.ends_with("environment.yaml") {
            return Some(FileKind::Environment);
        }
        if lower.ends_with(".txt") && (lower.contains("requirements") || lower.contains("constraints")) {
            return Some(FileKind::Requirements);
        }
        let docker_like = lower.starts_with("dockerfile")
            || lower.starts_with("containerfile")
            || lower.ends_with(".dockerfile")
            || lower.ends_with(".containerfile");
        // `Dockerfile.dockerignore`, `Dockerfile.md` and editor leftovers are not Dockerfiles.
        const NOT: &[&str] =
            &[".dockerignore", ".md", ".txt", ".orig", ".bak", ".rej", ".swp", "~", ".json", ".yml", ".yaml"];
        if docker_like && !NOT.iter().any(|s| lower.ends_with(s)) {
            return Some(FileKind::Dockerfile);
        }
        None
    }
}

/// One finding, located.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static Rule,
    /// The file, as given or found (relative when it was found relative).
    pub path: PathBuf,
    /// 1-based; columns count characters. `end_column` is the column just after the
    /// last character (exclusive, as in SARIF).
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    /// The finding as a diagnostic: `code` is the rule id, `source` the file.
    pub diagnostic: Diagnostic,
}

impl Finding {
    pub fn severity(&self) -> Severity {
        self.diagnostic.severity
    }
}

/// A file that was linted.
#[derive(Debug, Clone)]
pub struct LintedFile {
    pub path: PathBuf,
    pub kind: FileKind,
    pub source: Source,
}

#[derive(Debug, Clone, Default)]
pub struct LintReport {
    pub files: Vec<LintedFile>,
    /// Sorted by path, then position, then rule id.
    pub findings: Vec<Finding>,
    /// Files that `--fix` rewrote, with the number of fixes applied to each.
    pub fixed: Vec<(PathBuf, usize)>,
}

impl LintReport {
    /// True when a finding at `level` or above exists.
    pub fn fails(&self, level: Severity) -> bool {
        self.findings.iter().any(|f| f.severity() >= level)
    }

    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics(self.findings.iter().map(|f| f.diagnostic.clone()).collect())
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity() == severity).count()
    }
}

/// Files could not be read or parsed. Every such problem is collected, each a
/// diagnostic (at the parse error's span when there is one).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.summary())]
pub struct LintError {
    pub problems: Vec<Diagnostic>,
}

impl LintError {
    fn one(d: Diagnostic) -> LintError {
        LintError { problems: vec![d] }
    }

    fn summary(&self) -> String {
        self.problems.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; ")
    }

    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics(self.problems.clone())
    }
}

fn read_error(path: &Path, message: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::error(Code::LintUnreadable, format!("{}: {message}", path.display()))
}

/// Lints files and directories. No path means the current directory. A directory
/// means its `pinfold.kdl`, `Dockerfile*`/`Containerfile*`/`*.Dockerfile`,
/// `requirements*.txt` and `environment.yml`/`.yaml` (not recursively); a file is
/// linted as the kind its name says (a file with another name is read as a
/// Dockerfile when it parses as one). Requirements files named by `-r`/`-c` beside a
/// linted one are linted too.
pub fn lint_paths(paths: &[PathBuf], options: &LintOptions) -> Result<LintReport, LintError> {
    let targets = discover(paths)?;
    let mut problems = Vec::new();
    let mut loaded: Vec<(PathBuf, FileKind, Source)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut queue: std::collections::VecDeque<(PathBuf, Option<FileKind>)> = targets.into();
    while let Some((path, kind)) = queue.pop_front() {
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !seen.insert(key) {
            continue;
        }
        let text = match read_text(&path) {
            Ok(t) => t,
            Err(d) => {
                problems.push(*d);
                continue;
            }
        };
        let kind = match kind.or_else(|| sniff(&text)) {
            Some(k) => k,
            None => {
                problems.push(
                    read_error(&path, "is not a file pinfold lint knows")
                        .help("lint reads pinfold.kdl (*.kdl), Dockerfile*, requirements*.txt and environment.yml"),
                );
                continue;
            }
        };
        if kind == FileKind::BuildFile && text.len() > MAX_BUILD_FILE_SIZE {
            problems.push(read_error(
                &path,
                format!("is {} bytes; lint reads build files of up to {MAX_BUILD_FILE_SIZE} bytes", text.len()),
            ));
            continue;
        }
        if kind == FileKind::Requirements {
            // Follow `-r`/`-c` to files beside this one.
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            for inc in deps::Requirements::parse(&text).includes {
                let p = dir.join(&inc.path);
                if p.is_file() {
                    queue.push_back((p, Some(FileKind::Requirements)));
                }
            }
        }
        loaded.push((path.clone(), kind, Source::new(display(&path), text)));
    }
    if !problems.is_empty() {
        return Err(LintError { problems });
    }

    let groups = requirement_groups(&loaded);
    // `lint { allow }` of each directory's build files.
    let mut dir_allows: HashMap<PathBuf, Vec<suppress::FileAllow>> = HashMap::new();
    for (path, kind, src) in &loaded {
        // Only a build file with a `lint` block has allows; most have none, and the
        // KDL parser is slow enough on large files to be worth skipping.
        if *kind == FileKind::BuildFile && src.text.contains("allow") {
            if let Ok(bf) = buildfile::BuildFile::parse(&src.text) {
                let allows = suppress::file_allows(&mut Ctx::default(), &bf);
                dir_allows.entry(parent(path)).or_default().extend(allows);
            }
        }
    }

    let results: Vec<Result<Linted, Box<Diagnostic>>> = loaded
        .par_iter()
        .map(|(path, kind, src)| {
            let allows = dir_allows.get(&parent(path)).map_or(&[][..], Vec::as_slice);
            let group = groups.get(path).cloned().unwrap_or_default();
            let raw = lint_file(*kind, src, Some(path), allows, &group).map_err(first)?;
            let edits: Vec<_> = raw.iter().filter_map(|f| f.fix.clone()).collect();
            if !options.fix || edits.is_empty() {
                return Ok((raw, src.clone(), 0));
            }
            let fixed = fix::apply(&src.text, &edits);
            pinfold_image::fsutil::write_atomic(path, fixed.as_bytes())
                .map_err(|e| Box::new(read_error(path, format!("cannot write the fix: {e}"))))?;
            let src = Source::new(src.name.clone(), fixed);
            let raw = lint_file(*kind, &src, Some(path), allows, &group).map_err(first)?;
            Ok((raw, src, edits.len()))
        })
        .collect();

    let mut report = LintReport::default();
    for ((path, kind, _), result) in loaded.iter().zip(results) {
        let (raw, src, fixed) = match result {
            Ok(r) => r,
            Err(d) => {
                problems.push(*d);
                continue;
            }
        };
        if fixed > 0 {
            report.fixed.push((path.clone(), fixed));
        }
        report.findings.extend(raw.into_iter().map(|f| locate(f, path, &src)));
        report.files.push(LintedFile { path: path.clone(), kind: *kind, source: src });
    }
    if !problems.is_empty() {
        return Err(LintError { problems });
    }
    sort(&mut report.findings);
    report.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}

fn first(e: LintError) -> Diagnostic {
    e.problems.into_iter().next().unwrap_or_else(|| Diagnostic::error(Code::LintParse, "cannot parse"))
}

/// Lints text held in memory, as a file of `kind` called `name` (no includes are
/// followed and nothing is fixed). For tests, benchmarks and editors.
pub fn lint_source(kind: FileKind, name: &str, text: &str) -> Result<Vec<Finding>, LintError> {
    let src = Source::new(name, text);
    let raw = lint_file(kind, &src, None, &[], &ReqGroup::default())?;
    let mut out: Vec<Finding> = raw.into_iter().map(|f| locate(f, Path::new(name), &src)).collect();
    sort(&mut out);
    Ok(out)
}

fn sort(findings: &mut [Finding]) {
    // By the path as shown (the JSON order), then position.
    findings.sort_by_cached_key(|f| (display(&f.path), f.line, f.column, f.rule.id, f.diagnostic.message.clone()));
}

fn parent(path: &Path) -> PathBuf {
    let p = path.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::canonicalize(if p.as_os_str().is_empty() { Path::new(".") } else { &p }).unwrap_or(p)
}

/// How a path is shown: as given, without a leading `./`.
fn display(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

/// Runs the rules of one file and applies its suppressions.
fn lint_file(
    kind: FileKind,
    src: &Source,
    path: Option<&Path>,
    dir_allows: &[suppress::FileAllow],
    group: &ReqGroup,
) -> Result<Vec<RawFinding>, LintError> {
    let text: &str = &src.text;
    let mut ctx =
        Ctx { base_dir: path.map(|p| p.parent().map(Path::to_path_buf).unwrap_or_default()), ..Ctx::default() };
    let line_allows = match kind {
        FileKind::BuildFile => {
            let bf = buildfile::BuildFile::parse(text).map_err(|e| kdl_error(e, src))?;
            ctx.lock = ctx.base_dir.as_deref().and_then(fix::read_lock);
            buildfile::check(&mut ctx, &bf);
            // Its own `lint { allow }` is applied through `dir_allows` when linted from
            // disk; in memory it applies to itself.
            let own = suppress::file_allows(&mut ctx, &bf);
            let strings: Vec<std::ops::Range<usize>> = bf
                .all_nodes()
                .iter()
                .flat_map(|n| n.entries().iter().map(|e| e.span().offset()..e.span().offset() + e.span().len()))
                .collect();
            let in_code = |o: usize| strings.iter().any(|r| r.contains(&o));
            let allows = suppress::line_allows(&mut ctx, text, "//", &in_code, &|l| l);
            if path.is_none() {
                return Ok(suppress::apply(text, ctx.findings, &allows, &own));
            }
            allows
        }
        FileKind::Dockerfile => {
            let df = dockerfile::Dockerfile::parse(text).map_err(|e| {
                LintError::one(
                    Diagnostic::error(Code::LintParse, e.message.clone())
                        .at(to_span(e.span), e.label)
                        .help(e.help)
                        .in_source(src),
                )
            })?;
            dockerlint::check(&mut ctx, &df);
            let lines = suppress::Lines::new(text);
            let ranges: Vec<(usize, usize)> =
                df.instructions.iter().map(|i| (lines.of(i.span.start), lines.of(i.span.end))).collect();
            // A `#` inside an instruction's arguments is an argument (or a shell
            // comment in a RUN): only whole-line comments and RUN's trailing ones count.
            let extent = |l: usize| ranges.iter().find(|r| r.0 == l).map_or(l, |r| r.1);
            suppress::line_allows(&mut ctx, text, "#", &|_| false, &extent)
        }
        FileKind::Requirements => {
            let reqs = deps::Requirements::parse(text);
            let constraints_file = group.constraint_files.iter().any(|p| Some(p.as_path()) == path);
            rules::pf401_requirement_unpinned::check(&mut ctx, &reqs, &group.facts, constraints_file);
            rules::pf402_requirement_without_hash::check(&mut ctx, &reqs, &group.facts, constraints_file);
            if let Some(p) = path {
                let dir = p.parent().unwrap_or(Path::new(""));
                let missing: Vec<_> = reqs.includes.iter().filter(|i| !dir.join(&i.path).is_file()).collect();
                rules::pf404_include_not_found::check(&mut ctx, &missing);
            }
            suppress::line_allows(&mut ctx, text, "#", &|_| false, &|l| l)
        }
        FileKind::Environment => {
            let deps = deps::environment_dependencies(text);
            rules::pf403_environment_unpinned::check(&mut ctx, &deps);
            suppress::line_allows(&mut ctx, text, "#", &|_| false, &|l| l)
        }
    };
    Ok(suppress::apply(text, ctx.findings, &line_allows, dir_allows))
}

fn to_span(r: std::ops::Range<usize>) -> miette::SourceSpan {
    (r.start, r.end.saturating_sub(r.start)).into()
}

fn kdl_error(e: kdl::KdlError, src: &Source) -> LintError {
    let mut problems = Vec::new();
    for d in &e.diagnostics {
        let message = d.message.clone().unwrap_or_else(|| "invalid KDL".to_string());
        let mut diag = Diagnostic::error(Code::LintParse, message)
            .at(d.span, d.label.clone().unwrap_or_else(|| "here".to_string()))
            .in_source(src);
        if let Some(h) = &d.help {
            diag = diag.help(h.clone());
        }
        problems.push(diag);
    }
    if problems.is_empty() {
        problems
            .push(Diagnostic::error(Code::LintParse, format!("cannot parse {}: invalid KDL", src.name)).in_source(src));
    }
    LintError { problems }
}

/// Turns a raw finding into a [`Finding`] with its line and column.
fn locate(f: RawFinding, path: &Path, src: &Source) -> Finding {
    let len = src.text.len();
    let start = f.span.start.min(len);
    let end = f.span.end.clamp(start, len);
    let (line, column) = src.line_col(start);
    let (end_line, end_column) = src.line_col(end);
    let mut d = Diagnostic { severity: f.rule.severity, ..Diagnostic::error(Code::Rule(f.rule.id), f.message) }
        .at(to_span(start..end), f.label.unwrap_or_else(|| f.rule.name.to_string()))
        .in_source(src);
    let help = f.help.unwrap_or_default();
    if !help.is_empty() {
        d = d.help(help.trim().to_string());
    }
    Finding { rule: f.rule, path: path.to_path_buf(), line, column, end_line, end_column, diagnostic: d }
}

/// Reads a file as UTF-8 text, refusing what is not text.
fn read_text(path: &Path) -> Result<String, Box<Diagnostic>> {
    let meta = std::fs::metadata(path).map_err(|e| Box::new(read_error(path, e)))?;
    if meta.is_dir() {
        return Err(Box::new(read_error(path, "is a directory")));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(Box::new(read_error(
            path,
            format!("is {} bytes; lint reads files of up to {MAX_FILE_SIZE} bytes", meta.len()),
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Box::new(read_error(path, e)))?;
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return Err(Box::new(read_error(path, "is a binary file, not text")));
    }
    String::from_utf8(bytes).map_err(|e| {
        Box::new(read_error(
            path,
            format!("is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
        ))
    })
}

/// A file whose name says nothing is a Dockerfile when its first instruction is
/// `FROM` or `ARG` and it parses.
fn sniff(text: &str) -> Option<FileKind> {
    let df = dockerfile::Dockerfile::parse(text).ok()?;
    let first = df.instructions.first()?;
    matches!(first.keyword.as_str(), "FROM" | "ARG").then_some(FileKind::Dockerfile)
}

/// The files to lint, with the kind their names say.
fn discover(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Option<FileKind>)>, LintError> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() { &default[..] } else { paths };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<(PathBuf, Option<FileKind>)> = Vec::new();
            let entries = std::fs::read_dir(p).map_err(|e| LintError::one(read_error(p, e)))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let kind = match FileKind::from_name(&name) {
                    Some(FileKind::BuildFile) if name != "pinfold.kdl" => None,
                    k => k,
                };
                if let Some(kind) = kind {
                    if entry.path().is_file() {
                        let path = if p == Path::new(".") { PathBuf::from(&name) } else { p.join(&name) };
                        found.push((path, Some(kind)));
                    }
                }
            }
            if found.is_empty() {
                problems.push(read_error(p, "has nothing to lint").help(
                    "lint looks for pinfold.kdl, Dockerfile*, requirements*.txt and environment.yml in a directory",
                ));
            }
            found.sort();
            out.extend(found);
        } else if p.exists() {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            out.push((p.clone(), FileKind::from_name(&name)));
        } else {
            problems.push(read_error(p, "does not exist"));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(LintError { problems })
    }
}

/// A file's findings, its (possibly fixed) text and the number of fixes applied.
type Linted = (Vec<RawFinding>, Source, usize);

/// What each requirements file needs to know about the files it is read with.
#[derive(Debug, Clone, Default)]
pub struct ReqGroup {
    pub facts: deps::Group,
    pub constraint_files: Vec<PathBuf>,
}

/// Requirements files joined by `-r`/`-c` form a group that pip reads as one.
fn requirement_groups(loaded: &[(PathBuf, FileKind, Source)]) -> HashMap<PathBuf, ReqGroup> {
    let reqs: Vec<(&PathBuf, deps::Requirements)> = loaded
        .iter()
        .filter(|(_, k, _)| *k == FileKind::Requirements)
        .map(|(p, _, s)| (p, deps::Requirements::parse(&s.text)))
        .collect();
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let index: BTreeMap<PathBuf, usize> = reqs.iter().enumerate().map(|(i, (p, _))| (canon(p), i)).collect();
    // Union-find over include edges.
    let mut root: Vec<usize> = (0..reqs.len()).collect();
    fn find(root: &mut [usize], mut i: usize) -> usize {
        while root[i] != i {
            root[i] = root[root[i]];
            i = root[i];
        }
        i
    }
    let mut constraint_files = Vec::new();
    for (i, (p, r)) in reqs.iter().enumerate() {
        let dir = p.parent().unwrap_or(Path::new(""));
        for inc in &r.includes {
            if let Some(&j) = index.get(&canon(&dir.join(&inc.path))) {
                let (a, b) = (find(&mut root, i), find(&mut root, j));
                root[a] = b;
                if inc.constraint {
                    constraint_files.push(j);
                }
            }
        }
    }
    let mut facts: HashMap<usize, ReqGroup> = HashMap::new();
    for (i, (_, r)) in reqs.iter().enumerate() {
        let g = find(&mut root, i);
        let e = facts.entry(g).or_default();
        if constraint_files.contains(&i) {
            e.constraint_files.push(reqs[i].0.clone());
            for entry in &r.entries {
                if rules::pf301_pip_unpinned::pinned_spec(&entry.spec.replace(' ', "")) {
                    e.facts.constrained.push(entry.name.clone());
                }
            }
        } else {
            e.facts.hash_mode |= r.require_hashes || r.entries.iter().any(|x| x.hashes > 0);
        }
    }
    reqs.iter()
        .enumerate()
        .map(|(i, (p, _))| {
            let g = find(&mut root, i);
            ((*p).clone(), facts.get(&g).cloned().unwrap_or_default())
        })
        .collect()
}
