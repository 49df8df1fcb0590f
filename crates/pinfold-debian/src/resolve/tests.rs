//! The resolver on small synthetic indexes: each test shows one rule of the module
//! header.

use super::*;
use crate::index::parse_packages;

/// An index from stanzas written as `Package|Version|Arch|extra fields (\n separated)`.
fn index(suite: &str, arch: &str, stanzas: &[&str]) -> PackagesIndex {
    let mut text = String::new();
    for s in stanzas {
        let mut parts = s.splitn(4, '|');
        let (name, version, a) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let extra = parts.next().unwrap_or("");
        text.push_str(&format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {a}\nFilename: pool/main/{name}_{version}_{a}.deb\n\
             Size: 1\nSHA256: {}\n{extra}{}\n",
            "a".repeat(64),
            if extra.is_empty() || extra.ends_with('\n') { "" } else { "\n" }
        ));
    }
    PackagesIndex {
        suite: suite.into(),
        component: "main".into(),
        arch: arch.into(),
        path: String::new(),
        sha256: String::new(),
        packages: parse_packages(text.as_bytes(), "test").unwrap(),
    }
}

fn names(locked: &[LockedPackage]) -> Vec<String> {
    locked.iter().map(|p| format!("{}={}", p.name, p.version)).collect()
}

fn req(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn closure_sorted_with_highest_version_across_suites() {
    let main =
        index("bookworm", "amd64", &["app|1.0|amd64|Depends: libz (>= 1.2), data", "libz|1.2|amd64", "data|1|all"]);
    let updates = index("bookworm-updates", "amd64", &["libz|1.3|amd64"]);
    let out = resolve(&[main, updates], "amd64", &req(&["app"]), Base::None).unwrap();
    assert_eq!(names(&out), ["app=1.0", "data=1", "libz=1.3"]);
    assert_eq!(out[2].filename, "pool/main/libz_1.3_amd64.deb");
}

#[test]
fn versions_relations_pick_the_best_that_fits() {
    let i = index(
        "s",
        "amd64",
        &["app|1|amd64|Pre-Depends: lib (<< 2.0)", "lib|2.0|amd64", "lib|1.5|amd64", "lib|1.0|amd64"],
    );
    let out = resolve(&[i], "amd64", &req(&["app"]), Base::None).unwrap();
    assert_eq!(names(&out), ["app=1", "lib=1.5"]);
}

#[test]
fn alternatives_prefer_a_chosen_one_then_the_first() {
    let i = index(
        "s",
        "amd64",
        &["app|1|amd64|Depends: mawk | gawk", "other|1|amd64|Depends: gawk", "mawk|1|amd64", "gawk|1|amd64"],
    );
    let out = resolve(std::slice::from_ref(&i), "amd64", &req(&["app"]), Base::None).unwrap();
    assert_eq!(names(&out), ["app=1", "mawk=1"]);
    let out = resolve(&[i], "amd64", &req(&["app", "gawk"]), Base::None).unwrap();
    assert_eq!(names(&out), ["app=1", "gawk=1"]);
}

#[test]
fn virtual_and_versioned_provides() {
    let i = index(
        "s",
        "amd64",
        &[
            "app|1|amd64|Depends: mail-transport-agent, abi (= 9)",
            "exim|1|amd64|Provides: mail-transport-agent\nPriority: optional",
            "postfix|1|amd64|Provides: mail-transport-agent\nPriority: important",
            "numpy|1|amd64|Provides: abi (= 9)",
            "oldnumpy|1|amd64|Provides: abi (= 8)",
        ],
    );
    let out = resolve(std::slice::from_ref(&i), "amd64", &req(&["app"]), Base::None).unwrap();
    assert_eq!(names(&out), ["app=1", "numpy=1", "postfix=1"]);
    let err = resolve(&[i], "amd64", &req(&["mail-transport-agent"]), Base::None).unwrap_err();
    assert!(err.to_string().contains("provided by postfix, exim"), "{err}");
}

#[test]
fn unversioned_provides_do_not_satisfy_versioned_relations() {
    let i = index("s", "amd64", &["app|1|amd64|Depends: v (>= 1)", "p|1|amd64|Provides: v"]);
    let err = resolve(&[i], "amd64", &req(&["app"]), Base::None).unwrap_err();
    assert!(err.to_string().contains("app depends on v (>= 1), which no suite provides"), "{err}");
}

#[test]
fn any_qualifier_follows_multi_arch() {
    let ok = index("s", "amd64", &["app|1|amd64|Depends: python3:any", "python3|3|amd64|Multi-Arch: allowed"]);
    assert_eq!(resolve(&[ok], "amd64", &req(&["app"]), Base::None).unwrap().len(), 2);
    let foreign = index("s", "amd64", &["app|1|amd64|Depends: perl:any", "perl|5|amd64|Multi-Arch: foreign"]);
    assert_eq!(resolve(&[foreign], "amd64", &req(&["app"]), Base::None).unwrap().len(), 2);
    let no = index("s", "amd64", &["app|1|amd64|Depends: tool:any", "tool|1|amd64"]);
    let err = resolve(&[no], "amd64", &req(&["app"]), Base::None).unwrap_err();
    assert!(err.to_string().contains("tool:any"), "{err}");
}

#[test]
fn other_architectures_are_ignored_and_all_is_native() {
    let amd = index("s", "amd64", &["app|1|amd64|Depends: lib, doc", "lib|1|amd64", "doc|1|all"]);
    let arm = index("s", "arm64", &["app|1|arm64|Depends: lib, doc", "lib|1|arm64", "doc|1|all"]);
    let out = resolve(&[amd, arm], "arm64", &req(&["app"]), Base::None).unwrap();
    let arches: Vec<_> = out.iter().map(|p| p.architecture.as_str()).collect();
    assert_eq!(arches, ["arm64", "all", "arm64"]);
}

#[test]
fn unsatisfiable_names_the_chain() {
    let i = index(
        "bookworm",
        "amd64",
        &[
            "python3|3.11|amd64|Depends: python3.11 (>= 3.11)",
            "python3.11|3.11.2|amd64|Depends: libpython3.11-stdlib (= 3.11.2)",
            "libpython3.11-stdlib|3.11.1|amd64",
        ],
    );
    let err = resolve(&[i], "amd64", &req(&["python3"]), Base::None).unwrap_err().to_string();
    assert_eq!(
        err,
        "for amd64: python3 depends on python3.11 (>= 3.11), which depends on libpython3.11-stdlib (= 3.11.2), which no suite provides"
    );
}

#[test]
fn a_chosen_version_that_does_not_fit_is_named() {
    let i =
        index("s", "amd64", &["a|1|amd64|Depends: lib", "b|1|amd64|Depends: lib (<< 2)", "lib|2|amd64", "lib|1|amd64"]);
    let err = resolve(&[i], "amd64", &req(&["a", "b"]), Base::None).unwrap_err().to_string();
    assert!(
        err.contains("b depends on lib (<< 2), which lib 2 (chosen as: a depends on lib) does not satisfy"),
        "{err}"
    );
}

#[test]
fn unknown_packages_are_named() {
    let i = index("bookworm", "amd64", &["a|1|amd64"]);
    let err = resolve(&[i], "amd64", &req(&["a", "nosuch"]), Base::None).unwrap_err().to_string();
    assert_eq!(err, "package nosuch does not exist for amd64 in bookworm");
}

#[test]
fn pinned_request_versions() {
    let i = index("s", "amd64", &["a|2|amd64", "a|1|amd64"]);
    assert_eq!(names(&resolve(std::slice::from_ref(&i), "amd64", &req(&["a=1"]), Base::None).unwrap()), ["a=1"]);
    assert!(resolve(&[i], "amd64", &req(&["a=3"]), Base::None).is_err());
}

#[test]
fn essential_and_required_only_when_asked() {
    let i = index(
        "s",
        "amd64",
        &[
            "app|1|amd64",
            "bash|5|amd64|Essential: yes\nPriority: required",
            "mawk|1|amd64|Priority: required",
            "vim|9|amd64|Priority: optional",
        ],
    );
    let only = |base| names(&resolve(std::slice::from_ref(&i), "amd64", &req(&["app"]), base).unwrap());
    assert_eq!(only(Base::None), ["app=1"]);
    assert_eq!(only(Base::Essential), ["app=1", "bash=5"]);
    assert_eq!(only(Base::Required), ["app=1", "bash=5", "mawk=1"]);
}

#[test]
fn same_inputs_same_output_whatever_the_request_order() {
    let i = index("s", "amd64", &["a|1|amd64|Depends: x | y", "b|1|amd64|Depends: y", "x|1|amd64", "y|1|amd64"]);
    let one = resolve(std::slice::from_ref(&i), "amd64", &req(&["b", "a"]), Base::None).unwrap();
    let two = resolve(&[i], "amd64", &req(&["a", "b", "a"]), Base::None).unwrap();
    assert_eq!(one, two);
}

#[test]
fn conflicts_and_breaks_between_chosen_packages_are_errors_naming_both() {
    let i = index(
        "s",
        "amd64",
        &[
            "mta-a|1|amd64|Provides: mail-transport-agent\nConflicts: mail-transport-agent",
            "mta-b|1|amd64|Provides: mail-transport-agent\nConflicts: mail-transport-agent",
            "tool|2|amd64|Breaks: old-plugin (<< 2)",
            "old-plugin|1|amd64",
            "new-plugin|2|amd64|Provides: old-plugin (= 2)",
        ],
    );
    // A package's conflict with what it provides itself is no clash.
    assert!(resolve(std::slice::from_ref(&i), "amd64", &req(&["mta-a"]), Base::None).is_ok());
    let err =
        resolve(std::slice::from_ref(&i), "amd64", &req(&["mta-a", "mta-b"]), Base::None).unwrap_err().to_string();
    assert!(
        err.contains("mta-a 1") && err.contains("conflicts with mail-transport-agent") && err.contains("mta-b 1"),
        "{err}"
    );
    let err =
        resolve(std::slice::from_ref(&i), "amd64", &req(&["tool", "old-plugin"]), Base::None).unwrap_err().to_string();
    assert!(
        err.contains("tool 2") && err.contains("breaks old-plugin (<< 2)") && err.contains("old-plugin 1"),
        "{err}"
    );
    // Breaks with a version bound: a provider at a version outside it is fine.
    assert!(resolve(&[i], "amd64", &req(&["tool", "new-plugin"]), Base::None).is_ok());
}
