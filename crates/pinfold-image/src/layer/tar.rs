//! A tar writer whose bytes depend only on the entries it is given: for layers, and
//! for the archives that carry a whole image (oci-archive, docker-archive).
//!
//! The `tar` crate's `Builder` reads metadata from the host (mtime, owner, mode,
//! sparse holes, xattrs) unless every header is built by hand, and normalizes names
//! differently in short headers than in long-name entries. So this module builds
//! every header itself with `tar::Header` and writes the stream directly. The format
//! (for `spec/` to state as it is here):
//!
//! - GNU headers (`ustar  ` magic) for every entry; no PAX headers, ever.
//! - Names longer than 100 bytes and symlink targets longer than 100 bytes go in a
//!   GNU `././@LongLink` entry (type `L` for the name, `K` for the target) just
//!   before the entry, exactly as the `tar` crate and GNU tar write them (mode 0644,
//!   owner 0:0, mtime 0, the bytes plus a NUL); the entry's own field then holds the
//!   first 100 bytes. Names and targets of 100 bytes or less are stored as they are.
//! - Names are relative, `/`-separated, with no empty, `.` or `..` component (so no
//!   leading `./` or `/`); directories end with `/`. Names are checked, never
//!   rewritten, so what is given is what is stored. Symlink targets are stored byte
//!   for byte (they may be absolute).
//! - mtime = the build's epoch; uid, gid and permission bits (at most `0o7777`) as
//!   given; uname and gname empty; atime, ctime, device numbers zero; no xattrs, no
//!   sparse entries, no hard links.
//! - The archive ends with two zero blocks and no further padding (GNU tar pads to
//!   10 KiB records; readers do not need it).
//!
//! A file's content is streamed from a reader in bounded chunks, and must be exactly
//! the size announced in its header: a file that changed size while being archived
//! is an error naming the entry ([`EntryError`]), never a corrupt or silently
//! different archive.

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

/// Bytes per read when streaming a file's content: large enough that syscalls do not
/// matter, small enough to stay out of the way of memory limits.
const COPY_BUFFER: usize = 256 * 1024;

const BLOCK: usize = 512;

/// The longest name or link target stored directly in a header field.
const FIELD_LEN: usize = 100;

/// Why one entry could not be written. Carried inside the `io::Error` returned by
/// [`DeterministicTar`]'s methods (find it with [`EntryError::of`]); any other
/// `io::Error` they return is a failure of the output writer.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("`{path}` cannot be a tar entry name: {reason}")]
    BadName { path: String, reason: &'static str },
    #[error("symlink `{path}`: {reason}")]
    BadTarget { path: String, reason: &'static str },
    #[error(
        "the content of `{path}` ended after {read} bytes, but {expected} were expected \
         (did it change during the build?)"
    )]
    Shrank { path: String, expected: u64, read: u64 },
    #[error(
        "the content of `{path}` is longer than the {expected} bytes expected \
         (did it change during the build?)"
    )]
    Grew { path: String, expected: u64 },
    #[error("reading the content of `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl EntryError {
    /// The entry error inside `err`, if `err` came from an entry rather than from
    /// the output writer.
    pub fn of(err: &io::Error) -> Option<&EntryError> {
        err.get_ref().and_then(|inner| inner.downcast_ref::<EntryError>())
    }

    /// Takes the entry error out of `err`; gives `err` back if there is none.
    pub fn take(err: io::Error) -> Result<EntryError, io::Error> {
        if EntryError::of(&err).is_none() {
            return Err(err);
        }
        let kind = err.kind();
        match err.into_inner().map(|inner| inner.downcast::<EntryError>()) {
            Some(Ok(entry)) => Ok(*entry),
            // Checked just above; rebuild something sensible rather than panic.
            Some(Err(other)) => Err(io::Error::new(kind, other)),
            None => Err(io::Error::from(kind)),
        }
    }

    fn into_io(self) -> io::Error {
        let kind = match &self {
            EntryError::BadName { .. } | EntryError::BadTarget { .. } => io::ErrorKind::InvalidInput,
            EntryError::Shrank { .. } => io::ErrorKind::UnexpectedEof,
            EntryError::Grew { .. } => io::ErrorKind::InvalidData,
            EntryError::Read { source, .. } => source.kind(),
        };
        io::Error::new(kind, self)
    }
}

/// Writes a tar stream entry by entry; see the module header for the format.
/// Entries are written in the order they are appended: ordering is the caller's.
/// After an error the output is unusable and the writer must be dropped.
pub struct DeterministicTar<W: Write> {
    out: W,
    epoch: u64,
    /// Reused for every file; allocated on the first one.
    buffer: Vec<u8>,
}

impl<W: Write> DeterministicTar<W> {
    /// A tar stream into `out` whose entries all have mtime `epoch` (seconds since
    /// 1970, UTC).
    pub fn new(out: W, epoch: u64) -> Self {
        DeterministicTar { out, epoch, buffer: Vec::new() }
    }

    /// A directory entry; `path` may end with `/` or not, it is stored with one.
    pub fn append_dir(&mut self, path: &str, mode: u32, uid: u64, gid: u64) -> io::Result<()> {
        let bare = path.strip_suffix('/').unwrap_or(path);
        check_name(bare)?;
        let mut name = Vec::with_capacity(bare.len() + 1);
        name.extend_from_slice(bare.as_bytes());
        name.push(b'/');
        let header = self.header(EntryType::Directory, mode, uid, gid, 0);
        self.write_header(header, &name, None)
    }

    /// A regular file of `size` bytes read from `content`, which must yield exactly
    /// `size` bytes: fewer or more is an [`EntryError`] naming `path`.
    pub fn append_file<R: Read>(
        &mut self,
        path: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        size: u64,
        mut content: R,
    ) -> io::Result<()> {
        check_name(path)?;
        let header = self.header(EntryType::Regular, mode, uid, gid, size);
        self.write_header(header, path.as_bytes(), None)?;

        if self.buffer.is_empty() {
            self.buffer = vec![0; COPY_BUFFER];
        }
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(self.buffer.len());
            let n = match content.read(&mut self.buffer[..want]) {
                Ok(0) => {
                    let read = size - left;
                    return Err(EntryError::Shrank { path: path.into(), expected: size, read }.into_io());
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(EntryError::Read { path: path.into(), source }.into_io()),
            };
            self.out.write_all(&self.buffer[..n])?;
            left -= n as u64;
        }
        // Only a read that returns 0 proves the end: a file that grew must not be
        // cut silently at its old size.
        loop {
            match content.read(&mut self.buffer[..1]) {
                Ok(0) => break,
                Ok(_) => return Err(EntryError::Grew { path: path.into(), expected: size }.into_io()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(EntryError::Read { path: path.into(), source }.into_io()),
            }
        }
        self.pad(size)
    }

    /// A symlink to `target`, stored byte for byte. `mode` defaults to `0o777`, what
    /// Linux shows for every symlink.
    pub fn append_symlink(
        &mut self,
        path: &str,
        target: &str,
        mode: Option<u32>,
        uid: u64,
        gid: u64,
    ) -> io::Result<()> {
        check_name(path)?;
        let bad_target = |reason| EntryError::BadTarget { path: path.into(), reason }.into_io();
        if target.is_empty() {
            return Err(bad_target("the target is empty"));
        }
        if target.contains('\0') {
            return Err(bad_target("the target contains a NUL byte"));
        }
        let header = self.header(EntryType::Symlink, mode.unwrap_or(0o777), uid, gid, 0);
        self.write_header(header, path.as_bytes(), Some(target.as_bytes()))
    }

    /// Ends the archive (two zero blocks) and gives back the writer (not flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0; 2 * BLOCK])?;
        Ok(self.out)
    }

    /// The writer beneath, e.g. to look at a hashing writer's count.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    fn header(&self, kind: EntryType, mode: u32, uid: u64, gid: u64, size: u64) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode & 0o7777);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(self.epoch);
        header.set_size(size);
        header
    }

    /// Writes `header` named `name`, with link target `link`, preceded by GNU long
    /// name/link entries where a field is too short.
    fn write_header(&mut self, mut header: Header, name: &[u8], link: Option<&[u8]>) -> io::Result<()> {
        if name.len() > FIELD_LEN {
            self.write_long_link(b'L', name)?;
        }
        if let Some(link) = link.filter(|link| link.len() > FIELD_LEN) {
            self.write_long_link(b'K', link)?;
        }
        let fields = header.as_old_mut();
        let n = name.len().min(FIELD_LEN);
        fields.name[..n].copy_from_slice(&name[..n]);
        if let Some(link) = link {
            let n = link.len().min(FIELD_LEN);
            fields.linkname[..n].copy_from_slice(&link[..n]);
        }
        header.set_cksum();
        self.out.write_all(header.as_bytes())
    }

    /// A `././@LongLink` entry carrying `data`, byte for byte as the `tar` crate's
    /// `Builder` writes it, so that archives do not depend on which of the two wrote.
    fn write_long_link(&mut self, kind: u8, data: &[u8]) -> io::Result<()> {
        let mut header = Header::new_gnu();
        let name = b"././@LongLink";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        // GNU tar counts the terminating NUL.
        let size = data.len() as u64 + 1;
        header.set_size(size);
        header.set_entry_type(EntryType::new(kind));
        header.set_cksum();
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(data)?;
        self.out.write_all(&[0])?;
        self.pad(size)
    }

    /// Zeros up to the next 512-byte boundary after `size` bytes of content.
    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rest = (size % BLOCK as u64) as usize;
        if rest != 0 {
            self.out.write_all(&[0; BLOCK][..BLOCK - rest])?;
        }
        Ok(())
    }
}

/// Refuses names that readers would interpret differently from what is written.
fn check_name(path: &str) -> io::Result<()> {
    let bad = |reason| Err(EntryError::BadName { path: path.into(), reason }.into_io());
    if path.is_empty() {
        return bad("the name is empty");
    }
    if path.starts_with('/') {
        return bad("names are relative, without a leading `/`");
    }
    if path.contains('\0') {
        return bad("the name contains a NUL byte");
    }
    for component in path.split('/') {
        match component {
            "" => return bad("the name has an empty component (`//` or a trailing `/`)"),
            "." => return bad("the name has a `.` component (names have no leading `./`)"),
            ".." => return bad("the name has a `..` component"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry as the `tar` crate reads it back.
    struct ReadEntry {
        path: String,
        kind: EntryType,
        mtime: u64,
        mode: u32,
        uid: u64,
        gid: u64,
        link: Option<String>,
        data: Vec<u8>,
    }

    fn read_back(bytes: &[u8]) -> Vec<ReadEntry> {
        let mut archive = tar::Archive::new(bytes);
        let mut out = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let header = entry.header().clone();
            let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf8");
            let link = entry.link_name_bytes().map(|l| String::from_utf8(l.into_owned()).expect("utf8"));
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("data");
            out.push(ReadEntry {
                path,
                kind: header.entry_type(),
                mtime: header.mtime().expect("mtime"),
                mode: header.mode().expect("mode"),
                uid: header.uid().expect("uid"),
                gid: header.gid().expect("gid"),
                link,
                data,
            });
        }
        out
    }

    #[test]
    fn entries_read_back_with_the_given_metadata() {
        let mut tar = DeterministicTar::new(Vec::new(), 1_700_000_000);
        tar.append_dir("etc", 0o755, 0, 0).expect("dir");
        tar.append_dir("tmp/", 0o1777, 0, 0).expect("dir");
        tar.append_file("etc/motd", 0o644, 1000, 1001, 6, &b"hello\n"[..]).expect("file");
        tar.append_file("etc/empty", 0o600, 0, 0, 0, io::empty()).expect("file");
        tar.append_symlink("etc/link", "/usr/share/x", None, 0, 0).expect("symlink");
        let bytes = tar.finish().expect("finish");
        assert_eq!(bytes.len() % BLOCK, 0);
        let entries = read_back(&bytes);
        let names: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["etc/", "tmp/", "etc/motd", "etc/empty", "etc/link"]);
        assert!(entries.iter().all(|e| e.mtime == 1_700_000_000));
        assert_eq!(entries[1].mode, 0o1777);
        assert_eq!((entries[2].kind, entries[2].uid, entries[2].gid), (EntryType::Regular, 1000, 1001));
        assert_eq!(entries[2].data, b"hello\n");
        assert_eq!((entries[4].kind, entries[4].mode), (EntryType::Symlink, 0o777));
        assert_eq!(entries[4].link.as_deref(), Some("/usr/share/x"));
        // Nothing of the host: owner names empty.
        let header = tar::Header::from_byte_slice(&bytes[..BLOCK]);
        assert_eq!(header.username_bytes(), Some(&b""[..]));
        assert_eq!(header.groupname_bytes(), Some(&b""[..]));
    }

    #[test]
    fn long_names_and_targets_round_trip_through_gnu_long_links() {
        let dir = format!("{}/{}", "d".repeat(60), "e".repeat(60));
        let file = format!("{dir}/{}", "f".repeat(150));
        let target = format!("../{}", "t/".repeat(80));
        let at_limit = "x".repeat(100);
        let over_limit = "y".repeat(101);
        let mut tar = DeterministicTar::new(Vec::new(), 0);
        tar.append_dir(&dir, 0o755, 0, 0).expect("dir");
        tar.append_file(&file, 0o644, 0, 0, 3, &b"abc"[..]).expect("file");
        tar.append_symlink(&format!("{dir}/link"), &target, Some(0o777), 0, 0).expect("symlink");
        tar.append_file(&at_limit, 0o644, 0, 0, 0, io::empty()).expect("file");
        tar.append_symlink(&over_limit, &at_limit, None, 0, 0).expect("symlink");
        let bytes = tar.finish().expect("finish");
        let entries = read_back(&bytes);
        let names: Vec<_> = entries.iter().map(|e| e.path.clone()).collect();
        assert_eq!(names, [format!("{dir}/"), file, format!("{dir}/link"), at_limit.clone(), over_limit]);
        assert_eq!(entries[1].data, b"abc");
        assert_eq!(entries[2].link.as_deref(), Some(target.as_str()));
        assert_eq!(entries[4].link.as_deref(), Some(at_limit.as_str()));
        // Exactly the `tar` crate's own long-name encoding.
        let mut theirs = tar::Builder::new(Vec::new());
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Directory);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(0);
        theirs.append_data(&mut header, format!("{dir}/"), io::empty()).expect("append");
        let theirs = theirs.into_inner().expect("finish");
        let mut ours = DeterministicTar::new(Vec::new(), 0);
        ours.append_dir(&dir, 0o755, 0, 0).expect("dir");
        assert_eq!(ours.finish().expect("finish"), theirs);
    }

    #[test]
    fn bad_names_are_refused_before_anything_is_written() {
        for bad in ["", "/etc", "./etc", "a//b", "a/./b", "a/../b", "..", "a\0b", "file/"] {
            let mut tar = DeterministicTar::new(Vec::new(), 0);
            let err = tar.append_file(bad, 0o644, 0, 0, 0, io::empty()).expect_err(bad);
            assert!(matches!(EntryError::of(&err), Some(EntryError::BadName { .. })), "{bad}: {err}");
            assert!(tar.get_ref().is_empty());
        }
        let mut tar = DeterministicTar::new(Vec::new(), 0);
        assert!(tar.append_symlink("l", "", None, 0, 0).is_err());
        assert!(tar.append_dir("/", 0o755, 0, 0).is_err());
    }

    #[test]
    fn content_of_another_size_than_announced_is_an_error_naming_the_entry() {
        let mut tar = DeterministicTar::new(Vec::new(), 0);
        let err = tar.append_file("usr/bin/tool", 0o755, 0, 0, 10, &b"short"[..]).expect_err("shrank");
        assert!(err.to_string().contains("`usr/bin/tool`"), "{err}");
        assert!(matches!(EntryError::of(&err), Some(EntryError::Shrank { expected: 10, read: 5, .. })));

        let mut tar = DeterministicTar::new(Vec::new(), 0);
        let err = tar.append_file("etc/conf", 0o644, 0, 0, 3, &b"longer"[..]).expect_err("grew");
        assert!(matches!(EntryError::take(err), Ok(EntryError::Grew { expected: 3, .. })));
    }

    #[test]
    fn read_errors_name_the_entry_and_output_errors_do_not_pretend_to() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let mut tar = DeterministicTar::new(Vec::new(), 0);
        let err = tar.append_file("a", 0o644, 0, 0, 1, Failing).expect_err("read error");
        assert!(matches!(EntryError::of(&err), Some(EntryError::Read { .. })));
        assert!(err.to_string().contains("disk on fire"));

        let mut full = [0u8; 100];
        let mut tar = DeterministicTar::new(&mut full[..], 0);
        let err = tar.append_file("a", 0o644, 0, 0, 1, &b"x"[..]).expect_err("write error");
        assert!(EntryError::of(&err).is_none());
    }

    #[test]
    fn same_entries_same_bytes_and_the_epoch_is_the_only_time() {
        let build = |epoch| {
            let mut tar = DeterministicTar::new(Vec::new(), epoch);
            tar.append_dir("a", 0o755, 0, 0).expect("dir");
            tar.append_file("a/b", 0o644, 0, 0, 4, &b"data"[..]).expect("file");
            tar.finish().expect("finish")
        };
        assert_eq!(build(42), build(42));
        assert_ne!(build(42), build(43));
    }
}
