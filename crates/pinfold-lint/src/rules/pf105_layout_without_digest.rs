//! PF105: a build-file `base` read from a local OCI layout without a `digest`. The
//! digest is in the layout's `index.json`, so `--fix` can write it in.

use crate::buildfile::{head_span, BuildFile};
use crate::fix;
use crate::rule::{Ctx, Rule};
use pinfold_image::digest::Digest;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF105",
    name: "layout-without-digest",
    severity: Severity::Error,
    summary: "A base from a local layout without a digest",
    what: "Finds `base` nodes read from a local source (`layout`, `oci-archive` or \
`docker-archive`) that have no `digest`.",
    why: "A layout directory is just files: anyone can replace its contents, and a `ref` \
name inside it is a tag like any other. The digest is what says which image the build was \
made from, and what pinfold checks the layout against.",
    example: example!("PF105", "kdl", "kdl"),
    fix: "Add `digest \"sha256:…\"`: the digest of the manifest (or index) that the layout's \
`index.json` lists under the `org.opencontainers.image.ref.name` annotation equal to `ref` \
(for a docker-archive, the digest of the image config). `pinfold lint --fix` writes it in, \
from `pinfold.lock` when the lock pins the base, else from the layout when it is there.",
    fixable: true,
    hadolint: &[],
};

pub fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for base in bf.top("base") {
        let Some((kind, source)) = fix::LOCAL_SOURCES.iter().find_map(|k| bf.field(base, k).map(|f| (*k, f))) else {
            continue;
        };
        if bf.has(base, "digest") || bf.has(base, "image") {
            continue;
        }
        let name =
            base.entries().iter().find(|e| e.name().is_none()).and_then(|e| e.value().as_string()).unwrap_or("?");
        let reference = bf.field(base, "ref");
        // The lock's pin first: it is what `pinfold build` would use.
        let locked = ctx.lock.as_ref().and_then(|l| l.bases.get(name)).and_then(|d| d.parse::<Digest>().ok());
        let resolved = match (locked, &ctx.base_dir, source.as_str()) {
            (Some(d), _, _) => Some(Ok((d, "pinfold.lock".to_string()))),
            (None, Some(dir), Some(p)) => Some(
                fix::local_base_digest(kind, &dir.join(p), reference.as_ref().and_then(|r| r.as_str()))
                    .map(|d| (d, format!("the {kind}"))),
            ),
            _ => None,
        };
        let f = ctx.report(&RULE, head_span(bf.text, base), format!("base `{name}` from a local {kind} has no digest"));
        f.label("no digest");
        match resolved {
            Some(Ok((digest, from))) => {
                let anchor = reference.as_ref().unwrap_or(&source);
                f.help(format!("add `digest \"{digest}\"` (from {from}); `pinfold lint --fix` writes it in"));
                f.fix(fix::insert_digest(bf.text, anchor, &digest));
            }
            Some(Err(why)) => {
                f.help(format!("add `digest \"sha256:…\"`; `pinfold inspect` prints it ({why})"));
            }
            None => {
                f.help("add `digest \"sha256:…\"`; `pinfold inspect` prints it");
            }
        }
    }
}
