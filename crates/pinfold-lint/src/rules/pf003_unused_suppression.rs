//! PF003: a suppression that suppressed nothing. The check lives in `suppress.rs`.

use crate::rule::Rule;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF003",
    name: "unused-suppression",
    severity: Severity::Info,
    summary: "A suppression comment that suppresses nothing",
    what: "Finds `pinfold-lint: allow` comments that match no finding on their line or on \
the line after them.",
    why: "Once the input is pinned the comment is stale, and a stale suppression will \
silently hide the next problem on that line.",
    example: example!("PF003", "Dockerfile", "dockerfile"),
    fix: "Remove the comment.",
    fixable: false,
    hadolint: &[],
};
