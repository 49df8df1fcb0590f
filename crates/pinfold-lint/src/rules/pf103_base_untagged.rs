//! PF103: a build-file `base` image with neither tag nor digest.

use crate::buildfile::BuildFile;
use crate::imageref::ImageRef;
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF103",
    name: "base-untagged",
    severity: Severity::Warning,
    summary: "A base image with neither tag nor digest",
    what: "Finds `base` nodes whose `image` reference has no tag and no digest, such as \
`image \"debian\"`.",
    why: "A reference without a tag means `latest` (see PF102): the version is whatever the \
registry serves that day, and nothing in the build file says which one was meant.",
    example: example!("PF103", "kdl", "kdl"),
    fix: "Write the version and the digest: `image \"debian:bookworm-slim@sha256:…\"`.",
    fixable: false,
    hadolint: &["DL3006"],
};

pub fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for base in bf.top("base") {
        let Some(image) = bf.field(base, "image") else {
            continue;
        };
        let Some(text) = image.as_str() else { continue };
        let r = ImageRef::split(text);
        if r.tag.is_none() && r.digest.is_none() && !bf.has(base, "digest") {
            ctx.report(&RULE, image.span.clone(), format!("base image `{text}` has no tag, which means `latest`"))
                .label("no tag, no digest")
                .help(format!("write the version and the digest: `{text}:VERSION@sha256:…`"));
        }
    }
}
