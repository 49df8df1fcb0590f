//! pinfold compiles a hash-pinned build file (`pinfold.kdl`, KDL 2.0) into OCI images
//! that are identical, bit for bit, on every machine and every rebuild.
//!
//! This is the application crate: the command line and everything that ties the
//! stages together. The stages are crates of their own (see `ARCHITECTURE.md`):
//! `pinfold-image` (the bytes of an image), `pinfold-lang` (the build language),
//! `pinfold-registry` (the `docker://` transport), `pinfold-sandbox` (running
//! images) and `pinfold-lint`. Here:
//!
//! - [`plan`]: syntax → a validated, resolved build plan (paths, epoch, bases, steps);
//! - [`build`]: the plan → layers (cached, in parallel), steps, assembled images,
//!   outputs; the one place where the stages meet;
//! - [`cache`]: the content-addressed layer and step cache (and its copy in a
//!   registry, [`cache::remote`]); [`input`]: downloads and archives;
//! - [`resolve`]: the one resolver of image references, and the writer of outputs;
//! - [`testing`]: `pinfold test`; [`compare`]: `diff`, `verify`, `build --check`;
//! - [`progress`]: what a build says on stderr while it works;
//! - [`env`]: the one place that reads the environment;
//! - [`cli`]: the commands of the contract, exit codes included.

pub mod build;
pub mod cache;
pub mod cli;
pub mod compare;
pub mod env;
pub mod import;
pub mod input;
pub mod packages;
pub mod plan;
pub mod progress;
pub mod resolve;
pub mod testing;
