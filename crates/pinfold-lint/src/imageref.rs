//! Image references as a registry, Docker and the build file write them
//! (`[docker://]HOST/REPO[:TAG][@sha256:…]`), split into the parts the pinning rules
//! look at, each with its span so a finding points at the tag or the digest itself.
//!
//! The split is `pinfold-image`'s, the one parser of image references
//! (`RegistryParts::split`); the rules use its lenient form, which never rejects a
//! reference: a `FROM` line may hold `${VARIABLES}` that only the build resolves, and
//! a malformed tag or digest is a finding of its own rule, not a parse error.

pub use pinfold_image::oci::reference::RegistryParts as ImageRef;
