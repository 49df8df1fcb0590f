//! Reading a `.deb`: its control data and the entries of its file tree, laid out for a
//! merged-/usr image, with hostile entries refused.
//!
//! Why: pinfold installs packages without dpkg, so this is the one place that decides
//! what a package puts where. A `.deb` is an `ar` archive of `debian-binary`,
//! `control.tar.*` and `data.tar.*` (xz, zstd, gzip or none). The entries come out
//! sorted by image path, so the layer a caller builds from them does not depend on the
//! archive's order; the package's own paths are kept too, in archive order, because
//! dpkg's `.list` files record them so.
//!
//! Merged /usr (Debian since bookworm): the image has `bin -> usr/bin`, `sbin`, `lib`
//! and the architecture's `lib64`-like links ([`merged_usr_layout`]), and a package's
//! `/bin/x` is placed at `usr/bin/x`; a moved relative symlink is rewritten to point
//! where it pointed before.
//!
//! Hostile input: a path with `..`, an absolute path, a path through a symlink the
//! package made, a path given twice (other than a directory), a hardlink to nothing
//! earlier, a device node, or an oversized member is an error naming the entry. File
//! contents extracted to disk are written as regular files only, mode 0644, through
//! pinfold's one rooted file-system primitive ([`pinfold_image::rooted::Root`]: never
//! through a symlink, never over an existing name, whatever is already in the
//! directory); the entry carries the real mode.

use crate::deb822::{self, Stanza};
use crate::error::{io_at, Error, Result};
use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;

/// Bound on one control member (a control file, a maintainer script, md5sums).
const MAX_CONTROL_MEMBER: u64 = 64 << 20;
/// Bound on a package's unpacked data (the largest Debian packages are a few GiB).
const MAX_DATA: u64 = 16 << 30;
/// Bound on the number of entries of one package.
const MAX_ENTRIES: usize = 1_000_000;

/// Where file contents go while unpacking.
#[derive(Debug, Clone)]
pub enum Contents {
    /// Kept in memory, in the entry.
    InMemory,
    /// Written under this directory at the entry's image path, mode 0644.
    ExtractTo(PathBuf),
}

/// A regular file's bytes: in memory, or the file they were extracted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileData {
    Bytes(Vec<u8>),
    Extracted(PathBuf),
}

impl FileData {
    /// The bytes, read from disk when extracted.
    pub fn read(&self) -> Result<Vec<u8>> {
        match self {
            FileData::Bytes(b) => Ok(b.clone()),
            FileData::Extracted(p) => std::fs::read(p).map_err(io_at(p)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File {
        data: FileData,
        size: u64,
        sha256: String,
    },
    Symlink {
        target: String,
    },
    /// A hard link to the regular file at this image path (an earlier entry).
    Hardlink {
        target: String,
    },
}

/// One entry of the image tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The image path: relative, normalized, merged-/usr (`usr/bin/bash`).
    pub path: String,
    /// The path as the package has it (`bin/bash`), for dpkg's `.list`.
    pub package_path: String,
    pub kind: EntryKind,
    /// Permission bits, setuid/setgid/sticky included (`0o4755`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// The control part of a package.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// The `control` file.
    pub stanza: Stanza,
    /// Every member of control.tar by name (`control`, `md5sums`, `postinst`, ...).
    pub members: BTreeMap<String, Vec<u8>>,
    /// The conffiles' package paths (`/etc/...`).
    pub conffiles: Vec<String>,
}

impl Control {
    pub fn name(&self) -> &str {
        self.stanza.get("Package").unwrap_or("")
    }

    /// Which maintainer scripts the package has (`preinst`, `postinst`, ...).
    pub fn scripts(&self) -> Vec<&str> {
        const SCRIPTS: [&str; 6] = ["preinst", "postinst", "prerm", "postrm", "config", "triggers"];
        SCRIPTS.into_iter().filter(|s| self.members.contains_key(*s)).collect()
    }
}

/// An unpacked package.
#[derive(Debug, Clone)]
pub struct Deb {
    pub control: Control,
    /// Sorted by image path; directories merged by merged-/usr appear once.
    pub entries: Vec<Entry>,
    /// Every package path in archive order (dpkg's `.list` order), without `.`.
    pub listed: Vec<String>,
    /// The md5 of each conffile's contents (package path → hex), for dpkg's status.
    pub conffile_md5: BTreeMap<String, String>,
}

/// Reads a `.deb` from `reader`; `name` names it in errors.
pub fn read_deb(reader: impl Read, name: &str, contents: &Contents) -> Result<Deb> {
    let bad = |message: String| Error::BadDeb { deb: name.to_string(), message };
    let mut archive = ar::Archive::new(reader);
    let mut control: Option<Control> = None;
    let mut seen_binary = false;
    while let Some(member) = archive.next_entry() {
        let member = member.map_err(|e| bad(format!("ar archive: {e}")))?;
        let id = String::from_utf8_lossy(member.header().identifier()).trim_end_matches('/').to_string();
        match id.as_str() {
            "debian-binary" => seen_binary = check_binary(member, name)?,
            _ if id.starts_with("control.tar") && seen_binary => {
                control = Some(read_control(decompress(member, &id, name)?, name)?);
            }
            _ if id.starts_with("data.tar") => {
                let control = control.ok_or_else(|| bad("data.tar comes before control.tar".into()))?;
                return Unpacker::new(name, control, contents).run(decompress(member, &id, name)?);
            }
            _ if id.starts_with('_') => {} // dpkg ignores members starting with `_`
            _ => return Err(bad(format!("unexpected member {id:?}"))),
        }
    }
    Err(bad("no data.tar member".into()))
}

fn check_binary(mut member: impl Read, name: &str) -> Result<bool> {
    let mut text = String::new();
    member.by_ref().take(64).read_to_string(&mut text).ok();
    if !text.starts_with("2.") {
        return Err(Error::BadDeb {
            deb: name.into(),
            message: format!("debian-binary is {:?}, not 2.x", text.trim()),
        });
    }
    Ok(true)
}

/// A decompressing reader for an ar member by its name's extension, bounded.
fn decompress<'a>(member: impl Read + 'a, id: &str, name: &str) -> Result<Box<dyn Read + 'a>> {
    let inner: Box<dyn Read + 'a> = match id.rsplit_once('.').map(|(_, e)| e) {
        Some("xz") => Box::new(liblzma::read::XzDecoder::new(member)),
        Some("gz") => Box::new(flate2::read::GzDecoder::new(member)),
        Some("zst") => Box::new(
            zstd::stream::read::Decoder::new(member)
                .map_err(|e| Error::BadDeb { deb: name.into(), message: format!("{id}: {e}") })?,
        ),
        Some("tar") => Box::new(member),
        _ => return Err(Error::BadDeb { deb: name.into(), message: format!("{id}: unsupported compression") }),
    };
    Ok(Box::new(crate::digest::BoundedReader::new(inner, MAX_DATA)))
}

/// Reads control.tar: every regular member, the control stanza, the conffiles.
fn read_control(reader: impl Read, name: &str) -> Result<Control> {
    let bad = |message: String| Error::BadDeb { deb: name.to_string(), message: format!("control.tar: {message}") };
    let mut members = BTreeMap::new();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let entry = entry.map_err(|e| bad(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).trim_start_matches("./").to_string();
        let mut bytes = Vec::new();
        entry.take(MAX_CONTROL_MEMBER + 1).read_to_end(&mut bytes).map_err(|e| bad(format!("{path}: {e}")))?;
        if bytes.len() as u64 > MAX_CONTROL_MEMBER || path.contains('/') {
            return Err(bad(format!("member {path:?} is too large or in a subdirectory")));
        }
        members.insert(path, bytes);
    }
    let text = std::str::from_utf8(members.get("control").ok_or_else(|| bad("no control file".into()))?)
        .map_err(|_| bad("control is not UTF-8".into()))?;
    let stanza = deb822::parse_all(text, &format!("{name}: control"), false)?.into_iter().next().unwrap_or_default();
    let conffiles = members.get("conffiles").map(|b| parse_conffiles(b)).unwrap_or_default();
    Ok(Control { stanza, members, conffiles })
}

/// `conffiles` lines are a path, possibly after a flag (`remove-on-upgrade /etc/x`).
fn parse_conffiles(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines().filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/'))).map(str::to_string).collect()
}

/// Normalizes an archive path: relative, no `.`/empty components; `..` and absolute
/// paths are refused. The root (`./`) gives an empty string.
pub fn normalize(raw: &str) -> std::result::Result<String, &'static str> {
    if raw.starts_with('/') {
        return Err("an absolute path");
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("a path with `..`"),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The directories merged-/usr aliases into `usr/`.
const ALIASED: [&str; 7] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"];

/// A package path's place in a merged-/usr image (`bin/sh` → `usr/bin/sh`).
pub fn merged_usr(path: &str) -> String {
    let first = path.split('/').next().unwrap_or("");
    match ALIASED.contains(&first) {
        true => format!("usr/{path}"),
        false => path.to_string(),
    }
}

/// The merged-/usr links an image of `arch` has (as debootstrap makes them), with the
/// `usr/` directories they point to: `bin -> usr/bin`, `lib -> usr/lib`, ...
pub fn merged_usr_layout(arch: &str) -> Vec<Entry> {
    let extra: &[&str] = match arch {
        "amd64" | "x32" => &["lib32", "lib64", "libx32"],
        "i386" => &["lib64", "libx32"],
        "mips64el" => &["lib32", "lib64", "libo32"],
        "ppc64el" | "riscv64" => &["lib64"],
        "s390x" => &["lib32"],
        _ => &[],
    };
    let dirs: Vec<&str> = ["bin", "sbin", "lib"].into_iter().chain(extra.iter().copied()).collect();
    let entry = |path: String, kind| Entry { package_path: path.clone(), path, kind, mode: 0o755, uid: 0, gid: 0 };
    let mut out = vec![entry("usr".into(), EntryKind::Dir)];
    for d in &dirs {
        out.push(entry(format!("usr/{d}"), EntryKind::Dir));
        out.push(Entry { mode: 0o777, ..entry(d.to_string(), EntryKind::Symlink { target: format!("usr/{d}") }) });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Rewrites a relative symlink target for a link moved from `old` to `new` so that it
/// points where it pointed before (absolute targets resolve through the links).
fn rebase_link(old: &str, new: &str, target: &str) -> String {
    if old == new || target.starts_with('/') {
        return target.to_string();
    }
    let mut abs: Vec<&str> = old.split('/').collect();
    abs.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                abs.pop(); // `..` at the root stays at the root, as the kernel does
            }
            p => abs.push(p),
        }
    }
    let resolved = merged_usr(&abs.join("/"));
    relative_to(new, &resolved)
}

/// The relative path from the directory of `from` to `to` (both root-relative).
fn relative_to(from: &str, to: &str) -> String {
    let from_dir: Vec<&str> =
        from.split('/').collect::<Vec<_>>().split_last().map(|(_, d)| d.to_vec()).unwrap_or_default();
    let to_parts: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from_dir.iter().zip(&to_parts).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from_dir.len() - common];
    parts.extend(&to_parts[common..]);
    if parts.is_empty() {
        return ".".into();
    }
    parts.join("/")
}

/// State while reading data.tar.
struct Unpacker<'a> {
    name: &'a str,
    control: Control,
    contents: &'a Contents,
    /// The extraction directory, opened when contents go to disk.
    tree: Option<pinfold_image::rooted::Root>,
    /// Image path → whether it is a directory.
    seen: BTreeMap<String, bool>,
    /// Image paths that are (implied) parents of an entry.
    parents: BTreeSet<String>,
    entries: Vec<Entry>,
    listed: Vec<String>,
    conffile_md5: BTreeMap<String, String>,
}

impl<'a> Unpacker<'a> {
    fn new(name: &'a str, control: Control, contents: &'a Contents) -> Self {
        Unpacker {
            name,
            control,
            contents,
            tree: None,
            seen: BTreeMap::new(),
            parents: BTreeSet::new(),
            entries: Vec::new(),
            listed: Vec::new(),
            conffile_md5: BTreeMap::new(),
        }
    }

    fn hostile(&self, entry: &str, message: impl Into<String>) -> Error {
        Error::HostileEntry { deb: self.name.to_string(), entry: entry.to_string(), message: message.into() }
    }

    fn run(mut self, reader: impl Read) -> Result<Deb> {
        if let Contents::ExtractTo(root) = self.contents {
            self.tree = Some(pinfold_image::rooted::Root::open(root).map_err(io_at(root))?);
        }
        let bad = |e: std::io::Error| Error::BadDeb { deb: self.name.to_string(), message: format!("data.tar: {e}") };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(bad)? {
            let entry =
                entry.map_err(|e| Error::BadDeb { deb: self.name.into(), message: format!("data.tar: {e}") })?;
            if self.entries.len() >= MAX_ENTRIES {
                return Err(self.hostile("(any)", format!("more than {MAX_ENTRIES} entries")));
            }
            self.add(entry)?;
        }
        let mut entries = self.entries;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        order_hardlinks(&mut entries);
        Ok(Deb { control: self.control, entries, listed: self.listed, conffile_md5: self.conffile_md5 })
    }

    fn add(&mut self, mut entry: tar::Entry<impl Read>) -> Result<()> {
        let raw = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|e| self.hostile(&String::from_utf8_lossy(e.as_bytes()), "a path that is not UTF-8"))?;
        let package_path = normalize(&raw).map_err(|m| self.hostile(&raw, format!("{m} is refused")))?;
        if package_path.is_empty() {
            return Ok(()); // the root directory
        }
        let path = merged_usr(&package_path);
        let header = entry.header().clone();
        self.listed.push(package_path.clone());
        // Placed (and checked) before any byte is written to disk.
        if !self.place(&raw, &path, header.entry_type().is_dir())? {
            return Ok(()); // a directory seen before (`lib` and `usr/lib`)
        }
        let kind = self.kind(&mut entry, &header, &raw, &package_path, &path)?;
        let mode = header.mode().map_err(|e| self.hostile(&raw, e.to_string()))? & 0o7777;
        let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
        self.entries.push(Entry { path, package_path, kind, mode, uid, gid });
        Ok(())
    }

    /// Records `path`; false when it is a directory already there; an error when it
    /// goes through a non-directory or repeats a non-directory.
    fn place(&mut self, raw: &str, path: &str, is_dir: bool) -> Result<bool> {
        let mut prefix = String::new();
        for part in path.split('/').collect::<Vec<_>>().split_last().map(|(_, p)| p.to_vec()).unwrap_or_default() {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if self.seen.get(&prefix) == Some(&false) {
                return Err(self.hostile(raw, format!("goes through {prefix}, which is not a directory")));
            }
            self.parents.insert(prefix.clone());
        }
        match self.seen.get(path) {
            Some(true) if is_dir => return Ok(false),
            Some(_) => return Err(self.hostile(raw, format!("{path} appears twice"))),
            None if !is_dir && self.parents.contains(path) => {
                return Err(self.hostile(raw, format!("{path} would replace a directory")))
            }
            None => {}
        }
        self.seen.insert(path.to_string(), is_dir);
        Ok(true)
    }

    fn kind(
        &mut self,
        entry: &mut tar::Entry<impl Read>,
        header: &tar::Header,
        raw: &str,
        package_path: &str,
        path: &str,
    ) -> Result<EntryKind> {
        use tar::EntryType as T;
        let link = || entry_link(header).ok_or_else(|| self.hostile(raw, "a link without a target"));
        match header.entry_type() {
            T::Directory => Ok(EntryKind::Dir),
            T::Symlink => Ok(EntryKind::Symlink { target: rebase_link(package_path, path, &link()?) }),
            T::Link => {
                let target = link()?;
                let target =
                    merged_usr(&normalize(&target).map_err(|m| self.hostile(raw, format!("hardlink to {m}")))?);
                if self.seen.get(&target) != Some(&false) || !self.is_file(&target) {
                    return Err(self.hostile(raw, format!("hardlink to {target}, which is not an earlier file")));
                }
                Ok(EntryKind::Hardlink { target })
            }
            T::Regular | T::Continuous => self.file(entry, raw, package_path, path),
            other => Err(self.hostile(raw, format!("entry type {other:?} is not supported"))),
        }
    }

    fn is_file(&self, path: &str) -> bool {
        self.entries.iter().rev().any(|e| e.path == path && matches!(e.kind, EntryKind::File { .. }))
    }

    /// Reads a regular file's bytes, hashing them (sha256; md5 for conffiles), into
    /// memory or into the extraction directory.
    fn file(
        &mut self,
        entry: &mut tar::Entry<impl Read>,
        raw: &str,
        package_path: &str,
        path: &str,
    ) -> Result<EntryKind> {
        let conffile = format!("/{package_path}");
        let mut sink = match self.tree.as_mut() {
            None => FileSink::Memory(Vec::new()),
            Some(tree) => FileSink::open(tree, path).map_err(|e| self.hostile(raw, e))?,
        };
        let mut sha = Sha256::new();
        let mut md5 = Md5::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(|e| self.hostile(raw, e.to_string()))?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            md5.update(&buf[..n]);
            size += n as u64;
            sink.write(&buf[..n]).map_err(|e| self.hostile(raw, e.to_string()))?;
        }
        if self.control.conffiles.contains(&conffile) {
            self.conffile_md5.insert(conffile, hex::encode(md5.finalize()));
        }
        let data = sink.finish().map_err(|e| self.hostile(raw, e.to_string()))?;
        Ok(EntryKind::File { data, size, sha256: hex::encode(sha.finalize()) })
    }
}

/// A tar entry's link target (GNU long link names and PAX included).
fn entry_link(header: &tar::Header) -> Option<String> {
    header.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Where a regular file's bytes go.
enum FileSink {
    Memory(Vec<u8>),
    Disk(std::fs::File, PathBuf),
}

impl FileSink {
    /// A new regular file at `path` below the extraction directory.
    fn open(tree: &mut pinfold_image::rooted::Root, path: &str) -> std::result::Result<FileSink, String> {
        let parts = pinfold_image::rooted::components(path.as_bytes()).map_err(str::to_string)?;
        let file = tree.create_file(&parts, 0o644).map_err(|e| e.to_string())?;
        Ok(FileSink::Disk(file, tree.display_path(&parts)))
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            FileSink::Memory(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
            FileSink::Disk(f, _) => f.write_all(bytes),
        }
    }

    fn finish(self) -> std::io::Result<FileData> {
        match self {
            FileSink::Memory(v) => Ok(FileData::Bytes(v)),
            FileSink::Disk(f, p) => {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
                Ok(FileData::Extracted(p))
            }
        }
    }
}

/// After sorting by path, a hardlink may come before its target; a layer needs the
/// file first. In each group of links to one file, the first path becomes the file
/// and the others link to it.
fn order_hardlinks(entries: &mut [Entry]) {
    let index: BTreeMap<String, usize> = entries.iter().enumerate().map(|(i, e)| (e.path.clone(), i)).collect();
    for i in 0..entries.len() {
        let EntryKind::Hardlink { target } = &entries[i].kind else { continue };
        let Some(&t) = index.get(target) else { continue };
        if t > i {
            let file = std::mem::replace(&mut entries[t].kind, EntryKind::Hardlink { target: entries[i].path.clone() });
            entries[i].kind = file;
            let new_target = entries[i].path.clone();
            let old_target = entries[t].path.clone();
            for e in entries.iter_mut() {
                if let EntryKind::Hardlink { target } = &mut e.kind {
                    if *target == old_target {
                        *target = new_target.clone();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
