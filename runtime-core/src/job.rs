//! The job master: runs attempts of a job, coordinates checkpoints, restores and restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup, MetricValue};
use weir_connector_api::watermark::{CoordinatorStore, InMemoryCoordinatorStore};

use crate::element::{Barrier, Notification, SnapshotType};
use crate::error::{Result, RuntimeError};
use crate::exchange::{CheckpointingMode, Wiring};
use crate::fault::{FaultInjector, FaultPoint, FaultSite, NoFaults};
use crate::graph::{EdgeSpec, RestoredOperator, SourceSpec, SubtaskSetup, TaskGroup};
use crate::restart::{RestartDecision, RestartStrategy, RestartTracker};
use crate::restore::{self, JobShape, NonRestoredState, SnapshotOfOtherJob};
use crate::source::coordinator::{CoordinatorCommand, CoordinatorHandle};
use crate::storage::{
    read_savepoint, retain, write_savepoint, CheckpointLocation, CheckpointMetadata,
    CheckpointStorage, LocalCheckpointStorage, MemoryCheckpointStorage, OperatorSnapshot,
    SnapshotKind, StorageError, SubtaskSnapshot,
};
use crate::task::{MasterMsg, TaskCommand, TaskControl, TaskKey};

/// Periodic checkpointing.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// Time between two checkpoint triggers.
    pub interval: Duration,
    /// Barrier alignment (exactly-once) or not (at-least-once).
    pub mode: CheckpointingMode,
    /// Minimum time between the end of one checkpoint and the start of the next.
    pub min_pause: Duration,
    /// A checkpoint not complete after this long is aborted.
    pub timeout: Duration,
    /// How many checkpoints may be in progress at once.
    pub max_concurrent: usize,
    /// How many checkpoints may fail in a row before the job fails.
    pub tolerable_failures: u32,
    /// How many completed checkpoints to keep.
    pub retained: usize,
}

impl CheckpointConfig {
    /// Exactly-once checkpoints every `interval`, with Flink's defaults otherwise.
    pub fn every(interval: Duration) -> Self {
        CheckpointConfig {
            interval,
            mode: CheckpointingMode::ExactlyOnce,
            min_pause: Duration::ZERO,
            timeout: Duration::from_secs(600),
            max_concurrent: 1,
            tolerable_failures: 0,
            retained: 1,
        }
    }

    /// Sets the checkpointing mode.
    pub fn mode(mut self, mode: CheckpointingMode) -> Self {
        self.mode = mode;
        self
    }
}

/// Where completed checkpoints are kept.
#[derive(Debug, Clone, Default)]
pub enum StorageConfig {
    /// In memory: survives restarts of the job, not of the process.
    #[default]
    Memory,
    /// In a local directory: `<dir>/chk-<id>/_metadata`.
    Local(PathBuf),
    /// A storage of your own (e.g. S3).
    Custom(Arc<dyn CheckpointStorage>),
}

/// What a job starts from.
#[derive(Debug, Clone, Default)]
pub enum RestoreFrom {
    /// Empty state.
    #[default]
    Nothing,
    /// The newest readable checkpoint in the checkpoint storage. The job fails with
    /// [`RuntimeError::NoCheckpoint`] if there is none (starting empty would re-read the input).
    LatestCheckpoint,
    /// A savepoint directory (or its `_metadata` file).
    Savepoint(PathBuf),
}

/// What watermark alignment does with a source whose reader cannot pause splits
/// (`pipeline.watermark-alignment.allow-unaligned-source-splits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnalignedSplits {
    /// The job fails at start with a message naming the source (the default).
    #[default]
    Fail,
    /// The whole reader stops polling while it is ahead (Flink 1.15's task-level alignment).
    TaskLevel,
}

/// How a job is configured.
#[derive(Clone)]
pub struct JobConfig {
    /// The job's name.
    pub name: String,
    /// Default parallelism of sources and stages.
    pub parallelism: usize,
    /// Periodic checkpoints; `None` commits only at the end of bounded input.
    pub checkpointing: Option<CheckpointConfig>,
    /// Where checkpoints go.
    pub storage: StorageConfig,
    /// What to start from.
    pub restore: RestoreFrom,
    /// What a restore does with state that maps to no operator.
    pub non_restored_state: NonRestoredState,
    /// What a restore does with a snapshot taken by a job of another name.
    pub snapshot_of_other_job: SnapshotOfOtherJob,
    /// How to restart after failures.
    pub restart: RestartStrategy,
    /// Records per hand-off between tasks.
    pub batch_size: usize,
    /// Batches a channel holds before backpressure.
    pub channel_capacity: usize,
    /// How long a partly filled batch may wait before it is sent.
    pub buffer_timeout: Duration,
    /// How often watermarks are generated.
    pub watermark_interval: Duration,
    /// Watermark alignment for readers that cannot pause splits.
    pub unaligned_source_splits: UnalignedSplits,
    /// How often a committer retries a committable before the job fails.
    pub committer_retries: u32,
    /// Fault injection for tests.
    pub faults: Arc<dyn FaultInjector>,
    /// Seed for restart jitter.
    pub seed: u64,
}

impl std::fmt::Debug for JobConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobConfig")
            .field("name", &self.name)
            .field("parallelism", &self.parallelism)
            .field("checkpointing", &self.checkpointing)
            .field("storage", &self.storage)
            .field("restore", &self.restore)
            .field("restart", &self.restart)
            .finish_non_exhaustive()
    }
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            name: "weir-job".into(),
            parallelism: 1,
            checkpointing: None,
            storage: StorageConfig::Memory,
            restore: RestoreFrom::Nothing,
            non_restored_state: NonRestoredState::Refuse,
            snapshot_of_other_job: SnapshotOfOtherJob::Refuse,
            restart: RestartStrategy::None,
            batch_size: 1024,
            channel_capacity: 8,
            buffer_timeout: Duration::from_millis(50),
            watermark_interval: Duration::from_millis(200),
            unaligned_source_splits: UnalignedSplits::Fail,
            committer_retries: 10,
            faults: Arc::new(NoFaults),
            seed: 0,
        }
    }
}

impl JobConfig {
    /// A configuration with defaults and a name.
    pub fn new(name: &str) -> Self {
        JobConfig {
            name: name.to_owned(),
            ..Self::default()
        }
    }
    /// Sets the default parallelism.
    pub fn parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism;
        self
    }
    /// Enables periodic checkpoints.
    pub fn checkpointing(mut self, checkpointing: CheckpointConfig) -> Self {
        self.checkpointing = Some(checkpointing);
        self
    }
    /// Sets the checkpoint storage.
    pub fn storage(mut self, storage: StorageConfig) -> Self {
        self.storage = storage;
        self
    }
    /// Sets what the job starts from.
    pub fn restore(mut self, restore: RestoreFrom) -> Self {
        self.restore = restore;
        self
    }
    /// Sets what a restore does with state that maps to no operator.
    pub fn non_restored_state(mut self, policy: NonRestoredState) -> Self {
        self.non_restored_state = policy;
        self
    }
    /// Sets what a restore does with a snapshot taken by a job of another name.
    pub fn snapshot_of_other_job(mut self, policy: SnapshotOfOtherJob) -> Self {
        self.snapshot_of_other_job = policy;
        self
    }
    /// Sets the restart strategy.
    pub fn restart(mut self, restart: RestartStrategy) -> Self {
        self.restart = restart;
        self
    }
    /// Sets the fault injector.
    pub fn faults(mut self, faults: Arc<dyn FaultInjector>) -> Self {
        self.faults = faults;
        self
    }

    fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.parallelism == 0 {
            errors.push("parallelism must be at least 1".into());
        }
        if self.batch_size == 0 {
            errors.push("batch size must be at least 1".into());
        }
        if self.channel_capacity == 0 {
            errors.push("channel capacity must be at least 1".into());
        }
        if let Some(c) = &self.checkpointing {
            if c.interval.is_zero() {
                errors.push("checkpoint interval must be positive".into());
            }
            if c.max_concurrent == 0 {
                errors.push("at least one concurrent checkpoint must be allowed".into());
            }
            if c.retained == 0 {
                errors.push("at least one completed checkpoint must be retained".into());
            }
        }
        if let Err(e) = self.restart.validate() {
            errors.push(format!("restart strategy: {e}"));
        }
        errors
    }
}

/// How a stop-with-savepoint ends the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Finish the input (sources end, everything is flushed and committed), then a final
    /// savepoint: the job cannot continue from it with more of the same data.
    Drain,
    /// Take a savepoint and stop; the job resumes from it where it stopped.
    NoDrain,
}

/// How a job ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobStatus {
    /// All input was processed and committed.
    Finished,
    /// Cancelled by the user.
    Cancelled,
    /// Stopped with a savepoint.
    Stopped {
        /// Where the savepoint is.
        savepoint: CheckpointLocation,
    },
    /// Failed for good.
    Failed(RuntimeError),
}

/// The outcome of a job run.
#[derive(Debug)]
pub struct JobResult {
    /// How the job ended.
    pub status: JobStatus,
    /// How many attempts ran (1 without failures).
    pub attempts: u32,
    /// Checkpoints completed over all attempts.
    pub completed_checkpoints: u64,
    /// The root cause of every failed attempt, in order.
    pub failures: Vec<String>,
    /// The metrics of the last attempt, by scoped name (`<job>.<uid>.<subtask>.<metric>`).
    pub metrics: BTreeMap<String, MetricValue>,
    /// The checkpoint or savepoint id the last attempt started from, if any.
    pub restored_from: Option<u64>,
    /// Checkpoints skipped while restoring because they were corrupt or missing, with why.
    pub skipped_checkpoints: Vec<String>,
}

impl JobResult {
    /// Whether the job finished.
    pub fn is_finished(&self) -> bool {
        matches!(self.status, JobStatus::Finished)
    }

    /// A counter summed over every subtask of an operator, in the last attempt.
    pub fn counter(&self, uid: &str, name: &str) -> u64 {
        self.metrics
            .iter()
            .filter(|(k, _)| {
                let mut parts = k.split('.');
                parts.next();
                parts.next() == Some(uid) && k.ends_with(&format!(".{name}"))
            })
            .map(|(_, v)| match v {
                MetricValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    }
}

enum JobCommand {
    Savepoint {
        dir: PathBuf,
        reply: oneshot::Sender<Result<CheckpointLocation>>,
    },
    Stop {
        dir: PathBuf,
        mode: StopMode,
        reply: oneshot::Sender<Result<CheckpointLocation>>,
    },
    Cancel,
}

/// A running job.
pub struct JobHandle {
    commands: mpsc::UnboundedSender<JobCommand>,
    join: JoinHandle<JobResult>,
}

impl JobHandle {
    /// Takes a savepoint into `dir`; the job goes on.
    pub async fn savepoint(&self, dir: impl Into<PathBuf>) -> Result<CheckpointLocation> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(JobCommand::Savepoint {
                dir: dir.into(),
                reply,
            })
            .map_err(|_| RuntimeError::Lost("the job".into()))?;
        rx.await.map_err(|_| RuntimeError::Lost("the job".into()))?
    }

    /// Stops the job with a savepoint into `dir`.
    pub async fn stop_with_savepoint(
        &self,
        dir: impl Into<PathBuf>,
        mode: StopMode,
    ) -> Result<CheckpointLocation> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(JobCommand::Stop {
                dir: dir.into(),
                mode,
                reply,
            })
            .map_err(|_| RuntimeError::Lost("the job".into()))?;
        rx.await.map_err(|_| RuntimeError::Lost("the job".into()))?
    }

    /// Whether the job has ended (its result is ready for [`JobHandle::wait`]).
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Cancels the job.
    pub fn cancel(&self) {
        let _ = self.commands.send(JobCommand::Cancel);
    }

    /// Waits for the job to end.
    pub async fn wait(self) -> JobResult {
        match self.join.await {
            Ok(result) => result,
            Err(e) => JobResult {
                status: JobStatus::Failed(RuntimeError::Lost(format!("the job master ({e})"))),
                attempts: 0,
                completed_checkpoints: 0,
                failures: Vec::new(),
                metrics: BTreeMap::new(),
                restored_from: None,
                skipped_checkpoints: Vec::new(),
            },
        }
    }
}

/// A built job, ready to run.
pub struct Job {
    config: JobConfig,
    groups: Vec<TaskGroup>,
    edges: Vec<EdgeSpec>,
    sources: Vec<SourceSpec>,
}

impl Job {
    pub(crate) fn new(
        config: JobConfig,
        groups: Vec<TaskGroup>,
        edges: Vec<EdgeSpec>,
        sources: Vec<SourceSpec>,
    ) -> Result<Job> {
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(RuntimeError::InvalidJob(errors));
        }
        Ok(Job {
            config,
            groups,
            edges,
            sources,
        })
    }

    /// The task groups of the physical plan, with their parallelism and operator uids.
    pub fn describe(&self) -> Vec<(String, usize, Vec<String>)> {
        self.groups
            .iter()
            .map(|g| (g.name.clone(), g.parallelism, g.uids.clone()))
            .collect()
    }

    /// Starts the job on the current tokio runtime.
    pub fn start(self) -> JobHandle {
        let (commands, rx) = mpsc::unbounded_channel();
        let join = tokio::spawn(Master::new(self).run(rx));
        JobHandle { commands, join }
    }

    /// Runs the job to its end.
    pub async fn execute(self) -> JobResult {
        self.start().wait().await
    }
}

enum AttemptEnd {
    Finished,
    Cancelled,
    Stopped(CheckpointLocation),
    Failed {
        error: RuntimeError,
        coordinator: bool,
    },
}

struct PendingCheckpoint {
    kind: SnapshotType,
    started: Instant,
    expected: BTreeSet<TaskKey>,
    acks: BTreeMap<TaskKey, BTreeMap<String, SubtaskSnapshot>>,
    coordinators: BTreeMap<String, VersionedBytes>,
    savepoint: Option<(PathBuf, oneshot::Sender<Result<CheckpointLocation>>)>,
    stop_after: bool,
}

struct Master {
    job: Job,
    storage: Arc<dyn CheckpointStorage>,
    coordinators: Option<BTreeMap<String, CoordinatorHandle>>,
    next_id: u64,
    first_id: u64,
    completed: u64,
    metrics: InMemoryMetricGroup,
    restored_from: Option<u64>,
    skipped: Vec<String>,
    /// Job-level metrics (checkpoints), kept across attempts.
    job_metrics: InMemoryMetricGroup,
    /// Shared by every source coordinator of the job (watermark alignment groups).
    store: Arc<dyn CoordinatorStore>,
}

/// The state of one attempt.
struct Attempt {
    number: u32,
    controls: BTreeMap<TaskKey, TaskControl>,
    handles: Vec<JoinHandle<()>>,
    live: BTreeSet<TaskKey>,
    finished: BTreeSet<TaskKey>,
    last_acks: BTreeMap<TaskKey, BTreeMap<String, SubtaskSnapshot>>,
    pending: BTreeMap<CheckpointId, PendingCheckpoint>,
    last_completion: Instant,
    consecutive_failures: u32,
    /// A drain-stop in progress: the final checkpoint is a savepoint into this directory.
    drain: Option<(PathBuf, Option<oneshot::Sender<Result<CheckpointLocation>>>)>,
    stopped: Option<CheckpointLocation>,
    /// Finished tasks that have not yet acknowledged a checkpoint since they finished: each
    /// needs one (FLIP-147's final checkpoint) before it closes.
    awaiting_final: BTreeSet<TaskKey>,
    /// A drain's final savepoint failed: a plain final checkpoint takes its place.
    final_due: bool,
}

/// The directory a savepoint gets under the directory it was asked for: new for every
/// savepoint (`savepoint-<id>-<unix millis>`), so an earlier one is never in the way.
fn savepoint_dir_name(id: CheckpointId) -> String {
    format!("savepoint-{}-{}", id.0, now_millis())
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Splits an operator's checkpointed state over a (possibly new) parallelism: same parallelism
/// keeps each subtask's state; otherwise every named list is pooled and dealt round-robin.
pub(crate) fn distribute(
    op: Option<&OperatorSnapshot>,
    parallelism: usize,
    subtask: usize,
) -> RestoredOperator {
    let Some(op) = op else {
        return RestoredOperator::default();
    };
    let mut restored = RestoredOperator {
        finished: op.finished,
        state: BTreeMap::new(),
    };
    if op.parallelism as usize == parallelism {
        if let Some(s) = op.subtasks.get(subtask) {
            restored.state = s.state.clone();
        }
        return restored;
    }
    let mut pooled: BTreeMap<String, Vec<VersionedBytes>> = BTreeMap::new();
    for s in &op.subtasks {
        for (name, values) in &s.state {
            pooled
                .entry(name.clone())
                .or_default()
                .extend(values.iter().cloned());
        }
    }
    for (name, values) in pooled {
        if name.starts_with("union:") {
            // Keyed state: every subtask sees everything and keeps its own keys.
            restored.state.insert(name, values);
            continue;
        }
        let mine = values
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % parallelism.max(1) == subtask)
            .map(|(_, v)| v)
            .collect();
        restored.state.insert(name, mine);
    }
    restored
}

impl Master {
    fn new(job: Job) -> Self {
        let storage: Arc<dyn CheckpointStorage> = match &job.config.storage {
            StorageConfig::Memory => Arc::new(MemoryCheckpointStorage::new()),
            StorageConfig::Local(dir) => Arc::new(LocalCheckpointStorage::new(dir.clone())),
            StorageConfig::Custom(s) => Arc::clone(s),
        };
        let metrics = InMemoryMetricGroup::new(job.config.name.clone());
        let job_metrics = InMemoryMetricGroup::new(job.config.name.clone());
        Master {
            job,
            storage,
            coordinators: None,
            next_id: 1,
            first_id: 1,
            completed: 0,
            metrics,
            restored_from: None,
            skipped: Vec::new(),
            job_metrics,
            store: Arc::new(InMemoryCoordinatorStore::default()),
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<JobCommand>) -> JobResult {
        let mut failures = Vec::new();
        let mut attempts = 0;
        let status = match self
            .run_attempts(&mut commands, &mut failures, &mut attempts)
            .await
        {
            Ok(status) | Err(status) => status,
        };
        if let Some(coordinators) = self.coordinators.take() {
            for c in coordinators.values() {
                c.close().await;
            }
        }
        JobResult {
            status,
            attempts,
            completed_checkpoints: self.completed,
            failures,
            metrics: self.snapshot_metrics(),
            restored_from: self.restored_from,
            skipped_checkpoints: self.skipped,
        }
    }

    /// Task metrics of the current attempt and the job's checkpoint metrics, also published
    /// through the `metrics` facade.
    fn snapshot_metrics(&self) -> BTreeMap<String, MetricValue> {
        let mut all = self.metrics.snapshot();
        all.extend(self.job_metrics.snapshot());
        crate::metrics_export::publish(&all);
        all
    }

    /// The newest readable checkpoint of this run (ids from `first_id`), skipping corrupt ones.
    async fn latest_of_run(
        &mut self,
    ) -> std::result::Result<Option<CheckpointMetadata>, StorageError> {
        let mut list = self.storage.list_checkpoints().await?;
        list.retain(|(id, _)| *id >= self.first_id);
        let mut skipped = Vec::new();
        for (id, location) in list.into_iter().rev() {
            match self.storage.read(&location).await {
                Ok(m) => return Ok(Some(m)),
                Err(e @ (StorageError::Corrupt { .. } | StorageError::NotFound { .. })) => {
                    tracing::warn!(
                        checkpoint = id,
                        "{e}; trying the previous retained checkpoint"
                    );
                    self.skipped.push(e.to_string());
                    skipped.push((location, e));
                }
                Err(e) => return Err(e),
            }
        }
        if skipped.is_empty() {
            Ok(None)
        } else {
            // Starting empty would silently re-read everything: refuse, and say why.
            Err(StorageError::NoReadableCheckpoint { skipped })
        }
    }

    /// Refuses a snapshot that does not fit the job (see [`restore`]); logs the unmatched
    /// state that [`NonRestoredState::Allow`] drops.
    fn check_restore(&self, snapshot: &CheckpointMetadata, what: &str) -> Result<()> {
        let config = &self.job.config;
        let shape = JobShape {
            name: &config.name,
            uids: self
                .job
                .groups
                .iter()
                .flat_map(|g| g.uids.iter().map(String::as_str))
                .collect(),
            schemas: self
                .job
                .sources
                .iter()
                .filter(|s| !s.schema.is_empty())
                .map(|s| (s.uid.as_str(), s.schema.as_slice()))
                .collect(),
        };
        let (problems, allowed) = restore::check(
            snapshot,
            &shape,
            config.non_restored_state,
            config.snapshot_of_other_job,
        );
        for dropped in &allowed {
            tracing::warn!(job = %config.name, "{what}: {dropped}; its state is dropped (non-restored state allowed)");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RuntimeError::RestoreRefused {
                snapshot: what.to_owned(),
                problems,
            })
        }
    }

    async fn initial_restore(
        &mut self,
    ) -> std::result::Result<Option<CheckpointMetadata>, RuntimeError> {
        let existing = self.storage.list_checkpoints().await?;
        let max_existing = existing.last().map_or(0, |(id, _)| *id);
        let restored = match &self.job.config.restore {
            RestoreFrom::Nothing => None,
            RestoreFrom::Savepoint(path) => {
                let metadata = read_savepoint(path).await?;
                self.check_restore(&metadata, &format!("savepoint {}", path.display()))?;
                tracing::info!(
                    job = %self.job.config.name,
                    "restoring from savepoint {} (id {})",
                    path.display(),
                    metadata.checkpoint_id
                );
                Some(metadata)
            }
            RestoreFrom::LatestCheckpoint => {
                self.first_id = 0;
                let Some(metadata) = self.latest_of_run().await? else {
                    return Err(RuntimeError::NoCheckpoint {
                        storage: self.storage.describe(),
                    });
                };
                let id = metadata.checkpoint_id;
                self.check_restore(
                    &metadata,
                    &format!("checkpoint {id} in {}", self.storage.describe()),
                )?;
                tracing::info!(
                    job = %self.job.config.name,
                    "restoring from checkpoint {id} in {}",
                    self.storage.describe()
                );
                Some(metadata)
            }
        };
        let restored_id = restored.as_ref().map_or(0, |m| m.checkpoint_id);
        self.next_id = max_existing.max(restored_id) + 1;
        self.first_id = self.next_id;
        Ok(restored)
    }

    async fn run_attempts(
        &mut self,
        commands: &mut mpsc::UnboundedReceiver<JobCommand>,
        failures: &mut Vec<String>,
        attempts: &mut u32,
    ) -> std::result::Result<JobStatus, JobStatus> {
        let initial = self.initial_restore().await.map_err(JobStatus::Failed)?;
        let mut restore = initial.clone();
        let mut tracker =
            RestartTracker::new(self.job.config.restart.clone(), self.job.config.seed);
        loop {
            let started = Instant::now();
            self.restored_from = restore.as_ref().map(|m| m.checkpoint_id);
            let end = self
                .run_attempt(*attempts, restore.as_ref(), commands)
                .await;
            *attempts += 1;
            match end {
                AttemptEnd::Finished => return Ok(JobStatus::Finished),
                AttemptEnd::Cancelled => return Ok(JobStatus::Cancelled),
                AttemptEnd::Stopped(savepoint) => return Ok(JobStatus::Stopped { savepoint }),
                AttemptEnd::Failed { error, coordinator } => {
                    tracing::warn!(job = %self.job.config.name, attempt = *attempts, "job attempt failed: {error}");
                    failures.push(error.to_string());
                    if matches!(error, RuntimeError::InvalidJob(_)) {
                        // Restarting cannot fix the job itself.
                        return Err(JobStatus::Failed(error));
                    }
                    if coordinator {
                        if let Some(cs) = self.coordinators.take() {
                            for c in cs.values() {
                                c.close().await;
                            }
                        }
                    }
                    match tracker.on_failure(Instant::now().into_std(), started.into_std()) {
                        RestartDecision::RestartAfter(delay) => {
                            tokio::select! {
                                () = tokio::time::sleep(delay) => {}
                                cmd = commands.recv() => {
                                    if matches!(cmd, Some(JobCommand::Cancel) | None) {
                                        return Ok(JobStatus::Cancelled);
                                    }
                                }
                            }
                            restore = match self.latest_of_run().await {
                                Ok(Some(m)) => Some(m),
                                Ok(None) => initial.clone(),
                                Err(e) => return Err(JobStatus::Failed(e.into())),
                            };
                        }
                        RestartDecision::GiveUp { reason } => {
                            return Err(JobStatus::Failed(RuntimeError::GaveUp {
                                attempts: *attempts,
                                reason,
                                cause: Box::new(error),
                            }));
                        }
                    }
                }
            }
        }
    }

    async fn run_attempt(
        &mut self,
        attempt: u32,
        restore: Option<&CheckpointMetadata>,
        commands: &mut mpsc::UnboundedReceiver<JobCommand>,
    ) -> AttemptEnd {
        let (master_tx, mut master_rx) = mpsc::unbounded_channel();
        self.metrics = InMemoryMetricGroup::new(self.job.config.name.clone());
        let mut state = Attempt {
            number: attempt,
            controls: BTreeMap::new(),
            handles: Vec::new(),
            live: BTreeSet::new(),
            finished: BTreeSet::new(),
            last_acks: BTreeMap::new(),
            pending: BTreeMap::new(),
            last_completion: Instant::now(),
            consecutive_failures: 0,
            drain: None,
            stopped: None,
            awaiting_final: BTreeSet::new(),
            final_due: false,
        };
        if let Err(error) = self.launch(&mut state, restore, &master_tx) {
            self.teardown(&mut state).await;
            let coordinator = self.coordinators.is_none();
            return AttemptEnd::Failed { error, coordinator };
        }
        let checkpointing = self.job.config.checkpointing.clone();
        let interval = checkpointing
            .as_ref()
            .map_or(Duration::from_secs(3600), |c| c.interval);
        let mut tick = tokio::time::interval_at(Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut metrics_tick = tokio::time::interval(Duration::from_secs(1));
        metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if state.live.is_empty() {
                return match state.stopped.take() {
                    Some(location) => AttemptEnd::Stopped(location),
                    None => AttemptEnd::Finished,
                };
            }
            let timeout_at = checkpointing
                .as_ref()
                .and_then(|c| state.pending.values().map(|p| p.started + c.timeout).min());
            let step = tokio::select! {
                biased;
                message = master_rx.recv() => match message {
                    Some(message) => self.on_message(&mut state, message).await,
                    None => Err(AttemptEnd::Failed { error: RuntimeError::Lost("every task".into()), coordinator: false }),
                },
                command = commands.recv() => self.on_command(&mut state, command).await,
                _ = tick.tick(), if checkpointing.is_some() => {
                    self.periodic_trigger(&mut state).await
                }
                () = sleep_until_opt(timeout_at) => self.abort_expired(&mut state),
                _ = metrics_tick.tick() => {
                    self.snapshot_metrics();
                    Ok(())
                }
            };
            let step = match step {
                Ok(()) if std::mem::take(&mut state.final_due) => {
                    self.maybe_final_checkpoint(&mut state).await
                }
                step => step,
            };
            if let Err(end) = step {
                let end = match end {
                    AttemptEnd::Failed {
                        error: lost @ RuntimeError::Lost(_),
                        coordinator,
                    } => {
                        // A closed channel is usually a symptom: prefer the failure behind it.
                        let error = root_cause(&mut master_rx, lost).await;
                        AttemptEnd::Failed { error, coordinator }
                    }
                    end => end,
                };
                match &end {
                    AttemptEnd::Stopped(_) | AttemptEnd::Finished => {
                        self.cancel_tasks(&mut state).await;
                    }
                    _ => self.teardown(&mut state).await,
                }
                return end;
            }
        }
    }

    /// Starts coordinators (or resets them) and every task of the attempt.
    fn launch(
        &mut self,
        state: &mut Attempt,
        restore: Option<&CheckpointMetadata>,
        master: &mpsc::UnboundedSender<MasterMsg>,
    ) -> Result<()> {
        let restored_checkpoint = restore.map(|m| CheckpointId(m.checkpoint_id));
        let parallelism_of = |group: usize| self.job.groups.get(group).map_or(1, |g| g.parallelism);
        match &self.coordinators {
            Some(existing) => {
                for spec in &self.job.sources {
                    if let Some(c) = existing.get(&spec.uid) {
                        c.send(CoordinatorCommand::ReadersReset {
                            restored_from: restored_checkpoint,
                            parallelism: parallelism_of(spec.group),
                        });
                    }
                }
            }
            None => {
                let mut started = BTreeMap::new();
                for spec in &self.job.sources {
                    let coordinator_state = restore
                        .and_then(|m| m.operators.get(&spec.uid))
                        .and_then(|op| op.coordinator.clone());
                    let metrics: Arc<dyn MetricGroup> =
                        Arc::new(self.metrics.group(&spec.uid).group("coordinator"));
                    let handle = (spec.start)(
                        parallelism_of(spec.group),
                        coordinator_state,
                        metrics,
                        master.clone(),
                        Arc::clone(&self.store),
                    )?;
                    started.insert(spec.uid.clone(), handle);
                }
                self.coordinators = Some(started);
            }
        }
        let coordinators = self.coordinators.clone().unwrap_or_default();
        let mut wiring = Wiring::default();
        for (id, edge) in self.job.edges.iter().enumerate() {
            (edge.connect)(
                &mut wiring,
                id,
                parallelism_of(edge.from),
                parallelism_of(edge.to),
                edge.pointwise,
                self.job.config.channel_capacity,
            );
        }
        let mut source_controls: BTreeMap<String, Vec<TaskControl>> = BTreeMap::new();
        let mut futures = Vec::new();
        for (g, group) in self.job.groups.iter().enumerate() {
            for subtask in 0..group.parallelism {
                let key = TaskKey { group: g, subtask };
                let (control_tx, control_rx) = mpsc::unbounded_channel();
                let restored: BTreeMap<String, RestoredOperator> = group
                    .uids
                    .iter()
                    .map(|uid| {
                        let op = restore.and_then(|m| m.operators.get(uid));
                        (uid.clone(), distribute(op, group.parallelism, subtask))
                    })
                    .collect();
                let mut setup = SubtaskSetup {
                    key,
                    parallelism: group.parallelism,
                    attempt: state.number,
                    wiring: &mut wiring,
                    restored: &restored,
                    restored_checkpoint,
                    coordinators: &coordinators,
                    control: Some(control_rx),
                    control_tx: control_tx.clone(),
                    master: master.clone(),
                    config: &self.job.config,
                    faults: Arc::clone(&self.job.config.faults),
                    metrics: &self.metrics,
                };
                let future = (group.factory)(&mut setup)?;
                if group.is_source {
                    if let Some(uid) = group.uids.first() {
                        source_controls
                            .entry(uid.clone())
                            .or_default()
                            .push(control_tx.clone());
                    }
                }
                futures.push(future);
                state.controls.insert(key, control_tx);
                state.live.insert(key);
            }
        }
        for (uid, controls) in source_controls {
            if let Some(c) = coordinators.get(&uid) {
                c.send(CoordinatorCommand::Attach { controls });
            }
        }
        for future in futures {
            state.handles.push(tokio::spawn(future));
        }
        Ok(())
    }

    fn is_source(&self, key: TaskKey) -> bool {
        self.job.groups.get(key.group).is_some_and(|g| g.is_source)
    }

    async fn on_message(
        &mut self,
        state: &mut Attempt,
        message: MasterMsg,
    ) -> std::result::Result<(), AttemptEnd> {
        match &message {
            MasterMsg::Ack {
                task, checkpoint, ..
            } => tracing::debug!(?task, %checkpoint, "ack"),
            MasterMsg::Finished { task } => tracing::debug!(?task, "finished"),
            MasterMsg::Closed { task } => tracing::debug!(?task, "closed"),
            _ => {}
        }
        match message {
            MasterMsg::Ack {
                task,
                checkpoint,
                snapshots,
            } => {
                state.awaiting_final.remove(&task);
                state.last_acks.insert(task, snapshots.clone());
                if let Some(p) = state.pending.get_mut(&checkpoint) {
                    p.acks.insert(task, snapshots);
                }
                self.complete_ready(state).await?;
            }
            MasterMsg::Finished { task } => {
                state.awaiting_final.insert(task);
                state.finished.insert(task);
                // A checkpoint in progress cannot reach this task in-band any more.
                for (id, p) in &state.pending {
                    if p.expected.contains(&task) && !p.acks.contains_key(&task) {
                        if let Some(control) = state.controls.get(&task) {
                            let _ = control.send(TaskCommand::TriggerBarrier(Barrier {
                                checkpoint_id: *id,
                                kind: p.kind,
                            }));
                        }
                    }
                }
                self.maybe_final_checkpoint(state).await?;
            }
            MasterMsg::Closed { task } => {
                state.live.remove(&task);
                self.complete_ready(state).await?;
            }
            MasterMsg::Failed { task, error } => {
                tracing::debug!(group = task.group, subtask = task.subtask, "task failed");
                return Err(AttemptEnd::Failed {
                    error,
                    coordinator: false,
                });
            }
            MasterMsg::CoordinatorFailed { source, error } => {
                tracing::debug!(%source, "source coordinator failed");
                return Err(AttemptEnd::Failed {
                    error,
                    coordinator: true,
                });
            }
        }
        Ok(())
    }

    async fn on_command(
        &mut self,
        state: &mut Attempt,
        command: Option<JobCommand>,
    ) -> std::result::Result<(), AttemptEnd> {
        match command {
            None | Some(JobCommand::Cancel) => Err(AttemptEnd::Cancelled),
            Some(JobCommand::Savepoint { dir, reply }) => {
                self.trigger(state, SnapshotType::Savepoint, Some((dir, reply)), false)
                    .await
            }
            Some(JobCommand::Stop {
                dir,
                mode: StopMode::NoDrain,
                reply,
            }) => {
                self.trigger(state, SnapshotType::Savepoint, Some((dir, reply)), true)
                    .await
            }
            Some(JobCommand::Stop {
                dir,
                mode: StopMode::Drain,
                reply,
            }) => {
                state.drain = Some((dir, Some(reply)));
                for (key, control) in &state.controls {
                    if self.is_source(*key) {
                        let _ = control.send(TaskCommand::StopSource { drain: true });
                    }
                }
                Ok(())
            }
        }
    }

    async fn periodic_trigger(
        &mut self,
        state: &mut Attempt,
    ) -> std::result::Result<(), AttemptEnd> {
        let Some(c) = self.job.config.checkpointing.clone() else {
            return Ok(());
        };
        if state.pending.len() >= c.max_concurrent || state.last_completion.elapsed() < c.min_pause
        {
            return Ok(());
        }
        if state.drain.is_some() {
            return Ok(()); // the final savepoint follows the drain
        }
        self.trigger(state, SnapshotType::Checkpoint, None, false)
            .await
    }

    async fn maybe_final_checkpoint(
        &mut self,
        state: &mut Attempt,
    ) -> std::result::Result<(), AttemptEnd> {
        // Every live task has finished (post-commit stages finish only after their committers'
        // final commit) and some finished task still needs a checkpoint to close after.
        let all_finished = state.live.iter().all(|k| {
            state.finished.contains(k)
                || self.job.groups.get(k.group).is_some_and(|g| g.post_commit)
        });
        if !all_finished || !state.pending.is_empty() || state.awaiting_final.is_empty() {
            return Ok(());
        }
        match state.drain.as_mut() {
            Some((dir, reply)) => {
                let dir = dir.clone();
                match reply.take() {
                    Some(reply) => {
                        self.trigger(state, SnapshotType::Savepoint, Some((dir, reply)), false)
                            .await
                    }
                    None => Ok(()),
                }
            }
            None => {
                self.trigger(state, SnapshotType::Checkpoint, None, false)
                    .await
            }
        }
    }

    async fn trigger(
        &mut self,
        state: &mut Attempt,
        kind: SnapshotType,
        savepoint: Option<(PathBuf, oneshot::Sender<Result<CheckpointLocation>>)>,
        stop_after: bool,
    ) -> std::result::Result<(), AttemptEnd> {
        let id = CheckpointId(self.next_id);
        self.next_id += 1;
        tracing::debug!(checkpoint = %id, ?kind, live = state.live.len(), finished = state.finished.len(), "trigger");
        let barrier = Barrier {
            checkpoint_id: id,
            kind,
        };
        let mut coordinator_states = BTreeMap::new();
        for (uid, c) in self.coordinators.clone().unwrap_or_default() {
            match c.checkpoint(barrier).await {
                Ok(bytes) => {
                    coordinator_states.insert(uid, bytes);
                }
                Err(error) => {
                    if let Some((_, reply)) = savepoint {
                        self.savepoint_failed(state, id, reply, error);
                        return Ok(());
                    }
                    return self.checkpoint_failed(state, id, error.to_string());
                }
            }
        }
        // Sources got the barrier from their coordinators; tasks whose inputs ended get it here.
        for key in &state.live {
            if state.finished.contains(key) && !self.is_source(*key) {
                if let Some(control) = state.controls.get(key) {
                    let _ = control.send(TaskCommand::TriggerBarrier(barrier));
                }
            }
        }
        state.pending.insert(
            id,
            PendingCheckpoint {
                kind,
                started: Instant::now(),
                expected: state.live.clone(),
                acks: BTreeMap::new(),
                coordinators: coordinator_states,
                savepoint,
                stop_after,
            },
        );
        Ok(())
    }

    /// A savepoint failed: its requester gets the error and the job goes on. As in Flink, a
    /// failed savepoint never counts toward the tolerable checkpoint failures, so it never
    /// restarts the job. A drain whose final savepoint failed ends with a plain final
    /// checkpoint instead (everything read is still committed).
    fn savepoint_failed(
        &mut self,
        state: &mut Attempt,
        id: CheckpointId,
        reply: oneshot::Sender<Result<CheckpointLocation>>,
        error: RuntimeError,
    ) {
        tracing::warn!(checkpoint = %id, "savepoint failed: {error}; the job goes on");
        self.job_metrics
            .group("checkpoints")
            .counter("failedSavepoints")
            .inc();
        for control in state.controls.values() {
            let _ = control.send(TaskCommand::Notify(Notification::CheckpointAborted(id)));
        }
        let _ = reply.send(Err(error));
        if state.drain.take().is_some() {
            state.final_due = true;
        }
    }

    fn checkpoint_failed(
        &mut self,
        state: &mut Attempt,
        id: CheckpointId,
        reason: String,
    ) -> std::result::Result<(), AttemptEnd> {
        state.consecutive_failures += 1;
        self.job_metrics
            .group("checkpoints")
            .counter("failed")
            .inc();
        for control in state.controls.values() {
            let _ = control.send(TaskCommand::Notify(Notification::CheckpointAborted(id)));
        }
        let tolerable = self
            .job
            .config
            .checkpointing
            .as_ref()
            .map_or(0, |c| c.tolerable_failures);
        tracing::warn!(checkpoint = %id, "checkpoint failed: {reason}");
        if state.consecutive_failures > tolerable {
            return Err(AttemptEnd::Failed {
                error: RuntimeError::CheckpointsFailing {
                    failed: state.consecutive_failures,
                    tolerable,
                    last: reason,
                },
                coordinator: false,
            });
        }
        Ok(())
    }

    fn abort_expired(&mut self, state: &mut Attempt) -> std::result::Result<(), AttemptEnd> {
        let Some(c) = self.job.config.checkpointing.clone() else {
            return Ok(());
        };
        let expired: Vec<CheckpointId> = state
            .pending
            .iter()
            .filter(|(_, p)| p.started.elapsed() >= c.timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(p) = state.pending.remove(&id) {
                let reason = format!("not complete after {:?}", c.timeout);
                match p.savepoint {
                    Some((_, reply)) => self.savepoint_failed(
                        state,
                        id,
                        reply,
                        RuntimeError::Lost(format!("savepoint {id} ({reason})")),
                    ),
                    None => self.checkpoint_failed(state, id, reason)?,
                }
            }
        }
        Ok(())
    }

    /// Completes every pending checkpoint whose acks are all in, oldest first.
    async fn complete_ready(&mut self, state: &mut Attempt) -> std::result::Result<(), AttemptEnd> {
        loop {
            let ready = state.pending.iter().find_map(|(id, p)| {
                let done = p
                    .expected
                    .iter()
                    .all(|k| p.acks.contains_key(k) || !state.live.contains(k));
                done.then_some(*id)
            });
            let Some(id) = ready else {
                return Ok(());
            };
            let Some(p) = state.pending.remove(&id) else {
                return Ok(());
            };
            self.complete(state, id, p).await?;
        }
    }

    fn metadata(
        &self,
        state: &Attempt,
        id: CheckpointId,
        p: &PendingCheckpoint,
    ) -> CheckpointMetadata {
        let mut operators = BTreeMap::new();
        for (g, group) in self.job.groups.iter().enumerate() {
            for uid in &group.uids {
                let mut subtasks = Vec::with_capacity(group.parallelism);
                let mut any = false;
                for subtask in 0..group.parallelism {
                    let key = TaskKey { group: g, subtask };
                    let snapshot = p
                        .acks
                        .get(&key)
                        .or_else(|| state.last_acks.get(&key))
                        .and_then(|m| m.get(uid))
                        .cloned();
                    any |= snapshot.is_some();
                    subtasks.push(snapshot.unwrap_or_default());
                }
                let coordinator = p.coordinators.get(uid).cloned();
                if !any && coordinator.is_none() {
                    continue;
                }
                let finished = subtasks.iter().all(|s| s.finished);
                let schema = self
                    .job
                    .sources
                    .iter()
                    .find(|s| &s.uid == uid)
                    .map(|s| s.schema.clone())
                    .unwrap_or_default();
                operators.insert(
                    uid.clone(),
                    OperatorSnapshot {
                        parallelism: group.parallelism as u32,
                        finished,
                        coordinator,
                        subtasks,
                        schema,
                    },
                );
            }
        }
        CheckpointMetadata {
            checkpoint_id: id.0,
            kind: match p.kind {
                SnapshotType::Checkpoint => SnapshotKind::Checkpoint,
                SnapshotType::Savepoint => SnapshotKind::Savepoint,
            },
            job_name: self.job.config.name.clone(),
            created_at_millis: now_millis(),
            operators,
        }
    }

    async fn complete(
        &mut self,
        state: &mut Attempt,
        id: CheckpointId,
        mut p: PendingCheckpoint,
    ) -> std::result::Result<(), AttemptEnd> {
        let metadata = self.metadata(state, id, &p);
        let location = match p.savepoint.as_ref() {
            Some((dir, _)) => write_savepoint(&dir.join(savepoint_dir_name(id)), &metadata).await,
            None => self.storage.write_checkpoint(&metadata).await,
        };
        let location = match location {
            Ok(l) => l,
            Err(e) => {
                if let Some((_, reply)) = p.savepoint.take() {
                    self.savepoint_failed(state, id, reply, RuntimeError::Storage(e));
                    return Ok(());
                }
                return self.checkpoint_failed(state, id, e.to_string());
            }
        };
        if p.kind == SnapshotType::Checkpoint {
            if let Some(c) = &self.job.config.checkpointing {
                if let Err(e) = retain(self.storage.as_ref(), c.retained).await {
                    tracing::warn!("discarding old checkpoints failed: {e}");
                }
            }
        }
        // The checkpoint is durable; a failure from here on must not lose its commits.
        let site = FaultSite {
            operator: "job",
            subtask: 0,
            checkpoint_id: id,
            attempt: state.number,
        };
        if let Err(reason) = self
            .job
            .config
            .faults
            .check(FaultPoint::AfterSnapshotBeforeNotify, &site)
        {
            return Err(AttemptEnd::Failed {
                error: RuntimeError::Injected(reason),
                coordinator: false,
            });
        }
        self.completed += 1;
        let size: usize = metadata
            .operators
            .values()
            .flat_map(|op| {
                op.coordinator
                    .iter()
                    .chain(op.subtasks.iter().flat_map(|s| s.state.values().flatten()))
            })
            .map(|v| v.bytes.len())
            .sum();
        let checkpoints = self.job_metrics.group("checkpoints");
        checkpoints.counter("completed").inc();
        checkpoints
            .gauge("lastDurationMs")
            .set(p.started.elapsed().as_millis() as i64);
        checkpoints.gauge("lastSizeBytes").set(size as i64);
        state.consecutive_failures = 0;
        state.last_completion = Instant::now();
        if let Some(cs) = &self.coordinators {
            for c in cs.values() {
                c.send(CoordinatorCommand::CheckpointComplete(id));
            }
        }
        for key in &state.live {
            if let Some(control) = state.controls.get(key) {
                let _ = control.send(TaskCommand::Notify(Notification::CheckpointComplete(id)));
            }
        }
        let drained = state.drain.is_some() && p.kind == SnapshotType::Savepoint;
        if let Some((_, reply)) = p.savepoint.take() {
            let _ = reply.send(Ok(location.clone()));
        }
        if drained {
            state.stopped = Some(location.clone());
        }
        if p.stop_after {
            state.stopped = Some(location.clone());
            return Err(AttemptEnd::Stopped(location));
        }
        self.maybe_final_checkpoint(state).await
    }

    /// Cancels live tasks after a stop; waits briefly for them to close.
    async fn cancel_tasks(&mut self, state: &mut Attempt) {
        for control in state.controls.values() {
            let _ = control.send(TaskCommand::Cancel);
        }
        for handle in state.handles.drain(..) {
            let abort = handle.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), handle)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Tears an attempt down after a failure or a cancel.
    async fn teardown(&mut self, state: &mut Attempt) {
        for control in state.controls.values() {
            let _ = control.send(TaskCommand::Cancel);
        }
        for handle in state.handles.drain(..) {
            handle.abort();
            let _ = handle.await;
        }
        for (_, p) in std::mem::take(&mut state.pending) {
            if let Some((_, reply)) = p.savepoint {
                let _ = reply.send(Err(RuntimeError::Lost(
                    "the job attempt failed before the savepoint completed".into(),
                )));
            }
        }
        if let Some((_, Some(reply))) = state.drain.take() {
            let _ = reply.send(Err(RuntimeError::Lost(
                "the job attempt failed while draining".into(),
            )));
        }
    }
}

/// Waits briefly for a more telling failure than a lost channel.
async fn root_cause(
    inbox: &mut mpsc::UnboundedReceiver<MasterMsg>,
    lost: RuntimeError,
) -> RuntimeError {
    let deadline = Instant::now() + Duration::from_millis(200);
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, inbox.recv()).await {
        match message {
            MasterMsg::Failed { error, .. } | MasterMsg::CoordinatorFailed { error, .. }
                if !matches!(error, RuntimeError::Lost(_)) =>
            {
                return error;
            }
            _ => {}
        }
    }
    lost
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(parallelism: u32, per_subtask: &[&[u8]]) -> OperatorSnapshot {
        OperatorSnapshot {
            parallelism,
            finished: false,
            coordinator: None,
            subtasks: per_subtask
                .iter()
                .map(|values| SubtaskSnapshot {
                    finished: false,
                    state: BTreeMap::from([(
                        "splits".to_string(),
                        values
                            .iter()
                            .map(|v| VersionedBytes {
                                version: 1,
                                bytes: vec![*v],
                            })
                            .collect(),
                    )]),
                })
                .collect(),
            schema: Vec::new(),
        }
    }

    fn values(r: &RestoredOperator) -> Vec<u8> {
        r.state
            .get("splits")
            .map(|v| v.iter().map(|b| b.bytes[0]).collect())
            .unwrap_or_default()
    }

    #[test]
    fn same_parallelism_keeps_each_subtask_state() {
        let snapshot = op(2, &[&[1, 2], &[3]]);
        assert_eq!(values(&distribute(Some(&snapshot), 2, 0)), vec![1, 2]);
        assert_eq!(values(&distribute(Some(&snapshot), 2, 1)), vec![3]);
    }

    #[test]
    fn rescale_deals_every_value_exactly_once() {
        let snapshot = op(2, &[&[1, 2, 3], &[4, 5]]);
        let mut all: Vec<u8> = (0..4)
            .flat_map(|s| values(&distribute(Some(&snapshot), 4, s)))
            .collect();
        all.sort_unstable();
        assert_eq!(all, vec![1, 2, 3, 4, 5]);
        let down = op(4, &[&[1], &[2], &[3], &[4]]);
        let mut all: Vec<u8> = (0..2)
            .flat_map(|s| values(&distribute(Some(&down), 2, s)))
            .collect();
        all.sort_unstable();
        assert_eq!(all, vec![1, 2, 3, 4]);
    }
}
