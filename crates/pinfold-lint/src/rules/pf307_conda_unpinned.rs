//! PF307: `conda install` (and `mamba`, `micromamba`, `conda create`) without `=version`.

use crate::rule::{Ctx, Rule};
use crate::shell::{is_dynamic, positionals, subcommand, Script};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF307",
    name: "conda-unpinned",
    severity: Severity::Error,
    summary: "`conda install` without `=version`",
    what: "Finds `conda install`/`conda create` (and the same with `mamba` and `micromamba`) \
naming packages without `=VERSION`. Installs from files (`--file`, `env create -f`) are \
left to the environment-file rule.",
    why: "The solver picks the newest versions that fit on the day of the build; a new \
release of any package changes the environment.",
    example: example!("PF307", "Dockerfile", "dockerfile"),
    fix: "Pin each package, ideally with its build: `conda install -y numpy=1.26.4`. For \
whole environments, use a lock file (`conda-lock`, `conda list --explicit`).",
    fixable: false,
    hadolint: &[],
};

const TAKES_VALUE: &[&str] = &[
    "-c",
    "--channel",
    "-n",
    "--name",
    "-p",
    "--prefix",
    "--file",
    "--repodata-fn",
    "--solver",
    "--platform",
    "--subdir",
    "-r",
    "--root-prefix",
];

pub fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let Some(prog @ ("conda" | "mamba" | "micromamba")) = cmd.program() else {
            continue;
        };
        let Some((sub @ ("install" | "create"), args)) = subcommand(cmd.argv(), TAKES_VALUE) else {
            continue;
        };
        for pkg in positionals(args, TAKES_VALUE) {
            let t = &pkg.text;
            let exact = t.match_indices('=').any(|(i, _)| i > 0 && !matches!(t.as_bytes()[i - 1], b'<' | b'>' | b'!'));
            if exact
                || t.contains('@')
                || t.ends_with(".conda")
                || t.ends_with(".tar.bz2")
                || t.starts_with('.')
                || t.starts_with('/')
                || is_dynamic(t)
            {
                continue;
            }
            ctx.report(&RULE, pkg.span.clone(), format!("`{prog} {sub}` does not pin `{t}`"))
                .label("no =version")
                .help(format!("pin it: `{}=VERSION`", t.split(['<', '>']).next().unwrap_or(t)));
        }
    }
}
