//! The bulk sink: [`ElasticsearchSink`] on the AsyncSink base.
//!
//! Records become [`BulkAction`]s through an [`Emitter`] (for pipelines: [`RowEmitter`](crate::RowEmitter),
//! which maps changelog rows to upserts and deletes), or through a [`BatchEmitter`] that makes
//! several actions of one record (the columnar sink's `ChunkEmitter`: one per row of a chunk);
//! the base's
//! [`AsyncSinkWriter`] batches them by actions,
//! bytes and time, sends `_bulk` requests with bounded concurrency under AIMD congestion
//! control, and keeps what is not acknowledged in checkpoints.
//!
//! Every item of a bulk answer is classified on its own:
//!
//! | item answer | outcome |
//! |---|---|
//! | 2xx; 404 of a `delete`; 409 of a `create` (the document exists: a replay) | delivered |
//! | 429, 502, 503, 504; 409 of an `update` / `upsert` (a concurrent change) | sent again alone, after a backoff, within the retry limit; the AIMD limit shrinks |
//! | anything else (400 mapping errors, 404 of an `update`, 403) | the [`FailurePolicy`]: fail the job (default), skip and count, or dead-letter |
//!
//! A whole request that fails without an answer (server down, timeout) or with 408/429/5xx is
//! retried with every action in it; 401/403/413 and other 4xx fail the job with a message that
//! says what to change. Nothing buffered is lost: a failed job restarts from its last
//! checkpoint, which holds every action not yet acknowledged, and sends them again.
//!
//! **Delivery**: at-least-once. With document ids (and `index`, `upsert` or `delete` actions)
//! a replay overwrites what it wrote before, so the index ends as if every record had been
//! written once: the *effect* is exactly-once. Without ids (Elasticsearch generates them) a
//! replay may add duplicates.

mod action;
mod failure;
mod state;
mod submitter;
mod writer;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::NUM_RECORDS_IN;
use weir_connector_api::sink::{
    InitContext, Sink, SinkCapabilities, SupportsWriterState, WriteContext, WriterStateOf,
};
use weir_connector_api::state::VersionedSerializer;
use weir_connector_base::sink::{
    AsyncSinkConfig, AsyncSinkWriter, BufferedRequestState, BufferedRequestStateSerializer,
    RetryPolicy,
};

pub(crate) use action::write_json_string;
pub use action::{ActionError, ActionKind, BulkAction};
pub use failure::{DeadLetterSink, FailedAction, FailurePolicy};
pub use state::BulkActionSerializer;
pub use submitter::{
    NUM_CREATE_CONFLICTS, NUM_RECORDS_DEAD_LETTERED, NUM_RECORDS_RETRIED, NUM_RECORDS_SKIPPED,
};
pub use writer::{ActionOut, ElasticsearchWriter, PassThrough, NUM_RECORDS_WITHOUT_ACTION};

use crate::client::ConnectionConfig;
use submitter::{BulkSubmitter, SinkCounters};

/// When written documents become visible to searches (`sink.refresh`, the bulk API's
/// `refresh` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RefreshPolicy {
    /// On the index's own refresh schedule (fastest; the default).
    #[default]
    None,
    /// Refresh the affected shards after every request (slow; tests and demos).
    Immediate,
    /// Answer each request once a refresh has made its documents visible.
    WaitFor,
}

impl RefreshPolicy {
    pub(crate) fn query_value(self) -> Option<&'static str> {
        match self {
            RefreshPolicy::None => None,
            RefreshPolicy::Immediate => Some("true"),
            RefreshPolicy::WaitFor => Some("wait_for"),
        }
    }
}

/// Turns a record into the bulk action that writes it, or into none (a record to leave out,
/// like the `-U` row of a changelog update).
///
/// Called for every record, synchronously: serialize the document and nothing more. An error
/// fails the writer; return a [`ConnectorError::Malformed`] that names the record.
///
/// Any `FnMut(T, &WriteContext) -> Result<Option<BulkAction>>` closure is an emitter:
///
/// ```
/// use weir_connector_api::error::{ConnectorError, Result};
/// use weir_connector_api::sink::WriteContext;
/// use weir_connector_elasticsearch::sink::{BulkAction, Emitter};
///
/// let mut emitter = |(id, amount): (u64, f64), _ctx: &WriteContext| -> Result<Option<BulkAction>> {
///     let document = format!(r#"{{"id":{id},"amount":{amount}}}"#).into_bytes();
///     BulkAction::index("orders", Some(id.to_string()), document)
///         .map(Some)
///         .map_err(|e| ConnectorError::malformed(format!("order {id}"), e.to_string()))
/// };
/// let action = emitter.emit((7, 2.5), &WriteContext::default())?.expect("an action");
/// assert_eq!(action.id(), Some("7"));
/// # Ok::<(), ConnectorError>(())
/// ```
pub trait Emitter<T>: Send + 'static {
    /// The action for `element`, if any.
    fn emit(&mut self, element: T, ctx: &WriteContext) -> Result<Option<BulkAction>>;
}

impl<T, F> Emitter<T> for F
where
    F: FnMut(T, &WriteContext) -> Result<Option<BulkAction>> + Send + 'static,
{
    #[inline]
    fn emit(&mut self, element: T, ctx: &WriteContext) -> Result<Option<BulkAction>> {
        self(element, ctx)
    }
}

/// Turns one input into any number of bulk actions, appended to `out` in order: the part of
/// the sink that is pluggable. Every [`Emitter`] is one (an input makes one action or none);
/// the columnar pipeline sink's emitter makes one action per row of a chunk.
///
/// The writer is the same for every emitter: the actions go into one AsyncSink buffer and
/// one checkpoint state of [`BulkAction`]s, so a checkpoint taken with one emitter restores
/// with another. An input's actions are appended at once, so the buffer may pass
/// `sink.requests.max-buffered` by one input's actions before the writer waits.
pub trait BatchEmitter<T>: Send + 'static {
    /// Appends the actions of `element` to `out` (and [`ActionOut::skip`]s an input that
    /// makes none). An error fails the writer; return a [`ConnectorError::Malformed`] that
    /// names the record.
    fn emit_into(&mut self, element: T, ctx: &WriteContext, out: &mut ActionOut<'_>) -> Result<()>;

    /// How many rows `element` stands for: the writer counts them in `numRecordsIn` (the
    /// runtime counts one per element). One, unless an element holds many (a chunk).
    fn rows_in(&self, _element: &T) -> u64 {
        1
    }
}

impl<T, E: Emitter<T>> BatchEmitter<T> for E {
    #[inline]
    fn emit_into(&mut self, element: T, ctx: &WriteContext, out: &mut ActionOut<'_>) -> Result<()> {
        match self.emit(element, ctx)? {
            Some(action) => out.push(action, ctx),
            None => {
                out.skip();
                Ok(())
            }
        }
    }
}

/// The AsyncSink settings the sink uses unless told otherwise (`sink.*` options), chosen by
/// the measurements in `BENCHMARKS.md`: batches of 1000 actions or 5 MiB, a batch waits at
/// most 1 s, 4 requests in flight, 10 000 buffered actions, and retries from 100 ms doubling
/// to 10 s, 10 times.
pub fn default_async_sink_config() -> AsyncSinkConfig {
    AsyncSinkConfig::builder()
        .max_batch_size(1000)
        .max_batch_size_bytes(5 * 1024 * 1024)
        .max_record_size_bytes(5 * 1024 * 1024)
        .max_time_in_buffer(Duration::from_secs(1))
        .max_in_flight_requests(4)
        .max_buffered_entries(10_000)
        .retry(RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        })
        .build()
        .unwrap_or_default()
}

/// A sink that writes records into Elasticsearch (or OpenSearch) with bulk requests.
///
/// Build it with [`ElasticsearchSink::builder`]. Each writer (subtask) has its own client; the
/// builder checks the connection settings but contacts nothing.
///
/// ```no_run
/// use std::time::Duration;
/// use weir_connector_api::error::{ConnectorError, Result};
/// use weir_connector_api::sink::WriteContext;
/// use weir_connector_api::watermark::WatermarkStrategy;
/// use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
/// use weir_connector_elasticsearch::sink::{BulkAction, ElasticsearchSink, RefreshPolicy};
/// use weir_connector_elasticsearch::ConnectionConfig;
/// use weir_runtime::{CheckpointConfig, JobConfig, StreamEnvironment};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sink = ElasticsearchSink::builder(
///     ConnectionConfig::new(["http://localhost:9200"]),
///     |n: u64, _ctx: &WriteContext| -> Result<Option<BulkAction>> {
///         let document = format!(r#"{{"n":{n}}}"#).into_bytes();
///         BulkAction::index("numbers", Some(n.to_string()), document)
///             .map(Some)
///             .map_err(|e| ConnectorError::malformed(format!("number {n}"), e.to_string()))
///     },
/// )
/// .refresh(RefreshPolicy::None)
/// .build()?;
/// let env = StreamEnvironment::new(
///     JobConfig::new("numbers").checkpointing(CheckpointConfig::every(Duration::from_secs(1))),
/// );
/// env.from_source(
///     DataGeneratorSource::new(|n| n, Some(10_000), RateLimiterStrategy::no_op()),
///     WatermarkStrategy::no_watermarks(),
///     "numbers",
/// )
/// .sink_to(sink);
/// env.build()?.execute().await;
/// # Ok(()) }
/// ```
pub struct ElasticsearchSink<T, E> {
    connection: ConnectionConfig,
    emitter: E,
    refresh: RefreshPolicy,
    policy: FailurePolicy,
    config: AsyncSinkConfig,
    _records: PhantomData<fn(T)>,
}

impl<T, E> fmt::Debug for ElasticsearchSink<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElasticsearchSink")
            .field("connection", &self.connection)
            .field("refresh", &self.refresh)
            .field("policy", &self.policy)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<T, E> ElasticsearchSink<T, E>
where
    T: Send + 'static,
    E: BatchEmitter<T> + Clone + Sync,
{
    /// A builder: where to write, and how records become actions.
    pub fn builder(connection: ConnectionConfig, emitter: E) -> ElasticsearchSinkBuilder<T, E> {
        ElasticsearchSinkBuilder {
            sink: ElasticsearchSink {
                connection,
                emitter,
                refresh: RefreshPolicy::None,
                policy: FailurePolicy::Fail,
                config: default_async_sink_config(),
                _records: PhantomData,
            },
        }
    }

    /// The connection settings.
    pub fn connection(&self) -> &ConnectionConfig {
        &self.connection
    }

    /// The AsyncSink settings.
    pub fn async_sink_config(&self) -> &AsyncSinkConfig {
        &self.config
    }

    /// The failure policy.
    pub fn failure_policy(&self) -> &FailurePolicy {
        &self.policy
    }

    fn base_writer(
        &self,
        ctx: &dyn InitContext,
        states: Vec<BufferedRequestState<BulkAction>>,
    ) -> Result<ElasticsearchWriter<T, E>> {
        let group = ctx.metric_group();
        let submitter = BulkSubmitter::new(
            self.connection.client()?,
            Arc::from(self.connection.describe_hosts()),
            self.connection.credentials().clone(),
            self.refresh,
            self.policy.clone(),
            SinkCounters::new(&*group),
        );
        let inner =
            AsyncSinkWriter::restore(ctx, PassThrough, submitter, self.config.clone(), states)?;
        Ok(ElasticsearchWriter::new(
            self.emitter.clone(),
            inner,
            group.counter(NUM_RECORDS_WITHOUT_ACTION),
            group.counter(NUM_RECORDS_IN),
        ))
    }
}

/// Builds an [`ElasticsearchSink`].
#[must_use]
pub struct ElasticsearchSinkBuilder<T, E> {
    sink: ElasticsearchSink<T, E>,
}

impl<T, E> fmt::Debug for ElasticsearchSinkBuilder<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ElasticsearchSinkBuilder")
            .field(&self.sink)
            .finish()
    }
}

impl<T, E> ElasticsearchSinkBuilder<T, E>
where
    T: Send + 'static,
    E: BatchEmitter<T> + Clone + Sync,
{
    /// When documents become visible to searches (default [`RefreshPolicy::None`]).
    pub fn refresh(mut self, refresh: RefreshPolicy) -> Self {
        self.sink.refresh = refresh;
        self
    }

    /// What happens to actions the cluster refuses for good (default [`FailurePolicy::Fail`]).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.sink.policy = policy;
        self
    }

    /// Batching, buffering, concurrency, retries and rate limiting (default
    /// [`default_async_sink_config`]).
    pub fn async_sink_config(mut self, config: AsyncSinkConfig) -> Self {
        self.sink.config = config;
        self
    }

    /// The sink; fails when the connection settings are invalid (it builds a client to check
    /// them, and contacts nothing).
    pub fn build(self) -> Result<ElasticsearchSink<T, E>> {
        if let FailurePolicy::DeadLetterIndex(index) = &self.sink.policy {
            if index.is_empty() {
                return Err(ConnectorError::fatal(
                    "building the Elasticsearch sink",
                    "the dead-letter index name is empty",
                ));
            }
        }
        self.sink.connection.client()?;
        Ok(self.sink)
    }
}

impl<T, E> Sink<T> for ElasticsearchSink<T, E>
where
    T: Send + 'static,
    E: BatchEmitter<T> + Clone + Sync,
{
    type Writer = ElasticsearchWriter<T, E>;

    fn create_writer(&self, ctx: &dyn InitContext) -> Result<Self::Writer> {
        self.base_writer(ctx, Vec::new())
    }

    fn capabilities(self: Arc<Self>) -> SinkCapabilities<T, Self::Writer> {
        SinkCapabilities::none().with_writer_state(self)
    }
}

impl<T, E> SupportsWriterState<T> for ElasticsearchSink<T, E>
where
    T: Send + 'static,
    E: BatchEmitter<T> + Clone + Sync,
{
    fn restore_writer(
        &self,
        ctx: &dyn InitContext,
        states: Vec<BufferedRequestState<BulkAction>>,
    ) -> Result<Self::Writer> {
        self.base_writer(ctx, states)
    }

    fn writer_state_serializer(&self) -> Arc<dyn VersionedSerializer<WriterStateOf<T, Self>>> {
        Arc::new(BufferedRequestStateSerializer::new(Arc::new(
            BulkActionSerializer,
        )))
    }
}
