//! Wheel file names (PEP 427 / the binary distribution format): what a file is for.
//!
//! Why: the resolver picks files by their tags before downloading anything, and the
//! installer checks that a wheel's `.dist-info` matches its name. Parsing here is a split
//! on `-`, so it is written by hand: no crate is needed for five fields.

use std::collections::HashMap;

use crate::target::Tag;

/// Each accepted tag's rank (its index in `accepted`), for lookups only: the map is never
/// iterated, so its order cannot reach an output.
pub fn tag_ranks(accepted: &[Tag]) -> HashMap<Tag, usize> {
    let mut out = HashMap::with_capacity(accepted.len());
    for (i, t) in accepted.iter().enumerate() {
        out.entry(t.clone()).or_insert(i);
    }
    out
}

/// The fields of `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    /// The distribution name as written (underscores for `-`).
    pub name: String,
    pub version: String,
    pub build: Option<String>,
    /// Compressed tag sets: `cp311`, `py2.py3`, …
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

impl WheelName {
    /// Parses a wheel file name; `None` for anything else (sdists, eggs, …).
    pub fn parse(filename: &str) -> Option<WheelName> {
        let stem = filename.strip_suffix(".whl")?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, tags) = match parts.as_slice() {
            [n, v, p, a, pl] => (*n, *v, None, [*p, *a, *pl]),
            [n, v, b, p, a, pl] => (*n, *v, Some(b.to_string()), [*p, *a, *pl]),
            _ => return None,
        };
        if name.is_empty() || version.is_empty() || tags.iter().any(|t| t.is_empty()) {
            return None;
        }
        let split = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        Some(WheelName {
            name: name.to_string(),
            version: version.to_string(),
            build,
            python: split(tags[0]),
            abi: split(tags[1]),
            platform: split(tags[2]),
        })
    }

    /// The tags this file carries, expanded from the compressed sets.
    pub fn tags(&self) -> impl Iterator<Item = Tag> + '_ {
        self.python.iter().flat_map(move |py| {
            self.abi.iter().flat_map(move |abi| {
                self.platform.iter().map(move |pl| Tag { python: py.clone(), abi: abi.clone(), platform: pl.clone() })
            })
        })
    }

    /// The index of this wheel's best tag in `accepted` (lower is better), or `None` when
    /// the wheel does not fit.
    pub fn priority(&self, accepted: &[Tag]) -> Option<usize> {
        self.tags().filter_map(|t| accepted.iter().position(|a| *a == t)).min()
    }

    /// Like [`WheelName::priority`], with a precomputed tag → rank map (see
    /// [`tag_ranks`]): index pages list thousands of wheels.
    pub fn priority_in(&self, ranks: &HashMap<Tag, usize>) -> Option<usize> {
        self.tags().filter_map(|t| ranks.get(&t).copied()).min()
    }

    /// The build number, for ordering wheels of equal tags (PEP 427: a larger one wins).
    pub fn build_number(&self) -> (u64, String) {
        let Some(b) = &self.build else { return (0, String::new()) };
        let digits: String = b.chars().take_while(char::is_ascii_digit).collect();
        (digits.parse().unwrap_or(0), b[digits.len()..].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;

    #[test]
    fn parses_compressed_tags_and_builds() {
        let w = WheelName::parse("numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl").unwrap();
        assert_eq!(w.name, "numpy");
        assert_eq!(w.platform.len(), 2);
        let b = WheelName::parse("foo-1.0-2x-py2.py3-none-any.whl").unwrap();
        assert_eq!(b.build_number(), (2, "x".to_string()));
        assert_eq!(b.tags().count(), 2);
        assert!(WheelName::parse("numpy-2.1.0.tar.gz").is_none());
        assert!(WheelName::parse("a-b.whl").is_none());
    }

    #[test]
    fn priority_follows_the_target() {
        let amd = Target::new("3.11", "linux/amd64", "2.36").unwrap().tags();
        let arm = Target::new("3.11", "linux/arm64", "2.36").unwrap().tags();
        let native = WheelName::parse("x-1-cp311-cp311-manylinux_2_28_x86_64.whl").unwrap();
        let pure = WheelName::parse("x-1-py3-none-any.whl").unwrap();
        let too_new = WheelName::parse("x-1-cp311-cp311-manylinux_2_39_x86_64.whl").unwrap();
        let other_py = WheelName::parse("x-1-cp312-cp312-manylinux_2_17_x86_64.whl").unwrap();
        assert!(native.priority(&amd).unwrap() < pure.priority(&amd).unwrap());
        assert!(native.priority(&arm).is_none());
        assert!(pure.priority(&arm).is_some());
        assert!(too_new.priority(&amd).is_none());
        assert!(other_py.priority(&amd).is_none());
        let ranks = tag_ranks(&amd);
        for w in [&native, &pure, &too_new, &other_py] {
            assert_eq!(w.priority_in(&ranks), w.priority(&amd));
        }
    }
}
