//! Devices of the host by the Container Device Interface (CDI): `pinfold run --device
//! VENDOR/CLASS=NAME` and `--gpus all` look the device up in the host's CDI specs and
//! apply its container edits (device nodes, mounts, environment, hooks, groups) to
//! the container, as podman and containerd do. This is how GPUs reach a container:
//! the vendor's tooling (`nvidia-ctk cdi generate`) writes a spec into `/etc/cdi` or
//! `/var/run/cdi`, and every runtime that reads CDI gets the same devices.
//!
//! The specs are read with serde from their JSON or YAML, by hand rather than with
//! the `container-device-interface` crate: that crate validates with `jsonschema`,
//! which brings an HTTP client, tokio and a C-compiled TLS library into pinfold for a
//! format of a dozen fields. The fields pinfold does not apply (`intelRdt`,
//! `netDevices`) are refused by name, never silently dropped.
//!
//! The directories come from the application (the environment is read in one place,
//! there). Specs in a later directory override those of an earlier one, as the CDI
//! specification says (`/var/run/cdi`, made at boot, over `/etc/cdi`).

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The directories of the CDI specification, lowest priority first.
pub const DEFAULT_SPEC_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];

/// A spec file larger than this is refused (a real one is a few KiB).
const MAX_SPEC_BYTES: u64 = 4 << 20;

/// The kind `--gpus` takes its devices from.
pub const GPU_KIND: &str = "nvidia.com/gpu";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecFile {
    cdi_version: String,
    kind: String,
    #[serde(default)]
    devices: Vec<DeviceEntry>,
    #[serde(default)]
    container_edits: Option<RawEdits>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceEntry {
    name: String,
    #[serde(default)]
    container_edits: RawEdits,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEdits {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    device_nodes: Vec<DeviceNode>,
    #[serde(default)]
    mounts: Vec<CdiMount>,
    #[serde(default)]
    hooks: Vec<Hook>,
    #[serde(default)]
    additional_gids: Vec<u32>,
    #[serde(default)]
    intel_rdt: Option<serde_json::Value>,
    #[serde(default)]
    net_devices: Option<serde_json::Value>,
}

/// A device node of a CDI spec: `path` in the container, `hostPath` (default `path`)
/// on the host; type and numbers are read from the host's node when not given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceNode {
    pub path: String,
    #[serde(default)]
    pub host_path: Option<String>,
    #[serde(default, rename = "type")]
    pub typ: Option<String>,
    #[serde(default)]
    pub major: Option<i64>,
    #[serde(default)]
    pub minor: Option<i64>,
    #[serde(default)]
    pub file_mode: Option<u32>,
    /// cgroup access, `rwm` by default.
    #[serde(default)]
    pub permissions: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

impl DeviceNode {
    pub fn host(&self) -> &str {
        self.host_path.as_deref().unwrap_or(&self.path)
    }
}

/// A mount of a CDI spec (a bind mount unless `type` says otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CdiMount {
    pub host_path: String,
    pub container_path: String,
    #[serde(default, rename = "type")]
    pub typ: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

impl CdiMount {
    pub fn is_bind(&self) -> bool {
        matches!(self.typ.as_deref(), None | Some("bind" | "rbind"))
    }

    pub fn readonly(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }

    /// The restricting options of the spec (`nosuid`, `nodev`, `noexec`): kept, never
    /// dropped, so a device's mount is no more open in pinfold than elsewhere.
    pub fn restrictions(&self) -> Vec<&'static str> {
        ["nosuid", "nodev", "noexec"].into_iter().filter(|r| self.options.iter().any(|o| o == r)).collect()
    }
}

/// An OCI hook of a CDI spec, with the point of the container's life it runs at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    pub hook_name: String,
    pub path: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub timeout: Option<i64>,
}

/// The hook points of the OCI runtime spec a CDI hook may name.
pub const HOOK_NAMES: &[&str] =
    &["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

/// What the requested devices change in a container, merged in request order
/// (each spec's own edits once, before its first device's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    /// The qualified names applied, for messages.
    pub devices: Vec<String>,
    pub env: Vec<(String, String)>,
    pub device_nodes: Vec<DeviceNode>,
    pub mounts: Vec<CdiMount>,
    pub hooks: Vec<Hook>,
    pub additional_gids: Vec<u32>,
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CdiError {
    #[error("{0}")]
    Request(String),
    #[error("CDI spec {}: {message}", file.display())]
    Spec { file: PathBuf, message: String },
    #[error("no CDI device `{device}`: {why}; searched {searched}")]
    Unknown { device: String, why: String, searched: String },
}

/// A CDI spec read from a file.
#[derive(Debug, Clone)]
struct LoadedSpec {
    file: PathBuf,
    /// Index of its directory in the search order (higher wins).
    priority: usize,
    spec: SpecFile,
}

/// The CDI specs of the host, read once.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    dirs: Vec<PathBuf>,
    specs: Vec<LoadedSpec>,
    /// Spec files that could not be read, with why: skipped, as the CDI reference
    /// implementation skips them (one broken vendor spec must not take every other
    /// device away), and named when a device is not found.
    broken: Vec<String>,
}

/// `vendor/class=name` split and checked as the CDI specification names devices.
pub fn parse_qualified(name: &str) -> Result<(&str, &str), CdiError> {
    let bad = |why: &str| {
        CdiError::Request(format!("--device {name}: {why} (a CDI device is VENDOR/CLASS=NAME, e.g. nvidia.com/gpu=0)"))
    };
    let (kind, device) = name.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let (vendor, class) = kind.split_once('/').ok_or_else(|| bad("the kind has no `/`"))?;
    let ok_vendor = !vendor.is_empty()
        && vendor.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && vendor.starts_with(|c: char| c.is_ascii_alphabetic());
    let ok_class = !class.is_empty() && class.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    let ok_device = !device.is_empty()
        && device.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        && device.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !(ok_vendor && ok_class && ok_device) {
        return Err(bad("not a valid name"));
    }
    Ok((kind, device))
}

impl Registry {
    /// Reads every `*.json`, `*.yaml` and `*.yml` of `dirs` (missing directories are
    /// skipped), in name order; a file that cannot be read is skipped and remembered.
    pub fn load(dirs: &[PathBuf]) -> Result<Registry, CdiError> {
        let mut specs = Vec::new();
        let mut broken = Vec::new();
        for (priority, dir) in dirs.iter().enumerate() {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "yaml" | "yml")))
                .collect();
            files.sort();
            for file in files {
                match read_spec(&file) {
                    Ok(spec) => specs.push(LoadedSpec { spec, file, priority }),
                    Err(e) => broken.push(e.to_string()),
                }
            }
        }
        Ok(Registry { dirs: dirs.to_vec(), specs, broken })
    }

    fn searched(&self) -> String {
        let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        let mut text = format!("{} ({} spec file(s) read)", dirs.join(", "), self.specs.len());
        if !self.broken.is_empty() {
            text.push_str(&format!("; skipped: {}", self.broken.join("; ")));
        }
        text
    }

    /// The spec and device entry of `kind=device`: from the highest-priority
    /// directory; two specs of one directory defining it is an error.
    fn find(&self, name: &str) -> Result<(&LoadedSpec, &DeviceEntry), CdiError> {
        let (kind, device) = parse_qualified(name)?;
        let mut found: Vec<(&LoadedSpec, &DeviceEntry)> = self
            .specs
            .iter()
            .filter(|s| s.spec.kind == kind)
            .filter_map(|s| s.spec.devices.iter().find(|d| d.name == device).map(|d| (s, d)))
            .collect();
        let Some(top) = found.iter().map(|(s, _)| s.priority).max() else {
            let names: Vec<&str> = self
                .specs
                .iter()
                .filter(|s| s.spec.kind == kind)
                .flat_map(|s| s.spec.devices.iter().map(|d| d.name.as_str()))
                .collect();
            let why = if self.specs.iter().any(|s| s.spec.kind == kind) {
                format!("the specs of kind `{kind}` have the devices {}", names.join(", "))
            } else {
                format!("no spec of kind `{kind}`")
            };
            return Err(CdiError::Unknown { device: name.to_string(), why, searched: self.searched() });
        };
        found.retain(|(s, _)| s.priority == top);
        if let [(a, _), (b, _), ..] = found.as_slice() {
            return Err(CdiError::Spec {
                file: b.file.clone(),
                message: format!("device {name} is also defined in {}", a.file.display()),
            });
        }
        Ok(found[0])
    }

    /// The devices of `--gpus all`: the spec's own `all` device of kind
    /// [`GPU_KIND`] when it has one (nvidia-ctk writes it), else every device of
    /// that kind.
    pub fn all_gpus(&self) -> Result<Vec<String>, CdiError> {
        let qualified = |d: &str| format!("{GPU_KIND}={d}");
        if self.find(&qualified("all")).is_ok() {
            return Ok(vec![qualified("all")]);
        }
        let mut names: Vec<String> = self
            .specs
            .iter()
            .filter(|s| s.spec.kind == GPU_KIND)
            .flat_map(|s| s.spec.devices.iter().map(|d| qualified(&d.name)))
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err(CdiError::Unknown {
                device: "--gpus all".into(),
                why: format!(
                    "no CDI spec of kind `{GPU_KIND}` (NVIDIA's `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` writes one)"
                ),
                searched: self.searched(),
            });
        }
        Ok(names)
    }

    /// The edits of `names` (qualified device names), merged.
    pub fn resolve(&self, names: &[String]) -> Result<Edits, CdiError> {
        let mut edits = Edits::default();
        let mut specs_applied: Vec<&Path> = Vec::new();
        for name in names {
            if edits.devices.contains(name) {
                continue;
            }
            let (spec, device) = self.find(name)?;
            if !specs_applied.contains(&spec.file.as_path()) {
                specs_applied.push(&spec.file);
                if let Some(e) = &spec.spec.container_edits {
                    merge(&mut edits, e, &spec.file)?;
                }
            }
            merge(&mut edits, &device.container_edits, &spec.file)?;
            edits.devices.push(name.clone());
        }
        Ok(edits)
    }
}

fn read_spec(file: &Path) -> Result<SpecFile, CdiError> {
    let err = |message: String| CdiError::Spec { file: file.to_path_buf(), message };
    // One open, checked on the handle (a FIFO or a device would never end), and a read
    // that stops past the limit whatever the file's size said.
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(file)
        .map_err(|e| err(e.to_string()))?;
    if !handle.metadata().map_err(|e| err(e.to_string()))?.is_file() {
        return Err(err("not a regular file".into()));
    }
    let mut text = String::new();
    handle.take(MAX_SPEC_BYTES + 1).read_to_string(&mut text).map_err(|e| err(e.to_string()))?;
    if text.len() as u64 > MAX_SPEC_BYTES {
        return Err(err(format!("larger than {MAX_SPEC_BYTES} bytes")));
    }
    let spec: SpecFile = if file.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| err(e.to_string()))?
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| err(e.to_string()))?
    };
    let major = spec.cdi_version.split('.').next().and_then(|m| m.parse::<u32>().ok());
    if !matches!(major, Some(0 | 1)) {
        return Err(err(format!("cdiVersion `{}` is not one pinfold reads (0.x or 1.x)", spec.cdi_version)));
    }
    Ok(spec)
}

/// Adds `raw` to `edits`, checking what pinfold cannot apply.
fn merge(edits: &mut Edits, raw: &RawEdits, file: &Path) -> Result<(), CdiError> {
    let err = |message: String| CdiError::Spec { file: file.to_path_buf(), message };
    if raw.intel_rdt.is_some() {
        return Err(err("intelRdt edits are not supported by pinfold".into()));
    }
    if raw.net_devices.as_ref().is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty())) {
        return Err(err("netDevices edits are not supported by pinfold (its containers have no network)".into()));
    }
    for kv in &raw.env {
        let (k, v) = kv.split_once('=').ok_or_else(|| err(format!("env `{kv}` is not K=V")))?;
        if k.is_empty() {
            return Err(err(format!("env `{kv}` has no name")));
        }
        match edits.env.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => edits.env.push((k.to_string(), v.to_string())),
        }
    }
    for node in &raw.device_nodes {
        if !node.path.starts_with("/dev/") || !super::rootfs::is_clean_absolute(&node.path) {
            return Err(err(format!("device node `{}`: pinfold places device nodes under /dev only", node.path)));
        }
        if !node.host().starts_with('/') {
            return Err(err(format!("device node `{}`: hostPath must be absolute", node.path)));
        }
        if let Some(t) = &node.typ {
            if !matches!(t.as_str(), "c" | "u" | "b" | "p") {
                return Err(err(format!("device node `{}`: unknown type `{t}` (c, u, b or p)", node.path)));
            }
        }
        if let Some(p) = &node.permissions {
            if p.is_empty() || !p.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
                return Err(err(format!("device node `{}`: permissions `{p}` are not some of rwm", node.path)));
            }
        }
        edits.device_nodes.retain(|n| n.path != node.path);
        edits.device_nodes.push(node.clone());
    }
    for mount in &raw.mounts {
        if !super::rootfs::is_clean_absolute(&mount.container_path) || mount.container_path == "/" {
            return Err(err(format!(
                "mount on `{}`: the container path must be absolute, without `..`, and not /",
                mount.container_path
            )));
        }
        edits.mounts.retain(|m| m.container_path != mount.container_path);
        edits.mounts.push(mount.clone());
    }
    for hook in &raw.hooks {
        if !HOOK_NAMES.contains(&hook.hook_name.as_str()) {
            return Err(err(format!("hook `{}`: unknown hookName (one of {})", hook.hook_name, HOOK_NAMES.join(", "))));
        }
        if !hook.path.starts_with('/') {
            return Err(err(format!("hook `{}`: its path must be absolute", hook.path)));
        }
        edits.hooks.push(hook.clone());
    }
    for gid in &raw.additional_gids {
        if !edits.additional_gids.contains(gid) {
            edits.additional_gids.push(*gid);
        }
    }
    Ok(())
}

/// A device node's type and numbers: from the spec, else from the host's node.
pub fn node_numbers(node: &DeviceNode) -> Result<(String, i64, i64, u32), String> {
    let host = node.host();
    let stat = rustix::fs::stat(host).map_err(|e| format!("device node {} (on the host {host}): {e}", node.path))?;
    let kind = match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
        rustix::fs::FileType::CharacterDevice => "c",
        rustix::fs::FileType::BlockDevice => "b",
        rustix::fs::FileType::Fifo => "p",
        _ => return Err(format!("device node {}: {host} on the host is not a device", node.path)),
    };
    let typ = node.typ.clone().unwrap_or_else(|| kind.to_string());
    let major = node.major.unwrap_or(rustix::fs::major(stat.st_rdev) as i64);
    let minor = node.minor.unwrap_or(rustix::fs::minor(stat.st_rdev) as i64);
    let mode = node.file_mode.unwrap_or(stat.st_mode & 0o7777);
    Ok((typ, major, minor, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn devices_resolve_from_json_and_yaml_specs_and_later_directories_win() {
        let tmp = tempfile::tempdir().unwrap();
        let etc = tmp.path().join("etc");
        let run = tmp.path().join("run");
        write(
            &etc,
            "a.json",
            r#"{"cdiVersion":"0.6.0","kind":"test.example/dev","containerEdits":{"env":["SPEC=1"]},
                "devices":[{"name":"one","containerEdits":{"env":["WHICH=etc"],
                "deviceNodes":[{"path":"/dev/one","hostPath":"/dev/null"}]}}]}"#,
        );
        write(
            &run,
            "b.yaml",
            "cdiVersion: 0.7.0\nkind: test.example/dev\ndevices:\n- name: two\n  containerEdits:\n    env: [WHICH=run]\n    mounts:\n    - {hostPath: /tmp, containerPath: /mnt/t, options: [ro]}\n",
        );
        let registry = Registry::load(&[etc.clone(), run.clone()]).unwrap();
        let edits = registry.resolve(&["test.example/dev=one".into(), "test.example/dev=two".into()]).unwrap();
        assert_eq!(edits.env, [("SPEC".to_string(), "1".to_string()), ("WHICH".into(), "run".into())]);
        assert_eq!(edits.device_nodes[0].host(), "/dev/null");
        assert!(edits.mounts[0].readonly() && edits.mounts[0].is_bind());
        let unknown = registry.resolve(&["test.example/dev=three".into()]).unwrap_err().to_string();
        assert!(unknown.contains("test.example/dev=three") && unknown.contains(&etc.display().to_string()));
        assert!(unknown.contains("one, two"), "{unknown}");
        assert!(registry.all_gpus().unwrap_err().to_string().contains("nvidia.com/gpu"));
        assert!(parse_qualified("nvidia.com/gpu").is_err());
        assert!(parse_qualified("gpu=0").is_err());
        assert!(parse_qualified("nvidia.com/gpu=../x").is_err());
    }

    #[test]
    fn what_pinfold_cannot_apply_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "x.json",
            r#"{"cdiVersion":"0.6.0","kind":"a.b/c","devices":[
                {"name":"rdt","containerEdits":{"intelRdt":{"closID":"x"}}},
                {"name":"out","containerEdits":{"deviceNodes":[{"path":"/etc/passwd"}]}},
                {"name":"up","containerEdits":{"mounts":[{"hostPath":"/","containerPath":"/../x"}]}}]}"#,
        );
        let registry = Registry::load(&[tmp.path().to_path_buf()]).unwrap();
        for (device, expected) in [("rdt", "intelRdt"), ("out", "under /dev only"), ("up", "without `..`")] {
            let e = registry.resolve(&[format!("a.b/c={device}")]).unwrap_err().to_string();
            assert!(e.contains(expected), "{e}");
        }
        // A spec that cannot be read is skipped, and named when a device is missing.
        write(tmp.path(), "y.json", "{not json");
        let registry = Registry::load(&[tmp.path().to_path_buf()]).unwrap();
        assert!(registry.resolve(&["a.b/c=out".into()]).unwrap_err().to_string().contains("under /dev only"));
        let missing = registry.resolve(&["x.y/z=0".into()]).unwrap_err().to_string();
        assert!(missing.contains("skipped") && missing.contains("y.json"), "{missing}");
    }

    #[test]
    fn gpus_all_takes_the_all_device_when_there_is_one() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "nvidia.yaml",
            "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: '0'\n  containerEdits: {}\n- name: all\n  containerEdits: {}\n",
        );
        let registry = Registry::load(&[tmp.path().to_path_buf()]).unwrap();
        assert_eq!(registry.all_gpus().unwrap(), ["nvidia.com/gpu=all"]);
    }

    #[test]
    fn a_spec_that_is_a_fifo_or_too_large_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = read_spec(&fifo).map(|_| ()).expect_err("a FIFO is refused").to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_SPEC_BYTES as usize + 10]).unwrap();
        let e = read_spec(&big).map(|_| ()).expect_err("too large").to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}
