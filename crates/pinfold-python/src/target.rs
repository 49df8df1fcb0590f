//! The platform a package set is resolved for: the image's interpreter, not the host's.
//!
//! Why: a lock made on an amd64 laptop must pick the same aarch64 wheels as one made on
//! an arm64 server. Everything the resolver asks about "the environment" (wheel tags,
//! environment markers, `Requires-Python`) is answered from a [`Target`] the caller
//! names, never from the running machine.

use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};

use crate::error::TargetError;

/// A CPU architecture the resolver knows wheel tags for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    /// `linux/amd64`: wheels say `x86_64`.
    X86_64,
    /// `linux/arm64`: wheels say `aarch64`.
    Aarch64,
}

impl Arch {
    /// The name in wheel platform tags and in `platform_machine`.
    pub fn machine(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The OCI platform this architecture belongs to.
    pub fn oci_platform(self) -> &'static str {
        match self {
            Arch::X86_64 => "linux/amd64",
            Arch::Aarch64 => "linux/arm64",
        }
    }

    /// The oldest glibc a manylinux tag exists for on this architecture
    /// (PEP 600: aarch64 wheels start at manylinux2014 = glibc 2.17).
    fn oldest_glibc_minor(self) -> u32 {
        match self {
            Arch::X86_64 => 5,
            Arch::Aarch64 => 17,
        }
    }
}

/// A CPython version: `3.11` or `3.11.2`. The patch level matters only to
/// `python_full_version` markers and `pyvenv.cfg`; without one it reads as `.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PythonVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: Option<u32>,
}

impl PythonVersion {
    /// `3.11`.
    pub fn short(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    /// `3.11.2`, or `3.11.0` when no patch level was given.
    pub fn full(&self) -> String {
        format!("{}.{}.{}", self.major, self.minor, self.patch.unwrap_or(0))
    }

    /// The full version as a PEP 440 version, for `Requires-Python` checks.
    pub fn pep440(&self) -> Version {
        Version::new([self.major as u64, self.minor as u64, self.patch.unwrap_or(0) as u64])
    }
}

impl FromStr for PythonVersion {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, TargetError> {
        let bad = || TargetError::Python(s.to_string());
        let parts: Vec<&str> = s.trim().split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let num = |p: &str| p.parse::<u32>().map_err(|_| bad());
        let (major, minor) = (num(parts[0])?, num(parts[1])?);
        let patch = parts.get(2).map(|p| num(p)).transpose()?;
        if major != 3 || minor > 99 {
            return Err(bad());
        }
        Ok(PythonVersion { major, minor, patch })
    }
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "{}.{}.{}", self.major, self.minor, p),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

/// One platform to resolve for: CPython version, architecture and the image's glibc.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub python: PythonVersion,
    pub arch: Arch,
    /// glibc `(major, minor)`, e.g. `(2, 36)` for Debian bookworm.
    pub glibc: (u32, u32),
}

impl Target {
    /// Parses `("3.11", "linux/amd64", "2.36")`.
    pub fn new(python: &str, platform: &str, glibc: &str) -> Result<Target, TargetError> {
        let arch = match platform {
            "linux/amd64" => Arch::X86_64,
            "linux/arm64" | "linux/arm64/v8" => Arch::Aarch64,
            other => return Err(TargetError::Platform(other.to_string())),
        };
        let glibc = parse_glibc(glibc)?;
        Ok(Target { python: python.parse()?, arch, glibc })
    }

    /// The wheel tags this target accepts, best first (the order pip's `packaging.tags`
    /// gives for CPython on manylinux, less the host-only `linux_*` tags: a wheel built
    /// for one machine is no portable image content).
    pub fn tags(&self) -> Vec<Tag> {
        let platforms = self.platform_tags();
        let mut tags = Vec::new();
        self.cpython_tags(&platforms, &mut tags);
        self.generic_tags(&platforms, &mut tags);
        tags
    }

    /// The environment markers see this target as (PEP 508).
    pub fn marker_environment(&self) -> MarkerEnvironment {
        let full = self.python.full();
        let short = self.python.short();
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &full,
            os_name: "posix",
            platform_machine: self.arch.machine(),
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &full,
            python_version: &short,
            sys_platform: "linux",
        })
        .expect("versions made from integers parse")
    }

    /// A short name for messages: `cp311-linux/arm64-glibc2.36`.
    pub fn describe(&self) -> String {
        format!("Python {} on {} (glibc {}.{})", self.python, self.arch.oci_platform(), self.glibc.0, self.glibc.1)
    }

    fn cp(&self) -> String {
        format!("cp{}{}", self.python.major, self.python.minor)
    }

    /// `manylinux_2_36_x86_64`, …, with the legacy alias right after the tag it names.
    fn platform_tags(&self) -> Vec<String> {
        let machine = self.arch.machine();
        let mut out = Vec::new();
        let (major, newest) = self.glibc;
        if major != 2 {
            return out;
        }
        for minor in (self.arch.oldest_glibc_minor()..=newest).rev() {
            out.push(format!("manylinux_2_{minor}_{machine}"));
            let legacy = match minor {
                17 => Some("manylinux2014"),
                12 => Some("manylinux2010"),
                5 => Some("manylinux1"),
                _ => None,
            };
            if let Some(l) = legacy {
                out.push(format!("{l}_{machine}"));
            }
        }
        out
    }

    /// cpXY-cpXY-plat, cpXY-abi3-plat, cpXY-none-plat, then older cpXY-abi3-plat.
    fn cpython_tags(&self, platforms: &[String], tags: &mut Vec<Tag>) {
        let cp = self.cp();
        for abi in [cp.as_str(), "abi3", "none"] {
            for p in platforms {
                tags.push(Tag::new(&cp, abi, p));
            }
        }
        for minor in (2..self.python.minor).rev() {
            for p in platforms {
                tags.push(Tag::new(&format!("cp3{minor}"), "abi3", p));
            }
        }
    }

    /// pyXY-none-plat, py3-none-plat, older pyXY-none-plat, cpXY-none-any, then the
    /// pure tags pyXY-none-any, py3-none-any, older pyXY-none-any.
    fn generic_tags(&self, platforms: &[String], tags: &mut Vec<Tag>) {
        let py_versions = self.py_versions();
        for py in &py_versions {
            for p in platforms {
                tags.push(Tag::new(py, "none", p));
            }
        }
        tags.push(Tag::new(&self.cp(), "none", "any"));
        for py in &py_versions {
            tags.push(Tag::new(py, "none", "any"));
        }
    }

    /// py311, py3, py310, …, py30.
    fn py_versions(&self) -> Vec<String> {
        let mut out = vec![format!("py3{}", self.python.minor), "py3".to_string()];
        out.extend((0..self.python.minor).rev().map(|m| format!("py3{m}")));
        out
    }
}

fn parse_glibc(s: &str) -> Result<(u32, u32), TargetError> {
    let bad = || TargetError::Glibc(s.to_string());
    let (a, b) = s.trim().split_once('.').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

/// One wheel compatibility tag: `cp311-cp311-manylinux_2_17_x86_64`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl Tag {
    fn new(python: &str, abi: &str, platform: &str) -> Tag {
        Tag { python: python.to_string(), abi: abi.to_string(), platform: platform.to_string() }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(platform: &str) -> Target {
        Target::new("3.11", platform, "2.36").unwrap()
    }

    fn strings(t: &Target) -> Vec<String> {
        t.tags().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn amd64_tags_in_priority_order() {
        let tags = strings(&target("linux/amd64"));
        assert_eq!(tags[0], "cp311-cp311-manylinux_2_36_x86_64");
        let pos = |t: &str| tags.iter().position(|x| x == t).unwrap_or_else(|| panic!("{t} missing"));
        assert!(pos("cp311-cp311-manylinux_2_17_x86_64") < pos("cp311-cp311-manylinux2014_x86_64"));
        assert!(pos("cp311-cp311-manylinux2014_x86_64") < pos("cp311-cp311-manylinux_2_12_x86_64"));
        assert!(pos("cp311-cp311-manylinux1_x86_64") < pos("cp311-abi3-manylinux_2_36_x86_64"));
        assert!(pos("cp311-abi3-manylinux_2_5_x86_64") < pos("cp310-abi3-manylinux_2_36_x86_64"));
        assert!(pos("cp32-abi3-manylinux1_x86_64") < pos("py311-none-manylinux_2_36_x86_64"));
        assert!(pos("cp311-none-any") < pos("py311-none-any"));
        assert!(pos("py311-none-any") < pos("py3-none-any"));
        assert!(pos("py3-none-any") < pos("py30-none-any"));
        assert!(!tags.iter().any(|t| t.contains("manylinux_2_37") || t.contains("aarch64")));
        assert!(!tags.iter().any(|t| t.ends_with("linux_x86_64") && !t.contains("many")));
        assert!(!tags.iter().any(|t| t.contains("cp312")));
    }

    #[test]
    fn arm64_tags_start_at_manylinux2014() {
        let tags = strings(&target("linux/arm64"));
        assert_eq!(tags[0], "cp311-cp311-manylinux_2_36_aarch64");
        assert!(tags.contains(&"cp311-cp311-manylinux2014_aarch64".to_string()));
        assert!(!tags.iter().any(|t| t.contains("manylinux_2_16") || t.contains("manylinux1")));
        assert!(!tags.iter().any(|t| t.contains("x86_64")));
    }

    #[test]
    fn bad_targets_are_named() {
        assert!(matches!(Target::new("2.7", "linux/amd64", "2.36"), Err(TargetError::Python(_))));
        assert!(matches!(Target::new("3.11", "linux/s390x", "2.36"), Err(TargetError::Platform(_))));
        assert!(matches!(Target::new("3.11", "linux/amd64", "236"), Err(TargetError::Glibc(_))));
    }

    #[test]
    fn markers_are_the_targets_not_the_hosts() {
        use pep508_rs::Requirement;
        let arm = target("linux/arm64").marker_environment();
        let amd = target("linux/amd64").marker_environment();
        let eval = |req: &str, env: &MarkerEnvironment, extras: &[&str]| {
            let r: Requirement = req.parse().unwrap();
            let extras: Vec<_> = extras.iter().map(|e| e.parse().unwrap()).collect();
            r.evaluate_markers(env, &extras)
        };
        assert!(eval("a; platform_machine == 'aarch64'", &arm, &[]));
        assert!(!eval("a; platform_machine == 'aarch64'", &amd, &[]));
        assert!(eval("a; python_version >= '3.11' and sys_platform == 'linux'", &amd, &[]));
        assert!(!eval("a; python_version < '3.11'", &amd, &[]));
        assert!(eval("a; python_full_version >= '3.11.0'", &amd, &[]));
        assert!(eval("a; platform_system == 'Linux' and os_name == 'posix'", &amd, &[]));
        assert!(eval("a; implementation_name == 'cpython'", &amd, &[]));
        assert!(!eval("a; sys_platform == 'win32'", &amd, &[]));
        assert!(!eval("a; extra == 'dev'", &amd, &[]));
        assert!(eval("a; extra == 'dev'", &amd, &["dev"]));
    }
}
