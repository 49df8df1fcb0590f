//! PF306: `go install …@latest` (and `go get` without a version).

use crate::rule::{Ctx, Installer, Package, Rule};
use crate::shell::{is_dynamic, positionals, subcommand, Script};
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF306",
    name: "go-install-latest",
    severity: Severity::Error,
    summary: "`go install …@latest`",
    what: "Finds `go install` and `go get` of packages at a moving version: `@latest`, \
`@upgrade`, `@patch`, a branch (`@master`, `@main`, `@HEAD`), and `go get` without any \
`@version`.",
    why: "`@latest` resolves to the newest tag on the day of the build; a branch name to its \
newest commit. The module's own `go.sum` pins its dependencies, but not which release of \
the module you get.",
    example: example!("PF306", "Dockerfile", "dockerfile"),
    fix: "Name the version: `go install golang.org/x/tools/gopls@v0.16.2`.",
    fixable: false,
    hadolint: &[],
};

const MOVING: &[&str] = &["latest", "upgrade", "patch", "master", "main", "HEAD", "head", "trunk", "develop"];

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        if cmd.program() != Some("go") {
            continue;
        }
        let Some((sub @ ("install" | "get"), args)) = subcommand(cmd.argv(), &[]) else {
            continue;
        };
        for pkg in positionals(args, &["-C", "-o", "-tags", "-ldflags", "-gcflags", "-mod", "-modfile", "-p"]) {
            let t = &pkg.text;
            if is_dynamic(t) || t.starts_with('.') || t.starts_with('/') {
                continue;
            }
            let version = t.rsplit_once('@').map(|(_, v)| v);
            let moving = match version {
                Some(v) => MOVING.contains(&v),
                None => sub == "get",
            };
            if moving {
                let name = t.split('@').next().unwrap_or(t).to_string();
                let problem = if version.is_some() { "a moving version" } else { spec::NO_VERSION };
                let help = |n: &str| format!("name the version: `{n}@vX.Y.Z`");
                let installer = Installer { label: format!("`go {sub}`"), help: help("MODULE") };
                let package = Package { name: name.clone(), spec: t.clone(), problem: problem.to_string() };
                ctx.report_package(&RULE, pkg.span.clone(), installer, package, help(&name));
            }
        }
    }
}
