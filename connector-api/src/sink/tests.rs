//! Tests of sink capability declaration and the erased forms the runtime uses.

use std::sync::Arc;

use super::*;
use crate::error::{ConnectorError, ErrorClass};
use crate::metrics::{InMemoryMetricGroup, MetricGroup};
use crate::state::{StateError, StringSerializer, U64Serializer};

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
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::new(InMemoryMetricGroup::new("t"))
    }
    fn operator_id(&self) -> &'static str {
        "sink-1"
    }
}

/// Counts records; its state is the count; its committables are the count per checkpoint.
struct CountingSink;
#[derive(Default)]
struct CountingWriter {
    total: u64,
    since_commit: u64,
}

#[async_trait::async_trait]
impl SinkWriter<u64> for CountingWriter {
    fn write(&mut self, _element: u64, _ctx: &WriteContext) -> Result<()> {
        self.total += 1;
        self.since_commit += 1;
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl StatefulSinkWriter<u64> for CountingWriter {
    type State = u64;
    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<Vec<u64>> {
        Ok(vec![self.total])
    }
}

#[async_trait::async_trait]
impl CommittingSinkWriter<u64> for CountingWriter {
    type Committable = u64;
    async fn prepare_commit(&mut self) -> Result<Vec<u64>> {
        Ok(vec![std::mem::take(&mut self.since_commit)])
    }
}

/// Gives each committable a scripted outcome by its value.
struct ScriptedCommitter;
#[async_trait::async_trait]
impl Committer<u64> for ScriptedCommitter {
    async fn commit(&mut self, requests: &mut [CommitRequest<u64>]) -> Result<()> {
        for r in requests {
            match *r.committable() {
                1 => r.already_committed(),
                2 => r.retry_later(),
                3 => r.update_and_retry(30),
                4 => r.failed_known("gone"),
                5 => r.failed_unknown(ConnectorError::Contract("boom".into())),
                _ => {}
            }
        }
        Ok(())
    }
}

impl Sink<u64> for CountingSink {
    type Writer = CountingWriter;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<CountingWriter> {
        Ok(CountingWriter::default())
    }
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<u64, CountingWriter> {
        SinkCapabilities::none()
            .with_writer_state(Arc::clone(&self))
            .with_committer(self)
    }
}

impl SupportsWriterState<u64> for CountingSink {
    fn restore_writer(&self, _ctx: &dyn InitContext, states: Vec<u64>) -> Result<CountingWriter> {
        Ok(CountingWriter {
            total: states.iter().sum(),
            since_commit: 0,
        })
    }
    fn writer_state_serializer(&self) -> Arc<dyn crate::state::VersionedSerializer<u64>> {
        Arc::new(U64Serializer)
    }
}

impl SupportsCommitter<u64> for CountingSink {
    type Committable = u64;
    type Committer = ScriptedCommitter;
    fn create_committer(&self, _ctx: &dyn InitContext) -> Result<ScriptedCommitter> {
        Ok(ScriptedCommitter)
    }
    fn committable_serializer(&self) -> Arc<dyn crate::state::VersionedSerializer<u64>> {
        Arc::new(U64Serializer)
    }
}

#[tokio::test]
async fn declared_capabilities_are_usable_in_erased_form() -> Result<()> {
    let caps = Arc::new(CountingSink).capabilities();
    let state = caps.writer_state().expect("writer state declared").clone();
    let committing = caps.committer().expect("committer declared").clone();
    assert!(caps.pre_write().is_none());
    assert!(committing.pre_commit_stages().is_empty());

    let mut writer = CountingSink.create_writer(&Ctx)?;
    for i in 0..5 {
        writer.write(i, &WriteContext::default())?;
    }
    let committables = committing.prepare_commit(&mut writer).await?;
    assert_eq!(committables.len(), 1);
    assert_eq!(committables[0].downcast_ref::<u64>(), Some(&5));

    // Writer state: snapshot of two subtasks merged into one on restore (scale down).
    let mut snap = state.snapshot(&mut writer, CheckpointId(1))?;
    snap.extend(state.snapshot(&mut writer, CheckpointId(1))?);
    let restored = state.restore(&Ctx, snap)?;
    assert_eq!(restored.total, 10);

    // Committable state round trip.
    let bytes = committing.serialize_committable(&committables[0])?;
    let back = committing.deserialize_committable(&bytes)?;
    assert_eq!(back.downcast_ref::<u64>(), Some(&5));
    Ok(())
}

#[tokio::test]
async fn unknown_state_versions_are_rejected() {
    let caps = Arc::new(CountingSink).capabilities();
    let state = caps.writer_state().expect("declared").clone();
    let err = state
        .restore(
            &Ctx,
            vec![VersionedBytes {
                version: 99,
                bytes: vec![0; 8],
            }],
        )
        .err()
        .expect("version 99 was never written");
    assert!(
        matches!(
            err,
            ConnectorError::State(StateError::UnknownVersion { version: 99, .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn erased_committer_keeps_every_outcome() -> Result<()> {
    let caps = Arc::new(CountingSink).capabilities();
    let mut committer = caps.committer().expect("declared").create_committer(&Ctx)?;
    let mut requests: Vec<CommitRequest<AnyCommittable>> = (0..6_u64)
        .map(|v| CommitRequest::new(box_committable(v), 2))
        .collect();
    committer.commit(&mut requests).await?;
    let outcomes: Vec<&str> = requests.iter().map(|r| r.outcome().name()).collect();
    assert_eq!(
        outcomes,
        [
            "committed",
            "already-committed",
            "retry-later",
            "update-and-retry",
            "failed-known",
            "failed-unknown"
        ]
    );
    assert!(requests.iter().all(|r| r.retries() == 2));
    // The committables themselves survive the round trip.
    let values: Vec<u64> = requests
        .iter()
        .map(|r| *r.committable().downcast_ref::<u64>().expect("u64"))
        .collect();
    assert_eq!(values, [0, 1, 2, 3, 4, 5]);
    match requests[3].outcome() {
        CommitOutcome::UpdateAndRetry(c) => assert_eq!(c.downcast_ref::<u64>(), Some(&30)),
        other => panic!("unexpected {other:?}"),
    }
    Ok(())
}

#[test]
fn commit_errors_retry_untouched_requests_only_when_retryable() {
    let mut requests = vec![CommitRequest::new(1, 0), CommitRequest::new(2, 0)];
    requests[1].failed_known("discard");
    apply_commit_error(
        &mut requests,
        ConnectorError::retryable("commit", "timeout"),
    )
    .expect("retryable errors become retries");
    assert_eq!(requests[0].outcome().name(), "retry-later");
    assert_eq!(requests[1].outcome().name(), "failed-known");
    let err = apply_commit_error(&mut requests, ConnectorError::fatal("commit", "denied"))
        .expect_err("fatal errors fail the job");
    assert_eq!(err.class(), ErrorClass::Fatal);
}

/// A stage that turns numbers into strings, keeping summaries.
struct Stringify;
#[async_trait::async_trait]
impl CommittableOperator<u64, String> for Stringify {
    async fn process(
        &mut self,
        message: CommittableMessage<u64>,
        output: &mut Vec<CommittableMessage<String>>,
    ) -> Result<()> {
        output.push(match message {
            CommittableMessage::Summary(s) => CommittableMessage::Summary(s),
            CommittableMessage::WithLineage(c) => {
                CommittableMessage::WithLineage(c.map(|n| n.to_string()))
            }
        });
        Ok(())
    }
}

/// A stage that measures string lengths and remembers how many it saw.
#[derive(Default)]
struct Lengths {
    seen: u64,
}
#[async_trait::async_trait]
impl CommittableOperator<String, usize> for Lengths {
    async fn process(
        &mut self,
        message: CommittableMessage<String>,
        output: &mut Vec<CommittableMessage<usize>>,
    ) -> Result<()> {
        if let CommittableMessage::WithLineage(c) = message {
            self.seen += 1;
            output.push(CommittableMessage::WithLineage(c.map(|s| s.len())));
        }
        Ok(())
    }
    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<Option<VersionedBytes>> {
        Ok(Some(VersionedBytes {
            version: 1,
            bytes: self.seen.to_be_bytes().to_vec(),
        }))
    }
}

fn stage<I, O>(
    name: &str,
    make: impl Fn() -> Box<dyn CommittableOperator<I, O>> + Send + Sync + 'static,
) -> CommittableStage<I, O> {
    CommittableStage {
        name: name.into(),
        parallelism: StageParallelism::One,
        routing: Routing::Global,
        factory: Arc::new(move |_: &dyn InitContext, _: Vec<VersionedBytes>| Ok(make())),
    }
}

#[tokio::test]
async fn typed_topology_runs_in_erased_form() -> Result<()> {
    let topology = CommittableTopology::new(stage("stringify", || Box::new(Stringify)))
        .then(stage("lengths", || Box::<Lengths>::default()));
    let stages = topology.into_stages();
    assert_eq!(
        stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["stringify", "lengths"]
    );
    let mut first = stages[0].factory.create(&Ctx, Vec::new())?;
    let mut second = stages[1].factory.create(&Ctx, Vec::new())?;
    let mut mid = Vec::new();
    first
        .process(
            CommittableMessage::WithLineage(CommittableWithLineage {
                committable: box_committable(12_345_u64),
                checkpoint_id: CheckpointId(7),
                subtask_id: 0,
            }),
            &mut mid,
        )
        .await?;
    let mut out = Vec::new();
    for m in mid {
        second.process(m, &mut out).await?;
    }
    match out.pop() {
        Some(CommittableMessage::WithLineage(c)) => {
            assert_eq!(c.committable.downcast_ref::<usize>(), Some(&5));
            assert_eq!(c.checkpoint_id, CheckpointId(7));
        }
        other => panic!("unexpected {other:?}"),
    }
    let state = second
        .snapshot_state(CheckpointId(7))?
        .expect("stateful stage");
    assert_eq!(state.bytes, 1_u64.to_be_bytes());

    // A committable of the wrong type is a contract error, not a panic.
    let err = second
        .process(
            CommittableMessage::WithLineage(CommittableWithLineage {
                committable: box_committable(1_u8),
                checkpoint_id: CheckpointId(8),
                subtask_id: 0,
            }),
            &mut Vec::new(),
        )
        .await
        .expect_err("u8 is not a String");
    assert!(matches!(err, ConnectorError::Contract(_)), "{err}");
    Ok(())
}

#[test]
fn end_of_input_sorts_after_every_checkpoint() {
    assert!(CheckpointId::END_OF_INPUT > CheckpointId(u64::MAX - 1));
    assert!(CheckpointId::END_OF_INPUT.is_end_of_input());
    assert_eq!(CheckpointId::END_OF_INPUT.to_string(), "end-of-input");
    assert_eq!(CheckpointId(4).to_string(), "4");
    let _ = StringSerializer;
}
