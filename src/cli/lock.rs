//! `pinfold lock`: resolves every input of the build file (fetching what is unpinned,
//! resolving package sets to exact files for every platform), writes `pinfold.lock`,
//! and prints what changed.

use super::{EXIT_ERROR, EXIT_OK};
use crate::build::{self, BuildError, BuildRequest};
use crate::cache::Cache;
use crate::packages::{debian, python};
use pinfold_lang::diag::{Code, Diagnostic, Diagnostics};
use pinfold_lang::lock::{Lock, LockedDebian, LockedPython};
use pinfold_lang::{BuildFile, PythonDecl};
use std::collections::BTreeMap;
use std::path::PathBuf;

type PackageSets = (BTreeMap<String, LockedDebian>, BTreeMap<String, LockedPython>);

/// What `--pylock` writes: the text for a file, once pinfold.lock is written.
type PylockExports = Vec<(PathBuf, String)>;

/// `--pylock [SET=]FILE`: the python set and the file. Without `SET=` (or when the text
/// before `=` names no set, as in a file name with `=`), the build file's only set.
fn pylock_targets<'f>(file: &'f BuildFile, specs: &[String]) -> Result<Vec<(&'f PythonDecl, PathBuf)>, String> {
    let mut out = Vec::new();
    for spec in specs {
        let named = spec
            .split_once('=')
            .and_then(|(set, path)| file.python.iter().find(|p| p.name.value == set).map(|d| (d, path)));
        let (decl, path) = match (named, file.python.as_slice()) {
            (Some(found), _) => found,
            (None, [only]) => (only, spec.as_str()),
            (None, []) => return Err(format!("--pylock {spec}: the build file has no python set")),
            (None, _) => {
                let names: Vec<&str> = file.python.iter().map(|p| p.name.value.as_str()).collect();
                return Err(format!("--pylock {spec}: name the set, as SET=FILE (the sets are {})", names.join(", ")));
            }
        };
        if path.is_empty() {
            return Err(format!("--pylock {spec}: no file name"));
        }
        out.push((decl, PathBuf::from(path)));
    }
    Ok(out)
}

/// Resolves the `debian` sets, then the `python` sets (whose wheels are chosen for the
/// glibc of a Debian set of the same file), for every platform the file builds; then
/// makes the `--pylock` exports, so that a failure writes nothing.
fn resolve_package_sets(
    request: &BuildRequest,
    cache: &Cache,
    pylock: &[String],
) -> Result<(PackageSets, PylockExports), Diagnostics> {
    let mut diags = Diagnostics::default();
    let Some(source) = pinfold_lang::read_build_file(&request.file, &mut diags) else { return Err(diags) };
    let Some(file) = pinfold_lang::parse(&source, &mut diags) else { return Err(diags) };
    if diags.has_errors() {
        return Err(diags);
    }
    let exports = match pylock_targets(&file, pylock) {
        Ok(e) => e,
        Err(message) => {
            diags.push(Diagnostic::error(Code::BadValue, message));
            return Err(diags);
        }
    };
    let mut sets: PackageSets = Default::default();
    if file.debian.is_empty() && file.python.is_empty() {
        return Ok((sets, Vec::new()));
    }
    let root = request.file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let platforms: Vec<String> =
        crate::plan::wanted_platforms(&file, &request.plan_input).iter().map(|p| p.to_string()).collect();
    let fail = |diags: &mut Diagnostics, span, e: String| {
        diags.push(Diagnostic::error(Code::Package, e).at(span, "this package set").in_source(&source));
    };
    for decl in &file.debian {
        match debian::lock(decl, root, &platforms, cache) {
            Ok(locked) => {
                sets.0.insert(decl.name.value.clone(), locked);
            }
            Err(e) => fail(&mut diags, decl.name.span, format!("debian `{}`: {e}", decl.name.value)),
        }
    }
    let glibc = sets
        .0
        .values()
        .flat_map(|s| s.platforms.values().flatten())
        .find(|d| d.name == "libc6")
        .and_then(|d| d.version.split('-').next().map(str::to_string))
        .unwrap_or_else(|| python::DEFAULT_GLIBC.to_string());
    for decl in &file.python {
        match python::lock(decl, root, &platforms, &glibc, cache) {
            Ok(locked) => {
                sets.1.insert(decl.name.value.clone(), locked);
            }
            Err(e) => fail(&mut diags, decl.name.span, format!("python `{}`: {e}", decl.name.value)),
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    let mut texts = Vec::new();
    for (decl, path) in exports {
        let locked = sets.1.get(&decl.name.value).expect("every python set was locked above");
        match python::export_pylock(decl, root, locked, &glibc, cache) {
            Ok(text) => texts.push((path, text)),
            Err(e) => fail(&mut diags, decl.name.span, format!("python `{}`: --pylock: {e}", decl.name.value)),
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    Ok((sets, texts))
}

pub fn run(args: super::LockArgs) -> i32 {
    let mut request = BuildRequest::new(&args.file, &[]);
    request.plan_input.fetch = args.inputs.fetch_options();
    // Resolve afresh: the old lock is what we compare against, not an input.
    request.plan_input.lock = Some(Lock::default());
    request.plan_input.lock_only = true;
    request.cache_dir = args.inputs.cache_dir.clone();
    let path = build::lock_path(&args.file);
    let old = match Lock::read(&path) {
        Ok(old) => old.unwrap_or_default(),
        Err(e) => {
            eprintln!("warning: {e}; it will be replaced");
            Lock::default()
        }
    };
    let result = build::open_cache(&request).and_then(|cache| {
        let sets = resolve_package_sets(&request, &cache, &args.pylock).map_err(BuildError::Invalid)?;
        build::load_plan(&request, &cache).map(|(plan, w)| (plan, w, sets))
    });
    let (plan, pylocks) = match result {
        Ok((mut plan, _warnings, ((debian, python), pylocks))) => {
            plan.resolved.debian = debian;
            plan.resolved.python = python;
            (plan, pylocks)
        }
        Err(e) => {
            eprint!("{}", build::render_error(&e));
            if let BuildError::Invalid(_) = e {
                eprintln!("error: pinfold.lock was not written");
            }
            return EXIT_ERROR;
        }
    };
    let new = plan.resolved;
    for line in changes(&old, &new) {
        println!("{line}");
    }
    if let Err(e) = new.write(&path) {
        eprintln!("error: cannot write {}: {e}", path.display());
        return EXIT_ERROR;
    }
    for (file, text) in pylocks {
        if let Err(e) = pinfold_image::fsutil::write_atomic(&file, text.as_bytes()) {
            eprintln!("error: cannot write {}: {e}", file.display());
            return EXIT_ERROR;
        }
        eprintln!("wrote {}", file.display());
    }
    EXIT_OK
}

/// `+ added`, `- removed`, `~ changed` lines, in a stable order.
fn changes(old: &Lock, new: &Lock) -> Vec<String> {
    let flatten = |lock: &Lock| -> BTreeMap<String, String> {
        let mut all = BTreeMap::new();
        for (name, digest) in &lock.bases {
            all.insert(format!("base {name}"), digest.clone());
        }
        for (name, by_platform) in &lock.downloads {
            for (platform, file) in by_platform {
                all.insert(format!("download {name} {platform}"), format!("sha256:{} {}", file.sha256, file.source));
            }
        }
        for (name, file) in &lock.archives {
            all.insert(format!("archive {name}"), format!("sha256:{} {}", file.sha256, file.source));
        }
        for (name, set) in &lock.debian {
            for (platform, debs) in &set.platforms {
                for deb in debs {
                    all.insert(format!("debian {name} {platform} {}", deb.name), deb.version.clone());
                }
            }
        }
        for (name, set) in &lock.python {
            for (platform, wheels) in &set.platforms {
                for wheel in wheels {
                    all.insert(format!("python {name} {platform} {}", wheel.name), wheel.version.clone());
                }
            }
        }
        all
    };
    let (old, new) = (flatten(old), flatten(new));
    let mut lines = Vec::new();
    for (key, value) in &new {
        match old.get(key) {
            None => lines.push(format!("+ {key} {value}")),
            Some(v) if v != value => lines.push(format!("~ {key} {value} (was {v})")),
            Some(_) => {}
        }
    }
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        lines.push(format!("- {key}"));
    }
    if lines.is_empty() {
        lines.push("pinfold.lock is up to date".to_string());
    }
    lines
}
