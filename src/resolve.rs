//! The one resolver of stored image references: every stored form of the
//! command-line contract (`oci:`, `oci-archive:`, `docker-archive:`, `docker://`)
//! becomes an opened image here, and every output form is written from here. Before
//! this module, `inspect`, `run`, `test`, `diff` and `verify` each turned a reference
//! into an image their own way, and the image crate reached up into the registry crate.
//!
//! Local forms are read by `pinfold-image`, `docker://` by `pinfold-registry` (with
//! this process's registries, [`crate::env::registries`]). A build-file NAME is not
//! stored: `cli::names` builds it first and then opens it here. This module builds
//! nothing, so that the build (which writes its outputs here) and the plan (which
//! opens bases here) can use it without an import cycle.

use crate::cache::Cache;
use pinfold_image::oci::assemble::AssembledImage;
use pinfold_image::oci::output::{self, OutputError};
use pinfold_image::oci::read::{OpenedImage, ReadError};
use pinfold_image::oci::reference::ImageRef;
use pinfold_sandbox::RunError;
use std::path::Path;

/// Opens a stored image: a layout, an archive or a registry. A NAME is not stored;
/// `cli::names::open_reference` builds it first.
pub fn open_image(reference: &ImageRef) -> Result<OpenedImage, ReadError> {
    match reference {
        ImageRef::Registry(r) => {
            let store = Cache::default_dir().and_then(|d| Cache::open(&d).ok()).map(|c| c.store());
            pinfold_registry::open_image(crate::env::registries(), r, store.as_ref())
        }
        local => OpenedImage::open(local),
    }
}

/// Writes an assembled image to an output of the contract: a registry is pushed to,
/// everything else is written as a file or directory.
pub fn write_output(image: &AssembledImage, target: &ImageRef, epoch: u64) -> Result<(), OutputError> {
    match target {
        ImageRef::Registry(r) => {
            let pushed = pinfold_registry::Reference::parse(r)
                .map_err(pinfold_registry::RegistryError::from)
                .and_then(|r| pinfold_registry::push(crate::env::registries(), image, &r));
            pushed.map(|_| ()).map_err(|e| OutputError::Remote(Box::new(e)))
        }
        other => output::write(image, other, epoch),
    }
}

/// The cache that rootfs trees and run bundles live in: `--cache-dir`, else the
/// default cache directory, else a temporary one for this process.
pub fn open_cache(dir: Option<&Path>) -> Result<Cache, RunError> {
    let dir = dir.map(Path::to_path_buf).or_else(Cache::default_dir);
    let cache = match &dir {
        Some(d) => Cache::open(d),
        None => Cache::temporary(),
    };
    cache.map_err(RunError::io(format!("the cache at {}", dir.unwrap_or_default().display())))
}
