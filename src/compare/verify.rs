//! `pinfold verify PUBLISHED [NAME]`: rebuild the image from its sources and compare
//! it with the published one, bit for bit, through the engine of [`super::compare`].
//!
//! What to rebuild comes, in this order, from the command line (NAME, `--rev`), from
//! the provenance stored beside the published image (its image name, its git
//! revision when the tree was clean, its platforms and compression), and from the
//! published image itself (its ref name, its platforms). None of it is trusted: it
//! only chooses what to build, and the rebuilt bytes must equal the published ones.
//! The rebuild uses no cache, so that a cache can never vouch for itself.

use super::git::{self, Worktree};
use super::provenance::{self, Provenance, ProvenanceError};
use super::report::{Report, Side, Tampered};
use super::source::{self, BuildContext, Opened, View};
use super::{compare, CompareError, Options};
use crate::cache::Cache;
use crate::input::FetchOptions;
use crate::plan::PlanInput;
use pinfold_image::digest::Digest;
use pinfold_image::oci::reference::ImageRef;
use pinfold_lang::diag::Diagnostics;
use pinfold_lang::Platform;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The published image, in any stored reference form.
    pub published: String,
    pub name: Option<String>,
    /// `-f`; `None` is `pinfold.kdl` (or the provenance's path in a worktree).
    pub file: Option<PathBuf>,
    pub rev: Option<String>,
    /// `SOURCE_DATE_EPOCH` of the environment.
    pub source_date_epoch: Option<String>,
    /// `--offline`, `--mirror`. Without a mirror, the download store of the default
    /// cache is used as one: the rebuild's own cache is empty, so every input is
    /// hashed again on the way in.
    pub fetch: FetchOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The rebuilt image is the published one, bit for bit.
    Verified,
    /// Both are valid images, and they differ.
    Differs,
    /// A blob of the published image is not what its digest names.
    Tampered,
}

/// Where the rebuild's sources came from.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceUsed {
    pub build_file: String,
    /// The commit checked out into a temporary worktree, if one was.
    pub revision: Option<String>,
    /// Whether the revision (or the name) came from the provenance.
    pub from_provenance: bool,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub verdict: Verdict,
    pub published: String,
    pub digest: Option<Digest>,
    pub name: Option<String>,
    pub rebuilt: Option<Digest>,
    pub source: SourceUsed,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    pub report: Option<Report>,
    pub notes: Vec<String>,
    #[serde(skip)]
    pub warnings: Diagnostics,
}

impl Outcome {
    fn tampered(request: &Request, digest: Option<Digest>, tampered: Tampered) -> Outcome {
        let mut report = Report::new(
            super::SideInfo { reference: request.published.clone(), digest, media_type: None },
            super::SideInfo { reference: "(not rebuilt)".into(), digest: None, media_type: None },
            false,
        );
        report.tampered.push(tampered);
        report.settle();
        Outcome {
            verdict: Verdict::Tampered,
            published: request.published.clone(),
            digest,
            name: request.name.clone(),
            rebuilt: None,
            source: SourceUsed::default(),
            provenance: None,
            report: Some(report),
            notes: Vec::new(),
            warnings: Diagnostics::default(),
        }
    }
}

/// The name the published image goes by in its layout or archive, if any.
fn published_name(reference: &ImageRef) -> Option<String> {
    match reference {
        ImageRef::Layout { reference: Some(r), .. } | ImageRef::OciArchive { reference: Some(r), .. } => {
            Some(r.clone())
        }
        ImageRef::DockerArchive { reference: Some(r), .. } => Some(r.split(':').next().unwrap_or(r).to_string()),
        ImageRef::DockerArchive { file, reference: None } => {
            source::sole_image_name(&ImageRef::OciArchive { file: file.clone(), reference: None })
        }
        other => source::sole_image_name(other),
    }
}

/// The images a build file declares with their platforms, from its syntax alone
/// (planning would fetch its inputs); empty when it does not parse, which the build
/// then reports in full.
fn declared_images(file: &Path) -> Vec<(String, Vec<Platform>)> {
    let Ok(text) = std::fs::read_to_string(file) else { return Vec::new() };
    let source = pinfold_lang::diag::Source::new(file.display().to_string(), text);
    let mut diags = Diagnostics::default();
    let Some(parsed) = pinfold_lang::parse(&source, &mut diags) else { return Vec::new() };
    let default: Vec<Platform> = crate::plan::DEFAULT_PLATFORM.parse().into_iter().collect();
    parsed
        .images
        .iter()
        .map(|i| {
            let platforms = match i.platforms.as_ref().or(parsed.platforms.as_ref()) {
                Some(list) => list.value.iter().map(|p| p.value.clone()).collect(),
                None => default.clone(),
            };
            (i.name.value.clone(), platforms)
        })
        .collect()
}

/// The build file's path inside `top`'s checkout.
fn relative_to(top: &Path, file: &Path) -> Option<PathBuf> {
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = dir.canonicalize().ok()?;
    Some(dir.strip_prefix(top).ok()?.join(file.file_name()?))
}

pub fn verify(request: &Request) -> Result<Outcome, CompareError> {
    let reference = published_reference(request)?;
    let published = match source::open(&reference, &request.published, Side::A)? {
        Opened::Tampered(t) => return Ok(Outcome::tampered(request, None, t)),
        Opened::View(v) => v,
    };
    let digest = Some(published.image.top.digest);
    let mut notes = Vec::new();
    let provenance = match read_provenance(request, &published, &mut notes) {
        Ok(p) => p,
        Err(tampered) => return Ok(Outcome::tampered(request, digest, tampered)),
    };
    let mut sources = sources(request, provenance.as_ref(), &mut notes)?;
    let mut plan_input = plan_input(request, provenance.as_ref(), &sources);
    let declared = declared_images(&sources.build_file);
    let name = image_name(request, provenance.as_ref(), &reference, &declared, &mut sources.used)?;
    // A docker-archive's manifest.json shows one platform; the layout beside it, all.
    let inner = embedded_layout(&published)?;
    let widest = match &inner {
        Some(Opened::View(v)) => &v.image,
        _ => &published.image,
    };
    plan_input.only_platforms = platforms(provenance.as_ref(), &declared, &name, widest);

    let context = BuildContext { file: sources.build_file.clone(), plan_input, cache_dir: None, no_cache: true };
    let built = source::build_name(&name, &context)?;
    let label = match &sources.used.revision {
        Some(rev) => format!("{name} rebuilt from {} at {}", sources.used.build_file, &rev[..rev.len().min(12)]),
        None => format!("{name} rebuilt from {}", sources.used.build_file),
    };
    let rebuilt = match source::open(&built.reference, &label, Side::B)? {
        Opened::View(v) => v,
        Opened::Tampered(t) => {
            return Err(CompareError::Usage(format!("the rebuilt image cannot be read back: {}", t.blob)))
        }
    };
    let report = compare_rebuilt(&published, inner, &rebuilt)?;
    let Sources { used, worktree, .. } = sources;
    drop(worktree);
    let verdict = if !report.tampered.is_empty() {
        Verdict::Tampered
    } else if report.identical {
        Verdict::Verified
    } else {
        Verdict::Differs
    };
    Ok(Outcome {
        verdict,
        published: request.published.clone(),
        digest,
        name: Some(name),
        rebuilt: Some(rebuilt.image.top.digest),
        source: used,
        provenance,
        report: Some(report),
        notes,
        warnings: built.warnings,
    })
}

/// PUBLISHED as a reference: a stored image, not a NAME of the build file.
fn published_reference(request: &Request) -> Result<ImageRef, CompareError> {
    let reference: ImageRef = request.published.parse().map_err(CompareError::Usage)?;
    if let ImageRef::Name(n) = &reference {
        return Err(CompareError::Usage(format!(
            "`{n}` names an image of the build file; PUBLISHED is a stored image (oci:DIR, oci-archive:FILE, docker-archive:FILE) and NAME comes after it"
        )));
    }
    Ok(reference)
}

/// The provenance stored beside the published image, if any; one that cannot be read
/// is ignored (with a note), one whose blob is not what its digest names is the
/// published image's tampering.
fn read_provenance(
    request: &Request,
    published: &View,
    notes: &mut Vec<String>,
) -> Result<Option<Provenance>, Tampered> {
    match provenance::find(&published.image.archive, &published.image.top.digest) {
        Ok(p) => Ok(p),
        Err(ProvenanceError::Tampered { blob, expected, actual }) => {
            let blob = format!("{blob} of {}", request.published);
            Err(Tampered { side: Side::A, blob, expected, actual })
        }
        Err(e) => {
            notes.push(format!("the provenance beside the image is ignored: {e}"));
            Ok(None)
        }
    }
}

/// The sources a rebuild reads: the build file, in a temporary worktree of a revision
/// when there is one.
struct Sources {
    build_file: PathBuf,
    used: SourceUsed,
    /// Removed when dropped: kept until the comparison is done.
    worktree: Option<Worktree>,
}

/// Which sources: a revision from --rev, else the provenance's when its tree was
/// clean, checked out into a worktree; else the working tree.
fn sources(
    request: &Request,
    provenance: Option<&Provenance>,
    notes: &mut Vec<String>,
) -> Result<Sources, CompareError> {
    let file = request.file.clone().unwrap_or_else(|| PathBuf::from("pinfold.kdl"));
    let mut sources = Sources {
        build_file: file.clone(),
        used: SourceUsed { build_file: file.display().to_string(), ..Default::default() },
        worktree: None,
    };
    let rev_from_provenance = match (&request.rev, provenance) {
        (Some(_), _) => None,
        (None, Some(p)) => match (&p.commit, p.clean) {
            (Some(c), Some(true)) => Some(c.clone()),
            (Some(c), _) => {
                notes.push(format!("the provenance says the image was built from a modified tree of {c}; rebuilding from the working tree"));
                None
            }
            _ => None,
        },
        (None, None) => None,
    };
    let Some(rev) = request.rev.clone().or(rev_from_provenance.clone()) else { return Ok(sources) };
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match git::toplevel(dir)? {
        Some(top) => {
            let commit = git::resolve(&top, &rev)?;
            let relative = match (&request.file, provenance, &rev_from_provenance) {
                (None, Some(Provenance { build_file: Some(p), .. }), Some(_)) => Some(PathBuf::from(p)),
                _ => relative_to(&top, &file),
            }
            .ok_or_else(|| {
                CompareError::Usage(format!("{} is not inside the checkout at {}", file.display(), top.display()))
            })?;
            let tree = Worktree::add(&top, &commit)?;
            sources.build_file = tree.path().join(&relative);
            sources.used.build_file = relative.display().to_string();
            sources.used.revision = Some(commit);
            sources.used.from_provenance = rev_from_provenance.is_some();
            sources.worktree = Some(tree);
        }
        None if request.rev.is_none() => {
            notes.push(format!("the provenance names revision {rev}, and {} is not in a git checkout; rebuilding from the working tree", dir.display()));
        }
        None => return Err(git::GitError::NotARepository { dir: dir.to_path_buf() }.into()),
    }
    Ok(sources)
}

/// The epoch, compression and inputs of the rebuild (its platforms come later).
fn plan_input(request: &Request, provenance: Option<&Provenance>, sources: &Sources) -> PlanInput {
    let mut plan_input = PlanInput { source_date_epoch: request.source_date_epoch.clone(), ..Default::default() };
    if let Some(p) = provenance {
        // The epoch came from the environment, or from a git HEAD these sources do not
        // have (a source tarball): the recorded one is the input to use. Wrong, it
        // can only make the comparison fail.
        let outside_git = || {
            let build_file = &sources.build_file;
            let dir = build_file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
            !dir.ancestors().any(|d| d.join(".git").exists())
        };
        let from_env = p.epoch_origin.as_deref() == Some("source-date-epoch");
        let from_missing_git =
            p.epoch_origin.as_deref() == Some("git-head") && sources.worktree.is_none() && outside_git();
        if plan_input.source_date_epoch.is_none() && (from_env || from_missing_git) {
            plan_input.source_date_epoch = p.epoch.map(|e| e.to_string());
        }
        if let Some(c) = &p.compression {
            plan_input.compression = c.parse().ok();
        }
    }
    let mut fetch = request.fetch.clone();
    if fetch.mirror.is_none() {
        // The downloads already on this machine, hashed again as they are copied in.
        fetch.mirror = Cache::default_dir().map(|d| d.join("blobs/sha256")).filter(|d| d.is_dir());
    }
    plan_input.fetch = fetch;
    plan_input
}

/// Which image to rebuild: NAME, else the provenance's, else the published image's
/// own name or the build file's only image.
fn image_name(
    request: &Request,
    provenance: Option<&Provenance>,
    reference: &ImageRef,
    declared: &[(String, Vec<Platform>)],
    used: &mut SourceUsed,
) -> Result<String, CompareError> {
    let names: Vec<String> = declared.iter().map(|(n, _)| n.clone()).collect();
    Ok(match (&request.name, provenance) {
        (Some(n), _) => n.clone(),
        (None, Some(p)) => {
            used.from_provenance = true;
            p.image.clone()
        }
        (None, None) => match published_name(reference).filter(|n| names.contains(n)) {
            Some(n) => n,
            None if names.len() == 1 => names[0].clone(),
            None => {
                return Err(CompareError::Usage(format!(
                    "the build file has {} images ({}); name the one to verify: pinfold verify {} NAME",
                    names.len(),
                    names.join(", "),
                    request.published
                )))
            }
        },
    })
}

/// The platforms to rebuild: the provenance's; else the published platforms the
/// image is built for; when it is built for none of them, all of its own, and the
/// comparison says how they differ.
fn platforms(
    provenance: Option<&Provenance>,
    declared: &[(String, Vec<Platform>)],
    name: &str,
    widest: &pinfold_image::oci::read::OpenedImage,
) -> Vec<Platform> {
    if let Some(p) = provenance.filter(|p| !p.platforms.is_empty()) {
        return p.platforms.iter().filter_map(|s| s.parse::<Platform>().ok()).collect();
    }
    let own = declared.iter().find(|(n, _)| n == name).map(|(_, p)| p.clone()).unwrap_or_default();
    let shared: Vec<Platform> = widest
        .manifests
        .iter()
        .filter_map(|m| m.platform.clone())
        .filter(|p| own.iter().any(|o| pinfold_image::oci::read::platforms_match(o, p)))
        .collect();
    if shared.is_empty() {
        own
    } else {
        shared
    }
}

/// The comparison of the rebuilt image with the published one, and with the layout
/// inside a published docker-archive when it holds one.
fn compare_rebuilt(published: &View, inner: Option<Opened>, rebuilt: &View) -> Result<Report, CompareError> {
    let mut report = compare(published, rebuilt, Options::default())?;
    if let Some(inner) = inner {
        let other = match inner {
            Opened::View(v) => compare(&v, rebuilt, Options::default())?,
            Opened::Tampered(t) => {
                let mut r = Report::new(published.info(), rebuilt.info(), false);
                r.tampered.push(t);
                r
            }
        };
        report.absorb(other, "the OCI layout inside the docker-archive");
    }
    Ok(report)
}

/// A docker-archive written by pinfold (or by docker 25+) also holds an OCI layout:
/// what `docker load` reads and what OCI tools read are checked both.
fn embedded_layout(published: &View) -> Result<Option<Opened>, CompareError> {
    let ImageRef::DockerArchive { file, .. } = &published.reference else { return Ok(None) };
    if !published.image.archive.contains("oci-layout") || !published.image.archive.contains("index.json") {
        return Ok(None);
    }
    let inner = ImageRef::OciArchive { file: file.clone(), reference: None };
    let label = format!("oci-archive:{} (the layout inside {})", file.display(), published.label);
    match source::open(&inner, &label, Side::A) {
        Ok(opened) => Ok(Some(opened)),
        // A layout with several images inside a docker-archive: not one to compare.
        Err(CompareError::Open { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
