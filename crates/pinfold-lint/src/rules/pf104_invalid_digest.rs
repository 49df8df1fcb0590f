//! PF104: a digest or sha256 in the build file that is not a valid sha256.

use crate::buildfile::{children, BuildFile, Field};
use crate::imageref::ImageRef;
use crate::rule::{Ctx, Rule};
use pinfold_image::digest::Digest;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF104",
    name: "invalid-digest",
    severity: Severity::Error,
    summary: "A digest that is not a valid sha256",
    what: "Checks every `digest` of a `base`, every `@…` digest of an `image` reference and \
every `sha256` of a `download` or `archive`: each must be `sha256:` followed by 64 lowercase \
hex digits (`sha256` values may leave out the `sha256:` prefix).",
    why: "pinfold pins by sha256. A truncated, uppercase or placeholder digest (`sha256:…`) \
pins nothing: the build fails late, or, worse, a tool that compares prefixes accepts the \
wrong content.",
    example: example!("PF104", "kdl", "kdl"),
    fix: "Copy the full digest from the registry, the layout's `index.json` or `sha256sum`.",
    fixable: false,
    hadolint: &[],
};

pub fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for base in bf.top("base") {
        if let Some(f) = bf.field(base, "digest") {
            validate(ctx, &f, f.as_str().map(str::to_string), "digest");
        }
        if let Some(image) = bf.field(base, "image") {
            let Some(text) = image.as_str() else { continue };
            if let (Some((digest, range)), Some(mapped)) = (ImageRef::split(text).digest, bf.mapped(image.entry)) {
                if let Err(e) = digest.parse::<Digest>() {
                    ctx.report(&RULE, mapped.map_range(range), format!("`{digest}` is not a valid digest: {e}"))
                        .label("invalid digest")
                        .help("a digest is `sha256:` and 64 lowercase hex digits");
                }
            }
        }
    }
    for node in bf.top("download").chain(bf.top("archive")) {
        for n in std::iter::once(node).chain(children(node).filter(|c| c.name().value() == "platform")) {
            if let Some(f) = bf.field(n, "sha256") {
                let full = f.as_str().map(|v| if v.contains(':') { v.to_string() } else { format!("sha256:{v}") });
                validate(ctx, &f, full, "sha256");
            }
        }
    }
}

fn validate(ctx: &mut Ctx, f: &Field, full: Option<String>, what: &str) {
    let err = match full {
        Some(s) => match s.parse::<Digest>() {
            Ok(_) => return,
            Err(e) => e.to_string(),
        },
        None => "it is not a string".to_string(),
    };
    ctx.report(&RULE, f.span.clone(), format!("this {what} is not a valid sha256: {err}"))
        .label("invalid digest")
        .help("a digest is `sha256:` and 64 lowercase hex digits");
}
