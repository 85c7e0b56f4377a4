//! The AsyncSink writer's metrics: Flink's standard sink metrics plus its in-flight and buffer
//! gauges.

use weir_connector_api::metrics::{Gauge, MetricGroup, SinkWriterMetrics};

/// Gauge: requests in flight (requests).
pub const IN_FLIGHT_REQUESTS: &str = "inFlightRequests";
/// Gauge: entries in requests in flight (entries).
pub const IN_FLIGHT_ENTRIES: &str = "inFlightEntries";
/// Gauge: entries waiting in the writer's buffer (entries).
pub const BUFFERED_ENTRIES: &str = "bufferedEntries";
/// Gauge: the rate-limiting strategy's current limit on entries in flight (entries), for
/// strategies that have one (the AIMD default does).
pub const CURRENT_MAX_IN_FLIGHT_ENTRIES: &str = "currentMaxInFlightEntries";

/// The metrics of one AsyncSink writer, registered once and updated per request.
///
/// - `numRecordsSend`, `numBytesSend`: entries (and their bytes) the destination acknowledged;
///   an entry sent three times before it was accepted counts once.
/// - `numRecordsSendErrors` (and the older `numRecordsOutErrors`): failed attempts, one per
///   entry per failed attempt, retryable or fatal.
/// - `currentSendTime`: milliseconds from sending the most recently completed request to its
///   answer.
/// - the gauges [`IN_FLIGHT_REQUESTS`], [`IN_FLIGHT_ENTRIES`], [`BUFFERED_ENTRIES`] and
///   [`CURRENT_MAX_IN_FLIGHT_ENTRIES`], updated whenever a request is sent or completes and
///   whenever the runtime asks the writer for readiness (not per record).
#[derive(Debug, Clone)]
pub struct AsyncSinkMetrics {
    pub(crate) sink: SinkWriterMetrics,
    pub(crate) in_flight_requests: Gauge,
    pub(crate) in_flight_entries: Gauge,
    pub(crate) buffered_entries: Gauge,
    pub(crate) max_in_flight_entries: Gauge,
}

impl AsyncSinkMetrics {
    /// Registers the metrics in `group` (the writer's group).
    pub fn new(group: &dyn MetricGroup) -> Self {
        AsyncSinkMetrics {
            sink: SinkWriterMetrics::new(group),
            in_flight_requests: group.gauge(IN_FLIGHT_REQUESTS),
            in_flight_entries: group.gauge(IN_FLIGHT_ENTRIES),
            buffered_entries: group.gauge(BUFFERED_ENTRIES),
            max_in_flight_entries: group.gauge(CURRENT_MAX_IN_FLIGHT_ENTRIES),
        }
    }

    /// The standard sink metrics (`numRecordsSend`, `numBytesSend`, `numRecordsSendErrors`,
    /// `currentSendTime`).
    pub fn sink(&self) -> &SinkWriterMetrics {
        &self.sink
    }

    /// The `inFlightRequests` gauge.
    pub fn in_flight_requests(&self) -> &Gauge {
        &self.in_flight_requests
    }

    /// The `inFlightEntries` gauge.
    pub fn in_flight_entries(&self) -> &Gauge {
        &self.in_flight_entries
    }

    /// The `bufferedEntries` gauge.
    pub fn buffered_entries(&self) -> &Gauge {
        &self.buffered_entries
    }

    /// The `currentMaxInFlightEntries` gauge.
    pub fn max_in_flight_entries(&self) -> &Gauge {
        &self.max_in_flight_entries
    }
}

/// Clamps a count into a gauge value.
pub(crate) fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
