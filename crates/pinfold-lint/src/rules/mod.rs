//! The lint rules, one per file, each with its id, severity, documentation and check.
//! [`ALL`] is the registry: the order of the book page and of the SARIF rule table.
//! Adding a rule means adding its file, listing it here and in the driver that runs
//! it, and adding its `bad`/`good` fixtures; the tests then check the rest.

/// The rule's example, read from its fixtures at compile time.
macro_rules! example {
    ($id:literal, $ext:literal, $lang:literal) => {
        $crate::rule::Example {
            ext: $ext,
            lang: $lang,
            bad: include_str!(concat!("../../../../fixtures/lint/rules/", $id, "/bad.", $ext)),
            good: include_str!(concat!("../../../../fixtures/lint/rules/", $id, "/good.", $ext)),
        }
    };
}

use super::rule::Rule;

pub mod pf001_allow_without_reason;
pub mod pf002_unknown_rule;
pub mod pf003_unused_suppression;

pub mod pf101_base_without_digest;
pub mod pf102_base_latest_tag;
pub mod pf103_base_untagged;
pub mod pf104_invalid_digest;
pub mod pf105_layout_without_digest;
pub mod pf106_download_without_sha256;
pub mod pf107_moving_target_url;
pub mod pf108_step_network;
pub mod pf109_image_runs_as_root;
pub mod pf110_secret_in_env;

pub mod pf201_from_without_digest;
pub mod pf202_from_latest_tag;
pub mod pf203_from_untagged;
pub mod pf204_add_url_without_checksum;
pub mod pf205_add_local_file;
pub mod pf206_moving_download_url;

pub mod pf301_pip_unpinned;
pub mod pf302_apt_get_unpinned;
pub mod pf303_apk_unpinned;
pub mod pf304_npm_unpinned;
pub mod pf305_cargo_install_unpinned;
pub mod pf306_go_install_latest;
pub mod pf307_conda_unpinned;
pub mod pf308_gem_unpinned;
pub mod pf309_pipe_to_shell;
pub mod pf310_download_without_checksum;
pub mod pf311_git_clone_unpinned;
pub mod pf312_rpm_unpinned;
pub mod pf313_package_upgrade;
pub mod pf314_install_file_unchecked;
pub mod pf315_r_package_unpinned;
pub mod pf316_julia_package_unpinned;
pub mod pf317_rust_toolchain_unpinned;

pub mod pf401_requirement_unpinned;
pub mod pf402_requirement_without_hash;
pub mod pf403_environment_unpinned;
pub mod pf404_include_not_found;
pub mod pf405_conda_build_unpinned;

/// How pinfold pins Debian packages, for help texts: the way to a pinned build.
pub(crate) const WITH_PINFOLD_DEBIAN: &str = "with pinfold: `pinfold import` writes a build file with a \
`debian NAME { packages … }` input,\nand `pinfold lock` pins each .deb by sha256.";

/// How pinfold pins Python packages, for help texts.
pub(crate) const WITH_PINFOLD_PYTHON: &str = "with pinfold: `pinfold import` writes a build file with a \
`python NAME { … }` input,\nand `pinfold lock` pins each wheel by sha256.";

/// Every rule, in id order.
pub static ALL: &[&Rule] = &[
    &pf001_allow_without_reason::RULE,
    &pf002_unknown_rule::RULE,
    &pf003_unused_suppression::RULE,
    &pf101_base_without_digest::RULE,
    &pf102_base_latest_tag::RULE,
    &pf103_base_untagged::RULE,
    &pf104_invalid_digest::RULE,
    &pf105_layout_without_digest::RULE,
    &pf106_download_without_sha256::RULE,
    &pf107_moving_target_url::RULE,
    &pf108_step_network::RULE,
    &pf109_image_runs_as_root::RULE,
    &pf110_secret_in_env::RULE,
    &pf201_from_without_digest::RULE,
    &pf202_from_latest_tag::RULE,
    &pf203_from_untagged::RULE,
    &pf204_add_url_without_checksum::RULE,
    &pf205_add_local_file::RULE,
    &pf206_moving_download_url::RULE,
    &pf301_pip_unpinned::RULE,
    &pf302_apt_get_unpinned::RULE,
    &pf303_apk_unpinned::RULE,
    &pf304_npm_unpinned::RULE,
    &pf305_cargo_install_unpinned::RULE,
    &pf306_go_install_latest::RULE,
    &pf307_conda_unpinned::RULE,
    &pf308_gem_unpinned::RULE,
    &pf309_pipe_to_shell::RULE,
    &pf310_download_without_checksum::RULE,
    &pf311_git_clone_unpinned::RULE,
    &pf312_rpm_unpinned::RULE,
    &pf313_package_upgrade::RULE,
    &pf314_install_file_unchecked::RULE,
    &pf315_r_package_unpinned::RULE,
    &pf316_julia_package_unpinned::RULE,
    &pf317_rust_toolchain_unpinned::RULE,
    &pf401_requirement_unpinned::RULE,
    &pf402_requirement_without_hash::RULE,
    &pf403_environment_unpinned::RULE,
    &pf404_include_not_found::RULE,
    &pf405_conda_build_unpinned::RULE,
];

/// A rule by id (`PF101`, any case) or by name (`base-without-digest`).
pub fn find(key: &str) -> Option<&'static Rule> {
    ALL.iter().copied().find(|r| r.id.eq_ignore_ascii_case(key) || r.name == key)
}

/// The rules run on every shell command of a Dockerfile `RUN` or a build-file step.
/// `later` are the scripts of the next `RUN` of the same stage (a clone pinned by a
/// checkout there is pinned).
pub(crate) fn check_script(ctx: &mut super::rule::Ctx, script: &super::shell::Script, later: &[super::shell::Script]) {
    pf301_pip_unpinned::check(ctx, script);
    pf302_apt_get_unpinned::check(ctx, script);
    pf303_apk_unpinned::check(ctx, script);
    pf304_npm_unpinned::check(ctx, script);
    pf305_cargo_install_unpinned::check(ctx, script);
    pf306_go_install_latest::check(ctx, script);
    pf307_conda_unpinned::check(ctx, script);
    pf308_gem_unpinned::check(ctx, script);
    pf309_pipe_to_shell::check(ctx, script);
    pf310_download_without_checksum::check(ctx, script);
    pf311_git_clone_unpinned::check(ctx, script, later);
    pf312_rpm_unpinned::check(ctx, script);
    pf313_package_upgrade::check(ctx, script);
    pf315_r_package_unpinned::check(ctx, script);
    pf316_julia_package_unpinned::check(ctx, script);
    pf317_rust_toolchain_unpinned::check(ctx, script);
    pf405_conda_build_unpinned::check(ctx, script);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for r in ALL {
            assert!(r.id.len() == 5 && r.id.starts_with("PF"), "{}", r.id);
            assert!(r.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{}", r.name);
            assert!(seen.insert(r.id) && seen.insert(r.name), "duplicate {}", r.id);
            assert!(!r.summary.ends_with('.'), "{}: summaries are phrases", r.id);
        }
        let ids: Vec<_> = ALL.iter().map(|r| r.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
