//! PF201: a Dockerfile `FROM` (or `COPY --from=`) image pinned by tag only.

use crate::dockerlint::ImageUse;
use crate::imageref::ImageRef;
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF201",
    name: "from-without-digest",
    severity: Severity::Error,
    summary: "A `FROM` image without a digest",
    what: "Finds `FROM` instructions, and `COPY --from=` flags that name an image rather \
than a stage, whose image reference has no `@sha256:…`. Build arguments are substituted \
as BuildKit does (`ARG` before the first `FROM`, `${VAR:-default}`); earlier stage names \
and `scratch` are not images and are not reported. A `FROM` image with no tag at all is \
PF203's.",
    why: "A tag is a pointer the registry can move: `FROM python:3.12-slim` gives a \
different image after every Debian point release or security rebuild, so two builds of the \
same Dockerfile differ. hadolint accepts a tag; pinfold does not, because a reproducible \
build has to start from the same bytes.",
    example: example!("PF201", "Dockerfile", "dockerfile"),
    fix: "Append the digest of the image you tested with, keeping the tag as documentation: \
`FROM python:3.12-slim@sha256:…` (`docker buildx imagetools inspect python:3.12-slim` prints \
it). Tools like Renovate or Dependabot keep such digests up to date.",
    fixable: false,
    hadolint: &[],
};

pub fn check(ctx: &mut Ctx, uses: &[ImageUse]) {
    for u in uses {
        let Some(resolved) = &u.resolved else {
            continue;
        };
        let r = ImageRef::split(resolved);
        if r.digest.is_some() {
            continue;
        }
        // `FROM ubuntu` has no tag either: that is PF203's one finding, not two that
        // contradict each other ("pinned by tag only", "has no tag").
        if u.from && r.tag.is_none() {
            continue;
        }
        let what = if u.from { "FROM" } else { "COPY --from" };
        ctx.report(&RULE, u.span(), format!("{what} image {} is pinned by tag only", u.describe()))
            .label("no digest")
            .help(format!(
                "append the digest: `{resolved}@sha256:…`\n(`docker buildx imagetools inspect {resolved}` prints it; \
                 with pinfold, `pinfold import` and `pinfold lock` record it in pinfold.lock)"
            ));
    }
}
