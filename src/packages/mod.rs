//! Package sets in a build (`spec/packages.md`): `pinfold lock` resolves the `debian`
//! and `python` nodes of a build file into `pinfold.lock`, and `install NAME` turns a
//! locked set into a layer tree for one platform. The resolving, fetching and unpacking
//! are the package crates' (`pinfold-python`, `pinfold-debian`); this module ties them
//! to the build file, the lock and the store.

pub mod debian;
pub mod python;

/// Whether a file name from `pinfold.lock` (a wheel's, a `.deb`'s last path segment) is
/// one plain component: never a path, never hidden, never `.` or `..`.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}
