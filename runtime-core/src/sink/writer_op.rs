//! The writer operator: feeds a connector's `SinkWriter`, and at each barrier flushes it,
//! collects its committables (summary first) and snapshots its state, before the barrier moves on.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::ConnectorError;
use weir_connector_api::sink::{
    CommittableMessage, CommittableSummary, CommittableWithLineage, CommitterCapability, FlushMode,
    SinkWriter, WriteContext, WriterStateCapability,
};
use weir_connector_api::watermark::Watermark;

use super::Message;
use crate::element::{Event, Notification};
use crate::error::{Result, RuntimeError};
use crate::fault::FaultPoint;
use crate::operator::{BoxOutput, Output, TaskCx, NO_TIMESTAMP};

pub(crate) struct WriterOperator<In, W> {
    pub(crate) uid: String,
    pub(crate) writer: W,
    pub(crate) state: Option<Arc<dyn WriterStateCapability<W>>>,
    pub(crate) committer: Option<Arc<dyn CommitterCapability<W>>>,
    pub(crate) next: BoxOutput<Message>,
    /// Input ended and the end-of-input committables were handed over (also when restored).
    pub(crate) end_of_input: bool,
    pub(crate) watermark: Watermark,
    pub(crate) messages: Vec<Message>,
    pub(crate) _in: std::marker::PhantomData<fn(In)>,
}

impl<In: Send + 'static, W: SinkWriter<In>> WriterOperator<In, W> {
    fn fail(&self, subtask: usize, e: ConnectorError) -> RuntimeError {
        RuntimeError::connector(&self.uid, subtask, e)
    }

    /// Prepares committables and sends them (summary first) tagged with `checkpoint_id`.
    async fn emit_committables(
        &mut self,
        checkpoint_id: CheckpointId,
        cx: &mut TaskCx,
    ) -> Result<()> {
        let Some(committer) = self.committer.clone() else {
            return Ok(());
        };
        let committables = committer
            .prepare_commit(&mut self.writer)
            .await
            .map_err(|e| self.fail(cx.subtask, e))?;
        self.messages
            .push(CommittableMessage::Summary(CommittableSummary {
                subtask_id: cx.subtask,
                number_of_subtasks: cx.parallelism,
                checkpoint_id,
                number_of_committables: committables.len(),
                number_of_failed: 0,
            }));
        self.messages
            .extend(committables.into_iter().map(|committable| {
                CommittableMessage::WithLineage(CommittableWithLineage {
                    committable,
                    checkpoint_id,
                    subtask_id: cx.subtask,
                })
            }));
        self.next.push(&mut self.messages, cx).await
    }
}

#[async_trait::async_trait]
impl<In: Send + 'static, W: SinkWriter<In>> Output<In> for WriterOperator<In, W> {
    async fn open(&mut self, cx: &mut TaskCx) -> Result<()> {
        self.next.open(cx).await
    }

    fn poll_progress(&mut self, c: &mut Context<'_>, subtask: usize) -> Poll<Result<()>> {
        if self.end_of_input {
            return Poll::Pending;
        }
        match self.writer.poll_progress(c) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.fail(subtask, e))),
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Pending => self.next.poll_progress(c, subtask),
        }
    }

    async fn push(&mut self, batch: &mut Vec<In>, cx: &mut TaskCx) -> Result<()> {
        let subtask = cx.subtask;
        poll_fn(|c| self.writer.poll_ready(c))
            .await
            .map_err(|e| self.fail(subtask, e))?;
        let ctx = WriteContext {
            timestamp: None,
            current_watermark: self.watermark,
        };
        for record in batch.drain(..) {
            if let Err(e) = self.writer.write(record, &ctx) {
                return Err(self.fail(subtask, e));
            }
        }
        Ok(())
    }

    async fn push_timestamped(
        &mut self,
        batch: &mut Vec<In>,
        timestamps: &mut Vec<i64>,
        cx: &mut TaskCx,
    ) -> Result<()> {
        if timestamps.len() != batch.len() {
            timestamps.clear(); // not a timestamp per record: none at all
            return self.push(batch, cx).await;
        }
        let subtask = cx.subtask;
        poll_fn(|c| self.writer.poll_ready(c))
            .await
            .map_err(|e| self.fail(subtask, e))?;
        let mut ctx = WriteContext {
            timestamp: None,
            current_watermark: self.watermark,
        };
        for (record, ts) in batch.drain(..).zip(timestamps.drain(..)) {
            ctx.timestamp = (ts != NO_TIMESTAMP).then_some(ts);
            if let Err(e) = self.writer.write(record, &ctx) {
                return Err(self.fail(subtask, e));
            }
        }
        Ok(())
    }

    async fn event(&mut self, event: Event, cx: &mut TaskCx) -> Result<()> {
        let subtask = cx.subtask;
        match event {
            Event::Watermark(w) => {
                self.watermark = w;
                self.writer
                    .write_watermark(w)
                    .map_err(|e| self.fail(subtask, e))?;
            }
            Event::Idle(_) => {}
            Event::Barrier(barrier) => {
                let id = barrier.checkpoint_id;
                cx.fault(FaultPoint::BeforeSnapshot, &self.uid, id)?;
                if !self.end_of_input {
                    self.writer
                        .flush(FlushMode::Checkpoint)
                        .await
                        .map_err(|e| self.fail(subtask, e))?;
                    self.emit_committables(id, cx).await?;
                }
                if let Some(state) = self.state.clone() {
                    let states = state
                        .snapshot(&mut self.writer, id)
                        .map_err(|e| self.fail(subtask, e))?;
                    cx.add_state(&self.uid, "writer", states);
                }
                // The end-of-input flag is persisted as the subtask's `finished` mark.
                cx.touch(&self.uid, self.end_of_input);
            }
            Event::EndOfData => {
                if !self.end_of_input {
                    self.writer
                        .flush(FlushMode::EndOfInput)
                        .await
                        .map_err(|e| self.fail(subtask, e))?;
                    self.emit_committables(CheckpointId::END_OF_INPUT, cx)
                        .await?;
                    self.end_of_input = true;
                    cx.fault(
                        FaultPoint::AtEndOfInput,
                        &self.uid,
                        CheckpointId::END_OF_INPUT,
                    )?;
                }
            }
        }
        self.next.event(event, cx).await
    }

    async fn notify(&mut self, n: Notification, cx: &mut TaskCx) -> Result<()> {
        if let Notification::CheckpointAborted(id) = n {
            self.writer
                .checkpoint_aborted(id)
                .map_err(|e| self.fail(cx.subtask, e))?;
        }
        self.next.notify(n, cx).await
    }

    async fn flush_buffers(&mut self) -> Result<()> {
        self.next.flush_buffers().await
    }

    async fn close(&mut self) -> Result<()> {
        let closed = self.writer.close().await;
        self.next.close().await?;
        closed.map_err(|e| RuntimeError::connector(&self.uid, 0, e))
    }
}
