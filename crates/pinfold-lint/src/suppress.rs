//! Switching rules off, always with a reason. Two forms:
//!
//! - in the build file, a top-level `lint { allow "PF109" reason="…" }`, which applies
//!   to every file linted from that build file's directory;
//! - per line, a comment `// pinfold-lint: allow PF101 reason="…"` (KDL) or
//!   `# pinfold-lint: allow PF201 reason="…"` (Dockerfile, requirements, YAML), at the
//!   end of the line it applies to or alone on the line before (for a Dockerfile
//!   instruction that spans lines: before its first line).
//!
//! A suppression without a reason is refused and reported (PF001), one naming no
//! known rule is reported (PF002), and a comment that suppressed nothing is reported
//! (PF003), so suppressions cannot quietly outlive what they were for.

use super::buildfile::{children, value_span, BuildFile};
use super::rule::{Ctx, RawFinding, Rule};
use super::rules::{
    self, pf001_allow_without_reason as pf001, pf002_unknown_rule as pf002, pf003_unused_suppression as pf003,
};
use std::ops::Range;

const MARKER: &str = "pinfold-lint:";

/// A `pinfold-lint: allow` comment.
#[derive(Debug, Clone)]
pub struct LineAllow {
    pub rules: Vec<&'static Rule>,
    /// The first line (0-based) the comment covers, and the last.
    pub lines: Range<usize>,
    pub span: Range<usize>,
}

/// A build file's `lint { allow … }`.
#[derive(Debug, Clone)]
pub struct FileAllow {
    pub rule: &'static Rule,
}

/// Line starts, for turning offsets into 0-based line numbers.
pub struct Lines(Vec<usize>);

impl Lines {
    pub fn new(text: &str) -> Lines {
        Lines(std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }

    pub fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&s| s <= offset).saturating_sub(1)
    }
}

/// Reads the `pinfold-lint:` comments of a file. `comment` is the comment marker
/// (`//` or `#`); `in_code(offset)` tells whether a position is inside a string or
/// other code, where a marker is text, not a comment. `extent(line)` gives the last
/// line of the statement that starts on `line`. Malformed comments are reported to
/// `ctx`.
pub fn line_allows(
    ctx: &mut Ctx,
    text: &str,
    comment: &str,
    in_code: &dyn Fn(usize) -> bool,
    extent: &dyn Fn(usize) -> usize,
) -> Vec<LineAllow> {
    let lines = Lines::new(text);
    let mut out = Vec::new();
    for (at, _) in text.match_indices(MARKER) {
        let line_no = lines.of(at);
        let line_start = lines.0[line_no];
        let before = &text[line_start..at];
        let Some(c) = before.rfind(comment) else {
            continue;
        };
        if !before[c + comment.len()..].trim().is_empty() || in_code(line_start + c) {
            continue;
        }
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        let span = line_start + c..line_end;
        let body = text[at + MARKER.len()..line_end].trim_end_matches("*/").trim();
        let standalone = before[..c].trim().is_empty();
        let covered = if standalone {
            // The next line that is not itself a comment, and the rest of its statement.
            let mut next = line_no + 1;
            while let Some(&s) = lines.0.get(next) {
                let e = lines.0.get(next + 1).map_or(text.len(), |&e| e);
                if !text[s..e].trim_start().starts_with(comment) {
                    break;
                }
                next += 1;
            }
            next..extent(next).max(next) + 1
        } else {
            line_no..line_no + 1
        };
        let Some(rest) = body.strip_prefix("allow") else {
            let word = body.split_whitespace().next().unwrap_or("");
            ctx.report(&pf002::RULE, span, format!("unknown pinfold-lint directive `{word}`"))
                .label("not `allow`")
                .help("write `pinfold-lint: allow RULE reason=\"…\"`");
            continue;
        };
        let (ids, reason) = match rest.find("reason") {
            Some(r) => (&rest[..r], Some(parse_reason(&rest[r + "reason".len()..]))),
            None => (rest, None),
        };
        let mut found = Vec::new();
        for id in ids.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
            match rules::find(id) {
                Some(rule) => found.push(rule),
                None => {
                    ctx.report(&pf002::RULE, span.clone(), format!("`{id}` is not a pinfold lint rule"))
                        .label("unknown rule")
                        .help("use a rule id (`PF101`) or name (`base-without-digest`) from `book/src/lint/rules.md`");
                }
            }
        }
        if reason.as_ref().is_none_or(|r| r.trim().is_empty()) {
            ctx.report(&pf001::RULE, span, "this suppression gives no reason, so it is not applied")
                .label("no reason=\"…\"")
                .help("say why the input cannot be pinned: `pinfold-lint: allow RULE reason=\"…\"`");
            continue;
        }
        if !found.is_empty() {
            out.push(LineAllow { rules: found, lines: covered, span });
        }
    }
    out
}

/// The ids of an `allow` node as written, for a help text.
fn ids_text(bf: &BuildFile, ids: &[&kdl::KdlEntry]) -> String {
    let written: Vec<&str> = ids.iter().filter_map(|e| bf.text.get(value_span(bf.text, e))).collect();
    if written.is_empty() {
        "\"PF…\"".to_string()
    } else {
        written.join(" ")
    }
}

fn parse_reason(s: &str) -> String {
    let s = s.trim_start().strip_prefix('=').unwrap_or(s).trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q) {
            return inner.split(q).next().unwrap_or("").to_string();
        }
    }
    s.to_string()
}

/// The `allow` entries of the build file's top-level `lint` blocks.
pub fn file_allows(ctx: &mut Ctx, bf: &BuildFile) -> Vec<FileAllow> {
    let mut out = Vec::new();
    for lint in bf.top("lint") {
        for allow in children(lint).filter(|c| c.name().value() == "allow") {
            let reason = bf.field(allow, "reason").and_then(|r| r.as_str().map(str::to_string));
            let ids: Vec<_> = allow.entries().iter().filter(|e| e.name().is_none()).collect();
            let node_span = super::buildfile::head_span(bf.text, allow);
            if reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                ctx.report(&pf001::RULE, node_span.clone(), "this `allow` gives no reason, so it is not applied")
                    .label("no reason=\"…\"")
                    .help(format!("say why the rule does not apply here: `allow {} reason=\"…\"`", ids_text(bf, &ids)));
                continue;
            }
            for e in ids {
                let id = e.value().as_string().map(str::to_string).unwrap_or_else(|| e.value().to_string());
                match rules::find(&id) {
                    Some(rule) => out.push(FileAllow { rule }),
                    None => {
                        ctx.report(&pf002::RULE, value_span(bf.text, e), format!("`{id}` is not a pinfold lint rule"))
                            .label("unknown rule")
                            .help(
                                "use a rule id (`PF101`) or name (`base-without-digest`) from `book/src/lint/rules.md`",
                            );
                    }
                }
            }
        }
    }
    out
}

/// Drops the findings that a suppression covers and reports the comments that
/// covered none. Findings about suppressions themselves are never suppressed.
pub fn apply(text: &str, findings: Vec<RawFinding>, line: &[LineAllow], file: &[FileAllow]) -> Vec<RawFinding> {
    let lines = Lines::new(text);
    let mut used = vec![false; line.len()];
    let mut kept = Vec::new();
    for f in findings {
        let meta = f.rule.id.starts_with("PF0");
        if !meta && file.iter().any(|a| a.rule.id == f.rule.id) {
            continue;
        }
        let l = lines.of(f.span.start);
        let hit = line.iter().position(|a| !meta && a.lines.contains(&l) && a.rules.iter().any(|r| r.id == f.rule.id));
        match hit {
            Some(i) => used[i] = true,
            None => kept.push(f),
        }
    }
    let mut ctx = Ctx::default();
    for (a, used) in line.iter().zip(used) {
        if !used {
            let ids: Vec<_> = a.rules.iter().map(|r| r.id).collect();
            ctx.report(
                &pf003::RULE,
                a.span.clone(),
                format!("this suppression of {} matches no finding", ids.join(", ")),
            )
            .label("suppresses nothing")
            .help("remove the comment");
        }
    }
    kept.extend(ctx.findings);
    kept
}
