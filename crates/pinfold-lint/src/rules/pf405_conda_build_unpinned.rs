//! PF405: a conda package pinned to a version but not to a build.

use crate::deps::EnvDependency;
use crate::rule::{Ctx, Installer, Package, Rule};
use crate::rules::pf307_conda_unpinned::conda_packages;
use crate::shell::Script;
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF405",
    name: "conda-build-unpinned",
    severity: Severity::Warning,
    summary: "A conda package with a version but no build string",
    what: "Finds conda packages, in environment files and spec lists and on `conda`/`mamba`/\
`micromamba` `install`/`create` command lines, that name one version (`numpy==1.26.4`, \
`numpy=1.26.4`, `numpy 1.26.4`) but no build string. Explicit locks (`@EXPLICIT`) and \
conda-lock files are not reported.",
    why: "A conda version has many builds (one per Python, BLAS, CUDA variant, and new \
build numbers when a package is rebuilt), and the solver picks among them on the day of \
the build: the same `numpy=1.26.4` can install a different file next month.",
    example: example!("PF405", "environment.yml", "yaml"),
    fix: "Add the build string of the tested environment (`conda list` shows it): \
`numpy=1.26.4=py311h64a7726_0`, or install from a lock (`conda list --explicit`, \
conda-lock), which names every file.",
    fixable: false,
    hadolint: &[],
};

fn help(example: &str) -> String {
    format!(
        "add the build: `{example}=VERSION=BUILD` (`conda list {example}` in the tested environment shows it),\n\
         or install from a lock: `conda list --explicit` or conda-lock"
    )
}

fn report(ctx: &mut Ctx, label: &str, spec_text: &str, span: std::ops::Range<usize>) {
    let name = spec_text.split(['<', '>', '=', ' ', '[']).next().unwrap_or(spec_text);
    let name = name.rsplit("::").next().unwrap_or(name).to_string();
    let installer = Installer { label: label.to_string(), help: help("NAME") };
    let package =
        Package { name: name.clone(), spec: spec_text.to_string(), problem: "a version, any build".to_string() };
    ctx.report_package(&RULE, span, installer, package, help(&name));
}

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let Some((label, pkgs)) = conda_packages(cmd) else { continue };
        for pkg in pkgs {
            if spec::conda(&pkg.text) == spec::Conda::AnyBuild {
                report(ctx, &label, &pkg.text, pkg.span.clone());
            }
        }
    }
}

pub(crate) fn check_environment(ctx: &mut Ctx, deps: &[EnvDependency]) {
    for d in deps.iter().filter(|d| !d.pip && !d.spec.contains('$')) {
        if spec::conda(&d.spec) == spec::Conda::AnyBuild {
            report(ctx, "the environment", &d.spec, d.span.clone());
        }
    }
}
