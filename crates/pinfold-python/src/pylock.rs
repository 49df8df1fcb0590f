//! PEP 751 `pylock.toml`: written for a resolution, and read as it is.
//!
//! Why: pylock.toml is the standard lock other tools (uv, pip, PDM) read and write; a
//! researcher may bring one, and pinfold's resolution can be handed to them.
//!
//! Writing: [`export`] makes one single-use lock per target (`environments` is that
//! target's markers), packages sorted by name, each with its one wheel's `name`, `size`
//! and `hashes.sha256`, and no `url` (pinfold's own reader finds files by name and hash).
//! [`export_targets`] is what `pinfold lock --pylock` writes for other tools: every
//! platform of a set in one file, `environments` listing each target, a package
//! version shared by all targets written once with all its wheels (installers pick the
//! wheel by its tags), one that differs between targets written once per version with a
//! `marker` naming its targets, and each wheel's `url` where the index serves it now,
//! because installers such as uv refuse a wheel without `url` or `path`. pinfold.lock
//! itself never names a host; the exported file does only for those installers.
//!
//! Reading: markers and `requires-python` are evaluated for the target, the best-tagged
//! wheel of each package is picked, and any wheel without a sha256 is refused, naming its
//! package. `url`s in the file are not followed; the wheel is found by name like a
//! pinfold lock's. Packages with only an sdist, a VCS or directory source, or wheels given
//! by `path`, are refused with a message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::VersionSpecifiers;
use pep508_rs::MarkerTree;
use serde::{Deserialize, Serialize};

use crate::error::PylockError;
use crate::index::normalize_name;
use crate::resolve::{LockedWheel, Resolution};
use crate::target::Target;
use crate::wheel_name::WheelName;

/// Largest pylock.toml read.
const MAX_BYTES: usize = 32 << 20;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct File {
    lock_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    environments: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requires_python: Option<String>,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    packages: Vec<Package>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool: Option<toml::Table>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Package {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    marker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requires_python: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    wheels: Vec<Wheel>,
    #[serde(default, skip_serializing)]
    sdist: Option<toml::Value>,
    #[serde(default, skip_serializing)]
    vcs: Option<toml::Value>,
    #[serde(default, skip_serializing)]
    directory: Option<toml::Value>,
    #[serde(default, skip_serializing)]
    archive: Option<toml::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Wheel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing)]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

/// The targets that install one version of a package, and its wheels by file name.
type Group<'r> = (Vec<&'r Target>, BTreeMap<String, &'r LockedWheel>);

/// The pylock.toml text of several targets' resolutions of one set (see the module
/// notes); `urls` maps a wheel's file name to where it can be downloaded.
pub fn export_targets(resolutions: &[Resolution], urls: &BTreeMap<String, String>) -> String {
    // (name, version) → the targets that install it and their wheels, by file name.
    let mut groups: BTreeMap<(String, String), Group<'_>> = BTreeMap::new();
    for r in resolutions {
        for w in &r.packages {
            let slot = groups.entry((w.name.clone(), w.version.clone())).or_default();
            slot.0.push(&r.target);
            slot.1.entry(w.filename.clone()).or_insert(w);
        }
    }
    let everywhere = |targets: &[&Target]| resolutions.iter().all(|r| targets.contains(&&r.target));
    let packages = groups
        .into_iter()
        .map(|((name, version), (targets, wheels))| {
            let marker = (!everywhere(&targets)).then(|| {
                let mut each: Vec<String> = targets.iter().map(|t| format!("({})", environment_marker(t))).collect();
                each.sort();
                each.dedup();
                each.join(" or ")
            });
            let first = wheels.values().next().expect("a group has a wheel");
            Package {
                name,
                version: Some(version),
                marker,
                requires_python: first.requires_python.clone(),
                wheels: wheels.values().map(|w| wheel_of(w, urls.get(&w.filename).cloned())).collect(),
                sdist: None,
                vcs: None,
                directory: None,
                archive: None,
            }
        })
        .collect();
    let mut environments: Vec<String> = resolutions.iter().map(|r| environment_marker(&r.target)).collect();
    environments.dedup();
    let mut pythons: Vec<String> = resolutions.iter().map(|r| format!("=={}.*", r.target.python.short())).collect();
    pythons.sort();
    pythons.dedup();
    let mut pinfold = toml::Table::new();
    let platforms: Vec<toml::Value> =
        resolutions.iter().map(|r| toml::Value::from(r.target.arch.oci_platform())).collect();
    pinfold.insert("platforms".into(), platforms.into());
    if let Some(r) = resolutions.first() {
        pinfold.insert("python".into(), r.target.python.to_string().into());
        pinfold.insert("glibc".into(), format!("{}.{}", r.target.glibc.0, r.target.glibc.1).into());
    }
    let mut tool = toml::Table::new();
    tool.insert("pinfold".into(), pinfold.into());
    let file = File {
        lock_version: "1.0".into(),
        environments: Some(environments),
        requires_python: (pythons.len() == 1).then(|| pythons[0].clone()),
        created_by: "pinfold".into(),
        packages,
        tool: Some(tool),
    };
    toml::to_string(&file).expect("a lock of strings and integers serializes")
}

/// The pylock.toml text of a resolution.
pub fn export(resolution: &Resolution) -> String {
    let t = &resolution.target;
    let file = File {
        lock_version: "1.0".into(),
        environments: Some(vec![environment_marker(t)]),
        requires_python: Some(format!("=={}.*", t.python.short())),
        created_by: "pinfold".into(),
        packages: resolution.packages.iter().map(package_of).collect(),
        tool: Some(tool_table(t)),
    };
    toml::to_string(&file).expect("a lock of strings and integers serializes")
}

fn environment_marker(t: &Target) -> String {
    format!(
        "sys_platform == 'linux' and platform_machine == '{}' and implementation_name == 'cpython' and python_version == '{}'",
        t.arch.machine(),
        t.python.short()
    )
}

fn tool_table(t: &Target) -> toml::Table {
    let mut pinfold = toml::Table::new();
    pinfold.insert("platform".into(), t.arch.oci_platform().into());
    pinfold.insert("python".into(), t.python.to_string().into());
    pinfold.insert("glibc".into(), format!("{}.{}", t.glibc.0, t.glibc.1).into());
    pinfold.insert("files".into(), "found by name and sha256 through the configured index".into());
    let mut tool = toml::Table::new();
    tool.insert("pinfold".into(), pinfold.into());
    tool
}

fn wheel_of(w: &LockedWheel, url: Option<String>) -> Wheel {
    Wheel {
        name: Some(w.filename.clone()),
        url,
        path: None,
        size: w.size,
        hashes: [("sha256".to_string(), w.sha256.clone())].into(),
    }
}

fn package_of(w: &LockedWheel) -> Package {
    Package {
        name: w.name.clone(),
        version: Some(w.version.clone()),
        marker: None,
        requires_python: w.requires_python.clone(),
        wheels: vec![wheel_of(w, None)],
        sdist: None,
        vcs: None,
        directory: None,
        archive: None,
    }
}

/// A pylock.toml read and checked (every wheel has a sha256).
#[derive(Debug)]
pub struct Pylock {
    file: PathBuf,
    parsed: File,
}

impl Pylock {
    /// Reads and checks a pylock.toml file.
    pub fn read(path: &Path) -> Result<Pylock, PylockError> {
        let bytes = std::fs::read(path).map_err(|e| invalid(path, e.to_string()))?;
        if bytes.len() > MAX_BYTES {
            return Err(invalid(path, format!("larger than {MAX_BYTES} bytes")));
        }
        let text = String::from_utf8(bytes).map_err(|_| invalid(path, "not UTF-8".into()))?;
        Pylock::parse(&text, path)
    }

    /// Parses the text of `file` and checks it.
    pub fn parse(text: &str, file: &Path) -> Result<Pylock, PylockError> {
        let parsed: File = toml::from_str(text).map_err(|e| invalid(file, e.to_string()))?;
        if parsed.lock_version.split('.').next() != Some("1") {
            return Err(invalid(file, format!("lock-version {} is not supported (1.x is)", parsed.lock_version)));
        }
        let lock = Pylock { file: file.to_path_buf(), parsed };
        lock.check_hashes()?;
        Ok(lock)
    }

    fn check_hashes(&self) -> Result<(), PylockError> {
        for p in &self.parsed.packages {
            for w in &p.wheels {
                let sha = w.hashes.get("sha256");
                if !sha.is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())) {
                    let name = wheel_name(w).unwrap_or_else(|| "a wheel".into());
                    return Err(self.package_err(&p.name, format!("{name} has no sha256 hash")));
                }
            }
        }
        Ok(())
    }

    /// The wheels this lock installs on `target`, as a resolution.
    pub fn select(&self, target: &Target) -> Result<Resolution, PylockError> {
        self.check_environment(target)?;
        let env = target.marker_environment();
        let tags = target.tags();
        let mut out: BTreeMap<String, LockedWheel> = BTreeMap::new();
        for p in &self.parsed.packages {
            if !marker_applies(p.marker.as_deref(), &env).map_err(|m| self.package_err(&p.name, m))? {
                continue;
            }
            let locked = self.select_package(p, target, &tags)?;
            if out.insert(locked.name.clone(), locked).is_some() {
                return Err(self.package_err(&p.name, "listed twice for this platform".into()));
            }
        }
        Ok(Resolution { target: target.clone(), packages: out.into_values().collect() })
    }

    fn check_environment(&self, target: &Target) -> Result<(), PylockError> {
        if let Some(rp) = &self.parsed.requires_python {
            let specs =
                VersionSpecifiers::from_str(rp).map_err(|e| invalid(&self.file, format!("requires-python: {e}")))?;
            if !specs.contains(&target.python.pep440()) {
                return Err(invalid(&self.file, format!("requires-python {rp} excludes Python {}", target.python)));
            }
        }
        if let Some(envs) = &self.parsed.environments {
            let env = target.marker_environment();
            let mut any = false;
            for m in envs {
                any |= marker_applies(Some(m), &env).map_err(|e| invalid(&self.file, e))?;
            }
            if !any {
                return Err(invalid(&self.file, format!("no environment of the lock matches {}", target.describe())));
            }
        }
        Ok(())
    }

    fn select_package(
        &self,
        p: &Package,
        target: &Target,
        tags: &[crate::target::Tag],
    ) -> Result<LockedWheel, PylockError> {
        if let Some(rp) = &p.requires_python {
            let ok = VersionSpecifiers::from_str(rp).is_ok_and(|s| s.contains(&target.python.pep440()));
            if !ok {
                return Err(
                    self.package_err(&p.name, format!("requires-python {rp} excludes Python {}", target.python))
                );
            }
        }
        if p.vcs.is_some() || p.directory.is_some() || p.archive.is_some() {
            return Err(self.package_err(
                &p.name,
                "only wheels are supported: build this source in a pinfold `step` and pass the wheel as a file".into(),
            ));
        }
        let best = p
            .wheels
            .iter()
            .filter_map(|w| Some((WheelName::parse(&wheel_name(w)?)?.priority(tags)?, w)))
            .min_by(|a, b| a.0.cmp(&b.0).then_with(|| wheel_name(a.1).cmp(&wheel_name(b.1))));
        let Some((_, w)) = best else {
            let why = if p.sdist.is_some() { "has only a source distribution" } else { "has no wheel" };
            return Err(self.package_err(
                &p.name,
                format!("{why} for {}: build the wheel in a pinfold `step` and pass it as a file", target.describe()),
            ));
        };
        if w.path.is_some() && w.url.is_none() {
            return Err(self
                .package_err(&p.name, "wheels given by `path` are not supported: pass the file to the build".into()));
        }
        let filename = wheel_name(w).unwrap_or_default();
        let version = p.version.clone().or_else(|| WheelName::parse(&filename).map(|n| n.version)).unwrap_or_default();
        Ok(LockedWheel {
            name: normalize_name(&p.name),
            version,
            filename,
            sha256: w.hashes["sha256"].to_ascii_lowercase(),
            size: w.size,
            requires_python: p.requires_python.clone(),
        })
    }

    fn package_err(&self, package: &str, message: String) -> PylockError {
        PylockError::Package { file: self.file.clone(), package: package.to_string(), message }
    }
}

/// A wheel's file name: `name`, else the last component of its url or path.
fn wheel_name(w: &Wheel) -> Option<String> {
    if let Some(n) = &w.name {
        return Some(n.clone());
    }
    let from = w.url.as_deref().or(w.path.as_deref())?;
    let last = from.split(['#', '?']).next()?.rsplit('/').next()?;
    (!last.is_empty()).then(|| last.to_string())
}

fn marker_applies(marker: Option<&str>, env: &pep508_rs::MarkerEnvironment) -> Result<bool, String> {
    let Some(m) = marker else { return Ok(true) };
    let tree = crate::pep508_guard(|| MarkerTree::from_str(m)).map_err(|e| format!("marker {m:?}: {e}"))?;
    Ok(tree.evaluate(env, &[]))
}

fn invalid(file: &Path, message: String) -> PylockError {
    PylockError::Invalid { file: file.to_path_buf(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn resolution(t: &Target) -> Resolution {
        Resolution {
            target: t.clone(),
            packages: vec![
                LockedWheel {
                    name: "numpy".into(),
                    version: "2.1.0".into(),
                    filename: "numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl".into(),
                    sha256: A.into(),
                    size: Some(100),
                    requires_python: Some(">=3.10".into()),
                },
                LockedWheel {
                    name: "tqdm".into(),
                    version: "4.67.1".into(),
                    filename: "tqdm-4.67.1-py3-none-any.whl".into(),
                    sha256: B.into(),
                    size: Some(7),
                    requires_python: None,
                },
            ],
        }
    }

    #[test]
    fn export_then_import_round_trips() {
        let t = Target::new("3.11", "linux/amd64", "2.36").unwrap();
        let r = resolution(&t);
        let text = export(&r);
        assert!(text.starts_with("lock-version = \"1.0\""), "{text}");
        assert!(!text.contains("://"), "no URL in {text}");
        assert_eq!(text, export(&r), "export is deterministic");
        let back = Pylock::parse(&text, Path::new("pylock.toml")).unwrap().select(&t).unwrap();
        assert_eq!(back, r);
        let arm = Target::new("3.11", "linux/arm64", "2.36").unwrap();
        let err = Pylock::parse(&text, Path::new("pylock.toml")).unwrap().select(&arm).unwrap_err();
        assert!(err.to_string().contains("no environment"), "{err}");
    }

    #[test]
    fn a_multi_platform_export_reads_back_to_each_platforms_resolution() {
        let amd = Target::new("3.11", "linux/amd64", "2.36").unwrap();
        let arm = Target::new("3.11", "linux/arm64", "2.36").unwrap();
        let a = resolution(&amd);
        let mut b = resolution(&arm);
        b.packages[0].filename = "numpy-2.1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl".into();
        b.packages[0].sha256 = B.into();
        // Another tqdm on arm64 only: written twice, each with a marker.
        b.packages[1].version = "4.66.0".into();
        b.packages[1].filename = "tqdm-4.66.0-py3-none-any.whl".into();
        let urls: BTreeMap<String, String> = [(
            "tqdm-4.66.0-py3-none-any.whl".to_string(),
            "https://files.invalid/tqdm-4.66.0-py3-none-any.whl".to_string(),
        )]
        .into();
        let text = export_targets(&[a.clone(), b.clone()], &urls);
        assert_eq!(text, export_targets(&[a.clone(), b.clone()], &urls), "export is deterministic");
        assert!(text.contains("url = \"https://files.invalid/tqdm-4.66.0-py3-none-any.whl\""), "{text}");
        assert_eq!(text.matches("name = \"numpy\"").count(), 1, "{text}");
        assert_eq!(text.matches("name = \"tqdm\"").count(), 2, "{text}");
        let lock = Pylock::parse(&text, Path::new("pylock.toml")).unwrap();
        assert_eq!(lock.select(&amd).unwrap(), a);
        assert_eq!(lock.select(&arm).unwrap(), b);
    }

    #[test]
    fn missing_hashes_are_refused_naming_the_package() {
        let text = "lock-version = '1.0'\ncreated-by = 'x'\n[[packages]]\nname = 'attrs'\nversion = '25.1.0'\n\
                    wheels = [{name = 'attrs-25.1.0-py3-none-any.whl', url = 'https://files.invalid/attrs-25.1.0-py3-none-any.whl', hashes = {md5 = 'abc'}}]\n";
        let err = Pylock::parse(text, Path::new("p/pylock.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("attrs") && msg.contains("sha256") && msg.contains("p/pylock.toml"), "{msg}");
    }

    #[test]
    fn reads_a_multi_platform_lock_as_it_is() {
        let text = format!(
            "lock-version = '1.0'\ncreated-by = 'uv'\nrequires-python = '>=3.10'\n\
             [[packages]]\nname = 'numpy'\nversion = '2.2.3'\nwheels = [\n\
             {{url = 'https://files.invalid/numpy-2.2.3-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl', hashes = {{sha256 = '{A}'}}}},\n\
             {{name = 'numpy-2.2.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl', size = 5, hashes = {{sha256 = '{B}'}}}},\n]\n\
             [[packages]]\nname = 'pywin32'\nmarker = \"sys_platform == 'win32'\"\nwheels = [{{name = 'pywin32-1-cp311-cp311-win_amd64.whl', hashes = {{sha256 = '{A}'}}}}]\n\
             [[packages]]\nname = 'Legacy_Thing'\nversion = '1.0'\nsdist = {{name = 'legacy_thing-1.0.tar.gz', hashes = {{sha256 = '{A}'}}}}\n"
        );
        let lock = Pylock::parse(&text, Path::new("pylock.toml")).unwrap();
        let arm = Target::new("3.11", "linux/arm64", "2.36").unwrap();
        let err = lock.select(&arm).unwrap_err().to_string();
        assert!(err.contains("Legacy_Thing") && err.contains("source distribution") && err.contains("step"), "{err}");
        let text = text.split("[[packages]]\nname = 'Legacy_Thing'").next().unwrap().to_string();
        let lock = Pylock::parse(&text, Path::new("pylock.toml")).unwrap();
        let r = lock.select(&arm).unwrap();
        assert_eq!(r.packages.len(), 1);
        assert!(r.packages[0].filename.contains("aarch64"));
        assert_eq!(r.packages[0].sha256, A);
        let amd = Target::new("3.11", "linux/amd64", "2.36").unwrap();
        assert_eq!(lock.select(&amd).unwrap().packages[0].size, Some(5));
    }
}
