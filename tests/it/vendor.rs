//! `pinfold vendor` for a Python set: a tiny wheel made here, listed by a PEP 503 page
//! served on 127.0.0.1 (the Debian side, downloads and archives are in
//! `debian_repo.rs`, registry bases in `tests/registry.rs`). The wheel is vendored under
//! its sha256, and the vendor directory alone builds the same image with the index
//! gone and an empty store.

use crate::harness::*;
use crate::serve::StaticServer;

/// Writes a pure-Python wheel and its project page into `index`; the wheel's sha256.
fn tiny_index(index: &std::path::Path) -> String {
    let script = r#"
import base64, hashlib, os, sys, zipfile
root = sys.argv[1]
files = {
    "pf_tiny/__init__.py": b"GREETING = 'hello from a vendored wheel'\n",
    "pf_tiny-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: pf-tiny\nVersion: 1.0\n",
    "pf_tiny-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: pinfold-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
record = "".join(f"{n},{digest(d)},{len(d)}\n" for n, d in files.items()) + "pf_tiny-1.0.dist-info/RECORD,,\n"
files["pf_tiny-1.0.dist-info/RECORD"] = record.encode()
os.makedirs(f"{root}/files", exist_ok=True)
os.makedirs(f"{root}/simple/pf-tiny", exist_ok=True)
wheel = f"{root}/files/pf_tiny-1.0-py3-none-any.whl"
with zipfile.ZipFile(wheel, "w") as z:
    for name, data in files.items():
        z.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data)
sha = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
with open(f"{root}/simple/pf-tiny/index.html", "w") as page:
    page.write(f'<html><body><a href="../../files/pf_tiny-1.0-py3-none-any.whl#sha256={sha}">pf_tiny-1.0-py3-none-any.whl</a></body></html>\n')
print(sha)
"#;
    tool("python3", &["-c", script, index.to_str().unwrap()]).trim().to_string()
}

#[test]
fn a_python_set_is_vendored_and_builds_offline_from_the_vendor_directory_alone() {
    let tmp = tempdir();
    let index = tmp.path().join("index");
    let sha = tiny_index(&index);
    let server = StaticServer::serve(&index);
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("pinfold.kdl"),
        format!(
            "pinfold 1\nepoch 1704067200\nplatforms \"linux/amd64\" \"linux/arm64\"\n\npython deps {{\n    packages \"pf-tiny\"\n    python \"3.11\"\n    index \"{}/simple\"\n}}\n\nimage py {{\n    from scratch\n    layer py {{ install \"deps\" to=\"/opt/venv\" }}\n}}\n",
            server.url()
        ),
    )
    .unwrap();
    let pinfold = |cache: &str| Test::new().dir(&project).env("PINFOLD_CACHE_DIR", tmp.path().join(cache));
    pinfold("cache").arg("lock").run().success();
    let lock = std::fs::read_to_string(project.join("pinfold.lock")).unwrap();
    assert!(lock.contains(&sha), "the wheel is locked by its sha256:\n{lock}");
    let digest = pinfold("cache").args(["build", "--locked"]).run().success().digest();

    let vendor = tmp.path().join("vendor");
    let out = pinfold("vendor-cache").arg("vendor").arg(&vendor).run().success().stdout();
    assert!(out.contains(&format!("+ {sha} python deps ")), "{out}");
    let wheel = std::fs::read(vendor.join(&sha)).unwrap();
    assert_eq!(wheel, std::fs::read(index.join("files/pf_tiny-1.0-py3-none-any.whl")).unwrap());
    let listed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vendor.join("pinfold-vendor.json")).unwrap()).unwrap();
    let entries: Vec<(String, String)> = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!((f["kind"].as_str(), f["sha256"].as_str()), (Some("python"), Some(sha.as_str())));
            assert_eq!(f["size"].as_u64(), Some(wheel.len() as u64));
            (f["input"].as_str().unwrap().to_string(), f["name"].as_str().unwrap().to_string())
        })
        .collect();
    let name = "pf_tiny-1.0-py3-none-any.whl".to_string();
    assert_eq!(
        entries,
        [("python deps linux/amd64".to_string(), name.clone()), ("python deps linux/arm64".to_string(), name)]
    );

    drop(server);
    let offline =
        pinfold("offline-cache").args(["build", "--locked", "--offline", "--mirror"]).arg(&vendor).run().success();
    assert_eq!(offline.digest(), digest);
}
