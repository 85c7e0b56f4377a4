//! [`SequenceReader`]: emits `generator(n)` for the numbers of its splits.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::{Counter, SourceReaderMetrics, NUM_RECORDS_OUT};
use weir_connector_api::source::{
    InputStatus, PausableSourceReader, ReaderOutput, SourceReader, SourceReaderContext,
};

use super::split::NumberSequenceSplit;
use weir_connector_base::source::PollBudget;

/// The generator function of a datagen source: number → record.
pub type Generator<T> = Arc<dyn Fn(u64) -> T + Send + Sync>;

/// The generator function of a columnar datagen source: a run of numbers of one split (in
/// order, at most the reader's batch size) → one record that stands for all of them.
pub type RunGenerator<T> = Arc<dyn Fn(&[u64]) -> T + Send + Sync>;

/// How a reader turns numbers into records.
enum Emit<T> {
    /// One record per number.
    PerNumber(Generator<T>),
    /// One record per run of numbers (a columnar batch); `scratch` holds the run.
    PerRun {
        generator: RunGenerator<T>,
        scratch: Vec<u64>,
        /// The source operator's `numRecordsOut`: the runtime counts one per record, the
        /// reader adds the rest of each run, so it counts rows as on the row path.
        records_out: Counter,
    },
}

/// The default maximum number of records one [`SequenceReader::poll_next`] emits.
pub const DEFAULT_BATCH_SIZE: usize = 1024;

struct SplitState {
    split: NumberSequenceSplit,
    paused: bool,
}

/// Reads [`NumberSequenceSplit`]s: emits `generator(n)` for every number `n` of its splits, in
/// order within each split, through the split's own output.
///
/// - It asks for a split at start (unless it has restored splits) and whenever it has none left.
/// - One `poll_next` emits at most [`batch_size`](Self::with_batch_size) records (and at most
///   the [`PollBudget`]), taking turns between splits; no allocation per record besides what the
///   generator does.
/// - It reports [`InputStatus::EndOfInput`] once it was told there are no more splits and all of
///   its splits are exhausted.
/// - Its state is its splits with `next` = the first number not yet emitted, so a restore resumes
///   exactly.
/// - It can pause and resume individual splits ([`SourceReader::as_pausable`]): a paused split
///   emits nothing and keeps its position.
/// - It counts `numRecordsIn` (and sets `pendingRecords`) in the context's metric group.
pub struct SequenceReader<T> {
    generator: Emit<T>,
    ctx: Arc<dyn SourceReaderContext>,
    metrics: SourceReaderMetrics,
    splits: Vec<SplitState>,
    /// The split that goes first in the next poll (turn taking).
    cursor: usize,
    no_more_splits: bool,
    split_requested: bool,
    batch_size: usize,
    budget: u64,
    waker: Option<Waker>,
}

impl<T: Send + 'static> SequenceReader<T> {
    /// A reader without splits that emits `generator(n)` and reports to `ctx`.
    pub fn new(generator: Generator<T>, ctx: Arc<dyn SourceReaderContext>) -> Self {
        Self::with_emit(Emit::PerNumber(generator), ctx)
    }

    /// A reader without splits that emits one record `generator(run)` per run of numbers of
    /// one split: at most the [batch size](Self::with_batch_size) per poll. Its state, metrics
    /// (`numRecordsIn` counts numbers) and split handling are those of [`new`](Self::new).
    ///
    /// The runtime counts one `numRecordsOut` per record; this reader adds the other numbers
    /// of each run to the same counter of its context's metric group, so the source operator's
    /// `numRecordsOut` counts numbers (rows), as it does for [`new`](Self::new).
    pub fn per_run(generator: RunGenerator<T>, ctx: Arc<dyn SourceReaderContext>) -> Self {
        let records_out = ctx.metric_group().counter(NUM_RECORDS_OUT);
        Self::with_emit(
            Emit::PerRun {
                generator,
                scratch: Vec::new(),
                records_out,
            },
            ctx,
        )
    }

    fn with_emit(generator: Emit<T>, ctx: Arc<dyn SourceReaderContext>) -> Self {
        let metrics = SourceReaderMetrics::new(&*ctx.metric_group());
        SequenceReader {
            generator,
            ctx,
            metrics,
            splits: Vec::new(),
            cursor: 0,
            no_more_splits: false,
            split_requested: false,
            batch_size: DEFAULT_BATCH_SIZE,
            budget: u64::MAX,
            waker: None,
        }
    }

    /// Sets the maximum number of records per `poll_next` (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }
}

impl<T> SequenceReader<T> {
    /// The current splits with their progress, paused ones included.
    pub fn splits(&self) -> impl Iterator<Item = &NumberSequenceSplit> {
        self.splits.iter().map(|s| &s.split)
    }

    /// The ids of the paused splits.
    pub fn paused_splits(&self) -> impl Iterator<Item = &str> {
        self.splits
            .iter()
            .filter(|s| s.paused)
            .map(|s| s.split.id.as_str())
    }

    /// Whether a poll may make progress: an active split, or the end of input to report.
    fn is_ready(&self) -> bool {
        self.splits.iter().any(|s| !s.paused) || (self.splits.is_empty() && self.no_more_splits)
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn request_split_if_idle(&mut self) -> Result<()> {
        if self.splits.is_empty() && !self.no_more_splits && !self.split_requested {
            self.split_requested = true;
            self.ctx.send_split_request()?;
        }
        Ok(())
    }

    fn update_pending(&self) {
        let pending = self
            .splits
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.split.remaining()));
        self.metrics
            .set_pending_records(i64::try_from(pending).unwrap_or(i64::MAX));
    }
}

impl<T> fmt::Debug for SequenceReader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SequenceReader")
            .field("subtask", &self.ctx.subtask_index())
            .field(
                "splits",
                &self.splits.iter().map(|s| &s.split).collect::<Vec<_>>(),
            )
            .field("paused", &self.paused_splits().collect::<Vec<_>>())
            .field("no_more_splits", &self.no_more_splits)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> SourceReader for SequenceReader<T> {
    type Output = T;
    type Split = NumberSequenceSplit;

    fn start(&mut self) -> Result<()> {
        self.request_split_if_idle()
    }

    fn poll_next<O: ReaderOutput<T>>(&mut self, output: &mut O) -> Result<InputStatus> {
        let limit = u64::try_from(self.batch_size)
            .unwrap_or(u64::MAX)
            .min(self.budget);
        let mut left = limit;
        let count = self.splits.len();
        for offset in 0..count {
            if left == 0 {
                break;
            }
            let Some(state) = self.splits.get_mut((self.cursor + offset) % count) else {
                break;
            };
            if state.paused || state.split.is_exhausted() {
                continue;
            }
            let split = &mut state.split;
            let out = output.create_split_output(&split.id);
            let mut next = split.next;
            match &mut self.generator {
                Emit::PerNumber(generator) => {
                    while left > 0 && next < split.end {
                        output.collect_for_split(out, generator(next), None);
                        next = split.successor(next);
                        left -= 1;
                    }
                }
                Emit::PerRun {
                    generator,
                    scratch,
                    records_out,
                } => {
                    scratch.clear();
                    while left > 0 && next < split.end {
                        scratch.push(next);
                        next = split.successor(next);
                        left -= 1;
                    }
                    if let Some(extra) = (scratch.len() as u64).checked_sub(1) {
                        output.collect_for_split(out, generator(scratch), None);
                        records_out.add(extra);
                    }
                }
            }
            split.next = next;
        }
        let emitted = limit - left;
        if count > 0 {
            self.cursor = (self.cursor + 1) % count;
        }

        let before = self.splits.len();
        self.splits.retain(|state| {
            if state.split.is_exhausted() {
                let out = output.create_split_output(&state.split.id);
                output.release_split_output(out);
                false
            } else {
                true
            }
        });
        if self.splits.len() != before {
            self.cursor = 0;
            self.request_split_if_idle()?;
        }
        if emitted > 0 {
            self.metrics.add_records_in(emitted);
            self.update_pending();
            return Ok(InputStatus::MoreAvailable);
        }
        Ok(if self.splits.iter().any(|s| !s.paused) {
            InputStatus::MoreAvailable
        } else if self.splits.is_empty() && self.no_more_splits {
            InputStatus::EndOfInput
        } else {
            InputStatus::NothingAvailable
        })
    }

    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_ready() {
            return Poll::Ready(());
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<Vec<NumberSequenceSplit>> {
        Ok(self.splits.iter().map(|s| s.split.clone()).collect())
    }

    fn add_splits(&mut self, splits: Vec<NumberSequenceSplit>) -> Result<()> {
        for split in &splits {
            split.validate().map_err(ConnectorError::Contract)?;
            if self.splits.iter().any(|s| s.split.id == split.id) {
                return Err(ConnectorError::Contract(format!(
                    "split `{}` was assigned twice to datagen reader {}",
                    split.id,
                    self.ctx.subtask_index()
                )));
            }
        }
        if !splits.is_empty() {
            self.split_requested = false;
        }
        self.splits
            .extend(splits.into_iter().map(|split| SplitState {
                split,
                paused: false,
            }));
        self.update_pending();
        self.wake();
        Ok(())
    }

    fn notify_no_more_splits(&mut self) {
        self.no_more_splits = true;
        self.wake();
    }

    fn as_pausable(&mut self) -> Option<&mut dyn PausableSourceReader> {
        Some(self)
    }
}

impl<T: Send + 'static> PausableSourceReader for SequenceReader<T> {
    fn pause_or_resume_splits(&mut self, pause: &[String], resume: &[String]) -> Result<()> {
        let mut resumed = false;
        for state in &mut self.splits {
            if pause.contains(&state.split.id) {
                state.paused = true;
            } else if resume.contains(&state.split.id) && state.paused {
                state.paused = false;
                resumed = true;
            }
        }
        if resumed {
            self.wake();
        }
        Ok(())
    }
}

impl<T> PollBudget for SequenceReader<T> {
    fn set_poll_budget(&mut self, max_records: u64) {
        self.budget = max_records;
    }
}
