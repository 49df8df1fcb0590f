//! Starting the container, waiting for it, and cleaning up after it, whatever happens.
//!
//! Three engines: an OCI runtime found on PATH (runc, crun or youki: the bundle's
//! `config.json` is the whole contract), bubblewrap when there is none (the same
//! sandbox expressed as flags), and the Docker engine (`--engine docker`: the image
//! is written as a docker-archive with pinfold's own output code, loaded, and run).
//!
//! Every run gets a bundle directory under the cache (`run/<id>/`) and a unique
//! container id. Cleanup (delete the container, remove the bundle) runs when the run
//! ends, on success and on every error path (a guard value's `Drop`), and, should
//! pinfold itself be killed, in a small watcher process started beside it: a shell
//! waiting on a pipe from pinfold, which sees end-of-file when pinfold dies however
//! it dies, and then deletes what pinfold left. The runtime is started with a
//! parent-death signal so that it never outlives pinfold either. Bundles left by a
//! watcher that could not run (power loss) are swept on a later run: each bundle is
//! locked by the process that owns it, and an unlocked one is stale.

use super::bundle::{self, BindMount, ContainerSpec, Network};
use super::signals::{Forwarding, SIGHUP, SIGINT};
use super::{rootfs, PreparedImage, RunError, EXIT_CANNOT_RUN, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND};
use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// OCI runtimes tried by `--engine auto`, in order.
pub const OCI_RUNTIMES: &[&str] = &["runc", "crun", "youki"];

/// At most this much of a captured stream is kept; the rest is read and dropped so
/// that the program never blocks on a full pipe.
const CAPTURE_LIMIT: usize = 16 << 20;

/// A stale bundle is only swept when it is older than this: a new one may not be
/// locked yet.
const STALE_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Oci { name: String, binary: PathBuf },
    Bwrap { binary: PathBuf },
    Docker { binary: PathBuf },
}

/// How the program's stdio is connected.
#[derive(Debug, Clone)]
pub enum Io {
    /// pinfold's own stdin, stdout and stderr (`pinfold run`).
    Inherit,
    /// Given stdin (or none), stdout and stderr captured (`pinfold test`).
    Capture { stdin: Option<Vec<u8>> },
}

#[derive(Debug, Clone)]
pub struct Control {
    /// Catch SIGINT, SIGTERM and SIGHUP and hand them to the program.
    pub forward_signals: bool,
    /// After a forwarded SIGINT or SIGTERM, how long the program may take to exit
    /// before it is killed.
    pub stop_timeout: Duration,
    /// Kill the program when it runs longer.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
}

/// Finds a program on PATH, and in the sbin directories that a user's PATH may lack
/// (runc is installed as /usr/sbin/runc).
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false))
}

impl Engine {
    /// `auto` (an OCI runtime, else bubblewrap), `runc`, `crun`, `youki`, `bwrap` or
    /// `docker`.
    pub fn select(name: &str) -> Result<Engine, RunError> {
        let missing = |what: &str, package: &str| {
            RunError::NoEngine(format!("`{what}` is not installed (or not on PATH); install {package}"))
        };
        match name {
            "auto" => {
                for runtime in OCI_RUNTIMES {
                    if let Some(binary) = which(runtime) {
                        return Ok(Engine::Oci { name: runtime.to_string(), binary });
                    }
                }
                which("bwrap").map(|binary| Engine::Bwrap { binary }).ok_or_else(|| {
                    RunError::NoEngine(
                        "no container runtime found: pinfold runs images with runc, crun or youki, or with bubblewrap; \
                         install one (Debian/Ubuntu: `apt-get install runc`), or use --engine docker"
                            .into(),
                    )
                })
            }
            "runc" | "crun" | "youki" => which(name)
                .map(|binary| Engine::Oci { name: name.to_string(), binary })
                .ok_or_else(|| missing(name, name)),
            "bwrap" | "bubblewrap" => {
                which("bwrap").map(|binary| Engine::Bwrap { binary }).ok_or_else(|| missing("bwrap", "bubblewrap"))
            }
            "docker" => which("docker")
                .map(|binary| Engine::Docker { binary })
                .ok_or_else(|| missing("docker", "the Docker engine")),
            other => {
                Err(RunError::Usage(format!("unknown engine `{other}`: auto, runc, crun, youki, bwrap or docker")))
            }
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Engine::Oci { name, .. } => name,
            Engine::Bwrap { .. } => "bwrap",
            Engine::Docker { .. } => "docker",
        }
    }

    /// Whether the engine runs pinfold's unpacked rootfs (and users are resolved
    /// from it); Docker unpacks and resolves on its own.
    pub fn needs_rootfs(&self) -> bool {
        !matches!(self, Engine::Docker { .. })
    }

    /// The protections of `book/src/run.md` this engine cannot give here. OCI
    /// runtimes and Docker give them all (or fail to start the container); bubblewrap
    /// has no cgroups, and gets its limits from a cgroup pinfold makes, when it can.
    pub fn missing_protections(&self) -> Vec<String> {
        match self {
            Engine::Bwrap { .. } if !super::cgroup::available() => {
                vec!["a pids limit".into(), "a memory limit (no writable cgroup hierarchy)".into()]
            }
            _ => Vec::new(),
        }
    }

    /// Refuses an untrusted image when this engine is weaker here (see [`Sandbox`]);
    /// a trusted one runs, with a note on stderr once.
    ///
    /// [`Sandbox`]: super::Sandbox
    pub fn check_sandbox(&self, sandbox: &super::Sandbox) -> Result<(), RunError> {
        let missing = self.missing_protections();
        if let Some(why) = sandbox.refusal(self.name(), &missing) {
            return Err(RunError::WeakerSandbox(why));
        }
        if !missing.is_empty() {
            static NOTE: Once = Once::new();
            NOTE.call_once(|| {
                eprintln!("pinfold: note: the {} engine runs without {}", self.name(), missing.join(" or "))
            });
        }
        Ok(())
    }

    /// Runs `spec` in `prepared` and waits for it.
    pub fn execute(
        &self,
        prepared: &PreparedImage,
        spec: &ContainerSpec,
        io: Io,
        control: &Control,
    ) -> Result<Finished, RunError> {
        self.check_sandbox(&spec.sandbox)?;
        let interpreter =
            if matches!(self, Engine::Docker { .. }) { None } else { super::emulate::check(&prepared.platform)? };
        match self {
            Engine::Oci { binary, .. } => run_oci(binary, prepared, spec, interpreter, io, control),
            Engine::Bwrap { binary } => run_bwrap(binary, prepared, spec, interpreter, io, control),
            Engine::Docker { binary } => run_docker(binary, prepared, spec, io, control),
        }
    }
}

/// Quotes a word for `sh`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The watcher that cleans up when pinfold dies before it could (see the module
/// header). Cleanup that pinfold does itself ends with [`Watcher::release`].
struct Watcher {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Watcher {
    fn spawn(commands: &[Vec<String>], remove: Option<&Path>) -> io::Result<Watcher> {
        let mut script =
            String::from("trap '' INT TERM HUP QUIT PIPE\nIFS= read -r line\n[ \"$line\" = done ] && exit 0\n");
        // A runtime killed while it created the container may leave it a moment
        // later: try again a few times.
        script.push_str("i=0\nwhile [ $i -lt 3 ]; do\n");
        for command in commands {
            let words: Vec<String> = command.iter().map(|w| shell_quote(w)).collect();
            script.push_str(&format!("  {} >/dev/null 2>&1\n", words.join(" ")));
        }
        script.push_str("  sleep 0.2\n  i=$((i+1))\ndone\n");
        if let Some(path) = remove {
            script.push_str(&format!("rm -rf -- {}\n", shell_quote(&path.to_string_lossy())));
        }
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C at the terminal is not for it.
            .process_group(0)
            .spawn()?;
        let pipe = child.stdin.take();
        Ok(Watcher { child, pipe })
    }

    /// Tells the watcher that everything is cleaned up, and reaps it.
    fn release(mut self) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(b"done\n");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Not released: closing the pipe makes the watcher clean up, in the background.
        self.pipe.take();
    }
}

/// A unique container id: pid, a counter, and a few random-enough bits (a pid is
/// reused across reboots, and ids of stale containers must not collide).
fn container_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut h = blake3::Hasher::new();
    h.update(&nanos.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&n.to_le_bytes());
    format!("pinfold-{}-{n}-{}", std::process::id(), &h.finalize().to_hex()[..8])
}

/// The run's directory (`<cache>/run/<id>`) with its lock, its watcher and the
/// cleanup to run when it is dropped.
struct Bundle {
    id: String,
    dir: PathBuf,
    cleanup: Vec<Vec<String>>,
    watcher: Option<Watcher>,
    _lock: fs::File,
}

impl Bundle {
    fn create(
        cache_root: &Path,
        cleanup: impl Fn(&str) -> Vec<Vec<String>>,
        sweep_with: Option<&Path>,
    ) -> Result<Bundle, RunError> {
        let run_dir = cache_root.join("run");
        fs::create_dir_all(&run_dir).map_err(RunError::io(format!("cannot create {}", run_dir.display())))?;
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| sweep_stale(&run_dir, sweep_with));
        let id = container_id();
        let dir = run_dir.join(&id);
        fs::create_dir(&dir).map_err(RunError::io(format!("cannot create {}", dir.display())))?;
        let lock_path = dir.join("lock");
        let lock = fs::File::create(&lock_path).map_err(RunError::io(format!("cannot create {}", lock_path.display())));
        let lock = match lock {
            Ok(l) => l,
            Err(e) => {
                let _ = rootfs::remove_tree(&dir);
                return Err(e);
            }
        };
        let _ = rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive);
        let cleanup = cleanup(&id);
        let watcher = Watcher::spawn(&cleanup, Some(&dir));
        let mut bundle = Bundle { id, dir, cleanup, watcher: None, _lock: lock };
        match watcher {
            Ok(w) => {
                bundle.watcher = Some(w);
                Ok(bundle)
            }
            Err(e) => Err(RunError::Io { what: "cannot start the cleanup watcher (`sh`)".into(), source: e }),
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for command in &self.cleanup {
            let _ = Command::new(&command[0])
                .args(&command[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if rootfs::remove_tree(&self.dir).is_ok() {
            if let Some(w) = self.watcher.take() {
                w.release();
            }
        }
    }
}

/// Removes bundles whose owner is gone (their lock is free), deleting their
/// containers with `runtime`.
fn sweep_stale(run_dir: &Path, runtime: Option<&Path>) {
    let Ok(entries) = fs::read_dir(run_dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let dir = entry.path();
        let old = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if !old {
            continue;
        }
        let stale = match fs::File::open(dir.join("lock")) {
            Ok(lock) => rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok(),
            Err(_) => true,
        };
        if !stale {
            continue;
        }
        if let (Some(runtime), Some(id)) = (runtime, dir.file_name()) {
            let _ = Command::new(runtime)
                .arg("delete")
                .arg("--force")
                .arg(id)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = rootfs::remove_tree(&dir);
    }
}

/// The run's own rootfs, with its working directory and mounts resolved inside it.
struct RunRoot {
    rootfs: PathBuf,
    cwd: String,
    binds: Vec<BindMount>,
    /// Where the image's volumes get a tmpfs each.
    scratch: Vec<String>,
}

/// Makes the run's rootfs (a clone of the cached one) and the mounts of `spec`.
fn prepare_rootfs(
    bundle: &Bundle,
    prepared: &PreparedImage,
    spec: &ContainerSpec,
    interpreter: Option<PathBuf>,
) -> Result<RunRoot, RunError> {
    let cached = prepared.rootfs()?;
    let rootfs = bundle.dir.join("rootfs");
    rootfs::clone_tree(cached, &rootfs)
        .map_err(RunError::io(format!("cannot prepare the rootfs in {}", rootfs.display())))?;
    // The places of the standard mounts: bubblewrap cannot make them once the root
    // is bound read-only (an OCI runtime would make them itself).
    for dir in ["/proc", "/dev", "/sys", "/tmp"] {
        let host = rootfs::resolve_in_root(&rootfs, dir, true).map_err(RunError::io(format!("mount point {dir}")))?;
        if fs::symlink_metadata(&host).is_err() {
            fs::create_dir_all(&host).map_err(RunError::io(format!("mount point {dir}")))?;
        }
    }
    let mut scratch = Vec::new();
    for dir in &spec.scratch {
        let host = rootfs::resolve_in_root(&rootfs, dir, true).map_err(RunError::io(format!("volume {dir}")))?;
        match fs::metadata(&host) {
            Ok(m) if m.is_dir() => {}
            // A volume on a file of the image: it keeps its file (and stays read-only).
            Ok(_) => continue,
            Err(_) => fs::create_dir_all(&host).map_err(RunError::io(format!("volume {dir}")))?,
        }
        scratch.push(rootfs::container_path(&rootfs, &host));
    }
    bundle::check_executable(&rootfs, spec)?;
    let cwd = bundle::prepare_cwd(&rootfs, &spec.cwd)?;
    let mut wanted: Vec<(PathBuf, String, bool, Vec<&'static str>)> = Vec::new();
    let etc_is_dir = rootfs::resolve_in_root(&rootfs, "/etc", true).map(|p| p.is_dir()).unwrap_or(false);
    if etc_is_dir {
        for (source, dest) in bundle::extra_files(&bundle.dir, spec)? {
            wanted.push((source, dest, true, Vec::new()));
        }
    }
    if let Some(interpreter) = interpreter {
        let dest = interpreter.to_string_lossy().into_owned();
        wanted.push((interpreter, dest, true, Vec::new()));
    }
    for v in &spec.volumes {
        wanted.push((v.host.clone(), v.container.clone(), v.readonly, Vec::new()));
    }
    for m in &spec.devices.mounts {
        if !m.is_bind() {
            return Err(RunError::Usage(format!(
                "the CDI mount on {} is of type `{}`: pinfold applies bind mounts of CDI specs only",
                m.container_path,
                m.typ.as_deref().unwrap_or_default()
            )));
        }
        let host = PathBuf::from(&m.host_path);
        if fs::metadata(&host).is_err() {
            return Err(RunError::Usage(format!(
                "the CDI mount on {}: {} does not exist on the host",
                m.container_path, m.host_path
            )));
        }
        wanted.push((host, m.container_path.clone(), m.readonly(), m.restrictions()));
    }
    let pairs: Vec<(PathBuf, String)> = wanted.iter().map(|(s, d, _, _)| (s.clone(), d.clone())).collect();
    let resolved = bundle::prepare_mount_points(&rootfs, &pairs)?;
    let binds = resolved
        .into_iter()
        .zip(wanted)
        .map(|((source, destination), (_, _, readonly, restrict))| BindMount {
            source,
            destination,
            readonly,
            restrict,
        })
        .collect();
    Ok(RunRoot { rootfs, cwd, binds, scratch })
}

/// The exit code of a finished process, as a shell reports it.
fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Reads a stream to the end, keeping at most [`CAPTURE_LIMIT`] bytes.
fn drain(mut stream: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = CAPTURE_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    kept
}

/// Sets up stdio on `command` for `io`.
fn apply_io(command: &mut Command, io: &Io) {
    match io {
        Io::Inherit => {
            command.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
        }
        Io::Capture { stdin } => {
            command
                .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
    }
}

/// Starts `command` so that it dies with pinfold.
fn spawn_tied(command: &mut Command) -> io::Result<Child> {
    // SAFETY: the closure runs between fork and exec and only makes one prctl system
    // call, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(io::Error::from)
        });
    }
    command.spawn()
}

/// What the wait loop does to the process it waits for.
trait Target {
    fn forward(&mut self, sig: i32);
    fn kill(&mut self);
}

/// Waits for `child`, forwarding signals and enforcing the timeouts; collects the
/// captured output. Returns the exit status and whether the timeout struck.
fn wait_for(
    child: &mut Child,
    io: Io,
    control: &Control,
    target: &mut dyn Target,
) -> io::Result<(ExitStatus, Vec<u8>, Vec<u8>, bool)> {
    let stdin_data = match io {
        Io::Capture { stdin } => stdin,
        Io::Inherit => None,
    };
    let writer = match (child.stdin.take(), stdin_data) {
        (Some(mut pipe), Some(data)) => Some(std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })),
        _ => None,
    };
    let out = child.stdout.take().map(|s| std::thread::spawn(move || drain(s)));
    let err = child.stderr.take().map(|s| std::thread::spawn(move || drain(s)));
    let forwarding = control.forward_signals.then(Forwarding::install);
    // A Ctrl-C at a terminal already reached the whole process group.
    let terminal = io::stdin().is_terminal();
    let started = Instant::now();
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(f) = &forwarding {
            for sig in f.take() {
                if kill_at.is_some() && sig != SIGHUP && !killed {
                    // A second request to stop: do not wait any longer.
                    target.kill();
                    killed = true;
                    continue;
                }
                if !(sig == SIGINT && terminal) {
                    target.forward(sig);
                }
                if sig != SIGHUP {
                    kill_at.get_or_insert(Instant::now() + control.stop_timeout);
                }
            }
        }
        if !killed && kill_at.is_some_and(|t| Instant::now() >= t) {
            target.kill();
            killed = true;
        }
        if !killed && control.timeout.is_some_and(|t| started.elapsed() >= t) {
            timed_out = true;
            target.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(forwarding);
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out.and_then(|t| t.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|t| t.join().ok()).unwrap_or_default();
    Ok((status, stdout, stderr, timed_out))
}

fn signal_pid(pid: u32, sig: i32) {
    if let (Some(pid), Some(sig)) =
        (rustix::process::Pid::from_raw(pid as i32), rustix::process::Signal::from_named_raw(sig))
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// An error of the runtime itself (not of the program) from its JSON log.
fn runtime_error(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .next_back()
}

/// Appends pinfold's own message to the program's stderr (captured, or pinfold's).
fn report(finished: &mut Finished, captured: bool, message: &str) {
    if captured {
        finished.stderr.extend_from_slice(format!("pinfold: {message}\n").as_bytes());
    } else {
        eprintln!("pinfold: {message}");
    }
}

struct OciTarget<'a> {
    runtime: &'a Path,
    id: &'a str,
    pid: u32,
}

impl Target for OciTarget<'_> {
    fn forward(&mut self, sig: i32) {
        // runc, crun and youki forward the signals they receive to the container.
        signal_pid(self.pid, sig);
    }

    fn kill(&mut self) {
        let _ = Command::new(self.runtime)
            .args(["kill", self.id, "KILL"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        signal_pid(self.pid, 9);
    }
}

fn run_oci(
    runtime: &Path,
    prepared: &PreparedImage,
    spec: &ContainerSpec,
    interpreter: Option<PathBuf>,
    io: Io,
    control: &Control,
) -> Result<Finished, RunError> {
    let runtime_s = runtime.to_string_lossy().into_owned();
    let bundle = Bundle::create(
        prepared.cache_root(),
        |id| vec![vec![runtime_s.clone(), "delete".into(), "--force".into(), id.into()]],
        Some(runtime),
    )?;
    let root = prepare_rootfs(&bundle, prepared, spec, interpreter)?;
    let rootless = !rootfs::can_chown();
    let config = bundle::runtime_spec(spec, &root.cwd, &root.binds, &root.scratch, rootless)?;
    let config_path = bundle.dir.join("config.json");
    config.save(&config_path).map_err(|e| RunError::Runtime(format!("cannot write {}: {e}", config_path.display())))?;
    let log = bundle.dir.join("runtime.log");
    let mut command = Command::new(runtime);
    command.arg("--log").arg(&log).args(["--log-format", "json", "run", "--bundle"]).arg(&bundle.dir).arg(&bundle.id);
    apply_io(&mut command, &io);
    let captured = matches!(io, Io::Capture { .. });
    let mut child = spawn_tied(&mut command).map_err(RunError::io(format!("cannot start {}", runtime.display())))?;
    let mut target = OciTarget { runtime, id: &bundle.id, pid: child.id() };
    let (status, stdout, stderr, timed_out) =
        wait_for(&mut child, io, control, &mut target).map_err(RunError::io("waiting for the container"))?;
    let mut finished = Finished { code: exit_code(status), stdout, stderr, timed_out };
    if finished.code != 0 {
        if let Some(message) = runtime_error(&log) {
            finished.code =
                if message.contains("executable file not found") || message.contains("no such file or directory") {
                    EXIT_NOT_FOUND
                } else if message.contains("permission denied") {
                    EXIT_NOT_EXECUTABLE
                } else {
                    EXIT_CANNOT_RUN
                };
            report(&mut finished, captured, &format!("{} could not start the program: {message}", runtime.display()));
        }
    }
    drop(bundle);
    Ok(finished)
}

struct BwrapTarget<'a> {
    pid: u32,
    status: &'a Path,
}

impl BwrapTarget<'_> {
    /// The sandboxed program's pid, from bubblewrap's `--json-status-fd` output.
    fn child_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.status).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v["child-pid"].as_u64())
            .and_then(|p| u32::try_from(p).ok())
    }
}

impl Target for BwrapTarget<'_> {
    fn forward(&mut self, sig: i32) {
        signal_pid(self.child_pid().unwrap_or(self.pid), sig);
    }

    fn kill(&mut self) {
        // bubblewrap runs with --die-with-parent: its sandbox dies with it.
        signal_pid(self.pid, 9);
    }
}

/// bubblewrap arguments that give `/proc` runc's read-only and masked paths (those of
/// `oci_spec::runtime::Linux::default()`, which are runc's): a path is bound read-only
/// onto itself; a masked file gets `/dev/null`, a masked directory an empty tmpfs.
/// Paths this kernel does not have are skipped (bubblewrap cannot make them in /proc).
pub fn bwrap_proc_protections() -> Vec<String> {
    let defaults = oci_spec::runtime::Linux::default();
    let mut args: Vec<String> = Vec::new();
    for path in defaults.readonly_paths().clone().unwrap_or_default() {
        if path.starts_with("/proc/") && Path::new(&path).exists() {
            args.extend(["--ro-bind".to_string(), path.clone(), path]);
        }
    }
    for path in defaults.masked_paths().clone().unwrap_or_default() {
        if !path.starts_with("/proc/") {
            // bubblewrap mounts no /sys: /sys/firmware is not there to mask.
            continue;
        }
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => args.extend(["--tmpfs".to_string(), path.clone(), "--remount-ro".into(), path]),
            Ok(_) => args.extend(["--ro-bind".to_string(), "/dev/null".into(), path]),
            Err(_) => {}
        }
    }
    args
}

fn run_bwrap(
    bwrap: &Path,
    prepared: &PreparedImage,
    spec: &ContainerSpec,
    interpreter: Option<PathBuf>,
    io: Io,
    control: &Control,
) -> Result<Finished, RunError> {
    let bundle = Bundle::create(
        prepared.cache_root(),
        |id| {
            super::cgroup::dirs_for(id)
                .into_iter()
                .map(|d| vec!["rmdir".to_string(), d.to_string_lossy().into_owned()])
                .collect()
        },
        None,
    )?;
    if let Some(hook) = spec.devices.hooks.first() {
        return Err(RunError::Usage(format!(
            "the devices {} need a {} hook ({}), and bubblewrap runs no OCI hooks: use runc, crun or youki",
            spec.devices.devices.join(", "),
            hook.hook_name,
            hook.path
        )));
    }
    let RunRoot { rootfs, cwd, binds, scratch } = prepare_rootfs(&bundle, prepared, spec, interpreter)?;
    // The pids and memory limits: a cgroup of the run's own, entered before exec.
    let cgroup = if super::cgroup::available() {
        match super::cgroup::Cgroup::create(&bundle.id, &spec.sandbox.limits) {
            Ok(c) => Some(c),
            Err(e) if spec.sandbox.trusted || spec.sandbox.allow_weaker => {
                eprintln!("pinfold: note: bubblewrap runs without pids and memory limits: {e}");
                None
            }
            Err(e) => return Err(RunError::WeakerSandbox(format!("cannot limit the sandbox's pids and memory: {e}"))),
        }
    } else {
        None
    };
    // The seccomp filters, each read by bubblewrap from a descriptor of its own.
    let mut filters = Vec::new();
    for (i, program) in super::seccomp::bwrap_programs().map_err(RunError::Runtime)?.iter().enumerate() {
        let path = bundle.dir.join(format!("seccomp-{i}.bpf"));
        fs::write(&path, program).map_err(RunError::io(format!("cannot write {}", path.display())))?;
        filters.push(fs::File::open(&path).map_err(RunError::io(format!("cannot open {}", path.display())))?);
    }
    let status_path = bundle.dir.join("status.json");
    let status_file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&status_path)
        .map_err(RunError::io(format!("cannot create {}", status_path.display())))?;
    let root = rustix::process::geteuid().is_root();
    let mut command = Command::new(bwrap);
    command.args([
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]);
    if spec.network == Network::None {
        command.arg("--unshare-net");
    }
    if !root || spec.user.uid != 0 || spec.user.gid != 0 {
        command.args(["--unshare-user", "--uid", &spec.user.uid.to_string(), "--gid", &spec.user.gid.to_string()]);
    }
    command.arg("--ro-bind").arg(&rootfs).arg("/");
    command.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chmod", "1777", "/tmp"]);
    // runc's defaults hold here too: read-only kernel knobs (/proc/sys…) and masked
    // files (/proc/kcore…), so that root in the sandbox cannot reach the host's
    // kernel through them. bubblewrap resolves a bind's source on the host, whose
    // /proc holds the same files.
    command.args(bwrap_proc_protections());
    for dir in &scratch {
        command.args(["--tmpfs", dir]);
    }
    for b in &binds {
        // bubblewrap's binds are nosuid and nodev already; it has no noexec.
        if b.restrict.contains(&"noexec") {
            return Err(RunError::Usage(format!(
                "the CDI mount on {} asks for noexec, which bubblewrap cannot give; use an OCI runtime (runc, crun)",
                b.destination
            )));
        }
        command.arg(if b.readonly { "--ro-bind" } else { "--bind" }).arg(&b.source).arg(&b.destination);
    }
    // CDI device nodes: the host's node bound in (bubblewrap makes no nodes).
    for node in &spec.devices.device_nodes {
        super::cdi::node_numbers(node).map_err(RunError::Usage)?;
        command.arg("--dev-bind").arg(node.host()).arg(&node.path);
    }
    command.args(["--hostname", &spec.hostname, "--chdir", &cwd, "--clearenv"]);
    for kv in &spec.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        command.args(["--setenv", k, v]);
    }
    if root {
        command.args(["--cap-drop", "ALL"]);
        if spec.user.uid == 0 {
            for cap in bundle::capability_names() {
                command.args(["--cap-add", &cap]);
            }
        }
    }
    use std::os::fd::AsRawFd;
    let status_fd = status_file.as_raw_fd();
    command.arg("--json-status-fd").arg(status_fd.to_string());
    let mut inherited = vec![status_fd];
    for filter in &filters {
        command.arg("--add-seccomp-fd").arg(filter.as_raw_fd().to_string());
        inherited.push(filter.as_raw_fd());
    }
    command.arg("--").args(&spec.args);
    apply_io(&mut command, &io);
    let procs = cgroup.as_ref().map(|c| c.procs_fds()).unwrap_or_default();
    // SAFETY: between fork and exec: fcntl calls (async-signal-safe) that let
    // bubblewrap inherit the status file and the filters, which std opened
    // close-on-exec, and write calls (async-signal-safe) that move this process into
    // the run's cgroup before bubblewrap starts.
    unsafe {
        command.pre_exec(move || {
            for &fd in &inherited {
                let fd = rustix::fd::BorrowedFd::borrow_raw(fd);
                rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(io::Error::from)?;
            }
            for &fd in &procs {
                let fd = rustix::fd::BorrowedFd::borrow_raw(fd);
                rustix::io::write(fd, b"0").map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
    let captured = matches!(io, Io::Capture { .. });
    let mut child = command.spawn().map_err(RunError::io(format!("cannot start {}", bwrap.display())))?;
    drop(status_file);
    drop(filters);
    let mut target = BwrapTarget { pid: child.id(), status: &status_path };
    let (status, stdout, stderr, timed_out) =
        wait_for(&mut child, io, control, &mut target).map_err(RunError::io("waiting for the sandbox"))?;
    let mut finished = Finished { code: exit_code(status), stdout, stderr, timed_out };
    // bubblewrap exits 1 when it cannot set up the sandbox, which a program may also
    // do; its own messages start with `bwrap: `, which tells them apart when stderr
    // is captured. Without a child pid it never got as far as starting one.
    let setup_failed = finished.code == 1 && captured && finished.stderr.starts_with(b"bwrap: ");
    if (target.child_pid().is_none() || setup_failed) && !timed_out {
        finished.code = EXIT_CANNOT_RUN;
        report(&mut finished, captured, "bubblewrap could not start the sandbox");
    }
    drop(cgroup);
    drop(bundle);
    Ok(finished)
}

/// An image loaded into the Docker engine under a tag of its own, removed again when
/// this is dropped (and by a watcher when pinfold dies first).
#[derive(Debug)]
pub struct DockerImage {
    docker: PathBuf,
    pub tag: String,
    watcher: Mutex<Option<WatcherHandle>>,
}

/// A [`Watcher`] that can live in a `Debug` struct.
struct WatcherHandle(Watcher);

impl std::fmt::Debug for WatcherHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watcher")
    }
}

impl DockerImage {
    pub(super) fn load(docker: &Path, prepared: &PreparedImage) -> Result<DockerImage, RunError> {
        use pinfold_image::oci::assemble::{AssembledImage, AssembledManifest, Blob, BlobSource};
        use std::collections::BTreeMap;
        use std::sync::Arc;
        let image = &prepared.image;
        let mut blobs = BTreeMap::new();
        let bytes_blob = |digest, media_type: String, bytes: &Vec<u8>| Blob {
            digest,
            size: bytes.len() as u64,
            media_type,
            source: BlobSource::Bytes(Arc::new(bytes.clone())),
        };
        let config =
            bytes_blob(image.config_digest, image.manifest.config().media_type().to_string(), &image.config_bytes);
        blobs.insert(config.digest, config);
        for layer in &image.layers {
            blobs.insert(
                layer.digest,
                Blob {
                    digest: layer.digest,
                    size: layer.size,
                    media_type: layer.media_type.clone(),
                    source: BlobSource::Base { archive: prepared.archive.clone(), layer: layer.clone() },
                },
            );
        }
        let top =
            bytes_blob(image.manifest_digest, pinfold_image::oci::media::MANIFEST.to_string(), &image.manifest_bytes);
        blobs.insert(top.digest, top.clone());
        let id = container_id();
        let assembled = AssembledImage {
            name: id.clone(),
            top,
            manifests: vec![AssembledManifest {
                platform: prepared.platform.clone(),
                digest: image.manifest_digest,
                size: image.manifest_bytes.len() as u64,
            }],
            blobs,
            per_platform: vec![(image.config_digest, image.layers.iter().map(|l| l.digest).collect())],
        };
        let tag = format!("pinfold-run/{id}:latest");
        let tmp_dir = prepared.cache_root().join("tmp");
        let file = tempfile::Builder::new()
            .prefix("docker-")
            .suffix(".tar")
            .tempfile_in(&tmp_dir)
            .map_err(RunError::io(format!("cannot create a file in {}", tmp_dir.display())))?;
        let target = pinfold_image::oci::reference::ImageRef::DockerArchive {
            file: file.path().to_path_buf(),
            reference: Some(tag.clone()),
        };
        pinfold_image::oci::output::write(&assembled, &target, 0)
            .map_err(|e| RunError::Runtime(format!("cannot write the image for docker: {e}")))?;
        let watcher = Watcher::spawn(
            &[vec![docker.to_string_lossy().into_owned(), "rmi".into(), "-f".into(), tag.clone()]],
            None,
        )
        .map_err(RunError::io("cannot start the cleanup watcher (`sh`)"))?;
        let out = Command::new(docker)
            .args(["load", "-q", "-i"])
            .arg(file.path())
            .stdin(Stdio::null())
            .output()
            .map_err(RunError::io(format!("cannot run {}", docker.display())))?;
        let loaded =
            DockerImage { docker: docker.to_path_buf(), tag, watcher: Mutex::new(Some(WatcherHandle(watcher))) };
        if !out.status.success() {
            return Err(RunError::Runtime(format!(
                "docker load failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(loaded)
    }
}

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = Command::new(&self.docker)
            .args(["rmi", "-f", &self.tag])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Ok(mut w) = self.watcher.lock() {
            if let Some(WatcherHandle(w)) = w.take() {
                w.release();
            }
        }
    }
}

struct DockerTarget<'a> {
    docker: &'a Path,
    name: &'a str,
    pid: u32,
}

impl Target for DockerTarget<'_> {
    fn forward(&mut self, sig: i32) {
        // `docker run` proxies the signals it receives to the container.
        signal_pid(self.pid, sig);
    }

    fn kill(&mut self) {
        let _ =
            Command::new(self.docker).args(["kill", self.name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

fn run_docker(
    docker: &Path,
    prepared: &PreparedImage,
    spec: &ContainerSpec,
    io: Io,
    control: &Control,
) -> Result<Finished, RunError> {
    let image = prepared.docker_image(docker)?;
    let id = container_id();
    let docker_s = docker.to_string_lossy().into_owned();
    let cleanup = vec![vec![docker_s.clone(), "rm".into(), "-f".into(), id.clone()]];
    let watcher = Watcher::spawn(&cleanup, None).map_err(RunError::io("cannot start the cleanup watcher (`sh`)"))?;
    let mut command = Command::new(docker);
    command.args(["run", "--rm", "--name", &id, "--platform", &prepared.platform.to_string()]);
    let interactive = match &io {
        Io::Inherit => true,
        Io::Capture { stdin } => stdin.is_some(),
    };
    if interactive {
        command.arg("-i");
    }
    command.args(["--network", if spec.network == Network::Host { "host" } else { "none" }]);
    command.args(["--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,mode=1777", "--cap-drop", "ALL"]);
    for cap in bundle::capability_names() {
        command.args(["--cap-add", &cap]);
    }
    command.args(["--security-opt", "no-new-privileges", "--hostname", &spec.hostname]);
    // Docker applies its default seccomp profile and masked paths on its own.
    let limits = &spec.sandbox.limits;
    command.args(["--pids-limit", &limits.pids.to_string(), "--memory", &limits.memory.to_string()]);
    for (k, v) in &spec.extra_env {
        command.args(["-e", &format!("{k}={v}")]);
    }
    for v in &spec.volumes {
        let mut arg = format!("{}:{}", v.host.display(), v.container);
        if v.readonly {
            arg.push_str(":ro");
        }
        command.args(["-v", &arg]);
    }
    // Docker reads the CDI specs itself (its `cdi` feature, on by default since 28).
    for device in &spec.device_requests {
        command.args(["--device", device]);
    }
    if let Some(gpus) = &spec.gpus {
        command.args(["--gpus", gpus]);
    }
    command.args(["--entrypoint", &spec.args[0], &image.tag]).args(&spec.args[1..]);
    apply_io(&mut command, &io);
    let mut child = spawn_tied(&mut command).map_err(RunError::io(format!("cannot start {}", docker.display())))?;
    let mut target = DockerTarget { docker, name: &id, pid: child.id() };
    let waited = wait_for(&mut child, io, control, &mut target).map_err(RunError::io("waiting for the container"));
    let _ = Command::new(docker).args(["rm", "-f", &id]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    watcher.release();
    let (status, stdout, stderr, timed_out) = waited?;
    let code = exit_code(status);
    // `docker run` reports its own failures with the codes of the contract; when
    // stderr is captured they are told apart from a program's own 125-127 by docker's
    // message, and become the errors the other engines give.
    if (EXIT_CANNOT_RUN..=EXIT_NOT_FOUND).contains(&code) && stderr.starts_with(b"docker: ") {
        let message = String::from_utf8_lossy(&stderr).trim().to_string();
        return Err(match code {
            EXIT_NOT_FOUND => RunError::NotFound(message),
            EXIT_NOT_EXECUTABLE => RunError::NotExecutable(message),
            _ => RunError::Runtime(message),
        });
    }
    Ok(Finished { code, stdout, stderr, timed_out })
}
