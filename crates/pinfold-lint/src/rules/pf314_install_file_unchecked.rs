//! PF314: an install from a file (`pip install -r FILE`, `conda env create -f FILE`)
//! whose file lint cannot read, so that its pins cannot be checked.

use crate::context::{Origin, Stage};
use crate::rule::{Ctx, Rule};
use crate::rules::pf301_pip_unpinned::{pip_install, TAKES_VALUE as PIP_TAKES_VALUE};
use crate::shell::{basename, is_dynamic, positionals, subcommand, Script, Word};
use crate::FileKind;
use pinfold_lang::diag::Severity;
use std::ops::Range;
use std::path::Path;

pub const RULE: Rule = Rule {
    id: "PF314",
    name: "install-file-unchecked",
    severity: Severity::Warning,
    summary: "An install from a file whose pins cannot be checked",
    what: "Follows the files a `RUN` installs from: `pip install -r FILE` (and `-c`, \
`uv pip install -r`, `uv pip sync`, `pip-sync`, `pip install $(cat FILE)`, \
`cat FILE | xargs pip install`), `conda env create -f FILE` (and `conda env update`, \
`mamba`, `micromamba create/install -f`, `conda install --file`). The file is looked up \
in the build context (the Dockerfile's directory) where the stage's `WORKDIR` and \
`COPY`/`ADD` lines (or a `RUN --mount=type=bind`) place it; when it is there, it is linted \
as a requirements or environment file, at its own lines. This rule reports the files \
that cannot be followed: read from a URL, copied from a context file that does not \
exist, or placed by nothing in the Dockerfile (a cloned repository, another stage, an \
earlier `RUN`).",
    why: "An install from a file pins exactly what the file pins. When lint cannot read \
the file, the Dockerfile may look pinned while every package in the file floats.",
    example: example!("PF314", "Dockerfile", "dockerfile"),
    fix: "`COPY` the file from the build context before the `RUN` that installs it, so \
that it is reviewed with the Dockerfile (and linted); for a file of a cloned repository, \
pin the clone to a commit (PF311).",
    fixable: false,
    hadolint: &[],
};

/// A file an install command reads.
pub(crate) struct InstallFile {
    pub path: String,
    pub span: Range<usize>,
    pub kind: FileKind,
}

const CONDA_TAKES_VALUE: &[&str] =
    &["-c", "--channel", "-n", "--name", "-p", "--prefix", "-r", "--root-prefix", "--solver", "--platform", "--subdir"];

/// The files `cmd` (the `i`th command of `script`) installs from.
pub(crate) fn install_files(script: &Script, i: usize) -> Vec<InstallFile> {
    let cmd = &script.commands[i];
    let mut out = Vec::new();
    let argv = cmd.argv();
    let Some(prog) = cmd.program() else { return out };
    let mut push = |w: &Word, value: &str, kind: FileKind| {
        // The span of the value inside `-rFILE`/`--requirement=FILE`.
        let span = if w.text.len() > value.len() && w.text.ends_with(value) && w.span.len() == w.text.len() {
            w.span.end - value.len()..w.span.end
        } else {
            w.span.clone()
        };
        out.push(InstallFile { path: value.to_string(), span, kind });
    };
    if let Some(args) = pip_install(cmd) {
        file_options(
            args,
            &["-r", "--requirement", "--requirements", "-c", "--constraint", "--constraints"],
            |w, v| push(w, v, FileKind::Requirements),
        );
        // `pip install $(cat FILE)`, `` `cat FILE` ``, `$(< FILE)`.
        for w in positionals(args, PIP_TAKES_VALUE) {
            if let Some(file) = cat_substitution(&w.text) {
                push(w, file, FileKind::Requirements);
            }
        }
        // `cat FILE | xargs pip install`, `xargs -a FILE pip install`, `xargs pip install < FILE`.
        if cmd.words.iter().take_while(|w| !std::ptr::eq(*w, &argv[0])).any(|w| basename(&w.text) == "xargs") {
            if let Some(w) = xargs_input(script, i) {
                push(w, &w.text.clone(), FileKind::Requirements);
            }
        }
        return out;
    }
    let sync = match prog {
        "pip-sync" => Some(&argv[1..]),
        "uv" => match subcommand(argv, &[]) {
            Some(("pip", rest)) => rest.first().filter(|w| w.text == "sync").map(|_| &rest[1..]),
            _ => None,
        },
        _ => None,
    };
    if let Some(args) = sync {
        for w in positionals(args, PIP_TAKES_VALUE) {
            push(w, &w.text.clone(), FileKind::Requirements);
        }
        return out;
    }
    if matches!(prog, "conda" | "mamba" | "micromamba") {
        let Some((sub, rest)) = subcommand(argv, CONDA_TAKES_VALUE) else { return out };
        let (sub, rest) = if sub == "env" {
            match subcommand(&argv[argv.len() - rest.len() - 1..], CONDA_TAKES_VALUE) {
                Some((s, r)) => (s, r),
                None => return out,
            }
        } else {
            (sub, rest)
        };
        let env_cmd = argv.iter().any(|w| w.text == "env");
        if !matches!(sub, "create" | "update" | "install") {
            return out;
        }
        let mut any = false;
        file_options(rest, &["-f", "--file"], |w, v| {
            any = true;
            push(w, v, FileKind::Environment)
        });
        if env_cmd && !any && matches!(sub, "create" | "update") {
            // `conda env create` with no `-f` reads environment.yml.
            let at = argv.last().map_or(0..0, |w| w.span.clone());
            out.push(InstallFile { path: "environment.yml".to_string(), span: at, kind: FileKind::Environment });
        }
    }
    out
}

/// Calls `f` with each value of the options `names` (`-r F`, `-rF`, `--requirement=F`).
fn file_options<'w>(args: &'w [Word], names: &[&str], mut f: impl FnMut(&'w Word, &'w str)) {
    let mut i = 0;
    while i < args.len() {
        let w = &args[i];
        i += 1;
        if w.text == "--" {
            break;
        }
        for name in names {
            if w.text == *name {
                if let Some(v) = args.get(i) {
                    f(v, &v.text);
                    i += 1;
                }
            } else if let Some(v) = w.text.strip_prefix(name) {
                if let Some(v) = v.strip_prefix('=') {
                    f(w, v);
                } else if name.len() == 2 && !v.is_empty() && !name.starts_with("--") {
                    f(w, v);
                }
            }
        }
    }
}

/// The file of `$(cat FILE)`, `` `cat FILE` `` or `$(< FILE)`.
fn cat_substitution(word: &str) -> Option<&str> {
    let inner = word
        .strip_prefix("$(")
        .and_then(|r| r.strip_suffix(')'))
        .or_else(|| word.strip_prefix('`').and_then(|r| r.strip_suffix('`')))?
        .trim();
    let file = inner.strip_prefix("cat ").or_else(|| inner.strip_prefix('<'))?.trim();
    (!file.is_empty() && !file.contains([' ', '$', '|', ';', '&'])).then_some(file)
}

/// The file that feeds `xargs` in the `i`th command: `-a FILE`, `< FILE`, or a `cat
/// FILE` (or `grep … FILE`, `sed … FILE`) earlier in its pipeline.
fn xargs_input(script: &Script, i: usize) -> Option<&Word> {
    let cmd = &script.commands[i];
    let mut words = cmd.words.iter();
    while let Some(w) = words.next() {
        if w.text == "-a" || w.text == "--arg-file" {
            return words.next();
        }
    }
    if let Some(w) = &cmd.stdin_from {
        return Some(w);
    }
    let prev = script.commands[..i].iter().rev().take_while(|c| c.pipeline == cmd.pipeline).last()?;
    match prev.program() {
        Some("cat" | "grep" | "sed" | "awk" | "sort" | "cut" | "tr") => {
            prev.argv().iter().skip(1).rev().find(|w| !w.text.starts_with('-') && !w.text.contains(' '))
        }
        _ => None,
    }
}

/// Follows the install files of one `RUN`: the ones found in the build context are
/// handed to lint (`ctx.references`), the others reported. `stage` is the stage with
/// the `RUN`'s bind mounts; `context` the build context on disk.
pub(crate) fn check(ctx: &mut Ctx, script: &Script, stage: &Stage, context: &Path) {
    let mut cwd = stage.workdir.clone();
    for (i, cmd) in script.commands.iter().enumerate() {
        if cmd.program() == Some("cd") {
            if let Some(dir) = cmd.argv().get(1).filter(|w| !is_dynamic(&w.text)) {
                cwd = stage.absolute_from(&cwd, &dir.text);
            }
            continue;
        }
        for file in install_files(script, i) {
            if is_dynamic(&file.path) || file.path == "-" {
                continue;
            }
            if file.path.contains("://") {
                ctx.report(&RULE, file.span, format!("`{}` is read from a URL at build time", file.path))
                    .label("pins cannot be checked")
                    .help("copy the file into the build context and `COPY` it, so that lint reads its pins");
                continue;
            }
            let path = stage.absolute_from(&cwd, &file.path);
            match stage.origin(&path, context) {
                Origin::Context(rel) => ctx.references.push((context.join(rel), file.kind)),
                Origin::Missing(rel) => {
                    ctx.report(
                        &RULE,
                        file.span,
                        format!(
                            "`{}` is copied from `{}`, which is not in the build context",
                            file.path,
                            rel.display()
                        ),
                    )
                    .label("pins cannot be checked")
                    .help("fix the `COPY` source, or add the file beside the Dockerfile");
                }
                Origin::Unknown => {
                    ctx.report(
                        &RULE,
                        file.span,
                        format!(
                            "no `COPY` puts `{}` in the image before this RUN, so its pins cannot be checked",
                            file.path
                        ),
                    )
                    .label("pins cannot be checked")
                    .help(
                        "`COPY` the file from the build context before installing from it; \
                         if it comes from a clone, pin the clone to a commit",
                    );
                }
            }
        }
    }
}
