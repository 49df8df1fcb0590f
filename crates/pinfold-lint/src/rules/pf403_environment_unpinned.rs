//! PF403: a conda `environment.yml` dependency without a version.

use crate::deps::project_name;
use crate::deps::EnvDependency;
use crate::rule::{Ctx, Installer, Package, Rule};
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF403",
    name: "environment-unpinned",
    severity: Severity::Error,
    summary: "An `environment.yml` dependency without a version",
    what: "Finds the dependencies of a conda environment file (`environment.yml`, or any \
YAML file with a top-level `dependencies:` list, or a spec list given to `conda install \
--file`) that conda's version semantics leave open: no version, a range (`numpy>=1.20`), \
a prefix (`numpy=1.26` is any 1.26.x) or `*` (`blas=*=openblas` pins nothing). A version \
without a build string is PF405. Under `- pip:`, finds requirements without an `==` pin \
and VCS URLs (`-e git+https://…@master#egg=x`) not at a full commit. Explicit locks \
(`@EXPLICIT`) and conda-lock files pin everything and are not reported.",
    why: "`conda env create` solves the environment anew each time: a dependency without a \
version is whatever is newest that day, and so is everything it pulls in.",
    example: example!("PF403", "environment.yml", "yaml"),
    fix: "Give every dependency its version and build (`numpy=1.26.4=py311h64a7726_0`; \
`requests==2.32.3` under `pip:`), or better, build from a lock (`conda list --explicit` of \
the tested environment, or conda-lock).",
    fixable: false,
    hadolint: &[],
};

fn conda_help(example: &str) -> String {
    format!(
        "pin each dependency to a version and build: `{example}=VERSION=BUILD` (`conda list` in the \
         tested environment shows both),\nor build from a lock: `conda list --explicit` or conda-lock"
    )
}

fn pip_help(example: &str) -> String {
    format!("pin each pip dependency: `{example}==VERSION`, and a VCS URL to a full commit (`@<40-hex>`)")
}

pub(crate) fn check(ctx: &mut Ctx, deps: &[EnvDependency]) {
    for d in deps {
        if d.spec.contains('$') {
            continue;
        }
        if d.pip {
            let problem = if d.editable {
                let lower = d.spec.to_ascii_lowercase();
                if !lower.contains("+") && !lower.contains("://") {
                    continue; // `-e ./local`
                }
                spec::vcs(&d.spec)
            } else {
                spec::pip(&d.spec)
            };
            let Some(problem) = problem else { continue };
            let name = if d.editable {
                d.spec.split("egg=").nth(1).unwrap_or(&d.spec).split('&').next().unwrap_or(&d.spec).to_string()
            } else {
                project_name(&d.spec).to_string()
            };
            let installer = Installer { label: "the `pip:` section".to_string(), help: pip_help("NAME") };
            let package = Package { name: name.clone(), spec: d.spec.clone(), problem: problem.to_string() };
            ctx.report_package(&RULE, d.span.clone(), installer, package, pip_help(&name));
        } else if let spec::Conda::Unpinned(problem) = spec::conda(&d.spec) {
            let name = d.spec.split(['<', '>', '=', ' ', '[']).next().unwrap_or(&d.spec);
            let name = name.rsplit("::").next().unwrap_or(name).to_string();
            let installer = Installer { label: "the environment".to_string(), help: conda_help("NAME") };
            let package = Package { name: name.clone(), spec: d.spec.clone(), problem: problem.to_string() };
            ctx.report_package(&RULE, d.span.clone(), installer, package, conda_help(&name));
        }
    }
}
