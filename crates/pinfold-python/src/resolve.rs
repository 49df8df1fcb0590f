//! Resolution: the wheels one target platform needs, by PubGrub.
//!
//! Why PubGrub: it is the algorithm uv, Cargo's next resolver and Dart use, it backtracks
//! completely, and when there is no answer it explains why in terms of the requirements
//! the user wrote. `pubgrub` (0.3) is driven here with PEP 440 versions and ranges from
//! `pep440_rs`; this module only answers its three questions (which package next, which
//! version, which dependencies) for one [`Target`].
//!
//! Rules:
//! - A version is a candidate when it has a wheel whose tags fit the target and whose
//!   `Requires-Python` admits the target's Python; the best-tagged wheel is its file.
//!   The highest candidate in range wins. Pre-releases only with `--pre`, or when no final
//!   release fits. Yanked files only when pinned with `==`. `--hash` pins narrow the files.
//! - Extras are separate packages (`name[extra]`) that depend on `name` at the same
//!   version, the way uv models them, so PubGrub keeps extras and versions consistent.
//! - Packages whose range has no candidate left are decided last: by then every other
//!   requirement on them is known, so a conflict report names all sides.
//! - A range with only sdists stops resolution with an error naming the package.
//!
//! Determinism: index pages and metadata are fetched in parallel (a prefetch of each
//! package's dependencies), but decisions read only the fetched data, so the thread count
//! and arrival order never change the answer.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, MarkerEnvironment, Requirement as Pep508, VersionOrUrl};
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyConstraints, DependencyProvider, PackageResolutionStatistics,
    PubGrubError, Ranges, Reporter,
};
use rayon::prelude::*;

use crate::error::{IndexError, ResolveError};
use crate::index::{normalize_name, DistFile, IndexClient};
use crate::requirements::Requirements;
use crate::target::{Tag, Target};
use crate::wheel_name::{tag_ranks, WheelName};

/// Threads fetching pages and metadata at once (network-bound; not the CPU count).
const FETCH_THREADS: usize = 12;

/// One wheel of a resolution, as the lock records it: never a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockedWheel {
    /// Normalized name (PEP 503).
    pub name: String,
    pub version: String,
    pub filename: String,
    /// Lowercase hex.
    pub sha256: String,
    /// Bytes; always known from an index, optional in a pylock.toml.
    pub size: Option<u64>,
    pub requires_python: Option<String>,
}

/// The wheels of one target, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub target: Target,
    pub packages: Vec<LockedWheel>,
}

/// A package as PubGrub sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Pkg {
    Root,
    Dist(String),
    Extra(String, String),
}

impl Pkg {
    fn name(&self) -> &str {
        match self {
            Pkg::Root => "",
            Pkg::Dist(n) | Pkg::Extra(n, _) => n,
        }
    }
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => write!(f, "the requirements"),
            Pkg::Dist(n) => write!(f, "{n}"),
            Pkg::Extra(n, e) => write!(f, "{n}[{e}]"),
        }
    }
}

/// What a version of a project offers this target.
#[derive(Debug, Clone)]
enum Choice {
    Wheel { file: DistFile, yanked: bool },
    SdistOnly,
}

type Candidates = BTreeMap<Version, Choice>;
/// A wheel's sort key among the files of its version: (yanked, tag rank, newest build
/// first, the file); the smallest wins.
type Ranked<'f> = (bool, usize, Reverse<(u64, String)>, &'f DistFile);
type Range = Ranges<Version>;

/// Resolves `requirements` for `target` through `client`.
pub fn resolve(client: &IndexClient, requirements: &Requirements, target: &Target) -> Result<Resolution, ResolveError> {
    let provider = Provider::new(client, requirements, target)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(FETCH_THREADS).build().map_err(|e| {
        ResolveError::Index(IndexError::Http { url: String::new(), message: format!("thread pool: {e}") })
    })?;
    let solution = pool.install(|| {
        provider.prefetch_all(&provider.root_deps);
        pubgrub::resolve(&provider, Pkg::Root, Version::new([0u64])).map_err(|e| provider.explain(e))
    })?;
    let mut packages = Vec::new();
    for (pkg, version) in solution {
        if let Pkg::Dist(name) = pkg {
            packages.push(provider.locked(&name, &version)?);
        }
    }
    packages.sort();
    Ok(Resolution { target: target.clone(), packages })
}

struct Provider<'a> {
    client: &'a IndexClient,
    target: &'a Target,
    tags: HashMap<Tag, usize>,
    env: MarkerEnvironment,
    python: Version,
    pre: bool,
    root_deps: DependencyConstraints<Pkg, Range>,
    constraints: BTreeMap<String, Range>,
    hashes: BTreeMap<String, BTreeSet<String>>,
    /// Who first asked for a package, for "does not exist" messages.
    required_by: Mutex<BTreeMap<String, String>>,
    candidates: Mutex<BTreeMap<String, Arc<Candidates>>>,
}

#[derive(Debug, thiserror::Error)]
enum ProviderError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

impl<'a> Provider<'a> {
    fn new(client: &'a IndexClient, req: &Requirements, target: &'a Target) -> Result<Provider<'a>, ResolveError> {
        let env = target.marker_environment();
        let mut p = Provider {
            client,
            target,
            tags: tag_ranks(&target.tags()),
            python: target.python.pep440(),
            pre: req.pre,
            root_deps: DependencyConstraints::default(),
            constraints: BTreeMap::new(),
            hashes: BTreeMap::new(),
            required_by: Mutex::new(BTreeMap::new()),
            candidates: Mutex::new(BTreeMap::new()),
            env,
        };
        for c in req.constraints.iter().filter(|c| c.requirement.evaluate_markers(&p.env, &[])) {
            let range = range_of(&c.requirement);
            let slot = p.constraints.entry(normalize_name(c.name())).or_insert_with(Ranges::full);
            *slot = slot.intersection(&range);
        }
        let mut by = BTreeMap::new();
        for r in req.requirements.iter().filter(|r| r.requirement.evaluate_markers(&p.env, &[])) {
            let name = normalize_name(r.name());
            by.entry(name.clone()).or_insert_with(|| r.origin.to_string());
            if !r.sha256.is_empty() {
                p.hashes.entry(name).or_default().extend(r.sha256.iter().cloned());
            }
        }
        let mut deps = DependencyConstraints::default();
        for r in req.requirements.iter().filter(|r| r.requirement.evaluate_markers(&p.env, &[])) {
            p.add_dep(&mut DepsBuilder(&mut deps), &r.requirement);
        }
        p.root_deps = deps;
        *p.required_by.get_mut().unwrap_or_else(|e| e.into_inner()) = by;
        Ok(p)
    }

    /// Adds a requirement's packages (the distribution and one per extra) to `deps`.
    fn add_dep(&self, deps: &mut DepsBuilder<'_>, req: &Pep508) {
        let name = normalize_name(req.name.as_ref());
        let mut range = range_of(req);
        if let Some(c) = self.constraints.get(&name) {
            range = range.intersection(c);
        }
        deps.add(Pkg::Dist(name.clone()), &range);
        for extra in &req.extras {
            deps.add(Pkg::Extra(name.clone(), extra.to_string()), &range);
        }
    }

    /// The candidates of a project, computed once from its page.
    fn candidates(&self, name: &str) -> Result<Arc<Candidates>, ResolveError> {
        if let Some(c) = self.candidates.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(c.clone());
        }
        let Some(page) = self.client.project(name)? else {
            let origin = self.required_by.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned();
            return Err(ResolveError::NotFound {
                name: name.to_string(),
                origin: origin.unwrap_or_else(|| "?".into()),
            });
        };
        let c = Arc::new(self.select_files(name, &page.files));
        self.candidates.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), c.clone());
        Ok(c)
    }

    /// Groups a page's files by version and keeps, per version, the best wheel for the
    /// target (non-yanked first, then tag priority, then build number, then name).
    fn select_files(&self, name: &str, files: &[DistFile]) -> Candidates {
        let pins = self.hashes.get(name);
        let mut fits: HashMap<&str, bool> = HashMap::new();
        let mut best: BTreeMap<Version, Ranked<'_>> = BTreeMap::new();
        let mut sdists: BTreeSet<Version> = BTreeSet::new();
        for f in files {
            if let Some(rp) = f.requires_python.as_deref() {
                if !*fits.entry(rp).or_insert_with(|| self.python_fits(Some(rp))) {
                    continue;
                }
            }
            if pins.is_some_and(|p| !f.sha256.as_ref().is_some_and(|h| p.contains(h))) {
                continue;
            }
            let Some(wheel) = WheelName::parse(&f.filename) else {
                if let Some(v) = sdist_version(name, &f.filename) {
                    sdists.insert(v);
                }
                continue;
            };
            let (Some(priority), Ok(version)) = (wheel.priority_in(&self.tags), Version::from_str(&wheel.version))
            else {
                continue;
            };
            let key = (f.yanked, priority, Reverse(wheel.build_number()), f);
            match best.get(&version) {
                Some(slot)
                    if (slot.0, slot.1, &slot.2, &slot.3.filename) <= (key.0, key.1, &key.2, &key.3.filename) => {}
                _ => {
                    best.insert(version, key);
                }
            }
        }
        let mut out: Candidates = sdists.into_iter().map(|v| (v, Choice::SdistOnly)).collect();
        for (v, (yanked, _, _, file)) in best {
            out.insert(v, Choice::Wheel { file: file.clone(), yanked });
        }
        out
    }

    fn python_fits(&self, requires: Option<&str>) -> bool {
        match requires {
            None => true,
            Some(r) => VersionSpecifiers::from_str(r).is_ok_and(|s| s.contains(&self.python)),
        }
    }

    /// The highest version in `range` with a usable wheel (see the module rules).
    fn pick(&self, candidates: &Candidates, range: &Range) -> Option<Version> {
        let pinned = range.as_singleton().is_some();
        let usable = |(v, c): &(&Version, &Choice)| {
            range.contains(v) && matches!(c, Choice::Wheel { yanked, .. } if !*yanked || pinned)
        };
        let allow_pre = self.pre || pinned;
        candidates
            .iter()
            .rev()
            .filter(usable)
            .find(|(v, _)| allow_pre || !v.any_prerelease())
            .or_else(|| candidates.iter().rev().find(usable))
            .map(|(v, _)| v.clone())
    }

    fn wheel(&self, name: &str, version: &Version) -> Result<DistFile, ResolveError> {
        match self.candidates(name)?.get(version) {
            Some(Choice::Wheel { file, .. }) => Ok(file.clone()),
            _ => Err(ResolveError::Metadata { package: name.to_string(), message: format!("no wheel for {version}") }),
        }
    }

    /// The requirements of `name` at `version` that apply to this target with `extras`.
    fn requirements_of(
        &self,
        name: &str,
        version: &Version,
        extras: &[ExtraName],
    ) -> Result<Result<Vec<Pep508>, String>, ResolveError> {
        let file = self.wheel(name, version)?;
        let meta = self.client.metadata(&file)?;
        if !self.python_fits(meta.requires_python.as_deref()) {
            return Ok(Err(format!("requires Python {}", meta.requires_python.unwrap_or_default())));
        }
        let reqs = meta
            .requirements()
            .map_err(|m| ResolveError::Metadata { package: format!("{name} {version}"), message: m })?;
        Ok(Ok(reqs.into_iter().filter(|r| r.evaluate_markers(&self.env, extras)).collect()))
    }

    fn dependencies(&self, pkg: &Pkg, version: &Version) -> Result<Dependencies<Pkg, Range, String>, ResolveError> {
        let (name, extras) = match pkg {
            Pkg::Root => return Ok(Dependencies::Available(self.root_deps.clone())),
            Pkg::Dist(n) => (n, Vec::new()),
            Pkg::Extra(n, e) => (
                n,
                vec![ExtraName::from_str(e)
                    .map_err(|err| ResolveError::Metadata { package: n.clone(), message: err.to_string() })?],
            ),
        };
        let reqs = match self.requirements_of(name, version, &extras)? {
            Ok(r) => r,
            Err(why) => return Ok(Dependencies::Unavailable(why)),
        };
        let mut deps = DependencyConstraints::default();
        if let Pkg::Extra(..) = pkg {
            deps.insert(Pkg::Dist(name.clone()), Ranges::singleton(version.clone()));
        }
        for r in &reqs {
            self.note_required_by(r, pkg, version);
            self.add_dep(&mut DepsBuilder(&mut deps), r);
        }
        deps.remove(pkg);
        if !matches!(pkg, Pkg::Extra(..)) {
            deps.remove(&Pkg::Dist(name.clone()));
        }
        self.prefetch_all(&deps);
        Ok(Dependencies::Available(deps))
    }

    fn note_required_by(&self, r: &Pep508, pkg: &Pkg, version: &Version) {
        let mut by = self.required_by.lock().unwrap_or_else(|e| e.into_inner());
        by.entry(normalize_name(r.name.as_ref())).or_insert_with(|| format!("{pkg} {version}"));
    }

    /// Fetches, in parallel, each dependency's page and the metadata of the version that
    /// will likely be picked. Only fills caches: errors come back when PubGrub asks.
    fn prefetch_all(&self, deps: &DependencyConstraints<Pkg, Range>) {
        let mut todo: Vec<(&str, &Range)> =
            deps.iter().filter(|(p, _)| matches!(p, Pkg::Dist(_))).map(|(p, r)| (p.name(), r)).collect();
        todo.sort_by(|a, b| a.0.cmp(b.0));
        todo.par_iter().for_each(|(name, range)| {
            let Ok(c) = self.candidates(name) else { return };
            if let Some(v) = self.pick(&c, range) {
                if let Ok(file) = self.wheel(name, &v) {
                    let _ = self.client.metadata(&file);
                }
            }
        });
    }

    /// The lock entry of a picked version.
    fn locked(&self, name: &str, version: &Version) -> Result<LockedWheel, ResolveError> {
        let file = self.wheel(name, version)?;
        let size = match self.client.size_of(&file)? {
            Some(s) => s,
            None => {
                return Err(ResolveError::Metadata {
                    package: name.to_string(),
                    message: format!("{}: the index gives no size", file.filename),
                })
            }
        };
        let sha256 = file.sha256.clone().ok_or_else(|| ResolveError::Metadata {
            package: name.to_string(),
            message: format!("{}: the index gives no sha256", file.filename),
        })?;
        Ok(LockedWheel {
            name: name.to_string(),
            version: version.to_string(),
            filename: file.filename,
            sha256,
            size: Some(size),
            requires_python: file.requires_python,
        })
    }

    /// The versions of `name` this target can install, for a conflict report: the
    /// newest few, and whether older ones or sdist-only ones exist.
    fn offered(&self, name: &str) -> String {
        const SHOWN: usize = 8;
        let Ok(candidates) = self.candidates(name) else { return "not on the index".into() };
        let wheels: Vec<String> = candidates
            .iter()
            .filter(|(_, c)| matches!(c, Choice::Wheel { yanked: false, .. }))
            .map(|(v, _)| v.to_string())
            .collect();
        let mut text = match wheels.len() {
            0 => "no version has a wheel for this target".to_string(),
            n if n <= SHOWN => format!("versions with a wheel for this target: {}", wheels.join(", ")),
            n => format!(
                "versions with a wheel for this target: {} older, {}",
                n - SHOWN,
                wheels[n - SHOWN..].join(", ")
            ),
        };
        let sdists = candidates.values().filter(|c| matches!(c, Choice::SdistOnly)).count();
        if sdists > 0 {
            text.push_str(&format!(" ({sdists} more with only a source distribution)"));
        }
        text
    }

    fn explain(&self, e: PubGrubError<Self>) -> ResolveError {
        match e {
            PubGrubError::NoSolution(mut tree) => {
                tree.collapse_no_versions();
                let mut packages: Vec<String> =
                    tree.packages().into_iter().filter(|p| **p != Pkg::Root).map(|p| p.name().to_string()).collect();
                packages.sort();
                packages.dedup();
                // The root is a version-less stand-in: drop the version PubGrub prints for it.
                let root = Pkg::Root.to_string();
                let mut report = DefaultStringReporter::report(&tree)
                    .replace(&format!("{root} 0"), &root)
                    .replace(&format!("{root} depends on"), &format!("{root} depend on"))
                    .replace(&format!("{root} is forbidden"), &format!("{root} cannot all be met"));
                // PubGrub's report collapses "no versions of X in range" into the step that
                // needed them; what the index offers is what the user must compare against.
                for name in &packages {
                    report.push_str(&format!("\n{name}: {}", self.offered(name)));
                }
                ResolveError::Conflict { target: self.target.describe(), packages, report }
            }
            PubGrubError::ErrorRetrievingDependencies { source: ProviderError::Resolve(e), .. } => e,
            PubGrubError::ErrorChoosingVersion { source: ProviderError::Resolve(e), .. } => e,
            PubGrubError::ErrorInShouldCancel(ProviderError::Resolve(e)) => e,
        }
    }
}

/// Inserts into a dependency map, intersecting ranges of a package named twice.
struct DepsBuilder<'m>(&'m mut DependencyConstraints<Pkg, Range>);

impl DepsBuilder<'_> {
    fn add(&mut self, pkg: Pkg, range: &Range) {
        let slot = self.0.entry(pkg).or_insert_with(Ranges::full);
        *slot = slot.intersection(range);
    }
}

fn range_of(req: &Pep508) -> Range {
    match &req.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(s)) => Ranges::from(s.clone()),
        _ => Ranges::full(),
    }
}

/// The version of an sdist file name (`name-1.2.tar.gz`, `name-1.2.zip`).
fn sdist_version(name: &str, filename: &str) -> Option<Version> {
    let stem = filename.strip_suffix(".tar.gz").or_else(|| filename.strip_suffix(".zip"))?;
    let (n, v) = stem.rsplit_once('-')?;
    (normalize_name(n) == name).then(|| Version::from_str(v).ok()).flatten()
}

impl DependencyProvider for Provider<'_> {
    type P = Pkg;
    type V = Version;
    type VS = Range;
    type M = String;
    type Err = ProviderError;
    /// (has a usable wheel in range, pinned, conflicts): higher is decided first.
    type Priority = (bool, bool, u32);

    fn prioritize(&self, pkg: &Pkg, range: &Range, stats: &PackageResolutionStatistics) -> Self::Priority {
        let usable = match pkg {
            Pkg::Root => true,
            _ => self.candidates(pkg.name()).ok().is_some_and(|c| self.pick(&c, range).is_some()),
        };
        (usable, range.as_singleton().is_some(), stats.conflict_count())
    }

    fn choose_version(&self, pkg: &Pkg, range: &Range) -> Result<Option<Version>, ProviderError> {
        if *pkg == Pkg::Root {
            return Ok(range.as_singleton().cloned());
        }
        let candidates = self.candidates(pkg.name())?;
        if let Some(v) = self.pick(&candidates, range) {
            return Ok(Some(v));
        }
        let sdist = candidates.iter().rev().find(|(v, c)| range.contains(v) && matches!(c, Choice::SdistOnly));
        if let Some((v, _)) = sdist {
            return Err(ResolveError::SdistOnly {
                name: pkg.name().to_string(),
                version: v.to_string(),
                target: self.target.describe(),
            }
            .into());
        }
        Ok(None)
    }

    fn get_dependencies(
        &self,
        pkg: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Range, String>, ProviderError> {
        Ok(self.dependencies(pkg, version)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdist_versions() {
        assert_eq!(sdist_version("numpy", "numpy-0.9.8.tar.gz"), Some(Version::from_str("0.9.8").unwrap()));
        assert_eq!(
            sdist_version("scikit-learn", "scikit_learn-1.5.0.tar.gz"),
            Some(Version::from_str("1.5.0").unwrap())
        );
        assert_eq!(sdist_version("numpy", "other-1.0.tar.gz"), None);
        assert_eq!(sdist_version("numpy", "numpy-1.0.exe"), None);
    }
}
