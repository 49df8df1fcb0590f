//! PF404: a requirements file names an `-r`/`-c` file that is not there.

use crate::deps::Include;
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF404",
    name: "include-not-found",
    severity: Severity::Warning,
    summary: "An `-r`/`-c` file that is not beside the requirements file",
    what: "Finds `-r FILE` and `-c FILE` lines in a requirements file whose file does not \
exist relative to the including file, so that its entries cannot be linted.",
    why: "Lint cannot say whether the named file pins anything. Either the path is wrong \
(and `pip install` fails too), or the file is generated during the build, in which case \
the unpinned inputs are hidden from review.",
    example: example!("PF404", "requirements.txt", "text"),
    fix: "Commit the named file next to the requirements file, or fix the path.",
    fixable: false,
    hadolint: &[],
};

pub fn check(ctx: &mut Ctx, missing: &[&Include]) {
    for inc in missing {
        let opt = if inc.constraint { "-c" } else { "-r" };
        ctx.report(&RULE, inc.span.clone(), format!("`{opt} {}` names a file that is not there", inc.path))
            .label("not found")
            .help("commit the file beside this one, or fix the path, so that its entries can be checked");
    }
}
