//! PF401: a requirements-file entry without an `==` pin.

use crate::deps::{Group, Requirements};
use crate::rule::{Ctx, Rule};
use crate::rules::pf301_pip_unpinned::{local_or_artifact, pinned_spec};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF401",
    name: "requirement-unpinned",
    severity: Severity::Error,
    summary: "A requirements entry without an `==` pin",
    what: "Finds entries of `requirements*.txt` files without an exact `==` (or `===`) \
version, unless a constraints file of the same set (`-c FILE`) pins the project. Local \
paths, wheels and VCS URLs pinned to a full commit are accepted. Files named with `-r` and \
`-c` are read too when they are beside the including file.",
    why: "pip installs the newest version that matches a range, on the day of the build. \
The requirements file is then a wish list, not a record of what was tested.",
    example: example!("PF401", "requirements.txt", "text"),
    fix: "Pin every project, dependencies included, and let a tool maintain the file: \
`pip-compile --generate-hashes requirements.in` (pip-tools) or \
`uv pip compile --generate-hashes`.",
    fixable: false,
    hadolint: &[],
};

pub fn check(ctx: &mut Ctx, reqs: &Requirements, group: &Group, constraints_file: bool) {
    for e in &reqs.entries {
        let spec: String = e.spec.split(';').next().unwrap_or("").chars().filter(|c| !c.is_whitespace()).collect();
        let pinned = if e.editable {
            local_or_artifact(&e.spec)
        } else {
            pinned_spec(&spec) || spec.split_once('@').is_some_and(|(_, url)| local_or_artifact(url))
        };
        if pinned || e.spec.contains('$') || (!constraints_file && group.constrained.contains(&e.name)) {
            continue;
        }
        let name = crate::deps::project_name(&e.spec);
        ctx.report(&RULE, e.span.clone(), format!("`{}` is not pinned to one version", e.spec))
            .label("no == version")
            .help(format!("pin it: `{name}==VERSION` (`pip-compile` writes such files)"));
    }
}
