//! Turns one [`LayerTree`] into one layer blob in a single streaming pass:
//!
//! ```text
//! tree ─▶ DeterministicTar ─▶ sha256 (diff_id) ─▶ CompressWriter ─▶ sha256 + size (digest) ─▶ out
//! ```
//!
//! Nothing is read twice and nothing is held whole: files are streamed in bounded
//! chunks, the compressor keeps a bounded number of blocks in flight, and both
//! digests are computed while the bytes pass. The uncompressed digest (diff_id) is
//! the layer's stable identity; the compressed one names the blob.
//!
//! Errors say which entry and which source file failed, and tell a file that changed
//! size since the tree was made (a build never packs a file half-written) from an
//! I/O failure and from a failure of the output.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::compress::{CompressWriter, Compression};
use super::tar::{DeterministicTar, EntryError};
use super::tree::{EntryKind, FileSource, LayerTree};
use super::LayerBlob;
use crate::digest::HashingWriter;

/// Why a layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot open `{}` (for `{entry}` in the layer): {source}", source_path.display())]
    Open {
        entry: String,
        source_path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{}` (for `{entry}` in the layer) is no longer a regular file", source_path.display())]
    NotAFile { entry: String, source_path: PathBuf },
    #[error("reading `{}` (for `{entry}` in the layer): {source}", source_path.display())]
    Read {
        entry: String,
        source_path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `found` is the size seen when writing; `None` when the file grew past `expected`
    /// while being read.
    #[error(
        "`{}` (for `{entry}` in the layer) changed size during the build: it had {expected} bytes \
         when the layer was planned, {}; rerun the build once nothing writes to it",
        source_path.display(),
        match found { Some(n) => format!("{n} bytes now"), None => "more while it was read".to_string() }
    )]
    SizeChanged { entry: String, source_path: PathBuf, expected: u64, found: Option<u64> },
    /// The tree gave inline content whose length is not the size it recorded.
    #[error("inline content of `{entry}` has {actual} bytes, but the layer records {expected}")]
    InlineSize { entry: String, expected: u64, actual: u64 },
    /// The tree holds a name or symlink target that tar cannot carry as it is.
    #[error("{0}")]
    Entry(EntryError),
    #[error("writing the layer blob: {0}")]
    Output(#[source] io::Error),
}

/// Writes `tree` as a layer into `out` (tar entries in the tree's order, every mtime
/// `epoch`), and tells what the blob is. Gives `out` back, not flushed.
///
/// Runs gzip blocks on the caller's rayon pool; it is safe to call from inside
/// rayon tasks (layers built in parallel) as long as the caller holds no lock that
/// another rayon task of the same pool may wait for.
pub fn write_layer<W: Write>(
    tree: &LayerTree,
    epoch: u64,
    compression: Compression,
    out: W,
) -> Result<(LayerBlob, W), LayerError> {
    let compressed = CompressWriter::new(HashingWriter::new(out), compression).map_err(LayerError::Output)?;
    let mut tar = DeterministicTar::new(HashingWriter::new(compressed), epoch);

    for (path, entry) in tree.iter() {
        let (mode, uid, gid) = (entry.mode, entry.uid, entry.gid);
        match &entry.kind {
            EntryKind::Dir => tar.append_dir(path, mode, uid, gid).map_err(|e| entry_error(e, None))?,
            EntryKind::Symlink { target } => {
                tar.append_symlink(path, target, Some(mode), uid, gid).map_err(|e| entry_error(e, None))?
            }
            EntryKind::File { source: FileSource::Inline(bytes), size } => {
                if bytes.len() as u64 != *size {
                    return Err(LayerError::InlineSize {
                        entry: path.clone(),
                        expected: *size,
                        actual: bytes.len() as u64,
                    });
                }
                tar.append_file(path, mode, uid, gid, *size, &bytes[..]).map_err(|e| entry_error(e, None))?
            }
            EntryKind::File { source: FileSource::Path(source, _), size } => {
                let file = open_source(path, source, *size)?;
                tar.append_file(path, mode, uid, gid, *size, file).map_err(|e| entry_error(e, Some(source)))?
            }
        }
    }

    let (diff_id, _, compressed) = tar.finish().map_err(LayerError::Output)?.finish();
    let (digest, size, out) = compressed.finish().map_err(LayerError::Output)?.finish();
    let blob = LayerBlob { digest, diff_id, size, media_type: compression.media_type().to_string() };
    Ok((blob, out))
}

/// Opens a source file and checks, before streaming it, that it is still the
/// regular file of the size the tree recorded: a FIFO or device would block or
/// never end, and a size change is best reported before any byte is written.
fn open_source(entry: &str, source: &Path, expected: u64) -> Result<File, LayerError> {
    let open_error = |e| LayerError::Open { entry: entry.to_string(), source_path: source.to_path_buf(), source: e };
    let file = File::open(source).map_err(open_error)?;
    let metadata = file.metadata().map_err(open_error)?;
    if !metadata.is_file() {
        return Err(LayerError::NotAFile { entry: entry.to_string(), source_path: source.to_path_buf() });
    }
    if metadata.len() != expected {
        return Err(LayerError::SizeChanged {
            entry: entry.to_string(),
            source_path: source.to_path_buf(),
            expected,
            found: Some(metadata.len()),
        });
    }
    Ok(file)
}

/// Sorts an error of the tar writer into the source's fault or the output's.
fn entry_error(err: io::Error, source: Option<&Path>) -> LayerError {
    let entry_err = match EntryError::take(err) {
        Ok(entry_err) => entry_err,
        Err(output) => return LayerError::Output(output),
    };
    match (entry_err, source) {
        (EntryError::Read { path, source: e }, Some(source_path)) => {
            LayerError::Read { entry: path, source_path: source_path.to_path_buf(), source: e }
        }
        (EntryError::Shrank { path, expected, read }, Some(source_path)) => {
            LayerError::SizeChanged { entry: path, source_path: source_path.to_path_buf(), expected, found: Some(read) }
        }
        (EntryError::Grew { path, expected }, Some(source_path)) => {
            LayerError::SizeChanged { entry: path, source_path: source_path.to_path_buf(), expected, found: None }
        }
        (other, _) => LayerError::Entry(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::compress::tests::{noise, sample};
    use crate::layer::tree::LayerEntry;
    use std::io::Read;

    fn file_entry(source: FileSource, size: u64, mode: u32) -> LayerEntry {
        LayerEntry { kind: EntryKind::File { source, size }, mode, uid: 0, gid: 0 }
    }

    fn inline(bytes: &[u8]) -> LayerEntry {
        file_entry(FileSource::Inline(bytes.to_vec()), bytes.len() as u64, 0o644)
    }

    fn untar(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut out = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf8");
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("data");
            out.push((path, data));
        }
        out
    }

    #[test]
    fn an_empty_layer_is_two_zero_blocks_in_every_compression() {
        let tree = LayerTree::new();
        for compression in [Compression::default(), Compression::Zstd { level: 3 }, Compression::None] {
            let (blob, out) = write_layer(&tree, 0, compression, Vec::new()).expect("layer");
            assert_eq!(blob.diff_id, crate::digest::Digest::of(&[0; 1024]));
            assert_eq!(blob.digest, crate::digest::Digest::of(&out));
            assert_eq!(blob.size, out.len() as u64);
            assert_eq!(blob.media_type, compression.media_type());
        }
        let (_, out) = write_layer(&tree, 0, Compression::default(), Vec::new()).expect("layer");
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut tar).expect("gzip");
        assert_eq!(tar, [0; 1024]);
    }

    #[test]
    fn files_from_disk_and_inline_are_streamed_in_tree_order_with_both_digests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = sample(3 << 20, 9);
        let big_path = dir.path().join("big.bin");
        std::fs::write(&big_path, &big).expect("write");
        let mut tree = LayerTree::new();
        tree.insert("usr/lib/big.bin".into(), file_entry(FileSource::Path(big_path, None), big.len() as u64, 0o644))
            .expect("insert");
        tree.insert("etc/motd".into(), inline(b"hi\n")).expect("insert");
        tree.insert(
            "usr/bin/sh".into(),
            LayerEntry { kind: EntryKind::Symlink { target: "busybox".into() }, mode: 0o777, uid: 0, gid: 0 },
        )
        .expect("insert");

        let (plain_blob, plain) = write_layer(&tree, 1, Compression::None, Vec::new()).expect("layer");
        assert_eq!(plain_blob.diff_id, plain_blob.digest);
        let entries = untar(&plain);
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["etc/", "etc/motd", "usr/", "usr/bin/", "usr/bin/sh", "usr/lib/", "usr/lib/big.bin"]);
        assert_eq!(entries[6].1, big);

        for compression in [Compression::default(), Compression::Zstd { level: 3 }] {
            let (blob, out) = write_layer(&tree, 1, compression, Vec::new()).expect("layer");
            assert_eq!(blob.diff_id, plain_blob.diff_id, "{compression}");
            assert_eq!(blob.digest, crate::digest::Digest::of(&out));
            assert_eq!(blob.size, out.len() as u64);
            let mut tar = Vec::new();
            match compression {
                Compression::Zstd { .. } => tar = zstd::stream::decode_all(&out[..]).expect("zstd"),
                _ => {
                    flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut tar).expect("gzip");
                }
            }
            assert_eq!(tar, plain);
        }
    }

    #[test]
    fn a_file_whose_size_changed_is_a_layer_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("grows.txt");
        std::fs::write(&path, b"0123456789").expect("write");
        let mut tree = LayerTree::new();
        tree.insert("app/grows.txt".into(), file_entry(FileSource::Path(path.clone(), None), 4, 0o644))
            .expect("insert");
        let err = write_layer(&tree, 0, Compression::default(), Vec::new()).expect_err("size changed");
        assert!(
            matches!(&err, LayerError::SizeChanged { expected: 4, found: Some(10), entry, .. } if entry == "app/grows.txt"),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("grows.txt") && message.contains("changed size"), "{message}");

        let mut tree = LayerTree::new();
        let missing = dir.path().join("missing");
        tree.insert("app/missing".into(), file_entry(FileSource::Path(missing, None), 1, 0o644)).expect("insert");
        let err = write_layer(&tree, 0, Compression::default(), Vec::new()).expect_err("missing");
        assert!(matches!(err, LayerError::Open { .. }), "{err:?}");

        let mut tree = LayerTree::new();
        tree.insert("app".into(), file_entry(FileSource::Path(dir.path().to_path_buf(), None), 0, 0o644))
            .expect("insert");
        let err = write_layer(&tree, 0, Compression::default(), Vec::new()).expect_err("a directory");
        assert!(matches!(err, LayerError::NotAFile { .. }), "{err:?}");
    }

    #[test]
    fn a_file_that_changes_while_it_is_read_is_a_size_change_not_an_output_error() {
        // The check at open time saw the right size; the content then ends early or
        // runs long, which only the stream can see.
        let shrank = DeterministicTar::new(Vec::new(), 0).append_file("x", 0o644, 0, 0, 9, &b"abc"[..]);
        let err = entry_error(shrank.expect_err("shrank"), Some(Path::new("/src/x")));
        assert!(matches!(err, LayerError::SizeChanged { expected: 9, found: Some(3), .. }), "{err:?}");
        let grew = DeterministicTar::new(Vec::new(), 0).append_file("x", 0o644, 0, 0, 1, &b"abc"[..]);
        let err = entry_error(grew.expect_err("grew"), Some(Path::new("/src/x")));
        assert!(matches!(err, LayerError::SizeChanged { expected: 1, found: None, .. }), "{err:?}");
        assert!(err.to_string().contains("/src/x"), "{err}");
    }

    /// Layers are built in parallel on the rayon pool that also runs their gzip
    /// blocks. With 2 threads and more large layers than threads, a producer that
    /// blocked its worker while waiting for its blocks would deadlock; the watchdog
    /// turns a hang into a failure.
    #[test]
    fn several_large_layers_built_concurrently_in_a_two_thread_pool_do_not_deadlock() {
        use rayon::prelude::*;
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("pool");
            let trees: Vec<LayerTree> = (0..4u64)
                .map(|i| {
                    let mut tree = LayerTree::new();
                    // 7 blocks a layer, more than a 2-thread pool keeps in flight, mostly
                    // noise so that the test stays quick unoptimized.
                    for j in 0..3u64 {
                        let mut data = noise(2 << 20, i * 10 + j);
                        data.extend(sample(128 << 10, i * 10 + j));
                        tree.insert(format!("layer{i}/file{j}"), inline(&data)).expect("insert");
                    }
                    tree
                })
                .collect();
            let parallel: Vec<_> = pool.install(|| {
                trees
                    .par_iter()
                    .map(|tree| write_layer(tree, 0, Compression::default(), Vec::new()).expect("layer").0)
                    .collect()
            });
            let sequential: Vec<_> = trees
                .iter()
                .map(|tree| write_layer(tree, 0, Compression::default(), Vec::new()).expect("layer").0)
                .collect();
            let _ = done.send(parallel == sequential);
        });
        let same = finished.recv_timeout(std::time::Duration::from_secs(120)).expect("deadlock: no result in 120 s");
        assert!(same, "parallel and sequential layer builds differ");
    }
}
