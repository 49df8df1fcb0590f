//! PF315: R packages installed without a version, a dated repository or a commit.

use crate::calls::{self, Call};
use crate::mapped::MappedText;
use crate::rule::{Ctx, Installer, Package, Rule};
use crate::shell::{is_dynamic, positionals, Script, Word};
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF315",
    name: "r-package-unpinned",
    severity: Severity::Error,
    summary: "R packages installed from a repository that moves",
    what: "Reads the R code of `R -e`/`Rscript -e` and finds `install.packages(…)`, \
`BiocManager::install(…)` and `pak::pkg_install(…)` from a repository that is not a \
dated snapshot (a `repos` URL with a date such as `…/2024-06-03`), \
`remotes::install_github`/`devtools::install_github` (and `install_gitlab`, \
`install_bitbucket`) of a repository without a commit (`org/repo@<40-hex>` or \
`ref = \"<40-hex>\"`), and the littler scripts `install2.r` and `installGithub.r`. \
`remotes::install_version(\"x\", version = \"1.2.3\")`, local and URL tarballs, and \
installs in a `rocker/r-ver:X.Y.Z` stage (whose CRAN is a dated snapshot) are not \
reported.",
    why: "CRAN keeps only the newest version of each package: `install.packages(\"dplyr\")` \
installs a different dplyr, with different dependencies, a month later. A GitHub \
repository without a commit is its default branch on the day of the build.",
    example: example!("PF315", "Dockerfile", "dockerfile"),
    fix: "Install from a dated snapshot of CRAN (`repos = \"https://…/cran/2024-06-03\"`, as \
rocker images do), pin versions with `remotes::install_version(\"dplyr\", version = \
\"1.1.4\")`, or use an renv lockfile (`renv::restore()`); pin GitHub packages to a commit: \
`remotes::install_github(\"org/repo@<40-hex commit>\")`.",
    fixable: false,
    hadolint: &[],
};

/// True when a repository URL names a snapshot by date (`2024-06-03`, `2024/06/03`)
/// or a fixed release (`/bioc/3.18`).
fn dated(url: &str) -> bool {
    let b = url.as_bytes();
    (0..b.len().saturating_sub(9)).any(|i| {
        let d = |k: usize| b[i + k].is_ascii_digit();
        d(0) && d(1)
            && d(2)
            && d(3)
            && matches!(b[i + 4], b'-' | b'/')
            && d(5)
            && d(6)
            && b[i + 7] == b[i + 4]
            && d(8)
            && d(9)
    })
}

/// A `rocker/*:X.Y.Z` base, whose CRAN mirror is a dated snapshot.
fn rocker_snapshot(base: Option<&str>) -> bool {
    let Some(base) = base else { return false };
    let name = base.split('@').next().unwrap_or(base);
    let Some((repo, tag)) = name.rsplit_once(':') else { return false };
    repo.rsplit('/').nth(1) == Some("rocker")
        && tag.split('.').count() >= 3
        && tag.starts_with(|c: char| c.is_ascii_digit())
}

const INSTALLS: &[&str] =
    &["install.packages", "BiocManager::install", "pak::pkg_install", "pak::pak", "remotes::install_cran"];
const GITHUB: &[&str] = &[
    "remotes::install_github",
    "devtools::install_github",
    "install_github",
    "remotes::install_gitlab",
    "remotes::install_bitbucket",
    "devtools::install_gitlab",
];

fn help_cran(example: &str) -> String {
    format!(
        "install from a dated snapshot: `install.packages(\"{example}\", repos = \"https://…/cran/2024-06-03\")`,\n\
         or pin the version: `remotes::install_version(\"{example}\", version = \"X.Y.Z\")`, or restore an renv lockfile"
    )
}

fn help_github(example: &str) -> String {
    format!("pin the repository to a commit: `remotes::install_github(\"{example}@<40-hex commit>\")`")
}

struct R<'a> {
    ctx: &'a mut Ctx,
    code: MappedText,
    snapshot_base: bool,
}

impl R<'_> {
    fn report(&mut self, label: &str, s: &(String, std::ops::Range<usize>), problem: &str, github: bool) {
        let name = s.0.split('@').next().unwrap_or(&s.0).to_string();
        let help = |n: &str| if github { help_github(n) } else { help_cran(n) };
        let installer = Installer { label: label.to_string(), help: help(if github { "ORG/REPO" } else { "NAME" }) };
        let package = Package { name: name.clone(), spec: s.0.clone(), problem: problem.to_string() };
        let span = self.code.map_range(s.1.clone());
        self.ctx.report_package(&RULE, span, installer, package, help(&name));
    }

    fn install(&mut self, call: &Call) {
        let label = format!("`{}`", call.name);
        if call.named("version").is_some() && call.name == "BiocManager::install" {
            return;
        }
        let repos = call.named("repos").or_else(|| call.positional(2).filter(|_| call.name == "install.packages"));
        let pinned_repo = match repos {
            Some(r) if r.text == "NULL" => return, // local files
            Some(r) => !r.strings.is_empty() && r.strings.iter().all(|s| dated(&s.0)),
            None => self.snapshot_base && call.name == "install.packages",
        };
        if pinned_repo {
            return;
        }
        let Some(pkgs) = call.positional(0).or_else(|| call.named("pkgs")) else { return };
        for s in &pkgs.strings {
            let lower = s.0.to_ascii_lowercase();
            if lower.ends_with(".tar.gz") || lower.ends_with(".zip") || s.0.starts_with('/') || s.0.starts_with('.') {
                continue;
            }
            if call.name.starts_with("pak::") {
                if let Some((_, v)) = s.0.split_once('@') {
                    if v.starts_with(|c: char| c.is_ascii_digit()) || spec::is_full_commit(v) {
                        continue;
                    }
                }
            }
            self.report(&label, s, "a repository that moves", false);
        }
    }

    fn github(&mut self, call: &Call) {
        let label = format!("`{}`", call.name);
        let by_ref = call.named("ref").and_then(|r| r.strings.first()).map(|s| s.0.clone());
        let Some(repos) = call.positional(0).or_else(|| call.named("repo")) else { return };
        for s in &repos.strings {
            let reference = s.0.split_once('@').map(|(_, r)| r.to_string()).or(by_ref.clone());
            let problem = match reference.as_deref() {
                Some(r) if spec::is_full_commit(r) => continue,
                Some(r) if spec::is_moving_ref(r) => "a branch, not a commit",
                Some(_) => "a branch or tag, not a commit",
                None => "no commit: the default branch that day",
            };
            self.report(&label, s, problem, true);
        }
    }
}

/// The R code of an `R`/`Rscript` command: the values of its `-e` options.
fn r_code(argv: &[Word]) -> Vec<&Word> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        if argv[i].text == "-e" || argv[i].text == "--expr" {
            if let Some(w) = argv.get(i + 1) {
                out.push(w);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    let snapshot_base = rocker_snapshot(ctx.stage_base.as_deref());
    for cmd in &script.commands {
        let argv = cmd.argv();
        match cmd.program() {
            Some("R" | "Rscript") => {
                for w in r_code(argv) {
                    let mut r = R { ctx: &mut *ctx, code: w.mapped(), snapshot_base };
                    let text = r.code.text.clone();
                    for call in calls::find(&text, INSTALLS) {
                        r.install(&call);
                    }
                    for call in calls::find(&text, GITHUB) {
                        r.github(&call);
                    }
                }
            }
            Some("install2.r" | "installBioc.r") => {
                let takes = ["-r", "--repos", "-l", "--libloc", "-d", "--deps", "-n", "--ncpus", "-t", "--type"];
                let repos: Vec<&str> = argv
                    .windows(2)
                    .filter(|p| p[0].text == "-r" || p[0].text == "--repos")
                    .map(|p| p[1].text.as_str())
                    .collect();
                if (repos.is_empty() && snapshot_base) || (!repos.is_empty() && repos.iter().all(|r| dated(r))) {
                    continue;
                }
                let label = format!("`{}`", cmd.program().unwrap_or("install2.r"));
                for w in positionals(&argv[1..], &takes) {
                    if is_dynamic(&w.text) || w.text.ends_with(".tar.gz") {
                        continue;
                    }
                    let installer = Installer { label: label.clone(), help: help_cran("NAME") };
                    let package = Package {
                        name: w.text.clone(),
                        spec: w.text.clone(),
                        problem: "a repository that moves".to_string(),
                    };
                    ctx.report_package(&RULE, w.span.clone(), installer, package, help_cran(&w.text));
                }
            }
            Some("installGithub.r") => {
                for w in positionals(&argv[1..], &["-d", "--deps", "-u", "--update", "-r", "--repos"]) {
                    let reference = w.text.split_once('@').map(|(_, r)| r);
                    if is_dynamic(&w.text) || reference.is_some_and(spec::is_full_commit) {
                        continue;
                    }
                    let problem = if reference.is_some() {
                        "a branch or tag, not a commit"
                    } else {
                        "no commit: the default branch that day"
                    };
                    let installer = Installer { label: "`installGithub.r`".to_string(), help: help_github("ORG/REPO") };
                    let package = Package { name: w.text.clone(), spec: w.text.clone(), problem: problem.to_string() };
                    ctx.report_package(&RULE, w.span.clone(), installer, package, help_github(&w.text));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_by_date() {
        assert!(dated("https://packagemanager.example.com/cran/2024-06-03"));
        assert!(dated("https://mran.example.com/snapshot/2019/04/15"));
        assert!(!dated("https://cloud.example.org"));
        assert!(rocker_snapshot(Some("rocker/r-ver:4.3.1")));
        assert!(!rocker_snapshot(Some("rocker/r-ver:4")));
        assert!(!rocker_snapshot(Some("rocker/r-ver:latest")));
        assert!(!rocker_snapshot(Some("r-base:4.3.1")));
    }
}
