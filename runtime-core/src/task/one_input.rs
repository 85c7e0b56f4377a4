//! A task fed by channels from upstream tasks.

use std::time::Duration;

use tokio::sync::mpsc;

use super::lifecycle::{Flow, Lifecycle};
use super::TaskCommand;
use crate::element::{Barrier, Event};
use crate::error::Result;
use crate::exchange::{GateEvent, InputGate};
use crate::operator::{BoxOutput, TaskCx};

/// A running one-input subtask.
pub(crate) struct OneInputTask<T: Send + 'static> {
    pub(crate) life: Lifecycle,
    pub(crate) gate: InputGate<T>,
    pub(crate) chain: BoxOutput<T>,
    pub(crate) control: mpsc::UnboundedReceiver<TaskCommand>,
    pub(crate) cx: TaskCx,
    pub(crate) linger: Duration,
}

impl<T: Send + 'static> OneInputTask<T> {
    pub(crate) async fn run(mut self) {
        let result = self.run_inner().await;
        self.life.report(result);
    }

    async fn run_inner(&mut self) -> Result<()> {
        self.chain.open(&mut self.cx).await?;
        let mut linger = tokio::time::interval(self.linger);
        linger.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.life.is_running() {
                tokio::select! {
                    biased;
                    command = self.control.recv() => match command {
                        Some(command) => {
                            if let Flow::Exit = self.handle(command).await? {
                                return Ok(());
                            }
                        }
                        None => return Ok(()),
                    },
                    event = self.gate.next() => match event? {
                        GateEvent::Batch(mut batch) => self.chain.push(&mut batch, &mut self.cx).await?,
                        GateEvent::Watermark(w) => self.chain.event(Event::Watermark(w), &mut self.cx).await?,
                        GateEvent::Idle(idle) => self.chain.event(Event::Idle(idle), &mut self.cx).await?,
                        GateEvent::Barrier(barrier) => self.snapshot(barrier).await?,
                        GateEvent::EndOfData => {
                            self.chain.event(Event::EndOfData, &mut self.cx).await?;
                            self.life.end_input();
                        }
                    },
                    _ = linger.tick() => self.chain.flush_buffers().await?,
                }
            } else {
                match self.control.recv().await {
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

    async fn snapshot(&mut self, barrier: Barrier) -> Result<()> {
        let id = barrier.checkpoint_id;
        if !self.life.begin_snapshot(id) {
            return Ok(()); // already taken (in-band and by trigger)
        }
        self.chain
            .event(Event::Barrier(barrier), &mut self.cx)
            .await?;
        self.life.ack(id, self.cx.take_snapshots());
        Ok(())
    }

    async fn handle(&mut self, command: TaskCommand) -> Result<Flow> {
        match command {
            TaskCommand::TriggerBarrier(barrier) => self.snapshot(barrier).await?,
            TaskCommand::Notify(n) => {
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
