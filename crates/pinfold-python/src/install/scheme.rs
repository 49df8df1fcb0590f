//! Install schemes (where purelib, platlib, scripts, headers and data go) and the files
//! of a virtual environment.
//!
//! Why: the image's layout is decided here from paths the caller names, not from any
//! interpreter on the build machine. A venv is what `python -m venv PREFIX` makes with
//! the image's interpreter (on POSIX with symlinks), less the activate scripts and pip:
//! `pyvenv.cfg`, `bin/python3 → INTERPRETER`, `bin/python` and `bin/pythonX.Y → python3`,
//! `lib/pythonX.Y/site-packages`, `lib64 → lib`, `include/pythonX.Y`.
//!
//! `pyvenv.cfg` has the keys CPython 3.11+ writes, in its order: `home` (the
//! interpreter's directory), `include-system-site-packages = false`, `version` (the full
//! version given, so pass `3.11.2` rather than `3.11` when the image's patch level is
//! known), `executable` (the interpreter as given: pass its real path, as venv resolves
//! symlinks) and `command` (the venv command that would have made it).

use super::paths::check_image_path;
use super::{Entry, EntryKind};
use crate::error::InstallError;
use crate::target::PythonVersion;

/// Where a wheel's parts go in the image (absolute, normalized paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    pub purelib: String,
    pub platlib: String,
    pub scripts: String,
    pub data: String,
    /// Headers go to `{headers}/{distribution name}`.
    pub headers: String,
    /// The interpreter in script shebangs.
    pub python: String,
    /// Set for a venv scheme: what [`Scheme::venv_entries`] writes.
    venv: Option<VenvInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct VenvInfo {
    prefix: String,
    interpreter: String,
    version: PythonVersion,
}

/// Longest shebang line Linux reads whole on older kernels.
const MAX_SHEBANG: usize = 127;

impl Scheme {
    /// A venv at `prefix` whose python is `interpreter` (e.g. `/opt/venv`,
    /// `/usr/bin/python3.11`, 3.11.2). Scripts use `#!{prefix}/bin/python`.
    pub fn venv(prefix: &str, interpreter: &str, version: PythonVersion) -> Result<Scheme, InstallError> {
        check(prefix)?;
        check(interpreter)?;
        let site = format!("{prefix}/lib/python{}/site-packages", version.short());
        let scheme = Scheme {
            purelib: site.clone(),
            platlib: site,
            scripts: format!("{prefix}/bin"),
            data: prefix.to_string(),
            headers: format!("{prefix}/include/site/python{}", version.short()),
            python: format!("{prefix}/bin/python"),
            venv: Some(VenvInfo { prefix: prefix.into(), interpreter: interpreter.into(), version }),
        };
        scheme.check_shebang()?;
        Ok(scheme)
    }

    /// The interpreter's own site directory, e.g. `/usr/local/lib/python3.11/dist-packages`
    /// (Debian) or `.../site-packages`: the prefix is what precedes `/lib/pythonX.Y/`.
    pub fn site_packages(site: &str, interpreter: &str, version: PythonVersion) -> Result<Scheme, InstallError> {
        check(site)?;
        check(interpreter)?;
        let lib = format!("/lib/python{}/", version.short());
        let prefix = site
            .find(&lib)
            .map(|i| &site[..i])
            .filter(|p| !p.is_empty())
            .ok_or_else(|| InstallError::Scheme(format!("{site} is not under PREFIX{lib}")))?;
        let scheme = Scheme {
            purelib: site.to_string(),
            platlib: site.to_string(),
            scripts: format!("{prefix}/bin"),
            data: prefix.to_string(),
            headers: format!("{prefix}/include/python{}", version.short()),
            python: interpreter.to_string(),
            venv: None,
        };
        scheme.check_shebang()?;
        Ok(scheme)
    }

    fn check_shebang(&self) -> Result<(), InstallError> {
        if self.python.len() + 3 > MAX_SHEBANG {
            return Err(InstallError::Scheme(format!("{} is too long for a shebang line", self.python)));
        }
        Ok(())
    }

    /// The venv's own files (empty for a site-packages scheme), sorted by path.
    pub fn venv_entries(&self) -> Vec<Entry> {
        let Some(v) = &self.venv else { return Vec::new() };
        let short = v.version.short();
        let p = &v.prefix;
        let dir = |path: String| Entry { path, kind: EntryKind::Dir, mode: 0o755 };
        let link =
            |path: String, target: &str| Entry { path, kind: EntryKind::Symlink(target.to_string()), mode: 0o777 };
        let mut out = vec![
            dir(p.clone()),
            dir(format!("{p}/bin")),
            link(format!("{p}/bin/python"), "python3"),
            link(format!("{p}/bin/python3"), &v.interpreter),
            link(format!("{p}/bin/python{short}"), "python3"),
            dir(format!("{p}/include")),
            dir(format!("{p}/include/python{short}")),
            dir(format!("{p}/lib")),
            dir(format!("{p}/lib/python{short}")),
            dir(format!("{p}/lib/python{short}/site-packages")),
            link(format!("{p}/lib64"), "lib"),
            Entry {
                path: format!("{p}/pyvenv.cfg"),
                kind: EntryKind::File(super::Content::Bytes(self.pyvenv_cfg(v))),
                mode: 0o644,
            },
        ];
        out.extend(super::paths::ancestors(p).map(|a| dir(a.to_string())));
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    fn pyvenv_cfg(&self, v: &VenvInfo) -> Vec<u8> {
        let home = v.interpreter.rsplit_once('/').map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
        format!(
            "home = {home}\ninclude-system-site-packages = false\nversion = {}\nexecutable = {}\ncommand = {} -m venv {}\n",
            v.version.full(),
            v.interpreter,
            v.interpreter,
            v.prefix
        )
        .into_bytes()
    }
}

fn check(path: &str) -> Result<(), InstallError> {
    check_image_path(path).map_err(InstallError::Scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v311() -> PythonVersion {
        "3.11.2".parse().unwrap()
    }

    #[test]
    fn venv_layout_and_pyvenv_cfg() {
        let s = Scheme::venv("/opt/venv", "/usr/bin/python3.11", v311()).unwrap();
        assert_eq!(s.purelib, "/opt/venv/lib/python3.11/site-packages");
        assert_eq!(s.python, "/opt/venv/bin/python");
        let e = s.venv_entries();
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths[0], "/opt");
        assert!(paths.contains(&"/opt/venv/lib/python3.11/site-packages"));
        let cfg = e.iter().find(|e| e.path == "/opt/venv/pyvenv.cfg").unwrap();
        let EntryKind::File(super::super::Content::Bytes(b)) = &cfg.kind else { panic!() };
        assert_eq!(
            String::from_utf8_lossy(b),
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n\
             executable = /usr/bin/python3.11\ncommand = /usr/bin/python3.11 -m venv /opt/venv\n"
        );
        let py3 = e.iter().find(|e| e.path == "/opt/venv/bin/python3").unwrap();
        assert_eq!(py3.kind, EntryKind::Symlink("/usr/bin/python3.11".into()));
    }

    #[test]
    fn site_packages_scheme() {
        let s =
            Scheme::site_packages("/usr/local/lib/python3.11/dist-packages", "/usr/bin/python3.11", v311()).unwrap();
        assert_eq!(s.scripts, "/usr/local/bin");
        assert_eq!(s.data, "/usr/local");
        assert_eq!(s.python, "/usr/bin/python3.11");
        assert!(s.venv_entries().is_empty());
        assert!(Scheme::site_packages("/srv/site", "/usr/bin/python3", v311()).is_err());
        assert!(Scheme::venv("/opt/../venv", "/usr/bin/python3", v311()).is_err());
        assert!(Scheme::venv("relative", "/usr/bin/python3", v311()).is_err());
    }
}
