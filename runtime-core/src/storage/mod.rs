//! Checkpoint storage: where completed checkpoints and savepoints are written and read back.
//!
//! - [`CheckpointMetadata`] is one completed snapshot with every byte of state inline, encoded in
//!   a versioned, checksummed format (see [`metadata`]).
//! - [`CheckpointStorage`] writes checkpoints atomically, lists, reads and discards them;
//!   [`LocalCheckpointStorage`] keeps them in a local directory (`<dir>/chk-<id>/_metadata`).
//! - [`latest_readable`] finds the newest checkpoint that can be read, skipping (and reporting)
//!   damaged newer ones; [`retain`] discards all but the newest N.
//! - [`write_savepoint`] and [`read_savepoint`] handle savepoints: one self-contained
//!   `_metadata` file in a directory of the user's choice, which can be moved anywhere.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

mod error;
mod local;
mod memory;
pub mod metadata;

#[cfg(test)]
mod tests;

pub use error::StorageError;
pub use local::{read_savepoint, write_savepoint, LocalCheckpointStorage, METADATA_FILE_NAME};
pub use memory::MemoryCheckpointStorage;
pub use metadata::{CheckpointMetadata, OperatorSnapshot, SnapshotKind, SubtaskSnapshot};

/// Where a checkpoint or savepoint lives: a directory path, or later an `s3://` URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckpointLocation(String);

impl CheckpointLocation {
    /// A location from its textual form.
    pub fn new(location: impl Into<String>) -> Self {
        CheckpointLocation(location.into())
    }

    /// A location naming a local path.
    pub fn from_path(path: &Path) -> Self {
        CheckpointLocation(path.to_string_lossy().into_owned())
    }

    /// The textual form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The location as a local path (local checkpoints and savepoints).
    pub fn to_path(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(&self.0)
    }

    /// The location as a string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for CheckpointLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for CheckpointLocation {
    fn from(location: String) -> Self {
        CheckpointLocation(location)
    }
}

impl From<&str> for CheckpointLocation {
    fn from(location: &str) -> Self {
        CheckpointLocation(location.to_owned())
    }
}

impl AsRef<str> for CheckpointLocation {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Durable storage for completed checkpoints.
///
/// Implementations write each checkpoint atomically: a reader sees either the complete metadata
/// or no checkpoint at all, never a half-written one. [`latest_readable`] and [`retain`] work on
/// every implementation.
#[async_trait::async_trait]
pub trait CheckpointStorage: Send + Sync + std::fmt::Debug {
    /// Writes a completed checkpoint atomically; returns where it lives.
    async fn write_checkpoint(
        &self,
        metadata: &CheckpointMetadata,
    ) -> Result<CheckpointLocation, StorageError>;

    /// Completed checkpoints, ascending by id (whatever is there, readable or not).
    async fn list_checkpoints(&self) -> Result<Vec<(u64, CheckpointLocation)>, StorageError>;

    /// Reads one checkpoint or savepoint.
    async fn read(&self, location: &CheckpointLocation)
        -> Result<CheckpointMetadata, StorageError>;

    /// Deletes one checkpoint.
    async fn discard(&self, location: &CheckpointLocation) -> Result<(), StorageError>;

    /// Where the checkpoints are, for messages (a directory, a bucket and prefix).
    fn describe(&self) -> String {
        format!("{self:?}")
    }
}

#[async_trait::async_trait]
impl<S: CheckpointStorage + ?Sized> CheckpointStorage for Arc<S> {
    async fn write_checkpoint(
        &self,
        metadata: &CheckpointMetadata,
    ) -> Result<CheckpointLocation, StorageError> {
        (**self).write_checkpoint(metadata).await
    }

    async fn list_checkpoints(&self) -> Result<Vec<(u64, CheckpointLocation)>, StorageError> {
        (**self).list_checkpoints().await
    }

    async fn read(
        &self,
        location: &CheckpointLocation,
    ) -> Result<CheckpointMetadata, StorageError> {
        (**self).read(location).await
    }

    async fn discard(&self, location: &CheckpointLocation) -> Result<(), StorageError> {
        (**self).discard(location).await
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

#[async_trait::async_trait]
impl<S: CheckpointStorage + ?Sized> CheckpointStorage for Box<S> {
    async fn write_checkpoint(
        &self,
        metadata: &CheckpointMetadata,
    ) -> Result<CheckpointLocation, StorageError> {
        (**self).write_checkpoint(metadata).await
    }

    async fn list_checkpoints(&self) -> Result<Vec<(u64, CheckpointLocation)>, StorageError> {
        (**self).list_checkpoints().await
    }

    async fn read(
        &self,
        location: &CheckpointLocation,
    ) -> Result<CheckpointMetadata, StorageError> {
        (**self).read(location).await
    }

    async fn discard(&self, location: &CheckpointLocation) -> Result<(), StorageError> {
        (**self).discard(location).await
    }
}

/// The checkpoint to restore from, found by [`latest_readable`].
#[derive(Debug)]
pub struct RestoredCheckpoint {
    /// Its content.
    pub metadata: CheckpointMetadata,
    /// Where it lives.
    pub location: CheckpointLocation,
    /// Newer checkpoints that could not be read, newest first, with why.
    pub skipped: Vec<(CheckpointLocation, StorageError)>,
}

/// Finds the newest checkpoint that can be read.
///
/// Newer checkpoints that are corrupt or truncated (or vanished after being listed) are
/// skipped, logged as warnings and reported in [`RestoredCheckpoint::skipped`].
///
/// - No checkpoint at all: `Ok(None)` (a fresh start).
/// - Checkpoints exist but none is readable: [`StorageError::NoReadableCheckpoint`] with every
///   reason. Starting without state would silently re-read all inputs, so this is an error that
///   the caller must decide about.
/// - Any other error (an I/O failure, a format version from a newer release) is returned at
///   once: falling back to an older checkpoint would then hide a problem that is not damage.
pub async fn latest_readable<S: CheckpointStorage + ?Sized>(
    storage: &S,
) -> Result<Option<RestoredCheckpoint>, StorageError> {
    let listed = storage.list_checkpoints().await?;
    let mut skipped = Vec::new();
    for (id, location) in listed.into_iter().rev() {
        match storage.read(&location).await {
            Ok(metadata) => {
                if !skipped.is_empty() {
                    tracing::warn!(
                        checkpoint_id = id,
                        %location,
                        skipped = skipped.len(),
                        "restoring from the previous retained checkpoint {location} because \
                         {} newer checkpoint(s) could not be read",
                        skipped.len()
                    );
                }
                return Ok(Some(RestoredCheckpoint {
                    metadata,
                    location,
                    skipped,
                }));
            }
            Err(error @ (StorageError::Corrupt { .. } | StorageError::NotFound { .. })) => {
                tracing::warn!(
                    checkpoint_id = id,
                    %location,
                    "checkpoint {location} cannot be read and is skipped; the previous \
                     retained checkpoint is used instead: {error}"
                );
                skipped.push((location, error));
            }
            Err(error) => return Err(error),
        }
    }
    if skipped.is_empty() {
        Ok(None)
    } else {
        Err(StorageError::NoReadableCheckpoint { skipped })
    }
}

/// Discards all but the newest `keep` checkpoints, oldest first; returns what was discarded.
///
/// `keep` counts checkpoints as listed, readable or not; `keep == 0` discards every checkpoint.
pub async fn retain<S: CheckpointStorage + ?Sized>(
    storage: &S,
    keep: usize,
) -> Result<Vec<CheckpointLocation>, StorageError> {
    let listed = storage.list_checkpoints().await?;
    let excess = listed.len().saturating_sub(keep);
    let mut discarded = Vec::with_capacity(excess);
    for (_, location) in listed.into_iter().take(excess) {
        storage.discard(&location).await?;
        discarded.push(location);
    }
    Ok(discarded)
}
