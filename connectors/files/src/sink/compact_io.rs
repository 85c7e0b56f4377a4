//! What a compaction reads and writes: its inputs opened where they lie, and the in-progress
//! compacted file as a [`Write`], so that a format streams from one to the other
//! ([`BulkWriterFactory::compact_into`](crate::format::BulkWriterFactory::compact_into)).

use std::io::Write;
use std::sync::Arc;

use weir_connector_api::error::{ConnectorError, Result};

use crate::format::CompactInput;
use crate::fs::{FileSystem, Recoverable, RecoverableStream, RecoverableWriter};

/// Bytes written between two waits for the stream's readiness (remote streams upload in the
/// background and hold back writers while too many uploads are in flight).
const READY_EVERY: usize = 1024 * 1024;

/// The pending files `files` to compact: read in place where the filesystem can (local files),
/// otherwise read into memory; a file that cannot be read before its commit (an open upload)
/// is committed to its hidden name and read from there.
pub(crate) async fn open_inputs(
    fs: &Arc<dyn FileSystem>,
    rw: &Arc<dyn RecoverableWriter>,
    files: &[Recoverable],
) -> Result<Vec<CompactInput>> {
    let mut inputs = Vec::with_capacity(files.len());
    for file in files {
        let input = if let Some(local) = rw.open_pending(file).await? {
            CompactInput::from_file(local, file.len)
        } else if let Some(bytes) = rw.read_pending(file).await? {
            CompactInput::from_bytes(bytes)
        } else {
            rw.commit(file).await?;
            CompactInput::from_bytes(fs.read_range(&file.target, 0..file.len).await?)
        };
        inputs.push(input);
    }
    Ok(inputs)
}

/// An in-progress file written through [`Write`], from a blocking task: waits for the stream's
/// readiness every [`READY_EVERY`] bytes, and keeps the stream's own error (with its retryable
/// or fatal kind) for [`StreamOut::finish`].
pub(crate) struct StreamOut {
    stream: Box<dyn RecoverableStream>,
    error: Option<ConnectorError>,
    unchecked: usize,
}

impl StreamOut {
    pub(crate) fn new(stream: Box<dyn RecoverableStream>) -> Self {
        StreamOut {
            stream,
            error: None,
            unchecked: 0,
        }
    }

    /// The stream back, with `result` — or the stream's error, if writing to it failed.
    pub(crate) fn finish(self, result: Result<()>) -> (Box<dyn RecoverableStream>, Result<()>) {
        let result = match self.error {
            Some(e) => Err(e),
            None => result,
        };
        (self.stream, result)
    }

    fn failed(&mut self, e: ConnectorError) -> std::io::Error {
        let io = std::io::Error::other(e.to_string());
        self.error = Some(e);
        io
    }
}

impl Write for StreamOut {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Some(e) = &self.error {
            return Err(std::io::Error::other(e.to_string()));
        }
        if let Err(e) = self.stream.write(data) {
            return Err(self.failed(e));
        }
        self.unchecked += data.len();
        if self.unchecked >= READY_EVERY {
            self.unchecked = 0;
            let stream = &mut self.stream;
            let ready =
                futures::executor::block_on(futures::future::poll_fn(|cx| stream.poll_ready(cx)));
            if let Err(e) = ready {
                return Err(self.failed(e));
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
