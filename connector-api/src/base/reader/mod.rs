//! `SourceReaderBase`: the reusable reader of Flink's connector-base.
//!
//! **Deprecated (API line 1.1):** moved to `weir_connector_base::source::reader`. This is a
//! frozen copy of the API 1.0 code, kept so 1.0 connectors build unchanged; it gets no fixes.
//! Its tests moved with the maintained copy.
//! A connector supplies a
//! [`SplitReader`] (async fetching), a [`RecordEmitter`] (element → records, advancing the split
//! state) and optionally a [`RecordEvaluator`]; the base runs fetchers on background tasks,
//! queues their batches (bounded: backpressure), tracks split state for checkpoints, surfaces
//! fetch errors on the reader, and reports end of input only when no more splits will come, every
//! split has finished and the queue is drained.
//!
//! ```
//! # #![allow(deprecated)]
//! use std::sync::Arc;
//! use weir_connector_api::base::reader::{RecordEmitter, RecordsBySplits, SourceReaderBase, SplitReader, SplitsChange};
//! use weir_connector_api::error::Result;
//! use weir_connector_api::source::{SourceOutput, SourceReaderContext, SourceSplit};
//!
//! #[derive(Debug, Clone)]
//! struct Lines { id: String, lines: Vec<String>, next: usize }
//! impl SourceSplit for Lines { fn split_id(&self) -> &str { &self.id } }
//!
//! #[derive(Default)]
//! struct LinesReader { splits: Vec<Lines> }
//! #[async_trait::async_trait]
//! impl SplitReader for LinesReader {
//!     type Split = Lines;
//!     type Records = RecordsBySplits<String>;
//!     async fn fetch(&mut self) -> Result<RecordsBySplits<String>> {
//!         let mut batch = RecordsBySplits::new();
//!         for split in self.splits.drain(..) {
//!             batch.add_all(split.id.clone(), split.lines[split.next..].to_vec());
//!             batch.add_finished_split(split.id);
//!         }
//!         Ok(batch)
//!     }
//!     fn handle_splits_change(&mut self, change: SplitsChange<Lines>) -> Result<()> {
//!         if let SplitsChange::Add(splits) = change { self.splits.extend(splits); }
//!         Ok(())
//!     }
//! }
//!
//! struct Emit;
//! impl RecordEmitter<String, String, Lines> for Emit {
//!     fn emit_record<O: SourceOutput<String>>(&mut self, line: String, out: &mut O, state: &mut Lines) -> Result<()> {
//!         out.collect(line);
//!         state.next += 1;
//!         Ok(())
//!     }
//! }
//!
//! fn make_reader(ctx: Arc<dyn SourceReaderContext>) -> SourceReaderBase<LinesReader, Emit, Lines, String> {
//!     SourceReaderBase::single_fetcher(ctx, LinesReader::default(), Emit)
//!         .with_record_evaluator(|line: &String| line == "EOF")
//! }
//! ```

mod fetcher;
mod split_reader;

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::StreamExt;

pub use split_reader::{
    PausableSplitReader, RecordEmitter, RecordEvaluator, RecordsBySplits, RecordsWithSplitIds,
    SplitReader, SplitState, SplitsChange,
};

use self::fetcher::{FetchEvent, FetcherCommand, FetcherHandle, FetcherLifetime, PauseFn};
use crate::checkpoint::CheckpointId;
use crate::error::{ConnectorError, Result};
use crate::metrics::{Counter, NUM_RECORDS_IN};
use crate::source::{
    InputStatus, PausableSourceReader, ReaderOutput, SourceOutput, SourceReader,
    SourceReaderContext, SourceSplit, SplitOutput, SplitOutputId,
};
use crate::watermark::Watermark;

/// The default number of batches the element queue holds (Flink:
/// `source.reader.element.queue.capacity`).
pub const DEFAULT_ELEMENT_QUEUE_CAPACITY: usize = 2;
/// The default maximum number of elements emitted by one `poll_next` call, so checkpoints and
/// events are never delayed by a huge batch.
pub const DEFAULT_MAX_RECORDS_PER_POLL: usize = 4096;

type SplitOf<SR> = <SR as SplitReader>::Split;
type ElementOf<SR> = <<SR as SplitReader>::Records as RecordsWithSplitIds>::Record;
type FinishedHook<St> = Box<dyn FnMut(BTreeMap<String, St>) -> Result<()> + Send>;
type ReaderFactory<SR> = Box<dyn FnMut() -> Result<SR> + Send>;

/// How split readers are mapped to fetcher tasks.
enum FetcherMode<SR: SplitReader> {
    /// One fetcher reads every split (Kafka, files). The reader is created up front.
    Single {
        reader: Option<SR>,
        handle: Option<FetcherHandle<SplitOf<SR>>>,
    },
    /// One fetcher, with its own reader, per split.
    PerSplit {
        factory: ReaderFactory<SR>,
        handles: HashMap<String, FetcherHandle<SplitOf<SR>>>,
    },
}

struct SplitEntry<St> {
    state: St,
    output: Option<SplitOutputId>,
}

struct CurrentBatch<R> {
    records: R,
    split: Option<String>,
}

/// The reusable source reader; see the [module docs](self).
pub struct SourceReaderBase<SR: SplitReader, Em, St, T> {
    ctx: Arc<dyn SourceReaderContext>,
    mode: FetcherMode<SR>,
    emitter: Em,
    evaluator: Option<Box<dyn RecordEvaluator<T>>>,
    on_split_finished: Option<FinishedHook<St>>,
    pause: Option<PauseFn<SR>>,
    queue_tx: mpsc::Sender<FetchEvent<SR::Records>>,
    queue_rx: Option<mpsc::Receiver<FetchEvent<SR::Records>>>,
    stashed: Option<FetchEvent<SR::Records>>,
    current: Option<CurrentBatch<SR::Records>>,
    splits: HashMap<String, SplitEntry<St>>,
    no_more_splits: bool,
    max_records_per_poll: usize,
    num_records_in: Counter,
    _output: PhantomData<fn() -> T>,
}

impl<SR, Em, St, T> SourceReaderBase<SR, Em, St, T>
where
    SR: SplitReader,
    Em: RecordEmitter<ElementOf<SR>, T, St>,
    St: SplitState<SplitOf<SR>>,
    T: Send + 'static,
{
    fn new(ctx: Arc<dyn SourceReaderContext>, mode: FetcherMode<SR>, emitter: Em) -> Self {
        let (queue_tx, queue_rx) = mpsc::channel(DEFAULT_ELEMENT_QUEUE_CAPACITY);
        let num_records_in = ctx.metric_group().counter(NUM_RECORDS_IN);
        SourceReaderBase {
            ctx,
            mode,
            emitter,
            evaluator: None,
            on_split_finished: None,
            pause: None,
            queue_tx,
            queue_rx: Some(queue_rx),
            stashed: None,
            current: None,
            splits: HashMap::new(),
            no_more_splits: false,
            max_records_per_poll: DEFAULT_MAX_RECORDS_PER_POLL,
            num_records_in,
            _output: PhantomData,
        }
    }

    /// A reader whose splits are all read by `reader` on one fetcher task.
    pub fn single_fetcher(ctx: Arc<dyn SourceReaderContext>, reader: SR, emitter: Em) -> Self {
        Self::new(
            ctx,
            FetcherMode::Single {
                reader: Some(reader),
                handle: None,
            },
            emitter,
        )
    }

    /// A reader that starts one fetcher task, with a reader from `factory`, per split.
    pub fn fetcher_per_split(
        ctx: Arc<dyn SourceReaderContext>,
        factory: impl FnMut() -> Result<SR> + Send + 'static,
        emitter: Em,
    ) -> Self {
        Self::new(
            ctx,
            FetcherMode::PerSplit {
                factory: Box::new(factory),
                handles: HashMap::new(),
            },
            emitter,
        )
    }

    /// Ends a split at the first record `evaluator` accepts (FLIP-208); that record is dropped.
    pub fn with_record_evaluator(mut self, evaluator: impl RecordEvaluator<T>) -> Self {
        self.evaluator = Some(Box::new(evaluator));
        self
    }

    /// Called with the final states of splits when they finish (e.g. to clean up offsets).
    pub fn with_split_finished_hook(
        mut self,
        hook: impl FnMut(BTreeMap<String, St>) -> Result<()> + Send + 'static,
    ) -> Self {
        self.on_split_finished = Some(Box::new(hook));
        self
    }

    /// How many batches fetchers may queue ahead of the reader (at least 1).
    pub fn with_element_queue_capacity(mut self, capacity: usize) -> Self {
        // The queue is recreated: only valid before any split was added.
        if self.splits.is_empty() {
            let (tx, rx) = mpsc::channel(capacity.max(1));
            self.queue_tx = tx;
            self.queue_rx = Some(rx);
        }
        self
    }

    /// The most elements one `poll_next` emits before returning (at least 1).
    pub fn with_max_records_per_poll(mut self, max: usize) -> Self {
        self.max_records_per_poll = max.max(1);
        self
    }

    /// The splits currently assigned and unfinished, by id.
    pub fn assigned_splits(&self) -> impl Iterator<Item = &str> {
        self.splits.keys().map(String::as_str)
    }

    fn spawn_fetcher(
        &self,
        reader: SR,
        lifetime: FetcherLifetime,
        name: &str,
    ) -> FetcherHandle<SplitOf<SR>> {
        let (handle, task) = fetcher::fetcher(reader, self.pause, self.queue_tx.clone(), lifetime);
        self.ctx.spawn(name, Box::pin(task));
        handle
    }

    fn next_event(&mut self) -> Option<FetchEvent<SR::Records>> {
        if let Some(event) = self.stashed.take() {
            return Some(event);
        }
        self.queue_rx.as_mut()?.try_recv().ok()
    }

    fn idle_status(&self) -> InputStatus {
        if self.no_more_splits && self.splits.is_empty() {
            InputStatus::EndOfInput
        } else {
            InputStatus::NothingAvailable
        }
    }

    /// Stops reading `ids` (ended by the evaluator) and forgets their state.
    fn end_splits<O: ReaderOutput<T>>(&mut self, ids: &[String], output: &mut O) -> Result<()> {
        let mut finished = BTreeMap::new();
        for id in ids {
            if let Some(entry) = self.splits.remove(id) {
                if let Some(out) = entry.output {
                    output.release_split_output(out);
                }
                finished.insert(id.clone(), entry.state);
            }
        }
        if finished.is_empty() {
            return Ok(());
        }
        if let Some(hook) = self.on_split_finished.as_mut() {
            hook(finished)?;
        }
        Ok(())
    }

    fn remove_from_fetchers(&mut self, ids: Vec<String>) {
        match &mut self.mode {
            FetcherMode::Single { handle, .. } => {
                if let Some(h) = handle {
                    h.send(FetcherCommand::Change(SplitsChange::Remove(ids)));
                }
            }
            FetcherMode::PerSplit { handles, .. } => {
                for id in ids {
                    if let Some(h) = handles.remove(&id) {
                        h.send(FetcherCommand::Shutdown);
                    }
                }
            }
        }
    }
}

impl<SR, Em, St, T> SourceReaderBase<SR, Em, St, T>
where
    SR: PausableSplitReader,
    Em: RecordEmitter<ElementOf<SR>, T, St>,
    St: SplitState<SplitOf<SR>>,
    T: Send + 'static,
{
    /// Declares the split pause/resume capability of the split reader (FLIP-217), so split-level
    /// watermark alignment can pause individual splits.
    pub fn with_split_pausing(mut self) -> Self {
        self.pause = Some(<SR as PausableSplitReader>::pause_or_resume_splits);
        self
    }
}

/// Drops records the evaluator marks as end of split, and counts what passes.
struct EvaluatingOutput<'a, 'o, O: ?Sized, T: 'static> {
    inner: SplitOutput<'o, O>,
    evaluator: Option<&'a dyn RecordEvaluator<T>>,
    ended: bool,
    emitted: u64,
}

impl<T: 'static, O: ReaderOutput<T> + ?Sized> EvaluatingOutput<'_, '_, O, T> {
    fn admit(&mut self, record: &T) -> bool {
        if self.ended {
            return false;
        }
        if let Some(evaluator) = self.evaluator {
            if evaluator.is_end_of_stream(record) {
                self.ended = true;
                return false;
            }
        }
        self.emitted += 1;
        true
    }
}

impl<T: 'static, O: ReaderOutput<T> + ?Sized> SourceOutput<T> for EvaluatingOutput<'_, '_, O, T> {
    fn collect(&mut self, record: T) {
        if self.admit(&record) {
            self.inner.collect(record);
        }
    }
    fn collect_with_timestamp(&mut self, record: T, timestamp: i64) {
        if self.admit(&record) {
            self.inner.collect_with_timestamp(record, timestamp);
        }
    }
    fn emit_watermark(&mut self, watermark: Watermark) {
        if !self.ended {
            self.inner.emit_watermark(watermark);
        }
    }
    fn mark_idle(&mut self) {
        SourceOutput::<T>::mark_idle(&mut self.inner);
    }
    fn mark_active(&mut self) {
        SourceOutput::<T>::mark_active(&mut self.inner);
    }
}

#[async_trait::async_trait]
impl<SR, Em, St, T> SourceReader for SourceReaderBase<SR, Em, St, T>
where
    SR: SplitReader,
    Em: RecordEmitter<ElementOf<SR>, T, St>,
    St: SplitState<SplitOf<SR>>,
    T: Send + 'static,
{
    type Output = T;
    type Split = SplitOf<SR>;

    fn start(&mut self) -> Result<()> {
        Ok(())
    }

    fn poll_next<O: ReaderOutput<T>>(&mut self, output: &mut O) -> Result<InputStatus> {
        let mut budget = self.max_records_per_poll;
        let mut emitted = 0_u64;
        let status = loop {
            let Some(current) = self.current.as_mut() else {
                match self.next_event() {
                    Some(FetchEvent::Records(records)) => {
                        self.current = Some(CurrentBatch {
                            records,
                            split: None,
                        });
                        continue;
                    }
                    Some(FetchEvent::Error(error)) => {
                        self.num_records_in.add(emitted);
                        return Err(error);
                    }
                    None => {
                        break if emitted > 0 {
                            InputStatus::MoreAvailable
                        } else {
                            self.idle_status()
                        };
                    }
                }
            };
            if budget == 0 {
                break InputStatus::MoreAvailable;
            }
            let split_id = match current.split.clone() {
                Some(id) => id,
                None => match current.records.next_split() {
                    Some(id) => {
                        current.split = Some(id.clone());
                        id
                    }
                    None => {
                        // Batch done: retire its finished splits.
                        let finished: Vec<String> = current.records.finished_splits().to_vec();
                        self.current = None;
                        self.end_splits(&finished, output)?;
                        continue;
                    }
                },
            };
            let Some(entry) = self.splits.get_mut(&split_id) else {
                // Records of a split that was removed meanwhile: skip them.
                while current.records.next_record_from_split().is_some() {}
                current.split = None;
                continue;
            };
            let split_output = *entry
                .output
                .get_or_insert_with(|| output.create_split_output(&split_id));
            let mut out = EvaluatingOutput {
                inner: SplitOutput::new(output, split_output),
                evaluator: self.evaluator.as_deref(),
                ended: false,
                emitted: 0,
            };
            let mut split_exhausted = false;
            while budget > 0 && !out.ended {
                match current.records.next_record_from_split() {
                    Some(element) => {
                        budget -= 1;
                        if let Err(error) =
                            self.emitter
                                .emit_record(element, &mut out, &mut entry.state)
                        {
                            self.num_records_in.add(emitted + out.emitted);
                            return Err(error);
                        }
                    }
                    None => {
                        split_exhausted = true;
                        break;
                    }
                }
            }
            emitted += out.emitted;
            let ended = out.ended;
            if split_exhausted || ended {
                current.split = None;
            }
            if ended {
                let ids = vec![split_id];
                self.end_splits(&ids, output)?;
                self.remove_from_fetchers(ids);
            }
        };
        self.num_records_in.add(emitted);
        Ok(status)
    }

    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.current.is_some() || self.stashed.is_some() {
            return Poll::Ready(());
        }
        if self.no_more_splits && self.splits.is_empty() {
            return Poll::Ready(());
        }
        let Some(rx) = self.queue_rx.as_mut() else {
            return Poll::Ready(()); // closed: poll_next reports the state
        };
        match rx.poll_next_unpin(cx) {
            Poll::Ready(Some(event)) => {
                self.stashed = Some(event);
                Poll::Ready(())
            }
            Poll::Ready(None) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    }

    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<Vec<Self::Split>> {
        let mut splits: Vec<Self::Split> =
            self.splits.values().map(|e| e.state.to_split()).collect();
        splits.sort_by(|a, b| a.split_id().cmp(b.split_id()));
        Ok(splits)
    }

    fn add_splits(&mut self, splits: Vec<Self::Split>) -> Result<()> {
        if splits.is_empty() {
            return Ok(());
        }
        for split in &splits {
            if self.splits.contains_key(split.split_id()) {
                return Err(ConnectorError::Contract(format!(
                    "split {} was added to subtask {} twice",
                    split.split_id(),
                    self.ctx.subtask_index()
                )));
            }
        }
        for split in &splits {
            self.splits.insert(
                split.split_id().to_owned(),
                SplitEntry {
                    state: St::from_split(split.clone()),
                    output: None,
                },
            );
        }
        let subtask = self.ctx.subtask_index();
        // Take the mode out so fetchers can be spawned while it is matched on.
        let mut mode = std::mem::replace(
            &mut self.mode,
            FetcherMode::Single {
                reader: None,
                handle: None,
            },
        );
        let result = match &mut mode {
            FetcherMode::Single { reader, handle } => {
                if handle.is_none() {
                    match reader.take() {
                        Some(r) => {
                            *handle = Some(self.spawn_fetcher(
                                r,
                                FetcherLifetime::UntilShutdown,
                                &format!("split-fetcher-{subtask}"),
                            ));
                        }
                        None => {
                            return Err(ConnectorError::Contract(
                                "the split fetcher of this reader has stopped".into(),
                            ))
                        }
                    }
                }
                if let Some(h) = handle {
                    h.send(FetcherCommand::Change(SplitsChange::Add(splits)));
                }
                Ok(())
            }
            FetcherMode::PerSplit { factory, handles } => {
                let mut result = Ok(());
                for split in splits {
                    let id = split.split_id().to_owned();
                    match factory() {
                        Ok(r) => {
                            let h = self.spawn_fetcher(
                                r,
                                FetcherLifetime::UntilSplitsFinished,
                                &format!("split-fetcher-{subtask}-{id}"),
                            );
                            h.send(FetcherCommand::Change(SplitsChange::Add(vec![split])));
                            handles.insert(id, h);
                        }
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                result
            }
        };
        self.mode = mode;
        result
    }

    fn notify_no_more_splits(&mut self) {
        self.no_more_splits = true;
    }

    fn as_pausable(&mut self) -> Option<&mut dyn PausableSourceReader> {
        if self.pause.is_some() {
            Some(self)
        } else {
            None
        }
    }

    async fn close(&mut self) -> Result<()> {
        // Drop the queue first so no fetcher stays blocked on a full queue.
        self.queue_rx = None;
        self.stashed = None;
        self.current = None;
        let handles: Vec<FetcherHandle<SplitOf<SR>>> = match &mut self.mode {
            FetcherMode::Single { handle, .. } => handle.take().into_iter().collect(),
            FetcherMode::PerSplit { handles, .. } => handles.drain().map(|(_, h)| h).collect(),
        };
        for h in &handles {
            h.send(FetcherCommand::Shutdown);
        }
        let mut first_error = None;
        for h in handles {
            // A fetcher that ended on its own has already dropped `done`.
            if let Ok(Err(e)) = h.done.await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl<SR, Em, St, T> PausableSourceReader for SourceReaderBase<SR, Em, St, T>
where
    SR: SplitReader,
    Em: RecordEmitter<ElementOf<SR>, T, St>,
    St: SplitState<SplitOf<SR>>,
    T: Send + 'static,
{
    fn pause_or_resume_splits(&mut self, pause: &[String], resume: &[String]) -> Result<()> {
        if self.pause.is_none() {
            return Err(ConnectorError::Contract(
                "this reader's split reader cannot pause splits".into(),
            ));
        }
        match &self.mode {
            FetcherMode::Single { handle, .. } => {
                if let Some(h) = handle {
                    h.send(FetcherCommand::PauseOrResume {
                        pause: pause.to_vec(),
                        resume: resume.to_vec(),
                    });
                }
            }
            FetcherMode::PerSplit { handles, .. } => {
                for (id, h) in handles {
                    let p: Vec<String> = pause.iter().filter(|s| *s == id).cloned().collect();
                    let r: Vec<String> = resume.iter().filter(|s| *s == id).cloned().collect();
                    if !p.is_empty() || !r.is_empty() {
                        h.send(FetcherCommand::PauseOrResume {
                            pause: p,
                            resume: r,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
