//! PF301: `pip install` of packages without `==` pins.

use crate::rule::{Ctx, Rule};
use crate::shell::{has_option, is_dynamic, positionals, subcommand, Command, Script, Word};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF301",
    name: "pip-unpinned",
    severity: Severity::Error,
    summary: "`pip install` without `==` pins",
    what: "Finds `pip install` (also `pip3`, `python -m pip`, `uv pip`) naming packages \
without an exact `==` (or `===`) version. Installs from a requirements file (`-r`), with a \
constraints file (`-c`) or in hash-checking mode (`--require-hashes`) are left to the \
requirements-file rules; local paths and wheel files are not reported.",
    why: "`pip install flask` installs the newest release on the day of the build, and its \
newest dependencies: two builds a week apart get different code. A range such as \
`flask>=3` is no better.",
    example: example!("PF301", "Dockerfile", "dockerfile"),
    fix: "Pin every package: `pip install flask==3.0.3`. Better: list all packages, \
dependencies included, in a requirements file with hashes (`pip-compile --generate-hashes`) \
and run `pip install --require-hashes -r requirements.txt`.",
    fixable: false,
    hadolint: &["DL3013"],
};

const TAKES_VALUE: &[&str] = &[
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-e",
    "--editable",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--src",
    "--upgrade-strategy",
    "--progress-bar",
    "--log",
    "--cache-dir",
    "--proxy",
    "--retries",
    "--timeout",
    "--exists-action",
    "--trusted-host",
    "--cert",
    "--client-cert",
    "--report",
    "--global-option",
    "--config-settings",
    "-C",
    "--no-binary",
    "--only-binary",
    "--python",
];

/// The arguments after `install` when the command is a pip install.
pub fn pip_install(cmd: &Command) -> Option<&[Word]> {
    let argv = cmd.argv();
    let prog = cmd.program()?;
    let after: &[Word] = if is_pip(prog) {
        argv
    } else if prog.starts_with("python") && prog[6..].bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let m = argv.iter().position(|w| w.text == "-m")?;
        (argv.get(m + 1)?.text == "pip").then_some(())?;
        &argv[m + 1..]
    } else if prog == "uv" && argv.get(1).is_some_and(|w| w.text == "pip") {
        &argv[1..]
    } else {
        return None;
    };
    let (sub, rest) = subcommand(after, &["--cache-dir", "--log", "--proxy", "--python"])?;
    (sub == "install").then_some(rest)
}

fn is_pip(prog: &str) -> bool {
    prog.strip_prefix("pip").is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// True when a requirement specifier names one exact version, or a local or
/// content-addressed artifact.
pub fn pinned_spec(spec: &str) -> bool {
    let spec = spec.split(';').next().unwrap_or("").trim();
    if let Some((_, version)) = spec.split_once("==") {
        return !version.contains('*') && !version.contains(',');
    }
    local_or_artifact(spec)
}

pub fn local_or_artifact(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    spec.starts_with('.')
        || spec.starts_with('/')
        || spec.starts_with('~')
        || lower.ends_with(".whl")
        || lower.ends_with(".tar.gz")
        || lower.ends_with(".zip")
        || (lower.contains("git+")
            && lower.rsplit('@').next().is_some_and(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit())))
        || lower.contains("#sha256=")
}

pub fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let Some(args) = pip_install(cmd) else {
            continue;
        };
        if has_option(args, &["--require-hashes", "-c", "--constraint"]) {
            continue;
        }
        for pkg in positionals(args, TAKES_VALUE) {
            if pinned_spec(&pkg.text) || is_dynamic(&pkg.text) {
                continue;
            }
            let name = pkg.text.split(['<', '>', '=', '!', '~', '[', ';']).next().unwrap_or(&pkg.text);
            ctx.report(&RULE, pkg.span.clone(), format!("`pip install` does not pin `{}`", pkg.text))
                .label("no == version")
                .help(format!(
                    "pin it: `{name}==VERSION`, or install from a hashed requirements file \
                     (`pip install --require-hashes -r requirements.txt`)"
                ));
        }
    }
}
