//! PF302: `apt-get install` of packages without `=version`.

use crate::rule::{Ctx, Installer, Package, Rule};
use crate::shell::{is_dynamic, positionals, subcommand, Script};
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF302",
    name: "apt-get-unpinned",
    severity: Severity::Error,
    summary: "`apt-get install` without `=version`",
    what: "Finds `apt-get install` (and `apt install`, `aptitude install`) naming packages \
without `=VERSION`; a release (`curl/bookworm-backports`) is not a version. Local `.deb` \
files are not reported. The packages of one `RUN` are one finding.",
    why: "Debian and Ubuntu mirrors carry one version of each package per suite, and it \
changes with every point release and security update: `apt-get install curl` installs a \
different curl from one month to the next. A pinned version also fails loudly when it \
disappears from the mirror, instead of silently changing.",
    example: example!("PF302", "Dockerfile", "dockerfile"),
    fix: "Pin each package: `apt-get install -y curl=7.88.1-10+deb12u8` (`apt-cache policy \
curl` shows the candidate). For a build that stays reproducible after the mirror moves on, \
install from a snapshot of the archive or from a pinned base image that already contains \
the packages.\n\n\
With pinfold, `pinfold import` turns the Dockerfile into a build file whose \
`debian NAME { packages … }` input lists the packages, and `pinfold lock` pins each \
`.deb` of their closure by sha256, so the same files are installed after the mirror has \
moved on.",
    fixable: false,
    hadolint: &["DL3008"],
};

pub const TAKES_VALUE: &[&str] =
    &["-o", "--option", "-t", "--target-release", "--default-release", "-c", "--config-file"];

/// The help of an apt finding: the Docker-world pin, and pinfold's.
pub(crate) fn help(example: &str) -> String {
    format!(
        "pin each package: `{example}=VERSION` (`apt-cache policy {example}` shows the candidate).\n{}",
        super::WITH_PINFOLD_DEBIAN
    )
}

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let prog = cmd.program();
        if !matches!(prog, Some("apt-get" | "apt" | "aptitude")) {
            continue;
        }
        let argv = cmd.argv();
        let Some(("install", args)) = subcommand(argv, TAKES_VALUE) else {
            continue;
        };
        let label = format!("`{} install`", prog.unwrap_or("apt-get"));
        for pkg in positionals(args, TAKES_VALUE) {
            let t = &pkg.text;
            if t.ends_with(".deb") || t.starts_with('.') || t.starts_with('/') || is_dynamic(t) {
                continue;
            }
            let problem = match t.split_once('=') {
                Some((_, v)) if v.contains('*') => "a prefix match, not a pin",
                Some(_) => continue,
                None if t.contains('/') => "a release, not a version",
                None => spec::NO_VERSION,
            };
            let name = t.split(['/', '=']).next().unwrap_or(t).to_string();
            let installer = Installer { label: label.clone(), help: help("NAME") };
            let package = Package { name: name.clone(), spec: t.clone(), problem: problem.to_string() };
            ctx.report_package(&RULE, pkg.span.clone(), installer, package, help(&name));
        }
    }
}
