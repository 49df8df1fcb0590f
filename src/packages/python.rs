//! Python package sets in a build: `pinfold lock` resolves a `python` node with
//! `pinfold-python` per platform; `install NAME` unpacks the locked wheels into a layer
//! tree. The wheels are fetched into the store by sha256 (from the store, `--mirror`,
//! or the index's URL for that file name), so a warm store or a vendor directory needs
//! no index at all.

use crate::cache::Cache;
use crate::input::{fetch, FetchOptions};
use pinfold_image::digest::Digest;
use pinfold_image::layer::{EntryKind, FileSource, LayerEntry, LayerTree};
use pinfold_lang::lock::{LockedPython, LockedWheel};
use pinfold_lang::PythonDecl;
use pinfold_python::discovery::IndexSettings;
use pinfold_python::index::IndexClient;
use pinfold_python::install::{self, Content, InstallOptions, Scheme};
use pinfold_python::requirements::Requirements;
use pinfold_python::target::{PythonVersion, Target};
use std::path::Path;

/// The glibc a Python set's wheels are chosen for when no Debian set of the build file
/// says which (manylinux_2_28: what current wheels are built for, and older than any
/// Debian release pinfold installs).
pub const DEFAULT_GLIBC: &str = "2.28";

/// Where the image's interpreter is, and its full version (for `pyvenv.cfg`).
#[derive(Debug, Clone)]
pub struct Interpreter {
    pub path: String,
    pub version: PythonVersion,
}

/// The index of a set: its `index` node, else what pip would read.
fn index_settings(decl: &PythonDecl, requirements: &Requirements) -> Result<IndexSettings, String> {
    let settings = match &decl.index {
        Some(url) => IndexSettings::single(&url.value),
        None => IndexSettings::discover(),
    }
    .map_err(|e| e.to_string())?;
    settings.with_requirements(requirements).map_err(|e| e.to_string())
}

/// The requirements of a set: its files (relative to the build file's directory) and
/// inline specifiers.
fn requirements(decl: &PythonDecl, root: &Path) -> Result<Requirements, String> {
    let mut all = Requirements::from_specifiers(&decl.packages.iter().map(|p| p.value.as_str()).collect::<Vec<_>>())
        .map_err(|e| e.to_string())?;
    for file in &decl.requirements {
        let more = Requirements::from_file(&root.join(&file.value), Some(root)).map_err(|e| e.to_string())?;
        all.requirements.extend(more.requirements);
        all.constraints.extend(more.constraints);
        all.index_url = all.index_url.or(more.index_url);
        all.extra_index_urls.extend(more.extra_index_urls);
        all.pre |= more.pre;
    }
    Ok(all)
}

/// Resolves a set for every platform: the wheels, by file name and sha256.
pub fn lock(
    decl: &PythonDecl,
    root: &Path,
    platforms: &[String],
    glibc: &str,
    cache: &Cache,
) -> Result<LockedPython, String> {
    let python = decl.python.as_ref().map(|p| p.value.clone()).unwrap_or_default();
    let mut locked = LockedPython { python: python.clone(), platforms: Default::default() };
    if let Some(pylock) = &decl.pylock {
        let file = pinfold_python::pylock::Pylock::read(&root.join(&pylock.value)).map_err(|e| e.to_string())?;
        for platform in platforms {
            let target = Target::new(&python, platform, glibc).map_err(|e| e.to_string())?;
            let resolution = file.select(&target).map_err(|e| e.to_string())?;
            locked.platforms.insert(platform.clone(), wheels(resolution.packages));
        }
        return Ok(locked);
    }
    let requirements = requirements(decl, root)?;
    let client = IndexClient::new(index_settings(decl, &requirements)?, Some(cache.root().join("python-index")))
        .map_err(|e| e.to_string())?;
    for platform in platforms {
        let target = Target::new(&python, platform, glibc).map_err(|e| e.to_string())?;
        let resolution =
            pinfold_python::resolve::resolve(&client, &requirements, &target).map_err(|e| e.to_string())?;
        locked.platforms.insert(platform.clone(), wheels(resolution.packages));
    }
    Ok(locked)
}

/// The PEP 751 `pylock.toml` of a locked set, for other installers (`pinfold lock
/// --pylock`): every platform of the lock, each wheel with the URL its index serves it
/// at now, found by file name and checked against the locked sha256 (the lock itself
/// names no host; installers such as uv need a `url`).
pub fn export_pylock(
    decl: &PythonDecl,
    root: &Path,
    locked: &LockedPython,
    glibc: &str,
    cache: &Cache,
) -> Result<String, String> {
    let settings = fetch_settings(decl, root)?;
    let client = IndexClient::new(settings, Some(cache.root().join("python-index"))).map_err(|e| e.to_string())?;
    let mut resolutions = Vec::new();
    let mut urls = std::collections::BTreeMap::new();
    for (platform, wheels) in &locked.platforms {
        let target = Target::new(&locked.python, platform, glibc).map_err(|e| e.to_string())?;
        let mut packages = Vec::new();
        for w in wheels {
            if !urls.contains_key(&w.file) {
                let file = client.find_locked(&w.name, &w.file, &w.sha256).map_err(|e| e.to_string())?;
                let url = file.url.split('#').next().unwrap_or(&file.url).to_string();
                urls.insert(w.file.clone(), url);
            }
            packages.push(pinfold_python::resolve::LockedWheel {
                name: w.name.clone(),
                version: w.version.clone(),
                filename: w.file.clone(),
                sha256: w.sha256.clone(),
                size: Some(w.size).filter(|s| *s > 0),
                requires_python: None,
            });
        }
        resolutions.push(pinfold_python::resolve::Resolution { target, packages });
    }
    Ok(pinfold_python::pylock::export_targets(&resolutions, &urls))
}

fn wheels(packages: Vec<pinfold_python::resolve::LockedWheel>) -> Vec<LockedWheel> {
    packages
        .into_iter()
        .map(|w| LockedWheel {
            name: w.name,
            version: w.version,
            file: w.filename,
            sha256: w.sha256,
            size: w.size.unwrap_or(0),
        })
        .collect()
}

/// The indexes a build fetches a set's wheels from: those its lock was resolved with
/// (the set's `index`, else pip's; a requirements file's index options applied).
fn fetch_settings(decl: &PythonDecl, root: &Path) -> Result<IndexSettings, String> {
    if decl.pylock.is_some() {
        return match &decl.index {
            Some(url) => IndexSettings::single(&url.value),
            None => IndexSettings::discover(),
        }
        .map_err(|e| e.to_string());
    }
    index_settings(decl, &requirements(decl, root)?)
}

/// The store path of every locked wheel of `platform`, fetched when the store and the
/// mirror lack it: through the set's indexes ([`fetch_settings`]), by the file's name.
pub fn fetch_wheels(
    decl: &PythonDecl,
    root: &Path,
    wheels: &[LockedWheel],
    cache: &Cache,
    options: &FetchOptions,
) -> Result<Vec<std::path::PathBuf>, String> {
    let mut paths = Vec::new();
    let mut client: Option<IndexClient> = None;
    for wheel in wheels {
        let digest: Digest = format!("sha256:{}", wheel.sha256).parse().map_err(|e| format!("{}: {e}", wheel.file))?;
        let stored = cache.blob_path(&digest);
        // Whether the mirror has it (a refused entry too: fetching then names it).
        let mirrored =
            options.mirror.as_ref().filter(|m| !matches!(crate::input::fetch::open_mirrored(m, &digest), Ok(None)));
        let url = if stored.is_file() || mirrored.is_some() || options.offline {
            format!("pinfold-store:{}", wheel.file)
        } else {
            if client.is_none() {
                let settings = fetch_settings(decl, root)?;
                client = Some(
                    IndexClient::new(settings, Some(cache.root().join("python-index"))).map_err(|e| e.to_string())?,
                );
            }
            let file = client
                .as_ref()
                .expect("made above")
                .find_locked(&wheel.name, &wheel.file, &wheel.sha256)
                .map_err(|e| e.to_string())?;
            file.url.clone()
        };
        let (_, path) = fetch(&url, Some(digest), cache, options).map_err(|e| format!("{}: {e}", wheel.file))?;
        paths.push(path);
    }
    Ok(paths)
}

/// The tree of `install NAME [to=…]` for one platform: every locked wheel unpacked as
/// the wheel specification says, into a venv at `to` or the interpreter's
/// site-packages.
#[allow(clippy::too_many_arguments)]
pub fn install_tree(
    locked: &LockedPython,
    decl: &PythonDecl,
    root: &Path,
    platform: &str,
    to: Option<&str>,
    interpreter: &Interpreter,
    cache: &Cache,
    options: &FetchOptions,
) -> Result<LayerTree, String> {
    let wheels = locked
        .platforms
        .get(platform)
        .ok_or_else(|| format!("pinfold.lock has no wheels for {platform}; run `pinfold lock`"))?;
    let scheme = match to {
        Some(prefix) => Scheme::venv(prefix, &interpreter.path, interpreter.version),
        None => Scheme::site_packages(
            &format!("/usr/local/lib/python{}/dist-packages", interpreter.version.short()),
            &interpreter.path,
            interpreter.version,
        ),
    }
    .map_err(|e| e.to_string())?;
    let paths = fetch_wheels(decl, root, wheels, cache, options)?;
    let unpacked = cache.root().join("unpacked");
    std::fs::create_dir_all(&unpacked).map_err(|e| format!("{}: {e}", unpacked.display()))?;
    let work = tempfile::Builder::new().prefix("wheels-").tempdir_in(&unpacked).map_err(|e| e.to_string())?;
    let scheme_key = &blake3::hash(format!("{scheme:?}").as_bytes()).to_hex()[..16];
    let mut sets = vec![("venv".to_string(), scheme.venv_entries())];
    for (wheel, stored) in wheels.iter().zip(&paths) {
        // The installer reads name, version and tags from the file's name. The name
        // comes from the lock: one path component, or it is refused.
        if !(wheel.file.ends_with(".whl") && super::is_plain_file_name(&wheel.file)) {
            return Err(format!("`{}` in pinfold.lock is not a wheel's file name", wheel.file));
        }
        let named = work.path().join(&wheel.file);
        if std::fs::hard_link(stored, &named).is_err() {
            std::fs::copy(stored, &named).map_err(|e| format!("{}: {e}", wheel.file))?;
        }
        let digest: Digest = format!("sha256:{}", wheel.sha256).parse().map_err(|e| format!("{}: {e}", wheel.file))?;
        // What is extracted depends on the scheme too (a script's shebang names the
        // interpreter), so the directory is named by both. It is made whole in this
        // build's own directory and renamed into place: another build sharing the
        // cache never sees it half written, nor writes into one this build reads.
        let done = unpacked.join(format!("wheel-{}-{scheme_key}", digest.hex()));
        let fresh = work.path().join(format!("extract-{}", digest.hex()));
        let mut entries = install::install_wheel(&named, &scheme, &InstallOptions { extract_to: Some(fresh.clone()) })
            .map_err(|e| e.to_string())?;
        if !done.exists() {
            // Another build may win the race; its tree is the same.
            let _ = std::fs::rename(&fresh, &done);
        }
        for entry in &mut entries {
            if let install::EntryKind::File(install::Content::Extracted(path)) = &mut entry.kind {
                if let Ok(rest) = path.strip_prefix(&fresh) {
                    *path = done.join(rest);
                }
            }
        }
        sets.push((wheel.file.clone(), entries));
    }
    let merged = install::merge(sets).map_err(|e| e.to_string())?;
    to_tree(merged)
}

/// The installer's entries as a layer tree: root-owned, its modes.
fn to_tree(entries: Vec<install::Entry>) -> Result<LayerTree, String> {
    let mut tree = LayerTree::new();
    for e in entries {
        let Some(path) = pinfold_image::layer::tree::normalize_image_path(&e.path) else { continue };
        let kind = match e.kind {
            install::EntryKind::Dir => EntryKind::Dir,
            install::EntryKind::Symlink(target) => EntryKind::Symlink { target },
            install::EntryKind::File(Content::Bytes(bytes)) => {
                EntryKind::File { size: bytes.len() as u64, source: FileSource::Inline(bytes) }
            }
            install::EntryKind::File(Content::Extracted(file)) => {
                let size = std::fs::metadata(&file).map_err(|err| format!("{}: {err}", file.display()))?.len();
                EntryKind::File { size, source: FileSource::Path(file, None) }
            }
        };
        tree.insert(path.clone(), LayerEntry { kind, mode: e.mode, uid: 0, gid: 0 })
            .map_err(|c| format!("`/{}` is installed twice", c.path))?;
    }
    Ok(tree)
}
