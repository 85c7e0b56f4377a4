//! [`S3RecoverableWriter`] and its stream: see the [module docs](super).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_files::fs::{
    file_name, parent, CommitStatus, InProgressEntry, Recoverable, RecoverableStream,
    RecoverableWriter,
};

use super::state::{S3UploadState, S3UploadedPart};
use crate::copy::{complete_upload, copy_parts, MAX_COPY_SIZE};
use crate::error::{code, s3_error, status};
use crate::fs::{UploadSettings, MIN_PART_SIZE};

/// What every part upload of one file shares: the client, the key and the (lazily created)
/// upload id.
struct Shared {
    client: Client,
    bucket: String,
    key: String,
    upload: OnceCell<String>,
}

impl Shared {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    async fn upload_id(&self) -> Result<String> {
        self.upload
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .send()
                    .await
                    .map_err(|e| {
                        s3_error(format!("starting the upload of {}", self.describe()), e)
                    })?;
                out.upload_id().map(str::to_owned).ok_or_else(|| {
                    ConnectorError::fatal(
                        format!("starting the upload of {}", self.describe()),
                        "the server returned no upload id",
                    )
                })
            })
            .await
            .cloned()
    }

    async fn upload_part(self: Arc<Self>, number: i32, data: Bytes) -> Result<S3UploadedPart> {
        let id = self.upload_id().await?;
        let len = data.len() as u64;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&id)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| s3_error(format!("uploading part {number} of {}", self.describe()), e))?;
        let etag = out.e_tag().map(str::to_owned).ok_or_else(|| {
            ConnectorError::fatal(
                format!("uploading part {number} of {}", self.describe()),
                "the server returned no ETag",
            )
        })?;
        Ok(S3UploadedPart { number, etag, len })
    }
}

/// The S3 [`RecoverableWriter`].
#[derive(Debug)]
pub struct S3RecoverableWriter {
    client: Client,
    bucket: String,
    settings: UploadSettings,
}

impl S3RecoverableWriter {
    pub(crate) fn new(client: Client, bucket: String, settings: UploadSettings) -> Self {
        S3RecoverableWriter {
            client,
            bucket,
            settings,
        }
    }

    fn shared(&self, key: &str, upload: Option<String>) -> Arc<Shared> {
        let cell = OnceCell::new();
        if let Some(id) = upload {
            let _ = cell.set(id);
        }
        Arc::new(Shared {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload: cell,
        })
    }

    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<()> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) || code(&e).as_deref() == Some("NoSuchUpload") => {
                Ok(())
            }
            Err(e) => Err(s3_error(
                format!("aborting the upload of {}", self.describe(key)),
                e,
            )),
        }
    }

    async fn upload_exists(&self, key: &str, upload_id: &str) -> Result<bool> {
        match self
            .client
            .list_parts()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .max_parts(1)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if status(&e) == Some(404) || code(&e).as_deref() == Some("NoSuchUpload") => {
                Ok(false)
            }
            Err(e) => Err(s3_error(
                format!("checking the upload of {}", self.describe(key)),
                e,
            )),
        }
    }

    async fn object_len(&self, key: &str) -> Result<Option<u64>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => Ok(Some(o.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(s3_error(format!("stat {}", self.describe(key)), e)),
        }
    }

    /// Restarts the upload of a hidden part file that a failed attempt already completed.
    async fn take_back(&self, r: &Recoverable, state: &S3UploadState) -> Result<S3Stream> {
        let key = &r.target;
        let parts_len = state.parts_len();
        let shared = self.shared(key, None);
        let mut parts = Vec::new();
        let mut tail = Vec::new();
        if parts_len >= MIN_PART_SIZE as u64 {
            let id = shared.upload_id().await?;
            // In parts of at most 5 GiB, S3's limit for one copy.
            let copied = copy_parts(
                &self.client,
                &self.bucket,
                key,
                key,
                &id,
                1,
                0..parts_len,
                MAX_COPY_SIZE,
            )
            .await
            .map_err(|e| {
                ConnectorError::retryable(format!("taking back {}", self.describe(key)), e)
            })?;
            parts.extend(
                copied
                    .into_iter()
                    .map(|(number, etag, len)| S3UploadedPart { number, etag, len }),
            );
        } else if parts_len > 0 {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .range(format!("bytes=0-{}", parts_len - 1))
                .send()
                .await
                .map_err(|e| s3_error(format!("taking back {}", self.describe(key)), e))?;
            let body = out.body.collect().await.map_err(|e| {
                ConnectorError::retryable(format!("taking back {}", self.describe(key)), e)
            })?;
            tail.extend_from_slice(&body.into_bytes());
        }
        tail.extend_from_slice(&state.tail);
        Ok(S3Stream::resumed(shared, self.settings, parts, tail))
    }
}

#[async_trait::async_trait]
impl RecoverableWriter for S3RecoverableWriter {
    fn open(&self, target: &str) -> Result<Box<dyn RecoverableStream>> {
        Ok(Box::new(S3Stream::resumed(
            self.shared(target, None),
            self.settings,
            Vec::new(),
            Vec::new(),
        )))
    }

    async fn recover(&self, resumable: &Recoverable) -> Result<Box<dyn RecoverableStream>> {
        let state = S3UploadState::decode(resumable)?;
        let key = &resumable.target;
        // Uploads of this key other than the checkpointed one were started by an attempt that
        // failed after the checkpoint: no checkpoint references them.
        for entry in self.list_in_progress(parent(key)).await? {
            if entry.target == *key && Some(&entry.handle) != state.upload_id.as_ref() {
                tracing::info!(key = %key, upload = %entry.handle, "aborting an upload of a resumed part file that no checkpoint references");
                self.abort(key, &entry.handle).await?;
            }
        }
        if let Some(id) = &state.upload_id {
            if !self.upload_exists(key, id).await? {
                let hidden = file_name(key).starts_with('.');
                return match self.object_len(key).await? {
                    Some(len) if hidden && len >= state.parts_len() => {
                        Ok(Box::new(self.take_back(resumable, &state).await?))
                    }
                    _ => Err(ConnectorError::fatal(
                        format!("recovering the upload of {}", self.describe(key)),
                        "the multipart upload is gone (aborted by a lifecycle rule or by hand?); \
                         the data written before the checkpoint is lost",
                    )),
                };
            }
        }
        Ok(Box::new(S3Stream::resumed(
            self.shared(key, state.upload_id.clone()),
            self.settings,
            state.parts,
            state.tail,
        )))
    }

    async fn commit(&self, pending: &Recoverable) -> Result<CommitStatus> {
        let state = S3UploadState::decode(pending)?;
        let key = &pending.target;
        let Some(id) = state.upload_id else {
            return Err(ConnectorError::Contract(format!(
                "{} was committed without being closed",
                self.describe(key)
            )));
        };
        let result = complete_upload(
            &self.client,
            &self.bucket,
            key,
            &id,
            state.parts.iter().map(|p| (p.number, p.etag.as_str())),
        )
        .await;
        match result {
            Ok(_) => Ok(CommitStatus::Committed),
            Err(e) if status(&e) == Some(404) || code(&e).as_deref() == Some("NoSuchUpload") => {
                match self.object_len(key).await? {
                    Some(len) if len == pending.len => Ok(CommitStatus::AlreadyCommitted),
                    Some(len) => Err(ConnectorError::fatal(
                        format!("committing {}", self.describe(key)),
                        format!(
                            "the upload is gone and the object holds {len} bytes, not the {} \
                             committed; another writer may use the same key",
                            pending.len
                        ),
                    )),
                    None => Err(ConnectorError::fatal(
                        format!("committing {}", self.describe(key)),
                        "neither the upload nor the object exists: the pending file was aborted \
                         before it was committed (data loss)",
                    )),
                }
            }
            Err(e) => Err(s3_error(format!("committing {}", self.describe(key)), e)),
        }
    }

    async fn discard(&self, recoverable: &Recoverable) -> Result<()> {
        let state = S3UploadState::decode(recoverable)?;
        match state.upload_id {
            Some(id) => self.abort(&recoverable.target, &id).await,
            None => Ok(()),
        }
    }

    async fn read_pending(&self, _pending: &Recoverable) -> Result<Option<Bytes>> {
        Ok(None)
    }

    fn retarget(&self, _pending: &Recoverable, _target: &str) -> Option<Recoverable> {
        None
    }

    async fn list_in_progress(&self, dir: &str) -> Result<Vec<InProgressEntry>> {
        let dir = dir.trim_start_matches('/');
        let prefix = if dir.is_empty() || dir.ends_with('/') {
            dir.to_owned()
        } else {
            format!("{dir}/")
        };
        let mut out = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| {
                    s3_error(
                        format!("listing the uploads under {}", self.describe(&prefix)),
                        e,
                    )
                })?;
            for u in page.uploads() {
                if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                    out.push(InProgressEntry {
                        target: key.to_owned(),
                        handle: id.to_owned(),
                    });
                }
            }
            if page.is_truncated().unwrap_or(false) {
                key_marker = page.next_key_marker().map(str::to_owned);
                id_marker = page.next_upload_id_marker().map(str::to_owned);
                if key_marker.is_none() {
                    break;
                }
            } else {
                break;
            }
        }
        Ok(out)
    }

    async fn abort_in_progress(&self, entry: &InProgressEntry) -> Result<()> {
        self.abort(&entry.target, &entry.handle).await
    }
}

type PartUpload = JoinHandle<Result<S3UploadedPart>>;

/// An in-progress part file: a multipart upload plus a buffered tail.
struct S3Stream {
    shared: Arc<Shared>,
    settings: UploadSettings,
    parts: Vec<S3UploadedPart>,
    in_flight: VecDeque<PartUpload>,
    next_part: i32,
    buffer: Vec<u8>,
    len: u64,
}

fn join_error(e: &tokio::task::JoinError) -> ConnectorError {
    ConnectorError::Contract(format!("a part upload task failed: {e}"))
}

impl S3Stream {
    fn resumed(
        shared: Arc<Shared>,
        settings: UploadSettings,
        parts: Vec<S3UploadedPart>,
        tail: Vec<u8>,
    ) -> Self {
        let next_part = parts.iter().map(|p| p.number).max().unwrap_or(0) + 1;
        let len = parts.iter().map(|p| p.len).sum::<u64>() + tail.len() as u64;
        let mut buffer = tail;
        buffer.reserve(settings.part_size.saturating_sub(buffer.len()));
        S3Stream {
            shared,
            settings,
            parts,
            in_flight: VecDeque::new(),
            next_part,
            buffer,
            len,
        }
    }

    fn start_upload(&mut self, data: Bytes) -> Result<()> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            ConnectorError::Contract("S3 part files must be written inside a tokio runtime".into())
        })?;
        let number = self.next_part;
        self.next_part += 1;
        let shared = Arc::clone(&self.shared);
        self.in_flight
            .push_back(handle.spawn(shared.upload_part(number, data)));
        Ok(())
    }

    async fn wait_in_flight(&mut self) -> Result<()> {
        while let Some(upload) = self.in_flight.pop_front() {
            let part = upload.await.map_err(|e| join_error(&e))??;
            self.parts.push(part);
        }
        self.parts.sort_by_key(|p| p.number);
        Ok(())
    }

    fn state(&self) -> S3UploadState {
        S3UploadState {
            upload_id: self.shared.upload.get().cloned(),
            parts: self.parts.clone(),
            tail: self.buffer.clone(),
        }
    }

    fn recoverable(&self, state: &S3UploadState) -> Result<Recoverable> {
        Ok(Recoverable {
            target: self.shared.key.clone(),
            len: self.len,
            data: state.encode()?,
        })
    }
}

#[async_trait::async_trait]
impl RecoverableStream for S3Stream {
    fn target(&self) -> &str {
        &self.shared.key
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.len += data.len() as u64;
        self.buffer.extend_from_slice(data);
        while self.buffer.len() >= self.settings.part_size {
            let rest = self.buffer.split_off(self.settings.part_size);
            let part = std::mem::replace(&mut self.buffer, rest);
            self.start_upload(Bytes::from(part))?;
        }
        Ok(())
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        while let Some(front) = self.in_flight.front_mut() {
            let done = Pin::new(front).poll(cx);
            match done {
                Poll::Ready(result) => {
                    self.in_flight.pop_front();
                    match result {
                        Ok(Ok(part)) => self.parts.push(part),
                        Ok(Err(e)) => return Poll::Ready(Err(e)),
                        Err(e) => return Poll::Ready(Err(join_error(&e))),
                    }
                }
                Poll::Pending => {
                    if self.in_flight.len() >= self.settings.max_in_flight {
                        return Poll::Pending;
                    }
                    break;
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    fn len(&self) -> u64 {
        self.len
    }

    async fn persist(&mut self) -> Result<Recoverable> {
        self.wait_in_flight().await?;
        let state = self.state();
        self.recoverable(&state)
    }

    async fn close_for_commit(mut self: Box<Self>) -> Result<Recoverable> {
        self.wait_in_flight().await?;
        if !self.buffer.is_empty() || self.parts.is_empty() {
            let last = std::mem::take(&mut self.buffer);
            let number = self.next_part;
            self.next_part += 1;
            let part = Arc::clone(&self.shared)
                .upload_part(number, Bytes::from(last))
                .await?;
            self.parts.push(part);
        }
        self.shared.upload_id().await?;
        let state = self.state();
        self.recoverable(&state)
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        let _ = self.wait_in_flight().await;
        if let Some(id) = self.shared.upload.get() {
            let writer = S3RecoverableWriter::new(
                self.shared.client.clone(),
                self.shared.bucket.clone(),
                self.settings,
            );
            writer.abort(&self.shared.key, id).await?;
        }
        Ok(())
    }
}
