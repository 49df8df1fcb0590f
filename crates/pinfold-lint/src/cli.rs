//! The `pinfold lint` command: arguments (a `clap::Args` struct the CLI embeds in its
//! `lint` subcommand), output on stdout, pinfold's own failures on stderr, and the exit
//! codes of the command-line contract: 0 no finding at the failing level, 1 findings
//! at or above `--fail-on`, 2 a file could not be read, parsed or fixed.

use super::{lint_paths, render, FileKind, LintOptions, LintReport};
use pinfold_lang::diag::{Diagnostics, Severity};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Each finding drawn at its place in the file.
    Human,
    /// A JSON array of findings, each with its packages.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
}

/// The kind of the files named on the command line, for names that do not say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileType {
    Dockerfile,
    Requirements,
    /// A conda environment file or spec list.
    Conda,
    /// A pinfold build file.
    Kdl,
}

impl From<FileType> for FileKind {
    fn from(t: FileType) -> FileKind {
        match t {
            FileType::Dockerfile => FileKind::Dockerfile,
            FileType::Requirements => FileKind::Requirements,
            FileType::Conda => FileKind::Environment,
            FileType::Kdl => FileKind::BuildFile,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Severity {
        match f {
            FailOn::Error => Severity::Error,
            FailOn::Warning => Severity::Warning,
            FailOn::Info => Severity::Info,
        }
    }
}

/// The examples of `pinfold lint --help`: one command a line, each short enough for an
/// 80-column terminal, so that none is ever wrapped in the middle.
const EXAMPLES: &str = "\
Examples:
  pinfold lint
  pinfold lint docker/ api.Dockerfile
  pinfold lint --type requirements deps/prod.lst
  pinfold lint --format sarif > pinfold.sarif
  pinfold lint --fix

A directory is walked as git sees it (.gitignore is respected) for
pinfold.kdl, Dockerfiles, requirements files and conda environments.

Exit codes: 0 no finding at --fail-on, 1 findings, 2 a file could not
be read (the other files are still linted).";

/// Lints build files, Dockerfiles and dependency files for unpinned inputs.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct LintArgs {
    /// Files or directories to lint [default: .]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Exit with 1 when a finding of this severity or a higher one exists.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// Read the files named (not the directories) as this kind.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub file_type: Option<FileType>,
    /// Write the fixes that need no network; say what is left, and why.
    #[arg(long)]
    pub fix: bool,
}

/// Runs `pinfold lint` on the process's stdout and stderr; returns the exit code.
pub fn cli_main(args: LintArgs) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(&args, &mut stdout.lock(), &mut stderr.lock(), Diagnostics::render_for_stderr)
}

/// `pinfold lint` writing to the given streams, for tests and embedding.
pub fn run(args: &LintArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    run_with(args, out, err, Diagnostics::render_plain)
}

fn run_with(args: &LintArgs, out: &mut dyn Write, err: &mut dyn Write, render_err: fn(&Diagnostics) -> String) -> i32 {
    let options = LintOptions { fix: args.fix, kind: args.file_type.map(FileKind::from) };
    let report = match lint_paths(&args.paths, &options) {
        Ok(r) => r,
        Err(e) => {
            let _ = err.write_all(render_err(&e.diagnostics()).as_bytes());
            return 2;
        }
    };
    // The files that could not be linted first, on stderr; the others' findings follow.
    if !report.problems.is_empty() {
        let _ = err.write_all(render_err(&Diagnostics(report.problems.clone())).as_bytes());
        let n = report.problems.len();
        let _ = writeln!(
            err,
            "{n} file{} could not be linted; the other {} were.",
            if n == 1 { "" } else { "s" },
            report.files.len()
        );
    }
    if args.fix {
        let _ = err.write_all(fix_summary(&report).as_bytes());
    }
    let text = match args.format {
        OutputFormat::Human => render::human(&report),
        OutputFormat::Json => render::json(&report),
        OutputFormat::Sarif => render::sarif(&report),
    };
    if out.write_all(text.as_bytes()).and_then(|_| out.flush()).is_err() {
        return 2;
    }
    if !report.problems.is_empty() {
        return 2;
    }
    i32::from(report.fails(args.fail_on.into()))
}

/// What `--fix` did and did not do: the files it rewrote, then the findings it left,
/// grouped by rule, each group with the reason and the places.
pub fn fix_summary(report: &LintReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for (path, n) in &report.fixed {
        let _ = writeln!(s, "fixed {n} finding{} in {}", if *n == 1 { "" } else { "s" }, path.display());
    }
    if report.fixed.is_empty() {
        let _ = writeln!(s, "--fix changed no file");
    }
    if report.unfixed.is_empty() {
        return s;
    }
    let _ =
        writeln!(s, "not fixed: {} finding{}", report.unfixed.len(), if report.unfixed.len() == 1 { "" } else { "s" });
    let mut by_rule: std::collections::BTreeMap<(&str, &str), Vec<String>> = std::collections::BTreeMap::new();
    for u in &report.unfixed {
        let at = format!("{}:{}", u.path.to_string_lossy().trim_start_matches("./"), u.line);
        by_rule.entry((u.rule, u.reason)).or_default().push(at);
    }
    for ((rule, reason), places) in by_rule {
        let _ = writeln!(s, "  {rule} ({}): {reason}", places.join(", "));
    }
    s
}
