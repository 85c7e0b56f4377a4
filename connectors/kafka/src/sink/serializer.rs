//! Turning the user's records into Kafka records: [`KafkaRecordSerializer`] writes into a reused
//! [`KafkaRecordBuf`] (no allocation per record once buffers have grown), and
//! [`RecordSerializer`] builds one from closures with JSON, raw-bytes or UTF-8 values.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// One outgoing record, reused between records: set what you need; unset fields take the
/// sink's defaults (the `topic` option, the partitioner, the record's event time).
#[derive(Debug, Default)]
pub struct KafkaRecordBuf {
    pub(crate) topic: String,
    pub(crate) has_topic: bool,
    pub(crate) key: Vec<u8>,
    pub(crate) has_key: bool,
    pub(crate) value: Vec<u8>,
    pub(crate) has_value: bool,
    pub(crate) partition: Option<i32>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

impl KafkaRecordBuf {
    pub(crate) fn clear(&mut self) {
        self.topic.clear();
        self.has_topic = false;
        self.key.clear();
        self.has_key = false;
        self.value.clear();
        self.has_value = false;
        self.partition = None;
        self.timestamp = None;
        self.headers.clear();
    }

    /// Sends the record to `topic` instead of the sink's default topic.
    pub fn set_topic(&mut self, topic: &str) {
        self.topic.clear();
        self.topic.push_str(topic);
        self.has_topic = true;
    }

    /// The key buffer (empty); writing marks the record as keyed.
    pub fn key_mut(&mut self) -> &mut Vec<u8> {
        self.has_key = true;
        &mut self.key
    }

    /// The value buffer (empty); a record whose value is never asked for is a tombstone.
    pub fn value_mut(&mut self) -> &mut Vec<u8> {
        self.has_value = true;
        &mut self.value
    }

    /// Sends the record to this partition, bypassing the partitioner.
    pub fn set_partition(&mut self, partition: i32) {
        self.partition = Some(partition);
    }

    /// Sets the record's timestamp (milliseconds).
    pub fn set_timestamp(&mut self, timestamp: i64) {
        self.timestamp = Some(timestamp);
    }

    /// Adds a header.
    pub fn add_header(&mut self, name: &str, value: &[u8]) {
        self.headers.push((name.to_owned(), value.to_vec()));
    }
}

/// What a serializer knows besides the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerializeContext {
    /// The record's event time, if it has one.
    pub timestamp: Option<i64>,
    /// The writer's subtask.
    pub subtask: usize,
    /// The number of writer subtasks.
    pub parallelism: usize,
}

/// Turns a record into a Kafka record. Runs once per record on the writer's task.
pub trait KafkaRecordSerializer<T>: Send + Sync + 'static {
    /// Fills `out` (cleared before each call); `Err` holds why the record cannot be written.
    fn serialize(
        &self,
        record: &T,
        ctx: &SerializeContext,
        out: &mut KafkaRecordBuf,
    ) -> Result<(), String>;
}

/// How the writer turns one element into Kafka records: a [`KafkaRecordSerializer`] makes one
/// record of each element ([`OneRecord`]); the columnar sink makes one of each row of a chunk.
pub(crate) trait KafkaRecordsSerializer<T>: Send + Sync + 'static {
    /// Fills `out` with each record of `element` in turn and hands it to `send`. A record that
    /// cannot be written is an error; the records before it were sent.
    fn serialize_each(
        &self,
        element: &T,
        ctx: &SerializeContext,
        out: &mut KafkaRecordBuf,
        send: &mut dyn FnMut(&KafkaRecordBuf) -> weir_connector_api::error::Result<()>,
    ) -> weir_connector_api::error::Result<()>;
}

/// One record per element, by a [`KafkaRecordSerializer`].
pub(crate) struct OneRecord<S>(pub(crate) S);

impl<T, S: KafkaRecordSerializer<T>> KafkaRecordsSerializer<T> for OneRecord<S> {
    fn serialize_each(
        &self,
        element: &T,
        ctx: &SerializeContext,
        out: &mut KafkaRecordBuf,
        send: &mut dyn FnMut(&KafkaRecordBuf) -> weir_connector_api::error::Result<()>,
    ) -> weir_connector_api::error::Result<()> {
        out.clear();
        self.0
            .serialize(element, ctx, out)
            .map_err(|reason| malformed_record(&reason))?;
        send(out)
    }
}

#[cfg_attr(not(weir_api_1_1), allow(dead_code))] // used by the columnar module
/// The error of a record the serializer refused.
pub(crate) fn malformed_record(reason: &str) -> weir_connector_api::error::ConnectorError {
    weir_connector_api::error::ConnectorError::malformed("a record for the Kafka sink", reason)
}

type ValueFn<T> = Arc<dyn Fn(&T, &mut Vec<u8>) -> Result<(), String> + Send + Sync>;
type KeyFn<T> = Arc<dyn Fn(&T, &mut Vec<u8>) + Send + Sync>;
type TopicFn<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;
type HeadersFn<T> = Arc<dyn Fn(&T, &mut KafkaRecordBuf) + Send + Sync>;
type TimestampFn<T> = Arc<dyn Fn(&T) -> Option<i64> + Send + Sync>;

/// A [`KafkaRecordSerializer`] from parts: a value format, and optionally a key, a topic per
/// record, headers and a timestamp. Without a timestamp function the record's event time is used.
///
/// ```
/// use weir_connector_kafka::sink::RecordSerializer;
///
/// #[derive(serde::Serialize)]
/// struct Order { id: u64, customer: String }
///
/// let serializer = RecordSerializer::<Order>::json()
///     .key(|o, key| key.extend_from_slice(o.customer.as_bytes()))
///     .topic(|o| if o.id % 2 == 0 { "even".into() } else { "odd".into() });
/// # let _ = serializer;
/// ```
pub struct RecordSerializer<T> {
    value: ValueFn<T>,
    key: Option<KeyFn<T>>,
    topic: Option<TopicFn<T>>,
    headers: Option<HeadersFn<T>>,
    timestamp: Option<TimestampFn<T>>,
}

impl<T> Clone for RecordSerializer<T> {
    fn clone(&self) -> Self {
        RecordSerializer {
            value: Arc::clone(&self.value),
            key: self.key.clone(),
            topic: self.topic.clone(),
            headers: self.headers.clone(),
            timestamp: self.timestamp.clone(),
        }
    }
}

impl<T> fmt::Debug for RecordSerializer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordSerializer")
            .field("key", &self.key.is_some())
            .field("topic", &self.topic.is_some())
            .field("headers", &self.headers.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: 'static> RecordSerializer<T> {
    /// Values written by `value`.
    pub fn new(
        value: impl Fn(&T, &mut Vec<u8>) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        RecordSerializer {
            value: Arc::new(value),
            key: None,
            topic: None,
            headers: None,
            timestamp: None,
        }
    }

    /// Values as JSON (serde).
    pub fn json() -> Self
    where
        T: Serialize,
    {
        Self::new(|record, out| serde_json::to_writer(out, record).map_err(|e| e.to_string()))
    }

    /// Values as the record's bytes.
    pub fn bytes() -> Self
    where
        T: AsRef<[u8]>,
    {
        Self::new(|record, out| {
            out.extend_from_slice(record.as_ref());
            Ok(())
        })
    }

    /// Values as the record's UTF-8 text.
    pub fn string() -> Self
    where
        T: AsRef<str>,
    {
        Self::new(|record, out| {
            out.extend_from_slice(record.as_ref().as_bytes());
            Ok(())
        })
    }

    /// Keys written by `key` (the default partitioner hashes them).
    pub fn key(mut self, key: impl Fn(&T, &mut Vec<u8>) + Send + Sync + 'static) -> Self {
        self.key = Some(Arc::new(key));
        self
    }

    /// The topic of each record (instead of the sink's `topic`).
    pub fn topic(mut self, topic: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.topic = Some(Arc::new(topic));
        self
    }

    /// Adds headers to each record.
    pub fn headers(
        mut self,
        headers: impl Fn(&T, &mut KafkaRecordBuf) + Send + Sync + 'static,
    ) -> Self {
        self.headers = Some(Arc::new(headers));
        self
    }

    /// The timestamp of each record (instead of its event time).
    pub fn timestamp(
        mut self,
        timestamp: impl Fn(&T) -> Option<i64> + Send + Sync + 'static,
    ) -> Self {
        self.timestamp = Some(Arc::new(timestamp));
        self
    }
}

impl<T: Send + Sync + 'static> KafkaRecordSerializer<T> for RecordSerializer<T> {
    fn serialize(
        &self,
        record: &T,
        ctx: &SerializeContext,
        out: &mut KafkaRecordBuf,
    ) -> Result<(), String> {
        (self.value)(record, out.value_mut())?;
        if let Some(key) = &self.key {
            key(record, out.key_mut());
        }
        if let Some(topic) = &self.topic {
            let t = topic(record);
            out.set_topic(&t);
        }
        if let Some(headers) = &self.headers {
            headers(record, out);
        }
        let ts = match &self.timestamp {
            Some(f) => f(record),
            None => ctx.timestamp,
        };
        if let Some(ts) = ts {
            out.set_timestamp(ts);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_records() {
        let s = RecordSerializer::<String>::string()
            .key(|r, k| k.extend_from_slice(&r.as_bytes()[..1]))
            .topic(|r| format!("t-{}", r.len()))
            .headers(|_, out| out.add_header("h", b"v"));
        let mut buf = KafkaRecordBuf::default();
        let ctx = SerializeContext {
            timestamp: Some(5),
            subtask: 0,
            parallelism: 1,
        };
        assert!(s.serialize(&"abc".to_owned(), &ctx, &mut buf).is_ok());
        assert_eq!(buf.value, b"abc");
        assert_eq!(buf.key, b"a");
        assert_eq!(buf.topic, "t-3");
        assert_eq!(buf.timestamp, Some(5));
        assert_eq!(buf.headers.len(), 1);
        buf.clear();
        assert!(!buf.has_value && !buf.has_key && buf.headers.is_empty());
    }
}
