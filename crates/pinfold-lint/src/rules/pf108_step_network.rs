//! PF108: a build-file `step` that asks for the network.

use crate::buildfile::BuildFile;
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF108",
    name: "step-network",
    severity: Severity::Warning,
    summary: "A step that asks for the network",
    what: "Finds `step` nodes with `network #true`.",
    why: "Steps run in a sandbox without the network so that their outputs depend only on \
their declared inputs. A step with the network can fetch anything, and nothing in the \
build file pins what it fetched: its outputs may differ from one run to the next.",
    example: example!("PF108", "kdl", "kdl"),
    fix: "Declare what the step fetches as `download`s or `archive`s with their sha256 and \
pass them in as inputs; then remove `network`. When that is not possible yet, suppress the \
finding with a reason.",
    fixable: false,
    hadolint: &[],
};

pub fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for step in bf.top("step") {
        let Some(network) = bf.field(step, "network") else {
            continue;
        };
        if network.value.as_bool() == Some(true) {
            let name =
                step.entries().iter().find(|e| e.name().is_none()).and_then(|e| e.value().as_string()).unwrap_or("?");
            ctx.report(&RULE, network.span.clone(), format!("step `{name}` runs with the network"))
                .label("network access")
                .help("fetch inputs as pinned `download`s and pass them to the step instead");
        }
    }
}
