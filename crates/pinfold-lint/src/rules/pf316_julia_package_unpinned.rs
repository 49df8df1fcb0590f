//! PF316: Julia packages added without a version or a commit.

use crate::calls::{self, Call};
use crate::rule::{Ctx, Installer, Package, Rule};
use crate::shell::Script;
use crate::spec;
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF316",
    name: "julia-package-unpinned",
    severity: Severity::Error,
    summary: "`Pkg.add` without a version",
    what: "Reads the Julia code of `julia -e` (and `--eval`, `-E`) and finds `Pkg.add` of \
packages without a version: `Pkg.add(\"Flux\")`, `Pkg.add([\"A\", \"B\"])`, \
`Pkg.add(PackageSpec(name = \"A\"))`, `Pkg.add(url = \"…\")` without a commit `rev`, and \
the `pkg\"add …\"` string macro without `@VERSION`. `Pkg.add(name = \"A\", version = \
\"1.2.3\")`, a `PackageSpec` with a `version`, a `rev` that is a full commit, and \
`Pkg.instantiate()` (which installs the committed `Manifest.toml`) are not reported.",
    why: "`Pkg.add(\"Flux\")` resolves the newest compatible versions from the registry on \
the day of the build, for the package and everything it depends on.",
    example: example!("PF316", "Dockerfile", "dockerfile"),
    fix: "Commit `Project.toml` and `Manifest.toml`, copy them into the image and run \
`julia --project -e 'using Pkg; Pkg.instantiate()'`; or pin each package: \
`Pkg.add(name = \"Flux\", version = \"0.14.22\")`.",
    fixable: false,
    hadolint: &[],
};

fn help(example: &str) -> String {
    format!(
        "pin each package: `Pkg.add(name = \"{example}\", version = \"X.Y.Z\")`,\n\
         or copy a committed Manifest.toml and run `Pkg.instantiate()`"
    )
}

fn pinned_spec_call(call: &Call) -> bool {
    call.named("version").is_some()
        || call.named("rev").and_then(|r| r.strings.first()).is_some_and(|s| spec::is_full_commit(&s.0))
}

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        if cmd.program() != Some("julia") {
            continue;
        }
        let argv = cmd.argv();
        let codes: Vec<_> = argv
            .windows(2)
            .filter(|p| matches!(p[0].text.as_str(), "-e" | "--eval" | "-E" | "--print"))
            .map(|p| &p[1])
            .collect();
        for w in codes {
            let code = w.mapped();
            let mut found: Vec<(String, String, std::ops::Range<usize>, &'static str)> = Vec::new();
            for call in calls::find(&code.text, &["Pkg.add", "Pkg.develop"]) {
                if pinned_spec_call(&call) {
                    continue;
                }
                let Some(first) = call.positional(0).or_else(|| call.named("name")).or_else(|| call.named("url"))
                else {
                    continue;
                };
                if first.text.contains("PackageSpec") {
                    for spec_call in calls::find(&first.text, &["PackageSpec", "Pkg.PackageSpec"]) {
                        if pinned_spec_call(&spec_call) {
                            continue;
                        }
                        let Some(name) = spec_call
                            .named("name")
                            .or_else(|| spec_call.named("url"))
                            .or_else(|| spec_call.positional(0))
                        else {
                            continue;
                        };
                        for s in &name.strings {
                            let r = first.range.start + s.1.start..first.range.start + s.1.end;
                            found.push((s.0.clone(), s.0.clone(), r, spec::NO_VERSION));
                        }
                    }
                    continue;
                }
                let problem = if call.named("url").is_some() { "no commit `rev`" } else { spec::NO_VERSION };
                for s in &first.strings {
                    found.push((s.0.clone(), s.0.clone(), s.1.clone(), problem));
                }
            }
            // pkg"add Flux Zygote@0.6"
            let t = &code.text;
            let mut from = 0;
            while let Some(at) = t[from..].find("pkg\"add ").map(|i| i + from) {
                let body_start = at + "pkg\"add ".len();
                let end = t[body_start..].find('"').map_or(t.len(), |i| body_start + i);
                from = end;
                let mut offset = body_start;
                for word in t[body_start..end].split(' ') {
                    if !word.is_empty() && !word.contains('@') && !word.starts_with('-') {
                        found.push((word.to_string(), word.to_string(), offset..offset + word.len(), spec::NO_VERSION));
                    }
                    offset += word.len() + 1;
                }
            }
            for (name, spec_text, range, problem) in found {
                let installer = Installer { label: "`Pkg.add`".to_string(), help: help("NAME") };
                let package = Package { name: name.clone(), spec: spec_text, problem: problem.to_string() };
                ctx.report_package(&RULE, code.map_range(range), installer, package, help(&name));
            }
        }
    }
}
