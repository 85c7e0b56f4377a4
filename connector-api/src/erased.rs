//! Type-erased sources and sinks: [`BoxedSource<T>`] and [`BoxedSink<T>`] hide a connector's
//! split, enumerator, reader, writer and committable types behind one concrete type, so a
//! registry (pipeline files, the `weir` CLI) can hold connectors of any kind. The cost is one
//! dynamic call per record and a downcast per split or committable; typed jobs should use the
//! connector types directly.
//!
//! ```
//! use weir_connector_api::erased::BoxedSource;
//! # use weir_connector_api::source::*;
//! # fn any_source<S: Source<Output = u64>>(source: S) {
//! // Any source of u64 becomes the same type:
//! let boxed: BoxedSource<u64> = BoxedSource::new(source);
//! assert!(matches!(boxed.boundedness(), Boundedness::Bounded | Boundedness::ContinuousUnbounded));
//! # }
//! ```

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::checkpoint::{CheckpointId, VersionedBytes};
use crate::error::{ConnectorError, Result};
use crate::metrics::MetricGroup;
use crate::sink::{
    AnyCommittable, Committer, CommitterCapability, ErasedStage, FlushMode, InitContext, Sink,
    SinkCapabilities, SinkWriter, WriteContext, WriterStateCapability,
};
use crate::source::{
    Boundedness, EnumeratorContext, EnumeratorState, InputStatus, PausableSourceReader,
    ReaderOutput, Source, SourceEvent, SourceReader, SourceReaderContext, SourceSplit,
    SplitEnumerator, SplitEnumeratorContext, SplitsAssignment,
};
use crate::state::{StateError, VersionedSerializer};
use crate::watermark::Watermark;

/// A split of a [`BoxedSource`]: its id and the connector's split inside.
#[derive(Clone)]
pub struct ErasedSplit {
    id: String,
    inner: Arc<dyn Any + Send + Sync>,
}

impl ErasedSplit {
    fn new<S: SourceSplit>(split: S) -> Self {
        ErasedSplit {
            id: split.split_id().to_owned(),
            inner: Arc::new(split),
        }
    }

    fn typed<S: SourceSplit>(&self) -> Result<S> {
        self.inner.downcast_ref::<S>().cloned().ok_or_else(|| {
            ConnectorError::Contract(format!(
                "split {} is not a {}",
                self.id,
                std::any::type_name::<S>()
            ))
        })
    }
}

impl fmt::Debug for ErasedSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErasedSplit({})", self.id)
    }
}

impl SourceSplit for ErasedSplit {
    fn split_id(&self) -> &str {
        &self.id
    }
}

/// An enumerator's state or async result, erased.
pub type ErasedValue = Box<dyn Any + Send>;

fn downcast<V: 'static>(value: ErasedValue, what: &str) -> Result<V> {
    value.downcast::<V>().map(|v| *v).map_err(|_| {
        ConnectorError::Contract(format!("{what} is not a {}", std::any::type_name::<V>()))
    })
}

struct SplitSerializer<S>(Arc<dyn VersionedSerializer<S>>);

impl<S: SourceSplit> VersionedSerializer<ErasedSplit> for SplitSerializer<S> {
    fn version(&self) -> u32 {
        self.0.version()
    }
    fn serialize(&self, split: &ErasedSplit) -> Result<Vec<u8>, StateError> {
        let typed = split
            .inner
            .downcast_ref::<S>()
            .ok_or_else(|| StateError::malformed("erased split", "a split of another source"))?;
        self.0.serialize(typed)
    }
    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<ErasedSplit, StateError> {
        Ok(ErasedSplit::new(self.0.deserialize(version, bytes)?))
    }
}

struct StateSerializer<V>(Arc<dyn VersionedSerializer<V>>);

impl<V: Send + 'static> VersionedSerializer<ErasedValue> for StateSerializer<V> {
    fn version(&self) -> u32 {
        self.0.version()
    }
    fn serialize(&self, state: &ErasedValue) -> Result<Vec<u8>, StateError> {
        let typed = state.downcast_ref::<V>().ok_or_else(|| {
            StateError::malformed("erased enumerator state", "state of another source")
        })?;
        self.0.serialize(typed)
    }
    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<ErasedValue, StateError> {
        Ok(Box::new(self.0.deserialize(version, bytes)?))
    }
}

/// The typed context a connector's enumerator sees, forwarding to the erased one.
struct TypedContext<S, R> {
    inner: EnumeratorContext<ErasedSplit, ErasedValue>,
    _types: PhantomData<fn(S, R)>,
}

impl<S: SourceSplit, R: Send + 'static> SplitEnumeratorContext<S, R> for TypedContext<S, R> {
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        self.inner.metric_group()
    }
    fn current_parallelism(&self) -> usize {
        self.inner.current_parallelism()
    }
    fn registered_readers(&self) -> Vec<usize> {
        self.inner.registered_readers()
    }
    fn assign_splits(&self, assignment: SplitsAssignment<S>) -> Result<()> {
        let mut erased = SplitsAssignment::new();
        for (subtask, splits) in assignment.assignment {
            for split in splits {
                erased.add(subtask, ErasedSplit::new(split));
            }
        }
        self.inner.assign_splits(erased)
    }
    fn signal_no_more_splits(&self, subtask: usize) -> Result<()> {
        self.inner.signal_no_more_splits(subtask)
    }
    fn send_event_to_reader(&self, subtask: usize, event: SourceEvent) -> Result<()> {
        self.inner.send_event_to_reader(subtask, event)
    }
    fn call_async(&self, task: BoxFuture<'static, R>) {
        self.inner
            .call_async(task.map(|r| Box::new(r) as ErasedValue).boxed());
    }
    fn call_async_periodic(
        &self,
        mut task: Box<dyn FnMut() -> BoxFuture<'static, R> + Send>,
        initial_delay: Duration,
        period: Duration,
    ) {
        self.inner.call_async_periodic(
            Box::new(move || task().map(|r| Box::new(r) as ErasedValue).boxed()),
            initial_delay,
            period,
        );
    }
}

/// The enumerator of a [`BoxedSource`].
pub struct BoxedEnumerator(Box<dyn DynEnumerator>);

trait DynEnumerator: Send {
    fn start(&mut self) -> Result<()>;
    fn handle_split_request(&mut self, subtask: usize) -> Result<()>;
    fn add_splits_back(&mut self, splits: Vec<ErasedSplit>, subtask: usize) -> Result<()>;
    fn add_reader(&mut self, subtask: usize) -> Result<()>;
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<ErasedValue>;
    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()>;
    fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()>;
    fn handle_source_event(&mut self, subtask: usize, event: SourceEvent) -> Result<()>;
    fn handle_async_result(&mut self, result: ErasedValue) -> Result<()>;
    fn close(&mut self) -> Result<()>;
}

impl<E: SplitEnumerator> DynEnumerator for E {
    fn start(&mut self) -> Result<()> {
        SplitEnumerator::start(self)
    }
    fn handle_split_request(&mut self, subtask: usize) -> Result<()> {
        SplitEnumerator::handle_split_request(self, subtask)
    }
    fn add_splits_back(&mut self, splits: Vec<ErasedSplit>, subtask: usize) -> Result<()> {
        let typed = splits
            .iter()
            .map(ErasedSplit::typed)
            .collect::<Result<Vec<_>>>()?;
        SplitEnumerator::add_splits_back(self, typed, subtask)
    }
    fn add_reader(&mut self, subtask: usize) -> Result<()> {
        SplitEnumerator::add_reader(self, subtask)
    }
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<ErasedValue> {
        Ok(Box::new(SplitEnumerator::snapshot_state(
            self,
            checkpoint_id,
        )?))
    }
    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        SplitEnumerator::notify_checkpoint_complete(self, checkpoint_id)
    }
    fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        SplitEnumerator::checkpoint_aborted(self, checkpoint_id)
    }
    fn handle_source_event(&mut self, subtask: usize, event: SourceEvent) -> Result<()> {
        SplitEnumerator::handle_source_event(self, subtask, event)
    }
    fn handle_async_result(&mut self, result: ErasedValue) -> Result<()> {
        let typed = downcast::<E::AsyncResult>(result, "an async result")?;
        SplitEnumerator::handle_async_result(self, typed)
    }
    fn close(&mut self) -> Result<()> {
        SplitEnumerator::close(self)
    }
}

impl SplitEnumerator for BoxedEnumerator {
    type Split = ErasedSplit;
    type State = ErasedValue;
    type AsyncResult = ErasedValue;
    fn start(&mut self) -> Result<()> {
        self.0.start()
    }
    fn handle_split_request(&mut self, subtask: usize) -> Result<()> {
        self.0.handle_split_request(subtask)
    }
    fn add_splits_back(&mut self, splits: Vec<ErasedSplit>, subtask: usize) -> Result<()> {
        self.0.add_splits_back(splits, subtask)
    }
    fn add_reader(&mut self, subtask: usize) -> Result<()> {
        self.0.add_reader(subtask)
    }
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<ErasedValue> {
        self.0.snapshot_state(checkpoint_id)
    }
    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.0.notify_checkpoint_complete(checkpoint_id)
    }
    fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.0.checkpoint_aborted(checkpoint_id)
    }
    fn handle_source_event(&mut self, subtask: usize, event: SourceEvent) -> Result<()> {
        self.0.handle_source_event(subtask, event)
    }
    fn handle_async_result(&mut self, result: ErasedValue) -> Result<()> {
        self.0.handle_async_result(result)
    }
    fn close(&mut self) -> Result<()> {
        self.0.close()
    }
}

/// The reader of a [`BoxedSource`].
pub struct BoxedReader<T>(Box<dyn DynReader<T>>);

#[async_trait::async_trait]
trait DynReader<T>: Send {
    fn start(&mut self) -> Result<()>;
    fn poll_next(&mut self, output: &mut dyn ReaderOutput<T>) -> Result<InputStatus>;
    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<ErasedSplit>>;
    fn add_splits(&mut self, splits: Vec<ErasedSplit>) -> Result<()>;
    fn notify_no_more_splits(&mut self);
    fn handle_source_event(&mut self, event: SourceEvent) -> Result<()>;
    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()>;
    fn notify_checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()>;
    fn as_pausable(&mut self) -> Option<&mut dyn PausableSourceReader>;
    async fn close(&mut self) -> Result<()>;
}

#[async_trait::async_trait]
impl<R: SourceReader> DynReader<R::Output> for R {
    fn start(&mut self) -> Result<()> {
        SourceReader::start(self)
    }
    fn poll_next(&mut self, mut output: &mut dyn ReaderOutput<R::Output>) -> Result<InputStatus> {
        SourceReader::poll_next(self, &mut output)
    }
    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        SourceReader::poll_available(self, cx)
    }
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<ErasedSplit>> {
        Ok(SourceReader::snapshot_state(self, checkpoint_id)?
            .into_iter()
            .map(ErasedSplit::new)
            .collect())
    }
    fn add_splits(&mut self, splits: Vec<ErasedSplit>) -> Result<()> {
        let typed = splits
            .iter()
            .map(ErasedSplit::typed)
            .collect::<Result<Vec<_>>>()?;
        SourceReader::add_splits(self, typed)
    }
    fn notify_no_more_splits(&mut self) {
        SourceReader::notify_no_more_splits(self);
    }
    fn handle_source_event(&mut self, event: SourceEvent) -> Result<()> {
        SourceReader::handle_source_event(self, event)
    }
    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        SourceReader::notify_checkpoint_complete(self, checkpoint_id)
    }
    fn notify_checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        SourceReader::notify_checkpoint_aborted(self, checkpoint_id)
    }
    fn as_pausable(&mut self) -> Option<&mut dyn PausableSourceReader> {
        SourceReader::as_pausable(self)
    }
    async fn close(&mut self) -> Result<()> {
        SourceReader::close(self).await
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> SourceReader for BoxedReader<T> {
    type Output = T;
    type Split = ErasedSplit;
    fn start(&mut self) -> Result<()> {
        self.0.start()
    }
    fn poll_next<O: ReaderOutput<T>>(&mut self, output: &mut O) -> Result<InputStatus> {
        self.0.poll_next(output)
    }
    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_available(cx)
    }
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<ErasedSplit>> {
        self.0.snapshot_state(checkpoint_id)
    }
    fn add_splits(&mut self, splits: Vec<ErasedSplit>) -> Result<()> {
        self.0.add_splits(splits)
    }
    fn notify_no_more_splits(&mut self) {
        self.0.notify_no_more_splits();
    }
    fn handle_source_event(&mut self, event: SourceEvent) -> Result<()> {
        self.0.handle_source_event(event)
    }
    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.0.notify_checkpoint_complete(checkpoint_id)
    }
    fn notify_checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.0.notify_checkpoint_aborted(checkpoint_id)
    }
    fn as_pausable(&mut self) -> Option<&mut dyn PausableSourceReader> {
        self.0.as_pausable()
    }
    async fn close(&mut self) -> Result<()> {
        self.0.close().await
    }
}

trait DynSource<T>: Send + Sync {
    fn boundedness(&self) -> Boundedness;
    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<BoxedReader<T>>;
    fn create_enumerator(
        &self,
        ctx: EnumeratorContext<ErasedSplit, ErasedValue>,
    ) -> Result<BoxedEnumerator>;
    fn restore_enumerator(
        &self,
        ctx: EnumeratorContext<ErasedSplit, ErasedValue>,
        state: ErasedValue,
    ) -> Result<BoxedEnumerator>;
    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<ErasedSplit>>;
    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<ErasedValue>>;
}

impl<S: Source> DynSource<S::Output> for S {
    fn boundedness(&self) -> Boundedness {
        Source::boundedness(self)
    }
    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<BoxedReader<S::Output>> {
        Ok(BoxedReader(Box::new(Source::create_reader(self, ctx)?)))
    }
    fn create_enumerator(
        &self,
        ctx: EnumeratorContext<ErasedSplit, ErasedValue>,
    ) -> Result<BoxedEnumerator> {
        let typed = Box::new(TypedContext {
            inner: ctx,
            _types: PhantomData,
        });
        Ok(BoxedEnumerator(Box::new(Source::create_enumerator(
            self, typed,
        )?)))
    }
    fn restore_enumerator(
        &self,
        ctx: EnumeratorContext<ErasedSplit, ErasedValue>,
        state: ErasedValue,
    ) -> Result<BoxedEnumerator> {
        let typed = Box::new(TypedContext {
            inner: ctx,
            _types: PhantomData,
        });
        let state = downcast::<EnumeratorState<S>>(state, "enumerator state")?;
        Ok(BoxedEnumerator(Box::new(Source::restore_enumerator(
            self, typed, state,
        )?)))
    }
    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<ErasedSplit>> {
        Arc::new(SplitSerializer(Source::split_serializer(self)))
    }
    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<ErasedValue>> {
        Arc::new(StateSerializer(Source::enumerator_state_serializer(self)))
    }
}

/// Any source of `T`, as one type.
pub struct BoxedSource<T>(Arc<dyn DynSource<T>>);

impl<T> Clone for BoxedSource<T> {
    fn clone(&self) -> Self {
        BoxedSource(Arc::clone(&self.0))
    }
}

impl<T: Send + 'static> BoxedSource<T> {
    /// Erases a source.
    pub fn new<S: Source<Output = T>>(source: S) -> Self {
        BoxedSource(Arc::new(source))
    }
}

impl<T: Send + 'static> Source for BoxedSource<T> {
    type Output = T;
    type Split = ErasedSplit;
    type Reader = BoxedReader<T>;
    type Enumerator = BoxedEnumerator;
    fn boundedness(&self) -> Boundedness {
        self.0.boundedness()
    }
    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<BoxedReader<T>> {
        self.0.create_reader(ctx)
    }
    fn create_enumerator(
        &self,
        ctx: EnumeratorContext<ErasedSplit, ErasedValue>,
    ) -> Result<BoxedEnumerator> {
        self.0.create_enumerator(ctx)
    }
    fn restore_enumerator(
        &self,
        ctx: EnumeratorContext<ErasedSplit, ErasedValue>,
        state: ErasedValue,
    ) -> Result<BoxedEnumerator> {
        self.0.restore_enumerator(ctx, state)
    }
    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<ErasedSplit>> {
        self.0.split_serializer()
    }
    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<ErasedValue>> {
        self.0.enumerator_state_serializer()
    }
}

/// The writer of a [`BoxedSink`].
pub struct BoxedWriter<T>(Box<dyn DynWriter<T>>);

#[async_trait::async_trait]
trait DynWriter<T>: Send {
    fn write(&mut self, element: T, ctx: &WriteContext) -> Result<()>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>>;
    async fn flush(&mut self, mode: FlushMode) -> Result<()>;
    fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>>;
    fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()>;
    fn write_watermark(&mut self, watermark: Watermark) -> Result<()>;
    async fn close(&mut self) -> Result<()>;
    fn as_any(&mut self) -> &mut dyn Any;
}

#[async_trait::async_trait]
impl<T: Send + 'static, W: SinkWriter<T>> DynWriter<T> for W {
    fn write(&mut self, element: T, ctx: &WriteContext) -> Result<()> {
        SinkWriter::write(self, element, ctx)
    }
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        SinkWriter::poll_ready(self, cx)
    }
    async fn flush(&mut self, mode: FlushMode) -> Result<()> {
        SinkWriter::flush(self, mode).await
    }
    fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        SinkWriter::poll_progress(self, cx)
    }
    fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        SinkWriter::checkpoint_aborted(self, checkpoint_id)
    }
    fn write_watermark(&mut self, watermark: Watermark) -> Result<()> {
        SinkWriter::write_watermark(self, watermark)
    }
    async fn close(&mut self) -> Result<()> {
        SinkWriter::close(self).await
    }
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

impl<T> BoxedWriter<T> {
    fn typed<W: 'static>(&mut self) -> Result<&mut W> {
        self.0
            .as_any()
            .downcast_mut::<W>()
            .ok_or_else(|| ConnectorError::Contract("a writer of another sink".into()))
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> SinkWriter<T> for BoxedWriter<T> {
    fn write(&mut self, element: T, ctx: &WriteContext) -> Result<()> {
        self.0.write(element, ctx)
    }
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.0.poll_ready(cx)
    }
    async fn flush(&mut self, mode: FlushMode) -> Result<()> {
        self.0.flush(mode).await
    }
    fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.0.poll_progress(cx)
    }
    fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.0.checkpoint_aborted(checkpoint_id)
    }
    fn write_watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.0.write_watermark(watermark)
    }
    async fn close(&mut self) -> Result<()> {
        self.0.close().await
    }
}

struct BoxedWriterState<T, W> {
    inner: Arc<dyn WriterStateCapability<W>>,
    _t: PhantomData<fn(T)>,
}

impl<T: Send + 'static, W: SinkWriter<T>> WriterStateCapability<BoxedWriter<T>>
    for BoxedWriterState<T, W>
{
    fn snapshot(
        &self,
        writer: &mut BoxedWriter<T>,
        checkpoint_id: CheckpointId,
    ) -> Result<Vec<VersionedBytes>> {
        self.inner.snapshot(writer.typed::<W>()?, checkpoint_id)
    }
    fn restore(
        &self,
        ctx: &dyn InitContext,
        states: Vec<VersionedBytes>,
    ) -> Result<BoxedWriter<T>> {
        Ok(BoxedWriter(Box::new(self.inner.restore(ctx, states)?)))
    }
    fn compatible_state_names(&self) -> Vec<String> {
        self.inner.compatible_state_names()
    }
}

struct BoxedCommitting<T, W> {
    inner: Arc<dyn CommitterCapability<W>>,
    _t: PhantomData<fn(T)>,
}

impl<T: Send + 'static, W: SinkWriter<T>> CommitterCapability<BoxedWriter<T>>
    for BoxedCommitting<T, W>
{
    fn prepare_commit<'a>(
        &'a self,
        writer: &'a mut BoxedWriter<T>,
    ) -> BoxFuture<'a, Result<Vec<AnyCommittable>>> {
        Box::pin(async move {
            let typed = writer.typed::<W>()?;
            self.inner.prepare_commit(typed).await
        })
    }
    fn create_committer(
        &self,
        ctx: &dyn InitContext,
    ) -> Result<Box<dyn Committer<AnyCommittable>>> {
        self.inner.create_committer(ctx)
    }
    fn serialize_committable(&self, committable: &AnyCommittable) -> Result<VersionedBytes> {
        self.inner.serialize_committable(committable)
    }
    fn deserialize_committable(&self, bytes: &VersionedBytes) -> Result<AnyCommittable> {
        self.inner.deserialize_committable(bytes)
    }
    fn pre_commit_stages(&self) -> Vec<ErasedStage> {
        self.inner.pre_commit_stages()
    }
    fn post_commit_stages(&self) -> Vec<ErasedStage> {
        self.inner.post_commit_stages()
    }
}

trait DynSink<T>: Send + Sync {
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<BoxedWriter<T>>;
    fn capabilities(&self) -> SinkCapabilities<T, BoxedWriter<T>>;
}

struct SinkHolder<S>(Arc<S>);

impl<T: Send + 'static, S: Sink<T>> DynSink<T> for SinkHolder<S> {
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<BoxedWriter<T>> {
        Ok(BoxedWriter(Box::new(self.0.create_writer(ctx)?)))
    }
    fn capabilities(&self) -> SinkCapabilities<T, BoxedWriter<T>> {
        let typed = Arc::clone(&self.0).capabilities();
        let writer_state = typed.writer_state().map(|c| {
            Arc::new(BoxedWriterState::<T, S::Writer> {
                inner: Arc::clone(c),
                _t: PhantomData,
            }) as Arc<dyn WriterStateCapability<BoxedWriter<T>>>
        });
        let committer = typed.committer().map(|c| {
            Arc::new(BoxedCommitting::<T, S::Writer> {
                inner: Arc::clone(c),
                _t: PhantomData,
            }) as Arc<dyn CommitterCapability<BoxedWriter<T>>>
        });
        SinkCapabilities::from_parts(writer_state, committer, typed.pre_write().cloned())
    }
}

/// Any sink of `T`, as one type, with its declared capabilities.
pub struct BoxedSink<T>(Arc<dyn DynSink<T>>);

impl<T> Clone for BoxedSink<T> {
    fn clone(&self) -> Self {
        BoxedSink(Arc::clone(&self.0))
    }
}

impl<T: Send + 'static> BoxedSink<T> {
    /// Erases a sink.
    pub fn new<S: Sink<T>>(sink: S) -> Self {
        BoxedSink(Arc::new(SinkHolder(Arc::new(sink))))
    }
}

impl<T: Send + 'static> Sink<T> for BoxedSink<T> {
    type Writer = BoxedWriter<T>;
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<BoxedWriter<T>> {
        self.0.create_writer(ctx)
    }
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<T, BoxedWriter<T>> {
        self.0.capabilities()
    }
}
