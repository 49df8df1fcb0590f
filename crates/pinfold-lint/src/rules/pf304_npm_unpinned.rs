//! PF304: `npm install`/`npx` (and `yarn add`, `pnpm add`) of packages without an
//! exact `@version`.

use crate::rule::{Ctx, Installer, Package, Rule};
use crate::shell::{has_option, is_dynamic, option_value, positionals, subcommand, Script, Word};
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF304",
    name: "npm-unpinned",
    severity: Severity::Error,
    summary: "`npm install` or `npx` without `@version`",
    what: "Finds `npm install`/`npm i`/`npm add`, `yarn add`, `pnpm add`, `bun add` and \
`npx` naming packages without an exact `@VERSION`. Dist-tags (`@latest`, `@next`) and \
ranges (`@^4`, `@~4.1`, `@4.x`) are not exact. `npm install` and `npm ci` without package \
names install from the lockfile and are not reported, nor are local paths and tarballs.",
    why: "`npm install -g typescript` and `npx cowsay` fetch whatever version is newest at \
build time, and its dependency tree is resolved anew every time.",
    example: example!("PF304", "Dockerfile", "dockerfile"),
    fix: "Pin the version: `npm install -g typescript@5.6.3`, `npx cowsay@1.6.0`. For an \
application, commit `package-lock.json` and run `npm ci`.",
    fixable: false,
    hadolint: &["DL3016"],
};

const TAKES_VALUE: &[&str] = &[
    "--prefix",
    "--registry",
    "--tag",
    "-w",
    "--workspace",
    "--cache",
    "--userconfig",
    "--omit",
    "--include",
    "--install-strategy",
    "-p",
    "--package",
    "-C",
    "--dir",
    "--cwd",
    "--filter",
    "-F",
];

/// The version part of `name@version` / `@scope/name@version`, if any.
fn version(spec: &str) -> Option<&str> {
    let body = spec.strip_prefix('@').unwrap_or(spec);
    body.rsplit_once('@').map(|(_, v)| v)
}

fn pinned(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    if spec.starts_with('.')
        || spec.starts_with('/')
        || spec.starts_with("file:")
        || lower.ends_with(".tgz")
        || lower.ends_with(".tar.gz")
        || is_dynamic(spec)
    {
        return true;
    }
    if spec.contains("://") || spec.starts_with("github:") || spec.starts_with("git+") {
        // A git dependency is pinned by a full commit after `#`.
        return spec.rsplit_once('#').is_some_and(|(_, c)| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    match version(spec) {
        Some(v) => {
            let exact = v.trim_start_matches('=').trim_start_matches('v');
            !exact.is_empty()
                && exact.as_bytes()[0].is_ascii_digit()
                && !exact.contains(['^', '~', '*', '>', '<', ' ', '|'])
                && !exact.split(['.', '-']).any(|p| p.eq_ignore_ascii_case("x"))
        }
        None => false,
    }
}

fn report(ctx: &mut Ctx, tool: &str, pkg: &Word) {
    let t = &pkg.text;
    let (name, problem) = match version(t) {
        Some(v) if v.starts_with(|c: char| c.is_ascii_alphabetic()) && !v.starts_with('v') => {
            (&t[..t.len() - v.len() - 1], "a tag, not a version")
        }
        Some(v) => (&t[..t.len() - v.len() - 1], if v.is_empty() { spec::NO_VERSION } else { spec::RANGE }),
        None if t.contains("://") || t.starts_with("github:") || t.starts_with("git+") => {
            (t.as_str(), "a branch or tag, not a commit")
        }
        None => (t.as_str(), spec::NO_VERSION),
    };
    let help = |n: &str| format!("pin each package: `{n}@VERSION` (an exact version, not a tag or a range)");
    let installer = Installer { label: format!("`{tool}`"), help: help("NAME") };
    let package = Package { name: name.to_string(), spec: t.clone(), problem: problem.to_string() };
    ctx.report_package(&RULE, pkg.span.clone(), installer, package, help(name));
}

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let argv = cmd.argv();
        let Some(prog) = cmd.program() else { continue };
        match prog {
            "npm" | "yarn" | "pnpm" | "bun" => {
                let Some((sub, mut args)) = subcommand(argv, TAKES_VALUE) else {
                    continue;
                };
                // `yarn global add x`
                let mut sub = sub;
                if sub == "global" {
                    let Some((s, a)) = subcommand(&argv[argv.len() - args.len() - 1..], TAKES_VALUE) else {
                        continue;
                    };
                    sub = s;
                    args = a;
                }
                let installs = match prog {
                    "npm" => matches!(sub, "install" | "i" | "add" | "isntall" | "in"),
                    "pnpm" => matches!(sub, "add" | "install" | "i"),
                    _ => sub == "add",
                };
                if installs {
                    for pkg in positionals(args, TAKES_VALUE) {
                        if !pinned(&pkg.text) {
                            report(ctx, &format!("{prog} {sub}"), pkg);
                        }
                    }
                } else if prog == "npm" && sub == "exec" {
                    check_npx(ctx, args);
                }
            }
            "npx" => check_npx(ctx, &argv[1..]),
            _ => {}
        }
    }
}

/// `npx [--package X]… COMMAND`: the packages are the `--package` values, else the command.
fn check_npx(ctx: &mut Ctx, args: &[Word]) {
    if has_option(args, &["--no-install", "--offline"]) {
        return;
    }
    let explicit: Vec<&Word> =
        args.windows(2).filter(|w| matches!(w[0].text.as_str(), "-p" | "--package")).map(|w| &w[1]).collect();
    if !explicit.is_empty() || option_value(args, &["--package"]).is_some() {
        for pkg in explicit {
            if !pinned(&pkg.text) {
                report(ctx, "npx", pkg);
            }
        }
        return;
    }
    if let Some(first) = positionals(args, TAKES_VALUE).first() {
        if !pinned(&first.text) {
            report(ctx, "npx", first);
        }
    }
}
