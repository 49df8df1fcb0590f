//! `copy`: files and directories of the build context into a layer tree. Only
//! metadata is read here; contents are streamed later by the layer writer.
//!
//! What is taken from the machine is as little as the spec allows: the bytes, and
//! whether a file is executable. Owner, times and the rest of the mode come from the
//! build file. Symlinks are kept as symlinks (never followed); hard links become
//! separate files; sockets, FIFOs and devices are refused.

use super::Cx;
use pinfold_image::layer::tree::normalize_image_path;
use pinfold_image::layer::{EntryKind, FileSource, LayerEntry, LayerTree};
use pinfold_image::walk::FileStat;
use pinfold_lang::diag::Code;
use pinfold_lang::diag::Diagnostic;
use pinfold_lang::{Attributes, Spanned};
use std::path::Path;

/// Names never copied from the build file's own directory.
pub const SKIPPED_AT_ROOT: &[&str] = &[".git", "pinfold-out"];

impl Cx<'_> {
    pub(super) fn copy_entry(
        &mut self,
        source: &Spanned<String>,
        to: &Spanned<String>,
        attrs: &Attributes,
        tree: &mut LayerTree,
    ) -> bool {
        if let Some(why) = self.escapes_root(&source.value) {
            self.error(
                Diagnostic::error(Code::PathEscape, format!("`{}` is outside the build file's directory", source.value))
                    .at(source.span, why)
                    .help("a build reads only files below its build file, so that a checkout of the repository has all it needs"),
            );
            return false;
        }
        // `.` components are dropped so that `copy "."` names the root itself.
        let relative: std::path::PathBuf =
            Path::new(&source.value).components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
        let path = self.root.join(&relative);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                let d = Diagnostic::error(
                    Code::PathMissing,
                    format!("`{}` cannot be read: {}", source.value, plain_io(&e)),
                )
                .at(source.span, "no such file or directory below the build file");
                self.error(d);
                return false;
            }
        };
        // A symlink on the way (`vendor -> /etc`) would let a relative path read
        // outside the repository: the resolved parent must still be below the root.
        let parent = if relative.as_os_str().is_empty() { self.root } else { path.parent().unwrap_or(self.root) };
        match parent.canonicalize() {
            Ok(real) if real.starts_with(self.root) => {}
            _ => {
                self.error(
                    Diagnostic::error(
                        Code::PathEscape,
                        format!("`{}` resolves outside the build file's directory", source.value),
                    )
                    .at(source.span, "a symlink on this path leads out of the repository"),
                );
                return false;
            }
        }
        let uid = attrs.uid.as_ref().map_or(0, |u| u.value);
        let gid = attrs.gid.as_ref().map_or(0, |g| g.value);
        let file_mode = attrs.mode.as_ref().map(|m| m.value);
        // `None`: the image's root, which only a directory or `to` ending in `/` can fill.
        let dest = normalize_image_path(&to.value);
        let into_dir = to.value.ends_with('/');

        if meta.is_dir() {
            self.walk_into(&path, dest, file_mode, uid, gid, source, tree)
        } else {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let dest = match dest {
                Some(dest) if into_dir => format!("{dest}/{name}"),
                Some(dest) => dest,
                None => name.to_string(),
            };
            self.copy_one(&path, &FileStat::from_metadata(&meta), dest, file_mode, uid, gid, source, tree)
        }
    }

    /// Puts the content of the directory `dir` below `prefix` (the root when `None`).
    #[allow(clippy::too_many_arguments)]
    fn walk_into(
        &mut self,
        dir: &Path,
        prefix: Option<String>,
        file_mode: Option<u32>,
        uid: u64,
        gid: u64,
        source: &Spanned<String>,
        tree: &mut LayerTree,
    ) -> bool {
        if let Some(dest) = &prefix {
            let dir_entry = LayerEntry { kind: EntryKind::Dir, mode: 0o755, uid, gid };
            if tree.insert(dest.clone(), dir_entry).is_err() {
                return self.conflict(source, dest);
            }
        }
        let mut ok = true;
        // At the build file's directory, `.git` and pinfold's own outputs are never
        // content: they change with every commit and build, and would make a copy of
        // the repository unreproducible (or contain its previous build).
        let at_root = dir == self.root;
        let skipped = |rel: &str| at_root && SKIPPED_AT_ROOT.contains(&rel);
        let found = match pinfold_image::walk::entries(dir, &skipped) {
            Ok(found) => found,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                self.error(
                    Diagnostic::error(Code::BadPath, format!("below `{}`, {e}", source.value))
                        .at(source.span, "copied from here")
                        .help("rename the file: image paths must be valid UTF-8 to be portable"),
                );
                return false;
            }
            Err(e) => {
                self.error(
                    Diagnostic::error(Code::PathMissing, format!("cannot read below `{}`: {e}", source.value))
                        .at(source.span, "while walking this directory"),
                );
                return false;
            }
        };
        for (rel, stat) in found {
            let target = match &prefix {
                Some(p) => format!("{p}/{rel}"),
                None => rel.clone(),
            };
            ok &= self.copy_one(&dir.join(&rel), &stat, target, file_mode, uid, gid, source, tree);
        }
        ok
    }

    pub(super) fn download_entry(
        &mut self,
        name: &Spanned<String>,
        to: &Spanned<String>,
        attrs: &Attributes,
        tree: &mut LayerTree,
    ) -> bool {
        if self.inputs.failed.contains(&name.value) {
            return false;
        }
        let Some(files) = self.inputs.downloads.get(&name.value) else {
            let d = super::inputs::unknown_input("download", name, self.inputs.downloads.keys());
            self.error(d);
            return false;
        };
        let platform = self.platform.clone();
        let file = files
            .iter()
            .find(|(p, _, _)| p.is_some() && p.as_ref() == platform.as_ref())
            .or_else(|| files.iter().find(|(p, _, _)| p.is_none()));
        let Some((_, file_name, path)) = file.cloned() else {
            let p = platform.map_or_else(|| "this platform".to_string(), |p| p.to_string());
            self.error(
                Diagnostic::error(Code::InputPlatform, format!("download `{}` has no file for {p}", name.value))
                    .at(name.span, "used here")
                    .help("add `platform \"…\" url=… sha256=…` for it to the download"),
            );
            return false;
        };
        let Some(mut dest) = normalize_image_path(&to.value) else { return false };
        if to.value.ends_with('/') {
            // A directory receives the file under the name its URL gives it (as `curl
            // -O` and Docker's `ADD URL /dir/` name it); the download's name when the
            // URL names none.
            let file_name = if file_name.is_empty() { name.value.as_str() } else { file_name.as_str() };
            dest = format!("{dest}/{file_name}");
        }
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) => {
                self.error(
                    Diagnostic::error(Code::Store, format!("the stored download `{}` cannot be read: {e}", name.value))
                        .at(name.span, "used here"),
                );
                return false;
            }
        };
        let entry = LayerEntry {
            kind: EntryKind::File { source: FileSource::Path(path, None), size },
            mode: attrs.mode.as_ref().map_or(0o644, |m| m.value),
            uid: attrs.uid.as_ref().map_or(0, |u| u.value),
            gid: attrs.gid.as_ref().map_or(0, |g| g.value),
        };
        if tree.insert(dest.clone(), entry).is_err() {
            return self.conflict(to, &dest);
        }
        true
    }

    pub(super) fn extract_entry(
        &mut self,
        name: &Spanned<String>,
        to: &Spanned<String>,
        attrs: &Attributes,
        tree: &mut LayerTree,
    ) -> bool {
        if self.inputs.failed.contains(&name.value) {
            return false;
        }
        let Some(dir) = self.inputs.archives.get(&name.value).cloned() else {
            let d = super::inputs::unknown_input("archive", name, self.inputs.archives.keys());
            self.error(d);
            return false;
        };
        let uid = attrs.uid.as_ref().map_or(0, |u| u.value);
        let gid = attrs.gid.as_ref().map_or(0, |g| g.value);
        self.walk_into(&dir, normalize_image_path(&to.value), None, uid, gid, name, tree)
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_one(
        &mut self,
        path: &Path,
        stat: &FileStat,
        dest: String,
        file_mode: Option<u32>,
        uid: u64,
        gid: u64,
        source: &Spanned<String>,
        tree: &mut LayerTree,
    ) -> bool {
        let entry = if stat.is_dir() {
            LayerEntry { kind: EntryKind::Dir, mode: 0o755, uid, gid }
        } else if stat.is_file() {
            let mode = file_mode.unwrap_or(if stat.executable() { 0o755 } else { 0o644 });
            LayerEntry {
                kind: EntryKind::File { source: FileSource::Path(path.to_path_buf(), Some(*stat)), size: stat.size },
                mode,
                uid,
                gid,
            }
        } else if stat.is_symlink() {
            let target = match std::fs::read_link(path) {
                Ok(t) => t,
                Err(e) => {
                    self.error(
                        Diagnostic::error(Code::PathMissing, format!("cannot read the link `{}`: {e}", path.display()))
                            .at(source.span, "copied from here"),
                    );
                    return false;
                }
            };
            let Some(target) = target.to_str() else {
                self.error(
                    Diagnostic::error(
                        Code::BadPath,
                        format!("the link `{}` points to a name that is not UTF-8", path.display()),
                    )
                    .at(source.span, "copied from here"),
                );
                return false;
            };
            LayerEntry { kind: EntryKind::Symlink { target: target.to_string() }, mode: 0o777, uid, gid }
        } else {
            self.error(
                Diagnostic::error(
                    Code::SpecialFile,
                    format!("`{}` is a socket, FIFO or device, which a layer cannot hold reproducibly", path.display()),
                )
                .at(source.span, "copied from here")
                .help("remove it from the copied directory, or copy the files around it one by one"),
            );
            return false;
        };
        if tree.insert(dest.clone(), entry).is_err() {
            let dest_span = Spanned::new(dest.clone(), source.span);
            return self.conflict(&dest_span, &dest);
        }
        true
    }

    fn conflict(&mut self, at: &Spanned<String>, path: &str) -> bool {
        self.error(
            Diagnostic::error(Code::PathConflict, format!("`/{path}` is written twice in this layer"))
                .at(at.span, "written again here"),
        );
        false
    }
}

/// An I/O error's message without the "(os error 2)" suffix, for users.
fn plain_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
