//! Runs one subtask of a pre- or post-commit topology stage.

use weir_connector_api::sink::{AnyCommittable, CommittableOperator};

use super::Message;
use crate::element::{Event, Notification};
use crate::error::{Result, RuntimeError};
use crate::operator::{BoxOutput, Output, TaskCx};

pub(crate) struct StageOperator {
    pub(crate) uid: String,
    pub(crate) operator: Box<dyn CommittableOperator<AnyCommittable, AnyCommittable>>,
    pub(crate) next: BoxOutput<Message>,
    pub(crate) out: Vec<Message>,
    pub(crate) ended: bool,
}

impl StageOperator {
    fn fail(&self, subtask: usize, e: weir_connector_api::ConnectorError) -> RuntimeError {
        RuntimeError::connector(&self.uid, subtask, e)
    }

    async fn emit(&mut self, cx: &mut TaskCx) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.next.push(&mut self.out, cx).await
    }
}

#[async_trait::async_trait]
impl Output<Message> for StageOperator {
    async fn open(&mut self, cx: &mut TaskCx) -> Result<()> {
        self.next.open(cx).await
    }

    async fn push(&mut self, batch: &mut Vec<Message>, cx: &mut TaskCx) -> Result<()> {
        for message in batch.drain(..) {
            if let Err(e) = self.operator.process(message, &mut self.out).await {
                return Err(self.fail(cx.subtask, e));
            }
        }
        self.emit(cx).await
    }

    async fn event(&mut self, event: Event, cx: &mut TaskCx) -> Result<()> {
        match event {
            Event::Barrier(b) => {
                if let Err(e) = self
                    .operator
                    .prepare_snapshot_pre_barrier(b.checkpoint_id, &mut self.out)
                    .await
                {
                    return Err(self.fail(cx.subtask, e));
                }
                self.emit(cx).await?;
                let state = self
                    .operator
                    .snapshot_state(b.checkpoint_id)
                    .map_err(|e| self.fail(cx.subtask, e))?;
                cx.add_state(&self.uid, "stage", state.into_iter().collect());
                cx.touch(&self.uid, self.ended);
            }
            Event::EndOfData => {
                if let Err(e) = self.operator.end_input(&mut self.out).await {
                    return Err(self.fail(cx.subtask, e));
                }
                self.emit(cx).await?;
                self.ended = true;
            }
            Event::Watermark(_) | Event::Idle(_) => {}
        }
        self.next.event(event, cx).await
    }

    async fn notify(&mut self, n: Notification, cx: &mut TaskCx) -> Result<()> {
        match n {
            Notification::CheckpointComplete(id) => {
                if let Err(e) = self
                    .operator
                    .notify_checkpoint_complete(id, &mut self.out)
                    .await
                {
                    return Err(self.fail(cx.subtask, e));
                }
                self.emit(cx).await?;
            }
            Notification::CheckpointAborted(id) => {
                if let Err(e) = self.operator.checkpoint_aborted(id).await {
                    return Err(self.fail(cx.subtask, e));
                }
            }
        }
        self.next.notify(n, cx).await
    }

    async fn flush_buffers(&mut self) -> Result<()> {
        self.next.flush_buffers().await
    }

    async fn close(&mut self) -> Result<()> {
        self.next.close().await
    }
}
