//! The `pinfold lint` command: arguments (a `clap::Args` struct the CLI embeds in its
//! `lint` subcommand), output on stdout, pinfold's own failures on stderr, and the exit
//! codes of the command-line contract: 0 no finding at the failing level, 1 findings
//! at or above `--fail-on`, 2 a file could not be read, parsed or fixed.

use super::{lint_paths, render, LintOptions};
use pinfold_lang::diag::{Diagnostics, Severity};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Each finding drawn at its place in the file.
    Human,
    /// A JSON array of {rule, severity, path, line, column, end_line, end_column, message, help}.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
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

/// Lints build files, Dockerfiles and dependency files for inputs that are not pinned.
#[derive(Debug, Clone, clap::Args)]
pub struct LintArgs {
    /// Files or directories to lint [default: pinfold.kdl, Dockerfile*, requirements*.txt and environment.yml in the current directory]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Exit with 1 when a finding of this severity or a higher one exists.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// Write the fixes that need no network into the files (pins from pinfold.lock, digests of local layouts).
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
    let report = match lint_paths(&args.paths, &LintOptions { fix: args.fix }) {
        Ok(r) => r,
        Err(e) => {
            let _ = err.write_all(render_err(&e.diagnostics()).as_bytes());
            return 2;
        }
    };
    for (path, n) in &report.fixed {
        let _ = writeln!(err, "fixed {n} finding{} in {}", if *n == 1 { "" } else { "s" }, path.display());
    }
    let text = match args.format {
        OutputFormat::Human => render::human(&report),
        OutputFormat::Json => render::json(&report),
        OutputFormat::Sarif => render::sarif(&report),
    };
    if out.write_all(text.as_bytes()).and_then(|_| out.flush()).is_err() {
        return 2;
    }
    i32::from(report.fails(args.fail_on.into()))
}
