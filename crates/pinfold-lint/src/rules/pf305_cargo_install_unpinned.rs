//! PF305: `cargo install` without `--version` and `--locked`.

use crate::rule::{Ctx, Rule};
use crate::shell::{has_option, positionals, subcommand, Script};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF305",
    name: "cargo-install-unpinned",
    severity: Severity::Error,
    summary: "`cargo install` without `--version` and `--locked`",
    what: "Finds `cargo install` of a crate from a registry without `--version` (or \
`crate@VERSION`), of a git repository without `--rev`, and any `cargo install` without \
`--locked`.",
    why: "Without a version `cargo install` builds the newest release. Without `--locked` it \
ignores the crate's `Cargo.lock` and resolves every dependency anew, so even a pinned \
version builds different code from one day to the next.",
    example: example!("PF305", "Dockerfile", "dockerfile"),
    fix: "Give both: `cargo install ripgrep --version 14.1.1 --locked` (for git sources: \
`--git URL --rev COMMIT --locked`).",
    fixable: false,
    hadolint: &[],
};

const TAKES_VALUE: &[&str] = &[
    "--version",
    "--vers",
    "--git",
    "--branch",
    "--tag",
    "--rev",
    "--path",
    "--root",
    "--index",
    "--registry",
    "--bin",
    "--example",
    "--target",
    "--target-dir",
    "--profile",
    "-j",
    "--jobs",
    "-F",
    "--features",
    "-Z",
    "--config",
    "--color",
];

pub fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        if cmd.program() != Some("cargo") {
            continue;
        }
        let Some(("install", args)) = subcommand(cmd.argv(), &["--config", "-Z", "--color"]) else {
            continue;
        };
        let crates = positionals(args, TAKES_VALUE);
        let locked = has_option(args, &["--locked", "--frozen"]);
        let mut missing = Vec::new();
        if has_option(args, &["--git"]) {
            if !has_option(args, &["--rev"]) {
                missing.push("`--rev COMMIT`");
            }
        } else if !has_option(args, &["--path"])
            && !has_option(args, &["--version", "--vers"])
            && !crates.iter().all(|c| c.text.contains('@'))
        {
            missing.push("`--version`");
        }
        if !locked {
            missing.push("`--locked`");
        }
        if missing.is_empty() {
            continue;
        }
        let span = crates.first().map_or_else(|| cmd.span(), |c| c.span.clone());
        let what = crates.first().map_or("the crate".to_string(), |c| format!("`{}`", c.text));
        ctx.report(&RULE, span, format!("`cargo install` of {what} without {}", missing.join(" and ")))
            .label("not pinned")
            .help("pin both the crate and its dependencies: `cargo install CRATE --version X.Y.Z --locked`");
    }
}
