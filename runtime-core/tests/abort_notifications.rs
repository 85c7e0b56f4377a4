//! Abort notifications reach every participant of a checkpoint: when a checkpoint times out,
//! when a task declines it, and when the checkpoint storage refuses it, the split enumerator,
//! every source reader, sink writer, committer and pre- and post-commit stage subtask hears
//! `checkpoint_aborted` for exactly the checkpoints the job's history shows as failed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::error::Result;
use weir_connector_api::sink::{
    CommitRequest, CommittableMessage, CommittableOperator, CommittableStage, CommittableTopology,
    Committer, CommittingSinkWriter, FlushMode, InitContext, NoOutput, Routing, Sink,
    SinkCapabilities, SinkWriter, StageParallelism, SupportsCommitter, SupportsPostCommitTopology,
    SupportsPreCommitTopology, WriteContext,
};
use weir_connector_api::source::{
    Boundedness, EnumeratorContextOf, EnumeratorState, InputStatus, ReaderOutput, Source,
    SourceReader, SourceReaderContext, SplitEnumerator,
};
use weir_connector_api::state::{U64Serializer, VecSerializer, VersionedSerializer};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_base::source::{Forwarding, ForwardingSourceReader};
use weir_connector_datagen::source::{NumberSequenceSplit, SequenceEnumerator};
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::fault::{FailOnce, FaultPoint};
use weir_runtime::storage::{
    CheckpointLocation, CheckpointMetadata, CheckpointStorage, MemoryCheckpointStorage,
    StorageError,
};
use weir_runtime::{
    CheckpointConfig, CheckpointStatus, JobConfig, JobResult, SinkOptions, StorageConfig,
    StreamEnvironment,
};

const PARALLELISM: usize = 2;
const RECORDS: u64 = 3_000;

/// The participants, as the log names them.
const ENUMERATOR: &str = "enumerator";
const READER: &str = "reader";
const WRITER: &str = "writer";
const COMMITTER: &str = "committer";
const PRE_COMMIT: &str = "pre-commit stage";
const POST_COMMIT: &str = "post-commit stage";

/// Aborted checkpoint ids by (participant, subtask).
type Heard = BTreeMap<(&'static str, usize), BTreeSet<u64>>;

/// What every participant heard.
#[derive(Clone, Default)]
struct AbortLogFake(Arc<Mutex<Heard>>);

impl AbortLogFake {
    fn aborted(&self, who: &'static str, subtask: usize, id: CheckpointId) {
        self.0
            .lock()
            .unwrap()
            .entry((who, subtask))
            .or_default()
            .insert(id.0);
    }

    fn heard(&self, who: &'static str, subtask: usize) -> BTreeSet<u64> {
        self.0
            .lock()
            .unwrap()
            .get(&(who, subtask))
            .cloned()
            .unwrap_or_default()
    }
}

// ---- the source: datagen, with its enumerator and readers logging aborts ----

/// Datagen whose enumerator and readers log the aborts they hear.
struct AbortLoggingSourceFake {
    inner: DataGeneratorSource<u64>,
    log: AbortLogFake,
}

struct AbortLoggingEnumerator {
    inner: SequenceEnumerator,
    log: AbortLogFake,
}

impl SplitEnumerator for AbortLoggingEnumerator {
    type Split = NumberSequenceSplit;
    type State = <SequenceEnumerator as SplitEnumerator>::State;
    type AsyncResult = <SequenceEnumerator as SplitEnumerator>::AsyncResult;
    fn start(&mut self) -> Result<()> {
        self.inner.start()
    }
    fn handle_split_request(&mut self, subtask: usize) -> Result<()> {
        self.inner.handle_split_request(subtask)
    }
    fn add_splits_back(&mut self, splits: Vec<NumberSequenceSplit>, subtask: usize) -> Result<()> {
        self.inner.add_splits_back(splits, subtask)
    }
    fn add_reader(&mut self, subtask: usize) -> Result<()> {
        self.inner.add_reader(subtask)
    }
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Self::State> {
        self.inner.snapshot_state(checkpoint_id)
    }
    fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.log.aborted(ENUMERATOR, 0, checkpoint_id);
        self.inner.checkpoint_aborted(checkpoint_id)
    }
    fn handle_async_result(&mut self, result: Self::AsyncResult) -> Result<()> {
        self.inner.handle_async_result(result)
    }
}

struct AbortLoggingReader<R> {
    inner: R,
    subtask: usize,
    log: AbortLogFake,
}

impl<R: SourceReader> ForwardingSourceReader for AbortLoggingReader<R> {
    type Inner = R;
    type Output = R::Output;
    fn inner(&mut self) -> &mut R {
        &mut self.inner
    }
    fn poll_next<O: ReaderOutput<R::Output>>(&mut self, output: &mut O) -> Result<InputStatus> {
        self.inner.poll_next(output)
    }
    fn notify_checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.log.aborted(READER, self.subtask, checkpoint_id);
        self.inner.notify_checkpoint_aborted(checkpoint_id)
    }
}

type DatagenReader = <DataGeneratorSource<u64> as Source>::Reader;

impl Source for AbortLoggingSourceFake {
    type Output = u64;
    type Split = NumberSequenceSplit;
    type Reader = Forwarding<AbortLoggingReader<DatagenReader>>;
    type Enumerator = AbortLoggingEnumerator;
    fn boundedness(&self) -> Boundedness {
        Boundedness::Bounded
    }
    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<Self::Reader> {
        let subtask = ctx.subtask_index();
        Ok(Forwarding::wrap(AbortLoggingReader {
            inner: self.inner.create_reader(ctx)?,
            subtask,
            log: self.log.clone(),
        }))
    }
    fn create_enumerator(&self, ctx: EnumeratorContextOf<Self>) -> Result<AbortLoggingEnumerator> {
        Ok(AbortLoggingEnumerator {
            inner: self.inner.create_enumerator(ctx)?,
            log: self.log.clone(),
        })
    }
    fn restore_enumerator(
        &self,
        ctx: EnumeratorContextOf<Self>,
        state: EnumeratorState<Self>,
    ) -> Result<AbortLoggingEnumerator> {
        Ok(AbortLoggingEnumerator {
            inner: self.inner.restore_enumerator(ctx, state)?,
            log: self.log.clone(),
        })
    }
    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<NumberSequenceSplit>> {
        self.inner.split_serializer()
    }
    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<EnumeratorState<Self>>> {
        self.inner.enumerator_state_serializer()
    }
}

// ---- the sink: writer, pre-commit stage, committer, post-commit stage, all logging aborts ----

/// A two-phase sink of `u64` batches whose every part logs the aborts it hears. With
/// `slow_flush`, writer subtask 0's second checkpoint flush takes far longer than the
/// checkpoint timeout.
#[derive(Clone)]
struct AbortLoggingSinkFake {
    log: AbortLogFake,
    committed: Arc<Mutex<Vec<u64>>>,
    slow_flush: Option<Duration>,
}

struct AbortLoggingWriter {
    staged: Vec<u64>,
    subtask: usize,
    flushes: Arc<AtomicU32>,
    slow_flush: Option<Duration>,
    log: AbortLogFake,
}

#[async_trait::async_trait]
impl SinkWriter<u64> for AbortLoggingWriter {
    fn write(&mut self, element: u64, _ctx: &WriteContext) -> Result<()> {
        self.staged.push(element);
        Ok(())
    }
    async fn flush(&mut self, mode: FlushMode) -> Result<()> {
        if mode == FlushMode::Checkpoint && self.subtask == 0 {
            let n = self.flushes.fetch_add(1, Ordering::SeqCst);
            if let (1, Some(slow)) = (n, self.slow_flush) {
                tokio::time::sleep(slow).await;
            }
        }
        Ok(())
    }
    fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.log.aborted(WRITER, self.subtask, checkpoint_id);
        Ok(())
    }
}

#[async_trait::async_trait]
impl CommittingSinkWriter<u64> for AbortLoggingWriter {
    type Committable = Vec<u64>;
    async fn prepare_commit(&mut self) -> Result<Vec<Vec<u64>>> {
        Ok(if self.staged.is_empty() {
            Vec::new()
        } else {
            vec![std::mem::take(&mut self.staged)]
        })
    }
}

struct AbortLoggingCommitter {
    committed: Arc<Mutex<Vec<u64>>>,
    subtask: usize,
    log: AbortLogFake,
}

#[async_trait::async_trait]
impl Committer<Vec<u64>> for AbortLoggingCommitter {
    async fn commit(&mut self, requests: &mut [CommitRequest<Vec<u64>>]) -> Result<()> {
        let mut committed = self.committed.lock().unwrap();
        for r in requests.iter() {
            committed.extend(r.committable());
        }
        Ok(())
    }
    async fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.log.aborted(COMMITTER, self.subtask, checkpoint_id);
        Ok(())
    }
}

/// A stage that passes committables on unchanged (pre-commit) or drops them (post-commit).
struct AbortLoggingStage {
    who: &'static str,
    subtask: usize,
    log: AbortLogFake,
}

#[async_trait::async_trait]
impl CommittableOperator<Vec<u64>, Vec<u64>> for AbortLoggingStage {
    async fn process(
        &mut self,
        message: CommittableMessage<Vec<u64>>,
        out: &mut Vec<CommittableMessage<Vec<u64>>>,
    ) -> Result<()> {
        out.push(message);
        Ok(())
    }
    async fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.log.aborted(self.who, self.subtask, checkpoint_id);
        Ok(())
    }
}

#[async_trait::async_trait]
impl CommittableOperator<Vec<u64>, NoOutput> for AbortLoggingStage {
    async fn process(
        &mut self,
        _message: CommittableMessage<Vec<u64>>,
        _out: &mut Vec<CommittableMessage<NoOutput>>,
    ) -> Result<()> {
        Ok(())
    }
    async fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.log.aborted(self.who, self.subtask, checkpoint_id);
        Ok(())
    }
}

impl Sink<u64> for AbortLoggingSinkFake {
    type Writer = AbortLoggingWriter;
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<AbortLoggingWriter> {
        Ok(AbortLoggingWriter {
            staged: Vec::new(),
            subtask: ctx.subtask_index(),
            flushes: Arc::new(AtomicU32::new(0)),
            slow_flush: self.slow_flush,
            log: self.log.clone(),
        })
    }
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<u64, AbortLoggingWriter> {
        SinkCapabilities::none()
            .with_pre_commit_topology(Arc::clone(&self))
            .with_post_commit_topology(&self)
    }
}

impl SupportsCommitter<u64> for AbortLoggingSinkFake {
    type Committable = Vec<u64>;
    type Committer = AbortLoggingCommitter;
    fn create_committer(&self, ctx: &dyn InitContext) -> Result<AbortLoggingCommitter> {
        Ok(AbortLoggingCommitter {
            committed: Arc::clone(&self.committed),
            subtask: ctx.subtask_index(),
            log: self.log.clone(),
        })
    }
    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<Vec<u64>>> {
        Arc::new(VecSerializer::new(U64Serializer))
    }
}

impl SupportsPreCommitTopology<u64> for AbortLoggingSinkFake {
    type WriteResult = Vec<u64>;
    fn pre_commit_topology(&self) -> CommittableTopology<Vec<u64>, Vec<u64>> {
        let log = self.log.clone();
        CommittableTopology::new(CommittableStage {
            name: "pass".into(),
            parallelism: StageParallelism::SameAsWriter,
            routing: Routing::Forward,
            factory: Arc::new(move |ctx: &dyn InitContext, _: Vec<VersionedBytes>| {
                Ok(Box::new(AbortLoggingStage {
                    who: PRE_COMMIT,
                    subtask: ctx.subtask_index(),
                    log: log.clone(),
                })
                    as Box<dyn CommittableOperator<Vec<u64>, Vec<u64>>>)
            }),
        })
    }
}

impl SupportsPostCommitTopology<u64> for AbortLoggingSinkFake {
    fn post_commit_topology(&self) -> CommittableTopology<Vec<u64>, NoOutput> {
        let log = self.log.clone();
        CommittableTopology::new(CommittableStage {
            name: "drop".into(),
            parallelism: StageParallelism::SameAsWriter,
            routing: Routing::Forward,
            factory: Arc::new(move |ctx: &dyn InitContext, _: Vec<VersionedBytes>| {
                Ok(Box::new(AbortLoggingStage {
                    who: POST_COMMIT,
                    subtask: ctx.subtask_index(),
                    log: log.clone(),
                })
                    as Box<dyn CommittableOperator<Vec<u64>, NoOutput>>)
            }),
        })
    }
}

/// Checkpoint storage that refuses to write one checkpoint.
#[derive(Debug)]
struct RefusingStorageFake {
    inner: MemoryCheckpointStorage,
    refused: u64,
}

#[async_trait::async_trait]
impl CheckpointStorage for RefusingStorageFake {
    async fn write_checkpoint(
        &self,
        metadata: &CheckpointMetadata,
    ) -> std::result::Result<CheckpointLocation, StorageError> {
        if metadata.checkpoint_id == self.refused {
            return Err(StorageError::Io {
                path: "fake".into(),
                action: "write",
                source: std::io::Error::other("the storage fake refuses this checkpoint"),
            });
        }
        self.inner.write_checkpoint(metadata).await
    }
    async fn list_checkpoints(
        &self,
    ) -> std::result::Result<Vec<(u64, CheckpointLocation)>, StorageError> {
        self.inner.list_checkpoints().await
    }
    async fn read(
        &self,
        location: &CheckpointLocation,
    ) -> std::result::Result<CheckpointMetadata, StorageError> {
        self.inner.read(location).await
    }
    async fn discard(
        &self,
        location: &CheckpointLocation,
    ) -> std::result::Result<(), StorageError> {
        self.inner.discard(location).await
    }
}

// ---- the job and the check ----

/// Runs datagen (3 000 records in 2 splits, about 0.4 s) into the logging sink with
/// checkpoints every 20 ms, up to five failures tolerated, and returns the result, the log and
/// what was committed.
async fn run(
    config: impl FnOnce(JobConfig, &mut CheckpointConfig) -> JobConfig,
    slow_flush: Option<Duration>,
) -> (JobResult, AbortLogFake, Vec<u64>) {
    let log = AbortLogFake::default();
    let committed = Arc::new(Mutex::new(Vec::new()));
    let mut checkpoints = CheckpointConfig::every(Duration::from_millis(20));
    checkpoints.tolerable_failures = 5;
    let base = JobConfig::new("abort-notifications").parallelism(PARALLELISM);
    let job_config = config(base, &mut checkpoints).checkpointing(checkpoints);
    let env = StreamEnvironment::new(job_config);
    env.from_source(
        AbortLoggingSourceFake {
            inner: DataGeneratorSource::new(
                |n| n,
                Some(RECORDS),
                RateLimiterStrategy::per_second(7_500.0),
            ),
            log: log.clone(),
        },
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .uid("numbers")
    .sink_to_with(
        AbortLoggingSinkFake {
            log: log.clone(),
            committed: Arc::clone(&committed),
            slow_flush,
        },
        &SinkOptions {
            uid: Some("sink".into()),
            committer_parallelism: None,
        },
    );
    let result = tokio::time::timeout(Duration::from_secs(30), env.build().unwrap().execute())
        .await
        .expect("the job ends");
    let mut committed = committed.lock().unwrap().clone();
    committed.sort_unstable();
    (result, log, committed)
}

/// The checkpoints the history shows as failed, with their reasons.
fn failed(result: &JobResult) -> BTreeMap<u64, String> {
    result
        .checkpoint_history
        .iter()
        .filter_map(|r| match &r.status {
            CheckpointStatus::Failed(reason) => Some((r.id, reason.clone())),
            _ => None,
        })
        .collect()
}

/// The job finished in one attempt with every record committed once, some checkpoint failed
/// for `why`, and every subtask of every participant heard exactly the failed checkpoints.
fn assert_everyone_heard(result: &JobResult, log: &AbortLogFake, committed: &[u64], why: &str) {
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(result.attempts, 1, "an aborted checkpoint restarts nothing");
    assert_eq!(committed, (0..RECORDS).collect::<Vec<_>>(), "exactly once");
    let failed = failed(result);
    assert!(
        failed.values().any(|reason| reason.contains(why)),
        "a checkpoint failed for `{why}`: {failed:?}"
    );
    let ids: BTreeSet<u64> = failed.keys().copied().collect();
    let mut participants = vec![(ENUMERATOR, 0)];
    for who in [READER, WRITER, PRE_COMMIT, COMMITTER, POST_COMMIT] {
        participants.extend((0..PARALLELISM).map(|s| (who, s)));
    }
    let wrong: Vec<String> = participants
        .into_iter()
        .filter_map(|(who, subtask)| {
            let heard = log.heard(who, subtask);
            (heard != ids).then(|| format!("the {who} (subtask {subtask}) heard of {heard:?}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "checkpoints {ids:?} were aborted ({failed:?}), but {}",
        wrong.join("; ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_participant_hears_of_a_checkpoint_that_timed_out() {
    let (result, log, committed) = run(
        |config, checkpoints| {
            checkpoints.timeout = Duration::from_millis(100);
            config
        },
        Some(Duration::from_millis(300)),
    )
    .await;
    assert_everyone_heard(&result, &log, &committed, "not complete after 100ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_participant_hears_of_a_checkpoint_a_task_declined() {
    let decline = Arc::new(FailOnce::new(
        FaultPoint::DeclineCheckpoint,
        CheckpointId(3),
    ));
    let (result, log, committed) =
        run(|config, _| config.faults(Arc::clone(&decline) as _), None).await;
    let declined = decline.fired_at().expect("a task declined");
    assert!(declined.contains("checkpoint 3"), "{declined}");
    assert_everyone_heard(&result, &log, &committed, "declined by");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_participant_hears_of_a_checkpoint_the_storage_refused() {
    let storage = Arc::new(RefusingStorageFake {
        inner: MemoryCheckpointStorage::new(),
        refused: 3,
    });
    let (result, log, committed) = run(
        |config, _| config.storage(StorageConfig::Custom(storage)),
        None,
    )
    .await;
    assert_everyone_heard(&result, &log, &committed, "refuses this checkpoint");
}
