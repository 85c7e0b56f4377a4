//! [`ElasticsearchWriter`]: turns records into bulk actions with a [`BatchEmitter`] (any
//! [`Emitter`](super::Emitter) is one) and hands them to the AsyncSink base's writer, which
//! batches, sends, retries and checkpoints them.

use std::fmt;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::Result;
use weir_connector_api::metrics::Counter;
use weir_connector_api::sink::{FlushMode, SinkWriter, StatefulSinkWriter, WriteContext};
use weir_connector_api::watermark::Watermark;
use weir_connector_base::sink::{AsyncSinkWriter, BufferedRequestState, ElementConverter};

use super::action::BulkAction;
use super::submitter::BulkSubmitter;
use super::BatchEmitter;

/// Counter: records the emitter turned into no action (e.g. `-U` rows of a changelog).
pub const NUM_RECORDS_WITHOUT_ACTION: &str = "numRecordsWithoutAction";

/// The base writer's converter: actions are made before they reach it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThrough;

impl ElementConverter<BulkAction, BulkAction> for PassThrough {
    #[inline]
    fn convert(&mut self, action: BulkAction, _ctx: &WriteContext) -> Result<BulkAction> {
        Ok(action)
    }
}

/// The AsyncSink writer the Elasticsearch writer feeds.
pub(crate) type BaseWriter = AsyncSinkWriter<BulkAction, BulkAction, PassThrough, BulkSubmitter>;

/// The Elasticsearch sink's writer: one per subtask.
///
/// `write` has the emitter append the record's actions (none, one, or one per row of a chunk)
/// to the base writer's buffer; everything else (batching, requests, per-item retries, backpressure, checkpoints)
/// is the [`AsyncSinkWriter`]'s.
pub struct ElasticsearchWriter<T, E> {
    emitter: E,
    inner: BaseWriter,
    without_action: Counter,
    /// `numRecordsIn`, for the rows of elements that hold several.
    records_in: Counter,
    _records: PhantomData<fn(T)>,
}

impl<T, E> fmt::Debug for ElasticsearchWriter<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElasticsearchWriter")
            .field("inner", &self.inner)
            .field("without_action", &self.without_action.get())
            .finish_non_exhaustive()
    }
}

/// Where a [`BatchEmitter`] puts the actions of one input: the writer's buffer.
pub struct ActionOut<'a> {
    inner: &'a mut BaseWriter,
    without_action: &'a Counter,
}

impl fmt::Debug for ActionOut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionOut").finish_non_exhaustive()
    }
}

impl ActionOut<'_> {
    /// Appends `action` to the buffer (an action larger than `sink.max-record-size-bytes` is
    /// an error).
    #[inline]
    pub fn push(&mut self, action: BulkAction, ctx: &WriteContext) -> Result<()> {
        self.inner.write(action, ctx)
    }

    /// Counts a record that makes no action (`numRecordsWithoutAction`).
    #[inline]
    pub fn skip(&mut self) {
        self.without_action.inc();
    }
}

impl<T, E> ElasticsearchWriter<T, E> {
    pub(crate) fn new(
        emitter: E,
        inner: BaseWriter,
        without_action: Counter,
        records_in: Counter,
    ) -> Self {
        ElasticsearchWriter {
            emitter,
            inner,
            without_action,
            records_in,
            _records: PhantomData,
        }
    }

    /// Actions waiting in the buffer.
    pub fn buffered_actions(&self) -> usize {
        self.inner.buffered_entries()
    }

    /// Bulk requests in flight.
    pub fn in_flight_requests(&self) -> usize {
        self.inner.in_flight_requests()
    }
}

#[async_trait::async_trait]
impl<T, E> SinkWriter<T> for ElasticsearchWriter<T, E>
where
    T: Send + 'static,
    E: BatchEmitter<T>,
{
    #[inline]
    fn write(&mut self, element: T, ctx: &WriteContext) -> Result<()> {
        let rows = self.emitter.rows_in(&element);
        if rows > 1 {
            self.records_in.add(rows - 1);
        }
        let mut out = ActionOut {
            inner: &mut self.inner,
            without_action: &self.without_action,
        };
        self.emitter.emit_into(element, ctx, &mut out)
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.inner.poll_ready(cx)
    }

    fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.inner.poll_progress(cx)
    }

    async fn flush(&mut self, mode: FlushMode) -> Result<()> {
        self.inner.flush(mode).await
    }

    fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        SinkWriter::<BulkAction>::checkpoint_aborted(&mut self.inner, checkpoint_id)
    }

    fn write_watermark(&mut self, watermark: Watermark) -> Result<()> {
        SinkWriter::<BulkAction>::write_watermark(&mut self.inner, watermark)
    }

    async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }
}

impl<T, E> StatefulSinkWriter<T> for ElasticsearchWriter<T, E>
where
    T: Send + 'static,
    E: BatchEmitter<T>,
{
    type State = BufferedRequestState<BulkAction>;

    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<Self::State>> {
        self.inner.snapshot_state(checkpoint_id)
    }
}
