//! A bounded, streaming reader of deb822 stanzas (control files, Packages indexes,
//! Release files, `.sources` files).
//!
//! Hand-written on purpose: the crates that parse deb822 either build a lossless syntax
//! tree (heavy for a 50 MB Packages index read on every lock) or read a whole document
//! at once without limits. This one streams stanza by stanza, bounds every line and
//! stanza, names the line of an error, and keeps field values verbatim (continuation
//! lines included) so a control file can be written back into dpkg's status unchanged.

use crate::error::{Error, Result};
use std::io::{BufRead, Read};

/// The longest line accepted (a Packages line is rarely over a few KiB).
pub const MAX_LINE: u64 = 1 << 20;
/// The largest stanza accepted, all lines together (a Release file's SHA256 list).
pub const MAX_STANZA: usize = 16 << 20;

/// One paragraph: its fields in file order. Names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stanza {
    pub fields: Vec<(String, String)>,
    /// The line the stanza starts on (1-based), for messages.
    pub line: usize,
}

impl Stanza {
    /// The value of field `name`: the first line's text, then each continuation line
    /// after a `\n`, as written (leading space kept).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The value of a field required to be present.
    pub fn require(&self, name: &str, what: &str) -> Result<&str> {
        self.get(name).ok_or_else(|| Error::Syntax {
            what: what.to_string(),
            line: self.line,
            message: format!("the stanza has no {name} field"),
        })
    }

    /// The stanza as deb822 text, ending with a newline (no blank line after it).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.fields {
            out.push_str(name);
            out.push(':');
            if !value.is_empty() && !value.starts_with('\n') {
                out.push(' ');
            }
            out.push_str(value);
            out.push('\n');
        }
        out
    }
}

/// What `next_line` returns for a line of a field that is not kept (not blank, so it
/// does not end the stanza; no real line can be a lone NUL).
const SKIPPED: &str = "\0";

/// Reads stanzas one at a time from `reader`.
pub struct Reader<R> {
    reader: R,
    what: String,
    line: usize,
    comments: bool,
    buf: Vec<u8>,
    /// When set, only these fields are kept (others, and their continuation lines,
    /// are skipped without being copied: most of a Packages index is Description).
    only: Option<&'static [&'static str]>,
    skipping: bool,
}

impl<R: BufRead> Reader<R> {
    /// `what` names the source in errors; `comments` allows `#` lines (`.sources` files).
    pub fn new(reader: R, what: impl Into<String>, comments: bool) -> Self {
        Reader { reader, what: what.into(), line: 0, comments, buf: Vec::new(), only: None, skipping: false }
    }

    /// Keeps only the fields named in `only` (case-insensitively).
    pub fn only_fields(mut self, only: &'static [&'static str]) -> Self {
        self.only = Some(only);
        self
    }

    /// Whether a line starting a field (or continuing one) is to be skipped.
    fn skip(&mut self) -> bool {
        let Some(only) = self.only else { return false };
        let line = &self.buf;
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return self.skipping;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            self.skipping = false;
            return false; // not a field: let the parser name the error
        };
        self.skipping = !only.iter().any(|f| f.as_bytes().eq_ignore_ascii_case(&line[..colon]));
        self.skipping
    }

    fn syntax(&self, message: impl Into<String>) -> Error {
        Error::Syntax { what: self.what.clone(), line: self.line, message: message.into() }
    }

    /// The next line without its newline (empty for a skipped field's line), or None
    /// at the end.
    fn next_line(&mut self) -> Result<Option<String>> {
        self.buf.clear();
        let n = (&mut self.reader).take(MAX_LINE + 1).read_until(b'\n', &mut self.buf).map_err(|e| Error::Syntax {
            what: self.what.clone(),
            line: self.line + 1,
            message: e.to_string(),
        })?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if n as u64 > MAX_LINE {
            return Err(self.syntax(format!("line longer than {MAX_LINE} bytes")));
        }
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        if !self.buf.is_empty() && self.skip() {
            return Ok(Some(String::from(SKIPPED)));
        }
        let text = std::str::from_utf8(&self.buf).map_err(|_| self.syntax("not UTF-8"))?;
        Ok(Some(text.to_string()))
    }

    /// The next stanza, or None when only blank lines remain.
    pub fn next_stanza(&mut self) -> Result<Option<Stanza>> {
        let mut stanza = Stanza::default();
        let mut size = 0usize;
        while let Some(line) = self.next_line()? {
            if (self.comments && line.starts_with('#')) || line == SKIPPED {
                continue;
            }
            if line.trim().is_empty() {
                if stanza.fields.is_empty() {
                    continue;
                }
                return Ok(Some(stanza));
            }
            size += line.len() + 1;
            if size > MAX_STANZA {
                return Err(self.syntax(format!("stanza larger than {MAX_STANZA} bytes")));
            }
            self.add_line(&mut stanza, line)?;
        }
        Ok((!stanza.fields.is_empty()).then_some(stanza))
    }

    fn add_line(&self, stanza: &mut Stanza, line: String) -> Result<()> {
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = stanza.fields.last_mut() else {
                return Err(self.syntax("a continuation line before any field"));
            };
            value.push('\n');
            value.push_str(&line);
            return Ok(());
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(self.syntax(format!("expected `Field: value`, found {:?}", truncate(&line))));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(self.syntax(format!("bad field name {:?}", truncate(name))));
        }
        if stanza.fields.is_empty() {
            stanza.line = self.line;
        }
        stanza.fields.push((name.to_string(), value.trim().to_string()));
        Ok(())
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Stanza>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_stanza().transpose()
    }
}

/// Parses all stanzas of a small text (a control file, a Release text).
pub fn parse_all(text: &str, what: &str, comments: bool) -> Result<Vec<Stanza>> {
    Reader::new(text.as_bytes(), what, comments).collect()
}

/// At most 80 characters of `s`, for messages about hostile input.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_fields_and_continuations() {
        let text = "Package: a\nDescription: short\n long line\n .\n\n\nPackage: b\nversion: 1\n";
        let all = parse_all(text, "t", false).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].get("description"), Some("short\n long line\n ."));
        assert_eq!(all[1].get("Version"), Some("1"));
        assert_eq!(all[1].line, 7);
        assert_eq!(all[0].to_text(), "Package: a\nDescription: short\n long line\n .\n");
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_all("Package: a\nnot a field\n", "x/Packages", false).unwrap_err();
        assert!(err.to_string().starts_with("x/Packages:2:"), "{err}");
        let err = parse_all(" cont\n", "y", false).unwrap_err();
        assert!(err.to_string().contains("continuation"), "{err}");
    }

    #[test]
    fn long_lines_are_refused() {
        let long = format!("A: {}\n", "x".repeat(MAX_LINE as usize + 10));
        let err = parse_all(&long, "big", false).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
    }

    #[test]
    fn only_some_fields() {
        let text = "Package: a\nDescription: d\n more\nVersion: 1\n\nPackage: b\nNoColon\n";
        let mut r = Reader::new(text.as_bytes(), "t", false).only_fields(&["package", "Version"]);
        let first = r.next_stanza().unwrap().unwrap();
        assert_eq!(first.fields, [("Package".into(), "a".into()), ("Version".into(), "1".into())]);
        assert!(r.next_stanza().is_err(), "a line without a colon is still an error");
    }

    #[test]
    fn comments_only_where_allowed() {
        let all = parse_all("# c\nTypes: deb\n#x\nURIs: u\n", "s", true).unwrap();
        assert_eq!(all[0].fields.len(), 2);
        assert!(parse_all("# c\nTypes: deb\n", "s", false).is_err());
    }
}
