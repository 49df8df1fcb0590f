//! `pinfold test`: the `test` blocks of a build file and container-structure-test
//! configs, run per platform in the sandbox ([`pinfold_sandbox`]) and reported for
//! people and CI.
//!
//! - [`check`] runs one image's checks (commands, files, metadata);
//! - [`cst`] reads a container-structure-test 2.0 config into the same checks;
//! - [`report`] renders results as text, JSON and JUnit XML.

pub mod check;
pub mod cst;
pub mod report;
