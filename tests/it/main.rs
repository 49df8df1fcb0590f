//! pinfold's integration tests: one binary, so they build and link once. Each module
//! drives the real `pinfold` binary through [`harness::Test`] and checks its outputs
//! with tools that pinfold did not write (umoci, skopeo, oci-image-tool, docker).

mod build;
mod cli;
mod compare;
mod diagnostics;
mod fuzz;
mod harness;
mod hostile;
mod inputs;
mod lint;
mod packages;
mod platforms;
mod registry;
mod reproducible;
mod run;
mod sandbox;
mod serve;
mod steps;
mod toolchain;
mod tools;
