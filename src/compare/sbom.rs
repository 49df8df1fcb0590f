//! The SBOM of an image: `pinfold build --sbom` writes an SPDX 2.3 JSON document that
//! lists what went into the image — every Debian package and Python distribution of
//! the package sets its layers install (name, version, purl, sha256 of the file), and
//! every base, download and archive it reads (with its digest) — and stores it in the
//! output layout as an OCI 1.1 artifact whose `subject` is the image (artifactType
//! `application/spdx+json`), beside the provenance.
//!
//! Everything comes from the lock-shaped record of the build's resolved inputs
//! (`Plan::resolved`), per platform the image is built for, so the document says what
//! was installed, not what a scanner guesses from the files. It is reproducible like
//! the image: `created` is the build's epoch (`SOURCE_DATE_EPOCH` or the file's
//! `epoch`), the namespace is derived from the image's digest, the packages are sorted,
//! and the JSON is canonical. The image's own blobs are untouched.

use super::provenance::{self, attach_referrer, ProvenanceError};
use crate::build::{self, BuildReport, BuildRequest, BuiltImage};
use crate::plan::Plan;
use pinfold_image::digest::Digest;
use pinfold_image::oci::assemble::rfc3339;
use pinfold_image::oci::json::canonical;
use pinfold_image::oci::reference::ImageRef;
use pinfold_lang::lock::Lock;
use pinfold_lang::{BuildFile, EntryDecl};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const ARTIFACT_TYPE: &str = "application/spdx+json";
/// The namespace prefix of pinfold's documents; the image name and digest follow.
pub const NAMESPACE: &str = "https://pinfold.dev/spdx";

/// One package of the document (before its SPDX id is given).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    /// Sorts bases, then downloads, archives, Debian packages, Python distributions.
    order: u8,
    name: String,
    version: Option<String>,
    sha256: String,
    purl: Option<String>,
    file_name: Option<String>,
    download: String,
    purpose: &'static str,
    comment: Option<String>,
}

/// Percent-encodes a purl component: everything but unreserved characters.
fn purl_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The purl of a Python distribution: the name normalized as PEP 503 and purl say.
fn pypi_purl(name: &str, version: &str) -> String {
    let mut normalized = String::new();
    for c in name.to_ascii_lowercase().chars() {
        let c = if matches!(c, '_' | '.') { '-' } else { c };
        if !(c == '-' && normalized.ends_with('-')) {
            normalized.push(c);
        }
    }
    format!("pkg:pypi/{}@{}", purl_escape(&normalized), purl_escape(version))
}

/// A URL that SPDX accepts as a download location; anything else (a path below the
/// build file, `file://`) is `NOASSERTION`.
fn download_location(source: &str) -> String {
    if source.starts_with("https://") || source.starts_with("http://") {
        source.to_string()
    } else {
        "NOASSERTION".into()
    }
}

/// Which downloads, archives and package sets the layers of `image` use on `platform`
/// (the image's own layers and those of its block for the platform).
fn used_inputs(
    file: &BuildFile,
    image: &str,
    platform: &str,
) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let (mut downloads, mut archives, mut sets) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for decl in file.images.iter().filter(|i| i.name.value == image) {
        let overrides = decl.overrides.iter().filter(|o| o.platform.value.to_string() == platform);
        let layers = decl.layers.iter().chain(overrides.flat_map(|o| o.layers.iter()));
        for entry in layers.flat_map(|l| l.entries.iter()) {
            match entry {
                EntryDecl::Download { name, .. } => downloads.insert(name.value.clone()),
                EntryDecl::Extract { name, .. } => archives.insert(name.value.clone()),
                EntryDecl::Install { name, .. } => sets.insert(name.value.clone()),
                _ => false,
            };
        }
    }
    (downloads, archives, sets)
}

/// What goes into the document of one image.
pub struct Input<'a> {
    pub image: &'a str,
    pub digest: Digest,
    pub platforms: Vec<String>,
    pub epoch: u64,
    /// The build's resolved inputs, in the form of the lock.
    pub resolved: &'a Lock,
    pub file: &'a BuildFile,
    /// Every base of the image: name, where it was read, top digest.
    pub bases: Vec<(String, String, Digest)>,
}

fn items(input: &Input) -> Vec<Item> {
    let mut items = BTreeSet::new();
    for (name, uri, digest) in &input.bases {
        items.insert(Item {
            order: 0,
            name: name.clone(),
            version: None,
            sha256: digest.hex(),
            purl: None,
            file_name: None,
            download: "NOASSERTION".into(),
            purpose: "CONTAINER",
            comment: Some(format!("base image {uri}, its OCI index or manifest digest {digest}")),
        });
    }
    let resolved = input.resolved;
    for platform in &input.platforms {
        let (downloads, archives, sets) = used_inputs(input.file, input.image, platform);
        for name in &downloads {
            let files = resolved.downloads.get(name);
            let file = files.and_then(|f| f.get(platform.as_str()).or_else(|| f.get("*")));
            if let Some(f) = file {
                items.insert(Item {
                    order: 1,
                    name: name.clone(),
                    version: None,
                    sha256: f.sha256.clone(),
                    purl: None,
                    file_name: Some(crate::plan::inputs::url_file_name(&f.source)).filter(|n| !n.is_empty()),
                    download: download_location(&f.source),
                    purpose: "FILE",
                    comment: Some(format!("download from {}", f.source)),
                });
            }
        }
        for name in &archives {
            if let Some(f) = resolved.archives.get(name) {
                items.insert(Item {
                    order: 2,
                    name: name.clone(),
                    version: None,
                    sha256: f.sha256.clone(),
                    purl: None,
                    file_name: None,
                    download: download_location(&f.source),
                    purpose: "ARCHIVE",
                    comment: Some(format!("archive from {}", f.source)),
                });
            }
        }
        for set in &sets {
            for deb in resolved.debian.get(set).and_then(|d| d.platforms.get(platform.as_str())).into_iter().flatten() {
                items.insert(Item {
                    order: 3,
                    name: deb.name.clone(),
                    version: Some(deb.version.clone()),
                    sha256: deb.sha256.clone(),
                    purl: Some(format!(
                        "pkg:deb/debian/{}@{}?arch={}",
                        purl_escape(&deb.name),
                        purl_escape(&deb.version),
                        purl_escape(&deb.architecture)
                    )),
                    file_name: deb.path.rsplit('/').next().map(str::to_string),
                    download: "NOASSERTION".into(),
                    purpose: "LIBRARY",
                    comment: Some(format!("Debian package {} of the set `{set}`", deb.path)),
                });
            }
            for wheel in resolved.python.get(set).and_then(|p| p.platforms.get(platform.as_str())).into_iter().flatten()
            {
                items.insert(Item {
                    order: 4,
                    name: wheel.name.clone(),
                    version: Some(wheel.version.clone()),
                    sha256: wheel.sha256.clone(),
                    purl: Some(pypi_purl(&wheel.name, &wheel.version)),
                    file_name: Some(wheel.file.clone()),
                    download: "NOASSERTION".into(),
                    purpose: "LIBRARY",
                    comment: Some(format!("Python distribution of the set `{set}`")),
                });
            }
        }
    }
    items.into_iter().collect()
}

/// The SPDX 2.3 document of one image.
pub fn document(input: &Input) -> Value {
    let image_id = "SPDXRef-Image";
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": input.image,
        "versionInfo": input.digest.to_string(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{ "algorithm": "SHA256", "checksumValue": input.digest.hex() }],
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": format!("pkg:oci/{}@{}", purl_escape(input.image), purl_escape(&input.digest.to_string())),
        }],
        "comment": format!("platforms: {}", input.platforms.join(", ")),
    })];
    let mut relationships = vec![
        json!({ "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id }),
    ];
    for (n, item) in items(input).into_iter().enumerate() {
        let id = format!("SPDXRef-Package-{n}");
        let mut p = json!({
            "SPDXID": id,
            "name": item.name,
            "downloadLocation": item.download,
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": item.purpose,
            "checksums": [{ "algorithm": "SHA256", "checksumValue": item.sha256 }],
        });
        if let Some(v) = item.version {
            p["versionInfo"] = json!(v);
        }
        if let Some(f) = item.file_name {
            p["packageFileName"] = json!(f);
        }
        if let Some(purl) = item.purl {
            p["externalRefs"] =
                json!([{ "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl }]);
        }
        if let Some(c) = item.comment {
            p["comment"] = json!(c);
        }
        let relationship = if item.order == 0 {
            json!({ "spdxElementId": image_id, "relationshipType": "DESCENDANT_OF", "relatedSpdxElement": id })
        } else {
            json!({ "spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id })
        };
        relationships.push(relationship);
        packages.push(p);
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}@{}", input.image, input.digest),
        "documentNamespace": format!("{NAMESPACE}/{}-{}", purl_escape(input.image), input.digest.hex()),
        "creationInfo": {
            "created": rfc3339(input.epoch),
            "creators": [format!("Tool: pinfold-{}", provenance::VERSION)],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// Attaches an SBOM to every layout output of a finished build. Returns (image,
/// artifact manifest digest) for each.
pub fn attach_to_build(request: &BuildRequest, report: &BuildReport) -> Result<Vec<(String, Digest)>, ProvenanceError> {
    let cache = build::open_cache(request)?;
    let (plan, _) = build::load_plan(request, &cache)?;
    let mut diags = pinfold_lang::diag::Diagnostics::default();
    let file = pinfold_lang::parse(&plan.source, &mut diags)
        .ok_or_else(|| ProvenanceError::Invalid { blob: "build file".into(), message: "it no longer parses".into() })?;
    let mut attached = Vec::new();
    for image in &report.images {
        let dir = match image.output.parse::<ImageRef>() {
            Ok(ImageRef::Layout { dir, .. }) => dir,
            _ => return Err(ProvenanceError::NotALayout(image.output.clone())),
        };
        let doc = document(&input_of(&plan, &file, image, report.epoch));
        let digest = attach_referrer(&dir, &image.digest, ARTIFACT_TYPE, &canonical(&doc))?;
        attached.push((image.name.clone(), digest));
    }
    Ok(attached)
}

fn input_of<'a>(plan: &'a Plan, file: &'a BuildFile, image: &'a BuiltImage, epoch: u64) -> Input<'a> {
    let mut bases = BTreeMap::new();
    for target in plan.images.iter().filter(|i| i.name == image.name).flat_map(|i| &i.targets) {
        if let Some(b) = &target.base {
            bases.entry(b.name.clone()).or_insert_with(|| (provenance::base_uri(b, &plan.root), b.image.top.digest));
        }
    }
    Input {
        image: &image.name,
        digest: image.digest,
        platforms: image.platforms.iter().map(|p| p.platform.clone()).collect(),
        epoch,
        resolved: &plan.resolved,
        file,
        bases: bases.into_iter().map(|(n, (u, d))| (n, u, d)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_escape_and_normalize() {
        assert_eq!(purl_escape("1:2.36-9+deb12u4"), "1%3A2.36-9%2Bdeb12u4");
        assert_eq!(pypi_purl("Scikit_Learn", "1.5.0"), "pkg:pypi/scikit-learn@1.5.0");
        assert_eq!(pypi_purl("zope.interface", "6.0"), "pkg:pypi/zope-interface@6.0");
        assert_eq!(download_location("vendor/x.tar"), "NOASSERTION");
        assert_eq!(download_location("https://h/x.tar"), "https://h/x.tar");
    }

    /// The packages of the sets an image installs, per platform, with purls; a file
    /// shared by two platforms once; sets and platform blocks it does not use left out.
    #[test]
    fn package_sets_become_packages_with_purls() {
        use pinfold_lang::lock::{LockedDeb, LockedDebian, LockedFile, LockedPython, LockedWheel};
        let text = r#"pinfold 1
epoch 0
platforms "linux/amd64" "linux/arm64"
debian os { suite "bookworm"; packages "libc6" }
debian unused { suite "bookworm"; packages "curl" }
python deps { packages "Scikit_Learn"; python "3.11" }
download tool url="https://example.org/tool" sha256="00"
image app {
    from scratch
    layer os { install "os" }
    platform "linux/arm64" { layer py { install "deps" to="/opt/venv" } }
}
"#;
        let mut diags = pinfold_lang::diag::Diagnostics::default();
        let file = pinfold_lang::parse(&pinfold_lang::diag::Source::new("pinfold.kdl", text), &mut diags).unwrap();
        let deb = |arch: &str, sha: &str| LockedDeb {
            name: "libc6".into(),
            version: "2.36-9+deb12u4".into(),
            architecture: arch.into(),
            path: format!("pool/main/g/glibc/libc6_2.36-9+deb12u4_{arch}.deb"),
            sha256: sha.into(),
            size: 1,
        };
        let mut lock = Lock::default();
        let platforms = [("linux/amd64", "amd64"), ("linux/arm64", "arm64")];
        lock.debian.insert(
            "os".into(),
            LockedDebian {
                releases: Default::default(),
                platforms: platforms.iter().map(|(p, a)| (p.to_string(), vec![deb(a, &format!("{a}-sha"))])).collect(),
            },
        );
        let mut curl = LockedDebian::default();
        curl.platforms.insert("linux/amd64".into(), vec![LockedDeb { name: "curl".into(), ..deb("amd64", "c") }]);
        lock.debian.insert("unused".into(), curl);
        let wheel = LockedWheel {
            name: "Scikit_Learn".into(),
            version: "1.5.0".into(),
            file: "scikit_learn-1.5.0-py3-none-any.whl".into(),
            sha256: "w".into(),
            size: 1,
        };
        lock.python.insert(
            "deps".into(),
            LockedPython {
                python: "3.11".into(),
                platforms: platforms.iter().map(|(p, _)| (p.to_string(), vec![wheel.clone()])).collect(),
            },
        );
        lock.downloads
            .entry("tool".into())
            .or_default()
            .insert("*".into(), LockedFile { source: "https://example.org/tool".into(), sha256: "00".into() });
        let digest = Digest::of(b"image");
        let input = Input {
            image: "app",
            digest,
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            epoch: 0,
            resolved: &lock,
            file: &file,
            bases: Vec::new(),
        };
        let doc = document(&input);
        let packages = doc["packages"].as_array().unwrap();
        let purls: Vec<&str> =
            packages.iter().filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str()).collect();
        assert_eq!(
            purls,
            [
                format!("pkg:oci/app@sha256%3A{}", digest.hex()).as_str(),
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64",
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=arm64",
                "pkg:pypi/scikit-learn@1.5.0",
            ]
        );
        assert!(!packages.iter().any(|p| p["name"] == "curl" || p["name"] == "tool"), "only what the image uses");
        assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");
        assert_eq!(doc["relationships"].as_array().unwrap().len(), packages.len());
        assert_eq!(canonical(&document(&input)), canonical(&doc), "the same input, the same bytes");
    }
}
