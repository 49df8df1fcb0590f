//! Comparing images, which is how pinfold proves its promise: `pinfold diff` says how
//! two images differ, `pinfold verify` rebuilds an image from its sources and compares
//! it with a published one, and `pinfold build --check` builds the same sources under
//! perturbed conditions and compares the results. All three use the one engine here.
//!
//! The engine walks both images top-down and reads only as deep as the question
//! requires: index → manifests (matched by platform) → configs (field by field) →
//! layers (aligned by diff_id). A layer is read to its end in every case, because
//! nothing published is trusted: a blob that does not hash to its name is reported as
//! **tampered**. Same blob: only its digest is checked. Same diff_id, other blob: the
//! uncompressed content is checked against the diff_id ("compression differs, content
//! equal"). Other content: every tar entry is compared, with a streaming sha256 of
//! each file ([`layer`]).
//!
//! A tampered blob makes the answer "no" (exit 1), not an error (exit 2): the image
//! could be read and it is not the image it claims to be, which is exactly what
//! verify exists to say. Exit 2 is kept for what stops the comparison itself
//! (unreadable files, bad references, a build that fails).
//!
//! `--semantic` (as diffoci's semantic mode) ignores timestamps (config `created`,
//! history times, the `org.opencontainers.image.created` annotation, file mtimes),
//! the order of tar entries, and compression (layer blobs and media types, JSON
//! encodings, tar header encodings).

pub mod align;
pub mod check;
pub mod git;
pub mod json;
pub mod layer;
pub mod packages;
pub mod provenance;
pub mod report;
pub mod sbom;
pub mod source;
pub mod verify;

pub use report::{Difference, FileChange, FileDiff, Report, Side, SideInfo, Tampered};
pub use source::View;

use crate::build::BuildError;
use align::Step;
use layer::{Depth, Entry, Scan};
use pinfold_image::digest::Digest;
use pinfold_image::oci::read::{platforms_match, LayerSource, PlatformImage, ReadError};
use rayon::prelude::*;
use report::{LayerRef, Object};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Ignore timestamps, entry order and compression.
    pub semantic: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{reference}: {source}")]
    Open { reference: String, source: ReadError },
    #[error(transparent)]
    Scan(#[from] layer::ScanError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error(transparent)]
    Provenance(#[from] provenance::ProvenanceError),
    #[error("cannot make a temporary directory: {0}")]
    Temp(std::io::Error),
}

const CREATED_ANNOTATION: &str = ".annotations.\"org.opencontainers.image.created\"";

/// Compares two opened images. Every blob it reads is checked against its digest.
pub fn compare(a: &View, b: &View, options: Options) -> Result<Report, CompareError> {
    let mut engine = Engine {
        options,
        report: Report::new(a.info(), b.info(), options.semantic),
        jobs: BTreeMap::new(),
        pending: Vec::new(),
        tampered: HashSet::new(),
    };
    let docker = a.is_docker() || b.is_docker();
    if docker {
        engine
            .report
            .notes
            .push("a docker-archive is compared by what `docker load` reads: one platform's config and layers".into());
    } else {
        engine.report.identical = a.image.top.digest == b.image.top.digest;
        engine.tops(a, b);
    }

    let mut taken = vec![false; b.image.manifests.len()];
    let mut pairs = Vec::new();
    for (i, ma) in a.image.manifests.iter().enumerate() {
        let found = b.image.manifests.iter().enumerate().position(|(j, mb)| !taken[j] && same_platform(ma, mb));
        match found {
            Some(j) => {
                taken[j] = true;
                pairs.push((i, j));
            }
            None => engine.platform_only(Side::A, a, ma, docker && !a.is_docker()),
        }
    }
    for (mb, _) in b.image.manifests.iter().zip(&taken).filter(|(_, taken)| !**taken) {
        engine.platform_only(Side::B, b, mb, docker && !b.is_docker());
    }
    if docker {
        engine.report.identical = !pairs.is_empty()
            && pairs.iter().all(|&(i, j)| {
                let (ma, mb) = (&a.image.manifests[i], &b.image.manifests[j]);
                ma.config_digest == mb.config_digest
                    && ma.layers.iter().map(|l| l.digest).eq(mb.layers.iter().map(|l| l.digest))
            });
    }
    for (i, j) in pairs {
        engine.platform(a, &a.image.manifests[i], b, &b.image.manifests[j], docker);
    }

    let scans = engine.run_jobs()?;
    engine.resolve(&scans);
    let report = &mut engine.report;
    if !docker && !report.identical && !report.semantic && report.differences.is_empty() && report.tampered.is_empty() {
        report.differences.push(Difference::Unexplained { a: a.image.top.digest, b: b.image.top.digest });
    }
    report.settle();
    Ok(engine.report)
}

fn same_platform(a: &PlatformImage, b: &PlatformImage) -> bool {
    match (&a.platform, &b.platform) {
        (Some(pa), Some(pb)) => platforms_match(pa, pb),
        (None, None) => true,
        _ => false,
    }
}

fn platform_name(m: &PlatformImage) -> String {
    m.platform.as_ref().map_or_else(|| "unknown platform".into(), |p| p.to_string())
}

fn parse(bytes: &[u8]) -> Value {
    // Every document was parsed once already by the reader; this cannot fail for them.
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// A blob to read, and what it must be.
struct Job {
    archive: Arc<pinfold_image::oci::archive::Archive>,
    label: String,
    layer: LayerSource,
    depth: Depth,
    /// diff_ids that configs give this blob.
    diff_ids: HashSet<String>,
    what: String,
}

/// A layer pair whose verdict waits for the scans.
enum Pending {
    Compression { platform: String, a: LayerRef, b: LayerRef },
    Content { platform: String, a: LayerRef, b: LayerRef },
}

struct Engine {
    options: Options,
    report: Report,
    jobs: BTreeMap<(Side, Digest), Job>,
    pending: Vec<Pending>,
    /// Blobs found not to be what their digests (or diff_ids) say.
    tampered: HashSet<(Side, Digest)>,
}

impl Engine {
    fn add_job(&mut self, side: Side, view: &View, layer: &LayerSource, diff_id: &str, depth: Depth, what: String) {
        let job = self.jobs.entry((side, layer.digest)).or_insert_with(|| Job {
            archive: view.image.archive.clone(),
            label: view.label.clone(),
            layer: layer.clone(),
            depth,
            diff_ids: HashSet::new(),
            what,
        });
        job.depth = job.depth.max(depth);
        job.diff_ids.insert(diff_id.to_string());
    }

    fn json(&mut self, object: Object, platform: Option<&str>, a: &Value, b: &Value, ignore: &[&str]) {
        for change in json::diff(a, b, ignore) {
            self.report.differences.push(Difference::Json {
                object,
                platform: platform.map(str::to_string),
                path: change.path,
                a: change.a,
                b: change.b,
            });
        }
    }

    /// Compares the top objects when they are indexes (a manifest at the top is
    /// compared with its platform).
    fn tops(&mut self, a: &View, b: &View) {
        let (ta, tb) = (&a.image.top, &b.image.top);
        if ta.digest == tb.digest {
            return;
        }
        let (va, vb) = (parse(&ta.bytes), parse(&tb.bytes));
        let (ia, ib) =
            (pinfold_image::oci::media::is_index(&ta.media_type), pinfold_image::oci::media::is_index(&tb.media_type));
        if ia != ib {
            self.report.differences.push(Difference::Json {
                object: Object::Index,
                platform: None,
                path: ".mediaType".into(),
                a: Some(Value::String(ta.media_type.clone())),
                b: Some(Value::String(tb.media_type.clone())),
            });
            return;
        }
        if !ia {
            return;
        }
        if va == vb {
            if !self.options.semantic {
                self.report.differences.push(Difference::Encoding {
                    object: Object::Index,
                    platform: None,
                    a: ta.digest,
                    b: tb.digest,
                });
            }
            return;
        }
        let strip = |mut v: Value, other_len: usize| {
            // The manifests themselves are compared platform by platform.
            if v["manifests"].as_array().map(Vec::len) == Some(other_len) {
                json::remove(&mut v, ".manifests[].digest");
                json::remove(&mut v, ".manifests[].size");
            } else {
                json::remove(&mut v, ".manifests");
            }
            v
        };
        let (la, lb) = (a.image.manifests.len(), b.image.manifests.len());
        let (sa, sb) = (strip(va, lb), strip(vb, la));
        let semantic = [CREATED_ANNOTATION, ".manifests[].annotations.\"org.opencontainers.image.created\""];
        let ignore: &[&str] = if self.options.semantic { &semantic } else { &[] };
        self.json(Object::Index, None, &sa, &sb, ignore);
    }

    /// A platform of one side only. `beside_docker_archive`: the other side is a
    /// docker-archive, which holds one platform by design; then it is only a note.
    fn platform_only(&mut self, side: Side, view: &View, m: &PlatformImage, beside_docker_archive: bool) {
        let platform = platform_name(m);
        if beside_docker_archive {
            self.report
                .notes
                .push(format!("{platform} of {} is not compared (a docker-archive holds one platform)", side.letter()));
            return;
        }
        self.report.differences.push(Difference::PlatformOnly {
            side,
            platform: platform.clone(),
            manifest: m.manifest_digest,
        });
        // Still checked: every blob of an image is what its digest says.
        for (n, (l, d)) in m.layers.iter().zip(m.config.rootfs().diff_ids()).enumerate() {
            self.add_job(side, view, l, d, Depth::Digest, format!("{platform} layer #{}", n + 1));
        }
    }

    fn platform(&mut self, a: &View, ma: &PlatformImage, b: &View, mb: &PlatformImage, docker: bool) {
        let platform = platform_name(ma);
        let semantic = self.options.semantic;
        if !docker && ma.manifest_digest != mb.manifest_digest {
            let (va, vb) = (parse(&ma.manifest_bytes), parse(&mb.manifest_bytes));
            if va == vb {
                if !semantic {
                    let d = Difference::Encoding {
                        object: Object::Manifest,
                        platform: Some(platform.clone()),
                        a: ma.manifest_digest,
                        b: mb.manifest_digest,
                    };
                    self.report.differences.push(d);
                }
            } else {
                let strip = |mut v: Value| {
                    json::remove(&mut v, ".config.digest");
                    json::remove(&mut v, ".config.size");
                    if ma.layers.len() == mb.layers.len() {
                        json::remove(&mut v, ".layers[].digest");
                        json::remove(&mut v, ".layers[].size");
                    } else {
                        json::remove(&mut v, ".layers");
                    }
                    v
                };
                let ignore: &[&str] = if semantic { &[".layers[].mediaType", CREATED_ANNOTATION] } else { &[] };
                self.json(Object::Manifest, Some(&platform), &strip(va), &strip(vb), ignore);
            }
        }
        if ma.config_digest != mb.config_digest {
            let (mut va, mut vb) = (parse(&ma.config_bytes), parse(&mb.config_bytes));
            if va == vb {
                if !semantic {
                    let d = Difference::Encoding {
                        object: Object::Config,
                        platform: Some(platform.clone()),
                        a: ma.config_digest,
                        b: mb.config_digest,
                    };
                    self.report.differences.push(d);
                }
            } else {
                // diff_ids are compared layer by layer below.
                json::remove(&mut va, ".rootfs.diff_ids");
                json::remove(&mut vb, ".rootfs.diff_ids");
                let ignore: &[&str] = if semantic { &[".created", ".history[].created"] } else { &[] };
                self.json(Object::Config, Some(&platform), &va, &vb, ignore);
            }
        }

        let refs = |m: &PlatformImage| -> Vec<LayerRef> {
            m.layers
                .iter()
                .zip(m.config.rootfs().diff_ids())
                .enumerate()
                .map(|(index, (l, d))| LayerRef {
                    index,
                    digest: l.digest,
                    diff_id: d.clone(),
                    size: l.size,
                    media_type: l.media_type.clone(),
                })
                .collect()
        };
        let (ra, rb) = (refs(ma), refs(mb));
        for step in align::align(&ra, &rb, |l| l.diff_id.clone()) {
            let what = |r: &LayerRef| format!("{platform} layer #{}", r.index + 1);
            match step {
                Step::Same(i, j) | Step::Changed(i, j) => {
                    let (la, lb) = (&ra[i], &rb[j]);
                    let depth = match step {
                        Step::Same(..) if la.digest == lb.digest => Depth::Digest,
                        Step::Same(..) => Depth::Content,
                        _ => Depth::Entries,
                    };
                    self.add_job(Side::A, a, &ma.layers[i], &la.diff_id, depth, what(la));
                    self.add_job(Side::B, b, &mb.layers[j], &lb.diff_id, depth, what(lb));
                    let (pa, pb, platform) = (la.clone(), lb.clone(), platform.clone());
                    match depth {
                        Depth::Digest => {}
                        Depth::Content => self.pending.push(Pending::Compression { platform, a: pa, b: pb }),
                        Depth::Entries => self.pending.push(Pending::Content { platform, a: pa, b: pb }),
                    }
                }
                Step::OnlyA(i) => {
                    self.add_job(Side::A, a, &ma.layers[i], &ra[i].diff_id, Depth::Digest, what(&ra[i]));
                    self.report.differences.push(Difference::LayerOnly {
                        side: Side::A,
                        platform: platform.clone(),
                        layer: ra[i].clone(),
                    });
                }
                Step::OnlyB(j) => {
                    self.add_job(Side::B, b, &mb.layers[j], &rb[j].diff_id, Depth::Digest, what(&rb[j]));
                    self.report.differences.push(Difference::LayerOnly {
                        side: Side::B,
                        platform: platform.clone(),
                        layer: rb[j].clone(),
                    });
                }
            }
        }
    }

    /// Reads every blob once, in parallel (layers of both sides at once), and
    /// records those that are not what their digests say.
    fn run_jobs(&mut self) -> Result<HashMap<(Side, Digest), Scan>, CompareError> {
        let jobs: Vec<(&(Side, Digest), &Job)> = self.jobs.iter().collect();
        let scans: Vec<((Side, Digest), Scan)> = jobs
            .par_iter()
            .map(|(key, job)| layer::scan(&job.archive, &job.layer.member, job.depth).map(|s| (**key, s)))
            .collect::<Result<_, _>>()?;
        let scans: HashMap<(Side, Digest), Scan> = scans.into_iter().collect();
        for ((side, digest), job) in &self.jobs {
            let scan = &scans[&(*side, *digest)];
            let before = self.report.tampered.len();
            let blob = format!("{} `{}` of {}", job.what, job.layer.member, job.label);
            if scan.digest != *digest {
                self.report.tampered.push(Tampered {
                    side: *side,
                    blob,
                    expected: digest.to_string(),
                    actual: scan.digest.to_string(),
                });
            } else if scan.size != job.layer.size {
                let (expected, actual) = (format!("{} bytes", job.layer.size), format!("{} bytes", scan.size));
                self.report.tampered.push(Tampered { side: *side, blob, expected, actual });
            } else if let Some(found) = scan.diff_id {
                let mut claimed: Vec<&String> = job.diff_ids.iter().collect();
                claimed.sort();
                for d in claimed.into_iter().filter(|d| **d != found.to_string()) {
                    self.report.tampered.push(Tampered {
                        side: *side,
                        blob: format!("uncompressed content of {blob} (its diff_id in the config)"),
                        expected: d.clone(),
                        actual: found.to_string(),
                    });
                }
            }
            if self.report.tampered.len() > before {
                self.tampered.insert((*side, *digest));
            }
        }
        Ok(scans)
    }

    fn tampered(&self, side: Side, digest: &Digest) -> bool {
        self.tampered.contains(&(side, *digest))
    }

    fn resolve(&mut self, scans: &HashMap<(Side, Digest), Scan>) {
        let mut shown: HashMap<(Digest, Digest), String> = HashMap::new();
        for pending in std::mem::take(&mut self.pending) {
            match pending {
                Pending::Compression { platform, a, b } => {
                    if !self.options.semantic
                        && !self.tampered(Side::A, &a.digest)
                        && !self.tampered(Side::B, &b.digest)
                    {
                        self.report.differences.push(Difference::LayerCompression { platform, a, b });
                    }
                }
                Pending::Content { platform, a, b } => {
                    let (sa, sb) = (&scans[&(Side::A, a.digest)], &scans[&(Side::B, b.digest)]);
                    let (files, note) = if self.tampered(Side::A, &a.digest) || self.tampered(Side::B, &b.digest) {
                        (
                            Vec::new(),
                            Some(
                                "files not compared: a blob is not the one its digest names (see tampered)".to_string(),
                            ),
                        )
                    } else if let Some(why) = sa.unreadable.as_ref().or(sb.unreadable.as_ref()) {
                        let side = if sa.unreadable.is_some() { "A" } else { "B" };
                        (Vec::new(), Some(format!("the content of {side}'s layer cannot be read: {why}")))
                    } else if let Some(first) = shown.get(&(a.digest, b.digest)) {
                        (Vec::new(), Some(format!("the same two layers as {first}, listed there")))
                    } else {
                        let files = files_diff(&sa.entries, &sb.entries, self.options.semantic);
                        shown.insert((a.digest, b.digest), format!("{platform} layer #{}", a.index + 1));
                        if files.is_empty() && self.options.semantic {
                            continue;
                        }
                        let note = files.is_empty().then(|| {
                            "every entry's path, type, mode, owner, mtime, link and content are equal: the tar streams differ only in how they are encoded (header format, PAX records, padding)".to_string()
                        });
                        (files, note)
                    };
                    self.report.differences.push(Difference::LayerContent { platform, a, b, files, note });
                }
            }
        }
    }
}

/// Where each path is in a tar: a path given twice counts at its later place, as
/// on extraction the later entry wins.
fn index_of(entries: &[Entry]) -> HashMap<&str, usize> {
    entries.iter().enumerate().map(|(i, e)| (e.path.as_str(), i)).collect()
}

/// The differences between two layers' entries, sorted by path.
pub fn files_diff(a: &[Entry], b: &[Entry], semantic: bool) -> Vec<FileDiff> {
    // A path given twice in one tar: the later entry wins, as on extraction.
    let (ia, ib) = (index_of(a), index_of(b));
    let mut out = Vec::new();
    let mut common: Vec<(usize, usize)> = Vec::new();
    for (i, e) in a.iter().enumerate() {
        if ia[e.path.as_str()] != i {
            continue;
        }
        let Some(&j) = ib.get(e.path.as_str()) else {
            out.push(FileDiff { path: e.path.clone(), change: FileChange::Removed { entry: e.clone() } });
            continue;
        };
        common.push((i, j));
        let f = &b[j];
        let mut push = |change| out.push(FileDiff { path: e.path.clone(), change });
        if e.kind != f.kind {
            push(FileChange::EntryType { a: e.kind.name().into(), b: f.kind.name().into() });
        } else if e.size != f.size || e.sha256 != f.sha256 {
            push(FileChange::Content { size_a: e.size, size_b: f.size, sha256_a: e.sha256, sha256_b: f.sha256 });
        }
        if e.mode != f.mode {
            push(FileChange::Mode { a: format!("{:04o}", e.mode), b: format!("{:04o}", f.mode) });
        }
        if e.owner() != f.owner() {
            push(FileChange::Owner { a: e.owner(), b: f.owner() });
        }
        if !semantic && e.mtime != f.mtime {
            push(FileChange::Mtime { a: e.mtime, b: f.mtime });
        }
        if e.link != f.link && e.kind == f.kind {
            push(FileChange::LinkTarget { a: e.link.clone(), b: f.link.clone() });
        }
    }
    for (j, f) in b.iter().enumerate() {
        if ib[f.path.as_str()] == j && !ia.contains_key(f.path.as_str()) {
            out.push(FileDiff { path: f.path.clone(), change: FileChange::Added { entry: f.clone() } });
        }
    }
    if !semantic {
        let positions: Vec<usize> = common.iter().map(|&(_, j)| j).collect();
        for k in align::outside_longest_increasing(&positions) {
            let (i, j) = common[k];
            out.push(FileDiff { path: a[i].path.clone(), change: FileChange::Order { index_a: i, index_b: j } });
        }
    }
    out.sort_by(|x, y| x.path.cmp(&y.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use layer::Kind;

    fn entry(path: &str, content: &[u8]) -> Entry {
        Entry {
            path: path.into(),
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: 1,
            size: content.len() as u64,
            sha256: Some(Digest::of(content)),
            link: None,
        }
    }

    #[test]
    fn each_kind_of_file_difference_is_named() {
        let a = vec![entry("a", b"1"), entry("b", b"2"), entry("c", b"3"), entry("d", b"4")];
        let mut b = vec![entry("b", b"2"), entry("a", b"1!"), entry("c", b"3"), entry("e", b"5")];
        b[2].mode = 0o600;
        b[2].uid = 1000;
        b[2].mtime = 2;
        let changes: Vec<(String, &'static str)> = files_diff(&a, &b, false)
            .into_iter()
            .map(|f| {
                let kind = match f.change {
                    FileChange::Added { .. } => "added",
                    FileChange::Removed { .. } => "removed",
                    FileChange::Content { .. } => "content",
                    FileChange::Mode { .. } => "mode",
                    FileChange::Owner { .. } => "owner",
                    FileChange::Mtime { .. } => "mtime",
                    FileChange::LinkTarget { .. } => "link",
                    FileChange::EntryType { .. } => "type",
                    FileChange::Order { .. } => "order",
                };
                (f.path, kind)
            })
            .collect();
        let expected = [
            ("a", "content"),
            ("a", "order"),
            ("c", "mode"),
            ("c", "owner"),
            ("c", "mtime"),
            ("d", "removed"),
            ("e", "added"),
        ];
        let expected: Vec<(String, &str)> = expected.iter().map(|(p, k)| (p.to_string(), *k)).collect();
        assert_eq!(changes, expected);
        // Semantic mode drops mtimes and order, keeps the rest.
        assert_eq!(files_diff(&a, &b, true).len(), 5);
    }
}
