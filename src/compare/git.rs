//! What pinfold asks git: which revision a build file's tree is at and whether it is
//! clean (for provenance), and a clean checkout of another revision in a temporary
//! worktree (for `verify --rev`), removed afterwards whatever happens.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git ({0}); --rev and provenance need git installed")]
    Missing(std::io::Error),
    #[error("{dir} is not in a git checkout, so --rev cannot be used there")]
    NotARepository { dir: PathBuf },
    #[error("`{rev}` is not a commit of the repository at {repo}: {message}")]
    UnknownRevision { rev: String, repo: PathBuf, message: String },
    #[error("`git {args}` failed in {dir}: {message}")]
    Failed { args: String, dir: PathBuf, message: String },
}

fn git(dir: &Path, args: &[&str]) -> Result<Output, GitError> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(GitError::Missing)
}

fn ok_text(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = git(dir, args)?;
    if !out.status.success() {
        return Err(GitError::Failed {
            args: args.join(" "),
            dir: dir.to_path_buf(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The top directory of the checkout holding `dir`, if any.
pub fn toplevel(dir: &Path) -> Result<Option<PathBuf>, GitError> {
    let out = git(dir, &["rev-parse", "--show-toplevel"])?;
    if !out.status.success() {
        return Ok(None);
    }
    let top = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Ok(Some(top.canonicalize().unwrap_or(top)))
}

/// The state of the sources of a build, as provenance records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceState {
    pub toplevel: PathBuf,
    pub commit: String,
    /// Nothing under the build file's directory differs from the commit (untracked
    /// files count; ignored ones do not).
    pub clean: bool,
    pub remote: Option<String>,
}

/// The revision and cleanliness of `dir`'s checkout; `None` outside git, without
/// git, or before the first commit. `exclude` (the build's outputs) is left out of
/// the cleanliness check.
pub fn state(dir: &Path, exclude: &[PathBuf]) -> Option<SourceState> {
    let toplevel = toplevel(dir).ok()??;
    let commit = ok_text(dir, &["rev-parse", "--verify", "HEAD^{commit}"]).ok()?;
    let mut args: Vec<String> =
        ["status", "--porcelain=v1", "--untracked-files=all", "--", "."].map(String::from).to_vec();
    let dir_real = dir.canonicalize().ok()?;
    for e in exclude {
        if let Ok(rel) = e.strip_prefix(&dir_real) {
            if !rel.as_os_str().is_empty() {
                args.push(format!(":(exclude){}", rel.display()));
            }
        }
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let clean = ok_text(dir, &refs).ok()?.is_empty();
    let remote = ok_text(dir, &["config", "--get", "remote.origin.url"]).ok().filter(|r| !r.is_empty());
    Some(SourceState { toplevel, commit, clean, remote })
}

/// The full commit id `rev` names in the repository at `repo`.
pub fn resolve(repo: &Path, rev: &str) -> Result<String, GitError> {
    let spec = format!("{rev}^{{commit}}");
    let out = git(repo, &["rev-parse", "--verify", "--quiet", &spec])?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let message = if message.is_empty() { "unknown revision (fetch it first?)".to_string() } else { message };
        return Err(GitError::UnknownRevision { rev: rev.to_string(), repo: repo.to_path_buf(), message });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A clean checkout of one commit in a temporary directory, registered as a git
/// worktree of the repository and removed (directory and registration) on drop.
#[derive(Debug)]
pub struct Worktree {
    repo: PathBuf,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Worktree {
    pub fn add(repo: &Path, commit: &str) -> Result<Worktree, GitError> {
        let dir = tempfile::Builder::new().prefix("pinfold-verify-").tempdir().map_err(GitError::Missing)?;
        let path = dir.path().join("src");
        let path_text = path.to_string_lossy().into_owned();
        ok_text(repo, &["worktree", "add", "--detach", "--quiet", &path_text, commit])?;
        Ok(Worktree { repo: repo.to_path_buf(), path, _dir: dir })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let path = self.path.to_string_lossy().into_owned();
        if !matches!(git(&self.repo, &["worktree", "remove", "--force", &path]), Ok(o) if o.status.success()) {
            // The directory goes with the TempDir; prune drops the registration.
            let _ = std::fs::remove_dir_all(&self.path);
            let _ = git(&self.repo, &["worktree", "prune"]);
        }
    }
}
