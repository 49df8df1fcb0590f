//! PF102: a build-file `base` image with the `latest` tag.

use crate::buildfile::BuildFile;
use crate::imageref::ImageRef;
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF102",
    name: "base-latest-tag",
    severity: Severity::Warning,
    summary: "A base image with the `latest` tag",
    what: "Finds `base` nodes whose `image` reference uses the `latest` tag, with or without \
a digest.",
    why: "`latest` says nothing about the version. Without a digest it moves with every \
release; with a digest it is pinned, but the next person who updates the digest gets \
whatever `latest` is that day, possibly a new major version.",
    example: example!("PF102", "kdl", "kdl"),
    fix: "Name the version: `image \"alpine:3.20@sha256:…\"`.",
    fixable: false,
    hadolint: &["DL3007"],
};

pub fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for base in bf.top("base") {
        let Some(image) = bf.field(base, "image") else {
            continue;
        };
        let (Some(text), Some(mapped)) = (image.as_str(), bf.mapped(image.entry)) else {
            continue;
        };
        if let Some((tag, range)) = ImageRef::split(text).tag {
            if tag == "latest" {
                ctx.report(&RULE, mapped.map_range(range), format!("base image `{text}` uses the `latest` tag"))
                    .label("names no version")
                    .help("name the version you build with, e.g. `alpine:3.20@sha256:…`");
            }
        }
    }
}
