//! Installing a wheel without pip: the list of files it puts in the image.
//!
//! Why: pinfold builds layers itself, bit for bit, so it needs the exact entries a wheel
//! installs (paths, bytes, modes) rather than a pip run whose output depends on the
//! clock, the umask and the host. This follows the wheel format (PEP 427, and how the
//! `installer` package applies it): members go to purelib or platlib by
//! `Root-Is-Purelib`; `NAME.data/{scripts,headers,data,purelib,platlib}` go to the
//! scheme's directories; `#!python` scripts get the image's interpreter; console and GUI
//! entry points become launchers; `INSTALLER` says `pinfold`; `RECORD` is written anew.
//! No `.pyc` is written, and any a wheel carries is dropped.
//!
//! Hostile wheels are refused: unsafe member names, symlink members, members missing
//! from RECORD or whose hash differs from it, two members landing on one path, and
//! archives over the entry and size limits.

mod paths;
mod record;
mod scheme;
mod scripts;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use scheme::Scheme;

use crate::error::InstallError;
use crate::index::normalize_name;
use crate::wheel_name::WheelName;
use paths::{ancestors, join, member_components, relative};

/// Most members a wheel may have.
pub const MAX_ENTRIES: usize = 100_000;
/// Most bytes a wheel may unpack to.
pub const MAX_UNPACKED: u64 = 8 << 30;

/// A file's bytes: in memory, or written to a path under the caller's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Bytes(Vec<u8>),
    Extracted(PathBuf),
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File(Content),
    Symlink(String),
}

/// One path in the image. `mode` is 0755 for directories, scripts and members with an
/// executable bit, 0644 for other files, 0777 for symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute and normalized.
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
}

/// How to install.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Write file contents under this directory (at the image path less its leading `/`)
    /// instead of keeping them in memory.
    pub extract_to: Option<PathBuf>,
}

/// A file before placement: image path, bytes, mode.
struct Placed {
    path: String,
    bytes: Vec<u8>,
    mode: u32,
}

/// The entries installing `wheel` under `scheme` produces, sorted by path: the files,
/// and every directory above them.
pub fn install_wheel(wheel: &Path, scheme: &Scheme, options: &InstallOptions) -> Result<Vec<Entry>, InstallError> {
    let filename = wheel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let file = std::fs::File::open(wheel).map_err(|source| InstallError::Io { path: wheel.to_path_buf(), source })?;
    let placed = Unpacker::open(file, &filename, scheme)?.unpack()?;
    entries(placed, options)
}

/// Merges the entries of several wheels (and a venv's), refusing a file two wheels
/// install; directories and identical symlinks may repeat.
pub fn merge(sets: Vec<(String, Vec<Entry>)>) -> Result<Vec<Entry>, InstallError> {
    let mut out: BTreeMap<String, (String, Entry)> = BTreeMap::new();
    for (owner, entries) in sets {
        for e in entries {
            if let Some((first, prev)) = out.get(&e.path) {
                let same = prev.kind == EntryKind::Dir && e.kind == EntryKind::Dir || prev == &e;
                if !same {
                    return Err(InstallError::Conflict { path: e.path, first: first.clone(), second: owner });
                }
                continue;
            }
            out.insert(e.path.clone(), (owner.clone(), e));
        }
    }
    Ok(out.into_values().map(|(_, e)| e).collect())
}

/// Reads one wheel against one scheme.
struct Unpacker<'s, R: Read + std::io::Seek> {
    zip: zip::ZipArchive<R>,
    wheel: String,
    scheme: &'s Scheme,
    dist: String,
    dist_info: String,
    data_dir: String,
}

impl<'s, R: Read + std::io::Seek> Unpacker<'s, R> {
    fn open(reader: R, wheel: &str, scheme: &'s Scheme) -> Result<Self, InstallError> {
        let name = WheelName::parse(wheel).ok_or_else(|| invalid(wheel, "not a wheel file name".into()))?;
        let zip = zip::ZipArchive::new(reader).map_err(|source| InstallError::Zip { wheel: wheel.into(), source })?;
        if zip.len() > MAX_ENTRIES {
            return Err(invalid(wheel, format!("{} members, more than {MAX_ENTRIES}", zip.len())));
        }
        let dist_info = find_dist_info(&zip, &name)
            .ok_or_else(|| invalid(wheel, format!("no {}-{}.dist-info directory", name.name, name.version)))?;
        let base = dist_info.trim_end_matches(".dist-info").to_string();
        Ok(Unpacker { zip, wheel: wheel.into(), scheme, dist: name.name, data_dir: format!("{base}.data"), dist_info })
    }

    fn unpack(mut self) -> Result<Vec<Placed>, InstallError> {
        let root_is_purelib = self.root_is_purelib()?;
        let recorded = record::parse(&self.read_member(&format!("{}/RECORD", self.dist_info))?)
            .map_err(|m| invalid(&self.wheel, m))?;
        let mut placed: BTreeMap<String, Placed> = BTreeMap::new();
        let mut total = 0u64;
        for i in 0..self.zip.len() {
            let Some((name, bytes, exec)) = self.member(i, &mut total)? else { continue };
            if self.skipped(&name) {
                continue;
            }
            self.verify(&name, &bytes, &recorded)?;
            let p = self.place(&name, bytes, exec, root_is_purelib)?;
            if let Some(prev) = placed.insert(p.path.clone(), p) {
                return Err(invalid(&self.wheel, format!("two members install {}", prev.path)));
            }
        }
        self.add_generated(&mut placed, root_is_purelib)?;
        Ok(placed.into_values().collect())
    }

    fn root_is_purelib(&mut self) -> Result<bool, InstallError> {
        let wheel_file = self.read_member(&format!("{}/WHEEL", self.dist_info))?;
        let text = String::from_utf8_lossy(&wheel_file);
        let field = |k: &str| {
            text.lines().find_map(|l| {
                l.split_once(':').filter(|(a, _)| a.trim().eq_ignore_ascii_case(k)).map(|(_, v)| v.trim().to_string())
            })
        };
        let version = field("Wheel-Version").unwrap_or_default();
        if version.split('.').next() != Some("1") {
            return Err(invalid(&self.wheel, format!("Wheel-Version {version:?} is not supported (1.x is)")));
        }
        Ok(field("Root-Is-Purelib").is_some_and(|v| v.eq_ignore_ascii_case("true")))
    }

    fn read_member(&mut self, name: &str) -> Result<Vec<u8>, InstallError> {
        let wheel = self.wheel.clone();
        let mut f = self.zip.by_name(name).map_err(|_| invalid(&wheel, format!("no {name}")))?;
        let mut out = Vec::new();
        (&mut f).take(64 << 20).read_to_end(&mut out).map_err(|e| invalid(&wheel, format!("{name}: {e}")))?;
        Ok(out)
    }

    /// Member `i`: its checked name, bytes and executable bit; `None` for directories.
    fn member(&mut self, i: usize, total: &mut u64) -> Result<Option<(String, Vec<u8>, bool)>, InstallError> {
        let wheel = self.wheel.clone();
        let mut f = self.zip.by_index(i).map_err(|source| InstallError::Zip { wheel: wheel.clone(), source })?;
        let raw = f.name().to_string();
        let unsafe_path =
            |reason: &str| InstallError::UnsafePath { wheel: wheel.clone(), path: raw.clone(), reason: reason.into() };
        let components = member_components(&raw).map_err(unsafe_path)?;
        let mode = f.unix_mode().unwrap_or(0);
        if mode & 0o170000 == 0o120000 {
            return Err(unsafe_path("symlink member"));
        }
        if f.is_dir() || raw.ends_with('/') {
            return Ok(None);
        }
        *total = total.saturating_add(f.size());
        if *total > MAX_UNPACKED {
            return Err(invalid(&wheel, format!("unpacks to more than {MAX_UNPACKED} bytes")));
        }
        let size = f.size();
        let mut bytes = Vec::with_capacity(size.min(64 << 20) as usize);
        (&mut f).take(size + 1).read_to_end(&mut bytes).map_err(|e| invalid(&wheel, format!("{raw}: {e}")))?;
        if bytes.len() as u64 != size {
            return Err(invalid(&wheel, format!("{raw}: size differs from the zip directory")));
        }
        Ok(Some((components.join("/"), bytes, mode & 0o111 != 0)))
    }

    /// Members not installed: the wheel's RECORD and its signatures (rewritten), and
    /// compiled bytecode.
    fn skipped(&self, name: &str) -> bool {
        let rec = format!("{}/RECORD", self.dist_info);
        name == rec
            || name == format!("{rec}.jws")
            || name == format!("{rec}.p7s")
            || name.ends_with(".pyc")
            || name.contains("__pycache__/")
    }

    fn verify(
        &self,
        name: &str,
        bytes: &[u8],
        recorded: &BTreeMap<String, record::Recorded>,
    ) -> Result<(), InstallError> {
        let entry = recorded.get(name).ok_or_else(|| invalid(&self.wheel, format!("{name} is not in RECORD")))?;
        let Some((algo, expected)) = &entry.hash else {
            return Err(invalid(&self.wheel, format!("RECORD gives {name} no hash")));
        };
        let actual = record::digest(algo, bytes)
            .ok_or_else(|| invalid(&self.wheel, format!("RECORD hash {algo} for {name} is not supported")))?;
        if &actual != expected {
            return Err(InstallError::RecordMismatch {
                wheel: self.wheel.clone(),
                path: name.into(),
                recorded: format!("{algo}={expected}"),
                actual: format!("{algo}={actual}"),
            });
        }
        Ok(())
    }

    /// Where a member goes.
    fn place(&self, name: &str, bytes: Vec<u8>, exec: bool, root_is_purelib: bool) -> Result<Placed, InstallError> {
        let mode = if exec { 0o755 } else { 0o644 };
        let Some(rest) = name.strip_prefix(&format!("{}/", self.data_dir)) else {
            let root = if root_is_purelib { &self.scheme.purelib } else { &self.scheme.platlib };
            return Ok(Placed { path: format!("{root}/{name}"), bytes, mode });
        };
        let (key, tail) =
            rest.split_once('/').ok_or_else(|| invalid(&self.wheel, format!("{name}: a file directly in .data")))?;
        let tail: Vec<&str> = tail.split('/').collect();
        let s = self.scheme;
        Ok(match key {
            "purelib" => Placed { path: join(&s.purelib, &tail), bytes, mode },
            "platlib" => Placed { path: join(&s.platlib, &tail), bytes, mode },
            "data" => Placed { path: join(&s.data, &tail), bytes, mode },
            "headers" => Placed { path: join(&format!("{}/{}", s.headers, self.dist), &tail), bytes, mode },
            "scripts" => {
                Placed { path: join(&s.scripts, &tail), bytes: scripts::rewrite_shebang(bytes, &s.python), mode: 0o755 }
            }
            other => return Err(invalid(&self.wheel, format!("{name}: unknown .data directory {other:?}"))),
        })
    }

    /// INSTALLER, entry point launchers, and RECORD over everything installed.
    fn add_generated(
        &mut self,
        placed: &mut BTreeMap<String, Placed>,
        root_is_purelib: bool,
    ) -> Result<(), InstallError> {
        let lib = if root_is_purelib { self.scheme.purelib.clone() } else { self.scheme.platlib.clone() };
        let info = format!("{lib}/{}", self.dist_info);
        let mut add = |p: Placed| match placed.insert(p.path.clone(), p) {
            Some(prev) => Err(invalid(&self.wheel, format!("{} is both a member and generated", prev.path))),
            None => Ok(()),
        };
        add(Placed { path: format!("{info}/INSTALLER"), bytes: b"pinfold\n".to_vec(), mode: 0o644 })?;
        if let Some(eps) = placed.get(&format!("{info}/entry_points.txt")) {
            let text = String::from_utf8_lossy(&eps.bytes).into_owned();
            let launchers = scripts::launchers(&text, &self.scheme.python).map_err(|m| invalid(&self.wheel, m))?;
            for l in launchers {
                let path = format!("{}/{}", self.scheme.scripts, l.name);
                match placed
                    .insert(path.clone(), Placed { path: path.clone(), bytes: l.text.into_bytes(), mode: 0o755 })
                {
                    Some(_) => {
                        return Err(invalid(&self.wheel, format!("entry point {} clashes with a script", l.name)))
                    }
                    None => continue,
                }
            }
        }
        let record_rel = format!("{}/RECORD", self.dist_info);
        let text = record::write(placed.values().map(|p| (relative(&lib, &p.path), p.bytes.as_slice())), &record_rel);
        placed.insert(format!("{info}/RECORD"), Placed { path: format!("{info}/RECORD"), bytes: text, mode: 0o644 });
        Ok(())
    }
}

/// The top-level `X.dist-info` whose name matches the wheel's (normalized).
fn find_dist_info<R: Read + std::io::Seek>(zip: &zip::ZipArchive<R>, name: &WheelName) -> Option<String> {
    let want = normalize_name(&name.name);
    let mut found: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.split('/').next())
        .filter(|d| d.ends_with(".dist-info"))
        .filter(|d| d.trim_end_matches(".dist-info").rsplit_once('-').is_some_and(|(n, _)| normalize_name(n) == want))
        .map(str::to_string)
        .collect();
    found.sort();
    found.dedup();
    (found.len() == 1).then(|| found.remove(0))
}

/// Turns placed files into sorted entries, adding every ancestor directory.
fn entries(placed: Vec<Placed>, options: &InstallOptions) -> Result<Vec<Entry>, InstallError> {
    let mut tree = match &options.extract_to {
        Some(root) => {
            let io = |source| InstallError::Io { path: root.clone(), source };
            std::fs::create_dir_all(root).map_err(io)?;
            Some(pinfold_image::rooted::Root::open(root).map_err(io)?)
        }
        None => None,
    };
    let mut out: BTreeMap<String, Entry> = BTreeMap::new();
    for p in placed {
        for dir in ancestors(&p.path) {
            out.entry(dir.to_string()).or_insert_with(|| Entry {
                path: dir.to_string(),
                kind: EntryKind::Dir,
                mode: 0o755,
            });
        }
        let content = match tree.as_mut() {
            Some(tree) => Content::Extracted(extract(tree, &p.path, &p.bytes)?),
            None => Content::Bytes(p.bytes),
        };
        out.insert(p.path.clone(), Entry { path: p.path, kind: EntryKind::File(content), mode: p.mode });
    }
    Ok(out.into_values().collect())
}

/// Writes one file below the extraction directory through the rooted primitive:
/// never through a symlink, whatever the directory already holds. A file left by an
/// earlier install of the same wheel is replaced.
fn extract(tree: &mut pinfold_image::rooted::Root, path: &str, bytes: &[u8]) -> Result<PathBuf, InstallError> {
    use pinfold_image::rooted::{components, Kind, RootedError};
    use std::io::Write;
    let dest = tree.path().join(path.trim_start_matches('/'));
    let io = |source| InstallError::Io { path: dest.clone(), source };
    let rooted = |e: RootedError| match e {
        RootedError::Io { source, .. } => InstallError::Io { path: dest.clone(), source },
        refused => InstallError::Io { path: dest.clone(), source: std::io::Error::other(refused.to_string()) },
    };
    let parts = components(path.trim_start_matches('/').as_bytes())
        .map_err(|why| InstallError::Io { path: dest.clone(), source: std::io::Error::other(why) })?;
    if tree.kind(&parts).map_err(rooted)? == Kind::File {
        tree.remove(&parts).map_err(rooted)?;
    }
    let mut file = tree.create_file(&parts, 0o644).map_err(rooted)?;
    file.write_all(bytes).map_err(io)?;
    Ok(dest)
}

fn invalid(wheel: &str, message: String) -> InstallError {
    InstallError::Invalid { wheel: wheel.to_string(), message }
}

#[cfg(test)]
mod tests;
