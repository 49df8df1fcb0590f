//! `pinfold lint --fix`: writes in what is known without the network. Today that is
//! the digest of a `base` read from a local OCI layout (PF105), looked up in the
//! layout's `index.json`. A `pinfold.lock` beside the build file would be the other
//! source; its format is not settled, so it is not read yet.
//!
//! Fixes are insertions only, applied to the original text, and the file is replaced
//! atomically, so every byte that is not part of a fix stays as it was.

use super::buildfile::Field;
use super::rule::Edit;
use crate::digest::Digest;
use std::io::Read;
use std::path::Path;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The digest that the layout at `path` (a directory or an oci-archive tar) lists for
/// `reference`, or for its only image when no reference is given.
pub fn layout_digest(path: &Path, reference: Option<&str>) -> Result<Digest, String> {
    let index = read_index(path)?;
    let value: serde_json::Value =
        serde_json::from_slice(&index).map_err(|e| format!("{}: index.json is not JSON: {e}", path.display()))?;
    let manifests = value
        .get("manifests")
        .and_then(|m| m.as_array())
        .ok_or_else(|| format!("{}: index.json has no manifests", path.display()))?;
    let chosen: Vec<&serde_json::Value> = match reference {
        Some(r) => manifests
            .iter()
            .filter(|m| {
                m.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1"))).and_then(|v| v.as_str()) == Some(r)
            })
            .collect(),
        None => manifests.iter().collect(),
    };
    let one = match chosen.as_slice() {
        [one] => *one,
        [] => {
            return Err(match reference {
                Some(r) => format!("{}: no image has the ref name `{r}`", path.display()),
                None => format!("{}: the layout holds no image", path.display()),
            })
        }
        many => return Err(format!("{}: {} images match; name one with `ref`", path.display(), many.len())),
    };
    let digest = one
        .get("digest")
        .and_then(|d| d.as_str())
        .ok_or_else(|| format!("{}: the manifest entry has no digest", path.display()))?;
    digest.parse::<Digest>().map_err(|e| format!("{}: `{digest}`: {e}", path.display()))
}

fn read_index(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        return std::fs::read(path.join("index.json")).map_err(|e| format!("{}/index.json: {e}", path.display()));
    }
    // An oci-archive: a tar of the layout.
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut archive = tar::Archive::new(file);
    let entries = archive.entries().map_err(|e| format!("{}: {e}", path.display()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
        let is_index = entry
            .path()
            .map(|p| {
                p.components()
                    .filter(|c| !matches!(c, std::path::Component::CurDir))
                    .eq(Path::new("index.json").components())
            })
            .unwrap_or(false);
        if is_index {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(buf);
        }
    }
    Err(format!("{}: no index.json in the archive", path.display()))
}

/// The edit that adds `digest` next to `anchor` (the base's `ref` or `layout`): as a
/// property after it when it is one, else as a child node on the line after it, with
/// its indentation.
pub fn insert_digest(text: &str, anchor: &Field, digest: &Digest) -> Edit {
    let end = anchor.span.end;
    if anchor.entry.name().is_some() {
        return Edit { offset: end, insert: format!(" digest=\"{digest}\"") };
    }
    let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    let indent: String = text[line_start..].chars().take_while(|c| *c == ' ' || *c == '\t').collect();
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let after = &text[end..line_end];
    // `{ layout "x"; ref "y" }` on one line: stay on it.
    let code_after = after.split("//").next().unwrap_or("");
    if code_after.contains(';') || code_after.contains('}') {
        return Edit { offset: end, insert: format!("; digest \"{digest}\"") };
    }
    let line_end = if text[..line_end].ends_with('\r') { line_end - 1 } else { line_end };
    let newline = if text[line_end..].starts_with("\r\n") { "\r\n" } else { "\n" };
    Edit { offset: line_end, insert: format!("{newline}{indent}digest \"{digest}\"") }
}

/// Applies insertions to `text`; edits at the same offset keep their order.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| e.offset);
    let mut out = String::with_capacity(text.len() + edits.iter().map(|e| e.insert.len()).sum::<usize>());
    let mut at = 0;
    for e in sorted {
        let offset = e.offset.min(text.len());
        if !text.is_char_boundary(offset) || offset < at {
            continue;
        }
        out.push_str(&text[at..offset]);
        out.push_str(&e.insert);
        at = offset;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_keeps_everything_else() {
        let edits = [Edit { offset: 3, insert: "X".into() }, Edit { offset: 1, insert: "Y".into() }];
        assert_eq!(apply("abcdef", &edits), "aYbcXdef");
    }
}
