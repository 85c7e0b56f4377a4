//! [`DataStream::try_map_batches`](crate::graph::DataStream::try_map_batches): a fallible
//! transformation of whole batches (e.g. the rows one source poll read, into one columnar
//! chunk).

use std::sync::Arc;
use std::task::{Context, Poll};

use weir_connector_api::error::ConnectorError;

use crate::element::{Event, Notification};
use crate::error::{Result, RuntimeError};
use crate::operator::{BoxOutput, Output, TaskCx};

/// The function of a batch transformation.
pub(crate) type BatchFn<I, O> = Arc<dyn Fn(Vec<I>) -> Result<Vec<O>, ConnectorError> + Send + Sync>;

/// Runs a batch transformation in a chain: the operator `name` in errors.
pub(crate) struct BatchOperator<I, O: Send + 'static> {
    pub(crate) name: Arc<str>,
    pub(crate) f: BatchFn<I, O>,
    pub(crate) buffer: Vec<O>,
    pub(crate) timestamps: Vec<i64>,
    pub(crate) next: BoxOutput<O>,
}

impl<I, O: Send + 'static> BatchOperator<I, O> {
    fn apply(&mut self, batch: &mut Vec<I>, cx: &TaskCx) -> Result<()> {
        let input = std::mem::take(batch);
        self.buffer =
            (self.f)(input).map_err(|e| RuntimeError::connector(&self.name, cx.subtask, e))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl<I, O> Output<I> for BatchOperator<I, O>
where
    I: Send + 'static,
    O: Send + 'static,
{
    async fn open(&mut self, cx: &mut TaskCx) -> Result<()> {
        self.next.open(cx).await
    }
    async fn push(&mut self, batch: &mut Vec<I>, cx: &mut TaskCx) -> Result<()> {
        self.apply(batch, cx)?;
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.next.push(&mut self.buffer, cx).await
    }
    async fn push_timestamped(
        &mut self,
        batch: &mut Vec<I>,
        timestamps: &mut Vec<i64>,
        cx: &mut TaskCx,
    ) -> Result<()> {
        if timestamps.len() != batch.len() {
            timestamps.clear(); // not a timestamp per record: none at all
            return self.push(batch, cx).await;
        }
        // Every output record stands for the whole batch: it gets the batch's latest time.
        let latest = timestamps.drain(..).max();
        self.apply(batch, cx)?;
        let Some(latest) = latest.filter(|_| !self.buffer.is_empty()) else {
            return Ok(());
        };
        self.timestamps.clear();
        self.timestamps.resize(self.buffer.len(), latest);
        self.next
            .push_timestamped(&mut self.buffer, &mut self.timestamps, cx)
            .await
    }
    async fn event(&mut self, event: Event, cx: &mut TaskCx) -> Result<()> {
        self.next.event(event, cx).await
    }
    async fn notify(&mut self, n: Notification, cx: &mut TaskCx) -> Result<()> {
        self.next.notify(n, cx).await
    }
    async fn flush_buffers(&mut self) -> Result<()> {
        self.next.flush_buffers().await
    }
    async fn close(&mut self) -> Result<()> {
        self.next.close().await
    }
    fn poll_progress(&mut self, cx: &mut Context<'_>, subtask: usize) -> Poll<Result<()>> {
        self.next.poll_progress(cx, subtask)
    }
}
