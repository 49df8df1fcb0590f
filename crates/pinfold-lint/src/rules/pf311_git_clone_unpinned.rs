//! PF311: `git clone` without checking out a pinned commit.

use crate::rule::{Ctx, Rule};
use crate::shell::{has_option, is_dynamic, option_value, positionals, subcommand, Script};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF311",
    name: "git-clone-unpinned",
    severity: Severity::Error,
    summary: "`git clone` without a pinned commit",
    what: "Finds `git clone` in a command that does not pin a commit: no `--revision=COMMIT` \
on the clone, and no `git checkout COMMIT`, `git switch --detach COMMIT`, `git reset --hard \
COMMIT` or `git fetch … COMMIT` afterwards in the same command or in the next `RUN` of the \
same stage. A commit is 7 to 40 hex \
digits, or a variable (the value of a build argument cannot be checked here).",
    why: "A clone gets the branch as it is at build time; `--branch v1.2` gets a tag, and \
tags can be moved or deleted. Only a commit hash names fixed content.",
    example: example!("PF311", "Dockerfile", "dockerfile"),
    fix: "Check out the commit you tested with: \
`git clone https://github.com/org/repo /src && git -C /src checkout 2f1e0c7d…`, or with \
git 2.49 and later `git clone --revision=2f1e0c7d… URL`. In a build file, prefer an \
`archive` of the commit with its sha256.",
    fixable: false,
    hadolint: &[],
};

const GIT_GLOBAL: &[&str] = &["-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"];

fn is_commit(s: &str) -> bool {
    is_dynamic(s) || ((7..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(crate) fn check(ctx: &mut Ctx, script: &Script, later: &[Script]) {
    // The commands of this RUN, then those of the next RUN of the stage, numbered in
    // that order: a checkout there pins a clone here.
    let commands = script.commands.iter().chain(later.iter().flat_map(|s| s.commands.iter()));
    let git: Vec<(&str, &[crate::shell::Word], usize)> = commands
        .enumerate()
        .filter(|(_, c)| c.program() == Some("git"))
        .filter_map(|(i, c)| subcommand(c.argv(), GIT_GLOBAL).map(|(s, a)| (s, a, i)))
        .collect();
    let own = script.commands.len();
    for &(sub, args, i) in &git {
        if sub != "clone" || i >= own {
            continue;
        }
        if option_value(args, &["--revision"]).is_some_and(is_commit) {
            continue;
        }
        let pinned_later = git.iter().filter(|g| g.2 > i).any(|&(s, a, _)| {
            let pos = positionals(a, &["-b", "-B", "--depth", "-c", "--orphan"]);
            match s {
                "checkout" | "switch" | "fetch" => pos.iter().any(|w| is_commit(&w.text)),
                "reset" => has_option(a, &["--hard"]) && pos.iter().any(|w| is_commit(&w.text)),
                _ => false,
            }
        });
        if pinned_later {
            continue;
        }
        let pos = positionals(
            args,
            &[
                "-b",
                "--branch",
                "--depth",
                "-o",
                "--origin",
                "-c",
                "--config",
                "--reference",
                "--filter",
                "-j",
                "--jobs",
                "--separate-git-dir",
                "-u",
                "--upload-pack",
                "--shallow-since",
                "--shallow-exclude",
                "--template",
                "--server-option",
            ],
        );
        let Some(url) = pos.first() else { continue };
        let branch = option_value(args, &["-b", "--branch"]);
        let message = match branch {
            Some(b) => format!("`git clone --branch {b}` pins a branch or tag, not a commit"),
            None => format!("`git clone {}` gets whatever the default branch is at build time", url.text),
        };
        ctx.report(&RULE, url.span.clone(), message).label("no pinned commit").help(
            "check out a commit in the same command: `git -C DIR checkout COMMIT` (or `git clone --revision=COMMIT`)",
        );
    }
}
