//! The standard connector metric names of FLIP-33.
//!
//! Use these names, not look-alikes: dashboards and alerts are written against them. Times are
//! in milliseconds; counters only ever grow.

/// Sources, counter: records the source has emitted downstream (records).
pub const NUM_RECORDS_IN: &str = "numRecordsIn";

/// Sources, counter: bytes the source has read from the external system (bytes).
pub const NUM_BYTES_IN: &str = "numBytesIn";

/// Sources, counter: records the source could not read or deserialize (records).
pub const NUM_RECORDS_IN_ERRORS: &str = "numRecordsInErrors";

/// Sources, gauge: time between a record's event time and the moment the source emits it
/// (milliseconds).
pub const CURRENT_EMIT_EVENT_TIME_LAG: &str = "currentEmitEventTimeLag";

/// Sources, gauge: time between a record's event time and the moment the source fetched it
/// from the external system (milliseconds).
pub const CURRENT_FETCH_EVENT_TIME_LAG: &str = "currentFetchEventTimeLag";

/// Sources, gauge: how far the current watermark trails wall-clock time (milliseconds).
pub const WATERMARK_LAG: &str = "watermarkLag";

/// Sources, gauge: how long the source has gone without processing any record
/// (milliseconds).
pub const SOURCE_IDLE_TIME: &str = "sourceIdleTime";

/// Sources, gauge: records not yet fetched by the source, its backlog (records).
pub const PENDING_RECORDS: &str = "pendingRecords";

/// Sources, gauge: bytes not yet fetched by the source, its backlog (bytes).
pub const PENDING_BYTES: &str = "pendingBytes";

/// Sinks, counter: records the sink has sent to the external system (records).
///
/// May include records the external system later failed to persist; those are also counted in
/// [`NUM_RECORDS_SEND_ERRORS`].
pub const NUM_RECORDS_SEND: &str = "numRecordsSend";

/// Sinks, counter: bytes the sink has sent to the external system (bytes).
pub const NUM_BYTES_SEND: &str = "numBytesSend";

/// Sinks, counter: records the sink failed to send (records).
///
/// Flink deprecated this name in favour of [`NUM_RECORDS_SEND_ERRORS`] but still reports both;
/// [`SinkWriterMetrics`](super::SinkWriterMetrics) keeps both in step.
pub const NUM_RECORDS_OUT_ERRORS: &str = "numRecordsOutErrors";

/// Sinks, gauge: how long the most recent send to the external system took (milliseconds).
pub const CURRENT_SEND_TIME: &str = "currentSendTime";

/// Operators, counter: records an operator has emitted downstream (records).
///
/// Sinks reported sent records under this name before FLIP-33 renamed it to
/// [`NUM_RECORDS_SEND`]; a sink connector reports [`NUM_RECORDS_SEND`].
pub const NUM_RECORDS_OUT: &str = "numRecordsOut";

/// Sinks, counter: records the sink failed to send (records); the current name for
/// [`NUM_RECORDS_OUT_ERRORS`].
pub const NUM_RECORDS_SEND_ERRORS: &str = "numRecordsSendErrors";
