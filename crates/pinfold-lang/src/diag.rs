//! The one diagnostic model of pinfold: build-file errors and lint findings are both
//! [`Diagnostic`]s with a stable code, a severity, a primary span with its label, and a
//! help line saying how to fix it. Validation collects them all ([`Diagnostics`]) instead
//! of stopping at the first, and miette renders them at their spans.

use miette::{LabeledSpan, NamedSource, SourceSpan};
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            other => Err(format!("unknown severity `{other}` (info, warning, error)")),
        }
    }
}

/// Every code pinfold itself emits (lint rules have their own ids, [`Code::Rule`]).
/// Scripts match on the text of a code, so a variant's text never changes; the table
/// in `spec/language.md` is checked against [`Code::ALL`] by a test, so the spec lists
/// exactly the codes that exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// `pinfold::archive`
    Archive,
    /// `pinfold::bad-compression`
    BadCompression,
    /// `pinfold::bad-digest`
    BadDigest,
    /// `pinfold::bad-name`
    BadName,
    /// `pinfold::bad-path`
    BadPath,
    /// `pinfold::bad-platform`
    BadPlatform,
    /// `pinfold::bad-regex`
    BadRegex,
    /// `pinfold::bad-type`
    BadType,
    /// `pinfold::bad-value`
    BadValue,
    /// `pinfold::base-platform`
    BasePlatform,
    /// `pinfold::base-unreadable`
    BaseUnreadable,
    /// `pinfold::build`
    Build,
    /// `pinfold::cache`
    Cache,
    /// `pinfold::conflicting-source`
    ConflictingSource,
    /// `pinfold::cycle`
    Cycle,
    /// `pinfold::digest-mismatch`
    DigestMismatch,
    /// `pinfold::download`
    Download,
    /// `pinfold::duplicate-name`
    DuplicateName,
    /// `pinfold::duplicate-node`
    DuplicateNode,
    /// `pinfold::duplicate-platform`
    DuplicatePlatform,
    /// `pinfold::empty-image`
    EmptyImage,
    /// `pinfold::empty-step`
    EmptyStep,
    /// `pinfold::empty-test`
    EmptyTest,
    /// `pinfold::epoch`
    Epoch,
    /// `pinfold::import`
    Import,
    /// `pinfold::input-platform`
    InputPlatform,
    /// `pinfold::lint::parse`
    LintParse,
    /// `pinfold::lint::unreadable`
    LintUnreadable,
    /// `pinfold::lock`
    Lock,
    /// `pinfold::misplaced-version`
    MisplacedVersion,
    /// `pinfold::missing-argument`
    MissingArgument,
    /// `pinfold::missing-from`
    MissingFrom,
    /// `pinfold::missing-node`
    MissingNode,
    /// `pinfold::missing-property`
    MissingProperty,
    /// `pinfold::missing-run`
    MissingRun,
    /// `pinfold::missing-source`
    MissingSource,
    /// `pinfold::missing-version`
    MissingVersion,
    /// `pinfold::package`
    Package,
    /// `pinfold::path-conflict`
    PathConflict,
    /// `pinfold::path-escape`
    PathEscape,
    /// `pinfold::path-missing`
    PathMissing,
    /// `pinfold::shared-cache`
    SharedCache,
    /// `pinfold::special-file`
    SpecialFile,
    /// `pinfold::step`
    Step,
    /// `pinfold::step-network`
    StepNetwork,
    /// `pinfold::store`
    Store,
    /// `pinfold::syntax`
    Syntax,
    /// `pinfold::too-many-arguments`
    TooManyArguments,
    /// `pinfold::unexpected-children`
    UnexpectedChildren,
    /// `pinfold::unknown-base`
    UnknownBase,
    /// `pinfold::unknown-image`
    UnknownImage,
    /// `pinfold::unknown-input`
    UnknownInput,
    /// `pinfold::unknown-node`
    UnknownNode,
    /// `pinfold::unknown-output`
    UnknownOutput,
    /// `pinfold::unknown-property`
    UnknownProperty,
    /// `pinfold::unknown-step`
    UnknownStep,
    /// `pinfold::unpinned`
    Unpinned,
    /// `pinfold::unreadable`
    Unreadable,
    /// `pinfold::unsupported-version`
    UnsupportedVersion,
    /// `pinfold::unused-platform-block`
    UnusedPlatformBlock,
    /// A lint rule's id (`PF101`), defined by the rule.
    Rule(&'static str),
}

impl Code {
    /// Every code but the lint rules', in the order of their text.
    pub const ALL: &'static [Code] = &[
        Code::Archive,
        Code::BadCompression,
        Code::BadDigest,
        Code::BadName,
        Code::BadPath,
        Code::BadPlatform,
        Code::BadRegex,
        Code::BadType,
        Code::BadValue,
        Code::BasePlatform,
        Code::BaseUnreadable,
        Code::Build,
        Code::Cache,
        Code::ConflictingSource,
        Code::Cycle,
        Code::DigestMismatch,
        Code::Download,
        Code::DuplicateName,
        Code::DuplicateNode,
        Code::DuplicatePlatform,
        Code::EmptyImage,
        Code::EmptyStep,
        Code::EmptyTest,
        Code::Epoch,
        Code::Import,
        Code::InputPlatform,
        Code::LintParse,
        Code::LintUnreadable,
        Code::Lock,
        Code::MisplacedVersion,
        Code::MissingArgument,
        Code::MissingFrom,
        Code::MissingNode,
        Code::MissingProperty,
        Code::MissingRun,
        Code::MissingSource,
        Code::MissingVersion,
        Code::Package,
        Code::PathConflict,
        Code::PathEscape,
        Code::PathMissing,
        Code::SharedCache,
        Code::SpecialFile,
        Code::Step,
        Code::StepNetwork,
        Code::Store,
        Code::Syntax,
        Code::TooManyArguments,
        Code::UnexpectedChildren,
        Code::UnknownBase,
        Code::UnknownImage,
        Code::UnknownInput,
        Code::UnknownNode,
        Code::UnknownOutput,
        Code::UnknownProperty,
        Code::UnknownStep,
        Code::Unpinned,
        Code::Unreadable,
        Code::UnsupportedVersion,
        Code::UnusedPlatformBlock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Archive => "pinfold::archive",
            Code::BadCompression => "pinfold::bad-compression",
            Code::BadDigest => "pinfold::bad-digest",
            Code::BadName => "pinfold::bad-name",
            Code::BadPath => "pinfold::bad-path",
            Code::BadPlatform => "pinfold::bad-platform",
            Code::BadRegex => "pinfold::bad-regex",
            Code::BadType => "pinfold::bad-type",
            Code::BadValue => "pinfold::bad-value",
            Code::BasePlatform => "pinfold::base-platform",
            Code::BaseUnreadable => "pinfold::base-unreadable",
            Code::Build => "pinfold::build",
            Code::Cache => "pinfold::cache",
            Code::ConflictingSource => "pinfold::conflicting-source",
            Code::Cycle => "pinfold::cycle",
            Code::DigestMismatch => "pinfold::digest-mismatch",
            Code::Download => "pinfold::download",
            Code::DuplicateName => "pinfold::duplicate-name",
            Code::DuplicateNode => "pinfold::duplicate-node",
            Code::DuplicatePlatform => "pinfold::duplicate-platform",
            Code::EmptyImage => "pinfold::empty-image",
            Code::EmptyStep => "pinfold::empty-step",
            Code::EmptyTest => "pinfold::empty-test",
            Code::Epoch => "pinfold::epoch",
            Code::Import => "pinfold::import",
            Code::InputPlatform => "pinfold::input-platform",
            Code::LintParse => "pinfold::lint::parse",
            Code::LintUnreadable => "pinfold::lint::unreadable",
            Code::Lock => "pinfold::lock",
            Code::MisplacedVersion => "pinfold::misplaced-version",
            Code::MissingArgument => "pinfold::missing-argument",
            Code::MissingFrom => "pinfold::missing-from",
            Code::MissingNode => "pinfold::missing-node",
            Code::MissingProperty => "pinfold::missing-property",
            Code::MissingRun => "pinfold::missing-run",
            Code::MissingSource => "pinfold::missing-source",
            Code::MissingVersion => "pinfold::missing-version",
            Code::Package => "pinfold::package",
            Code::PathConflict => "pinfold::path-conflict",
            Code::PathEscape => "pinfold::path-escape",
            Code::PathMissing => "pinfold::path-missing",
            Code::SharedCache => "pinfold::shared-cache",
            Code::SpecialFile => "pinfold::special-file",
            Code::Step => "pinfold::step",
            Code::StepNetwork => "pinfold::step-network",
            Code::Store => "pinfold::store",
            Code::Syntax => "pinfold::syntax",
            Code::TooManyArguments => "pinfold::too-many-arguments",
            Code::UnexpectedChildren => "pinfold::unexpected-children",
            Code::UnknownBase => "pinfold::unknown-base",
            Code::UnknownImage => "pinfold::unknown-image",
            Code::UnknownInput => "pinfold::unknown-input",
            Code::UnknownNode => "pinfold::unknown-node",
            Code::UnknownOutput => "pinfold::unknown-output",
            Code::UnknownProperty => "pinfold::unknown-property",
            Code::UnknownStep => "pinfold::unknown-step",
            Code::Unpinned => "pinfold::unpinned",
            Code::Unreadable => "pinfold::unreadable",
            Code::UnsupportedVersion => "pinfold::unsupported-version",
            Code::UnusedPlatformBlock => "pinfold::unused-platform-block",
            Code::Rule(id) => id,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, code: &Code) -> bool {
        *self == code.as_str()
    }
}

impl PartialEq<Code> for String {
    fn eq(&self, code: &Code) -> bool {
        self == code.as_str()
    }
}

impl From<Code> for String {
    fn from(code: Code) -> String {
        code.as_str().to_string()
    }
}

/// The text a diagnostic points into, shared by all diagnostics of one file.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: Arc<str>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        Source { name: name.into(), text: text.into() }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One problem at one place.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Stable identifier, e.g. `pinfold::unknown-node` or `PF101`; scripts match on it.
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub span: Option<SourceSpan>,
    /// What the primary label says at the span.
    pub label: Option<String>,
    /// Further spans with their labels (e.g. the first definition of a duplicate).
    pub related_spans: Vec<(SourceSpan, String)>,
    pub help: Option<String>,
    pub source: Option<Source>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code: code.into(),
            severity: Severity::Error,
            message: message.into(),
            span: None,
            label: None,
            related_spans: Vec::new(),
            help: None,
            source: None,
        }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    pub fn at(mut self, span: SourceSpan, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.label = Some(label.into());
        self
    }

    pub fn also_at(mut self, span: SourceSpan, label: impl Into<String>) -> Self {
        self.related_spans.push((span, label.into()));
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn in_source(mut self, source: &Source) -> Self {
        self.source = Some(source.clone());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| &s.text as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        let primary = LabeledSpan::new_primary_with_span(self.label.clone(), span);
        let related =
            self.related_spans.iter().map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), *span));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

/// All diagnostics of one run, in the order they were found.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Renders every diagnostic as miette does, without colour, at a fixed width so
    /// that the text is the same in a terminal, a CI log and a snapshot.
    pub fn render_plain(&self) -> String {
        let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100)
            .with_links(false);
        self.render_with(&handler)
    }

    /// Renders for a terminal: colours when stderr is one and `NO_COLOR` is unset.
    pub fn render_for_stderr(&self) -> String {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() || std::env::var_os("NO_COLOR").is_some() {
            return self.render_plain();
        }
        self.render_with(&miette::GraphicalReportHandler::new().with_links(false))
    }

    /// At most [`MAX_PER_FILE`] diagnostics of each file are rendered, then one line
    /// with how many more there are: a hostile file cannot make the report (each one
    /// shows a snippet of the file) grow with the square of its size.
    fn render_with(&self, handler: &miette::GraphicalReportHandler) -> String {
        let mut out = String::new();
        let mut shown: std::collections::BTreeMap<Option<&str>, usize> = Default::default();
        for d in &self.0 {
            let count = shown.entry(d.source.as_ref().map(|s| s.name.as_str())).or_default();
            *count += 1;
            if *count > MAX_PER_FILE {
                continue;
            }
            let named;
            let report: &dyn miette::Diagnostic = match &d.source {
                // miette cannot draw a label past column 65,535 (it panics), and a
                // snippet of so long a line helps nobody: the place is given as
                // LINE:COLUMN instead.
                Some(src) if d.too_wide(src) => {
                    named = WithName { inner: d, source: None, location: Some(d.location(src)) };
                    &named
                }
                Some(src) => {
                    named = WithName {
                        inner: d,
                        source: Some(NamedSource::new(&src.name, src.text.clone())),
                        location: None,
                    };
                    &named
                }
                None => d,
            };
            let _ = handler.render_report(&mut out, report);
        }
        for (name, count) in shown {
            if count > MAX_PER_FILE {
                let name = name.unwrap_or("this run");
                out.push_str(&format!(
                    "\n  … and {} more diagnostic(s) in {name} not shown (the first {MAX_PER_FILE} are above)\n",
                    count - MAX_PER_FILE
                ));
            }
        }
        out
    }
}

/// How many diagnostics of one file are shown.
pub const MAX_PER_FILE: usize = 50;

/// Lines longer than this are not drawn in a snippet (miette panics past column
/// 65,535, and so long a line is unreadable anyway).
const MAX_SNIPPET_COLUMN: usize = 1_000;

impl Diagnostic {
    fn spans(&self) -> impl Iterator<Item = SourceSpan> + '_ {
        self.span.into_iter().chain(self.related_spans.iter().map(|(s, _)| *s))
    }

    /// Whether a span of this diagnostic lies too far right, or on a line too long,
    /// for a snippet.
    fn too_wide(&self, src: &Source) -> bool {
        self.spans().any(|span| {
            let text = &src.text;
            let start = floor_char_boundary(text, span.offset().min(text.len()));
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let end = floor_char_boundary(text, (span.offset() + span.len()).min(text.len()));
            let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
            line_end - line_start > MAX_SNIPPET_COLUMN
        })
    }

    fn location(&self, src: &Source) -> String {
        match self.span {
            Some(span) => {
                let (line, col) = src.line_col(span.offset());
                format!("{}:{line}:{col}", src.name)
            }
            None => src.name.clone(),
        }
    }
}

/// A diagnostic shown with its file name above the snippet.
struct WithName<'a> {
    inner: &'a Diagnostic,
    source: Option<NamedSource<Arc<str>>>,
    /// `FILE:LINE:COLUMN`, said in the message when no snippet is drawn.
    location: Option<String>,
}

impl fmt::Debug for WithName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.inner, f)
    }
}

impl fmt::Display for WithName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.location {
            write!(f, "{at}: ")?;
            if let Some(label) = &self.inner.label {
                write!(f, "({label}) ")?;
            }
        }
        fmt::Display::fmt(self.inner, f)
    }
}

impl std::error::Error for WithName<'_> {}

impl miette::Diagnostic for WithName<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.code()
    }
    fn severity(&self) -> Option<miette::Severity> {
        miette::Diagnostic::severity(self.inner)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        miette::Diagnostic::help(self.inner)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        self.inner.labels()
    }
}

#[cfg(test)]
mod code_tests {
    use super::Code;
    use std::collections::BTreeSet;

    /// The table of codes in `spec/language.md` lists exactly the codes that exist.
    #[test]
    fn the_spec_lists_every_code_and_no_other() {
        let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/language.md")).unwrap();
        let start = spec.find("| code | meaning |").expect("the table of codes");
        let table = &spec[start..start + spec[start..].find("\n\n").unwrap()];
        let re = regex::Regex::new(r"`(pinfold::[a-z:-]+)`").unwrap();
        let listed: BTreeSet<&str> = re.captures_iter(table).map(|c| c.get(1).unwrap().as_str()).collect();
        let emitted: BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed.difference(&emitted).collect::<Vec<_>>(), Vec::<&&str>::new(), "listed but never emitted");
        assert_eq!(emitted.difference(&listed).collect::<Vec<_>>(), Vec::<&&str>::new(), "emitted but not listed");
    }
}
