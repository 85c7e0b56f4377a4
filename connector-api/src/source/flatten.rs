//! [`FlattenSource`]: a source whose records are batches (`Vec<T>`) seen as a source of `T`.
//!
//! **Deprecated (API line 1.1):** moved to `weir_connector_base::source`. This is a frozen copy
//! of the API 1.0 code, kept so 1.0 connectors build unchanged; it gets no fixes.
//!
//! A source record that decodes into several records — a changelog message that is an update
//! (`-U` and `+U`), a compressed envelope — must not be split across a checkpoint: its split's
//! position says "after this source record". Decoding into a `Vec<T>` and flattening inside one
//! `poll_next` keeps the batch atomic, since barriers only come between calls.
//!
//! ```
//! # #![allow(deprecated)]
//! use weir_connector_api::source::{CollectingOutput, FlattenOutput, ReaderOutput};
//!
//! // What a FlattenSource's reader does with each batch its inner reader emits: the records
//! // come out one by one, in order, in the batch's split.
//! let mut out = CollectingOutput::<&str>::new();
//! let mut flat = FlattenOutput::new(&mut out);
//! let split = flat.create_split_output("orders-0");
//! flat.collect_for_split(split, vec!["-U", "+U"], Some(7));
//! let records: Vec<_> = out.records().map(|(s, r)| (s.unwrap(), *r)).collect();
//! assert_eq!(records, [("orders-0", "-U"), ("orders-0", "+U")]);
//! ```
//!
//! Wrap a source with `FlattenSource::new(source)`; its splits, enumerator and state are the
//! inner source's.

// The frozen copy uses its own deprecated items.
#![allow(deprecated)]

use std::sync::Arc;
use std::task::{Context, Poll};

use super::{
    Boundedness, EnumeratorContextOf, EnumeratorState, InputStatus, PausableSourceReader,
    ReaderOutput, Source, SourceEvent, SourceOutput, SourceReader, SourceReaderContext,
    SplitOutputId,
};
use crate::checkpoint::CheckpointId;
use crate::error::Result;
use crate::state::VersionedSerializer;
use crate::watermark::Watermark;

/// A source of `Vec<T>` seen as a source of `T`: splits, enumerator and state are the inner
/// source's, unchanged (a job can switch between the two without losing state).
#[deprecated(
    note = "moved to weir_connector_base::source (API line 1.1); this frozen 1.0 copy gets no fixes"
)]
#[derive(Debug, Clone)]
pub struct FlattenSource<S> {
    inner: S,
}

impl<S> FlattenSource<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        FlattenSource { inner }
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<T, S> Source for FlattenSource<S>
where
    T: Send + 'static,
    S: Source<Output = Vec<T>>,
{
    type Output = T;
    type Split = S::Split;
    type Reader = FlattenReader<S::Reader>;
    type Enumerator = S::Enumerator;

    fn boundedness(&self) -> Boundedness {
        self.inner.boundedness()
    }

    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<Self::Reader> {
        self.inner
            .create_reader(ctx)
            .map(|inner| FlattenReader { inner })
    }

    fn create_enumerator(&self, ctx: EnumeratorContextOf<Self>) -> Result<Self::Enumerator> {
        self.inner.create_enumerator(ctx)
    }

    fn restore_enumerator(
        &self,
        ctx: EnumeratorContextOf<Self>,
        state: EnumeratorState<Self>,
    ) -> Result<Self::Enumerator> {
        self.inner.restore_enumerator(ctx, state)
    }

    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<Self::Split>> {
        self.inner.split_serializer()
    }

    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<EnumeratorState<Self>>> {
        self.inner.enumerator_state_serializer()
    }
}

/// The reader of a [`FlattenSource`].
#[deprecated(
    note = "moved to weir_connector_base::source (API line 1.1); this frozen 1.0 copy gets no fixes"
)]
pub struct FlattenReader<R> {
    inner: R,
}

#[async_trait::async_trait]
impl<T, R> SourceReader for FlattenReader<R>
where
    T: Send + 'static,
    R: SourceReader<Output = Vec<T>>,
{
    type Output = T;
    type Split = R::Split;

    fn start(&mut self) -> Result<()> {
        self.inner.start()
    }

    fn poll_next<O: ReaderOutput<T>>(&mut self, output: &mut O) -> Result<InputStatus> {
        self.inner.poll_next(&mut FlattenOutput::new(output))
    }

    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.poll_available(cx)
    }

    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<Self::Split>> {
        self.inner.snapshot_state(checkpoint_id)
    }

    fn add_splits(&mut self, splits: Vec<Self::Split>) -> Result<()> {
        self.inner.add_splits(splits)
    }

    fn notify_no_more_splits(&mut self) {
        self.inner.notify_no_more_splits();
    }

    fn handle_source_event(&mut self, event: SourceEvent) -> Result<()> {
        self.inner.handle_source_event(event)
    }

    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.inner.notify_checkpoint_complete(checkpoint_id)
    }

    fn notify_checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.inner.notify_checkpoint_aborted(checkpoint_id)
    }

    fn as_pausable(&mut self) -> Option<&mut dyn PausableSourceReader> {
        self.inner.as_pausable()
    }

    async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }
}

/// A [`ReaderOutput`] of `Vec<T>` that emits each element into an output of `T`, with the
/// batch's timestamp.
#[deprecated(
    note = "moved to weir_connector_base::source (API line 1.1); this frozen 1.0 copy gets no fixes"
)]
pub struct FlattenOutput<'a, O: ?Sized> {
    out: &'a mut O,
}

impl<'a, O: ?Sized> FlattenOutput<'a, O> {
    /// Wraps `out`.
    pub fn new(out: &'a mut O) -> Self {
        FlattenOutput { out }
    }
}

impl<T, O: ReaderOutput<T> + ?Sized> SourceOutput<Vec<T>> for FlattenOutput<'_, O> {
    fn collect(&mut self, records: Vec<T>) {
        for r in records {
            self.out.collect(r);
        }
    }
    fn collect_with_timestamp(&mut self, records: Vec<T>, timestamp: i64) {
        for r in records {
            self.out.collect_with_timestamp(r, timestamp);
        }
    }
    fn emit_watermark(&mut self, watermark: Watermark) {
        self.out.emit_watermark(watermark);
    }
    fn mark_idle(&mut self) {
        self.out.mark_idle();
    }
    fn mark_active(&mut self) {
        self.out.mark_active();
    }
}

impl<T, O: ReaderOutput<T> + ?Sized> ReaderOutput<Vec<T>> for FlattenOutput<'_, O> {
    fn create_split_output(&mut self, split_id: &str) -> SplitOutputId {
        self.out.create_split_output(split_id)
    }
    fn collect_for_split(&mut self, split: SplitOutputId, records: Vec<T>, timestamp: Option<i64>) {
        for r in records {
            self.out.collect_for_split(split, r, timestamp);
        }
    }
    fn emit_split_watermark(&mut self, split: SplitOutputId, watermark: Watermark) {
        self.out.emit_split_watermark(split, watermark);
    }
    fn mark_split_idle(&mut self, split: SplitOutputId) {
        self.out.mark_split_idle(split);
    }
    fn mark_split_active(&mut self, split: SplitOutputId) {
        self.out.mark_split_active(split);
    }
    fn release_split_output(&mut self, split: SplitOutputId) {
        self.out.release_split_output(split);
    }
}
