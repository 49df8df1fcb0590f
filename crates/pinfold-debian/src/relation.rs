//! Debian relation fields (Depends, Pre-Depends, Provides) and version comparison.
//!
//! Why hand-written: a binary package's relation fields are a small grammar
//! (`name[:arch] [(op version)]`, `|` between alternatives, `,` between relations);
//! the crates that parse them come with a lossless syntax tree we do not need. Version
//! ordering is not hand-written: it is dpkg's algorithm from the `debversion` crate.
//! Bounded: a field has at most `MAX_RELATIONS` relations.

use std::cmp::Ordering;
use std::fmt;

pub use debversion::Version;

/// Bound on the relations (and alternatives) of one field.
pub const MAX_RELATIONS: usize = 10_000;

/// Parses a Debian version (epoch, upstream, revision).
pub fn parse_version(text: &str) -> Result<Version, String> {
    text.trim().parse::<Version>().map_err(|e| format!("bad version {text:?}: {e}"))
}

/// A version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        // `<` and `>` are dpkg's obsolete spellings of `<=` and `>=`.
        Some(match s {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        })
    }

    /// Whether `candidate OP wanted` holds.
    pub fn holds(self, candidate: &Version, wanted: &Version) -> bool {
        let ord = candidate.cmp(wanted);
        match self {
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Eq => ord == Ordering::Equal,
            Op::Ge => ord != Ordering::Less,
            Op::Gt => ord == Ordering::Greater,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

/// The architecture qualifier of a relation (`python3:any`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchQual {
    None,
    Any,
    Native,
    Arch(String),
}

/// One alternative: a package name, an optional qualifier and version relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom {
    pub name: String,
    pub arch: ArchQual,
    pub version: Option<(Op, Version)>,
}

impl Atom {
    /// Whether `version` (of a package or a versioned Provides) satisfies the relation;
    /// an unversioned Provides (`None`) satisfies only an unversioned relation.
    pub fn version_matches(&self, version: Option<&Version>) -> bool {
        match (&self.version, version) {
            (None, _) => true,
            (Some((op, wanted)), Some(v)) => op.holds(v, wanted),
            (Some(_), None) => false,
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.arch {
            ArchQual::None => {}
            ArchQual::Any => f.write_str(":any")?,
            ArchQual::Native => f.write_str(":native")?,
            ArchQual::Arch(a) => write!(f, ":{a}")?,
        }
        if let Some((op, v)) = &self.version {
            write!(f, " ({} {v})", op.as_str())?;
        }
        Ok(())
    }
}

/// A relation: alternatives of which one must hold.
pub type Relation = Vec<Atom>;

/// Formats alternatives as `a | b (>= 1)`.
pub fn show_relation(rel: &Relation) -> String {
    rel.iter().map(Atom::to_string).collect::<Vec<_>>().join(" | ")
}

/// Parses a Depends-like field.
pub fn parse_relations(text: &str) -> Result<Vec<Relation>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut alts = Vec::new();
        for alt in part.split('|') {
            alts.push(parse_atom(alt.trim())?);
        }
        out.push(alts);
        if out.len() > MAX_RELATIONS {
            return Err(format!("more than {MAX_RELATIONS} relations"));
        }
    }
    Ok(out)
}

/// Parses a Provides field: names, each with an optional `(= version)`.
pub fn parse_provides(text: &str) -> Result<Vec<(String, Option<Version>)>, String> {
    let mut out = Vec::new();
    for rel in parse_relations(text)? {
        let [atom] = <[Atom; 1]>::try_from(rel).map_err(|_| "alternatives in Provides".to_string())?;
        match atom.version {
            None => out.push((atom.name, None)),
            Some((Op::Eq, v)) => out.push((atom.name, Some(v))),
            Some(_) => return Err(format!("Provides {} with a relation other than =", atom.name)),
        }
    }
    Ok(out)
}

fn parse_atom(text: &str) -> Result<Atom, String> {
    // Architecture lists and build profiles only appear in source packages; a binary
    // index has none, so they are cut off rather than evaluated.
    let text = match text.find(')') {
        Some(close) => &text[..=close],
        None => text.split(['[', '<']).next().unwrap_or("").trim(),
    };
    let (head, version) = match text.split_once('(') {
        Some((head, rest)) => (head.trim(), Some(parse_constraint(rest)?)),
        None => (text, None),
    };
    let (name, arch) = match head.split_once(':') {
        Some((n, "any")) => (n, ArchQual::Any),
        Some((n, "native")) => (n, ArchQual::Native),
        Some((n, a)) => (n, ArchQual::Arch(a.to_string())),
        None => (head, ArchQual::None),
    };
    if !valid_name(name) {
        return Err(format!("bad package name {:?}", crate::deb822::truncate(name)));
    }
    Ok(Atom { name: name.to_string(), arch, version })
}

fn parse_constraint(rest: &str) -> Result<(Op, Version), String> {
    let inner = rest.strip_suffix(')').ok_or_else(|| format!("unclosed `(` in {rest:?}"))?.trim();
    let split = inner.find(|c: char| !"<>=".contains(c)).unwrap_or(inner.len());
    let op = Op::parse(&inner[..split]).ok_or_else(|| format!("bad relation operator in ({inner})"))?;
    Ok((op, parse_version(&inner[split..])?))
}

/// Debian package names: lowercase letters, digits, `+ - .`, starting alphanumeric.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        parse_version(s).unwrap()
    }

    #[test]
    fn version_order_is_dpkgs() {
        let ascending = [
            "0.9",
            "1.0~rc1",
            "1.0",
            "1.0-0.1",
            "1.0-1",
            "1.0-1+b1",
            "1.0-1+deb12u1",
            "1.0-2",
            "1.0a",
            "1.0.1",
            "1.10",
            "2",
            "1:0.1",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0"), v("0:1.0"));
        assert_eq!(v("1.0-0"), v("1.0"));
        assert!(v("3.11.2-6+deb12u6") > v("3.11.2-6+deb12u5"));
        assert!(v("1.0~~") < v("1.0~"));
        assert!(v("1.0+dfsg") > v("1.0"));
        assert!(v("2.36-9+deb12u10") > v("2.36-9+deb12u9"));
    }

    #[test]
    fn operators() {
        assert!(Op::Lt.holds(&v("1"), &v("2")));
        assert!(!Op::Lt.holds(&v("2"), &v("2")));
        assert!(Op::Le.holds(&v("2"), &v("2")));
        assert!(Op::Eq.holds(&v("0:2"), &v("2")));
        assert!(Op::Ge.holds(&v("2.1"), &v("2")));
        assert!(Op::Gt.holds(&v("2.1"), &v("2")));
        assert!(!Op::Gt.holds(&v("2"), &v("2")));
    }

    #[test]
    fn relations_parse() {
        let rels =
            parse_relations("libc6 (>= 2.34), python3:any (>= 3.11~), a | b:amd64 (<< 2) , c (= 1:2.0-1)").unwrap();
        assert_eq!(rels.len(), 4);
        assert_eq!(rels[0][0].name, "libc6");
        assert_eq!(rels[0][0].version.as_ref().unwrap().0, Op::Ge);
        assert_eq!(rels[1][0].arch, ArchQual::Any);
        assert_eq!(rels[2].len(), 2);
        assert_eq!(rels[2][1].arch, ArchQual::Arch("amd64".into()));
        assert_eq!(show_relation(&rels[2]), "a | b:amd64 (<< 2)");
        assert_eq!(rels[3][0].to_string(), "c (= 1:2.0-1)");
        assert_eq!(parse_relations("x (>=1.0)").unwrap()[0][0].to_string(), "x (>= 1.0)");
        assert_eq!(parse_relations("x (> 1.0)").unwrap()[0][0].version.as_ref().unwrap().0, Op::Ge);
        assert_eq!(parse_relations("x [amd64] <!nocheck>").unwrap()[0][0].to_string(), "x");
        assert_eq!(parse_relations("x (<< 2) [amd64]").unwrap()[0][0].to_string(), "x (<< 2)");
    }

    #[test]
    fn bad_relations_are_errors() {
        assert!(parse_relations("libc6 (>= 2.34").is_err());
        assert!(parse_relations("libc6 (~ 2)").is_err());
        assert!(parse_relations("Bad_Name").is_err());
        assert!(parse_relations("x | ").is_err());
    }

    #[test]
    fn provides_parse() {
        let p = parse_provides("python3-numpy-abi9, python3.11-numpy (= 1:1.24.2-1)").unwrap();
        assert_eq!(p[0], ("python3-numpy-abi9".to_string(), None));
        assert_eq!(p[1].1, Some(v("1:1.24.2-1")));
        assert!(parse_provides("a | b").is_err());
        assert!(parse_provides("a (>= 1)").is_err());
    }
}
