//! Fault injection at the checkpoint and two-phase-commit boundaries, for tests that prove
//! exactly-once by failing jobs at every boundary and counting records.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use weir_connector_api::checkpoint::CheckpointId;

/// Where a failure can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// In a sink writer at a barrier, before it flushes, prepares committables and snapshots.
    BeforeSnapshot,
    /// In the job master after the checkpoint's metadata is durable, before anyone is notified.
    AfterSnapshotBeforeNotify,
    /// In a committer after the checkpoint completed, before it commits (between the pre-commit
    /// and the commit of two-phase commit).
    BetweenPreCommitAndCommit,
    /// In a committer after the external system committed, before the outcome is recorded.
    DuringCommit,
    /// In a sink writer after it flushed and prepared its end-of-input committables.
    AtEndOfInput,
    /// In a task after its operators took their snapshots, before it acknowledges the
    /// checkpoint. Unlike every other point, an `Err` here does not fail the attempt: the task
    /// *declines* the checkpoint with that reason, the checkpoint is aborted (counted as failed,
    /// and every participant is told) and the job goes on.
    DeclineCheckpoint,
}

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultPoint::BeforeSnapshot => "before-snapshot",
            FaultPoint::AfterSnapshotBeforeNotify => "after-snapshot-before-notify",
            FaultPoint::BetweenPreCommitAndCommit => "between-pre-commit-and-commit",
            FaultPoint::DuringCommit => "during-commit",
            FaultPoint::AtEndOfInput => "at-end-of-input",
            FaultPoint::DeclineCheckpoint => "decline-checkpoint",
        })
    }
}

/// Where exactly a fault point was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSite<'a> {
    /// The operator uid (`job` for the job master; at [`FaultPoint::DeclineCheckpoint`] the uids
    /// of the task's operators that took their snapshots, joined by `, `).
    pub operator: &'a str,
    /// The subtask index.
    pub subtask: usize,
    /// The checkpoint concerned.
    pub checkpoint_id: CheckpointId,
    /// The job attempt (0 = first run).
    pub attempt: u32,
}

/// Decides whether to fail at a fault point. `Err(reason)` fails the job attempt (at
/// [`FaultPoint::DeclineCheckpoint`] it declines the checkpoint instead).
pub trait FaultInjector: Send + Sync {
    /// Called at every fault point.
    fn check(&self, point: FaultPoint, site: &FaultSite<'_>) -> Result<(), String>;
}

/// Never fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFaults;

impl FaultInjector for NoFaults {
    fn check(&self, _point: FaultPoint, _site: &FaultSite<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// Fails once, the first time `point` is reached at a checkpoint at or after `after` (or at end
/// of input), in attempt 0.
#[derive(Debug)]
pub struct FailOnce {
    point: FaultPoint,
    after: CheckpointId,
    fired: AtomicBool,
    fired_at: Mutex<Option<String>>,
}

impl FailOnce {
    /// Fails at `point` at the first checkpoint `>= after`.
    pub fn new(point: FaultPoint, after: CheckpointId) -> Self {
        FailOnce {
            point,
            after,
            fired: AtomicBool::new(false),
            fired_at: Mutex::new(None),
        }
    }

    /// Where it fired, if it did.
    pub fn fired_at(&self) -> Option<String> {
        self.fired_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl FaultInjector for FailOnce {
    fn check(&self, point: FaultPoint, site: &FaultSite<'_>) -> Result<(), String> {
        if point != self.point || site.checkpoint_id < self.after || site.attempt > 0 {
            return Ok(());
        }
        if self.fired.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let what = format!(
            "{point} in {} subtask {} at checkpoint {}",
            site.operator, site.subtask, site.checkpoint_id
        );
        *self
            .fired_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(what.clone());
        Err(what)
    }
}
