//! Writing files so that a reader never sees half of one: temp file in the same
//! directory, fsync, rename. Used for every output and every cache entry.

use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically (temp file beside it, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".pinfold-tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
