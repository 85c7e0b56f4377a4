//! The life of every task, source or not: running, then (FLIP-147) finished and waiting for a
//! checkpoint taken after its end of input to complete before it closes; one snapshot per
//! checkpoint however its barrier arrives; and what the master hears (finished, acks, closed or
//! failed).

use std::collections::BTreeMap;

use tokio::sync::mpsc;
use weir_connector_api::checkpoint::CheckpointId;

use super::{MasterMsg, TaskKey};
use crate::element::Notification;
use crate::error::Result;
use crate::fault::{FaultPoint, FaultSite};
use crate::load::BarrierTiming;
use crate::operator::TaskCx;
use crate::storage::SubtaskSnapshot;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading input.
    Running,
    /// Input ended; waiting for a checkpoint taken after that to complete.
    Finished {
        /// The first checkpoint the task acknowledged after its input ended.
        final_ack: Option<CheckpointId>,
    },
}

/// Whether a task goes on after handling a command.
pub(crate) enum Flow {
    /// It goes on.
    Continue,
    /// It has closed.
    Exit,
}

/// The state every task keeps for its life cycle, and its line to the master.
pub(crate) struct Lifecycle {
    key: TaskKey,
    master: mpsc::UnboundedSender<MasterMsg>,
    phase: Phase,
    last_barrier: Option<CheckpointId>,
}

impl Lifecycle {
    /// A running task.
    pub(crate) fn new(key: TaskKey, master: mpsc::UnboundedSender<MasterMsg>) -> Self {
        Lifecycle {
            key,
            master,
            phase: Phase::Running,
            last_barrier: None,
        }
    }

    /// Whether the task still reads input.
    pub(crate) fn is_running(&self) -> bool {
        self.phase == Phase::Running
    }

    /// A barrier of checkpoint `id` arrived (in-band, or triggered by the master after the input
    /// ended): whether to snapshot now. `false` when this checkpoint, or a later one, was taken
    /// already. The first checkpoint after the end of input becomes the final one.
    pub(crate) fn begin_snapshot(&mut self, id: CheckpointId) -> bool {
        if self.last_barrier.is_some_and(|last| last >= id) {
            return false;
        }
        self.last_barrier = Some(id);
        if let Phase::Finished { final_ack } = &mut self.phase {
            if final_ack.is_none() {
                *final_ack = Some(id);
            }
        }
        true
    }

    /// Acknowledges checkpoint `id` with the snapshots its operators put into `cx` and when
    /// its barrier came, or declines it (the master then aborts it) when the fault injector
    /// says so at [`FaultPoint::DeclineCheckpoint`].
    pub(crate) fn ack(&self, id: CheckpointId, cx: &mut TaskCx, timing: BarrierTiming) {
        let snapshots: BTreeMap<String, SubtaskSnapshot> = cx.take_snapshots();
        let operators = snapshots.keys().cloned().collect::<Vec<_>>().join(", ");
        let site = FaultSite {
            operator: &operators,
            subtask: cx.subtask,
            checkpoint_id: id,
            attempt: cx.attempt,
        };
        let message = match cx.faults.check(FaultPoint::DeclineCheckpoint, &site) {
            Ok(()) => MasterMsg::Ack {
                task: self.key,
                checkpoint: id,
                snapshots,
                timing,
            },
            Err(reason) => MasterMsg::Declined {
                task: self.key,
                checkpoint: id,
                reason,
            },
        };
        let _ = self.master.send(message);
    }

    /// The input ended (or was drained): the task waits for its final checkpoint.
    pub(crate) fn end_input(&mut self) {
        self.phase = Phase::Finished { final_ack: None };
        let _ = self.master.send(MasterMsg::Finished { task: self.key });
    }

    /// Whether the task may close after `notification`: its final checkpoint completed.
    pub(crate) fn may_close_after(&self, notification: Notification) -> bool {
        matches!(
            (notification, self.phase),
            (
                Notification::CheckpointComplete(id),
                Phase::Finished { final_ack: Some(f) },
            ) if id >= f
        )
    }

    /// Tells the master how the task ended.
    pub(crate) fn report(&self, result: Result<()>) {
        let message = match result {
            Ok(()) => MasterMsg::Closed { task: self.key },
            Err(error) => MasterMsg::Failed {
                task: self.key,
                error,
            },
        };
        let _ = self.master.send(message);
    }
}
