//! PF401: a requirements-file entry without an `==` pin.

use crate::deps::{Group, Requirements};
use crate::rule::{Ctx, Installer, Package, Rule};
use crate::rules::pf301_pip_unpinned::local_or_artifact;
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF401",
    name: "requirement-unpinned",
    severity: Severity::Error,
    summary: "A requirements entry without an `==` pin",
    what: "Finds entries of `requirements*.txt` files without an exact `==` (or `===`) \
version (saying whether it has no version or a range), unless a constraints file of the \
same set (`-c FILE`) pins the project. Local paths, wheels and VCS URLs pinned to a full \
commit are accepted, in both forms: `name @ git+https://…@<40-hex>` and \
`-e git+https://…@<40-hex>#egg=name`. Files named with `-r` and \
`-c` are read too when they are beside the including file.",
    why: "pip installs the newest version that matches a range, on the day of the build. \
The requirements file is then a wish list, not a record of what was tested.",
    example: example!("PF401", "requirements.txt", "text"),
    fix: "Pin every project, dependencies included, and let a tool maintain the file: \
`pip-compile --generate-hashes requirements.in` (pip-tools) or \
`uv pip compile --generate-hashes`.\n\n\
With pinfold, a `python NAME { requirements \"requirements.txt\" }` input reads the file \
and `pinfold lock` pins every wheel of the resolution by sha256.",
    fixable: false,
    hadolint: &[],
};

fn help(example: &str) -> String {
    format!(
        "pin each project: `{example}==VERSION`, dependencies included (`pip-compile --generate-hashes` writes such files).\n\
         with pinfold: a `python NAME {{ requirements \"FILE\" }}` input; `pinfold lock` then pins each wheel by sha256."
    )
}

pub(crate) fn check(ctx: &mut Ctx, reqs: &Requirements, group: &Group, constraints_file: bool) {
    for e in &reqs.entries {
        let problem = if e.editable {
            if local_or_artifact(&e.spec) || !(e.spec.contains('+') || e.spec.contains("://")) {
                continue;
            }
            spec::vcs(&e.spec)
        } else {
            spec::pip(&e.spec)
        };
        let Some(problem) = problem else { continue };
        if e.spec.contains('$') || (!constraints_file && group.constrained.contains(&e.name)) {
            continue;
        }
        let name = if e.editable {
            e.spec.split("egg=").nth(1).unwrap_or(&e.spec).split('&').next().unwrap_or(&e.spec).to_string()
        } else {
            crate::deps::project_name(&e.spec).to_string()
        };
        let installer = Installer { label: "the requirements file".to_string(), help: help("NAME") };
        let package = Package { name: name.clone(), spec: e.spec.clone(), problem: problem.to_string() };
        ctx.report_package(&RULE, e.span.clone(), installer, package, help(&name));
    }
}
