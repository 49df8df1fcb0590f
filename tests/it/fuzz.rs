//! A bounded fuzz run that `cargo test` does on stable Rust (issue 13): every reader
//! of hostile input — the build-file parser, the Dockerfile parser, the requirements
//! parsers, lock parsing, the tar/gzip/zstd readers of archives and of base layers,
//! and the OCI JSON readers — is fed mutations of the repository's fixtures and of
//! small archives made here, and must not panic, abort, or take long on any input.
//! A few mutated build files go through the real binary, whose exit code must be 0,
//! 1 or 2. Each campaign prints its number of cases and its time budget.
//!
//! The mutator is written here (a dozen lines of byte mutations and a dictionary)
//! rather than taken from a crate: the longer, coverage-guided runs are the
//! cargo-fuzz targets in `fuzz/`, and this run only needs to be deterministic and
//! cheap. `PINFOLD_FUZZ_CASES`, `PINFOLD_FUZZ_SECONDS` and `PINFOLD_FUZZ_SEED` make
//! it longer locally, and `PINFOLD_FUZZ_TRACE` keeps each input on disk before it runs (an
//! abort cannot be caught) (`PINFOLD_FUZZ_CASES=1000000 PINFOLD_FUZZ_SECONDS=3600`).

use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::*;

/// splitmix64: deterministic, so a failure is reproduced by its seed and case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Pieces that matter to the grammars read here.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"\"",
    b"\\",
    b"\n",
    b"=",
    b"#",
    b"r#\"",
    b"\"#",
    b"/-",
    b"..",
    b"/",
    b"//",
    b"/*",
    b"*/",
    b";",
    b"0x",
    b"-1",
    b"18446744073709551616",
    b"\0",
    b"\xff\xfe",
    "\u{e9}".as_bytes(),
    b"${",
    b"$(",
    b"\\\n",
    b"[",
    b"]",
    b":",
    b"@",
    b"==",
    b"; python_version < '3'",
    b"-r ",
    b"-c ",
    b"--hash=sha256:",
    b"FROM ",
    b"RUN ",
    b"COPY --from=",
    b"ARG ",
    b"ONBUILD ",
    b"# syntax=x\n",
    b"# escape=`\n",
    b"<<EOF\n",
    b"true",
    b"null",
    b"{}",
    b"[]",
    b"1e999",
    b"\"sha256:",
    b"../../",
    b"\t",
    b"\r\n",
    b"#true",
    b"#false",
    b"0o7777",
];

/// One to four stacked mutations of `seed`, sometimes spliced with another seed.
fn mutate(rng: &mut Rng, seed: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = [0, 0xff, 0x7f, 0x80, b'0', b' '][rng.below(6)];
            }
            2 => {
                let at = rng.below(len + 1);
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                data.drain(at..at + n);
            }
            4 if len > 0 => {
                // Repeat a slice (nesting, long lines, floods).
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                let piece = data[at..at + n].to_vec();
                let most = if rng.below(8) == 0 { 2000 } else { 8 };
                let times = 1 + rng.below(most);
                let insert: Vec<u8> = piece.iter().copied().cycle().take(n * times).collect();
                data.splice(at..at, insert);
            }
            5 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let n = 1 + rng.below((other.len() - from).min(256));
                    let at = rng.below(len + 1);
                    data.splice(at..at, other[from..from + n].iter().copied());
                }
            }
            6 if len > 0 => data.truncate(rng.below(len)),
            7 if len >= 4 => {
                // An interesting number over four bytes (tar sizes, lengths).
                let at = rng.below(len - 3);
                let v: u32 = [0, 1, u32::MAX, 0x7fff_ffff, 512, 0x8000_0000][rng.below(6)];
                data[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ => {
                let at = rng.below(len + 1);
                let byte = rng.next() as u8;
                data.insert(at, byte);
            }
        }
    }
    data
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs one campaign: every seed once, then mutations, until `cases` inputs or the
/// time budget; asserts no panic and no slow input, and prints what it did.
fn campaign(name: &str, seeds: &[Vec<u8>], cases: u64, budget: Duration, check: &dyn Fn(&[u8])) {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    let cases = env_number("PINFOLD_FUZZ_CASES").unwrap_or(cases);
    let budget = env_number("PINFOLD_FUZZ_SECONDS").map_or(budget, Duration::from_secs);
    let seed = env_number("PINFOLD_FUZZ_SEED").unwrap_or(0x5EED);
    // A generous bound for an unoptimized build on a shared machine: the slow inputs
    // that were found before (nesting, quote floods, deep paths) took minutes.
    let per_input = Duration::from_secs(5);
    let mut rng = Rng(seed ^ name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));
    let findings = std::env::temp_dir().join("pinfold-fuzz-findings");
    let trace = std::env::var_os("PINFOLD_FUZZ_TRACE").is_some();
    if trace {
        let _ = std::fs::create_dir_all(&findings);
    }
    let started = Instant::now();
    let (mut done, mut panics, mut slowest) = (0u64, Vec::new(), Duration::ZERO);
    while done < cases && started.elapsed() < budget {
        let input = match seeds.get(done as usize) {
            Some(s) => s.clone(),
            None => {
                let pick = rng.below(seeds.len());
                mutate(&mut rng, &seeds[pick], seeds)
            }
        };
        if trace {
            // An abort (stack overflow) cannot be caught: the input is on disk first.
            let _ = std::fs::write(findings.join(format!("{name}-current")), &input);
        }
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        let took = t.elapsed();
        slowest = slowest.max(took);
        if outcome.is_err() || took > per_input {
            let _ = std::fs::create_dir_all(&findings);
            let file = findings.join(format!("{name}-{seed}-{done}"));
            let _ = std::fs::write(&file, &input);
            panics.push(format!(
                "case {done} ({took:?}, {}): {}",
                file.display(),
                if outcome.is_err() { "panic" } else { "slow" }
            ));
        }
        done += 1;
    }
    println!(
        "fuzz {name}: {done} cases in {:.1?} (budget {budget:?}, at most {cases} cases, seed {seed}); slowest input {slowest:.1?}; {} findings",
        started.elapsed(),
        panics.len()
    );
    assert!(panics.is_empty(), "{name}: {panics:#?}");
}

/// Files below `fixtures/` whose name satisfies `wanted`.
fn fixture_seeds(wanted: &dyn Fn(&str) -> bool) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for entry in walkdir::WalkDir::new(fixture("")).sort_by_file_name().into_iter().filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_file() && wanted(&name) {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                if bytes.len() <= 64 << 10 {
                    seeds.push(bytes);
                }
            }
        }
    }
    seeds
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[test]
fn fuzz_build_file_parser() {
    let seeds = fixture_seeds(&|n| n.ends_with(".kdl"));
    campaign("build-file", &seeds, 3000, Duration::from_secs(8), &|b| {
        let source = pinfold_lang::diag::Source::new("fuzz.kdl", text(b).as_ref());
        let mut diags = pinfold_lang::diag::Diagnostics::default();
        let _ = pinfold_lang::parse(&source, &mut diags);
        let _ = diags.render_plain();
    });
}

#[test]
fn fuzz_dockerfile_parser() {
    let seeds = fixture_seeds(&|n| n.contains("Dockerfile"));
    campaign("dockerfile", &seeds, 5000, Duration::from_secs(5), &|b| {
        // Every instruction's exec form too: `pinfold import` and lint read it
        // (an escaped multi-byte character once panicked there).
        if let Ok(df) = pinfold_lint::dockerfile::Dockerfile::parse(&text(b)) {
            for ins in &df.instructions {
                let _ = ins.exec_form();
            }
        }
    });
}

#[test]
fn fuzz_requirements_parsers() {
    let mut seeds = fixture_seeds(&|n| n.ends_with(".txt") && n.contains("requirements") || n.contains("constraints"));
    seeds
        .push(b"numpy==2.1.*\nscikit-learn>=1.5; python_version>='3.10'\nrequests[socks] @ https://x/r.whl\n".to_vec());
    let file = Path::new("/nonexistent/requirements.txt");
    campaign("requirements", &seeds, 5000, Duration::from_secs(5), &|b| {
        let t = text(b);
        let _ = pinfold_python::requirements::Requirements::from_str_in(&t, file);
        let _ = pinfold_lint::deps::Requirements::parse(&t);
    });
}

#[test]
fn fuzz_lock_parser() {
    use pinfold_lang::lock::{Lock, LockedFile};
    let mut lock = Lock { version: 1, build_file: format!("sha256:{}", "0".repeat(64)), ..Lock::default() };
    lock.bases.insert("debian".into(), format!("sha256:{}", "a".repeat(64)));
    lock.archives.insert("src".into(), LockedFile { source: "src.tar.gz".into(), sha256: "b".repeat(64) });
    let seeds = vec![Lock::default().to_text().into_bytes(), lock.to_text().into_bytes()];
    campaign("lock", &seeds, 5000, Duration::from_secs(4), &|b| {
        let _ = Lock::parse(&text(b), "pinfold.lock");
    });
}

// ---- archives and images made here, as seeds ----

/// A layer tar with the entry kinds the readers must handle.
fn layer_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        h.set_mtime(1_704_067_200);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        builder.append_data(&mut h, path, data).unwrap();
    };
    add("etc/", tar::EntryType::Directory, b"", None);
    add("etc/hello", tar::EntryType::Regular, b"hello\n", None);
    add("etc/link", tar::EntryType::Symlink, b"", Some("hello"));
    add("etc/hard", tar::EntryType::Link, b"", Some("etc/hello"));
    add("etc/.wh.gone", tar::EntryType::Regular, b"", None);
    add("usr/bin/tool", tar::EntryType::Regular, b"#!/bin/sh\n", None);
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn sha(bytes: &[u8]) -> String {
    pinfold_image::digest::Digest::of(bytes).hex()
}

fn tar_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        builder.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

/// The JSON documents of an OCI image: index, manifest, config, and its layer.
fn oci_documents() -> [Vec<u8>; 4] {
    let layer = layer_tar();
    let gz = gzip(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["PATH=/bin"],"Cmd":["/bin/sh"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        sha(&layer)
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{}","size":{}}}]}}"#,
        sha(config.as_bytes()),
        config.len(),
        sha(&gz),
        gz.len()
    );
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        sha(manifest.as_bytes()),
        manifest.len()
    );
    [index.into_bytes(), manifest.into_bytes(), config.into_bytes(), gz]
}

/// An oci-archive of the documents as given (digests are not recomputed).
fn oci_archive(docs: &[Vec<u8>; 4]) -> Vec<u8> {
    let [index, manifest, config, layer] = docs;
    let mut members = vec![
        ("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json".to_string(), index.clone()),
    ];
    for blob in [manifest, config, layer] {
        members.push((format!("blobs/sha256/{}", sha(blob)), blob.clone()));
    }
    tar_of(&members)
}

fn docker_archive() -> Vec<u8> {
    let layer = layer_tar();
    let [_, _, config, _] = oci_documents();
    let manifest = format!(
        r#"[{{"Config":"{c}.json","RepoTags":["fuzz:latest"],"Layers":["{l}/layer.tar"]}}]"#,
        c = sha(&config),
        l = sha(&layer)
    );
    tar_of(&[
        ("manifest.json".into(), manifest.into_bytes()),
        (format!("{}.json", sha(&config)), config),
        (format!("{}/layer.tar", sha(&layer)), layer),
    ])
}

/// Opens `bytes` as an image of `kind` and unpacks its first platform's rootfs (the
/// readers of bases: tar members, OCI JSON, and gzip/zstd/plain layers).
fn open_and_unpack(dir: &Path, kind: &str, bytes: &[u8]) {
    let file = dir.join("image.tar");
    std::fs::write(&file, bytes).unwrap();
    let reference: pinfold_image::oci::reference::ImageRef = format!("{kind}:{}", file.display()).parse().unwrap();
    if let Ok(opened) = pinfold_image::oci::read::OpenedImage::open(&reference) {
        if let Some(image) = opened.manifests.first() {
            let cache = dir.join("cache");
            let prepared = pinfold_sandbox::PreparedImage::new("fuzz", &opened, image, &cache);
            let _ = prepared.rootfs();
            drop(prepared);
            let _ = pinfold_sandbox::rootfs::remove_tree(&cache);
        }
    }
}

#[test]
fn fuzz_image_archives_and_their_layers() {
    let tmp = tempdir();
    let seeds = [oci_archive(&oci_documents()), docker_archive()];
    campaign("image-archive", &seeds[..1], 1500, Duration::from_secs(6), &|b| {
        open_and_unpack(tmp.path(), "oci-archive", b)
    });
    campaign("docker-archive", &seeds[1..], 1500, Duration::from_secs(5), &|b| {
        open_and_unpack(tmp.path(), "docker-archive", b)
    });
}

#[test]
fn fuzz_oci_json_readers() {
    // The first byte picks the document to mutate; the archive around it is rebuilt
    // with correct digests, so the mutated JSON reaches its parser.
    let tmp = tempdir();
    let docs = oci_documents();
    let seeds: Vec<Vec<u8>> =
        (0..3u8).map(|i| std::iter::once(i).chain(docs[i as usize].iter().copied()).collect()).collect();
    campaign("oci-json", &seeds, 2500, Duration::from_secs(6), &|b| {
        let Some((&which, doc)) = b.split_first() else { return };
        let mut docs = oci_documents();
        match which % 3 {
            0 => docs[0] = doc.to_vec(),
            1 => {
                docs[1] = doc.to_vec();
                let index = String::from_utf8_lossy(&docs[0]).into_owned();
                let fixed = index.replacen(&sha(&oci_documents()[1]), &sha(doc), 1);
                docs[0] = fixed
                    .replacen(&format!("\"size\":{}", oci_documents()[1].len()), &format!("\"size\":{}", doc.len()), 1)
                    .into_bytes();
            }
            _ => {
                docs[2] = doc.to_vec();
                let old = oci_documents();
                let manifest = String::from_utf8_lossy(&docs[1]).replacen(&sha(&old[2]), &sha(doc), 1).replacen(
                    &format!("\"size\":{}", old[2].len()),
                    &format!("\"size\":{}", doc.len()),
                    1,
                );
                docs[1] = manifest.into_bytes();
                let index = String::from_utf8_lossy(&docs[0]).replacen(&sha(&old[1]), &sha(&docs[1]), 1).replacen(
                    &format!("\"size\":{}", old[1].len()),
                    &format!("\"size\":{}", docs[1].len()),
                    1,
                );
                docs[0] = index.into_bytes();
            }
        }
        open_and_unpack(tmp.path(), "oci-archive", &oci_archive(&docs));
    });
}

#[test]
fn fuzz_archive_extraction() {
    let tmp = tempdir();
    let cache = pinfold::cache::Cache::open(&tmp.path().join("cache")).unwrap();
    let layer = layer_tar();
    let seeds = vec![layer.clone(), gzip(&layer), zstd::encode_all(layer.as_slice(), 3).unwrap()];
    let blob = tmp.path().join("blob");
    campaign("archive", &seeds, 2000, Duration::from_secs(6), &|b| {
        std::fs::write(&blob, b).unwrap();
        let digest = pinfold_image::digest::Digest::of(b);
        if let Ok(dir) = pinfold::input::extract::extract_archive(&blob, &digest, &cache) {
            let _ = pinfold_sandbox::rootfs::remove_tree(&dir);
        }
    });
}

/// Points this process's stdout and stderr at /dev/null while it lives (the commands
/// run in-process print their reports; a long run would otherwise print gigabytes).
struct Silenced([std::os::fd::OwnedFd; 2]);

impl Silenced {
    fn new() -> Silenced {
        use std::os::fd::AsFd;
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null").unwrap();
        let saved = [std::io::stdout().as_fd(), std::io::stderr().as_fd()].map(|fd| fd.try_clone_to_owned().unwrap());
        for fd in [1, 2] {
            // SAFETY: dup2 of a descriptor this function owns onto stdout/stderr.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
        }
        Silenced(saved)
    }
}

impl Drop for Silenced {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        for (fd, saved) in [1, 2].into_iter().zip(&self.0) {
            // SAFETY: restores the descriptors saved in `new`.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(saved), fd) };
        }
    }
}

#[test]
fn fuzz_the_cli_exits_0_1_or_2() {
    let tmp = tempdir();
    let seeds = fixture_seeds(&|n| n == "pinfold.kdl");
    let dir = tmp.path().to_path_buf();
    let file: PathBuf = dir.join("pinfold.kdl");
    let shown = file.to_str().unwrap().to_string();
    let commands = [vec!["pinfold", "lint", shown.as_str()], vec!["pinfold", "graph", "-f", shown.as_str()]];
    // The real binary on the seeds and every 500th case (its exit code, an abort);
    // the commands in-process on all of them, which is where the cases come from.
    let case = std::sync::atomic::AtomicU64::new(0);
    campaign("cli", &seeds[..seeds.len().min(20)], 2000, Duration::from_secs(15), &|b| {
        std::fs::write(&file, b).unwrap();
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n < 20 || n.is_multiple_of(500) {
            for args in &commands {
                let ran = Test::new().dir(&dir).env("PINFOLD_CACHE_DIR", dir.join("cache")).args(&args[1..]).run();
                let code = ran.output.status.code();
                assert!(matches!(code, Some(0..=2)), "pinfold {args:?} exited with {code:?}: {}", ran.stderr());
            }
        }
        let codes: Vec<i32> = {
            let _quiet = Silenced::new();
            commands.iter().map(pinfold::cli::main_from).collect()
        };
        for (args, code) in commands.iter().zip(codes) {
            assert!((0..=2).contains(&code), "pinfold {args:?} returned {code}");
        }
    });
}
