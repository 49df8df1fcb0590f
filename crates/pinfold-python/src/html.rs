//! The HTML form of a project page (PEP 503 with PEP 592/658/714 attributes).
//!
//! Why hand-written: the JSON form (PEP 691) is what indexes serve today and is read with
//! serde; this is the fallback for an index that serves HTML only. Such a page is a list
//! of `<a href=… data-…>filename</a>` anchors, so a bounded anchor scanner is enough, and
//! a full HTML5 parser (html5ever and its dependencies) would be far more code to trust.
//! Anything that is not an anchor is skipped.

use std::collections::BTreeMap;

/// One anchor: its attributes (names lowercased, values unescaped) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub attrs: BTreeMap<String, String>,
    pub text: String,
}

/// At most this many anchors are read from one page.
const MAX_ANCHORS: usize = 1_000_000;

/// All anchors of `html`, in document order.
pub(crate) fn anchors(html: &str) -> Vec<Anchor> {
    let mut out = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(start) = lower[pos..].find("<a").map(|i| pos + i) {
        pos = start + 2;
        if !lower[pos..].starts_with(|c: char| c.is_ascii_whitespace() || c == '>') {
            continue;
        }
        let Some((attrs, after_tag)) = parse_attrs(html, pos) else { break };
        let end = lower[after_tag..].find("</a").map_or(html.len(), |i| after_tag + i);
        out.push(Anchor { attrs, text: unescape(html[after_tag..end].trim()) });
        pos = end;
        if out.len() >= MAX_ANCHORS {
            break;
        }
    }
    out
}

/// Reads `name="value" name='value' name=value name` up to `>`; returns the attributes
/// and the index after `>`.
fn parse_attrs(html: &str, mut i: usize) -> Option<(BTreeMap<String, String>, usize)> {
    let b = html.as_bytes();
    let mut attrs = BTreeMap::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        if b[i] == b'>' {
            return Some((attrs, i + 1));
        }
        let name_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = html[name_start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = if i < b.len() && b[i] == b'=' {
            let (v, next) = attr_value(html, i + 1)?;
            i = next;
            unescape(v)
        } else {
            String::new()
        };
        attrs.insert(name, value);
    }
}

fn attr_value(html: &str, mut i: usize) -> Option<(&str, usize)> {
    let b = html.as_bytes();
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let quote = *b.get(i)?;
    if quote == b'"' || quote == b'\'' {
        let end = html[i + 1..].find(quote as char)? + i + 1;
        return Some((&html[i + 1..end], end + 1));
    }
    let start = i;
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
        i += 1;
    }
    Some((&html[start..i], i))
}

/// Decodes the character references an index writes (`&gt;`, `&#62;`, `&#x3e;`, …).
pub(crate) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest.bytes().take(12).position(|b| b == b';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        match decode_entity(&rest[1..semi]) {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pep503_anchors() {
        let html = r#"<!DOCTYPE html><html><body><h1>Links for x</h1>
<a href="../../files/x-1.0-py3-none-any.whl#sha256=ab12" data-requires-python="&gt;=3.8" data-dist-info-metadata="sha256=cd34">x-1.0-py3-none-any.whl</a><br/>
<A HREF='x-0.9.tar.gz' data-yanked>x-0.9.tar.gz</A>
<abbr>not an anchor</abbr><a href=x-2.whl data-core-metadata=true >x-2.whl</a>
</body></html>"#;
        let a = anchors(html);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].attrs["data-requires-python"], ">=3.8");
        assert_eq!(a[0].attrs["href"], "../../files/x-1.0-py3-none-any.whl#sha256=ab12");
        assert_eq!(a[1].text, "x-0.9.tar.gz");
        assert!(a[1].attrs.contains_key("data-yanked"));
        assert_eq!(a[2].attrs["data-core-metadata"], "true");
    }

    #[test]
    fn hostile_markup_does_not_panic() {
        for html in ["<a", "<a href=\"", "<a href='x'>", "&#xffffffff; &#; &", "<a\u{e9}>", "<a x=>"] {
            let _ = anchors(html);
            let _ = unescape(html);
        }
        assert_eq!(unescape("a&lt;b&#62;c&#x3D;&bogus;"), "a<b>c=&bogus;");
    }
}
