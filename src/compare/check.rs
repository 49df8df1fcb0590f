//! `pinfold build --check [N]`: the reproducibility gate for CI. The same sources are
//! built N times in one run, each time under other conditions that must not matter,
//! and the digests must agree; when they do not, the first two that differ are
//! compared with the engine of [`super::compare`], so the failure says what leaked.
//!
//! Run 1 is the build as the user asked for it (their cache, their outputs). Every
//! other run is the pinfold binary itself, as a child process, on a copy of the build
//! file's directory, with:
//!
//! - the copy at another path (other depth, a space in a name), its files and
//!   directories created in reverse order, with other mtimes, and with the group and
//!   other permission bits another umask would leave (077, 002, 027);
//! - another umask for the process, `TZ`, `LANG`/`LC_ALL`, `RAYON_NUM_THREADS`,
//!   `PYTHONHASHSEED` (a Python a build runs, such as a step's, must not leak its
//!   hash order into files), `HOME`, `TMPDIR`, an extra variable, and a fresh empty
//!   cache directory;
//! - `SOURCE_DATE_EPOCH` set to another value, when the build's epoch did not come
//!   from it or from git: when the build file pins `epoch` this must change nothing,
//!   and when nothing pins the epoch (no `epoch`, outside git) it exposes that the
//!   image depends on the builder's environment. When run 1's epoch did come from
//!   `SOURCE_DATE_EPOCH` or from git HEAD, the runs get that same epoch through
//!   `SOURCE_DATE_EPOCH`: the copies are outside the checkout (`.git` is not copied),
//!   and the epoch is then an input of the build, not a perturbation.

use super::report::{Report, Side};
use super::source::{self, Opened};
use super::{compare, CompareError, Options};
use crate::build::{self, BuildError, BuildReport, BuildRequest};
use crate::plan::EpochOrigin;
use pinfold_image::digest::Digest;
use pinfold_image::oci::reference::ImageRef;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("--check runs at least 2 builds (N = {0})")]
    TooFew(usize),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("cannot prepare run {run} in {path}: {source}")]
    Io { run: usize, path: PathBuf, source: io::Error },
    #[error("run {run} ({perturbation}) failed with {status}:\n{stderr}")]
    Child { run: usize, perturbation: String, status: String, stderr: String },
    #[error("run {run} printed no digest for image `{image}`")]
    Missing { run: usize, image: String },
    #[error(transparent)]
    Compare(#[from] CompareError),
}

#[derive(Debug, Clone)]
pub struct Request {
    /// Run 1: the build as asked for.
    pub build: BuildRequest,
    pub runs: usize,
    /// Arguments of the other runs besides `-f` and `--cache-dir`: NAMEs,
    /// `--platform`, `--compression`.
    pub child_args: Vec<String>,
    /// The pinfold binary.
    pub exe: PathBuf,
}

/// The conditions of one run.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub run: usize,
    pub build_file: String,
    pub umask: String,
    pub tz: String,
    pub lang: String,
    pub threads: usize,
    pub python_hash_seed: String,
    pub mtime: u64,
    pub source_date_epoch: Option<String>,
    pub digests: BTreeMap<String, Digest>,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "copy at {}, umask {}, TZ={}, LANG={}, RAYON_NUM_THREADS={}, PYTHONHASHSEED={}, mtimes {}, SOURCE_DATE_EPOCH={}",
            self.build_file,
            self.umask,
            self.tz,
            self.lang,
            self.threads,
            self.python_hash_seed,
            self.mtime,
            self.source_date_epoch.as_deref().unwrap_or("(unset)")
        )
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageCheck {
    pub name: String,
    /// One per run, in order.
    pub digests: Vec<Digest>,
    pub reproducible: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct Mismatch {
    pub image: String,
    /// The two runs compared (from 1).
    pub runs: [usize; 2],
    pub report: Report,
}

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    #[serde(skip)]
    pub first: BuildReport,
    pub runs: Vec<Run>,
    pub images: Vec<ImageCheck>,
    pub mismatches: Vec<Mismatch>,
    pub notes: Vec<String>,
}

impl Outcome {
    pub fn reproducible(&self) -> bool {
        self.mismatches.is_empty()
    }
}

const UMASKS: [&str; 3] = ["077", "002", "027"];
const ZONES: [&str; 3] = ["Pacific/Kiritimati", "America/St_Johns", "Asia/Kathmandu"];
const LANGS: [&str; 3] = ["tr_TR.UTF-8", "de_DE.UTF-8", "ja_JP.eucJP"];
const THREADS: [usize; 3] = [1, 3, 7];
const HASH_SEEDS: [&str; 3] = ["random", "0", "4294967295"];

pub fn check(request: &Request) -> Result<Outcome, CheckError> {
    if request.runs < 2 {
        return Err(CheckError::TooFew(request.runs));
    }
    let first = build::build(&request.build)?;
    let root = {
        let f = &request.build.file;
        let dir = f.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        dir.canonicalize().map_err(|source| CheckError::Io { run: 1, path: dir.to_path_buf(), source })?
    };
    let file_name = request.build.file.file_name().map_or_else(|| "pinfold.kdl".into(), |n| n.to_os_string());
    // What run 1 wrote must not be copied into the other runs' trees.
    let mut exclude: Vec<PathBuf> = first
        .images
        .iter()
        .filter_map(|i| match i.output.parse::<ImageRef>() {
            Ok(ImageRef::Layout { dir, .. }) => dir.canonicalize().ok(),
            Ok(ImageRef::OciArchive { file, .. } | ImageRef::DockerArchive { file, .. }) => file.canonicalize().ok(),
            _ => None,
        })
        .collect();
    exclude.extend(request.build.out_root.canonicalize().ok());
    let cache_dir = match (&request.build.cache_dir, request.build.no_cache) {
        (_, true) => None,
        (Some(dir), false) => Some(dir.clone()),
        (None, false) => crate::cache::Cache::default_dir(),
    };
    exclude.extend(cache_dir.and_then(|c| c.canonicalize().ok()));

    let temp = tempfile::Builder::new().prefix("pinfold-check-").tempdir().map_err(|source| CheckError::Io {
        run: 2,
        path: std::env::temp_dir(),
        source,
    })?;
    let mut runs = vec![Run {
        run: 1,
        build_file: request.build.file.display().to_string(),
        umask: "(as inherited)".into(),
        tz: std::env::var("TZ").unwrap_or_else(|_| "(unset)".into()),
        lang: std::env::var("LANG").unwrap_or_else(|_| "(unset)".into()),
        threads: rayon::current_num_threads(),
        python_hash_seed: std::env::var("PYTHONHASHSEED").unwrap_or_else(|_| "(unset)".into()),
        mtime: 0,
        source_date_epoch: request.build.plan_input.source_date_epoch.clone(),
        digests: first.images.iter().map(|i| (i.name.clone(), i.digest)).collect(),
    }];
    for k in 2..=request.runs {
        let p = k - 2;
        let run_dir = temp.path().join(format!("run-{k}"));
        let mut tree = run_dir.join("a dir with spaces");
        for d in 0..k {
            tree.push(format!("d{d}"));
        }
        tree.push(format!("copy-{k}"));
        let umask = u32::from_str_radix(UMASKS[p % 3], 8).unwrap_or(0o077);
        let mtime = 1_234_567_890 + k as u64 * 86_399;
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckError::Io { run: k, path, source }
        };
        copy_tree(&root, &tree, umask, UNIX_EPOCH + Duration::from_secs(mtime), &exclude).map_err(io_err(&tree))?;
        let (work, home, tmp) = (run_dir.join("work"), run_dir.join("home"), run_dir.join("tmp"));
        for d in [&work, &home, &tmp] {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        let source_date_epoch = match first.epoch_origin {
            EpochOrigin::SourceDateEpoch | EpochOrigin::GitHead => Some(first.epoch.to_string()),
            EpochOrigin::BuildFile | EpochOrigin::Zero => Some((1_500_000_000 + k as u64 * 1_000_003).to_string()),
        };
        let mut run = Run {
            run: k,
            build_file: tree.join(&file_name).display().to_string(),
            umask: UMASKS[p % 3].into(),
            tz: ZONES[p % 3].into(),
            lang: LANGS[p % 3].into(),
            threads: THREADS[p % 3],
            python_hash_seed: HASH_SEEDS[p % 3].into(),
            mtime,
            source_date_epoch,
            digests: BTreeMap::new(),
        };
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("umask {}; exec \"$0\" \"$@\"", run.umask))
            .arg(&request.exe)
            .arg("build")
            .args(&request.child_args)
            .arg("-f")
            .arg(tree.join(&file_name))
            .arg("--cache-dir")
            .arg(run_dir.join("cache"))
            .current_dir(&work)
            .env("TZ", &run.tz)
            .env("LANG", &run.lang)
            .env("LC_ALL", &run.lang)
            .env("RAYON_NUM_THREADS", run.threads.to_string())
            .env("PYTHONHASHSEED", &run.python_hash_seed)
            .env("HOME", &home)
            .env("TMPDIR", &tmp)
            .env("PINFOLD_CHECK_RUN", format!("{k} (an extra variable: must not matter) ü"))
            .env_remove("PINFOLD_CACHE_DIR")
            .env_remove("XDG_CACHE_HOME");
        match &run.source_date_epoch {
            Some(v) => command.env("SOURCE_DATE_EPOCH", v),
            None => command.env_remove("SOURCE_DATE_EPOCH"),
        };
        let output = command.output().map_err(io_err(&request.exe))?;
        if !output.status.success() {
            return Err(CheckError::Child {
                run: k,
                perturbation: run.describe(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if let Some((name, digest)) = line.split_once(' ') {
                if let Ok(d) = digest.trim().parse::<Digest>() {
                    run.digests.insert(name.to_string(), d);
                }
            }
        }
        runs.push(run);
    }

    let mut images = Vec::new();
    let mut mismatches = Vec::new();
    let mut notes = Vec::new();
    for image in &first.images {
        let mut digests = Vec::new();
        for run in &runs {
            let d = run
                .digests
                .get(&image.name)
                .ok_or_else(|| CheckError::Missing { run: run.run, image: image.name.clone() })?;
            digests.push(*d);
        }
        let reproducible = digests.iter().all(|d| *d == digests[0]);
        if let Some(k) = digests.iter().position(|d| *d != digests[0]) {
            let run = &runs[k];
            let first_ref: ImageRef = image.output.parse().map_err(CompareError::Usage)?;
            let other_ref = ImageRef::Layout {
                dir: temp.path().join(format!("run-{}", run.run)).join("work/pinfold-out").join(&image.name),
                reference: None,
            };
            let a = open_view(&first_ref, format!("{} (run 1)", image.output))?;
            let b = open_view(&other_ref, format!("{} (run {}: {})", image.name, run.run, run.describe()))?;
            let report = compare(&a, &b, Options::default())?;
            if first.epoch_origin == EpochOrigin::Zero {
                notes.push(format!(
                    "the build file sets no `epoch`, is not in a git checkout, and SOURCE_DATE_EPOCH was unset: run 1 used epoch 0 and run {} SOURCE_DATE_EPOCH={}; pin the epoch with `epoch` in the build file",
                    run.run,
                    run.source_date_epoch.as_deref().unwrap_or_default()
                ));
            }
            mismatches.push(Mismatch { image: image.name.clone(), runs: [1, run.run], report });
        }
        images.push(ImageCheck { name: image.name.clone(), digests, reproducible });
    }
    Ok(Outcome { first, runs, images, mismatches, notes })
}

fn open_view(reference: &ImageRef, label: String) -> Result<source::View, CompareError> {
    match source::open(reference, &label, Side::A)? {
        Opened::View(v) => Ok(v),
        Opened::Tampered(t) => Err(CompareError::Usage(format!("{label}: {} does not match its digest", t.blob))),
    }
}

/// Copies `from` to `to` as another machine might hold it: entries created in reverse
/// order, every mtime `mtime`, group and other bits as `umask` leaves them (the
/// owner's bits and whether a file is executable are kept). Symlinks stay symlinks;
/// `.git`, `exclude`d paths and special files are left out.
pub fn copy_tree(from: &Path, to: &Path, umask: u32, mtime: SystemTime, exclude: &[PathBuf]) -> io::Result<()> {
    let mut entries = Vec::new();
    let walk = walkdir::WalkDir::new(from)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git" && !exclude.iter().any(|x| x == e.path()));
    for e in walk {
        entries.push(e.map_err(io::Error::other)?);
    }
    fs::create_dir_all(to)?;
    let rel = |e: &walkdir::DirEntry| e.path().strip_prefix(from).map(|r| to.join(r)).map_err(io::Error::other);
    let mut dirs = Vec::new();
    for e in entries.iter().rev() {
        let dest = rel(e)?;
        let ft = e.file_type();
        if ft.is_dir() {
            fs::create_dir_all(&dest)?;
            dirs.push(dest);
        } else if ft.is_symlink() {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            std::os::unix::fs::symlink(fs::read_link(e.path())?, &dest)?;
        } else if ft.is_file() {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::copy(e.path(), &dest)?;
            let executable = e.metadata().map_err(io::Error::other)?.permissions().mode() & 0o111 != 0;
            let mode = if executable { 0o777 & !umask | 0o700 } else { 0o666 & !umask | 0o600 };
            fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
            fs::File::open(&dest)?.set_times(fs::FileTimes::new().set_modified(mtime).set_accessed(mtime))?;
        }
    }
    // Directories last and deepest first: filling a directory changes its mtime.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.push(to.to_path_buf());
    for d in dirs {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777 & !umask | 0o700))?;
        fs::File::open(&d)?.set_times(fs::FileTimes::new().set_modified(mtime).set_accessed(mtime))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_keeps_content_and_executability_and_changes_the_rest() {
        let from = tempfile::tempdir().unwrap();
        fs::create_dir_all(from.path().join("a/b")).unwrap();
        fs::write(from.path().join("a/b/run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(from.path().join("a/b/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(from.path().join("a/data"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.path().join("a/link")).unwrap();
        fs::create_dir_all(from.path().join(".git")).unwrap();
        let to = tempfile::tempdir().unwrap();
        let dest = to.path().join("copy");
        let when = UNIX_EPOCH + Duration::from_secs(1_234_567_890);
        copy_tree(from.path(), &dest, 0o077, when, &[]).unwrap();
        let mode = |p: &str| fs::symlink_metadata(dest.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("a/b/run.sh"), 0o700);
        assert_eq!(mode("a/data"), 0o600);
        assert_eq!(fs::read_link(dest.join("a/link")).unwrap(), Path::new("/etc/passwd"));
        assert_eq!(fs::read_to_string(dest.join("a/data")).unwrap(), "x");
        assert!(!dest.join(".git").exists());
        assert_eq!(fs::metadata(dest.join("a")).unwrap().modified().unwrap(), when);
    }
}
