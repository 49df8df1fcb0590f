//! One call from "these suites, these architectures" to verified releases and indexes.
//!
//! Why: the lock needs, per suite, the InRelease's sha256 and Date and every index the
//! resolver reads; this ties sources, keyring, cache and offline mode together so the
//! caller does not repeat the sequence (and so tests and the timing example run exactly
//! what pinfold runs).

use crate::cache::Cache;
use crate::error::Result;
use crate::http::Http;
use crate::index::{load_packages, PackagesIndex, Source};
use crate::keyring::Keyring;
use crate::release::{cached_release, fetch_release, Release};
use crate::sources::AptSource;

/// A suite and the mirrors (base URLs, tried in order) that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub suite: String,
    pub components: Vec<String>,
    pub mirrors: Vec<String>,
}

/// The suites of apt `sources`, in their order, each with every URI offering it.
/// Components are those of the suite's first entry.
pub fn repositories(sources: &[AptSource]) -> Vec<Repository> {
    let mut out: Vec<Repository> = Vec::new();
    for source in sources {
        for suite in &source.suites {
            match out.iter_mut().find(|r| &r.suite == suite) {
                Some(r) if !r.mirrors.contains(&source.uri) => r.mirrors.push(source.uri.clone()),
                Some(_) => {}
                None => out.push(Repository {
                    suite: suite.clone(),
                    components: source.components.clone(),
                    mirrors: vec![source.uri.clone()],
                }),
            }
        }
    }
    out
}

/// How a suite's InRelease is had: fetched anew, or (offline) the one a lock recorded.
#[derive(Debug, Clone, Copy)]
pub enum ReleaseFrom<'a> {
    Network,
    Cached { sha256: &'a str },
}

/// The verified InRelease of `repo` and its Packages indexes for `arches`.
pub fn load_repository(
    http: &Http,
    repo: &Repository,
    arches: &[&str],
    keyring: &Keyring,
    cache: &Cache,
    from: ReleaseFrom,
) -> Result<(Release, Vec<PackagesIndex>)> {
    let release = match from {
        ReleaseFrom::Network => fetch_release(http, &repo.mirrors, &repo.suite, keyring, cache)?,
        ReleaseFrom::Cached { sha256 } => cached_release(cache, sha256, &repo.suite, keyring)?,
    };
    let offline = matches!(from, ReleaseFrom::Cached { .. });
    let src = Source { http, mirrors: &repo.mirrors, cache, offline };
    // Indexes are independent: they load side by side (decompressing and parsing is
    // most of a lock's time) and are collected in the order asked, whatever finishes
    // first.
    let wanted: Vec<(&str, &String)> =
        arches.iter().flat_map(|a| repo.components.iter().map(move |c| (*a, c))).collect();
    let loaded: Vec<Result<PackagesIndex>> = std::thread::scope(|scope| {
        let handles: Vec<_> = wanted
            .iter()
            .map(|(arch, component)| scope.spawn(|| load_packages(&src, &release, component, arch)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("an index loader panicked")).collect()
    });
    let indexes = loaded.into_iter().collect::<Result<Vec<_>>>()?;
    Ok((release, indexes))
}
