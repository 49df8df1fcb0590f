//! Function calls in the code of R and Julia one-liners (`R -e "install.packages(…)"`,
//! `julia -e 'using Pkg; Pkg.add(…)'`): the callee, and each argument with its name
//! (for `name = value`), its text and, for string literals and vectors of them
//! (`c("a", "b")`, `["a", "b"]`), the strings with their places.
//!
//! A small scanner written here rather than an R or Julia parser: the rules need only
//! calls by name and string literals, with byte positions, and must never misread
//! code they do not understand as a package. Anything unexpected ends the argument.

use std::ops::Range;

/// One argument of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// `repos` in `repos = "…"`.
    pub name: Option<String>,
    /// The value as written, trimmed.
    pub text: String,
    /// The string literals of the value when it is a string or a vector of strings;
    /// each with its range in the code (quotes excluded).
    pub strings: Vec<(String, Range<usize>)>,
    /// The value's range in the code.
    pub range: Range<usize>,
}

/// A call of a function named in `names` (e.g. `install.packages`,
/// `remotes::install_github`, `Pkg.add`).
#[derive(Debug, Clone)]
pub struct Call {
    pub name: String,
    pub args: Vec<Arg>,
    /// From the callee's name to the closing parenthesis.
    pub range: Range<usize>,
}

impl Call {
    pub fn named(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.name.as_deref() == Some(name))
    }

    /// The `i`th positional argument.
    pub fn positional(&self, i: usize) -> Option<&Arg> {
        self.args.iter().filter(|a| a.name.is_none()).nth(i)
    }
}

/// Codes longer than this are not scanned: one-liners are short.
const MAX_CODE: usize = 64 * 1024;

/// Every call of one of `names` in `code`. A name matches when it is not part of a
/// longer identifier (`xinstall.packages` is not `install.packages`); a `pkg::` or
/// `pkg:::` prefix is part of the name when the name has one.
pub fn find(code: &str, names: &[&str]) -> Vec<Call> {
    let mut out = Vec::new();
    if code.len() > MAX_CODE {
        return out;
    }
    let b = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b':';
    for name in names {
        let mut from = 0;
        while let Some(at) = code[from..].find(name).map(|i| i + from) {
            from = at + name.len();
            if at > 0 && ident(b[at - 1]) {
                continue;
            }
            let mut j = at + name.len();
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            if b.get(j) != Some(&b'(') {
                continue;
            }
            if let Some((args, end)) = arguments(code, j) {
                out.push(Call { name: name.to_string(), args, range: at..end });
            }
        }
    }
    out.sort_by_key(|c| c.range.start);
    out
}

/// The arguments of the call whose `(` is at `open`, and the offset after its `)`.
fn arguments(code: &str, open: usize) -> Option<(Vec<Arg>, usize)> {
    let b = code.as_bytes();
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    push_arg(code, start..i, &mut args);
                    return Some((args, i + 1));
                }
            }
            b',' if depth == 1 => {
                push_arg(code, start..i, &mut args);
                start = i + 1;
            }
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn push_arg(code: &str, range: Range<usize>, args: &mut Vec<Arg>) {
    let raw = &code[range.clone()];
    if raw.trim().is_empty() {
        return;
    }
    // `name = value` (not `==`).
    let (name, value_start) = match raw.find('=') {
        Some(eq)
            if raw.as_bytes().get(eq + 1) != Some(&b'=')
                && raw[..eq].trim().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
                && !raw[..eq].trim().is_empty() =>
        {
            (Some(raw[..eq].trim().to_string()), range.start + eq + 1)
        }
        _ => (None, range.start),
    };
    let value = &code[value_start..range.end];
    let lead = value.len() - value.trim_start().len();
    let vstart = value_start + lead;
    let text = value.trim().to_string();
    let vrange = vstart..vstart + text.len();
    args.push(Arg { name, strings: strings(code, vrange.clone()), text, range: vrange });
}

/// The string literals of a value that is a string, `c(…)` of strings or `[…]` of
/// strings; empty for anything else (a variable, a call).
fn strings(code: &str, range: Range<usize>) -> Vec<(String, Range<usize>)> {
    let text = &code[range.clone()];
    let inner_start = if text.starts_with("c(") {
        2
    } else if text.starts_with('[') || text.starts_with('(') {
        1
    } else if text.starts_with(['"', '\'']) {
        0
    } else {
        return Vec::new();
    };
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = inner_start;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'') => {
                let s = i + 1;
                let mut j = s;
                while j < b.len() && b[j] != q {
                    if b[j] == b'\\' {
                        return Vec::new(); // escapes: not read
                    }
                    j += 1;
                }
                out.push((text[s..j.min(b.len())].to_string(), range.start + s..range.start + j.min(b.len())));
                i = j + 1;
            }
            b' ' | b',' | b'\n' | b'\t' | b')' | b']' => i += 1,
            _ => return Vec::new(), // not only strings
        }
        if inner_start == 0 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_string_arguments() {
        let code = r#"install.packages(c("dplyr", 'ggplot2'), repos = "https://cran.example.org"); remotes::install_github("org/pkg@v1", upgrade="never")"#;
        let calls = find(code, &["install.packages", "remotes::install_github", "install_github"]);
        assert_eq!(calls.len(), 2);
        let pkgs = &calls[0].positional(0).expect("pkgs").strings;
        assert_eq!(pkgs.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["dplyr", "ggplot2"]);
        assert_eq!(&code[pkgs[1].1.clone()], "ggplot2");
        assert_eq!(calls[0].named("repos").map(|a| a.strings[0].0.as_str()), Some("https://cran.example.org"));
        assert_eq!(calls[1].name, "remotes::install_github");
        assert!(find("xinstall.packages('a')", &["install.packages"]).is_empty());
        assert!(find("install.packages(pkgs)", &["install.packages"])[0].args[0].strings.is_empty());
        assert!(find("install.packages(", &["install.packages"]).is_empty());
    }
}
