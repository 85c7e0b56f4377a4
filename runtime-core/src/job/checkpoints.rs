//! The checkpoint coordinator of the job master: triggers checkpoints and savepoints, collects
//! the acknowledgements, writes the metadata, then notifies completion or abortion; a failed
//! checkpoint counts toward the tolerable failures, a failed savepoint never does.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio::sync::oneshot;
use tokio::time::Instant;
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::metrics::MetricGroup;

use super::{Attempt, AttemptEnd, JobStatus, Master, PendingCheckpoint};
use crate::config::{ExternalizedCheckpointRetention, RestoreFrom};
use crate::element::{Barrier, Notification, SnapshotType};
use crate::error::{Result, RuntimeError};
use crate::fault::{FaultPoint, FaultSite};
use crate::history::SubtaskCheckpoint;
use crate::load::BarrierTiming;
use crate::monitor::{JobState, RestoredFrom};
use crate::source::coordinator::CoordinatorCommand;
use crate::storage::{
    retain, write_savepoint, CheckpointLocation, CheckpointMetadata, OperatorSnapshot, SnapshotKind,
};
use crate::task::{TaskCommand, TaskKey};

/// The directory a savepoint gets under the directory it was asked for: new for every
/// savepoint (`savepoint-<id>-<unix millis>`), so an earlier one is never in the way.
fn savepoint_dir_name(id: CheckpointId) -> String {
    format!("savepoint-{}-{}", id.0, now_millis())
}

pub(super) fn now_millis() -> u64 {
    crate::history::now_millis()
}

impl Master {
    pub(super) async fn periodic_trigger(
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

    pub(super) async fn maybe_final_checkpoint(
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

    pub(super) async fn trigger(
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
        self.history.triggered(
            id.0,
            match kind {
                SnapshotType::Checkpoint => SnapshotKind::Checkpoint,
                SnapshotType::Savepoint => SnapshotKind::Savepoint,
            },
        );
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
    pub(super) fn savepoint_failed(
        &mut self,
        state: &mut Attempt,
        id: CheckpointId,
        reply: oneshot::Sender<Result<CheckpointLocation>>,
        error: RuntimeError,
    ) {
        tracing::warn!(checkpoint = %id, "savepoint failed: {error}; the job goes on");
        self.history.failed(id.0, &error.to_string());
        self.job_metrics
            .group("checkpoints")
            .counter("failedSavepoints")
            .inc();
        self.notify_aborted(state, id);
        let _ = reply.send(Err(error));
        if state.drain.take().is_some() {
            state.final_due = true;
        }
    }

    pub(super) fn checkpoint_failed(
        &mut self,
        state: &mut Attempt,
        id: CheckpointId,
        reason: String,
    ) -> std::result::Result<(), AttemptEnd> {
        self.history.failed(id.0, &reason);
        state.consecutive_failures += 1;
        self.job_metrics
            .group("checkpoints")
            .counter("failed")
            .inc();
        self.notify_aborted(state, id);
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

    /// Tells every participant that checkpoint `id` was aborted: the split enumerators
    /// through their coordinators, and every operator of every task (readers, writers,
    /// committers, topology stages), as Flink's `notifyCheckpointAborted` does. A task whose
    /// barrier of `id` is still on its way hears it first; nothing of `id` is lost, since the
    /// next completed checkpoint covers it.
    fn notify_aborted(&self, state: &Attempt, id: CheckpointId) {
        if let Some(cs) = &self.coordinators {
            for c in cs.values() {
                c.send(CoordinatorCommand::CheckpointAborted(id));
            }
        }
        for control in state.controls.values() {
            let _ = control.send(TaskCommand::Notify(Notification::CheckpointAborted(id)));
        }
    }

    /// A task declined checkpoint `id`: it is aborted at once (a savepoint fails for its
    /// requester), rather than waiting for its timeout.
    pub(super) fn declined(
        &mut self,
        state: &mut Attempt,
        task: TaskKey,
        id: CheckpointId,
        reason: &str,
    ) -> std::result::Result<(), AttemptEnd> {
        let Some(p) = state.pending.remove(&id) else {
            return Ok(()); // aborted already
        };
        let who = self
            .job
            .groups
            .get(task.group)
            .map_or_else(|| format!("task {}", task.group), |g| g.name.clone());
        let reason = format!("declined by {who} (subtask {}): {reason}", task.subtask);
        // A finished task may still need its final checkpoint: the next one is due now.
        state.final_due = true;
        match p.savepoint {
            Some((_, reply)) => {
                self.savepoint_failed(
                    state,
                    id,
                    reply,
                    RuntimeError::Lost(format!("savepoint {id} ({reason})")),
                );
                Ok(())
            }
            None => self.checkpoint_failed(state, id, reason),
        }
    }

    pub(super) fn abort_expired(
        &mut self,
        state: &mut Attempt,
    ) -> std::result::Result<(), AttemptEnd> {
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
    pub(super) async fn complete_ready(
        &mut self,
        state: &mut Attempt,
    ) -> std::result::Result<(), AttemptEnd> {
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

    pub(super) fn metadata(
        &self,
        state: &Attempt,
        id: CheckpointId,
        p: &PendingCheckpoint,
    ) -> CheckpointMetadata {
        let mut operators = BTreeMap::new();
        for (g, group) in self.job.groups.iter().enumerate() {
            // Operators, then the records in flight into the group (unaligned checkpoints).
            for uid in group.uids.iter().chain(group.channel_state.iter()) {
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

    pub(super) async fn complete(
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
        self.history.completed(id.0, size as u64);
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
}

impl Master {
    /// Records when a subtask's barrier came and how long it aligned, into the history.
    pub(super) fn record_ack(
        &self,
        state: &Attempt,
        task: TaskKey,
        checkpoint: CheckpointId,
        timing: BarrierTiming,
    ) {
        let Some(p) = state.pending.get(&checkpoint) else {
            return;
        };
        let triggered = p.started.into_std();
        let name = self
            .job
            .groups
            .get(task.group)
            .map_or_else(|| format!("task {}", task.group), |g| g.name.clone());
        self.history.acknowledged(
            checkpoint.0,
            SubtaskCheckpoint {
                task: name,
                subtask: task.subtask,
                start_delay: timing.first_barrier.saturating_duration_since(triggered),
                alignment: timing.alignment,
                acknowledged_after: triggered.elapsed(),
                in_flight_bytes: timing.in_flight_bytes,
            },
        );
    }

    /// What monitors show as the snapshot an attempt starts from.
    pub(super) fn restored_from(&self, metadata: &CheckpointMetadata) -> RestoredFrom {
        let source = match (&self.job.config.restore, metadata.kind) {
            (RestoreFrom::Savepoint(path), SnapshotKind::Savepoint) => {
                format!("savepoint {}", path.display())
            }
            (_, SnapshotKind::Savepoint) => "a savepoint".to_owned(),
            _ => format!("checkpoint storage {}", self.storage.describe()),
        };
        RestoredFrom {
            checkpoint_id: metadata.checkpoint_id,
            source,
        }
    }

    /// The job ended with `status`: monitors see it, and a cancelled job deletes its checkpoints
    /// when [`ExternalizedCheckpointRetention::DeleteOnCancellation`] says so.
    pub(super) async fn job_ended(&mut self, status: &JobStatus) {
        self.live.set_state(match status {
            JobStatus::Finished => JobState::Finished,
            JobStatus::Cancelled => JobState::Cancelled,
            JobStatus::Stopped { .. } => JobState::Stopped,
            _ => JobState::Failed,
        });
        if matches!(status, JobStatus::Cancelled)
            && self.job.config.checkpoint_retention
                == ExternalizedCheckpointRetention::DeleteOnCancellation
        {
            self.delete_own_checkpoints().await;
        }
    }

    /// Deletes the checkpoints this run wrote (ids from `first_id`; never the one it was
    /// restored from, nor savepoints).
    async fn delete_own_checkpoints(&self) {
        let list = match self.storage.list_checkpoints().await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(job = %self.job.config.name, "cannot list the checkpoints to delete them after the cancel: {e}");
                return;
            }
        };
        for (id, location) in list.into_iter().filter(|(id, _)| *id >= self.first_id) {
            match self.storage.discard(&location).await {
                Ok(()) => {
                    tracing::info!(job = %self.job.config.name, checkpoint = id, "deleted after the cancel (checkpoints are deleted on cancellation)");
                }
                Err(e) => {
                    tracing::warn!(job = %self.job.config.name, checkpoint = id, "cannot delete {location} after the cancel: {e}");
                }
            }
        }
    }
}
