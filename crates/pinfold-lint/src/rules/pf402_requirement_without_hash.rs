//! PF402: in hash-checking mode, a requirements entry without `--hash`.

use crate::deps::{Group, Requirements};
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF402",
    name: "requirement-without-hash",
    severity: Severity::Error,
    summary: "A requirements entry without `--hash` where others have one",
    what: "When any entry of a set of requirements files (a file and the files it names with \
`-r`) has a `--hash`, or the set says `--require-hashes`, finds the entries that have none, \
and editable (`-e`) entries, which cannot be hashed.",
    why: "pip switches to hash-checking mode as soon as one entry has a hash, and then \
refuses the whole install if any entry lacks one: the build fails. Where it does not fail \
(a tool that ignores hashes), the unhashed entries are the unpinned ones.",
    example: example!("PF402", "requirements.txt", "text"),
    fix: "Regenerate the file with hashes for every entry: \
`pip-compile --generate-hashes` or `uv pip compile --generate-hashes`.",
    fixable: false,
    hadolint: &[],
};

pub fn check(ctx: &mut Ctx, reqs: &Requirements, group: &Group, constraints_file: bool) {
    if !group.hash_mode || constraints_file {
        return;
    }
    for e in &reqs.entries {
        if e.hashes > 0 {
            continue;
        }
        let why = if e.editable { "an editable requirement cannot be hashed" } else { "other entries have hashes" };
        ctx.report(&RULE, e.span.clone(), format!("`{}` has no --hash, but {why}", e.spec))
            .label("no --hash")
            .help("regenerate the file with `pip-compile --generate-hashes`; pip refuses it as it is");
    }
}
