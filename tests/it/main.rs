//! pinfold's integration tests: one binary, so they build and link once. Each module
//! drives the real `pinfold` binary through [`harness::Test`] and checks its outputs
//! with tools that pinfold did not write (umoci, skopeo, oci-image-tool, docker).

mod build;
mod cdi;
mod cli;
mod debian_repo;
mod diagnostics;
mod harness;
mod import;
mod inputs;
mod packages;
mod platforms;
mod python_index;
mod reproducible;
mod sbom;
mod serve;
mod tools;
mod tutorial;
mod vendor;
