//! Running one step of the build file: its declared inputs copied into a fresh work
//! directory, the command run in the step's image through the runner's sandbox
//! (read-only root, no network, a fixed environment and hostname, the work directory
//! the only writable place besides `/tmp`), then its declared outputs collected and
//! stored in the cache under the step's key. A step whose key is in the cache does
//! not run. See `spec/steps.md`.

use crate::cache::{step_key, Cache, FileHashes, LayerKey};
use crate::plan::steps::{StepId, StepPlan, StepRun};
use crate::progress::StepOutcome;
use pinfold_image::walk::FileStat;
use pinfold_sandbox::bundle::{self, ContainerSpec, Network, ResolvedUser, Volume};
use pinfold_sandbox::engine::Control;
use pinfold_sandbox::{Engine, Io, PreparedImage};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// How long one command of a step may run before it is killed: a step that hangs
/// fails the build instead of holding it forever.
pub const STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// A step that could not run, failed, or did not make its outputs.
#[derive(Debug, thiserror::Error)]
#[error("step `{name}`: {message}")]
pub struct StepError {
    pub name: String,
    pub message: String,
}

/// A step done: where its outputs are, whether it ran, and what its commands printed
/// (stdout, then stderr, of each; empty when cached).
#[derive(Debug, Clone)]
pub struct Done {
    pub dir: PathBuf,
    pub outcome: StepOutcome,
    pub log: String,
}

/// What every step of a build shares.
pub struct StepContext<'a> {
    pub cache: &'a Cache,
    pub hashes: &'a FileHashes,
    pub epoch: u64,
    /// Chosen when the first step must run.
    pub engine: &'a std::sync::OnceLock<Result<Engine, String>>,
}

#[derive(Debug, Clone)]
enum InputKind {
    /// A regular file of the repository, as planned, with its metadata when the plan
    /// read it in a walk: its mode is taken when it is hashed.
    Repo(Option<FileStat>),
    File {
        executable: bool,
    },
    Symlink(PathBuf),
}

#[derive(Debug, Clone)]
struct Input<'a> {
    /// Borrowed from the plan for repository files (a step may have 100,000).
    host: Cow<'a, Path>,
    kind: InputKind,
}

/// The step's inputs, sorted by their path below the work directory, each path once
/// (an output of another step wins over a repository file at the same path).
fn gather_inputs<'a>(
    step: &'a StepPlan,
    run: &StepRun,
    upstream: &BTreeMap<StepId, PathBuf>,
) -> Result<Vec<(Cow<'a, str>, Input<'a>)>, String> {
    let mut inputs: Vec<(Cow<str>, Input)> = Vec::with_capacity(step.files.len());
    let add = |inputs: &mut Vec<(Cow<str>, Input)>, rel: String, host: PathBuf| -> Result<(), String> {
        let meta = std::fs::symlink_metadata(&host).map_err(|e| format!("cannot read the input `{rel}`: {e}"))?;
        let kind = if meta.file_type().is_symlink() {
            InputKind::Symlink(std::fs::read_link(&host).map_err(|e| format!("cannot read the link `{rel}`: {e}"))?)
        } else if meta.is_file() {
            InputKind::File { executable: meta.permissions().mode() & 0o111 != 0 }
        } else {
            return Err(format!("the input `{rel}` is not a regular file"));
        };
        inputs.push((Cow::Owned(rel), Input { host: Cow::Owned(host), kind }));
        Ok(())
    };
    for (rel, host, stat) in &step.files {
        inputs.push((Cow::Borrowed(rel), Input { host: Cow::Borrowed(host), kind: InputKind::Repo(*stat) }));
    }
    for (id, paths) in &run.from_steps {
        let name = &id.name;
        let dir = upstream.get(id).ok_or_else(|| format!("step `{name}` has not run for {}", id.platform))?;
        let roots: Vec<String> = if paths.is_empty() { vec![String::new()] } else { paths.clone() };
        // The outputs of a step are a tree its command made: a symlink in it is
        // never followed, neither on the way to a named path nor at its end.
        let mut tree = pinfold_image::rooted::Root::open(dir)
            .map_err(|e| format!("cannot read the outputs of step `{name}`: {e}"))?;
        for root in roots {
            let parts = pinfold_image::rooted::components(root.as_bytes())
                .map_err(|why| format!("the input `{root}` of step `{name}` {why}"))?;
            let kind = tree.kind(&parts).map_err(|e| format!("the input {e} (an output of step `{name}`)"))?;
            let start = if root.is_empty() { dir.clone() } else { dir.join(&root) };
            if kind != pinfold_image::rooted::Kind::Dir {
                add(&mut inputs, root.clone(), start)?;
                continue;
            }
            for item in walkdir::WalkDir::new(&start).follow_links(false).min_depth(1).sort_by_file_name() {
                let item = item.map_err(|e| format!("cannot read the outputs of step `{name}`: {e}"))?;
                if item.file_type().is_dir() {
                    continue;
                }
                let rel = item.path().strip_prefix(dir).expect("below the output directory");
                let rel = rel.to_str().ok_or_else(|| format!("an output of step `{name}` has a non-UTF-8 name"))?;
                add(&mut inputs, rel.to_string(), item.path().to_path_buf())?;
            }
        }
    }
    for (rel, host) in &run.package_files {
        add(&mut inputs, rel.clone(), host.clone())?;
    }
    if !run.from_steps.is_empty() || !run.package_files.is_empty() {
        // Stable, so that of two inputs at one path the later one is kept.
        inputs.sort_by(|a, b| a.0.cmp(&b.0));
        inputs.reverse();
        inputs.dedup_by(|later, earlier| later.0 == earlier.0);
        inputs.reverse();
    }
    Ok(inputs)
}

/// The environment of a run of a step: the image's, then the fixed variables, then
/// the step's own.
pub fn environment(step: &StepPlan, run: &StepRun, image_env: &[String], epoch: u64) -> Vec<String> {
    let mut env: Vec<String> = image_env.to_vec();
    if bundle::get_env(&env, "PATH").is_none() {
        bundle::set_env(&mut env, "PATH", bundle::DEFAULT_PATH);
    }
    let p = &run.id.platform;
    let b = &run.runs_on;
    let fixed = [
        ("HOME", "/tmp".to_string()),
        ("HOSTNAME", bundle::HOSTNAME.to_string()),
        ("LC_ALL", "C".to_string()),
        ("TZ", "UTC".to_string()),
        ("SOURCE_DATE_EPOCH", epoch.to_string()),
        ("TARGETPLATFORM", p.to_string()),
        ("TARGETOS", p.os.clone()),
        ("TARGETARCH", p.architecture.clone()),
        ("TARGETVARIANT", p.variant.clone().unwrap_or_default()),
        ("BUILDPLATFORM", b.to_string()),
        ("BUILDOS", b.os.clone()),
        ("BUILDARCH", b.architecture.clone()),
        ("BUILDVARIANT", b.variant.clone().unwrap_or_default()),
    ];
    for (k, v) in fixed {
        bundle::set_env(&mut env, k, &v);
    }
    for (k, v) in &step.env {
        bundle::set_env(&mut env, k, v);
    }
    env
}

/// Runs `run` of `step` in `image` (or finds its outputs in the cache); returns the
/// directory that holds its outputs, at their paths relative to the work directory.
pub fn run_step(
    step: &StepPlan,
    run: &StepRun,
    image: &PreparedImage,
    upstream: &BTreeMap<StepId, PathBuf>,
    cx: &StepContext,
) -> Result<Done, StepError> {
    let fail = |message: String| StepError { name: run.label.clone(), message };
    let mut inputs = gather_inputs(step, run, upstream).map_err(fail)?;
    let env = environment(step, run, &image.config().env().clone().unwrap_or_default(), cx.epoch);
    let key = key(step, run, image, &mut inputs, &env, cx).map_err(fail)?;
    if let Some(dir) = cx.cache.lookup_step(&key, cx.hashes) {
        return Ok(Done { dir, outcome: StepOutcome::Cached, log: String::new() });
    }
    let engine = match cx.engine.get_or_init(|| Engine::select("auto").map_err(|e| e.to_string())) {
        Ok(engine) if engine.needs_rootfs() => engine,
        Ok(engine) => return Err(fail(format!("steps cannot run with the {} engine", engine.name()))),
        Err(e) => return Err(fail(format!("cannot run: {e}"))),
    };
    let io_err = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| StepError { name: run.label.clone(), message: format!("{what}: {e}") }
    };
    let tmp = cx.cache.step_tempdir().map_err(io_err("cannot make its work directory"))?;
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).map_err(io_err("cannot make its work directory"))?;
    copy_inputs(&inputs, &work, cx.epoch).map_err(io_err("cannot copy its inputs"))?;
    let work = work.canonicalize().map_err(io_err("cannot resolve its work directory"))?;

    let mut spec = ContainerSpec {
        args: Vec::new(),
        extra_env: env.iter().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect(),
        env,
        cwd: step.workdir.clone(),
        user_text: String::new(),
        user: ResolvedUser { uid: 0, gid: 0, additional_gids: Vec::new(), home: "/tmp".into() },
        volumes: vec![Volume { host: work.clone(), container: step.workdir.clone(), readonly: false }],
        scratch: Vec::new(),
        network: Network::None,
        hostname: bundle::HOSTNAME.to_string(),
        // A step belongs to this build file: its image is trusted (`book/src/run.md`).
        sandbox: pinfold_sandbox::Sandbox::trusted(),
        devices: Default::default(),
        device_requests: Vec::new(),
        gpus: None,
    };
    let control = Control {
        forward_signals: false,
        stop_timeout: std::time::Duration::from_secs(10),
        timeout: Some(STEP_TIMEOUT),
    };
    let mut log = String::new();
    for command in &step.run {
        spec.args = command.clone();
        let finished =
            engine.execute(image, &spec, Io::Capture { stdin: None }, &control).map_err(|e| fail(e.to_string()))?;
        if finished.timed_out {
            return Err(fail(format!(
                "`{}` did not finish within {} seconds and was killed\n--- stdout\n{}--- stderr\n{}",
                command.join(" "),
                STEP_TIMEOUT.as_secs(),
                with_newline(&finished.stdout),
                with_newline(&finished.stderr)
            )));
        }
        if finished.code != 0 {
            return Err(fail(format!(
                "`{}` exited with code {}\n--- stdout\n{}--- stderr\n{}",
                command.join(" "),
                finished.code,
                with_newline(&finished.stdout),
                with_newline(&finished.stderr)
            )));
        }
        log.push_str(&with_newline(&finished.stdout));
        log.push_str(&with_newline(&finished.stderr));
    }
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).map_err(io_err("cannot collect its outputs"))?;
    // The work directory is what the command made: an output is taken from it
    // through the rooted primitive, so a symlink the command made on the way to it is
    // refused instead of followed (it could point anywhere on the host).
    let mut tree = pinfold_image::rooted::Root::open(&work).map_err(io_err("cannot collect its outputs"))?;
    for path in &step.outputs {
        let rel = path.trim_start_matches("./").trim_end_matches('/');
        let parts = pinfold_image::rooted::components(rel.as_bytes())
            .map_err(|why| fail(format!("the declared output `{path}` {why}")))?;
        let refused = |e: pinfold_image::rooted::RootedError| fail(format!("the declared output {e}; it is refused"));
        if tree.kind(&parts).map_err(refused)? == pinfold_image::rooted::Kind::Missing {
            return Err(fail(format!(
                "the command succeeded and did not make the declared output `{path}` (below {})",
                step.workdir
            )));
        }
        let to = out.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io_err("cannot collect its outputs"))?;
        }
        tree.move_out(&parts, &to).map_err(refused)?;
    }
    let dir = cx.cache.commit_step(&out, &key, cx.hashes).map_err(io_err("cannot store its outputs in the cache"))?;
    Ok(Done { dir, outcome: StepOutcome::Ran, log })
}

fn with_newline(bytes: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn key(
    step: &StepPlan,
    run: &StepRun,
    image: &PreparedImage,
    inputs: &mut [(Cow<str>, Input)],
    env: &[String],
    cx: &StepContext,
) -> Result<LayerKey, String> {
    use rayon::prelude::*;
    let hashed: Vec<(&str, bool, [u8; 32])> = inputs
        .par_iter_mut()
        .map(|(rel, input)| {
            let rel: &str = rel;
            hash_input(rel, input, cx.hashes).map(|(x, h)| (rel, x, h))
        })
        .collect::<Result<_, String>>()?;
    let commands = serde_json::to_string(&step.run).expect("strings serialize");
    let env = env.join("\0");
    let outputs = step.outputs.join("\0");
    let definition: [&[u8]; 4] = [commands.as_bytes(), env.as_bytes(), step.workdir.as_bytes(), outputs.as_bytes()];
    // The target and the platform that ran it: one image may serve both, and a
    // cross-compiling step makes other bytes for each target.
    let platforms = format!("{} on {}", run.id.platform, run.runs_on);
    Ok(step_key(&definition, &image.image.manifest_digest, &platforms, cx.epoch, &hashed))
}

/// An input's executable bit and content hash; a repository file learns its mode here.
fn hash_input(rel: &str, input: &mut Input, hashes: &FileHashes) -> Result<(bool, [u8; 32]), String> {
    let cannot = |e: std::io::Error| format!("cannot read the input `{rel}`: {e}");
    Ok(match &input.kind {
        InputKind::Repo(stat) => {
            let (hash, stat) = hashes.hash_with_stat(&input.host, *stat).map_err(cannot)?;
            if !stat.is_file() {
                return Err(format!("the input `{rel}` is not a regular file"));
            }
            let executable = stat.executable();
            input.kind = InputKind::File { executable };
            (executable, hash)
        }
        InputKind::File { executable } => (*executable, hashes.hash(&input.host).map_err(cannot)?),
        InputKind::Symlink(target) => {
            let mut h = blake3::Hasher::new();
            h.update(b"symlink\0");
            h.update(target.as_os_str().as_encoded_bytes());
            (false, *h.finalize().as_bytes())
        }
    })
}

/// Copies the inputs into the work directory: files with mode 0644 or 0755, every
/// file and directory (the work directory too) with the epoch as its modification
/// time, whatever the umask, so that a step that archives its inputs (`tar`) makes
/// the same bytes everywhere. Files are copied in parallel, each with one open of
/// each side (a step may have 100,000 inputs).
fn copy_inputs(inputs: &[(Cow<str>, Input)], work: &Path, epoch: u64) -> std::io::Result<()> {
    use rayon::prelude::*;
    use std::os::unix::fs::OpenOptionsExt;
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    // Every directory once, parents first (a sorted set of paths puts them first).
    let mut dirs: std::collections::BTreeSet<&Path> = std::collections::BTreeSet::new();
    for (rel, _) in inputs {
        let mut parent = Path::new(rel.as_ref()).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            if !dirs.insert(dir) {
                break;
            }
            parent = dir.parent();
        }
    }
    for dir in &dirs {
        std::fs::create_dir(work.join(dir))?;
    }
    inputs.par_iter().try_for_each(|(rel, input)| {
        let dest = work.join(rel.as_ref());
        match &input.kind {
            InputKind::Symlink(target) => std::os::unix::fs::symlink(target, &dest),
            // A repository file's mode is known once it was hashed, which comes first.
            InputKind::File { .. } | InputKind::Repo(_) => {
                let executable = matches!(input.kind, InputKind::File { executable: true });
                let mode = if executable { 0o755 } else { 0o644 };
                let mut from = std::fs::File::open(&input.host)?;
                let mut to = std::fs::File::options().write(true).create_new(true).mode(mode).open(&dest)?;
                std::io::copy(&mut from, &mut to)?;
                to.set_permissions(std::fs::Permissions::from_mode(mode))?;
                to.set_modified(mtime)
            }
        }
    })?;
    // Children before parents: making an entry changes its directory's time.
    for dir in dirs.iter().rev().map(|d| work.join(d)).chain(std::iter::once(work.to_path_buf())) {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::File::open(&dir)?.set_modified(mtime)?;
    }
    Ok(())
}
