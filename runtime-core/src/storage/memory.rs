//! Checkpoints kept in memory, encoded exactly as on disk (so corruption checks still apply).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{
    CheckpointLocation, CheckpointMetadata, CheckpointStorage, SnapshotKind, StorageError,
};

/// A [`CheckpointStorage`] in memory, for jobs that need no durable checkpoints (tests, short
/// batch jobs). Lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryCheckpointStorage {
    checkpoints: Mutex<BTreeMap<u64, Vec<u8>>>,
}

impl MemoryCheckpointStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn id_of(location: &CheckpointLocation) -> Result<u64, StorageError> {
        location
            .as_str()
            .strip_prefix("memory:chk-")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| StorageError::InvalidLocation {
                location: location.to_string(),
                reason: "not a location of the in-memory checkpoint storage".into(),
            })
    }

    /// Replaces the stored bytes of a checkpoint (tests simulate corruption with this).
    pub fn overwrite(&self, checkpoint_id: u64, bytes: Vec<u8>) {
        self.lock().insert(checkpoint_id, bytes);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Vec<u8>>> {
        self.checkpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl CheckpointStorage for MemoryCheckpointStorage {
    async fn write_checkpoint(
        &self,
        metadata: &CheckpointMetadata,
    ) -> Result<CheckpointLocation, StorageError> {
        let bytes = metadata.encode().map_err(|source| StorageError::Encode {
            checkpoint_id: metadata.checkpoint_id,
            source,
        })?;
        let location = CheckpointLocation::new(format!("memory:chk-{}", metadata.checkpoint_id));
        let mut map = self.lock();
        if map.contains_key(&metadata.checkpoint_id) {
            return Err(StorageError::AlreadyExists {
                location: location.to_string(),
                kind: SnapshotKind::Checkpoint,
            });
        }
        map.insert(metadata.checkpoint_id, bytes);
        Ok(location)
    }

    async fn list_checkpoints(&self) -> Result<Vec<(u64, CheckpointLocation)>, StorageError> {
        Ok(self
            .lock()
            .keys()
            .map(|id| (*id, CheckpointLocation::new(format!("memory:chk-{id}"))))
            .collect())
    }

    async fn read(
        &self,
        location: &CheckpointLocation,
    ) -> Result<CheckpointMetadata, StorageError> {
        let id = Self::id_of(location)?;
        let bytes = self
            .lock()
            .get(&id)
            .cloned()
            .ok_or_else(|| StorageError::NotFound {
                location: location.to_string(),
            })?;
        CheckpointMetadata::decode(&bytes).map_err(|source| StorageError::Corrupt {
            location: location.to_string(),
            kind: SnapshotKind::Checkpoint,
            source,
        })
    }

    async fn discard(&self, location: &CheckpointLocation) -> Result<(), StorageError> {
        let id = Self::id_of(location)?;
        self.lock().remove(&id);
        Ok(())
    }

    fn describe(&self) -> String {
        "the in-memory checkpoint storage".to_owned()
    }
}
