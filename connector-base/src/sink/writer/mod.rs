//! [`AsyncSinkWriter`]: buffers request entries, sends them in batches with bounded
//! concurrency, retries failed entries and checkpoints what it has not sent.

mod completion;

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::{Instant, Sleep};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::sink::{
    FlushMode, InitContext, SinkWriter, StatefulSinkWriter, WriteContext,
};

use super::config::{keys, AsyncSinkConfig, CheckpointFlush};
use super::entry::{ElementConverter, EntryOutcome, RequestBatch, RequestSubmitter};
use super::metrics::{gauge_value, AsyncSinkMetrics};
use super::rate_limit::{RateDecision, RateLimitingStrategy, RequestInfo};
use super::state::BufferedRequestState;

/// What an in-flight request resolves to.
pub(super) struct Completion<E> {
    pub(super) batch: RequestBatch<E>,
    /// Earlier failed attempts of the batch's first entries (entries sent again); the others
    /// had none. `None` when no entry of the batch is a retry.
    pub(super) failures: Option<Vec<u32>>,
    /// The batch's bytes (by `RequestSubmitter::entry_size`).
    pub(super) bytes: u64,
    pub(super) result: Result<Vec<EntryOutcome>>,
    pub(super) sent_at: Instant,
}

/// Why the writer is sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// Full batches (by count or bytes) and batches whose time in the buffer is up.
    Ready,
    /// As `Ready`, and partial batches while the buffer is full (backpressure).
    MakeRoom,
    /// Everything buffered (end of input, or [`CheckpointFlush::SendAll`]).
    Drain,
}

/// The AsyncSink writer (FLIP-171): converts each record into a request entry, buffers it, and
/// sends batches through a [`RequestSubmitter`].
///
/// - **Batching**: a batch is sent when it holds `max_batch_size` entries (or fewer, if the
///   rate-limiting strategy allows fewer), when it reaches `max_batch_size_bytes`, or when its
///   oldest entry has waited `max_time_in_buffer`.
/// - **Backpressure**: [`poll_ready`](SinkWriter::poll_ready) is `Pending` while
///   `max_buffered_entries` entries wait and no request can be sent (in-flight limit reached,
///   or a retry backoff running). It never blocks a thread. The runtime asks before every input
///   batch, so the buffer holds at most `max_buffered_entries` plus one input batch, plus the
///   entries of failed requests that come back for a retry.
/// - **Concurrency**: at most `max_in_flight_requests` requests, fewer if the
///   [`RateLimitingStrategy`] says so (AIMD congestion control by default).
/// - **Failures**: each entry's [`EntryOutcome`] is retryable (back to the head of the buffer,
///   sent again after a backoff, at most `max_retries` times) or fatal (the writer fails).
/// - **Checkpoints**: the runtime flushes before every barrier: requests in flight complete
///   (and, with [`CheckpointFlush::SendAll`], every buffered entry is sent); then
///   [`snapshot_state`](StatefulSinkWriter::snapshot_state) returns the entries not yet sent. A
///   restored writer sends them first (at-least-once; with idempotent entry ids the destination
///   holds each record once).
///
/// Requests are futures the writer polls itself, on the task that runs it, whenever the runtime
/// calls it (every input batch, every flush); nothing is spawned, and dropping the writer
/// cancels what is in flight. Time (batch timeouts, retry backoffs, request timeouts) runs on
/// tokio's clock, so the writer must run inside a tokio runtime with time enabled, as every
/// Weir job does.
///
/// Build it through [`AsyncSink`](super::AsyncSink), or directly in your own
/// [`Sink`](weir_connector_api::sink::Sink) with [`AsyncSinkWriter::new`] and
/// [`AsyncSinkWriter::restore`].
pub struct AsyncSinkWriter<In, E, C, S>
where
    E: Send + Sync + 'static,
{
    pub(super) converter: C,
    pub(super) submitter: Arc<S>,
    pub(super) config: AsyncSinkConfig,
    pub(super) rate: Box<dyn RateLimitingStrategy>,
    /// Entries waiting, oldest first (entries back for a retry at the head).
    pub(super) buffer: Vec<E>,
    /// Failed attempts of the first `head_failures.len()` buffered entries (those back for a
    /// retry); every later entry has none.
    pub(super) head_failures: VecDeque<u32>,
    pub(super) buffered_bytes: u64,
    /// The allocation of a completed batch, reused as the next buffer.
    pub(super) spare: Option<Vec<E>>,
    /// When the oldest batch in the buffer began waiting.
    pub(super) buffered_since: Option<Instant>,
    /// The entry count that makes a batch full (the configured maximum, or less when the rate
    /// limiter allows less).
    pub(super) batch_limit: usize,
    /// `write` tries to send once the buffer holds this many entries or bytes: a full batch,
    /// or, after a try that could not send (all requests in flight), one batch more; readiness
    /// checks and flushes try every time.
    write_trigger: (usize, u64),
    in_flight: FuturesUnordered<BoxFuture<'static, Completion<E>>>,
    pub(super) in_flight_entries: usize,
    /// No request is sent before this instant (a retry backoff).
    pub(super) retry_at: Option<Instant>,
    pub(super) retry_sleep: Option<Pin<Box<Sleep>>>,
    /// Wakes [`SinkWriter::poll_progress`] when the oldest buffered entry's time is up.
    buffer_timer: Option<Pin<Box<Sleep>>>,
    pub(super) metrics: AsyncSinkMetrics,
    _in: PhantomData<fn(In)>,
}

impl<In, E, C, S> fmt::Debug for AsyncSinkWriter<In, E, C, S>
where
    E: Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSinkWriter")
            .field("buffered", &self.buffer.len())
            .field("buffered_bytes", &self.buffered_bytes)
            .field("in_flight_requests", &self.in_flight.len())
            .field("in_flight_entries", &self.in_flight_entries)
            .field("batch_limit", &self.batch_limit)
            .finish_non_exhaustive()
    }
}

impl<In, E, C, S> AsyncSinkWriter<In, E, C, S>
where
    In: Send + 'static,
    E: Clone + Send + Sync + 'static,
    C: ElementConverter<In, E>,
    S: RequestSubmitter<E>,
{
    /// A writer with an empty buffer, reporting into `ctx`'s metric group.
    pub fn new(
        ctx: &dyn InitContext,
        converter: C,
        submitter: S,
        config: AsyncSinkConfig,
    ) -> Result<Self> {
        Self::restore(ctx, converter, submitter, config, Vec::new())
    }

    /// A writer that first sends the entries of `states` (see [`BufferedRequestState`]).
    pub fn restore(
        ctx: &dyn InitContext,
        converter: C,
        submitter: S,
        config: AsyncSinkConfig,
        states: Vec<BufferedRequestState<E>>,
    ) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConnectorError::Contract(
                "the AsyncSink writer needs a tokio runtime with time enabled (its batch \
                 timeouts, backoffs and request timeouts run on tokio's clock): create it inside \
                 a Weir job or a tokio runtime"
                    .to_owned(),
            ));
        }
        let rate = config.rate_limiting().create(&config);
        let metrics = AsyncSinkMetrics::new(&*ctx.metric_group());
        let mut writer = AsyncSinkWriter {
            converter,
            submitter: Arc::new(submitter),
            batch_limit: config.max_batch_size(),
            write_trigger: (config.max_batch_size(), config.max_batch_size_bytes()),
            config,
            rate,
            buffer: Vec::new(),
            head_failures: VecDeque::new(),
            buffered_bytes: 0,
            spare: None,
            buffered_since: None,
            in_flight: FuturesUnordered::new(),
            in_flight_entries: 0,
            retry_at: None,
            retry_sleep: None,
            buffer_timer: None,
            metrics,
            _in: PhantomData,
        };
        writer.update_batch_limit();
        for entry in states.into_iter().flat_map(|s| s.entries) {
            let size = writer.submitter.entry_size(&entry);
            writer.push_back(entry, size);
        }
        writer.update_gauges();
        Ok(writer)
    }

    /// Entries waiting in the buffer.
    pub fn buffered_entries(&self) -> usize {
        self.buffer.len()
    }

    /// Requests in flight.
    pub fn in_flight_requests(&self) -> usize {
        self.in_flight.len()
    }

    /// Entries in requests in flight.
    pub fn in_flight_entries(&self) -> usize {
        self.in_flight_entries
    }

    /// The rate-limiting strategy's current limit on entries in flight, if it has one.
    pub fn max_in_flight_entries(&self) -> Option<usize> {
        self.rate.max_in_flight_entries()
    }

    /// The writer's metrics.
    pub fn metrics(&self) -> &AsyncSinkMetrics {
        &self.metrics
    }

    /// The submitter (shared with the requests in flight).
    pub fn submitter(&self) -> &Arc<S> {
        &self.submitter
    }

    #[inline]
    fn push_back(&mut self, entry: E, size: u64) {
        if self.buffer.is_empty() {
            self.buffered_since = Some(Instant::now());
        }
        self.buffer.push(entry);
        self.buffered_bytes = self.buffered_bytes.saturating_add(size);
    }

    #[inline]
    fn batch_is_full(&self) -> bool {
        self.buffer.len() >= self.batch_limit
            || self.buffered_bytes >= self.config.max_batch_size_bytes()
    }

    pub(super) fn update_batch_limit(&mut self) {
        self.batch_limit = self
            .config
            .max_batch_size()
            .min(self.rate.max_batch_size())
            .max(1);
    }

    fn update_gauges(&self) {
        let m = &self.metrics;
        m.in_flight_requests.set(gauge_value(self.in_flight.len()));
        m.in_flight_entries.set(gauge_value(self.in_flight_entries));
        m.buffered_entries.set(gauge_value(self.buffer.len()));
        if let Some(max) = self.rate.max_in_flight_entries() {
            m.max_in_flight_entries.set(gauge_value(max));
        }
    }

    /// Whether `goal` asks for a request now (ignoring limits).
    fn wants_send(&self, goal: Goal) -> bool {
        if self.buffer.is_empty() {
            return false;
        }
        if self.batch_is_full() {
            return true;
        }
        match goal {
            Goal::Drain => true,
            Goal::MakeRoom if self.buffer.len() >= self.config.max_buffered_entries() => true,
            Goal::Ready | Goal::MakeRoom => self
                .buffered_since
                .is_some_and(|since| since.elapsed() >= self.config.max_time_in_buffer()),
        }
    }

    /// How many entries from the head of the buffer go into the next request.
    fn next_batch_len(&self) -> usize {
        let n = self.buffer.len().min(self.batch_limit);
        let max_bytes = self.config.max_batch_size_bytes();
        if self.buffered_bytes <= max_bytes {
            return n; // no prefix can exceed the bytes limit
        }
        let mut bytes = 0_u64;
        let mut taken = 0;
        for entry in &self.buffer[..n] {
            let size = self.submitter.entry_size(entry);
            if taken > 0 && bytes.saturating_add(size) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(size);
            taken += 1;
        }
        taken
    }

    /// Collects completed requests, then sends while `goal` wants and the limits allow.
    fn progress(&mut self, cx: &mut Context<'_>, goal: Goal) -> Result<()> {
        loop {
            while let Poll::Ready(Some(done)) = self.in_flight.poll_next_unpin(cx) {
                self.complete(done)?;
            }
            if !self.wants_send(goal) {
                break;
            }
            if let Some(at) = self.retry_at {
                if Instant::now() < at {
                    break;
                }
                self.retry_at = None;
                self.retry_sleep = None;
            }
            if self.in_flight.len() >= self.config.max_in_flight_requests() {
                break;
            }
            let n = self.next_batch_len();
            let request = RequestInfo { batch_size: n };
            // With nothing in flight a request always goes: no strategy can stall the writer.
            if !self.in_flight.is_empty() && self.rate.decide(request) == RateDecision::Wait {
                break;
            }
            self.send(n);
        }
        let (limit, max_bytes) = (self.batch_limit, self.config.max_batch_size_bytes());
        let (len, bytes) = (self.buffer.len(), self.buffered_bytes);
        self.write_trigger = (
            if len >= limit { len + limit } else { limit },
            if bytes >= max_bytes {
                bytes.saturating_add(max_bytes)
            } else {
                max_bytes
            },
        );
        self.update_gauges();
        Ok(())
    }

    /// Sends the first `n` buffered entries as one request.
    fn send(&mut self, n: usize) {
        let (entries, bytes) = if n == self.buffer.len() {
            // The whole buffer: hand its allocation over, no entry moves.
            let fresh = self
                .spare
                .take()
                .unwrap_or_else(|| Vec::with_capacity(self.batch_limit));
            (
                std::mem::replace(&mut self.buffer, fresh),
                self.buffered_bytes,
            )
        } else {
            let entries: Vec<E> = if 2 * n >= self.buffer.len() {
                let rest = self.buffer.split_off(n);
                std::mem::replace(&mut self.buffer, rest)
            } else {
                self.buffer.drain(..n).collect()
            };
            let bytes = entries
                .iter()
                .map(|e| self.submitter.entry_size(e))
                .fold(0_u64, u64::saturating_add);
            (entries, bytes)
        };
        self.buffered_bytes = self.buffered_bytes.saturating_sub(bytes);
        let failures = if self.head_failures.is_empty() {
            None
        } else {
            let k = n.min(self.head_failures.len());
            Some(self.head_failures.drain(..k).collect())
        };
        self.buffered_since = if self.buffer.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
        self.rate.register_in_flight(RequestInfo { batch_size: n });
        self.in_flight_entries += n;
        let batch = RequestBatch::new(entries);
        let handle = batch.share();
        let submitter = Arc::clone(&self.submitter);
        let timeout = self.config.request_timeout();
        let policy = self.config.timeout_policy();
        let sent_at = Instant::now();
        self.in_flight.push(Box::pin(async move {
            let request = submitter.submit(handle);
            let result = match timeout {
                None => request.await,
                Some(limit) => match tokio::time::timeout(limit, request).await {
                    Ok(result) => result,
                    Err(_) => Err(completion::timed_out(n, limit, policy)),
                },
            };
            Completion {
                batch,
                failures,
                bytes,
                result,
                sent_at,
            }
        }));
    }

    /// Polls the retry backoff: `Ready` when there is none or it is over.
    fn poll_backoff(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(at) = self.retry_at else {
            return Poll::Ready(());
        };
        let sleep = self
            .retry_sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.retry_at = None;
                self.retry_sleep = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_ready_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            self.progress(cx, Goal::MakeRoom)?;
            if self.buffer.len() < self.config.max_buffered_entries() {
                return Poll::Ready(Ok(()));
            }
            // Full: wait for a request to complete (the in-flight poll registered the waker)
            // or for the backoff to end.
            if self.retry_at.is_some() && self.poll_backoff(cx).is_ready() {
                continue;
            }
            if self.in_flight.is_empty() && self.retry_at.is_none() {
                // Nothing to wait for, yet nothing was sent: cannot happen (with nothing in
                // flight and no backoff a request always goes), but never hang on it.
                return Poll::Ready(Err(ConnectorError::Contract(
                    "the AsyncSink writer's buffer is full but it could not send".to_owned(),
                )));
            }
            return Poll::Pending;
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>, goal: Goal) -> Poll<Result<()>> {
        loop {
            self.progress(cx, goal)?;
            let buffered_done = goal != Goal::Drain || self.buffer.is_empty();
            if self.in_flight.is_empty() && buffered_done {
                return Poll::Ready(Ok(()));
            }
            if self.retry_at.is_some() && self.poll_backoff(cx).is_ready() {
                continue;
            }
            if self.in_flight.is_empty() && self.retry_at.is_none() {
                return Poll::Ready(Err(ConnectorError::Contract(
                    "the AsyncSink writer could not send its buffered entries".to_owned(),
                )));
            }
            return Poll::Pending;
        }
    }

    /// The runtime's poll while the writer waits for input: collects completed requests and
    /// sends a batch whose time in the buffer is up; wakes `cx` at the next of those events.
    fn poll_progress_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.progress(cx, Goal::Ready)?;
        if self.retry_at.is_some() && self.poll_backoff(cx).is_ready() {
            self.progress(cx, Goal::Ready)?;
        }
        let due = self
            .buffered_since
            .filter(|_| !self.buffer.is_empty())
            .map(|since| since + self.config.max_time_in_buffer());
        let Some(due) = due else {
            self.buffer_timer = None;
            return Poll::Pending;
        };
        let timer = self
            .buffer_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if timer.deadline() != due {
            timer.as_mut().reset(due);
        }
        if timer.as_mut().poll(cx).is_ready() {
            // Due now: send it if the limits allow; if they do not, a completing request
            // wakes us (its waker was registered by `progress`).
            self.progress(cx, Goal::Ready)?;
        }
        Poll::Pending
    }

    /// Collects completions and sends what is ready, without waiting (used from `write`).
    fn progress_now(&mut self) -> Result<()> {
        let mut cx = Context::from_waker(Waker::noop());
        self.progress(&mut cx, Goal::Ready)
    }
}

#[async_trait::async_trait]
impl<In, E, C, S> SinkWriter<In> for AsyncSinkWriter<In, E, C, S>
where
    In: Send + 'static,
    E: Clone + Send + Sync + 'static,
    C: ElementConverter<In, E>,
    S: RequestSubmitter<E>,
{
    #[inline]
    fn write(&mut self, element: In, ctx: &WriteContext) -> Result<()> {
        let entry = self.converter.convert(element, ctx)?;
        let size = self.submitter.entry_size(&entry);
        if size > self.config.max_record_size_bytes() {
            return Err(ConnectorError::malformed(
                "an AsyncSink entry",
                format!(
                    "the entry is {size} bytes, more than the {} bytes of {}: raise it (and {} \
                     if needed) or make the entries smaller",
                    self.config.max_record_size_bytes(),
                    keys::MAX_RECORD_SIZE_BYTES,
                    keys::MAX_BATCH_SIZE_BYTES
                ),
            ));
        }
        self.push_back(entry, size);
        if self.buffer.len() >= self.write_trigger.0 || self.buffered_bytes >= self.write_trigger.1
        {
            self.progress_now()?;
        }
        Ok(())
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll_ready_inner(cx)
    }

    fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll_progress_inner(cx)
    }

    async fn flush(&mut self, mode: FlushMode) -> Result<()> {
        let goal = match (mode, self.config.checkpoint_flush()) {
            (FlushMode::EndOfInput, _) | (FlushMode::Checkpoint, CheckpointFlush::SendAll) => {
                Goal::Drain
            }
            (FlushMode::Checkpoint, CheckpointFlush::AwaitInFlight) => Goal::Ready,
        };
        poll_fn(|cx| self.poll_flush(cx, goal)).await
    }

    async fn close(&mut self) -> Result<()> {
        // Requests still in flight are abandoned: what they carried is in the last checkpoint.
        self.in_flight = FuturesUnordered::new();
        self.in_flight_entries = 0;
        self.update_gauges();
        Ok(())
    }
}

impl<In, E, C, S> StatefulSinkWriter<In> for AsyncSinkWriter<In, E, C, S>
where
    In: Send + 'static,
    E: Clone + Send + Sync + 'static,
    C: ElementConverter<In, E>,
    S: RequestSubmitter<E>,
{
    type State = BufferedRequestState<E>;

    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<Self::State>> {
        if !self.in_flight.is_empty() {
            return Err(ConnectorError::Contract(format!(
                "snapshot of checkpoint {checkpoint_id} with {} requests in flight: the writer \
                 must be flushed before its state is taken",
                self.in_flight.len()
            )));
        }
        Ok(vec![BufferedRequestState {
            entries: self.buffer.clone(),
        }])
    }
}
