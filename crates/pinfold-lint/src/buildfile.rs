//! The build file as the lint rules see it: the KDL document read with the `kdl`
//! crate directly (not through `pinfold_lang`, so that lint keeps working on files the
//! build would reject, and does not move with the language's validation), plus the
//! span helpers the rules share. A field may be written as a property
//! (`base x layout="d"`) or as a child node (`layout "d"`); [`field`] finds either.

use super::mapped::MappedText;
use super::rule::Ctx;
use super::rules;
use super::shell::Script;
use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use std::ops::Range;

pub struct BuildFile<'a> {
    pub text: &'a str,
    pub doc: KdlDocument,
}

/// A field's value and where it is written.
pub struct Field<'n> {
    pub value: &'n KdlValue,
    /// The value itself (without `key=`), quotes included.
    pub span: Range<usize>,
    pub entry: &'n KdlEntry,
}

impl<'n> Field<'n> {
    pub fn as_str(&self) -> Option<&'n str> {
        self.value.as_string()
    }
}

impl<'a> BuildFile<'a> {
    pub fn parse(text: &'a str) -> Result<BuildFile<'a>, kdl::KdlError> {
        // Bounded (size, nesting) before the recursive KDL parser sees the text.
        Ok(BuildFile { text, doc: pinfold_lang::parse::parse_kdl_bounded(text)? })
    }

    /// Top-level nodes with this name.
    pub fn top<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s KdlNode> + 's {
        self.doc.nodes().iter().filter(move |n| n.name().value() == name)
    }

    /// Every node at any depth, parents before children.
    pub fn all_nodes(&self) -> Vec<&KdlNode> {
        fn walk<'d>(doc: &'d KdlDocument, out: &mut Vec<&'d KdlNode>) {
            for n in doc.nodes() {
                out.push(n);
                if let Some(c) = n.children() {
                    walk(c, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.doc, &mut out);
        out
    }

    /// A field of a node: the property `key=…` or the first argument of the child
    /// node `key …`.
    pub fn field<'n>(&self, node: &'n KdlNode, key: &str) -> Option<Field<'n>> {
        if let Some(e) = node.entries().iter().find(|e| e.name().is_some_and(|n| n.value() == key)) {
            return Some(Field { value: e.value(), span: value_span(self.text, e), entry: e });
        }
        let child = children(node).find(|c| c.name().value() == key)?;
        let e = child.entries().iter().find(|e| e.name().is_none())?;
        Some(Field { value: e.value(), span: value_span(self.text, e), entry: e })
    }

    /// True when the node has the property or a child node of this name.
    pub fn has(&self, node: &KdlNode, key: &str) -> bool {
        node.entries().iter().any(|e| e.name().is_some_and(|n| n.value() == key))
            || children(node).any(|c| c.name().value() == key)
    }

    /// The value of a string entry as shell text mapped to the file.
    pub fn mapped(&self, entry: &KdlEntry) -> Option<MappedText> {
        let value = entry.value().as_string()?;
        let span = value_span(self.text, entry);
        let raw = self.text.get(span.clone())?;
        // A plain "…" or #"…"# string without escapes maps byte for byte; anything
        // else (escapes, dedented multi-line strings) maps to the whole string.
        let hashes = raw.len() - raw.trim_start_matches('#').len();
        let inner = raw.get(hashes..raw.len().saturating_sub(hashes)).unwrap_or("");
        if inner.len() >= 2 && !inner.starts_with("\"\"\"") {
            let body = &inner[1..inner.len() - 1];
            if body == value {
                return Some(MappedText::exact(value, span.start + hashes + 1));
            }
        }
        Some(MappedText::coarse(value, span))
    }
}

pub fn children(node: &KdlNode) -> impl Iterator<Item = &KdlNode> {
    node.children().into_iter().flat_map(|d| d.nodes().iter())
}

/// The span of an entry's value, without `key=` or a `(type)` annotation.
pub fn value_span(text: &str, entry: &KdlEntry) -> Range<usize> {
    let span = entry.span();
    let range = span.offset()..span.offset() + span.len();
    let Some(raw) = text.get(range.clone()) else {
        return range;
    };
    let mut start = 0;
    if entry.name().is_some() {
        // The key may itself be a quoted string containing `=`; the value starts
        // after the first `=` outside quotes.
        let mut quoted = false;
        for (i, c) in raw.char_indices() {
            match c {
                '"' => quoted = !quoted,
                '=' if !quoted => {
                    start = i + 1;
                    break;
                }
                _ => {}
            }
        }
    }
    let rest = &raw[start..];
    let rest_trim = rest.trim_start();
    start += rest.len() - rest_trim.len();
    if rest_trim.starts_with('(') {
        if let Some(close) = rest_trim.find(')') {
            start += close + 1;
        }
    }
    range.start + start..range.end
}

/// The node's name and its entries on the first line: where a finding about a whole
/// node points.
pub fn head_span(text: &str, node: &KdlNode) -> Range<usize> {
    let name = node.name().span();
    let start = name.offset();
    let mut end = start + name.len();
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    for e in node.entries() {
        let s = e.span();
        if s.offset() + s.len() <= line_end {
            end = end.max(s.offset() + s.len());
        }
    }
    start..end
}

/// Runs the build-file rules and, on every `run` of every `step`, the command rules.
pub fn check(ctx: &mut Ctx, bf: &BuildFile) {
    rules::pf101_base_without_digest::check(ctx, bf);
    rules::pf102_base_latest_tag::check(ctx, bf);
    rules::pf103_base_untagged::check(ctx, bf);
    rules::pf104_invalid_digest::check(ctx, bf);
    rules::pf105_layout_without_digest::check(ctx, bf);
    rules::pf106_download_without_sha256::check(ctx, bf);
    rules::pf107_moving_target_url::check(ctx, bf);
    rules::pf108_step_network::check(ctx, bf);
    rules::pf109_image_runs_as_root::check(ctx, bf);
    rules::pf110_secret_in_env::check(ctx, bf);
    for step in bf.top("step") {
        for run in children(step).filter(|c| c.name().value() == "run") {
            let args: Vec<(String, MappedText)> = run
                .entries()
                .iter()
                .filter(|e| e.name().is_none())
                .filter_map(|e| Some((e.value().as_string()?.to_string(), bf.mapped(e)?)))
                .collect();
            // One argument with spaces in it is a shell command line; several are an argv.
            let script = match args.as_slice() {
                [(text, mapped)] if text.contains(char::is_whitespace) => Script::parse(mapped),
                _ => Script::from_argv(&args),
            };
            ctx.unit = run.span().offset();
            rules::check_script(ctx, &script, &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_as_properties_or_children() {
        let text = "base a layout=\"x\" {\n    ref (t)\"r\"\n}\n";
        let bf = BuildFile::parse(text).expect("parses");
        let base = bf.top("base").next().expect("base");
        let layout = bf.field(base, "layout").expect("layout");
        assert_eq!(&text[layout.span.clone()], "\"x\"");
        let r = bf.field(base, "ref").expect("ref");
        assert_eq!(&text[r.span.clone()], "\"r\"");
        let m = bf.mapped(r.entry).expect("string");
        assert_eq!(&text[m.map_range(0..1)], "r");
        assert_eq!(&text[head_span(text, base)], "base a layout=\"x\"");
    }
}
