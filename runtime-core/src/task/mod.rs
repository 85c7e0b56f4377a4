//! Tasks: the units of execution. A source task drives a reader and its chain; a one-input task
//! drives an input gate and its chain. Both take commands from the job master.

pub(crate) mod lifecycle;
pub(crate) mod one_input;
pub(crate) mod source_task;

use std::any::Any;
use std::collections::BTreeMap;

use tokio::sync::mpsc;
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::source::SourceEvent;

use crate::element::{Barrier, Notification};
use crate::error::RuntimeError;
use crate::load::BarrierTiming;
use crate::storage::SubtaskSnapshot;

/// Identifies a subtask: the index of its task group in the plan and its subtask index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TaskKey {
    pub(crate) group: usize,
    pub(crate) subtask: usize,
}

/// What the job master (or a source coordinator) tells a task.
pub(crate) enum TaskCommand {
    /// Take a snapshot now: a source injects the barrier; a task whose inputs ended snapshots
    /// its operators.
    TriggerBarrier(Barrier),
    /// A checkpoint notification for every operator.
    Notify(Notification),
    /// New splits for a source reader (a `Vec` of the source's split type).
    AddSplits(Box<dyn Any + Send>),
    /// Watermark alignment: the highest watermark this reader may reach for now.
    AlignWatermark(weir_connector_api::watermark::Watermark),
    /// The enumerator will assign no more splits.
    NoMoreSplits,
    /// A custom event from the enumerator.
    SourceEvent(SourceEvent),
    /// Stop reading; with `drain`, finish the input as if it ended (FLIP-147).
    StopSource { drain: bool },
    /// Stop now without finishing (cancel, or stop after a savepoint).
    Cancel,
}

/// What a task tells the job master.
pub(crate) enum MasterMsg {
    /// A task's snapshot for a checkpoint, by operator uid.
    Ack {
        task: TaskKey,
        checkpoint: CheckpointId,
        snapshots: BTreeMap<String, SubtaskSnapshot>,
        /// When the barrier reached the task and how long it aligned.
        timing: BarrierTiming,
    },
    /// A task declined a checkpoint (its snapshot cannot be used): the master aborts it.
    Declined {
        task: TaskKey,
        checkpoint: CheckpointId,
        reason: String,
    },
    /// Every input of the task ended and its operators finished; it waits for a final
    /// checkpoint.
    Finished { task: TaskKey },
    /// The task closed after its final checkpoint (or after a cancel).
    Closed { task: TaskKey },
    /// The task failed.
    Failed { task: TaskKey, error: RuntimeError },
    /// A source coordinator failed.
    CoordinatorFailed { source: String, error: RuntimeError },
}

/// The master's side of a task.
pub(crate) type TaskControl = mpsc::UnboundedSender<TaskCommand>;
