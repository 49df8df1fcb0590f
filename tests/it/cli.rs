//! The command line as a person meets it: help texts and the first errors.

use crate::harness::*;

fn help(command: &str) -> String {
    Test::new().args([command, "--help"]).run().success().stdout()
}

#[test]
fn every_command_that_takes_an_image_lists_every_reference_form() {
    for command in ["inspect", "run", "verify", "diff"] {
        let text = help(command);
        for form in ["oci:DIR", "oci-archive:FILE", "docker-archive:FILE", "docker://HOST/REPO"] {
            assert!(text.contains(form), "`pinfold {command} --help` does not name {form}:\n{text}");
        }
    }
}

#[test]
fn registry_flags_appear_only_on_commands_that_reach_a_registry() {
    for command in ["build", "inspect", "lock", "diff", "verify", "run", "test", "vendor"] {
        assert!(help(command).contains("--creds"), "`pinfold {command}` reaches registries and has no --creds");
    }
    for command in ["lint", "graph", "clean"] {
        let text = help(command);
        assert!(!text.contains("--creds") && !text.contains("--insecure-registry"), "`pinfold {command}`:\n{text}");
    }
}

#[test]
fn test_without_a_build_file_says_what_build_says() {
    let tmp = tempdir();
    let build = Test::in_dir(tmp.path()).arg("build").run().code(2).stderr();
    let test = Test::in_dir(tmp.path()).arg("test").run().code(2).stderr();
    let first = |text: &str| text.lines().take(4).collect::<Vec<_>>().join("\n");
    assert!(build.contains("pinfold::unreadable"), "{build}");
    assert_eq!(first(&build), first(&test));
}
