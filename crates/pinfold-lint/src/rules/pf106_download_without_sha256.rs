//! PF106: a build-file `download` or `archive` without the sha256 of its content.

use crate::buildfile::{children, head_span, BuildFile, Field};
use crate::fix;
use crate::rule::{Ctx, RawFinding, Rule};
use pinfold_lang::diag::Severity;

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
(`sha256sum FILE`, or the checksum the project publishes). When `pinfold.lock` holds the \
sha256 for the same URL or path, `pinfold lint --fix` writes it in.",
    fixable: true,
    hadolint: &[],
};

/// The lock's sha256 for a file, when the lock has one for the same source.
fn locked(ctx: &Ctx, kind: &str, name: &str, platform: &str, source: Option<&str>) -> Option<String> {
    let lock = ctx.lock.as_ref()?;
    let entry = match kind {
        "download" => lock.downloads.get(name)?.get(platform)?,
        _ => lock.archives.get(name)?,
    };
    (Some(entry.source.as_str()) == source).then(|| fix::bare_sha256(&entry.sha256).map(str::to_string)).flatten()
}

pub fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for node in bf.top("download").chain(bf.top("archive")) {
        let kind = node.name().value();
        let name =
            node.entries().iter().find(|e| e.name().is_none()).and_then(|e| e.value().as_string()).unwrap_or("?");
        let platforms: Vec<_> = children(node).filter(|c| c.name().value() == "platform").collect();
        let whole = platforms.is_empty() || bf.has(node, "url") || bf.has(node, "path");
        if whole && !bf.has(node, "sha256") {
            let source = bf.field(node, "url").or_else(|| bf.field(node, "path"));
            let pin = locked(ctx, kind, name, "*", source.as_ref().and_then(|s| s.as_str()));
            let f = ctx.report(&RULE, head_span(bf.text, node), format!("{kind} `{name}` has no sha256"));
            f.label("content not pinned");
            offer(f, bf, source.as_ref(), pin, "add `sha256=\"…\"` with the checksum of the file you tested with");
        }
        for p in platforms {
            if !bf.has(p, "sha256") && !bf.has(node, "sha256") {
                let platform =
                    p.entries().iter().find(|e| e.name().is_none()).and_then(|e| e.value().as_string()).unwrap_or("?");
                let source = bf.field(p, "url");
                let pin = locked(ctx, kind, name, platform, source.as_ref().and_then(|s| s.as_str()));
                let f =
                    ctx.report(&RULE, head_span(bf.text, p), format!("{kind} `{name}` for {platform} has no sha256"));
                f.label("content not pinned");
                offer(
                    f,
                    bf,
                    source.as_ref(),
                    pin,
                    "add `sha256=\"…\"` with the checksum of the file for this platform",
                );
            }
        }
    }
}

fn offer(f: &mut RawFinding, bf: &BuildFile, source: Option<&Field>, pin: Option<String>, otherwise: &str) {
    match (source, pin) {
        (Some(source), Some(sha)) => {
            f.help(format!("pinfold.lock pins it: add `sha256=\"{sha}\"`; `pinfold lint --fix` writes it in"));
            f.fix(fix::insert_field(bf.text, source, "sha256", &sha));
        }
        _ => {
            f.help(otherwise);
        }
    }
}
