//! Grouping: the package findings of one rule, one unit (a `RUN`, a build-file `run`,
//! a dependency file) and one installer become one finding that lists the packages.
//! A researcher's `RUN apt-get install` of 35 packages is one problem with one fix
//! (pin them, or let `pinfold lock` do it), so it is shown once; the per-package
//! detail (each name, spec and position) stays on the finding for `--format json`.
//!
//! Grouping runs after suppressions, so a `pinfold-lint: allow` on one line of a
//! requirements file still hides only that line's package.

use super::rule::RawFinding;
use std::collections::BTreeMap;

/// Merges package findings that share rule, unit and installer; keeps the order of
/// each group's first finding and leaves every other finding as it is.
pub fn group(findings: Vec<RawFinding>) -> Vec<RawFinding> {
    let mut out: Vec<RawFinding> = Vec::with_capacity(findings.len());
    // (rule id, unit, installer label) → index in `out`.
    let mut index: BTreeMap<(&'static str, usize, String), usize> = BTreeMap::new();
    for mut f in findings {
        let (Some(package), Some((unit, installer))) = (f.package.clone(), f.installer.clone()) else {
            out.push(f);
            continue;
        };
        let key = (f.rule.id, unit, installer.label.clone());
        match index.get(&key) {
            Some(&i) => out[i].packages.push((f.span.clone(), package)),
            None => {
                f.packages.push((f.span.clone(), package));
                index.insert(key, out.len());
                out.push(f);
            }
        }
    }
    for f in &mut out {
        if f.packages.len() > 1 {
            let Some((_, installer)) = &f.installer else { continue };
            f.message = message(&installer.label, &f.packages);
            f.help = Some(installer.help.clone());
            f.label = Some(format!("{} packages not pinned", f.packages.len()));
            // The span runs from the first package to the last, so a suppression or an
            // editor sees the whole list; the packages keep their own spans.
            let start = f.packages.iter().map(|(s, _)| s.start).min().unwrap_or(f.span.start);
            let end = f.packages.iter().map(|(s, _)| s.end).max().unwrap_or(f.span.end);
            f.span = start..end;
        }
    }
    out
}

/// "`pip install` does not pin 3 packages: `flask`, `torch` (no version); `numpy>=1.20`
/// (a range, not a pin)": the names grouped by what is wrong with them, in order.
fn message(installer: &str, packages: &[(std::ops::Range<usize>, super::rule::Package)]) -> String {
    let mut problems: Vec<(&str, Vec<&str>)> = Vec::new();
    for (_, p) in packages {
        match problems.iter_mut().find(|(pr, _)| *pr == p.problem) {
            Some((_, names)) => names.push(&p.spec),
            None => problems.push((&p.problem, vec![&p.spec])),
        }
    }
    let parts: Vec<String> = problems
        .iter()
        .map(|(problem, names)| {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("{} ({problem})", list.join(", "))
        })
        .collect();
    format!("{installer} does not pin {} packages: {}", packages.len(), parts.join("; "))
}
