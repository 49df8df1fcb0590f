//! PF302: `apt-get install` of packages without `=version`.

use crate::rule::{Ctx, Rule};
use crate::shell::{is_dynamic, positionals, subcommand, Script};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF302",
    name: "apt-get-unpinned",
    severity: Severity::Error,
    summary: "`apt-get install` without `=version`",
    what: "Finds `apt-get install` (and `apt install`) naming packages without `=VERSION`. \
Local `.deb` files are not reported.",
    why: "Debian and Ubuntu mirrors carry one version of each package per suite, and it \
changes with every point release and security update: `apt-get install curl` installs a \
different curl from one month to the next. A pinned version also fails loudly when it \
disappears from the mirror, instead of silently changing.",
    example: example!("PF302", "Dockerfile", "dockerfile"),
    fix: "Pin each package: `apt-get install -y curl=7.88.1-10+deb12u8` (`apt-cache policy \
curl` shows the candidate). For a build that stays reproducible after the mirror moves on, \
install from a snapshot (`snapshot.debian.org`) or from a pinned base image that already \
contains the packages.",
    fixable: false,
    hadolint: &["DL3008"],
};

const TAKES_VALUE: &[&str] = &["-o", "--option", "-t", "--target-release", "--default-release", "-c", "--config-file"];

pub fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let prog = cmd.program();
        if !matches!(prog, Some("apt-get" | "apt")) {
            continue;
        }
        let argv = cmd.argv();
        let Some(("install", args)) = subcommand(argv, TAKES_VALUE) else {
            continue;
        };
        for pkg in positionals(args, TAKES_VALUE) {
            let t = &pkg.text;
            if t.contains('=') || t.ends_with(".deb") || t.starts_with('.') || t.starts_with('/') || is_dynamic(t) {
                continue;
            }
            let name = t.split('/').next().unwrap_or(t);
            ctx.report(&RULE, pkg.span.clone(), format!("`{} install` does not pin `{t}`", prog.unwrap_or("apt-get")))
                .label("no =version")
                .help(format!("pin it: `{name}=VERSION` (`apt-cache policy {name}` shows the candidate)"));
        }
    }
}
