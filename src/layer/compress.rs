//! placeholder: the layer helper replaces this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression { Gzip, Zstd, None }
