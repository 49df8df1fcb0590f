//! Measures pinfold's layer writer on a directory, for `benches/layer-speed.sh`:
//! builds a `LayerTree` from the directory as a build would (regular files 0o644, or
//! 0o755 when any execute bit is set; directories 0o755; symlinks kept; owner 0:0),
//! writes the layer to a file and prints digest, diff_id, size and seconds.
//!
//! ```text
//! cargo run --release --example layer_bench -- DIR COMPRESSION OUT [--block-size BYTES] [--threads N]
//! ```
//!
//! `--block-size` measures other gzip block sizes than the built-in one (the bytes
//! differ, so it is for choosing the default only); `--threads` sizes rayon's global
//! pool.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use pinfold_image::digest::HashingWriter;
use pinfold_image::layer::{
    write_layer, CompressWriter, Compression, DeterministicTar, EntryKind, FileSource, LayerEntry, LayerTree,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("layer_bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: layer_bench DIR COMPRESSION OUT [--block-size BYTES] [--threads N]";
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let compression: Compression = args.next().ok_or(usage)?.parse().map_err(|e| format!("{e}"))?;
    let out_path = PathBuf::from(args.next().ok_or(usage)?);
    let mut block_size = None;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(usage)?;
        let number: usize = value.parse().map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--block-size" => block_size = Some(number),
            "--threads" => rayon::ThreadPoolBuilder::new()
                .num_threads(number)
                .build_global()
                .map_err(|e| format!("--threads: {e}"))?,
            _ => return Err(usage.into()),
        }
    }

    let start = Instant::now();
    let tree = tree_of(&dir)?;
    let out =
        BufWriter::with_capacity(1 << 20, File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?);
    let (digest, diff_id, size, out) = match (compression, block_size) {
        (Compression::Gzip { level }, Some(block_size)) => gzip_with_block_size(&tree, level, block_size, out)?,
        _ => {
            let (blob, out) = write_layer(&tree, 0, compression, out).map_err(|e| e.to_string())?;
            (blob.digest.to_string(), blob.diff_id.to_string(), blob.size, out)
        }
    };
    // No fsync: the baselines it is compared with (`tar | gzip > out`) do not either.
    out.into_inner().map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    println!("entries={} digest={digest} diff_id={diff_id} size={size} seconds={seconds:.3}", tree.len());
    Ok(())
}

fn tree_of(dir: &PathBuf) -> Result<LayerTree, String> {
    let mut tree = LayerTree::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| e.to_string())?;
        let relative = entry.path().strip_prefix(dir).map_err(|e| e.to_string())?;
        let name = relative.to_str().ok_or_else(|| format!("not UTF-8: {}", relative.display()))?.to_string();
        let metadata = entry.path().symlink_metadata().map_err(|e| e.to_string())?;
        let kind = if metadata.is_dir() {
            EntryKind::Dir
        } else if metadata.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|e| e.to_string())?;
            EntryKind::Symlink { target: target.to_string_lossy().into_owned() }
        } else if metadata.is_file() {
            EntryKind::File { source: FileSource::Path(entry.path().to_path_buf(), None), size: metadata.len() }
        } else {
            continue;
        };
        let mode = match kind {
            EntryKind::Dir => 0o755,
            EntryKind::Symlink { .. } => 0o777,
            EntryKind::File { .. } if metadata.permissions().mode() & 0o111 != 0 => 0o755,
            EntryKind::File { .. } => 0o644,
        };
        tree.insert(name.clone(), LayerEntry { kind, mode, uid: 0, gid: 0 })
            .map_err(|e| format!("{}: conflict", e.path))?;
    }
    Ok(tree)
}

/// `write_layer`'s pipeline with another gzip block size (for choosing the default).
fn gzip_with_block_size<W: Write>(
    tree: &LayerTree,
    level: u32,
    block_size: usize,
    out: W,
) -> Result<(String, String, u64, W), String> {
    let compressed =
        CompressWriter::gzip_with_block_size(HashingWriter::new(out), level, block_size).map_err(|e| e.to_string())?;
    let mut tar = DeterministicTar::new(HashingWriter::new(compressed), 0);
    for (path, entry) in tree.iter() {
        let result = match &entry.kind {
            EntryKind::Dir => tar.append_dir(path, entry.mode, 0, 0),
            EntryKind::Symlink { target } => tar.append_symlink(path, target, Some(entry.mode), 0, 0),
            EntryKind::File { source: FileSource::Path(source, _), size } => {
                File::open(source).and_then(|file| tar.append_file(path, entry.mode, 0, 0, *size, file))
            }
            EntryKind::File { source: FileSource::Inline(bytes), size } => {
                tar.append_file(path, entry.mode, 0, 0, *size, &bytes[..])
            }
        };
        result.map_err(|e| format!("{path}: {e}"))?;
    }
    let (diff_id, _, compressed) = tar.finish().map_err(|e| e.to_string())?.finish();
    let (digest, size, out) = compressed.finish().map_err(|e| e.to_string())?.finish();
    Ok((digest.to_string(), diff_id.to_string(), size, out))
}
