//! PF309: a script downloaded and run in one go (`curl … | sh`).

use crate::rule::{Ctx, Rule};
use crate::shell::{is_shell, positionals, Command, Script};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF309",
    name: "pipe-to-shell",
    severity: Severity::Error,
    summary: "A downloaded script piped into a shell",
    what: "Finds `curl` or `wget` output piped into a shell or interpreter \
(`curl -fsSL URL | sh`, `wget -qO- URL | bash`, `… | python3 -`) and the same through \
command substitution (`sh -c \"$(curl …)\"`, `bash <(curl …)`).",
    why: "The script is run before anyone can check it, and it is whatever the server sends \
that day: it usually installs the newest version of something, unpinned, and a compromised \
or hijacked URL runs its code in your build.",
    example: example!("PF309", "Dockerfile", "dockerfile"),
    fix: "Download the script (or better, the release artifact it would install) to a \
file, check its sha256, then run it: \
`curl -fsSLo install.sh URL && echo \"SHA256  install.sh\" | sha256sum -c - && sh install.sh`. \
In a build file, declare it as a `download` with its `sha256`.",
    fixable: false,
    hadolint: &[],
};

pub fn is_fetcher(cmd: &Command) -> bool {
    matches!(cmd.program(), Some("curl" | "wget"))
}

/// A shell, or an interpreter reading its program from standard input.
fn runs_stdin(cmd: &Command) -> bool {
    let Some(prog) = cmd.program() else {
        return false;
    };
    if is_shell(prog) {
        return true;
    }
    let interpreter = ["python", "perl", "ruby", "node", "php"].iter().any(|p| prog.starts_with(p));
    interpreter && positionals(&cmd.argv()[1..], &[]).first().is_none_or(|w| w.text == "-")
}

pub fn check(ctx: &mut Ctx, script: &Script) {
    let cmds = &script.commands;
    for (i, fetch) in cmds.iter().enumerate() {
        if !is_fetcher(fetch) {
            continue;
        }
        let sink = cmds[i + 1..].iter().take_while(|c| c.pipeline == fetch.pipeline).find(|c| runs_stdin(c));
        if let Some(sink) = sink {
            let span = fetch.span().start..sink.span().end;
            ctx.report(
                &RULE,
                span,
                format!(
                    "`{}` output is run by `{}` without being checked",
                    fetch.program().unwrap_or("curl"),
                    sink.program().unwrap_or("sh")
                ),
            )
            .label("downloaded and run unchecked")
            .help("save it to a file, check its sha256 (`sha256sum -c`), then run it");
        }
    }
    for cmd in cmds {
        if !cmd.program().is_some_and(is_shell) {
            continue;
        }
        for w in &cmd.argv()[1..] {
            let t = &w.text;
            if ["$(curl", "$(wget", "<(curl", "<(wget", "`curl", "`wget"].iter().any(|p| t.contains(p)) {
                ctx.report(
                    &RULE,
                    w.span.clone(),
                    format!("`{}` runs a downloaded script without checking it", cmd.program().unwrap_or("sh")),
                )
                .label("downloaded and run unchecked")
                .help("save it to a file, check its sha256 (`sha256sum -c`), then run it");
            }
        }
    }
}
