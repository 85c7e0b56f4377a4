//! Checkpoints in a bucket: [`S3CheckpointStorage`] implements weir-runtime's
//! [`CheckpointStorage`]; plug it into a job with `StorageConfig::Custom(Arc::new(storage))`.
//!
//! Layout: `s3://<bucket>/<prefix>/chk-<id>/_metadata`, one object per checkpoint, written with
//! a single `PutObject` (atomic: readers see all of it or nothing). The metadata is the
//! runtime's versioned, checksummed format, so a damaged object is reported as corrupt and the
//! previous retained checkpoint is used.

use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use weir_connector_api::state::StateError;
use weir_runtime::storage::{
    CheckpointLocation, CheckpointMetadata, CheckpointStorage, SnapshotKind, StorageError,
    METADATA_FILE_NAME,
};

use crate::error::{detail, status};

/// Checkpoint storage in an S3 bucket under a key prefix.
#[derive(Debug, Clone)]
pub struct S3CheckpointStorage {
    client: Client,
    bucket: String,
    prefix: String,
}

fn io(location: &str, action: &'static str, detail: impl std::fmt::Display) -> StorageError {
    StorageError::Io {
        path: PathBuf::from(location),
        action,
        source: std::io::Error::other(detail.to_string()),
    }
}

impl S3CheckpointStorage {
    /// Checkpoints under `s3://<bucket>/<prefix>/`.
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        S3CheckpointStorage {
            client,
            bucket: bucket.into(),
            prefix: prefix.into().trim_matches('/').to_owned(),
        }
    }

    fn key_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    fn location(&self, id: u64) -> CheckpointLocation {
        CheckpointLocation::new(format!(
            "s3://{}/{}chk-{id}",
            self.bucket,
            self.key_prefix()
        ))
    }

    /// The metadata key of a location of this storage.
    fn key_of(&self, location: &CheckpointLocation) -> Result<String, StorageError> {
        let own = format!("s3://{}/", self.bucket);
        let rest = location
            .as_str()
            .strip_prefix(&own)
            .ok_or_else(|| StorageError::InvalidLocation {
                location: location.to_string(),
                reason: format!("it is not in {own}"),
            })?
            .trim_end_matches('/');
        Ok(if rest.ends_with(METADATA_FILE_NAME) {
            rest.to_owned()
        } else {
            format!("{rest}/{METADATA_FILE_NAME}")
        })
    }
}

#[async_trait::async_trait]
impl CheckpointStorage for S3CheckpointStorage {
    async fn write_checkpoint(
        &self,
        metadata: &CheckpointMetadata,
    ) -> Result<CheckpointLocation, StorageError> {
        let id = metadata.checkpoint_id;
        let bytes = metadata.encode().map_err(|source| StorageError::Encode {
            checkpoint_id: id,
            source,
        })?;
        let location = self.location(id);
        let key = self.key_of(&location)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_none_match("*")
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| {
                if status(&e) == Some(412) {
                    StorageError::AlreadyExists {
                        location: location.to_string(),
                        kind: SnapshotKind::Checkpoint,
                    }
                } else {
                    io(location.as_str(), "write", detail(&e))
                }
            })?;
        Ok(location)
    }

    async fn list_checkpoints(&self) -> Result<Vec<(u64, CheckpointLocation)>, StorageError> {
        let prefix = format!("{}chk-", self.key_prefix());
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    io(
                        &format!("s3://{}/{prefix}", self.bucket),
                        "list",
                        detail(&e),
                    )
                })?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                let Some(rest) = key.strip_prefix(&prefix) else {
                    continue;
                };
                let Some((id, file)) = rest.split_once('/') else {
                    continue;
                };
                if file != METADATA_FILE_NAME {
                    continue;
                }
                if let Ok(id) = id.parse::<u64>() {
                    out.push((id, self.location(id)));
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    async fn read(
        &self,
        location: &CheckpointLocation,
    ) -> Result<CheckpointMetadata, StorageError> {
        let key = self.key_of(location)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if status(&e) == Some(404) => {
                return Err(StorageError::NotFound {
                    location: location.to_string(),
                })
            }
            Err(e) => return Err(io(location.as_str(), "read", detail(&e))),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| io(location.as_str(), "read", e))?
            .into_bytes();
        CheckpointMetadata::decode(&bytes).map_err(|source| match source {
            StateError::UnknownVersion { version, .. } => StorageError::UnsupportedVersion {
                location: location.to_string(),
                version,
            },
            source => StorageError::Corrupt {
                location: location.to_string(),
                kind: SnapshotKind::Checkpoint,
                source,
            },
        })
    }

    async fn discard(&self, location: &CheckpointLocation) -> Result<(), StorageError> {
        let key = self.key_of(location)?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Ok(()),
            Err(e) => Err(io(location.as_str(), "delete", detail(&e))),
        }
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}
