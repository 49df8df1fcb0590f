//! PF317: a Rust toolchain named by channel (`stable`, `nightly`) instead of a version.

use crate::rule::{Ctx, Rule};
use crate::shell::{is_dynamic, option_value, positionals, subcommand, Script, Word};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF317",
    name: "rust-toolchain-unpinned",
    severity: Severity::Error,
    summary: "A Rust toolchain named by channel, not by version",
    what: "Finds rustup installs of a moving channel: `rustup toolchain install nightly`, \
`rustup default stable`, `rustup install beta`, `rustup update` (which moves every \
installed channel), and `--default-toolchain stable|beta|nightly` given to `rustup-init` \
or to the installer script (`sh -s -- -y --default-toolchain nightly`); `rustup-init` \
without `--default-toolchain` installs `stable`. Versions (`1.83.0`) and dated channels \
(`nightly-2024-11-28`) are pinned, and `--default-toolchain none` installs nothing.",
    why: "`stable` is a new compiler every six weeks and `nightly` every day: the same \
Dockerfile builds with another compiler, which can change the code it generates or stop \
compiling the project.",
    example: example!("PF317", "Dockerfile", "dockerfile"),
    fix: "Name the version: `--default-toolchain 1.83.0`, `rustup toolchain install \
nightly-2024-11-28`, or a `rust-toolchain.toml` with `channel = \"1.83.0\"` copied into \
the image; better still, start from a pinned `rust:1.83.0-…@sha256:…` image.",
    fixable: false,
    hadolint: &[],
};

/// True for a toolchain that moves: a bare channel, with or without a host triple.
fn moving(toolchain: &str) -> bool {
    let channel = toolchain.split('-').next().unwrap_or(toolchain);
    let dated = toolchain.split('-').nth(1).is_some_and(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_digit()));
    matches!(channel, "stable" | "beta" | "nightly") && !dated
}

fn report(ctx: &mut Ctx, w: &Word, what: &str) {
    ctx.report(&RULE, w.span.clone(), format!("{what} installs the `{}` channel, which moves", w.text))
        .label("a channel, not a version")
        .help("name the version: `1.83.0`, or a dated nightly such as `nightly-2024-11-28`");
}

pub(crate) fn check(ctx: &mut Ctx, script: &Script) {
    for cmd in &script.commands {
        let argv = cmd.argv();
        let Some(prog) = cmd.program() else { continue };
        let args = &argv[1..];
        let default_toolchain = args
            .windows(2)
            .find(|p| p[0].text == "--default-toolchain")
            .map(|p| &p[1])
            .or_else(|| args.iter().find(|w| w.text.starts_with("--default-toolchain=")));
        let value = |w: &Word| w.text.strip_prefix("--default-toolchain=").unwrap_or(&w.text).to_string();
        if prog == "rustup-init" || (crate::shell::is_shell(prog) && default_toolchain.is_some()) {
            match default_toolchain {
                Some(w) if moving(&value(w)) && !is_dynamic(&w.text) => report(ctx, w, "`--default-toolchain`"),
                None if prog == "rustup-init" && option_value(args, &["--default-toolchain"]).is_none() => {
                    ctx.report(
                        &RULE,
                        cmd.span(),
                        "`rustup-init` without `--default-toolchain` installs `stable`, which moves",
                    )
                    .label("a channel, not a version")
                    .help("name the version: `rustup-init -y --default-toolchain 1.83.0`");
                }
                _ => {}
            }
            continue;
        }
        if prog != "rustup" {
            continue;
        }
        let Some((sub, rest)) = subcommand(argv, &[]) else { continue };
        let (what, targets): (&str, Vec<&Word>) = match sub {
            "toolchain" => match subcommand(&argv[argv.len() - rest.len() - 1..], &[]) {
                Some((s @ ("install" | "add"), r)) => {
                    (s, positionals(r, &["--profile", "-c", "--component", "-t", "--target"]))
                }
                _ => continue,
            },
            "install" | "default" => (sub, positionals(rest, &["--profile"])),
            "override" => match rest.first() {
                Some(s) if s.text == "set" => ("override set", positionals(&rest[1..], &["--path"])),
                _ => continue,
            },
            "update" => {
                let pos = positionals(rest, &[]);
                if pos.is_empty() {
                    ctx.report(
                        &RULE,
                        cmd.span(),
                        "`rustup update` moves every installed channel to its newest release",
                    )
                    .label("newest that day")
                    .help("install a versioned toolchain instead: `rustup toolchain install 1.83.0`");
                    continue;
                }
                ("update", pos)
            }
            _ => continue,
        };
        for w in targets {
            if moving(&w.text) && !is_dynamic(&w.text) {
                report(ctx, w, &format!("`rustup {what}`"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::moving;

    #[test]
    fn channels_move_versions_do_not() {
        assert!(moving("nightly"));
        assert!(moving("stable-x86_64-unknown-linux-gnu"));
        assert!(!moving("nightly-2024-11-28"));
        assert!(!moving("1.83.0"));
        assert!(!moving("none"));
    }
}
