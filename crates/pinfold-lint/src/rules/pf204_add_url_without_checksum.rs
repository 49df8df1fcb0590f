//! PF204: a Dockerfile `ADD` of a URL without `--checksum`.

use crate::dockerfile::{split_words, Dockerfile, Instruction};
use crate::mapped::MappedText;
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF204",
    name: "add-url-without-checksum",
    severity: Severity::Error,
    summary: "`ADD` of a URL without `--checksum`",
    what: "Finds `ADD` instructions whose source is an `http(s)://` URL and that have no \
`--checksum=sha256:…`, and `ADD`s of a git repository whose ref is not a full commit hash.",
    why: "`ADD URL` fetches whatever the server returns at build time, unchecked. BuildKit \
verifies the content when `--checksum` is given (Dockerfile syntax 1.6 and later); without \
it the image silently changes when the file does, and a compromised server goes unnoticed.",
    example: example!("PF204", "Dockerfile", "dockerfile"),
    fix: "Add `--checksum=sha256:…` with the checksum of the file (`sha256sum FILE`); for a \
git source, name a commit: `ADD https://github.com/org/repo.git#<40-hex commit> /src`.",
    fixable: false,
    hadolint: &[],
};

/// The sources of an `ADD`/`COPY` (every argument but the last), mapped to the file.
pub fn sources(ins: &Instruction) -> Vec<(String, MappedText)> {
    if let Some(mut argv) = ins.exec_form() {
        argv.pop();
        return argv;
    }
    let rest = ins.rest();
    let mut words: Vec<(String, MappedText)> =
        split_words(&rest.text).into_iter().map(|(w, r)| (w.to_string(), rest.sub(r))).collect();
    words.pop();
    words
}

pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || is_git(s)
}

fn is_git(s: &str) -> bool {
    s.starts_with("git@")
        || s.starts_with("git://")
        || s.starts_with("ssh://")
        || ((s.starts_with("https://") || s.starts_with("http://"))
            && s.split('#').next().is_some_and(|u| u.ends_with(".git")))
}

pub fn check(ctx: &mut Ctx, df: &Dockerfile) {
    for ins in df.instructions.iter().filter(|i| i.keyword == "ADD") {
        let (flags, _) = ins.flags();
        let checksum = flags.iter().any(|f| f.name == "checksum" && f.value.as_deref().is_some_and(|v| !v.is_empty()));
        for (src, mapped) in sources(ins) {
            if !is_url(&src) || src.starts_with("<<") {
                continue;
            }
            let span = mapped.map_range(0..mapped.text.len());
            if is_git(&src) {
                let commit = src.split_once('#').map(|(_, r)| r.split(':').next().unwrap_or(""));
                let pinned = commit.is_some_and(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()));
                if !pinned && !checksum {
                    ctx.report(&RULE, span, format!("ADD of the git repository `{src}` is not pinned to a commit"))
                        .label("branch or tag, not a commit")
                        .help("name a commit: `ADD https://…/repo.git#<40-hex commit> DEST`, or add `--checksum=<commit>`");
                }
            } else if !checksum {
                ctx.report(&RULE, span, format!("ADD of `{src}` is not checked against a checksum"))
                    .label("content not pinned")
                    .help("add `--checksum=sha256:…` (the file's `sha256sum`); BuildKit then verifies it");
            }
        }
    }
}
