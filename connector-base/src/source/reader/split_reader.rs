//! The fetch side of [`super::SourceReaderBase`]: split readers, their batches, and how records
//! become output.

use std::collections::VecDeque;

use weir_connector_api::error::Result;
use weir_connector_api::source::{SourceOutput, SourceSplit};

/// A batch of fetched records grouped by split, plus the splits that finished with it.
///
/// The base reads it split by split: [`next_split`](Self::next_split), then
/// [`next_record_from_split`](Self::next_record_from_split) until `None`, and after all records
/// [`finished_splits`](Self::finished_splits).
pub trait RecordsWithSplitIds: Send + 'static {
    /// The fetched element type (e.g. a raw Kafka message).
    type Record: Send + 'static;
    /// Moves to the next split that has records and returns its id.
    fn next_split(&mut self) -> Option<String>;
    /// The next record of the current split.
    fn next_record_from_split(&mut self) -> Option<Self::Record>;
    /// The splits that ended with this batch (all their records come before).
    fn finished_splits(&self) -> &[String];
}

/// A ready-made [`RecordsWithSplitIds`] built from vectors.
///
/// ```
/// use weir_connector_base::source::reader::{RecordsBySplits, RecordsWithSplitIds};
/// let mut batch = RecordsBySplits::new();
/// batch.add_all("a", vec![1, 2]);
/// batch.add_finished_split("a");
/// assert_eq!(batch.next_split().as_deref(), Some("a"));
/// assert_eq!(batch.next_record_from_split(), Some(1));
/// assert_eq!(batch.next_record_from_split(), Some(2));
/// assert_eq!(batch.next_record_from_split(), None);
/// assert_eq!(batch.next_split(), None);
/// assert_eq!(batch.finished_splits(), ["a".to_string()]);
/// ```
#[derive(Debug)]
pub struct RecordsBySplits<E> {
    splits: VecDeque<(String, std::vec::IntoIter<E>)>,
    current: Option<std::vec::IntoIter<E>>,
    finished: Vec<String>,
}

impl<E> Default for RecordsBySplits<E> {
    fn default() -> Self {
        RecordsBySplits {
            splits: VecDeque::new(),
            current: None,
            finished: Vec::new(),
        }
    }
}

impl<E> RecordsBySplits<E> {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the records of a split.
    pub fn add_all(&mut self, split_id: impl Into<String>, records: Vec<E>) {
        if !records.is_empty() {
            self.splits
                .push_back((split_id.into(), records.into_iter()));
        }
    }

    /// Marks a split finished after its records in this batch.
    pub fn add_finished_split(&mut self, split_id: impl Into<String>) {
        self.finished.push(split_id.into());
    }

    /// Whether the batch carries neither records nor finished splits.
    pub fn is_empty(&self) -> bool {
        self.splits.is_empty() && self.current.is_none() && self.finished.is_empty()
    }
}

impl<E: Send + 'static> RecordsWithSplitIds for RecordsBySplits<E> {
    type Record = E;

    fn next_split(&mut self) -> Option<String> {
        let (id, records) = self.splits.pop_front()?;
        self.current = Some(records);
        Some(id)
    }

    fn next_record_from_split(&mut self) -> Option<E> {
        self.current.as_mut()?.next()
    }

    fn finished_splits(&self) -> &[String] {
        &self.finished
    }
}

/// A change of the splits a [`SplitReader`] reads.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitsChange<S> {
    /// Start reading these splits.
    Add(Vec<S>),
    /// Stop reading these splits (by id), e.g. because a record ended them (FLIP-208).
    Remove(Vec<String>),
}

/// Reads records of splits from the external system, on a fetcher task of its own.
///
/// **Waking up.** Flink's `wakeUp()` interrupts a blocking fetch when splits change. Here the
/// fetcher simply drops the `fetch` future; `fetch` must therefore be *cancel-safe*: dropping it
/// at an `.await` must lose no records (keep fetched-but-unreturned data in `self`).
/// `fetch` should wait (asynchronously) until records arrive or a short timeout passes, rather than
/// return empty batches in a tight loop.
///
/// ```
/// use weir_connector_base::source::reader::{RecordsBySplits, SplitReader, SplitsChange};
/// use weir_connector_api::error::Result;
/// use weir_connector_api::source::SourceSplit;
///
/// #[derive(Debug, Clone)]
/// struct Numbers { id: String, next: u64, end: u64 }
/// impl SourceSplit for Numbers { fn split_id(&self) -> &str { &self.id } }
///
/// #[derive(Default)]
/// struct NumbersReader { splits: Vec<Numbers> }
///
/// #[async_trait::async_trait]
/// impl SplitReader for NumbersReader {
///     type Split = Numbers;
///     type Records = RecordsBySplits<u64>;
///     async fn fetch(&mut self) -> Result<RecordsBySplits<u64>> {
///         let mut batch = RecordsBySplits::new();
///         for split in &mut self.splits {
///             let end = split.end.min(split.next + 100);
///             batch.add_all(split.id.clone(), (split.next..end).collect());
///             split.next = end;
///             if split.next == split.end { batch.add_finished_split(split.id.clone()); }
///         }
///         self.splits.retain(|s| s.next < s.end);
///         Ok(batch)
///     }
///     fn handle_splits_change(&mut self, change: SplitsChange<Numbers>) -> Result<()> {
///         match change {
///             SplitsChange::Add(new) => self.splits.extend(new),
///             SplitsChange::Remove(ids) => self.splits.retain(|s| !ids.contains(&s.id)),
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait SplitReader: Send + 'static {
    /// The split type.
    type Split: SourceSplit;
    /// The batch type `fetch` returns.
    type Records: RecordsWithSplitIds;

    /// Fetches the next batch. Cancel-safe (see the trait docs).
    async fn fetch(&mut self) -> Result<Self::Records>;

    /// Adds or removes splits. Must not block. Removed or invalid splits may be reported in a
    /// later batch's finished splits.
    fn handle_splits_change(&mut self, change: SplitsChange<Self::Split>) -> Result<()>;

    /// Releases resources; called once when the fetcher stops.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The split pause/resume capability of a [`SplitReader`] (FLIP-217). Declare it by building the
/// base reader with [`super::SourceReaderBase::with_split_pausing`].
pub trait PausableSplitReader: SplitReader {
    /// Stops fetching the splits in `pause` and resumes those in `resume` (by id). Ids of splits
    /// this reader does not own are ignored.
    fn pause_or_resume_splits(&mut self, pause: &[String], resume: &[String]) -> Result<()>;
}

/// The mutable reading progress of a split, updated as records are emitted, and turned back into
/// a split for checkpoints. Every split is its own state (blanket implementation); connectors
/// with cheaper mutable state implement this for a separate type.
pub trait SplitState<S>: Send + 'static {
    /// The initial state of a newly added split.
    fn from_split(split: S) -> Self;
    /// The split with its current progress.
    fn to_split(&self) -> S;
}

impl<S: SourceSplit> SplitState<S> for S {
    fn from_split(split: S) -> Self {
        split
    }
    fn to_split(&self) -> S {
        self.clone()
    }
}

/// Turns a fetched element into output records and advances the split's state.
///
/// ```
/// use weir_connector_base::source::reader::RecordEmitter;
/// use weir_connector_api::error::Result;
/// use weir_connector_api::source::{SourceOutput, SourceSplit};
///
/// #[derive(Debug, Clone)]
/// struct Offsets { id: String, next: u64 }
/// impl SourceSplit for Offsets { fn split_id(&self) -> &str { &self.id } }
///
/// /// Elements are (offset, payload, timestamp).
/// struct Emitter;
/// impl RecordEmitter<(u64, String, i64), String, Offsets> for Emitter {
///     fn emit_record<O: SourceOutput<String>>(
///         &mut self, (offset, payload, ts): (u64, String, i64), output: &mut O, state: &mut Offsets,
///     ) -> Result<()> {
///         output.collect_with_timestamp(payload, ts);
///         state.next = offset + 1;
///         Ok(())
///     }
/// }
/// ```
pub trait RecordEmitter<E, T, St>: Send + 'static {
    /// Emits the records for `element` (zero or more) and updates `split_state` to point past it.
    /// A malformed element is an `Err` (or skipped and counted, by the connector's policy).
    fn emit_record<O: SourceOutput<T>>(
        &mut self,
        element: E,
        output: &mut O,
        split_state: &mut St,
    ) -> Result<()>;
}

/// Ends a split at a record (FLIP-208): the record that satisfies it is not emitted, and the
/// split finishes.
///
/// ```
/// use weir_connector_base::source::reader::RecordEvaluator;
/// let stop_at_marker = |line: &String| line == "END";
/// assert!(stop_at_marker.is_end_of_stream(&"END".to_string()));
/// ```
pub trait RecordEvaluator<T>: Send + Sync + 'static {
    /// Whether `record` ends its split.
    fn is_end_of_stream(&self, record: &T) -> bool;
}

impl<T, F> RecordEvaluator<T> for F
where
    F: Fn(&T) -> bool + Send + Sync + 'static,
{
    fn is_end_of_stream(&self, record: &T) -> bool {
        self(record)
    }
}
