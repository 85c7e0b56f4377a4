//! Typed views of the standard metrics of a source reader and a sink writer.

use super::names::{
    CURRENT_EMIT_EVENT_TIME_LAG, CURRENT_SEND_TIME, NUM_BYTES_IN, NUM_BYTES_SEND, NUM_RECORDS_IN,
    NUM_RECORDS_IN_ERRORS, NUM_RECORDS_OUT_ERRORS, NUM_RECORDS_SEND, NUM_RECORDS_SEND_ERRORS,
    PENDING_RECORDS,
};
use super::{Counter, Gauge, MetricGroup};

/// The standard metrics of a source reader, registered once and updated per record.
///
/// Every update is one relaxed atomic operation. Clones share the same metrics.
#[derive(Debug, Clone)]
pub struct SourceReaderMetrics {
    num_records_in: Counter,
    num_bytes_in: Counter,
    num_records_in_errors: Counter,
    pending_records: Gauge,
    current_emit_event_time_lag: Gauge,
}

impl SourceReaderMetrics {
    /// Registers the standard source metrics in `group` (typically the reader's group).
    pub fn new(group: &dyn MetricGroup) -> Self {
        SourceReaderMetrics {
            num_records_in: group.counter(NUM_RECORDS_IN),
            num_bytes_in: group.counter(NUM_BYTES_IN),
            num_records_in_errors: group.counter(NUM_RECORDS_IN_ERRORS),
            pending_records: group.gauge(PENDING_RECORDS),
            current_emit_event_time_lag: group.gauge(CURRENT_EMIT_EVENT_TIME_LAG),
        }
    }

    /// Counts one record emitted downstream.
    #[inline]
    pub fn inc_records_in(&self) {
        self.num_records_in.inc();
    }

    /// Counts `n` records emitted downstream.
    #[inline]
    pub fn add_records_in(&self, n: u64) {
        self.num_records_in.add(n);
    }

    /// Counts `n` bytes read from the external system.
    #[inline]
    pub fn add_bytes_in(&self, n: u64) {
        self.num_bytes_in.add(n);
    }

    /// Counts one record that could not be read or deserialized.
    #[inline]
    pub fn inc_records_in_errors(&self) {
        self.num_records_in_errors.inc();
    }

    /// Sets the backlog: records not yet fetched from the external system.
    #[inline]
    pub fn set_pending_records(&self, records: i64) {
        self.pending_records.set(records);
    }

    /// Sets the lag between the event time of the record just emitted and now, in
    /// milliseconds.
    #[inline]
    pub fn set_emit_event_time_lag(&self, lag_ms: i64) {
        self.current_emit_event_time_lag.set(lag_ms);
    }

    /// The `numRecordsIn` counter.
    pub fn num_records_in(&self) -> &Counter {
        &self.num_records_in
    }

    /// The `numBytesIn` counter.
    pub fn num_bytes_in(&self) -> &Counter {
        &self.num_bytes_in
    }

    /// The `numRecordsInErrors` counter.
    pub fn num_records_in_errors(&self) -> &Counter {
        &self.num_records_in_errors
    }

    /// The `pendingRecords` gauge.
    pub fn pending_records(&self) -> &Gauge {
        &self.pending_records
    }

    /// The `currentEmitEventTimeLag` gauge (milliseconds).
    pub fn current_emit_event_time_lag(&self) -> &Gauge {
        &self.current_emit_event_time_lag
    }
}

/// The standard metrics of a sink writer, registered once and updated per record.
///
/// Every update is one or two relaxed atomic operations. Clones share the same metrics.
#[derive(Debug, Clone)]
pub struct SinkWriterMetrics {
    num_records_send: Counter,
    num_bytes_send: Counter,
    num_records_send_errors: Counter,
    num_records_out_errors: Counter,
    current_send_time: Gauge,
}

impl SinkWriterMetrics {
    /// Registers the standard sink metrics in `group` (typically the writer's group).
    pub fn new(group: &dyn MetricGroup) -> Self {
        SinkWriterMetrics {
            num_records_send: group.counter(NUM_RECORDS_SEND),
            num_bytes_send: group.counter(NUM_BYTES_SEND),
            num_records_send_errors: group.counter(NUM_RECORDS_SEND_ERRORS),
            num_records_out_errors: group.counter(NUM_RECORDS_OUT_ERRORS),
            current_send_time: group.gauge(CURRENT_SEND_TIME),
        }
    }

    /// Counts one record sent to the external system.
    #[inline]
    pub fn inc_records_send(&self) {
        self.num_records_send.inc();
    }

    /// Counts `n` records sent to the external system.
    #[inline]
    pub fn add_records_send(&self, n: u64) {
        self.num_records_send.add(n);
    }

    /// Counts `n` bytes sent to the external system.
    #[inline]
    pub fn add_bytes_send(&self, n: u64) {
        self.num_bytes_send.add(n);
    }

    /// Counts one record that failed to send, under both `numRecordsSendErrors` and the older
    /// `numRecordsOutErrors`.
    #[inline]
    pub fn inc_records_send_errors(&self) {
        self.add_records_send_errors(1);
    }

    /// Counts `n` records that failed to send, under both `numRecordsSendErrors` and the older
    /// `numRecordsOutErrors`.
    #[inline]
    pub fn add_records_send_errors(&self, n: u64) {
        self.num_records_send_errors.add(n);
        self.num_records_out_errors.add(n);
    }

    /// Sets how long the most recent send took, in milliseconds.
    #[inline]
    pub fn set_current_send_time(&self, send_time_ms: i64) {
        self.current_send_time.set(send_time_ms);
    }

    /// The `numRecordsSend` counter.
    pub fn num_records_send(&self) -> &Counter {
        &self.num_records_send
    }

    /// The `numBytesSend` counter.
    pub fn num_bytes_send(&self) -> &Counter {
        &self.num_bytes_send
    }

    /// The `numRecordsSendErrors` counter.
    pub fn num_records_send_errors(&self) -> &Counter {
        &self.num_records_send_errors
    }

    /// The `numRecordsOutErrors` counter (the older name of `numRecordsSendErrors`).
    pub fn num_records_out_errors(&self) -> &Counter {
        &self.num_records_out_errors
    }

    /// The `currentSendTime` gauge (milliseconds).
    pub fn current_send_time(&self) -> &Gauge {
        &self.current_send_time
    }
}
