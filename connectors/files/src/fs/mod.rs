//! The filesystem abstraction: a minimal [`FileSystem`] (list, stat, read, delete, rename) plus a
//! [`RecoverableWriter`] that writes part files which survive failures and become visible only
//! when committed.
//!
//! Paths are `/`-separated strings in the filesystem's own namespace: absolute paths for
//! [`LocalFileSystem`], object keys for an object store (the S3 implementation lives in
//! `weir-connector-s3`). Helpers for them: [`join`], [`parent`], [`file_name`],
//! [`is_hidden_name`], [`is_under`].
//!
//! The recoverable writer follows Flink's `RecoverableWriter`:
//!
//! 1. [`RecoverableWriter::open`] starts an *in-progress* file for a target path; nothing is
//!    visible at the target yet (local: a hidden `.<name>.inprogress.<id>` file; S3: an open
//!    multipart upload);
//! 2. [`RecoverableStream::persist`] makes what was written durable and returns a
//!    [`Recoverable`] from which [`RecoverableWriter::recover`] resumes after a failure (bytes
//!    written after it are discarded);
//! 3. [`RecoverableStream::close_for_commit`] seals the file into a *pending* [`Recoverable`];
//! 4. [`RecoverableWriter::commit`] publishes it at its target (local: atomic rename; S3:
//!    complete the upload). Committing again is harmless ([`CommitStatus::AlreadyCommitted`]).

mod local;
mod path;
mod schemes;

use std::fmt;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::state::{StateError, StateReader, StateWriter};

pub use local::{
    LocalFileSystem, LocalInProgressFile, LocalInProgressFileSerializer, LocalRecoverableWriter,
};
pub use path::{file_name, is_hidden_name, is_under, join, parent};
pub use schemes::{find_scheme, FileSystemRegistration, FileSystemScheme, OpenedPath};

/// An async byte stream read from a file.
pub type ByteReader = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// What a listing or a stat call says about a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileStatus {
    /// The file's path.
    pub path: String,
    /// Its length in bytes.
    pub len: u64,
    /// Its modification time, milliseconds since the Unix epoch.
    pub modified_millis: i64,
}

/// A filesystem the file source reads from and the file sink writes to.
///
/// Implementations: [`LocalFileSystem`] here, `S3FileSystem` in `weir-connector-s3`. Every call
/// is async and returns [`ConnectorError`]s classified as retryable or fatal.
#[async_trait::async_trait]
pub trait FileSystem: Send + Sync + fmt::Debug + 'static {
    /// A short description for messages, e.g. `local` or `s3://bucket`.
    fn describe(&self) -> String;

    /// Every file under `dir`, recursively, sorted by path. A missing directory lists nothing.
    async fn list_files(&self, dir: &str) -> Result<Vec<FileStatus>>;

    /// The status of one file, `None` if it does not exist.
    async fn status(&self, path: &str) -> Result<Option<FileStatus>>;

    /// Reads `range` of a file (shorter at the end of the file).
    async fn read_range(&self, path: &str, range: Range<u64>) -> Result<Bytes>;

    /// Reads a whole file.
    async fn read_all(&self, path: &str) -> Result<Bytes> {
        let status = self.status(path).await?.ok_or_else(|| {
            ConnectorError::fatal(
                format!("reading {path} on {}", self.describe()),
                "the file does not exist",
            )
        })?;
        self.read_range(path, 0..status.len).await
    }

    /// Opens a file for sequential reading from `offset`.
    async fn open_read(&self, path: &str, offset: u64) -> Result<ByteReader>;

    /// Writes a whole file so that readers see either nothing or all of it.
    async fn write_atomic(&self, path: &str, data: Bytes) -> Result<()>;

    /// Deletes a file; deleting a missing file succeeds.
    async fn delete(&self, path: &str) -> Result<()>;

    /// Moves a file (local: atomic rename; object stores: copy, then delete).
    async fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// The writer of exactly-once part files.
    fn recoverable_writer(&self) -> Arc<dyn RecoverableWriter>;
}

/// The persisted handle of an in-progress or pending file: its target path, how many bytes it
/// holds, and filesystem-specific data (versioned by the filesystem that wrote it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recoverable {
    /// Where the file becomes visible on commit.
    pub target: String,
    /// The bytes written (and persisted) so far.
    pub len: u64,
    /// Filesystem-specific state (local: the temporary file; S3: upload id, parts, buffered tail).
    pub data: Vec<u8>,
}

impl Recoverable {
    /// Appends this recoverable to a state writer.
    pub fn write_to(&self, w: &mut StateWriter) {
        w.put_str(&self.target)
            .put_u64(self.len)
            .put_bytes(&self.data);
    }

    /// Reads a recoverable written by [`Recoverable::write_to`].
    pub fn read_from(r: &mut StateReader<'_>) -> std::result::Result<Self, StateError> {
        Ok(Recoverable {
            target: r.get_str()?.to_owned(),
            len: r.get_u64()?,
            data: r.get_bytes()?.to_vec(),
        })
    }
}

/// The outcome of [`RecoverableWriter::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitStatus {
    /// The file is now visible at its target.
    Committed,
    /// It had been committed before (an earlier attempt): nothing was done.
    AlreadyCommitted,
}

/// An in-progress file found by [`RecoverableWriter::list_in_progress`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InProgressEntry {
    /// The target it would be committed to.
    pub target: String,
    /// The filesystem's handle (local: the temporary file; S3: the upload id).
    pub handle: String,
}

/// Writes part files that survive failures and become visible only when committed.
#[async_trait::async_trait]
pub trait RecoverableWriter: Send + Sync + fmt::Debug {
    /// Starts an in-progress file for `target`. Cheap and non-blocking: remote filesystems start
    /// their uploads in the background.
    fn open(&self, target: &str) -> Result<Box<dyn RecoverableStream>>;

    /// Resumes an in-progress file from a [`RecoverableStream::persist`] result: bytes written
    /// after it are discarded.
    async fn recover(&self, resumable: &Recoverable) -> Result<Box<dyn RecoverableStream>>;

    /// Publishes a pending file at its target. Idempotent.
    async fn commit(&self, pending: &Recoverable) -> Result<CommitStatus>;

    /// Drops a pending or in-progress file that will never be committed. Idempotent.
    async fn discard(&self, recoverable: &Recoverable) -> Result<()>;

    /// The content of a pending file read in place without committing it, if the filesystem can
    /// (local: yes; S3: no, an open upload cannot be read).
    async fn read_pending(&self, pending: &Recoverable) -> Result<Option<Bytes>>;

    /// The pending file opened for reading in place without committing it, if the filesystem
    /// can hand out a local file (local: yes; S3: no, by default). Compaction reads its inputs
    /// through it range by range; otherwise through [`RecoverableWriter::read_pending`].
    async fn open_pending(&self, _pending: &Recoverable) -> Result<Option<std::fs::File>> {
        Ok(None)
    }

    /// The same pending file, to be committed to another target, if the filesystem can do that
    /// without copying (local: yes; S3: no, an upload's key is fixed).
    fn retarget(&self, pending: &Recoverable, target: &str) -> Option<Recoverable>;

    /// In-progress files (not yet committed) whose targets lie under `dir`, for orphan sweeps.
    async fn list_in_progress(&self, dir: &str) -> Result<Vec<InProgressEntry>>;

    /// Removes an in-progress file found by [`RecoverableWriter::list_in_progress`].
    async fn abort_in_progress(&self, entry: &InProgressEntry) -> Result<()>;
}

/// An in-progress file being written.
#[async_trait::async_trait]
pub trait RecoverableStream: Send {
    /// The target path.
    fn target(&self) -> &str;

    /// Appends bytes. Never waits: remote streams buffer and upload in the background (see
    /// [`RecoverableStream::poll_ready`]).
    fn write(&mut self, data: &[u8]) -> Result<()>;

    /// Ready when the stream accepts more data; `Pending` while too many background uploads are
    /// in flight.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The bytes written so far.
    fn len(&self) -> u64;

    /// Whether nothing was written.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes everything written durable and returns the state to resume from.
    async fn persist(&mut self) -> Result<Recoverable>;

    /// Seals the file: the result is committed with [`RecoverableWriter::commit`].
    async fn close_for_commit(self: Box<Self>) -> Result<Recoverable>;

    /// Drops the file and everything written.
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// Converts an I/O error into a connector error with context; interrupted, timed-out and
/// would-block errors are retryable, the rest fatal.
pub fn io_error(context: impl Into<String>, error: std::io::Error) -> ConnectorError {
    use std::io::ErrorKind;
    let retryable = matches!(
        error.kind(),
        ErrorKind::Interrupted
            | ErrorKind::TimedOut
            | ErrorKind::WouldBlock
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
    );
    if retryable {
        ConnectorError::retryable(context, error)
    } else {
        ConnectorError::fatal(context, error)
    }
}
