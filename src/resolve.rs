//! The one resolver of image references: every form of the command-line contract
//! (`oci:`, `oci-archive:`, `docker-archive:`, `docker://`, and a build-file NAME)
//! becomes an opened image here, and every output form is written from here. Before
//! this module, `inspect`, `run`, `test`, `diff` and `verify` each turned a NAME into
//! an image their own way, and the image crate reached up into the registry crate.
//!
//! Local forms are read by `pinfold-image`, `docker://` by `pinfold-registry` (with
//! this process's registries, [`crate::env::registries`]); a NAME is built first, as
//! `pinfold build NAME` would build it, into `pinfold-out/NAME`.

use crate::build::{self, BuildRequest};
use crate::cache::Cache;
use pinfold_image::oci::assemble::AssembledImage;
use pinfold_image::oci::output::{self, OutputError};
use pinfold_image::oci::read::{OpenedImage, ReadError};
use pinfold_image::oci::reference::ImageRef;
use pinfold_sandbox::RunError;
use std::path::Path;

/// Opens a stored image: a layout, an archive or a registry. A NAME is not stored;
/// [`open_reference`] builds it first.
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

/// Builds the images `names` of `build_file` (into `pinfold-out/NAME`, as `pinfold
/// build` does) and returns the reference of each output. Warnings go to stderr.
pub fn build_names(
    build_file: &Path,
    names: &[String],
    cache_dir: Option<&Path>,
) -> Result<Vec<(String, ImageRef)>, String> {
    let mut request = BuildRequest::new(build_file, names);
    request.cache_dir = cache_dir.map(Path::to_path_buf);
    match build::build(&request) {
        Ok(report) => {
            if !report.warnings.is_empty() {
                eprint!("{}", report.warnings.render_for_stderr());
            }
            Ok(report
                .images
                .iter()
                .map(|i| (i.name.clone(), ImageRef::Layout { dir: request.out_root.join(&i.name), reference: None }))
                .collect())
        }
        Err(e) => Err(build::render_error(&e)),
    }
}

/// A reference with a NAME built into its layout; other forms as they are.
pub fn build_if_name(reference: &ImageRef, build_file: &Path, cache_dir: Option<&Path>) -> Result<ImageRef, String> {
    match reference {
        ImageRef::Name(name) => {
            let built = build_names(build_file, std::slice::from_ref(name), cache_dir)?;
            built.into_iter().next().map(|(_, r)| r).ok_or_else(|| format!("image `{name}` was not built"))
        }
        other => Ok(other.clone()),
    }
}

/// Opens a reference of the contract for `run` and `test`; a build-file NAME is built
/// first. Returns the label to show (the NAME, or the reference) and the image.
pub fn open_reference(
    reference: &ImageRef,
    build_file: &Path,
    cache_dir: Option<&Path>,
) -> Result<(String, OpenedImage), RunError> {
    let label = match reference {
        ImageRef::Name(name) => name.clone(),
        other => other.to_string(),
    };
    let resolved = build_if_name(reference, build_file, cache_dir).map_err(RunError::Build)?;
    let opened = open_image(&resolved).map_err(|source| RunError::Read { reference: resolved.to_string(), source })?;
    Ok((label, opened))
}
