//! PF206: a Dockerfile download (`ADD URL`, `curl`/`wget` in a `RUN`) from a URL that
//! names something that moves: a branch, `latest`, a nightly or a snapshot.

use crate::dockerfile::Dockerfile;
use crate::rule::{Ctx, Rule};
use crate::rules::pf107_moving_target_url::moving_target;
use crate::rules::pf204_add_url_without_checksum::sources;
use crate::shell::{Script, Word};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF206",
    name: "moving-download-url",
    severity: Severity::Warning,
    summary: "A Dockerfile download from a URL that names a moving target",
    what: "Finds `ADD` sources and the URLs of `curl`, `wget` and `pip install` in `RUN`s \
whose path names a branch (`/master/`, `/main/`, `HEAD`, `trunk`, `develop`) or a word \
such as `latest`, `nightly` or `snapshot` (`…/releases/latest/download/…`, \
`tool-latest.tar.gz`). PF107 is the same rule for build files.",
    why: "Such a URL serves new content whenever upstream moves. Without a checksum the \
image silently changes; with one (`ADD --checksum`, `sha256sum -c`) the build breaks on a \
checksum mismatch on a day nobody changed anything. A checksum alone does not pin a \
moving URL: the URL has to name the version too.",
    example: example!("PF206", "Dockerfile", "dockerfile"),
    fix: "Use the URL of a release, a tag or a commit (`…/releases/download/v1.2.3/…`, \
`…/archive/<commit>.tar.gz`) together with its checksum. With pinfold, `pinfold import` \
turns it into a `download` node with that URL and its `sha256`.",
    fixable: false,
    hadolint: &[],
};

fn report(ctx: &mut Ctx, word: &str, span: std::ops::Range<usize>) {
    ctx.report(&RULE, span, format!("this URL names `{word}`, which moves; a checksum alone will break when it does"))
        .label("moving target")
        .help(
            "use the URL of a release, a tag or a commit, with its checksum;\n\
             with pinfold: a `download` node with that URL and its sha256 (`pinfold import` writes it)",
        );
}

fn check_word(ctx: &mut Ctx, w: &Word) {
    if !(w.text.starts_with("http://") || w.text.starts_with("https://")) {
        return;
    }
    if let Some((word, range)) = moving_target(&w.text) {
        let span = match &w.inner {
            Some(m) => m.map_range(range),
            None if w.span.len() == w.text.len() => w.span.start + range.start..w.span.start + range.end,
            None => w.span.clone(),
        };
        report(ctx, word, span);
    }
}

pub(crate) fn check_add(ctx: &mut Ctx, df: &Dockerfile) {
    for ins in df.instructions.iter().filter(|i| i.keyword == "ADD") {
        for (src, mapped) in sources(ins) {
            if !(src.starts_with("http://") || src.starts_with("https://")) {
                continue;
            }
            if let Some((word, range)) = moving_target(&src) {
                report(ctx, word, mapped.map_range(range));
            }
        }
    }
}

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let downloads = matches!(cmd.program(), Some("curl" | "wget"))
            || crate::rules::pf301_pip_unpinned::pip_install(cmd).is_some();
        if downloads {
            for w in &cmd.argv()[1..] {
                check_word(ctx, w);
            }
        }
    }
}
