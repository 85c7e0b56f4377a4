//! A reference source over a fake in-memory log with named partitions (a stand-in for Kafka
//! topics, files or indices), bounded or continuous.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::SourceReaderMetrics;
use weir_connector_api::source::{
    Boundedness, EnumeratorContext, EnumeratorContextOf, EnumeratorState, InputStatus,
    ReaderOutput, Source, SourceReader, SourceReaderContext, SourceSplit, SplitEnumerator,
    SplitsAssignment,
};
use weir_connector_api::state::{
    StateError, StateReader, StateWriter, VecSerializer, VersionedSerializer,
};
use weir_connector_datagen::source::PollBudget;
use weir_connector_datagen::{RateLimitedSourceReader, RateLimiterStrategy};

use crate::context::{ContextError, SplitWriter};

#[derive(Debug)]
struct LogState<T> {
    partitions: BTreeMap<String, Vec<T>>,
    wakers: Vec<Waker>,
}

/// A **fake** external log, in memory: named partitions of records that readers read by offset.
/// Appending wakes the readers waiting for data.
#[derive(Debug)]
pub struct FakeLog<T> {
    state: Mutex<LogState<T>>,
}

impl<T> Default for FakeLog<T> {
    fn default() -> Self {
        FakeLog {
            state: Mutex::new(LogState {
                partitions: BTreeMap::new(),
                wakers: Vec::new(),
            }),
        }
    }
}

impl<T: Clone> FakeLog<T> {
    /// An empty log.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, LogState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates a partition (no-op if it exists).
    pub fn create_partition(&self, name: &str) {
        self.lock().partitions.entry(name.to_owned()).or_default();
    }

    /// Appends records to a partition and wakes waiting readers.
    pub fn append(&self, partition: &str, records: &[T]) -> std::result::Result<(), ContextError> {
        let wakers = {
            let mut s = self.lock();
            let Some(p) = s.partitions.get_mut(partition) else {
                return Err(ContextError::external(format!(
                    "no partition `{partition}` in the fake log"
                )));
            };
            p.extend_from_slice(records);
            std::mem::take(&mut s.wakers)
        };
        for w in wakers {
            w.wake();
        }
        Ok(())
    }

    /// Up to `max` records of `partition` from `offset` on.
    pub fn read(&self, partition: &str, offset: u64, max: usize) -> Vec<T> {
        let s = self.lock();
        let Some(p) = s.partitions.get(partition) else {
            return Vec::new();
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(p.len());
        let end = start.saturating_add(max).min(p.len());
        p.get(start..end).map(<[T]>::to_vec).unwrap_or_default()
    }

    /// The number of records in a partition, if it exists.
    pub fn len(&self, partition: &str) -> Option<u64> {
        self.lock()
            .partitions
            .get(partition)
            .map(|p| p.len() as u64)
    }

    /// The partitions whose names start with `prefix`, sorted.
    pub fn partitions(&self, prefix: &str) -> Vec<String> {
        self.lock()
            .partitions
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Removes the partitions whose names start with `prefix`.
    pub fn remove_partitions(&self, prefix: &str) {
        self.lock().partitions.retain(|k, _| !k.starts_with(prefix));
    }

    fn register(&self, waker: &Waker) {
        let mut s = self.lock();
        if !s.wakers.iter().any(|w| w.will_wake(waker)) {
            s.wakers.push(waker.clone());
        }
    }
}

/// Writes into one partition of a [`FakeLog`].
#[derive(Debug)]
pub struct FakeLogWriter<T> {
    log: Arc<FakeLog<T>>,
    partition: String,
}

impl<T: Clone> FakeLogWriter<T> {
    /// Creates `partition` and returns its writer.
    pub fn create(log: &Arc<FakeLog<T>>, partition: &str) -> Self {
        log.create_partition(partition);
        FakeLogWriter {
            log: Arc::clone(log),
            partition: partition.to_owned(),
        }
    }
}

#[async_trait]
impl<T: Clone + Send + Sync + 'static> SplitWriter<T> for FakeLogWriter<T> {
    async fn write(&mut self, records: &[T]) -> std::result::Result<(), ContextError> {
        self.log.append(&self.partition, records)
    }
}

/// A split of a [`FakeLogSource`]: one partition, the next offset to read, and for bounded
/// reads the offset to stop at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSplit {
    /// The partition.
    pub partition: String,
    /// Its index in discovery order (decides which reader owns it).
    pub index: u32,
    /// The next offset to read.
    pub next: u64,
    /// Where a bounded read stops (exclusive).
    pub stop: Option<u64>,
}

impl SourceSplit for LogSplit {
    fn split_id(&self) -> &str {
        &self.partition
    }
}

/// The serializer of [`LogSplit`], version 1: partition, index, next, stop.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSplitSerializer;

impl VersionedSerializer<LogSplit> for LogSplitSerializer {
    fn version(&self) -> u32 {
        1
    }

    fn serialize(&self, s: &LogSplit) -> std::result::Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_str(&s.partition)
            .put_u32(s.index)
            .put_u64(s.next)
            .put_opt_u64(s.stop);
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> std::result::Result<LogSplit, StateError> {
        if version != 1 {
            return Err(StateError::unknown_version("fake log split", version, &[1]));
        }
        let mut r = StateReader::new(bytes);
        let split = LogSplit {
            partition: r.get_str()?.to_owned(),
            index: r.get_u32()?,
            next: r.get_u64()?,
            stop: r.get_opt_u64()?,
        };
        r.finish()?;
        Ok(split)
    }
}

/// The reference source over a [`FakeLog`]: every partition whose name starts with a prefix is
/// a split. Bounded reads stop at the partition lengths seen when the source first starts;
/// continuous reads follow the partitions forever. Splits are owned by reader `index % p`.
pub struct FakeLogSource<T> {
    log: Arc<FakeLog<T>>,
    prefix: String,
    boundedness: Boundedness,
    rate: RateLimiterStrategy,
}

impl<T: Clone + Send + Sync + 'static> FakeLogSource<T> {
    /// A source over the partitions of `log` starting with `prefix`.
    pub fn new(log: Arc<FakeLog<T>>, prefix: &str, boundedness: Boundedness) -> Self {
        FakeLogSource {
            log,
            prefix: prefix.to_owned(),
            boundedness,
            rate: RateLimiterStrategy::no_op(),
        }
    }

    /// Limits the rate (records per second over all readers).
    pub fn with_rate(mut self, records_per_second: Option<f64>) -> Self {
        self.rate = records_per_second.map_or(RateLimiterStrategy::no_op(), |r| {
            RateLimiterStrategy::per_second(r)
        });
        self
    }
}

impl<T: Clone + Send + Sync + 'static> Source for FakeLogSource<T> {
    type Output = T;
    type Split = LogSplit;
    type Reader = RateLimitedSourceReader<FakeLogReader<T>>;
    type Enumerator = FakeLogEnumerator<T>;

    fn boundedness(&self) -> Boundedness {
        self.boundedness
    }

    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<Self::Reader> {
        let limiter = self
            .rate
            .create_rate_limiter(ctx.subtask_index(), ctx.parallelism())?;
        let reader = FakeLogReader {
            log: Arc::clone(&self.log),
            metrics: SourceReaderMetrics::new(&*ctx.metric_group()),
            splits: Vec::new(),
            no_more: false,
            budget: u64::MAX,
            waker: None,
        };
        Ok(RateLimitedSourceReader::with_poll_budget(reader, limiter))
    }

    fn create_enumerator(&self, ctx: EnumeratorContextOf<Self>) -> Result<FakeLogEnumerator<T>> {
        let bounded = self.boundedness == Boundedness::Bounded;
        let pending = self
            .log
            .partitions(&self.prefix)
            .into_iter()
            .enumerate()
            .map(|(i, partition)| {
                let stop = if bounded {
                    self.log.len(&partition)
                } else {
                    None
                };
                LogSplit {
                    partition,
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    next: 0,
                    stop,
                }
            })
            .collect();
        Ok(FakeLogEnumerator {
            pending,
            bounded,
            ctx,
            _log: std::marker::PhantomData,
        })
    }

    fn restore_enumerator(
        &self,
        ctx: EnumeratorContextOf<Self>,
        state: EnumeratorState<Self>,
    ) -> Result<FakeLogEnumerator<T>> {
        Ok(FakeLogEnumerator {
            pending: state,
            bounded: self.boundedness == Boundedness::Bounded,
            ctx,
            _log: std::marker::PhantomData,
        })
    }

    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<LogSplit>> {
        Arc::new(LogSplitSerializer)
    }

    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<Vec<LogSplit>>> {
        Arc::new(VecSerializer::new(LogSplitSerializer))
    }
}

/// The enumerator of [`FakeLogSource`]: assigns each reader its splits when it registers (and
/// for bounded reads then says there are no more).
pub struct FakeLogEnumerator<T> {
    pending: Vec<LogSplit>,
    bounded: bool,
    ctx: EnumeratorContext<LogSplit, Infallible>,
    _log: std::marker::PhantomData<fn() -> T>,
}

impl<T: Send + 'static> SplitEnumerator for FakeLogEnumerator<T> {
    type Split = LogSplit;
    type State = Vec<LogSplit>;
    type AsyncResult = Infallible;

    fn handle_split_request(&mut self, _subtask: usize) -> Result<()> {
        Ok(())
    }

    fn add_splits_back(&mut self, splits: Vec<LogSplit>, _subtask: usize) -> Result<()> {
        self.pending.extend(splits);
        Ok(())
    }

    fn add_reader(&mut self, subtask: usize) -> Result<()> {
        let p = self.ctx.current_parallelism().max(1);
        let (mine, rest): (Vec<LogSplit>, Vec<LogSplit>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|s| s.index as usize % p == subtask);
        self.pending = rest;
        if !mine.is_empty() {
            let mut assignment = SplitsAssignment::new();
            for split in mine.iter().cloned() {
                assignment.add(subtask, split);
            }
            if let Err(e) = self.ctx.assign_splits(assignment) {
                self.pending.extend(mine);
                return Err(e);
            }
        }
        if self.bounded {
            self.ctx.signal_no_more_splits(subtask)?;
        }
        Ok(())
    }

    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<Vec<LogSplit>> {
        Ok(self.pending.clone())
    }

    fn handle_async_result(&mut self, result: Infallible) -> Result<()> {
        match result {}
    }
}

/// The reader of [`FakeLogSource`].
pub struct FakeLogReader<T> {
    log: Arc<FakeLog<T>>,
    metrics: SourceReaderMetrics,
    splits: Vec<LogSplit>,
    no_more: bool,
    budget: u64,
    waker: Option<Waker>,
}

impl<T: Clone> FakeLogReader<T> {
    fn has_data(&self) -> bool {
        self.splits.iter().any(|s| {
            let end = self.log.len(&s.partition).unwrap_or(0);
            s.next < s.stop.map_or(end, |stop| stop.min(end))
        })
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

const BATCH: usize = 256;

#[async_trait]
impl<T: Clone + Send + Sync + 'static> SourceReader for FakeLogReader<T> {
    type Output = T;
    type Split = LogSplit;

    fn poll_next<O: ReaderOutput<T>>(&mut self, output: &mut O) -> Result<InputStatus> {
        let mut left = self.budget.min(BATCH as u64);
        let mut emitted = 0u64;
        for split in &mut self.splits {
            if left == 0 {
                break;
            }
            let max = split
                .stop
                .map_or(left, |stop| stop.saturating_sub(split.next).min(left));
            let records = self.log.read(
                &split.partition,
                split.next,
                usize::try_from(max).unwrap_or(BATCH),
            );
            if records.is_empty() {
                continue;
            }
            let out = output.create_split_output(&split.partition);
            let n = records.len() as u64;
            for r in records {
                output.collect_for_split(out, r, None);
            }
            split.next += n;
            left -= n;
            emitted += n;
        }
        self.splits.retain(|s| {
            let done = s.stop.is_some_and(|stop| s.next >= stop);
            if done {
                let out = output.create_split_output(&s.partition);
                output.release_split_output(out);
            }
            !done
        });
        if emitted > 0 {
            self.metrics.add_records_in(emitted);
            return Ok(InputStatus::MoreAvailable);
        }
        Ok(if self.splits.is_empty() && self.no_more {
            InputStatus::EndOfInput
        } else if self.has_data() {
            InputStatus::MoreAvailable
        } else {
            InputStatus::NothingAvailable
        })
    }

    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.waker = Some(cx.waker().clone());
        // Register before looking, so an append in between still wakes us.
        self.log.register(cx.waker());
        if (self.splits.is_empty() && self.no_more) || self.has_data() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<Vec<LogSplit>> {
        Ok(self.splits.clone())
    }

    fn add_splits(&mut self, splits: Vec<LogSplit>) -> Result<()> {
        for s in &splits {
            if self.splits.iter().any(|x| x.partition == s.partition) {
                return Err(ConnectorError::Contract(format!(
                    "split `{}` assigned twice",
                    s.partition
                )));
            }
        }
        self.splits.extend(splits);
        self.wake();
        Ok(())
    }

    fn notify_no_more_splits(&mut self) {
        self.no_more = true;
        self.wake();
    }
}

impl<T> PollBudget for FakeLogReader<T> {
    fn set_poll_budget(&mut self, max_records: u64) {
        self.budget = max_records;
    }
}
