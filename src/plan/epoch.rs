//! The build's epoch: the one instant that every timestamp of an output comes from.
//! The rule is the same on every machine: the build file's `epoch`, else
//! `SOURCE_DATE_EPOCH`, else the commit time of HEAD when the build file is in a git
//! checkout, else 0.

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EpochOrigin {
    BuildFile,
    SourceDateEpoch,
    GitHead,
    Zero,
}

/// Reads the epoch from the environment and the checkout when the build file gives none.
/// `source_date_epoch` is the value of `SOURCE_DATE_EPOCH`, passed in so that tests
/// need not change the process environment.
pub fn resolve(root: &Path, source_date_epoch: Option<&str>) -> Result<(u64, EpochOrigin), String> {
    if let Some(text) = source_date_epoch.filter(|s| !s.is_empty()) {
        return text
            .trim()
            .parse::<u64>()
            .map(|e| (e, EpochOrigin::SourceDateEpoch))
            .map_err(|_| format!("SOURCE_DATE_EPOCH=`{text}` is not a number of seconds"));
    }
    if in_git_checkout(root) {
        let output = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["log", "-1", "--format=%ct", "HEAD"])
            .env("LC_ALL", "C")
            .output()
            .map_err(|e| {
                // Falling back to 0 here would make the output depend on whether git is
                // installed; refusing keeps the rule the same on every machine.
                format!("the build file is in a git checkout, and `git` cannot be run to read HEAD's commit time ({e}); install git, or set `epoch` or SOURCE_DATE_EPOCH")
            })?;
        let text = String::from_utf8_lossy(&output.stdout);
        if output.status.success() {
            if let Ok(epoch) = text.trim().parse::<u64>() {
                return Ok((epoch, EpochOrigin::GitHead));
            }
        }
        // A checkout with no commit yet has no HEAD time: the rule's last step applies.
        return Ok((0, EpochOrigin::Zero));
    }
    Ok((0, EpochOrigin::Zero))
}

fn in_git_checkout(root: &Path) -> bool {
    root.ancestors().any(|dir| dir.join(".git").exists())
}
