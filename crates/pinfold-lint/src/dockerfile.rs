//! A Dockerfile reader with spans, written here because the lint rules need what
//! BuildKit sees (instructions joined across line continuations with the file's own
//! escape character, heredoc bodies, parser directives, build arguments in `FROM`,
//! stage names) and also where each piece came from in the file; no Rust crate gives
//! both. It follows BuildKit's frontend (dockerfile 1.x syntax):
//!
//! - parser directives (`# syntax=…`, `# escape=…`, `# check=…`) only at the very top,
//!   before any comment, blank line or instruction;
//! - a line whose last non-blank character is the escape character continues on the
//!   next; comment lines and blank lines inside a continued instruction are dropped;
//! - `RUN`, `COPY` and `ADD` take heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`),
//!   whose bodies follow the instruction line;
//! - only whole-line comments exist: a `#` later in a line is an argument.
//!
//! It refuses what BuildKit refuses and a linter cannot read around: an unterminated
//! heredoc, an unknown instruction, a bad `escape` directive.

use super::mapped::MappedText;
use std::collections::HashMap;
use std::ops::Range;

const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub escape: char,
    pub directives: Vec<Directive>,
    pub instructions: Vec<Instruction>,
    /// Whole-line comments (directives excluded), `#` included.
    pub comments: Vec<Range<usize>>,
}

#[derive(Debug, Clone)]
pub struct Directive {
    /// Lower-cased name: `syntax`, `escape`, `check`, …
    pub name: String,
    pub value: String,
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct Instruction {
    /// Upper-cased, as BuildKit matches it case-insensitively.
    pub keyword: String,
    pub keyword_span: Range<usize>,
    /// From the keyword to the end of the instruction's last line (continuations
    /// included, heredoc bodies not).
    pub span: Range<usize>,
    /// Everything after the keyword, continuations joined, mapped to the file.
    pub args: MappedText,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone)]
pub struct Heredoc {
    pub delimiter: String,
    /// `<<-`: leading tabs of the body and of the delimiter line are removed.
    pub strip_tabs: bool,
    /// The `<<EOF` marker's position within the instruction's `args` text.
    pub marker: Range<usize>,
    /// The body, without its delimiter line.
    pub body: MappedText,
}

/// One flag such as `--platform=linux/amd64` at the start of an instruction.
#[derive(Debug, Clone)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
    /// In the file.
    pub span: Range<usize>,
}

/// Why a Dockerfile cannot be read, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub span: Range<usize>,
    pub label: String,
    pub help: String,
}

struct Line<'a> {
    start: usize,
    text: &'a str,
}

impl Dockerfile {
    pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
        let mut lines = Vec::new();
        let mut start = 0;
        for piece in src.split_inclusive('\n') {
            let text = piece.strip_suffix('\n').unwrap_or(piece);
            let text = text.strip_suffix('\r').unwrap_or(text);
            lines.push(Line { start, text });
            start += piece.len();
        }

        let mut df =
            Dockerfile { escape: '\\', directives: Vec::new(), instructions: Vec::new(), comments: Vec::new() };
        let mut i = 0;
        while let Some(line) = lines.get(i) {
            let Some(d) = directive(line) else { break };
            if d.name == "escape" {
                df.escape = match d.value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(ParseError {
                            message: format!("invalid escape character `{other}`"),
                            span: d.span,
                            label: "escape directive".into(),
                            help: "the escape character is `\\` (the default) or `` ` ``".into(),
                        })
                    }
                };
            }
            df.directives.push(d);
            i += 1;
        }

        while i < lines.len() {
            let line = &lines[i];
            let trimmed = line.text.trim_start();
            if trimmed.is_empty() {
                i += 1;
                continue;
            }
            let indent = line.text.len() - trimmed.len();
            if trimmed.starts_with('#') {
                df.comments.push(line.start + indent..line.start + line.text.len());
                i += 1;
                continue;
            }
            i = df.instruction(&lines, i, indent)?;
        }
        Ok(df)
    }

    /// Reads the instruction starting on `lines[i]`; returns the index of the line after it.
    fn instruction(&mut self, lines: &[Line], mut i: usize, indent: usize) -> Result<usize, ParseError> {
        let line = &lines[i];
        let trimmed = &line.text[indent..];
        let kw_len = trimmed.find(|c: char| c.is_whitespace()).unwrap_or(trimmed.len());
        let keyword = trimmed[..kw_len].to_ascii_uppercase();
        let kw_start = line.start + indent;
        let keyword_span = kw_start..kw_start + kw_len;
        if !INSTRUCTIONS.contains(&keyword.as_str()) {
            return Err(ParseError {
                message: format!("unknown instruction `{}`", &trimmed[..kw_len]),
                span: keyword_span,
                label: "not a Dockerfile instruction".into(),
                help: format!("instructions are {}", INSTRUCTIONS.join(", ")),
            });
        }

        let mut args = MappedText::new();
        let rest_start = indent + kw_len;
        let rest = &line.text[rest_start..];
        let lead = rest.len() - rest.trim_start().len();
        let mut piece_start = line.start + rest_start + lead;
        let mut piece = &rest[lead..];
        let mut end = line.start + line.text.len();
        i += 1;
        loop {
            match strip_continuation(piece, self.escape) {
                Some(kept) => {
                    args.push(kept, piece_start);
                    // Comment and blank lines inside a continued instruction are dropped.
                    let mut next = None;
                    while let Some(l) = lines.get(i) {
                        i += 1;
                        let t = l.text.trim_start();
                        if t.starts_with('#') {
                            let ind = l.text.len() - t.len();
                            self.comments.push(l.start + ind..l.start + l.text.len());
                        } else if !t.is_empty() {
                            next = Some(l);
                            break;
                        }
                    }
                    match next {
                        Some(l) => {
                            piece = l.text;
                            piece_start = l.start;
                            end = l.start + l.text.len();
                        }
                        None => break,
                    }
                }
                None => {
                    args.push(piece, piece_start);
                    break;
                }
            }
        }

        let mut heredocs = Vec::new();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for (marker, delimiter, strip_tabs) in heredoc_markers(&args.text) {
                let mut body = MappedText::new();
                let mut closed = false;
                while let Some(l) = lines.get(i) {
                    i += 1;
                    let (content, cut) = if strip_tabs {
                        let t = l.text.trim_start_matches('\t');
                        (t, l.text.len() - t.len())
                    } else {
                        (l.text, 0)
                    };
                    if content == delimiter {
                        closed = true;
                        break;
                    }
                    body.push(content, l.start + cut);
                    // Keep the line break so the body reads as the lines it has.
                    let nl = l.start + l.text.len();
                    body.push("\n", nl);
                }
                if !closed {
                    return Err(ParseError {
                        message: format!("heredoc `{delimiter}` is never closed"),
                        span: args.map_range(marker),
                        label: "opened here".into(),
                        help: format!("end the heredoc with a line that holds only `{delimiter}`"),
                    });
                }
                heredocs.push(Heredoc { delimiter, strip_tabs, marker, body });
            }
        }

        self.instructions.push(Instruction {
            keyword,
            keyword_span: keyword_span.clone(),
            span: keyword_span.start..end,
            args,
            heredocs,
        });
        Ok(i)
    }
}

/// A parser directive line: `# name=value` (spaces allowed around both).
fn directive(line: &Line) -> Option<Directive> {
    let body = line.text.trim_start().strip_prefix('#')?;
    let (name, value) = body.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return None;
    }
    Some(Directive {
        name: name.to_ascii_lowercase(),
        value: value.trim().to_string(),
        span: line.start..line.start + line.text.len(),
    })
}

/// The line without its trailing escape character when it continues on the next line.
fn strip_continuation(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end_matches([' ', '\t']);
    t.strip_suffix(escape)
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` outside quotes, as (span in `args`,
/// delimiter, strip tabs). `<<<` (a here-string) is not a heredoc.
fn heredoc_markers(args: &str) -> Vec<(Range<usize>, String, bool)> {
    let b = args.as_bytes();
    let mut out = Vec::new();
    let mut quote = 0u8;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if quote != 0 {
            if c == quote {
                quote = 0;
            }
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' {
            quote = c;
            i += 1;
            continue;
        }
        if c == b'<' && b.get(i + 1) == Some(&b'<') && b.get(i + 2) != Some(&b'<') && (i == 0 || b[i - 1] != b'<') {
            let start = i;
            let mut j = i + 2;
            let strip = b.get(j) == Some(&b'-');
            if strip {
                j += 1;
            }
            let q = match b.get(j) {
                Some(&q @ (b'"' | b'\'')) => {
                    j += 1;
                    q
                }
                _ => 0,
            };
            let word_start = j;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'_' | b'-' | b'.')) {
                j += 1;
            }
            if j > word_start {
                let delimiter = args[word_start..j].to_string();
                if q != 0 && b.get(j) == Some(&q) {
                    j += 1;
                }
                out.push((start..j, delimiter, strip));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Whitespace-separated words of an instruction's arguments, with their spans in
/// `args.text`. Quotes are kept; only `FROM`-like instructions use this.
pub fn split_words(args: &str) -> Vec<(&str, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in args.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((&args[s..i], s..i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((&args[s..], s..args.len()));
    }
    out
}

impl Instruction {
    /// The leading `--name[=value]` flags and the offset in `args.text` where the rest starts.
    pub fn flags(&self) -> (Vec<Flag>, usize) {
        let mut flags = Vec::new();
        let mut rest = 0;
        for (word, range) in split_words(&self.args.text) {
            let Some(body) = word.strip_prefix("--") else {
                rest = range.start;
                return (flags, rest);
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (body.to_string(), None),
            };
            flags.push(Flag { name, value, span: self.args.map_range(range.clone()) });
            rest = range.end;
        }
        (flags, rest.min(self.args.text.len()))
    }

    /// The arguments after the flags, still mapped to the file.
    pub fn rest(&self) -> MappedText {
        let (_, at) = self.flags();
        let text = &self.args.text;
        let lead = text[at..].len() - text[at..].trim_start().len();
        self.args.sub(at + lead..text.len())
    }

    /// The exec (JSON array) form of the arguments after the flags, when they are one.
    pub fn exec_form(&self) -> Option<Vec<(String, MappedText)>> {
        json_string_array(&self.rest())
    }
}

/// `["a", "b"]` with each element's text mapped to the file. `None` when the text is
/// not a JSON array of strings (BuildKit then takes it as the shell form).
pub fn json_string_array(m: &MappedText) -> Option<Vec<(String, MappedText)>> {
    let t = m.text.trim_end();
    let b = t.as_bytes();
    if b.first() != Some(&b'[') || b.last() != Some(&b']') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 1;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if b.get(i) == Some(&b']') && out.is_empty() {
            break;
        }
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let open = i;
        i += 1;
        let mut value = String::new();
        let mut escaped = false;
        loop {
            let c = *b.get(i)?;
            if c == b'"' {
                break;
            }
            if c == b'\\' {
                escaped = true;
                let e = *b.get(i + 1)?;
                i += 2;
                match e {
                    b'n' => value.push('\n'),
                    b't' => value.push('\t'),
                    b'r' => value.push('\r'),
                    b'b' => value.push('\u{8}'),
                    b'f' => value.push('\u{c}'),
                    b'u' => {
                        let hex = t.get(i..i + 4)?;
                        value.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?).unwrap_or('\u{fffd}'));
                        i += 4;
                    }
                    // Any other escaped character stands for itself, whole: a
                    // multi-byte one is not cut (`["\\é"]` panicked on a slice).
                    _ => {
                        let ch = t.get(i - 1..)?.chars().next()?;
                        value.push(ch);
                        i += ch.len_utf8() - 1;
                    }
                }
                continue;
            }
            let ch = t[i..].chars().next()?;
            value.push(ch);
            i += ch.len_utf8();
        }
        let close = i;
        i += 1;
        let mapped = if escaped {
            MappedText::coarse(value.clone(), m.map_range(open..close + 1))
        } else {
            m.sub(open + 1..close)
        };
        out.push((value, mapped));
        skip_ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b']') if i + 1 == b.len() => break,
            _ => return None,
        }
    }
    Some(out)
}

/// Build arguments in scope for `FROM`: the `ARG`s before the first `FROM`, with
/// their defaults, plus the ones BuildKit always defines.
pub fn meta_args(df: &Dockerfile) -> HashMap<String, Option<String>> {
    let mut args: HashMap<String, Option<String>> = HashMap::new();
    for ins in &df.instructions {
        if ins.keyword == "FROM" {
            break;
        }
        if ins.keyword != "ARG" {
            continue;
        }
        for (word, _) in split_words(&ins.args.text) {
            let (name, value) = match word.split_once('=') {
                Some((n, v)) => (n, Some(unquote(v))),
                None => (word, None),
            };
            let value = value.and_then(|v| substitute(&v, &args, df.escape));
            args.insert(name.to_string(), value);
        }
    }
    args
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// Expands `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}` and
/// `${VAR+alt}` as BuildKit does in `FROM`. `None` when a variable without a value is
/// used and nothing stands in for it: the image is then only known at build time.
pub fn substitute(text: &str, args: &HashMap<String, Option<String>>, escape: char) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == escape {
            if let Some((_, next)) = chars.next() {
                out.push(next);
            }
            continue;
        }
        if c != '$' {
            out.push(c);
            continue;
        }
        let rest = &text[i + 1..];
        if let Some(body) = rest.strip_prefix('{') {
            let close = body.find('}')?;
            let expr = &body[..close];
            // Skip `{EXPR}` by bytes: EXPR may hold multi-byte characters.
            let end = i + 1 + 1 + close + 1;
            while chars.peek().is_some_and(|(j, _)| *j < end) {
                chars.next();
            }
            let (name, op, word) = split_param(expr);
            let value = args.get(name).cloned().flatten();
            let set = value.as_deref().is_some_and(|v| !v.is_empty());
            let defined = value.is_some();
            let expanded = match op {
                ":-" => {
                    if set {
                        value
                    } else {
                        Some(word.to_string())
                    }
                }
                "-" => {
                    if defined {
                        value
                    } else {
                        Some(word.to_string())
                    }
                }
                ":+" => Some(if set { word.to_string() } else { String::new() }),
                "+" => Some(if defined { word.to_string() } else { String::new() }),
                _ => value,
            };
            out.push_str(&expanded?);
        } else {
            let len = rest.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).unwrap_or(rest.len());
            if len == 0 {
                out.push('$');
                continue;
            }
            for _ in 0..len {
                chars.next();
            }
            out.push_str(&args.get(&rest[..len]).cloned().flatten()?);
        }
    }
    Some(out)
}

fn split_param(expr: &str) -> (&str, &str, &str) {
    for op in [":-", ":+", "-", "+"] {
        if let Some(at) = expr.find(op) {
            return (&expr[..at], op, &expr[at + op.len()..]);
        }
    }
    (expr, "", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_and_heredocs() {
        let src = "# syntax=docker/dockerfile:1\n# escape=\\\nFROM alpine:3.20\nRUN apk add \\\n    # a comment\n\n    curl\nRUN <<EOF bash\napk add git\nEOF\nCOPY <<-\"A\" /a\n\tx\n\tA\n";
        let df = Dockerfile::parse(src).expect("parses");
        assert_eq!(df.directives.len(), 2);
        let kws: Vec<_> = df.instructions.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(kws, ["FROM", "RUN", "RUN", "COPY"]);
        let run = &df.instructions[1];
        assert_eq!(run.args.text, "apk add     curl");
        let curl = run.args.text.find("curl").unwrap_or(0);
        assert_eq!(&src[run.args.map_range(curl..curl + 4)], "curl");
        assert_eq!(df.comments.len(), 1);
        assert_eq!(df.instructions[2].heredocs[0].body.text, "apk add git\n");
        let h = &df.instructions[3].heredocs[0];
        assert_eq!((h.delimiter.as_str(), h.strip_tabs, h.body.text.as_str()), ("A", true, "x\n"));
    }

    #[test]
    fn backtick_escape_and_errors() {
        let df = Dockerfile::parse("# escape=`\nFROM x\nRUN a `\n  b\n").expect("parses");
        assert_eq!(df.instructions[1].args.text, "a   b");
        let err = Dockerfile::parse("FROM x\nRUN <<EOF\nabc\n").unwrap_err();
        assert!(err.message.contains("never closed"), "{err:?}");
        assert!(Dockerfile::parse("FORM x\n").is_err());
        assert!(Dockerfile::parse("").is_ok_and(|d| d.instructions.is_empty()));
    }

    #[test]
    fn exec_form_and_substitution() {
        let df = Dockerfile::parse("RUN --mount=type=cache,target=/x [\"apt-get\", \"install\", \"a\\\"b\"]\n")
            .expect("parses");
        let ins = &df.instructions[0];
        let (flags, _) = ins.flags();
        assert_eq!(flags[0].name, "mount");
        let argv = ins.exec_form().expect("exec form");
        assert_eq!(argv.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), ["apt-get", "install", "a\"b"]);
        let mut args = HashMap::new();
        args.insert("V".to_string(), Some("3.20".to_string()));
        args.insert("E".to_string(), None);
        assert_eq!(substitute("alpine:${V}", &args, '\\').as_deref(), Some("alpine:3.20"));
        assert_eq!(substitute("$E", &args, '\\'), None);
        assert_eq!(substitute("${E:-debian}:$V", &args, '\\').as_deref(), Some("debian:3.20"));
        // A multi-byte character inside `${…}` does not eat what follows it.
        assert_eq!(substitute("${E:-é}tail", &args, '\\').as_deref(), Some("étail"));
    }

    #[test]
    fn an_escaped_multi_byte_character_in_an_exec_form_is_one_character() {
        let df = Dockerfile::parse("FROM x\nCMD [\"\\é\", \"b\\\"c\"]\n").expect("parses");
        let words: Vec<String> = df.instructions[1].exec_form().unwrap().into_iter().map(|(w, _)| w).collect();
        assert_eq!(words, ["é", "b\"c"]);
    }
}
