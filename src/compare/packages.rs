//! The packages an image holds, read from the image itself rather than from a lock:
//! Debian's `var/lib/dpkg/status` and Python's `*.dist-info/METADATA` files, as the
//! image's layers leave them (a later layer's file replaces an earlier one; whiteouts
//! remove). So `pinfold inspect --packages` answers "what is in there?" for any image,
//! also one that someone else built. Each layer is read once, streaming, and checked
//! against its digest; only the wanted files are kept, each at most 64 MiB.

use pinfold_image::digest::{Digest, VerifyingReader};
use pinfold_image::oci::archive::Archive;
use pinfold_image::oci::read::PlatformImage;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};

/// The largest status or METADATA file read (Debian's status of a full desktop is
/// about 5 MiB).
const MAX_FILE: u64 = 64 << 20;

/// The most that all kept files together may take: a hostile image with thousands of
/// large METADATA files must not take the memory of the machine that inspects it.
const MAX_KEPT: usize = 256 << 20;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Package {
    /// `deb` or `python`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    pub version: String,
    /// Debian's architecture (`amd64`, `all`); empty for Python.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub architecture: String,
}

const DPKG_STATUS: &str = "var/lib/dpkg/status";

fn wanted(path: &str) -> bool {
    path == DPKG_STATUS
        || (path.ends_with("/METADATA") && path.rsplit('/').nth(1).is_some_and(|d| d.ends_with(".dist-info")))
}

/// The packages of one platform's image, sorted by type and name.
pub fn of_image(archive: &Archive, image: &PlatformImage) -> Result<Vec<Package>, String> {
    // Path → content, as the layers so far leave it.
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for layer in &image.layers {
        apply_layer(archive, &layer.member, &layer.digest, layer.size, &mut files)?;
    }
    let mut packages = Vec::new();
    for (path, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        if path == DPKG_STATUS {
            packages.extend(dpkg_status(&text)?);
        } else if let Some(p) = python_metadata(&text) {
            packages.push(p);
        }
    }
    packages.sort();
    packages.dedup();
    Ok(packages)
}

/// Reads one layer, keeping the wanted files and applying its whiteouts; the blob must
/// hash to `digest`.
fn apply_layer(
    archive: &Archive,
    member: &str,
    digest: &Digest,
    size: u64,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), String> {
    let failed = |e: io::Error| format!("layer {digest}: {e}");
    let (reader, _) = archive.open(member).map_err(|e| e.to_string())?;
    // No more than the manifest says the blob holds.
    let reader = pinfold_image::digest::SizeLimited::new(reader, size, format!("layer {digest}"));
    let mut verifying = VerifyingReader::new(reader);
    let mut buffered = BufReader::with_capacity(256 * 1024, &mut verifying);
    let magic = buffered.fill_buf().map_err(failed)?.get(..4).map(<[u8]>::to_vec).unwrap_or_default();
    let plain: Box<dyn Read + '_> = match magic.as_slice() {
        [0x1f, 0x8b, ..] => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(failed)?),
        _ => Box::new(buffered),
    };
    let mut tar = tar::Archive::new(plain);
    for entry in tar.entries().map_err(failed)? {
        let mut entry = entry.map_err(failed)?;
        let path = super::layer::normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        if name == ".wh..wh..opq" {
            // An opaque directory hides what earlier layers had below it (the root too).
            let prefix = format!("{dir}/");
            files.retain(|p, _| !dir.is_empty() && !p.starts_with(&prefix));
        } else if let Some(removed) = name.strip_prefix(".wh.") {
            let gone = if dir.is_empty() { removed.to_string() } else { format!("{dir}/{removed}") };
            let below = format!("{gone}/");
            files.retain(|p, _| p != &gone && !p.starts_with(&below));
        } else if wanted(&path) && entry.header().entry_type().is_file() {
            let mut bytes = Vec::new();
            (&mut entry).take(MAX_FILE).read_to_end(&mut bytes).map_err(failed)?;
            files.insert(path, bytes);
            if files.values().map(Vec::len).sum::<usize>() > MAX_KEPT {
                return Err(format!(
                    "layer {digest}: its package databases take more than {} MiB; not read further",
                    MAX_KEPT >> 20
                ));
            }
        } else {
            // A directory, link or other file of the same name replaces what was there.
            let below = format!("{path}/");
            files.retain(|p, _| p != &path && (entry.header().entry_type().is_dir() || !p.starts_with(&below)));
        }
    }
    // What follows the tar's end still belongs to the blob.
    io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(failed)?;
    let (actual, _) = verifying.finish().map_err(failed)?;
    if &actual != digest {
        return Err(format!("layer {digest} hashes to {actual}: it is not the layer the manifest names"));
    }
    Ok(())
}

/// The installed packages of a dpkg status file; one that cannot be read is an error,
/// not an image without packages.
fn dpkg_status(text: &str) -> Result<Vec<Package>, String> {
    let stanzas = pinfold_debian::deb822::parse_all(text, DPKG_STATUS, false).map_err(|e| e.to_string())?;
    Ok(stanzas
        .iter()
        .filter(|s| s.get("Status").is_none_or(|status| status.ends_with(" installed")))
        .filter_map(|s| {
            Some(Package {
                kind: "deb",
                name: s.get("Package")?.to_string(),
                version: s.get("Version")?.to_string(),
                architecture: s.get("Architecture").unwrap_or("").to_string(),
            })
        })
        .collect())
}

/// Name and version of a distribution's METADATA (RFC 822 headers, before the body).
fn python_metadata(text: &str) -> Option<Package> {
    let header = |key: &str| {
        text.lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')).map(|v| v.trim().to_string()))
    };
    Some(Package { kind: "python", name: header("Name")?, version: header("Version")?, architecture: String::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_metadata_are_read_as_packages() {
        let status = "Package: a\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nVersion: 2\n\n\
                      Package: b\nVersion: 2:3\nArchitecture: all\n";
        let found = dpkg_status(status).unwrap();
        let names: Vec<(&str, &str)> = found.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(names, [("a", "1.0-1"), ("b", "2:3")]);
        let meta = "Metadata-Version: 2.1\nName: numpy\nVersion: 1.26.4\n\nName: not-a-header\n";
        let p = python_metadata(meta).unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("numpy", "1.26.4"));
        assert!(wanted("opt/venv/lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA"));
        assert!(!wanted("opt/METADATA") && wanted(DPKG_STATUS));
    }

    fn layer(dir: &std::path::Path, files: &[(&str, &str)]) -> Digest {
        let mut tar = pinfold_image::layer::DeterministicTar::new(Vec::new(), 0);
        for (path, text) in files {
            tar.append_file(path, 0o644, 0, 0, text.len() as u64, text.as_bytes()).unwrap();
        }
        let bytes = tar.finish().unwrap();
        let digest = Digest::of(&bytes);
        std::fs::write(dir.join(digest.hex()), &bytes).unwrap();
        digest
    }

    #[test]
    fn later_layers_replace_and_whiteouts_remove() {
        let dir = tempfile::tempdir().unwrap();
        let site = "usr/lib/python3/dist-packages";
        let first = layer(
            dir.path(),
            &[
                (DPKG_STATUS, "Package: old\nVersion: 1\n"),
                (&format!("{site}/a-1.dist-info/METADATA"), "Name: a\nVersion: 1\n"),
                (&format!("{site}/b-2.dist-info/METADATA"), "Name: b\nVersion: 2\n"),
            ],
        );
        let second = layer(
            dir.path(),
            &[(DPKG_STATUS, "Package: new\nVersion: 2\n"), (&format!("{site}/.wh.a-1.dist-info"), "")],
        );
        let archive = Archive::open_dir(dir.path()).unwrap();
        let mut files = BTreeMap::new();
        for digest in [&first, &second] {
            let size = std::fs::metadata(dir.path().join(digest.hex())).unwrap().len();
            apply_layer(&archive, &digest.hex(), digest, size, &mut files).unwrap();
        }
        let names: Vec<&String> = files.keys().collect();
        assert_eq!(names, [&format!("{site}/b-2.dist-info/METADATA"), &DPKG_STATUS.to_string()]);
        assert_eq!(files[DPKG_STATUS], b"Package: new\nVersion: 2\n");
        // A blob that is not the layer its digest names is refused.
        let size = std::fs::metadata(dir.path().join(first.hex())).unwrap().len();
        let err = apply_layer(&archive, &first.hex(), &second, size, &mut files).unwrap_err();
        assert!(err.contains("hashes to"), "{err}");
        // An opaque whiteout at the root hides everything before it.
        let opaque = layer(dir.path(), &[(".wh..wh..opq", "")]);
        let size = std::fs::metadata(dir.path().join(opaque.hex())).unwrap().len();
        apply_layer(&archive, &opaque.hex(), &opaque, size, &mut files).unwrap();
        assert!(files.is_empty(), "{files:?}");
        // A status file that is not deb822 is an error, not an image without packages.
        assert!(dpkg_status("Package: a\nno field on this line\n").is_err());
    }
}
