//! PF110: an `env` value in the build file that looks like a secret.

use crate::buildfile::BuildFile;
use crate::rule::{Ctx, Rule};
use pinfold_lang::diag::Severity;

pub const RULE: Rule = Rule {
    id: "PF110",
    name: "secret-in-env",
    severity: Severity::Error,
    summary: "An `env` value that looks like a secret",
    what: "Finds `env` entries whose name says it holds a secret (`*_TOKEN`, `*_SECRET`, \
`*_PASSWORD`, `*_API_KEY`, `AWS_SECRET_ACCESS_KEY`, …) and has a value, or whose value has \
the shape of a well-known credential (GitHub `ghp_…`, AWS `AKIA…`, Slack `xox…-`, GitLab \
`glpat-…`, a PEM private key, …).",
    why: "An image's environment is part of its config blob: anyone who can pull the image \
can read it, and it is in every copy and every cache for as long as the image exists. A \
reproducible image also reproduces the leak.",
    example: example!("PF110", "kdl", "kdl"),
    fix: "Remove the value from the build file. Give the secret to the container at run time \
(`pinfold run -e`, an orchestrator's secret store); never bake it into an image.",
    fixable: false,
    hadolint: &[],
};

const NAMES: &[&str] = &["PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "ACCESS_KEY", "PRIVATE_KEY"];
const SUFFIXES: &[&str] = &[
    "_TOKEN",
    "_SECRET",
    "_PASSWORD",
    "_PASSWD",
    "_PASS",
    "_API_KEY",
    "_APIKEY",
    "_ACCESS_KEY",
    "_PRIVATE_KEY",
    "_SECRET_KEY",
    "_CREDENTIALS",
    "_AUTH_TOKEN",
];

/// Why a name or value looks like a secret, if it does.
pub fn looks_secret(name: &str, value: &str) -> Option<&'static str> {
    if value.trim().is_empty() || value.starts_with("${") {
        return None;
    }
    let upper = name.to_ascii_uppercase();
    if NAMES.contains(&upper.as_str()) || SUFFIXES.iter().any(|s| upper.ends_with(s)) {
        return Some("its name says it holds a secret");
    }
    shaped_like_credential(value)
}

fn shaped_like_credential(v: &str) -> Option<&'static str> {
    let alnum = |s: &str, n: usize| s.len() >= n && s.bytes().take(n).all(|b| b.is_ascii_alphanumeric());
    let upper_alnum =
        |s: &str, n: usize| s.len() >= n && s.bytes().take(n).all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    for p in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        if v.strip_prefix(p).is_some_and(|r| alnum(r, 36)) {
            return Some("it has the shape of a GitHub token");
        }
    }
    if v.strip_prefix("github_pat_").is_some_and(|r| r.len() >= 22) {
        return Some("it has the shape of a GitHub token");
    }
    if ["AKIA", "ASIA"].iter().any(|p| v.strip_prefix(p).is_some_and(|r| upper_alnum(r, 16))) {
        return Some("it has the shape of an AWS access key id");
    }
    if ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxo-"].iter().any(|p| v.starts_with(p)) {
        return Some("it has the shape of a Slack token");
    }
    if v.strip_prefix("glpat-").is_some_and(|r| r.len() >= 20) {
        return Some("it has the shape of a GitLab token");
    }
    if v.strip_prefix("npm_").is_some_and(|r| alnum(r, 36)) {
        return Some("it has the shape of an npm token");
    }
    if v.strip_prefix("AIza").is_some_and(|r| r.len() >= 35) {
        return Some("it has the shape of a Google API key");
    }
    if v.strip_prefix("sk-").is_some_and(|r| r.len() >= 32 && !r.contains(char::is_whitespace)) {
        return Some("it has the shape of an API secret key");
    }
    if v.contains("-----BEGIN") && v.contains("PRIVATE KEY") {
        return Some("it contains a private key");
    }
    None
}

pub fn check(ctx: &mut Ctx, bf: &BuildFile) {
    for env in bf.all_nodes().into_iter().filter(|n| n.name().value() == "env") {
        let entries = env.entries();
        let mut pairs = Vec::new();
        for e in entries {
            if let (Some(k), Some(v)) = (e.name(), e.value().as_string()) {
                pairs.push((k.value().to_string(), v, e));
            }
        }
        // `env "KEY" "VALUE"` as arguments.
        let args: Vec<_> = entries.iter().filter(|e| e.name().is_none()).collect();
        for pair in args.chunks(2) {
            if let [k, v] = pair {
                if let (Some(k), Some(vs)) = (k.value().as_string(), v.value().as_string()) {
                    pairs.push((k.to_string(), vs, v));
                }
            }
        }
        for (key, value, entry) in pairs {
            if let Some(why) = looks_secret(&key, value) {
                ctx.report(
                    &RULE,
                    crate::buildfile::value_span(bf.text, entry),
                    format!("`env {key}` looks like a secret: {why}"),
                )
                .label("baked into the image config")
                .help("pass secrets at run time (`pinfold run -e`); never write them into the image");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::looks_secret;

    #[test]
    fn names_and_shapes() {
        assert!(looks_secret("GITHUB_TOKEN", "x").is_some());
        assert!(looks_secret("AWS_SECRET_ACCESS_KEY", "abc").is_some());
        assert!(looks_secret("X", &format!("ghp_{}", "a".repeat(36))).is_some());
        assert!(looks_secret("X", "AKIAABCDEFGHIJKLMNOP").is_some());
        assert!(looks_secret("PATH", "/usr/bin").is_none());
        assert!(looks_secret("GITHUB_TOKEN", "").is_none());
        assert!(looks_secret("TOKEN_FILE", "/run/secrets/t").is_none());
    }
}
