//! The file committer: publishes pending files, moves finished ones, and removes compaction
//! inputs once their compacted file is published. Every action is idempotent.

use std::sync::Arc;

use weir_connector_api::error::{ErrorClass, Result};
use weir_connector_api::sink::{CommitRequest, Committer};

use super::state::FileSinkCommittable;
use crate::fs::{CommitStatus, FileSystem, RecoverableWriter};

/// Commits [`FileSinkCommittable`]s.
#[derive(Debug)]
pub struct FileCommitter {
    fs: Arc<dyn FileSystem>,
    rw: Arc<dyn RecoverableWriter>,
}

impl FileCommitter {
    /// A committer on `fs`.
    pub fn new(fs: Arc<dyn FileSystem>) -> Self {
        let rw = fs.recoverable_writer();
        FileCommitter { fs, rw }
    }

    async fn publish(&self, c: &FileSinkCommittable) -> Result<CommitStatus> {
        tracing::debug!(committable = ?c, "commit");
        match c {
            FileSinkCommittable::Pending { file, .. } => self.rw.commit(file).await,
            FileSinkCommittable::Move { from, to, len, .. } => {
                if let Some(status) = self.fs.status(to).await? {
                    if status.len == *len {
                        return Ok(CommitStatus::AlreadyCommitted);
                    }
                }
                if self.fs.status(from).await?.is_none() {
                    return Err(weir_connector_api::ConnectorError::fatal(
                        format!("moving {from} to {to}"),
                        "neither the source nor the target exists (data loss)",
                    ));
                }
                self.fs.rename(from, to).await?;
                Ok(CommitStatus::Committed)
            }
            FileSinkCommittable::Cleanup { file } => {
                self.fs.delete(&file.target).await?;
                self.rw.discard(file).await?;
                Ok(CommitStatus::Committed)
            }
        }
    }
}

fn apply(request: &mut CommitRequest<FileSinkCommittable>, result: Result<CommitStatus>) -> bool {
    match result {
        Ok(CommitStatus::Committed) => true,
        Ok(CommitStatus::AlreadyCommitted) => {
            request.already_committed();
            true
        }
        Err(e) if e.class() == ErrorClass::Retryable => {
            tracing::warn!("commit of {:?} will be retried: {e}", request.committable());
            request.retry_later();
            false
        }
        Err(e) => {
            request.failed_unknown(e);
            false
        }
    }
}

#[async_trait::async_trait]
impl Committer<FileSinkCommittable> for FileCommitter {
    async fn commit(&mut self, requests: &mut [CommitRequest<FileSinkCommittable>]) -> Result<()> {
        // Publish first; remove compaction inputs only when everything was published.
        let mut all_published = true;
        for request in requests.iter_mut() {
            if matches!(request.committable(), FileSinkCommittable::Cleanup { .. }) {
                continue;
            }
            let result = self.publish(request.committable()).await;
            all_published &= apply(request, result);
        }
        for request in requests.iter_mut() {
            if !matches!(request.committable(), FileSinkCommittable::Cleanup { .. }) {
                continue;
            }
            if all_published {
                let result = self.publish(request.committable()).await;
                apply(request, result);
            } else {
                request.retry_later();
            }
        }
        Ok(())
    }
}
