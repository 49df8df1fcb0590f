//! PF308: `gem install` without `-v`.

use crate::rule::{Ctx, Installer, Package, Rule};
use crate::shell::{has_option, is_dynamic, positionals, subcommand, Script};
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF308",
    name: "gem-unpinned",
    severity: Severity::Error,
    summary: "`gem install` without `-v`",
    what: "Finds `gem install` naming gems without `-v VERSION`/`--version VERSION` or the \
`gem:VERSION` form. Local `.gem` files are not reported.",
    why: "`gem install rails` installs the newest release and resolves its dependencies \
anew at every build.",
    example: example!("PF308", "Dockerfile", "dockerfile"),
    fix: "Pin the version: `gem install bundler -v 2.5.22` or `gem install bundler:2.5.22`. \
For applications, commit `Gemfile.lock` and run `bundle install` in frozen mode.",
    fixable: false,
    hadolint: &["DL3028"],
};

const TAKES_VALUE: &[&str] = &[
    "-v",
    "--version",
    "-i",
    "--install-dir",
    "-n",
    "--bindir",
    "--source",
    "-s",
    "--platform",
    "-P",
    "--trust-policy",
    "--build-root",
    "-g",
    "--file",
    "--document",
];

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        if cmd.program() != Some("gem") {
            continue;
        }
        let Some(("install" | "i", args)) = subcommand(cmd.argv(), &[]) else {
            continue;
        };
        if has_option(args, &["-v", "--version"]) {
            continue;
        }
        for gem in positionals(args, TAKES_VALUE) {
            let t = &gem.text;
            if t.contains(':') || t.ends_with(".gem") || t.starts_with('.') || t.starts_with('/') || is_dynamic(t) {
                continue;
            }
            let help = |n: &str| format!("pin each gem: `gem install {n} -v VERSION` or `{n}:VERSION`");
            let installer = Installer { label: "`gem install`".to_string(), help: help("NAME") };
            let package = Package { name: t.clone(), spec: t.clone(), problem: spec::NO_VERSION.to_string() };
            ctx.report_package(&RULE, gem.span.clone(), installer, package, help(t));
        }
    }
}
