//! pinfold compiles a hash-pinned build file (`pinfold.kdl`, KDL 2.0) into OCI images
//! that are identical, bit for bit, on every machine and every rebuild.
//!
//! The stages of a build are modules, in the order data flows through them:
//!
//! 1. [`lang`]: build file text → syntax tree with spans, every error at once.
//! 2. [`plan`]: syntax → a validated, resolved build plan (paths, epoch, bases).
//! 3. [`layer`]: a layer's file tree → one streaming pass of tar, compression and
//!    digests, parallel per block and per layer.
//! 4. [`oci`]: layers and config → canonical OCI blobs, manifests, indexes and the
//!    output forms of the command-line contract (layout, oci-archive, docker-archive).
//! 5. [`cli`]: the commands of the contract, exit codes included.
//!
//! Beside the pipeline: [`diag`] (the one diagnostic model of build-file errors and
//! lint findings), [`digest`] (sha256 digests and hashing writers), [`cache`] (the
//! content-addressed layer cache) and [`lint`]; [`compare`] checks the promise
//! (`pinfold diff`, `pinfold verify`, `pinfold build --check`); [`registry`] is the
//! `docker://` transport (push, pull, the shared cache in a registry); [`progress`] is
//! what a build says on stderr while it works (bars on a terminal, lines elsewhere).

pub mod build;
pub mod cache;
pub mod cli;
pub mod compare;
pub mod diag;
pub mod digest;
pub mod fsutil;
pub mod input;
pub mod lang;
pub mod layer;
pub mod lint;
pub mod lock;
pub mod oci;
pub mod plan;
pub mod progress;
pub mod registry;
pub mod run;
pub mod walk;
