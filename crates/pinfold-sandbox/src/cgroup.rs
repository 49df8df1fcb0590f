//! Limits for bubblewrap, which has no cgroup support of its own: pinfold makes a
//! cgroup for the run beside its own (cgroup v2, or the `pids` and `memory`
//! hierarchies of cgroup v1), writes the limits, and moves bubblewrap into it
//! between fork and exec, so that every process of the sandbox is counted from its
//! first instruction. It is removed when the run ends (and by the run's watcher
//! should pinfold die first).
//!
//! This needs a cgroup file system pinfold may write (root, or a delegated v2
//! subtree whose `cgroup.subtree_control` enables both controllers). Where there is
//! none, [`available`] says so and the bubblewrap engine is weaker than the others:
//! see `book/src/run.md`.

use super::Limits;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Where new cgroups go: one directory per hierarchy, each with the files to write.
#[derive(Debug, Clone)]
enum Layout {
    /// cgroup v2: one directory, `pids.max` and `memory.max`.
    Unified(PathBuf),
    /// cgroup v1: the `pids` parent and the `memory` parent.
    Split { pids: PathBuf, memory: PathBuf },
}

/// `(mount root, mount point, fstype, super options)` of each cgroup mount.
fn cgroup_mounts() -> Vec<(String, PathBuf, String, String)> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let _source = r.next();
            let options = r.next().unwrap_or_default();
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some((fields.get(3)?.to_string(), PathBuf::from(fields.get(4)?), fstype.to_string(), options.to_string()))
        })
        .collect()
}

/// This process's cgroup path in the hierarchy named `key` (`""` for v2, else a
/// controller) from `/proc/self/cgroup`.
fn own_path(key: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if key.is_empty() { controllers.is_empty() } else { controllers.split(',').any(|c| c == key) };
        matches.then(|| path.to_string())
    })
}

/// The directory of this process's cgroup under a mount, when the mount shows it.
fn parent_dir(mount_root: &str, mount_point: &Path, own: &str) -> Option<PathBuf> {
    let below = if mount_root == "/" { own } else { own.strip_prefix(mount_root)? };
    let dir = mount_point.join(below.trim_start_matches('/'));
    let writable = rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK).is_ok();
    (dir.is_dir() && writable).then_some(dir)
}

fn layout() -> Option<&'static Layout> {
    static LAYOUT: OnceLock<Option<Layout>> = OnceLock::new();
    LAYOUT
        .get_or_init(|| {
            let mounts = cgroup_mounts();
            let v1 = |controller: &str| {
                let (root, point, _, _) =
                    mounts.iter().find(|(_, _, t, o)| t == "cgroup" && o.split(',').any(|x| x == controller))?;
                parent_dir(root, point, &own_path(controller)?)
            };
            if let (Some(pids), Some(memory)) = (v1("pids"), v1("memory")) {
                return Some(Layout::Split { pids, memory });
            }
            let (root, point, _, _) = mounts.iter().find(|(_, _, t, _)| t == "cgroup2")?;
            let dir = parent_dir(root, point, &own_path("")?)?;
            let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            let has = |c: &str| enabled.split_whitespace().any(|x| x == c);
            (has("pids") && has("memory")).then_some(Layout::Unified(dir))
        })
        .as_ref()
}

/// Whether pinfold can give a bubblewrap sandbox a pids and a memory limit here.
pub fn available() -> bool {
    layout().is_some()
}

/// The directories a run named `name` gets (for the watcher's cleanup).
pub fn dirs_for(name: &str) -> Vec<PathBuf> {
    match layout() {
        Some(Layout::Unified(dir)) => vec![dir.join(name)],
        Some(Layout::Split { pids, memory }) => vec![pids.join(name), memory.join(name)],
        None => Vec::new(),
    }
}

/// A run's cgroup: its directories and, open, the `cgroup.procs` files that move a
/// process into it.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    procs: Vec<fs::File>,
}

impl Cgroup {
    /// Makes the cgroup of the run `name` with `limits`.
    pub fn create(name: &str, limits: &Limits) -> io::Result<Cgroup> {
        let layout = layout().ok_or_else(|| io::Error::other("no writable cgroup hierarchy with pids and memory"))?;
        let mut cgroup = Cgroup { dirs: Vec::new(), procs: Vec::new() };
        let mut make = |dir: PathBuf, files: &[(&str, String)]| -> io::Result<()> {
            fs::create_dir(&dir)?;
            cgroup.dirs.push(dir.clone());
            for (file, value) in files {
                fs::write(dir.join(file), value)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.join(file).display())))?;
            }
            cgroup.procs.push(fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs"))?);
            Ok(())
        };
        let made = match layout {
            Layout::Unified(dir) => make(
                dir.join(name),
                &[("pids.max", limits.pids.to_string()), ("memory.max", limits.memory.to_string())],
            ),
            Layout::Split { pids, memory } => make(pids.join(name), &[("pids.max", limits.pids.to_string())])
                .and_then(|()| make(memory.join(name), &[("memory.limit_in_bytes", limits.memory.to_string())])),
        };
        match made {
            Ok(()) => Ok(cgroup),
            Err(e) => {
                cgroup.remove();
                Err(e)
            }
        }
    }

    /// The `cgroup.procs` descriptors; writing `0` to each moves the writer in.
    pub fn procs_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(|f| f.as_raw_fd()).collect()
    }

    /// Kills what is left in the cgroup and removes it (a cgroup can be removed once
    /// it is empty, which a killed process becomes a moment later).
    pub fn remove(&mut self) {
        self.procs.clear();
        for _ in 0..100 {
            for dir in &self.dirs {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
            }
            self.dirs.retain(|d| fs::remove_dir(d).is_err() && d.exists());
            if self.dirs.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.dirs.is_empty() {
            self.remove();
        }
    }
}
