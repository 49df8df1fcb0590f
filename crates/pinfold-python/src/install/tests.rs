//! Wheels made here with the zip crate: well-formed ones and hostile ones.

use std::io::Write;

use zip::write::SimpleFileOptions;

use super::*;
use crate::target::PythonVersion;

fn v311() -> PythonVersion {
    "3.11.2".parse().unwrap()
}

fn venv() -> Scheme {
    Scheme::venv("/opt/venv", "/usr/bin/python3.11", v311()).unwrap()
}

/// Writes a wheel with `members` (name, bytes, unix mode); RECORD is generated from them
/// unless `record` is given.
fn wheel(dir: &Path, filename: &str, members: &[(&str, &[u8], u32)], record: Option<&str>) -> PathBuf {
    let path = dir.join(filename);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let info = {
        let n = WheelName::parse(filename).unwrap();
        format!("{}-{}.dist-info", n.name, n.version)
    };
    let mut rec = String::new();
    for (name, bytes, mode) in members {
        let opts = SimpleFileOptions::default().unix_permissions(*mode);
        if mode & 0o170000 == 0o120000 {
            zip.add_symlink(*name, std::str::from_utf8(bytes).unwrap(), opts).unwrap();
        } else {
            zip.start_file(*name, opts).unwrap();
            zip.write_all(bytes).unwrap();
        }
        rec.push_str(&format!("{name},sha256={},{}\n", record::digest("sha256", bytes).unwrap(), bytes.len()));
    }
    rec.push_str(&format!("{info}/RECORD,,\n"));
    zip.start_file(format!("{info}/RECORD"), SimpleFileOptions::default()).unwrap();
    zip.write_all(record.unwrap_or(&rec).as_bytes()).unwrap();
    zip.finish().unwrap();
    path
}

const WHEEL: &[u8] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";

fn demo(dir: &Path) -> PathBuf {
    wheel(
        dir,
        "demo_pkg-1.0-py3-none-any.whl",
        &[
            ("demo_pkg/__init__.py", b"x = 1\n", 0o644),
            ("demo_pkg/tool.sh", b"#!/bin/sh\n", 0o755),
            ("demo_pkg/__pycache__/__init__.cpython-311.pyc", b"junk", 0o644),
            ("demo_pkg-1.0.data/scripts/demo-run", b"#!python\nimport demo_pkg\n", 0o644),
            ("demo_pkg-1.0.data/data/share/demo/readme.txt", b"hi\n", 0o644),
            ("demo_pkg-1.0.data/headers/demo.h", b"int x;\n", 0o644),
            ("demo_pkg-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n", 0o644),
            ("demo_pkg-1.0.dist-info/WHEEL", WHEEL, 0o644),
            (
                "demo_pkg-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\ndemo = demo_pkg.cli:main\n[gui_scripts]\ndemo-gui = demo_pkg:gui\n",
                0o644,
            ),
        ],
        None,
    )
}

fn file_bytes(entries: &[Entry], path: &str) -> Vec<u8> {
    match &entries.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("{path} missing")).kind {
        EntryKind::File(Content::Bytes(b)) => b.clone(),
        EntryKind::File(Content::Extracted(p)) => std::fs::read(p).unwrap(),
        other => panic!("{path} is {other:?}"),
    }
}

fn mode(entries: &[Entry], path: &str) -> u32 {
    entries.iter().find(|e| e.path == path).unwrap().mode
}

#[test]
fn installs_into_a_venv_with_scripts_data_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let e = install_wheel(&demo(dir.path()), &venv(), &InstallOptions::default()).unwrap();
    let site = "/opt/venv/lib/python3.11/site-packages";
    let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries are sorted");
    assert!(!paths.iter().any(|p| p.contains("__pycache__") || p.ends_with(".pyc")));
    assert_eq!(file_bytes(&e, &format!("{site}/demo_pkg/__init__.py")), b"x = 1\n");
    assert_eq!(mode(&e, &format!("{site}/demo_pkg/__init__.py")), 0o644);
    assert_eq!(mode(&e, &format!("{site}/demo_pkg/tool.sh")), 0o755);
    assert_eq!(file_bytes(&e, "/opt/venv/bin/demo-run"), b"#!/opt/venv/bin/python\nimport demo_pkg\n");
    assert_eq!(mode(&e, "/opt/venv/bin/demo-run"), 0o755);
    assert_eq!(file_bytes(&e, "/opt/venv/share/demo/readme.txt"), b"hi\n");
    assert_eq!(file_bytes(&e, "/opt/venv/include/site/python3.11/demo_pkg/demo.h"), b"int x;\n");
    let launcher = String::from_utf8(file_bytes(&e, "/opt/venv/bin/demo")).unwrap();
    assert!(
        launcher.starts_with("#!/opt/venv/bin/python\n") && launcher.contains("from demo_pkg.cli import main"),
        "{launcher}"
    );
    assert!(paths.contains(&"/opt/venv/bin/demo-gui"));
    assert_eq!(file_bytes(&e, &format!("{site}/demo_pkg-1.0.dist-info/INSTALLER")), b"pinfold\n");
    assert_eq!(e.iter().find(|x| x.path == "/opt").unwrap().kind, EntryKind::Dir);
    check_record(&e, site, "demo_pkg-1.0.dist-info");
    assert_eq!(e, install_wheel(&demo(dir.path()), &venv(), &InstallOptions::default()).unwrap(), "deterministic");
}

/// Every file under the venv is in RECORD with its hash and size, and nothing else is.
fn check_record(e: &[Entry], site: &str, info: &str) {
    let rec = record::parse(&file_bytes(e, &format!("{site}/{info}/RECORD"))).unwrap();
    let files: Vec<&Entry> = e.iter().filter(|x| matches!(x.kind, EntryKind::File(_))).collect();
    assert_eq!(rec.len(), files.len());
    for f in files {
        let rel = relative(site, &f.path);
        let r = rec.get(&rel).unwrap_or_else(|| panic!("{rel} not in RECORD"));
        if rel == format!("{info}/RECORD") {
            assert_eq!(r.hash, None);
            continue;
        }
        let bytes = file_bytes(e, &f.path);
        assert_eq!(r.hash.as_ref().unwrap().1, record::digest("sha256", &bytes).unwrap(), "{rel}");
        assert_eq!(r.size, Some(bytes.len() as u64));
    }
}

#[test]
fn site_packages_scheme_and_extraction() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let scheme =
        Scheme::site_packages("/usr/local/lib/python3.11/dist-packages", "/usr/bin/python3.11", v311()).unwrap();
    let opts = InstallOptions { extract_to: Some(out.path().to_path_buf()) };
    let e = install_wheel(&demo(dir.path()), &scheme, &opts).unwrap();
    let launcher = String::from_utf8(file_bytes(&e, "/usr/local/bin/demo")).unwrap();
    assert!(launcher.starts_with("#!/usr/bin/python3.11\n"));
    assert!(out.path().join("usr/local/lib/python3.11/dist-packages/demo_pkg/__init__.py").is_file());
    check_record(&e, "/usr/local/lib/python3.11/dist-packages", "demo_pkg-1.0.dist-info");
}

/// Extraction goes through the rooted primitive: a symlink already in the directory
/// (an earlier run's tree, tampered with) is never written through, and a file an
/// earlier install of the same wheel left is replaced.
#[test]
fn extraction_never_writes_through_a_symlink_in_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let outer = tempfile::tempdir().unwrap();
    let victim = outer.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    let out = outer.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let opts = InstallOptions { extract_to: Some(out.clone()) };
    let wheel = demo(dir.path());
    install_wheel(&wheel, &venv(), &opts).unwrap();
    install_wheel(&wheel, &venv(), &opts).expect("a second install over the first");
    let top = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    std::fs::remove_dir_all(&top).unwrap();
    std::os::unix::fs::symlink(&victim, &top).unwrap();
    let err = install_wheel(&wheel, &venv(), &opts).unwrap_err().to_string();
    assert!(err.contains("through the symlink"), "{err}");
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0, "something was written through the symlink");
}

fn install_err(members: &[(&str, &[u8], u32)], record: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut all = members.to_vec();
    all.push(("bad-1.0.dist-info/WHEEL", WHEEL, 0o644));
    let w = wheel(dir.path(), "bad-1.0-py3-none-any.whl", &all, record);
    install_wheel(&w, &venv(), &InstallOptions::default()).unwrap_err().to_string()
}

#[test]
fn hostile_wheels_are_refused() {
    let msg = install_err(&[("../../etc/passwd", b"x", 0o644)], None);
    assert!(msg.contains("bad-1.0-py3-none-any.whl") && msg.contains("..") && msg.contains("unsafe"), "{msg}");
    let msg = install_err(&[("/etc/passwd", b"x", 0o644)], None);
    assert!(msg.contains("absolute"), "{msg}");
    let msg = install_err(&[("bad-1.0.data/data/../../../x", b"x", 0o644)], None);
    assert!(msg.contains(".."), "{msg}");
    let msg = install_err(&[("bad/x.py", b"/etc/passwd", 0o120777)], None);
    assert!(msg.contains("symlink"), "{msg}");
    let wrong = format!(
        "bad/x.py,sha256={},1\nbad-1.0.dist-info/WHEEL,sha256={},{}\n",
        record::digest("sha256", b"y").unwrap(),
        record::digest("sha256", WHEEL).unwrap(),
        WHEEL.len()
    );
    let msg = install_err(&[("bad/x.py", b"x", 0o644)], Some(&wrong));
    assert!(msg.contains("RECORD") && msg.contains("bad/x.py") && msg.contains("sha256="), "{msg}");
    let partial =
        format!("bad-1.0.dist-info/WHEEL,sha256={},{}\n", record::digest("sha256", WHEEL).unwrap(), WHEEL.len());
    let msg = install_err(&[("bad/x.py", b"x", 0o644)], Some(&partial));
    assert!(msg.contains("not in RECORD"), "{msg}");
    let msg = install_err(&[("bad-1.0.data/bogus/x", b"x", 0o644)], None);
    assert!(msg.contains("bogus"), "{msg}");
    let msg = install_err(
        &[("bad-1.0.dist-info/entry_points.txt", b"[console_scripts]\nx = os:system('id')\n", 0o644)],
        None,
    );
    assert!(msg.contains("entry point"), "{msg}");
}

#[test]
fn too_many_members_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big-1.0-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..=MAX_ENTRIES {
        zip.start_file(
            format!("big/{i}"),
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
    }
    zip.finish().unwrap();
    let msg = install_wheel(&path, &venv(), &InstallOptions::default()).unwrap_err().to_string();
    assert!(msg.contains("members"), "{msg}");
}

#[test]
fn merge_refuses_a_file_of_two_wheels() {
    let f =
        |p: &str, b: &[u8]| Entry { path: p.into(), kind: EntryKind::File(Content::Bytes(b.to_vec())), mode: 0o644 };
    let d = |p: &str| Entry { path: p.into(), kind: EntryKind::Dir, mode: 0o755 };
    let ok =
        merge(vec![("a.whl".into(), vec![d("/x"), f("/x/a", b"1")]), ("b.whl".into(), vec![d("/x"), f("/x/b", b"2")])])
            .unwrap();
    assert_eq!(ok.len(), 3);
    let err = merge(vec![("a.whl".into(), vec![f("/x/a", b"1")]), ("b.whl".into(), vec![f("/x/a", b"2")])])
        .unwrap_err()
        .to_string();
    assert!(err.contains("a.whl") && err.contains("b.whl") && err.contains("/x/a"), "{err}");
}
