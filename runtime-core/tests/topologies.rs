//! Sink topologies, committer retries, checkpoint timeouts, partially finished jobs, rebalance.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{FakeTransactionStore, TwoPhaseSink};
use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::error::Result;
use weir_connector_api::sink::{
    CommitRequest, CommittableMessage, CommittableOperator, CommittableStage, CommittableSummary,
    CommittableTopology, CommittableWithLineage, Committer, CommittingSinkWriter, FlushMode,
    InitContext, NoOutput, Routing, Sink, SinkCapabilities, SinkWriter, StageParallelism,
    SupportsCommitter, SupportsPostCommitTopology, SupportsPreCommitTopology, WriteContext,
};
use weir_connector_api::state::{U64Serializer, VecSerializer, VersionedSerializer};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::storage::read_savepoint;
use weir_runtime::{
    CheckpointConfig, JobConfig, JobStatus, RestoreFrom, RuntimeError, StopMode, StreamEnvironment,
};

fn numbers(count: u64, rate: f64) -> DataGeneratorSource<u64> {
    DataGeneratorSource::new(|n| n, Some(count), RateLimiterStrategy::per_second(rate))
}

/// Writers produce one batch of numbers per checkpoint; a single pre-commit stage merges all
/// batches of a checkpoint into one (like file compaction); the committer publishes merged
/// batches; a post-commit stage records what was committed.
#[derive(Clone, Default)]
struct MergingSink {
    committed: Arc<Mutex<Vec<Vec<u64>>>>,
    post_commit_seen: Arc<Mutex<Vec<u64>>>,
}

#[derive(Default)]
struct BatchWriter(Vec<u64>);

#[async_trait::async_trait]
impl SinkWriter<u64> for BatchWriter {
    fn write(&mut self, element: u64, _ctx: &WriteContext) -> Result<()> {
        self.0.push(element);
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl CommittingSinkWriter<u64> for BatchWriter {
    type Committable = Vec<u64>;
    async fn prepare_commit(&mut self) -> Result<Vec<Vec<u64>>> {
        Ok(if self.0.is_empty() {
            Vec::new()
        } else {
            vec![std::mem::take(&mut self.0)]
        })
    }
}

/// Merges every batch of a checkpoint into one, emitted at the checkpoint's next barrier (or
/// at end of input), with a consistent summary.
#[derive(Default)]
struct Merge {
    open: std::collections::BTreeMap<CheckpointId, Vec<u64>>,
}

#[async_trait::async_trait]
impl CommittableOperator<Vec<u64>, Vec<u64>> for Merge {
    async fn process(
        &mut self,
        m: CommittableMessage<Vec<u64>>,
        _out: &mut Vec<CommittableMessage<Vec<u64>>>,
    ) -> Result<()> {
        if let CommittableMessage::WithLineage(c) = m {
            self.open
                .entry(c.checkpoint_id)
                .or_default()
                .extend(c.committable);
        }
        Ok(())
    }
    async fn prepare_snapshot_pre_barrier(
        &mut self,
        id: CheckpointId,
        out: &mut Vec<CommittableMessage<Vec<u64>>>,
    ) -> Result<()> {
        // Checkpoints up to the barrier are complete here (their batches came before it); the
        // end-of-input batches are complete only at end of input.
        let later = self.open.split_off(&CheckpointId(id.0.saturating_add(1)));
        let ready = std::mem::replace(&mut self.open, later);
        for (checkpoint_id, mut merged) in ready {
            merged.sort_unstable();
            out.push(CommittableMessage::Summary(CommittableSummary {
                subtask_id: 0,
                number_of_subtasks: 1,
                checkpoint_id,
                number_of_committables: 1,
                number_of_failed: 0,
            }));
            out.push(CommittableMessage::WithLineage(CommittableWithLineage {
                committable: merged,
                checkpoint_id,
                subtask_id: 0,
            }));
        }
        Ok(())
    }
    async fn end_input(&mut self, out: &mut Vec<CommittableMessage<Vec<u64>>>) -> Result<()> {
        self.prepare_snapshot_pre_barrier(CheckpointId(u64::MAX - 1), out)
            .await?;
        let eoi = std::mem::take(&mut self.open);
        self.open = eoi;
        let all = std::mem::take(&mut self.open);
        for (checkpoint_id, mut merged) in all {
            merged.sort_unstable();
            out.push(CommittableMessage::Summary(CommittableSummary {
                subtask_id: 0,
                number_of_subtasks: 1,
                checkpoint_id,
                number_of_committables: 1,
                number_of_failed: 0,
            }));
            out.push(CommittableMessage::WithLineage(CommittableWithLineage {
                committable: merged,
                checkpoint_id,
                subtask_id: 0,
            }));
        }
        Ok(())
    }
}

struct Record(Arc<Mutex<Vec<u64>>>);
#[async_trait::async_trait]
impl CommittableOperator<Vec<u64>, NoOutput> for Record {
    async fn process(
        &mut self,
        m: CommittableMessage<Vec<u64>>,
        _out: &mut Vec<CommittableMessage<NoOutput>>,
    ) -> Result<()> {
        if let CommittableMessage::WithLineage(c) = m {
            self.0.lock().unwrap().extend(c.committable);
        }
        Ok(())
    }
}

struct Publish(Arc<Mutex<Vec<Vec<u64>>>>);
#[async_trait::async_trait]
impl Committer<Vec<u64>> for Publish {
    async fn commit(&mut self, requests: &mut [CommitRequest<Vec<u64>>]) -> Result<()> {
        for r in requests {
            self.0.lock().unwrap().push(r.committable().clone());
        }
        Ok(())
    }
}

impl Sink<u64> for MergingSink {
    type Writer = BatchWriter;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<BatchWriter> {
        Ok(BatchWriter::default())
    }
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<u64, BatchWriter> {
        SinkCapabilities::none()
            .with_pre_commit_topology(Arc::clone(&self))
            .with_post_commit_topology(&self)
    }
}

impl SupportsCommitter<u64> for MergingSink {
    type Committable = Vec<u64>;
    type Committer = Publish;
    fn create_committer(&self, _ctx: &dyn InitContext) -> Result<Publish> {
        Ok(Publish(Arc::clone(&self.committed)))
    }
    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<Vec<u64>>> {
        Arc::new(VecSerializer::new(U64Serializer))
    }
}

impl SupportsPreCommitTopology<u64> for MergingSink {
    type WriteResult = Vec<u64>;
    fn pre_commit_topology(&self) -> CommittableTopology<Vec<u64>, Vec<u64>> {
        CommittableTopology::new(CommittableStage {
            name: "merge".into(),
            parallelism: StageParallelism::One,
            routing: Routing::Global,
            factory: Arc::new(|_: &dyn InitContext, _: Vec<VersionedBytes>| {
                Ok(Box::new(Merge::default()) as Box<dyn CommittableOperator<Vec<u64>, Vec<u64>>>)
            }),
        })
    }
}

impl SupportsPostCommitTopology<u64> for MergingSink {
    fn post_commit_topology(&self) -> CommittableTopology<Vec<u64>, NoOutput> {
        let seen = Arc::clone(&self.post_commit_seen);
        CommittableTopology::new(CommittableStage {
            name: "record".into(),
            parallelism: StageParallelism::One,
            routing: Routing::Forward,
            factory: Arc::new(move |_: &dyn InitContext, _: Vec<VersionedBytes>| {
                Ok(Box::new(Record(Arc::clone(&seen)))
                    as Box<dyn CommittableOperator<Vec<u64>, NoOutput>>)
            }),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_and_post_commit_topologies_are_expanded_and_see_every_committable() {
    common::init_logs();
    let sink = MergingSink::default();
    let env = StreamEnvironment::new(
        JobConfig::new("topologies")
            .parallelism(3)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(10))),
    );
    env.from_source(
        numbers(30_000, 300_000.0),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .sink_to(sink.clone());
    let job = env.build().unwrap();
    let plan: Vec<String> = job
        .describe()
        .into_iter()
        .flat_map(|(_, _, uids)| uids)
        .collect();
    assert!(
        plan.iter().any(|u| u.ends_with("/pre-commit/merge")),
        "{plan:?}"
    );
    assert!(plan.iter().any(|u| u.ends_with("/committer")), "{plan:?}");
    assert!(
        plan.iter().any(|u| u.ends_with("/post-commit/record")),
        "{plan:?}"
    );
    let result = job.execute().await;
    assert!(result.is_finished(), "{:?}", result.status);
    let committed = sink.committed.lock().unwrap().clone();
    let mut all: Vec<u64> = committed.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..30_000).collect::<Vec<_>>());
    // Merged: at most one committable per checkpoint, far fewer than writer batches.
    assert!(
        committed.len() as u64 <= result.completed_checkpoints + 1,
        "{} committables",
        committed.len()
    );
    let mut seen = sink.post_commit_seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(
        seen, all,
        "the post-commit stage sees exactly what was committed"
    );
}

/// A committer that asks for `retries` retries of every committable before committing.
struct Stubborn {
    store: Arc<FakeTransactionStore>,
    retries: u32,
    calls: Arc<AtomicU32>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_retried_up_to_the_bound() {
    for (retries, bound, should_finish) in [(2, 10, true), (5, 3, false)] {
        let store = Arc::new(FakeTransactionStore::default());
        let calls = Arc::new(AtomicU32::new(0));
        let sink = StubbornSink(
            Stubborn {
                store: Arc::clone(&store),
                retries,
                calls: Arc::clone(&calls),
            }
            .into(),
        );
        let env = StreamEnvironment::new(JobConfig {
            committer_retries: bound,
            ..JobConfig::new("retries")
        });
        env.from_source(
            numbers(100, 1e9),
            WatermarkStrategy::no_watermarks(),
            "numbers",
        )
        .sink_to(sink);
        let result = env.build().unwrap().execute().await;
        if should_finish {
            assert!(result.is_finished(), "{:?}", result.status);
            assert_eq!(store.records(), (0..100).collect::<Vec<_>>());
            assert_eq!(calls.load(Ordering::SeqCst), retries + 1);
        } else {
            match result.status {
                JobStatus::Failed(e) => assert!(e.to_string().contains("after 3 retries"), "{e}"),
                other => panic!("expected failure, got {other:?}"),
            }
        }
    }
}

struct StubbornSink(Arc<Stubborn>);
struct StubbornCommitter(Arc<Stubborn>);

#[async_trait::async_trait]
impl Committer<common::Txn> for StubbornCommitter {
    async fn commit(&mut self, requests: &mut [CommitRequest<common::Txn>]) -> Result<()> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        for r in requests.iter_mut() {
            if r.retries() < self.0.retries {
                r.retry_later();
            }
        }
        let mut inner = TwoPhaseSink {
            store: Arc::clone(&self.0.store),
        }
        .create_committer(&Ctx)?;
        let mut ready: Vec<CommitRequest<common::Txn>> = requests
            .iter()
            .filter(|r| r.retries() >= self.0.retries)
            .map(|r| CommitRequest::new(r.committable().clone(), r.retries()))
            .collect();
        inner.commit(&mut ready).await
    }
}

struct Ctx;
impl InitContext for Ctx {
    fn subtask_index(&self) -> usize {
        0
    }
    fn parallelism(&self) -> usize {
        1
    }
    fn attempt(&self) -> u32 {
        0
    }
    fn restored_checkpoint_id(&self) -> Option<CheckpointId> {
        None
    }
    fn metric_group(&self) -> Arc<dyn weir_connector_api::metrics::MetricGroup> {
        Arc::new(weir_connector_api::metrics::InMemoryMetricGroup::new("t"))
    }
    fn operator_id(&self) -> &'static str {
        "t"
    }
}

impl Sink<u64> for StubbornSink {
    type Writer = common::TwoPhaseWriter;
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<common::TwoPhaseWriter> {
        TwoPhaseSink {
            store: Arc::clone(&self.0.store),
        }
        .create_writer(ctx)
    }
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<u64, common::TwoPhaseWriter> {
        SinkCapabilities::none().with_committer(self)
    }
}

impl SupportsCommitter<u64> for StubbornSink {
    type Committable = common::Txn;
    type Committer = StubbornCommitter;
    fn create_committer(&self, _ctx: &dyn InitContext) -> Result<StubbornCommitter> {
        Ok(StubbornCommitter(Arc::clone(&self.0)))
    }
    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<common::Txn>> {
        TwoPhaseSink {
            store: Arc::clone(&self.0.store),
        }
        .committable_serializer()
    }
}

/// A writer whose checkpoint flush takes far longer than the checkpoint timeout.
struct SlowFlush;
struct SlowWriter;
#[async_trait::async_trait]
impl SinkWriter<u64> for SlowWriter {
    fn write(&mut self, _e: u64, _ctx: &WriteContext) -> Result<()> {
        Ok(())
    }
    async fn flush(&mut self, mode: FlushMode) -> Result<()> {
        if mode == FlushMode::Checkpoint {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Ok(())
    }
}
impl Sink<u64> for SlowFlush {
    type Writer = SlowWriter;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<SlowWriter> {
        Ok(SlowWriter)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_that_time_out_fail_the_job_beyond_the_tolerated_count() {
    let mut checkpointing = CheckpointConfig::every(Duration::from_millis(10));
    checkpointing.timeout = Duration::from_millis(50);
    checkpointing.tolerable_failures = 1;
    let env = StreamEnvironment::new(JobConfig::new("timeouts").checkpointing(checkpointing));
    env.from_source(
        numbers(1_000_000, 1_000.0),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .sink_to(SlowFlush);
    let result = tokio::time::timeout(Duration::from_secs(20), env.build().unwrap().execute())
        .await
        .unwrap();
    match result.status {
        JobStatus::Failed(RuntimeError::GaveUp { cause, .. }) => match *cause {
            RuntimeError::CheckpointsFailing {
                failed, tolerable, ..
            } => {
                assert_eq!((failed, tolerable), (2, 1));
            }
            other => panic!("unexpected cause {other}"),
        },
        other => panic!("expected failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_continue_after_some_subtasks_finished_and_mark_them() {
    // 4 readers, but every split goes to reader 0 (2 000 records at 1 per ms): readers 1 to 3
    // finish at once, so checkpoints and a savepoint happen while they are finished.
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().unwrap();
    let make = |config: JobConfig, store: &Arc<FakeTransactionStore>| {
        let env = StreamEnvironment::new(config);
        env.from_source(
            common::speeds::SpeedSource {
                splits: vec![(2_000, 1)],
                pausable: true,
            },
            WatermarkStrategy::no_watermarks(),
            "numbers",
        )
        .uid("numbers")
        .map(|(_, n): (u64, u64)| n)
        .sink_to(TwoPhaseSink {
            store: Arc::clone(store),
        });
        env.build().unwrap()
    };
    let running = make(
        JobConfig::new("partial")
            .parallelism(4)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(10))),
        &store,
    )
    .start();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let location = running
        .stop_with_savepoint(dir.path().join("sp"), StopMode::NoDrain)
        .await
        .unwrap();
    let first = running.wait().await;
    assert!(
        first.completed_checkpoints >= 5,
        "{}",
        first.completed_checkpoints
    );
    let savepoint = read_savepoint(&location.to_path()).await.unwrap();
    let source = &savepoint.operators["numbers"];
    let finished: Vec<bool> = source.subtasks.iter().map(|s| s.finished).collect();
    assert_eq!(
        finished,
        vec![false, true, true, true],
        "readers 1 to 3 are marked finished"
    );
    assert!(!source.finished, "the operator as a whole is still running");
    let resumed = make(
        JobConfig::new("partial")
            .parallelism(4)
            .restore(RestoreFrom::Savepoint(location.to_path())),
        &store,
    )
    .execute()
    .await;
    assert!(resumed.is_finished(), "{:?}", resumed.status);
    assert_eq!(store.records(), (0..2_000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_spreads_batches_over_a_different_parallelism() {
    let store = Arc::new(FakeTransactionStore::default());
    let env = StreamEnvironment::new(
        JobConfig::new("rebalance")
            .parallelism(1)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(5))),
    );
    env.from_source(
        numbers(50_000, 1e9),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .rebalance()
    .parallelism(3)
    .map(|n| n + 1)
    .sink_to(TwoPhaseSink {
        store: Arc::clone(&store),
    });
    let result = env.build().unwrap().execute().await;
    assert!(result.is_finished(), "{:?}", result.status);
    let got: BTreeSet<u64> = store.records().into_iter().collect();
    assert_eq!(got, (1..=50_000).collect());
    assert_eq!(store.records().len(), 50_000);
}
