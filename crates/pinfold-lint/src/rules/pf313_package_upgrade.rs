//! PF313: a package upgrade (`apt-get upgrade`, `dnf upgrade`, `conda update`, …).

use crate::rule::{Ctx, Rule};
use crate::shell::{positionals, subcommand, Script};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF313",
    name: "package-upgrade",
    severity: Severity::Error,
    summary: "A package upgrade, which installs whatever is newest that day",
    what: "Finds commands that upgrade installed packages (all of them, or the ones named) \
to the newest the repositories hold: `apt-get upgrade`/`dist-upgrade`/`full-upgrade`, \
`apt upgrade`, `yum`/`dnf`/`microdnf` `update`/`upgrade`/`distro-sync`, `zypper \
update`/`dist-upgrade`, `apk upgrade` (and `apk add --upgrade`), `conda`/`mamba`/\
`micromamba` `update`/`upgrade`, `pip install --upgrade` of unpinned names is PF301. \
`apt-get update` only refreshes the package lists and is not reported.",
    why: "An upgrade makes the image depend on the day of the build: a pinned base image \
followed by `apt-get upgrade` is a different image after every security update. The \
packages it changes are not named anywhere, so nobody can review what moved.",
    example: example!("PF313", "Dockerfile", "dockerfile"),
    fix: "Take the upgrades from a newer pinned base image instead (update its digest on \
purpose), or pin the packages that need a newer version by name. With pinfold, the \
`debian NAME { … }` input and `pinfold lock` pin every package of the closure, and \
`pinfold lock` run again is the upgrade, reviewed as a change of the lock.",
    fixable: false,
    hadolint: &[],
};

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let Some(prog) = cmd.program() else { continue };
        let argv = cmd.argv();
        let takes: &[&str] = &["-o", "-c", "-t", "--setopt", "--enablerepo", "--disablerepo", "-n", "-p", "--name"];
        let Some((sub, args)) = subcommand(argv, takes) else { continue };
        let upgrade = match prog {
            "apt-get" | "apt" | "aptitude" => {
                matches!(sub, "upgrade" | "dist-upgrade" | "full-upgrade" | "safe-upgrade")
            }
            "yum" | "dnf" | "dnf5" | "microdnf" | "tdnf" => {
                matches!(sub, "update" | "upgrade" | "distro-sync" | "upgrade-minimal" | "update-minimal")
            }
            "zypper" => matches!(sub, "update" | "up" | "dist-upgrade" | "dup" | "patch"),
            "apk" => sub == "upgrade" || (sub == "add" && args.iter().any(|w| w.text == "--upgrade" || w.text == "-u")),
            "conda" | "mamba" | "micromamba" => {
                matches!(sub, "update" | "upgrade") && !args.iter().any(|w| w.text == "-f" || w.text == "--file")
            }
            _ => false,
        };
        if !upgrade {
            continue;
        }
        let named: Vec<String> = positionals(args, takes).iter().map(|w| format!("`{}`", w.text)).collect();
        let what = if named.is_empty() || named.iter().all(|n| n == "`--all`") {
            "every installed package".to_string()
        } else {
            named.join(", ")
        };
        let shown = format!("{prog} {sub}");
        ctx.report(&RULE, cmd.span(), format!("`{shown}` upgrades {what} to whatever is newest that day"))
            .label("newest that day")
            .help(
                "take upgrades from a newer pinned base image, or pin the packages that need a newer version;\n\
                 with pinfold: `pinfold lock` pins the `debian NAME { … }` input, and running it again is the reviewed upgrade.",
            );
    }
}
