//! `.deb` reading on archives built here with the `ar` and `tar` crates: a good one
//! (merged /usr, modes, links, conffiles) and hostile ones, each refused by name.

use super::*;

/// One tar entry: raw name bytes (hostile names allowed), type, mode, link, data.
pub(crate) struct T<'a> {
    pub name: &'a str,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub link: &'a str,
    pub data: &'a [u8],
}

pub(crate) fn dir(name: &str) -> T<'_> {
    T { name, kind: tar::EntryType::Directory, mode: 0o755, link: "", data: b"" }
}
pub(crate) fn reg<'a>(name: &'a str, mode: u32, data: &'a [u8]) -> T<'a> {
    T { name, kind: tar::EntryType::Regular, mode, link: "", data }
}
pub(crate) fn sym<'a>(name: &'a str, link: &'a str) -> T<'a> {
    T { name, kind: tar::EntryType::Symlink, mode: 0o777, link, data: b"" }
}
pub(crate) fn hard<'a>(name: &'a str, link: &'a str) -> T<'a> {
    T { name, kind: tar::EntryType::Link, mode: 0o755, link, data: b"" }
}

/// A tar archive whose names are written byte for byte (no sanitizing).
pub(crate) fn tar_of(entries: &[T]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_size(e.data.len() as u64);
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A .deb: control.tar.gz with `control` (+ extra members), data.tar.xz.
pub(crate) fn deb_of(control: &str, extra: &[(&str, &[u8])], data: &[T]) -> Vec<u8> {
    let mut members = vec![reg("./control", 0o644, control.as_bytes())];
    members.extend(extra.iter().map(|(n, d)| reg(n, 0o755, d)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar_of(&members)).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&tar_of(data)).unwrap();
    let mut ar = ar::Builder::new(Vec::new());
    for (name, bytes) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.gz", gz.finish().unwrap()),
        ("data.tar.xz", xz.finish().unwrap()),
    ] {
        ar.append(&ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64), bytes.as_slice()).unwrap();
    }
    ar.into_inner().unwrap()
}

const CONTROL: &str =
    "Package: tool\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: M <m@invalid>\nDescription: a tool\n more\n";

fn good() -> Vec<u8> {
    deb_of(
        CONTROL,
        &[("./postinst", b"#!/bin/sh\n"), ("./conffiles", b"/etc/tool.conf\n"), ("./md5sums", b"x  usr/bin/tool\n")],
        &[
            dir("./"),
            dir("./bin/"),
            sym("./bin/sh", "../usr/bin/tool"),
            dir("./etc/"),
            reg("./etc/tool.conf", 0o644, b"conf\n"),
            dir("./usr/"),
            dir("./usr/bin/"),
            reg("./usr/bin/tool", 0o4755, b"#!tool\n"),
            hard("./usr/bin/a-tool", "./usr/bin/tool"),
            dir("./lib/"),
            sym("./lib/libx.so", "libx.so.1"),
        ],
    )
}

fn read(bytes: &[u8]) -> Result<Deb> {
    read_deb(bytes, "tool.deb", &Contents::InMemory)
}

#[test]
fn a_good_deb_merged_usr_sorted() {
    let deb = read(&good()).unwrap();
    assert_eq!(deb.control.name(), "tool");
    assert_eq!(deb.control.scripts(), ["postinst"]);
    assert_eq!(deb.control.conffiles, ["/etc/tool.conf"]);
    assert_eq!(deb.conffile_md5["/etc/tool.conf"], hex::encode(Md5::digest(b"conf\n")));
    let paths: Vec<&str> = deb.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "etc",
            "etc/tool.conf",
            "usr",
            "usr/bin",
            "usr/bin/a-tool",
            "usr/bin/sh",
            "usr/bin/tool",
            "usr/lib",
            "usr/lib/libx.so"
        ]
    );
    let by = |p: &str| deb.entries.iter().find(|e| e.path == p).unwrap();
    assert_eq!(by("usr/bin/sh").kind, EntryKind::Symlink { target: "tool".into() });
    assert_eq!(by("usr/bin/sh").package_path, "bin/sh");
    assert_eq!(by("usr/lib/libx.so").kind, EntryKind::Symlink { target: "libx.so.1".into() });
    // The hardlink group is reordered so the file comes first in path order.
    assert!(matches!(by("usr/bin/a-tool").kind, EntryKind::File { size: 7, .. }));
    assert_eq!(by("usr/bin/a-tool").mode, 0o755);
    assert_eq!(by("usr/bin/tool").kind, EntryKind::Hardlink { target: "usr/bin/a-tool".into() });
    assert_eq!(by("usr/bin/tool").mode, 0o4755);
    assert_eq!(deb.listed[..3], ["bin".to_string(), "bin/sh".into(), "etc".into()]);
}

#[test]
fn extraction_writes_regular_files_0644_only() {
    let root = tempfile::tempdir().unwrap();
    let deb = read_deb(good().as_slice(), "tool.deb", &Contents::ExtractTo(root.path().to_path_buf())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(root.path().join("usr/bin/tool")).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
    assert!(!root.path().join("usr/bin/sh").exists(), "symlinks are entries, not files on disk");
    let EntryKind::File { data, .. } = &deb.entries.iter().find(|e| e.path == "usr/bin/a-tool").unwrap().kind else {
        panic!()
    };
    assert_eq!(data.read().unwrap(), b"#!tool\n");
}

fn refused(data: &[T], entry: &str, message: &str) {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("tree");
    std::fs::create_dir(&dest).unwrap();
    let err = read_deb(deb_of(CONTROL, &[], data).as_slice(), "evil.deb", &Contents::ExtractTo(dest)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::HostileEntry { .. }), "{text}");
    assert!(text.starts_with(&format!("evil.deb: entry {entry}: ")) && text.contains(message), "{text}");
    let outside: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, ["tree"], "nothing written outside the destination");
}

/// The extraction directory is written through the rooted primitive: a symlink already
/// in it (left by anything: an earlier run, another package's tree) is never followed,
/// so a good package cannot be made to write outside it either.
#[test]
fn extraction_never_writes_through_a_symlink_in_the_directory() {
    use std::os::unix::fs::PermissionsExt;
    let outer = tempfile::tempdir().unwrap();
    let victim = outer.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o700)).unwrap();
    let tree = outer.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::os::unix::fs::symlink(&victim, tree.join("usr")).unwrap();
    let err = read_deb(good().as_slice(), "tool.deb", &Contents::ExtractTo(tree)).unwrap_err().to_string();
    assert!(err.contains("through the symlink `usr`"), "{err}");
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0, "something was written through the symlink");
    assert_eq!(std::fs::metadata(&victim).unwrap().permissions().mode() & 0o7777, 0o700);
}

#[test]
fn hostile_entries_are_refused_by_name() {
    refused(&[reg("../x", 0o644, b"x")], "../x", "`..`");
    refused(&[reg("./usr/../../x", 0o644, b"x")], "./usr/../../x", "`..`");
    refused(&[reg("/etc/passwd", 0o644, b"x")], "/etc/passwd", "absolute");
    refused(
        &[sym("./usr/evil", "/etc"), reg("./usr/evil/passwd", 0o644, b"x")],
        "./usr/evil/passwd",
        "not a directory",
    );
    refused(
        &[sym("./usr/evil", "../../.."), dir("./usr/evil/"), reg("./usr/evil/x", 0o644, b"x")],
        "./usr/evil/",
        "twice",
    );
    refused(&[reg("./a", 0o644, b"1"), reg("./a", 0o644, b"2")], "./a", "appears twice");
    refused(&[dir("./lib/"), reg("./usr/lib", 0o644, b"x")], "./usr/lib", "appears twice");
    refused(&[reg("./usr/x/y", 0o644, b"1"), sym("./usr/x", "/etc")], "./usr/x", "replace a directory");
    refused(&[hard("./a", "./missing")], "./a", "not an earlier file");
    refused(&[hard("./a", "../../etc/shadow")], "./a", "`..`");
    let dev = T { name: "./dev/null", kind: tar::EntryType::Char, mode: 0o666, link: "", data: b"" };
    refused(&[dev], "./dev/null", "not supported");
}

#[test]
fn data_before_control_is_refused() {
    let mut ar = ar::Builder::new(Vec::new());
    let data = tar_of(&[dir("./")]);
    ar.append(&ar::Header::new(b"debian-binary".to_vec(), 4), &b"2.0\n"[..]).unwrap();
    ar.append(&ar::Header::new(b"data.tar".to_vec(), data.len() as u64), data.as_slice()).unwrap();
    let err = read(&ar.into_inner().unwrap()).unwrap_err().to_string();
    assert!(err.contains("before control.tar"), "{err}");
    assert!(read(b"not an ar archive").is_err());
}

#[test]
fn link_rebasing() {
    assert_eq!(rebase_link("bin/sh", "usr/bin/sh", "dash"), "dash");
    assert_eq!(rebase_link("bin/x", "usr/bin/x", "../usr/bin/y"), "y");
    assert_eq!(rebase_link("lib/x/a.so", "usr/lib/x/a.so", "../../lib/b.so"), "../b.so");
    assert_eq!(rebase_link("sbin/x", "usr/sbin/x", "/bin/y"), "/bin/y");
    assert_eq!(rebase_link("usr/bin/x", "usr/bin/x", "../../bin/y"), "../../bin/y");
    assert_eq!(rebase_link("bin/x", "usr/bin/x", "../../../etc/y"), "../../etc/y");
}

#[test]
fn layout_links() {
    let arm: Vec<String> = merged_usr_layout("arm64").iter().map(|e| e.path.clone()).collect();
    assert_eq!(arm, ["bin", "lib", "sbin", "usr", "usr/bin", "usr/lib", "usr/sbin"]);
    let amd = merged_usr_layout("amd64");
    let lib64 = amd.iter().find(|e| e.path == "lib64").unwrap();
    assert_eq!(lib64.kind, EntryKind::Symlink { target: "usr/lib64".into() });
}

#[test]
fn dpkg_database_and_ca_bundle() {
    let deb = read(&good()).unwrap();
    let db = crate::dpkg::dpkg_database(&[&deb]);
    let status = db.iter().find(|e| e.path == "var/lib/dpkg/status").unwrap();
    let EntryKind::File { data, .. } = &status.kind else { panic!() };
    let text = String::from_utf8(data.read().unwrap()).unwrap();
    assert!(text.starts_with("Package: tool\nStatus: install ok installed\nVersion: 1.0-1\n"), "{text}");
    let md5 = hex::encode(Md5::digest(b"conf\n"));
    assert!(text.contains(&format!("Conffiles:\n /etc/tool.conf {md5}\nDescription: a tool\n more\n")), "{text}");
    let list = crate::dpkg::list_file(&deb);
    assert!(list.starts_with("/.\n/bin\n/bin/sh\n/etc\n"), "{list}");
    assert!(db.iter().any(|e| e.path == "var/lib/dpkg/info/tool.md5sums"));
    let notes = crate::fixups::scripts_not_run(&[&deb]);
    assert_eq!(notes[0].scripts, ["postinst"]);

    let cert = |p: &str, b: &'static [u8]| crate::dpkg::file(p, b.to_vec());
    let tree = vec![
        cert("usr/share/ca-certificates/mozilla/B_b.crt", b"B"),
        cert("usr/share/ca-certificates/mozilla/A a.crt", b"A\n"),
        cert("usr/local/share/ca-certificates/corp.crt", b"C\n"),
        cert("usr/share/ca-certificates/mozilla/readme", b"no"),
    ];
    let out = crate::fixups::ca_certificates(&tree).unwrap();
    let paths: Vec<&str> = out.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "etc/ca-certificates.conf",
            "etc/ssl/certs/A_a.pem",
            "etc/ssl/certs/B_b.pem",
            "etc/ssl/certs/ca-certificates.crt",
            "etc/ssl/certs/corp.pem"
        ]
    );
    let EntryKind::File { data, .. } = &out[3].kind else { panic!() };
    assert_eq!(data.read().unwrap(), b"A\nB\nC\n");
    assert_eq!(out[1].kind, EntryKind::Symlink { target: "/usr/share/ca-certificates/mozilla/A a.crt".into() });
}
