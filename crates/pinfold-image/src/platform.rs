//! The platform of an image, `os/architecture[/variant]`, as OCI indexes and configs
//! name it. It lives here, at the bottom of the pipeline, because every stage speaks
//! of it: the build file names platforms, the plan makes one target per platform, the
//! image's index lists them, and the sandbox picks one to run.

/// `os/architecture[/variant]`, e.g. `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Operating systems and architectures that pinfold writes into image configs. The
/// list follows the OCI image spec's table of `GOOS`/`GOARCH` values used for Linux.
pub const KNOWN_OS: &[&str] = &["linux"];
pub const KNOWN_ARCHITECTURES: &[&str] =
    &["amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"];

impl std::str::FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] if !variant.is_empty() => (*os, *arch, Some(variant.to_string())),
            _ => return Err(format!("`{s}` is not a platform of the form os/architecture[/variant]")),
        };
        if !KNOWN_OS.contains(&os) {
            return Err(format!("unknown operating system `{os}` (pinfold builds linux images)"));
        }
        if !KNOWN_ARCHITECTURES.contains(&arch) {
            return Err(format!("unknown architecture `{arch}` (known: {})", KNOWN_ARCHITECTURES.join(", ")));
        }
        Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant })
    }
}

/// Compares platforms with the defaults of the OCI platform-variant table filled in
/// (arm64 is v8 and arm is v7 when no variant is given).
pub fn platforms_match(a: &Platform, b: &Platform) -> bool {
    fn variant(p: &Platform) -> Option<&str> {
        match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            ("arm", None) => Some("v7"),
            (_, v) => v,
        }
    }
    a.os == b.os && a.architecture == b.architecture && variant(a) == variant(b)
}

/// The platform of the machine pinfold runs on, in OCI terms. Only for choosing what
/// to run or whether to emulate: nothing that reaches an output depends on it.
pub fn host_platform() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" => "mips64le",
        other => other,
    };
    Platform { os: "linux".into(), architecture: architecture.into(), variant: None }
}
