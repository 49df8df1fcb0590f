//! PF310: a file downloaded with `curl`/`wget` and never checked against a checksum
//! in the same command.

use crate::rule::{Ctx, Rule};
use crate::rules::pf309_pipe_to_shell::is_fetcher;
use crate::shell::{has_option, is_shell, option_value, Command, Script};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF310",
    name: "download-without-checksum",
    severity: Severity::Error,
    summary: "A download without a checksum check",
    what: "Finds `curl` and `wget` commands that save a file (`-o`, `-O`, a redirection, \
`wget`'s default) or pipe it into another program (`| tar -x`), in a `RUN` or a build-file \
`run` that has no checksum or signature check: `sha256sum -c` (or `sha512sum`, `shasum -c`, \
`b3sum -c`), `gpg --verify`/`gpgv`, `cosign verify`, `minisign -V`. Pipes into a shell are \
reported by PF309 instead.",
    why: "What a URL serves can change, or be tampered with, between two builds. A checksum \
that the build checks pins the content; without it the image contains whatever was \
downloaded that day.",
    example: example!("PF310", "Dockerfile", "dockerfile"),
    fix: "Check the file in the same `RUN`: \
`curl -fsSLo tool.tgz URL && echo \"SHA256  tool.tgz\" | sha256sum -c - && tar -xzf tool.tgz`. \
In a Dockerfile, `ADD --checksum=sha256:… URL DEST` does the same; in a build file, a \
`download` with `sha256`.",
    fixable: false,
    hadolint: &[],
};

const SUMS: &[&str] =
    &["sha256sum", "sha512sum", "sha384sum", "sha224sum", "sha1sum", "md5sum", "b2sum", "b3sum", "shasum", "cksum"];

fn is_check(cmd: &Command) -> bool {
    let args = cmd.argv();
    let rest = args.get(1..).unwrap_or(&[]);
    match cmd.program() {
        Some(p) if SUMS.contains(&p) => has_option(rest, &["-c", "--check"]),
        Some("gpgv") => true,
        Some("gpg" | "gpg2") => has_option(rest, &["--verify"]),
        Some("cosign") => rest.first().is_some_and(|w| w.text.starts_with("verify")),
        Some("minisign") => has_option(rest, &["-V"]),
        Some("signify") => has_option(rest, &["-V", "-C"]),
        Some("slsa-verifier" | "gh") => rest.iter().any(|w| w.text.contains("verify")),
        _ => false,
    }
}

/// `[ "$(sha256sum f | cut -d' ' -f1)" = "…" ]`: a sum computed and compared.
fn compares_sum(cmd: &Command) -> bool {
    cmd.words.iter().any(|w| {
        w.text.match_indices("$(").any(|(i, _)| {
            let inner = w.text[i + 2..].trim_start();
            SUMS.iter().any(|s| inner.starts_with(s))
        })
    })
}

/// True when the fetcher's output is kept: saved to a file or fed to another program.
fn saves(cmds: &[Command], i: usize) -> bool {
    let cmd = &cmds[i];
    let args = &cmd.argv()[1..];
    let piped_to = cmds.get(i + 1).filter(|n| n.pipeline == cmd.pipeline);
    if piped_to
        .is_some_and(|n| n.program().is_some_and(is_shell) || n.program().is_some_and(|p| p.starts_with("python")))
    {
        return false; // PF309
    }
    if cmd.stdout_to.is_some() || piped_to.is_some() {
        return true;
    }
    match cmd.program() {
        Some("curl") => has_option(args, &["-o", "--output", "-O", "--remote-name", "--remote-name-all"]),
        // wget saves to a file unless told to write to standard output.
        Some("wget") => option_value(args, &["-O", "--output-document"]) != Some("-"),
        _ => false,
    }
}

pub fn check(ctx: &mut Ctx, script: &Script) {
    let cmds = &script.commands;
    if cmds.iter().any(|c| is_check(c) || compares_sum(c)) {
        return;
    }
    for (i, cmd) in cmds.iter().enumerate() {
        if !is_fetcher(cmd) || !saves(cmds, i) {
            continue;
        }
        let prog = cmd.program().unwrap_or("curl");
        let url = cmd.argv()[1..].iter().find(|w| w.text.contains("://")).map(|w| w.text.as_str());
        let what = url.map_or(String::new(), |u| format!(" `{u}`"));
        ctx.report(&RULE, cmd.span(), format!("`{prog}` downloads{what} without a checksum check"))
            .label("content not checked")
            .help("check it in the same command: `echo \"SHA256  FILE\" | sha256sum -c -`");
    }
}
