//! PF202: a Dockerfile `FROM` image with the `latest` tag.

use crate::dockerlint::ImageUse;
use crate::imageref::ImageRef;
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF202",
    name: "from-latest-tag",
    severity: Severity::Warning,
    summary: "A `FROM` image with the `latest` tag",
    what: "Finds `FROM` instructions whose image (after build-argument substitution) has \
the `latest` tag.",
    why: "`latest` names no version: without a digest it changes with every release, and \
with one the next update of the digest may jump a major version without anyone noticing.",
    example: example!("PF202", "Dockerfile", "dockerfile"),
    fix: "Name the version: `FROM node:22.11-bookworm-slim@sha256:…`.",
    fixable: false,
    hadolint: &["DL3007"],
};

pub fn check(ctx: &mut Ctx, uses: &[ImageUse]) {
    for u in uses.iter().filter(|u| u.from) {
        let Some(resolved) = &u.resolved else {
            continue;
        };
        if let Some((tag, range)) = ImageRef::split(resolved).tag {
            if tag == "latest" {
                ctx.report(&RULE, u.span_of(range), format!("FROM image {} uses the `latest` tag", u.describe()))
                    .label("names no version")
                    .help("name the version you build with, e.g. `node:22.11-bookworm-slim@sha256:…`");
            }
        }
    }
}
