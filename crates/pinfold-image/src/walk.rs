//! The regular files below a directory, each with the metadata that decides whether
//! its remembered content hash still holds.
//!
//! Why not walkdir: a no-op build of a repository of 100,000 input files is mostly
//! this walk and one `stat` per file, and walkdir stats each entry by its whole path,
//! which the kernel resolves component by component again for every file. Here each
//! directory is opened once and its entries are stat'ed relative to it (`fstatat`),
//! and sibling directories are walked in parallel. The result is sorted, so it does
//! not depend on the order the file system lists entries in, nor on the threads.

use rayon::prelude::*;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What a file looked like: enough to tell that it did not change since it was hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
    pub dev: u64,
    pub mode: u32,
}

impl FileStat {
    pub fn from_metadata(meta: &std::fs::Metadata) -> Self {
        FileStat {
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
            ino: meta.ino(),
            dev: meta.dev(),
            mode: meta.mode(),
        }
    }

    fn from_stat(st: &rustix::fs::Stat) -> Self {
        FileStat {
            size: st.st_size as u64,
            mtime_ns: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
            ctime_ns: st.st_ctime as i128 * 1_000_000_000 + st.st_ctime_nsec as i128,
            ino: st.st_ino,
            dev: st.st_dev,
            mode: st.st_mode,
        }
    }

    pub fn is_file(&self) -> bool {
        FileType::from_raw_mode(self.mode) == FileType::RegularFile
    }

    pub fn is_dir(&self) -> bool {
        FileType::from_raw_mode(self.mode) == FileType::Directory
    }

    pub fn is_symlink(&self) -> bool {
        FileType::from_raw_mode(self.mode) == FileType::Symlink
    }

    pub fn executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// Regular files below `dir` as (path relative to `dir` with `/` separators, stat),
/// sorted by path. Symlinks and special files are left out and never followed;
/// directories named in `skip` are not entered, at any depth. Names that are not
/// UTF-8 are an error (paths of the build are text).
pub fn regular_files(dir: &Path, skip: &[&str]) -> io::Result<Vec<(String, FileStat)>> {
    let skipped = |rel: &str| skip.contains(&rel.rsplit('/').next().unwrap_or(rel));
    let mut files = entries(dir, &skipped)?;
    files.retain(|(_, stat)| stat.is_file());
    Ok(files)
}

/// Every entry below `dir` (directories, files, symlinks, special files: their own
/// stat, links not followed), sorted by path. A directory for whose relative path
/// `skip` says true is neither listed nor entered.
pub fn entries(dir: &Path, skip: &(dyn Fn(&str) -> bool + Sync)) -> io::Result<Vec<(String, FileStat)>> {
    let fd = open_dir(rustix::fs::CWD, dir.as_os_str())?;
    let mut out = walk(fd, String::new(), skip)?;
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn open_dir<Fd: std::os::fd::AsFd>(at: Fd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Levels below which sibling directories are walked in parallel; deeper ones are
/// walked from an explicit stack on the same thread. A recursion per level would
/// overflow the stack on a tree 1,500 levels deep (an archive from outside makes
/// one easily), and the top levels give rayon all the parallelism it can use.
const PARALLEL_LEVELS: usize = 6;

fn walk(fd: OwnedFd, prefix: String, skip: &(dyn Fn(&str) -> bool + Sync)) -> io::Result<Vec<(String, FileStat)>> {
    walk_level(fd, prefix, skip, 0)
}

fn walk_level(
    fd: OwnedFd,
    prefix: String,
    skip: &(dyn Fn(&str) -> bool + Sync),
    level: usize,
) -> io::Result<Vec<(String, FileStat)>> {
    let (mut found, subdirs) = list(fd, &prefix, skip)?;
    if level < PARALLEL_LEVELS {
        let below: Vec<Vec<(String, FileStat)>> = subdirs
            .into_par_iter()
            .map(|(sub, prefix)| walk_level(sub, prefix, skip, level + 1))
            .collect::<io::Result<_>>()?;
        found.extend(below.into_iter().flatten());
    } else {
        let mut stack = subdirs;
        while let Some((sub, prefix)) = stack.pop() {
            let (files, dirs) = list(sub, &prefix, skip)?;
            found.extend(files);
            stack.extend(dirs);
        }
    }
    Ok(found)
}

/// The entries of one directory, and its subdirectories opened (to be walked next).
#[allow(clippy::type_complexity)]
fn list(
    fd: OwnedFd,
    prefix: &str,
    skip: &(dyn Fn(&str) -> bool + Sync),
) -> io::Result<(Vec<(String, FileStat)>, Vec<(OwnedFd, String)>)> {
    let mut found = Vec::new();
    let mut subdirs: Vec<(OwnedFd, String)> = Vec::new();
    for entry in Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let name_str = std::str::from_utf8(name).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("`{prefix}{}` is not a UTF-8 name", String::from_utf8_lossy(name)),
            )
        })?;
        let rel = format!("{prefix}{name_str}");
        if entry.file_type() == FileType::Directory && skip(&rel) {
            continue;
        }
        let stat = FileStat::from_stat(&rustix::fs::statat(&fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)?);
        // The stat, not the listing, decides: some file systems leave the type unknown.
        if FileType::from_raw_mode(stat.mode) == FileType::Directory {
            if skip(&rel) {
                continue;
            }
            let sub = open_dir(&fd, OsStr::from_bytes(name))?;
            subdirs.push((sub, format!("{rel}/")));
        }
        found.push((rel, stat));
    }
    Ok((found, subdirs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_2000_levels_deep_is_walked_without_recursing_per_level() {
        let dir = tempfile::tempdir().unwrap();
        // Made from descriptors: the whole path is longer than PATH_MAX.
        let mut fd = open_dir(rustix::fs::CWD, dir.path().as_os_str()).unwrap();
        for _ in 0..2000 {
            rustix::fs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
            fd = open_dir(&fd, OsStr::new("d")).unwrap();
        }
        let f = rustix::fs::openat(&fd, "f", OFlags::CREATE | OFlags::WRONLY, Mode::from_raw_mode(0o644)).unwrap();
        drop(f);
        let files = regular_files(dir.path(), &[]).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0.len(), "d/".len() * 2000 + 1);
        assert_eq!(entries(dir.path(), &|_| false).unwrap().len(), 2001);
    }

    #[test]
    fn regular_files_are_found_sorted_without_links_and_skipped_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["b/c", ".git", "x/.git"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in ["b/c/z.txt", "b/a.txt", "top.txt", ".git/config", "x/.git/kept"] {
            std::fs::write(root.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("top.txt", root.join("link")).unwrap();
        std::os::unix::fs::symlink("b", root.join("dirlink")).unwrap();
        let found = regular_files(root, &[".git"]).unwrap();
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b/a.txt", "b/c/z.txt", "top.txt"]);
        let meta = std::fs::metadata(root.join("b/a.txt")).unwrap();
        assert_eq!(found[0].1, FileStat::from_metadata(&meta));
        assert!(found[0].1.is_file() && !found[0].1.executable());

        let at_root = |rel: &str| rel == ".git";
        let all = entries(root, &at_root).unwrap();
        let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["b", "b/a.txt", "b/c", "b/c/z.txt", "dirlink", "link", "top.txt", "x", "x/.git", "x/.git/kept"]
        );
        assert!(all[0].1.is_dir() && all[4].1.is_symlink() && all[5].1.is_symlink());
    }
}
