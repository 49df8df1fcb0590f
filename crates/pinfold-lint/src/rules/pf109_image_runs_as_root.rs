//! PF109: a build-file `image` without a `user`, which therefore runs as root.

use crate::buildfile::{children, head_span, BuildFile};
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF109",
    name: "image-runs-as-root",
    severity: Severity::Warning,
    summary: "An image without a `user` runs as root",
    what: "Finds `image` nodes with no `user`, neither for all platforms nor in a \
`platform` block.",
    why: "Without a `user` the image runs as the user of what it is built `from`, which for \
`scratch` and most base images is root. That is not a reproducibility problem but a safety \
one: a compromise of the process is a compromise of root in the container. Saying `user \
\"0:0\"` explicitly is allowed, and documents the choice; so is naming the base's own \
non-root user again.",
    example: example!("PF109", "kdl", "kdl"),
    fix: "Add `user \"UID:GID\"` (a numeric id needs no `/etc/passwd` in the image).",
    fixable: false,
    hadolint: &[],
};

pub fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for image in bf.top("image") {
        let has_user = bf.has(image, "user")
            || children(image).filter(|c| c.name().value() == "platform").any(|p| bf.has(p, "user"));
        if !has_user {
            let name =
                image.entries().iter().find(|e| e.name().is_none()).and_then(|e| e.value().as_string()).unwrap_or("?");
            ctx.report(&RULE, head_span(bf.text, image), format!("image `{name}` has no `user`, so it runs as root"))
                .label("runs as root")
                .help("add `user \"1000:1000\"` (or `user \"0:0\"` to say that root is intended)");
        }
    }
}
