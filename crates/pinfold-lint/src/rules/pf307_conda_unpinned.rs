//! PF307: `conda install` (and `mamba`, `micromamba`, `conda create`) without `=version`.

use crate::rule::{Ctx, Installer, Package, Rule};
use crate::shell::{is_dynamic, positionals, subcommand, Command, Script, Word};
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF307",
    name: "conda-unpinned",
    severity: Severity::Error,
    summary: "`conda install` without `=version`",
    what: "Finds `conda install`/`conda create` (and the same with `mamba` and `micromamba`) \
naming packages that conda's version semantics leave open: no version, a range \
(`numpy>=1.20`), a prefix (`numpy=1.26` is any 1.26.x, `python=3.11` any 3.11.x) or `*` \
(`blas=*=openblas` pins nothing). A version without a build string is PF405. Installs \
from files (`--file`, `env create -f`) are followed to the file (PF314, PF403).",
    why: "The solver picks the newest versions that fit on the day of the build; a new \
release of any package changes the environment.",
    example: example!("PF307", "Dockerfile", "dockerfile"),
    fix: "Pin each package with its version and build: \
`conda install -y numpy=1.26.4=py311h64a7726_0` (`conda list` in the tested environment \
shows both). For whole environments, install from a lock: `conda list --explicit > \
spec.txt` and `conda create --file spec.txt`, or conda-lock.",
    fixable: false,
    hadolint: &[],
};

pub(crate) const TAKES_VALUE: &[&str] = &[
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
    "--override-channels-file",
    "--strict-channel-priority-file",
];

/// The conda packages named on a `conda`/`mamba`/`micromamba` `install` or `create`
/// command line, with the installer's label (`` `conda install` ``).
pub(crate) fn conda_packages(cmd: &Command) -> Option<(String, Vec<&Word>)> {
    let prog @ ("conda" | "mamba" | "micromamba") = cmd.program()? else {
        return None;
    };
    let (sub @ ("install" | "create"), args) = subcommand(cmd.argv(), TAKES_VALUE)? else {
        return None;
    };
    // `micromamba create -f env.yml`: from a file (PF314 follows it).
    let from_file = args.iter().any(|w| w.text == "-f" || w.text == "--file" || w.text.starts_with("--file="));
    let mut takes: Vec<&str> = TAKES_VALUE.to_vec();
    if from_file {
        takes.push("-f");
    }
    let pkgs = positionals(args, &takes)
        .into_iter()
        .filter(|w| !is_dynamic(&w.text) && !(from_file && (w.text.ends_with(".yml") || w.text.ends_with(".yaml"))))
        .collect();
    Some((format!("`{prog} {sub}`"), pkgs))
}

/// The help of a conda finding.
pub(crate) fn help(example: &str) -> String {
    format!(
        "pin each package to a version and build: `{example}=VERSION=BUILD` (`conda list {example}` \
         in the tested environment shows both),\nor install from a lock: `conda list --explicit` or conda-lock"
    )
}

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let Some((label, pkgs)) = conda_packages(cmd) else { continue };
        for pkg in pkgs {
            let spec::Conda::Unpinned(problem) = spec::conda(&pkg.text) else { continue };
            let name = pkg.text.split(['<', '>', '=', ' ', '[']).next().unwrap_or(&pkg.text);
            let name = name.rsplit("::").next().unwrap_or(name).to_string();
            let installer = Installer { label: label.clone(), help: help("NAME") };
            let package = Package { name: name.clone(), spec: pkg.text.clone(), problem: problem.to_string() };
            ctx.report_package(&RULE, pkg.span.clone(), installer, package, help(&name));
        }
    }
}
