//! KDL document → [`BuildFile`]. Every node is checked against the grammar of
//! `spec/language.md`; a problem is recorded and the walk goes on, so that one run
//! shows all of a file's errors.

use super::syntax::*;
use crate::diag::Code;
use crate::diag::{Diagnostic, Diagnostics, Source};
use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

/// Parses `source` into a syntax tree. Every problem goes into `diags`; the tree is
/// returned whenever the KDL itself parsed, so that later stages can add theirs.
pub fn parse(source: &Source, diags: &mut Diagnostics) -> Option<BuildFile> {
    if let Err(d) = check_bounds(source) {
        diags.push(*d);
        return None;
    }
    let doc = match kdl_parse(&source.text) {
        Ok(doc) => doc,
        Err(err) => {
            let total = err.diagnostics.len();
            for d in err.diagnostics.into_iter().take(crate::diag::MAX_PER_FILE) {
                let message = d.message.unwrap_or_else(|| "invalid KDL".to_string());
                let mut diag = Diagnostic::error(Code::Syntax, format!("invalid KDL: {message}"))
                    .at(d.span, d.label.unwrap_or_else(|| "here".to_string()))
                    .in_source(source);
                diag.help = d.help.or_else(|| {
                    Some("the build file is KDL 2.0: strings with `/` or spaces are quoted, octal numbers are written 0o755".into())
                });
                diags.push(diag);
            }
            if total > crate::diag::MAX_PER_FILE {
                diags.push(
                    Diagnostic::error(
                        Code::Syntax,
                        format!(
                            "{} more KDL errors in {} not shown (the first {} are above)",
                            total - crate::diag::MAX_PER_FILE,
                            source.name,
                            crate::diag::MAX_PER_FILE
                        ),
                    )
                    .in_source(source),
                );
            }
            return None;
        }
    };
    let mut cx = Cx { source, diags };
    Some(cx.build_file(&doc))
}

/// The largest build file read: far above any real one, and small enough that a
/// hostile one cannot make the parser or the reports slow.
/// (1 MiB: the largest build file seen in the wild is under 20 KB, and the KDL crate's
/// error recovery costs minutes on a few MiB of broken strings.)
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// The deepest nesting of `{ }` blocks (a real build file uses 3 or 4). The KDL crate
/// parses children recursively, so deeper text could overflow the stack: the depth
/// is measured here, before the text reaches it.
pub const MAX_NESTING: usize = 64;

/// The most single-line strings a build file may leave open on their lines. Each is a
/// syntax error the KDL crate recovers from at a cost that grows with the file: 1 MiB
/// of `"` lines took 29 s (debug build) before this bound; a real build file has none,
/// and diagnostics are cut at [`crate::diag::MAX_PER_FILE`] anyway.
pub const MAX_OPEN_STRINGS: usize = 100;

/// Why [`scan`] refuses a text before the KDL parser sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    TooDeep,
    OpenStrings,
}

impl Refusal {
    fn message(self) -> String {
        match self {
            Refusal::TooDeep => format!(
                "blocks are nested more than {MAX_NESTING} deep, or more than {MAX_NESTING} brackets close nothing"
            ),
            Refusal::OpenStrings => {
                format!("more than {MAX_OPEN_STRINGS} strings are left open on their lines")
            }
        }
    }
}

/// Refuses a build file that is too large or too deeply nested for the parser, before
/// any parser sees it. Lint, lock and graph call this too, through [`parse`] or
/// directly before their own use of the KDL crate.
pub fn check_bounds(source: &Source) -> Result<(), Box<Diagnostic>> {
    let text = &source.text;
    if text.len() > MAX_SOURCE_BYTES {
        return Err(Box::new(
            Diagnostic::error(
                Code::Syntax,
                format!(
                    "{} is {} bytes; a build file may have at most {MAX_SOURCE_BYTES} bytes, and it is not read",
                    source.name,
                    text.len()
                ),
            )
            .in_source(source),
        ));
    }
    if let Some((at, why)) = scan(text.as_bytes(), MAX_NESTING, MAX_OPEN_STRINGS) {
        let label = match why {
            Refusal::TooDeep => "too deep",
            Refusal::OpenStrings => "one too many",
        };
        return Err(Box::new(
            Diagnostic::error(Code::Syntax, format!("{}; the build file is not read further", why.message()))
                .at(SourceSpan::from((at, 1)), label)
                .in_source(source),
        ));
    }
    Ok(())
}

/// The KDL crate's parse, after the same bounds as [`parse`]: for the other readers
/// of build files and locks (lint, `pinfold.lock`), so that none of them hands
/// unbounded text to the recursive parser. A refusal is a `KdlError` with one
/// diagnostic, like any other syntax error.
pub fn parse_kdl_bounded(text: &str) -> Result<KdlDocument, kdl::KdlError> {
    let refuse = |span: SourceSpan, message: String| {
        let input = std::sync::Arc::new(String::new());
        kdl::KdlError {
            input: input.clone(),
            diagnostics: vec![kdl::KdlDiagnostic {
                input,
                span,
                message: Some(message),
                label: Some("here".into()),
                help: None,
                severity: miette::Severity::Error,
            }],
        }
    };
    if text.len() > MAX_SOURCE_BYTES {
        let message = format!("the file is {} bytes; at most {MAX_SOURCE_BYTES} are read", text.len());
        return Err(refuse(SourceSpan::from((0, 0)), message));
    }
    if let Some((at, why)) = scan(text.as_bytes(), MAX_NESTING, MAX_OPEN_STRINGS) {
        return Err(refuse(SourceSpan::from((at, 1)), why.message()));
    }
    kdl_parse(text)
}

/// The KDL crate's parse on a thread whose stack grows with the input. Its error
/// recovery recurses once per error, so a file of many small errors (20,000 stray `}`,
/// found by tests/it/fuzz.rs) overflowed the 8 MiB main stack even within the nesting
/// limit. The stack is only reserved, not touched, so a large one costs nothing.
fn kdl_parse(text: &str) -> Result<KdlDocument, kdl::KdlError> {
    const BASE_STACK: usize = 16 << 20;
    const STACK_PER_BYTE: usize = 256;
    let stack = BASE_STACK + text.len().saturating_mul(STACK_PER_BYTE);
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("kdl-parse".into())
            .stack_size(stack)
            .spawn_scoped(scope, || KdlDocument::parse(text))
            .map(|handle| handle.join())
    })
    // A thread that cannot be made (no memory to reserve) parses on this one.
    .unwrap_or_else(|_| Ok(KdlDocument::parse(text)))
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The offset of the first `{` (or `(`/`[`) nested deeper than `limit`, outside
/// strings and comments (or of a refusal of [`scan`] for open strings).
#[cfg(test)]
fn nesting_over(text: &[u8], limit: usize) -> Option<usize> {
    scan(text, limit, usize::MAX).map(|(at, _)| at)
}

/// The offset of the first `{` (or `(`/`[`) nested deeper than `limit`, outside
/// strings and comments, or of the single-line string left open on its line past
/// `max_open` of them. A scanner of KDL's lexical layer written here on purpose: it
/// must be iterative (the point is to not recurse) and only needs to find brackets
/// and the ends of strings.
fn scan(text: &[u8], limit: usize, max_open: usize) -> Option<(usize, Refusal)> {
    let mut open_strings = 0usize;
    let mut depth = 0usize;
    let mut stray = 0usize;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'{' | b'(' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Some((i, Refusal::TooDeep));
                }
            }
            b'}' | b')' | b']' => {
                // A closer with nothing open is an error the KDL parser recovers from
                // by recursing; enough of them overflow its stack, so they count
                // against the same limit as nesting.
                if depth == 0 {
                    stray += 1;
                    if stray > limit {
                        return Some((i, Refusal::TooDeep));
                    }
                } else {
                    depth -= 1;
                }
            }
            b'/' if text.get(i + 1) == Some(&b'/') => {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if text.get(i + 1) == Some(&b'*') => {
                // Block comments nest in KDL. One left open is not skipped: the KDL
                // parser recovers from it and reads the braces after it, so they are
                // counted (found by tests/it/fuzz.rs: an unclosed `/*` before 2,000
                // nested blocks overflowed the stack).
                let start = i;
                let mut level = 0usize;
                while i < text.len() {
                    if text[i..].starts_with(b"/*") {
                        level += 1;
                        i += 2;
                    } else if text[i..].starts_with(b"*/") {
                        level -= 1;
                        i += 2;
                        if level == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                if level > 0 {
                    i = start + 2;
                }
                continue;
            }
            b'#' | b'"' => {
                // A raw string (#"…"#, ##"…"##) or a quoted one ("…", """…""").
                let hashes = text[i..].iter().take_while(|b| **b == b'#').count();
                if text.get(i + hashes) != Some(&b'"') {
                    i += hashes.max(1);
                    continue;
                }
                // A single-line string that its line does not close, or one left
                // open, hides nothing: the parser recovers and reads what follows.
                let start = i;
                let multiline = text[i + hashes..].starts_with(b"\"\"\"");
                i += hashes + 1;
                let mut close = vec![b'"'];
                close.extend(std::iter::repeat_n(b'#', hashes));
                let mut closed = false;
                while i < text.len() {
                    if hashes == 0 && text[i] == b'\\' {
                        // An escape; `\` before whitespace (newlines too) skips all of it.
                        i += 1;
                        if text.get(i).is_some_and(u8::is_ascii_whitespace) {
                            while text.get(i).is_some_and(u8::is_ascii_whitespace) {
                                i += 1;
                            }
                        } else {
                            i += 1;
                        }
                        continue;
                    }
                    if !multiline && text[i] == b'\n' {
                        break;
                    }
                    if text[i..].starts_with(&close) {
                        i += close.len();
                        closed = true;
                        break;
                    }
                    i += 1;
                }
                if !closed {
                    if !multiline {
                        open_strings += 1;
                        if open_strings > max_open {
                            return Some((start, Refusal::OpenStrings));
                        }
                    }
                    i = start + hashes + 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

const TOP_LEVEL: &[&str] = &[
    "pinfold",
    "epoch",
    "platforms",
    "compression",
    "base",
    "download",
    "archive",
    "debian",
    "python",
    "image",
    "step",
];
const STEP_CHILDREN: &[&str] = &["image", "inputs", "run", "outputs", "env", "workdir", "platform", "build-platform"];
const BASE_CHILDREN: &[&str] = &["layout", "oci-archive", "docker-archive", "image", "ref", "digest"];
const CONFIG_NODES: &[&str] =
    &["env", "entrypoint", "cmd", "workdir", "user", "label", "annotation", "expose", "volume", "stop-signal"];
const IMAGE_ONLY: &[&str] = &["from", "layer", "platform", "platforms", "compression", "test"];
const ENTRY_NODES: &[&str] = &["copy", "file", "dir", "symlink", "download", "extract", "install"];
/// Nodes of the sketch that later versions of the language add; named here so that
/// the error says "not yet" instead of "unknown".
const PLANNED: &[&str] = &["lint"];

/// The walk over one build file; test blocks ([`super::test_block`]) use its helpers too.
pub(super) struct Cx<'a> {
    pub(super) source: &'a Source,
    pub(super) diags: &'a mut Diagnostics,
}

fn name_span(node: &KdlNode) -> SourceSpan {
    node.name().span()
}

pub(super) fn args(node: &KdlNode) -> Vec<&KdlEntry> {
    node.entries().iter().filter(|e| e.name().is_none()).collect()
}

pub(super) fn prop<'n>(node: &'n KdlNode, key: &str) -> Option<&'n KdlEntry> {
    // KDL: when a property is given twice, the rightmost one counts.
    node.entries().iter().rev().find(|e| e.name().map(|n| n.value()) == Some(key))
}

pub(super) fn type_name(value: &KdlValue) -> &'static str {
    match value {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "an integer",
        KdlValue::Float(_) => "a float",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "#null",
    }
}

/// The closest of `candidates` to `word`, when close enough to be a typo.
pub fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min()
        .map(|(_, c)| c)
}

impl Cx<'_> {
    pub(super) fn error(
        &mut self,
        code: Code,
        message: impl Into<String>,
        span: SourceSpan,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(code, message).at(span, label).in_source(self.source));
        self.diags.0.last_mut().expect("just pushed")
    }

    pub(super) fn unknown_node(&mut self, node: &KdlNode, context: &str, allowed: &[&str]) {
        self.unknown_node_among(node, context, allowed, PLANNED);
    }

    /// Reports `node`, which is none of `allowed` (nor of `planned`, the nodes a later
    /// version adds here) in `context`, with the closest of them.
    pub(super) fn unknown_node_among(&mut self, node: &KdlNode, context: &str, allowed: &[&str], planned: &[&str]) {
        let name = node.name().value();
        let diag = self.error(
            Code::UnknownNode,
            format!("unknown node `{name}` {context}"),
            name_span(node),
            "not a node of the build language here",
        );
        diag.help = Some(match did_you_mean(name, allowed) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None if planned.contains(&name) => {
                format!("`{name}` is planned but not supported by this version of pinfold")
            }
            None => format!("expected one of: {}", allowed.join(", ")),
        });
    }

    /// Reports properties other than `allowed`.
    pub(super) fn check_props(&mut self, node: &KdlNode, allowed: &[&str]) {
        for entry in node.entries() {
            let Some(key) = entry.name() else { continue };
            if allowed.contains(&key.value()) {
                continue;
            }
            let node_name = node.name().value();
            let diag = self.error(
                Code::UnknownProperty,
                format!("unknown property `{}` on `{node_name}`", key.value()),
                entry.span(),
                "not a property of this node",
            );
            diag.help = Some(match did_you_mean(key.value(), allowed) {
                Some(s) => format!("did you mean `{s}`?"),
                None if allowed.is_empty() => format!("`{node_name}` takes no properties"),
                None => format!("`{node_name}` takes: {}", allowed.join(", ")),
            });
        }
    }

    /// Checks the number of arguments; returns them.
    pub(super) fn arity<'n>(&mut self, node: &'n KdlNode, min: usize, max: usize, what: &str) -> Vec<&'n KdlEntry> {
        let list = args(node);
        let name = node.name().value();
        if list.len() < min {
            let diag = self.error(
                Code::MissingArgument,
                format!("`{name}` needs {what}"),
                node.span(),
                format!("{} argument(s) given", list.len()),
            );
            diag.help = Some(format!("write it as `{name} {}`", placeholder(what)));
        } else if list.len() > max {
            let extra = list[max];
            self.error(
                Code::TooManyArguments,
                format!("`{name}` takes {what}, and {} argument(s) were given", list.len()),
                extra.span(),
                "this and what follows are not used",
            );
        }
        list
    }

    pub(super) fn no_children(&mut self, node: &KdlNode) {
        if let Some(children) = node.children() {
            self.error(
                Code::UnexpectedChildren,
                format!("`{}` takes no block", node.name().value()),
                children.span(),
                "remove this block",
            );
        }
    }

    pub(super) fn string(&mut self, entry: &KdlEntry, what: &str) -> Option<Spanned<String>> {
        match entry.value() {
            KdlValue::String(s) => Some(Spanned::new(s.clone(), entry.span())),
            other => {
                let diag = self.error(
                    Code::BadType,
                    format!("{what} must be a string, found {}", type_name(other)),
                    entry.span(),
                    "expected a string",
                );
                if matches!(other, KdlValue::Integer(_) | KdlValue::Float(_)) {
                    diag.help = Some("quote it: numbers are only taken where the spec says so".into());
                }
                None
            }
        }
    }

    pub(super) fn integer(&mut self, entry: &KdlEntry, what: &str, max: i128) -> Option<Spanned<u64>> {
        match entry.value() {
            KdlValue::Integer(i) if (0..=max).contains(i) => Some(Spanned::new(*i as u64, entry.span())),
            KdlValue::Integer(i) => {
                self.error(
                    Code::BadValue,
                    format!("{what} must be between 0 and {max}, found {i}"),
                    entry.span(),
                    "out of range",
                );
                None
            }
            other => {
                let diag = self.error(
                    Code::BadType,
                    format!("{what} must be an integer, found {}", type_name(other)),
                    entry.span(),
                    "expected an integer",
                );
                if let KdlValue::String(s) = other {
                    if s.parse::<u64>().is_ok() || s.starts_with("0o") {
                        diag.help = Some(format!("write it without quotes: {s}"));
                    }
                }
                None
            }
        }
    }

    pub(super) fn string_prop(&mut self, node: &KdlNode, key: &str, what: &str) -> Option<Spanned<String>> {
        prop(node, key).and_then(|e| self.string(e, what))
    }

    pub(super) fn strings(&mut self, entries: &[&KdlEntry], what: &str) -> Vec<Spanned<String>> {
        entries.iter().filter_map(|e| self.string(e, what)).collect()
    }

    fn build_file(&mut self, doc: &KdlDocument) -> BuildFile {
        let mut file = BuildFile {
            version: None,
            epoch: None,
            platforms: None,
            compression: None,
            bases: Vec::new(),
            downloads: Vec::new(),
            archives: Vec::new(),
            debian: Vec::new(),
            python: Vec::new(),
            images: Vec::new(),
            steps: Vec::new(),
        };
        for (index, node) in doc.nodes().iter().enumerate() {
            let name = node.name().value();
            if name != "pinfold" && file.version.is_none() && index == 0 {
                let diag = self.error(
                    Code::MissingVersion,
                    "a build file starts with the language version: `pinfold 1`",
                    name_span(node),
                    "expected `pinfold 1` before this",
                );
                diag.help = Some("add `pinfold 1` as the first line".into());
            }
            match name {
                "pinfold" => {
                    self.check_props(node, &[]);
                    self.no_children(node);
                    if index != 0 {
                        self.error(
                            Code::MisplacedVersion,
                            "`pinfold` must be the first node of the build file",
                            name_span(node),
                            "move this to the top",
                        );
                    }
                    let list = self.arity(node, 1, 1, "the language version, 1");
                    if let Some(v) =
                        list.first().and_then(|e| self.integer(e, "the language version", u32::MAX as i128))
                    {
                        if v.value != 1 {
                            let diag = self.error(
                                Code::UnsupportedVersion,
                                format!("language version {} is not supported by this pinfold", v.value),
                                v.span,
                                "this pinfold reads version 1",
                            );
                            diag.help = Some("write `pinfold 1`, or use a newer pinfold".into());
                        }
                        file.version = Some(v);
                    }
                }
                "epoch" => {
                    self.check_props(node, &[]);
                    self.no_children(node);
                    let list = self.arity(node, 1, 1, "seconds since 1970-01-01 UTC");
                    if let Some(e) = list.first() {
                        // Tar headers hold 11 octal digits of seconds; larger epochs do not fit.
                        file.epoch = self.integer(e, "the epoch", 0o77777777777);
                    }
                }
                "platforms" => {
                    file.platforms = self.platforms(node);
                }
                "compression" => {
                    file.compression = self.compression(node);
                }
                "base" => {
                    if let Some(base) = self.base(node) {
                        file.bases.push(base);
                    }
                }
                "image" => {
                    if let Some(image) = self.image(node) {
                        file.images.push(image);
                    }
                }
                "download" => {
                    if let Some(d) = self.download(node) {
                        file.downloads.push(d);
                    }
                }
                "archive" => {
                    if let Some(a) = self.archive(node) {
                        file.archives.push(a);
                    }
                }
                "step" => {
                    if let Some(step) = self.step(node) {
                        file.steps.push(step);
                    }
                }
                "debian" => {
                    if let Some(set) = self.debian(node) {
                        file.debian.push(set);
                    }
                }
                "python" => {
                    if let Some(set) = self.python(node) {
                        file.python.push(set);
                    }
                }
                _ => self.unknown_node(node, "at the top level", TOP_LEVEL),
            }
        }
        if doc.nodes().is_empty() {
            self.diags.push(
                Diagnostic::error(Code::MissingVersion, "the build file is empty")
                    .help("start with `pinfold 1`, then declare an `image`")
                    .in_source(self.source),
            );
        }
        self.duplicates(file.bases.iter().map(|b| &b.name), "base");
        self.duplicates(file.images.iter().map(|i| &i.name), "image");
        self.duplicates(file.steps.iter().map(|s| &s.name), "step");
        self.duplicates(
            file.downloads.iter().map(|d| &d.name).chain(file.archives.iter().map(|a| &a.name)),
            "download or archive",
        );
        self.duplicates(file.debian.iter().map(|d| &d.name).chain(file.python.iter().map(|p| &p.name)), "package set");
        self.single_nodes(doc, &["pinfold", "epoch", "platforms", "compression"]);
        file
    }

    /// Reports a node given twice where only one is allowed.
    fn single_nodes(&mut self, doc: &KdlDocument, names: &[&str]) {
        for name in names {
            let nodes: Vec<&KdlNode> = doc.nodes().iter().filter(|n| n.name().value() == *name).collect();
            if nodes.len() > 1 {
                let first = name_span(nodes[0]);
                for again in &nodes[1..] {
                    let diag = self.error(
                        Code::DuplicateNode,
                        format!("`{name}` is given more than once"),
                        name_span(again),
                        "given again here",
                    );
                    diag.related_spans.push((first, "first given here".into()));
                }
            }
        }
    }

    fn duplicates<'s>(&mut self, names: impl Iterator<Item = &'s Spanned<String>>, what: &str) {
        let mut seen: std::collections::BTreeMap<&str, SourceSpan> = Default::default();
        for name in names {
            if let Some(first) = seen.get(name.value.as_str()) {
                let first = *first;
                let diag = self.error(
                    Code::DuplicateName,
                    format!("{what} `{}` is defined more than once", name.value),
                    name.span,
                    "defined again here",
                );
                diag.related_spans.push((first, "first defined here".into()));
                diag.help = Some(format!("give each {what} its own name"));
            } else {
                seen.insert(&name.value, name.span);
            }
        }
    }

    pub(super) fn name_arg(&mut self, node: &KdlNode, what: &str) -> Option<Spanned<String>> {
        let list = self.arity(node, 1, 1, what);
        let name = self.string(list.first()?, what)?;
        if name.value.is_empty() || !name.value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            let diag = self.error(
                Code::BadName,
                format!("`{}` is not a valid name", name.value),
                name.span,
                "letters, digits, `-`, `_` and `.` only",
            );
            diag.help = Some("names are used in output paths and references: keep them simple".into());
        }
        Some(name)
    }

    fn platforms(&mut self, node: &KdlNode) -> Option<Spanned<Vec<Spanned<Platform>>>> {
        self.check_props(node, &[]);
        self.no_children(node);
        let list = self.arity(node, 1, usize::MAX, "one or more platforms such as \"linux/amd64\"");
        let mut platforms = Vec::new();
        for entry in list {
            let Some(s) = self.string(entry, "a platform") else { continue };
            match s.value.parse::<Platform>() {
                Ok(p) => {
                    if platforms.iter().any(|q: &Spanned<Platform>| q.value == p) {
                        self.error(
                            Code::DuplicatePlatform,
                            format!("platform {p} is listed twice"),
                            s.span,
                            "listed again",
                        );
                    } else {
                        platforms.push(Spanned::new(p, s.span));
                    }
                }
                Err(message) => {
                    let diag = self.error(Code::BadPlatform, message, s.span, "not a platform");
                    diag.help = Some("write platforms as \"linux/amd64\" or \"linux/arm64\"".into());
                }
            }
        }
        Some(Spanned::new(platforms, node.span()))
    }

    fn compression(&mut self, node: &KdlNode) -> Option<Spanned<String>> {
        self.check_props(node, &[]);
        self.no_children(node);
        let list =
            self.arity(node, 1, 1, "a compression: \"gzip\", \"gzip:LEVEL\", \"zstd\", \"zstd:LEVEL\" or \"none\"");
        let value = self.string(list.first()?, "the compression")?;
        if let Err(message) = value.value.parse::<pinfold_image::layer::Compression>() {
            self.error(Code::BadCompression, message.to_string(), value.span, "unknown compression");
            return None;
        }
        Some(value)
    }

    fn base(&mut self, node: &KdlNode) -> Option<BaseDecl> {
        self.check_props(node, &[]);
        let name = self.name_arg(node, "a name")?;
        let mut base = BaseDecl { name, source: None, reference: None, digest: None, span: node.span() };
        let Some(children) = node.children() else {
            let diag = self.error(
                Code::MissingSource,
                format!("base `{}` says nothing of where its image is", base.name.value),
                node.span(),
                "this base has no block",
            );
            diag.help = Some("add a block: `{ layout \"vendor/img\"; digest \"sha256:…\" }`".into());
            return Some(base);
        };
        let mut source_nodes: Vec<&KdlNode> = Vec::new();
        for child in children.nodes() {
            let kind = child.name().value();
            match kind {
                "layout" | "oci-archive" | "docker-archive" | "image" => {
                    self.check_props(child, &[]);
                    self.no_children(child);
                    let list = self.arity(child, 1, 1, "a path");
                    let Some(value) = list.first().and_then(|e| self.string(e, "the location")) else { continue };
                    source_nodes.push(child);
                    base.source = Some(match kind {
                        "layout" => BaseSource::Layout(value),
                        "oci-archive" => BaseSource::OciArchive(value),
                        "docker-archive" => BaseSource::DockerArchive(value),
                        _ => BaseSource::Registry(value),
                    });
                }
                "ref" | "digest" => {
                    self.check_props(child, &[]);
                    self.no_children(child);
                    let list = self.arity(
                        child,
                        1,
                        1,
                        if kind == "ref" { "a reference name" } else { "a digest \"sha256:…\"" },
                    );
                    let Some(value) = list.first().and_then(|e| self.string(e, kind)) else { continue };
                    if kind == "digest" {
                        if let Err(e) = value.value.parse::<pinfold_image::digest::Digest>() {
                            let diag = self.error(
                                Code::BadDigest,
                                format!("`{}` is not a digest: {e}", value.value),
                                value.span,
                                "not a sha256 digest",
                            );
                            diag.help =
                                Some("a digest is written \"sha256:\" followed by 64 lowercase hex digits".into());
                        }
                        base.digest = Some(value);
                    } else {
                        base.reference = Some(value);
                    }
                }
                _ => self.unknown_node(child, "in a base", BASE_CHILDREN),
            }
        }
        if source_nodes.len() > 1 {
            let diag = self.error(
                Code::ConflictingSource,
                format!("base `{}` names more than one source", base.name.value),
                name_span(source_nodes[1]),
                "second source",
            );
            diag.related_spans.push((name_span(source_nodes[0]), "first source".into()));
            diag.help = Some("keep one of layout, oci-archive, docker-archive, image".into());
        }
        if base.source.is_none() && source_nodes.is_empty() {
            let diag = self.error(
                Code::MissingSource,
                format!("base `{}` says nothing of where its image is", base.name.value),
                base.name.span,
                "no layout, oci-archive, docker-archive or image",
            );
            diag.help = Some("add `layout \"DIR\"`, `oci-archive \"FILE\"` or `docker-archive \"FILE\"`".into());
        }
        Some(base)
    }

    fn image(&mut self, node: &KdlNode) -> Option<ImageDecl> {
        self.check_props(node, &[]);
        let name = self.name_arg(node, "a name")?;
        let mut image = ImageDecl {
            name,
            from: None,
            platforms: None,
            compression: None,
            layers: Vec::new(),
            config: ConfigDecl::default(),
            overrides: Vec::new(),
            tests: Vec::new(),
            span: node.span(),
        };
        let Some(children) = node.children() else {
            let diag = self.error(
                Code::EmptyImage,
                format!("image `{}` has no block", image.name.value),
                node.span(),
                "no block",
            );
            diag.help = Some("add a block with `from scratch` and a `layer`".into());
            return Some(image);
        };
        let mut allowed: Vec<&str> = IMAGE_ONLY.to_vec();
        allowed.extend_from_slice(CONFIG_NODES);
        for child in children.nodes() {
            match child.name().value() {
                "from" => {
                    self.check_props(child, &[]);
                    self.no_children(child);
                    let list = self.arity(child, 1, 1, "`scratch` or the name of a base");
                    if let Some(value) = list.first().and_then(|e| self.string(e, "`from`")) {
                        let from = if value.value == "scratch" {
                            FromDecl::Scratch
                        } else {
                            FromDecl::Base(value.value.clone())
                        };
                        if image.from.is_some() {
                            self.error(
                                Code::DuplicateNode,
                                "`from` is given more than once",
                                name_span(child),
                                "given again here",
                            );
                        }
                        image.from = Some(Spanned::new(from, value.span));
                    }
                }
                "platforms" => image.platforms = self.platforms(child),
                "compression" => image.compression = self.compression(child),
                "layer" => {
                    if let Some(layer) = self.layer(child) {
                        image.layers.push(layer);
                    }
                }
                "test" => {
                    if let Some(test) = super::test_block::parse_test(self.source, self.diags, child) {
                        image.tests.push(test);
                    }
                }
                "platform" => {
                    if let Some(o) = self.platform_override(child) {
                        if let Some(first) = image.overrides.iter().find(|p| p.platform.value == o.platform.value) {
                            let first = first.platform.span;
                            let diag = self.error(
                                Code::DuplicatePlatform,
                                format!("platform {} has two override blocks", o.platform.value),
                                o.platform.span,
                                "second block",
                            );
                            diag.related_spans.push((first, "first block".into()));
                        }
                        image.overrides.push(o);
                    }
                }
                name if CONFIG_NODES.contains(&name) => {
                    let mut config = std::mem::take(&mut image.config);
                    self.config_node(child, &mut config);
                    image.config = config;
                }
                _ => self.unknown_node(child, "in an image", &allowed),
            }
        }
        if image.from.is_none() {
            let diag = self.error(
                Code::MissingFrom,
                format!("image `{}` does not say what it starts from", image.name.value),
                image.name.span,
                "no `from` in this image",
            );
            diag.help = Some("add `from scratch` or `from BASE`".into());
        }
        self.duplicates(image.layers.iter().map(|l| &l.name), "layer");
        self.duplicates(image.tests.iter().map(|t| &t.name), "test");
        Some(image)
    }

    fn platform_override(&mut self, node: &KdlNode) -> Option<PlatformOverride> {
        self.check_props(node, &[]);
        let list = self.arity(node, 1, 1, "a platform such as \"linux/arm64\"");
        let value = self.string(list.first()?, "the platform")?;
        let platform = match value.value.parse::<Platform>() {
            Ok(p) => Spanned::new(p, value.span),
            Err(message) => {
                self.error(Code::BadPlatform, message, value.span, "not a platform");
                return None;
            }
        };
        let mut o = PlatformOverride { platform, layers: Vec::new(), config: ConfigDecl::default(), span: node.span() };
        let mut allowed = vec!["layer"];
        allowed.extend_from_slice(CONFIG_NODES);
        for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
            match child.name().value() {
                "layer" => {
                    if let Some(layer) = self.layer(child) {
                        o.layers.push(layer);
                    }
                }
                name if CONFIG_NODES.contains(&name) => {
                    let mut config = std::mem::take(&mut o.config);
                    self.config_node(child, &mut config);
                    o.config = config;
                }
                _ => self.unknown_node(child, "in a platform block", &allowed),
            }
        }
        Some(o)
    }

    fn config_node(&mut self, node: &KdlNode, config: &mut ConfigDecl) {
        let name = node.name().value();
        self.no_children(node);
        match name {
            "env" => {
                let pairs = self.env_properties(node, "write `env PATH=\"/usr/bin:/bin\" LANG=\"C.UTF-8\"`");
                config.env.extend(pairs);
            }
            "entrypoint" | "cmd" => {
                self.check_props(node, &[]);
                let list = self.arity(node, 1, usize::MAX, "the program and its arguments");
                let values = self.strings(&list, "an argument");
                if values.len() == list.len() && !list.is_empty() {
                    let v = Spanned::new(values.into_iter().map(|s| s.value).collect(), node.span());
                    if name == "entrypoint" {
                        config.entrypoint = Some(v)
                    } else {
                        config.cmd = Some(v)
                    }
                }
            }
            "workdir" | "user" | "stop-signal" => {
                self.check_props(node, &[]);
                let list = self.arity(node, 1, 1, "one string");
                let Some(value) = list.first().and_then(|e| self.string(e, name)) else { return };
                match name {
                    "workdir" => {
                        if !value.value.starts_with('/') {
                            self.error(
                                Code::BadValue,
                                "`workdir` must be an absolute path",
                                value.span,
                                "not absolute",
                            );
                        }
                        config.workdir = Some(value);
                    }
                    "user" => config.user = Some(value),
                    _ => config.stop_signal = Some(value),
                }
            }
            "label" | "annotation" => {
                self.check_props(node, &[]);
                let list = self.arity(node, 2, 2, "a key and a value");
                if list.len() == 2 {
                    if let (Some(k), Some(v)) = (self.string(list[0], "the key"), self.string(list[1], "the value")) {
                        if name == "label" {
                            config.labels.push((k, v))
                        } else {
                            config.annotations.push((k, v))
                        }
                    }
                }
            }
            "expose" => {
                let ports = self.ports(node);
                config.expose.extend(ports);
            }
            "volume" => {
                self.check_props(node, &[]);
                let list = self.arity(node, 1, usize::MAX, "one or more absolute paths");
                for v in self.strings(&list, "a volume") {
                    if !v.value.starts_with('/') {
                        self.error(Code::BadValue, "a volume is an absolute path", v.span, "not absolute");
                    }
                    config.volumes.push(v);
                }
            }
            _ => unreachable!("config_node is only called for CONFIG_NODES"),
        }
    }

    /// `KEY="value"` properties (of `env` in an image or a test), in order; problems are
    /// reported, and `example` is the help shown when arguments are given instead.
    pub(super) fn env_properties(&mut self, node: &KdlNode, example: &str) -> Vec<(Spanned<String>, Spanned<String>)> {
        let list = args(node);
        if let Some(first) = list.first() {
            let diag =
                self.error(Code::BadType, "`env` takes properties, KEY=\"value\"", first.span(), "not a property");
            diag.help = Some(example.to_string());
        }
        let mut pairs = Vec::new();
        let mut any = false;
        for entry in node.entries() {
            let Some(key) = entry.name() else { continue };
            any = true;
            if key.value().is_empty() || key.value().contains('=') {
                self.error(
                    Code::BadValue,
                    format!("`{}` is not an environment variable name", key.value()),
                    entry.span(),
                    "bad name",
                );
                continue;
            }
            if let Some(value) = self.string(entry, "an environment value") {
                pairs.push((Spanned::new(key.value().to_string(), key.span()), value));
            }
        }
        if !any && list.is_empty() {
            self.arity(node, 1, 0, "at least one KEY=\"value\"");
        }
        pairs
    }

    /// Port arguments (`8080`, `"53/udp"`) made explicit (`8080/tcp`); bad ones reported.
    pub(super) fn ports(&mut self, node: &KdlNode) -> Vec<Spanned<String>> {
        self.check_props(node, &[]);
        let mut ports = Vec::new();
        for entry in self.arity(node, 1, usize::MAX, "one or more ports, 8080 or \"53/udp\"") {
            let text = match entry.value() {
                KdlValue::Integer(i) => i.to_string(),
                KdlValue::String(s) => s.clone(),
                other => {
                    self.error(
                        Code::BadType,
                        format!("a port is an integer or a string, found {}", type_name(other)),
                        entry.span(),
                        "not a port",
                    );
                    continue;
                }
            };
            match normalize_port(&text) {
                Some(port) => ports.push(Spanned::new(port, entry.span())),
                None => {
                    let diag =
                        self.error(Code::BadValue, format!("`{text}` is not a port"), entry.span(), "not a port");
                    diag.help = Some("a port is 1 to 65535, optionally followed by /tcp, /udp or /sctp".into());
                }
            }
        }
        ports
    }

    fn layer(&mut self, node: &KdlNode) -> Option<LayerDecl> {
        self.check_props(node, &[]);
        let name = self.name_arg(node, "a name")?;
        let mut layer = LayerDecl { name, entries: Vec::new(), span: node.span() };
        for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
            let kind = child.name().value();
            if !ENTRY_NODES.contains(&kind) {
                self.unknown_node(child, "in a layer", ENTRY_NODES);
                continue;
            }
            self.no_children(child);
            if kind == "install" {
                layer.entries.extend(self.install_entry(child));
                continue;
            }
            let attrs = self.attributes(child);
            let span = child.span();
            let entry = match kind {
                "copy" => {
                    self.check_props(child, &["to", "mode", "uid", "gid", "step"]);
                    let step = self.string_prop(child, "step", "the step");
                    let list = self.arity(child, 1, 1, "a source path, and to=\"/destination\"");
                    let source = list.first().and_then(|e| self.string(e, "the source path"));
                    let to = self.string_prop(child, "to", "the destination");
                    if prop(child, "to").is_none() {
                        let diag = self.error(
                            Code::MissingProperty,
                            "`copy` needs a destination: to=\"/path\"",
                            child.span(),
                            "no `to`",
                        );
                        diag.help = Some("a destination ending in `/` receives the source under its own name".into());
                    }
                    match (source, to) {
                        (Some(source), Some(to)) => EntryDecl::Copy { step, source, to, attrs, span },
                        _ => continue,
                    }
                }
                "file" => {
                    self.check_props(child, &["mode", "uid", "gid"]);
                    let list = self.arity(child, 2, 2, "a path and its content");
                    if list.len() < 2 {
                        continue;
                    }
                    match (self.string(list[0], "the path"), self.string(list[1], "the content")) {
                        (Some(path), Some(content)) => EntryDecl::File { path, content, attrs, span },
                        _ => continue,
                    }
                }
                "dir" => {
                    self.check_props(child, &["mode", "uid", "gid"]);
                    let list = self.arity(child, 1, 1, "a path");
                    match list.first().and_then(|e| self.string(e, "the path")) {
                        Some(path) => EntryDecl::Dir { path, attrs, span },
                        None => continue,
                    }
                }
                "download" | "extract" => {
                    let props: &[&str] =
                        if kind == "download" { &["to", "mode", "uid", "gid"] } else { &["to", "uid", "gid"] };
                    self.check_props(child, props);
                    let list = self.arity(child, 1, 1, "the name of a declared input");
                    let name = list.first().and_then(|e| self.string(e, "the input's name"));
                    let to = match prop(child, "to") {
                        Some(e) => self.string(e, "the destination"),
                        None if kind == "extract" => Some(Spanned::new("/".to_string(), child.span())),
                        None => {
                            self.error(
                                Code::MissingProperty,
                                "`download` needs a destination: to=\"/path\"",
                                child.span(),
                                "no `to`",
                            );
                            None
                        }
                    };
                    match (name, to) {
                        (Some(name), Some(to)) if kind == "download" => EntryDecl::Download { name, to, attrs, span },
                        (Some(name), Some(to)) => EntryDecl::Extract { name, to, attrs, span },
                        _ => continue,
                    }
                }
                _ => {
                    self.check_props(child, &["target", "uid", "gid"]);
                    let list = self.arity(child, 1, 1, "a path, and target=\"…\"");
                    let path = list.first().and_then(|e| self.string(e, "the path"));
                    if prop(child, "target").is_none() {
                        self.error(Code::MissingProperty, "`symlink` needs target=\"…\"", child.span(), "no `target`");
                    }
                    let target = self.string_prop(child, "target", "the target");
                    match (path, target) {
                        (Some(path), Some(target)) => EntryDecl::Symlink { path, target, attrs, span },
                        _ => continue,
                    }
                }
            };
            if let EntryDecl::Copy { to, .. } = &entry {
                // The root is a destination of `copy`; climbing above it is not.
                if pinfold_image::layer::tree::normalize_image_path(&format!("{}/x", to.value)).is_none() {
                    self.error(
                        Code::BadPath,
                        format!("`{}` climbs out of the image with `..`", to.value),
                        to.span,
                        "not a path inside the image",
                    );
                }
            }
            for path in [entry_path(&entry)].into_iter().flatten() {
                if pinfold_image::layer::tree::normalize_image_path(&path.value).is_none() {
                    self.error(
                        Code::BadPath,
                        format!("`{}` does not name a path inside the image", path.value),
                        path.span,
                        "the root itself, or a path that climbs out with `..`",
                    );
                }
            }
            layer.entries.push(entry);
        }
        Some(layer)
    }

    pub(super) fn sha256_prop(&mut self, node: &KdlNode) -> Option<Spanned<String>> {
        let value = self.string_prop(node, "sha256", "`sha256`")?;
        let hex_ok =
            value.value.len() == 64 && value.value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            let diag = self.error(
                Code::BadDigest,
                format!("`{}` is not a sha256", value.value),
                value.span,
                "not 64 lowercase hex digits",
            );
            diag.help = Some("write the hash as 64 lowercase hex digits, as `sha256sum` prints it".into());
            return None;
        }
        Some(value)
    }

    pub(super) fn url_prop(&mut self, node: &KdlNode) -> Option<Spanned<String>> {
        let url = self.string_prop(node, "url", "`url`")?;
        if !["https://", "http://", "file://"].iter().any(|p| url.value.starts_with(p)) {
            let diag = self.error(
                Code::BadValue,
                format!("`{}` is not an http, https or file URL", url.value),
                url.span,
                "unsupported URL",
            );
            diag.help = Some("downloads are fetched over HTTP(S), or read from file:// URLs".into());
            return None;
        }
        Some(url)
    }

    fn download(&mut self, node: &KdlNode) -> Option<DownloadDecl> {
        let name = self.name_arg(node, "a name")?;
        let mut decl = DownloadDecl { name, sources: Vec::new(), span: node.span() };
        match node.children() {
            None => {
                self.check_props(node, &["url", "sha256"]);
                if prop(node, "url").is_none() {
                    self.error(
                        Code::MissingProperty,
                        format!("download `{}` needs url=\"…\"", decl.name.value),
                        node.span(),
                        "no `url`",
                    );
                }
                if let Some(url) = self.url_prop(node) {
                    let sha256 = self.sha256_prop(node);
                    decl.sources.push(DownloadSource { platform: None, url, sha256, span: node.span() });
                }
            }
            Some(children) => {
                self.check_props(node, &[]);
                for child in children.nodes() {
                    if child.name().value() != "platform" {
                        self.unknown_node(child, "in a download", &["platform"]);
                        continue;
                    }
                    self.check_props(child, &["url", "sha256"]);
                    self.no_children(child);
                    let list = self.arity(child, 1, 1, "a platform such as \"linux/arm64\"");
                    let Some(p) = list.first().and_then(|e| self.string(e, "the platform")) else { continue };
                    let platform = match p.value.parse::<Platform>() {
                        Ok(platform) => Spanned::new(platform, p.span),
                        Err(message) => {
                            self.error(Code::BadPlatform, message, p.span, "not a platform");
                            continue;
                        }
                    };
                    if prop(child, "url").is_none() {
                        self.error(
                            Code::MissingProperty,
                            "a download's platform needs url=\"…\"",
                            child.span(),
                            "no `url`",
                        );
                    }
                    if let Some(url) = self.url_prop(child) {
                        let sha256 = self.sha256_prop(child);
                        decl.sources.push(DownloadSource { platform: Some(platform), url, sha256, span: child.span() });
                    }
                }
            }
        }
        Some(decl)
    }

    /// Reports a path that is not relative and clean (no `..`, not absolute, not empty).
    /// One `inputs` node of a step: repository paths or globs, another step's outputs
    /// (`step=`), a declared download or archive (`download=`/`archive=`, `to=`), or a
    /// package set's locked files (`packages=`, `to=`).
    fn step_inputs(&mut self, child: &KdlNode) -> Vec<StepInput> {
        self.check_props(child, &["step", "download", "archive", "packages", "to"]);
        let from = self.string_prop(child, "step", "the step");
        let download = self.string_prop(child, "download", "the download");
        let archive = self.string_prop(child, "archive", "the archive");
        let packages = self.string_prop(child, "packages", "the package set");
        let to = self.string_prop(child, "to", "the path in the work directory");
        let to = to.filter(|t| self.relative_path(t, "`to`"));
        let named = match (download, archive, packages, &from) {
            (Some(name), None, None, None) => Some(StepInput::Download { name, to: to.clone() }),
            (None, Some(name), None, None) => Some(StepInput::Archive { name, to: to.clone() }),
            (None, None, Some(name), None) => Some(StepInput::Packages { name, to: to.clone() }),
            (None, None, None, _) => None,
            _ => {
                let diag = self.error(
                    Code::ConflictingSource,
                    "an `inputs` node takes one of `step=`, `download=`, `archive=` and `packages=`",
                    child.span(),
                    "more than one source",
                );
                diag.help = Some("write one `inputs` node for each".into());
                return Vec::new();
            }
        };
        if let Some(input) = named {
            // The node names its download or archive, and nothing else.
            self.arity(child, 0, 0, "no paths (`to=` says where it goes)");
            return vec![input];
        }
        if let Some(t) = &to {
            self.error(Code::UnknownProperty, "`to=` goes with `download=` or `archive=`", t.span, "nothing to place");
        }
        let min = if from.is_some() { 0 } else { 1 };
        let list = self.arity(child, min, usize::MAX, "one or more paths or globs");
        let paths: Vec<Spanned<String>> =
            self.strings(&list, "an input path").into_iter().filter(|p| self.relative_path(p, "the input")).collect();
        match from {
            Some(step_name) => vec![StepInput::Step { step: step_name, paths }],
            None => paths.into_iter().map(StepInput::Files).collect(),
        }
    }

    pub(super) fn relative_path(&mut self, path: &Spanned<String>, what: &str) -> bool {
        let p = std::path::Path::new(&path.value);
        let clean = !path.value.is_empty()
            && !p.is_absolute()
            && p.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
        if !clean {
            let diag = self.error(
                Code::BadPath,
                format!("{what} `{}` must be a relative path without `..`", path.value),
                path.span,
                "not a clean relative path",
            );
            diag.help =
                Some("step paths are relative to the work directory (outputs) or the build file (inputs)".into());
        }
        clean
    }

    fn step(&mut self, node: &KdlNode) -> Option<StepDecl> {
        self.check_props(node, &[]);
        let name = self.name_arg(node, "a name")?;
        let mut step = StepDecl {
            name,
            image: None,
            inputs: Vec::new(),
            run: Vec::new(),
            outputs: Vec::new(),
            env: Vec::new(),
            workdir: None,
            platform: None,
            build_platform: None,
            span: node.span(),
        };
        let Some(children) = node.children() else {
            let diag = self.error(
                Code::EmptyStep,
                format!("step `{}` has no block", step.name.value),
                node.span(),
                "no block",
            );
            diag.help = Some("add a block with `image`, `run` and `outputs`".into());
            return Some(step);
        };
        for child in children.nodes() {
            let kind = child.name().value();
            if kind != "env" {
                self.no_children(child);
            }
            match kind {
                "image" => {
                    self.check_props(child, &[]);
                    let list = self.arity(child, 1, 1, "the name of a base or an image");
                    step.image = list.first().and_then(|e| self.string(e, "the image"));
                }
                "inputs" => step.inputs.extend(self.step_inputs(child)),
                "run" => {
                    self.check_props(child, &[]);
                    let list = self.arity(child, 1, usize::MAX, "the program and its arguments");
                    let values = self.strings(&list, "an argument");
                    if values.len() == list.len() && !list.is_empty() {
                        step.run.push(Spanned::new(values.into_iter().map(|s| s.value).collect(), child.span()));
                    }
                }
                "outputs" => {
                    self.check_props(child, &[]);
                    let list = self.arity(child, 1, usize::MAX, "one or more paths");
                    for p in self.strings(&list, "an output path") {
                        if self.relative_path(&p, "the output") {
                            step.outputs.push(p);
                        }
                    }
                }
                "env" | "workdir" => {
                    let mut config = ConfigDecl::default();
                    self.config_node(child, &mut config);
                    step.env.extend(config.env);
                    if let Some(w) = config.workdir {
                        if w.value == "/" || !pinfold_image::layer::tree::is_clean_absolute(&w.value) {
                            self.error(
                                Code::BadValue,
                                "a step's `workdir` must be a clean absolute path other than `/`",
                                w.span,
                                "not usable as the work directory",
                            );
                        }
                        step.workdir = Some(w);
                    }
                }
                kind @ ("platform" | "build-platform") => {
                    self.check_props(child, &[]);
                    let list = self.arity(child, 1, 1, "a platform such as \"linux/amd64\"");
                    if let Some(s) = list.first().and_then(|e| self.string(e, "a platform")) {
                        match s.value.parse::<Platform>() {
                            Ok(p) if kind == "platform" => step.platform = Some(Spanned::new(p, s.span)),
                            Ok(p) => step.build_platform = Some(Spanned::new(p, s.span)),
                            Err(message) => {
                                self.error(Code::BadPlatform, message, s.span, "not a known platform");
                            }
                        }
                    }
                }
                "network" => {
                    let diag = self.error(
                        Code::StepNetwork,
                        "a step never has the network",
                        name_span(child),
                        "not supported",
                    );
                    diag.help = Some(
                        "declare what the step fetches as a pinned `download` or `archive` and pass it in with `inputs`"
                            .into(),
                    );
                }
                _ => self.unknown_node(child, "in a step", STEP_CHILDREN),
            }
        }
        if step.image.is_none() {
            let diag = self.error(
                Code::MissingNode,
                format!("step `{}` names no image to run in", step.name.value),
                name_span(node),
                "no `image`",
            );
            diag.help = Some("add `image NAME`, naming a `base` or an `image` of this file".into());
        }
        if step.run.is_empty() {
            let diag = self.error(
                Code::MissingNode,
                format!("step `{}` has no command", step.name.value),
                name_span(node),
                "no `run`",
            );
            diag.help = Some("add `run \"sh\" \"-c\" \"…\"`".into());
        }
        Some(step)
    }

    fn archive(&mut self, node: &KdlNode) -> Option<ArchiveDecl> {
        self.check_props(node, &["path", "url", "sha256"]);
        self.no_children(node);
        let name = self.name_arg(node, "a name")?;
        let path = self.string_prop(node, "path", "`path`");
        let url = if prop(node, "url").is_some() { self.url_prop(node) } else { None };
        if prop(node, "path").is_some() == prop(node, "url").is_some() {
            let diag = self.error(
                Code::MissingSource,
                format!("archive `{}` needs either path=\"…\" or url=\"…\"", name.value),
                node.span(),
                "one source",
            );
            diag.help =
                Some("path is a tarball below the build file; url is fetched and checked against sha256".into());
        }
        let sha256 = self.sha256_prop(node);
        Some(ArchiveDecl { name, path, url, sha256, span: node.span() })
    }

    /// `mode=0o755`: octal only, in layers and in tests alike.
    pub(super) fn mode(&mut self, entry: &KdlEntry) -> Option<Spanned<u32>> {
        let mode = self.integer(entry, "`mode`", 0o7777)?;
        // `mode=755` is a valid integer (0o1363), and almost never what was meant:
        // modes must be written in octal so that the file says what it means.
        let span = entry.span();
        let written = self.source.text.get(span.offset()..span.offset() + span.len()).unwrap_or_default();
        let value = written.rsplit('=').next().unwrap_or_default().trim();
        if !value.starts_with("0o") && value != "0" {
            let diag =
                self.error(Code::BadValue, format!("`mode={value}` is not written in octal"), span, "a decimal number");
            diag.help = Some(format!("modes are octal: write mode=0o{value}"));
            return None;
        }
        Some(Spanned::new(mode.value as u32, mode.span))
    }

    fn attributes(&mut self, node: &KdlNode) -> Attributes {
        Attributes {
            mode: prop(node, "mode").and_then(|e| self.mode(e)),
            // uid/gid fit the 7 octal digits of a ustar header; larger ids would need
            // extensions that some unpackers mishandle.
            uid: prop(node, "uid").and_then(|e| self.integer(e, "`uid`", 0o7777777)),
            gid: prop(node, "gid").and_then(|e| self.integer(e, "`gid`", 0o7777777)),
        }
    }
}

fn entry_path(entry: &EntryDecl) -> Option<&Spanned<String>> {
    match entry {
        // `copy dir to="/"` fills the image's root, as Docker's `COPY . /` does.
        EntryDecl::Extract { .. } | EntryDecl::Copy { .. } | EntryDecl::Install { .. } => None,
        EntryDecl::Download { to, .. } => Some(to),
        EntryDecl::File { path, .. } | EntryDecl::Dir { path, .. } | EntryDecl::Symlink { path, .. } => Some(path),
    }
}

fn placeholder(what: &str) -> String {
    format!("<{what}>")
}

/// `8080` → `8080/tcp`; `53/udp` stays; anything else is `None`.
pub(super) fn normalize_port(text: &str) -> Option<String> {
    let (port, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let number: u32 = port.parse().ok()?;
    if !(1..=65535).contains(&number) || !["tcp", "udp", "sctp"].contains(&proto) {
        return None;
    }
    Some(format!("{number}/{proto}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> (Option<BuildFile>, Diagnostics) {
        let mut diags = Diagnostics::default();
        let source = Source::new("pinfold.kdl", text);
        (parse(&source, &mut diags), diags)
    }

    #[test]
    fn nesting_hidden_behind_an_unclosed_comment_or_string_is_still_counted() {
        let deep = "a {\n".repeat(100);
        for prefix in ["pinfold /* open\n", "x \"open\n", "x #\"open\n", ""] {
            // Also a string opened and not closed on each line (fuzz finding).
            let lines = "x/sparc\" {\n".repeat(100);
            assert!(nesting_over(format!("{prefix}{lines}").as_bytes(), MAX_NESTING).is_some(), "{prefix:?}");
            assert!(nesting_over(format!("{prefix}{deep}").as_bytes(), MAX_NESTING).is_some(), "{prefix:?}");
        }
        // Closed ones still hide their braces.
        let hidden = format!("/* {} */ x \"{}\" y #\"{}\"#\n", "{".repeat(100), "{".repeat(100), "{".repeat(100));
        assert_eq!(nesting_over(hidden.as_bytes(), MAX_NESTING), None);
    }

    #[test]
    fn a_megabyte_of_strings_left_open_is_refused_before_the_kdl_parser() {
        for line in ["\"\n", "x\"\n", "a \"b\" \"c\n"] {
            let text = line.repeat(MAX_SOURCE_BYTES / line.len() - 1);
            let start = std::time::Instant::now();
            let (file, diags) = parse_str(&text);
            assert!(file.is_none());
            let shown = format!("{diags:?}");
            assert!(shown.contains("strings are left open on their lines"), "{line:?}: {shown}");
            assert!(start.elapsed() < std::time::Duration::from_secs(2), "{line:?}: {:?}", start.elapsed());
        }
        // A few are syntax errors of the KDL parser, as before; whitespace escapes and
        // multi-line strings are not open strings.
        let few = format!("pinfold 1\n{}", "x \"open\n".repeat(MAX_OPEN_STRINGS));
        assert!(!format!("{:?}", parse_str(&few).1).contains("left open on their lines"));
        let fine = format!("{}x \"\"\"\n{{\n\"\"\"\n", "label a=\"one \\\n   two\"\n".repeat(200));
        assert_eq!(scan(fine.as_bytes(), MAX_NESTING, MAX_OPEN_STRINGS), None);
    }

    #[test]
    fn minimal_image_parses_without_diagnostics() {
        let (file, diags) = parse_str(
            "pinfold 1\nimage hello {\n from scratch\n layer app {\n file \"/etc/motd\" \"hi\\n\" mode=0o600\n }\n}\n",
        );
        assert!(diags.is_empty(), "{}", diags.render_plain());
        let file = file.unwrap();
        assert_eq!(file.images[0].layers[0].entries.len(), 1);
        match &file.images[0].layers[0].entries[0] {
            EntryDecl::File { attrs, .. } => assert_eq!(attrs.mode.as_ref().unwrap().value, 0o600),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_step_parses_with_its_inputs_commands_and_outputs() {
        let (file, diags) = parse_str(
            "pinfold 1\nstep gen {\n image tools\n inputs \"src/*.c\" \"Makefile\"\n inputs step=other \"out/a\"\n \
             run \"make\"\n run \"strip\" \"out/app\"\n outputs \"out/app\"\n env CC=\"gcc\"\n workdir \"/src\"\n \
             platform \"linux/arm64\"\n build-platform \"linux/amd64\"\n}\nimage app {\n from scratch\n layer l { copy step=gen \"out/app\" to=\"/app\" }\n}\n",
        );
        assert!(diags.is_empty(), "{}", diags.render_plain());
        let file = file.unwrap();
        let step = &file.steps[0];
        assert_eq!(step.image.as_ref().unwrap().value, "tools");
        assert_eq!(step.inputs.len(), 3);
        assert!(
            matches!(&step.inputs[2], StepInput::Step { step, paths } if step.value == "other" && paths.len() == 1)
        );
        assert_eq!(step.run.len(), 2);
        assert_eq!(step.run[1].value, ["strip", "out/app"]);
        assert_eq!(step.outputs[0].value, "out/app");
        assert_eq!(step.env[0].0.value, "CC");
        assert_eq!(step.workdir.as_ref().unwrap().value, "/src");
        assert_eq!(step.platform.as_ref().unwrap().value.architecture, "arm64");
        assert_eq!(step.build_platform.as_ref().unwrap().value.architecture, "amd64");
        match &file.images[0].layers[0].entries[0] {
            EntryDecl::Copy { step: Some(s), .. } => assert_eq!(s.value, "gen"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_step_without_image_or_run_or_with_bad_paths_is_an_error() {
        let (_, diags) = parse_str(
            "pinfold 1\nstep s {\n inputs \"../outside\"\n outputs \"/abs\"\n network #true\n workdir \"/\"\n}\n",
        );
        let codes: Vec<&str> = diags.0.iter().map(|d| d.code.as_str()).collect();
        for code in [Code::BadPath, Code::StepNetwork, Code::BadValue, Code::MissingNode] {
            assert!(codes.contains(&code.as_str()), "{code} not in {codes:?}");
        }
        assert_eq!(codes.iter().filter(|c| **c == Code::MissingNode).count(), 2, "{codes:?}");
        assert_eq!(codes.iter().filter(|c| **c == Code::BadPath).count(), 2, "{codes:?}");
    }

    #[test]
    fn every_error_of_a_file_is_reported_at_once() {
        let (_, diags) = parse_str("pinfold 1\nimgae x {}\nimage y {\n from scratch\n workdri \"/\"\n layer l { dir \"/x\" mode=\"0o755\" }\n}\n");
        let codes: Vec<&str> = diags.0.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, [Code::UnknownNode, Code::UnknownNode, Code::BadType]);
        assert!(diags.render_plain().contains("did you mean `image`?"));
        assert!(diags.render_plain().contains("did you mean `workdir`?"));
    }

    #[test]
    fn ports_get_an_explicit_protocol() {
        assert_eq!(normalize_port("8080").as_deref(), Some("8080/tcp"));
        assert_eq!(normalize_port("53/udp").as_deref(), Some("53/udp"));
        assert_eq!(normalize_port("0"), None);
        assert_eq!(normalize_port("80/http"), None);
    }
}
