//! `install NAME` in a layer: the locked files of a package set for the platform the
//! layer is made for, as a layer tree (`spec/packages.md`). The set must be in
//! `pinfold.lock`: resolving it needs the network and is `pinfold lock`'s work, never a
//! build's.

use super::Cx;
use crate::cache::Cache;
use crate::packages::{debian, python};
use pinfold_image::layer::{EntryKind, FileSource, LayerTree};
use pinfold_lang::diag::{Code, Diagnostic};
use pinfold_lang::lock::Lock;
use pinfold_lang::{BuildFile, DebianDecl, Platform, PythonDecl, Spanned};
use std::collections::BTreeMap;

/// A package set of the build file.
#[derive(Debug, Clone)]
pub enum PackageSet {
    Debian(DebianDecl),
    Python(PythonDecl),
}

impl PackageSet {
    pub fn of(file: &BuildFile) -> BTreeMap<String, PackageSet> {
        let debian = file.debian.iter().map(|d| (d.name.value.clone(), PackageSet::Debian(d.clone())));
        let python = file.python.iter().map(|p| (p.name.value.clone(), PackageSet::Python(p.clone())));
        debian.chain(python).collect()
    }
}

/// The interpreter a Python set is installed for: the image's `python3.X` from a Debian
/// set of the same lock (its full version for `pyvenv.cfg`), else `/usr/bin/python3.X`.
pub fn interpreter(lock: &Lock, python: &str, platform: &str) -> Result<python::Interpreter, String> {
    let short: pinfold_python::target::PythonVersion =
        python.parse().map_err(|e| format!("python \"{python}\": {e}"))?;
    let package = format!("python{}", short.short());
    let from_debian = lock
        .debian
        .values()
        .filter_map(|set| set.platforms.get(platform))
        .flatten()
        .find(|deb| deb.name == package)
        .and_then(|deb| deb.version.split(['-', '+', '~']).next().and_then(|v| v.parse().ok()));
    Ok(python::Interpreter { path: format!("/usr/bin/{package}"), version: from_debian.unwrap_or(short) })
}

impl Cx<'_> {
    /// The declared set `name` names; one that is not declared is reported at its span.
    pub(super) fn package_set(&mut self, name: &Spanned<String>) -> Option<PackageSet> {
        let found = self.packages.get(&name.value).cloned();
        if found.is_none() {
            let known: Vec<&str> = self.packages.keys().map(String::as_str).collect();
            let mut d = Diagnostic::error(Code::UnknownInput, format!("no package set is named `{}`", name.value))
                .at(name.span, "not a declared `debian` or `python` set");
            d.help = pinfold_lang::parse::did_you_mean(&name.value, &known).map(|s| format!("did you mean `{s}`?"));
            self.error(d);
        }
        found
    }

    pub(super) fn install_entry(
        &mut self,
        platform: &Platform,
        name: &Spanned<String>,
        to: Option<&Spanned<String>>,
        tree: &mut LayerTree,
    ) -> bool {
        let Some(set) = self.package_set(name) else { return false };
        if self.lock_only {
            return true;
        }
        let unlocked = |cx: &mut Self| {
            cx.error(
                Diagnostic::error(Code::Unpinned, format!("package set `{}` is not in pinfold.lock", name.value))
                    .at(name.span, "installed here")
                    .help("run `pinfold lock`: it resolves the set to exact files for every platform"),
            );
            false
        };
        let Some(cache) = self.cache_root.as_ref().and_then(|root| Cache::open(root).ok()) else {
            self.error(Diagnostic::error(Code::Store, "package sets need the store of a cache directory"));
            return false;
        };
        let platform_text = platform.to_string();
        let lock = self.lock.clone().unwrap_or_default();
        let result = match &set {
            PackageSet::Debian(decl) => {
                if let Some(to) = to {
                    self.error(
                        Diagnostic::error(Code::BadValue, "a Debian package set is installed at the image's root")
                            .at(to.span, "remove `to`"),
                    );
                    return false;
                }
                let Some(locked) = lock.debian.get(&name.value) else { return unlocked(self) };
                self.resolved.debian.insert(name.value.clone(), locked.clone());
                // The tree is made from the platform's locked files alone (the set's
                // mirrors and keyring only say where they are fetched from).
                let key = format!("debian\n{platform_text}\n{:?}", locked.platforms.get(&platform_text));
                memoized(&cache, &key, || debian::install_tree(locked, decl, &platform_text, &cache, &self.fetch))
            }
            PackageSet::Python(decl) => {
                let Some(locked) = lock.python.get(&name.value) else { return unlocked(self) };
                self.resolved.python.insert(name.value.clone(), locked.clone());
                interpreter(&lock, &locked.python, &platform_text).and_then(|interpreter| {
                    let prefix = to.map(|t| t.value.as_str());
                    let root = self.root;
                    let key = format!(
                        "python\n{platform_text}\n{prefix:?}\n{interpreter:?}\n{:?}",
                        locked.platforms.get(&platform_text)
                    );
                    memoized(&cache, &key, || {
                        python::install_tree(
                            locked,
                            decl,
                            root,
                            &platform_text,
                            prefix,
                            &interpreter,
                            &cache,
                            &self.fetch,
                        )
                        .map(|t| (t, Vec::new()))
                    })
                })
            }
        };
        match result {
            Ok((installed, warnings)) => {
                *tree = installed;
                for w in warnings {
                    self.error(Diagnostic::warning(Code::Package, w).at(name.span, "installed here"));
                }
                true
            }
            Err(e) => {
                self.error(
                    Diagnostic::error(Code::Package, format!("package set `{}` for {platform}: {e}", name.value))
                        .at(name.span, "installed here"),
                );
                false
            }
        }
    }
}

impl Cx<'_> {
    /// The locked files of `step`'s package sets for `platform`, fetched into the store
    /// (each checked against the lock's sha256) and named by their file names below the
    /// set's directory: `.deb`s by their pool file name, wheels by theirs. A set without
    /// files for the platform, or a file that cannot be had, is reported at the step.
    pub(super) fn step_package_files(
        &mut self,
        step: &super::steps::StepPlan,
        platform: &Platform,
    ) -> Vec<(String, std::path::PathBuf)> {
        let mut out = Vec::new();
        if step.packages.is_empty() || self.lock_only {
            return out;
        }
        let Some(cache) = self.cache_root.as_ref().and_then(|root| Cache::open(root).ok()) else {
            self.error(Diagnostic::error(Code::Store, "package sets need the store of a cache directory"));
            return out;
        };
        let lock = self.lock.clone().unwrap_or_default();
        let platform_text = platform.to_string();
        for (name, dir) in &step.packages {
            let fetched: Result<Vec<(String, std::path::PathBuf)>, String> = match self.packages.get(name).cloned() {
                Some(PackageSet::Debian(decl)) => match lock.debian.get(name) {
                    Some(locked) => {
                        self.resolved.debian.insert(name.clone(), locked.clone());
                        let mirrors = debian::fetch_mirrors(&decl, &self.fetch);
                        locked.platforms.get(&platform_text).map_or_else(
                            || {
                                Err(format!(
                                    "pinfold.lock has no packages of `{name}` for {platform}; run `pinfold lock`"
                                ))
                            },
                            |debs| {
                                debs.iter()
                                    .map(|deb| {
                                        let file = deb.path.rsplit('/').next().unwrap_or(&deb.path).to_string();
                                        debian::fetch_deb(deb, &mirrors, &cache, &self.fetch).map(|p| (file, p))
                                    })
                                    .collect()
                            },
                        )
                    }
                    None => Err(format!("package set `{name}` is not in pinfold.lock; run `pinfold lock`")),
                },
                Some(PackageSet::Python(decl)) => match lock.python.get(name) {
                    Some(locked) => {
                        self.resolved.python.insert(name.clone(), locked.clone());
                        match locked.platforms.get(&platform_text) {
                            Some(wheels) => python::fetch_wheels(&decl, self.root, wheels, &cache, &self.fetch)
                                .map(|paths| wheels.iter().map(|w| w.file.clone()).zip(paths).collect()),
                            None => Err(format!(
                                "pinfold.lock has no wheels of `{name}` for {platform}; run `pinfold lock`"
                            )),
                        }
                    }
                    None => Err(format!("package set `{name}` is not in pinfold.lock; run `pinfold lock`")),
                },
                None => Ok(Vec::new()), // reported when the step was planned
            };
            match fetched {
                Ok(files) => {
                    for (file, path) in files {
                        // The names come from the lock: one plain component each.
                        if !crate::packages::is_plain_file_name(&file) {
                            self.error(Diagnostic::error(
                                Code::Package,
                                format!("`{file}` in pinfold.lock is not a file name"),
                            ));
                            continue;
                        }
                        let rel = if dir.is_empty() || dir == "." { file } else { format!("{dir}/{file}") };
                        out.push((rel, path));
                    }
                }
                Err(e) => self.error(
                    Diagnostic::error(Code::Package, format!("step `{}` for {platform}: {e}", step.name))
                        .at(step.span, "takes the set's files"),
                ),
            }
        }
        out.sort();
        out
    }
}

/// What an install made, kept in the cache by a key over everything the tree depends on:
/// the platform, its locked files, and for Python the prefix and interpreter. The same key gives the
/// same tree, so a build that changed nothing unpacks nothing (a no-op rebuild of a
/// 50-package Debian set took 1.45 s, nearly all of it reading every `.deb` again;
/// `benches/debian-speed.sh`). A kept tree is used only while every file it names is
/// still there with its size (`cache gc` may have removed an unpacked package).
fn memoized(
    cache: &Cache,
    key: &str,
    make: impl FnOnce() -> Result<(LayerTree, Vec<String>), String>,
) -> Result<(LayerTree, Vec<String>), String> {
    // The version too: another pinfold may install the same files differently.
    const FORMAT: &str = "pinfold-installed-tree-v1";
    let version = env!("CARGO_PKG_VERSION");
    let hash = blake3::hash(format!("{FORMAT}\n{version}\n{key}").as_bytes()).to_hex();
    let path = cache.root().join("unpacked").join(format!("tree-{hash}.postcard"));
    let intact = |tree: &LayerTree| {
        tree.iter().all(|(_, entry)| match &entry.kind {
            EntryKind::File { source: FileSource::Path(file, _), size } => {
                std::fs::symlink_metadata(file).is_ok_and(|m| m.is_file() && m.len() == *size)
            }
            _ => true,
        })
    };
    let kept = std::fs::read(&path)
        .ok()
        .and_then(|bytes| postcard::from_bytes::<(LayerTree, Vec<String>)>(&bytes).ok())
        .filter(|(tree, _)| intact(tree));
    if let Some(kept) = kept {
        pinfold_image::fsutil::mark_used(&path);
        return Ok(kept);
    }
    let made = make()?;
    // Keeping it is an optimization: a cache that cannot be written only costs time.
    if let Ok(bytes) = postcard::to_stdvec(&made) {
        let _ = pinfold_image::fsutil::write_atomic(&path, &bytes);
    }
    Ok(made)
}
