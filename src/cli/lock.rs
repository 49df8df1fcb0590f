//! `pinfold lock`: resolves every input of the build file (fetching what is unpinned),
//! writes `pinfold.lock`, and prints what changed.

use super::{EXIT_ERROR, EXIT_OK};
use crate::build::{self, BuildError, BuildRequest};
use pinfold_lang::lock::Lock;
use std::collections::BTreeMap;

pub fn run(args: super::LockArgs) -> i32 {
    let mut request = BuildRequest::new(&args.file, &[]);
    request.plan_input.fetch = args.inputs.fetch_options();
    // Resolve afresh: the old lock is what we compare against, not an input.
    request.plan_input.lock = Some(Lock::default());
    request.cache_dir = args.inputs.cache_dir.clone();
    let path = build::lock_path(&args.file);
    let old = match Lock::read(&path) {
        Ok(old) => old.unwrap_or_default(),
        Err(e) => {
            eprintln!("warning: {e}; it will be replaced");
            Lock::default()
        }
    };
    let result = build::open_cache(&request).and_then(|cache| build::load_plan(&request, &cache));
    let plan = match result {
        Ok((plan, _warnings)) => plan,
        Err(e) => {
            eprint!("{}", build::render_error(&e));
            if let BuildError::Invalid(_) = e {
                eprintln!("error: pinfold.lock was not written");
            }
            return EXIT_ERROR;
        }
    };
    let new = plan.resolved;
    for line in changes(&old, &new) {
        println!("{line}");
    }
    if let Err(e) = new.write(&path) {
        eprintln!("error: cannot write {}: {e}", path.display());
        return EXIT_ERROR;
    }
    EXIT_OK
}

/// `+ added`, `- removed`, `~ changed` lines, in a stable order.
fn changes(old: &Lock, new: &Lock) -> Vec<String> {
    let flatten = |lock: &Lock| -> BTreeMap<String, String> {
        let mut all = BTreeMap::new();
        for (name, digest) in &lock.bases {
            all.insert(format!("base {name}"), digest.clone());
        }
        for (name, by_platform) in &lock.downloads {
            for (platform, file) in by_platform {
                all.insert(format!("download {name} {platform}"), format!("sha256:{} {}", file.sha256, file.source));
            }
        }
        for (name, file) in &lock.archives {
            all.insert(format!("archive {name}"), format!("sha256:{} {}", file.sha256, file.source));
        }
        all
    };
    let (old, new) = (flatten(old), flatten(new));
    let mut lines = Vec::new();
    for (key, value) in &new {
        match old.get(key) {
            None => lines.push(format!("+ {key} {value}")),
            Some(v) if v != value => lines.push(format!("~ {key} {value} (was {v})")),
            Some(_) => {}
        }
    }
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        lines.push(format!("- {key}"));
    }
    if lines.is_empty() {
        lines.push("pinfold.lock is up to date".to_string());
    }
    lines
}
