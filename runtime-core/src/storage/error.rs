//! The error type of checkpoint storage.

use std::path::PathBuf;

use weir_connector_api::state::StateError;

use super::metadata::{SnapshotKind, METADATA_FORMAT_VERSION};
use super::CheckpointLocation;

/// Why a checkpoint or savepoint could not be written, listed, read or discarded.
///
/// Every message names the file or location and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A file system operation failed.
    #[error(
        "could not {action} `{}`: {source}; check that the path exists, that this process may \
         read and write it, and that the disk is not full",
        .path.display()
    )]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, e.g. `write`, `rename`, `list`.
        action: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The stored metadata is damaged: cut short, a checksum mismatch, not Weir metadata.
    #[error(
        "{kind} {location} is corrupt or truncated: {source}{}",
        .kind.corrupt_advice()
    )]
    Corrupt {
        /// Where the metadata lives.
        location: String,
        /// Checkpoint or savepoint; decides the advice in the message.
        kind: SnapshotKind,
        /// What exactly is wrong with the bytes.
        source: StateError,
    },
    /// The metadata is intact but in a format version this release cannot read.
    #[error(
        "{location} is in checkpoint format version {version}, but this release of Weir reads \
         only format version {max} and older; it was written by a newer Weir release: upgrade \
         Weir to restore from it",
        max = METADATA_FORMAT_VERSION
    )]
    UnsupportedVersion {
        /// Where the metadata lives.
        location: String,
        /// The format version found.
        version: u32,
    },
    /// Nothing is stored at the location.
    #[error(
        "no checkpoint or savepoint at {location}; check the path (a savepoint is the directory \
         holding `_metadata`, or that file itself)"
    )]
    NotFound {
        /// The location that was asked for.
        location: String,
    },
    /// Something is already stored where a new snapshot was to be written.
    #[error("{kind} directory {location} already holds a {kind}; {}", .kind.exists_advice())]
    AlreadyExists {
        /// The occupied location.
        location: String,
        /// What was being written.
        kind: SnapshotKind,
    },
    /// The location does not belong to this storage.
    #[error("{location} is not a checkpoint of this storage: {reason}")]
    InvalidLocation {
        /// The location that was passed in.
        location: String,
        /// Why it was refused.
        reason: String,
    },
    /// The metadata could not be encoded (a value is larger than the format can hold).
    #[error("could not encode the metadata of checkpoint {checkpoint_id}: {source}")]
    Encode {
        /// The checkpoint being written.
        checkpoint_id: u64,
        /// What could not be encoded.
        source: StateError,
    },
    /// Checkpoints exist but none of them can be read.
    #[error(
        "none of the {} retained checkpoints can be read ({}); restore from a savepoint, or move \
         the checkpoint directory away to start the job without state (its inputs are then read \
         again from their start positions)",
        .skipped.len(),
        describe_skipped(.skipped)
    )]
    NoReadableCheckpoint {
        /// Every checkpoint that was tried, newest first, with why it could not be read.
        skipped: Vec<(CheckpointLocation, StorageError)>,
    },
}

impl StorageError {
    /// Whether the stored bytes are damaged (as opposed to unreachable or unsupported).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StorageError::Corrupt { .. })
    }

    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        StorageError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

impl SnapshotKind {
    fn corrupt_advice(self) -> &'static str {
        match self {
            SnapshotKind::Checkpoint => {
                "; it will be skipped and an earlier retained checkpoint used"
            }
            SnapshotKind::Savepoint => "; restore from another savepoint",
        }
    }

    fn exists_advice(self) -> &'static str {
        match self {
            SnapshotKind::Checkpoint => {
                "checkpoint ids are never reused: is another job writing to the same checkpoint \
                 directory?"
            }
            SnapshotKind::Savepoint => {
                "choose a new savepoint directory, or delete the old savepoint first"
            }
        }
    }
}

fn describe_skipped(skipped: &[(CheckpointLocation, StorageError)]) -> String {
    skipped
        .iter()
        .map(|(location, error)| match error {
            StorageError::Corrupt { .. } => format!("{location}: corrupt"),
            StorageError::NotFound { .. } => format!("{location}: vanished"),
            _ => format!("{location}: unreadable"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
