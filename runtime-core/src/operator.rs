//! Operators inside a task. A task runs a *chain* of operators with direct calls: each one
//! receives batches and events and pushes its output into the next. Dynamic dispatch happens
//! once per batch, never per record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::metrics::Counter;

use crate::element::{Event, Notification};
use crate::error::{Result, RuntimeError};
use crate::fault::{FaultInjector, FaultPoint, FaultSite};
use crate::storage::SubtaskSnapshot;

/// Where a subtask runs and what it collects while a barrier passes through its chain.
pub struct TaskCx {
    /// The subtask index.
    pub subtask: usize,
    /// The parallelism of the task.
    pub parallelism: usize,
    /// The job attempt (0 = first run).
    pub attempt: u32,
    pub(crate) faults: Arc<dyn FaultInjector>,
    pub(crate) snapshots: BTreeMap<String, SubtaskSnapshot>,
}

impl TaskCx {
    pub(crate) fn new(
        subtask: usize,
        parallelism: usize,
        attempt: u32,
        faults: Arc<dyn FaultInjector>,
    ) -> Self {
        TaskCx {
            subtask,
            parallelism,
            attempt,
            faults,
            snapshots: BTreeMap::new(),
        }
    }

    /// Records a named list state of an operator for the checkpoint being taken.
    pub fn add_state(&mut self, operator: &str, name: &str, values: Vec<VersionedBytes>) {
        self.snapshots
            .entry(operator.to_owned())
            .or_default()
            .state
            .insert(name.to_owned(), values);
    }

    /// Records that an operator took part in the checkpoint (even without state).
    pub fn touch(&mut self, operator: &str, finished: bool) {
        let entry = self.snapshots.entry(operator.to_owned()).or_default();
        entry.finished |= finished;
    }

    /// Runs the fault injector at `point`.
    pub fn fault(
        &self,
        point: FaultPoint,
        operator: &str,
        checkpoint_id: CheckpointId,
    ) -> Result<()> {
        self.faults
            .check(
                point,
                &FaultSite {
                    operator,
                    subtask: self.subtask,
                    checkpoint_id,
                    attempt: self.attempt,
                },
            )
            .map_err(RuntimeError::Injected)
    }

    pub(crate) fn take_snapshots(&mut self) -> BTreeMap<String, SubtaskSnapshot> {
        std::mem::take(&mut self.snapshots)
    }
}

/// One operator of a chain, seen from upstream: the input side of everything after it.
#[async_trait::async_trait]
pub trait Output<T: Send + 'static>: Send {
    /// Called once before any record (e.g. a committer re-commits restored committables).
    async fn open(&mut self, cx: &mut TaskCx) -> Result<()>;
    /// Processes a batch; leaves `batch` empty (its allocation is reused by the caller).
    async fn push(&mut self, batch: &mut Vec<T>, cx: &mut TaskCx) -> Result<()>;
    /// Processes a batch whose records carry event timestamps: `timestamps[i]` is the event
    /// time of `batch[i]` in epoch milliseconds ([`NO_TIMESTAMP`] for a record without one),
    /// and both have the same length. Leaves both empty. Operators that keep each record's
    /// time (map, filter, flat map, the sink writer) override it; the default drops the
    /// timestamps and calls [`push`](Output::push), so what such an operator emits has none.
    async fn push_timestamped(
        &mut self,
        batch: &mut Vec<T>,
        timestamps: &mut Vec<i64>,
        cx: &mut TaskCx,
    ) -> Result<()> {
        timestamps.clear();
        self.push(batch, cx).await
    }
    /// Processes an in-band event; a barrier snapshots state into `cx` and is forwarded.
    async fn event(&mut self, event: Event, cx: &mut TaskCx) -> Result<()>;
    /// Delivers a checkpoint notification to this and every later operator of the chain.
    async fn notify(&mut self, notification: Notification, cx: &mut TaskCx) -> Result<()>;
    /// Sends partially filled buffers on (the linger timeout or an idle source).
    async fn flush_buffers(&mut self) -> Result<()>;
    /// Releases resources after the task's work is done.
    async fn close(&mut self) -> Result<()>;
    /// Work an operator does on its own clock while the task waits for input (e.g. a sink
    /// writer's [`poll_progress`](weir_connector_api::sink::SinkWriter::poll_progress): a batch
    /// whose time is up, requests in flight). `Pending` when nothing is due, waking `cx` when
    /// something is; operators that pass records on forward it.
    fn poll_progress(&mut self, _cx: &mut Context<'_>, _subtask: usize) -> Poll<Result<()>> {
        Poll::Pending
    }
}

/// A boxed chain output.
pub type BoxOutput<T> = Box<dyn Output<T>>;

/// The event timestamp of a record that has none (what a source's timestamp assigner returns
/// when the source attached no time and the strategy extracts none), as in Flink.
pub const NO_TIMESTAMP: i64 = i64::MIN;

/// Counts records entering an operator and forwards everything.
pub(crate) struct Counted<T: Send + 'static> {
    pub(crate) records_in: Counter,
    pub(crate) inner: BoxOutput<T>,
}

#[async_trait::async_trait]
impl<T: Send + 'static> Output<T> for Counted<T> {
    async fn open(&mut self, cx: &mut TaskCx) -> Result<()> {
        self.inner.open(cx).await
    }
    async fn push(&mut self, batch: &mut Vec<T>, cx: &mut TaskCx) -> Result<()> {
        self.records_in.add(batch.len() as u64);
        self.inner.push(batch, cx).await
    }
    async fn push_timestamped(
        &mut self,
        batch: &mut Vec<T>,
        timestamps: &mut Vec<i64>,
        cx: &mut TaskCx,
    ) -> Result<()> {
        self.records_in.add(batch.len() as u64);
        self.inner.push_timestamped(batch, timestamps, cx).await
    }
    async fn event(&mut self, event: Event, cx: &mut TaskCx) -> Result<()> {
        self.inner.event(event, cx).await
    }
    async fn notify(&mut self, n: Notification, cx: &mut TaskCx) -> Result<()> {
        self.inner.notify(n, cx).await
    }
    async fn flush_buffers(&mut self) -> Result<()> {
        self.inner.flush_buffers().await
    }
    async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }
    fn poll_progress(&mut self, cx: &mut Context<'_>, subtask: usize) -> Poll<Result<()>> {
        self.inner.poll_progress(cx, subtask)
    }
}

/// A stateless record transformation applied batch by batch.
pub(crate) trait Transform<I, O>: Send + 'static {
    /// Moves `input` (drained) through the transformation into `output`.
    fn apply(&mut self, input: &mut Vec<I>, output: &mut Vec<O>);
    /// As [`apply`](Transform::apply), for records with event timestamps: `ts_in` (drained,
    /// as long as `input`) holds the input's, and each output record gets its input record's
    /// timestamp in `ts_out` (empty on entry).
    fn apply_timestamped(
        &mut self,
        input: &mut Vec<I>,
        ts_in: &mut Vec<i64>,
        output: &mut Vec<O>,
        ts_out: &mut Vec<i64>,
    );
}

/// Declares a transform over a shared user function (cloned into every subtask).
macro_rules! shared_fn {
    ($name:ident) => {
        pub(crate) struct $name<F>(pub(crate) std::sync::Arc<F>);
        impl<F> Clone for $name<F> {
            fn clone(&self) -> Self {
                $name(std::sync::Arc::clone(&self.0))
            }
        }
    };
}

shared_fn!(MapFn);
impl<I, O, F> Transform<I, O> for MapFn<F>
where
    F: Fn(I) -> O + Send + Sync + 'static,
{
    fn apply(&mut self, input: &mut Vec<I>, output: &mut Vec<O>) {
        output.extend(input.drain(..).map(|x| (self.0)(x)));
    }
    fn apply_timestamped(
        &mut self,
        input: &mut Vec<I>,
        ts_in: &mut Vec<i64>,
        output: &mut Vec<O>,
        ts_out: &mut Vec<i64>,
    ) {
        self.apply(input, output);
        // One record out per record in: the same timestamps, handed over without a copy.
        std::mem::swap(ts_in, ts_out);
    }
}

shared_fn!(FilterFn);
impl<I, F> Transform<I, I> for FilterFn<F>
where
    F: Fn(&I) -> bool + Send + Sync + 'static,
{
    fn apply(&mut self, input: &mut Vec<I>, output: &mut Vec<I>) {
        output.extend(input.drain(..).filter(|x| (self.0)(x)));
    }
    fn apply_timestamped(
        &mut self,
        input: &mut Vec<I>,
        ts_in: &mut Vec<i64>,
        output: &mut Vec<I>,
        ts_out: &mut Vec<i64>,
    ) {
        for (x, ts) in input.drain(..).zip(ts_in.drain(..)) {
            if (self.0)(&x) {
                output.push(x);
                ts_out.push(ts);
            }
        }
    }
}

shared_fn!(FlatMapFn);
impl<I, O, It, F> Transform<I, O> for FlatMapFn<F>
where
    F: Fn(I) -> It + Send + Sync + 'static,
    It: IntoIterator<Item = O>,
{
    fn apply(&mut self, input: &mut Vec<I>, output: &mut Vec<O>) {
        for item in input.drain(..) {
            output.extend((self.0)(item));
        }
    }
    fn apply_timestamped(
        &mut self,
        input: &mut Vec<I>,
        ts_in: &mut Vec<i64>,
        output: &mut Vec<O>,
        ts_out: &mut Vec<i64>,
    ) {
        for (item, ts) in input.drain(..).zip(ts_in.drain(..)) {
            output.extend((self.0)(item));
            ts_out.resize(output.len(), ts);
        }
    }
}

shared_fn!(FlatMapTimestampedFn);
impl<I, O, It, F> Transform<I, O> for FlatMapTimestampedFn<F>
where
    F: Fn(I) -> It + Send + Sync + 'static,
    It: IntoIterator<Item = (O, i64)>,
{
    fn apply(&mut self, input: &mut Vec<I>, output: &mut Vec<O>) {
        // A stream without event time: the timestamps are not kept.
        for item in input.drain(..) {
            output.extend((self.0)(item).into_iter().map(|(o, _)| o));
        }
    }
    fn apply_timestamped(
        &mut self,
        input: &mut Vec<I>,
        ts_in: &mut Vec<i64>,
        output: &mut Vec<O>,
        ts_out: &mut Vec<i64>,
    ) {
        ts_in.clear();
        for item in input.drain(..) {
            for (o, ts) in (self.0)(item) {
                output.push(o);
                ts_out.push(ts);
            }
        }
    }
}

/// Runs a [`Transform`] in a chain.
pub(crate) struct TransformOperator<I, O: Send + 'static, X> {
    pub(crate) transform: X,
    pub(crate) buffer: Vec<O>,
    /// The event timestamps of `buffer`, when its records have them.
    pub(crate) timestamps: Vec<i64>,
    pub(crate) next: BoxOutput<O>,
    pub(crate) _input: std::marker::PhantomData<fn(I)>,
}

#[async_trait::async_trait]
impl<I, O, X> Output<I> for TransformOperator<I, O, X>
where
    I: Send + 'static,
    O: Send + 'static,
    X: Transform<I, O>,
{
    async fn open(&mut self, cx: &mut TaskCx) -> Result<()> {
        self.next.open(cx).await
    }
    async fn push(&mut self, batch: &mut Vec<I>, cx: &mut TaskCx) -> Result<()> {
        self.transform.apply(batch, &mut self.buffer);
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
        self.timestamps.clear();
        self.transform
            .apply_timestamped(batch, timestamps, &mut self.buffer, &mut self.timestamps);
        if self.buffer.is_empty() {
            self.timestamps.clear();
            return Ok(());
        }
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
