//! Console and GUI scripts: launchers from `entry_points.txt`, and `#!python` rewriting.
//!
//! Why: pip generates these at install time, so a wheel does not carry them; pinfold must
//! write the same kind of launcher, with the image's interpreter in the shebang and text
//! that depends on nothing but the entry point. The module and attribute names go into
//! Python source, so they are checked to be dotted identifiers: a hostile wheel cannot
//! inject code through its entry points.

/// A launcher to write: its file name in the scripts directory and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launcher {
    pub name: String,
    pub text: String,
}

/// The launchers of an `entry_points.txt` (`[console_scripts]` and `[gui_scripts]`).
pub(crate) fn launchers(entry_points: &str, python: &str) -> Result<Vec<Launcher>, String> {
    let mut out = Vec::new();
    let mut section = String::new();
    for line in entry_points.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        if section != "console_scripts" && section != "gui_scripts" {
            continue;
        }
        let (name, spec) = line.split_once('=').ok_or_else(|| format!("entry point {line:?}: no `=`"))?;
        out.push(launcher(name.trim(), spec.trim(), python)?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

fn launcher(name: &str, spec: &str, python: &str) -> Result<Launcher, String> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.contains(char::is_whitespace)
    {
        return Err(format!("entry point name {name:?} is not a file name"));
    }
    let spec_no_extras = spec.split('[').next().unwrap_or("").trim();
    let (module, attr) = spec_no_extras
        .split_once(':')
        .ok_or_else(|| format!("entry point {name} = {spec}: expected module:attribute"))?;
    let (module, attr) = (module.trim(), attr.trim());
    if !dotted_identifier(module) || !dotted_identifier(attr) {
        return Err(format!("entry point {name} = {spec}: not a module:attribute of identifiers"));
    }
    let head = attr.split('.').next().unwrap_or(attr);
    let text = format!(
        "#!{python}\n# -*- coding: utf-8 -*-\n# Entry point `{name}` ({module}:{attr}), written by pinfold.\n\
         import sys\nfrom {module} import {head}\n\nif __name__ == \"__main__\":\n    sys.exit({attr}())\n"
    );
    Ok(Launcher { name: name.to_string(), text })
}

/// `a.b_c.d`: non-empty parts of ASCII letters, digits and `_`, not starting with a digit.
fn dotted_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            p.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// A script from `.data/scripts/`: a first line `#!python` (or `#!pythonw`) becomes
/// `#!{python}`, keeping any arguments; anything else is unchanged.
pub(crate) fn rewrite_shebang(bytes: Vec<u8>, python: &str) -> Vec<u8> {
    let Some(rest) = bytes.strip_prefix(b"#!python") else { return bytes };
    let rest = rest.strip_prefix(b"w").unwrap_or(rest);
    if !rest.is_empty() && !matches!(rest[0], b' ' | b'\t' | b'\n' | b'\r') {
        return bytes;
    }
    let mut out = format!("#!{python}").into_bytes();
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launchers_are_deterministic_and_checked() {
        let eps = "[console_scripts]\ntqdm = tqdm.cli:main\nb = pkg.mod:App.run [extra]\n[gui_scripts]\ngui = pkg.gui:start\n[other]\nx = y:z\n";
        let l = launchers(eps, "/opt/venv/bin/python").unwrap();
        assert_eq!(l.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["b", "gui", "tqdm"]);
        assert!(l[0].text.starts_with("#!/opt/venv/bin/python\n"));
        assert!(l[0].text.contains("from pkg.mod import App\n") && l[0].text.contains("sys.exit(App.run())"));
        assert_eq!(l, launchers(eps, "/opt/venv/bin/python").unwrap());
        for bad in [
            "[console_scripts]\nx = os:system('rm -rf /')\n",
            "[console_scripts]\n../x = a:b\n",
            "[console_scripts]\nx = a\n",
        ] {
            assert!(launchers(bad, "/p").is_err(), "{bad}");
        }
    }

    #[test]
    fn shebangs_are_rewritten() {
        assert_eq!(
            rewrite_shebang(b"#!python -u\nprint(1)\n".to_vec(), "/usr/bin/python3.11"),
            b"#!/usr/bin/python3.11 -u\nprint(1)\n"
        );
        assert_eq!(rewrite_shebang(b"#!pythonw\n".to_vec(), "/p"), b"#!/p\n");
        assert_eq!(rewrite_shebang(b"#!python3\n".to_vec(), "/p"), b"#!python3\n");
        assert_eq!(rewrite_shebang(b"#!/bin/sh\n".to_vec(), "/p"), b"#!/bin/sh\n");
    }
}
