//! One coordinator per source runs its split enumerator on a single event loop: enumerator
//! methods never run concurrently; async work runs on worker tasks and its results come back to
//! the loop.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::error::{ConnectorError, Result as ConnectorResult};
use weir_connector_api::metrics::MetricGroup;
use weir_connector_api::source::{
    EnumeratorState, Source, SourceEvent, SplitEnumerator, SplitEnumeratorContext, SplitsAssignment,
};

use weir_connector_api::watermark::{CoordinatorStore, Watermark, WatermarkAlignment};

use crate::element::Barrier;
use crate::error::{Result, RuntimeError};
use crate::task::{MasterMsg, TaskCommand, TaskControl};

/// What the job master and the readers tell a coordinator.
pub(crate) enum CoordinatorCommand {
    ReaderRegistered {
        subtask: usize,
        control: TaskControl,
    },
    SplitRequest {
        subtask: usize,
    },
    SourceEvent {
        subtask: usize,
        event: SourceEvent,
    },
    /// Snapshot the enumerator, then inject `barrier` into every reader of this attempt. Both
    /// happen in the coordinator's loop, so a split assigned after the snapshot always reaches
    /// its reader after the barrier (Flink's operator-event valve).
    Checkpoint {
        barrier: Barrier,
        reply: oneshot::Sender<Result<VersionedBytes>>,
    },
    /// The control channels of every reader subtask of a new attempt.
    Attach {
        controls: Vec<TaskControl>,
    },
    /// A reader's current watermark for alignment (`MAX` when idle or finished).
    ReportWatermark {
        subtask: usize,
        watermark: Watermark,
    },
    /// Time to publish this source's watermark and announce the group's allowed maximum.
    AlignTick,
    CheckpointComplete(CheckpointId),
    /// The checkpoint was aborted (timed out, declined, or failed to persist).
    CheckpointAborted(CheckpointId),
    /// Every reader was torn down; the job restores from `restored_from`.
    ReadersReset {
        restored_from: Option<CheckpointId>,
        parallelism: usize,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

enum CoordMsg<R> {
    Command(CoordinatorCommand),
    Async(R),
}

/// Remembers which splits went to which reader since the last completed checkpoint, so a reset
/// reader's splits can go back to the enumerator (Flink's SplitAssignmentTracker).
struct AssignmentTracker<Sp> {
    uncheckpointed: BTreeMap<usize, Vec<Sp>>,
    by_checkpoint: BTreeMap<CheckpointId, BTreeMap<usize, Vec<Sp>>>,
}

impl<Sp> AssignmentTracker<Sp> {
    fn new() -> Self {
        AssignmentTracker {
            uncheckpointed: BTreeMap::new(),
            by_checkpoint: BTreeMap::new(),
        }
    }

    fn record(&mut self, subtask: usize, splits: impl IntoIterator<Item = Sp>) {
        self.uncheckpointed
            .entry(subtask)
            .or_default()
            .extend(splits);
    }

    fn snapshot(&mut self, checkpoint: CheckpointId) {
        let assigned = std::mem::take(&mut self.uncheckpointed);
        if !assigned.is_empty() {
            self.by_checkpoint.insert(checkpoint, assigned);
        }
    }

    fn complete(&mut self, checkpoint: CheckpointId) {
        self.by_checkpoint.retain(|c, _| *c > checkpoint);
    }

    /// Everything assigned after `restored_from`, by subtask.
    fn take_after(&mut self, restored_from: Option<CheckpointId>) -> BTreeMap<usize, Vec<Sp>> {
        if let Some(c) = restored_from {
            self.complete(c);
        }
        let mut all: BTreeMap<usize, Vec<Sp>> = BTreeMap::new();
        for (_, per) in std::mem::take(&mut self.by_checkpoint) {
            for (s, splits) in per {
                all.entry(s).or_default().extend(splits);
            }
        }
        for (s, splits) in std::mem::take(&mut self.uncheckpointed) {
            all.entry(s).or_default().extend(splits);
        }
        all
    }
}

struct Shared<Sp> {
    readers: BTreeMap<usize, TaskControl>,
    all_readers: Vec<TaskControl>,
    parallelism: usize,
    tracker: AssignmentTracker<Sp>,
}

/// The enumerator's view of the runtime.
struct Context<Sp, R> {
    shared: Arc<Mutex<Shared<Sp>>>,
    inbox: mpsc::UnboundedSender<CoordMsg<R>>,
    metrics: Arc<dyn MetricGroup>,
    source: String,
}

impl<Sp, R> Context<Sp, R> {
    fn shared(&self) -> std::sync::MutexGuard<'_, Shared<Sp>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<Sp, R> SplitEnumeratorContext<Sp, R> for Context<Sp, R>
where
    Sp: weir_connector_api::source::SourceSplit,
    R: Send + 'static,
{
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::clone(&self.metrics)
    }

    fn current_parallelism(&self) -> usize {
        self.shared().parallelism
    }

    fn registered_readers(&self) -> Vec<usize> {
        self.shared().readers.keys().copied().collect()
    }

    fn assign_splits(&self, assignment: SplitsAssignment<Sp>) -> ConnectorResult<()> {
        let mut shared = self.shared();
        for subtask in assignment.assignment.keys() {
            if !shared.readers.contains_key(subtask) {
                return Err(ConnectorError::Contract(format!(
                    "source {}: splits assigned to subtask {subtask}, which has no registered reader",
                    self.source
                )));
            }
        }
        for (subtask, splits) in assignment.assignment {
            if splits.is_empty() {
                continue;
            }
            shared.tracker.record(subtask, splits.iter().cloned());
            if let Some(control) = shared.readers.get(&subtask) {
                // A reader that is gone is reset by the master, which returns its splits.
                let _ = control.send(TaskCommand::AddSplits(Box::new(splits)));
            }
        }
        Ok(())
    }

    fn signal_no_more_splits(&self, subtask: usize) -> ConnectorResult<()> {
        let shared = self.shared();
        match shared.readers.get(&subtask) {
            Some(control) => {
                let _ = control.send(TaskCommand::NoMoreSplits);
                Ok(())
            }
            None => Err(ConnectorError::Contract(format!(
                "source {}: no-more-splits signalled to subtask {subtask}, which has no registered reader",
                self.source
            ))),
        }
    }

    fn send_event_to_reader(&self, subtask: usize, event: SourceEvent) -> ConnectorResult<()> {
        let shared = self.shared();
        match shared.readers.get(&subtask) {
            Some(control) => {
                let _ = control.send(TaskCommand::SourceEvent(event));
                Ok(())
            }
            None => Err(ConnectorError::Contract(format!(
                "source {}: event sent to subtask {subtask}, which has no registered reader",
                self.source
            ))),
        }
    }

    fn call_async(&self, task: BoxFuture<'static, R>) {
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            let result = task.await;
            let _ = inbox.send(CoordMsg::Async(result));
        });
    }

    fn call_async_periodic(
        &self,
        mut task: Box<dyn FnMut() -> BoxFuture<'static, R> + Send>,
        initial_delay: Duration,
        period: Duration,
    ) {
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            tokio::time::sleep(initial_delay).await;
            loop {
                let result = task().await;
                if inbox.send(CoordMsg::Async(result)).is_err() {
                    return; // the coordinator closed
                }
                tokio::time::sleep(period).await;
            }
        });
    }
}

/// The master's handle on a running coordinator.
#[derive(Clone)]
pub(crate) struct CoordinatorHandle {
    pub(crate) source: String,
    send: Arc<dyn Fn(CoordinatorCommand) -> bool + Send + Sync>,
}

impl CoordinatorHandle {
    /// A handle whose commands go to `send` (a coordinator in another process).
    pub(crate) fn from_fn(
        source: String,
        send: impl Fn(CoordinatorCommand) -> bool + Send + Sync + 'static,
    ) -> Self {
        CoordinatorHandle {
            source,
            send: Arc::new(send),
        }
    }

    /// Sends a command; `false` if the coordinator is gone.
    pub(crate) fn send(&self, command: CoordinatorCommand) -> bool {
        (self.send)(command)
    }

    /// Snapshots the enumerator and injects the barrier into the source's readers.
    pub(crate) async fn checkpoint(&self, barrier: Barrier) -> Result<VersionedBytes> {
        let (tx, rx) = oneshot::channel();
        if !self.send(CoordinatorCommand::Checkpoint { barrier, reply: tx }) {
            return Err(RuntimeError::Lost(format!(
                "coordinator of source {}",
                self.source
            )));
        }
        rx.await
            .map_err(|_| RuntimeError::Lost(format!("coordinator of source {}", self.source)))?
    }

    /// Closes the enumerator and waits for it.
    pub(crate) async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(CoordinatorCommand::Close { reply: tx }) {
            let _ = rx.await;
        }
    }
}

/// Watermark alignment of one source: the reports of its readers and where the group lives.
struct Aligner {
    alignment: WatermarkAlignment,
    store: Arc<dyn CoordinatorStore>,
    reported: BTreeMap<usize, Watermark>,
}

/// The [`CoordinatorStore`] value of an alignment group: each source's minimum watermark, by
/// stable operator uid (never by name: names collide, Flink's bug).
pub(crate) type AlignmentGroup = BTreeMap<String, Watermark>;

impl Aligner {
    fn key(&self) -> String {
        format!("watermark-alignment/{}", self.alignment.group())
    }

    /// Publishes this source's minimum and returns the group's allowed maximum, if any reader
    /// has reported yet (nothing is enforced before the first watermark).
    fn tick(&self, uid: &str) -> Option<Watermark> {
        let source_min = self.reported.values().min().copied()?;
        let group = self.store.compute(&self.key(), &mut |old| {
            let mut group: AlignmentGroup = old
                .and_then(|v| v.downcast_ref::<AlignmentGroup>())
                .cloned()
                .unwrap_or_default();
            group.insert(uid.to_owned(), source_min);
            Some(Arc::new(group))
        })?;
        let group_min = group
            .downcast_ref::<AlignmentGroup>()?
            .values()
            .min()
            .copied()?;
        Some(self.alignment.max_allowed(group_min))
    }
}

/// Starts the coordinator of `source`, fresh or from enumerator state.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start<S: Source>(
    source: Arc<S>,
    uid: String,
    parallelism: usize,
    restored: Option<VersionedBytes>,
    metrics: Arc<dyn MetricGroup>,
    master: mpsc::UnboundedSender<MasterMsg>,
    alignment: Option<WatermarkAlignment>,
    store: Arc<dyn CoordinatorStore>,
) -> Result<CoordinatorHandle> {
    type R<S> = <<S as Source>::Enumerator as SplitEnumerator>::AsyncResult;
    let (inbox, mut rx) = mpsc::unbounded_channel::<CoordMsg<R<S>>>();
    let shared = Arc::new(Mutex::new(Shared {
        readers: BTreeMap::new(),
        all_readers: Vec::new(),
        parallelism,
        tracker: AssignmentTracker::new(),
    }));
    let ctx = Box::new(Context::<S::Split, R<S>> {
        shared: Arc::clone(&shared),
        inbox: inbox.clone(),
        metrics,
        source: uid.clone(),
    });
    let fail = |e: ConnectorError| RuntimeError::connector(&uid, 0, e);
    let mut enumerator = match restored {
        Some(state) => {
            let state: EnumeratorState<S> = source
                .enumerator_state_serializer()
                .deserialize(state.version, &state.bytes)
                .map_err(|e| RuntimeError::Restore {
                    operator: uid.clone(),
                    reason: format!("enumerator state: {e}"),
                })?;
            source.restore_enumerator(ctx, state).map_err(fail)?
        }
        None => source.create_enumerator(ctx).map_err(fail)?,
    };
    let mut aligner = alignment.map(|alignment| Aligner {
        alignment,
        store,
        reported: BTreeMap::new(),
    });
    if let Some(a) = &aligner {
        let ticks = inbox.clone();
        let interval = a.alignment.update_interval();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if ticks
                    .send(CoordMsg::Command(CoordinatorCommand::AlignTick))
                    .is_err()
                {
                    return; // the coordinator closed
                }
            }
        });
    }
    let loop_uid = uid.clone();
    tokio::spawn(async move {
        let uid = loop_uid;
        if let Err(e) = enumerator.start() {
            let _ = master.send(MasterMsg::CoordinatorFailed {
                source: uid.clone(),
                error: RuntimeError::connector(&uid, 0, e),
            });
            return;
        }
        while let Some(message) = rx.recv().await {
            let result = match message {
                CoordMsg::Async(r) => enumerator.handle_async_result(r),
                CoordMsg::Command(command) => match command {
                    CoordinatorCommand::ReaderRegistered { subtask, control } => {
                        shared
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .readers
                            .insert(subtask, control);
                        enumerator.add_reader(subtask)
                    }
                    CoordinatorCommand::SplitRequest { subtask } => {
                        enumerator.handle_split_request(subtask)
                    }
                    CoordinatorCommand::SourceEvent { subtask, event } => {
                        enumerator.handle_source_event(subtask, event)
                    }
                    CoordinatorCommand::ReportWatermark { subtask, watermark } => {
                        if let Some(a) = aligner.as_mut() {
                            a.reported.insert(subtask, watermark);
                        }
                        Ok(())
                    }
                    CoordinatorCommand::AlignTick => {
                        if let Some(max_allowed) = aligner.as_ref().and_then(|a| a.tick(&uid)) {
                            let s = shared.lock().unwrap_or_else(PoisonError::into_inner);
                            for control in &s.all_readers {
                                let _ = control.send(TaskCommand::AlignWatermark(max_allowed));
                            }
                        }
                        Ok(())
                    }
                    CoordinatorCommand::Attach { controls } => {
                        shared
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .all_readers = controls;
                        Ok(())
                    }
                    CoordinatorCommand::Checkpoint { barrier, reply } => {
                        let checkpoint = barrier.checkpoint_id;
                        let snap = enumerator.snapshot_state(checkpoint).and_then(|state| {
                            let ser = source.enumerator_state_serializer();
                            Ok(VersionedBytes {
                                version: ser.version(),
                                bytes: ser.serialize(&state)?,
                            })
                        });
                        {
                            let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
                            s.tracker.snapshot(checkpoint);
                            if snap.is_ok() {
                                for control in &s.all_readers {
                                    let _ = control.send(TaskCommand::TriggerBarrier(barrier));
                                }
                            }
                        }
                        let _ = reply.send(snap.map_err(|e| RuntimeError::connector(&uid, 0, e)));
                        Ok(())
                    }
                    CoordinatorCommand::CheckpointComplete(c) => {
                        shared
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .tracker
                            .complete(c);
                        enumerator.notify_checkpoint_complete(c)
                    }
                    CoordinatorCommand::CheckpointAborted(c) => enumerator.checkpoint_aborted(c),
                    CoordinatorCommand::ReadersReset {
                        restored_from,
                        parallelism,
                    } => {
                        if let Some(a) = aligner.as_mut() {
                            a.reported.clear();
                        }
                        let back = {
                            let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
                            s.readers.clear();
                            s.all_readers.clear();
                            s.parallelism = parallelism;
                            s.tracker.take_after(restored_from)
                        };
                        let mut result = Ok(());
                        for (subtask, splits) in back {
                            if !splits.is_empty() {
                                result = enumerator.add_splits_back(splits, subtask);
                                if result.is_err() {
                                    break;
                                }
                            }
                        }
                        result
                    }
                    CoordinatorCommand::Close { reply } => {
                        let r = enumerator.close();
                        let _ = reply.send(());
                        if let Err(e) = r {
                            tracing::warn!(source = %uid, "closing the split enumerator failed: {e}");
                        }
                        return;
                    }
                },
            };
            if let Err(e) = result {
                let _ = master.send(MasterMsg::CoordinatorFailed {
                    source: uid.clone(),
                    error: RuntimeError::connector(&uid, 0, e),
                });
                return;
            }
        }
    });
    Ok(CoordinatorHandle {
        source: uid,
        send: Arc::new(move |c| inbox.send(CoordMsg::Command(c)).is_ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_returns_only_what_was_assigned_after_the_restored_checkpoint() {
        let mut t = AssignmentTracker::new();
        t.record(0, ["a"]);
        t.snapshot(CheckpointId(1));
        t.record(1, ["b"]);
        t.snapshot(CheckpointId(2));
        t.record(0, ["c"]);
        t.complete(CheckpointId(1));
        // Restored from 2 (completed, but the coordinator was not told yet): only c comes back.
        let back = t.take_after(Some(CheckpointId(2)));
        assert_eq!(back, BTreeMap::from([(0, vec!["c"])]));
        assert!(t.take_after(None).is_empty());
    }

    #[test]
    fn tracker_without_checkpoint_returns_everything() {
        let mut t = AssignmentTracker::new();
        t.record(0, ["a"]);
        t.snapshot(CheckpointId(1));
        t.record(2, ["b"]);
        let back = t.take_after(None);
        assert_eq!(back, BTreeMap::from([(0, vec!["a"]), (2, vec!["b"])]));
    }
}
