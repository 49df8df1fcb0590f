//! Writing files so that a reader never sees half of one: temp file in the same
//! directory, fsync, rename. Used for every output and every cache entry.

use std::io::{self, Write};
use std::path::Path;

/// The prefix of every temporary file or directory pinfold makes beside an output or
/// in its cache: it names the process, so that a later run can tell the leftovers of
/// a killed build (whose process is gone) from the work of a build still running.
pub fn temp_prefix(kind: &str) -> String {
    format!(".pinfold-tmp-{kind}-{}-", std::process::id())
}

/// Removes temporaries in `dir` left by pinfold processes that no longer run.
pub fn sweep_dead_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(".pinfold-tmp-")) else { continue };
        // `<kind>-<pid>-<random>`
        let Some(pid) = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let path = entry.path();
        let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
    }
}

/// Records that a cache entry was used just now (its modification time, which
/// `cache gc` reads as its last use). A failure only makes gc think it older.
pub fn mark_used(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// Writes `bytes` to `path` atomically (temp file beside it, then rename), readable by
/// everyone (0644, whatever the umask: a lock or a fixed Dockerfile is shared).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(&temp_prefix("file")).tempfile_in(dir)?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
