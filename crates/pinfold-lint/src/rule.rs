//! What a lint rule is: a stable id, a kebab-case name, a default severity and its
//! documentation, all in one `const` next to the check itself, so that the book page,
//! the SARIF rule table and the behaviour come from one place and cannot drift apart
//! (the book page is generated from these and a test compares it).
//!
//! [`Ctx`] is what a check writes its findings into while it walks a file.

use pinfold_lang::diag::Severity;
use std::ops::Range;

/// A lint rule and its documentation.
#[derive(Debug)]
pub struct Rule {
    /// `PF` and three digits; never reused, never renumbered. `PF0xx`: suppressions,
    /// `PF1xx`: build file, `PF2xx`: Dockerfile, `PF3xx`: commands run in a build
    /// (Dockerfile `RUN` and build-file `step { run … }`), `PF4xx`: dependency files.
    pub id: &'static str,
    /// kebab-case; accepted wherever an id is (`allow "base-without-digest"`).
    pub name: &'static str,
    pub severity: Severity,
    /// One line, shown in SARIF `shortDescription` and in the rule index.
    pub summary: &'static str,
    /// "What it does", Markdown.
    pub what: &'static str,
    /// "Why it matters", Markdown.
    pub why: &'static str,
    pub example: Example,
    /// "Fix", Markdown.
    pub fix: &'static str,
    /// `pinfold lint --fix` can fix some findings of this rule without the network.
    pub fixable: bool,
    /// The hadolint rules that report the same thing, if any.
    pub hadolint: &'static [&'static str],
}

/// A failing and a passing example. They are the rule's fixtures
/// (`fixtures/lint/rules/<ID>/bad.<ext>` and `good.<ext>`), included at compile time,
/// so the documented example is the one the tests lint.
#[derive(Debug)]
pub struct Example {
    /// The fixture's file name after `bad.`/`good.`: `kdl`, `Dockerfile`,
    /// `requirements.txt` or `environment.yml`. It decides how the example is linted.
    pub ext: &'static str,
    /// The Markdown code-block language.
    pub lang: &'static str,
    pub bad: &'static str,
    pub good: &'static str,
}

impl Rule {
    /// The SARIF level of the rule's severity.
    pub fn sarif_level(&self) -> &'static str {
        sarif_level(self.severity)
    }
}

pub fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// An insertion into the file that fixes a finding (`--fix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub offset: usize,
    pub insert: String,
}

/// One package that an installer command (or a dependency file) does not pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The package's name, e.g. `numpy`.
    pub name: String,
    /// As written, e.g. `numpy>=1.20`.
    pub spec: String,
    /// What is wrong with it, as a short phrase: `no version`, `a range, not a pin`, …
    pub problem: String,
}

/// The installer a package finding belongs to. Findings of one rule, one unit (a
/// `RUN`, a build-file `run`, a dependency file) and one installer are shown as one
/// finding listing the packages: a `RUN apt-get install` of 35 packages is one finding
/// with 35 names, not 35 findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installer {
    /// How the message names it, e.g. "`apt-get install`".
    pub label: String,
    /// The help of the grouped finding, for any number of packages.
    pub help: String,
}

/// A finding before suppressions are applied and before it becomes a
/// [`pinfold_lang::diag::Diagnostic`].
#[derive(Debug, Clone)]
pub struct RawFinding {
    pub rule: &'static Rule,
    /// Byte range in the file.
    pub span: Range<usize>,
    pub message: String,
    pub label: Option<String>,
    pub help: Option<String>,
    pub fix: Option<Edit>,
    /// The package this finding is about, when it is about one.
    pub package: Option<Package>,
    /// The installer and unit the package belongs to (see [`Installer`]).
    pub installer: Option<(usize, Installer)>,
    /// After grouping: every package of the finding, each at its own span.
    pub packages: Vec<(Range<usize>, Package)>,
}

impl RawFinding {
    pub fn label(&mut self, label: impl Into<String>) -> &mut Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }

    pub fn fix(&mut self, edit: Edit) -> &mut Self {
        self.fix = Some(edit);
        self
    }
}

/// Collects the findings of the checks run over one file.
#[derive(Debug, Default)]
pub struct Ctx {
    pub findings: Vec<RawFinding>,
    /// The unit being checked (the file offset of a `RUN` or a build-file `run`):
    /// package findings of one unit and installer are grouped.
    pub unit: usize,
    /// Files that the checked file installs from (`pip install -r FILE` in a `RUN`,
    /// found in the build context): lint reads them too, as the kind given.
    pub references: Vec<(std::path::PathBuf, super::FileKind)>,
    /// The base image of the current Dockerfile stage, as resolved (`None` outside
    /// Dockerfiles or when unknown): some installers read their defaults from it.
    pub stage_base: Option<String>,
    /// The directory of the file being linted, when it is on disk: relative paths in
    /// it (a base's `layout`) are read from there to offer fixes.
    pub base_dir: Option<std::path::PathBuf>,
    /// The build file's `pinfold.lock`, when there is one: its pins are offered as fixes.
    pub lock: Option<pinfold_lang::lock::Lock>,
}

impl Ctx {
    pub fn report(&mut self, rule: &'static Rule, span: Range<usize>, message: impl Into<String>) -> &mut RawFinding {
        self.findings.push(RawFinding {
            rule,
            span,
            message: message.into(),
            label: None,
            help: None,
            fix: None,
            package: None,
            installer: None,
            packages: Vec::new(),
        });
        let last = self.findings.len() - 1;
        &mut self.findings[last]
    }

    /// Reports one package that `installer` does not pin. The message and help are
    /// the ones shown when it is the only package of its installer in the unit; with
    /// more, they are grouped into one finding (see [`Installer`]).
    pub fn report_package(
        &mut self,
        rule: &'static Rule,
        span: Range<usize>,
        installer: Installer,
        package: Package,
        help: impl Into<String>,
    ) -> &mut RawFinding {
        let message = format!("{} does not pin `{}`: {}", installer.label, package.spec, package.problem);
        let label = package.problem.clone();
        let unit = self.unit;
        let f = self.report(rule, span, message);
        f.label = Some(label);
        f.help = Some(help.into());
        f.package = Some(package);
        f.installer = Some((unit, installer));
        f
    }
}
