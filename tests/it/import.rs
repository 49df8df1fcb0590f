//! `pinfold import`: Dockerfiles translated into build files. The three examples of
//! `fixtures/dockerfiles/` (copies of the project's shared examples, so a clean
//! checkout has them) are imported, locked against the machine's mirror and index,
//! built for amd64 and arm64 and run (`network_…`); the translations and reports of
//! those and of more Dockerfiles are snapshots; bad Dockerfiles are errors with spans
//! (exit 2) that write nothing.

use crate::harness::*;
use std::path::{Path, PathBuf};

fn case_dir(case: &str) -> PathBuf {
    if ["sklearn-classifier", "numpy-on-debian", "c-multistage"].contains(&case) {
        repo_root().join("fixtures/dockerfiles").join(case)
    } else {
        repo_root().join("fixtures/import").join(case)
    }
}

/// A copy of the case's build context in a fresh directory named after the case
/// (the image of an unnamed final stage takes the directory's name).
fn context(case: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempdir();
    let dir = tmp.path().join(case);
    copy_dir(&case_dir(case), &dir);
    (tmp, dir)
}

fn import(dir: &Path, extra: &[&str]) -> Ran {
    Test::new().dir(dir).arg("import").args(extra).run()
}

/// The report and the build file, as a user sees them.
fn translation(case: &str, extra: &[&str]) -> String {
    let (_tmp, dir) = context(case);
    let ran = import(&dir, extra).success();
    let kdl = std::fs::read_to_string(dir.join("pinfold.kdl")).unwrap();
    // The build file is one pinfold reads: its graph is planned without any fetch.
    Test::new().dir(&dir).arg("graph").run().success();
    format!("{}----- pinfold.kdl\n{kdl}", ran.stderr())
}

macro_rules! snapshot_import {
    ($test:ident, $case:literal $(, $flag:literal)*) => {
        #[test]
        fn $test() {
            crate::harness::assert_snapshot!(stringify!($test), translation($case, &[$($flag),*]));
        }
    };
}

snapshot_import!(sklearn_classifier_becomes_a_debian_and_a_python_set, "sklearn-classifier");
snapshot_import!(numpy_on_debian_keeps_entrypoint_cmd_env_and_workdir, "numpy-on-debian");
snapshot_import!(c_multistage_becomes_a_step_and_an_image_from_scratch, "c-multistage");
snapshot_import!(ubuntu_with_every_config_instruction, "ubuntu");
snapshot_import!(python_3_8_falls_back_to_the_nearest_debian_python, "python38");
snapshot_import!(python_3_8_with_an_explicit_python_3_13, "python38", "--python", "3.13");
snapshot_import!(an_unknown_run_becomes_a_step_that_needs_review, "review-run");
snapshot_import!(keep_base_keeps_the_registry_image, "sklearn-classifier", "--keep-base");

/// A bad Dockerfile: exit 2, a diagnostic with its span, no build file.
fn refused(case: &str, extra: &[&str]) -> String {
    let (_tmp, dir) = context(case);
    let ran = import(&dir, extra).code(2);
    assert!(!dir.join("pinfold.kdl").exists(), "a refused import wrote a build file");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".pinfold"))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
    let err = ran.stderr();
    assert!(err.contains("pinfold::import"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

macro_rules! snapshot_refused {
    ($test:ident, $case:literal $(, $flag:literal)*) => {
        #[test]
        fn $test() {
            crate::harness::assert_snapshot!(stringify!($test), refused($case, &[$($flag),*]));
        }
    };
}

snapshot_refused!(a_syntax_error_points_at_its_span, "bad-syntax");
snapshot_refused!(an_unknown_instruction_is_named, "bad-instruction");
snapshot_refused!(from_a_stage_that_does_not_exist, "bad-stage");
snapshot_refused!(pip_install_of_a_vcs_url, "bad-vcs");
snapshot_refused!(a_vcs_url_in_a_requirements_file, "bad-vcs-requirements");
snapshot_refused!(python_that_no_release_ships_is_refused_with_the_choices, "python38", "--python", "3.10");

#[test]
fn an_existing_build_file_is_kept_unless_forced() {
    let (_tmp, dir) = context("numpy-on-debian");
    std::fs::write(dir.join("pinfold.kdl"), "mine\n").unwrap();
    import(&dir, &[]).code(2).stderr_contains("--force");
    assert_eq!(std::fs::read_to_string(dir.join("pinfold.kdl")).unwrap(), "mine\n");
    import(&dir, &["--force"]).success();
    assert!(std::fs::read_to_string(dir.join("pinfold.kdl")).unwrap().contains("debian os"));
}

#[test]
fn a_build_file_above_the_context_names_files_through_it() {
    let (tmp, _dir) = context("sklearn-classifier");
    Test::new().dir(tmp.path()).args(["import", "sklearn-classifier/Dockerfile", "-o", "pinfold.kdl"]).run().success();
    let kdl = std::fs::read_to_string(tmp.path().join("pinfold.kdl")).unwrap();
    assert!(kdl.contains("requirements \"sklearn-classifier/requirements.txt\""), "{kdl}");
    assert!(kdl.contains("copy \"sklearn-classifier/train.py\" to=\"/app/\""), "{kdl}");
    Test::new().dir(tmp.path()).arg("graph").run().success();
    // Below the context is refused: its paths would leave the build file's directory.
    let below = tmp.path().join("sklearn-classifier/sub");
    std::fs::create_dir_all(&below).unwrap();
    Test::new()
        .dir(tmp.path())
        .args(["import", "sklearn-classifier", "-o", "sklearn-classifier/sub/pinfold.kdl"])
        .run()
        .code(2)
        .stderr_contains("not in the build context");
}

/// Imports, locks, builds (both platforms) and runs an example on each platform
/// that can run here; returns what each run printed.
fn import_lock_build_run(case: &str) -> Vec<(String, String)> {
    let (_tmp, dir) = context(case);
    let cache = dir.parent().unwrap().join("cache");
    import(&dir, &[]).success();
    let pinfold = |args: &[&str]| Test::new().dir(&dir).env("PINFOLD_CACHE_DIR", &cache).args(args).run();
    pinfold(&["lock"]).success();
    let lock = std::fs::read_to_string(dir.join("pinfold.lock")).unwrap();
    assert!(!lock.contains("://"), "the lock names a host:\n{lock}");
    pinfold(&["build", "--locked", "--progress", "plain"]).success();
    let mut printed = Vec::new();
    let image = format!("oci:pinfold-out/{case}");
    for platform in ["linux/amd64", "linux/arm64"] {
        if platform == "linux/arm64" && !arm64_runs() {
            continue;
        }
        let out = pinfold(&["run", "--platform", platform, &image]).success().stdout();
        printed.push((platform.to_string(), out));
    }
    assert!(!printed.is_empty());
    printed
}

#[test]
fn network_import_sklearn_classifier_prints_its_accuracy_on_both_platforms() {
    for (platform, out) in import_lock_build_run("sklearn-classifier") {
        let accuracy: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("accuracy: "))
            .unwrap_or_else(|| panic!("no accuracy on {platform}: {out}"))
            .trim()
            .parse()
            .unwrap();
        assert!(accuracy >= 0.90, "accuracy {accuracy} on {platform}");
    }
}

// numpy-on-debian is imported, locked, built for both platforms and run on both by
// `tutorial::network_the_books_tutorial_runs_as_written_from_dockerfile_to_offline_verify`,
// which then also vendors it and verifies it offline: not run twice.

#[test]
fn network_import_c_multistage_prints_its_greeting_on_both_platforms() {
    for (platform, out) in import_lock_build_run("c-multistage") {
        assert_eq!(out.trim(), "hello from a static C program", "on {platform}");
    }
}

snapshot_import!(a_stage_from_a_stage_repeats_its_layers_and_unused_stages_are_skipped, "stage-from-stage");
snapshot_import!(a_debian_base_without_apt_lines_is_its_essential_packages, "no-packages");
snapshot_refused!(apt_lines_on_a_kept_base_are_refused, "numpy-on-debian", "--keep-base");

#[test]
fn files_named_by_the_dockerfile_are_not_read_through_a_link_out_of_the_context() {
    let tmp = tempdir();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("requirements.txt"), "secret-package==1.0\n").unwrap();
    std::fs::write(outside.join("data.tar.gz"), b"not for the context").unwrap();
    let dir = tmp.path().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("out")).unwrap();
    for dockerfile in [
        "FROM python:3.11-slim\nCOPY out/requirements.txt .\nRUN pip install -r requirements.txt\n",
        "FROM debian:bookworm\nADD out/data.tar.gz /opt/\n",
    ] {
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        let ran = import(&dir, &["--force"]).code(2);
        assert!(!ran.stderr().contains("secret-package"), "{}", ran.stderr());
        assert!(!dir.join("pinfold.kdl").exists(), "a build file was written");
    }
    // A Dockerfile larger than a build file may be is refused before it is read.
    std::fs::write(dir.join("Dockerfile"), format!("FROM scratch\n# {}\n", "x".repeat(2 << 20))).unwrap();
    import(&dir, &[]).code(2).stderr_contains("larger than");
}

#[test]
fn a_run_whose_commands_cannot_be_taken_apart_is_refused_not_cut() {
    let tmp = tempdir();
    let dir = tmp.path().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    // An exec form mixing apt with another command: its text is JSON, and the curl
    // would have been dropped without a word.
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM debian:bookworm\nRUN [\"/bin/sh\", \"-c\", \"apt-get install -y curl && curl -o /x \\\"$U\\\"\"]\n",
    )
    .unwrap();
    import(&dir, &[]).code(2).stderr_contains("cannot take apart");
    assert!(!dir.join("pinfold.kdl").exists());
    // The shell form is taken apart: the package goes to the set, the rest to a step.
    std::fs::write(dir.join("Dockerfile"), "FROM debian:bookworm\nRUN apt-get install -y curl && curl -o /x \"$U\"\n")
        .unwrap();
    import(&dir, &[]).success();
    let kdl = std::fs::read_to_string(dir.join("pinfold.kdl")).unwrap();
    assert!(kdl.contains("\"curl\"") && kdl.contains("curl -o /x"), "{kdl}");
}
