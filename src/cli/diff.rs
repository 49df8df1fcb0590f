//! `pinfold diff A B [--semantic] [--json]`: how two images differ, from the index down
//! to single files. Exit 0 when they are equal, 1 when they differ or a blob of either
//! is tampered, 2 when the comparison cannot be made.

use super::{EXIT_ERROR, EXIT_NO, EXIT_OK};
use crate::build;
use crate::compare::report::{self, SideInfo};
use crate::compare::source::{self, BuildContext, Opened};
use crate::compare::{self, CompareError, Options, Report};
use crate::plan::PlanInput;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub registry: super::RegistryArgs,
    /// The first image: oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE, docker://HOST/REPO[:TAG][@DIGEST], or the NAME of an image in the build file (built first).
    pub a: String,
    /// The second image, in the same forms.
    pub b: String,
    /// Ignore timestamps, tar entry order and compression (as diffoci's semantic mode).
    #[arg(long)]
    pub semantic: bool,
    /// One JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// The build file, for NAME references.
    #[arg(short = 'f', long = "file", default_value = "pinfold.kdl")]
    pub file: PathBuf,
}

/// Prints a comparison error for stderr, build-file diagnostics included.
pub(super) fn fail(error: &CompareError) -> i32 {
    match error {
        CompareError::Build(e) => eprint!("{}", build::render_error(e)),
        other => eprintln!("error: {other}"),
    }
    EXIT_ERROR
}

pub(super) fn print_report(report: &Report, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(report).expect("reports serialize"));
    } else {
        print!("{}", report::render(report));
    }
}

pub fn run(args: DiffArgs) -> i32 {
    let context =
        BuildContext { file: args.file.clone(), plan_input: PlanInput::from_env(), cache_dir: None, no_cache: false };
    let source::Pair { built, a, b } = match source::open_pair(&args.a, &args.b, &context) {
        Ok(pair) => pair,
        Err(e) => return fail(&e),
    };
    for b in &built {
        if !b.warnings.is_empty() {
            eprint!("{}", b.warnings.render_for_stderr());
        }
    }
    let options = Options { semantic: args.semantic };
    let report = match (a, b) {
        (Err(e), _) | (_, Err(e)) => return fail(&e),
        (Ok(Opened::View(a)), Ok(Opened::View(b))) => match compare::compare(&a, &b, options) {
            Ok(r) => r,
            Err(e) => return fail(&e),
        },
        (a, b) => {
            // One side (or both) is not the image it claims to be: that is the answer.
            let info = |o: &Opened, text: &str| match o {
                Opened::View(v) => v.info(),
                Opened::Tampered(_) => SideInfo { reference: text.to_string(), digest: None, media_type: None },
            };
            let (a, b) = (a.expect("matched above"), b.expect("matched above"));
            let mut r = Report::new(info(&a, &args.a), info(&b, &args.b), args.semantic);
            for o in [a, b] {
                if let Opened::Tampered(t) = o {
                    r.tampered.push(t);
                }
            }
            r.settle();
            r
        }
    };
    print_report(&report, args.json);
    if report.equal {
        EXIT_OK
    } else {
        EXIT_NO
    }
}
