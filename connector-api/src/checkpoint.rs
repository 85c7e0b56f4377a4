//! Checkpoint identifiers.

use std::fmt;

/// The id of a checkpoint. Ids increase within a job; [`CheckpointId::END_OF_INPUT`] marks the
/// final commit of a bounded input (FLIP-147) and sorts after every real checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckpointId(pub u64);

impl CheckpointId {
    /// The id under which a writer hands over what it prepared at end of input.
    pub const END_OF_INPUT: CheckpointId = CheckpointId(u64::MAX);

    /// Whether this is the end-of-input id.
    pub fn is_end_of_input(self) -> bool {
        self == Self::END_OF_INPUT
    }
}

impl fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_end_of_input() {
            f.write_str("end-of-input")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Opaque persisted bytes with the version of the format they were written in. The version
/// travels with the bytes so every older version stays readable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VersionedBytes {
    /// The serializer version that wrote `bytes`.
    pub version: u32,
    /// The serialized value.
    pub bytes: Vec<u8>,
}
