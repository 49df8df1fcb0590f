//! Results of `pinfold test`, per image and platform, in the three forms of the
//! contract: `human` (what failed, with the expected and the actual value), `json`
//! (one document for scripts) and `junit` (the XML that CI dashboards read).

use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    /// The test could not be run (no runtime, no emulation, a bad test).
    Error,
}

/// One check that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What was checked, as written (`expect-stdout contains`, `file /bin/sh mode`).
    pub check: String,
    pub expected: String,
    pub actual: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    pub name: String,
    pub status: Status,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The command's output, kept for failed command tests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

impl TestResult {
    pub fn new(name: impl Into<String>) -> Self {
        TestResult {
            name: name.into(),
            status: Status::Passed,
            duration_ms: 0,
            failures: Vec::new(),
            error: None,
            stdout: None,
            stderr: None,
        }
    }

    pub fn fail(&mut self, check: impl Into<String>, expected: impl Into<String>, actual: impl Into<String>) {
        self.failures.push(Failure { check: check.into(), expected: expected.into(), actual: actual.into() });
        if self.status == Status::Passed {
            self.status = Status::Failed;
        }
    }

    pub fn error(&mut self, message: impl Into<String>) {
        self.error = Some(message.into());
        self.status = Status::Error;
    }
}

/// The tests of one image on one platform.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformResults {
    pub image: String,
    pub platform: String,
    pub tests: Vec<TestResult>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub results: Vec<PlatformResults>,
    pub summary: Summary,
}

impl Report {
    pub fn new(results: Vec<PlatformResults>) -> Self {
        let mut summary = Summary::default();
        for t in results.iter().flat_map(|r| &r.tests) {
            match t.status {
                Status::Passed => summary.passed += 1,
                Status::Failed => summary.failed += 1,
                Status::Error => summary.errors += 1,
            }
        }
        Report { results, summary }
    }

    /// 0 when every test passed, 2 when one could not run, else 1.
    pub fn exit_code(&self) -> i32 {
        if self.summary.errors > 0 {
            2
        } else if self.summary.failed > 0 {
            1
        } else {
            0
        }
    }

    pub fn human(&self) -> String {
        let mut out = String::new();
        for r in &self.results {
            let _ = writeln!(out, "{} ({})", r.image, r.platform);
            for t in &r.tests {
                let word = match t.status {
                    Status::Passed => "ok   ",
                    Status::Failed => "FAIL ",
                    Status::Error => "ERROR",
                };
                let _ = writeln!(out, "  {word} {} ({:.2}s)", t.name, t.duration_ms as f64 / 1000.0);
                for f in &t.failures {
                    let _ = writeln!(out, "        {}", f.check);
                    let _ = writeln!(out, "          expected: {}", f.expected);
                    let _ = writeln!(out, "          actual:   {}", f.actual);
                }
                if let Some(e) = &t.error {
                    let _ = writeln!(out, "        {e}");
                }
                if t.status != Status::Passed {
                    for (name, text) in [("stdout", &t.stdout), ("stderr", &t.stderr)] {
                        if let Some(text) = text.as_ref().filter(|t| !t.is_empty()) {
                            let _ = writeln!(out, "        {name}:");
                            for line in text.lines().take(20) {
                                let _ = writeln!(out, "          | {line}");
                            }
                        }
                    }
                }
            }
        }
        let s = &self.summary;
        let platforms = self.results.len();
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} could not run ({} image platform(s))",
            s.passed, s.failed, s.errors, platforms
        );
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// JUnit XML: one `testsuite` per image and platform, one `testcase` per test.
    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let total = self.summary.passed + self.summary.failed + self.summary.errors;
        let _ = writeln!(
            out,
            "<testsuites name=\"pinfold test\" tests=\"{total}\" failures=\"{}\" errors=\"{}\">",
            self.summary.failed, self.summary.errors
        );
        for r in &self.results {
            let failures = r.tests.iter().filter(|t| t.status == Status::Failed).count();
            let errors = r.tests.iter().filter(|t| t.status == Status::Error).count();
            let time: u64 = r.tests.iter().map(|t| t.duration_ms).sum();
            let suite = format!("{} ({})", r.image, r.platform);
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">",
                xml(&suite),
                r.tests.len(),
                time as f64 / 1000.0
            );
            let class = format!("{}.{}", r.image, r.platform.replace('/', "_"));
            for t in &r.tests {
                let _ = write!(
                    out,
                    "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                    xml(&t.name),
                    xml(&class),
                    t.duration_ms as f64 / 1000.0
                );
                match t.status {
                    Status::Passed => out.push_str("/>\n"),
                    Status::Failed => {
                        out.push_str(">\n");
                        let message = t
                            .failures
                            .first()
                            .map(|f| format!("{}: expected {}, got {}", f.check, f.expected, f.actual))
                            .unwrap_or_default();
                        let body: String = t
                            .failures
                            .iter()
                            .map(|f| format!("{}\n  expected: {}\n  actual:   {}\n", f.check, f.expected, f.actual))
                            .collect();
                        let _ = writeln!(
                            out,
                            "      <failure message=\"{}\" type=\"failure\">{}</failure>",
                            xml(&message),
                            xml(&body)
                        );
                        push_output(&mut out, t);
                        out.push_str("    </testcase>\n");
                    }
                    Status::Error => {
                        out.push_str(">\n");
                        let message = t.error.clone().unwrap_or_default();
                        let _ = writeln!(
                            out,
                            "      <error message=\"{}\" type=\"error\">{}</error>",
                            xml(&message),
                            xml(&message)
                        );
                        out.push_str("    </testcase>\n");
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

fn push_output(out: &mut String, t: &TestResult) {
    if let Some(s) = t.stdout.as_ref().filter(|s| !s.is_empty()) {
        let _ = writeln!(out, "      <system-out>{}</system-out>", xml(s));
    }
    if let Some(s) = t.stderr.as_ref().filter(|s| !s.is_empty()) {
        let _ = writeln!(out, "      <system-err>{}</system-err>", xml(s));
    }
}

/// Escapes text for XML attributes and content; characters XML 1.0 cannot hold at
/// all (most control characters) become U+FFFD.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A value as reports show it: strings quoted with escapes, so that a trailing
/// newline or a space is visible.
pub fn shown(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_shows_expected_and_actual_in_every_format() {
        let mut t = TestResult::new("greets");
        t.fail("expect-stdout contains", shown("hello"), shown("bye\n"));
        let report = Report::new(vec![PlatformResults {
            image: "hello".into(),
            platform: "linux/arm64".into(),
            tests: vec![t, TestResult::new("ok")],
        }]);
        assert_eq!(report.exit_code(), 1);
        let human = report.human();
        assert!(
            human.contains("FAIL  greets")
                && human.contains("expected: \"hello\"")
                && human.contains("actual:   \"bye\\n\""),
            "{human}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["results"][0]["tests"][0]["failures"][0]["actual"], "\"bye\\n\"");
        assert_eq!(json["summary"]["failed"], 1);
        let junit = report.junit();
        assert!(junit.contains("<failure message=\"expect-stdout contains: expected &quot;hello&quot;"), "{junit}");
        assert!(junit.contains("tests=\"2\" failures=\"1\""), "{junit}");
    }
}
