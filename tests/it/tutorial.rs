//! The book's tutorial (`book/src/tutorial.md`), run as it is written: every `$ `
//! command of its `console` blocks, in order, in a copy of the example project, and
//! each line printed under a command must appear in what the command printed (`…`
//! stands for lines left out; a line ending in `…` is matched up to there). `cd` and
//! `export` change the state of the next commands, as in a shell.

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One command of the tutorial and the lines it is shown to print.
struct Step {
    command: String,
    expected: Vec<String>,
}

fn steps(markdown: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_console = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_console = line.trim() == "```console";
            continue;
        }
        if !in_console {
            continue;
        }
        match line.strip_prefix("$ ") {
            Some(command) => steps.push(Step { command: command.to_string(), expected: Vec::new() }),
            None => steps.last_mut().expect("a console block starts with a command").expected.push(line.to_string()),
        }
    }
    steps
}

/// Whether every expected line is in `printed`, in order (`…` matches any lines).
fn shows(printed: &str, expected: &[String]) -> bool {
    let mut lines = printed.lines();
    expected.iter().filter(|e| e.as_str() != "…").all(|e| match e.strip_suffix('…') {
        Some(prefix) => lines.any(|l| l.starts_with(prefix)),
        None => lines.any(|l| l == e),
    })
}

#[test]
fn the_tutorial_parses_into_commands_with_their_output() {
    let text = "```console\n$ a\nx\n…\n$ b\n```\n```kdl\n$ not a command\n```\n";
    let parsed = steps(text);
    assert_eq!(parsed.iter().map(|s| s.command.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(parsed[0].expected, ["x", "…"]);
    assert!(shows("w\nx\ny\n", &parsed[0].expected));
    assert!(!shows("w\ny\n", &parsed[0].expected));
    assert!(shows("name sha256:abc\n", &["name sha256:…".to_string()]));
}

#[test]
fn network_the_books_tutorial_runs_as_written_from_dockerfile_to_offline_verify() {
    let tmp = tempdir();
    let work = tmp.path().to_path_buf();
    copy_dir(&fixture("dockerfiles/numpy-on-debian"), &work.join("numpy-on-debian"));
    let bin_dir = pinfold_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cwd: PathBuf = work.clone();
    let mut env: Vec<(String, String)> =
        vec![("PINFOLD_CACHE_DIR".into(), work.join("author-cache").display().to_string())];
    let text = std::fs::read_to_string(repo_root().join("book/src/tutorial.md")).unwrap();
    let steps = steps(&text);
    assert!(steps.len() >= 10, "the tutorial has its commands");
    for step in steps {
        if let Some(dir) = step.command.strip_prefix("cd ") {
            cwd = cwd.join(dir);
            assert!(cwd.is_dir(), "`{}`: no such directory", step.command);
            continue;
        }
        if let Some((key, value)) = step.command.strip_prefix("export ").and_then(|kv| kv.split_once('=')) {
            let value =
                if Path::new(value).is_absolute() { value.to_string() } else { cwd.join(value).display().to_string() };
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value));
            continue;
        }
        if step.command.starts_with("pinfold run --platform linux/arm64") && !arm64_runs() {
            continue;
        }
        let output = Command::new("bash")
            .args(["-c", &step.command])
            .current_dir(&cwd)
            .env("PATH", &path)
            .env_remove("SOURCE_DATE_EPOCH")
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "`{}` failed ({:?}):\n{printed}", step.command, output.status.code());
        assert!(
            shows(&printed, &step.expected),
            "`{}` did not print what the tutorial shows:\n{:#?}\n--- it printed\n{printed}",
            step.command,
            step.expected
        );
    }
}
