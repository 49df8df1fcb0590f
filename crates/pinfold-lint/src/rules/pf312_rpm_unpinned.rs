//! PF312: `yum`/`dnf`/`microdnf`/`tdnf`/`zypper` install of packages without a version.

use crate::rule::{Ctx, Installer, Package, Rule};
use crate::shell::{is_dynamic, positionals, subcommand, Script};
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF312",
    name: "rpm-unpinned",
    severity: Severity::Error,
    summary: "`yum`/`dnf`/`zypper install` without a version",
    what: "Finds `yum install`, `dnf install`, `microdnf install`, `tdnf install` and \
`zypper install` (and `groupinstall`, `reinstall`, `in`) naming packages without a \
version. A version is written `name-VERSION[-RELEASE]` (`gcc-8.5.0`, \
`python3-devel-3.9.18-1.el9`) or, for zypper, `name=VERSION`; a range \
(`name>=1.2`), a module stream (`@nodejs:18`) or a group (`@development`) is not a pin. \
Local and remote `.rpm` files are not reported. The options that take a value \
(`--enablerepo`, `--setopt`, `--releasever`, `-x`, …) are known, so their values are \
never taken for packages.",
    why: "CentOS, Rocky, Alma, Fedora and openSUSE repositories carry the newest build of \
each package for a release: `dnf install gcc` installs another gcc after the next update, \
and two builds a month apart differ.",
    example: example!("PF312", "Dockerfile", "dockerfile"),
    fix: "Pin each package: `dnf install -y gcc-11.4.1-3.el9` (`dnf list --showduplicates \
gcc` lists the versions); for zypper, `zypper install -y gcc=13.2`. Keep the repositories \
at a snapshot (a dated mirror, `--releasever` of a point release) so the pinned version \
stays available.",
    fixable: false,
    hadolint: &["DL3033", "DL3041", "DL3037"],
};

const TAKES_VALUE: &[&str] = &[
    "--enablerepo",
    "--disablerepo",
    "--repo",
    "--repoid",
    "--setopt",
    "--releasever",
    "--installroot",
    "-c",
    "--config",
    "-d",
    "--debuglevel",
    "-e",
    "--errorlevel",
    "-x",
    "--exclude",
    "--excludepkgs",
    "--forcearch",
    "--rpmverbosity",
    "--color",
    "--destdir",
    "--downloaddir",
    "--advisory",
    "--advisories",
    "--bz",
    "--cve",
    "--sec-severity",
    "--secseverity",
    "--nobest",
    "--platform",
    "--config-file",
    // zypper
    "-r",
    "--root",
    "-R",
    "--reposd-dir",
    "-D",
    "--cache-dir",
    "-C",
    "--raw-cache-dir",
    "-t",
    "--type",
    "--from",
    "-n",
];

/// True when a package argument names a version: `name-1.2.3`, `name-1.2-3.el9`,
/// `name-0:1.2` (an epoch), or for zypper `name=1.2`.
fn versioned(t: &str, zypper: bool) -> bool {
    if zypper && t.contains('=') && !t.contains(['<', '>']) {
        return true;
    }
    // A hyphen followed by a digit starts the version when that part has a dot or an
    // epoch (`8.5.0`, `1:2.3`), or is followed by a release that has one
    // (`tzdata-2024a-1.el9`): `java-11-openjdk` is a name.
    let segments: Vec<&str> = t.split('-').collect();
    segments.iter().enumerate().skip(1).any(|(i, seg)| {
        seg.starts_with(|c: char| c.is_ascii_digit())
            && (seg.contains(['.', ':']) || segments.get(i + 1).is_some_and(|next| next.contains('.')))
    })
}

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let Some(prog @ ("yum" | "dnf" | "dnf5" | "microdnf" | "tdnf" | "zypper")) = cmd.program() else {
            continue;
        };
        let zypper = prog == "zypper";
        let Some((sub, args)) = subcommand(cmd.argv(), TAKES_VALUE) else {
            continue;
        };
        let group = matches!(sub, "groupinstall" | "group");
        if !matches!(sub, "install" | "in" | "reinstall" | "groupinstall" | "group") {
            continue;
        }
        let mut pkgs = positionals(args, TAKES_VALUE);
        if sub == "group" {
            // `dnf group install NAME`
            if pkgs.first().is_none_or(|w| w.text != "install") {
                continue;
            }
            pkgs.remove(0);
        }
        let label = format!("`{prog} {sub}`");
        for pkg in pkgs {
            let t = &pkg.text;
            let lower = t.to_ascii_lowercase();
            if lower.ends_with(".rpm") || t.starts_with('/') || t.starts_with('.') || is_dynamic(t) {
                continue;
            }
            let problem = if group || t.starts_with('@') {
                if t.contains(':') {
                    "a module stream, not a version"
                } else {
                    "a group: whatever it holds that day"
                }
            } else if t.contains(['<', '>']) {
                spec::RANGE
            } else if versioned(t, zypper) {
                continue;
            } else {
                spec::NO_VERSION
            };
            let help = |n: &str| {
                if zypper {
                    format!("pin each package: `{n}=VERSION` (`zypper search -s {n}` lists the versions)")
                } else {
                    format!("pin each package: `{n}-VERSION-RELEASE` (`{prog} list --showduplicates {n}` lists them)")
                }
            };
            let installer = Installer { label: label.clone(), help: help("NAME") };
            let package = Package { name: t.clone(), spec: t.clone(), problem: problem.to_string() };
            ctx.report_package(&RULE, pkg.span.clone(), installer, package, help(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::versioned;

    #[test]
    fn versions_after_a_hyphen() {
        assert!(versioned("gcc-8.5.0", false));
        assert!(versioned("python3-devel-3.9.18-1.el9", false));
        assert!(!versioned("python3-devel", false));
        assert!(!versioned("gcc-c++", false));
        assert!(!versioned("java-11-openjdk", false));
        assert!(versioned("tzdata-2024a-1.el9", false));
        assert!(versioned("gcc=13.2", true));
        assert!(!versioned("gcc=13.2", false));
    }
}
