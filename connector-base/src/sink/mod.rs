//! The AsyncSink (FLIP-171): a reusable sink writer for destinations with a batch API (bulk
//! indexing, `PutRecords`, `BatchWriteItem`).
//!
//! A connector supplies two small pieces and gets batching, bounded buffering with
//! backpressure, concurrency limits, AIMD congestion control, per-entry retries and
//! checkpointed buffers:
//!
//! | piece | trait | called |
//! |---|---|---|
//! | record → request entry | [`ElementConverter`] | per record, synchronously |
//! | batch → one request, an outcome per entry | [`RequestSubmitter`] | per batch, async |
//! | (optional) when to send | [`RateLimitingStrategy`] | per request |
//!
//! [`AsyncSinkWriter`] is the writer; [`AsyncSink`] wraps it into a complete stateful sink from
//! an [`AsyncSinkParts`] implementation. [`AsyncSinkConfig`] holds the settings (Flink's
//! `maxBatchSize`, `maxInFlightRequests`, `maxBufferedRequests`, `maxBatchSizeInBytes`,
//! `maxTimeInBufferMS`, `maxRecordSizeInBytes`, request timeout), plus a bounded
//! [`RetryPolicy`] and what a checkpoint flush sends ([`CheckpointFlush`]).
//!
//! Differences from Flink, on purpose: failures are classified per entry by an explicit
//! [`EntryOutcome`] (retryable / fatal) instead of an inverted boolean; retries are bounded
//! and back off (Flink retries forever, at once); `write` never blocks — backpressure is
//! [`poll_ready`](weir_connector_api::sink::SinkWriter::poll_ready).
//!
//! A complete sink that "indexes" lines into a shared in-memory store, run as a job:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use weir_connector_api::error::Result;
//! use weir_connector_api::sink::{InitContext, WriteContext};
//! use weir_connector_api::state::{StringSerializer, VersionedSerializer};
//! use weir_connector_api::watermark::WatermarkStrategy;
//! use weir_connector_base::sink::{
//!     AsyncSink, AsyncSinkConfig, AsyncSinkParts, EntryOutcome, RequestBatch, RequestSubmitter,
//! };
//! use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
//! use weir_runtime::{JobConfig, StreamEnvironment};
//!
//! type Store = Arc<Mutex<Vec<String>>>;
//!
//! /// Sends a batch of documents as one "bulk request" to the store.
//! struct BulkClient(Store);
//!
//! #[async_trait::async_trait]
//! impl RequestSubmitter<String> for BulkClient {
//!     fn entry_size(&self, doc: &String) -> u64 {
//!         doc.len() as u64
//!     }
//!     async fn submit(&self, batch: RequestBatch<String>) -> Result<Vec<EntryOutcome>> {
//!         let mut store = self.0.lock().unwrap_or_else(|e| e.into_inner());
//!         store.extend(batch.iter().cloned());
//!         Ok(vec![EntryOutcome::Delivered; batch.len()])
//!     }
//! }
//!
//! struct DocumentSink(Store);
//!
//! impl AsyncSinkParts<u64> for DocumentSink {
//!     type Entry = String;
//!     type Converter = fn(u64, &WriteContext) -> Result<String>;
//!     type Submitter = BulkClient;
//!
//!     fn create_converter(&self, _ctx: &dyn InitContext) -> Result<Self::Converter> {
//!         Ok(|n, _ctx| Ok(format!(r#"{{"id":{n}}}"#)))
//!     }
//!     fn create_submitter(&self, _ctx: &dyn InitContext) -> Result<BulkClient> {
//!         Ok(BulkClient(Arc::clone(&self.0)))
//!     }
//!     fn entry_serializer(&self) -> Arc<dyn VersionedSerializer<String>> {
//!         Arc::new(StringSerializer)
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = Store::default();
//! let config = AsyncSinkConfig::builder().max_batch_size(100).max_buffered_entries(1_000).build()?;
//! let env = StreamEnvironment::new(JobConfig::new("documents").parallelism(2));
//! env.from_source(
//!     DataGeneratorSource::new(|n| n, Some(1_000), RateLimiterStrategy::no_op()),
//!     WatermarkStrategy::no_watermarks(),
//!     "numbers",
//! )
//! .sink_to(AsyncSink::new(DocumentSink(Arc::clone(&store)), config));
//! let result = env.build().expect("a valid job").execute().await;
//! assert!(result.is_finished());
//! assert_eq!(store.lock().unwrap().len(), 1_000);
//! # Ok::<(), weir_connector_api::config::ConfigErrors>(())
//! # }).unwrap();
//! ```

mod async_sink;
mod config;
mod entry;
mod metrics;
mod rate_limit;
mod state;
mod writer;

pub use async_sink::{AsyncSink, AsyncSinkParts, AsyncSinkWriterOf};
pub use config::{
    keys, AsyncSinkConfig, AsyncSinkConfigBuilder, CheckpointFlush, RetryPolicy, TimeoutPolicy,
};
pub use entry::{ElementConverter, EntryOutcome, RequestBatch, RequestSubmitter};
pub use metrics::{
    AsyncSinkMetrics, BUFFERED_ENTRIES, CURRENT_MAX_IN_FLIGHT_ENTRIES, IN_FLIGHT_ENTRIES,
    IN_FLIGHT_REQUESTS,
};
pub use rate_limit::{
    AimdScaling, CongestionControlRateLimiting, RateDecision, RateLimiting, RateLimitingFactory,
    RateLimitingStrategy, RequestInfo, ResultInfo,
};
pub use state::{BufferedRequestState, BufferedRequestStateSerializer};
pub use writer::AsyncSinkWriter;
