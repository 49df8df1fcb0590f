//! Programs of another architecture (an arm64 image on an amd64 machine) run through
//! qemu-user, which the kernel starts by itself when binfmt_misc has a handler for
//! that architecture's ELF header. pinfold checks for such a handler before it starts
//! a container, so that a missing one is a clear error naming what to install rather
//! than an "exec format error" from inside the sandbox.

use super::RunError;
use pinfold_image::Platform;
use std::path::{Path, PathBuf};

const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Whether programs of `platform` run on this machine without emulation.
pub fn runs_natively(platform: &Platform) -> bool {
    let host = super::host_platform();
    if platform.os != host.os {
        return false;
    }
    let arch = platform.architecture.as_str();
    arch == host.architecture || (host.architecture == "amd64" && arch == "386")
}

/// The first bytes of an executable ELF file of `architecture`: class, byte order,
/// type and machine, as binfmt_misc matches them.
fn elf_header(architecture: &str) -> Option<[u8; 20]> {
    // (64-bit, little-endian, e_machine)
    let (wide, little, machine): (bool, bool, u16) = match architecture {
        "amd64" => (true, true, 62),
        "386" => (false, true, 3),
        "arm64" => (true, true, 183),
        "arm" => (false, true, 40),
        "ppc64le" => (true, true, 21),
        "s390x" => (true, false, 22),
        "riscv64" => (true, true, 243),
        "mips64le" => (true, true, 8),
        "loong64" => (true, true, 258),
        _ => return None,
    };
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = if wide { 2 } else { 1 };
    h[5] = if little { 1 } else { 2 };
    h[6] = 1; // EI_VERSION
    let (exec, machine) =
        if little { (2u16.to_le_bytes(), machine.to_le_bytes()) } else { (2u16.to_be_bytes(), machine.to_be_bytes()) };
    h[16..18].copy_from_slice(&exec);
    h[18..20].copy_from_slice(&machine);
    Some(h)
}

/// A registered binfmt_misc handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    pub name: String,
    pub interpreter: PathBuf,
    /// `F`: the kernel opened the interpreter when it was registered, so it works
    /// inside a container's own root.
    pub fix_binary: bool,
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text.trim()).ok()
}

/// Parses one `/proc/sys/fs/binfmt_misc/NAME` file; `None` for disabled or
/// extension-based handlers.
fn parse_handler(name: &str, text: &str) -> Option<(Handler, usize, Vec<u8>, Vec<u8>)> {
    let mut lines = text.lines();
    if lines.next()? != "enabled" {
        return None;
    }
    let (mut interpreter, mut flags, mut offset, mut magic, mut mask) = (None, String::new(), 0usize, None, None);
    for line in lines {
        if let Some(v) = line.strip_prefix("interpreter ") {
            interpreter = Some(PathBuf::from(v));
        } else if let Some(v) = line.strip_prefix("flags: ") {
            flags = v.to_string();
        } else if let Some(v) = line.strip_prefix("offset ") {
            offset = v.trim().parse().ok()?;
        } else if let Some(v) = line.strip_prefix("magic ") {
            magic = parse_hex(v);
        } else if let Some(v) = line.strip_prefix("mask ") {
            mask = parse_hex(v);
        }
    }
    let magic = magic?;
    let mask = mask.unwrap_or_else(|| vec![0xff; magic.len()]);
    Some((
        Handler { name: name.to_string(), interpreter: interpreter?, fix_binary: flags.contains('F') },
        offset,
        magic,
        mask,
    ))
}

/// The handler that would run `architecture`'s executables, from the handlers in `dir`.
pub fn find_handler(dir: &Path, architecture: &str) -> Option<Handler> {
    let header = elf_header(architecture)?;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        if name == "register" || name == "status" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(dir.join(&name)) else { continue };
        let Some((handler, offset, magic, mask)) = parse_handler(&name, &text) else { continue };
        let fits = magic
            .iter()
            .zip(mask.iter().chain(std::iter::repeat(&0xff)))
            .enumerate()
            .all(|(i, (m, k))| header.get(offset + i).is_some_and(|h| h & k == m & k));
        if fits && offset + magic.len() <= header.len() {
            return Some(handler);
        }
    }
    None
}

/// The Debian package that registers a handler for `architecture`.
fn package_hint(architecture: &str) -> String {
    format!(
        "install qemu-user-static (Debian/Ubuntu: `apt-get install qemu-user-static`, which registers binfmt_misc handlers), \
         or register one with `docker run --privileged --rm tonistiigi/binfmt --install {architecture}`; \
         binfmt_misc must be mounted at {BINFMT_DIR}"
    )
}

/// Checks that `platform` can run here. `Ok(None)`: natively, or through a handler
/// that works in a container as it is; `Ok(Some(path))`: through a handler whose
/// interpreter must be visible inside the container at `path` (bind it there).
pub fn check(platform: &Platform) -> Result<Option<PathBuf>, RunError> {
    if runs_natively(platform) {
        return Ok(None);
    }
    if elf_header(&platform.architecture).is_none() {
        return Err(RunError::Emulation(format!(
            "pinfold cannot run {platform} programs on {}",
            super::host_platform()
        )));
    }
    let dir = Path::new(BINFMT_DIR);
    match find_handler(dir, &platform.architecture) {
        Some(h) if h.fix_binary => Ok(None),
        Some(h) if h.interpreter.is_file() => Ok(Some(h.interpreter)),
        Some(h) => Err(RunError::Emulation(format!(
            "the binfmt_misc handler `{}` for {platform} names {}, which does not exist; {}",
            h.name,
            h.interpreter.display(),
            package_hint(&platform.architecture)
        ))),
        None => Err(RunError::Emulation(format!(
            "{platform} programs cannot run on this {} machine: binfmt_misc has no handler for them; {}",
            super::host_platform(),
            package_hint(&platform.architecture)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qemu_handler_matches_its_architecture_only() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("qemu-aarch64"),
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\n\
             magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n",
        )
        .unwrap();
        std::fs::write(tmp.path().join("status"), "enabled\n").unwrap();
        let h = find_handler(tmp.path(), "arm64").unwrap();
        assert_eq!(h.name, "qemu-aarch64");
        assert!(h.fix_binary);
        assert!(find_handler(tmp.path(), "riscv64").is_none());
        assert!(find_handler(tmp.path(), "amd64").is_none());
        std::fs::write(tmp.path().join("qemu-aarch64"), "disabled\n").unwrap();
        assert!(find_handler(tmp.path(), "arm64").is_none());
    }

    #[test]
    fn native_platforms_need_no_handler() {
        assert!(runs_natively(&super::super::host_platform()));
    }
}
