//! Inputs from outside the repository: files fetched by URL ([`fetch`]) and tarballs
//! unpacked for a layer ([`extract`]). Both live in the content-addressed store of the
//! cache (`blobs/sha256/<hex>`), shared by every build on the machine, and nothing
//! enters the store before its bytes were hashed and matched the pin.

pub mod extract;
pub mod fetch;

pub use extract::{extract_archive, ExtractError};
pub use fetch::{fetch, FetchError, FetchOptions};
