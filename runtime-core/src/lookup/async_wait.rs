//! The asynchronous lookup join (Flink's `AsyncWaitOperator`): the lookups of a subtask run
//! concurrently in one driver task of their own (a `FuturesUnordered`, fed and drained in
//! batches over channels); the records wait in a [`Queue`] (ordered or unordered) until they
//! may leave. The task calls the operator on every batch, event and linger tick; finished
//! lookups are collected then, so a result waits at most one buffer timeout (or watermark
//! interval, in a source's chain) for its record to leave.
//!
//! - A full queue (the capacity) is backpressure: `push` waits for lookups to finish.
//! - Watermarks and idleness changes queue behind the records before them.
//! - A barrier first lets out what may leave, then stores the inputs of every queued record
//!   and passes on; a restore looks them up again before any new record.
//! - End of input waits for every lookup.

use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use weir_connector_api::error::{ConnectorError, ErrorClass};
use weir_connector_api::lookup::AsyncLookupFunction;
use weir_connector_api::metrics::{Counter, Gauge, InMemoryMetricGroup, MetricGroup};
use weir_connector_api::state::VersionedSerializer;

use super::queue::{Pending, Queue, Ready};
use super::state::{self, IN_FLIGHT_STATE};
use super::{
    AsyncFactory, AsyncLookupOptions, Joiner, KeyFn, OutputOrder, RetryStrategy, RetryWhen,
    RuntimeLookupContext, TimeoutAction, LOOKUPS_IN_FLIGHT, NUM_LOOKUP_RETRIES,
    NUM_LOOKUP_TIMEOUTS, NUM_RESTORED_LOOKUPS,
};
use crate::element::{Event, Notification};
use crate::error::{Result, RuntimeError};
use crate::operator::{BoxOutput, Output, TaskCx};
use crate::plan::RestoredOperator;

/// Outputs gathered before they go on as one batch.
const OUTPUT_BATCH: usize = 1024;

/// Lookups to start: sequence numbers and keys.
type Requests<K> = Vec<(u64, K)>;
/// Finished lookups: sequence numbers and outcomes.
type Results<V> = Vec<(u64, Outcome<V>)>;

/// How a record's lookup ended.
enum Outcome<V> {
    Rows(Vec<V>),
    Failed(ConnectorError),
    TimedOut,
}

struct Metrics {
    in_flight: Gauge,
    retries: Counter,
    timeouts: Counter,
    restored: Counter,
}

/// What the operator of one subtask is made of.
pub(crate) struct Setup<'a, T, K, V, O> {
    pub(crate) uid: String,
    pub(crate) factory: AsyncFactory<K, V>,
    pub(crate) key: KeyFn<T, K>,
    pub(crate) joiner: Joiner<T, V, O>,
    pub(crate) inputs: Arc<dyn VersionedSerializer<T>>,
    pub(crate) options: AsyncLookupOptions,
    pub(crate) context: Arc<RuntimeLookupContext>,
    pub(crate) metrics: &'a InMemoryMetricGroup,
    pub(crate) restored: &'a RestoredOperator,
    /// A context like the task's, for outputs sent on a linger tick.
    pub(crate) scratch: TaskCx,
}

pub(crate) struct AsyncLookupOperator<T, K, V, O: Send + 'static> {
    uid: String,
    factory: AsyncFactory<K, V>,
    function: Option<Arc<dyn AsyncLookupFunction<K, V>>>,
    key: KeyFn<T, K>,
    joiner: Joiner<T, V, O>,
    inputs: Arc<dyn VersionedSerializer<T>>,
    options: AsyncLookupOptions,
    context: Arc<RuntimeLookupContext>,
    queue: Queue<T, V>,
    next_seq: u64,
    running: usize,
    /// Lookups issued since the last batch went to the driver.
    requests: Requests<K>,
    /// The driver's ends (once opened).
    driver: Option<Driver<K, V>>,
    /// Inputs restored from a checkpoint, looked up again at open.
    restored: Vec<T>,
    ended: bool,
    subtask: usize,
    metrics: Metrics,
    /// A context like the task's, for outputs sent on a linger tick (which carries none);
    /// nothing is ever snapshot into it.
    scratch: Option<TaskCx>,
    out: Vec<O>,
    next: BoxOutput<O>,
}

impl<T, K, V, O> AsyncLookupOperator<T, K, V, O>
where
    T: Send + 'static,
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    O: Send + 'static,
{
    pub(crate) fn new(setup: Setup<'_, T, K, V, O>, next: BoxOutput<O>) -> Result<Self> {
        let mut restored = Vec::new();
        for entry in setup
            .restored
            .state
            .get(IN_FLIGHT_STATE)
            .into_iter()
            .flatten()
        {
            restored.push(state::decode(&*setup.inputs, entry).map_err(|e| {
                RuntimeError::Restore {
                    operator: setup.uid.clone(),
                    reason: format!("an in-flight lookup input: {e}"),
                }
            })?);
        }
        let queue = match setup.options.order {
            OutputOrder::Ordered => Queue::ordered(),
            OutputOrder::Unordered => Queue::unordered(),
        };
        Ok(AsyncLookupOperator {
            uid: setup.uid,
            factory: setup.factory,
            function: None,
            key: setup.key,
            joiner: setup.joiner,
            inputs: setup.inputs,
            options: setup.options,
            subtask: setup.context.subtask,
            context: setup.context,
            queue,
            next_seq: 0,
            running: 0,
            requests: Vec::new(),
            driver: None,
            restored,
            ended: setup.restored.finished,
            metrics: Metrics {
                in_flight: setup.metrics.gauge(LOOKUPS_IN_FLIGHT),
                retries: setup.metrics.counter(NUM_LOOKUP_RETRIES),
                timeouts: setup.metrics.counter(NUM_LOOKUP_TIMEOUTS),
                restored: setup.metrics.counter(NUM_RESTORED_LOOKUPS),
            },
            scratch: Some(setup.scratch),
            out: Vec::new(),
            next,
        })
    }

    fn fail(&self, error: ConnectorError) -> RuntimeError {
        RuntimeError::connector(&self.uid, self.subtask, error)
    }

    /// Queues `record` and its lookup (sent to the driver with the next batch).
    fn issue(&mut self, record: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        match (self.key)(&record) {
            Some(key) => {
                self.running += 1;
                self.requests.push((seq, key));
                self.queue.push_record(seq, Pending::new(record, None));
            }
            None => self
                .queue
                .push_record(seq, Pending::new(record, Some(Vec::new()))),
        }
    }

    /// Sends the lookups issued since the last batch to the driver.
    fn send_requests(&mut self) -> Result<()> {
        if self.requests.is_empty() {
            return Ok(());
        }
        let driver = self.driver.as_ref().ok_or_else(|| {
            RuntimeError::Lost(format!("the lookup driver of {} (not opened)", self.uid))
        })?;
        driver
            .requests
            .send(std::mem::take(&mut self.requests))
            .map_err(|_| RuntimeError::Lost(format!("the lookup driver of {}", self.uid)))
    }

    fn apply(&mut self, seq: u64, outcome: Outcome<V>) -> Result<()> {
        self.running = self.running.saturating_sub(1);
        match outcome {
            Outcome::Rows(rows) => self.queue.complete(seq, rows),
            Outcome::Failed(error) => return Err(self.fail(error)),
            Outcome::TimedOut => {
                self.metrics.timeouts.inc();
                match self.options.on_timeout {
                    TimeoutAction::Fail => {
                        return Err(self.fail(ConnectorError::external(
                            "looking up a record's key",
                            ErrorClass::Retryable,
                            format!(
                                "no result within {:?} (the lookup timeout; raise it, or \
                                 take timeouts as empty results)",
                                self.options.timeout
                            ),
                        )));
                    }
                    TimeoutAction::EmptyResult => self.queue.complete(seq, Vec::new()),
                }
            }
        }
        Ok(())
    }

    fn apply_all(&mut self, results: Results<V>) -> Result<()> {
        for (seq, outcome) in results {
            self.apply(seq, outcome)?;
        }
        Ok(())
    }

    /// Applies every finished lookup, without waiting.
    fn collect_finished(&mut self) -> Result<()> {
        while let Some(results) = self.driver.as_mut().and_then(|d| d.results.try_recv().ok()) {
            self.apply_all(results)?;
        }
        Ok(())
    }

    /// Waits for lookups to finish (at least one) and applies them.
    async fn wait_for_one(&mut self) -> Result<()> {
        self.send_requests()?;
        let received = match self.driver.as_mut() {
            Some(driver) => driver.results.recv().await,
            None => None,
        };
        match received {
            Some(results) => self.apply_all(results),
            None => Err(RuntimeError::Lost(format!(
                "the lookup driver of {}",
                self.uid
            ))),
        }
    }

    /// Lets out every record and event that may leave.
    async fn emit(&mut self, cx: &mut TaskCx) -> Result<()> {
        while let Some(ready) = self.queue.pop_ready() {
            match ready {
                Ready::Record(input, rows) => {
                    self.joiner.emit(&input, &rows, &mut self.out);
                    if self.out.len() >= OUTPUT_BATCH {
                        self.next.push(&mut self.out, cx).await?;
                    }
                }
                Ready::Event(event) => {
                    self.flush_out(cx).await?;
                    self.next.event(event, cx).await?;
                }
            }
        }
        Ok(())
    }

    async fn flush_out(&mut self, cx: &mut TaskCx) -> Result<()> {
        if !self.out.is_empty() {
            self.next.push(&mut self.out, cx).await?;
        }
        Ok(())
    }

    /// Collects finished lookups and lets out what may leave, then waits until the queue has
    /// room for one more entry.
    async fn make_room(&mut self, cx: &mut TaskCx) -> Result<()> {
        self.collect_finished()?;
        self.emit(cx).await?;
        while self.queue.len() >= self.options.capacity.get() {
            self.wait_for_one().await?;
            self.emit(cx).await?;
        }
        Ok(())
    }

    /// Ends an operator call: new lookups go to the driver, what may leave goes on, the
    /// gauge is set.
    async fn settle(&mut self, cx: &mut TaskCx) -> Result<()> {
        self.send_requests()?;
        self.collect_finished()?;
        self.emit(cx).await?;
        self.flush_out(cx).await?;
        self.metrics
            .in_flight
            .set(i64::try_from(self.running).unwrap_or(i64::MAX));
        Ok(())
    }

    fn snapshot(&self, cx: &mut TaskCx) -> Result<()> {
        let mut values = Vec::with_capacity(self.queue.len());
        for input in self.queue.inputs() {
            values.push(state::encode(&*self.inputs, input).map_err(|e| self.fail(e.into()))?);
        }
        cx.add_state(&self.uid, IN_FLIGHT_STATE, values);
        cx.touch(&self.uid, self.ended);
        Ok(())
    }
}

/// The operator's ends of its lookup driver.
struct Driver<K, V> {
    requests: mpsc::UnboundedSender<Requests<K>>,
    results: mpsc::UnboundedReceiver<Results<V>>,
    task: JoinHandle<()>,
}

impl<K, V> Driver<K, V>
where
    K: Send + Sync + 'static,
    V: Send + 'static,
{
    fn start(
        function: Arc<dyn AsyncLookupFunction<K, V>>,
        options: AsyncLookupOptions,
        retries: Counter,
    ) -> Self {
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (results_tx, results) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(function, options, retries, requests_rx, results_tx));
        Driver {
            requests,
            results,
            task,
        }
    }
}

/// Runs the lookups of one subtask concurrently: takes batches of requests, sends back the
/// finished ones in batches (every one ready at the time), ends when the operator is gone.
async fn drive<K, V>(
    function: Arc<dyn AsyncLookupFunction<K, V>>,
    options: AsyncLookupOptions,
    retries: Counter,
    mut requests: mpsc::UnboundedReceiver<Requests<K>>,
    results: mpsc::UnboundedSender<Results<V>>,
) where
    K: Send + Sync + 'static,
    V: Send + 'static,
{
    let function = &*function;
    let retries = &retries;
    let mut running = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            batch = requests.recv(), if open => match batch {
                Some(batch) => {
                    for (seq, key) in batch {
                        running.push(async move {
                            (seq, look_up(function, &key, options, retries).await)
                        });
                    }
                }
                None => open = false,
            },
            Some(first) = running.next(), if !running.is_empty() => {
                let mut done = vec![first];
                while let Some(Some(more)) = running.next().now_or_never() {
                    done.push(more);
                }
                if results.send(done).is_err() {
                    return;
                }
            }
            else => return,
        }
    }
}

/// Looks `key` up, with the retries and the timeout of `options`.
async fn look_up<K: Send + Sync + 'static, V: Send + 'static>(
    function: &dyn AsyncLookupFunction<K, V>,
    key: &K,
    options: AsyncLookupOptions,
    retries: &Counter,
) -> Outcome<V> {
    let attempts = async {
        let mut attempt = 1_u32;
        loop {
            let result = function.lookup(key).await;
            if let RetryStrategy::FixedDelay {
                max_attempts,
                delay,
                when,
            } = options.retry
            {
                let retry = match (&result, when) {
                    (Ok(rows), RetryWhen::EmptyResult | RetryWhen::EmptyResultOrError) => {
                        rows.is_empty()
                    }
                    (Err(_), RetryWhen::Error | RetryWhen::EmptyResultOrError) => true,
                    _ => false,
                };
                if retry && attempt < max_attempts.get() {
                    attempt += 1;
                    retries.inc();
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            return match result {
                Ok(rows) => Outcome::Rows(rows),
                Err(error) => Outcome::Failed(error),
            };
        }
    };
    tokio::time::timeout(options.timeout, attempts)
        .await
        .unwrap_or(Outcome::TimedOut)
}

#[async_trait::async_trait]
impl<T, K, V, O> Output<T> for AsyncLookupOperator<T, K, V, O>
where
    T: Send + 'static,
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    O: Send + 'static,
{
    async fn open(&mut self, cx: &mut TaskCx) -> Result<()> {
        let mut function = (self.factory)().map_err(|e| self.fail(e))?;
        function
            .open(&*self.context)
            .await
            .map_err(|e| self.fail(e))?;
        let function: Arc<dyn AsyncLookupFunction<K, V>> = Arc::from(function);
        self.function = Some(Arc::clone(&function));
        self.driver = Some(Driver::start(
            function,
            self.options,
            self.metrics.retries.clone(),
        ));
        self.next.open(cx).await?;
        // Records in flight at the checkpoint, looked up again before any new record.
        for input in std::mem::take(&mut self.restored) {
            self.metrics.restored.inc();
            self.issue(input);
        }
        self.send_requests()
    }

    async fn push(&mut self, batch: &mut Vec<T>, cx: &mut TaskCx) -> Result<()> {
        for record in batch.drain(..) {
            if self.queue.len() >= self.options.capacity.get() {
                self.make_room(cx).await?;
            }
            self.issue(record);
        }
        self.settle(cx).await
    }

    async fn event(&mut self, event: Event, cx: &mut TaskCx) -> Result<()> {
        match event {
            Event::Watermark(_) | Event::Idle(_) => {
                self.collect_finished()?;
                self.emit(cx).await?;
                if self.queue.is_empty() {
                    self.flush_out(cx).await?;
                    self.next.event(event, cx).await?;
                } else {
                    // Behind the records before it.
                    if self.queue.len() >= self.options.capacity.get() {
                        self.make_room(cx).await?;
                    }
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.queue.push_event(seq, event);
                }
                self.settle(cx).await
            }
            Event::Barrier(_) => {
                self.settle(cx).await?;
                self.snapshot(cx)?;
                self.next.event(event, cx).await
            }
            Event::EndOfData => {
                self.collect_finished()?;
                self.emit(cx).await?;
                while !self.queue.is_empty() {
                    self.wait_for_one().await?;
                    self.emit(cx).await?;
                }
                self.settle(cx).await?;
                self.ended = true;
                self.next.event(event, cx).await
            }
        }
    }

    async fn notify(&mut self, n: Notification, cx: &mut TaskCx) -> Result<()> {
        self.next.notify(n, cx).await
    }

    async fn flush_buffers(&mut self) -> Result<()> {
        // Finished lookups leave on the linger tick too: a record does not wait for the next
        // batch. Only records and watermarks leave here, never a barrier.
        self.collect_finished()?;
        if let Some(mut scratch) = self.scratch.take() {
            let sent = self.emit(&mut scratch).await;
            let flushed = match sent {
                Ok(()) => self.flush_out(&mut scratch).await,
                Err(e) => Err(e),
            };
            self.scratch = Some(scratch);
            flushed?;
        }
        self.metrics
            .in_flight
            .set(i64::try_from(self.running).unwrap_or(i64::MAX));
        self.next.flush_buffers().await
    }

    async fn close(&mut self) -> Result<()> {
        if let Some(driver) = self.driver.take() {
            driver.task.abort();
            let _ = driver.task.await;
        }
        if let Some(mut function) = self.function.take() {
            match Arc::get_mut(&mut function) {
                Some(function) => {
                    if let Err(error) = function.close().await {
                        tracing::warn!("closing the lookup function of {}: {error}", self.uid);
                    }
                }
                None => tracing::debug!(
                    "the lookup function of {} is still shared; not closed",
                    self.uid
                ),
            }
        }
        self.next.close().await
    }
}

impl<T, K, V, O: Send + 'static> Drop for AsyncLookupOperator<T, K, V, O> {
    fn drop(&mut self) {
        // A failed or cancelled task drops its chain: its lookups stop with it.
        if let Some(driver) = &self.driver {
            driver.task.abort();
        }
    }
}
