//! PF107: a download URL that names something that moves: a branch, `latest`, a
//! nightly or a snapshot.

use crate::buildfile::{children, BuildFile};
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;
use std::ops::Range;

pub const RULE: Rule = Rule {
    id: "PF107",
    name: "moving-target-url",
    severity: Severity::Warning,
    summary: "A download URL that names a moving target",
    what: "Finds `url`s of `download` and `archive` nodes with a path segment that names a \
branch (`master`, `main`, `HEAD`, `trunk`, `develop`) or a word such as `latest`, \
`nightly` or `snapshot`.",
    why: "Such a URL serves new content whenever upstream moves. With a sha256 the build \
then breaks on a checksum mismatch on a day nobody changed anything; without one it \
silently changes.",
    example: example!("PF107", "kdl", "kdl"),
    fix: "Use the URL of a release, a tag or a commit, e.g. \
`…/archive/v1.2.3.tar.gz` or `…/archive/<commit>.tar.gz`.",
    fixable: false,
    hadolint: &[],
};

const BRANCHES: &[&str] = &["master", "main", "head", "trunk", "develop"];
const WORDS: &[&str] = &["latest", "nightly", "snapshot"];

/// The moving word in a URL and its byte range, if any.
pub fn moving_target(url: &str) -> Option<(&str, Range<usize>)> {
    // Only the path and query: a host called `main.example.org` is not a branch.
    let path_start = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[path_start..].find('/').map_or(url.len(), |i| path_start + i);
    let mut offset = path_start;
    for segment in url[path_start..].split(['/', '?', '&', '=', '#']) {
        let seg_start = offset;
        offset += segment.len() + 1;
        // `main.tar.gz`, `HEAD.zip`: the segment's name before any extension.
        let stem = segment.split('.').next().unwrap_or("");
        if BRANCHES.contains(&stem.to_ascii_lowercase().as_str()) {
            return Some((&url[seg_start..seg_start + stem.len()], seg_start..seg_start + stem.len()));
        }
        let mut word_start = seg_start;
        for word in segment.split(['-', '_', '.', '+', '~']) {
            if WORDS.contains(&word.to_ascii_lowercase().as_str()) {
                return Some((&url[word_start..word_start + word.len()], word_start..word_start + word.len()));
            }
            word_start += word.len() + 1;
        }
    }
    None
}

pub fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for node in bf.top("download").chain(bf.top("archive")) {
        for n in std::iter::once(node).chain(children(node).filter(|c| c.name().value() == "platform")) {
            let Some(url) = bf.field(n, "url") else {
                continue;
            };
            let (Some(text), Some(mapped)) = (url.as_str(), bf.mapped(url.entry)) else {
                continue;
            };
            if let Some((word, range)) = moving_target(text) {
                ctx.report(&RULE, mapped.map_range(range), format!("this URL names `{word}`, which moves"))
                    .label("moving target")
                    .help("use the URL of a release, a tag or a commit");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::moving_target;

    #[test]
    fn finds_branches_and_words_in_the_path_only() {
        let hit = |u: &str| moving_target(u).map(|(w, _)| w.to_string());
        assert_eq!(hit("https://github.com/a/b/archive/refs/heads/main.tar.gz").as_deref(), Some("main"));
        assert_eq!(hit("https://github.com/a/b/releases/latest/download/x").as_deref(), Some("latest"));
        assert_eq!(hit("https://x.org/foo-1.0-SNAPSHOT.jar").as_deref(), Some("SNAPSHOT"));
        assert_eq!(hit("https://main.example.org/v1.2/x.tar.gz"), None);
        assert_eq!(hit("https://x.org/domain/x.tar.gz"), None);
    }
}
