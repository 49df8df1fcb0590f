//! Runs the Dockerfile rules: resolves every `FROM` (build arguments substituted,
//! earlier stage names and `scratch` recognised), finds the image references of
//! `COPY --from`, and hands each `RUN` (shell form, exec form, heredoc) to the command
//! rules.

use super::context::Stage;
use super::dockerfile::{self, Dockerfile, Instruction};
use super::mapped::MappedText;
use super::rule::Ctx;
use super::rules;
use super::shell::Script;
use std::ops::Range;

/// An image that a Dockerfile pulls, as written and as BuildKit would resolve it.
pub struct ImageUse<'a> {
    pub instruction: &'a Instruction,
    /// As written, e.g. `${BASE}:${VERSION}`.
    pub written: String,
    /// With build arguments substituted; `None` when an argument has no default.
    pub resolved: Option<String>,
    /// The written reference, mapped to the file.
    pub mapped: MappedText,
    /// `FROM` (true) or `COPY --from=` (false).
    pub from: bool,
}

impl ImageUse<'_> {
    pub fn span(&self) -> Range<usize> {
        self.mapped.map_range(0..self.mapped.text.len())
    }

    /// The file span of a range of the resolved reference: exact when nothing was
    /// substituted, else the whole written reference.
    pub fn span_of(&self, range: Range<usize>) -> Range<usize> {
        if self.resolved.as_deref() == Some(self.written.as_str()) {
            self.mapped.map_range(range)
        } else {
            self.span()
        }
    }

    /// How to name the image in a message: the written form and, when it differs,
    /// what it resolves to.
    pub fn describe(&self) -> String {
        match &self.resolved {
            Some(r) if *r != self.written => format!("`{}` (= `{r}`)", self.written),
            _ => format!("`{}`", self.written),
        }
    }
}

/// The images pulled from a registry (stage references and `scratch` left out).
pub fn image_uses(df: &Dockerfile) -> Vec<ImageUse<'_>> {
    let args = dockerfile::meta_args(df);
    let mut stages: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for ins in &df.instructions {
        match ins.keyword.as_str() {
            "FROM" => {
                let rest = ins.rest();
                let words = dockerfile::split_words(&rest.text);
                let Some((image, range)) = words.first() else {
                    continue;
                };
                let resolved = dockerfile::substitute(image, &args, df.escape);
                let name = resolved.as_deref().unwrap_or(image).to_ascii_lowercase();
                // A stage name refers to an earlier stage of this file, not an image.
                let is_stage = stages.contains(&name);
                if let (Some((kw, _)), Some((stage, _))) = (words.get(1), words.get(2)) {
                    if kw.eq_ignore_ascii_case("as") {
                        stages.push(stage.to_ascii_lowercase());
                    }
                }
                if name == "scratch" || is_stage {
                    continue;
                }
                out.push(ImageUse {
                    instruction: ins,
                    written: image.to_string(),
                    resolved,
                    mapped: rest.sub(range.clone()),
                    from: true,
                });
            }
            "COPY" => {
                let (flags, _) = ins.flags();
                for f in flags.iter().filter(|f| f.name == "from") {
                    let Some(value) = &f.value else { continue };
                    let lower = value.to_ascii_lowercase();
                    if stages.contains(&lower) || value.chars().all(|c| c.is_ascii_digit()) || lower == "scratch" {
                        continue;
                    }
                    // Only references that look like images: a stage name that was
                    // mistyped would fail the build anyway.
                    let mapped = MappedText::coarse(value.clone(), f.span.end - value.len()..f.span.end);
                    let resolved = dockerfile::substitute(value, &args, df.escape);
                    out.push(ImageUse { instruction: ins, written: value.clone(), resolved, mapped, from: false });
                }
            }
            _ => {}
        }
    }
    out
}

pub fn check(ctx: &mut Ctx, df: &Dockerfile) {
    let uses = image_uses(df);
    rules::pf201_from_without_digest::check(ctx, &uses);
    rules::pf202_from_latest_tag::check(ctx, &uses);
    rules::pf203_from_untagged::check(ctx, &uses);
    rules::pf204_add_url_without_checksum::check(ctx, df);
    rules::pf205_add_local_file::check(ctx, df);
    rules::pf206_moving_download_url::check_add(ctx, df);

    // The base of each stage, as resolved, by the FROM instruction's position.
    let bases: Vec<(usize, Option<String>)> =
        uses.iter().filter(|u| u.from).map(|u| (u.instruction.span.start, u.resolved.clone())).collect();
    let context = ctx.base_dir.clone().map(|d| if d.as_os_str().is_empty() { ".".into() } else { d });
    let mut stage = Stage::new();
    // The scripts of every RUN, read once: a RUN's checks look at the next RUN of its
    // stage too (a clone there pinned by a checkout here).
    let runs: Vec<Option<Vec<Script>>> = df
        .instructions
        .iter()
        .scan(true, |shell, ins| {
            Some(match ins.keyword.as_str() {
                "FROM" => {
                    *shell = true;
                    None
                }
                "SHELL" => {
                    *shell = posix(ins);
                    None
                }
                "RUN" => Some(run_scripts(ins, *shell)),
                _ => None,
            })
        })
        .collect();
    for (i, ins) in df.instructions.iter().enumerate() {
        match ins.keyword.as_str() {
            "FROM" => {
                stage = Stage::new();
                ctx.stage_base = bases.iter().find(|b| b.0 == ins.span.start).and_then(|b| b.1.clone());
            }
            "WORKDIR" | "COPY" | "ADD" => stage.instruction(ins),
            "RUN" => {
                let Some(scripts) = &runs[i] else { continue };
                let next_run = df.instructions[i + 1..]
                    .iter()
                    .zip(&runs[i + 1..])
                    .take_while(|(n, _)| n.keyword != "FROM")
                    .find_map(|(_, r)| r.as_ref());
                let later = next_run.map_or(&[][..], Vec::as_slice);
                ctx.unit = ins.span.start;
                let mut with_mounts = stage.clone();
                with_mounts.mounts(ins);
                for script in scripts {
                    rules::check_script(ctx, script, later);
                    rules::pf206_moving_download_url::check(ctx, script);
                    if let Some(dir) = &context {
                        rules::pf314_install_file_unchecked::check(ctx, script, &with_mounts, dir);
                    }
                }
            }
            _ => {}
        }
    }
    ctx.stage_base = None;
}

/// True when a `SHELL` runs POSIX shell: some element of its command is a shell
/// (`["/bin/bash", "-c"]`, `["conda", "run", "-n", "env", "/bin/bash", "-c"]`), not
/// PowerShell or cmd.
fn posix(ins: &Instruction) -> bool {
    ins.exec_form().is_none_or(|argv| {
        argv.iter().any(|(p, _)| {
            let p = super::shell::basename(p).to_ascii_lowercase();
            super::shell::is_shell(p.trim_end_matches(".exe"))
        })
    })
}

/// The shell scripts a `RUN` runs: its command line (exec or shell form) and the
/// heredocs that are fed to a shell.
fn run_scripts(ins: &Instruction, posix_shell: bool) -> Vec<Script> {
    let mut out = Vec::new();
    let line = if let Some(argv) = ins.exec_form() {
        Script::from_argv(&argv)
    } else if posix_shell {
        Script::parse(&ins.rest())
    } else {
        Script::default()
    };
    // `RUN <<EOF` runs the body with the default shell, `RUN bash <<EOF` with bash.
    let feeds_shell = match line.commands.first() {
        None => posix_shell,
        Some(c) => c.program().is_some_and(super::shell::is_shell) && c.argv().len() == 1,
    };
    if feeds_shell {
        for h in &ins.heredocs {
            out.push(Script::parse(&h.body));
        }
    }
    out.push(line);
    out
}
