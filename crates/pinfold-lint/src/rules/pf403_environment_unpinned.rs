//! PF403: a conda `environment.yml` dependency without a version.

use crate::deps::EnvDependency;
use crate::rule::{Ctx, Rule};
use crate::rules::pf301_pip_unpinned::{local_or_artifact, pinned_spec};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF403",
    name: "environment-unpinned",
    severity: Severity::Error,
    summary: "An `environment.yml` dependency without a version",
    what: "Finds conda dependencies in `environment.yml`/`environment.yaml` without a \
version (`=1.26`, `==1.26.4`, `numpy 1.26.4`), and the pip dependencies listed under \
`- pip:` without an `==` pin.",
    why: "`conda env create` solves the environment anew each time: a dependency without a \
version is whatever is newest that day, and so is everything it pulls in.",
    example: example!("PF403", "environment.yml", "yaml"),
    fix: "Give every dependency a version (`numpy=1.26.4`, `requests==2.32.3` under `pip:`), \
or better, build from a lock file (`conda-lock`, or `conda env export --no-builds` of the \
tested environment).",
    fixable: false,
    hadolint: &[],
};

fn conda_pinned(spec: &str) -> bool {
    let s = spec.split_once("::").map_or(spec, |(_, s)| s).trim();
    let exact = s.match_indices('=').any(|(i, _)| i > 0 && !matches!(s.as_bytes()[i - 1], b'<' | b'>' | b'!'));
    // MatchSpec also allows `name VERSION [BUILD]`.
    let spaced = s.split_whitespace().nth(1).is_some_and(|v| v.as_bytes()[0].is_ascii_digit());
    exact || spaced || s.contains('@') || s.starts_with('.') || s.starts_with('/')
}

pub fn check(ctx: &mut Ctx, deps: &[EnvDependency]) {
    for d in deps {
        if d.spec.contains('$') {
            continue;
        }
        if d.pip {
            if d.spec.starts_with('-') || pinned_spec(&d.spec.replace(' ', "")) || local_or_artifact(&d.spec) {
                continue;
            }
            ctx.report(&RULE, d.span.clone(), format!("pip dependency `{}` is not pinned to one version", d.spec))
                .label("no == version")
                .help(format!("pin it: `{}==VERSION`", crate::deps::project_name(&d.spec)));
        } else if !conda_pinned(&d.spec) {
            let name = d.spec.split(['<', '>', '=', ' ']).next().unwrap_or(&d.spec);
            ctx.report(&RULE, d.span.clone(), format!("conda dependency `{}` has no version", d.spec))
                .label("no version")
                .help(format!("pin it: `{name}=VERSION`"));
        }
    }
}
