//! PF106: a build-file `download` or `archive` without the sha256 of its content.

use crate::diag::Severity;
use crate::lint::buildfile::{children, head_span, BuildFile};
use crate::lint::rule::{Ctx, Rule};

pub const RULE: Rule = Rule {
    id: "PF106",
    name: "download-without-sha256",
    severity: Severity::Error,
    summary: "A download or archive without a sha256",
    what: "Finds `download` and `archive` nodes, and the `platform` entries inside a \
`download`, that have no `sha256`.",
    why: "A URL names a place, not content: the server can serve different bytes tomorrow, \
or to a different client. Without the sha256 pinfold cannot check what it fetched, and the \
build is neither reproducible nor safe from a tampered mirror.",
    example: example!("PF106", "kdl", "kdl"),
    fix: "Add `sha256=\"…\"` with the checksum of the file you tested with \
(`sha256sum FILE`, or the checksum the project publishes).",
    fixable: false,
    hadolint: &[],
};

pub(crate) fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for node in bf.top("download").chain(bf.top("archive")) {
        let kind = node.name().value();
        let name =
            node.entries().iter().find(|e| e.name().is_none()).and_then(|e| e.value().as_string()).unwrap_or("?");
        let platforms: Vec<_> = children(node).filter(|c| c.name().value() == "platform").collect();
        let whole = platforms.is_empty() || bf.has(node, "url") || bf.has(node, "path");
        if whole && !bf.has(node, "sha256") {
            ctx.report(&RULE, head_span(bf.text, node), format!("{kind} `{name}` has no sha256"))
                .label("content not pinned")
                .help("add `sha256=\"…\"` with the checksum of the file you tested with");
        }
        for p in platforms {
            if !bf.has(p, "sha256") && !bf.has(node, "sha256") {
                let platform =
                    p.entries().iter().find(|e| e.name().is_none()).and_then(|e| e.value().as_string()).unwrap_or("?");
                ctx.report(&RULE, head_span(bf.text, p), format!("{kind} `{name}` for {platform} has no sha256"))
                    .label("content not pinned")
                    .help("add `sha256=\"…\"` with the checksum of the file for this platform");
            }
        }
    }
}
