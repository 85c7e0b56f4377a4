//! A task fed by channels from upstream tasks.

use std::time::Duration;

use tokio::sync::mpsc;
use weir_connector_api::checkpoint::CheckpointId;

use super::{MasterMsg, TaskCommand, TaskKey};
use crate::element::{Barrier, Event, Notification};
use crate::error::Result;
use crate::exchange::{GateEvent, InputGate};
use crate::operator::{BoxOutput, TaskCx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Finished { final_ack: Option<CheckpointId> },
}

enum Flow {
    Continue,
    Exit,
}

/// A running one-input subtask.
pub(crate) struct OneInputTask<T: Send + 'static> {
    pub(crate) key: TaskKey,
    pub(crate) gate: InputGate<T>,
    pub(crate) chain: BoxOutput<T>,
    pub(crate) control: mpsc::UnboundedReceiver<TaskCommand>,
    pub(crate) master: mpsc::UnboundedSender<MasterMsg>,
    pub(crate) cx: TaskCx,
    pub(crate) linger: Duration,
}

impl<T: Send + 'static> OneInputTask<T> {
    pub(crate) async fn run(mut self) {
        let result = self.run_inner().await;
        let message = match result {
            Ok(()) => MasterMsg::Closed { task: self.key },
            Err(error) => MasterMsg::Failed {
                task: self.key,
                error,
            },
        };
        let _ = self.master.send(message);
    }

    async fn run_inner(&mut self) -> Result<()> {
        self.chain.open(&mut self.cx).await?;
        let mut phase = Phase::Running;
        let mut last_barrier: Option<CheckpointId> = None;
        let mut linger = tokio::time::interval(self.linger);
        linger.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if phase == Phase::Running {
                tokio::select! {
                    biased;
                    command = self.control.recv() => match command {
                        Some(command) => {
                            if let Flow::Exit = self.handle(command, &mut phase, &mut last_barrier).await? {
                                return Ok(());
                            }
                        }
                        None => return Ok(()),
                    },
                    event = self.gate.next() => match event? {
                        GateEvent::Batch(mut batch) => self.chain.push(&mut batch, &mut self.cx).await?,
                        GateEvent::Watermark(w) => self.chain.event(Event::Watermark(w), &mut self.cx).await?,
                        GateEvent::Idle(idle) => self.chain.event(Event::Idle(idle), &mut self.cx).await?,
                        GateEvent::Barrier(barrier) => {
                            self.snapshot(barrier, &mut phase, &mut last_barrier).await?;
                        }
                        GateEvent::EndOfData => {
                            self.chain.event(Event::EndOfData, &mut self.cx).await?;
                            phase = Phase::Finished { final_ack: None };
                            let _ = self.master.send(MasterMsg::Finished { task: self.key });
                        }
                    },
                    _ = linger.tick() => self.chain.flush_buffers().await?,
                }
            } else {
                match self.control.recv().await {
                    Some(command) => {
                        if let Flow::Exit =
                            self.handle(command, &mut phase, &mut last_barrier).await?
                        {
                            return Ok(());
                        }
                    }
                    None => return Ok(()),
                }
            }
        }
    }

    async fn snapshot(
        &mut self,
        barrier: Barrier,
        phase: &mut Phase,
        last_barrier: &mut Option<CheckpointId>,
    ) -> Result<()> {
        let id = barrier.checkpoint_id;
        if last_barrier.is_some_and(|last| last >= id) {
            return Ok(()); // already taken (in-band and by trigger)
        }
        *last_barrier = Some(id);
        if let Phase::Finished { final_ack } = phase {
            if final_ack.is_none() {
                *final_ack = Some(id);
            }
        }
        self.chain
            .event(Event::Barrier(barrier), &mut self.cx)
            .await?;
        let _ = self.master.send(MasterMsg::Ack {
            task: self.key,
            checkpoint: id,
            snapshots: self.cx.take_snapshots(),
        });
        Ok(())
    }

    async fn handle(
        &mut self,
        command: TaskCommand,
        phase: &mut Phase,
        last_barrier: &mut Option<CheckpointId>,
    ) -> Result<Flow> {
        match command {
            TaskCommand::TriggerBarrier(barrier) => {
                self.snapshot(barrier, phase, last_barrier).await?;
            }
            TaskCommand::Notify(n) => {
                self.chain.notify(n, &mut self.cx).await?;
                if let (
                    Notification::CheckpointComplete(id),
                    Phase::Finished { final_ack: Some(f) },
                ) = (n, *phase)
                {
                    if id >= f {
                        self.chain.close().await?;
                        return Ok(Flow::Exit);
                    }
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
