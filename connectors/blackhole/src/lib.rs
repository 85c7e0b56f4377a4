//! # Weir blackhole connector
//!
//! A sink that discards every record and counts it, like Flink's `blackhole` connector: the end
//! of a pipeline whose output does not matter, for benchmarks (the runtime's overhead without an
//! external system) and tests (how many records arrived).
//!
//! - [`BlackholeSink<T>`](BlackholeSink) accepts any record type. It is stateless and has no
//!   committer: it declares no capability.
//! - Each writer reports `numRecordsSend`; all writers add to one shared counter,
//!   [`BlackholeSink::counter`], exact between batches, after a flush and after close (see
//!   [`BlackholeSink`]).
//! - [`config::options`] declares no option: pipeline files that pass any key are rejected.
//! - [`factory`] registers the `blackhole` connector of pipeline files.
//!
//! ## Example
//!
//! ```
//! use std::sync::atomic::Ordering;
//! use std::sync::Arc;
//! use weir_connector_api::checkpoint::CheckpointId;
//! use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup};
//! use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
//! use weir_connector_blackhole::BlackholeSink;
//!
//! # struct Ctx;
//! # impl InitContext for Ctx {
//! #     fn subtask_index(&self) -> usize { 0 }
//! #     fn parallelism(&self) -> usize { 1 }
//! #     fn attempt(&self) -> u32 { 0 }
//! #     fn restored_checkpoint_id(&self) -> Option<CheckpointId> { None }
//! #     fn metric_group(&self) -> Arc<dyn MetricGroup> { Arc::new(InMemoryMetricGroup::new("sink")) }
//! #     fn operator_id(&self) -> &str { "blackhole" }
//! # }
//! let sink = BlackholeSink::<String>::new();
//! let counter = sink.counter();
//!
//! // The runtime creates a writer per subtask (`Ctx` is its InitContext) and feeds it.
//! let mut writer = sink.create_writer(&Ctx)?;
//! for n in 0..3 {
//!     writer.write(format!("order-{n}"), &WriteContext::default())?;
//! }
//! futures::executor::block_on(writer.flush(FlushMode::EndOfInput))?;
//! assert_eq!(counter.load(Ordering::Relaxed), 3);
//! # Ok::<(), weir_connector_api::error::ConnectorError>(())
//! ```

pub mod config;
pub mod factory;
pub mod sink;

pub use config::options;
pub use sink::{BlackholeSink, BlackholeWriter};
