//! PF105: a build-file `base` read from a local OCI layout without a `digest`. The
//! digest is in the layout's `index.json`, so `--fix` can write it in.

use crate::diag::Severity;
use crate::lint::buildfile::{head_span, BuildFile};
use crate::lint::fix;
use crate::lint::rule::{Ctx, Rule};

pub const RULE: Rule = Rule {
    id: "PF105",
    name: "layout-without-digest",
    severity: Severity::Error,
    summary: "A base from a local layout without a digest",
    what: "Finds `base` nodes with a `layout` (an OCI image layout directory or archive) and \
no `digest`.",
    why: "A layout directory is just files: anyone can replace its contents, and a `ref` \
name inside it is a tag like any other. The digest is what says which image the build was \
made from, and what pinfold checks the layout against.",
    example: example!("PF105", "kdl", "kdl"),
    fix: "Add `digest \"sha256:…\"`: the digest of the manifest (or index) that the layout's \
`index.json` lists under the `org.opencontainers.image.ref.name` annotation equal to `ref`. \
`pinfold lint --fix` writes it in when the layout directory is there.",
    fixable: true,
    hadolint: &[],
};

pub(crate) fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for base in bf.top("base") {
        let Some(layout) = bf.field(base, "layout") else {
            continue;
        };
        if bf.has(base, "digest") || bf.has(base, "image") {
            continue;
        }
        let name = base.entries().iter().find(|e| e.name().is_none()).and_then(|e| e.value().as_string());
        let reference = bf.field(base, "ref");
        let resolved = match (&ctx.base_dir, layout.as_str()) {
            (Some(dir), Some(l)) => Some(fix::layout_digest(&dir.join(l), reference.as_ref().and_then(|r| r.as_str()))),
            _ => None,
        };
        let span = head_span(bf.text, base);
        let f = ctx.report(&RULE, span, format!("base `{}` from a local layout has no digest", name.unwrap_or("?")));
        f.label("no digest");
        match resolved {
            Some(Ok(digest)) => {
                let anchor = reference.as_ref().unwrap_or(&layout);
                f.help(format!(
                    "add `digest \"{digest}\"` (the layout's digest for this ref); `pinfold lint --fix` writes it in"
                ));
                f.fix(fix::insert_digest(bf.text, anchor, &digest));
            }
            Some(Err(why)) => {
                f.help(format!("add `digest \"sha256:…\"` from the layout's index.json ({why})"));
            }
            None => {
                f.help("add `digest \"sha256:…\"` from the layout's index.json");
            }
        }
    }
}
