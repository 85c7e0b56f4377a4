//! The Kafka source's reader, by role:
//!
//! | file | role |
//! |---|---|
//! | `fetcher.rs` | a dedicated thread owning a `BaseConsumer` polls batches |
//! | `batch.rs` | [`KafkaBatch`]: each record's bytes copied into one buffer per batch, deserialized as the reader takes them (on the reader's task, so each record's allocation is made and freed on one thread) |
//! | `split_reader.rs` | [`KafkaSplitReader`]: the cancel-safe split reader `SourceReaderBase` drives |
//! | `emitter.rs` | [`KafkaRecordEmitter`]: the malformed-record policy, timestamps, offsets |
//! | `mod.rs` | [`KafkaSourceReader`] ([`KafkaReader`]): the base reader plus offset commits on completed checkpoints and an optional throttle |

mod batch;
mod emitter;
mod fetcher;
mod split_reader;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::{
    MetricGroup, NUM_BYTES_IN, NUM_RECORDS_IN_ERRORS, NUM_RECORDS_OUT,
};
use weir_connector_api::source::{InputStatus, ReaderOutput, SourceReader, SourceReaderContext};
use weir_connector_base::source::reader::{RecordEvaluator, SourceReaderBase};
use weir_connector_base::source::{CountingOutput, Forwarding, ForwardingSourceReader};

#[cfg(all(test, weir_api_1_1))]
pub(crate) use batch::TestRun;
#[cfg(weir_api_1_1)]
pub(crate) use batch::{record_bytes, RunRecords};
pub use batch::{KafkaBatch, KafkaElement};
pub(crate) use batch::{KafkaBatchDecoder, PerRecord};
pub use emitter::KafkaRecordEmitter;
pub(crate) use fetcher::FetcherSettings;
pub use split_reader::KafkaSplitReader;

use super::split::{split_id, KafkaPartitionSplit, TopicPartitionOffset};
use crate::MalformedRecordPolicy;

/// Metric: offset commits to the consumer group that failed (logged, never fatal).
pub const COMMITS_FAILED: &str = "commitsFailed";
/// Metric: offset commits to the consumer group that succeeded.
pub const COMMITS_SUCCEEDED: &str = "commitsSucceeded";

/// Commits offsets to the consumer group on a thread of its own, latest first (older pending
/// commits are skipped). For monitoring only: failures are logged and counted.
pub(crate) struct OffsetCommitter {
    tx: std_mpsc::Sender<Vec<TopicPartitionOffset>>,
    /// Resolves when the thread has sent every commit handed to it and ended.
    done: futures::channel::oneshot::Receiver<()>,
}

impl OffsetCommitter {
    pub(crate) fn start(
        wire: crate::protocol::WireClient,
        group: String,
        metrics: &Arc<dyn MetricGroup>,
    ) -> Result<Self> {
        let (tx, rx) = std_mpsc::channel::<Vec<TopicPartitionOffset>>();
        let (done_tx, done) = futures::channel::oneshot::channel();
        let failed = metrics.counter(COMMITS_FAILED);
        let succeeded = metrics.counter(COMMITS_SUCCEEDED);
        std::thread::Builder::new()
            .name("kafka-offset-commit".into())
            .spawn(move || {
                while let Ok(mut offsets) = rx.recv() {
                    while let Ok(newer) = rx.try_recv() {
                        offsets = newer;
                    }
                    match wire.commit_offsets(&group, &offsets) {
                        Ok(failures) if failures.is_empty() => succeeded.inc(),
                        Ok(failures) => {
                            failed.inc();
                            tracing::warn!(
                                group = %group,
                                "committing offsets to the consumer group failed for {} \
                                 partitions (monitoring only, reading goes on): {:?}",
                                failures.len(),
                                failures
                            );
                        }
                        Err(e) => {
                            failed.inc();
                            tracing::warn!(
                                group = %group,
                                "committing offsets to the consumer group failed (monitoring \
                                 only, reading goes on): {e}"
                            );
                        }
                    }
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| ConnectorError::fatal("starting the offset commit thread", e))?;
        Ok(OffsetCommitter { tx, done })
    }

    /// Lets the thread send what it was given (at most `timeout`), then ends it.
    async fn finish(self, timeout: Duration) {
        drop(self.tx);
        let _ = tokio::time::timeout(timeout, self.done).await;
    }
}

type Base<T> = SourceReaderBase<KafkaSplitReader<T>, KafkaRecordEmitter, KafkaPartitionSplit, T>;

/// The Kafka source's reader: `SourceReaderBase` over one fetcher thread, run as a
/// [`Forwarding`] wrapper of [`KafkaReader`].
pub type KafkaSourceReader<T> = Forwarding<KafkaReader<T>>;

/// What the Kafka source's reader adds to its `SourceReaderBase`: offset commits to the consumer
/// group when checkpoints complete (for monitoring only) and an optional pacing throttle. Every
/// method it does not override goes to the base reader.
pub struct KafkaReader<T: Send + 'static> {
    base: Base<T>,
    throttle: Option<Throttle>,
    committer: Option<OffsetCommitter>,
    to_commit: BTreeMap<CheckpointId, Vec<TopicPartitionOffset>>,
    /// Final offsets of splits that finished since the last snapshot: a finished split is in no
    /// snapshot any more, yet its end belongs in the group's committed offsets (as in Flink).
    finished: Arc<Mutex<Vec<TopicPartitionOffset>>>,
}

impl<T: Send + 'static> KafkaReader<T> {
    pub(crate) fn new(
        ctx: Arc<dyn SourceReaderContext>,
        split_reader: KafkaSplitReader<T>,
        policy: MalformedRecordPolicy,
        evaluator: Option<Arc<dyn RecordEvaluator<T>>>,
        committer: Option<OffsetCommitter>,
        rate: Option<f64>,
        per_poll: usize,
    ) -> Self {
        let metrics = ctx.metric_group();
        let emitter = KafkaRecordEmitter {
            policy,
            bytes_in: metrics.counter(NUM_BYTES_IN),
            errors: metrics.counter(NUM_RECORDS_IN_ERRORS),
            records_out: metrics.counter(NUM_RECORDS_OUT),
        };
        let mut base = SourceReaderBase::single_fetcher(ctx, split_reader, emitter)
            .with_split_pausing()
            .with_max_records_per_poll(match rate {
                Some(r) => ((r / 100.0) as usize).clamp(1, per_poll),
                None => per_poll,
            });
        if let Some(evaluator) = evaluator {
            base = base.with_record_evaluator(move |r: &T| evaluator.is_end_of_stream(r));
        }
        let finished = Arc::new(Mutex::new(Vec::new()));
        if committer.is_some() {
            let finished = Arc::clone(&finished);
            base = base.with_split_finished_hook(
                move |splits: BTreeMap<String, KafkaPartitionSplit>| {
                    finished
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend(splits.values().filter_map(KafkaPartitionSplit::position));
                    Ok(())
                },
            );
        }
        KafkaReader {
            finished,
            base,
            throttle: rate.map(|per_sec| Throttle {
                per_sec,
                tokens: 1.0,
                last: Instant::now(),
                sleep: None,
            }),
            committer,
            to_commit: BTreeMap::new(),
        }
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> ForwardingSourceReader for KafkaReader<T> {
    type Inner = Base<T>;
    type Output = T;

    fn inner(&mut self) -> &mut Base<T> {
        &mut self.base
    }

    fn poll_next<O: ReaderOutput<T>>(&mut self, output: &mut O) -> Result<InputStatus> {
        let Some(t) = self.throttle.as_mut() else {
            return self.base.poll_next(output);
        };
        t.refill();
        if t.tokens < 1.0 {
            return Ok(InputStatus::NothingAvailable);
        }
        let mut counting = CountingOutput::new(output);
        let status = self.base.poll_next(&mut counting)?;
        t.tokens -= counting.count() as f64;
        Ok(status)
    }

    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(t) = self.throttle.as_mut() {
            t.refill();
            if t.tokens < 1.0 {
                let wait = Duration::from_secs_f64(((1.0 - t.tokens) / t.per_sec).max(0.0005));
                let sleep = t
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(wait)));
                sleep.as_mut().reset(tokio::time::Instant::now() + wait);
                return match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(()),
                    Poll::Pending => Poll::Pending,
                };
            }
        }
        self.base.poll_available(cx)
    }

    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<KafkaPartitionSplit>> {
        let splits = self.base.snapshot_state(checkpoint_id)?;
        if self.committer.is_some() {
            let mut offsets: Vec<TopicPartitionOffset> = splits
                .iter()
                .filter_map(KafkaPartitionSplit::position)
                .collect();
            offsets.extend(self.take_finished());
            self.to_commit.insert(checkpoint_id, offsets);
            // Bound the memory if checkpoints never complete.
            while self.to_commit.len() > 32 {
                self.to_commit.pop_first();
            }
        }
        Ok(splits)
    }

    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        let mut latest = None;
        while let Some(entry) = self.to_commit.first_entry() {
            if *entry.key() > checkpoint_id {
                break;
            }
            latest = Some(entry.remove());
        }
        if self.to_commit.is_empty() {
            // Splits that finished after the last snapshot (a reader at end of input is not
            // snapshotted again): their ends are final.
            let finished = self.take_finished();
            if !finished.is_empty() {
                latest.get_or_insert_with(Vec::new).extend(finished);
            }
        }
        if let (Some(offsets), Some(c)) = (latest, &self.committer) {
            if !offsets.is_empty() {
                let _ = c.tx.send(offsets);
            }
        }
        self.base.notify_checkpoint_complete(checkpoint_id)
    }

    fn notify_checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.to_commit.remove(&checkpoint_id);
        self.base.notify_checkpoint_aborted(checkpoint_id)
    }

    async fn close(&mut self) -> Result<()> {
        let closed = self.base.close().await;
        if let Some(c) = self.committer.take() {
            // The last completed checkpoint's offsets are usually still being sent.
            c.finish(Duration::from_secs(10)).await;
        }
        closed
    }
}

impl<T: Send + 'static> KafkaReader<T> {
    fn take_finished(&mut self) -> Vec<TopicPartitionOffset> {
        std::mem::take(&mut *self.finished.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A token bucket over emitted records (a pacing aid for tests and backfills).
struct Throttle {
    per_sec: f64,
    tokens: f64,
    last: Instant,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Throttle {
    fn refill(&mut self) {
        let now = Instant::now();
        let add = now.duration_since(self.last).as_secs_f64() * self.per_sec;
        self.last = now;
        // At most 50 ms worth of burst: a reader waiting for splits must not save up.
        self.tokens = (self.tokens + add).min((self.per_sec / 20.0).max(1.0));
    }
}

/// The split ids of `topic` partitions, for tests and pause calls.
pub fn partition_split_id(topic: &str, partition: i32) -> String {
    split_id(topic, partition)
}
