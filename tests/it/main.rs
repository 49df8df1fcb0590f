//! pinfold's integration tests: one binary, so they build and link once. Each module
//! drives the real `pinfold` binary through [`harness::Test`] and checks its outputs
//! with tools that pinfold did not write (umoci, skopeo, oci-image-tool, docker).

mod build;
mod cdi;
mod cli;
mod compare;
mod debian_repo;
mod diagnostics;
mod fuzz;
mod harness;
mod hostile;
mod import;
mod inputs;
mod lint;
mod packages;
mod platforms;
mod python_index;
mod registry;
mod reproducible;
mod run;
mod sandbox;
mod sbom;
mod serve;
mod steps;
mod toolchain;
mod tools;
mod tutorial;
mod vendor;
