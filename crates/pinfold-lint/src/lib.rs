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
//! - [`context`]: what a Dockerfile's `COPY` lines place where, so that `pip install -r
//!   FILE` in a `RUN` is traced to the file in the build context and linted too;
//! - [`suppress`]: `allow` with a reason, per file and per line;
//! - [`group`]: the packages of one installer in one `RUN` become one finding;
//! - [`fix`]: `--fix`, for what is known without the network;
//! - [`render`]: human (miette), JSON and SARIF output; [`cli`]: the command.
//!
//! Findings are [`pinfold_lang::diag::Diagnostic`]s, the project's one diagnostic model. A
//! file that cannot be read or parsed is a problem of the report (exit 2), never a
//! panic, and never stops the other files from being linted.

pub mod buildfile;
pub mod calls;
pub mod cli;
pub mod context;
pub mod deps;
pub mod dockerfile;
pub mod dockerlint;
pub mod docs;
pub mod fix;
pub mod group;
pub mod imageref;
pub mod mapped;
pub mod render;
pub mod rule;
pub mod rules;
pub mod shell;
pub mod spec;
pub mod suppress;

pub use cli::{cli_main, run, LintArgs, OutputFormat};
pub use rule::Rule;

use pinfold_lang::diag::Code;
use pinfold_lang::diag::{Diagnostic, Diagnostics, Severity, Source};
use rayon::prelude::*;
use rule::{Ctx, RawFinding};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Files larger than this are refused rather than read: no build file, Dockerfile or
/// requirements file is anywhere near it, and reading a multi-gigabyte file by mistake
/// should fail fast.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Build files larger than this are refused: real ones are a few kilobytes, and the
/// KDL parser needs seconds per megabyte, so a huge file is a mistake best reported
/// at once rather than after a long wait.
pub const MAX_BUILD_FILE_SIZE: usize = 1024 * 1024;

/// How many times files named by linted files (`pip install -r FILE` in a `RUN`) are
/// followed to the files they name in turn: real chains are one or two deep.
const MAX_REFERENCE_DEPTH: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// Write fixes into the files (see [`fix`]).
    pub fix: bool,
    /// Read every file named on the command line as this kind (`--type`), whatever
    /// its name or content says. Files found in directories keep their own kind.
    pub kind: Option<FileKind>,
}

/// The kinds of file lint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    BuildFile,
    Dockerfile,
    Requirements,
    /// A conda environment file (`environment.yml`), or a conda spec list
    /// (`conda install --file`), or an explicit lock (`@EXPLICIT`).
    Environment,
}

impl FileKind {
    /// The kind a file name says, if it says one.
    pub fn from_name(name: &str) -> Option<FileKind> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".kdl") {
            return Some(FileKind::BuildFile);
        }
        let yaml = lower.ends_with(".yml") || lower.ends_with(".yaml");
        let stem = lower.trim_end_matches(".yml").trim_end_matches(".yaml");
        if yaml
            && (stem.starts_with("environment")
                || stem.ends_with("environment")
                || stem == "env"
                || stem.starts_with("env-")
                || stem.starts_with("env_")
                || stem.starts_with("conda"))
            && !stem.starts_with("conda-lock")
        {
            return Some(FileKind::Environment);
        }
        let reqs_ext = lower.ends_with(".txt") || lower.ends_with(".in");
        if reqs_ext
            && (lower.contains("requirements")
                || lower.contains("constraints")
                || lower.starts_with("reqs")
                || lower.starts_with("requirement"))
        {
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

    /// The kind a path says: its name, or a `requirements/` directory above a `.txt`
    /// or `.in` file (`requirements/prod.txt`).
    pub fn from_path(path: &Path) -> Option<FileKind> {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if let Some(k) = FileKind::from_name(&name) {
            return Some(k);
        }
        let lower = name.to_ascii_lowercase();
        let in_reqs_dir = path
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|d| d.to_string_lossy().to_ascii_lowercase().starts_with("requirements"));
        (in_reqs_dir && (lower.ends_with(".txt") || lower.ends_with(".in"))).then_some(FileKind::Requirements)
    }

    /// What `--type` calls it.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::BuildFile => "build file",
            FileKind::Dockerfile => "Dockerfile",
            FileKind::Requirements => "requirements file",
            FileKind::Environment => "conda environment file",
        }
    }
}

/// A grouped finding underlines each of its packages up to this many; beyond, only
/// the first (the message names them all).
const MAX_DRAWN_PACKAGES: usize = 6;

/// One package of a grouped finding, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFinding {
    pub name: String,
    /// As written.
    pub spec: String,
    /// What is wrong with it: `no version`, `a range, not a pin`, …
    pub problem: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
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
    /// The packages a grouped finding lists, each at its own place (empty for a
    /// finding that is not about packages).
    pub packages: Vec<PackageFinding>,
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

/// A finding that `--fix` left, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfixed {
    pub rule: &'static str,
    pub path: PathBuf,
    pub line: usize,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Default)]
pub struct LintReport {
    pub files: Vec<LintedFile>,
    /// Sorted by path, then position, then rule id.
    pub findings: Vec<Finding>,
    /// Files that `--fix` rewrote, with the number of fixes applied to each.
    pub fixed: Vec<(PathBuf, usize)>,
    /// With `--fix`: the findings left, each with the reason it was not fixed.
    pub unfixed: Vec<Unfixed>,
    /// Files that could not be found, read, recognised or parsed; the others were
    /// linted all the same.
    pub problems: Vec<Diagnostic>,
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

    /// The number of distinct files that have findings.
    pub fn files_with_findings(&self) -> usize {
        self.findings.iter().map(|f| display(&f.path)).collect::<HashSet<_>>().len()
    }
}

/// Nothing could be linted: every file named could not be found, read or parsed.
/// Every such problem is collected, each a diagnostic (at the parse error's span when
/// there is one).
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
    Diagnostic::error(Code::LintUnreadable, format!("{}: {message}", display(path)))
}

/// What lint looks for, for help texts.
const KNOWS: &str = "pinfold.kdl, Dockerfile*, *.Dockerfile, Containerfile*, requirements files \
and conda environment files";

/// Lints files and directories. No path means the current directory. A directory
/// is walked as git sees it (`.gitignore`, `.ignore` and hidden files are skipped) for
/// `pinfold.kdl`, Dockerfiles (`Dockerfile*`, `*.Dockerfile`, `Containerfile*`),
/// requirements files (`requirements*.txt`, `*.in`, `requirements/*.txt`, …) and
/// conda environment files (by name, or by content for other `*.yml`). A file named
/// on the command line is read as the kind `--type` says, else its name, else its
/// content. Requirements files named by `-r`/`-c` beside a linted one, and the files a
/// Dockerfile installs from (`pip install -r FILE` after `COPY`), are linted too.
///
/// A file that cannot be read or parsed is a problem of the report and the others
/// are linted all the same; only when nothing at all could be linted is the result
/// an error.
pub fn lint_paths(paths: &[PathBuf], options: &LintOptions) -> Result<LintReport, LintError> {
    let (targets, mut problems) = discover(paths, options.kind);
    let mut report = LintReport::default();
    let mut seen = HashSet::new();
    let mut all: Vec<(PathBuf, FileKind, Source)> = Vec::new();
    let mut dir_allows: HashMap<PathBuf, Vec<suppress::FileAllow>> = HashMap::new();
    let mut queue: std::collections::VecDeque<(PathBuf, Option<FileKind>)> = targets.into();
    for _ in 0..MAX_REFERENCE_DEPTH {
        if queue.is_empty() {
            break;
        }
        let loaded = load(&mut queue, &mut seen, &mut problems);
        all.extend(loaded.iter().cloned());
        let groups = requirement_groups(&all);
        // `lint { allow }` of each directory's build files.
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
                let (raw, refs) = lint_file(*kind, src, Some(path), allows, &group).map_err(first)?;
                let edits: Vec<_> = raw.iter().filter_map(|f| f.fix.clone()).collect();
                if !options.fix || edits.is_empty() {
                    return Ok((raw, refs, src.clone(), 0));
                }
                let fixed = fix::apply(&src.text, &edits);
                pinfold_image::fsutil::write_atomic(path, fixed.as_bytes())
                    .map_err(|e| Box::new(read_error(path, format!("cannot write the fix: {e}"))))?;
                let src = Source::new(src.name.clone(), fixed);
                let (raw, refs) = lint_file(*kind, &src, Some(path), allows, &group).map_err(first)?;
                Ok((raw, refs, src, edits.len()))
            })
            .collect();
        for ((path, kind, _), result) in loaded.iter().zip(results) {
            let (raw, refs, src, fixed) = match result {
                Ok(r) => r,
                Err(d) => {
                    problems.push(*d);
                    continue;
                }
            };
            if fixed > 0 {
                report.fixed.push((path.clone(), fixed));
            }
            queue.extend(refs.into_iter().map(|(p, k)| (p, Some(k))));
            report.findings.extend(raw.into_iter().map(|f| locate(f, path, &src)));
            report.files.push(LintedFile { path: path.clone(), kind: *kind, source: src });
        }
    }
    if report.files.is_empty() && !problems.is_empty() {
        return Err(LintError { problems });
    }
    sort(&mut report.findings);
    report.files.sort_by(|a, b| a.path.cmp(&b.path));
    if options.fix {
        report.unfixed = report
            .findings
            .iter()
            .map(|f| Unfixed { rule: f.rule.id, path: f.path.clone(), line: f.line, reason: fix::why_not(f) })
            .collect();
    }
    problems.sort_by(|a, b| a.message.cmp(&b.message));
    report.problems = problems;
    Ok(report)
}

/// Reads the files of the queue (and the requirements files they include with
/// `-r`/`-c`), each once, with its kind.
fn load(
    queue: &mut std::collections::VecDeque<(PathBuf, Option<FileKind>)>,
    seen: &mut HashSet<PathBuf>,
    problems: &mut Vec<Diagnostic>,
) -> Vec<(PathBuf, FileKind, Source)> {
    let mut loaded = Vec::new();
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
                        .help(format!("lint reads {KNOWS}; name the kind with --type dockerfile|requirements|conda")),
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
    loaded
}

fn first(e: LintError) -> Diagnostic {
    e.problems.into_iter().next().unwrap_or_else(|| Diagnostic::error(Code::LintParse, "cannot parse"))
}

/// Lints text held in memory, as a file of `kind` called `name` (no includes are
/// followed and nothing is fixed). For tests, benchmarks and editors.
pub fn lint_source(kind: FileKind, name: &str, text: &str) -> Result<Vec<Finding>, LintError> {
    let src = Source::new(name, text);
    let (raw, _) = lint_file(kind, &src, None, &[], &ReqGroup::default())?;
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

/// The findings of one file and the files it installs from.
type FileResult = (Vec<RawFinding>, Vec<(PathBuf, FileKind)>);

/// Runs the rules of one file, applies its suppressions and groups its package
/// findings.
fn lint_file(
    kind: FileKind,
    src: &Source,
    path: Option<&Path>,
    dir_allows: &[suppress::FileAllow],
    group: &ReqGroup,
) -> Result<FileResult, LintError> {
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
                let refs = std::mem::take(&mut ctx.references);
                return Ok((group::group(suppress::apply(text, ctx.findings, &allows, &own)), refs));
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
            let env = deps::Environment::parse(text);
            rules::pf403_environment_unpinned::check(&mut ctx, &env.dependencies);
            rules::pf405_conda_build_unpinned::check_environment(&mut ctx, &env.dependencies);
            if let Some(dir) = ctx.base_dir.clone() {
                // `- -r requirements.txt` under `pip:` is read relative to the file.
                for inc in &env.pip_includes {
                    let p = dir.join(inc);
                    if p.is_file() {
                        ctx.references.push((p, FileKind::Requirements));
                    }
                }
            }
            suppress::line_allows(&mut ctx, text, "#", &|_| false, &|l| l)
        }
    };
    let refs = std::mem::take(&mut ctx.references);
    Ok((group::group(suppress::apply(text, ctx.findings, &line_allows, dir_allows)), refs))
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
    let clamp = |r: &std::ops::Range<usize>| {
        let start = r.start.min(len);
        start..r.end.clamp(start, len)
    };
    let span = clamp(&f.span);
    let (line, column) = src.line_col(span.start);
    let (end_line, end_column) = src.line_col(span.end);
    let packages: Vec<PackageFinding> = f
        .packages
        .iter()
        .map(|(r, p)| {
            let r = clamp(r);
            let (line, column) = src.line_col(r.start);
            let (end_line, end_column) = src.line_col(r.end);
            PackageFinding {
                name: p.name.clone(),
                spec: p.spec.clone(),
                problem: p.problem.clone(),
                line,
                column,
                end_line,
                end_column,
            }
        })
        .collect();
    let mut d = Diagnostic { severity: f.rule.severity, ..Diagnostic::error(Code::Rule(f.rule.id), f.message) };
    if f.packages.len() > 1 {
        // A few packages are each underlined where they are written, the label once at
        // the first; many (a 35-package `apt-get install`) are named in the message and
        // only the first is drawn, so that one finding stays a few lines long.
        let mut spans = f.packages.iter().map(|(r, _)| clamp(r));
        if let Some(first) = spans.next() {
            d = d.at(to_span(first), f.label.unwrap_or_else(|| f.rule.name.to_string()));
        }
        if f.packages.len() <= MAX_DRAWN_PACKAGES {
            for r in spans {
                d = d.also_at(to_span(r), "");
            }
        }
        d = d.in_source(src);
    } else {
        d = d.at(to_span(span), f.label.unwrap_or_else(|| f.rule.name.to_string())).in_source(src);
    }
    let help = f.help.unwrap_or_default();
    if !help.is_empty() {
        d = d.help(help.trim().to_string());
    }
    Finding { rule: f.rule, path: path.to_path_buf(), line, column, end_line, end_column, diagnostic: d, packages }
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

/// The kind a file's content says, for a file whose name says nothing: a Dockerfile
/// when its first instruction is `FROM` or `ARG` and it parses, a conda environment
/// when it has a top-level `dependencies:` list of specs (or is an `@EXPLICIT` lock), a
/// requirements file when every line reads as a requirement or a pip option.
fn sniff(text: &str) -> Option<FileKind> {
    if deps::looks_like_environment(text) {
        return Some(FileKind::Environment);
    }
    if let Ok(df) = dockerfile::Dockerfile::parse(text) {
        if df.instructions.first().is_some_and(|i| matches!(i.keyword.as_str(), "FROM" | "ARG")) {
            return Some(FileKind::Dockerfile);
        }
    }
    deps::looks_like_requirements(text).then_some(FileKind::Requirements)
}

/// The files to lint, with the kind their names (or `--type`) say, and the arguments
/// that name nothing to lint.
fn discover(paths: &[PathBuf], forced: Option<FileKind>) -> (Vec<(PathBuf, Option<FileKind>)>, Vec<Diagnostic>) {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() { &default[..] } else { paths };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        if p.is_dir() {
            let found = walk(p);
            if found.is_empty() {
                problems.push(read_error(p, "has nothing to lint").help(format!("lint looks for {KNOWS}")));
            }
            out.extend(found);
        } else if p.exists() {
            out.push((p.clone(), forced.or_else(|| FileKind::from_path(p))));
        } else {
            problems.push(read_error(p, "does not exist"));
        }
    }
    (out, problems)
}

/// Directories never walked: version control, and the installed dependencies of
/// other tools, whose Dockerfiles and requirements files are not this project's.
const SKIP_DIRS: &[&str] = &[".git", ".hg", ".svn", "node_modules", ".venv", "venv", "site-packages", "__pycache__"];

/// The files under a directory that lint reads, in path order. The walk skips what
/// git would (`.gitignore`, `.ignore`, the global excludes) whether or not the
/// directory is a git repository, and [`SKIP_DIRS`]; hidden directories are walked,
/// because `.devcontainer/Dockerfile` is a Dockerfile like any other. Symbolic links
/// are not followed out of the directory.
fn walk(dir: &Path) -> Vec<(PathBuf, Option<FileKind>)> {
    let mut found = Vec::new();
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(true)
        .hidden(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| {
            !(e.file_type().is_some_and(|t| t.is_dir())
                && e.depth() > 0
                && SKIP_DIRS.contains(&e.file_name().to_string_lossy().as_ref()))
        })
        .sort_by_file_path(|a, b| a.cmp(b))
        .build();
    for entry in walker.flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let path = match path.strip_prefix("./") {
            Ok(p) if dir == Path::new(".") => p.to_path_buf(),
            _ => path.to_path_buf(),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        match FileKind::from_path(&path) {
            Some(FileKind::BuildFile) if name != "pinfold.kdl" => {}
            Some(kind) => found.push((path, Some(kind))),
            None => {
                // Other YAML files are conda environments when their content says so.
                let lower = name.to_ascii_lowercase();
                if (lower.ends_with(".yml") || lower.ends_with(".yaml"))
                    && read_text(&path).is_ok_and(|t| deps::looks_like_environment(&t))
                {
                    found.push((path, Some(FileKind::Environment)));
                }
            }
        }
    }
    found
}

/// A file's findings, the files it installs from, its (possibly fixed) text and the
/// number of fixes applied.
type Linted = (Vec<RawFinding>, Vec<(PathBuf, FileKind)>, Source, usize);

/// What each requirements file needs to know about the files it is read with.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReqGroup {
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
