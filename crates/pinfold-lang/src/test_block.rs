//! `test NAME { … }` blocks of an image: what `pinfold test` checks in the built image.
//! They live in the build file beside the image they describe, so that an image and
//! the proof that it works are reviewed and versioned together.
//!
//! A test holds checks of three kinds, freely mixed: a command run in the image
//! (`run`, with `expect-exit`, `expect-stdout`, `expect-stderr`), files of the image
//! (`file`, `absent`, `symlink`), and its configuration (`expect-env`, `expect-cmd`, …).
//! The shape of every node is checked here, with the same diagnostics (codes, spans,
//! help) as the rest of the language; what a check means is in `spec/tests.md`, and
//! running them is [`crate::run::check`].

use super::parse::{args, prop, Cx};
use super::syntax::Spanned;
use crate::diag::Code;
use crate::diag::{Diagnostics, Source};
use kdl::{KdlEntry, KdlNode};
use miette::SourceSpan;

/// One `test NAME { … }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDecl {
    pub name: Spanned<String>,
    /// The `run` node and what belongs to it (`env`, `stdin`).
    pub command: Option<CommandDecl>,
    pub checks: Vec<CheckDecl>,
    /// `device "VENDOR/CLASS=NAME"…`: host devices (CDI) the test's command needs;
    /// `pinfold test` fails (exit 2) when the host has no CDI spec for one.
    pub devices: Vec<Spanned<String>>,
    pub span: SourceSpan,
}

/// `run ARGS…`: the full command line, replacing the image's entrypoint and cmd; with
/// no arguments, the image's own entrypoint and cmd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandDecl {
    pub args: Vec<Spanned<String>>,
    pub env: Vec<(Spanned<String>, Spanned<String>)>,
    pub stdin: Option<Spanned<String>>,
    /// Seconds; the default is [`DEFAULT_TIMEOUT_SECS`].
    pub timeout: Option<Spanned<u64>>,
    pub span: SourceSpan,
}

/// A command that runs longer is stopped and its test fails.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// How an output or a file's content is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    Equals(String),
    Contains(String),
    /// A regular expression (Rust `regex` syntax), searched anywhere in the text;
    /// checked to compile when the build file is read.
    Matches(String),
}

impl Matcher {
    pub fn describe(&self) -> String {
        match self {
            Matcher::Equals(s) => format!("equals {s:?}"),
            Matcher::Contains(s) => format!("contains {s:?}"),
            Matcher::Matches(s) => format!("matches /{s}/"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckDecl {
    Exit {
        code: Spanned<u64>,
        span: SourceSpan,
    },
    Output {
        stream: Stream,
        matcher: Matcher,
        span: SourceSpan,
    },
    /// `file PATH`: the path exists (symlinks followed, inside the image); the
    /// properties that are given must match.
    File {
        path: Spanned<String>,
        mode: Option<Spanned<u32>>,
        uid: Option<Spanned<u64>>,
        gid: Option<Spanned<u64>>,
        sha256: Option<Spanned<String>>,
        matches: Option<Spanned<String>>,
        span: SourceSpan,
    },
    Absent {
        path: Spanned<String>,
        span: SourceSpan,
    },
    Symlink {
        path: Spanned<String>,
        target: Spanned<String>,
        span: SourceSpan,
    },
    Env {
        key: Spanned<String>,
        value: Spanned<String>,
        span: SourceSpan,
    },
    /// An empty list expects no entrypoint (or cmd) at all.
    Entrypoint {
        args: Vec<String>,
        span: SourceSpan,
    },
    Cmd {
        args: Vec<String>,
        span: SourceSpan,
    },
    Workdir {
        path: Spanned<String>,
        span: SourceSpan,
    },
    User {
        user: Spanned<String>,
        span: SourceSpan,
    },
    Label {
        key: Spanned<String>,
        value: Spanned<String>,
        span: SourceSpan,
    },
    /// Ports with their protocol made explicit (`8080` → `8080/tcp`).
    Exposed {
        ports: Vec<Spanned<String>>,
        span: SourceSpan,
    },
}

impl CheckDecl {
    /// Whether the check needs the command of its test to have run.
    pub fn needs_command(&self) -> bool {
        matches!(self, CheckDecl::Exit { .. } | CheckDecl::Output { .. })
    }
}

const TEST_NODES: &[&str] = &[
    "run",
    "env",
    "stdin",
    "expect-exit",
    "expect-stdout",
    "expect-stderr",
    "file",
    "absent",
    "symlink",
    "expect-env",
    "expect-entrypoint",
    "expect-cmd",
    "expect-workdir",
    "expect-user",
    "expect-label",
    "expect-exposed",
    "device",
];

/// Parses one `test` node of an image. Problems go into `diags` at their spans.
pub fn parse_test(source: &Source, diags: &mut Diagnostics, node: &KdlNode) -> Option<TestDecl> {
    let mut cx = Cx { source, diags };
    cx.test(node)
}

impl Cx<'_> {
    /// All of `entries` as strings, or `None` when any is not one (each is reported).
    fn all_strings(&mut self, entries: &[&KdlEntry], what: &str) -> Option<Vec<Spanned<String>>> {
        let values = self.strings(entries, what);
        (values.len() == entries.len()).then_some(values)
    }

    fn regex(&mut self, value: &Spanned<String>) -> bool {
        match regex::Regex::new(&value.value) {
            Ok(_) => true,
            Err(e) => {
                let diag = self.error(
                    Code::BadRegex,
                    format!("`{}` is not a regular expression", value.value),
                    value.span,
                    "does not compile",
                );
                diag.help =
                    Some(e.to_string().lines().last().unwrap_or("see the `regex` crate's syntax").trim().to_string());
                false
            }
        }
    }

    fn image_path(&mut self, node: &KdlNode) -> Option<Spanned<String>> {
        let list = self.arity(node, 1, 1, "an absolute path in the image");
        let path = self.string(list.first()?, "the path")?;
        if !path.value.starts_with('/') || pinfold_image::layer::tree::normalize_image_path(&path.value).is_none() {
            let diag = self.error(
                Code::BadPath,
                format!("`{}` is not an absolute path inside the image", path.value),
                path.span,
                "not an absolute path below `/`",
            );
            diag.help = Some("write paths in the image as they are seen inside it, e.g. \"/etc/motd\"".into());
            return None;
        }
        Some(path)
    }

    fn test(&mut self, node: &KdlNode) -> Option<TestDecl> {
        self.check_props(node, &[]);
        let list = self.arity(node, 1, 1, "a name");
        let name = self.string(list.first()?, "a test's name")?;
        self.test_name(&name);
        let mut test = TestDecl { name, command: None, checks: Vec::new(), devices: Vec::new(), span: node.span() };
        let Some(children) = node.children().filter(|c| !c.nodes().is_empty()) else {
            let diag = self.error(
                Code::EmptyTest,
                format!("test `{}` checks nothing", test.name.value),
                node.span(),
                "no checks in this test",
            );
            diag.help = Some("add checks, e.g. `run \"/bin/sh\" \"-c\" \"true\"` or `file \"/etc/motd\"`".into());
            return Some(test);
        };
        let mut command = CommandParts::default();
        for child in children.nodes() {
            let kind = child.name().value();
            if !TEST_NODES.contains(&kind) {
                self.unknown_node_among(child, "in a test", TEST_NODES, &[]);
                continue;
            }
            self.no_children(child);
            match kind {
                "run" => self.run_node(child, &mut command),
                "env" => command.env.extend(self.env_properties(child, "write `env GREETING=\"hi\"`")),
                "stdin" => self.stdin_node(child, &mut command),
                "device" => test.devices.extend(self.device_node(child)),
                "expect-env" => test.checks.extend(self.expect_env(child)),
                _ => test.checks.extend(self.check(kind, child)),
            }
        }
        self.attach_command(&mut test, command);
        Some(test)
    }

    fn test_name(&mut self, name: &Spanned<String>) {
        if name.value.is_empty() || !name.value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            let diag = self.error(
                Code::BadName,
                format!("`{}` is not a valid name", name.value),
                name.span,
                "letters, digits, `-`, `_` and `.` only",
            );
            diag.help = Some("test names appear in reports and junit files: keep them simple".into());
        }
    }

    /// `run ARGS… [timeout=SECONDS]`, once per test.
    fn run_node(&mut self, child: &KdlNode, command: &mut CommandParts) {
        self.check_props(child, &["timeout"]);
        if let Some(first) = command.run_span {
            let diag = self.error(Code::DuplicateNode, "a test runs one command", child.name().span(), "second `run`");
            diag.related_spans.push((first, "first `run`".into()));
            diag.help = Some("write a second test for the second command".into());
            return;
        }
        command.run_span = Some(child.name().span());
        let list = args(child);
        let Some(values) = self.all_strings(&list, "an argument") else { return };
        let timeout = match prop(child, "timeout") {
            Some(e) => match self.integer(e, "`timeout` (seconds)", 7 * 24 * 3600) {
                Some(t) if t.value == 0 => {
                    self.error(Code::BadValue, "`timeout` is at least 1 second", t.span, "zero");
                    None
                }
                other => other,
            },
            None => None,
        };
        command.run = Some(CommandDecl { args: values, env: Vec::new(), stdin: None, timeout, span: child.span() });
    }

    /// `device "VENDOR/CLASS=NAME"…`: CDI device names, checked for their shape here
    /// (whether the host has them is known only when the test runs).
    fn device_node(&mut self, child: &KdlNode) -> Vec<Spanned<String>> {
        self.check_props(child, &[]);
        let list = self.arity(child, 1, usize::MAX, "a CDI device name, VENDOR/CLASS=NAME");
        let values = self.strings(&list, "a device name");
        values
            .into_iter()
            .filter(|d| {
                let ok = d.value.split_once('=').is_some_and(|(kind, name)| {
                    !name.is_empty() && kind.split_once('/').is_some_and(|(v, c)| !v.is_empty() && !c.is_empty())
                });
                if !ok {
                    let diag = self.error(
                        Code::BadValue,
                        format!("`{}` is not a CDI device name", d.value),
                        d.span,
                        "not VENDOR/CLASS=NAME",
                    );
                    diag.help = Some("name a device of the host's CDI specs, e.g. \"nvidia.com/gpu=all\"".into());
                }
                ok
            })
            .collect()
    }

    /// `stdin "TEXT"`: the last one given counts, and a second one is reported.
    fn stdin_node(&mut self, child: &KdlNode, command: &mut CommandParts) {
        self.check_props(child, &[]);
        let list = self.arity(child, 1, 1, "the text given on standard input");
        let Some(text) = list.first().and_then(|e| self.string(e, "stdin")) else { return };
        if let Some((_, first)) = &command.stdin {
            let first = *first;
            let diag = self.error(
                Code::DuplicateNode,
                "`stdin` is given more than once",
                child.name().span(),
                "given again here",
            );
            diag.related_spans.push((first, "first given here".into()));
        }
        command.stdin = Some((text, child.name().span()));
    }

    /// The check of one node of the kinds that make one check (all but `expect-env`),
    /// or `None` when it has errors (reported).
    fn check(&mut self, kind: &str, child: &KdlNode) -> Option<CheckDecl> {
        let span = child.span();
        match kind {
            "expect-exit" => {
                self.check_props(child, &[]);
                let list = self.arity(child, 1, 1, "an exit code, 0 to 255");
                let code = list.first().and_then(|e| self.integer(e, "the exit code", 255))?;
                Some(CheckDecl::Exit { code, span })
            }
            "expect-stdout" | "expect-stderr" => self.expect_output(kind, child),
            "file" => self.file_check(child),
            "absent" => {
                self.check_props(child, &[]);
                Some(CheckDecl::Absent { path: self.image_path(child)?, span })
            }
            "symlink" => self.symlink_check(child),
            "expect-entrypoint" | "expect-cmd" => {
                self.check_props(child, &[]);
                let list = args(child);
                let args = self.all_strings(&list, "an argument")?.into_iter().map(|s| s.value).collect();
                Some(if kind == "expect-cmd" {
                    CheckDecl::Cmd { args, span }
                } else {
                    CheckDecl::Entrypoint { args, span }
                })
            }
            "expect-workdir" | "expect-user" => {
                self.check_props(child, &[]);
                let list = self.arity(child, 1, 1, "one string");
                let value = list.first().and_then(|e| self.string(e, kind))?;
                Some(if kind == "expect-workdir" {
                    CheckDecl::Workdir { path: value, span }
                } else {
                    CheckDecl::User { user: value, span }
                })
            }
            "expect-label" => {
                self.check_props(child, &[]);
                let list = self.arity(child, 2, 2, "a key and a value");
                if list.len() != 2 {
                    return None;
                }
                let (key, value) = (self.string(list[0], "the key"), self.string(list[1], "the value"));
                Some(CheckDecl::Label { key: key?, value: value?, span })
            }
            _ => {
                // expect-exposed
                let ports = self.ports(child);
                (!ports.is_empty()).then_some(CheckDecl::Exposed { ports, span })
            }
        }
    }

    /// `expect-stdout` / `expect-stderr` with exactly one of equals=, contains=, matches=.
    fn expect_output(&mut self, kind: &str, child: &KdlNode) -> Option<CheckDecl> {
        let span = child.span();
        self.check_props(child, &["equals", "contains", "matches"]);
        self.arity(child, 0, 0, "one of equals=, contains=, matches=");
        let stream = if kind == "expect-stdout" { Stream::Stdout } else { Stream::Stderr };
        let given: Vec<&KdlEntry> = ["equals", "contains", "matches"].iter().filter_map(|k| prop(child, k)).collect();
        if given.len() != 1 {
            let diag = self.error(
                Code::MissingProperty,
                format!("`{kind}` takes exactly one of equals=, contains=, matches="),
                span,
                format!("{} given", given.len()),
            );
            diag.help = Some(format!("write `{kind} contains=\"…\"`; several conditions are several nodes"));
            return None;
        }
        let entry = given[0];
        let value = self.string(entry, "the expected text")?;
        let matcher = match entry.name().map(|n| n.value()) {
            Some("equals") => Matcher::Equals(value.value),
            Some("contains") => Matcher::Contains(value.value),
            _ => {
                if !self.regex(&value) {
                    return None;
                }
                Matcher::Matches(value.value)
            }
        };
        Some(CheckDecl::Output { stream, matcher, span })
    }

    /// `file PATH [mode=… uid=… gid=… sha256=… matches=…]`.
    fn file_check(&mut self, child: &KdlNode) -> Option<CheckDecl> {
        self.check_props(child, &["mode", "uid", "gid", "sha256", "matches"]);
        let path = self.image_path(child)?;
        let mode = prop(child, "mode").and_then(|e| self.mode(e));
        let uid = prop(child, "uid").and_then(|e| self.integer(e, "`uid`", u32::MAX as i128));
        let gid = prop(child, "gid").and_then(|e| self.integer(e, "`gid`", u32::MAX as i128));
        let sha256 = self.sha256_prop(child);
        let matches = self.string_prop(child, "matches", "`matches`").filter(|m| self.regex(m));
        Some(CheckDecl::File { path, mode, uid, gid, sha256, matches, span: child.span() })
    }

    /// `symlink PATH target="…"`.
    fn symlink_check(&mut self, child: &KdlNode) -> Option<CheckDecl> {
        let span = child.span();
        self.check_props(child, &["target"]);
        let path = self.image_path(child);
        if prop(child, "target").is_none() {
            self.error(Code::MissingProperty, "`symlink` needs target=\"…\"", span, "no `target`");
        }
        let target = self.string_prop(child, "target", "the target");
        Some(CheckDecl::Symlink { path: path?, target: target?, span })
    }

    /// `expect-env KEY="value"…`: one check per property.
    fn expect_env(&mut self, child: &KdlNode) -> Vec<CheckDecl> {
        let span = child.span();
        if let Some(first) = args(child).first() {
            let diag = self.error(
                Code::BadType,
                "`expect-env` takes properties, KEY=\"value\"",
                first.span(),
                "not a property",
            );
            diag.help = Some("write `expect-env PATH=\"/usr/bin:/bin\"`".into());
        }
        let mut checks = Vec::new();
        let mut any = false;
        for entry in child.entries() {
            let Some(key) = entry.name() else { continue };
            any = true;
            if let Some(value) = self.string(entry, "an environment value") {
                checks.push(CheckDecl::Env { key: Spanned::new(key.value().to_string(), key.span()), value, span });
            }
        }
        if !any && args(child).is_empty() {
            self.arity(child, 1, 0, "at least one KEY=\"value\"");
        }
        checks
    }

    /// Gives the test's command its `env` and `stdin`; without a command, reports
    /// what needs one.
    fn attach_command(&mut self, test: &mut TestDecl, parts: CommandParts) {
        let CommandParts { run, env, stdin, .. } = parts;
        if let Some(mut command) = run {
            command.env = env;
            command.stdin = stdin.map(|(s, _)| s);
            test.command = Some(command);
            return;
        }
        let orphan = test.checks.iter().find(|c| c.needs_command()).map(check_span);
        let stray_env = env.first().map(|(k, _)| k.span);
        for (span, what) in [
            (orphan, "an expectation of a command"),
            (stray_env, "`env`"),
            (stdin.as_ref().map(|(_, s)| *s), "`stdin`"),
        ] {
            if let Some(span) = span {
                let diag = self.error(
                    Code::MissingRun,
                    format!("{what} in test `{}`, which runs no command", test.name.value),
                    span,
                    "needs a `run` in the same test",
                );
                diag.help =
                    Some("add `run \"PROGRAM\" \"ARG\"…` (or a bare `run` for the image's entrypoint and cmd)".into());
            }
        }
    }
}

/// What a test's nodes say of its command, gathered in any order.
#[derive(Default)]
struct CommandParts {
    run: Option<CommandDecl>,
    /// Where the first `run` is, even when it has errors.
    run_span: Option<SourceSpan>,
    env: Vec<(Spanned<String>, Spanned<String>)>,
    /// The text, and where it was given.
    stdin: Option<(Spanned<String>, SourceSpan)>,
}

fn check_span(check: &CheckDecl) -> SourceSpan {
    match check {
        CheckDecl::Exit { span, .. }
        | CheckDecl::Output { span, .. }
        | CheckDecl::File { span, .. }
        | CheckDecl::Absent { span, .. }
        | CheckDecl::Symlink { span, .. }
        | CheckDecl::Env { span, .. }
        | CheckDecl::Entrypoint { span, .. }
        | CheckDecl::Cmd { span, .. }
        | CheckDecl::Workdir { span, .. }
        | CheckDecl::User { span, .. }
        | CheckDecl::Label { span, .. }
        | CheckDecl::Exposed { span, .. } => *span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Option<TestDecl>, Diagnostics) {
        let source = Source::new("pinfold.kdl", text);
        let doc = kdl::KdlDocument::parse(text).expect("valid KDL");
        let mut diags = Diagnostics::default();
        let test = parse_test(&source, &mut diags, &doc.nodes()[0]);
        (test, diags)
    }

    #[test]
    fn a_test_with_every_kind_of_check_parses() {
        let (test, diags) = parse(
            r#"test all {
                run "/bin/sh" "-c" "cat" timeout=5
                env GREETING="hi"
                stdin "hello"
                expect-exit 0
                expect-stdout equals="hello"
                expect-stderr matches="^$"
                file "/bin/busybox" mode=0o755 uid=0 gid=0
                absent "/root/.cache"
                symlink "/bin/sh" target="busybox"
                expect-env PATH="/bin"
                expect-entrypoint "/bin/sh" "-c"
                expect-cmd
                expect-workdir "/app"
                expect-user "1000:1000"
                expect-label "a" "b"
                expect-exposed 8080 "53/udp"
            }"#,
        );
        assert!(diags.is_empty(), "{}", diags.render_plain());
        let test = test.unwrap();
        let command = test.command.unwrap();
        assert_eq!(command.args.len(), 3);
        assert_eq!(command.timeout.unwrap().value, 5);
        assert_eq!(command.stdin.unwrap().value, "hello");
        assert_eq!(command.env[0].1.value, "hi");
        assert_eq!(test.checks.len(), 13);
        assert!(test.checks.contains(&CheckDecl::Cmd { args: vec![], span: check_span(&test.checks[8]) }));
        match &test.checks[12] {
            CheckDecl::Exposed { ports, .. } => {
                assert_eq!(ports.iter().map(|p| p.value.as_str()).collect::<Vec<_>>(), ["8080/tcp", "53/udp"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_are_reported_at_their_spans() {
        let (_, diags) = parse(
            r#"test bad {
                expect-exit 300
                expect-stderr contains="x"
                expect-stdout contains="a" equals="b"
                file "relative" mode=755
                expect-stdout matches="("
                frobnicate
            }"#,
        );
        let codes: Vec<&str> = diags.0.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(
            codes,
            [Code::BadValue, Code::MissingProperty, Code::BadPath, Code::BadRegex, Code::UnknownNode, Code::MissingRun],
            "{}",
            diags.render_plain()
        );
        assert!(diags.0.iter().all(|d| d.span.is_some()));
    }

    #[test]
    fn a_mode_must_be_octal_and_a_test_must_check_something() {
        let (_, diags) = parse("test t { file \"/x\" mode=755\n}");
        assert!(diags.render_plain().contains("mode=0o755"), "{}", diags.render_plain());
        let (_, diags) = parse("test t {}");
        assert_eq!(diags.0[0].code, Code::EmptyTest);
    }
}
