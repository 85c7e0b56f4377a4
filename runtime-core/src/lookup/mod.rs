//! The lookup join (FLIP-221): every record of a stream is enriched with the rows a lookup
//! function finds for its key, through [`DataStream::lookup_join`](crate::DataStream::lookup_join).
//!
//! - **Synchronous** ([`LookupJoin::sync`]): a [`LookupFunction`] per subtask answers each key
//!   in turn, for fast local stores (a full cache, a map). Nothing is in flight at a barrier.
//! - **Asynchronous** ([`LookupJoin::asynchronous`]): an [`AsyncLookupFunction`] per subtask
//!   with up to [`AsyncLookupOptions::capacity`] lookups in flight (a full queue is
//!   backpressure); output in arrival order or as lookups finish ([`OutputOrder`]); a
//!   [timeout](AsyncLookupOptions::timeout) per record; FLIP-234 retries of empty results
//!   and/or errors ([`RetryStrategy`]). Like Flink's `AsyncWaitOperator`, a barrier snapshots
//!   the inputs of the records still queued and a restore looks them up again, so exactly-once
//!   holds across failures with lookups in flight. Watermarks never overtake records in
//!   ordered mode, and records never cross a watermark in unordered mode.
//! - [`JoinType::Inner`] drops records without rows; [`JoinType::LeftOuter`] emits them once
//!   with `None`.
//!
//! Caching (partial or full) is the lookup function's business: wrap it in the caching
//! functions of `weir-connector-base`'s `lookup` module.
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::Duration;
//! use weir_connector_api::error::Result;
//! use weir_connector_api::lookup::AsyncLookupFunction;
//! use weir_connector_api::state::U64Serializer;
//! use weir_connector_api::watermark::WatermarkStrategy;
//! use weir_connector_blackhole::BlackholeSink;
//! use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
//! use weir_runtime::lookup::{AsyncLookupOptions, JoinType, LookupJoin, OutputOrder};
//! use weir_runtime::{JobConfig, StreamEnvironment};
//!
//! /// Customer names by id (a stand-in for a remote table).
//! struct Customers;
//!
//! #[async_trait::async_trait]
//! impl AsyncLookupFunction<u64, String> for Customers {
//!     async fn lookup(&self, id: &u64) -> Result<Vec<String>> {
//!         Ok(if id % 2 == 0 { vec![format!("customer-{id}")] } else { vec![] })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! let env = StreamEnvironment::new(JobConfig::new("enrich"));
//! let sink = BlackholeSink::new();
//! let seen = sink.counter();
//! env.from_source(
//!     DataGeneratorSource::new(|n| n, Some(1_000), RateLimiterStrategy::no_op()),
//!     WatermarkStrategy::no_watermarks(),
//!     "orders",
//! )
//! .lookup_join(
//!     "customers",
//!     LookupJoin::asynchronous(
//!         |order: &u64| Some(*order % 10),
//!         || Ok(Box::new(Customers)),
//!         |order: &u64, name: Option<&String>| (*order, name.cloned()),
//!         U64Serializer,
//!         AsyncLookupOptions::default()
//!             .capacity(50)
//!             .order(OutputOrder::Unordered)
//!             .timeout(Duration::from_secs(5)),
//!     )
//!     .join_type(JoinType::LeftOuter),
//! )
//! .sink_to(sink);
//! assert!(env.build().expect("a valid job").execute().await.is_finished());
//! assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 1_000);
//! # }
//! ```

mod async_wait;
mod queue;
mod state;
mod sync;

use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use weir_connector_api::error::Result as ConnectorResult;
use weir_connector_api::lookup::{AsyncLookupFunction, LookupContext, LookupFunction};
use weir_connector_api::metrics::MetricGroup;
use weir_connector_api::state::VersionedSerializer;

use crate::error::Result;
use crate::operator::BoxOutput;
use crate::plan::SubtaskSetup;

/// Gauge: lookups running in this subtask.
pub const LOOKUPS_IN_FLIGHT: &str = "lookupsInFlight";
/// Counter: lookups started again by the retry strategy.
pub const NUM_LOOKUP_RETRIES: &str = "numLookupRetries";
/// Counter: records whose lookups timed out.
pub const NUM_LOOKUP_TIMEOUTS: &str = "numLookupTimeouts";
/// Counter: in-flight records restored from a checkpoint and looked up again.
pub const NUM_RESTORED_LOOKUPS: &str = "numRestoredLookups";

/// Which records leave the join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JoinType {
    /// One output per row found; a record without rows is dropped.
    #[default]
    Inner,
    /// One output per row found; a record without rows leaves once, joined with `None`.
    LeftOuter,
}

/// In which order an asynchronous join emits (Flink's `orderedWait` / `unorderedWait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputOrder {
    /// In arrival order: a finished lookup waits for the ones before it.
    #[default]
    Ordered,
    /// As lookups finish, but never across a watermark (or idleness change): lower latency,
    /// same event-time semantics.
    Unordered,
}

/// What a retry is for (FLIP-234's `ifResult(EMPTY_RESULT)` / `ifException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryWhen {
    /// An empty result (the row may not be there yet).
    EmptyResult,
    /// A failed lookup.
    Error,
    /// Either.
    EmptyResultOrError,
}

/// Whether and how a lookup is tried again (FLIP-234).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryStrategy {
    /// One attempt: an error fails the job, an empty result is final.
    #[default]
    NoRetry,
    /// Up to `max_attempts` attempts in all, `delay` apart. After the last, an empty result is
    /// final and an error fails the job.
    FixedDelay {
        /// Attempts in all, the first included.
        max_attempts: NonZeroU32,
        /// Time between two attempts.
        delay: Duration,
        /// What is retried.
        when: RetryWhen,
    },
}

/// What a timed-out lookup does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeoutAction {
    /// Fail the job (Flink's default `timeout` handler); it restarts from its last checkpoint.
    #[default]
    Fail,
    /// Take the result as empty: the record is dropped (inner join) or joined with `None`
    /// (left outer join). Counted in `numLookupTimeouts`.
    EmptyResult,
}

/// The settings of an asynchronous lookup join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncLookupOptions {
    capacity: NonZeroUsize,
    order: OutputOrder,
    timeout: Duration,
    on_timeout: TimeoutAction,
    retry: RetryStrategy,
}

impl Default for AsyncLookupOptions {
    /// 100 in flight, ordered, a 3 minute timeout that fails the job, no retries (Flink's
    /// `table.exec.async-lookup.*` defaults).
    fn default() -> Self {
        AsyncLookupOptions {
            capacity: NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN),
            order: OutputOrder::Ordered,
            timeout: Duration::from_secs(180),
            on_timeout: TimeoutAction::Fail,
            retry: RetryStrategy::NoRetry,
        }
    }
}

impl AsyncLookupOptions {
    /// At most `capacity` records (and watermarks) queued per subtask, at least 1.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        self
    }

    /// The output order.
    #[must_use]
    pub fn order(mut self, order: OutputOrder) -> Self {
        self.order = order;
        self
    }

    /// How long a record's lookup may take, retries included.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What a timeout does.
    #[must_use]
    pub fn on_timeout(mut self, action: TimeoutAction) -> Self {
        self.on_timeout = action;
        self
    }

    /// The retry strategy.
    #[must_use]
    pub fn retry(mut self, retry: RetryStrategy) -> Self {
        self.retry = retry;
        self
    }
}

/// The key of a record, or `None` for no lookup (no rows: e.g. a null key).
pub type KeyFn<T, K> = Arc<dyn Fn(&T) -> Option<K> + Send + Sync>;
/// One output of a record and a row (`None`: a left outer join's record without rows).
pub type JoinFn<T, V, O> = Arc<dyn Fn(&T, Option<&V>) -> O + Send + Sync>;
/// Makes a subtask's synchronous lookup function.
pub type SyncFactory<K, V> =
    Arc<dyn Fn() -> ConnectorResult<Box<dyn LookupFunction<K, V>>> + Send + Sync>;
/// Makes a subtask's asynchronous lookup function.
pub type AsyncFactory<K, V> =
    Arc<dyn Fn() -> ConnectorResult<Box<dyn AsyncLookupFunction<K, V>>> + Send + Sync>;

enum Mode<T, K, V> {
    Sync(SyncFactory<K, V>),
    Async {
        factory: AsyncFactory<K, V>,
        inputs: Arc<dyn VersionedSerializer<T>>,
        options: AsyncLookupOptions,
    },
}

/// A lookup join, for [`DataStream::lookup_join`](crate::DataStream::lookup_join): how to key a
/// record, the lookup function, how a record and a row become an output, and the join type.
pub struct LookupJoin<T, K, V, O> {
    key: KeyFn<T, K>,
    join: JoinFn<T, V, O>,
    join_type: JoinType,
    mode: Mode<T, K, V>,
}

impl<T, K, V, O> fmt::Debug for LookupJoin<T, K, V, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.mode {
            Mode::Sync(_) => "sync".to_owned(),
            Mode::Async { options, .. } => format!("async {options:?}"),
        };
        f.debug_struct("LookupJoin")
            .field("join_type", &self.join_type)
            .field("mode", &mode)
            .finish_non_exhaustive()
    }
}

impl<T, K, V, O> LookupJoin<T, K, V, O>
where
    T: Send + 'static,
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    O: Send + 'static,
{
    /// A join over a synchronous function; `function` makes one per subtask (per attempt).
    pub fn sync(
        key: impl Fn(&T) -> Option<K> + Send + Sync + 'static,
        function: impl Fn() -> ConnectorResult<Box<dyn LookupFunction<K, V>>> + Send + Sync + 'static,
        join: impl Fn(&T, Option<&V>) -> O + Send + Sync + 'static,
    ) -> Self {
        LookupJoin {
            key: Arc::new(key),
            join: Arc::new(join),
            join_type: JoinType::Inner,
            mode: Mode::Sync(Arc::new(function)),
        }
    }

    /// A join over an asynchronous function; `function` makes one per subtask (per attempt),
    /// `inputs` serializes the records in flight at a checkpoint.
    pub fn asynchronous(
        key: impl Fn(&T) -> Option<K> + Send + Sync + 'static,
        function: impl Fn() -> ConnectorResult<Box<dyn AsyncLookupFunction<K, V>>>
            + Send
            + Sync
            + 'static,
        join: impl Fn(&T, Option<&V>) -> O + Send + Sync + 'static,
        inputs: impl VersionedSerializer<T> + 'static,
        options: AsyncLookupOptions,
    ) -> Self {
        LookupJoin {
            key: Arc::new(key),
            join: Arc::new(join),
            join_type: JoinType::Inner,
            mode: Mode::Async {
                factory: Arc::new(function),
                inputs: Arc::new(inputs),
                options,
            },
        }
    }

    /// The join type (default [`JoinType::Inner`]).
    #[must_use]
    pub fn join_type(mut self, join_type: JoinType) -> Self {
        self.join_type = join_type;
        self
    }

    /// The operator of one subtask.
    pub(crate) fn operator(
        &self,
        uid: &str,
        setup: &mut SubtaskSetup<'_>,
        next: BoxOutput<O>,
    ) -> Result<BoxOutput<T>> {
        let metrics = Arc::new(setup.operator_metrics(uid));
        let context = Arc::new(RuntimeLookupContext {
            subtask: setup.key.subtask,
            metrics: Arc::clone(&metrics) as Arc<dyn MetricGroup>,
        });
        let joiner = Joiner {
            join: Arc::clone(&self.join),
            join_type: self.join_type,
        };
        let restored = setup.restored(uid);
        Ok(match &self.mode {
            Mode::Sync(factory) => Box::new(sync::SyncLookupOperator::new(
                uid,
                Arc::clone(factory),
                Arc::clone(&self.key),
                joiner,
                context,
                next,
            )),
            Mode::Async {
                factory,
                inputs,
                options,
            } => Box::new(async_wait::AsyncLookupOperator::new(
                async_wait::Setup {
                    uid: uid.to_owned(),
                    factory: Arc::clone(factory),
                    key: Arc::clone(&self.key),
                    joiner,
                    inputs: Arc::clone(inputs),
                    options: *options,
                    context,
                    metrics: &metrics,
                    restored: &restored,
                    scratch: setup.cx(),
                },
                next,
            )?),
        })
    }
}

/// Turns a record and its rows into outputs, as the join type says.
pub(crate) struct Joiner<T, V, O> {
    join: JoinFn<T, V, O>,
    join_type: JoinType,
}

impl<T, V, O> Joiner<T, V, O> {
    pub(crate) fn emit(&self, input: &T, rows: &[V], out: &mut Vec<O>) {
        if rows.is_empty() {
            if self.join_type == JoinType::LeftOuter {
                out.push((self.join)(input, None));
            }
            return;
        }
        out.extend(rows.iter().map(|row| (self.join)(input, Some(row))));
    }
}

/// The runtime's [`LookupContext`].
pub(crate) struct RuntimeLookupContext {
    subtask: usize,
    metrics: Arc<dyn MetricGroup>,
}

impl LookupContext for RuntimeLookupContext {
    fn subtask_index(&self) -> usize {
        self.subtask
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::clone(&self.metrics)
    }
}
