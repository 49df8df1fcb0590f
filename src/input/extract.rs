//! Unpacking a tarball (`.tar`, `.tar.gz`, `.tar.zst`, told apart by their first bytes)
//! so that a layer can hold its content with the normalization of `copy`.
//!
//! An archive is data from outside and is not trusted: entries whose names are
//! absolute or climb with `..`, entries written through a symlink of the archive,
//! hard links to outside, device nodes and FIFOs are all refused, naming the entry.
//! The result is stored once per archive digest under `extracted/<hex>` of the cache,
//! made in a temporary directory and renamed into place.

use crate::cache::Cache;
use pinfold_image::digest::Digest;
use pinfold_image::layer::tree::normalize_image_path;
use std::collections::BTreeSet;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("entry `{entry}` {why}; the archive is refused")]
    Unsafe { entry: String, why: String },
    #[error("cannot read the archive: {0}")]
    Io(#[from] io::Error),
}

fn unsafe_entry(entry: &str, why: &str) -> ExtractError {
    ExtractError::Unsafe { entry: entry.to_string(), why: why.to_string() }
}

/// Unpacks the archive stored at `blob` (whose digest is `digest`) and returns the
/// directory holding its content.
pub fn extract_archive(blob: &Path, digest: &Digest, cache: &Cache) -> Result<PathBuf, ExtractError> {
    let dest = cache.root().join("extracted").join(digest.hex());
    if dest.is_dir() {
        pinfold_image::fsutil::mark_used(&dest);
        return Ok(dest);
    }
    std::fs::create_dir_all(cache.root().join("extracted"))?;
    let tmp = tempfile::Builder::new()
        .prefix(&pinfold_image::fsutil::temp_prefix("extract"))
        .tempdir_in(cache.root().join("tmp"))?;
    unpack(open_decompressed(blob)?, tmp.path())?;
    match std::fs::rename(tmp.path(), &dest) {
        Ok(()) => {}
        // Another build extracted the same archive first: its copy is as good.
        Err(_) if dest.is_dir() => {}
        Err(e) => return Err(e.into()),
    }
    let _ = tmp.keep();
    Ok(dest)
}

fn open_decompressed(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut file = std::fs::File::open(path)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic)?;
    let file = std::fs::File::open(path)?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(file))),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::new(file)?),
        _ => Box::new(io::BufReader::new(file)),
    })
}

fn unpack(reader: impl Read, root: &Path) -> Result<(), ExtractError> {
    use pinfold_image::rooted::{components, Kind, Root, RootedError};
    let mut tree = Root::open(root)?;
    let rooted = |raw: &str| {
        let raw = raw.to_string();
        move |e: RootedError| match e {
            RootedError::Refused { path, why } if path == raw => unsafe_entry(&raw, &why),
            RootedError::Refused { path, why } => unsafe_entry(&raw, &format!("(`{path}`) {why}")),
            RootedError::Io { path, source } => {
                ExtractError::Io(io::Error::new(source.kind(), format!("entry `{raw}` (`{path}`): {source}")))
            }
        }
    };
    let mut archive = tar::Archive::new(reader);
    // Regular files of this archive: the only things a hard link may copy.
    let mut written: BTreeSet<String> = BTreeSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if raw.starts_with('/') {
            return Err(unsafe_entry(&raw, "has an absolute path"));
        }
        if raw.split('/').any(|c| c == "..") {
            return Err(unsafe_entry(&raw, "climbs out of the archive with `..`"));
        }
        let Some(path) = normalize_image_path(&raw) else { continue }; // `./` itself
        let parts = components(path.as_bytes()).map_err(|why| unsafe_entry(&raw, why))?;
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644);
        // Every name is resolved below the root without following a symlink: writing
        // below a symlink of the archive is refused, naming the symlink.
        let existing = tree.kind(&parts).map_err(rooted(&raw))?;
        if kind.is_dir() {
            if !matches!(existing, Kind::Dir | Kind::Missing) {
                return Err(unsafe_entry(&raw, "replaces an earlier entry of the same archive"));
            }
            tree.make_dir(&parts).map_err(rooted(&raw))?;
            continue;
        }
        if kind == tar::EntryType::XGlobalHeader || kind == tar::EntryType::XHeader {
            continue;
        }
        let is_content = kind.is_file() || kind == tar::EntryType::Continuous || kind.is_hard_link();
        match existing {
            Kind::Missing => {}
            // A later copy of a file replaces the earlier one, as tar does.
            Kind::File if is_content => tree.remove(&parts).map_err(rooted(&raw))?,
            _ => return Err(unsafe_entry(&raw, "replaces an earlier entry of the same archive")),
        }
        if kind.is_file() || kind == tar::EntryType::Continuous {
            // Only the executable bit survives, as for `copy`.
            let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
            let mut file = tree.create_file(&parts, mode).map_err(rooted(&raw))?;
            io::copy(&mut entry, &mut file)?;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            written.insert(path);
        } else if kind.is_symlink() {
            let link = entry.link_name_bytes().ok_or_else(|| unsafe_entry(&raw, "is a symlink without a target"))?;
            tree.symlink(&parts, &link).map_err(rooted(&raw))?;
        } else if kind.is_hard_link() {
            // Stored as a separate file: only a link to an earlier regular file is
            // taken, and it is read without following any symlink.
            let link = entry.link_name_bytes().ok_or_else(|| unsafe_entry(&raw, "is a hard link without a target"))?;
            let link = String::from_utf8_lossy(&link).into_owned();
            let source =
                normalize_image_path(&link).filter(|l| !link.split('/').any(|c| c == "..") && written.contains(l));
            let Some(source) = source else {
                return Err(unsafe_entry(
                    &raw,
                    &format!("is a hard link to `{link}`, which is not an earlier file of the archive"),
                ));
            };
            let source_parts = components(source.as_bytes()).map_err(|why| unsafe_entry(&raw, why))?;
            let mut from = tree.open_file(&source_parts).map_err(rooted(&raw))?;
            let mode = from.metadata()?.permissions().mode() & 0o755;
            let mut to = tree.create_file(&parts, mode).map_err(rooted(&raw))?;
            io::copy(&mut from, &mut to)?;
            written.insert(path);
        } else {
            return Err(unsafe_entry(
                &raw,
                "is a device node, FIFO or other special file, which a layer cannot hold reproducibly",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn raw_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        // Set the name bytes directly: the tar crate's setters refuse `..` and absolute
        // paths, and these tests need exactly such hostile entries.
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if let Some(link) = link {
            h.set_link_name(link).unwrap();
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn unpack_bytes(bytes: Vec<u8>) -> Result<tempfile::TempDir, ExtractError> {
        let dir = tempfile::tempdir().unwrap();
        unpack(&bytes[..], dir.path()).map(|_| dir)
    }

    #[test]
    fn parent_dir_entries_are_refused() {
        let bytes = tar_with(|b| raw_entry(b, "../evil", tar::EntryType::Regular, None, b"x"));
        let err = unpack_bytes(bytes).unwrap_err().to_string();
        assert!(err.contains("`../evil` climbs out"), "{err}");
    }

    #[test]
    fn absolute_entries_are_refused() {
        let bytes = tar_with(|b| raw_entry(b, "/etc/passwd", tar::EntryType::Regular, None, b"x"));
        assert!(unpack_bytes(bytes).unwrap_err().to_string().contains("absolute path"));
    }

    #[test]
    fn writes_through_a_symlink_are_refused() {
        let bytes = tar_with(|b| {
            raw_entry(b, "escape", tar::EntryType::Symlink, Some("/etc"), b"");
            raw_entry(b, "escape/passwd", tar::EntryType::Regular, None, b"owned");
        });
        let err = unpack_bytes(bytes).unwrap_err().to_string();
        assert!(err.contains("through the symlink `escape`"), "{err}");
    }

    #[test]
    fn a_symlink_then_a_hard_link_of_the_same_name_touches_nothing_outside() {
        let outer = tempfile::tempdir().unwrap();
        let victim = outer.path().join("victim");
        std::fs::write(&victim, b"host secret").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        let victim_s = victim.to_str().unwrap();
        // Overwrite: a symlink to the victim, then a file or hard link at that name.
        for second in [tar::EntryType::Regular, tar::EntryType::Link] {
            let bytes = tar_with(|b| {
                raw_entry(b, "f", tar::EntryType::Regular, None, b"payload");
                raw_entry(b, "x", tar::EntryType::Symlink, Some(victim_s), b"");
                let link = (second == tar::EntryType::Link).then_some("f");
                raw_entry(b, "x", second, link, b"payload");
            });
            let err = unpack_bytes(bytes).unwrap_err().to_string();
            assert!(err.contains("`x`"), "{err}");
        }
        // Read: a hard link to a symlink of the archive that points at the victim.
        let bytes = tar_with(|b| {
            raw_entry(b, "s", tar::EntryType::Symlink, Some(victim_s), b"");
            raw_entry(b, "copy", tar::EntryType::Link, Some("s"), b"");
        });
        let err = unpack_bytes(bytes).unwrap_err().to_string();
        assert!(err.contains("`copy`"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"host secret");
        assert_eq!(std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_deep_path_unpacks_in_linear_time() {
        let mut name = String::new();
        let bytes = tar_with(|b| {
            for _ in 0..1500 {
                name.push_str("d/");
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, &name, &[][..]).unwrap();
            }
        });
        let start = std::time::Instant::now();
        unpack_bytes(bytes).unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "{:?}", start.elapsed());
    }

    #[test]
    fn device_nodes_are_refused_and_plain_content_is_kept() {
        let bytes = tar_with(|b| raw_entry(b, "dev/null", tar::EntryType::Char, None, b""));
        assert!(unpack_bytes(bytes).unwrap_err().to_string().contains("device node"));
        let bytes = tar_with(|b| {
            raw_entry(b, "a/b.txt", tar::EntryType::Regular, None, b"content");
            raw_entry(b, "a/link", tar::EntryType::Symlink, Some("b.txt"), b"");
            raw_entry(b, "a/hard", tar::EntryType::Link, Some("a/b.txt"), b"");
        });
        let dir = unpack_bytes(bytes).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("a/hard")).unwrap(), "content");
        assert_eq!(std::fs::read_link(dir.path().join("a/link")).unwrap(), Path::new("b.txt"));
    }
}
