//! `pinfold verify PUBLISHED [NAME]`, and the two additions to `pinfold build` that go
//! with it: `--check [N]` (the reproducibility gate) and `--provenance`. The work is
//! in [`crate::compare`]; this is the command line: arguments, output, exit codes.

use super::diff::{fail, print_report};
use super::{BuildArgs, EXIT_ERROR, EXIT_NO, EXIT_OK};
use crate::build::{self, BuildReport, BuildRequest};
use crate::compare::check::{self, CheckError};
use crate::compare::provenance;
use crate::compare::report;
use crate::compare::verify::{self, Verdict};
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub registry: super::RegistryArgs,
    /// The published image: oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE or docker://HOST/REPO[:TAG][@DIGEST].
    pub published: String,
    /// The image of the build file to rebuild (default: the one its provenance names, else the published image's name, else the only image).
    pub name: Option<String>,
    /// The build file (default: pinfold.kdl; with a revision from the provenance, the provenance's path in that revision).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Rebuild from a clean checkout of this git revision, in a temporary worktree (default: the provenance's revision when its tree was clean, else the working tree).
    #[arg(long = "rev", value_name = "GIT_REV")]
    pub rev: Option<String>,
    /// One JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Fetch nothing over the network: inputs come from the mirror (by default the download store of the cache).
    #[arg(long)]
    pub offline: bool,
    /// A directory of files named by their sha256 (hex), tried before any URL; each is hashed again.
    #[arg(long)]
    pub mirror: Option<PathBuf>,
}

pub fn run(args: VerifyArgs) -> i32 {
    let request = verify::Request {
        published: args.published.clone(),
        name: args.name.clone(),
        file: args.file.clone(),
        rev: args.rev.clone(),
        source_date_epoch: crate::env::source_date_epoch(),
        fetch: crate::input::FetchOptions { offline: args.offline, mirror: args.mirror.clone() },
    };
    let outcome = match verify::verify(&request) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    if !outcome.warnings.is_empty() {
        eprint!("{}", outcome.warnings.render_for_stderr());
    }
    for n in &outcome.notes {
        eprintln!("note: {n}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome).expect("outcomes serialize"));
    } else {
        let name = outcome.name.as_deref().unwrap_or("(image)");
        let digest = outcome.digest.map_or_else(|| "-".to_string(), |d| d.to_string());
        let source = match &outcome.source.revision {
            Some(rev) => format!("{} at {rev}", outcome.source.build_file),
            None => outcome.source.build_file.clone(),
        };
        match outcome.verdict {
            Verdict::Verified => println!(
                "verified {name} {digest}: {} is bit for bit the image rebuilt from {source}",
                outcome.published
            ),
            Verdict::Differs => {
                let rebuilt = outcome.rebuilt.map_or_else(|| "-".to_string(), |d| d.to_string());
                println!(
                    "differs {name}: {} is {digest}, and the image rebuilt from {source} is {rebuilt}",
                    outcome.published
                );
            }
            Verdict::Tampered => println!("tampered {name}: {} is not the image its digests name", outcome.published),
        }
        if outcome.verdict != Verdict::Verified {
            if let Some(r) = &outcome.report {
                print!("{}", report::render(r));
            }
        }
    }
    if outcome.verdict == Verdict::Verified {
        EXIT_OK
    } else {
        EXIT_NO
    }
}

/// Attaches an SBOM to a finished build's layouts; false (after saying why) when it
/// could not.
pub(super) fn attach_sbom(request: &BuildRequest, report: &BuildReport) -> bool {
    match crate::compare::sbom::attach_to_build(request, report) {
        Ok(attached) => {
            for (name, digest) in attached {
                eprintln!("pinfold: sbom of {name}: {digest}");
            }
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// Refuses `--provenance` before a build whose output cannot hold it.
pub(super) fn provenance_preflight(request: &BuildRequest) -> Result<(), String> {
    provenance::preflight(request).map_err(|e| e.to_string())
}

/// Attaches provenance to a finished build's layouts; false (after saying why) when
/// it could not.
pub(super) fn attach_provenance(request: &BuildRequest, report: &BuildReport) -> bool {
    match provenance::attach_to_build(request, report) {
        Ok(attached) => {
            for (name, digest) in attached {
                eprintln!("pinfold: provenance of {name}: {digest}");
            }
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// `pinfold build --check [N]`. A value that is not a number is an image name that
/// clap took as N (`--check static`): it goes back to the names, and N is 2.
pub(super) fn run_check(mut args: BuildArgs) -> i32 {
    let runs = match args.check.as_deref().map(|v| (v, v.parse::<usize>())) {
        Some((_, Ok(n))) => n,
        Some((name, Err(_))) => {
            args.names.insert(0, name.to_string());
            2
        }
        None => 2,
    };
    let request = match super::build_request(&args) {
        Ok(r) => r,
        Err(message) => return super::usage_error(message),
    };
    if args.provenance || args.sbom {
        if let Err(m) = provenance_preflight(&request) {
            return super::usage_error(
                m.replace("--provenance", if args.provenance { "--provenance" } else { "--sbom" }),
            );
        }
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return super::usage_error(format!("--check runs pinfold again and cannot find its own binary: {e}")),
    };
    let mut child_args = args.names.clone();
    for p in &args.platforms {
        child_args.extend(["--platform".to_string(), p.clone()]);
    }
    if let Some(c) = &args.compression {
        child_args.extend(["--compression".to_string(), c.clone()]);
    }
    if args.inputs.offline {
        child_args.push("--offline".into());
    }
    if args.locked {
        child_args.push("--locked".into());
    }
    // The other runs start with empty caches; their inputs come from run 1's store
    // (or the mirror given), each hashed again on the way in, not from the network.
    let store = match (&request.cache_dir, request.no_cache) {
        (_, true) => None,
        (Some(dir), false) => Some(dir.join("blobs/sha256")),
        (None, false) => crate::cache::Cache::default_dir().map(|d| d.join("blobs/sha256")),
    };
    if let Some(mirror) = args.inputs.mirror.clone().or(store) {
        let mirror = std::path::absolute(&mirror).unwrap_or(mirror);
        child_args.extend(["--mirror".to_string(), mirror.display().to_string()]);
    }
    eprintln!("pinfold: --check: building {runs} times under perturbed conditions");
    let outcome = match check::check(&check::Request { build: request.clone(), runs, child_args, exe }) {
        Ok(o) => o,
        Err(CheckError::Build(e)) => {
            eprint!("{}", build::render_error(&e));
            return EXIT_ERROR;
        }
        Err(CheckError::Compare(e)) => return fail(&e),
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_ERROR;
        }
    };
    if !outcome.first.warnings.is_empty() {
        eprint!("{}", outcome.first.warnings.render_for_stderr());
    }
    if outcome.reproducible() && args.provenance && !attach_provenance(&request, &outcome.first) {
        return EXIT_ERROR;
    }
    if outcome.reproducible() && args.sbom && !attach_sbom(&request, &outcome.first) {
        return EXIT_ERROR;
    }
    if args.json {
        let doc = json!({
            "reproducible": outcome.reproducible(),
            "images": outcome.images,
            "runs": outcome.runs,
            "mismatches": outcome.mismatches,
            "notes": outcome.notes,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values serialize"));
    } else if outcome.reproducible() {
        for image in &outcome.images {
            println!("{} {}", image.name, image.digests[0]);
        }
        eprintln!("pinfold: --check: {runs} builds agree on every image");
        for run in outcome.runs.iter().skip(1) {
            eprintln!("  run {}: {}", run.run, run.describe());
        }
    } else {
        for m in &outcome.mismatches {
            let digests =
                &outcome.images.iter().find(|i| i.name == m.image).map(|i| i.digests.clone()).unwrap_or_default();
            let shown: Vec<String> = digests.iter().enumerate().map(|(i, d)| format!("run {}: {d}", i + 1)).collect();
            println!("{} is not reproducible: {}", m.image, shown.join(", "));
            if let Some(run) = outcome.runs.iter().find(|r| r.run == m.runs[1]) {
                println!("run {} was: {}", run.run, run.describe());
            }
            print_report(&m.report, false);
        }
        for n in &outcome.notes {
            println!("hint: {n}");
        }
    }
    if outcome.reproducible() {
        EXIT_OK
    } else {
        EXIT_NO
    }
}
