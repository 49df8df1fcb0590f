//! `pinfold import [Dockerfile|DIR] [-o pinfold.kdl] [--python 3.X] [--keep-base]
//! [--force]`: writes the build file that `crate::import` translates from a
//! Dockerfile, and prints on stderr what it did with each instruction. It never
//! overwrites a build file without `--force`, and writes through a temporary file
//! renamed into place, so an interrupted import leaves nothing half written.

use super::{EXIT_ERROR, EXIT_OK};
use crate::import::{self, Options, Request};
use pinfold_lang::diag::{Code, Diagnostic, Diagnostics};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The Dockerfile, or the directory (the build context) that holds it.
    #[arg(default_value = ".")]
    pub dockerfile: PathBuf,
    /// The build file to write (default: pinfold.kdl beside the Dockerfile). It must be in
    /// the build context or a directory above it, since its paths may not leave its directory.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// The Python version of a python:3.X base (one that a current Debian release ships),
    /// instead of the one its tag names.
    #[arg(long, value_name = "3.X")]
    pub python: Option<String>,
    /// Keep the Dockerfile's base images as registry bases (pinned by `pinfold lock`)
    /// instead of Debian package sets.
    #[arg(long)]
    pub keep_base: bool,
    /// Overwrite an existing build file.
    #[arg(long)]
    pub force: bool,
}

fn fail(message: String, help: Option<&str>) -> i32 {
    let mut d = Diagnostic::error(Code::Import, message);
    if let Some(h) = help {
        d = d.help(h);
    }
    let mut diags = Diagnostics::default();
    diags.push(d);
    eprint!("{}", diags.render_for_stderr());
    EXIT_ERROR
}

pub fn run(args: ImportArgs) -> i32 {
    let dockerfile =
        if args.dockerfile.is_dir() { args.dockerfile.join("Dockerfile") } else { args.dockerfile.clone() };
    // A Dockerfile larger than a build file may be cannot translate into one: read no
    // more than that, whatever the file holds.
    let limit = pinfold_lang::parse::MAX_SOURCE_BYTES as u64;
    let read = std::fs::File::open(&dockerfile).and_then(|f| {
        use std::io::Read;
        let mut bytes = Vec::new();
        f.take(limit + 1).read_to_end(&mut bytes).map(|_| bytes)
    });
    if read.as_ref().is_ok_and(|b| b.len() as u64 > limit) {
        return fail(format!("{} is larger than {limit} bytes; it is not read", dockerfile.display()), None);
    }
    let text = match read {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return fail(format!("{} is not UTF-8 text", dockerfile.display()), None),
        },
        Err(e) => return fail(format!("cannot read {}: {e}", dockerfile.display()), None),
    };
    let context =
        match dockerfile.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).canonicalize() {
            Ok(c) => c,
            Err(e) => return fail(format!("the directory of {}: {e}", dockerfile.display()), None),
        };
    let output = args.output.clone().unwrap_or_else(|| context.join("pinfold.kdl"));
    let out_dir = match output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).canonicalize() {
        Ok(d) => d,
        Err(e) => return fail(format!("the directory of {}: {e}", output.display()), None),
    };
    let Ok(rel) = context.strip_prefix(&out_dir) else {
        return fail(
            format!("{} is not in the build context {} or above it", output.display(), context.display()),
            Some("a build file names files below its own directory: write it beside the Dockerfile (the default)"),
        );
    };
    let Some(rel) = rel.to_str() else { return fail("the build context's path is not UTF-8".into(), None) };
    let prefix =
        if rel.is_empty() { String::new() } else { format!("{}/", rel.replace(std::path::MAIN_SEPARATOR, "/")) };
    if !args.force && output.exists() {
        return fail(
            format!("{} exists", output.display()),
            Some("pass --force to replace it, or -o to write another file"),
        );
    }
    let name = dockerfile.file_name().and_then(|n| n.to_str()).unwrap_or("Dockerfile").to_string();
    let image_name = context.file_name().and_then(|n| n.to_str()).unwrap_or("app").to_string();
    let options = Options { python: args.python.clone(), keep_base: args.keep_base };
    // SOURCE_DATE_EPOCH, else the last commit of the repository, else 0: what a build
    // would take today, written down so that it stays.
    let epoch = match crate::plan::epoch::resolve(&out_dir, crate::env::source_date_epoch().as_deref()) {
        Ok((epoch, _)) => epoch,
        Err(e) => return fail(e, Some("set SOURCE_DATE_EPOCH to the time the images should carry")),
    };
    let request = Request {
        text: &text,
        name: &name,
        context: &context,
        prefix: &prefix,
        image_name: &image_name,
        options: &options,
        epoch,
    };
    let imported = match import::translate(&request) {
        Ok(i) => i,
        Err(diags) => {
            eprint!("{}", diags.render_for_stderr());
            return EXIT_ERROR;
        }
    };
    for line in &imported.report {
        eprintln!("{line}");
    }
    if let Err(e) = write_atomically(&out_dir, &output, imported.build_file.as_bytes(), args.force) {
        return fail(format!("cannot write {}: {e}", output.display()), None);
    }
    let shown = args.output.as_deref().unwrap_or(Path::new("pinfold.kdl"));
    eprintln!("wrote {}; next: `pinfold lock` pins every input, then `pinfold build`", shown.display());
    EXIT_OK
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8], force: bool) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(".pinfold-import-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if force {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    Ok(())
}
