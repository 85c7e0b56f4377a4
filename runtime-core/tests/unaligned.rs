//! Unaligned checkpoints against the runtime: under backpressure (a slow two-phase sink) a
//! checkpoint stores the records in flight, and a new job restores them exactly once at the
//! same and at another parallelism (keyed inputs split by key, others dealt round-robin); an
//! alignment timeout goes unaligned only when alignment takes long; the job refuses unaligned
//! barriers it cannot honour.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use common::{FakeTransactionStore, TwoPhaseSink, TwoPhaseWriter, Txn, TxnCommitter};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::Result;
use weir_connector_api::sink::{
    CommittingSinkWriter, FlushMode, InitContext, Sink, SinkCapabilities, SinkWriter,
    StatefulSinkWriter, SupportsCommitter, SupportsWriterState, WriteContext,
};
use weir_connector_api::state::{U64Serializer, VersionedSerializer};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::storage::{CheckpointStorage, LocalCheckpointStorage};
use weir_runtime::{
    BarrierAlignment, CheckpointConfig, CheckpointRecord, CheckpointStatus, CheckpointingMode,
    DataStream, Job, JobConfig, JobHandle, RestoreFrom, RuntimeError, SinkOptions, StorageConfig,
    StreamEnvironment,
};

/// Enough records that the first job (whose sink writes ~64 000 records/s) is still running
/// when its first checkpoints are taken, even on a loaded machine.
const COUNT: u64 = 200_000;

/// The two-phase sink of `common` with a writer that takes `delay` before each batch: a slow
/// external system, so the channels into it stay full.
#[derive(Clone)]
struct SlowTwoPhaseSink {
    inner: Arc<TwoPhaseSink>,
    delay: Duration,
}

struct SlowWriter {
    inner: TwoPhaseWriter,
    delay: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

#[async_trait::async_trait]
impl SinkWriter<u64> for SlowWriter {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let delay = self.delay;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timer = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
    fn write(&mut self, element: u64, ctx: &WriteContext) -> Result<()> {
        // Every record keeps its event time, also when it was stored as channel state and
        // replayed after a restore.
        if ctx.timestamp != Some(event_time(element)) {
            return Err(weir_connector_api::error::ConnectorError::fatal(
                format!("record {element}"),
                format!("came with event time {:?}", ctx.timestamp),
            ));
        }
        self.inner.write(element, ctx)
    }
    async fn flush(&mut self, mode: FlushMode) -> Result<()> {
        self.inner.flush(mode).await
    }
}

#[async_trait::async_trait]
impl CommittingSinkWriter<u64> for SlowWriter {
    type Committable = Txn;
    async fn prepare_commit(&mut self) -> Result<Vec<Txn>> {
        self.inner.prepare_commit().await
    }
}

impl StatefulSinkWriter<u64> for SlowWriter {
    type State = u64;
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<u64>> {
        self.inner.snapshot_state(checkpoint_id)
    }
}

impl Sink<u64> for SlowTwoPhaseSink {
    type Writer = SlowWriter;
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<SlowWriter> {
        Ok(SlowWriter {
            inner: self.inner.create_writer(ctx)?,
            delay: self.delay,
            timer: None,
        })
    }
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<u64, SlowWriter> {
        SinkCapabilities::none()
            .with_writer_state(Arc::clone(&self))
            .with_committer(self)
    }
}

impl SupportsWriterState<u64> for SlowTwoPhaseSink {
    fn restore_writer(&self, ctx: &dyn InitContext, states: Vec<u64>) -> Result<SlowWriter> {
        Ok(SlowWriter {
            inner: self.inner.restore_writer(ctx, states)?,
            delay: self.delay,
            timer: None,
        })
    }
    fn writer_state_serializer(&self) -> Arc<dyn VersionedSerializer<u64>> {
        self.inner.writer_state_serializer()
    }
}

impl SupportsCommitter<u64> for SlowTwoPhaseSink {
    type Committable = Txn;
    type Committer = TxnCommitter;
    fn create_committer(&self, ctx: &dyn InitContext) -> Result<TxnCommitter> {
        self.inner.create_committer(ctx)
    }
    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<Txn>> {
        self.inner.committable_serializer()
    }
}

/// How the sink reads its input.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `numbers` → key_by → sink: keyed channel state.
    Keyed,
    /// `numbers` ∪ `more` → sink: round-robin channel state from two edges.
    Union,
}

/// The event time the sources give record `n`.
fn event_time(n: u64) -> i64 {
    n as i64 * 3 + 1
}

fn numbers(env: &StreamEnvironment, uid: &str, from: u64, to: u64) -> DataStream<u64> {
    env.from_source(
        DataGeneratorSource::new(
            move |n| from + n,
            Some(to - from),
            RateLimiterStrategy::no_op(),
        ),
        WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(1))
            .with_timestamp_assigner(|n: &u64, _| event_time(*n)),
        uid,
    )
    .uid(uid)
    .channel_state_serializer(U64Serializer)
}

/// Unbounded-looking but bounded input (records 0..COUNT) into a slow two-phase sink.
fn job(
    config: JobConfig,
    store: &Arc<FakeTransactionStore>,
    shape: Shape,
    sink_parallelism: usize,
    delay: Duration,
) -> Job {
    let env = StreamEnvironment::new(config.batch_size(256));
    let stream = match shape {
        Shape::Keyed => numbers(&env, "numbers", 0, COUNT).key_by(|n| *n),
        Shape::Union => {
            numbers(&env, "numbers", 0, COUNT / 2).union(numbers(&env, "more", COUNT / 2, COUNT))
        }
    };
    stream.parallelism(sink_parallelism).sink_to_with(
        SlowTwoPhaseSink {
            inner: Arc::new(TwoPhaseSink {
                store: Arc::clone(store),
            }),
            delay,
        },
        &SinkOptions {
            uid: Some("sink".into()),
            committer_parallelism: None,
        },
    );
    env.build().expect("valid job")
}

fn checkpointing(alignment: BarrierAlignment) -> CheckpointConfig {
    CheckpointConfig::every(Duration::from_millis(40))
        .alignment(alignment)
        .retained(5)
}

/// Waits (up to 30 s) until the job's history has a completed checkpoint that `wanted` likes.
async fn until_completed(
    handle: &JobHandle,
    wanted: impl Fn(&CheckpointRecord) -> bool,
) -> CheckpointRecord {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = handle
            .checkpoint_history()
            .into_iter()
            .find(|c| c.status == CheckpointStatus::Completed && wanted(c));
        if let Some(found) = found {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such checkpoint within 30 s: {:?}",
            handle.checkpoint_history()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The newest checkpoint in `dir`: its id, and the records in flight it holds per group.
async fn latest_in(dir: &Path) -> (u64, usize) {
    let storage = LocalCheckpointStorage::new(dir.to_path_buf());
    let (id, location) = storage
        .list_checkpoints()
        .await
        .expect("list")
        .pop()
        .expect("a checkpoint");
    let metadata = storage.read(&location).await.expect("readable");
    let entries = metadata
        .operators
        .iter()
        .filter(|(uid, _)| uid.ends_with("/input-channels"))
        .flat_map(|(_, op)| op.subtasks.iter().flat_map(|s| s.state.values().flatten()))
        .count();
    (id, entries)
}

fn assert_exactly_once(store: &FakeTransactionStore) {
    let got = store.records();
    let distinct: BTreeSet<u64> = got.iter().copied().collect();
    let missing = (0..COUNT).filter(|n| !distinct.contains(n)).count();
    assert!(
        missing == 0 && distinct.len() == got.len() && got.len() as u64 == COUNT,
        "{} committed, {} distinct, {COUNT} expected, {missing} missing",
        got.len(),
        distinct.len()
    );
}

/// Runs with unaligned barriers until a checkpoint holds records in flight, cancels, and
/// restores the latest checkpoint at `to` sink subtasks; every record is committed once.
async fn restore_records_in_flight(shape: Shape, from: usize, to: usize) {
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let config = |name: &str| {
        JobConfig::new(name)
            .parallelism(2)
            .checkpointing(checkpointing(BarrierAlignment::Unaligned))
            .storage(StorageConfig::Local(dir.path().to_path_buf()))
    };
    let delay = Duration::from_millis(4);
    let first = job(config("in-flight"), &store, shape, from, delay).start();
    let stored = until_completed(&first, |c| c.unaligned().1 > 0).await;
    first.cancel();
    let cancelled = first.wait().await;
    assert!(
        matches!(cancelled.status, weir_runtime::JobStatus::Cancelled),
        "{:?}",
        cancelled.status
    );
    let before = store.records().len() as u64;
    assert!(before < COUNT, "cancelled before the end: {before}");
    // Backpressure keeps every channel full, so the newest checkpoint holds records in flight
    // too (the one seen above, or a later one).
    let (latest, entries) = latest_in(dir.path()).await;
    assert!(latest >= stored.id);
    assert!(
        entries > 0,
        "checkpoint {latest} holds no records in flight"
    );
    let second = job(
        config("in-flight").restore(RestoreFrom::LatestCheckpoint),
        &store,
        shape,
        to,
        Duration::ZERO,
    );
    let result = tokio::time::timeout(Duration::from_secs(60), second.execute())
        .await
        .expect("the restored job ends within a minute");
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(result.restored_from, Some(latest));
    assert_exactly_once(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_in_flight_restore_at_the_same_parallelism() {
    restore_records_in_flight(Shape::Keyed, 2, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_in_flight_restore_at_another_parallelism() {
    restore_records_in_flight(Shape::Keyed, 2, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_in_flight_of_a_union_restore_at_another_parallelism() {
    // One slow writer, so the four sources stay blocked on full channels (they would end
    // before the first checkpoint with room for every record in flight).
    restore_records_in_flight(Shape::Union, 1, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alignment_timeout_goes_unaligned_only_when_alignment_takes_long() {
    // Backpressure: barriers wait behind full channels, alignment takes longer than 2 ms.
    let store = Arc::new(FakeTransactionStore::default());
    let slow = job(
        JobConfig::new("timeout-slow")
            .parallelism(2)
            .checkpointing(checkpointing(BarrierAlignment::AlignedWithTimeout(
                Duration::from_millis(2),
            ))),
        &store,
        Shape::Keyed,
        2,
        Duration::from_millis(4),
    )
    .start();
    let switched = until_completed(&slow, |c| c.unaligned().0 > 0).await;
    slow.cancel();
    slow.wait().await;
    assert!(switched
        .subtasks
        .iter()
        .any(|s| s.in_flight_bytes.is_some()));
    // No backpressure and a generous timeout: every checkpoint stays aligned.
    let store = Arc::new(FakeTransactionStore::default());
    let fast = job(
        JobConfig::new("timeout-fast")
            .parallelism(2)
            .checkpointing(checkpointing(BarrierAlignment::AlignedWithTimeout(
                Duration::from_secs(30),
            ))),
        &store,
        Shape::Keyed,
        2,
        Duration::ZERO,
    );
    let result = tokio::time::timeout(Duration::from_secs(60), fast.execute())
        .await
        .expect("ends within a minute");
    assert!(result.is_finished(), "{:?}", result.status);
    let completed: Vec<&CheckpointRecord> = result
        .checkpoint_history
        .iter()
        .filter(|c| c.status == CheckpointStatus::Completed)
        .collect();
    assert!(!completed.is_empty());
    for c in completed {
        assert_eq!(c.unaligned(), (0, 0), "checkpoint {} went unaligned", c.id);
    }
    assert_exactly_once(&store);
}

#[test]
fn unaligned_barriers_are_refused_where_they_cannot_work() {
    // A stream entering an exchange without a channel-state serializer.
    let env = StreamEnvironment::new(
        JobConfig::new("refused").checkpointing(checkpointing(BarrierAlignment::Unaligned)),
    );
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(10), RateLimiterStrategy::no_op()),
        WatermarkStrategy::no_watermarks(),
        "plain",
    )
    .key_by(|n| *n)
    .sink_to(TwoPhaseSink {
        store: Arc::default(),
    });
    let error = env.build().err().expect("refused");
    assert!(
        matches!(&error, RuntimeError::InvalidJob(e) if e.iter().any(|m| m.contains("channel_state_serializer"))),
        "{error}"
    );
    // At-least-once, and more than one checkpoint at a time.
    for config in [
        checkpointing(BarrierAlignment::Unaligned).mode(CheckpointingMode::AtLeastOnce),
        checkpointing(BarrierAlignment::AlignedWithTimeout(Duration::from_millis(
            5,
        )))
        .max_concurrent(2),
    ] {
        let env = StreamEnvironment::new(JobConfig::new("refused").checkpointing(config));
        numbers(&env, "numbers", 0, 10).sink_to(TwoPhaseSink {
            store: Arc::default(),
        });
        let error = env.build().err().expect("refused");
        assert!(
            matches!(&error, RuntimeError::InvalidJob(e) if e.iter().any(|m| m.contains("unaligned"))),
            "{error}"
        );
    }
}
