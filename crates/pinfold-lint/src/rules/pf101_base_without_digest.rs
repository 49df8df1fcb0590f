//! PF101: a build-file `base` taken from a registry by tag, with no digest.

use crate::buildfile::BuildFile;
use crate::fix;
use crate::imageref::ImageRef;
use crate::rule::{Ctx, Rule};
use pinfold_image::digest::Digest;
use pinfold_lang::diag::Severity;

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
the tag next to the digest documents which version it is. When `pinfold.lock` pins the \
base, `pinfold lint --fix` writes its digest in as `digest \"sha256:…\"`.",
    fixable: true,
    hadolint: &[],
};

pub fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for base in bf.top("base") {
        let Some(image) = bf.field(base, "image") else { continue };
        let Some(text) = image.as_str() else { continue };
        if ImageRef::split(text).digest.is_some() || bf.has(base, "digest") {
            continue;
        }
        let name = base.entries().iter().find(|e| e.name().is_none()).and_then(|e| e.value().as_string());
        let locked =
            name.and_then(|n| ctx.lock.as_ref().and_then(|l| l.bases.get(n))).and_then(|d| d.parse::<Digest>().ok());
        let f = ctx.report(&RULE, image.span.clone(), format!("base image `{text}` is pinned by tag only"));
        f.label("no digest");
        match locked {
            Some(digest) => {
                f.help(format!("pinfold.lock pins it: add `digest \"{digest}\"`; `pinfold lint --fix` writes it in"));
                f.fix(fix::insert_digest(bf.text, &image, &digest));
            }
            None => {
                f.help(format!(
                    "append the digest: `{text}@sha256:…` (`pinfold lock` resolves it; \
                     `docker buildx imagetools inspect {text}` prints it)"
                ));
            }
        }
    }
}
