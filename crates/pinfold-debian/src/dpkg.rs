//! dpkg's database for the packages pinfold installed: `var/lib/dpkg/status` and the
//! `info/PKG.list` and `info/PKG.md5sums` files.
//!
//! Why: without it `dpkg -l`, `apt` and image scanners see no package in the image, so
//! an image made without dpkg would look empty to every tool that audits it. The status
//! has one stanza per package, sorted by name: the control file's fields with
//! `Status: install ok installed` after `Package` and the conffiles' md5 (dpkg's
//! `Conffiles` field) before `Description`. A `.list` starts with `/.` and then lists
//! the package's own paths in archive order, as dpkg records them (dpkg knows nothing
//! of merged /usr: `/bin/sh` stays `/bin/sh`). `Multi-Arch: same` packages' info files
//! are named `PKG:ARCH`, as dpkg names them.

use crate::deb::{Deb, Entry, EntryKind, FileData};
use crate::digest::sha256_hex;

/// The database entries (directories and files, sorted by path) for `debs`.
pub fn dpkg_database(debs: &[&Deb]) -> Vec<Entry> {
    let mut sorted: Vec<&Deb> = debs.to_vec();
    sorted.sort_by(|a, b| (a.control.name(), arch(a)).cmp(&(b.control.name(), arch(b))));
    let mut out: Vec<Entry> = ["var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/info"].into_iter().map(dir).collect();
    let status: String = sorted.iter().map(|d| status_stanza(d) + "\n").collect();
    out.push(file("var/lib/dpkg/status", status.into_bytes()));
    for deb in &sorted {
        let base = format!("var/lib/dpkg/info/{}", info_name(deb));
        out.push(file(&format!("{base}.list"), list_file(deb).into_bytes()));
        if let Some(md5sums) = deb.control.members.get("md5sums") {
            out.push(file(&format!("{base}.md5sums"), md5sums.clone()));
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn arch(deb: &Deb) -> &str {
    deb.control.stanza.get("Architecture").unwrap_or("")
}

/// `PKG`, or `PKG:ARCH` for a `Multi-Arch: same` package.
pub fn info_name(deb: &Deb) -> String {
    let name = deb.control.name();
    match deb.control.stanza.get("Multi-Arch") {
        Some("same") => format!("{name}:{}", arch(deb)),
        _ => name.to_string(),
    }
}

/// One status stanza (ending with a newline, no blank line).
pub fn status_stanza(deb: &Deb) -> String {
    let mut fields = deb.control.stanza.fields.clone();
    fields.retain(|(n, _)| !n.eq_ignore_ascii_case("Status") && !n.eq_ignore_ascii_case("Conffiles"));
    let at = fields.iter().position(|(n, _)| n.eq_ignore_ascii_case("Package")).map_or(0, |i| i + 1);
    fields.insert(at, ("Status".into(), "install ok installed".into()));
    if !deb.control.conffiles.is_empty() {
        let lines: String = deb.control.conffiles.iter().map(|c| conffile_line(deb, c)).collect();
        let at = fields.iter().position(|(n, _)| n.eq_ignore_ascii_case("Description")).unwrap_or(fields.len());
        fields.insert(at, ("Conffiles".into(), lines));
    }
    crate::deb822::Stanza { fields, line: 0 }.to_text()
}

/// ` /etc/x MD5` (dpkg writes `newconffile` for a conffile the package lacks).
fn conffile_line(deb: &Deb, path: &str) -> String {
    let md5 = deb.conffile_md5.get(path).map_or("newconffile", String::as_str);
    format!("\n {path} {md5}")
}

/// The `.list` text: `/.` then every package path.
pub fn list_file(deb: &Deb) -> String {
    let mut text = String::from("/.\n");
    for path in &deb.listed {
        text.push('/');
        text.push_str(path);
        text.push('\n');
    }
    text
}

fn dir(path: &str) -> Entry {
    Entry { path: path.into(), package_path: path.into(), kind: EntryKind::Dir, mode: 0o755, uid: 0, gid: 0 }
}

/// A generated regular file, mode 0644, owned by root.
pub fn file(path: &str, bytes: Vec<u8>) -> Entry {
    let kind = EntryKind::File { size: bytes.len() as u64, sha256: sha256_hex(&bytes), data: FileData::Bytes(bytes) };
    Entry { path: path.into(), package_path: path.into(), kind, mode: 0o644, uid: 0, gid: 0 }
}
