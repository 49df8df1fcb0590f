//! PF101: a build-file `base` taken from a registry by tag, with no digest.

use crate::diag::Severity;
use crate::lint::buildfile::BuildFile;
use crate::lint::imageref::ImageRef;
use crate::lint::rule::{Ctx, Rule};

pub const RULE: Rule = Rule {
    id: "PF101",
    name: "base-without-digest",
    severity: Severity::Error,
    summary: "A base image given by tag without a digest",
    what: "Finds `base` nodes whose `image \"REPO:TAG\"` has no `@sha256:…` and that have no \
`digest` field either.",
    why: "A tag is a pointer that the registry may move at any time: `alpine:3.20` today is \
not `alpine:3.20` next month. A build that starts from a tag cannot be rebuilt bit for bit, \
and `pinfold verify` cannot reproduce a published image from it.",
    example: example!("PF101", "kdl", "kdl"),
    fix: "Append the digest of the image you tested with: `image \"REPO:TAG@sha256:…\"`. \
`pinfold lock` resolves it, or `docker buildx imagetools inspect REPO:TAG` prints it. Keeping \
the tag next to the digest documents which version it is.",
    fixable: false,
    hadolint: &[],
};

pub(crate) fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for base in bf.top("base") {
        let Some(image) = bf.field(base, "image") else {
            continue;
        };
        let Some(text) = image.as_str() else { continue };
        if ImageRef::parse(text).digest.is_some() || bf.has(base, "digest") {
            continue;
        }
        ctx.report(&RULE, image.span.clone(), format!("base image `{text}` is pinned by tag only"))
            .label("no digest")
            .help(format!(
                "append the digest: `{text}@sha256:…` (`pinfold lock` resolves it; \
                 `docker buildx imagetools inspect {text}` prints it)"
            ));
    }
}
