//! `pinfold vendor DIR`: every pinned input a build file's lock names — the `.deb`
//! files of its Debian sets, the wheels of its Python sets, its downloads and fetched
//! archives — copied into one directory, in the layout `--mirror DIR` reads (each file
//! named by its sha256 in hex), with an index, `DIR/pinfold-vendor.json`.
//!
//! Why: a researcher deposits the repository and DIR beside a paper; years later a
//! reviewer with no network runs `pinfold build --offline --mirror DIR` or `pinfold
//! verify --offline --mirror DIR …` and gets the same bits. So vendoring only ever
//! adds: a file is written under a temporary name, checked against its sha256 as it
//! streams, and linked to its final name (which fails rather than replace anything);
//! nothing in DIR is deleted or overwritten but the index, which is replaced, by a
//! rename, with the union of what it listed and what this build file needs. A re-run
//! that has nothing to add writes nothing and says so. Every name inside DIR goes
//! through `pinfold_image::rooted`, so a symlink planted in DIR is never followed.
//!
//! A registry base is copied blob by blob (its pinned top object, and the manifest,
//! config and layers of each platform the build needs); a build with `--mirror DIR`
//! puts them into the store before it opens the base, so it asks the registry for
//! nothing. Local archives (`archive path=…`) and layout or archive bases are not
//! copied: they are files of the repository itself, and a build reads them there.

use super::{InputArgs, RegistryArgs, EXIT_ERROR, EXIT_OK};
use crate::build::{self, BuildRequest};
use crate::cache::Cache;
use crate::packages::{debian, python};
use pinfold_image::digest::{Digest, HashingWriter};
use pinfold_image::rooted::{Kind, Root};
use pinfold_lang::lock::Lock;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The index file's name inside DIR.
pub const INDEX: &str = "pinfold-vendor.json";
const INDEX_VERSION: u64 = 1;

#[derive(Debug, clap::Args)]
pub struct VendorArgs {
    /// The directory to fill (made when missing); what it holds already is kept.
    pub dir: PathBuf,
    /// The build file (its pinfold.lock must be current: run `pinfold lock` first).
    #[arg(short = 'f', long = "file", default_value = "pinfold.kdl")]
    pub file: PathBuf,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Last: its flags go under their own heading.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// One file of DIR as one input uses it. A file several inputs use is listed once
/// per input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendoredFile {
    pub sha256: String,
    pub size: u64,
    /// `debian`, `python`, `download`, `archive` or `base`.
    pub kind: String,
    /// The input of the build file: `debian os linux/amd64`, `download tool *`.
    pub input: String,
    /// What the lock calls the file: the pool path, the wheel's file name, the last
    /// segment of a download's URL; for a base, the blob's role (`manifest
    /// linux/amd64`, `layer 0 linux/amd64`). Never a host.
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorIndex {
    pub version: u64,
    pub files: Vec<VendoredFile>,
}

pub fn run(args: VendorArgs) -> i32 {
    match vendor(&args) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            EXIT_OK
        }
        Err(message) => {
            eprint!("{message}");
            if !message.ends_with('\n') {
                eprintln!();
            }
            eprintln!("error: no file of {} was replaced or removed", args.dir.display());
            EXIT_ERROR
        }
    }
}

fn vendor(args: &VendorArgs) -> Result<Vec<String>, String> {
    let mut request = BuildRequest::new(&args.file, &[]);
    request.plan_input.fetch = args.inputs.fetch_options();
    // What is vendored is what the lock pins, so the lock must be this file's.
    request.plan_input.locked = true;
    // Package sets are fetched below, each file by its locked sha256; planning only
    // checks that they are installed by name.
    request.plan_input.lock_only = true;
    request.cache_dir = args.inputs.cache_dir.clone();
    let cache = build::open_cache(&request).map_err(|e| build::render_error(&e))?;
    // Planning fetches every download and archive into the store (checked by sha256).
    let (plan, _) = build::load_plan(&request, &cache).map_err(|e| build::render_error(&e))?;
    let lock = Lock::read(&build::lock_path(&args.file))
        .map_err(|e| e.to_string())?
        .ok_or("there is no pinfold.lock beside the build file: run `pinfold lock`")?;
    let wanted = wanted_files(&request, &plan.root, &plan.resolved, &lock, &cache)?;
    write_dir(&args.dir, &wanted)
}

/// Every file the lock pins, with where it is in the store now (fetched if needed).
fn wanted_files(
    request: &BuildRequest,
    root: &Path,
    resolved: &Lock,
    lock: &Lock,
    cache: &Cache,
) -> Result<Vec<(VendoredFile, PathBuf)>, String> {
    let mut diags = pinfold_lang::diag::Diagnostics::default();
    let file = pinfold_lang::read_build_file(&request.file, &mut diags)
        .and_then(|source| pinfold_lang::parse(&source, &mut diags))
        .ok_or_else(|| diags.render_for_stderr())?;
    let options = &request.plan_input.fetch;
    let mut out = Vec::new();
    let stored = |sha256: &str, what: &str| -> Result<PathBuf, String> {
        let digest: Digest = format!("sha256:{sha256}").parse().map_err(|e| format!("{what}: {e}"))?;
        let path = cache.blob_path(&digest);
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{what} (sha256 {sha256}) is not in the store"))
        }
    };
    for (name, by_platform) in &resolved.downloads {
        for (platform, locked) in by_platform {
            let what = format!("download {name} {platform}");
            let path = stored(&locked.sha256, &what)?;
            let file = VendoredFile {
                sha256: locked.sha256.clone(),
                size: size_of(&path)?,
                kind: "download".into(),
                input: what,
                name: crate::plan::inputs::url_file_name(&locked.source),
            };
            out.push((file, path));
        }
    }
    for (name, locked) in &resolved.archives {
        if !locked.source.contains("://") {
            continue; // a file of the repository (see the module's comment)
        }
        let what = format!("archive {name}");
        let path = stored(&locked.sha256, &what)?;
        let file = VendoredFile {
            sha256: locked.sha256.clone(),
            size: size_of(&path)?,
            kind: "archive".into(),
            input: what,
            name: crate::plan::inputs::url_file_name(&locked.source),
        };
        out.push((file, path));
    }
    let platforms = crate::plan::wanted_platforms(&file, &request.plan_input);
    for decl in &file.bases {
        let Some(pinfold_lang::BaseSource::Registry(reference)) = &decl.source else { continue };
        out.extend(registry_base(&decl.name.value, &reference.value, resolved, &platforms, cache, options)?);
    }
    for decl in &file.debian {
        let set = &decl.name.value;
        let locked = lock.debian.get(set).ok_or_else(|| format!("debian set `{set}` is not in pinfold.lock"))?;
        let mirrors = debian::fetch_mirrors(decl, options);
        for (platform, debs) in &locked.platforms {
            for deb in debs {
                let path = debian::fetch_deb(deb, &mirrors, cache, options)?;
                let file = VendoredFile {
                    sha256: deb.sha256.clone(),
                    size: size_of(&path)?,
                    kind: "debian".into(),
                    input: format!("debian {set} {platform}"),
                    name: deb.path.clone(),
                };
                out.push((file, path));
            }
        }
    }
    for decl in &file.python {
        let set = &decl.name.value;
        let locked = lock.python.get(set).ok_or_else(|| format!("python set `{set}` is not in pinfold.lock"))?;
        for (platform, wheels) in &locked.platforms {
            let paths = python::fetch_wheels(decl, root, wheels, cache, options)?;
            for (wheel, path) in wheels.iter().zip(paths) {
                let file = VendoredFile {
                    sha256: wheel.sha256.clone(),
                    size: size_of(&path)?,
                    kind: "python".into(),
                    input: format!("python {set} {platform}"),
                    name: wheel.file.clone(),
                };
                out.push((file, path));
            }
        }
    }
    Ok(out)
}

/// The blobs of a registry base as its pin names them — the top object, and for each
/// platform the build needs its manifest, config and layers — each in the store
/// (pulled into it, checked by digest, when it is not there yet).
fn registry_base(
    name: &str,
    reference: &str,
    resolved: &Lock,
    platforms: &[pinfold_lang::Platform],
    cache: &Cache,
    options: &crate::input::FetchOptions,
) -> Result<Vec<(VendoredFile, PathBuf)>, String> {
    let what = format!("base {name}");
    let pin: Digest = resolved
        .bases
        .get(name)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| format!("{what} is not pinned: run `pinfold lock`"))?;
    let reference = pinfold_registry::Reference::parse(reference).map_err(|e| format!("{what}: {e}"))?;
    let image = pinfold_registry::open_base(
        crate::env::registries(),
        &reference,
        Some(pin),
        Some(&cache.store()),
        platforms,
        options.offline,
    )
    .map_err(|e| format!("{what}: {e}"))?;
    let mut blobs: Vec<(Digest, String)> = vec![(image.top.digest, "top".into())];
    for m in &image.manifests {
        let platform = m.platform.as_ref().map_or_else(|| "*".to_string(), |p| p.to_string());
        blobs.push((m.manifest_digest, format!("manifest {platform}")));
        blobs.push((m.config_digest, format!("config {platform}")));
        blobs.extend(m.layers.iter().enumerate().map(|(i, l)| (l.digest, format!("layer {i} {platform}"))));
    }
    let mut out = Vec::new();
    for (digest, role) in blobs {
        let path = cache.blob_path(&digest);
        if !path.is_file() {
            // Read through the image's archive: a registry blob is streamed into the
            // store, checked against its digest, as a build reads it.
            let member = pinfold_image::oci::archive::blob_member(&digest);
            let (mut reader, _) = image.archive.open(&member).map_err(|e| format!("{what} {role}: {e}"))?;
            std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| format!("{what} {role}: {e}"))?;
        }
        if !path.is_file() {
            return Err(format!("{what} {role} ({digest}) could not be kept in the store"));
        }
        let file = VendoredFile {
            sha256: digest.hex(),
            size: size_of(&path)?,
            kind: "base".into(),
            input: what.clone(),
            name: role,
        };
        out.push((file, path));
    }
    Ok(out)
}

fn size_of(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path).map(|m| m.len()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes what DIR lacks and the index; the lines to print.
fn write_dir(dir: &Path, wanted: &[(VendoredFile, PathBuf)]) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut root = Root::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let shown = |name: &str| dir.join(name).display().to_string();
    let mut lines = Vec::new();
    let mut kept = 0usize;
    // One copy per sha256, however many inputs name it.
    let mut by_sha: BTreeMap<&str, (&VendoredFile, &PathBuf)> = BTreeMap::new();
    for (file, path) in wanted {
        by_sha.entry(file.sha256.as_str()).or_insert((file, path));
    }
    // What DIR holds already is checked first, so that a wrong file stops the run
    // before anything is added.
    let mut missing = Vec::new();
    for (sha256, (file, from)) in &by_sha {
        let parts: [&[u8]; 1] = [sha256.as_bytes()];
        match root.kind(&parts).map_err(|e| format!("{}: {e}", dir.display()))? {
            Kind::Missing => missing.push((*sha256, *file, *from)),
            Kind::File => {
                // Already there: it must be what its name says (never replaced).
                let reader = root.open_file(&parts).map_err(|e| format!("{}: {e}", dir.display()))?;
                let actual = hash_reader(reader).map_err(|e| format!("{}: {e}", shown(sha256)))?;
                if actual.hex() != **sha256 {
                    return Err(format!(
                        "{} does not match its name: expected sha256:{sha256}, got {actual}; it was left as it is",
                        shown(sha256)
                    ));
                }
                kept += 1;
            }
            other => return Err(format!("{} is a {other:?}, not a file; it was left as it is", shown(sha256))),
        }
    }
    for (sha256, file, from) in missing {
        copy_checked(&mut root, from, sha256, &shown(sha256))?;
        lines.push(format!("+ {sha256} {} {}", file.input, file.name));
    }
    let index_changed = write_index(&mut root, dir, wanted)?;
    let added = lines.len();
    if added == 0 && !index_changed {
        lines.push(format!("{} is up to date: {kept} file(s), nothing was written", dir.display()));
    } else {
        lines.push(format!(
            "vendored {added} new file(s) into {} ({kept} already there); index {}",
            dir.display(),
            shown(INDEX)
        ));
    }
    Ok(lines)
}

/// Copies `from` to DIR/`sha256`: into a new temporary name, hashed as it streams,
/// then hard-linked to its final name (which must not exist) and the temporary name
/// removed — so the final name appears whole, or not at all.
fn copy_checked(root: &mut Root, from: &Path, sha256: &str, shown: &str) -> Result<(), String> {
    let tmp_name = format!(".pinfold-vendor-{sha256}.{}.tmp", std::process::id());
    let tmp: [&[u8]; 1] = [tmp_name.as_bytes()];
    let dest: [&[u8]; 1] = [sha256.as_bytes()];
    let result = (|| {
        let source = std::fs::File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
        let out = root.create_file(&tmp, 0o644).map_err(|e| format!("{shown}: {e}"))?;
        let mut writer = HashingWriter::new(std::io::BufWriter::new(out));
        std::io::copy(&mut std::io::BufReader::new(source), &mut writer).map_err(|e| format!("{shown}: {e}"))?;
        let (actual, _, buffered) = writer.finish();
        let file = buffered.into_inner().map_err(|e| format!("{shown}: {}", e.error()))?;
        file.sync_all().map_err(|e| format!("{shown}: {e}"))?;
        if actual.hex() != sha256 {
            return Err(format!(
                "{} does not match its pinned sha256: expected sha256:{sha256}, got {actual}",
                from.display()
            ));
        }
        root.hard_link(&tmp, &dest).map_err(|e| format!("{shown}: {e}"))
    })();
    // The temporary name is ours alone; whatever happened, it goes.
    let _ = root.remove(&tmp);
    result
}

fn hash_reader(mut reader: impl Read) -> std::io::Result<Digest> {
    let mut writer = HashingWriter::new(std::io::sink());
    std::io::copy(&mut reader, &mut writer)?;
    Ok(writer.finish().0)
}

/// Replaces the index with the union of the old one and `wanted` (canonical JSON,
/// sorted), when that differs; whether it did.
fn write_index(root: &mut Root, dir: &Path, wanted: &[(VendoredFile, PathBuf)]) -> Result<bool, String> {
    let shown = dir.join(INDEX).display().to_string();
    let parts: [&[u8]; 1] = [INDEX.as_bytes()];
    let old = match root.kind(&parts).map_err(|e| format!("{shown}: {e}"))? {
        Kind::Missing => None,
        Kind::File => {
            let mut text = Vec::new();
            root.open_file(&parts)
                .and_then(|f| {
                    f.take(64 << 20)
                        .read_to_end(&mut text)
                        .map_err(|e| pinfold_image::rooted::RootedError::Io { path: INDEX.into(), source: e })
                })
                .map_err(|e| format!("{shown}: {e}"))?;
            let index: VendorIndex = serde_json::from_slice(&text)
                .map_err(|e| format!("{shown} is not an index pinfold wrote ({e}); it was left as it is"))?;
            Some((text, index))
        }
        other => return Err(format!("{shown} is a {other:?}, not a file; it was left as it is")),
    };
    let mut all: BTreeSet<VendoredFile> =
        old.as_ref().map(|(_, i)| i.files.iter().cloned().collect()).unwrap_or_default();
    all.extend(wanted.iter().map(|(f, _)| f.clone()));
    let index = VendorIndex { version: INDEX_VERSION, files: all.into_iter().collect() };
    let mut bytes = pinfold_image::oci::json::canonical(&index);
    bytes.push(b'\n');
    if old.as_ref().is_some_and(|(text, _)| *text == bytes) {
        return Ok(false);
    }
    let tmp_name = format!(".{INDEX}.{}.tmp", std::process::id());
    let tmp: [&[u8]; 1] = [tmp_name.as_bytes()];
    let result = (|| {
        let mut out = root.create_file(&tmp, 0o644).map_err(|e| format!("{shown}: {e}"))?;
        out.write_all(&bytes).and_then(|()| out.sync_all()).map_err(|e| format!("{shown}: {e}"))?;
        // A rename within DIR (the root pinfold was given), over the old index only.
        root.move_out(&tmp, &dir.join(INDEX)).map_err(|e| format!("{shown}: {e}"))
    })();
    if result.is_err() {
        let _ = root.remove(&tmp);
    }
    result.map(|()| true)
}
