//! PF001: a suppression must say why. The check lives in `suppress.rs`, which reads
//! suppressions for every kind of file.

use crate::rule::Rule;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF001",
    name: "allow-without-reason",
    severity: Severity::Error,
    summary: "A suppression without a reason",
    what: "Finds `allow` entries in the build file's `lint` block and `pinfold-lint: allow` \
comments that do not give a `reason=\"…\"`. Such a suppression is refused: the findings \
it names are still reported.",
    why: "A switched-off rule is a decision that the next reader has to trust. The reason \
is the only record of why an unpinned input was accepted, and when it can be removed.",
    example: example!("PF001", "kdl", "kdl"),
    fix: "Add `reason=\"…\"`, saying why the input cannot be pinned and what would let you \
pin it.",
    fixable: false,
    hadolint: &[],
};
