//! Text that was assembled from pieces of a file (a Dockerfile instruction joined across
//! line continuations, a heredoc body, a KDL string) together with the way back from
//! each of its bytes to the file, so that a finding inside a shell command is reported
//! at the exact place a person would edit.

use std::ops::Range;

/// A string built from spans of a file, with the file offset of each of its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappedText {
    pub text: String,
    /// `(offset in text, offset in file)` of every contiguous piece, ascending.
    segments: Vec<(usize, usize)>,
    /// When the text cannot be mapped byte by byte (a KDL string with escapes, a
    /// dedented multi-line string), every position maps to this whole span instead:
    /// coarser, never wrong.
    fallback: Option<Range<usize>>,
}

impl MappedText {
    pub fn new() -> Self {
        MappedText::default()
    }

    /// Text copied verbatim from `file_offset` in the file.
    pub fn exact(text: &str, file_offset: usize) -> Self {
        let mut m = MappedText::new();
        m.push(text, file_offset);
        m
    }

    /// Text whose bytes cannot be traced one by one; all of it maps to `span`.
    pub fn coarse(text: impl Into<String>, span: Range<usize>) -> Self {
        MappedText { text: text.into(), segments: Vec::new(), fallback: Some(span) }
    }

    /// Appends `piece`, which starts at `file_offset` in the file.
    pub fn push(&mut self, piece: &str, file_offset: usize) {
        if piece.is_empty() {
            return;
        }
        let at = self.text.len();
        // Merge with the previous piece when it continues it in the file: fewer
        // segments, same mapping.
        let continues = self.segments.last().is_some_and(|&(t, f)| f + (at - t) == file_offset);
        if !continues {
            self.segments.push((at, file_offset));
        }
        self.text.push_str(piece);
    }

    /// The file offset of a byte offset in the text.
    pub fn map(&self, offset: usize) -> usize {
        if let Some(span) = &self.fallback {
            return span.start;
        }
        let i = match self.segments.binary_search_by(|&(t, _)| t.cmp(&offset)) {
            Ok(i) => i,
            Err(0) => return self.segments.first().map_or(0, |&(_, f)| f),
            Err(i) => i - 1,
        };
        let (t, f) = self.segments[i];
        f + (offset - t)
    }

    /// The part of the text in `range` (byte offsets of `self.text`), still mapped.
    pub fn sub(&self, range: Range<usize>) -> MappedText {
        let range = range.start.min(self.text.len())..range.end.min(self.text.len());
        let Some(piece) = self.text.get(range.clone()) else {
            return MappedText::new();
        };
        if let Some(span) = &self.fallback {
            return MappedText::coarse(piece, span.clone());
        }
        let mut out = MappedText::new();
        for (i, &(t, f)) in self.segments.iter().enumerate() {
            let end = self.segments.get(i + 1).map_or(self.text.len(), |&(next, _)| next);
            let (a, b) = (t.max(range.start), end.min(range.end));
            if a < b {
                out.push(&self.text[a..b], f + (a - t));
            }
        }
        out
    }

    /// The file span of a span in the text. An empty or reversed span maps to an
    /// empty span at its start.
    pub fn map_range(&self, range: Range<usize>) -> Range<usize> {
        if let Some(span) = &self.fallback {
            return span.clone();
        }
        if range.end <= range.start {
            let at = self.map(range.start);
            return at..at;
        }
        let start = self.map(range.start);
        // The end maps through the last byte, so a span that ends at a joint between
        // two pieces does not stretch over what was cut out between them.
        let end = self.map(range.end - 1) + 1;
        start..end.max(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_across_joined_pieces() {
        // "ab" from offset 10 and "cd" from offset 20.
        let mut m = MappedText::new();
        m.push("ab", 10);
        m.push("cd", 20);
        assert_eq!(m.text, "abcd");
        assert_eq!(m.map(0), 10);
        assert_eq!(m.map(1), 11);
        assert_eq!(m.map(2), 20);
        assert_eq!(m.map_range(1..3), 11..21);
        assert_eq!(m.map_range(0..2), 10..12);
    }

    #[test]
    fn sub_keeps_the_mapping() {
        let mut m = MappedText::new();
        m.push("ab", 10);
        m.push("cd", 20);
        let s = m.sub(1..4);
        assert_eq!(s.text, "bcd");
        assert_eq!(s.map(0), 11);
        assert_eq!(s.map(1), 20);
    }

    #[test]
    fn coarse_text_maps_to_its_whole_span() {
        let m = MappedText::coarse("x\ty", 5..12);
        assert_eq!(m.map_range(1..2), 5..12);
    }
}
