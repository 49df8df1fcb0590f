//! Just enough of a POSIX shell reader to find the commands in a `RUN` line or a
//! build-file `run`: quotes, escapes, line continuations, `&&`/`||`/`;`/`|`, comments,
//! redirections, `$(…)` and heredocs. It does not expand anything: the RUN rules look
//! at the words a person wrote, and every word keeps its span in the file so that a
//! finding points at the package that is not pinned rather than at the whole command.
//!
//! Commands inside commands are read too, each word still at its place in the file:
//! command substitutions (`$(…)`, backticks), `sh -c '…'`/`bash -lc "…"`/`su -c`, and
//! the commands behind wrappers (`sudo`, `env`, `xargs`, `timeout`, `gosu`, `conda
//! run`, `VAR=… cmd`). The depth is bounded, so hostile nesting cannot recurse deeply.
//!
//! Being a reader and not a shell, it never fails: unbalanced quotes run to the end
//! of the text, which is what a shell would complain about, not what a linter should.

use super::mapped::MappedText;
use std::ops::Range;

/// One word of a command, with quotes and escapes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// Where the word is in the file, quotes included.
    pub span: Range<usize>,
    /// The text mapped to the file byte for byte, for a word that may hold code of its
    /// own (one with a space or a parenthesis: `sh -c '…'`, `R -e "…"`) and that was
    /// written without escapes, so that findings inside it point at their place.
    pub inner: Option<MappedText>,
}

impl Word {
    /// The word's text mapped to the file: exactly when it can be, else every
    /// position maps to the whole word.
    pub fn mapped(&self) -> MappedText {
        self.inner.clone().unwrap_or_else(|| MappedText::coarse(self.text.clone(), self.span.clone()))
    }
}

/// How deep commands inside commands are read.
const MAX_DEPTH: usize = 6;

/// One simple command: its words (redirections taken out) and where it sits in a
/// pipeline.
#[derive(Debug, Clone, Default)]
pub struct Command {
    pub words: Vec<Word>,
    /// Commands joined by `|` share a pipeline number.
    pub pipeline: usize,
    /// The target of `>`, `>>` or `&>` (standard output saved to a file).
    pub stdout_to: Option<Word>,
    /// The file of `< FILE` (standard input read from a file).
    pub stdin_from: Option<Word>,
}

/// All commands of one shell text, in order.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub commands: Vec<Command>,
}

/// Words that start a compound command or negate one: the command proper follows.
const KEYWORDS: &[&str] = &["if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time"];

/// Commands that run the rest of their arguments as a command.
const WRAPPERS: &[&str] = &[
    "sudo",
    "env",
    "nice",
    "nohup",
    "command",
    "exec",
    "doas",
    "stdbuf",
    "xargs",
    "timeout",
    "gosu",
    "su-exec",
    "chroot",
    "runuser",
    "setpriv",
    "fakeroot",
    "eatmydata",
    "unbuffer",
    "xvfb-run",
    "tini",
    "dumb-init",
];

/// Wrappers whose first argument after the options is not the command: the user of
/// `gosu USER cmd`, the duration of `timeout 60 cmd`, the directory of `chroot DIR cmd`.
const WRAPPER_OPERAND: &[&str] = &["gosu", "su-exec", "timeout", "chroot"];

const SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "zsh", "ksh", "busybox"];

impl Command {
    /// The words that name the program and its arguments: leading variable
    /// assignments (`DEBIAN_FRONTEND=noninteractive`), shell keywords and wrappers such
    /// as `sudo -u x` or `env -i` are skipped.
    pub fn argv(&self) -> &[Word] {
        let mut w = &self.words[..];
        loop {
            let Some(first) = w.first() else { return w };
            let name = basename(&first.text);
            if KEYWORDS.contains(&first.text.as_str()) || is_assignment(&first.text) {
                w = &w[1..];
            } else if matches!(name, "conda" | "mamba" | "micromamba" | "pixi" | "poetry" | "pipenv")
                && w.get(1).is_some_and(|s| s.text == "run")
            {
                // `conda run -n env pip install …`: the command after run's options.
                w = &w[2..];
                while let Some(opt) = w.first() {
                    if !opt.text.starts_with('-') {
                        break;
                    }
                    let takes_value = !opt.text.contains('=')
                        && matches!(
                            opt.text.as_str(),
                            "-n" | "--name" | "-p" | "--prefix" | "--cwd" | "-e" | "--environment"
                        );
                    w = &w[if takes_value { 2.min(w.len()) } else { 1 }..];
                }
            } else if WRAPPERS.contains(&name) {
                w = &w[1..];
                let mut operand = WRAPPER_OPERAND.contains(&name);
                // Options of the wrapper; the ones that take a value swallow it.
                while let Some(opt) = w.first() {
                    if opt.text == "--" {
                        w = &w[1..];
                        break;
                    }
                    if is_assignment(&opt.text) {
                        w = &w[1..];
                        continue;
                    }
                    if !opt.text.starts_with('-') {
                        if operand {
                            operand = false;
                            w = &w[1..];
                            continue;
                        }
                        break;
                    }
                    let takes_value = matches!(
                        (name, opt.text.as_str()),
                        ("sudo", "-u" | "-g" | "-C" | "-D" | "-h" | "-p" | "-r" | "-t" | "-U")
                            | ("env", "-u" | "-C" | "-S")
                            | ("nice", "-n")
                            | ("doas", "-u" | "-C")
                            | (
                                "xargs",
                                "-a" | "-d"
                                    | "-E"
                                    | "-I"
                                    | "-L"
                                    | "-n"
                                    | "-P"
                                    | "-s"
                                    | "--arg-file"
                                    | "--delimiter"
                                    | "--max-args"
                                    | "--max-procs"
                                    | "--max-lines"
                                    | "--max-chars"
                            )
                            | ("timeout", "-s" | "-k" | "--signal" | "--kill-after")
                            | ("runuser", "-u" | "-g" | "-G" | "--user" | "--group")
                            | ("chroot", "--userspec" | "--groups")
                            | ("stdbuf", "-i" | "-o" | "-e")
                            | ("xvfb-run", "-n" | "-s" | "-f" | "-e" | "-p" | "--server-args" | "--server-num")
                    );
                    w = &w[if takes_value { 2.min(w.len()) } else { 1 }..];
                }
            } else {
                return w;
            }
        }
    }

    /// The program's name without its directory, e.g. `pip3` for `/usr/bin/pip3`.
    pub fn program(&self) -> Option<&str> {
        self.argv().first().map(|w| basename(&w.text))
    }

    /// The span from the first to the last word of the command.
    pub fn span(&self) -> Range<usize> {
        let argv = self.argv();
        match (argv.first(), argv.last()) {
            (Some(a), Some(b)) => a.span.start..b.span.end.max(a.span.start),
            _ => 0..0,
        }
    }
}

impl Script {
    /// Reads shell text, and the commands inside its commands.
    pub fn parse(src: &MappedText) -> Script {
        Script::parse_at(src, 0)
    }

    fn parse_at(src: &MappedText, depth: usize) -> Script {
        let mut lexer = Lexer::new(&src.text);
        let tokens = std::mem::take(&mut lexer.run_tokens());
        let subs = std::mem::take(&mut lexer.subs);
        let mut script = Script::default();
        let mut current = Command::default();
        let mut pipeline = 0;
        let mut pending_redirect: Option<&'static str> = None;
        for tok in tokens {
            match tok {
                Tok::Word { text, range, verbatim } => {
                    let inner = verbatim
                        .filter(|_| text.contains([' ', '\t', '\n', '(', ';']))
                        .map(|at| src.sub(at..at + text.len()));
                    let word = Word { text, span: src.map_range(range), inner };
                    match pending_redirect.take() {
                        Some(">") => current.stdout_to = Some(word),
                        Some("<") => current.stdin_from = Some(word),
                        Some(_) => {}
                        None => current.words.push(word),
                    }
                }
                Tok::Redirect(op) => pending_redirect = Some(op),
                Tok::Op(op) => {
                    pending_redirect = None;
                    current.pipeline = pipeline;
                    if !current.words.is_empty() {
                        script.commands.push(std::mem::take(&mut current));
                    } else {
                        current = Command::default();
                    }
                    if op != "|" {
                        pipeline += 1;
                    }
                }
            }
        }
        current.pipeline = pipeline;
        if !current.words.is_empty() {
            script.commands.push(current);
        }
        if depth < MAX_DEPTH {
            script.read_inner(src, &subs, depth);
        }
        script
    }

    /// Adds the commands of command substitutions and of `sh -c SCRIPT` arguments,
    /// each in pipelines of their own after the ones of the text.
    fn read_inner(&mut self, src: &MappedText, subs: &[Range<usize>], depth: usize) {
        let scripts: Vec<&Word> = self.commands.iter().filter_map(shell_script_arg).collect();
        // A substitution inside an `sh -c` script is read with that script.
        let mut inner: Vec<MappedText> = subs
            .iter()
            .filter(|r| {
                let at = src.map(r.start);
                !scripts.iter().any(|w| w.span.contains(&at))
            })
            .map(|r| src.sub(r.clone()))
            .collect();
        inner.extend(scripts.iter().map(|w| w.mapped()));
        for text in inner {
            let sub = Script::parse_at(&text, depth + 1);
            let base = self.commands.last().map_or(0, |c| c.pipeline + 1);
            self.commands.extend(sub.commands.into_iter().map(|mut c| {
                c.pipeline += base;
                c
            }));
        }
    }

    /// An exec-form command (`RUN ["a", "b"]`, a build-file `run "a" "b"`): the words
    /// are the argv. `sh -c SCRIPT` is read as the script it runs.
    pub fn from_argv(args: &[(String, MappedText)]) -> Script {
        let first = args.first().map(|(t, _)| basename(t));
        if first.is_some_and(|p| SHELLS.contains(&p)) {
            // The script is the first argument after an option cluster containing `c`.
            let mut iter = args.iter().skip(1);
            while let Some((t, _)) = iter.next() {
                if t.starts_with('-') && !t.starts_with("--") && t.contains('c') {
                    if let Some((_, script)) = iter.next() {
                        return Script::parse(script);
                    }
                }
                if !t.starts_with('-') {
                    break;
                }
            }
        }
        let words = args
            .iter()
            .map(|(t, m)| Word {
                text: t.clone(),
                span: m.map_range(0..m.text.len()),
                inner: t.contains([' ', '\t', '\n', '(', ';']).then(|| m.clone()),
            })
            .collect();
        let mut script = Script { commands: vec![Command { words, ..Command::default() }] };
        script.read_inner(&MappedText::new(), &[], 0);
        script
    }

    /// True when some command of the script has this program name.
    pub fn runs(&self, program: &str) -> bool {
        self.commands.iter().any(|c| c.program() == Some(program))
    }
}

/// The script that a shell command runs from its arguments: the word after an option
/// cluster with `c` (`sh -c`, `bash -lc`, `bash -euxo pipefail -c`), and `su … -c CMD`.
fn shell_script_arg(cmd: &Command) -> Option<&Word> {
    let argv = cmd.argv();
    let prog = basename(&argv.first()?.text);
    if !(is_shell(prog) || prog == "su") {
        return None;
    }
    let mut i = 1;
    while let Some(w) = argv.get(i) {
        let t = w.text.as_str();
        if t == "--command" || (t.starts_with('-') && !t.starts_with("--") && t.contains('c')) {
            return argv.get(i + 1);
        }
        // `-o pipefail` takes a value; other options and `su`'s user name do not stop
        // the search for `-c`.
        i += if t == "-o" || t == "+o" { 2 } else { 1 };
        if !t.starts_with(['-', '+']) && prog != "su" {
            return None;
        }
    }
    None
}

/// `NAME=value` where NAME is a shell variable name.
pub fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            let mut chars = name.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

pub fn is_shell(program: &str) -> bool {
    SHELLS.contains(&program)
}

/// The arguments that are not options, given the options that take a value
/// (`-r FILE`, `--index-url URL`; `--opt=value` needs no listing).
pub fn positionals<'w>(args: &'w [Word], takes_value: &[&str]) -> Vec<&'w Word> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut options_done = false;
    while i < args.len() {
        let w = &args[i];
        i += 1;
        if options_done || !w.text.starts_with('-') || w.text == "-" {
            out.push(w);
        } else if w.text == "--" {
            options_done = true;
        } else if !w.text.contains('=') && takes_value.contains(&w.text.as_str()) {
            i += 1;
        }
    }
    out
}

/// The subcommand of `argv` (its first argument that is not an option, skipping the
/// values of global options that take one) and the arguments after it.
pub fn subcommand<'w>(argv: &'w [Word], takes_value: &[&str]) -> Option<(&'w str, &'w [Word])> {
    let mut i = 1;
    while let Some(w) = argv.get(i) {
        if !w.text.starts_with('-') && !w.text.starts_with('+') {
            return Some((w.text.as_str(), &argv[i + 1..]));
        }
        i += if !w.text.contains('=') && takes_value.contains(&w.text.as_str()) { 2 } else { 1 };
    }
    None
}

/// True when a word is only known when the command runs (`$PKG`, `$(cat x)`): the
/// rules do not guess what it will be.
pub fn is_dynamic(word: &str) -> bool {
    word.contains('$') || word.contains('`')
}

/// The value of an option given as `--name value`, `--name=value`, `-n value`, or as
/// `-nvalue` for single-letter names.
pub fn option_value<'w>(args: &'w [Word], names: &[&str]) -> Option<&'w str> {
    let mut iter = args.iter();
    while let Some(w) = iter.next() {
        for name in names {
            if w.text == *name {
                return iter.next().map(|v| v.text.as_str());
            }
            if let Some(v) = w.text.strip_prefix(name) {
                if let Some(v) = v.strip_prefix('=') {
                    return Some(v);
                }
                if name.len() == 2 && !name.starts_with("--") && !v.is_empty() {
                    return Some(v);
                }
            }
        }
    }
    None
}

/// True when an option is present (`--locked`, `--locked=…`, or a short option inside
/// a cluster such as `-qO-` for `-O`).
pub fn has_option(args: &[Word], names: &[&str]) -> bool {
    args.iter().take_while(|w| w.text != "--").any(|w| {
        names.iter().any(|n| {
            w.text == *n
                || (n.starts_with("--") && w.text.strip_prefix(n).is_some_and(|r| r.starts_with('=')))
                || (n.len() == 2
                    && !n.starts_with("--")
                    && w.text.starts_with('-')
                    && !w.text.starts_with("--")
                    && w.text[1..].contains(&n[1..]))
        })
    })
}

#[derive(Debug)]
enum Tok {
    Word {
        text: String,
        range: Range<usize>,
        /// Where the unquoted text starts when it is a verbatim piece of the source
        /// (no escapes, at most one pair of quotes around all of it).
        verbatim: Option<usize>,
    },
    /// A command separator or pipe: `&&`, `||`, `;`, `|`, `&`, `(`, `)`, newline.
    Op(&'static str),
    /// A redirection: `">"` for the ones that send standard output to a file, `"<"`
    /// for standard input read from a file, something else for the others.
    Redirect(&'static str),
}

struct Lexer<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    out: Vec<Tok>,
    /// Heredoc delimiters seen on the current line; their bodies start at the next
    /// newline. `true` when the body's leading tabs are stripped (`<<-`).
    heredocs: Vec<(String, bool)>,
    /// The insides of command substitutions (`$(…)`, backticks, `<(…)`).
    subs: Vec<Range<usize>>,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Self {
        Lexer { s, b: s.as_bytes(), i: 0, out: Vec::new(), heredocs: Vec::new(), subs: Vec::new() }
    }

    fn peek(&self, k: usize) -> u8 {
        self.b.get(self.i + k).copied().unwrap_or(0)
    }

    fn run_tokens(&mut self) -> Vec<Tok> {
        while self.i < self.b.len() {
            let c = self.peek(0);
            match c {
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'\\' if self.peek(1) == b'\n' => self.i += 2,
                b'\n' => {
                    self.i += 1;
                    self.out.push(Tok::Op("\n"));
                    self.skip_heredoc_bodies();
                }
                b'#' => {
                    while self.i < self.b.len() && self.peek(0) != b'\n' {
                        self.i += 1;
                    }
                }
                b'&' | b'|' | b';' | b'(' | b')' => self.operator(),
                b'<' | b'>' => self.redirect(),
                _ => self.word(),
            }
        }
        std::mem::take(&mut self.out)
    }

    fn operator(&mut self) {
        let two = [self.peek(0), self.peek(1)];
        let (op, len): (&'static str, usize) = match &two {
            b"&&" => ("&&", 2),
            b"||" => ("||", 2),
            b";;" => (";", 2),
            b"|&" => ("|", 2),
            b"&>" => {
                // `&>file` / `&>>file`: both output streams to a file.
                self.i += if self.peek(2) == b'>' { 3 } else { 2 };
                self.out.push(Tok::Redirect(">"));
                return;
            }
            _ => match two[0] {
                b'|' => ("|", 1),
                b'&' => ("&", 1),
                b';' => (";", 1),
                b'(' => ("(", 1),
                _ => (")", 1),
            },
        };
        self.i += len;
        self.out.push(Tok::Op(op));
    }

    /// `<`, `>`, `>>`, `<<`, `<<-`, `<<<`, `>&`, `<&`, `<>`, `>|`, `<(…)`, `>(…)`.
    fn redirect(&mut self) {
        let c = self.peek(0);
        if self.peek(1) == b'(' {
            // Process substitution is a word.
            self.word();
            return;
        }
        self.redirect_from_fd(c == b'>', true);
    }

    fn redirect_from_fd(&mut self, out: bool, stdout: bool) {
        let c = self.peek(0);
        self.i += 1;
        if c == b'<' && self.peek(0) == b'<' {
            self.i += 1;
            if self.peek(0) == b'<' {
                self.i += 1; // here-string: the next word is its content
                self.out.push(Tok::Redirect("<<<"));
                return;
            }
            let strip = self.peek(0) == b'-';
            if strip {
                self.i += 1;
            }
            while matches!(self.peek(0), b' ' | b'\t') {
                self.i += 1;
            }
            let start = self.out.len();
            self.word();
            if let Some(Tok::Word { text, .. }) = self.out.get(start) {
                self.heredocs.push((text.clone(), strip));
            }
            self.out.truncate(start);
            return;
        }
        if matches!(self.peek(0), b'>' | b'&' | b'|') {
            self.i += 1;
        }
        self.out.push(Tok::Redirect(match (out, stdout) {
            (true, true) => ">",
            (true, false) => "2>",
            // `<&3`, `<>`: not a file read as standard input.
            _ if matches!(self.b.get(self.i.wrapping_sub(1)), Some(b'&' | b'>')) => "<&",
            _ => "<",
        }));
    }

    fn skip_heredoc_bodies(&mut self) {
        for (delim, strip) in std::mem::take(&mut self.heredocs) {
            while self.i < self.b.len() {
                let end = self.s[self.i..].find('\n').map_or(self.b.len(), |n| self.i + n);
                let line = &self.s[self.i..end];
                self.i = (end + 1).min(self.b.len());
                let line = if strip { line.trim_start_matches('\t') } else { line };
                if line.trim_end_matches('\r') == delim {
                    break;
                }
            }
        }
    }

    fn word(&mut self) {
        let start = self.i;
        let mut text = String::new();
        while self.i < self.b.len() {
            let c = self.peek(0);
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b';' | b'&' | b'|' | b')' => break,
                b'(' if text.is_empty() || text.ends_with('=') => break,
                b'<' | b'>' => {
                    if self.peek(1) == b'(' {
                        let from = self.i;
                        self.i += 1;
                        self.skip_parens();
                        self.sub(from + 2);
                        text.push_str(&self.s[from..self.i]);
                    } else if !text.is_empty() && text.bytes().all(|d| d.is_ascii_digit()) {
                        // `2>file`, `1>&2`: a redirection from a file descriptor.
                        let stdout = text == "1";
                        self.redirect_from_fd(c == b'>', stdout);
                        return;
                    } else {
                        break;
                    }
                }
                b'\\' => {
                    if self.peek(1) == b'\n' {
                        self.i += 2;
                    } else {
                        self.i += 1;
                        self.push_char(&mut text);
                    }
                }
                b'\'' => {
                    self.i += 1;
                    let end = self.s[self.i..].find('\'').map_or(self.b.len(), |n| self.i + n);
                    text.push_str(&self.s[self.i..end]);
                    self.i = (end + 1).min(self.b.len());
                }
                b'"' => {
                    self.i += 1;
                    self.double_quoted(&mut text);
                }
                b'$' if self.peek(1) == b'(' => {
                    let from = self.i;
                    self.i += 1;
                    self.skip_parens();
                    self.sub(from + 2);
                    text.push_str(&self.s[from..self.i]);
                }
                b'$' if self.peek(1) == b'{' => {
                    let from = self.i;
                    let end = self.s[self.i..].find('}').map_or(self.b.len(), |n| self.i + n + 1);
                    self.i = end;
                    text.push_str(&self.s[from..end]);
                }
                b'`' => {
                    let from = self.i;
                    self.i += 1;
                    let end = self.s[self.i..].find('`').map_or(self.b.len(), |n| self.i + n + 1);
                    self.i = end;
                    self.sub(from + 1);
                    text.push_str(&self.s[from..end]);
                }
                _ => self.push_char(&mut text),
            }
        }
        self.i = self.i.min(self.b.len());
        if self.i > start {
            let raw = self.s.get(start..self.i).unwrap_or("");
            let verbatim = if raw == text {
                Some(start)
            } else {
                let q = raw.as_bytes().first().copied().unwrap_or(0);
                let quoted = raw.len() >= 2 && matches!(q, b'\'' | b'"') && raw.as_bytes()[raw.len() - 1] == q;
                (quoted && raw[1..raw.len() - 1] == text).then_some(start + 1)
            };
            self.out.push(Tok::Word { text, range: start..self.i, verbatim });
        } else {
            // Nothing a word can start with: step over it so the reader always moves.
            self.i += 1;
        }
    }

    /// Records the inside of a substitution that started at `inner_start` and whose
    /// closing character was just passed.
    fn sub(&mut self, inner_start: usize) {
        let end = self.i.saturating_sub(1);
        if end > inner_start && self.s.is_char_boundary(inner_start) && self.s.is_char_boundary(end) {
            self.subs.push(inner_start..end);
        }
    }

    fn push_char(&mut self, text: &mut String) {
        if let Some(ch) = self.s[self.i..].chars().next() {
            text.push(ch);
            self.i += ch.len_utf8();
        } else {
            self.i += 1;
        }
    }

    fn double_quoted(&mut self, text: &mut String) {
        while self.i < self.b.len() {
            match self.peek(0) {
                b'"' => {
                    self.i += 1;
                    return;
                }
                b'\\' if matches!(self.peek(1), b'"' | b'\\' | b'$' | b'`') => {
                    self.i += 1;
                    self.push_char(text);
                }
                b'\\' if self.peek(1) == b'\n' => self.i += 2,
                b'$' if self.peek(1) == b'(' => {
                    let from = self.i;
                    self.i += 1;
                    self.skip_parens();
                    self.sub(from + 2);
                    text.push_str(&self.s[from..self.i]);
                }
                _ => self.push_char(text),
            }
        }
    }

    /// From an opening parenthesis to its match, over nested ones and quotes.
    fn skip_parens(&mut self) {
        let mut depth = 0usize;
        while self.i < self.b.len() {
            match self.peek(0) {
                b'(' => depth += 1,
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.i += 1;
                        return;
                    }
                }
                b'\\' => self.i += 1,
                q @ (b'\'' | b'"') => {
                    self.i += 1;
                    while self.i < self.b.len() && self.peek(0) != q {
                        if q == b'"' && self.peek(0) == b'\\' {
                            self.i += 1;
                        }
                        self.i += 1;
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        self.i = self.i.min(self.b.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &Script) -> Vec<Vec<String>> {
        script.commands.iter().map(|c| c.argv().iter().map(|w| w.text.clone()).collect()).collect()
    }

    #[test]
    fn splits_commands_and_keeps_spans() {
        let text = "apt-get update && DEBIAN_FRONTEND=x sudo -u root apt-get install -y 'curl' ; echo \"a b\"";
        let s = Script::parse(&MappedText::exact(text, 100));
        assert_eq!(
            words(&s),
            vec![vec!["apt-get", "update"], vec!["apt-get", "install", "-y", "curl"], vec!["echo", "a b"]]
        );
        let curl = &s.commands[1].argv()[3];
        assert_eq!(&text[curl.span.start - 100..curl.span.end - 100], "'curl'");
    }

    #[test]
    fn pipelines_redirections_and_heredocs() {
        let text = "curl -fsSL https://x/y | sh\nwget -q https://x/z 2>/dev/null > out.tgz\ncat <<EOF > f\napt-get install vim\nEOF\necho done # comment && rm -rf /";
        let s = Script::parse(&MappedText::exact(text, 0));
        assert_eq!(
            words(&s),
            vec![
                vec!["curl", "-fsSL", "https://x/y"],
                vec!["sh"],
                vec!["wget", "-q", "https://x/z"],
                vec!["cat"],
                vec!["echo", "done"]
            ]
        );
        assert_eq!(s.commands[0].pipeline, s.commands[1].pipeline);
        assert_ne!(s.commands[1].pipeline, s.commands[2].pipeline);
        assert_eq!(s.commands[2].stdout_to.as_ref().map(|w| w.text.as_str()), Some("out.tgz"));
    }

    #[test]
    fn substitutions_stay_inside_their_word() {
        let text = "sh -c \"$(curl -s https://x | cat)\" && x=$(a; b)";
        let s = Script::parse(&MappedText::exact(text, 0));
        assert_eq!(words(&s)[0], vec!["sh", "-c", "$(curl -s https://x | cat)"]);
        // `x=$(a; b)` is a command of its own that only assigns; the commands inside
        // the substitutions follow, read once each (the `sh -c` script holds the curl).
        assert!(s.commands[1].argv().is_empty());
        let rest: Vec<Vec<String>> = words(&s)[2..].to_vec();
        assert_eq!(
            rest,
            vec![
                vec!["a"],
                vec!["b"],
                vec!["$(curl -s https://x | cat)"],
                vec!["curl", "-s", "https://x"],
                vec!["cat"]
            ]
        );
        let curl = &s.commands[5].argv()[2];
        assert_eq!(&text[curl.span.clone()], "https://x");
    }

    #[test]
    fn nested_shells_wrappers_and_xargs() {
        let text = "sudo -E bash -lc 'pip install flask' && env A=1 timeout 60 gosu app conda run -n py pip install x \
                    && cat r.txt | xargs -n1 pip install && echo `apt-get install vim`";
        let s = Script::parse(&MappedText::exact(text, 0));
        let progs: Vec<&str> = s.commands.iter().filter_map(|c| c.program()).collect();
        assert_eq!(progs, ["bash", "pip", "cat", "pip", "echo", "apt-get", "pip"]);
        let flask = s.commands.iter().flat_map(|c| c.argv()).find(|w| w.text == "flask").expect("flask");
        assert_eq!(&text[flask.span.clone()], "flask");
        let vim = s.commands.iter().flat_map(|c| c.argv()).find(|w| w.text == "vim").expect("vim");
        assert_eq!(&text[vim.span.clone()], "vim");
    }

    #[test]
    fn unbalanced_quotes_do_not_panic() {
        for text in ["echo 'abc", "echo \"abc", "echo $(abc", "a \\", "<<", "2>", "`x", "${x"] {
            let _ = Script::parse(&MappedText::exact(text, 0));
        }
    }

    #[test]
    fn option_helpers() {
        let s = Script::parse(&MappedText::exact("x -r req.txt --index-url=u -i u2 a b -- -c", 0));
        let args = &s.commands[0].argv()[1..];
        let pos: Vec<_> = positionals(args, &["-r", "-i"]).iter().map(|w| w.text.clone()).collect();
        assert_eq!(pos, vec!["a", "b", "-c"]);
        assert_eq!(option_value(args, &["-r"]), Some("req.txt"));
        assert!(has_option(args, &["--index-url"]));
        assert!(!has_option(args, &["-c"]));
    }
}
