//! A running job: [`JobHandle`] (savepoints, stop, cancel, wait) and how it ended
//! ([`JobResult`], [`JobStatus`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use weir_connector_api::metrics::MetricValue;

use crate::error::{Result, RuntimeError};
use crate::history::{CheckpointRecord, Failover, History};
use crate::monitor::{JobMonitor, JobSnapshot, Live};
use crate::storage::CheckpointLocation;

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
    /// Every checkpoint and savepoint, oldest first (the newest
    /// [`crate::history::HISTORY_LIMIT`]).
    pub checkpoint_history: Vec<CheckpointRecord>,
    /// Every failover (failed attempt), oldest first.
    pub failover_history: Vec<Failover>,
}

impl JobResult {
    /// The result of a job that failed with `error` before any attempt ran (or whose master
    /// was lost): no attempt, checkpoint or metric.
    pub(crate) fn failed_early(error: RuntimeError) -> JobResult {
        JobResult {
            status: JobStatus::Failed(error),
            attempts: 0,
            completed_checkpoints: 0,
            failures: Vec::new(),
            metrics: BTreeMap::new(),
            restored_from: None,
            skipped_checkpoints: Vec::new(),
            checkpoint_history: Vec::new(),
            failover_history: Vec::new(),
        }
    }

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

pub(crate) enum JobCommand {
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
    pub(crate) commands: mpsc::UnboundedSender<JobCommand>,
    pub(crate) join: JoinHandle<JobResult>,
    pub(crate) history: History,
    pub(crate) live: Live,
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

    /// The job's checkpoints and savepoints so far (the newest [`crate::history::HISTORY_LIMIT`]),
    /// oldest first, including those in progress.
    pub fn checkpoint_history(&self) -> Vec<CheckpointRecord> {
        self.history.checkpoints()
    }

    /// The job's failovers so far, oldest first.
    pub fn failover_history(&self) -> Vec<Failover> {
        self.history.failovers()
    }

    /// Everything a dashboard shows about the job, read now: its graph, per subtask records,
    /// rates, busy / idle / back-pressured time and watermark, the checkpoint and failover
    /// histories, its configuration and what it was restored from.
    pub fn snapshot(&self) -> JobSnapshot {
        self.live.snapshot()
    }

    /// A read-only view of the job that outlives this handle (e.g. for a dashboard server).
    pub fn monitor(&self) -> JobMonitor {
        JobMonitor {
            live: self.live.clone(),
        }
    }

    /// Cancels the job.
    pub fn cancel(&self) {
        let _ = self.commands.send(JobCommand::Cancel);
    }

    /// Waits for the job to end.
    pub async fn wait(self) -> JobResult {
        let history = self.history.clone();
        match self.join.await {
            Ok(result) => result,
            Err(e) => JobResult {
                checkpoint_history: history.checkpoints(),
                failover_history: history.failovers(),
                ..JobResult::failed_early(RuntimeError::Lost(format!("the job master ({e})")))
            },
        }
    }
}
