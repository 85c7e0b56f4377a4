//! Connector metrics: the standard FLIP-33 names, lock-free handles and the [`MetricGroup`]
//! trait a runtime implements.
//!
//! A connector asks its group for handles once, when it starts, and updates them per record;
//! an update is a relaxed atomic operation. The typed views [`SourceReaderMetrics`] and
//! [`SinkWriterMetrics`] register the standard metrics under their standard names, so every
//! connector reports the same things the same way. [`InMemoryMetricGroup`] is a complete
//! in-memory registry for tests and for runtimes that export by polling.
//!
//! ```
//! use std::sync::Arc;
//! use weir_connector_api::metrics::{
//!     self, InMemoryMetricGroup, MetricGroup, MetricValue, SourceReaderMetrics,
//! };
//!
//! // The runtime creates the group; a connector only sees `&dyn MetricGroup`.
//! let runtime = InMemoryMetricGroup::new("orders-job.kafka-source.subtask-0");
//! let group: &dyn MetricGroup = &runtime;
//!
//! // Standard metrics through the typed view, registered once.
//! let reader = SourceReaderMetrics::new(group);
//! for record in [&b"a"[..], b"bc"] {
//!     reader.inc_records_in();
//!     reader.add_bytes_in(record.len() as u64);
//! }
//!
//! // Connector-specific metrics in a sub-group per split.
//! let split: Arc<dyn MetricGroup> = group.add_group("orders-3");
//! split.gauge("committedOffset").set(1041);
//!
//! let snapshot = runtime.snapshot();
//! let prefix = "orders-job.kafka-source.subtask-0";
//! assert_eq!(
//!     snapshot[&format!("{prefix}.{}", metrics::NUM_RECORDS_IN)],
//!     MetricValue::Counter(2)
//! );
//! assert_eq!(snapshot[&format!("{prefix}.numBytesIn")], MetricValue::Counter(3));
//! assert_eq!(
//!     snapshot[&format!("{prefix}.orders-3.committedOffset")],
//!     MetricValue::Gauge(1041)
//! );
//! ```

use std::sync::Arc;

mod handles;
mod in_memory;
mod names;
mod views;

#[cfg(test)]
mod tests;

pub use handles::{Counter, Gauge, Histogram, HistogramSnapshot};
pub use in_memory::{InMemoryMetricGroup, MetricValue};
pub use names::*;
pub use views::{SinkWriterMetrics, SourceReaderMetrics};

/// A named scope of metrics, implemented by the runtime and handed to connectors.
///
/// The contract:
///
/// - Asking twice for the same name and kind returns handles to the same metric, so independent
///   parts of a connector can share a counter by name.
/// - A name identifies one metric per group. Asking for another kind under a taken name (a gauge
///   named like an existing counter) returns a working handle that is not reported, as Flink
///   does; implementations should make such collisions visible (a log line, a list).
/// - Registration may lock and allocate: do it once, at setup. The returned handles are
///   lock-free and cheap to update from any thread.
/// - Metric and group names should not contain `.`, which separates scope components.
pub trait MetricGroup: Send + Sync {
    /// The counter `name` in this group, registering it on first use.
    fn counter(&self, name: &str) -> Counter;

    /// The gauge `name` in this group, registering it on first use.
    fn gauge(&self, name: &str) -> Gauge;

    /// The histogram `name` in this group, registering it on first use.
    fn histogram(&self, name: &str) -> Histogram;

    /// The sub-group `name` (e.g. one per split); asking twice for a name gives groups that share
    /// their metrics.
    fn add_group(&self, name: &str) -> Arc<dyn MetricGroup>;

    /// The dotted path of this group, e.g. `job.source.subtask-0`; metric `m` in it is reported
    /// as `<scope>.m`.
    fn scope(&self) -> String;
}

/// Joins a scope and a name with `.` as metric groups do (`scope` may be empty).
///
/// ```
/// use weir_connector_api::metrics::scoped_name;
///
/// assert_eq!(scoped_name("job.source", "numRecordsIn"), "job.source.numRecordsIn");
/// assert_eq!(scoped_name("", "numRecordsIn"), "numRecordsIn");
/// ```
pub fn scoped_name(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}
