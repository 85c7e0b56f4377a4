//! The coordinator side of a source.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{SourceEvent, SourceSplit};
use crate::checkpoint::CheckpointId;
use crate::error::Result;
use crate::metrics::MetricGroup;

/// Splits to hand to readers, by subtask index.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitsAssignment<S> {
    /// The new splits of each subtask.
    pub assignment: BTreeMap<usize, Vec<S>>,
}

impl<S> SplitsAssignment<S> {
    /// An empty assignment.
    pub fn new() -> Self {
        SplitsAssignment {
            assignment: BTreeMap::new(),
        }
    }

    /// One split for one subtask.
    pub fn single(subtask: usize, split: S) -> Self {
        let mut a = Self::new();
        a.add(subtask, split);
        a
    }

    /// Adds a split for a subtask.
    pub fn add(&mut self, subtask: usize, split: S) -> &mut Self {
        self.assignment.entry(subtask).or_default().push(split);
        self
    }

    /// Whether nothing is assigned.
    pub fn is_empty(&self) -> bool {
        self.assignment.values().all(Vec::is_empty)
    }
}

impl<S> Default for SplitsAssignment<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// What an enumerator can ask of the runtime. Implemented by the runtime; every call is
/// non-blocking, and its effect (an assignment, an event) happens after the current enumerator
/// method returns, on the coordinator's single event loop.
///
/// `R` is the enumerator's [`SplitEnumerator::AsyncResult`].
pub trait SplitEnumeratorContext<S: SourceSplit, R: Send + 'static>: Send + Sync {
    /// The source's metric group on the coordinator.
    fn metric_group(&self) -> std::sync::Arc<dyn MetricGroup>;
    /// The number of reader subtasks.
    fn current_parallelism(&self) -> usize;
    /// The subtasks whose readers are registered, ascending.
    fn registered_readers(&self) -> Vec<usize>;
    /// Assigns splits to registered readers. Assigning to an unregistered subtask is an error.
    fn assign_splits(&self, assignment: SplitsAssignment<S>) -> Result<()>;
    /// Tells a reader it will get no more splits.
    fn signal_no_more_splits(&self, subtask: usize) -> Result<()>;
    /// Sends a custom event to a reader.
    fn send_event_to_reader(&self, subtask: usize, event: SourceEvent) -> Result<()>;
    /// Runs `task` on a worker; its result is delivered to
    /// [`SplitEnumerator::handle_async_result`] on the coordinator loop.
    fn call_async(&self, task: BoxFuture<'static, R>);
    /// Runs `task()` after `initial_delay` and then every `period`; each result is delivered to
    /// [`SplitEnumerator::handle_async_result`]. A run starts only after the previous finished.
    fn call_async_periodic(
        &self,
        task: Box<dyn FnMut() -> BoxFuture<'static, R> + Send>,
        initial_delay: Duration,
        period: Duration,
    );
}

/// The owned context handle an enumerator keeps.
pub type EnumeratorContext<S, R> = Box<dyn SplitEnumeratorContext<S, R>>;

/// Discovers splits and assigns them to readers. Runs on one event loop per source: no method is
/// ever called concurrently with another, so no locking is needed. An error fails the job.
///
/// See the [module docs](crate::source) for an example.
pub trait SplitEnumerator: Send + 'static {
    /// The split type.
    type Split: SourceSplit;
    /// The checkpointed state.
    type State: Send + 'static;
    /// The result of async work started through [`SplitEnumeratorContext::call_async`]; use
    /// [`std::convert::Infallible`] if the enumerator starts none.
    type AsyncResult: Send + 'static;

    /// Called once before any other method (e.g. to schedule periodic discovery).
    fn start(&mut self) -> Result<()> {
        Ok(())
    }
    /// A reader asks for a split.
    fn handle_split_request(&mut self, subtask: usize) -> Result<()>;
    /// Splits come back from a failed reader: those assigned after its last completed checkpoint.
    fn add_splits_back(&mut self, splits: Vec<Self::Split>, subtask: usize) -> Result<()>;
    /// A reader registered.
    fn add_reader(&mut self, subtask: usize) -> Result<()>;
    /// The enumerator's state for a checkpoint.
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Self::State>;
    /// A checkpoint completed.
    fn notify_checkpoint_complete(&mut self, _checkpoint_id: CheckpointId) -> Result<()> {
        Ok(())
    }
    /// A checkpoint was aborted (API line 1.1): timed out, declined, or failed to persist.
    fn checkpoint_aborted(&mut self, _checkpoint_id: CheckpointId) -> Result<()> {
        Ok(())
    }
    /// A custom event from a reader.
    fn handle_source_event(&mut self, _subtask: usize, _event: SourceEvent) -> Result<()> {
        Ok(())
    }
    /// The result of async work started through the context.
    fn handle_async_result(&mut self, result: Self::AsyncResult) -> Result<()>;
    /// Releases resources; called once at the end.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
