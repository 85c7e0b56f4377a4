//! [`NumberSequenceSplit`]: a strided range of numbers, and its versioned serializer.

use std::fmt;

use weir_connector_api::source::SourceSplit;
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

/// A split of the number sequence: the numbers `next, next + stride, next + 2·stride, …` that are
/// below `end`.
///
/// - A bounded source cuts `0..count` into contiguous ranges (`stride` = 1).
/// - An unbounded source gives split `i` of `p` the numbers `i, i + p, i + 2p, …` (`stride` =
///   `p`, `end` = [`u64::MAX`]), so the splits together produce every number exactly once.
///
/// `next` is the first number not yet emitted, so a checkpointed split resumes exactly where it
/// stopped. A split is valid when `stride ≥ 1` and `next ≤ end`; it is exhausted when
/// `next == end`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NumberSequenceSplit {
    /// The stable split id, e.g. `seq-0`.
    pub id: String,
    /// The next number to emit.
    pub next: u64,
    /// The end of the range, exclusive ([`u64::MAX`] for unbounded splits).
    pub end: u64,
    /// The distance between two numbers of this split (at least 1).
    pub stride: u64,
}

impl NumberSequenceSplit {
    /// The contiguous range `start..end`.
    pub fn new(id: impl Into<String>, start: u64, end: u64) -> Self {
        Self::strided(id, start, end, 1)
    }

    /// The numbers `start, start + stride, …` below `end`. `start` is clamped to `end`.
    pub fn strided(id: impl Into<String>, start: u64, end: u64, stride: u64) -> Self {
        NumberSequenceSplit {
            id: id.into(),
            next: start.min(end),
            end,
            stride,
        }
    }

    /// The id of split `index`: `seq-<index>`.
    pub fn id_for(index: usize) -> String {
        format!("seq-{index}")
    }

    /// Whether every number of the split was emitted.
    pub fn is_exhausted(&self) -> bool {
        self.next >= self.end
    }

    /// How many numbers are left.
    pub fn remaining(&self) -> u64 {
        if self.is_exhausted() || self.stride == 0 {
            0
        } else {
            (self.end - 1 - self.next) / self.stride + 1
        }
    }

    /// The number after `number` in this split, or `end` if there is none.
    #[inline]
    pub fn successor(&self, number: u64) -> u64 {
        match number.checked_add(self.stride) {
            Some(next) if next < self.end => next,
            _ => self.end,
        }
    }

    /// Checks the invariants: `stride ≥ 1` and `next ≤ end`.
    pub fn validate(&self) -> Result<(), String> {
        if self.stride == 0 {
            return Err(format!("split `{}` has stride 0", self.id));
        }
        if self.next > self.end {
            return Err(format!(
                "split `{}` starts at {} after its end {}",
                self.id, self.next, self.end
            ));
        }
        Ok(())
    }
}

impl SourceSplit for NumberSequenceSplit {
    fn split_id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for NumberSequenceSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}..{}", self.id, self.next, self.end)?;
        if self.stride != 1 {
            write!(f, " step {}", self.stride)?;
        }
        f.write_str("]")
    }
}

/// Cuts the number sequence into `parallelism` splits with ids `seq-0`, `seq-1`, …
///
/// - `Some(count)`: `0..count` in contiguous ranges whose sizes differ by at most one; empty
///   ranges (when `count < parallelism`) are left out.
/// - `None`: `parallelism` interleaved infinite splits; split `i` holds `i, i + p, i + 2p, …`.
///
/// A parallelism of 0 is treated as 1.
pub fn create_splits(count: Option<u64>, parallelism: usize) -> Vec<NumberSequenceSplit> {
    let parallelism = parallelism.max(1);
    let p = parallelism as u64;
    match count {
        Some(count) => {
            let base = count / p;
            let extra = count % p;
            let mut start = 0u64;
            let mut splits = Vec::with_capacity(parallelism);
            for index in 0..p {
                let len = base + u64::from(index < extra);
                if len > 0 {
                    let id = NumberSequenceSplit::id_for(index as usize);
                    splits.push(NumberSequenceSplit::new(id, start, start + len));
                }
                start += len;
            }
            splits
        }
        None => (0..parallelism)
            .map(|index| {
                let id = NumberSequenceSplit::id_for(index);
                NumberSequenceSplit::strided(id, index as u64, u64::MAX, p)
            })
            .collect(),
    }
}

/// The [`VersionedSerializer`] of [`NumberSequenceSplit`].
///
/// Version 1, integers big-endian: the id as a string (`u32` length, UTF-8 bytes), then `next`,
/// `end` and `stride` as `u64`. Reading rejects trailing bytes, a stride of 0 and `next > end`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NumberSequenceSplitSerializer;

impl NumberSequenceSplitSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

const WHAT: &str = "number sequence split";

impl VersionedSerializer<NumberSequenceSplit> for NumberSequenceSplitSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }

    fn serialize(&self, split: &NumberSequenceSplit) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::with_capacity(4 + split.id.len() + 24);
        w.put_str(&split.id)
            .put_u64(split.next)
            .put_u64(split.end)
            .put_u64(split.stride);
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<NumberSequenceSplit, StateError> {
        if version != Self::VERSION {
            return Err(StateError::unknown_version(WHAT, version, &[Self::VERSION]));
        }
        let mut r = StateReader::new(bytes);
        let split = NumberSequenceSplit {
            id: r.get_str()?.to_owned(),
            next: r.get_u64()?,
            end: r.get_u64()?,
            stride: r.get_u64()?,
        };
        r.finish()?;
        split
            .validate()
            .map_err(|reason| StateError::malformed(WHAT, reason))?;
        Ok(split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(split: &NumberSequenceSplit) -> Vec<u64> {
        let mut out = Vec::new();
        let mut s = split.clone();
        while !s.is_exhausted() {
            out.push(s.next);
            s.next = s.successor(s.next);
        }
        out
    }

    #[test]
    fn bounded_splits_cover_the_range_in_near_equal_parts() {
        let splits = create_splits(Some(10), 3);
        let ids: Vec<&str> = splits.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["seq-0", "seq-1", "seq-2"]);
        let ranges: Vec<(u64, u64)> = splits.iter().map(|s| (s.next, s.end)).collect();
        assert_eq!(ranges, [(0, 4), (4, 7), (7, 10)]);
        assert!(splits.iter().all(|s| s.stride == 1));
    }

    #[test]
    fn empty_ranges_are_left_out() {
        let splits = create_splits(Some(2), 4);
        assert_eq!(splits.len(), 2);
        assert_eq!(splits[1].id, "seq-1");
        assert!(create_splits(Some(0), 3).is_empty());
        assert_eq!(create_splits(Some(5), 0).len(), 1);
    }

    #[test]
    fn bounded_splits_handle_the_largest_count() {
        let splits = create_splits(Some(u64::MAX), 3);
        let total: u128 = splits.iter().map(|s| u128::from(s.remaining())).sum();
        assert_eq!(total, u128::from(u64::MAX));
        assert_eq!(splits[2].end, u64::MAX);
    }

    #[test]
    fn unbounded_splits_interleave() {
        let splits = create_splits(None, 3);
        assert_eq!(splits[1].next, 1);
        assert_eq!(splits[1].stride, 3);
        assert_eq!(splits[1].end, u64::MAX);
        let mut s = splits[1].clone();
        let mut first = Vec::new();
        for _ in 0..4 {
            first.push(s.next);
            s.next = s.successor(s.next);
        }
        assert_eq!(first, [1, 4, 7, 10]);
    }

    #[test]
    fn successor_saturates_at_the_end() {
        let split = NumberSequenceSplit::strided("s", u64::MAX - 5, u64::MAX, 4);
        assert_eq!(numbers(&split), [u64::MAX - 5, u64::MAX - 1]);
        assert_eq!(split.remaining(), 2);
        let split = NumberSequenceSplit::strided("s", 3, 10, 3);
        assert_eq!(numbers(&split), [3, 6, 9]);
        assert_eq!(split.remaining(), 3);
        assert_eq!(NumberSequenceSplit::new("s", 5, 5).remaining(), 0);
    }

    #[test]
    fn validate_rejects_zero_stride_and_inverted_ranges() {
        assert!(NumberSequenceSplit::strided("s", 0, 3, 0)
            .validate()
            .is_err());
        let inverted = NumberSequenceSplit {
            id: "s".into(),
            next: 4,
            end: 3,
            stride: 1,
        };
        assert!(inverted.validate().is_err());
        assert!(NumberSequenceSplit::new("s", 3, 3).validate().is_ok());
    }

    #[test]
    fn debug_is_compact() {
        assert_eq!(
            format!("{:?}", NumberSequenceSplit::new("seq-0", 1, 5)),
            "seq-0[1..5]"
        );
        assert_eq!(
            format!("{:?}", NumberSequenceSplit::strided("seq-1", 1, 5, 2)),
            "seq-1[1..5 step 2]"
        );
    }
}
