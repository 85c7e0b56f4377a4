//! [`SequenceEnumerator`]: hands out the number sequence splits, one per request.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::Result;
use weir_connector_api::source::{EnumeratorContext, SplitEnumerator, SplitsAssignment};

use super::split::{create_splits, NumberSequenceSplit};

/// The enumerator of a datagen source.
///
/// The splits are fixed when the source first starts ([`create_splits`] with the context's
/// parallelism). Each split request gets the next unassigned split; a request when none is left
/// gets "no more splits". Splits of a failed reader come back through
/// [`add_splits_back`](SplitEnumerator::add_splits_back) and are handed out again. The
/// checkpointed state is the list of unassigned splits.
pub struct SequenceEnumerator {
    pending: VecDeque<NumberSequenceSplit>,
    ctx: EnumeratorContext<NumberSequenceSplit, Infallible>,
}

impl SequenceEnumerator {
    /// A fresh enumerator over `0..count` (`None`: unbounded), cut for the context's parallelism.
    pub fn new(
        ctx: EnumeratorContext<NumberSequenceSplit, Infallible>,
        count: Option<u64>,
    ) -> Self {
        let splits = create_splits(count, ctx.current_parallelism());
        Self::restore(ctx, splits)
    }

    /// An enumerator whose unassigned splits are `splits` (from a checkpoint).
    pub fn restore(
        ctx: EnumeratorContext<NumberSequenceSplit, Infallible>,
        splits: Vec<NumberSequenceSplit>,
    ) -> Self {
        SequenceEnumerator {
            pending: splits.into(),
            ctx,
        }
    }

    /// The splits not assigned yet, in the order they will be handed out.
    pub fn pending(&self) -> impl Iterator<Item = &NumberSequenceSplit> {
        self.pending.iter()
    }
}

impl fmt::Debug for SequenceEnumerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SequenceEnumerator")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl SplitEnumerator for SequenceEnumerator {
    type Split = NumberSequenceSplit;
    type State = Vec<NumberSequenceSplit>;
    type AsyncResult = Infallible;

    fn handle_split_request(&mut self, subtask: usize) -> Result<()> {
        let Some(split) = self.pending.pop_front() else {
            return self.ctx.signal_no_more_splits(subtask);
        };
        let assignment = SplitsAssignment::single(subtask, split);
        match self.ctx.assign_splits(assignment.clone()) {
            Ok(()) => Ok(()),
            Err(error) => {
                // Keep the split for the next request rather than losing its numbers.
                for split in assignment.assignment.into_values().flatten() {
                    self.pending.push_front(split);
                }
                Err(error)
            }
        }
    }

    fn add_splits_back(&mut self, splits: Vec<NumberSequenceSplit>, _subtask: usize) -> Result<()> {
        for split in splits.into_iter().rev() {
            self.pending.push_front(split);
        }
        Ok(())
    }

    fn add_reader(&mut self, _subtask: usize) -> Result<()> {
        // Splits are handed out on request.
        Ok(())
    }

    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<Vec<NumberSequenceSplit>> {
        Ok(self.pending.iter().cloned().collect())
    }

    fn handle_async_result(&mut self, result: Infallible) -> Result<()> {
        match result {}
    }
}
