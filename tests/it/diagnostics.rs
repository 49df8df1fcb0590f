//! Rendered diagnostics of bad build files, snapshotted: what a user sees is part of
//! the interface. Every case also checks the contract: exit 2, nothing written.

use crate::harness::*;

fn render(case: &str) -> String {
    let tmp = tempdir();
    // A case whose first line says it is built with --locked is.
    let build_file = fixture(&format!("diagnostics/{case}/pinfold.kdl"));
    let text = std::fs::read_to_string(&build_file).unwrap();
    let flags: Vec<&str> = if text.starts_with("// Built with --locked") { vec!["--locked"] } else { vec![] };
    let ran =
        Test::new().dir(tmp.path()).args(["build", "--no-cache", "-f"]).arg(&build_file).args(flags).run().code(2);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "a failed build wrote {leftovers:?}");
    ran.stderr()
}

macro_rules! snapshot_case {
    ($test:ident, $case:literal) => {
        #[test]
        fn $test() {
            assert_snapshot!($case, render($case));
        }
    };
}

snapshot_case!(unknown_node_suggests_the_closest_name, "unknown-node");
snapshot_case!(wrong_value_types_are_all_reported, "bad-type");
snapshot_case!(unpinned_and_malformed_digests, "missing-digest");
snapshot_case!(copy_paths_may_not_leave_the_repository, "path-escape");
snapshot_case!(base_digest_mismatch_names_both_digests, "digest-mismatch");
snapshot_case!(kdl_syntax_errors_point_at_their_span, "kdl-syntax");
snapshot_case!(many_errors_of_one_file_come_at_once, "many-errors");

#[test]
fn missing_build_file_is_exit_2_with_a_hint() {
    let tmp = tempdir();
    Test::new().dir(tmp.path()).arg("build").run().code(2).stderr_contains("cannot read the build file");
}

#[test]
fn binary_and_empty_build_files_are_errors_not_panics() {
    let tmp = tempdir();
    std::fs::write(tmp.path().join("empty.kdl"), "").unwrap();
    std::fs::write(tmp.path().join("binary.kdl"), [0u8, 159, 146, 150, 255, 0, 1]).unwrap();
    Test::new().dir(tmp.path()).args(["build", "-f", "empty.kdl"]).run().code(2).stderr_contains("empty");
    Test::new().dir(tmp.path()).args(["build", "-f", "binary.kdl"]).run().code(2).stderr_contains("not UTF-8");
}
