//! Runs the Dockerfile rules: resolves every `FROM` (build arguments substituted,
//! earlier stage names and `scratch` recognised), finds the image references of
//! `COPY --from`, and hands each `RUN` (shell form, exec form, heredoc) to the command
//! rules.

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

    let mut posix_shell = true;
    for ins in &df.instructions {
        match ins.keyword.as_str() {
            "FROM" => posix_shell = true,
            "SHELL" => {
                // PowerShell or cmd: the RUN lines are not POSIX shell.
                posix_shell = ins.exec_form().and_then(|a| a.first().map(|(p, _)| p.clone())).is_none_or(|p| {
                    let p = super::shell::basename(&p).to_ascii_lowercase();
                    super::shell::is_shell(p.trim_end_matches(".exe"))
                });
            }
            "RUN" => {
                for script in run_scripts(ins, posix_shell) {
                    rules::check_script(ctx, &script);
                }
            }
            _ => {}
        }
    }
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
