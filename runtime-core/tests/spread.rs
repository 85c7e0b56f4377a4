//! Committable edges routed with `Rebalance` or `KeyBy` spread committables over every
//! downstream subtask, with summaries that stay consistent (also across failures and restores).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use common::{FakeTransactionStore, TwoPhaseSink, TwoPhaseWriter, Txn};
use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::error::Result;
use weir_connector_api::sink::{
    CommittableMessage, CommittableOperator, CommittableStage, CommittableSummary,
    CommittableTopology, CommittableWithLineage, InitContext, Routing, Sink, SinkCapabilities,
    StageParallelism, SupportsCommitter, SupportsPreCommitTopology,
};
use weir_connector_api::state::VersionedSerializer;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::fault::{FailOnce, FaultInjector, FaultPoint, NoFaults};
use weir_runtime::restart::RestartStrategy;
use weir_runtime::{CheckpointConfig, JobConfig, JobResult, SinkOptions, StreamEnvironment};

/// Passes transactions on at the next barrier (or at end of input) with one summary per
/// checkpoint, optionally tagging each transaction id with the subtask that passed it on.
struct Pass {
    subtask: usize,
    parallelism: usize,
    tag: bool,
    open: BTreeMap<CheckpointId, Vec<Txn>>,
    /// The input ended: downstream reads nothing more (and this stage is stateless, so a
    /// restored subtask starts anew).
    ended: bool,
}

impl Pass {
    fn emit(
        &self,
        checkpoint_id: CheckpointId,
        txns: Vec<Txn>,
        out: &mut Vec<CommittableMessage<Txn>>,
    ) {
        out.push(CommittableMessage::Summary(CommittableSummary {
            subtask_id: self.subtask,
            number_of_subtasks: self.parallelism,
            checkpoint_id,
            number_of_committables: txns.len(),
            number_of_failed: 0,
        }));
        for mut txn in txns {
            if self.tag {
                txn.id = format!("{}@{}", txn.id, self.subtask);
            }
            out.push(CommittableMessage::WithLineage(CommittableWithLineage {
                committable: txn,
                checkpoint_id,
                subtask_id: self.subtask,
            }));
        }
    }
}

#[async_trait::async_trait]
impl CommittableOperator<Txn, Txn> for Pass {
    async fn process(
        &mut self,
        m: CommittableMessage<Txn>,
        _out: &mut Vec<CommittableMessage<Txn>>,
    ) -> Result<()> {
        if let CommittableMessage::WithLineage(c) = m {
            self.open
                .entry(c.checkpoint_id)
                .or_default()
                .push(c.committable);
        }
        Ok(())
    }

    async fn prepare_snapshot_pre_barrier(
        &mut self,
        id: CheckpointId,
        out: &mut Vec<CommittableMessage<Txn>>,
    ) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        // Everything up to the barrier arrived before it (committable edges are aligned).
        let later = self.open.split_off(&CheckpointId(id.0.saturating_add(1)));
        let mut ready = std::mem::replace(&mut self.open, later);
        ready.entry(id).or_default(); // a summary for every checkpoint, also an empty one
        for (checkpoint_id, txns) in ready {
            self.emit(checkpoint_id, txns, out);
        }
        Ok(())
    }

    async fn end_input(&mut self, out: &mut Vec<CommittableMessage<Txn>>) -> Result<()> {
        self.ended = true;
        for (checkpoint_id, txns) in std::mem::take(&mut self.open) {
            self.emit(checkpoint_id, txns, out);
        }
        Ok(())
    }
}

/// Writers (two-phase) → a funnel stage at parallelism 1 → a stage at parallelism 3 reached
/// with `routing`, which tags each transaction with its subtask → the committer.
#[derive(Clone)]
struct SpreadingSink {
    inner: TwoPhaseSink,
    key_by: bool,
}

impl Sink<u64> for SpreadingSink {
    type Writer = TwoPhaseWriter;
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<TwoPhaseWriter> {
        self.inner.create_writer(ctx)
    }
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<u64, TwoPhaseWriter> {
        SinkCapabilities::none().with_pre_commit_topology(self)
    }
}

impl SupportsCommitter<u64> for SpreadingSink {
    type Committable = Txn;
    type Committer = common::TxnCommitter;
    fn create_committer(&self, ctx: &dyn InitContext) -> Result<common::TxnCommitter> {
        self.inner.create_committer(ctx)
    }
    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<Txn>> {
        self.inner.committable_serializer()
    }
}

fn pass_stage(
    name: &str,
    parallelism: StageParallelism,
    routing: Routing<Txn>,
    tag: bool,
) -> CommittableStage<Txn, Txn> {
    CommittableStage {
        name: name.into(),
        parallelism,
        routing,
        factory: Arc::new(move |ctx: &dyn InitContext, _: Vec<VersionedBytes>| {
            Ok(Box::new(Pass {
                subtask: ctx.subtask_index(),
                parallelism: ctx.parallelism(),
                tag,
                open: BTreeMap::new(),
                ended: false,
            }) as Box<dyn CommittableOperator<Txn, Txn>>)
        }),
    }
}

impl SupportsPreCommitTopology<u64> for SpreadingSink {
    type WriteResult = Txn;
    fn pre_commit_topology(&self) -> CommittableTopology<Txn, Txn> {
        let routing = if self.key_by {
            Routing::KeyBy(Arc::new(|t: &Txn| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                t.id.hash(&mut h);
                h.finish()
            }))
        } else {
            Routing::Rebalance
        };
        CommittableTopology::new(pass_stage(
            "funnel",
            StageParallelism::One,
            Routing::Global,
            false,
        ))
        .then(pass_stage(
            "spread",
            StageParallelism::Fixed(NonZeroUsize::new(3).unwrap()),
            routing,
            true,
        ))
    }
}

async fn run(
    key_by: bool,
    count: u64,
    faults: Arc<dyn FaultInjector>,
    store: &Arc<FakeTransactionStore>,
) -> JobResult {
    let env = StreamEnvironment::new(
        JobConfig::new("spread")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(3)))
            .restart(RestartStrategy::FixedDelay {
                attempts: 3,
                delay: Duration::ZERO,
            })
            .faults(faults),
    );
    env.from_source(
        // Paced to take about 100 ms: many checkpoints.
        DataGeneratorSource::new(
            |n| n,
            Some(count),
            RateLimiterStrategy::per_second(count as f64 * 10.0),
        ),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .uid("numbers")
    .sink_to_with(
        SpreadingSink {
            inner: TwoPhaseSink {
                store: Arc::clone(store),
            },
            key_by,
        },
        &SinkOptions {
            uid: Some("sink".into()),
            committer_parallelism: NonZeroUsize::new(2),
        },
    );
    tokio::time::timeout(Duration::from_secs(60), env.build().unwrap().execute())
        .await
        .expect("the job ends within a minute")
}

/// The subtasks of the spread stage that passed on committed transactions.
fn spread_subtasks(store: &FakeTransactionStore) -> BTreeSet<String> {
    store
        .ids()
        .iter()
        .map(|id| id.rsplit_once('@').expect("tagged id").1.to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_and_key_by_spread_committables_over_every_downstream_subtask() {
    common::init_logs();
    for key_by in [false, true] {
        let store = Arc::new(FakeTransactionStore::default());
        let result = run(key_by, 20_000, Arc::new(NoFaults), &store).await;
        assert!(result.is_finished(), "key_by {key_by}: {:?}", result.status);
        assert_eq!(store.records(), (0..20_000).collect::<Vec<_>>());
        assert!(
            store.transactions() >= 6,
            "key_by {key_by}: only {} transactions",
            store.transactions()
        );
        assert_eq!(
            spread_subtasks(&store),
            ["0", "1", "2"].map(String::from).into(),
            "key_by {key_by}: every subtask of the spread stage passed committables on"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_committables_are_committed_exactly_once_across_failures() {
    common::init_logs();
    let points = [
        FaultPoint::BeforeSnapshot,
        FaultPoint::AfterSnapshotBeforeNotify,
        FaultPoint::BetweenPreCommitAndCommit,
        FaultPoint::DuringCommit,
        FaultPoint::AtEndOfInput,
    ];
    for (i, point) in points.into_iter().enumerate() {
        let key_by = i % 2 == 1;
        let fault = Arc::new(FailOnce::new(point, CheckpointId(3)));
        let store = Arc::new(FakeTransactionStore::default());
        let result = run(key_by, 15_000, fault.clone(), &store).await;
        let context = format!(
            "{point:?} key_by {key_by}: fired at {:?}, {:?}",
            fault.fired_at(),
            result.status
        );
        assert!(result.is_finished(), "{context}");
        assert!(fault.fired_at().is_some(), "{context}");
        assert_eq!(result.attempts, 2, "{context}");
        // Every record committed exactly once: no transaction lost, none committed twice.
        assert_eq!(
            store.records(),
            (0..15_000).collect::<Vec<_>>(),
            "{context}"
        );
        assert!(spread_subtasks(&store).len() > 1, "{context}");
    }
}
