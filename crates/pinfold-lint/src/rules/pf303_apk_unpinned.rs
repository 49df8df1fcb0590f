//! PF303: `apk add` of packages without `=version`.

use crate::rule::{Ctx, Installer, Package, Rule};
use crate::shell::{is_dynamic, positionals, subcommand, Script};
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF303",
    name: "apk-unpinned",
    severity: Severity::Error,
    summary: "`apk add` without `=version`",
    what: "Finds `apk add` naming packages without `=VERSION` (or the fuzzy `~VERSION`). The \
name given to `--virtual`/`-t` and local `.apk` files are not packages and not reported.",
    why: "Alpine repositories keep only the newest build of each package in a branch: \
`apk add curl` installs whatever was built last, so rebuilding the same Dockerfile gives a \
different image.",
    example: example!("PF303", "Dockerfile", "dockerfile"),
    fix: "Pin each package: `apk add --no-cache curl=8.9.1-r1` (`apk policy curl` shows the \
versions). Expect a pinned build to fail when Alpine drops the old build; that is the \
moment to update the pin on purpose.",
    fixable: false,
    hadolint: &["DL3018"],
};

const TAKES_VALUE: &[&str] = &[
    "-X",
    "--repository",
    "-t",
    "--virtual",
    "-p",
    "--root",
    "--arch",
    "--cache-dir",
    "--keys-dir",
    "--repositories-file",
    "--cache-max-age",
];

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        if cmd.program() != Some("apk") {
            continue;
        }
        let Some(("add", args)) = subcommand(cmd.argv(), TAKES_VALUE) else {
            continue;
        };
        for pkg in positionals(args, TAKES_VALUE) {
            let t = &pkg.text;
            let exact = t.match_indices('=').any(|(i, _)| i > 0 && !matches!(t.as_bytes()[i - 1], b'<' | b'>' | b'!'));
            if exact
                || t.contains('~')
                || t.ends_with(".apk")
                || t.starts_with('.')
                || t.starts_with('/')
                || is_dynamic(t)
            {
                continue;
            }
            let name = t.split(['<', '>']).next().unwrap_or(t).to_string();
            let problem = if t.contains(['<', '>']) { spec::RANGE } else { spec::NO_VERSION };
            let help = |n: &str| format!("pin each package: `{n}=VERSION` (`apk policy {n}` shows the versions)");
            let installer = Installer { label: "`apk add`".to_string(), help: help("NAME") };
            let package = Package { name: name.clone(), spec: t.clone(), problem: problem.to_string() };
            ctx.report_package(&RULE, pkg.span.clone(), installer, package, help(&name));
        }
    }
}
