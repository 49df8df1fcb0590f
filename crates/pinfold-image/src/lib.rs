//! pinfold-image: the bytes of an image. Digests, the deterministic tar writer,
//! compression, layer trees, OCI objects, and reading and writing layouts and
//! archives. Everything that decides what an output's bytes are lives here, so that a
//! golden digest depends on this crate alone.
//!
//! It is the bottom of the pipeline: it may import no other pinfold crate, and it
//! knows nothing of build files, plans, registries or sandboxes. Registries and build
//! files reach images through the application's resolver (`pinfold::resolve`), which
//! calls [`oci::read::OpenedImage::open`] for the local forms.
//!
//! Entry points: [`layer::write_layer`] (a tree → a compressed, hashed blob),
//! [`oci::assemble::assemble_image`] (layers and config → OCI blobs),
//! [`oci::output::write`] (blobs → a layout or archive), [`oci::read::OpenedImage::open`].

pub mod digest;
pub mod fsutil;
pub mod layer;
pub mod oci;
pub mod platform;
pub mod rooted;
pub mod store;
pub mod walk;

pub use digest::Digest;
pub use platform::Platform;
