//! pinfold-lang: the build language. `pinfold.kdl` text → a typed syntax tree whose every value
//! keeps its span ([`syntax`]). KDL itself is parsed by the `kdl` crate (KDL 2.0); this
//! module checks the shape of the document (known nodes, arguments, properties and
//! their types) and reports every problem of a file at once, not only the first.
//!
//! What the names refer to (bases, files on disk, digests of content) is checked one
//! stage later, in the application's plan. The reference of the language is
//! `spec/language.md`.
//!
//! Beside the syntax: [`diag`], the one diagnostic model (codes as a type, spans,
//! rendering with miette) that build-file errors and lint findings share, and
//! [`lock`], the format of `pinfold.lock`.
//!
//! It imports only `pinfold-image` (platforms, image paths, compression names): it
//! opens no file a build file names and runs nothing. Entry point: [`parse()`].

pub mod diag;
pub mod lock;
pub mod packages;
pub mod parse;
pub mod syntax;
pub mod test_block;

pub use parse::parse;
pub use syntax::*;
pub use test_block::TestDecl;

/// Reads a build file as a [`diag::Source`] named by its file name, or reports why it
/// cannot (`pinfold::unreadable`): every command that reads a build file says the same.
pub fn read_build_file(path: &std::path::Path, diags: &mut diag::Diagnostics) -> Option<diag::Source> {
    use diag::{Code, Diagnostic};
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                diags.push(Diagnostic::error(Code::Unreadable, format!("{} is not UTF-8 text", path.display())));
                return None;
            }
        },
        Err(e) => {
            diags.push(
                Diagnostic::error(Code::Unreadable, format!("cannot read the build file {}: {e}", path.display()))
                    .help("name it with -f FILE, or run pinfold in the directory that holds pinfold.kdl"),
            );
            return None;
        }
    };
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    Some(diag::Source::new(name, text))
}
