//! The error type of state serialization.

use super::frame::Magic;

/// Why persisted state could not be written or read.
///
/// Every message says what went wrong and what the operator can do about it. Corruption
/// (truncation, a bad checksum, stray bytes) means the stored bytes cannot be trusted: restore
/// from an earlier checkpoint. An unknown version usually means the state was written by a newer
/// release of the connector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The bytes end before the data they describe.
    #[error(
        "state is truncated: needed {needed} bytes but only {available} are available; \
         the stored state was cut short or is corrupt, restore from an earlier checkpoint"
    )]
    Truncated {
        /// How many bytes the next item (or the whole frame) needs.
        needed: usize,
        /// How many bytes were left.
        available: usize,
    },
    /// The bytes do not start with the magic marker of the expected state kind.
    #[error(
        "state does not start with the expected marker: expected `{expected}`, found `{found}`; \
         these bytes were written by a different serializer or are not Weir state"
    )]
    BadMagic {
        /// The marker this serializer writes.
        expected: Magic,
        /// The first four bytes that were found.
        found: Magic,
    },
    /// Bytes are left over after the data was fully read.
    #[error(
        "state has {count} unexpected bytes after its end; it is corrupt or was written by an \
         incompatible serializer, restore from an earlier checkpoint"
    )]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The checksum stored with the data does not match the data.
    #[error(
        "state is corrupt: checksum {expected:#010x} was recorded but the bytes hash to \
         {actual:#010x}; restore from an earlier checkpoint"
    )]
    ChecksumMismatch {
        /// The checksum stored in the frame header.
        expected: u32,
        /// The checksum computed over the bytes that were read.
        actual: u32,
    },
    /// A string field is not valid UTF-8.
    #[error(
        "state contains a string that is not valid UTF-8 (at byte {offset}); the state is \
         corrupt, restore from an earlier checkpoint"
    )]
    InvalidUtf8 {
        /// The offset of the first invalid byte within the bytes being read.
        offset: usize,
    },
    /// The bytes are well framed but their content is not valid for the state kind.
    #[error(
        "malformed {what} state: {reason}; the state is corrupt or was written by an \
         incompatible serializer"
    )]
    Malformed {
        /// The kind of state, e.g. `kafka split`.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The state was written with a serializer version this code cannot read.
    #[error(
        "{what} state has version {version}, but this connector reads versions {supported}; \
         was it written by a newer release? upgrade the connector"
    )]
    UnknownVersion {
        /// The kind of state, e.g. `kafka split`.
        what: String,
        /// The version stored with the bytes.
        version: u32,
        /// The versions this serializer reads, e.g. `1, 2`.
        supported: String,
    },
    /// A value is too large to be written in the state format (lengths are 32-bit).
    #[error(
        "{what} is {len} bytes long, more than the {max} bytes state can hold; \
         split it into smaller pieces"
    )]
    TooLarge {
        /// What was being written, e.g. `byte string` or `frame payload`.
        what: String,
        /// Its length.
        len: usize,
        /// The largest length the format can record.
        max: usize,
    },
}

impl StateError {
    /// The error a [`VersionedSerializer::deserialize`](super::VersionedSerializer::deserialize)
    /// returns for a version it does not know.
    ///
    /// ```
    /// use weir_connector_api::state::StateError;
    ///
    /// let err = StateError::unknown_version("kafka split", 3, &[1, 2]);
    /// assert!(err.to_string().contains("reads versions 1, 2"));
    /// ```
    pub fn unknown_version(what: impl Into<String>, version: u32, supported: &[u32]) -> Self {
        let supported = supported
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        StateError::UnknownVersion {
            what: what.into(),
            version,
            supported,
        }
    }

    /// A [`StateError::Malformed`] error.
    pub fn malformed(what: impl Into<String>, reason: impl Into<String>) -> Self {
        StateError::Malformed {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
