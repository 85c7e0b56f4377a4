//! A task fed by channels from upstream tasks.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};

use super::lifecycle::{Flow, Lifecycle};
use super::TaskCommand;
use crate::element::{Barrier, Batch, Event, Notification};
use crate::error::Result;
use crate::exchange::{GateEvent, InputGate};
use crate::load::{self, BarrierTiming, Wait};
use crate::operator::{BoxOutput, TaskCx};
use crate::storage::SubtaskSnapshot;

/// What woke a one-input task.
enum Step<T> {
    Command(Option<TaskCommand>),
    Gate(Result<GateEvent<T>>),
    Linger,
    /// An operator's own work while waiting (see `Output::poll_progress`).
    Progress(Result<()>),
}

/// A running one-input subtask.
pub(crate) struct OneInputTask<T: Send + 'static> {
    pub(crate) life: Lifecycle,
    pub(crate) gate: InputGate<T>,
    pub(crate) chain: BoxOutput<T>,
    pub(crate) control: mpsc::UnboundedReceiver<TaskCommand>,
    pub(crate) cx: TaskCx,
    pub(crate) linger: Duration,
    /// Records in flight restored from an unaligned checkpoint, replayed before new input.
    pub(crate) replay: Batch<T>,
    /// Where this task's channel state goes in its snapshots: the state id and name.
    pub(crate) channel_state: Option<(String, &'static str)>,
    /// An unaligned snapshot waiting for its channel state before it is acknowledged.
    pub(crate) held: Option<Held>,
    /// Records per batch handed to the chain when replaying.
    pub(crate) batch_size: usize,
}

/// A snapshot taken at an unaligned barrier, acknowledged once the gate has recorded the
/// records in flight before every channel's barrier.
pub(crate) struct Held {
    id: CheckpointId,
    snapshots: BTreeMap<String, SubtaskSnapshot>,
    timing: BarrierTiming,
}

/// When a snapshot is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckWhen {
    /// At once (aligned or counted barriers).
    Now,
    /// With the channel state the gate delivers later (unaligned barriers).
    WithChannelState,
}

impl<T: Send + 'static> OneInputTask<T> {
    pub(crate) async fn run(mut self) {
        let result = self.run_inner().await;
        self.life.report(result);
    }

    async fn run_inner(&mut self) -> Result<()> {
        self.chain.open(&mut self.cx).await?;
        self.replay_in_flight().await?;
        // Measured per wait, never per record (see `load`); a task the master did not start
        // measures into a load of its own that nobody reads.
        let load = load::current().unwrap_or_default();
        let mut linger = tokio::time::interval(self.linger);
        linger.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.life.is_running() {
                let wait = load.begin(Wait::Input);
                let step = tokio::select! {
                    biased;
                    command = self.control.recv() => Step::Command(command),
                    event = self.gate.next() => Step::Gate(event),
                    _ = linger.tick() => Step::Linger,
                    progress = std::future::poll_fn(|c| self.chain.poll_progress(c, self.cx.subtask)) => {
                        Step::Progress(progress)
                    }
                };
                load.end(wait);
                match step {
                    Step::Command(Some(command)) => {
                        if let Flow::Exit = self.handle(command).await? {
                            return Ok(());
                        }
                    }
                    Step::Command(None) => return Ok(()),
                    Step::Gate(event) => match event? {
                        GateEvent::Batch(mut batch) => {
                            load.records_in(batch.len());
                            if batch.timestamps.is_empty() {
                                self.chain.push(&mut batch.records, &mut self.cx).await?;
                            } else {
                                self.chain
                                    .push_timestamped(
                                        &mut batch.records,
                                        &mut batch.timestamps,
                                        &mut self.cx,
                                    )
                                    .await?;
                            }
                        }
                        GateEvent::Watermark(w) => {
                            load.watermark(w.0);
                            self.chain.event(Event::Watermark(w), &mut self.cx).await?;
                        }
                        GateEvent::Idle(idle) => {
                            self.chain.event(Event::Idle(idle), &mut self.cx).await?;
                        }
                        GateEvent::Barrier(barrier) => {
                            let timing = self
                                .gate
                                .take_barrier_timing()
                                .unwrap_or_else(BarrierTiming::now);
                            self.snapshot(barrier, timing, AckWhen::Now).await?;
                        }
                        GateEvent::UnalignedBarrier(barrier) => {
                            let timing = self
                                .gate
                                .take_barrier_timing()
                                .unwrap_or_else(BarrierTiming::now);
                            self.snapshot(barrier, timing, AckWhen::WithChannelState)
                                .await?;
                        }
                        GateEvent::ChannelState(id, entries) => {
                            self.acknowledge_held(id, entries);
                        }
                        GateEvent::EndOfData => {
                            self.chain.event(Event::EndOfData, &mut self.cx).await?;
                            self.life.end_input();
                        }
                    },
                    Step::Linger => self.chain.flush_buffers().await?,
                    Step::Progress(result) => result?,
                }
            } else {
                let wait = load.begin(Wait::Input);
                let command = self.control.recv().await;
                load.end(wait);
                match command {
                    Some(command) => {
                        if let Flow::Exit = self.handle(command).await? {
                            return Ok(());
                        }
                    }
                    None => return Ok(()),
                }
            }
        }
    }

    /// Replays the records in flight restored from an unaligned checkpoint, before any input.
    async fn replay_in_flight(&mut self) -> Result<()> {
        let mut rest = std::mem::take(&mut self.replay);
        if rest.is_empty() {
            return Ok(());
        }
        tracing::debug!(
            subtask = self.cx.subtask,
            records = rest.len(),
            "replaying the records in flight of the restored checkpoint"
        );
        while !rest.is_empty() {
            let at = rest.len().min(self.batch_size.max(1));
            let tail = rest.records.split_off(at);
            let mut batch = std::mem::replace(&mut rest.records, tail);
            if rest.timestamps.is_empty() {
                self.chain.push(&mut batch, &mut self.cx).await?;
            } else {
                let tail = rest.timestamps.split_off(at);
                let mut times = std::mem::replace(&mut rest.timestamps, tail);
                self.chain
                    .push_timestamped(&mut batch, &mut times, &mut self.cx)
                    .await?;
            }
        }
        Ok(())
    }

    async fn snapshot(
        &mut self,
        barrier: Barrier,
        timing: BarrierTiming,
        when: AckWhen,
    ) -> Result<()> {
        let id = barrier.checkpoint_id;
        if !self.life.begin_snapshot(id) {
            return Ok(()); // already taken (in-band and by trigger)
        }
        self.chain
            .event(Event::Barrier(barrier), &mut self.cx)
            .await?;
        match when {
            AckWhen::Now => self.acknowledge(id, timing),
            AckWhen::WithChannelState => {
                self.held = Some(Held {
                    id,
                    snapshots: self.cx.take_snapshots(),
                    timing,
                });
            }
        }
        Ok(())
    }

    /// Acknowledges the held unaligned snapshot of checkpoint `id` with its channel state.
    fn acknowledge_held(&mut self, id: CheckpointId, entries: Vec<VersionedBytes>) {
        let Some(held) = self.held.take_if(|h| h.id == id) else {
            return; // a newer barrier replaced it
        };
        self.cx.snapshots = held.snapshots;
        let bytes: usize = entries.iter().map(|e| e.bytes.len()).sum();
        if let Some((state_id, name)) = &self.channel_state {
            if !entries.is_empty() {
                self.cx.add_state(state_id, name, entries);
            }
        }
        let timing = BarrierTiming {
            in_flight_bytes: Some(bytes as u64),
            ..held.timing
        };
        self.acknowledge(id, timing);
    }

    fn acknowledge(&mut self, id: CheckpointId, timing: BarrierTiming) {
        self.life.ack(id, &mut self.cx, timing);
    }

    async fn handle(&mut self, command: TaskCommand) -> Result<Flow> {
        match command {
            TaskCommand::TriggerBarrier(barrier) => {
                self.snapshot(barrier, BarrierTiming::now(), AckWhen::Now)
                    .await?;
            }
            TaskCommand::Notify(n) => {
                if let Notification::CheckpointAborted(id) = n {
                    // Its barriers that are still on their way are late: not snapshotted.
                    self.gate.abort(id);
                    if self.held.as_ref().is_some_and(|h| h.id <= id) {
                        self.held = None;
                    }
                }
                self.chain.notify(n, &mut self.cx).await?;
                if self.life.may_close_after(n) {
                    self.chain.close().await?;
                    return Ok(Flow::Exit);
                }
            }
            TaskCommand::Cancel => {
                if let Err(e) = self.chain.close().await {
                    tracing::debug!("closing after cancel: {e}");
                }
                return Ok(Flow::Exit);
            }
            TaskCommand::AddSplits(_)
            | TaskCommand::AlignWatermark(_)
            | TaskCommand::NoMoreSplits
            | TaskCommand::SourceEvent(_)
            | TaskCommand::StopSource { .. } => {}
        }
        Ok(Flow::Continue)
    }
}
