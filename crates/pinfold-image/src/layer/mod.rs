//! Layers: a normalized file tree ([`tree::LayerTree`]) becomes one layer blob in a
//! single streaming pass: deterministic tar ([`tar`]) → compression ([`compress`]) →
//! sha256 of both the uncompressed stream (the diff_id) and the compressed blob (the
//! digest), with memory bounded whatever the layer's size.

pub mod compress;
pub mod tar;
pub mod tree;
pub mod write;

pub use self::tar::{DeterministicTar, EntryError};
pub use compress::{CompressWriter, Compression, CompressionParseError};
pub use tree::{EntryKind, FileSource, LayerEntry, LayerTree};
pub use write::{write_layer, LayerError};

use crate::digest::Digest;

/// What one layer became: enough to name it in a manifest and in a config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerBlob {
    /// sha256 of the blob as stored (compressed).
    pub digest: Digest,
    /// sha256 of the uncompressed tar: the stable identity of the layer's content.
    pub diff_id: Digest,
    /// Size in bytes of the blob as stored.
    pub size: u64,
    /// The OCI media type of the blob.
    pub media_type: String,
}
