//! What happened to a job, as Flink's web UI shows it: the history of its checkpoints and
//! savepoints (id, status, trigger time, duration, size) and of its failovers (time, task, root
//! cause). The job master writes it; [`crate::JobHandle`] reads it while the job runs and
//! [`crate::JobResult`] carries it at the end.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::RuntimeError;
use crate::storage::SnapshotKind;

/// How many checkpoints and failovers the history keeps (the oldest are dropped first).
pub const HISTORY_LIMIT: usize = 1000;

/// Where a checkpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointStatus {
    /// Triggered, not yet complete.
    InProgress,
    /// Written and notified.
    Completed,
    /// Failed or aborted, with why.
    Failed(String),
}

/// One checkpoint or savepoint of the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// Its id.
    pub id: u64,
    /// Checkpoint or savepoint.
    pub kind: SnapshotKind,
    /// Where it is.
    pub status: CheckpointStatus,
    /// When it was triggered, in milliseconds since the Unix epoch.
    pub trigger_millis: u64,
    /// From trigger to completion or failure (`None` while in progress).
    pub duration: Option<Duration>,
    /// The state's size in bytes, once complete.
    pub size_bytes: Option<u64>,
    /// Per subtask that acknowledged it: when its barrier came and how long it aligned.
    pub subtasks: Vec<SubtaskCheckpoint>,
}

impl CheckpointRecord {
    /// The longest barrier alignment of any subtask (`None` before the first acknowledgement).
    pub fn alignment(&self) -> Option<Duration> {
        self.subtasks.iter().map(|s| s.alignment).max()
    }

    /// The longest start delay of any subtask.
    pub fn start_delay(&self) -> Option<Duration> {
        self.subtasks.iter().map(|s| s.start_delay).max()
    }

    /// How many subtasks snapshotted unaligned, and the bytes of records in flight they
    /// stored.
    pub fn unaligned(&self) -> (usize, u64) {
        self.subtasks
            .iter()
            .filter_map(|s| s.in_flight_bytes)
            .fold((0, 0), |(n, bytes), b| (n + 1, bytes + b))
    }
}

/// How one subtask took part in a checkpoint (Flink's per-subtask checkpoint statistics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubtaskCheckpoint {
    /// The task (`name (subtask n)` as in failovers: the task's name).
    pub task: String,
    /// The subtask index.
    pub subtask: usize,
    /// From the trigger to the arrival of the first barrier at this subtask (for a source: to
    /// the barrier's injection).
    pub start_delay: Duration,
    /// From the first to the last barrier at this subtask's inputs: how long its faster inputs
    /// were blocked (exactly-once) while it waited for the slower ones.
    pub alignment: Duration,
    /// From the trigger to the acknowledgement (its state snapshotted).
    pub acknowledged_after: Duration,
    /// `Some` when this subtask's snapshot was unaligned (unaligned barriers, or an alignment
    /// that timed out): the bytes of records in flight it stored (Flink's persisted data).
    pub in_flight_bytes: Option<u64>,
}

/// One failure of a job attempt, after which the job restarted or gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    /// When the attempt failed, in milliseconds since the Unix epoch.
    pub at_millis: u64,
    /// The attempt that failed (0 is the first).
    pub attempt: u32,
    /// The operator and subtask that failed, when a task did (`uid (subtask n)`).
    pub task: Option<String>,
    /// The root cause.
    pub root_cause: String,
}

/// The shared, bounded history of one job.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    inner: Arc<Mutex<HistoryInner>>,
}

#[derive(Debug, Default)]
struct HistoryInner {
    checkpoints: VecDeque<CheckpointRecord>,
    failovers: VecDeque<Failover>,
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn push_bounded<T>(queue: &mut VecDeque<T>, value: T) {
    if queue.len() == HISTORY_LIMIT {
        queue.pop_front();
    }
    queue.push_back(value);
}

impl History {
    fn with<R>(&self, f: impl FnOnce(&mut HistoryInner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A checkpoint or savepoint was triggered now.
    pub(crate) fn triggered(&self, id: u64, kind: SnapshotKind) {
        self.with(|h| {
            push_bounded(
                &mut h.checkpoints,
                CheckpointRecord {
                    id,
                    kind,
                    status: CheckpointStatus::InProgress,
                    trigger_millis: now_millis(),
                    duration: None,
                    size_bytes: None,
                    subtasks: Vec::new(),
                },
            );
        });
    }

    fn finish(&self, id: u64, status: CheckpointStatus, size_bytes: Option<u64>) {
        self.with(|h| {
            if let Some(record) = h.checkpoints.iter_mut().rev().find(|r| r.id == id) {
                if record.status == CheckpointStatus::InProgress {
                    record.status = status;
                    record.duration = Some(Duration::from_millis(
                        now_millis().saturating_sub(record.trigger_millis),
                    ));
                    record.size_bytes = size_bytes;
                }
            }
        });
    }

    /// A subtask acknowledged checkpoint `id`.
    pub(crate) fn acknowledged(&self, id: u64, subtask: SubtaskCheckpoint) {
        self.with(|h| {
            if let Some(record) = h.checkpoints.iter_mut().rev().find(|r| r.id == id) {
                record.subtasks.push(subtask);
            }
        });
    }

    /// Checkpoint `id` completed with `size_bytes` of state.
    pub(crate) fn completed(&self, id: u64, size_bytes: u64) {
        self.finish(id, CheckpointStatus::Completed, Some(size_bytes));
    }

    /// Checkpoint `id` failed or was aborted.
    pub(crate) fn failed(&self, id: u64, reason: &str) {
        self.finish(id, CheckpointStatus::Failed(reason.to_owned()), None);
    }

    /// Every checkpoint still in progress ended with its attempt.
    pub(crate) fn abort_in_progress(&self, reason: &str) {
        let ids: Vec<u64> = self.with(|h| {
            h.checkpoints
                .iter()
                .filter(|r| r.status == CheckpointStatus::InProgress)
                .map(|r| r.id)
                .collect()
        });
        for id in ids {
            self.failed(id, reason);
        }
    }

    /// Attempt `attempt` failed with `error`, in `task` when the master knows which.
    pub(crate) fn failover(&self, attempt: u32, error: &RuntimeError, task: Option<String>) {
        let task = match error {
            RuntimeError::Connector {
                operator, subtask, ..
            } => Some(format!("{operator} (subtask {subtask})")),
            _ => task,
        };
        let record = Failover {
            at_millis: now_millis(),
            attempt,
            task,
            root_cause: error.to_string(),
        };
        self.with(|h| push_bounded(&mut h.failovers, record));
    }

    /// The checkpoints so far, oldest first.
    pub(crate) fn checkpoints(&self) -> Vec<CheckpointRecord> {
        self.with(|h| h.checkpoints.iter().cloned().collect())
    }

    /// The failovers so far, oldest first.
    pub(crate) fn failovers(&self) -> Vec<Failover> {
        self.with(|h| h.failovers.iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_move_from_in_progress_to_their_end_once() {
        let history = History::default();
        history.triggered(1, SnapshotKind::Checkpoint);
        history.triggered(2, SnapshotKind::Savepoint);
        history.completed(1, 42);
        history.failed(1, "late");
        history.abort_in_progress("attempt failed");
        let records = history.checkpoints();
        assert_eq!(records[0].status, CheckpointStatus::Completed);
        assert_eq!(records[0].size_bytes, Some(42));
        assert_eq!(
            records[1].status,
            CheckpointStatus::Failed("attempt failed".into())
        );
        assert!(records.iter().all(|r| r.duration.is_some()));
    }

    #[test]
    fn the_history_is_bounded() {
        let history = History::default();
        for id in 0..(HISTORY_LIMIT as u64 + 5) {
            history.triggered(id, SnapshotKind::Checkpoint);
        }
        let records = history.checkpoints();
        assert_eq!(records.len(), HISTORY_LIMIT);
        assert_eq!(records[0].id, 5);
    }

    #[test]
    fn a_failover_names_the_failing_task() {
        let history = History::default();
        history.failover(
            0,
            &RuntimeError::connector(
                "sink",
                1,
                weir_connector_api::ConnectorError::fatal("writing", "disk full"),
            ),
            Some("writer (sink) (subtask 1)".into()),
        );
        history.failover(1, &RuntimeError::Lost("x".into()), Some("task t".into()));
        let failovers = history.failovers();
        assert_eq!(failovers[0].task.as_deref(), Some("sink (subtask 1)"));
        assert!(failovers[0].root_cause.contains("disk full"));
        assert_eq!(failovers[1].task.as_deref(), Some("task t"));
    }
}
