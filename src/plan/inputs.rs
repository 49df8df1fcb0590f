//! Resolving the inputs of a build file: bases without `digest`, downloads and
//! archives. A pinned input must match its pin; an unpinned one takes the lock's pin
//! when `pinfold.lock` has one, else is taken as it is found and reported (a warning,
//! or an error under `--locked`). Every resolution is recorded for `pinfold lock`.

use super::Cx;
use crate::cache::Cache;
use crate::input::{extract_archive, fetch};
use pinfold_image::digest::Digest;
use pinfold_lang::diag::Code;
use pinfold_lang::diag::Diagnostic;
use pinfold_lang::lock::LockedFile;
use pinfold_lang::{ArchiveDecl, BuildFile, DownloadDecl, Platform, Spanned};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The platform key of a download source in the lock: `*` for all platforms.
pub fn platform_key(platform: Option<&Platform>) -> String {
    platform.map_or_else(|| "*".to_string(), |p| p.to_string())
}

/// What the inputs became: store paths of downloads and extracted archives.
#[derive(Debug, Default)]
pub struct ResolvedInputs {
    /// Download name → (platform, the URL's last segment, the stored file).
    pub downloads: BTreeMap<String, Vec<(Option<Platform>, String, PathBuf)>>,
    pub archives: BTreeMap<String, PathBuf>,
    /// Declared inputs that failed (already reported): their uses say nothing more.
    pub failed: std::collections::BTreeSet<String>,
}

/// The error for a use of a download or an archive (`kind`) that is not declared.
pub(super) fn unknown_input<'k>(
    kind: &str,
    name: &pinfold_lang::Spanned<String>,
    known: impl Iterator<Item = &'k String>,
) -> Diagnostic {
    let known: Vec<&str> = known.map(String::as_str).collect();
    let mut d = Diagnostic::error(Code::UnknownInput, format!("no {kind} is named `{}`", name.value))
        .at(name.span, format!("not a declared {kind}"));
    d.help = Some(match pinfold_lang::parse::did_you_mean(&name.value, &known) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("declare it at the top level: `{kind} NAME …`"),
    });
    d
}

impl Cx<'_> {
    /// Reports an input that nothing pins.
    pub(super) fn unpinned(&mut self, what: String, span: miette::SourceSpan, help: &str) {
        let mut d = if self.locked {
            Diagnostic::error(Code::Unpinned, format!("{what} is not pinned, and --locked requires every input pinned"))
        } else {
            Diagnostic::warning(Code::Unpinned, format!("{what} is not pinned: the build used what it found"))
        };
        d = d.at(span, "no pin here or in pinfold.lock").help(help);
        self.error(d);
    }

    pub(super) fn resolve_inputs(&mut self, file: &BuildFile, cache: Option<&Cache>) -> ResolvedInputs {
        let mut resolved = ResolvedInputs::default();
        if file.downloads.is_empty() && file.archives.is_empty() {
            return resolved;
        }
        let Some(cache) = cache else {
            self.error(Diagnostic::error(Code::Store, "downloads and archives need the store of a cache directory"));
            return resolved;
        };
        for d in &file.downloads {
            let files = self.resolve_download(d, cache);
            if files.len() < d.sources.len() {
                resolved.failed.insert(d.name.value.clone());
            }
            resolved.downloads.insert(d.name.value.clone(), files);
        }
        for a in &file.archives {
            match self.resolve_archive(a, cache) {
                Some(dir) => {
                    resolved.archives.insert(a.name.value.clone(), dir);
                }
                None => {
                    resolved.failed.insert(a.name.value.clone());
                }
            }
        }
        resolved
    }

    fn pin_of(
        &mut self,
        sha256: Option<&Spanned<String>>,
        locked: Option<&LockedFile>,
        source: &str,
    ) -> Option<Digest> {
        if let Some(s) = sha256 {
            return format!("sha256:{}", s.value).parse().ok();
        }
        // The lock's pin counts only for the same source, so that editing a URL never
        // silently keeps the old file's hash.
        locked.filter(|l| l.source == source).and_then(|l| format!("sha256:{}", l.sha256).parse().ok())
    }

    fn resolve_download(&mut self, d: &DownloadDecl, cache: &Cache) -> Vec<(Option<Platform>, String, PathBuf)> {
        let mut out = Vec::new();
        for source in &d.sources {
            let key = platform_key(source.platform.as_ref().map(|p| &p.value));
            let locked =
                self.lock.as_ref().and_then(|l| l.downloads.get(&d.name.value)).and_then(|m| m.get(&key)).cloned();
            let pin = self.pin_of(source.sha256.as_ref(), locked.as_ref(), &source.url.value);
            if pin.is_none() {
                self.unpinned(
                    format!("download `{}` ({key})", d.name.value),
                    source.url.span,
                    "add sha256=\"…\" (what `sha256sum` prints), or run `pinfold lock` to record it in pinfold.lock",
                );
            }
            match fetch(&source.url.value, pin, cache, &self.fetch) {
                Ok((digest, path)) => {
                    self.resolved
                        .downloads
                        .entry(d.name.value.clone())
                        .or_default()
                        .insert(key, LockedFile { source: source.url.value.clone(), sha256: digest.hex() });
                    out.push((
                        source.platform.as_ref().map(|p| p.value.clone()),
                        url_file_name(&source.url.value),
                        path,
                    ));
                }
                Err(e) => {
                    let span = match (&e, &source.sha256) {
                        (crate::input::FetchError::Mismatch { .. }, Some(s)) => s.span,
                        _ => source.url.span,
                    };
                    self.error(
                        Diagnostic::error(Code::Download, format!("download `{}`: {e}", d.name.value))
                            .at(span, "fetched from here"),
                    );
                }
            }
        }
        out
    }

    fn resolve_archive(&mut self, a: &ArchiveDecl, cache: &Cache) -> Option<PathBuf> {
        let (source, url) = match (&a.path, &a.url) {
            (Some(p), _) => {
                if let Some(why) = self.escapes_root(&p.value) {
                    self.error(
                        Diagnostic::error(
                            Code::PathEscape,
                            format!("`{}` is outside the build file's directory", p.value),
                        )
                        .at(p.span, why),
                    );
                    return None;
                }
                (p, format!("file://{}", self.root.join(&p.value).display()))
            }
            (None, Some(u)) => (u, u.value.clone()),
            (None, None) => return None, // reported by lang
        };
        let locked = self.lock.as_ref().and_then(|l| l.archives.get(&a.name.value)).cloned();
        let pin = self.pin_of(a.sha256.as_ref(), locked.as_ref(), &source.value);
        if pin.is_none() {
            self.unpinned(
                format!("archive `{}`", a.name.value),
                source.span,
                "add sha256=\"…\", or run `pinfold lock`",
            );
        }
        // A local archive is read afresh each time (never found in the store by its
        // pin), so that a changed file is caught; it is stored under its true digest.
        let fetched = if a.path.is_some() {
            fetch(&url, None, cache, &crate::input::FetchOptions::default()).and_then(|(digest, stored)| match pin {
                Some(p) if p != digest => {
                    Err(crate::input::FetchError::Mismatch { url: source.value.clone(), expected: p, actual: digest })
                }
                _ => Ok((digest, stored)),
            })
        } else {
            fetch(&url, pin, cache, &self.fetch)
        };
        let (digest, blob) = match fetched {
            Ok(x) => x,
            Err(e) => {
                let span = match (&e, &a.sha256) {
                    (crate::input::FetchError::Mismatch { .. }, Some(s)) => s.span,
                    _ => source.span,
                };
                self.error(
                    Diagnostic::error(Code::Archive, format!("archive `{}`: {e}", a.name.value))
                        .at(span, "read from here"),
                );
                return None;
            }
        };
        self.resolved
            .archives
            .insert(a.name.value.clone(), LockedFile { source: source.value.clone(), sha256: digest.hex() });
        match extract_archive(&blob, &digest, cache) {
            Ok(dir) => Some(dir),
            Err(e) => {
                self.error(
                    Diagnostic::error(Code::Archive, format!("archive `{}`: {e}", a.name.value))
                        .at(source.span, "this archive")
                        .help("an archive may hold only files, directories and symlinks inside itself"),
                );
                None
            }
        }
    }
}

/// The file name a URL names: its last path segment, without query or fragment
/// (`https://h/a/tool-1.2.tar.gz?x=1` → `tool-1.2.tar.gz`); empty when it names a
/// directory.
pub fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let after_scheme = path.split_once("://").map_or(path, |(_, rest)| rest);
    match after_scheme.split_once('/') {
        Some((_, rest)) => rest.rsplit('/').next().unwrap_or_default().to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod url_tests {
    #[test]
    fn a_url_names_its_last_segment() {
        assert_eq!(super::url_file_name("https://h/a/tool-1.2.tar.gz?x=1#f"), "tool-1.2.tar.gz");
        assert_eq!(super::url_file_name("file:///srv/files/busybox"), "busybox");
        assert_eq!(super::url_file_name("https://h/dir/"), "");
        assert_eq!(super::url_file_name("https://h"), "");
    }
}
