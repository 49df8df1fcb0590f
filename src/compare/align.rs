//! Aligning two sequences (layers of two manifests, items of two JSON arrays) so that
//! an insertion reads as one insertion, not as every later item changing; and finding
//! which entries of a tar moved, as the complement of a longest increasing subsequence.

/// One step of an alignment of `a` with `b`, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Equal keys.
    Same(usize, usize),
    /// At the same place between two anchors, with other keys.
    Changed(usize, usize),
    OnlyA(usize),
    OnlyB(usize),
}

/// Above this many cells the LCS table would cost more memory than it is worth:
/// the alignment falls back to position.
const MAX_CELLS: usize = 4 << 20;

/// Aligns `a` with `b` on a longest common subsequence of their keys; the unmatched
/// runs between two anchors are paired in order (`Changed`), the rest of the longer
/// run is `OnlyA`/`OnlyB`.
pub fn align<T, K: Eq>(a: &[T], b: &[T], key: impl Fn(&T) -> K) -> Vec<Step> {
    let (n, m) = (a.len(), b.len());
    let ka: Vec<K> = a.iter().map(&key).collect();
    let kb: Vec<K> = b.iter().map(&key).collect();
    let anchors: Vec<(usize, usize)> = if (n + 1).saturating_mul(m + 1) > MAX_CELLS {
        (0..n.min(m)).filter(|&i| ka[i] == kb[i]).map(|i| (i, i)).collect()
    } else {
        // lcs[i][j]: length of an LCS of a[i..] and b[j..].
        let width = m + 1;
        let mut lcs = vec![0u32; (n + 1) * width];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * width + j] = if ka[i] == kb[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < n && j < m {
            if ka[i] == kb[j] {
                out.push((i, j));
                i += 1;
                j += 1;
            } else if lcs[(i + 1) * width + j] >= lcs[i * width + j + 1] {
                i += 1;
            } else {
                j += 1;
            }
        }
        out
    };
    let mut steps = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (0, 0);
    for (ai, bj) in anchors.into_iter().chain(std::iter::once((n, m))) {
        let run = (ai - i).min(bj - j);
        for k in 0..run {
            steps.push(Step::Changed(i + k, j + k));
        }
        steps.extend((i + run..ai).map(Step::OnlyA));
        steps.extend((j + run..bj).map(Step::OnlyB));
        if ai < n && bj < m {
            steps.push(Step::Same(ai, bj));
        }
        (i, j) = (ai + 1, bj + 1);
    }
    steps
}

/// Which positions of `seq` are outside one longest strictly increasing subsequence:
/// given, for the entries common to two tars in the order of the first, their
/// positions in the second, these are the entries that moved. O(n log n).
pub fn outside_longest_increasing(seq: &[usize]) -> Vec<usize> {
    // tails[k]: index into seq of the smallest tail of an increasing run of length k+1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev: Vec<Option<usize>> = vec![None; seq.len()];
    for (i, &v) in seq.iter().enumerate() {
        let k = tails.partition_point(|&t| seq[t] < v);
        prev[i] = if k > 0 { Some(tails[k - 1]) } else { None };
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut keep = vec![false; seq.len()];
    let mut at = tails.last().copied();
    while let Some(i) = at {
        keep[i] = true;
        at = prev[i];
    }
    (0..seq.len()).filter(|&i| !keep[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insertion_is_one_step_not_a_shift() {
        let steps = align(&["a", "b", "c"], &["a", "x", "b", "c"], |s| *s);
        assert_eq!(steps, vec![Step::Same(0, 0), Step::OnlyB(1), Step::Same(1, 2), Step::Same(2, 3)]);
    }

    #[test]
    fn a_replacement_between_anchors_is_a_change() {
        let steps = align(&["a", "b", "c"], &["a", "B", "c"], |s| *s);
        assert_eq!(steps, vec![Step::Same(0, 0), Step::Changed(1, 1), Step::Same(2, 2)]);
        let steps = align(&["a", "b"], &["c"], |s| *s);
        assert_eq!(steps, vec![Step::Changed(0, 0), Step::OnlyA(1)]);
        assert!(align::<&str, &str>(&[], &[], |s| *s).is_empty());
    }

    #[test]
    fn moved_entries_are_outside_the_longest_increasing_run() {
        assert!(outside_longest_increasing(&[0, 1, 2, 3]).is_empty());
        assert_eq!(outside_longest_increasing(&[0, 3, 1, 2]), vec![1]);
        assert_eq!(outside_longest_increasing(&[3, 2, 1, 0]).len(), 3);
    }
}
