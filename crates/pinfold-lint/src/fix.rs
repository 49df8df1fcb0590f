//! `pinfold lint --fix`: writes in what is known without the network:
//!
//! - the pins of `pinfold.lock` beside the build file: a base's `digest`, a download's
//!   or archive's `sha256` (for the same URL or path), exactly as `pinfold build` would
//!   take them from the lock;
//! - the digest of a base read from a local OCI layout, oci-archive or docker-archive,
//!   from the layout's `index.json` (or the archive's `manifest.json`).
//!
//! Fixes are insertions only, applied to the original text, and the file is replaced
//! atomically, so every byte that is not part of a fix stays as it was.

use super::buildfile::Field;
use super::rule::Edit;
use pinfold_image::digest::Digest;
use std::io::Read;
use std::path::Path;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The local sources a base can be read from, as the build file names them.
pub const LOCAL_SOURCES: &[&str] = &["layout", "oci-archive", "docker-archive"];

/// The digest that pins a base read from a local source: the top object of a layout
/// or an oci-archive, the image config of a docker-archive (its format has no
/// manifest of its own).
pub fn local_base_digest(kind: &str, path: &Path, reference: Option<&str>) -> Result<Digest, String> {
    if kind == "docker-archive" {
        docker_archive_digest(path, reference)
    } else {
        layout_digest(path, reference)
    }
}

/// The pins of `pinfold.lock` in `dir`, when there is a readable one. A lock that
/// cannot be read gives no fixes; `pinfold build` reports it.
pub fn read_lock(dir: &Path) -> Option<pinfold_lang::lock::Lock> {
    pinfold_lang::lock::Lock::read(&dir.join(pinfold_lang::lock::LOCK_FILE)).ok().flatten()
}

/// A sha256 as the build file writes it: 64 hex digits, without `sha256:`.
pub fn bare_sha256(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then_some(hex)
}

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

/// The digest of the image config that a docker-archive's `manifest.json` names for
/// `reference` (one of its `RepoTags`), or for its only image. The config is hashed,
/// not taken from its file name.
fn docker_archive_digest(path: &Path, reference: Option<&str>) -> Result<Digest, String> {
    let manifest = read_tar_entry(path, "manifest.json")?;
    let value: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(|e| format!("{}: manifest.json is not JSON: {e}", path.display()))?;
    let images = value.as_array().ok_or_else(|| format!("{}: manifest.json is not a list", path.display()))?;
    let chosen: Vec<&serde_json::Value> = match reference {
        Some(r) => images
            .iter()
            .filter(|m| {
                m.get("RepoTags").and_then(|t| t.as_array()).is_some_and(|t| t.iter().any(|x| x.as_str() == Some(r)))
            })
            .collect(),
        None => images.iter().collect(),
    };
    let one = match chosen.as_slice() {
        [one] => *one,
        [] => return Err(format!("{}: no image is tagged `{}`", path.display(), reference.unwrap_or("?"))),
        many => return Err(format!("{}: {} images match; name one with `ref`", path.display(), many.len())),
    };
    let config = one
        .get("Config")
        .and_then(|c| c.as_str())
        .ok_or_else(|| format!("{}: the manifest entry names no config", path.display()))?;
    Ok(Digest::of(&read_tar_entry(path, config)?))
}

/// One file of a tar archive, by its path inside the archive.
fn read_tar_entry(path: &Path, name: &str) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut archive = tar::Archive::new(file);
    let entries = archive.entries().map_err(|e| format!("{}: {e}", path.display()))?;
    let wanted: Vec<_> = Path::new(name).components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
        let matches = entry
            .path()
            .map(|p| p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).eq(wanted.iter().copied()))
            .unwrap_or(false);
        if matches {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(buf);
        }
    }
    Err(format!("{}: no {name} in the archive", path.display()))
}

fn read_index(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        return std::fs::read(path.join("index.json")).map_err(|e| format!("{}/index.json: {e}", path.display()));
    }
    // An oci-archive: a tar of the layout.
    read_tar_entry(path, "index.json")
}

/// The edit that adds `digest` next to `anchor` (the base's source or `ref`).
pub fn insert_digest(text: &str, anchor: &Field, digest: &Digest) -> Edit {
    insert_field(text, anchor, "digest", &digest.to_string())
}

/// The edit that adds `key "value"` next to `anchor`: as a property after it when it is
/// one, else as a child node on the line after it, with its indentation.
pub fn insert_field(text: &str, anchor: &Field, key: &str, value: &str) -> Edit {
    let end = anchor.span.end;
    if anchor.entry.name().is_some() {
        return Edit { offset: end, insert: format!(" {key}=\"{value}\"") };
    }
    let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    let indent: String = text[line_start..].chars().take_while(|c| *c == ' ' || *c == '\t').collect();
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let after = &text[end..line_end];
    // `{ layout "x"; ref "y" }` on one line: stay on it.
    let code_after = after.split("//").next().unwrap_or("");
    if code_after.contains(';') || code_after.contains('}') {
        return Edit { offset: end, insert: format!("; {key} \"{value}\"") };
    }
    let line_end = if text[..line_end].ends_with('\r') { line_end - 1 } else { line_end };
    let newline = if text[line_end..].starts_with("\r\n") { "\r\n" } else { "\n" };
    Edit { offset: line_end, insert: format!("{newline}{indent}{key} \"{value}\"") }
}

/// Why `--fix` left a finding: what the fix needs that lint does not have.
pub fn why_not(f: &super::Finding) -> &'static str {
    match f.rule.id {
        "PF201" | "PF202" | "PF203" => {
            "a Dockerfile's FROM digest needs the registry or a lock, and lint does not use the network: `docker buildx imagetools inspect IMAGE` prints it, or `pinfold import` then `pinfold lock` records it"
        }
        "PF101" | "PF103" => "no pin for this base in pinfold.lock: `pinfold lock` resolves it from the registry",
        "PF105" => "the local layout does not say which digest (see the finding's help)",
        "PF106" => "no sha256 for this URL in pinfold.lock: `pinfold lock` downloads the file and records it",
        "PF204" | "PF310" => "a checksum needs the file, and lint does not download: `sha256sum FILE` gives it",
        "PF301" | "PF302" | "PF303" | "PF304" | "PF307" | "PF308" | "PF312" | "PF315" | "PF316" | "PF401" | "PF403"
        | "PF405" => {
            "which version to pin is a resolver's choice, not lint's: `pinfold lock` pins the `debian` and `python` inputs that `pinfold import` writes from this file"
        }
        "PF001" | "PF002" | "PF003" => "a suppression is the author's decision",
        _ => "the fix is a decision lint cannot make without asking",
    }
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
