//! What a comparison found, in one model for both outputs: `--json` serializes it as
//! it is (one document, every difference), the human form groups it by platform and
//! layer and shortens long lists. Scripts select on `kind` and `change`.

use super::layer::Entry;
use pinfold_image::digest::Digest;
use serde_json::Value;
use std::fmt::Write as _;

/// Which of the two images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn letter(self) -> &'static str {
        match self {
            Side::A => "A",
            Side::B => "B",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SideInfo {
    pub reference: String,
    /// The top object: the index, the manifest, or a docker-archive's config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// A blob whose bytes are not the ones its digest names: the image is not what it
/// claims to be. `expected` and `actual` are digests, or sizes for a size mismatch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tampered {
    pub side: Side,
    pub blob: String,
    pub expected: String,
    pub actual: String,
}

/// Which JSON document a field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Object {
    Index,
    Manifest,
    Config,
}

/// A layer as a manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerRef {
    /// Position in its manifest, from 0.
    pub index: usize,
    pub digest: Digest,
    pub diff_id: String,
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Difference {
    /// A platform that only one image has.
    PlatformOnly { side: Side, platform: String, manifest: Digest },
    /// A field of an index, manifest or config.
    Json {
        object: Object,
        #[serde(skip_serializing_if = "Option::is_none")]
        platform: Option<String>,
        path: String,
        a: Option<Value>,
        b: Option<Value>,
    },
    /// The same JSON value written with other bytes (key order, white space).
    Encoding {
        object: Object,
        #[serde(skip_serializing_if = "Option::is_none")]
        platform: Option<String>,
        a: Digest,
        b: Digest,
    },
    /// A layer only one image has.
    LayerOnly { side: Side, platform: String, layer: LayerRef },
    /// The same uncompressed content (same diff_id) compressed to other bytes.
    LayerCompression { platform: String, a: LayerRef, b: LayerRef },
    /// Other content: the files that differ.
    LayerContent {
        platform: String,
        a: LayerRef,
        b: LayerRef,
        files: Vec<FileDiff>,
        /// Why `files` is empty or incomplete, when it is.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The top objects differ and nothing below them explains it (a safety net, so
    /// that different digests never read as "no differences").
    Unexplained { a: Digest, b: Digest },
}

/// One way in which one path differs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileDiff {
    pub path: String,
    #[serde(flatten)]
    pub change: FileChange,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum FileChange {
    Added {
        entry: Entry,
    },
    Removed {
        entry: Entry,
    },
    Content {
        size_a: u64,
        size_b: u64,
        sha256_a: Option<Digest>,
        sha256_b: Option<Digest>,
    },
    Mode {
        a: String,
        b: String,
    },
    Owner {
        a: String,
        b: String,
    },
    Mtime {
        a: u64,
        b: u64,
    },
    LinkTarget {
        a: Option<String>,
        b: Option<String>,
    },
    EntryType {
        a: String,
        b: String,
    },
    /// The entry is elsewhere in the tar's order (indexes count every entry).
    Order {
        index_a: usize,
        index_b: usize,
    },
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub a: SideInfo,
    pub b: SideInfo,
    pub semantic: bool,
    /// The same image bit for bit: same digests, nothing tampered.
    pub identical: bool,
    /// Nothing to report; with `semantic`, nothing that semantic mode keeps.
    pub equal: bool,
    pub tampered: Vec<Tampered>,
    pub differences: Vec<Difference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(a: SideInfo, b: SideInfo, semantic: bool) -> Self {
        Report {
            a,
            b,
            semantic,
            identical: false,
            equal: false,
            tampered: Vec::new(),
            differences: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds the findings of `other` (another view of the same images), naming the
    /// view in its notes.
    pub fn absorb(&mut self, other: Report, view: &str) {
        for t in other.tampered {
            if !self.tampered.contains(&t) {
                self.tampered.push(t);
            }
        }
        if !other.differences.is_empty() {
            self.notes.push(format!("{view}: {} difference(s), listed after the others", other.differences.len()));
        }
        self.differences.extend(other.differences);
        self.notes.extend(other.notes.into_iter().map(|n| format!("{view}: {n}")));
        self.identical &= other.identical;
        self.equal &= other.equal;
        self.settle();
    }

    /// Sets `equal` and `identical` from the findings.
    pub fn settle(&mut self) {
        self.equal = self.tampered.is_empty() && self.differences.is_empty();
        self.identical &= self.tampered.is_empty() && (self.semantic || self.differences.is_empty());
    }

    /// Every file-level path named by the differences, for tests and summaries.
    pub fn changed_paths(&self) -> Vec<&str> {
        self.differences
            .iter()
            .flat_map(|d| match d {
                Difference::LayerContent { files, .. } => files.iter().map(|f| f.path.as_str()).collect(),
                _ => Vec::new(),
            })
            .collect()
    }
}

/// Files listed per layer in the human form; `--json` lists all of them.
const HUMAN_FILE_LIMIT: usize = 60;

fn value_text(v: &Option<Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => {
            let text = v.to_string();
            if text.len() > 200 {
                format!("{}…", &text[..text.char_indices().nth(200).map_or(text.len(), |(i, _)| i)])
            } else {
                text
            }
        }
    }
}

fn opt_digest(d: &Option<Digest>) -> String {
    d.map_or("-".into(), |d| d.to_string())
}

fn layer_text(l: &LayerRef) -> String {
    format!("{} ({} bytes, {})", l.digest, l.size, l.media_type.rsplit('.').next().unwrap_or(&l.media_type))
}

fn entry_text(e: &Entry) -> String {
    let mut s = format!("{} {:04o} {}", e.kind.name(), e.mode, e.owner());
    if let Some(sha) = e.sha256 {
        let _ = write!(s, ", {} bytes {sha}", e.size);
    }
    if let Some(l) = &e.link {
        let _ = write!(s, " -> {l}");
    }
    s
}

fn file_line(f: &FileDiff) -> String {
    let p = format!("/{}", f.path);
    match &f.change {
        FileChange::Added { entry } => format!("+ {p}  ({})", entry_text(entry)),
        FileChange::Removed { entry } => format!("- {p}  ({})", entry_text(entry)),
        FileChange::Content { size_a, size_b, sha256_a, sha256_b } => {
            format!("~ {p}  content: {size_a} bytes {} → {size_b} bytes {}", opt_digest(sha256_a), opt_digest(sha256_b))
        }
        FileChange::Mode { a, b } => format!("~ {p}  mode: {a} → {b}"),
        FileChange::Owner { a, b } => format!("~ {p}  owner: {a} → {b}"),
        FileChange::Mtime { a, b } => format!("~ {p}  mtime: {a} ({}) → {b} ({})", time_text(*a), time_text(*b)),
        FileChange::LinkTarget { a, b } => {
            format!("~ {p}  link target: {} → {}", a.as_deref().unwrap_or("(none)"), b.as_deref().unwrap_or("(none)"))
        }
        FileChange::EntryType { a, b } => format!("~ {p}  entry type: {a} → {b}"),
        FileChange::Order { index_a, index_b } => format!("~ {p}  entry order: #{index_a} → #{index_b}"),
    }
}

fn time_text(secs: u64) -> String {
    pinfold_image::oci::assemble::rfc3339(secs.min(253_402_300_799))
}

/// The human form: a verdict line, then the findings.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let digest = |s: &SideInfo| s.digest.map_or("-".into(), |d| d.to_string());
    let _ = writeln!(out, "A: {} {}", report.a.reference, digest(&report.a));
    let _ = writeln!(out, "B: {} {}", report.b.reference, digest(&report.b));
    let verdict = if !report.tampered.is_empty() {
        "TAMPERED: a blob is not what its digest names"
    } else if report.identical {
        "identical, bit for bit"
    } else if report.equal {
        "equal (--semantic: timestamps, entry order and compression ignored)"
    } else {
        "they differ"
    };
    let _ = writeln!(out, "{verdict}");
    for t in &report.tampered {
        let _ =
            writeln!(out, "  tampered ({}): {}: expected {}, found {}", t.side.letter(), t.blob, t.expected, t.actual);
    }
    let mut last_platform: Option<String> = None;
    for d in &report.differences {
        let platform = match d {
            Difference::Json { platform, .. } | Difference::Encoding { platform, .. } => platform.clone(),
            Difference::LayerOnly { platform, .. }
            | Difference::LayerCompression { platform, .. }
            | Difference::LayerContent { platform, .. } => Some(platform.clone()),
            _ => None,
        };
        if platform != last_platform {
            if let Some(p) = &platform {
                let _ = writeln!(out, "{p}:");
            }
            last_platform = platform.clone();
        }
        let indent = if platform.is_some() { "  " } else { "" };
        match d {
            Difference::PlatformOnly { side, platform, manifest } => {
                let _ = writeln!(out, "platform {platform} only in {} (manifest {manifest})", side.letter());
            }
            Difference::Json { object, path, a, b, .. } => {
                let _ = writeln!(out, "{indent}{} {path}: {} → {}", object_name(*object), value_text(a), value_text(b));
            }
            Difference::Encoding { object, a, b, .. } => {
                let _ = writeln!(out, "{indent}{}: bytes differ ({a} → {b}), JSON equal", object_name(*object));
            }
            Difference::LayerOnly { side, layer, .. } => {
                let sign = if *side == Side::A { "removed" } else { "added" };
                let _ = writeln!(
                    out,
                    "{indent}layer #{} {sign} (only in {}): {}",
                    layer.index + 1,
                    side.letter(),
                    layer_text(layer)
                );
            }
            Difference::LayerCompression { a, b, .. } => {
                let _ = writeln!(
                    out,
                    "{indent}layer #{}: compression differs, content equal (diff_id {}): {} → {}",
                    a.index + 1,
                    a.diff_id,
                    layer_text(a),
                    layer_text(b)
                );
            }
            Difference::LayerContent { a, b, files, note, .. } => {
                let position = if a.index == b.index {
                    format!("#{}", a.index + 1)
                } else {
                    format!("#{} → #{}", a.index + 1, b.index + 1)
                };
                let _ =
                    writeln!(out, "{indent}layer {position}: content differs: {} → {}", layer_text(a), layer_text(b));
                for f in files.iter().take(HUMAN_FILE_LIMIT) {
                    let _ = writeln!(out, "{indent}  {}", file_line(f));
                }
                if files.len() > HUMAN_FILE_LIMIT {
                    let _ = writeln!(
                        out,
                        "{indent}  … and {} more (--json lists them all)",
                        files.len() - HUMAN_FILE_LIMIT
                    );
                }
                if let Some(n) = note {
                    let _ = writeln!(out, "{indent}  ({n})");
                }
            }
            Difference::Unexplained { a, b } => {
                let _ = writeln!(out, "the top objects differ ({a} → {b}) and no difference was found below them");
            }
        }
    }
    for n in &report.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

fn object_name(o: Object) -> &'static str {
    match o {
        Object::Index => "index",
        Object::Manifest => "manifest",
        Object::Config => "config",
    }
}
