//! The output of a committable edge routed with `Rebalance` or `KeyBy`: it spreads committables
//! over the downstream subtasks and rewrites the summaries so that they stay consistent.
//!
//! A downstream subtask (a committer or a topology stage) knows it has every committable of a
//! checkpoint when the summaries it received announce as many committables as arrived. So this
//! output holds back a checkpoint's messages until they are *complete* (the summaries announce
//! exactly as many committables as were emitted, in either order), then assigns each committable
//! a target (round-robin, or by the hash of its key) and sends every downstream subtask, for
//! each upstream summary, a copy counting only the committables that subtask gets (0 if none),
//! followed by those committables. The upstream's `subtask_id` and `number_of_subtasks` stay as
//! they are: each downstream subtask still gets one summary per upstream summary.
//!
//! Messages never wait beyond a barrier or the end of data (committables must travel before the
//! barrier of their checkpoint): what is still incomplete then (an operator announcing more or
//! fewer committables than it emits) goes as it is to a fixed subtask, as the runtime routed
//! every committable before, so the downstream subtask sees the same mismatch it would have.

use std::collections::BTreeMap;

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::sink::{
    AnyCommittable, CommittableMessage, CommittableSummary, CommittableWithLineage,
};

use super::Message;
use crate::element::{Event, Notification};
use crate::error::Result;
use crate::exchange::{target_of, ExchangeOutput};
use crate::operator::{Output, TaskCx};

/// The key of a committable, for `KeyBy` routing.
pub(crate) type CommittableKey = std::sync::Arc<dyn Fn(&AnyCommittable) -> u64 + Send + Sync>;

/// How committables are assigned to downstream subtasks.
pub(crate) enum Spread {
    /// Round-robin, starting at the upstream subtask's index.
    RoundRobin,
    /// By the hash of a key: equal keys reach the same subtask.
    KeyBy(CommittableKey),
}

/// The messages of one checkpoint not sent yet.
#[derive(Default)]
struct Group {
    summaries: Vec<CommittableSummary>,
    committables: Vec<CommittableWithLineage<AnyCommittable>>,
}

impl Group {
    fn is_complete(&self) -> bool {
        !self.summaries.is_empty()
            && self
                .summaries
                .iter()
                .map(|s| s.number_of_committables)
                .sum::<usize>()
                == self.committables.len()
    }
}

/// Spreads committables over the downstream subtasks with consistent summaries.
pub(crate) struct SpreadOutput {
    /// One output per downstream subtask.
    targets: Vec<ExchangeOutput<Message>>,
    spread: Spread,
    /// The next round-robin target.
    next: usize,
    /// Where incomplete messages go (the upstream subtask's fixed target).
    fallback: usize,
    open: BTreeMap<CheckpointId, Group>,
    /// Per target, the messages to send.
    out: Vec<Vec<Message>>,
}

impl SpreadOutput {
    /// `senders` has one channel per downstream subtask.
    pub(crate) fn new(
        senders: Vec<crate::exchange::BoxSender<Message>>,
        spread: Spread,
        subtask: usize,
        batch_size: usize,
    ) -> Self {
        let n = senders.len().max(1);
        let targets: Vec<ExchangeOutput<Message>> = senders
            .into_iter()
            .map(|s| {
                ExchangeOutput::new(vec![s], crate::exchange::Partitioning::Fixed(0), batch_size)
            })
            .collect();
        let out = targets.iter().map(|_| Vec::new()).collect();
        SpreadOutput {
            targets,
            spread,
            next: subtask % n,
            fallback: subtask % n,
            open: BTreeMap::new(),
            out,
        }
    }

    fn target(&mut self, committable: &AnyCommittable) -> usize {
        let n = self.targets.len().max(1);
        match &self.spread {
            Spread::RoundRobin => {
                let t = self.next % n;
                self.next = (t + 1) % n;
                t
            }
            Spread::KeyBy(key) => target_of(key(committable), n),
        }
    }

    /// Assigns the committables of a complete group and queues per-target summaries and
    /// committables.
    fn spread(&mut self, group: Group) {
        let n = self.targets.len();
        // The committables are attributed to the summaries in order (the downstream only adds
        // the counts up, so any attribution keeps the totals right).
        let mut counts = vec![vec![0_usize; n]; group.summaries.len()];
        let mut routed: Vec<(usize, CommittableWithLineage<AnyCommittable>)> =
            Vec::with_capacity(group.committables.len());
        let mut summary = 0;
        let mut left = group
            .summaries
            .first()
            .map_or(0, |s| s.number_of_committables);
        for c in group.committables {
            while left == 0 && summary + 1 < group.summaries.len() {
                summary += 1;
                left = group
                    .summaries
                    .get(summary)
                    .map_or(0, |s| s.number_of_committables);
            }
            let t = self.target(&c.committable);
            if let Some(count) = counts.get_mut(summary).and_then(|c| c.get_mut(t)) {
                *count += 1;
            }
            left = left.saturating_sub(1);
            routed.push((t, c));
        }
        for (s, per_target) in group.summaries.iter().zip(counts) {
            for (out, count) in self.out.iter_mut().zip(per_target) {
                out.push(CommittableMessage::Summary(CommittableSummary {
                    number_of_committables: count,
                    ..*s
                }));
            }
        }
        for (t, c) in routed {
            if let Some(out) = self.out.get_mut(t) {
                out.push(CommittableMessage::WithLineage(c));
            }
        }
    }

    /// Sends what is incomplete as it is, to the fallback target.
    fn release_incomplete(&mut self) {
        let open = std::mem::take(&mut self.open);
        let Some(out) = self.out.get_mut(self.fallback) else {
            return;
        };
        for (_, group) in open {
            tracing::warn!(
                summaries = group.summaries.len(),
                committables = group.committables.len(),
                "committable summaries do not match the committables emitted; routing them to one subtask"
            );
            out.extend(group.summaries.into_iter().map(CommittableMessage::Summary));
            out.extend(
                group
                    .committables
                    .into_iter()
                    .map(CommittableMessage::WithLineage),
            );
        }
    }

    async fn send_queued(&mut self, cx: &mut TaskCx) -> Result<()> {
        for (target, out) in self.targets.iter_mut().zip(self.out.iter_mut()) {
            if !out.is_empty() {
                target.push(out, cx).await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Output<Message> for SpreadOutput {
    async fn open(&mut self, cx: &mut TaskCx) -> Result<()> {
        for t in &mut self.targets {
            t.open(cx).await?;
        }
        Ok(())
    }

    async fn push(&mut self, batch: &mut Vec<Message>, cx: &mut TaskCx) -> Result<()> {
        if self.targets.is_empty() {
            batch.clear();
            return Ok(());
        }
        for message in batch.drain(..) {
            let id = message.checkpoint_id();
            let group = self.open.entry(id).or_default();
            match message {
                CommittableMessage::Summary(s) => group.summaries.push(s),
                CommittableMessage::WithLineage(c) => group.committables.push(c),
            }
            if group.is_complete() {
                if let Some(group) = self.open.remove(&id) {
                    self.spread(group);
                }
            }
        }
        self.send_queued(cx).await
    }

    async fn event(&mut self, event: Event, cx: &mut TaskCx) -> Result<()> {
        if matches!(event, Event::Barrier(_) | Event::EndOfData) && !self.open.is_empty() {
            self.release_incomplete();
            self.send_queued(cx).await?;
        }
        for t in &mut self.targets {
            t.event(event, cx).await?;
        }
        Ok(())
    }

    async fn notify(&mut self, n: Notification, cx: &mut TaskCx) -> Result<()> {
        for t in &mut self.targets {
            t.notify(n, cx).await?;
        }
        Ok(())
    }

    async fn flush_buffers(&mut self) -> Result<()> {
        for t in &mut self.targets {
            t.flush_buffers().await?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        if !self.open.is_empty() {
            self.release_incomplete();
            for (target, out) in self.targets.iter_mut().zip(self.out.iter_mut()) {
                if !out.is_empty() {
                    // No task context at close: queue them, `close` sends them.
                    target.enqueue(0, out);
                }
            }
        }
        for t in &mut self.targets {
            t.close().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::element::{Barrier, SnapshotType, StreamElement};
    use crate::exchange::{take_receivers, take_senders, LocalExchange};

    fn summary(cp: u64, n: usize) -> Message {
        CommittableMessage::Summary(CommittableSummary {
            subtask_id: 0,
            number_of_subtasks: 1,
            checkpoint_id: CheckpointId(cp),
            number_of_committables: n,
            number_of_failed: 0,
        })
    }

    fn committable(cp: u64, v: u32) -> Message {
        CommittableMessage::WithLineage(CommittableWithLineage {
            committable: Box::new(v),
            checkpoint_id: CheckpointId(cp),
            subtask_id: 0,
        })
    }

    /// Per target: (checkpoint, announced, received values).
    type Seen = Vec<BTreeMap<u64, (usize, Vec<u32>)>>;

    async fn run(spread: Spread, messages: Vec<Vec<Message>>) -> Result<Seen> {
        let mut exchange = LocalExchange::default();
        exchange.connect_typed::<Message>(0, 1, 3, 64);
        let senders = take_senders::<Message>(&mut exchange, 0, 0)?;
        let mut receivers: Vec<_> = (0..3)
            .map(|j| take_receivers::<Message>(&mut exchange, 0, j))
            .collect::<Result<_>>()?;
        let mut out = SpreadOutput::new(senders, spread, 0, 2);
        let mut cx = TaskCx::new(0, 1, 0, Arc::new(crate::fault::NoFaults));
        for mut batch in messages {
            out.push(&mut batch, &mut cx).await?;
        }
        let barrier = Event::Barrier(Barrier {
            checkpoint_id: CheckpointId(9),
            kind: SnapshotType::Checkpoint,
        });
        out.event(barrier, &mut cx).await?;
        out.event(Event::EndOfData, &mut cx).await?;
        let mut seen = Vec::new();
        for rxs in &mut receivers {
            let mut per_cp: BTreeMap<u64, (usize, Vec<u32>)> = BTreeMap::new();
            while let Some(e) = crate::exchange::recv(&mut rxs[0]).await {
                match e {
                    StreamElement::Batch(b) => {
                        for m in b.records {
                            match m {
                                CommittableMessage::Summary(s) => {
                                    per_cp.entry(s.checkpoint_id.0).or_default().0 +=
                                        s.number_of_committables;
                                }
                                CommittableMessage::WithLineage(c) => {
                                    let v = *c.committable.downcast::<u32>().map_err(|_| {
                                        RuntimeError::Lost("a u32 committable".into())
                                    })?;
                                    per_cp.entry(c.checkpoint_id.0).or_default().1.push(v);
                                }
                            }
                        }
                    }
                    StreamElement::Event(Event::EndOfData) => break,
                    StreamElement::Event(_) => {}
                }
            }
            seen.push(per_cp);
        }
        Ok(seen)
    }

    use crate::error::RuntimeError;

    #[tokio::test]
    async fn round_robin_spreads_committables_with_consistent_summaries() -> Result<()> {
        let seen = run(
            Spread::RoundRobin,
            vec![
                // Checkpoint 1: summary first, 4 committables (over two pushes).
                vec![summary(1, 4), committable(1, 10), committable(1, 11)],
                vec![committable(1, 12), committable(1, 13)],
                // Checkpoint 2: the committable before its summary.
                vec![committable(2, 20), summary(2, 1)],
                // Checkpoint 3: nothing.
                vec![summary(3, 0)],
            ],
        )
        .await?;
        let mut all = Vec::new();
        for (t, per_cp) in seen.iter().enumerate() {
            for (cp, (announced, values)) in per_cp {
                assert_eq!(*announced, values.len(), "target {t} checkpoint {cp}");
                all.extend(values.iter().copied());
            }
            // Every target gets a summary of every checkpoint, even when it gets nothing.
            assert_eq!(
                per_cp.keys().copied().collect::<Vec<_>>(),
                [1, 2, 3],
                "target {t}"
            );
            assert!(
                !per_cp.get(&1).is_none_or(|(_, v)| v.is_empty()),
                "target {t} got none of checkpoint 1's 4 committables"
            );
        }
        all.sort_unstable();
        assert_eq!(all, [10, 11, 12, 13, 20]);
        Ok(())
    }

    #[tokio::test]
    async fn key_by_keeps_equal_keys_together_and_mismatches_go_to_one_subtask() -> Result<()> {
        let key: CommittableKey =
            Arc::new(|c: &AnyCommittable| c.downcast_ref::<u32>().map_or(0, |v| u64::from(v % 2)));
        let seen = run(
            Spread::KeyBy(key),
            vec![
                vec![summary(1, 6)],
                (0..6).map(|v| committable(1, v)).collect(),
                // Announces 3 but emits 1 before the barrier: left as it is, on one subtask.
                vec![summary(2, 3), committable(2, 7)],
            ],
        )
        .await?;
        let mut owner = BTreeMap::new();
        for (t, per_cp) in seen.iter().enumerate() {
            if let Some((announced, values)) = per_cp.get(&1) {
                assert_eq!(*announced, values.len());
                for v in values {
                    assert_eq!(*owner.entry(v % 2).or_insert(t), t, "key {} split", v % 2);
                }
            }
        }
        let mismatched: Vec<_> = seen.iter().filter_map(|p| p.get(&2)).collect();
        assert_eq!(mismatched, [&(3, vec![7])]);
        Ok(())
    }
}
