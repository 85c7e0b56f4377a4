//! The job master: runs attempts of a job, restores and restarts; its checkpoint coordinator
//! is in `job/checkpoints.rs`.

mod checkpoints;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup, MetricValue};
use weir_connector_api::watermark::{CoordinatorStore, InMemoryCoordinatorStore};

pub use crate::config::{CheckpointConfig, JobConfig, RestoreFrom, StorageConfig, UnalignedSplits};
use crate::element::{Barrier, SnapshotType};
use crate::error::{Result, RuntimeError};
use crate::handle::JobCommand;
pub use crate::handle::{JobHandle, JobResult, JobStatus, StopMode};
use crate::history::History;
use crate::launch::{launch_attempt, AttemptPlan, Deployment, InProcess, TaskLauncher};
use crate::monitor::Live;
use crate::plan::{EdgeSpec, SourceSpec, TaskGroup};
use crate::restart::{RestartDecision, RestartTracker};
use crate::restore::{self, JobShape};
use crate::source::coordinator::{CoordinatorCommand, CoordinatorHandle};
use crate::storage::{
    read_savepoint, CheckpointLocation, CheckpointMetadata, CheckpointStorage,
    LocalCheckpointStorage, MemoryCheckpointStorage, StorageError, SubtaskSnapshot,
};
use crate::task::{MasterMsg, TaskCommand, TaskControl, TaskKey};

/// A built job, ready to run.
pub struct Job {
    pub(crate) config: JobConfig,
    pub(crate) groups: Vec<TaskGroup>,
    pub(crate) edges: Vec<EdgeSpec>,
    pub(crate) sources: Vec<SourceSpec>,
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

    /// Sets whether the job keeps its checkpoints when cancelled, after it was built (e.g.
    /// from a command-line flag).
    pub fn checkpoint_retention(
        mut self,
        retention: crate::config::ExternalizedCheckpointRetention,
    ) -> Job {
        self.config.checkpoint_retention = retention;
        self
    }

    /// Starts the job on the current tokio runtime.
    pub fn start(self) -> JobHandle {
        self.start_on(Arc::new(InProcess))
    }

    /// Starts the job's master on the current tokio runtime, its subtasks where `deployment`
    /// puts them.
    pub(crate) fn start_on(self, deployment: Arc<dyn Deployment>) -> JobHandle {
        let (commands, rx) = mpsc::unbounded_channel();
        let history = History::default();
        let live = Live::new(
            &self.config,
            crate::plan::job_graph(&self.groups, &self.edges),
            history.clone(),
        );
        let join =
            tokio::spawn(Master::new(self, history.clone(), live.clone(), deployment).run(rx));
        JobHandle {
            commands,
            join,
            history,
            live,
        }
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

/// A checkpoint or savepoint triggered and not yet complete.
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
    /// Checkpoints and failovers, shared with the job's handle.
    history: History,
    /// The task whose failure ended the current attempt, for the failover history.
    failed_task: Option<String>,
    /// What monitors see (graph, subtask loads, state).
    live: Live,
    /// Where the subtasks run and how their channels are made.
    deployment: Arc<dyn Deployment>,
}

/// The state of one attempt.
struct Attempt {
    number: u32,
    controls: BTreeMap<TaskKey, TaskControl>,
    /// Runs the attempt's subtasks.
    launcher: Box<dyn TaskLauncher>,
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

impl Master {
    fn new(job: Job, history: History, live: Live, deployment: Arc<dyn Deployment>) -> Self {
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
            history,
            failed_task: None,
            live,
            deployment,
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
        self.job_ended(&status).await;
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
            checkpoint_history: self.history.checkpoints(),
            failover_history: self.history.failovers(),
        }
    }

    /// Task metrics of the current attempt and the job's checkpoint metrics, also published
    /// through the `metrics` facade.
    fn snapshot_metrics(&self) -> BTreeMap<String, MetricValue> {
        self.live.sample();
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
                .flat_map(|g| g.uids.iter().chain(g.channel_state.iter()))
                .map(String::as_str)
                .collect(),
            schemas: self
                .job
                .sources
                .iter()
                .filter(|s| !s.schema.is_empty())
                .map(|s| (s.uid.as_str(), s.schema.as_slice()))
                .collect(),
            chains: self
                .job
                .groups
                .iter()
                .map(|g| g.uids.iter().map(String::as_str).collect())
                .collect(),
            edges: self.job.edges.iter().map(|e| (e.from, e.to)).collect(),
            sources: self.job.sources.iter().map(|s| s.uid.as_str()).collect(),
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
            RestoreFrom::LatestCheckpoint | RestoreFrom::LatestCheckpointElse(_) => {
                self.first_id = 0;
                match (self.latest_of_run().await?, &self.job.config.restore) {
                    (Some(metadata), _) => {
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
                    (None, RestoreFrom::LatestCheckpointElse(Some(path))) => {
                        let metadata = read_savepoint(path).await?;
                        self.check_restore(&metadata, &format!("savepoint {}", path.display()))?;
                        tracing::info!(
                            job = %self.job.config.name,
                            "no checkpoint yet: restoring from savepoint {} (id {})",
                            path.display(),
                            metadata.checkpoint_id
                        );
                        Some(metadata)
                    }
                    (None, RestoreFrom::LatestCheckpointElse(None)) => {
                        tracing::info!(job = %self.job.config.name, "no checkpoint yet: starting empty");
                        None
                    }
                    (None, _) => {
                        return Err(RuntimeError::NoCheckpoint {
                            storage: self.storage.describe(),
                        })
                    }
                }
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
                    let (error, restartable) = crate::cluster::after_failure(error);
                    tracing::warn!(job = %self.job.config.name, attempt = *attempts, "job attempt failed: {error}");
                    failures.push(error.to_string());
                    let task = self.failed_task.take();
                    self.history.failover(*attempts - 1, &error, task);
                    self.live.set_state(crate::monitor::JobState::Restarting);
                    if !restartable {
                        // Restarting cannot fix the job itself, nor bring back a process.
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
        self.failed_task = None;
        self.metrics = InMemoryMetricGroup::new(self.job.config.name.clone());
        self.live.attempt_started(
            attempt,
            restore.map(|m| self.restored_from(m)),
            &self.metrics,
            &self.job_metrics,
        );
        let mut state = Attempt {
            number: attempt,
            controls: BTreeMap::new(),
            launcher: self.deployment.launcher(),
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
        let plan = AttemptPlan {
            groups: &self.job.groups,
            edges: &self.job.edges,
            config: &self.job.config,
            attempt: state.number,
            restore,
            coordinators: &coordinators,
            master,
            metrics: &self.metrics,
            live: &self.live,
        };
        let mut exchange = self.deployment.exchange(state.number);
        let launched = launch_attempt(&plan, exchange.as_mut(), state.launcher.as_mut())?;
        state.live.extend(launched.controls.keys().copied());
        state.controls = launched.controls;
        for (uid, controls) in launched.source_controls {
            if let Some(c) = coordinators.get(&uid) {
                c.send(CoordinatorCommand::Attach { controls });
            }
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
                timing,
            } => {
                self.record_ack(state, task, checkpoint, timing);
                state.awaiting_final.remove(&task);
                state.last_acks.insert(task, snapshots.clone());
                if let Some(p) = state.pending.get_mut(&checkpoint) {
                    p.acks.insert(task, snapshots);
                }
                self.complete_ready(state).await?;
            }
            MasterMsg::Declined {
                task,
                checkpoint,
                reason,
            } => self.declined(state, task, checkpoint, &reason)?,
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
                if self.failed_task.is_none() {
                    self.failed_task = self
                        .job
                        .groups
                        .get(task.group)
                        .map(|g| format!("{} (subtask {})", g.name, task.subtask));
                }
                return Err(AttemptEnd::Failed {
                    error,
                    coordinator: false,
                });
            }
            MasterMsg::CoordinatorFailed { source, error } => {
                tracing::debug!(%source, "source coordinator failed");
                if self.failed_task.is_none() {
                    self.failed_task = Some(format!("the split enumerator of {source}"));
                }
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

    /// Cancels live tasks after a stop; waits briefly for them to close.
    async fn cancel_tasks(&mut self, state: &mut Attempt) {
        self.history
            .abort_in_progress("the job stopped before the checkpoint completed");
        for control in state.controls.values() {
            let _ = control.send(TaskCommand::Cancel);
        }
        state.launcher.stop(Duration::from_secs(5)).await;
    }

    /// Tears an attempt down after a failure or a cancel.
    async fn teardown(&mut self, state: &mut Attempt) {
        self.history
            .abort_in_progress("the job attempt ended before the checkpoint completed");
        for control in state.controls.values() {
            let _ = control.send(TaskCommand::Cancel);
        }
        state.launcher.abort().await;
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
