//! A build-file NAME where the commands take an image reference (`inspect`, `run`,
//! `test`): the NAME is built first, as `pinfold build NAME` would build it, into
//! `pinfold-out/NAME`, and the layout is then opened by [`crate::resolve`] like any
//! other reference. Kept apart from `resolve`, which the build itself uses: only the
//! commands build on the way to opening an image.

use crate::build::{self, BuildRequest};
use crate::resolve::open_image;
use pinfold_image::oci::read::OpenedImage;
use pinfold_image::oci::reference::ImageRef;
use pinfold_sandbox::RunError;
use std::path::Path;

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
