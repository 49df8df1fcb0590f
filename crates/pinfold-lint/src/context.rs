//! Where a file that a `RUN` installs from comes from. `RUN pip install -r
//! requirements.txt` pins exactly what `requirements.txt` pins, so lint follows it: the
//! stage's `WORKDIR`s and `COPY`/`ADD` lines (and `RUN --mount=type=bind`) say which
//! file of the build context is at that path in the image. The build context is
//! taken to be the Dockerfile's directory, as `docker build -f DIR/Dockerfile DIR`
//! and `docker build .` beside it have it.
//!
//! Only what the Dockerfile itself says is used; a path that no `COPY` places (a file
//! from a cloned repository, from another stage, written by an earlier `RUN`) is
//! reported as one whose pins cannot be checked.

use super::dockerfile::{split_words, Instruction};
use std::path::{Path, PathBuf};

/// One `COPY`/`ADD` source (or bind mount) placed in the image.
#[derive(Debug, Clone)]
struct Placed {
    /// Relative to the build context, as written (`.` for all of it).
    src: String,
    /// Absolute path in the image.
    dest: String,
    /// The destination is a directory that receives the source (`COPY a b /dir/`,
    /// `COPY a .`), rather than the source's new name.
    into_dir: bool,
}

/// What a stage has placed so far.
#[derive(Debug, Clone, Default)]
pub struct Stage {
    pub workdir: String,
    placed: Vec<Placed>,
}

/// Where a path in the image came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file of the build context (relative to it), which exists.
    Context(PathBuf),
    /// A `COPY` places it from the build context, but the context has no such file.
    Missing(PathBuf),
    /// Nothing in the Dockerfile places it.
    Unknown,
}

impl Stage {
    pub fn new() -> Stage {
        Stage { workdir: "/".to_string(), placed: Vec::new() }
    }

    /// Takes note of a `WORKDIR`, `COPY` or `ADD` (from the build context: `--from`
    /// and heredoc sources are not).
    pub fn instruction(&mut self, ins: &Instruction) {
        match ins.keyword.as_str() {
            "WORKDIR" => {
                let dir = ins.rest().text.trim().trim_matches('"').to_string();
                self.workdir = self.absolute(&dir);
            }
            "COPY" | "ADD" => {
                let (flags, _) = ins.flags();
                if flags.iter().any(|f| f.name == "from") || !ins.heredocs.is_empty() {
                    return;
                }
                let mut words: Vec<String> = match ins.exec_form() {
                    Some(argv) => argv.into_iter().map(|(t, _)| t).collect(),
                    None => split_words(&ins.rest().text).into_iter().map(|(w, _)| w.to_string()).collect(),
                };
                let Some(dest) = words.pop() else { return };
                let into_dir = words.len() > 1 || dest.ends_with('/') || dest == "." || dest == "..";
                let dest = self.absolute(&dest);
                for src in words {
                    if src.contains("://") {
                        continue;
                    }
                    self.placed.push(Placed { src: normalize_relative(&src), dest: dest.clone(), into_dir });
                }
            }
            _ => {}
        }
    }

    /// Takes note of the bind mounts of a `RUN` (`--mount=type=bind,source=S,target=T`
    /// without `from=`), which last for that `RUN` only: the caller keeps a copy.
    pub fn mounts(&mut self, ins: &Instruction) {
        let (flags, _) = ins.flags();
        for f in flags.iter().filter(|f| f.name == "mount") {
            let Some(value) = &f.value else { continue };
            let mut kind = "bind";
            let (mut src, mut dst, mut from) = (".".to_string(), None, false);
            for kv in value.split(',') {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                match k {
                    "type" => kind = if v == "bind" { "bind" } else { "other" },
                    "source" | "src" => src = v.to_string(),
                    "target" | "dst" | "destination" => dst = Some(v.to_string()),
                    "from" => from = true,
                    _ => {}
                }
            }
            if let (Some(dst), "bind", false) = (dst, kind, from) {
                let dest = self.absolute(&dst);
                self.placed.push(Placed { src: normalize_relative(&src), dest, into_dir: false });
            }
        }
    }

    /// An image path, relative to `cwd` (the `WORKDIR`, or a `cd` of the `RUN`),
    /// made absolute and normalised.
    pub fn absolute_from(&self, cwd: &str, path: &str) -> String {
        let joined = if path.starts_with('/') { path.to_string() } else { format!("{cwd}/{path}") };
        let mut parts: Vec<&str> = Vec::new();
        for part in joined.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        format!("/{}", parts.join("/"))
    }

    fn absolute(&self, path: &str) -> String {
        self.absolute_from(&self.workdir, path)
    }

    /// Where the file at `path` (absolute, in the image) comes from; `context` is the
    /// build context on disk. The last placement that covers it wins, as in the image.
    pub fn origin(&self, path: &str, context: &Path) -> Origin {
        for p in self.placed.iter().rev() {
            let src_path = context.join(&p.src);
            let src_is_dir = p.src == "." || src_path.is_dir();
            let rel: Option<PathBuf> = if src_is_dir {
                // The directory's contents land in `dest`.
                path.strip_prefix(&p.dest)
                    .and_then(|r| r.strip_prefix('/').or((p.dest == "/").then_some(r)))
                    .filter(|r| !r.is_empty())
                    .map(|r| Path::new(&p.src).join(r))
            } else if p.src.contains('*') || p.src.contains('?') {
                let (dir, pattern) = p.src.rsplit_once('/').unwrap_or(("", &p.src));
                let name = path.rsplit('/').next().unwrap_or("");
                let parent = &path[..path.len() - name.len()];
                (p.into_dir && parent.trim_end_matches('/') == p.dest.trim_end_matches('/') && glob(pattern, name))
                    .then(|| Path::new(dir).join(name))
            } else if p.into_dir {
                let name = p.src.rsplit('/').next().unwrap_or(&p.src);
                (path == format!("{}/{name}", p.dest.trim_end_matches('/'))).then(|| PathBuf::from(&p.src))
            } else {
                (path == p.dest).then(|| PathBuf::from(&p.src))
            };
            if let Some(rel) = rel {
                return if context.join(&rel).is_file() { Origin::Context(rel) } else { Origin::Missing(rel) };
            }
        }
        Origin::Unknown
    }
}

fn normalize_relative(src: &str) -> String {
    let s = src.trim_start_matches("./").trim_end_matches('/');
    if s.is_empty() {
        ".".to_string()
    } else {
        s.to_string()
    }
}

/// `*` and `?` in one path segment, as `COPY` matches them (the two-pointer
/// wildcard match: linear in practice, never exponential).
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == b'?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::Dockerfile;

    #[test]
    fn copies_and_workdirs_place_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("deps")).expect("mkdir");
        std::fs::write(d.join("requirements.txt"), "x\n").expect("write");
        std::fs::write(d.join("deps/base.txt"), "x\n").expect("write");
        let df = Dockerfile::parse(
            "FROM x\nWORKDIR /app\nCOPY requirements.txt .\nCOPY deps/ /opt/deps/\nCOPY req*.txt /r/\nCOPY gone.txt /g.txt\n",
        )
        .expect("parses");
        let mut st = Stage::new();
        for ins in &df.instructions {
            st.instruction(ins);
        }
        assert_eq!(st.workdir, "/app");
        assert_eq!(st.origin("/app/requirements.txt", d), Origin::Context("requirements.txt".into()));
        assert_eq!(st.origin("/opt/deps/base.txt", d), Origin::Context("deps/base.txt".into()));
        assert_eq!(st.origin("/r/requirements.txt", d), Origin::Context("requirements.txt".into()));
        assert_eq!(st.origin("/g.txt", d), Origin::Missing("gone.txt".into()));
        assert_eq!(st.origin("/elsewhere.txt", d), Origin::Unknown);
        assert_eq!(st.absolute_from("/app", "../x/./y.txt"), "/x/y.txt");
    }
}
