//! PF205: a Dockerfile `ADD` of a local file or directory that `COPY` would do.

use crate::dockerfile::Dockerfile;
use crate::rule::{Ctx, Rule};
use crate::rules::pf204_add_url_without_checksum::{is_url, sources};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF205",
    name: "add-local-file",
    severity: Severity::Info,
    summary: "`ADD` of a local path that `COPY` would do",
    what: "Finds `ADD` instructions whose sources are local files or directories that are \
not archives.",
    why: "`ADD` does more than copy: it fetches URLs and unpacks local archives. What ends \
up in the image then depends on the form of the source (rename `x.txt` to `x.tar` and it is \
unpacked), which makes a build harder to reason about. `COPY` copies exactly what it is \
given.",
    example: example!("PF205", "Dockerfile", "dockerfile"),
    fix: "Use `COPY` for local files and directories; keep `ADD` for archives that are meant \
to be unpacked and for URLs with `--checksum`.",
    fixable: false,
    hadolint: &["DL3020"],
};

const ARCHIVES: &[&str] = &[
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz",
    ".tbz2",
    ".tar.xz",
    ".txz",
    ".tar.zst",
    ".tzst",
    ".tar.lz",
    ".tar.lzma",
    ".tlz",
    ".gz",
    ".bz2",
    ".xz",
    ".zst",
    ".lz",
    ".lzma",
    ".z",
];

pub fn check(ctx: &mut Ctx, df: &Dockerfile) {
    for ins in df.instructions.iter().filter(|i| i.keyword == "ADD") {
        if !ins.heredocs.is_empty() {
            continue;
        }
        for (src, mapped) in sources(ins) {
            let lower = src.to_ascii_lowercase();
            if is_url(&src) || ARCHIVES.iter().any(|a| lower.ends_with(a)) {
                continue;
            }
            ctx.report(
                &RULE,
                mapped.map_range(0..mapped.text.len()),
                format!("ADD of the local path `{src}`: COPY does this without ADD's extra behaviour"),
            )
            .label("local path")
            .help("use `COPY` for local files and directories");
        }
    }
}
