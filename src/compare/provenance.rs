//! Provenance: which sources an image was built from, so that anyone holding the image
//! can rebuild it and compare (`pinfold verify PUBLISHED` reads it to learn the image
//! name and git revision). `pinfold build --provenance` writes an in-toto Statement v1
//! with a SLSA provenance v1 predicate, stored in the output layout as an OCI 1.1
//! artifact whose `subject` is the image: a referrer, listed in `index.json` after the
//! image's own entry.
//!
//! The statement is reproducible like the image: canonical JSON, paths relative to the
//! build file or the repository, and no wall-clock time (the run's `startedOn` and
//! `finishedOn` are the epoch). The image's own blobs are untouched, so its digest is
//! the same with and without provenance. The statement is not signed: it says what to
//! rebuild, and the rebuild, compared bit for bit, is the proof.

use super::git::{self, SourceState};
use super::source::layout_index;
use crate::build::{self, BuildReport, BuildRequest};
use crate::plan::{BaseImage, Plan};
use pinfold_image::digest::Digest;
use pinfold_image::fsutil::write_atomic;
use pinfold_image::oci::archive::{blob_member, Archive};
use pinfold_image::oci::assemble::rfc3339;
use pinfold_image::oci::json::canonical;
use pinfold_image::oci::media;
use pinfold_image::oci::reference::ImageRef;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
pub const ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// What a pinfold build is: the build file, its directory and the named image, with
/// the epoch rule of `spec/language.md`.
pub const BUILD_TYPE: &str = "https://pinfold.dev/buildtypes/image/v1";
pub const BUILDER_ID: &str = "https://pinfold.dev/builder/cli";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    #[error(
        "--provenance attaches to an OCI layout (oci:DIR), and `{0}` is not one; build to a layout, then archive it"
    )]
    NotALayout(String),
    #[error("cannot write the provenance into {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: the image {digest} is not listed in index.json")]
    NoSubject { path: PathBuf, digest: Digest },
    #[error("the provenance {blob} does not match its digest: expected {expected}, found {actual}")]
    Tampered { blob: String, expected: String, actual: String },
    #[error("the provenance {blob} is not valid: {message}")]
    Invalid { blob: String, message: String },
    #[error(transparent)]
    Build(#[from] build::BuildError),
}

/// What a statement records of one build of one image.
#[derive(Debug, Clone)]
pub struct Input {
    pub image: String,
    pub digest: Digest,
    pub platforms: Vec<String>,
    /// `--compression` when given on the command line (it overrides the file).
    pub compression: Option<String>,
    /// The build file's path (from the repository's top when in git) and digest.
    pub build_file: String,
    pub build_file_digest: Digest,
    /// Every base: name, where it was read (relative to the build file), digest.
    pub bases: Vec<(String, String, Digest)>,
    pub source: Option<SourceState>,
    pub epoch: u64,
    pub epoch_origin: String,
}

fn sha256(d: &Digest) -> Value {
    json!({ "sha256": d.hex() })
}

/// The in-toto statement of one image.
pub fn statement(input: &Input) -> Value {
    let mut external = json!({
        "buildFile": { "path": input.build_file, "digest": sha256(&input.build_file_digest) },
        "image": input.image,
        "platforms": input.platforms,
    });
    if let Some(c) = &input.compression {
        external["compression"] = json!(c);
    }
    let mut dependencies = Vec::new();
    if let Some(s) = &input.source {
        let mut d = json!({
            "name": "source",
            "digest": { "gitCommit": s.commit },
            "annotations": { "clean": s.clean },
        });
        if let Some(remote) = &s.remote {
            d["uri"] = json!(format!("git+{remote}"));
        }
        dependencies.push(d);
    }
    for (name, uri, digest) in &input.bases {
        dependencies.push(json!({ "name": format!("base:{name}"), "uri": uri, "digest": sha256(digest) }));
    }
    let time = rfc3339(input.epoch);
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{ "name": input.image, "digest": sha256(&input.digest) }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": { "epoch": input.epoch, "epochOrigin": input.epoch_origin },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": { "id": BUILDER_ID, "version": { "pinfold": VERSION } },
                "metadata": { "startedOn": time, "finishedOn": time },
            },
        },
    })
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProvenanceError + '_ {
    move |source| ProvenanceError::Io { path: path.to_path_buf(), source }
}

fn write_blob(dir: &Path, bytes: &[u8]) -> Result<(Digest, u64), ProvenanceError> {
    let digest = Digest::of(bytes);
    let path = dir.join(blob_member(&digest));
    if !path.exists() {
        write_atomic(&path, bytes).map_err(io_err(&path))?;
    }
    Ok((digest, bytes.len() as u64))
}

/// Stores `statement` in the layout `dir` as a referrer of the image `subject`, and
/// lists it in `index.json` after the entries already there (a provenance of the same
/// subject from an earlier run is replaced). Returns the artifact manifest's digest.
pub fn attach(dir: &Path, subject: &Digest, statement: &Value) -> Result<Digest, ProvenanceError> {
    attach_referrer(dir, subject, ARTIFACT_TYPE, &canonical(statement))
}

/// Stores `bytes` in the layout `dir` as an OCI 1.1 artifact of `artifact_type` (one
/// layer of that media type, the empty config) whose `subject` is the image
/// `subject`, listed in `index.json` after the entries already there; an artifact of
/// the same type and subject from an earlier run is replaced. Provenance and the SBOM
/// are both stored so. Returns the artifact manifest's digest.
pub fn attach_referrer(
    dir: &Path,
    subject: &Digest,
    artifact_type: &str,
    bytes: &[u8],
) -> Result<Digest, ProvenanceError> {
    let archive = Archive::open_dir(dir)
        .map_err(|e| ProvenanceError::Io { path: dir.to_path_buf(), source: std::io::Error::other(e.to_string()) })?;
    let mut index = layout_index(&archive)
        .ok_or_else(|| ProvenanceError::NoSubject { path: dir.to_path_buf(), digest: *subject })?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let top = entries
        .iter()
        .find(|d| d["digest"].as_str() == Some(subject.to_string().as_str()) && d.get("artifactType").is_none())
        .ok_or_else(|| ProvenanceError::NoSubject { path: dir.to_path_buf(), digest: *subject })?;
    let subject_descriptor = json!({ "mediaType": top["mediaType"], "digest": top["digest"], "size": top["size"] });

    let (blob_digest, blob_size) = write_blob(dir, bytes)?;
    let (empty_digest, empty_size) = write_blob(dir, b"{}")?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::MANIFEST,
        "artifactType": artifact_type,
        "config": { "mediaType": EMPTY_MEDIA_TYPE, "digest": empty_digest.to_string(), "size": empty_size },
        "layers": [{ "mediaType": artifact_type, "digest": blob_digest.to_string(), "size": blob_size }],
        "subject": subject_descriptor,
    });
    let (manifest_digest, manifest_size) = write_blob(dir, &canonical(&manifest))?;

    let mut kept: Vec<Value> =
        entries.into_iter().filter(|d| !is_referrer_of(&archive, d, artifact_type, subject)).collect();
    kept.push(json!({
        "mediaType": media::MANIFEST,
        "artifactType": artifact_type,
        "digest": manifest_digest.to_string(),
        "size": manifest_size,
    }));
    index["manifests"] = Value::Array(kept);
    let path = dir.join("index.json");
    write_atomic(&path, &canonical(&index)).map_err(io_err(&path))?;
    Ok(manifest_digest)
}

fn is_referrer_of(archive: &Archive, descriptor: &Value, artifact_type: &str, subject: &Digest) -> bool {
    descriptor["artifactType"].as_str() == Some(artifact_type)
        && descriptor["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok())
            .and_then(|d| archive.read_small(&blob_member(&d)).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|m| m["subject"]["digest"].as_str() == Some(subject.to_string().as_str()))
}

/// What `verify` needs from a provenance statement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// The artifact manifest that holds it.
    pub manifest: Digest,
    pub image: String,
    pub platforms: Vec<String>,
    pub compression: Option<String>,
    pub build_file: Option<String>,
    pub build_file_sha256: Option<String>,
    pub commit: Option<String>,
    pub clean: Option<bool>,
    pub epoch: Option<u64>,
    pub epoch_origin: Option<String>,
    pub builder_version: Option<String>,
}

fn read_checked(archive: &Archive, what: &str, digest_text: &str) -> Result<Value, ProvenanceError> {
    let invalid = |message: String| ProvenanceError::Invalid { blob: what.to_string(), message };
    let digest: Digest = digest_text.parse().map_err(|e| invalid(format!("digest `{digest_text}`: {e}")))?;
    let bytes = archive.read_small(&blob_member(&digest)).map_err(|e| invalid(e.to_string()))?;
    let actual = Digest::of(&bytes);
    if actual != digest {
        return Err(ProvenanceError::Tampered {
            blob: format!("{what} `{}`", blob_member(&digest)),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))
}

/// The provenance of `subject` in a layout or archive, if it holds one. Its blobs are
/// checked against their digests like every other blob.
pub fn find(archive: &Archive, subject: &Digest) -> Result<Option<Provenance>, ProvenanceError> {
    let Some(index) = layout_index(archive) else { return Ok(None) };
    let subject_text = subject.to_string();
    for d in index["manifests"].as_array().into_iter().flatten() {
        if d["artifactType"].as_str() != Some(ARTIFACT_TYPE) {
            continue;
        }
        let manifest = read_checked(archive, "artifact manifest", d["digest"].as_str().unwrap_or_default())?;
        if manifest["subject"]["digest"].as_str() != Some(subject_text.as_str()) {
            continue;
        }
        let Some(layer) = manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["mediaType"].as_str() == Some(ARTIFACT_TYPE))
        else {
            continue;
        };
        let statement = read_checked(archive, "statement", layer["digest"].as_str().unwrap_or_default())?;
        let invalid = |message: &str| ProvenanceError::Invalid { blob: "statement".into(), message: message.into() };
        if statement["_type"].as_str() != Some(STATEMENT_TYPE)
            || statement["predicateType"].as_str() != Some(PREDICATE_TYPE)
        {
            return Err(invalid("not an in-toto Statement v1 with a SLSA provenance v1 predicate"));
        }
        let names_subject = statement["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["digest"]["sha256"].as_str() == Some(subject.hex().as_str()));
        if !names_subject {
            return Err(invalid("its subject is not this image"));
        }
        let definition = &statement["predicate"]["buildDefinition"];
        let external = &definition["externalParameters"];
        let source = definition["resolvedDependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"].as_str() == Some("source"));
        let text = |v: &Value| v.as_str().map(str::to_string);
        return Ok(Some(Provenance {
            manifest: d["digest"].as_str().and_then(|s| s.parse().ok()).unwrap_or(*subject),
            image: text(&external["image"]).ok_or_else(|| invalid("externalParameters.image is missing"))?,
            platforms: external["platforms"].as_array().into_iter().flatten().filter_map(&text).collect(),
            compression: text(&external["compression"]),
            build_file: text(&external["buildFile"]["path"]),
            build_file_sha256: text(&external["buildFile"]["digest"]["sha256"]),
            commit: source.and_then(|s| text(&s["digest"]["gitCommit"])),
            clean: source.and_then(|s| s["annotations"]["clean"].as_bool()),
            epoch: definition["internalParameters"]["epoch"].as_u64(),
            epoch_origin: text(&definition["internalParameters"]["epochOrigin"]),
            builder_version: text(&statement["predicate"]["runDetails"]["builder"]["version"]["pinfold"]),
        }));
    }
    Ok(None)
}

/// Refuses `--provenance` before building when the output cannot hold it.
pub fn preflight(request: &BuildRequest) -> Result<(), ProvenanceError> {
    match &request.output {
        Some(o @ (ImageRef::OciArchive { .. } | ImageRef::DockerArchive { .. } | ImageRef::Registry(_))) => {
            Err(ProvenanceError::NotALayout(o.to_string()))
        }
        _ => Ok(()),
    }
}

pub(crate) fn base_uri(base: &BaseImage, root: &Path) -> String {
    let archive = &base.image.archive;
    let path = archive.path();
    let shown = path.strip_prefix(root).unwrap_or(path).display();
    match archive.as_ref() {
        Archive::Dir(_) => format!("oci:{shown}"),
        Archive::Tar { .. } if base.image.top.media_type == media::DOCKER_CONFIG => format!("docker-archive:{shown}"),
        Archive::Tar { .. } => format!("oci-archive:{shown}"),
        // A registry base's location is already `docker://HOST/REPO@DIGEST`.
        Archive::Remote(_) => shown.to_string(),
    }
}

/// The bases of image `name` in `plan`, each once.
fn bases_of(plan: &Plan, name: &str) -> Vec<(String, String, Digest)> {
    let mut seen = BTreeMap::new();
    for target in plan.images.iter().filter(|i| i.name == name).flat_map(|i| &i.targets) {
        if let Some(b) = &target.base {
            seen.entry(b.name.clone()).or_insert_with(|| (base_uri(b, &plan.root), b.image.top.digest));
        }
    }
    seen.into_iter().map(|(n, (u, d))| (n, u, d)).collect()
}

/// Attaches a provenance statement to every layout output of a finished build.
/// Returns (image, artifact manifest digest) for each.
pub fn attach_to_build(request: &BuildRequest, report: &BuildReport) -> Result<Vec<(String, Digest)>, ProvenanceError> {
    let cache = build::open_cache(request)?;
    let (plan, _) = build::load_plan(request, &cache)?;
    let file_bytes = std::fs::read(&request.file).map_err(io_err(&request.file))?;
    let outputs: Vec<PathBuf> = report
        .images
        .iter()
        .filter_map(|i| match i.output.parse::<ImageRef>() {
            Ok(ImageRef::Layout { dir, .. }) => Some(dir.canonicalize().unwrap_or(dir)),
            _ => None,
        })
        .collect();
    let mut exclude = outputs.clone();
    if let Ok(out_root) = request.out_root.canonicalize() {
        exclude.push(out_root);
    }
    let source = git::state(&plan.root, &exclude);
    let file_name = request.file.file_name().map_or_else(|| "pinfold.kdl".into(), |n| n.to_string_lossy().into_owned());
    let build_file = match &source {
        Some(s) => plan
            .root
            .strip_prefix(&s.toplevel)
            .map_or(file_name.clone(), |rel| rel.join(&file_name).to_string_lossy().into_owned()),
        None => file_name,
    };
    let epoch_origin =
        serde_json::to_value(report.epoch_origin).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let mut attached = Vec::new();
    for image in &report.images {
        let dir = match image.output.parse::<ImageRef>() {
            Ok(ImageRef::Layout { dir, .. }) => dir,
            _ => return Err(ProvenanceError::NotALayout(image.output.clone())),
        };
        let input = Input {
            image: image.name.clone(),
            digest: image.digest,
            platforms: image.platforms.iter().map(|p| p.platform.clone()).collect(),
            compression: request.plan_input.compression.map(|c| c.to_string()),
            build_file: build_file.clone(),
            build_file_digest: Digest::of(&file_bytes),
            bases: bases_of(&plan, &image.name),
            source: source.clone(),
            epoch: report.epoch,
            epoch_origin: epoch_origin.clone(),
        };
        let digest = attach(&dir, &image.digest, &statement(&input))?;
        attached.push((image.name.clone(), digest));
    }
    Ok(attached)
}
