//! What a container is given: the process (arguments, environment, working
//! directory, user), its mounts and its isolation, computed once from the image config
//! and the run's options ([`ContainerSpec`]), then written as an OCI runtime
//! `config.json` ([`runtime_spec`]) or as the flags of another engine.
//!
//! The defaults are those of a sandbox, not of a development shell: a read-only root
//! with a writable tmpfs at `/tmp`, a network namespace with only loopback, no new
//! privileges, and a small capability set. Users named in the image are resolved
//! from the rootfs's own `/etc/passwd` and `/etc/group`, read inside the rootfs (a
//! symlinked `/etc/passwd` cannot make pinfold read the host's).

use super::rootfs::{is_clean_absolute, resolve_in_root};
use super::{PreparedImage, RunError, RunOptions};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespace,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder,
    Spec, UserBuilder,
};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// `PATH` when the image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const HOSTNAME: &str = "pinfold";

/// Capabilities a root process in the container keeps: Docker's default set without
/// `MKNOD`, `NET_RAW` and `SETFCAP` (no devices to make, no network to spoof on, no
/// file capabilities to grant).
pub const CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::AuditWrite,
];

/// The same set as `CAP_…` names, for bubblewrap and docker.
pub fn capability_names() -> Vec<String> {
    CAPABILITIES.iter().map(|c| format!("CAP_{}", c.to_string().trim_start_matches("CAP_"))).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// A network namespace with only loopback.
    #[default]
    None,
    /// The host's network (`--network host`), an explicit opt-in.
    Host,
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Network::None),
            "host" => Ok(Network::Host),
            other => Err(format!("unknown network `{other}`: none (the default) or host")),
        }
    }
}

/// `-v HOST:CTR[:ro|:rw]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub container: String,
    pub readonly: bool,
}

impl std::str::FromStr for Volume {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let (host, container, readonly) = match parts.as_slice() {
            [h, c] => (*h, *c, false),
            [h, c, "ro"] => (*h, *c, true),
            [h, c, "rw"] => (*h, *c, false),
            [_, _, other] => return Err(format!("`{s}`: unknown mount option `{other}` (ro or rw)")),
            _ => return Err(format!("`{s}` is not HOST:CONTAINER[:ro]")),
        };
        if host.is_empty() {
            return Err(format!("`{s}` names no host path"));
        }
        if !is_clean_absolute(container) {
            return Err(format!("`{s}`: the container path must be absolute, without `..`"));
        }
        Ok(Volume { host: PathBuf::from(host), container: container.to_string(), readonly })
    }
}

/// A bind mount, its destination resolved inside the run's rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
    /// Restrictions a CDI spec asks for (`nosuid`, `nodev`, `noexec`), applied as
    /// mount options; nothing for volumes.
    pub restrict: Vec<&'static str>,
}

/// A user resolved to numeric ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

/// Everything about the process and its sandbox, independent of the engine.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub args: Vec<String>,
    /// `K=V`, the image's first, then the run's.
    pub env: Vec<String>,
    /// The run's own variables (engines that apply the image's env themselves take
    /// only these).
    pub extra_env: Vec<(String, String)>,
    pub cwd: String,
    /// The image's `User` as written (engines that resolve users themselves use it).
    pub user_text: String,
    pub user: ResolvedUser,
    pub volumes: Vec<Volume>,
    /// The image's `Volumes` that no `-v` covers: each gets an empty writable tmpfs,
    /// as Docker gives each an anonymous volume, so that a program can write where
    /// its image said it would.
    pub scratch: Vec<String>,
    pub network: Network,
    pub hostname: String,
    /// Its limits and whether its image is trusted.
    pub sandbox: super::Sandbox,
    /// Host devices from CDI specs (`--device`, `--gpus`), resolved by the caller;
    /// their environment and groups are already in `env` and `user`.
    pub devices: super::cdi::Edits,
    /// The device names as asked, for engines that look devices up themselves
    /// (Docker: `--device`, and `--gpus` when `gpus` is set).
    pub device_requests: Vec<String>,
    pub gpus: Option<String>,
}

/// The command line Docker would run: `--entrypoint` replaces the entrypoint and
/// clears the image's cmd; a command replaces the cmd.
pub fn command_line(config: &oci_spec::image::Config, entrypoint: Option<&str>, command: &[String]) -> Vec<String> {
    let (entry, cmd): (Vec<String>, Vec<String>) = match entrypoint {
        Some("") => (Vec::new(), command.to_vec()),
        Some(e) => (vec![e.to_string()], command.to_vec()),
        None => {
            let cmd = if command.is_empty() { config.cmd().clone().unwrap_or_default() } else { command.to_vec() };
            (config.entrypoint().clone().unwrap_or_default(), cmd)
        }
    };
    entry.into_iter().chain(cmd).collect()
}

/// Sets `key` in a `K=V` list, in place when present.
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let item = format!("{key}={value}");
    match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
        Some(slot) => *slot = item,
        None => env.push(item),
    }
}

pub fn get_env<'e>(env: &'e [String], key: &str) -> Option<&'e str> {
    env.iter().rev().find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

impl ContainerSpec {
    /// The container of `pinfold run`. `rootfs_users`: whether users are resolved
    /// from the rootfs (every engine but Docker, which resolves them itself).
    pub fn for_run(prepared: &PreparedImage, options: &RunOptions, rootfs_users: bool) -> Result<Self, RunError> {
        let config = prepared.config();
        let args = command_line(&config, options.entrypoint.as_deref(), &options.command);
        let mut extra = Vec::new();
        for e in &options.env {
            match e.split_once('=') {
                Some((k, v)) if !k.is_empty() => extra.push((k.to_string(), v.to_string())),
                Some(_) => return Err(RunError::Usage(format!("-e {e}: the variable has no name"))),
                // `-e K`: pinfold's own value, and nothing when it has none (as Docker).
                None => {
                    if let Ok(v) = std::env::var(e) {
                        extra.push((e.clone(), v));
                    }
                }
            }
        }
        let spec = ContainerSpec::new(prepared, args, &extra, options.volumes.clone(), options.network, rootfs_users)?;
        Ok(spec.with_devices(options.devices.clone(), options.device_requests.clone(), options.gpus.clone()))
    }

    /// Gives the container CDI devices: their environment (under the run's own
    /// `-e`, which wins) and groups. A Docker run gets the requests instead, which
    /// Docker resolves itself.
    pub fn with_devices(mut self, devices: super::cdi::Edits, requests: Vec<String>, gpus: Option<String>) -> Self {
        for (k, v) in &devices.env {
            if !self.extra_env.iter().any(|(key, _)| key == k) {
                set_env(&mut self.env, k, v);
            }
        }
        for gid in &devices.additional_gids {
            if *gid != self.user.gid && !self.user.additional_gids.contains(gid) {
                self.user.additional_gids.push(*gid);
            }
        }
        self.devices = devices;
        self.device_requests = requests;
        self.gpus = gpus;
        self
    }

    pub fn new(
        prepared: &PreparedImage,
        args: Vec<String>,
        extra_env: &[(String, String)],
        volumes: Vec<Volume>,
        network: Network,
        rootfs_users: bool,
    ) -> Result<Self, RunError> {
        if args.is_empty() {
            return Err(RunError::Usage(format!(
                "{}: the image has no entrypoint and no cmd, and no command was given (`pinfold run IMAGE -- COMMAND…`)",
                prepared.label
            )));
        }
        let config = prepared.config();
        let user_text = config.user().clone().unwrap_or_default();
        let user = if rootfs_users {
            resolve_user(prepared.rootfs()?, &user_text)?
        } else {
            ResolvedUser { uid: 0, gid: 0, additional_gids: Vec::new(), home: "/".into() }
        };
        let mut env = config.env().clone().unwrap_or_default();
        if get_env(&env, "PATH").is_none() {
            set_env(&mut env, "PATH", DEFAULT_PATH);
        }
        set_env(&mut env, "HOSTNAME", HOSTNAME);
        if get_env(&env, "HOME").is_none() {
            set_env(&mut env, "HOME", &user.home);
        }
        for (k, v) in extra_env {
            set_env(&mut env, k, v);
        }
        let cwd = config.working_dir().clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
        if !is_clean_absolute(&cwd) {
            return Err(RunError::Usage(format!("the image's working directory `{cwd}` is not an absolute path")));
        }
        let mut resolved_volumes = Vec::new();
        for v in volumes {
            let host =
                std::fs::canonicalize(&v.host).map_err(|e| RunError::Usage(format!("-v {}: {e}", v.host.display())))?;
            resolved_volumes.push(Volume { host, ..v });
        }
        Ok(ContainerSpec {
            args,
            env,
            extra_env: extra_env.to_vec(),
            cwd,
            user_text,
            user,
            scratch: config
                .volumes()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|d| is_clean_absolute(d) && d != "/" && d != "/tmp")
                .filter(|d| {
                    !resolved_volumes.iter().any(|v| v.container.trim_end_matches('/') == d.trim_end_matches('/'))
                })
                .collect(),
            volumes: resolved_volumes,
            network,
            hostname: HOSTNAME.to_string(),
            sandbox: prepared.sandbox,
            devices: super::cdi::Edits::default(),
            device_requests: Vec::new(),
            gpus: None,
        })
    }
}

/// Reads a small file of the rootfs (passwd, group), resolved inside it.
fn read_rootfs_file(rootfs: &Path, path: &str) -> Option<String> {
    let host = resolve_in_root(rootfs, path, true).ok()?;
    let file = std::fs::File::open(host).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(4 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

/// Resolves the image's `User` (`name`, `uid`, `name:group`, `uid:gid`, or empty for
/// root) as Docker does: names from the rootfs's `/etc/passwd` and `/etc/group`, the
/// primary group from the passwd entry when none is given, supplementary groups from
/// the groups that list the user.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<ResolvedUser, RunError> {
    let passwd = read_rootfs_file(rootfs, "/etc/passwd").unwrap_or_default();
    let group = read_rootfs_file(rootfs, "/etc/group").unwrap_or_default();
    let users: Vec<Vec<&str>> =
        passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 4).collect();
    let groups: Vec<Vec<&str>> =
        group.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 3).collect();
    let (name, group_name) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let name = if name.is_empty() { "0" } else { name };
    let entry = users.iter().find(|f| f[0] == name).or_else(|| {
        let uid: u32 = name.parse().ok()?;
        users.iter().find(|f| f[2].parse::<u32>().ok() == Some(uid))
    });
    let uid = match (entry, name.parse::<u32>()) {
        (_, Ok(uid)) => uid,
        (Some(e), Err(_)) => {
            e[2].parse().map_err(|_| RunError::User(format!("/etc/passwd of the image has a bad uid for `{name}`")))?
        }
        (None, Err(_)) => {
            return Err(RunError::User(format!(
                "unable to find user {name}: no matching entries in the image's /etc/passwd"
            )))
        }
    };
    let gid = match group_name {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups.iter().find(|f| f[0] == g).and_then(|f| f[2].parse().ok()).ok_or_else(|| {
                RunError::User(format!("unable to find group {g}: no matching entries in the image's /etc/group"))
            })?,
        },
        None => entry.and_then(|e| e[3].parse().ok()).unwrap_or(0),
    };
    let mut additional_gids = Vec::new();
    if let Some(e) = entry {
        for g in &groups {
            let members = g.get(3).copied().unwrap_or_default();
            if members.split(',').any(|m| m == e[0]) {
                if let Ok(id) = g[2].parse::<u32>() {
                    if id != gid && !additional_gids.contains(&id) {
                        additional_gids.push(id);
                    }
                }
            }
        }
    }
    let home =
        entry.and_then(|e| e.get(5)).filter(|h| !h.is_empty()).map_or_else(|| "/".to_string(), |h| h.to_string());
    Ok(ResolvedUser { uid, gid, additional_gids, home })
}

/// Files the bundle adds to the container: `/etc/hosts` and `/etc/hostname`, and the
/// host's `/etc/resolv.conf` with `--network host`.
pub fn extra_files(bundle: &Path, spec: &ContainerSpec) -> Result<Vec<(PathBuf, String)>, RunError> {
    let hosts = bundle.join("hosts");
    let text =
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n", spec.hostname);
    std::fs::write(&hosts, text).map_err(RunError::io(format!("cannot write {}", hosts.display())))?;
    let hostname = bundle.join("hostname");
    std::fs::write(&hostname, format!("{}\n", spec.hostname))
        .map_err(RunError::io(format!("cannot write {}", hostname.display())))?;
    let mut files = vec![(hosts, "/etc/hosts".to_string()), (hostname, "/etc/hostname".to_string())];
    if spec.network == Network::Host && Path::new("/etc/resolv.conf").exists() {
        files.push((PathBuf::from("/etc/resolv.conf"), "/etc/resolv.conf".to_string()));
    }
    Ok(files)
}

/// Makes the places where things are mounted exist in the run's own rootfs, inside it:
/// the destinations are resolved here (symlinks followed inside the rootfs), so that
/// no runtime ever follows a link of the image while mounting. Returns each mount's
/// resolved container path.
pub fn prepare_mount_points(rootfs: &Path, mounts: &[(PathBuf, String)]) -> Result<Vec<(PathBuf, String)>, RunError> {
    let mut out = Vec::new();
    for (source, dest) in mounts {
        let host = resolve_in_root(rootfs, dest, true).map_err(RunError::io(format!("mount point {dest}")))?;
        let is_dir = std::fs::metadata(source).map(|m| m.is_dir()).unwrap_or(false);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() != is_dir => {
                return Err(RunError::Usage(format!(
                    "cannot mount {} on {dest}: one is a directory and the other is not",
                    source.display()
                )))
            }
            Ok(_) => {}
            Err(_) => {
                let parent = host.parent().unwrap_or(rootfs);
                std::fs::create_dir_all(parent).map_err(RunError::io(format!("mount point {dest}")))?;
                if is_dir {
                    std::fs::create_dir(&host).map_err(RunError::io(format!("mount point {dest}")))?;
                } else {
                    std::fs::write(&host, b"").map_err(RunError::io(format!("mount point {dest}")))?;
                }
            }
        }
        out.push((source.clone(), super::rootfs::container_path(rootfs, &host)));
    }
    Ok(out)
}

/// The working directory, made to exist in the run's rootfs as Docker makes it.
pub fn prepare_cwd(rootfs: &Path, cwd: &str) -> Result<String, RunError> {
    let host = resolve_in_root(rootfs, cwd, true).map_err(RunError::io(format!("working directory {cwd}")))?;
    match std::fs::metadata(&host) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(RunError::Usage(format!("the working directory {cwd} is not a directory in the image"))),
        Err(_) => std::fs::create_dir_all(&host).map_err(RunError::io(format!("working directory {cwd}")))?,
    }
    Ok(super::rootfs::container_path(rootfs, &host))
}

/// Checks that the program can be started, as `docker run` does before it starts it:
/// 127 when it is not there, 126 when it is not an executable file. Programs under a
/// mounted volume are left to the runtime.
pub fn check_executable(rootfs: &Path, spec: &ContainerSpec) -> Result<(), RunError> {
    let program = &spec.args[0];
    let under_volume = |p: &str| {
        spec.volumes
            .iter()
            .any(|v| p == v.container || p.starts_with(&format!("{}/", v.container.trim_end_matches('/'))))
    };
    let candidates: Vec<String> = if program.contains('/') {
        let absolute = if program.starts_with('/') {
            program.clone()
        } else {
            format!("{}/{program}", spec.cwd.trim_end_matches('/'))
        };
        vec![absolute]
    } else {
        let path = get_env(&spec.env, "PATH").unwrap_or(DEFAULT_PATH);
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
            .collect()
    };
    let mut not_executable = None;
    for candidate in &candidates {
        if under_volume(candidate) {
            return Ok(());
        }
        let Ok(host) = resolve_in_root(rootfs, candidate, true) else { continue };
        let Ok(meta) = std::fs::metadata(&host) else { continue };
        use std::os::unix::fs::PermissionsExt;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Ok(());
        }
        not_executable.get_or_insert_with(|| candidate.clone());
    }
    match not_executable {
        Some(path) => {
            Err(RunError::NotExecutable(format!("{path}: permission denied: not an executable file in the image")))
        }
        None if program.contains('/') => Err(RunError::NotFound(format!("{program}: no such file in the image"))),
        None => Err(RunError::NotFound(format!("{program}: executable file not found in $PATH of the image"))),
    }
}

fn mount(destination: &str, typ: &str, source: &Path, options: &[&str]) -> Result<Mount, RunError> {
    MountBuilder::default()
        .destination(PathBuf::from(destination))
        .typ(typ)
        .source(source.to_path_buf())
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|e| RunError::Runtime(format!("runtime config: {e}")))
}

/// The OCI runtime `config.json` for `spec`, whose rootfs is `rootfs` beside it.
/// `scratch` are the resolved places of the image's volumes (a tmpfs each).
pub fn runtime_spec(
    spec: &ContainerSpec,
    cwd: &str,
    binds: &[BindMount],
    scratch: &[String],
    rootless: bool,
) -> Result<Spec, RunError> {
    let err = |e: oci_spec::OciSpecError| RunError::Runtime(format!("runtime config: {e}"));
    let caps: HashSet<Capability> = CAPABILITIES.iter().copied().collect();
    let root_process = spec.user.uid == 0;
    // As Docker: a non-root user holds no capabilities, only the bounding set.
    let held = if root_process { caps.clone() } else { HashSet::new() };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps)
        .effective(held.clone())
        .permitted(held)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(err)?;
    let user = UserBuilder::default()
        .uid(spec.user.uid)
        .gid(spec.user.gid)
        .additional_gids(spec.user.additional_gids.clone())
        .build()
        .map_err(err)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(spec.args.clone())
        .env(spec.env.clone())
        .cwd(PathBuf::from(cwd))
        .user(user)
        .capabilities(capabilities)
        .no_new_privileges(true)
        .build()
        .map_err(err)?;
    let root = RootBuilder::default().path(PathBuf::from("rootfs")).readonly(true).build().map_err(err)?;
    let mut mounts =
        if rootless { oci_spec::runtime::get_rootless_mounts() } else { oci_spec::runtime::get_default_mounts() };
    mounts.push(mount("/tmp", "tmpfs", Path::new("tmpfs"), &["nosuid", "nodev", "mode=1777"])?);
    for dest in scratch {
        mounts.push(mount(dest, "tmpfs", Path::new("tmpfs"), &["nosuid", "nodev", "mode=755"])?);
    }
    for b in binds {
        let mut options = vec!["rbind", "rprivate"];
        if b.readonly {
            options.push("ro");
        }
        options.extend(b.restrict.iter().copied());
        mounts.push(mount(&b.destination, "bind", &b.source, &options)?);
    }
    let mut namespaces: Vec<LinuxNamespace> = oci_spec::runtime::get_default_namespaces();
    if spec.network == Network::Host {
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network);
    }
    let mut linux = LinuxBuilder::default();
    if rootless {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(LinuxNamespaceType::User);
        namespaces.push(ns);
        let euid = rustix::process::geteuid().as_raw();
        let egid = rustix::process::getegid().as_raw();
        let uid_map = LinuxIdMappingBuilder::default()
            .container_id(spec.user.uid)
            .host_id(euid)
            .size(1u32)
            .build()
            .map_err(err)?;
        let gid_map = LinuxIdMappingBuilder::default()
            .container_id(spec.user.gid)
            .host_id(egid)
            .size(1u32)
            .build()
            .map_err(err)?;
        linux = linux.uid_mappings(vec![uid_map]).gid_mappings(vec![gid_map]);
    }
    let defaults = oci_spec::runtime::Linux::default();
    let limits = &spec.sandbox.limits;
    let (devices, device_rules) = cdi_devices(&spec.devices)?;
    let mut resources = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(limits.pids as i64).build().map_err(err)?)
        .memory(LinuxMemoryBuilder::default().limit(limits.memory as i64).build().map_err(err)?);
    if !device_rules.is_empty() {
        resources = resources.devices(device_rules);
    }
    let resources = resources.build().map_err(err)?;
    if !devices.is_empty() {
        linux = linux.devices(devices);
    }
    let linux = linux
        .resources(resources)
        .seccomp(super::seccomp::oci_profile().map_err(err)?)
        .namespaces(namespaces)
        .masked_paths(defaults.masked_paths().clone().unwrap_or_default())
        .readonly_paths(defaults.readonly_paths().clone().unwrap_or_default())
        .build()
        .map_err(err)?;
    let mut config = Spec::default();
    config.set_process(Some(process));
    config.set_root(Some(root));
    config.set_hostname(Some(spec.hostname.clone()));
    config.set_mounts(Some(mounts));
    config.set_linux(Some(linux));
    config.set_annotations(None);
    if !spec.devices.hooks.is_empty() {
        config.set_hooks(Some(cdi_hooks(&spec.devices.hooks)?));
    }
    Ok(config)
}

/// The device nodes of CDI devices for `linux.devices`, and the cgroup rules that let
/// the container use them (runc's default rules allow only the standard devices).
fn cdi_devices(
    edits: &super::cdi::Edits,
) -> Result<(Vec<oci_spec::runtime::LinuxDevice>, Vec<oci_spec::runtime::LinuxDeviceCgroup>), RunError> {
    use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType};
    let err = |e: oci_spec::OciSpecError| RunError::Runtime(format!("runtime config: {e}"));
    let mut devices = Vec::new();
    let mut rules = Vec::new();
    for node in &edits.device_nodes {
        let (typ, major, minor, mode) = super::cdi::node_numbers(node).map_err(RunError::Usage)?;
        let typ = match typ.as_str() {
            "b" => LinuxDeviceType::B,
            "p" => LinuxDeviceType::P,
            "u" => LinuxDeviceType::U,
            _ => LinuxDeviceType::C,
        };
        let mut device =
            LinuxDeviceBuilder::default().path(PathBuf::from(&node.path)).typ(typ).major(major).minor(minor);
        device = device.file_mode(mode);
        if let Some(uid) = node.uid {
            device = device.uid(uid);
        }
        if let Some(gid) = node.gid {
            device = device.gid(gid);
        }
        devices.push(device.build().map_err(err)?);
        if typ != LinuxDeviceType::P {
            rules.push(
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(if typ == LinuxDeviceType::B { LinuxDeviceType::B } else { LinuxDeviceType::C })
                    .major(major)
                    .minor(minor)
                    .access(node.permissions.clone().unwrap_or_else(|| "rwm".into()))
                    .build()
                    .map_err(err)?,
            );
        }
    }
    Ok((devices, rules))
}

/// The hooks of CDI devices, at the points of the container's life they name.
fn cdi_hooks(hooks: &[super::cdi::Hook]) -> Result<oci_spec::runtime::Hooks, RunError> {
    use oci_spec::runtime::HookBuilder;
    let err = |e: oci_spec::OciSpecError| RunError::Runtime(format!("runtime config: {e}"));
    let mut by_point: std::collections::BTreeMap<&str, Vec<oci_spec::runtime::Hook>> = Default::default();
    for h in hooks {
        let mut hook = HookBuilder::default().path(PathBuf::from(&h.path));
        if !h.args.is_empty() {
            hook = hook.args(h.args.clone());
        }
        if !h.env.is_empty() {
            hook = hook.env(h.env.clone());
        }
        if let Some(t) = h.timeout {
            hook = hook.timeout(t);
        }
        by_point.entry(h.hook_name.as_str()).or_default().push(hook.build().map_err(err)?);
    }
    let mut out = oci_spec::runtime::Hooks::default();
    for (point, list) in by_point {
        match point {
            "createRuntime" => out.set_create_runtime(Some(list)),
            "createContainer" => out.set_create_container(Some(list)),
            "startContainer" => out.set_start_container(Some(list)),
            "poststart" => out.set_poststart(Some(list)),
            "poststop" => out.set_poststop(Some(list)),
            #[allow(deprecated)]
            _ => out.set_prestart(Some(list)),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_from_the_rootfs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
            .unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1001:\nextra:x:2000:app,other\n").unwrap();
        assert_eq!(
            resolve_user(root, "").unwrap(),
            ResolvedUser { uid: 0, gid: 0, additional_gids: vec![], home: "/root".into() }
        );
        assert_eq!(
            resolve_user(root, "app").unwrap(),
            ResolvedUser { uid: 1000, gid: 1001, additional_gids: vec![2000], home: "/home/app".into() }
        );
        assert_eq!(resolve_user(root, "1000:extra").unwrap().gid, 2000);
        assert_eq!(
            resolve_user(root, "4242").unwrap(),
            ResolvedUser { uid: 4242, gid: 0, additional_gids: vec![], home: "/".into() }
        );
        assert!(resolve_user(root, "nobody").unwrap_err().to_string().contains("unable to find user nobody"));
        assert!(resolve_user(root, "app:nogroup").is_err());
    }

    #[test]
    fn a_symlinked_passwd_is_read_inside_the_rootfs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", root.join("etc/passwd")).unwrap();
        // The link points to the rootfs's own /etc/shadow, which does not exist.
        assert!(resolve_user(root, "root").is_err());
    }

    #[test]
    fn command_lines_follow_docker() {
        let mut config = oci_spec::image::Config::default();
        config.set_entrypoint(Some(vec!["/bin/sh".into(), "-c".into()]));
        config.set_cmd(Some(vec!["echo hi".into()]));
        assert_eq!(command_line(&config, None, &[]), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(command_line(&config, None, &["exit 7".into()]), ["/bin/sh", "-c", "exit 7"]);
        assert_eq!(command_line(&config, Some("/bin/true"), &[]), ["/bin/true"]);
        assert_eq!(command_line(&config, Some(""), &["ls".into()]), ["ls"]);
    }

    #[test]
    fn volumes_parse() {
        let v: Volume = "/data:/mnt:ro".parse().unwrap();
        assert!(v.readonly);
        assert_eq!(v.container, "/mnt");
        assert!("/data:relative".parse::<Volume>().is_err());
        assert!("/data:/mnt:rx".parse::<Volume>().is_err());
    }
}
