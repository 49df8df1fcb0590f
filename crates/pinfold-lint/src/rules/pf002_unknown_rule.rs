//! PF002: a suppression names a rule that does not exist, so it suppresses nothing.
//! The check lives in `suppress.rs`.

use crate::rule::Rule;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF002",
    name: "unknown-rule",
    severity: Severity::Warning,
    summary: "A suppression names a rule that does not exist",
    what: "Finds `allow` entries and `pinfold-lint: allow` comments whose rule is neither a \
rule id (`PF101`) nor a rule name (`base-without-digest`).",
    why: "A mistyped id suppresses nothing; the author believes a finding is handled when \
it is not, or the suppression outlived a renamed rule.",
    example: example!("PF002", "kdl", "kdl"),
    fix: "Use an id or a name from the rule list, or remove the suppression.",
    fixable: false,
    hadolint: &[],
};
