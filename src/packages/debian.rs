//! Debian package sets in a build: `pinfold lock` resolves a `debian` node with
//! `pinfold-debian` (signed `InRelease`, `Packages` by their hashes, the dependency
//! closure per architecture); `install NAME` fetches the locked `.deb` files into the
//! store by sha256 and unpacks them into a layer tree with dpkg's database.
//!
//! Mirrors: the node's `mirror`s, else the machine's apt sources for the suite (as apt
//! reads them). The lock names no host, so any mirror — or `--mirror DIR` after
//! `pinfold vendor DIR` — serves the same files.

use crate::cache::Cache;
use crate::input::{fetch, FetchOptions};
use pinfold_debian::deb::{self, Contents, Deb, Entry, EntryKind as DebKind, FileData};
use pinfold_debian::{Keyring, Repository};
use pinfold_image::digest::Digest;
use pinfold_image::layer::{EntryKind, FileSource, LayerEntry, LayerTree};
use pinfold_lang::lock::{LockedDeb, LockedDebian, LockedRelease};
use pinfold_lang::DebianDecl;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Debian's architecture name for an OCI platform (`linux/arm64` → `arm64`).
pub fn debian_arch(platform: &str) -> Result<&'static str, String> {
    Ok(match platform.trim_start_matches("linux/") {
        "amd64" => "amd64",
        "arm64" | "arm64/v8" => "arm64",
        "arm/v7" | "arm" => "armhf",
        "386" => "i386",
        "ppc64le" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => return Err(format!("no Debian architecture for linux/{other}")),
    })
}

/// The repositories of a set: each suite with the node's mirrors, else the mirrors the
/// machine's apt sources give for that suite (else every apt mirror, tried in order).
pub fn repositories(decl: &DebianDecl) -> Result<Vec<Repository>, String> {
    let components: Vec<String> = decl.components.iter().map(|c| c.value.clone()).collect();
    let own: Vec<String> = decl.mirrors.iter().map(|m| m.value.clone()).collect();
    let machine = if own.is_empty() {
        let root = crate::env::apt_root();
        let sources =
            pinfold_debian::apt_sources(&root).map_err(|e| format!("apt sources in {}: {e}", root.display()))?;
        pinfold_debian::repositories(&sources)
    } else {
        Vec::new()
    };
    let every: Vec<String> = machine.iter().flat_map(|r| r.mirrors.clone()).fold(Vec::new(), |mut all, m| {
        if !all.contains(&m) {
            all.push(m);
        }
        all
    });
    let mut out = Vec::new();
    for suite in &decl.suites {
        let mirrors = if !own.is_empty() {
            own.clone()
        } else {
            machine.iter().find(|r| r.suite == suite.value).map_or_else(|| every.clone(), |r| r.mirrors.clone())
        };
        if mirrors.is_empty() {
            return Err(format!(
                "no mirror serves suite `{}`: add `mirror \"URL\"` to the package set, or an apt source for it",
                suite.value
            ));
        }
        out.push(Repository { suite: suite.value.clone(), components: components.clone(), mirrors });
    }
    Ok(out)
}

fn keyring(decl: &DebianDecl, root: &Path) -> Result<Keyring, String> {
    match &decl.keyring {
        Some(path) => {
            // The language made the path relative and clean; a symlink must not take it
            // out of the build file's directory either.
            let inside = root.canonicalize().ok().zip(root.join(&path.value).canonicalize().ok());
            if !inside.is_some_and(|(root, file)| file.starts_with(root)) {
                return Err(format!("keyring `{}` is not a file below the build file's directory", path.value));
            }
            Keyring::load(&root.join(&path.value), decl.keyring_sha256.as_ref().map(|s| s.value.as_str()))
        }
        None => Keyring::load(Path::new(pinfold_debian::DEFAULT_KEYRING), None),
    }
    .map_err(|e| e.to_string())
}

/// Resolves a set for every platform: the signed releases read and the exact `.deb`
/// files of each platform's closure.
pub fn lock(decl: &DebianDecl, root: &Path, platforms: &[String], cache: &Cache) -> Result<LockedDebian, String> {
    let keyring = keyring(decl, root)?;
    let http = pinfold_debian::Http::new();
    let store = pinfold_debian::Cache::new(cache.root().join("debian-index"));
    let arches: Vec<&str> = platforms.iter().map(|p| debian_arch(p)).collect::<Result<_, _>>()?;
    let mut locked = LockedDebian::default();
    let mut indexes = Vec::new();
    for repo in repositories(decl)? {
        let (release, mut loaded) = pinfold_debian::load_repository(
            &http,
            &repo,
            &arches,
            &keyring,
            &store,
            pinfold_debian::ReleaseFrom::Network,
        )
        .map_err(|e| e.to_string())?;
        locked.releases.insert(repo.suite.clone(), LockedRelease { sha256: release.sha256, date: release.date });
        indexes.append(&mut loaded);
    }
    let base = if decl.essential { pinfold_debian::Base::Essential } else { pinfold_debian::Base::None };
    for (platform, arch) in platforms.iter().zip(&arches) {
        let mut requested: Vec<String> = decl.packages.iter().map(|p| p.value.clone()).collect();
        for (p, packages) in &decl.platform_packages {
            if p.value.to_string() == *platform {
                requested.extend(packages.iter().map(|p| p.value.clone()));
            }
        }
        let packages = pinfold_debian::resolve(&indexes, arch, &requested, base).map_err(|e| e.to_string())?;
        let debs = packages
            .into_iter()
            .map(|p| LockedDeb {
                name: p.name,
                version: p.version,
                architecture: p.architecture,
                path: p.filename,
                sha256: p.sha256,
                size: p.size,
            })
            .collect();
        locked.platforms.insert(platform.clone(), debs);
    }
    Ok(locked)
}

/// Fetches a locked `.deb` into the store: from the store, `--mirror`, or the first
/// mirror that serves its pool path (each checked against the lock's sha256).
pub fn fetch_deb(
    deb: &LockedDeb,
    mirrors: &[String],
    cache: &Cache,
    options: &FetchOptions,
) -> Result<PathBuf, String> {
    let digest: Digest = format!("sha256:{}", deb.sha256).parse().map_err(|e| format!("{}: {e}", deb.path))?;
    let mut last = String::new();
    let candidates: Vec<String> = if mirrors.is_empty() {
        vec![format!("pinfold-store:{}", deb.path)]
    } else {
        mirrors.iter().map(|m| pinfold_debian::http::join(m, &deb.path)).collect()
    };
    for url in candidates {
        match fetch(&url, Some(digest), cache, options) {
            Ok((_, path)) => return Ok(path),
            Err(e @ crate::input::FetchError::Mismatch { .. }) => return Err(format!("package {}: {e}", deb.name)),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("package {} {} ({}): no mirror serves it: {last}", deb.name, deb.version, deb.path))
}

/// Unpacks a `.deb` from the store into `unpacked/deb-<sha256>` of the cache (made
/// once, by a rename: the files are the same for every build that needs them).
fn unpack(deb: &LockedDeb, stored: &Path, cache: &Cache) -> Result<Deb, String> {
    let unpacked = cache.root().join("unpacked");
    std::fs::create_dir_all(&unpacked).map_err(|e| format!("{}: {e}", unpacked.display()))?;
    let work = tempfile::Builder::new().prefix("deb-").tempdir_in(&unpacked).map_err(|e| e.to_string())?;
    let file = std::fs::File::open(stored).map_err(|e| format!("{}: {e}", stored.display()))?;
    let work_tree = work.path().join("tree");
    std::fs::create_dir_all(&work_tree).map_err(|e| e.to_string())?;
    let mut read = deb::read_deb(std::io::BufReader::new(file), &deb.name, &Contents::ExtractTo(work_tree.clone()))
        .map_err(|e| e.to_string())?;
    let done = unpacked.join(format!("deb-{}", deb.sha256));
    if !done.exists() {
        // Another build may have won the race; its tree is the same.
        let _ = std::fs::rename(&work_tree, &done);
    }
    for entry in &mut read.entries {
        if let DebKind::File { data: FileData::Extracted(path), .. } = &mut entry.kind {
            if let Ok(rest) = path.strip_prefix(&work_tree) {
                *path = done.join(rest);
            }
        }
    }
    Ok(read)
}

/// The mirrors a set's `.deb` files are fetched from (none offline: then only the
/// store and `--mirror DIR` serve them), each once, in order.
pub fn fetch_mirrors(decl: &DebianDecl, options: &FetchOptions) -> Vec<String> {
    let mirrors: Vec<String> = if options.offline {
        Vec::new()
    } else {
        repositories(decl).map(|r| r.into_iter().flat_map(|r| r.mirrors).collect()).unwrap_or_default()
    };
    let mut unique = Vec::new();
    for m in mirrors {
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    unique
}

/// The tree of `install NAME` for one platform, and warnings (maintainer scripts that
/// did not run).
pub fn install_tree(
    locked: &LockedDebian,
    decl: &DebianDecl,
    platform: &str,
    cache: &Cache,
    options: &FetchOptions,
) -> Result<(LayerTree, Vec<String>), String> {
    let debs = locked.platforms.get(platform).ok_or_else(|| {
        format!("pinfold.lock has no packages of `{}` for {platform}; run `pinfold lock`", decl.name.value)
    })?;
    let unique = fetch_mirrors(decl, options);
    let mut unpacked = Vec::new();
    for deb in debs {
        let stored = fetch_deb(deb, &unique, cache, options)?;
        unpacked.push(unpack(deb, &stored, cache)?);
    }
    let refs: Vec<&Deb> = unpacked.iter().collect();
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for e in deb::merged_usr_layout(debian_arch(platform)?) {
        entries.insert(e.path.clone(), e);
    }
    for d in &unpacked {
        for e in &d.entries {
            // Directories shipped by several packages stay as the first made them.
            if matches!(e.kind, DebKind::Dir) && entries.contains_key(&e.path) {
                continue;
            }
            entries.insert(e.path.clone(), e.clone());
        }
    }
    let all: Vec<Entry> = entries.values().cloned().collect();
    let (links, skipped) = pinfold_debian::fixups::alternatives(&refs);
    for e in pinfold_debian::dpkg::dpkg_database(&refs)
        .into_iter()
        .chain(pinfold_debian::fixups::ca_certificates(&all).map_err(|e| e.to_string())?)
    {
        if matches!(e.kind, DebKind::Dir) && entries.contains_key(&e.path) {
            continue;
        }
        entries.insert(e.path.clone(), e);
    }
    // An alternative's link replaces only a link (as update-alternatives does): a
    // maintainer script naming a package's own file or directory leaves it alone.
    let mut refused = Vec::new();
    for link in links {
        match entries.get(&link.path).map(|e| &e.kind) {
            Some(DebKind::Symlink { .. }) | None => {
                entries.insert(link.path.clone(), link);
            }
            Some(_) => refused.push(link.path),
        }
    }
    // One warning for every package whose scripts did not run, not one each.
    let not_run: Vec<String> = pinfold_debian::fixups::scripts_not_run(&refs)
        .into_iter()
        .filter(|n| !n.note.starts_with("done by pinfold"))
        .map(|n| n.package)
        .collect();
    let mut warnings = Vec::new();
    if !not_run.is_empty() {
        warnings.push(format!(
            "maintainer scripts were not run for {} package(s): {} (alternatives and the CA bundle were made by pinfold)",
            not_run.len(),
            not_run.join(", ")
        ));
    }
    warnings.extend(skipped.into_iter().map(|s| format!("an alternative was not made (it needs a shell): {s}")));
    warnings.extend(
        refused
            .into_iter()
            .map(|p| format!("an alternative was not made: /{p} is a file or directory of a package, not a link")),
    );
    Ok((to_tree(&entries)?, warnings))
}

/// The unpacked entries as a layer tree: a hard link becomes a copy of its target's
/// file (a layer tree has no hard links), owners and modes as the package has them.
fn to_tree(entries: &BTreeMap<String, Entry>) -> Result<LayerTree, String> {
    let mut tree = LayerTree::new();
    for e in entries.values() {
        let kind = match &e.kind {
            DebKind::Dir => EntryKind::Dir,
            DebKind::Symlink { target } => EntryKind::Symlink { target: target.clone() },
            DebKind::File { data, size, .. } => file_kind(data, *size),
            DebKind::Hardlink { target } => match entries.get(target).map(|t| &t.kind) {
                Some(DebKind::File { data, size, .. }) => file_kind(data, *size),
                _ => return Err(format!("`/{}` is a hard link to `/{target}`, which is not a file", e.path)),
            },
        };
        tree.insert(e.path.clone(), LayerEntry { kind, mode: e.mode, uid: e.uid, gid: e.gid })
            .map_err(|c| format!("`/{}` is installed twice", c.path))?;
    }
    Ok(tree)
}

fn file_kind(data: &FileData, size: u64) -> EntryKind {
    match data {
        FileData::Bytes(bytes) => {
            EntryKind::File { size: bytes.len() as u64, source: FileSource::Inline(bytes.clone()) }
        }
        FileData::Extracted(path) => EntryKind::File { size, source: FileSource::Path(path.clone(), None) },
    }
}
