//! Build time: finding a locked wheel again and downloading it, verified.
//!
//! Why: the lock names a wheel by file name and sha256 only, so that it builds from any
//! mirror. At build time the file is looked up by name on the project's page of the
//! machine's index, and its bytes are checked against the lock as they stream; a file
//! whose digest differs is never written to its destination.

use std::path::Path;

use crate::error::{FetchError, IndexError};
use crate::index::{DistFile, IndexClient};
use crate::resolve::LockedWheel;

/// The index's current entry (with its download URL) for a locked wheel.
pub fn locate(client: &IndexClient, wheel: &LockedWheel) -> Result<DistFile, FetchError> {
    client.find_locked(&wheel.name, &wheel.filename, &wheel.sha256)
}

/// Finds a locked wheel and streams it to `dest`, verifying its sha256; returns its size.
pub fn fetch_locked(client: &IndexClient, wheel: &LockedWheel, dest: &Path) -> Result<u64, FetchError> {
    let file = locate(client, wheel)?;
    let size = client.fetch(&file, &wheel.sha256, dest)?;
    if let Some(expected) = wheel.size.filter(|s| *s != size) {
        return Err(FetchError::Index(IndexError::Metadata {
            file: wheel.filename.clone(),
            message: format!("{size} bytes, the lock says {expected}"),
        }));
    }
    Ok(size)
}
