//! The three output formats of `pinfold lint`: `human` (miette, each finding drawn at
//! its span), `json` (a flat, stable array for scripts) and `sarif` (SARIF 2.1.0 for
//! GitHub code scanning and other viewers). All three list findings in the report's
//! order: by path, then position, then rule id.

use super::rule::sarif_level;
use super::rules;
use super::LintReport;
use pinfold_lang::diag::Severity;
use serde::Serialize;
use serde_json::json;

/// Every finding drawn at its span, then one summary line.
pub fn human(report: &LintReport) -> String {
    // One finding at a time, with a blank line between them, so findings do not run
    // into each other in a long report.
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&pinfold_lang::diag::Diagnostics(vec![f.diagnostic.clone()]).render_plain());
        out.push('\n');
    }
    let files = report.files.len();
    let files = format!("{files} file{}", if files == 1 { "" } else { "s" });
    if report.findings.is_empty() {
        out.push_str(&format!("No findings in {files}.\n"));
    } else {
        let parts: Vec<String> = [(Severity::Error, "error"), (Severity::Warning, "warning"), (Severity::Info, "info")]
            .iter()
            .filter_map(|&(s, name)| {
                let n = report.count(s);
                (n > 0).then(|| format!("{n} {name}{}", if n == 1 || name == "info" { "" } else { "s" }))
            })
            .collect();
        out.push_str(&format!("Found {} in {files}.\n", parts.join(", ")));
    }
    out
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    rule: &'a str,
    severity: &'a str,
    path: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    message: &'a str,
    help: Option<&'a str>,
}

/// A JSON array of `{rule, severity, path, line, column, end_line, end_column,
/// message, help}`; lines and columns are 1-based, columns count characters and
/// `end_column` is exclusive.
pub fn json(report: &LintReport) -> String {
    let items: Vec<JsonFinding> = report
        .findings
        .iter()
        .map(|f| JsonFinding {
            rule: f.rule.id,
            severity: f.severity().as_str(),
            path: path_string(&f.path),
            line: f.line,
            column: f.column,
            end_line: f.end_line,
            end_column: f.end_column,
            message: &f.diagnostic.message,
            help: f.diagnostic.help.as_deref(),
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string());
    s.push('\n');
    s
}

pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// A SARIF 2.1.0 log with one run. Every rule is listed in `tool.driver.rules` (so
/// `ruleIndex` is stable across runs), with its documentation as help text.
pub fn sarif(report: &LintReport) -> String {
    let rule_table: Vec<serde_json::Value> = rules::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": plain(r.what) },
                "help": {
                    "text": format!("{}\n\nFix: {}", plain(r.why), plain(r.fix)),
                    "markdown": format!("{}\n\n**Fix:** {}", r.why, r.fix),
                },
                "defaultConfiguration": { "level": r.sarif_level() },
                "properties": { "tags": ["reproducibility", "supply-chain"] },
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| {
            let index = rules::ALL.iter().position(|r| r.id == f.rule.id).unwrap_or(0);
            json!({
                "ruleId": f.rule.id,
                "ruleIndex": index,
                "level": sarif_level(f.severity()),
                "message": { "text": match &f.diagnostic.help {
                    Some(h) => format!("{} ({h})", f.diagnostic.message),
                    None => f.diagnostic.message.clone(),
                } },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&f.path) },
                        "region": {
                            "startLine": f.line,
                            "startColumn": f.column,
                            "endLine": f.end_line,
                            "endColumn": f.end_column,
                        }
                    }
                }],
            })
        })
        .collect();
    let log = json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "pinfold",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rule_table,
            } },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&log).unwrap_or_else(|_| "{}".to_string());
    s.push('\n');
    s
}

fn path_string(p: &std::path::Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

/// A relative path as a URI reference (GitHub resolves it against the repository
/// root); an absolute one as a `file://` URI. Characters outside the unreserved set
/// and `/` are percent-encoded.
fn uri(p: &std::path::Path) -> String {
    let s = path_string(p);
    let mut out = String::new();
    if s.starts_with('/') {
        out.push_str("file://");
    }
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Markdown to plain text, for the SARIF `text` fields: drops backticks and emphasis.
fn plain(md: &str) -> String {
    md.replace('`', "").replace("**", "")
}

#[cfg(test)]
mod tests {
    use super::uri;

    #[test]
    fn uris_are_percent_encoded() {
        assert_eq!(uri(std::path::Path::new("./a b/Dockerfile")), "a%20b/Dockerfile");
        assert_eq!(uri(std::path::Path::new("/x/ü")), "file:///x/%C3%BC");
    }
}
