//! Sink writers and their capability mixins.

use std::sync::Arc;
use std::task::{Context, Poll};

use crate::checkpoint::CheckpointId;
use crate::error::Result;
use crate::metrics::MetricGroup;
use crate::watermark::Watermark;

/// Why a writer is flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushMode {
    /// A checkpoint barrier arrived: make everything written so far durable or committable.
    Checkpoint,
    /// The input ended (FLIP-147): flush everything, no more writes follow.
    EndOfInput,
}

/// Per-record context of [`SinkWriter::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteContext {
    /// The record's event time, if it has one.
    pub timestamp: Option<i64>,
    /// The writer's current watermark.
    pub current_watermark: Watermark,
}

impl Default for WriteContext {
    fn default() -> Self {
        WriteContext {
            timestamp: None,
            current_watermark: Watermark::MIN,
        }
    }
}

/// What a writer (or committer) learns about where it runs. Implemented by the runtime.
pub trait InitContext: Send + Sync {
    /// This subtask's index, `0..parallelism`.
    fn subtask_index(&self) -> usize;
    /// The number of parallel subtasks.
    fn parallelism(&self) -> usize;
    /// How many times the job was restarted (0 on the first attempt).
    fn attempt(&self) -> u32;
    /// The checkpoint this subtask was restored from, if any.
    fn restored_checkpoint_id(&self) -> Option<CheckpointId>;
    /// The metric group of this subtask.
    fn metric_group(&self) -> Arc<dyn MetricGroup>;
    /// The stable id of the sink operator (for naming transactions, files...).
    fn operator_id(&self) -> &str;
}

/// Writes records to the external system (or into buffers that a committer later commits).
///
/// `write` is called for every record and must not block or wait: append to a buffer or a
/// client queue. Backpressure goes through [`poll_ready`](SinkWriter::poll_ready), which the
/// runtime checks between batches.
///
/// ```
/// use weir_connector_api::error::Result;
/// use weir_connector_api::sink::{FlushMode, SinkWriter, WriteContext};
///
/// /// Prints lines on flush.
/// #[derive(Default)]
/// struct PrintWriter { buffer: Vec<String> }
///
/// #[async_trait::async_trait]
/// impl SinkWriter<String> for PrintWriter {
///     fn write(&mut self, line: String, _ctx: &WriteContext) -> Result<()> {
///         self.buffer.push(line);
///         Ok(())
///     }
///     async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
///         for line in self.buffer.drain(..) { println!("{line}"); }
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait SinkWriter<In>: Send + 'static {
    /// Accepts one record.
    fn write(&mut self, element: In, ctx: &WriteContext) -> Result<()>;

    /// Ready when the writer can take another batch of records; `Pending` applies
    /// backpressure (e.g. too many requests in flight).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Flushes buffered records (at a checkpoint or at end of input).
    async fn flush(&mut self, mode: FlushMode) -> Result<()>;

    /// Work the writer does on its own clock (API line 1.1): e.g. sending a batch that waited
    /// its maximum time in the buffer, or completing requests in flight. The runtime polls it
    /// whenever the writer waits for input; `Ready(Ok(()))` means some work was done (the
    /// runtime polls again), `Pending` that nothing is due — wake `cx` when something is.
    /// The default has no such work and never wakes.
    fn poll_progress(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Pending
    }

    /// A checkpoint was aborted (timed out, declined by a task, or failed to persist) after
    /// this writer took part in it (API line 1.1): e.g. drop what was prepared only for it.
    /// Nothing written is lost: the next checkpoint covers it.
    fn checkpoint_aborted(&mut self, _checkpoint_id: CheckpointId) -> Result<()> {
        Ok(())
    }

    /// A new watermark arrived.
    fn write_watermark(&mut self, _watermark: Watermark) -> Result<()> {
        Ok(())
    }

    /// Releases resources. Not called after a failure that already tore the writer down.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A writer with state to checkpoint (e.g. buffered entries, an open transaction's id, the
/// in-progress part file of a bucket). Declared through
/// [`SupportsWriterState`](super::SupportsWriterState).
pub trait StatefulSinkWriter<In>: SinkWriter<In> {
    /// The checkpointed state type.
    type State: Send + 'static;
    /// The state to checkpoint; called after `prepare_commit` for the same checkpoint.
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<Self::State>>;
}

/// A writer that prepares committables for a committer (two-phase commit). Declared through
/// [`SupportsCommitter`](super::SupportsCommitter).
#[async_trait::async_trait]
pub trait CommittingSinkWriter<In>: SinkWriter<In> {
    /// What the writer hands to the committer (or to the pre-commit topology).
    type Committable: Send + 'static;
    /// Called after `flush` at each checkpoint and at end of input: everything written since the
    /// last call, as committables.
    async fn prepare_commit(&mut self) -> Result<Vec<Self::Committable>>;
}
