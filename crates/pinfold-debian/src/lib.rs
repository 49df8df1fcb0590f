//! Debian package sets for pinfold: from a list of package names to the exact,
//! signed-and-hashed files of their closure, and from those files to an image tree.
//!
//! Why a crate of its own: it is a self-contained pipeline with its own neutral types
//! (no pinfold types), so it can be built and tested alone and wired into pinfold's
//! language, lock and build by the caller:
//!
//! 1. [`sources`] — the machine's apt sources (mirror base URLs, suites, components);
//! 2. [`release`] + [`keyring`] — a suite's InRelease, its OpenPGP signature checked;
//! 3. [`index`] — Packages indexes checked against the InRelease, cached by sha256;
//! 4. [`resolve`] — the dependency closure per architecture, as [`LockedPackage`]s;
//! 5. [`fetch`] — a `.deb` from the first mirror that has it, checked as it streams;
//! 6. [`deb`] — a `.deb`'s control data and its entries, merged-/usr, hostile ones refused;
//! 7. [`dpkg`] and [`fixups`] — dpkg's database, and what maintainer scripts would do.
//!
//! Nothing recorded for a lock names a host: files are named by their path in the
//! repository and their sha256.

pub mod cache;
pub mod deb;
pub mod deb822;
pub mod digest;
pub mod dpkg;
pub mod error;
pub mod fetch;
pub mod fixups;
pub mod http;
pub mod index;
pub mod keyring;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod sources;
pub mod suite;

pub use cache::{Cache, Expected};
pub use error::{Error, Result};
pub use http::Http;
pub use index::{load_packages, IndexPackage, PackagesIndex, Source};
pub use keyring::{Keyring, DEFAULT_KEYRING};
pub use release::{cached_release, fetch_release, Release};
pub use resolve::{resolve, Base, LockedPackage};
pub use sources::{apt_sources, AptSource};
pub use suite::{load_repository, repositories, ReleaseFrom, Repository};
