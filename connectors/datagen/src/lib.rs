//! # Weir datagen connector
//!
//! A source that generates records from a function of a sequence number: Flink's
//! `DataGeneratorSource` (FLIP-238). For tests, demos and benchmarks.
//!
//! - [`DataGeneratorSource::new(generator, count, rate)`](DataGeneratorSource::new) emits
//!   `generator(n)` for every `n` in `0..count` exactly once; with `count = None` it runs forever.
//! - The numbers are cut into one [`NumberSequenceSplit`] per reader: contiguous ranges when
//!   bounded, interleaved sequences (`i, i + p, i + 2p, …`) when unbounded. Split state is the
//!   next number to emit, so a restore resumes with no gap and no duplicate.
//! - [`RateLimiterStrategy`]: per second (divided over the readers), per checkpoint, or none.
//!   [`RateLimitedSourceReader`] wraps any reader and forwards every method. Both live in
//!   `weir_connector_base::source` (re-exported here, since [`DataGeneratorSource::new`] takes a
//!   strategy); the base crate's docs say how the wrapper signals availability.
//! - The reader can pause and resume splits (split-level watermark alignment) and counts
//!   `numRecordsIn`.
//! - [`config::options`] declares the options of pipeline files (`number-of-rows`,
//!   `rows-per-second`, `rows-per-checkpoint`); [`factory`] registers the `datagen` connector
//!   of pipeline files, which generates rows of a schema (sequences and seeded random values
//!   per field).
//!
//! ## Guarantees
//!
//! Exactly once: every number is emitted once across all readers, also across failures and
//! restores from checkpoints (the enumerator's state holds the unassigned splits, the readers'
//! state the progress of theirs). Within a split, numbers come in ascending order.
//!
//! ## Example
//!
//! A bounded source of 5 strings read by one reader, driven by hand (a runtime does this for a
//! job: it registers readers, routes split requests to the enumerator and assignments back):
//!
//! ```
//! use std::collections::VecDeque;
//! use std::convert::Infallible;
//! use std::sync::{Arc, Mutex};
//! use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup};
//! use weir_connector_api::source::*;
//! use weir_connector_datagen::{DataGeneratorSource, NumberSequenceSplit, RateLimiterStrategy};
//!
//! # #[derive(Default)]
//! # struct Inbox { requests: Mutex<usize>, assigned: Mutex<VecDeque<NumberSequenceSplit>>, done: Mutex<bool> }
//! # struct ReaderCtx(Arc<Inbox>);
//! # impl SourceReaderContext for ReaderCtx {
//! #     fn subtask_index(&self) -> usize { 0 }
//! #     fn parallelism(&self) -> usize { 1 }
//! #     fn metric_group(&self) -> Arc<dyn MetricGroup> { Arc::new(InMemoryMetricGroup::new("datagen")) }
//! #     fn send_split_request(&self) -> weir_connector_api::error::Result<()> { *self.0.requests.lock().unwrap() += 1; Ok(()) }
//! #     fn send_source_event(&self, _: SourceEvent) -> weir_connector_api::error::Result<()> { Ok(()) }
//! #     fn spawn(&self, _: &str, _: futures::future::BoxFuture<'static, ()>) {}
//! # }
//! # struct EnumCtx(Arc<Inbox>);
//! # impl SplitEnumeratorContext<NumberSequenceSplit, Infallible> for EnumCtx {
//! #     fn metric_group(&self) -> Arc<dyn MetricGroup> { Arc::new(InMemoryMetricGroup::new("enum")) }
//! #     fn current_parallelism(&self) -> usize { 1 }
//! #     fn registered_readers(&self) -> Vec<usize> { vec![0] }
//! #     fn assign_splits(&self, a: SplitsAssignment<NumberSequenceSplit>) -> weir_connector_api::error::Result<()> {
//! #         self.0.assigned.lock().unwrap().extend(a.assignment.into_values().flatten()); Ok(())
//! #     }
//! #     fn signal_no_more_splits(&self, _: usize) -> weir_connector_api::error::Result<()> { *self.0.done.lock().unwrap() = true; Ok(()) }
//! #     fn send_event_to_reader(&self, _: usize, _: SourceEvent) -> weir_connector_api::error::Result<()> { Ok(()) }
//! #     fn call_async(&self, _: futures::future::BoxFuture<'static, Infallible>) {}
//! #     fn call_async_periodic(&self, _: Box<dyn FnMut() -> futures::future::BoxFuture<'static, Infallible> + Send>, _: std::time::Duration, _: std::time::Duration) {}
//! # }
//! let source = DataGeneratorSource::new(|n| format!("order-{n}"), Some(5), RateLimiterStrategy::no_op());
//! assert_eq!(source.boundedness(), Boundedness::Bounded);
//!
//! // The runtime's contexts (implemented in hidden lines: they record requests and assignments).
//! let inbox = Arc::new(Inbox::default());
//! let mut enumerator = source.create_enumerator(Box::new(EnumCtx(inbox.clone())))?;
//! let mut reader = source.create_reader(Arc::new(ReaderCtx(inbox.clone())))?;
//!
//! reader.start()?;
//! let mut output = CollectingOutput::new();
//! loop {
//!     // Route split requests and assignments between reader and enumerator.
//!     while std::mem::take(&mut *inbox.requests.lock().unwrap()) > 0 {
//!         enumerator.handle_split_request(0)?;
//!     }
//!     let splits: Vec<_> = inbox.assigned.lock().unwrap().drain(..).collect();
//!     if !splits.is_empty() {
//!         reader.add_splits(splits)?;
//!     }
//!     if std::mem::take(&mut *inbox.done.lock().unwrap()) {
//!         reader.notify_no_more_splits();
//!     }
//!     if reader.poll_next(&mut output)? == InputStatus::EndOfInput {
//!         break;
//!     }
//! }
//! let records: Vec<&String> = output.records().map(|(_split, r)| r).collect();
//! assert_eq!(records, ["order-0", "order-1", "order-2", "order-3", "order-4"]);
//! # Ok::<(), weir_connector_api::error::ConnectorError>(())
//! ```

pub mod config;
pub mod factory;
pub mod source;

pub use config::{options, DatagenOptions};
pub use source::{
    DataGeneratorSource, NumberSequenceSplit, NumberSequenceSplitSerializer,
    RateLimitedSourceReader, RateLimiterStrategy, SequenceEnumerator, SequenceReader,
};
