//! Test records: what the suites need of a record type, and [`SplitRecord`], a typed record
//! that knows its split and position.

use std::fmt;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

/// What the suites need of a record: compare, hash (to find it among the expected records),
/// print (to name it in a finding), clone and share across tasks.
///
/// Implemented for every type with these traits. Records of one test must be distinct across
/// all splits (a context generates them from the split index, the position and a seed), so
/// that each record names the split and position it came from.
pub trait TestRecord: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static {}

impl<T: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static> TestRecord for T {}

/// A typed, split-aware test record: the split it belongs to, its position in the split, and a
/// payload derived from a seed (so records of different seeds differ).
///
/// Printed as `s<split>#<seq>`, which keeps findings short.
///
/// ```
/// use weir_testkit::SplitRecord;
///
/// let r = SplitRecord::new(1, 42, 7);
/// assert_eq!(format!("{r:?}"), "s1#42");
/// assert_ne!(r, SplitRecord::new(1, 42, 8), "the seed changes the payload");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SplitRecord {
    /// The split index.
    pub split: u32,
    /// The position in the split, from 0.
    pub seq: u64,
    /// A value derived from the seed, the split and the position.
    pub payload: u64,
}

impl SplitRecord {
    /// The record at position `seq` of split `split` for `seed`.
    pub fn new(split: u32, seq: u64, seed: u64) -> Self {
        SplitRecord {
            split,
            seq,
            payload: mix(seed ^ mix(u64::from(split) << 40 ^ seq)),
        }
    }
}

impl fmt::Debug for SplitRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}#{}", self.split, self.seq)
    }
}

/// SplitMix64's finalizer: a cheap, well-spread 64-bit hash.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Shortens a record's debug form for a finding.
pub(crate) fn show<T: fmt::Debug>(record: &T) -> String {
    const MAX: usize = 60;
    let text = format!("{record:?}");
    if text.chars().count() <= MAX {
        text
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}
