//! The three output formats of `pinfold lint`: `human` (miette, each finding drawn at
//! its span), `json` (a flat, stable array for scripts) and `sarif` (SARIF 2.1.0 for
//! GitHub code scanning and other viewers). All three list findings in the report's
//! order: by path, then position, then rule id.

use super::rule::sarif_level;
use super::rules;
use super::LintReport;
use pinfold_lang::diag::{Diagnostic, Severity};
use serde::Serialize;
use serde_json::json;

/// Every finding drawn at its span, then one summary line.
pub fn human(report: &LintReport) -> String {
    // One finding at a time, with a blank line between them, so findings do not run
    // into each other in a long report.
    // Drawn in parallel (miette's drawing is most of the time of a large run), joined
    // in the report's order.
    use rayon::prelude::*;
    let drawn: Vec<String> = report.findings.par_iter().map(|f| render_plain(&f.diagnostic)).collect();
    let mut out = String::with_capacity(drawn.iter().map(|d| d.len() + 1).sum::<usize>() + 80);
    for d in drawn {
        out.push_str(&d);
        out.push('\n');
    }
    out.push_str(&summary(report));
    out
}

/// The summary line: findings by severity, the packages they list, and how many of
/// the linted files have them.
pub fn summary(report: &LintReport) -> String {
    let linted = report.files.len();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if report.findings.is_empty() {
        return format!("No findings in {}.\n", plural(linted, "file"));
    }
    let parts: Vec<String> = [(Severity::Error, "error"), (Severity::Warning, "warning"), (Severity::Info, "info")]
        .iter()
        .filter_map(|&(s, name)| {
            let n = report.count(s);
            (n > 0).then(|| if name == "info" { format!("{n} info") } else { plural(n, name) })
        })
        .collect();
    let packages: usize = report.findings.iter().map(|f| f.packages.len()).sum();
    let grouped = if packages > 0 { format!(" ({})", plural(packages, "unpinned package")) } else { String::new() };
    let with = report.files_with_findings();
    let files = if with == linted { plural(linted, "file") } else { format!("{with} of {}", plural(linted, "file")) };
    format!("Found {}{grouped} in {files}.\n", parts.join(", "))
}

/// A diagnostic drawn as miette draws it, without colour, at a fixed width, and with
/// no line wrapping: a help text's command must stay on one line to be copied, so the
/// help texts carry their own line breaks instead.
pub fn render_plain(d: &Diagnostic) -> String {
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_wrap_lines(false)
        .with_links(false);
    let mut out = String::new();
    let named;
    let report: &dyn miette::Diagnostic = match &d.source {
        Some(src) => {
            named = Named { inner: d, source: miette::NamedSource::new(&src.name, src.text.clone()) };
            &named
        }
        None => d,
    };
    let _ = handler.render_report(&mut out, report);
    out
}

/// A diagnostic shown with its file name above the snippet.
struct Named<'a> {
    inner: &'a Diagnostic,
    source: miette::NamedSource<std::sync::Arc<str>>,
}

impl std::fmt::Debug for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.inner, f)
    }
}

impl std::fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.inner, f)
    }
}

impl std::error::Error for Named<'_> {}

impl miette::Diagnostic for Named<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        miette::Diagnostic::code(self.inner)
    }
    fn severity(&self) -> Option<miette::Severity> {
        miette::Diagnostic::severity(self.inner)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        miette::Diagnostic::help(self.inner)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        // The packages of a grouped finding after the first are underlined without a
        // label of their own (the first says how many there are).
        let labels = miette::Diagnostic::labels(self.inner)?;
        Some(Box::new(labels.map(|l| match l.label() {
            Some("") => miette::LabeledSpan::new_with_span(None, *l.inner()),
            _ => l,
        })))
    }
}

#[derive(Serialize)]
struct JsonPackage<'a> {
    name: &'a str,
    spec: &'a str,
    problem: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
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
    packages: Vec<JsonPackage<'a>>,
}

/// A JSON array of `{rule, severity, path, line, column, end_line, end_column,
/// message, help, packages}`; lines and columns are 1-based, columns count characters
/// and `end_column` is exclusive. `packages` keeps the per-package detail of a grouped
/// finding: `{name, spec, problem, line, column, end_line, end_column}` for each
/// package (one for a finding about one package, none for the others).
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
            packages: f
                .packages
                .iter()
                .map(|p| JsonPackage {
                    name: &p.name,
                    spec: &p.spec,
                    problem: &p.problem,
                    line: p.line,
                    column: p.column,
                    end_line: p.end_line,
                    end_column: p.end_column,
                })
                .collect(),
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string());
    s.push('\n');
    s
}

#[derive(Serialize)]
struct SarifLog {
    #[serde(rename = "$schema")]
    schema: &'static str,
    runs: Vec<SarifRun>,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRun {
    column_kind: &'static str,
    results: Vec<SarifResult>,
    tool: serde_json::Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    level: &'static str,
    locations: Vec<SarifLocation>,
    message: SarifMessage,
    related_locations: Vec<SarifRelated>,
    rule_id: &'static str,
    rule_index: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation {
    physical_location: SarifPhysical,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRelated {
    id: usize,
    message: SarifMessage,
    physical_location: SarifPhysical,
}

#[derive(Serialize)]
struct SarifMessage {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifPhysical {
    artifact_location: SarifArtifact,
    region: SarifRegion,
}

#[derive(Serialize)]
struct SarifArtifact {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    end_column: usize,
    end_line: usize,
    start_column: usize,
    start_line: usize,
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
    // Typed rather than `json!` values: a run over a thousand Dockerfiles has tens of
    // thousands of locations. Fields in alphabetical order, as serde_json writes the
    // objects built with `json!` (the rule table and the log), so the whole log reads
    // the same way.
    let results: Vec<SarifResult> = report
        .findings
        .iter()
        .map(|f| {
            let index = rules::ALL.iter().position(|r| r.id == f.rule.id).unwrap_or(0);
            let uri = uri(&f.path);
            let location = |line, column, end_line, end_column| SarifPhysical {
                artifact_location: SarifArtifact { uri: uri.clone() },
                region: SarifRegion { end_column, end_line, start_column: column, start_line: line },
            };
            SarifResult {
                level: sarif_level(f.severity()),
                locations: vec![SarifLocation {
                    physical_location: location(f.line, f.column, f.end_line, f.end_column),
                }],
                message: SarifMessage {
                    text: match &f.diagnostic.help {
                        Some(h) => format!("{} ({h})", f.diagnostic.message),
                        None => f.diagnostic.message.clone(),
                    },
                },
                related_locations: f
                    .packages
                    .iter()
                    .enumerate()
                    .map(|(i, p)| SarifRelated {
                        id: i,
                        message: SarifMessage { text: format!("{}: {}", p.spec, p.problem) },
                        physical_location: location(p.line, p.column, p.end_line, p.end_column),
                    })
                    .collect(),
                rule_id: f.rule.id,
                rule_index: index,
            }
        })
        .collect();
    let log = SarifLog {
        schema: SARIF_SCHEMA,
        runs: vec![SarifRun {
            column_kind: "unicodeCodePoints",
            results,
            tool: json!({ "driver": {
                "name": "pinfold",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rule_table,
            } }),
        }],
        version: "2.1.0",
    };
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
