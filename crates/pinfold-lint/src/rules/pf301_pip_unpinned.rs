//! PF301: `pip install` of packages without `==` pins.

use crate::deps::project_name;
use crate::rule::{Ctx, Installer, Package, Rule};
use crate::shell::{has_option, is_dynamic, positionals, subcommand, Command, Script, Word};
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF301",
    name: "pip-unpinned",
    severity: Severity::Error,
    summary: "`pip install` without `==` pins",
    what: "Finds `pip install` (also `pip3`, `python -m pip`, `uv pip`) naming packages \
without an exact `==` (or `===`) version, saying whether a package has no version or a \
range (`numpy>=1.20`). The options of pip and uv that take a value are known, so a value \
(`--index-strategy unsafe-best-match`) is never taken for a package. Installs from a \
requirements file (`-r`), with a constraints file (`-c`) or in hash-checking mode \
(`--require-hashes`) are left to the requirements-file rules; local paths, wheel files \
and VCS URLs at a full commit are not reported. The packages of one command are one \
finding.",
    why: "`pip install flask` installs the newest release on the day of the build, and its \
newest dependencies: two builds a week apart get different code. A range such as \
`flask>=3` is no better.",
    example: example!("PF301", "Dockerfile", "dockerfile"),
    fix: "Pin every package: `pip install flask==3.0.3`. Better: list all packages, \
dependencies included, in a requirements file with hashes (`pip-compile --generate-hashes`) \
and run `pip install --require-hashes -r requirements.txt`.\n\n\
With pinfold, `pinfold import` turns the Dockerfile into a build file whose \
`python NAME { … }` input lists the packages (or reads the requirements file), and \
`pinfold lock` pins every wheel, dependencies included, by sha256; `pinfold build` then \
installs exactly those files.",
    fixable: false,
    hadolint: &["DL3013"],
};

/// The options of `pip install` and `uv pip install` that take a value, so that the
/// value is never read as a package (`--index-strategy unsafe-best-match`). From
/// `pip install --help` (pip 24/25) and `uv pip install --help` (uv 0.5–0.8).
pub const TAKES_VALUE: &[&str] = &[
    // pip
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
    "--root-user-action",
    "--log",
    "--log-file",
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
    "--build-option",
    "--install-option",
    "--config-settings",
    "-C",
    "--no-binary",
    "--only-binary",
    "--python",
    "--keyring-provider",
    "--use-feature",
    "--use-deprecated",
    "--group",
    // uv pip
    "--requirements",
    "--constraints",
    "--overrides",
    "-b",
    "--build-constraints",
    "--extra",
    "--index",
    "--default-index",
    "--index-strategy",
    "--resolution",
    "--prerelease",
    "--fork-strategy",
    "--exclude-newer",
    "--exclude-newer-package",
    "--link-mode",
    "--python-platform",
    "-p",
    "--reinstall-package",
    "-P",
    "--upgrade-package",
    "--refresh-package",
    "--no-build-isolation-package",
    "--config-setting",
    "--torch-backend",
    "--color",
    "--config-file",
    "--directory",
    "--project",
    "--allow-insecure-host",
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
pub(crate) fn pinned_spec(spec: &str) -> bool {
    spec::pip(spec).is_none()
}

pub(crate) fn local_or_artifact(spec: &str) -> bool {
    spec::local_or_artifact(spec)
}

/// The help of a `pip install` finding, for one package or several.
pub(crate) fn help(example: &str) -> String {
    format!(
        "pin each package: `{example}==VERSION`, or install a hashed requirements file:\n\
         `pip install --require-hashes -r requirements.txt`.\n\
         {}",
        super::WITH_PINFOLD_PYTHON
    )
}

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let Some(args) = pip_install(cmd) else {
            continue;
        };
        if has_option(args, &["--require-hashes", "-c", "--constraint", "--constraints"]) {
            continue;
        }
        let tool = if cmd.program() == Some("uv") { "`uv pip install`" } else { "`pip install`" };
        for pkg in positionals(args, TAKES_VALUE) {
            if is_dynamic(&pkg.text) {
                continue;
            }
            let Some(problem) = spec::pip(&pkg.text) else {
                continue;
            };
            let name = project_name(&pkg.text).to_string();
            let installer = Installer { label: tool.to_string(), help: help("NAME") };
            let package = Package { name: name.clone(), spec: pkg.text.clone(), problem: problem.to_string() };
            ctx.report_package(&RULE, pkg.span.clone(), installer, package, help(&name));
        }
    }
}
