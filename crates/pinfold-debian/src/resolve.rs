//! Resolution: from package names to the exact files of their dependency closure, for
//! one architecture.
//!
//! Why a resolver of our own: apt's needs a package manager, a root and a dpkg
//! database; what a build needs is a pure function from signed indexes to a sorted list
//! of files. It follows apt's choices where they matter for a fresh image:
//! - the candidate of a name is its highest version over all suites (several suites:
//!   the highest wins; on a tie, the suite given first);
//! - Depends and Pre-Depends are followed, Recommends and Suggests are not;
//! - of alternatives `a | b`, one already chosen is kept, else the first that can be
//!   had; a virtual name is satisfied by a chosen provider, else by the provider with
//!   the most important Priority, then the smallest name (deterministic, where apt's
//!   choice depends on its cache order);
//! - versioned relations use dpkg's ordering, versioned Provides satisfy versioned
//!   relations, an unversioned Provides only unversioned ones;
//! - the image has one architecture, so Multi-Arch matters for `:any` (the provider must
//!   be `allowed` or `foreign`, as in dpkg) and `:ARCH` qualifiers; `all` counts as the
//!   architecture's own.
//!
//! It is greedy, not a SAT solver: a name, once chosen, keeps its version, and a later
//! relation that wants another version is an error naming both chains. Conflicts and
//! Breaks are checked over the closure it chose: a chosen package that conflicts with
//! or breaks another chosen one is an error naming both and how each was reached (no
//! backtracking: a closure from one suite set is co-installable in practice, so a
//! clash means the request itself asks for both).
//! Same inputs give the same output, sorted by name: the queue is first-in-first-out
//! from the sorted request, and every map is ordered.

use crate::error::{Error, Result};
use crate::index::{IndexPackage, MultiArch, PackagesIndex};
use crate::relation::{parse_relations, parse_version, show_relation, ArchQual, Atom, Relation, Version};
use std::collections::{BTreeMap, VecDeque};

/// Which base packages join the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Base {
    /// Only the named packages and their dependencies.
    #[default]
    None,
    /// Also every `Essential: yes` package (what dpkg assumes is always there).
    Essential,
    /// Also every `Priority: required` package (debootstrap's minbase).
    Required,
}

/// One package of the lock: what to fetch and how to check it — never a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Path relative to the repository base (`pool/main/p/python3.11/...deb`).
    pub filename: String,
    pub sha256: String,
    pub size: u64,
}

impl LockedPackage {
    fn from_index(p: &IndexPackage) -> LockedPackage {
        LockedPackage {
            name: p.name.clone(),
            version: p.version_text.clone(),
            architecture: p.architecture.clone(),
            filename: p.filename.clone(),
            sha256: p.sha256.clone(),
            size: p.size,
        }
    }
}

/// Resolves `requested` (names, or `name=version`) for `arch` over the indexes of that
/// architecture (others are ignored), in suite priority order.
pub fn resolve(indexes: &[PackagesIndex], arch: &str, requested: &[String], base: Base) -> Result<Vec<LockedPackage>> {
    let universe = Universe::new(indexes, arch);
    let mut state = State { universe: &universe, chosen: BTreeMap::new(), queue: VecDeque::new() };
    let mut names: Vec<&String> = requested.iter().collect();
    names.sort();
    names.dedup();
    for name in names {
        state.request(name)?;
    }
    for pkg in universe.base(base) {
        state.choose(pkg, None);
    }
    while let Some(name) = state.queue.pop_front() {
        state.follow(&name)?;
    }
    state.check_conflicts()?;
    Ok(state.chosen.values().map(|c| LockedPackage::from_index(c.pkg)).collect())
}

/// The packages of one architecture, by name and by what they provide.
struct Universe<'a> {
    arch: String,
    suites: String,
    /// Name → its versions, highest first (ties: the index given first).
    by_name: BTreeMap<&'a str, Vec<&'a IndexPackage>>,
    /// Virtual name → (provider, provided version).
    providers: BTreeMap<&'a str, Vec<(&'a IndexPackage, Option<&'a Version>)>>,
}

impl<'a> Universe<'a> {
    fn new(indexes: &'a [PackagesIndex], arch: &str) -> Self {
        let mut by_name: BTreeMap<&str, Vec<&IndexPackage>> = BTreeMap::new();
        let mut providers: BTreeMap<&str, Vec<_>> = BTreeMap::new();
        let mut suites: Vec<&str> = Vec::new();
        for index in indexes.iter().filter(|i| i.arch == arch) {
            if !suites.contains(&index.suite.as_str()) {
                suites.push(&index.suite);
            }
            for p in index.packages.iter().filter(|p| p.architecture == arch || p.architecture == "all") {
                by_name.entry(&p.name).or_default().push(p);
                for (virt, version) in &p.provides {
                    providers.entry(virt.as_str()).or_default().push((p, version.as_ref()));
                }
            }
        }
        for versions in by_name.values_mut() {
            versions.sort_by(|a, b| b.version.cmp(&a.version)); // stable: index order on ties
        }
        Universe { arch: arch.to_string(), suites: suites.join(", "), by_name, providers }
    }

    /// The candidates (highest version) of the base set, by name.
    fn base(&self, base: Base) -> Vec<&'a IndexPackage> {
        let wanted = |p: &IndexPackage| match base {
            Base::None => false,
            Base::Essential => p.essential,
            Base::Required => p.essential || p.priority.as_deref() == Some("required"),
        };
        self.by_name.values().map(|v| v[0]).filter(|p| wanted(p)).collect()
    }

    /// Whether `pkg` may satisfy `atom`'s architecture qualifier (dpkg's rule).
    fn arch_ok(&self, pkg: &IndexPackage, atom: &Atom) -> bool {
        if pkg.multi_arch == MultiArch::Foreign {
            return true;
        }
        match &atom.arch {
            ArchQual::None | ArchQual::Native => true,
            ArchQual::Any => pkg.multi_arch == MultiArch::Allowed,
            ArchQual::Arch(a) => *a == self.arch,
        }
    }

    /// The best real package named by `atom` that satisfies it.
    fn real_candidate(&self, atom: &Atom) -> Option<&'a IndexPackage> {
        let versions = self.by_name.get(atom.name.as_str())?;
        versions.iter().copied().find(|p| atom.version_matches(Some(&p.version)) && self.arch_ok(p, atom))
    }

    /// Providers of `atom` that satisfy it, best first (Priority, then name, then
    /// version): each provider name once.
    fn provider_candidates(&self, atom: &Atom) -> Vec<&'a IndexPackage> {
        let Some(list) = self.providers.get(atom.name.as_str()) else { return Vec::new() };
        let mut found: Vec<&IndexPackage> = list
            .iter()
            .filter(|(p, v)| atom.version_matches(*v) && self.arch_ok(p, atom))
            .filter(|(p, _)| self.by_name[p.name.as_str()][0].version == p.version)
            .map(|(p, _)| *p)
            .collect();
        found.sort_by(|a, b| (priority_rank(a), &a.name).cmp(&(priority_rank(b), &b.name)));
        found.dedup_by(|a, b| a.name == b.name);
        found
    }
}

/// Lower is more important; unknown priorities last.
fn priority_rank(p: &IndexPackage) -> u8 {
    match p.priority.as_deref() {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        Some("extra") => 4,
        _ => 5,
    }
}

/// A chosen package and why: the package and relation that pulled it in.
struct Chosen<'a> {
    pkg: &'a IndexPackage,
    because: Option<(String, String)>,
}

struct State<'u, 'a> {
    universe: &'u Universe<'a>,
    chosen: BTreeMap<&'a str, Chosen<'a>>,
    queue: VecDeque<String>,
}

impl<'a> State<'_, 'a> {
    fn choose(&mut self, pkg: &'a IndexPackage, because: Option<(String, String)>) {
        if !self.chosen.contains_key(pkg.name.as_str()) {
            self.chosen.insert(&pkg.name, Chosen { pkg, because });
            self.queue.push_back(pkg.name.clone());
        }
    }

    /// Chooses a requested `name` or `name=version`.
    fn request(&mut self, spec: &str) -> Result<()> {
        let u = self.universe;
        let (name, version) = match spec.split_once('=') {
            Some((n, v)) => (n.trim(), Some(parse_version(v).map_err(|m| self.unknown(spec, m))?)),
            None => (spec.trim(), None),
        };
        let atom = Atom {
            name: name.to_string(),
            arch: ArchQual::None,
            version: version.map(|v| (crate::relation::Op::Eq, v)),
        };
        if let Some(p) = u.real_candidate(&atom) {
            self.choose(p, None);
            return Ok(());
        }
        match u.provider_candidates(&atom).as_slice() {
            [only] => {
                self.choose(only, None);
                Ok(())
            }
            [] => Err(self.unknown(spec, String::new())),
            many => Err(Error::AmbiguousVirtual {
                name: spec.to_string(),
                arch: u.arch.clone(),
                providers: many.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    fn unknown(&self, spec: &str, detail: String) -> Error {
        let name = if detail.is_empty() { spec.to_string() } else { format!("{spec} ({detail})") };
        Error::UnknownPackage { name, arch: self.universe.arch.clone(), suites: self.universe.suites.clone() }
    }

    /// Satisfies the Pre-Depends and Depends of chosen package `name`.
    fn follow(&mut self, name: &str) -> Result<()> {
        let pkg = self.chosen[name].pkg;
        for field in [&pkg.pre_depends, &pkg.depends].into_iter().flatten() {
            let relations = parse_relations(field).map_err(|m| Error::Unsatisfiable {
                arch: self.universe.arch.clone(),
                chain: format!("{} {}: bad relation field: {m}", pkg.name, pkg.version_text),
            })?;
            for rel in &relations {
                self.satisfy(pkg, rel)?;
            }
        }
        Ok(())
    }

    /// Satisfies one relation of `pkg`: by a chosen package, else by choosing one.
    fn satisfy(&mut self, pkg: &'a IndexPackage, rel: &Relation) -> Result<()> {
        if rel.iter().any(|atom| self.satisfied_by_chosen(atom)) {
            return Ok(());
        }
        let because = Some((pkg.name.clone(), show_relation(rel)));
        for atom in rel {
            if let Some(candidate) = self.candidate(atom) {
                self.choose(candidate, because);
                return Ok(());
            }
        }
        Err(self.unsatisfiable(pkg, rel))
    }

    /// A package able to satisfy `atom` whose name is not yet chosen (a chosen name
    /// keeps its version).
    fn candidate(&self, atom: &Atom) -> Option<&'a IndexPackage> {
        let free = |p: &&IndexPackage| !self.chosen.contains_key(p.name.as_str());
        let real = self.universe.real_candidate(atom).filter(free);
        real.or_else(|| self.universe.provider_candidates(atom).into_iter().find(free))
    }

    fn satisfied_by_chosen(&self, atom: &Atom) -> bool {
        let u = self.universe;
        let real = self
            .chosen
            .get(atom.name.as_str())
            .is_some_and(|c| atom.version_matches(Some(&c.pkg.version)) && u.arch_ok(c.pkg, atom));
        real || self.chosen.values().any(|c| {
            c.pkg.provides.iter().any(|(v, ver)| *v == atom.name && atom.version_matches(ver.as_ref()))
                && u.arch_ok(c.pkg, atom)
        })
    }

    /// Whether a chosen package conflicts with or breaks another chosen one (its own
    /// name and what it provides excepted, as dpkg excepts them).
    fn check_conflicts(&self) -> Result<()> {
        for chosen in self.chosen.values() {
            let pkg = chosen.pkg;
            for (field, kind) in [(&pkg.conflicts, "conflicts with"), (&pkg.breaks, "breaks")] {
                let Some(field) = field else { continue };
                let relations = parse_relations(field).map_err(|m| Error::Unsatisfiable {
                    arch: self.universe.arch.clone(),
                    chain: format!("{} {}: bad relation field: {m}", pkg.name, pkg.version_text),
                })?;
                for atom in relations.iter().flatten() {
                    let clash = self.chosen.values().map(|c| c.pkg).find(|other| {
                        other.name != pkg.name
                            && ((other.name == atom.name && atom.version_matches(Some(&other.version)))
                                || other
                                    .provides
                                    .iter()
                                    .any(|(v, ver)| *v == atom.name && atom.version_matches(ver.as_ref())))
                    });
                    if let Some(other) = clash {
                        let chain = format!(
                            "{} {} (chosen as: {}) {kind} {}, and {} {} is chosen too (as: {})",
                            pkg.name,
                            pkg.version_text,
                            describe(&self.chain(&pkg.name)),
                            show_relation(&vec![atom.clone()]),
                            other.name,
                            other.version_text,
                            describe(&self.chain(&other.name)),
                        );
                        return Err(Error::Unsatisfiable { arch: self.universe.arch.clone(), chain });
                    }
                }
            }
        }
        Ok(())
    }

    /// The error for `pkg`'s relation `rel`, with the chain that led to `pkg`.
    fn unsatisfiable(&self, pkg: &IndexPackage, rel: &Relation) -> Error {
        let mut reason = "which no suite provides".to_string();
        for atom in rel {
            if let Some(c) = self.chosen.get(atom.name.as_str()) {
                let how = describe(&self.chain(&c.pkg.name));
                reason = format!("which {} {} (chosen as: {how}) does not satisfy", c.pkg.name, c.pkg.version_text);
            }
        }
        let mut links = self.chain(&pkg.name);
        links.push(show_relation(rel));
        let chain = format!("{}, {reason}", describe(&links));
        Error::Unsatisfiable { arch: self.universe.arch.clone(), chain }
    }

    /// How `name` was reached: the requested root, then each relation followed.
    fn chain(&self, name: &str) -> Vec<String> {
        let mut links = Vec::new();
        let mut current = name;
        while let Some((parent, relation)) = self.chosen.get(current).and_then(|c| c.because.as_ref()) {
            if links.len() > self.chosen.len() {
                break; // cannot happen (parents are chosen first); bounded anyway
            }
            links.push(relation.clone());
            current = parent;
        }
        links.push(current.to_string());
        links.reverse();
        links
    }
}

/// `root depends on a (>= 1), which depends on b` from `[root, a (>= 1), b]`.
fn describe(links: &[String]) -> String {
    let (root, relations) = links.split_first().expect("a chain has a root");
    let steps: Vec<String> = relations.iter().map(|r| format!("depends on {r}")).collect();
    match steps.is_empty() {
        true => root.clone(),
        false => format!("{root} {}", steps.join(", which ")),
    }
}

#[cfg(test)]
mod tests;
