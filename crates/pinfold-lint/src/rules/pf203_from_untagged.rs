//! PF203: a Dockerfile `FROM` image with neither tag nor digest.

use crate::dockerlint::ImageUse;
use crate::imageref::ImageRef;
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF203",
    name: "from-untagged",
    severity: Severity::Error,
    summary: "A `FROM` image with neither tag nor digest",
    what: "Finds `FROM` instructions whose image (after build-argument substitution) has no \
tag and no digest, such as `FROM ubuntu`. It is the one finding for such a line (PF201, \
which it includes, is not reported too), so it is an error like PF201.",
    why: "No tag means `latest`: the version is whatever the registry serves on the day of \
the build.",
    example: example!("PF203", "Dockerfile", "dockerfile"),
    fix: "Write the version and the digest: `FROM ubuntu:24.04@sha256:…`.",
    fixable: false,
    hadolint: &["DL3006"],
};

pub fn check(ctx: &mut Ctx, uses: &[ImageUse]) {
    for u in uses.iter().filter(|u| u.from) {
        let Some(resolved) = &u.resolved else {
            continue;
        };
        let r = ImageRef::split(resolved);
        if r.tag.is_none() && r.digest.is_none() {
            ctx.report(
                &RULE,
                u.span(),
                format!("FROM image {} has no tag and no digest: it is whatever `latest` is that day", u.describe()),
            )
            .label("no tag, no digest")
            .help(format!("write the version and the digest: `{resolved}:VERSION@sha256:…`"));
        }
    }
}
