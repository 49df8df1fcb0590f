//! The one way to touch a directory tree whose entries come from an input (an
//! archive, an image layer, the work directory of a step): every name is resolved
//! below a root, one component at a time, with `O_NOFOLLOW`, from directory file
//! descriptors. A symlink on the way is never followed, whatever it points to, so a
//! hostile tree cannot make pinfold write, chmod, retime or read anything outside the
//! root, and a name that changes between a check and its use cannot either (there is
//! no check-then-use on path strings: every operation is `*at` on a descriptor).
//!
//! Why a component walk and not `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)`:
//! directories must be created on the way (which `openat2` does not do), and a path
//! handed to the kernel in one piece is limited to `PATH_MAX`, which a hostile tar
//! exceeds easily; `cap-std` would add a crate for the same walk. It is written here
//! once, and nothing else in pinfold opens such paths directly.
//!
//! Work is linear in the depth of a path: the descriptors of the last directory
//! walked are kept (one per level), so the entries of a tar, which come in tree
//! order, each cost one `openat` for a new level, and a 1,500-level path costs 1,500.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Levels whose descriptors are kept; deeper levels are reopened from the deepest
/// kept one (still one `openat` per level, never a walk from the root).
const MAX_KEPT_LEVELS: usize = 4096;

/// Why a name was refused or an operation failed. `path` is the name as the input
/// gave it, relative to the root.
#[derive(Debug, thiserror::Error)]
pub enum RootedError {
    #[error("`{path}` {why}")]
    Refused { path: String, why: String },
    #[error("`{path}`: {source}")]
    Io { path: String, source: io::Error },
}

impl RootedError {
    /// The name the error is about.
    pub fn path(&self) -> &str {
        match self {
            RootedError::Refused { path, .. } | RootedError::Io { path, .. } => path,
        }
    }
}

/// What a name is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    Dir,
    Symlink,
    File,
    /// A device, FIFO or socket.
    Other,
}

/// Splits a name from an input into its components: `.` and empty components are
/// dropped; an absolute name or a `..` component is refused.
pub fn components(raw: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("has an absolute name");
    }
    let mut parts = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("climbs out of its root with `..`"),
            other => parts.push(other),
        }
    }
    Ok(parts)
}

fn shown(parts: &[&[u8]]) -> String {
    String::from_utf8_lossy(&parts.join(&b'/')).into_owned()
}

fn os(part: &[u8]) -> &OsStr {
    OsStr::from_bytes(part)
}

fn kind_of_stat(st: &rustix::fs::Stat) -> Kind {
    match rustix::fs::FileType::from_raw_mode(st.st_mode) {
        rustix::fs::FileType::Directory => Kind::Dir,
        rustix::fs::FileType::Symlink => Kind::Symlink,
        rustix::fs::FileType::RegularFile => Kind::File,
        _ => Kind::Other,
    }
}

/// A directory tree that an input describes, opened at its root.
pub struct Root {
    path: PathBuf,
    fd: OwnedFd,
    /// The components of the last directory walked and a descriptor for each level.
    kept: Vec<(Vec<u8>, OwnedFd)>,
}

impl std::fmt::Debug for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Root").field("path", &self.path).finish()
    }
}

/// Lets a walk keep one descriptor per level of a deep path: the soft limit on open
/// files goes up to the hard one (as Go's runtime does at start).
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let _ = setrlimit(Resource::Nofile, rustix::process::Rlimit { current: limit.maximum, ..limit });
    }
}

impl Root {
    /// Opens `path` (trusted: pinfold made it or the user named it) as a root.
    pub fn open(path: &Path) -> io::Result<Root> {
        raise_open_file_limit();
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Root { path: path.to_path_buf(), fd, kept: Vec::new() })
    }

    /// The host path of the root.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The host path of `parts` below the root, for messages and for handing a tree
    /// that was checked to a trusted program; never for opening.
    pub fn display_path(&self, parts: &[&[u8]]) -> PathBuf {
        let mut p = self.path.clone();
        for part in parts {
            p.push(os(part));
        }
        p
    }

    fn io<'a>(parts: &'a [&'a [u8]]) -> impl FnOnce(rustix::io::Errno) -> RootedError + 'a {
        move |e| RootedError::Io { path: shown(parts), source: e.into() }
    }

    /// Forgets kept descriptors at or below `parts`: the name is about to change.
    fn forget(&mut self, parts: &[&[u8]]) {
        let common = self.kept.iter().zip(parts).take_while(|((k, _), p)| k.as_slice() == **p).count();
        if common == parts.len() {
            self.kept.truncate(parts.len().saturating_sub(1));
        }
    }

    /// The directory `dirs` below the root, walked without following any symlink;
    /// missing directories are made (mode 0755) when `create`. Returns `None` when a
    /// directory is missing and `create` is false.
    fn dir(&mut self, dirs: &[&[u8]], create: bool, whole: &[&[u8]]) -> Result<Option<BorrowedFd<'_>>, RootedError> {
        let common = self.kept.iter().zip(dirs).take_while(|((k, _), p)| k.as_slice() == **p).count();
        self.kept.truncate(common);
        let mut extra: Option<OwnedFd> = None;
        for (i, part) in dirs.iter().enumerate().skip(common) {
            let parent: BorrowedFd = match (&extra, self.kept.last()) {
                (Some(fd), _) => fd.as_fd(),
                (None, Some((_, fd))) => fd.as_fd(),
                (None, None) => self.fd.as_fd(),
            };
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let opened = match rustix::fs::openat(parent, os(part), flags, Mode::empty()) {
                Err(rustix::io::Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(parent, os(part), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(Self::io(whole)(e)),
                    }
                    rustix::fs::openat(parent, os(part), flags, Mode::empty())
                }
                other => other,
            };
            let fd = match opened {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => return Ok(None),
                Err(e @ (rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR)) => {
                    let kind = rustix::fs::statat(parent, os(part), AtFlags::SYMLINK_NOFOLLOW)
                        .map(|st| kind_of_stat(&st))
                        .unwrap_or(Kind::Other);
                    let why = match kind {
                        Kind::Symlink => format!("is reached through the symlink `{}`", shown(&dirs[..=i])),
                        Kind::Dir => return Err(Self::io(whole)(e)),
                        _ => format!("is below `{}`, which is not a directory", shown(&dirs[..=i])),
                    };
                    return Err(RootedError::Refused { path: shown(whole), why });
                }
                Err(e) => return Err(Self::io(whole)(e)),
            };
            if extra.is_none() && self.kept.len() == i && i < MAX_KEPT_LEVELS {
                self.kept.push((part.to_vec(), fd));
            } else {
                extra = Some(fd);
            }
        }
        Ok(Some(match extra {
            // Only past MAX_KEPT_LEVELS: leak-free by giving the caller a kept level.
            Some(fd) => {
                self.kept.push((Vec::new(), fd));
                let fd = &self.kept.last().expect("just pushed").1;
                // The placeholder name never matches a real component, so the next
                // walk drops it.
                fd.as_fd()
            }
            None => match self.kept.get(dirs.len().wrapping_sub(1)) {
                Some((_, fd)) if !dirs.is_empty() => fd.as_fd(),
                _ => self.fd.as_fd(),
            },
        }))
    }

    /// The parent directory of `parts` (made when `create`) and the last name.
    fn parent<'p>(
        &mut self,
        parts: &[&'p [u8]],
        create: bool,
    ) -> Result<Option<(BorrowedFd<'_>, &'p [u8])>, RootedError> {
        let Some((name, dirs)) = parts.split_last() else {
            return Err(RootedError::Refused { path: ".".into(), why: "is the root itself".into() });
        };
        let whole: Vec<&[u8]> = parts.to_vec();
        Ok(self.dir(dirs, create, &whole)?.map(|fd| (fd, *name)))
    }

    /// Makes the parent directories of `parts` (not the last name).
    pub fn make_parents(&mut self, parts: &[&[u8]]) -> Result<(), RootedError> {
        self.parent(parts, true).map(|_| ())
    }

    /// What `parts` is, without following it (a symlink on the way is refused).
    pub fn kind(&mut self, parts: &[&[u8]]) -> Result<Kind, RootedError> {
        if parts.is_empty() {
            return Ok(Kind::Dir);
        }
        let Some((dir, name)) = self.parent(parts, false)? else { return Ok(Kind::Missing) };
        match rustix::fs::statat(dir, os(name), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(kind_of_stat(&st)),
            Err(rustix::io::Errno::NOENT) => Ok(Kind::Missing),
            Err(e) => Err(Self::io(parts)(e)),
        }
    }

    /// Creates a new regular file (never through a symlink, never over an existing
    /// name) with `mode`, parents made as needed.
    pub fn create_file(&mut self, parts: &[&[u8]], mode: u32) -> Result<std::fs::File, RootedError> {
        let (dir, name) = self.parent(parts, true)?.expect("created");
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd =
            rustix::fs::openat(dir, os(name), flags, Mode::from_raw_mode(mode & 0o777)).map_err(Self::io(parts))?;
        Ok(std::fs::File::from(fd))
    }

    /// Opens an existing regular file for reading; a symlink (last name included) is
    /// refused.
    pub fn open_file(&mut self, parts: &[&[u8]]) -> Result<std::fs::File, RootedError> {
        let missing = || RootedError::Refused { path: shown(parts), why: "does not exist".into() };
        let (dir, name) = self.parent(parts, false)?.ok_or_else(missing)?;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = match rustix::fs::openat(dir, os(name), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP) => {
                return Err(RootedError::Refused { path: shown(parts), why: "is a symlink".into() })
            }
            Err(rustix::io::Errno::NOENT) => return Err(missing()),
            Err(e) => return Err(Self::io(parts)(e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(Self::io(parts))?;
        if kind_of_stat(&st) != Kind::File {
            return Err(RootedError::Refused { path: shown(parts), why: "is not a regular file".into() });
        }
        Ok(std::fs::File::from(fd))
    }

    /// Opens an existing directory (for its mode, times or entries); `None` when it
    /// is missing or is not a directory.
    pub fn open_dir(&mut self, parts: &[&[u8]]) -> Result<Option<OwnedFd>, RootedError> {
        if parts.is_empty() {
            return Ok(Some(self.fd.try_clone().map_err(|e| RootedError::Io { path: ".".into(), source: e })?));
        }
        let Some((dir, name)) = self.parent(parts, false)? else { return Ok(None) };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(dir, os(name), flags, Mode::empty()) {
            Ok(fd) => Ok(Some(fd)),
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => Ok(None),
            Err(e) => Err(Self::io(parts)(e)),
        }
    }

    /// Makes a directory (parents too) if `parts` is not one; whatever else is there
    /// (a file, a symlink) is removed first.
    pub fn make_dir(&mut self, parts: &[&[u8]]) -> Result<(), RootedError> {
        match self.kind(parts)? {
            Kind::Dir => return Ok(()),
            Kind::Missing => {}
            _ => self.remove(parts)?,
        }
        let (dir, name) = self.parent(parts, true)?.expect("created");
        match rustix::fs::mkdirat(dir, os(name), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
            Err(e) => Err(Self::io(parts)(e)),
        }
    }

    /// Makes a symlink at `parts` pointing to `target` (stored as given, never
    /// followed by pinfold).
    pub fn symlink(&mut self, parts: &[&[u8]], target: &[u8]) -> Result<(), RootedError> {
        self.forget(parts);
        let (dir, name) = self.parent(parts, true)?.expect("created");
        rustix::fs::symlinkat(os(target), dir, os(name)).map_err(Self::io(parts))
    }

    /// Makes `parts` a hard link to the existing `source` (a file or a symlink, which
    /// stays a symlink: the link is never followed).
    pub fn hard_link(&mut self, source: &[&[u8]], parts: &[&[u8]]) -> Result<(), RootedError> {
        // Two directories at once: the source's is reopened as an owned descriptor.
        let missing = || RootedError::Refused { path: shown(source), why: "does not exist".into() };
        let (src_dir, src_name) = self.parent(source, false)?.ok_or_else(missing)?;
        let src_dir = src_dir.try_clone_to_owned().map_err(|e| RootedError::Io { path: shown(source), source: e })?;
        let (dir, name) = self.parent(parts, true)?.expect("created");
        rustix::fs::linkat(&src_dir, os(src_name), dir, os(name), AtFlags::empty()).map_err(Self::io(parts))
    }

    /// Removes `parts` whatever it is (a directory with all it holds); nothing when it
    /// is missing. A symlink is removed, never followed.
    pub fn remove(&mut self, parts: &[&[u8]]) -> Result<(), RootedError> {
        self.forget(parts);
        let Some((dir, name)) = self.parent(parts, false)? else { return Ok(()) };
        let dir = dir.try_clone_to_owned().map_err(|e| RootedError::Io { path: shown(parts), source: e })?;
        remove_at(&dir, name).map_err(|e| RootedError::Io { path: shown(parts), source: e })
    }

    /// The names in directory `parts` (sorted), or none when it is not a directory.
    pub fn list(&mut self, parts: &[&[u8]]) -> Result<Vec<Vec<u8>>, RootedError> {
        let Some(fd) = self.open_dir(parts)? else { return Ok(Vec::new()) };
        list_fd(&fd).map_err(|e| RootedError::Io { path: shown(parts), source: e })
    }

    /// Sets the owner of `parts` without following it.
    pub fn chown(&mut self, parts: &[&[u8]], uid: u32, gid: u32) -> Result<(), RootedError> {
        let owner = (Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)));
        if parts.is_empty() {
            return rustix::fs::fchown(&self.fd, owner.0, owner.1).map_err(Self::io(parts));
        }
        let (dir, name) = self
            .parent(parts, false)?
            .ok_or_else(|| RootedError::Refused { path: shown(parts), why: "does not exist".into() })?;
        rustix::fs::chownat(dir, os(name), owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW).map_err(Self::io(parts))
    }

    /// Sets the modification (and access) time of `parts` without following it.
    pub fn set_mtime(&mut self, parts: &[&[u8]], seconds: i64) -> Result<(), RootedError> {
        let t = rustix::fs::Timespec { tv_sec: seconds, tv_nsec: 0 };
        let times = rustix::fs::Timestamps { last_access: t, last_modification: t };
        if parts.is_empty() {
            return rustix::fs::futimens(&self.fd, &times).map_err(Self::io(parts));
        }
        let Some((dir, name)) = self.parent(parts, false)? else { return Ok(()) };
        rustix::fs::utimensat(dir, os(name), &times, AtFlags::SYMLINK_NOFOLLOW).map_err(Self::io(parts))
    }

    /// Sets the mode of directory `parts` (through its own descriptor, so never the
    /// mode of what a symlink points to); nothing when it is no longer a directory.
    pub fn set_dir_mode(&mut self, parts: &[&[u8]], mode: u32, mtime: Option<i64>) -> Result<(), RootedError> {
        let Some(fd) = self.open_dir(parts)? else { return Ok(()) };
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777)).map_err(Self::io(parts))?;
        if let Some(seconds) = mtime {
            let t = rustix::fs::Timespec { tv_sec: seconds, tv_nsec: 0 };
            let times = rustix::fs::Timestamps { last_access: t, last_modification: t };
            rustix::fs::futimens(&fd, &times).map_err(Self::io(parts))?;
        }
        Ok(())
    }

    /// Moves `parts` (the last name not followed: a symlink moves as a symlink) out
    /// of the root to `dest`, a path pinfold chose.
    pub fn move_out(&mut self, parts: &[&[u8]], dest: &Path) -> Result<(), RootedError> {
        self.forget(parts);
        let missing = || RootedError::Refused { path: shown(parts), why: "does not exist".into() };
        let (dir, name) = self.parent(parts, false)?.ok_or_else(missing)?;
        rustix::fs::renameat(dir, os(name), rustix::fs::CWD, dest).map_err(|e| match e {
            rustix::io::Errno::NOENT => missing(),
            e => Self::io(parts)(e),
        })
    }
}

fn list_fd(fd: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut dir = rustix::fs::Dir::read_from(fd)?;
    let mut names = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

/// Removes `name` in `dir` and, for a directory, everything below it, walking with
/// descriptors (iteratively, so a deep tree cannot exhaust the stack).
fn remove_at(dir: &OwnedFd, name: &[u8]) -> io::Result<()> {
    let st = match rustix::fs::statat(dir, os(name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if kind_of_stat(&st) != Kind::Dir {
        return Ok(rustix::fs::unlinkat(dir, os(name), AtFlags::empty())?);
    }
    // A stack of (parent descriptor, name, own descriptor, entries left).
    let open = |parent: &OwnedFd, name: &[u8]| -> io::Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(parent, os(name), flags, Mode::empty())?;
        // A read-only directory of the tree must still lose its entries.
        let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700));
        Ok(fd)
    };
    let first = open(dir, name)?;
    let first_names = list_fd(&first)?;
    let mut stack: Vec<(OwnedFd, Vec<Vec<u8>>)> = vec![(first, first_names)];
    while let Some((fd, names)) = stack.last_mut() {
        let Some(child) = names.pop() else {
            stack.pop();
            continue;
        };
        let st = rustix::fs::statat(&*fd, os(&child), AtFlags::SYMLINK_NOFOLLOW)?;
        if kind_of_stat(&st) == Kind::Dir {
            let sub = open(fd, &child)?;
            let sub_names = list_fd(&sub)?;
            if sub_names.is_empty() {
                rustix::fs::unlinkat(&*fd, os(&child), AtFlags::REMOVEDIR)?;
            } else {
                // Put the child back: it is removed once empty.
                names.push(child);
                stack.push((sub, sub_names));
            }
        } else {
            rustix::fs::unlinkat(&*fd, os(&child), AtFlags::empty())?;
        }
    }
    Ok(rustix::fs::unlinkat(dir, os(name), AtFlags::REMOVEDIR)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn p(s: &str) -> Vec<&[u8]> {
        components(s.as_bytes()).unwrap()
    }

    #[test]
    fn nothing_is_reached_through_a_symlink() {
        let outer = tempfile::tempdir().unwrap();
        let victim = outer.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("secret"), b"secret").unwrap();
        let root_path = outer.path().join("root");
        std::fs::create_dir(&root_path).unwrap();
        let mut root = Root::open(&root_path).unwrap();
        root.symlink(&p("link"), victim.to_str().unwrap().as_bytes()).unwrap();
        let err = root.create_file(&p("link/new"), 0o644).unwrap_err().to_string();
        assert!(err.contains("through the symlink `link`"), "{err}");
        assert!(root.open_file(&p("link/secret")).is_err());
        assert!(root.open_file(&p("link")).is_err());
        root.set_dir_mode(&p("link"), 0o777, Some(0)).unwrap();
        assert!(root.chown(&p("link/secret"), 0, 0).is_err());
        root.remove(&p("link")).unwrap();
        assert_eq!(std::fs::read(victim.join("secret")).unwrap(), b"secret");
        assert_ne!(std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777, 0o777);
        use std::os::unix::fs::PermissionsExt;
    }

    #[test]
    fn a_deep_path_is_linear() {
        let tmp = tempfile::tempdir().unwrap();
        let mut root = Root::open(tmp.path()).unwrap();
        let start = std::time::Instant::now();
        let mut name = Vec::new();
        for _ in 0..1500 {
            if !name.is_empty() {
                name.push(b'/');
            }
            name.push(b'd');
            let parts = components(&name).unwrap();
            root.make_dir(&parts).unwrap();
            root.set_dir_mode(&parts, 0o755, Some(0)).unwrap();
        }
        name.extend_from_slice(b"/f");
        root.create_file(&components(&name).unwrap(), 0o644).unwrap().write_all(b"x").unwrap();
        root.remove(&p("d")).unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "{:?}", start.elapsed());
        assert_eq!(root.kind(&p("d")).unwrap(), Kind::Missing);
    }

    #[test]
    fn hostile_names_are_refused() {
        assert!(components(b"/etc/passwd").is_err());
        assert!(components(b"a/../../b").is_err());
        assert_eq!(components(b"./a//b/.").unwrap(), vec![&b"a"[..], b"b"]);
    }
}
