//! The rule reference of the book (`book/src/lint/rules.md`), generated from the rules'
//! own documentation so that it cannot drift from them. A test in `tests/it/lint.rs`
//! fails when the checked-in page differs from [`rules_markdown`]; running it with
//! `PINFOLD_BLESS=1`, the tests' one switch to re-bless expected output, rewrites the
//! page ([`REGENERATE`]).

use super::rules::ALL;
use std::fmt::Write;

/// Where the generated page lives, relative to the workspace root.
pub const RULES_PAGE: &str = "book/src/lint/rules.md";

/// The command that rewrites the page, as the page and the failing test name it.
pub const REGENERATE: &str = "PINFOLD_BLESS=1 cargo test --test it lint::book";

pub fn rules_markdown() -> String {
    let mut s = String::new();
    let _ =
        writeln!(s, "<!-- Generated from crates/pinfold-lint/src/rules/*.rs and fixtures/lint/rules/; do not edit.");
    let _ = writeln!(s, "     Regenerate with: {REGENERATE} -->");
    let _ = writeln!(s);
    let _ = writeln!(s, "# Lint rules");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Ids never change: `PF0xx` suppressions, `PF1xx` build file, `PF2xx` Dockerfile, \
`PF3xx` commands run in a build (Dockerfile `RUN` and build-file `step {{ run … }}`), \
`PF4xx` dependency files. A rule can be named by its id or its name in `allow`."
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "| Rule | Name | Severity | Summary | hadolint |");
    let _ = writeln!(s, "| --- | --- | --- | --- | --- |");
    for r in ALL {
        let _ = writeln!(
            s,
            "| [{}](#{}) | `{}` | {} | {} | {} |",
            r.id,
            anchor(r.id, r.name),
            r.name,
            r.severity.as_str(),
            r.summary,
            r.hadolint.join(", ")
        );
    }
    for r in ALL {
        let _ = writeln!(s);
        let _ = writeln!(s, "## {} {}", r.id, r.name);
        let _ = writeln!(s);
        let fixable = if r.fixable { "yes (`--fix`)" } else { "no" };
        let hadolint = if r.hadolint.is_empty() { "—".to_string() } else { r.hadolint.join(", ") };
        let _ = writeln!(s, "Severity: **{}** · Fixable: {fixable} · hadolint: {hadolint}", r.severity.as_str());
        let _ = writeln!(s);
        let _ = writeln!(s, "### What it does\n\n{}\n", r.what);
        let _ = writeln!(s, "### Why it matters\n\n{}\n", r.why);
        let _ = writeln!(s, "### Example\n");
        let file = match r.example.ext {
            "kdl" => "pinfold.kdl",
            other => other,
        };
        let _ = writeln!(s, "Reported (`{file}`):\n\n```{}\n{}```\n", r.example.lang, r.example.bad);
        let _ = writeln!(s, "Not reported:\n\n```{}\n{}```\n", r.example.lang, r.example.good);
        let _ = writeln!(s, "### Fix\n\n{}", r.fix);
    }
    s
}

/// The heading id mdBook and GitHub give `## PF101 base-without-digest`.
fn anchor(id: &str, name: &str) -> String {
    format!("{}-{}", id.to_ascii_lowercase(), name)
}
