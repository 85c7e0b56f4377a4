//! The committer operator: collects committables per checkpoint and writer subtask, checks that
//! every announced committable arrived, and after the checkpoint completes commits everything up
//! to it in checkpoint order, applying each request's outcome with bounded retries. Restored
//! committables are committed again at start (commits are idempotent).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::sink::{
    apply_commit_error, AnyCommittable, CommitOutcome, CommitRequest, CommittableMessage,
    CommittableSummary, CommittableWithLineage, Committer, CommitterCapability,
};
use weir_connector_api::state::{StateError, StateReader, StateWriter};

use super::Message;
use crate::element::{Event, Notification};
use crate::error::{Result, RuntimeError};
use crate::fault::FaultPoint;
use crate::operator::{BoxOutput, Output, TaskCx};

/// The state name of pending committables.
pub(crate) const COMMITTABLES_STATE: &str = "committables";
const ENTRY_VERSION: u32 = 1;

struct Entry {
    checkpoint_id: CheckpointId,
    subtask: usize,
    retries: u32,
    committable: AnyCommittable,
}

#[derive(Default)]
struct PendingCheckpoint {
    summaries: BTreeMap<usize, CommittableSummary>,
    entries: Vec<Entry>,
    /// Restored from state: committed without waiting for summaries.
    restored: bool,
}

pub(crate) struct CommitterOperator<W> {
    pub(crate) uid: String,
    pub(crate) committer: Box<dyn Committer<AnyCommittable>>,
    pub(crate) capability: Arc<dyn CommitterCapability<W>>,
    pub(crate) subtask: usize,
    pub(crate) max_retries: u32,
    pub(crate) next: BoxOutput<Message>,
    pending: BTreeMap<CheckpointId, PendingCheckpoint>,
    end_of_input: bool,
    /// The first checkpoint whose barrier came after the end of input: the end-of-input
    /// committables are in its state, so its completion commits them. A checkpoint whose
    /// barrier came before must not (a restore from it replays the input after it).
    end_of_input_checkpoint: Option<CheckpointId>,
    /// End of data was passed on (only after everything was committed, so post-commit stages
    /// see every committed committable before it).
    forwarded_end: bool,
}

impl<W: Send + 'static> CommitterOperator<W> {
    pub(crate) fn new(
        uid: String,
        committer: Box<dyn Committer<AnyCommittable>>,
        capability: Arc<dyn CommitterCapability<W>>,
        subtask: usize,
        max_retries: u32,
        next: BoxOutput<Message>,
    ) -> Self {
        CommitterOperator {
            uid,
            committer,
            capability,
            subtask,
            max_retries,
            next,
            pending: BTreeMap::new(),
            end_of_input: false,
            end_of_input_checkpoint: None,
            forwarded_end: false,
        }
    }

    /// Restores committables from checkpointed state and an end-of-input flag.
    pub(crate) fn restore(&mut self, values: &[VersionedBytes], end_of_input: bool) -> Result<()> {
        for value in values {
            let entry = self.decode(value).map_err(|e| RuntimeError::Restore {
                operator: self.uid.clone(),
                reason: format!("committable state: {e}"),
            })?;
            tracing::debug!(committer = %self.uid, checkpoint = %entry.checkpoint_id, subtask = entry.subtask, "restored committable");
            let p = self.pending.entry(entry.checkpoint_id).or_default();
            p.restored = true;
            p.entries.push(entry);
        }
        self.end_of_input = end_of_input;
        if end_of_input {
            // Restored from a checkpoint taken after the end of input: what it holds is
            // committed at start, and nothing more comes.
            self.end_of_input_checkpoint = Some(CheckpointId(0));
        }
        Ok(())
    }

    fn encode(&self, entry: &Entry) -> Result<VersionedBytes> {
        let inner = self
            .capability
            .serialize_committable(&entry.committable)
            .map_err(|e| RuntimeError::connector(&self.uid, self.subtask, e))?;
        let mut w = StateWriter::new();
        w.put_u64(entry.checkpoint_id.0)
            .put_u32(entry.subtask as u32)
            .put_u32(entry.retries)
            .put_u32(inner.version)
            .put_bytes(&inner.bytes);
        let bytes = w
            .finish()
            .map_err(|e| RuntimeError::connector(&self.uid, self.subtask, e.into()))?;
        Ok(VersionedBytes {
            version: ENTRY_VERSION,
            bytes,
        })
    }

    fn decode(&self, value: &VersionedBytes) -> std::result::Result<Entry, String> {
        if value.version != ENTRY_VERSION {
            return Err(StateError::unknown_version(
                "committer entry",
                value.version,
                &[ENTRY_VERSION],
            )
            .to_string());
        }
        let read = || -> std::result::Result<(u64, u32, u32, u32, Vec<u8>), StateError> {
            let mut r = StateReader::new(&value.bytes);
            let entry = (
                r.get_u64()?,
                r.get_u32()?,
                r.get_u32()?,
                r.get_u32()?,
                r.get_bytes()?.to_vec(),
            );
            r.finish()?;
            Ok(entry)
        };
        let (checkpoint, subtask, retries, version, bytes) = read().map_err(|e| e.to_string())?;
        let committable = self
            .capability
            .deserialize_committable(&VersionedBytes { version, bytes })
            .map_err(|e| e.to_string())?;
        Ok(Entry {
            checkpoint_id: CheckpointId(checkpoint),
            subtask: subtask as usize,
            retries,
            committable,
        })
    }

    /// Whether everything announced for a checkpoint arrived. Called once the checkpoint
    /// completed: by then every committable of it has reached this committer (it travels before
    /// the barrier on its channel), and a writer subtask that had already finished sends no
    /// summary at all. A summary announcing more than arrived means messages were lost.
    fn is_complete(p: &PendingCheckpoint) -> bool {
        if p.restored {
            return true;
        }
        let announced: usize = p.summaries.values().map(|s| s.number_of_committables).sum();
        announced == p.entries.len()
    }

    /// Commits every complete checkpoint up to `up_to` (and the end-of-input committables once
    /// a checkpoint taken after the end of input completed), in checkpoint order.
    async fn commit_up_to(&mut self, up_to: CheckpointId, cx: &mut TaskCx) -> Result<()> {
        let end_of_input_due = self.end_of_input_checkpoint.is_some_and(|c| c <= up_to);
        let ids: Vec<CheckpointId> = self
            .pending
            .keys()
            .copied()
            .filter(|id| {
                if id.is_end_of_input() {
                    end_of_input_due
                } else {
                    *id <= up_to
                }
            })
            .collect();
        for id in ids {
            let complete = self.pending.get(&id).is_some_and(Self::is_complete);
            if !complete {
                tracing::warn!(
                    committer = %self.uid,
                    checkpoint = %id,
                    "committables of a completed checkpoint are incomplete; waiting for the rest"
                );
                continue;
            }
            let Some(p) = self.pending.remove(&id) else {
                continue;
            };
            self.commit_entries(id, p.entries, up_to, cx).await?;
        }
        Ok(())
    }

    async fn commit_entries(
        &mut self,
        checkpoint_id: CheckpointId,
        mut entries: Vec<Entry>,
        completed: CheckpointId,
        cx: &mut TaskCx,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        tracing::debug!(committer = %self.uid, checkpoint = %checkpoint_id, entries = entries.len(), "commit");
        cx.fault(FaultPoint::BetweenPreCommitAndCommit, &self.uid, completed)?;
        let mut committed = Vec::new();
        let mut round = 0_u32;
        while !entries.is_empty() {
            let mut requests: Vec<CommitRequest<AnyCommittable>> =
                Vec::with_capacity(entries.len());
            let mut meta = Vec::with_capacity(entries.len());
            for e in entries.drain(..) {
                meta.push((e.checkpoint_id, e.subtask));
                requests.push(CommitRequest::new(e.committable, e.retries));
            }
            if let Err(error) = self.committer.commit(&mut requests).await {
                apply_commit_error(&mut requests, error)
                    .map_err(|e| RuntimeError::connector(&self.uid, cx.subtask, e))?;
            }
            cx.fault(FaultPoint::DuringCommit, &self.uid, completed)?;
            for (request, (cp, subtask)) in requests.into_iter().zip(meta) {
                let retries = request.retries();
                let (committable, outcome) = request.into_parts();
                match outcome {
                    CommitOutcome::Committed | CommitOutcome::AlreadyCommitted => {
                        committed.push((cp, subtask, committable));
                    }
                    CommitOutcome::FailedKnown { reason } => {
                        tracing::warn!(committer = %self.uid, checkpoint = %cp, "committable discarded: {reason}");
                    }
                    CommitOutcome::RetryLater => entries.push(Entry {
                        checkpoint_id: cp,
                        subtask,
                        retries: retries + 1,
                        committable,
                    }),
                    CommitOutcome::UpdateAndRetry(updated) => entries.push(Entry {
                        checkpoint_id: cp,
                        subtask,
                        retries: retries + 1,
                        committable: updated,
                    }),
                    CommitOutcome::FailedUnknown(error) => {
                        return Err(RuntimeError::connector(&self.uid, cx.subtask, error));
                    }
                    other => {
                        return Err(RuntimeError::connector(
                            &self.uid,
                            cx.subtask,
                            weir_connector_api::ConnectorError::Contract(format!(
                                "unsupported commit outcome {}",
                                other.name()
                            )),
                        ));
                    }
                }
            }
            if !entries.is_empty() {
                round += 1;
                if round > self.max_retries {
                    return Err(RuntimeError::connector(
                        &self.uid,
                        cx.subtask,
                        weir_connector_api::ConnectorError::Contract(format!(
                            "{} committables of checkpoint {checkpoint_id} still failed to commit after {} retries \
                             (sink.committer.retries); the external system may be unavailable",
                            entries.len(),
                            self.max_retries
                        )),
                    ));
                }
                let backoff = Duration::from_millis(10 * 2_u64.pow(round.min(7)));
                tokio::time::sleep(backoff).await;
            }
        }
        self.forward_committed(committed, cx).await
    }

    /// Sends committed committables to the post-commit topology, with summaries.
    async fn forward_committed(
        &mut self,
        committed: Vec<(CheckpointId, usize, AnyCommittable)>,
        cx: &mut TaskCx,
    ) -> Result<()> {
        if committed.is_empty() {
            return Ok(());
        }
        let mut by_checkpoint: BTreeMap<CheckpointId, Vec<AnyCommittable>> = BTreeMap::new();
        for (cp, _, c) in committed {
            by_checkpoint.entry(cp).or_default().push(c);
        }
        let mut messages: Vec<Message> = Vec::new();
        for (cp, list) in by_checkpoint {
            messages.push(CommittableMessage::Summary(CommittableSummary {
                subtask_id: cx.subtask,
                number_of_subtasks: cx.parallelism,
                checkpoint_id: cp,
                number_of_committables: list.len(),
                number_of_failed: 0,
            }));
            messages.extend(list.into_iter().map(|committable| {
                CommittableMessage::WithLineage(CommittableWithLineage {
                    committable,
                    checkpoint_id: cp,
                    subtask_id: cx.subtask,
                })
            }));
        }
        self.next.push(&mut messages, cx).await
    }
}

#[async_trait::async_trait]
impl<W: Send + 'static> Output<Message> for CommitterOperator<W> {
    async fn open(&mut self, cx: &mut TaskCx) -> Result<()> {
        self.next.open(cx).await?;
        // Re-commit what a previous attempt left: everything restored is complete by definition.
        let restored: Vec<CheckpointId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.restored)
            .map(|(id, _)| *id)
            .collect();
        for id in restored {
            if let Some(p) = self.pending.remove(&id) {
                self.commit_entries(id, p.entries, id, cx).await?;
            }
        }
        Ok(())
    }

    async fn push(&mut self, batch: &mut Vec<Message>, cx: &mut TaskCx) -> Result<()> {
        for message in batch.drain(..) {
            match message {
                CommittableMessage::Summary(s) => {
                    let p = self.pending.entry(s.checkpoint_id).or_default();
                    if p.summaries.insert(s.subtask_id, s).is_some() {
                        return Err(RuntimeError::connector(
                            &self.uid,
                            cx.subtask,
                            weir_connector_api::ConnectorError::Contract(format!(
                                "duplicate committable summary from subtask {} for checkpoint {}",
                                s.subtask_id, s.checkpoint_id
                            )),
                        ));
                    }
                }
                CommittableMessage::WithLineage(c) => {
                    self.pending
                        .entry(c.checkpoint_id)
                        .or_default()
                        .entries
                        .push(Entry {
                            checkpoint_id: c.checkpoint_id,
                            subtask: c.subtask_id,
                            retries: 0,
                            committable: c.committable,
                        });
                }
            }
        }
        Ok(())
    }

    async fn event(&mut self, event: Event, cx: &mut TaskCx) -> Result<()> {
        match event {
            Event::Barrier(b) => {
                if self.end_of_input && self.end_of_input_checkpoint.is_none() {
                    self.end_of_input_checkpoint = Some(b.checkpoint_id);
                }
                let mut values = Vec::new();
                for p in self.pending.values() {
                    for e in &p.entries {
                        values.push(self.encode(e)?);
                    }
                }
                cx.add_state(&self.uid, COMMITTABLES_STATE, values);
                cx.touch(&self.uid, self.end_of_input);
            }
            Event::EndOfData => {
                self.end_of_input = true;
                // Passed on once the end-of-input committables are committed.
                return Ok(());
            }
            Event::Watermark(_) | Event::Idle(_) => {}
        }
        self.next.event(event, cx).await
    }

    async fn notify(&mut self, n: Notification, cx: &mut TaskCx) -> Result<()> {
        match n {
            Notification::CheckpointComplete(id) => {
                self.commit_up_to(id, cx).await?;
                if self.end_of_input && self.pending.is_empty() && !self.forwarded_end {
                    self.forwarded_end = true;
                    self.next.event(Event::EndOfData, cx).await?;
                }
            }
            // Its committables stay pending: the next completed checkpoint commits them.
            Notification::CheckpointAborted(id) => self
                .committer
                .checkpoint_aborted(id)
                .await
                .map_err(|e| RuntimeError::connector(&self.uid, cx.subtask, e))?,
        }
        self.next.notify(n, cx).await
    }

    async fn flush_buffers(&mut self) -> Result<()> {
        self.next.flush_buffers().await
    }

    async fn close(&mut self) -> Result<()> {
        let left: usize = self.pending.values().map(|p| p.entries.len()).sum();
        if left > 0 {
            // Never drop committables silently: this would be data loss.
            return Err(RuntimeError::connector(
                &self.uid,
                self.subtask,
                weir_connector_api::ConnectorError::Contract(format!(
                    "the committer is closing with {left} uncommitted committables"
                )),
            ));
        }
        let closed = self.committer.close().await;
        self.next.close().await?;
        closed.map_err(|e| RuntimeError::connector(&self.uid, self.subtask, e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;
    use weir_connector_api::sink::{ErasedStage, InitContext};

    use super::*;
    use crate::element::{Barrier, SnapshotType};
    use crate::sink::Discard;

    /// Records the `u32` committables it commits.
    struct Recording(Arc<Mutex<Vec<u32>>>);

    #[async_trait::async_trait]
    impl Committer<AnyCommittable> for Recording {
        async fn commit(
            &mut self,
            requests: &mut [CommitRequest<AnyCommittable>],
        ) -> weir_connector_api::error::Result<()> {
            let mut committed = self.0.lock().unwrap();
            for r in requests.iter() {
                committed.push(*r.committable().downcast_ref::<u32>().unwrap());
            }
            Ok(())
        }
    }

    /// Serializes `u32` committables; nothing else is used here.
    struct U32s;

    impl CommitterCapability<()> for U32s {
        fn prepare_commit<'a>(
            &'a self,
            _writer: &'a mut (),
        ) -> BoxFuture<'a, weir_connector_api::error::Result<Vec<AnyCommittable>>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn create_committer(
            &self,
            _ctx: &dyn InitContext,
        ) -> weir_connector_api::error::Result<Box<dyn Committer<AnyCommittable>>> {
            Err(weir_connector_api::ConnectorError::Contract(
                "not used".into(),
            ))
        }
        fn serialize_committable(
            &self,
            committable: &AnyCommittable,
        ) -> weir_connector_api::error::Result<VersionedBytes> {
            let v = committable.downcast_ref::<u32>().unwrap();
            Ok(VersionedBytes {
                version: 1,
                bytes: v.to_be_bytes().to_vec(),
            })
        }
        fn deserialize_committable(
            &self,
            bytes: &VersionedBytes,
        ) -> weir_connector_api::error::Result<AnyCommittable> {
            let b: [u8; 4] = bytes.bytes.as_slice().try_into().unwrap();
            Ok(Box::new(u32::from_be_bytes(b)))
        }
        fn pre_commit_stages(&self) -> Vec<ErasedStage> {
            Vec::new()
        }
        fn post_commit_stages(&self) -> Vec<ErasedStage> {
            Vec::new()
        }
    }

    fn barrier(id: u64) -> Event {
        Event::Barrier(Barrier {
            checkpoint_id: CheckpointId(id),
            kind: SnapshotType::Checkpoint,
        })
    }

    /// A checkpoint whose barrier reached the committer before the end of its input must not
    /// commit the end-of-input committables when it completes: they are in no state of it, and
    /// a restore from it replays the input after it, so committing them would duplicate the
    /// data (or, for files resumed from that checkpoint, publish the in-progress file the
    /// restore then finds gone). Only a checkpoint taken after the end of input commits them.
    #[tokio::test]
    async fn end_of_input_committables_wait_for_a_checkpoint_taken_after_the_end_of_input() {
        let committed = Arc::new(Mutex::new(Vec::new()));
        let mut op = CommitterOperator::new(
            "sink/committer".into(),
            Box::new(Recording(Arc::clone(&committed))),
            Arc::new(U32s) as Arc<dyn CommitterCapability<()>>,
            0,
            3,
            Box::new(Discard),
        );
        let mut cx = TaskCx::new(0, 1, 0, Arc::new(crate::fault::NoFaults));
        op.open(&mut cx).await.unwrap();
        let eoi = CheckpointId::END_OF_INPUT;
        // Checkpoint 1's barrier, then the writer's end-of-input committable and end of data.
        op.event(barrier(1), &mut cx).await.unwrap();
        let mut batch = vec![
            CommittableMessage::Summary(CommittableSummary {
                subtask_id: 0,
                number_of_subtasks: 1,
                checkpoint_id: eoi,
                number_of_committables: 1,
                number_of_failed: 0,
            }),
            CommittableMessage::WithLineage(CommittableWithLineage {
                committable: Box::new(7_u32) as AnyCommittable,
                checkpoint_id: eoi,
                subtask_id: 0,
            }),
        ];
        op.push(&mut batch, &mut cx).await.unwrap();
        op.event(Event::EndOfData, &mut cx).await.unwrap();
        op.notify(Notification::CheckpointComplete(CheckpointId(1)), &mut cx)
            .await
            .unwrap();
        assert!(
            committed.lock().unwrap().is_empty(),
            "committed on the completion of a checkpoint taken before the end of input"
        );
        // The final checkpoint, taken after the end of input, commits them.
        op.event(barrier(2), &mut cx).await.unwrap();
        op.notify(Notification::CheckpointComplete(CheckpointId(2)), &mut cx)
            .await
            .unwrap();
        assert_eq!(*committed.lock().unwrap(), [7]);
        op.close().await.unwrap();
    }
}
