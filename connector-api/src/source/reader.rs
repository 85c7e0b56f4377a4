//! The reader side of a source.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

use super::{ReaderOutput, SourceEvent, SourceSplit};
use crate::checkpoint::CheckpointId;
use crate::error::Result;
use crate::metrics::MetricGroup;

/// What [`SourceReader::poll_next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputStatus {
    /// Records were emitted or more are ready: poll again right away.
    MoreAvailable,
    /// Nothing is ready now: wait for [`SourceReader::poll_available`].
    NothingAvailable,
    /// This reader has finished all of its splits and will get no more.
    EndOfInput,
}

/// What a reader can ask of the runtime. Implemented by the runtime.
pub trait SourceReaderContext: Send + Sync {
    /// This reader's subtask index, `0..parallelism`.
    fn subtask_index(&self) -> usize;
    /// The number of reader subtasks.
    fn parallelism(&self) -> usize;
    /// The reader's metric group.
    fn metric_group(&self) -> Arc<dyn MetricGroup>;
    /// Asks the enumerator for a split.
    fn send_split_request(&self) -> Result<()>;
    /// Sends a custom event to the enumerator.
    fn send_source_event(&self, event: SourceEvent) -> Result<()>;
    /// Runs a background task (e.g. a split fetcher) on the runtime's executor.
    fn spawn(&self, name: &str, task: BoxFuture<'static, ()>);
}

/// Reads the splits assigned to one subtask. The runtime calls it from a single task: no two
/// methods run at once, and checkpoints, events and cancellation happen between two calls.
///
/// `poll_next` must never block or wait: it emits what is ready and returns. When it returns
/// [`InputStatus::NothingAvailable`] the runtime waits on [`SourceReader::poll_available`].
///
/// See the [module docs](crate::source) for an example.
#[async_trait::async_trait]
pub trait SourceReader: Send + 'static {
    /// The records this reader emits.
    type Output: Send + 'static;
    /// The split type.
    type Split: SourceSplit;

    /// Called once before the first poll (e.g. to request a first split).
    fn start(&mut self) -> Result<()> {
        Ok(())
    }

    /// Emits ready records into `output` (a batch is fine) and says whether more are ready.
    fn poll_next<O: ReaderOutput<Self::Output>>(&mut self, output: &mut O) -> Result<InputStatus>;

    /// Ready when `poll_next` may have something to emit. Spurious wake-ups are allowed; being
    /// always ready while nothing is available is not (it would spin the task).
    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    /// The assigned splits with their progress, for a checkpoint.
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<Self::Split>>;

    /// New splits from the enumerator (or restored from a checkpoint).
    fn add_splits(&mut self, splits: Vec<Self::Split>) -> Result<()>;

    /// The enumerator will assign no more splits to this reader.
    fn notify_no_more_splits(&mut self);

    /// A custom event from the enumerator.
    fn handle_source_event(&mut self, _event: SourceEvent) -> Result<()> {
        Ok(())
    }

    /// A checkpoint this reader took part in completed.
    fn notify_checkpoint_complete(&mut self, _checkpoint_id: CheckpointId) -> Result<()> {
        Ok(())
    }

    /// A checkpoint this reader took part in was aborted.
    fn notify_checkpoint_aborted(&mut self, _checkpoint_id: CheckpointId) -> Result<()> {
        Ok(())
    }

    /// The split pause/resume capability (FLIP-217), if this reader has it. A reader declares it
    /// by returning `Some(self)`; wrappers must forward this call.
    fn as_pausable(&mut self) -> Option<&mut dyn PausableSourceReader> {
        None
    }

    /// Stops fetchers and releases resources.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The capability to pause and resume individual splits, used by split-level watermark alignment.
pub trait PausableSourceReader: Send {
    /// Stops reading the splits in `pause` and resumes those in `resume` (by split id). Unknown
    /// ids are ignored: the split may have finished meanwhile.
    fn pause_or_resume_splits(&mut self, pause: &[String], resume: &[String]) -> Result<()>;
}

/// Conveniences on every [`SourceReader`].
pub trait SourceReaderExt: SourceReader {
    /// A future that completes when [`SourceReader::poll_available`] is ready.
    fn available(&mut self) -> Available<'_, Self>
    where
        Self: Sized,
    {
        Available { reader: self }
    }
}

impl<R: SourceReader> SourceReaderExt for R {}

/// The future returned by [`SourceReaderExt::available`].
#[derive(Debug)]
pub struct Available<'a, R> {
    reader: &'a mut R,
}

impl<R: SourceReader> Future for Available<'_, R> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.reader.poll_available(cx)
    }
}
