//! Turning Kafka records into the user's type: the [`KafkaDeserializer`] trait, the
//! [`KafkaRecord`] view it reads, and ready-made deserializers for raw bytes, UTF-8 strings and
//! JSON (serde).

use std::fmt;
use std::marker::PhantomData;

use rdkafka::message::{BorrowedMessage, Headers, Message};
use serde::de::DeserializeOwned;

/// A read-only view of one consumed Kafka record, valid during
/// [`KafkaDeserializer::deserialize`].
#[derive(Clone, Copy)]
pub struct KafkaRecord<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: Option<i64>,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    /// The consumed message, for its headers: parsed only when a deserializer asks for them
    /// (librdkafka's header parsing cost about as much as polling the message).
    pub(crate) message: Option<&'a BorrowedMessage<'a>>,
}

impl<'a> KafkaRecord<'a> {
    /// A record built from parts (for tests of deserializers; the source builds its own).
    pub fn new(
        topic: &'a str,
        partition: i32,
        offset: i64,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
    ) -> Self {
        KafkaRecord {
            topic,
            partition,
            offset,
            timestamp: None,
            key,
            value,
            message: None,
        }
    }

    /// Sets the timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// The topic.
    pub fn topic(&self) -> &'a str {
        self.topic
    }
    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }
    /// The offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }
    /// The record's timestamp (create or log-append time), in milliseconds, if it has one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }
    /// The key, if any.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }
    /// The value, if any (`None` for a tombstone).
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }
    /// The headers as `(name, value)` pairs, in order. librdkafka parses a record's headers
    /// only when they are first asked for (about as costly as polling the record), so a
    /// deserializer that needs none pays nothing.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        let headers = self.message.and_then(Message::headers);
        let count = headers.map_or(0, Headers::count);
        (0..count).filter_map(move |i| {
            let h = headers?.try_get(i)?;
            Some((h.key, h.value))
        })
    }
    /// The first header named `name`, if any.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v)
    }
}

impl fmt::Debug for KafkaRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaRecord")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("timestamp", &self.timestamp)
            .field("key_len", &self.key.map(<[u8]>::len))
            .field("value_len", &self.value.map(<[u8]>::len))
            .finish_non_exhaustive()
    }
}

/// Turns a Kafka record into `T`. Runs on the source's fetcher thread, once per record, so keep
/// it allocation-light. An `Err` is a malformed record: the source fails or skips it according to
/// its [`MalformedRecordPolicy`](crate::MalformedRecordPolicy), naming the partition and offset.
pub trait KafkaDeserializer<T>: Send + Sync + 'static {
    /// Deserializes one record; `Err` holds why it is malformed.
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<T, String>;
}

impl<T, F> KafkaDeserializer<T> for F
where
    F: Fn(&KafkaRecord<'_>) -> Result<T, String> + Send + Sync + 'static,
{
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<T, String> {
        self(record)
    }
}

/// The value's bytes (an empty vector for a tombstone).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytesDeserializer;

impl KafkaDeserializer<Vec<u8>> for RawBytesDeserializer {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<Vec<u8>, String> {
        Ok(record.value.unwrap_or_default().to_vec())
    }
}

/// The value as a UTF-8 string; invalid UTF-8 is malformed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8Deserializer;

impl KafkaDeserializer<String> for Utf8Deserializer {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<String, String> {
        let value = record.value.unwrap_or_default();
        std::str::from_utf8(value)
            .map(str::to_owned)
            .map_err(|e| format!("the value is not valid UTF-8: {e}"))
    }
}

/// The value as JSON into a serde type; invalid JSON (or a tombstone) is malformed.
pub struct JsonDeserializer<T>(PhantomData<fn() -> T>);

impl<T> JsonDeserializer<T> {
    /// A JSON deserializer into `T`.
    pub fn new() -> Self {
        JsonDeserializer(PhantomData)
    }
}

impl<T> Default for JsonDeserializer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for JsonDeserializer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JsonDeserializer")
    }
}

impl<T: DeserializeOwned + 'static> KafkaDeserializer<T> for JsonDeserializer<T> {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<T, String> {
        let value = record
            .value
            .ok_or_else(|| "the value is empty (a tombstone), not JSON".to_owned())?;
        serde_json::from_slice(value).map_err(|e| format!("invalid JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_made_deserializers() {
        let r = KafkaRecord::new("t", 1, 7, Some(b"k"), Some(b"{\"a\":1}"));
        assert_eq!(
            RawBytesDeserializer.deserialize(&r),
            Ok(b"{\"a\":1}".to_vec())
        );
        assert_eq!(Utf8Deserializer.deserialize(&r).as_deref(), Ok("{\"a\":1}"));
        let v: serde_json::Value = JsonDeserializer::new().deserialize(&r).unwrap_or_default();
        assert_eq!(v["a"], 1);
        let bad = KafkaRecord::new("t", 1, 8, None, Some(&[0xff, 0xfe]));
        assert!(Utf8Deserializer.deserialize(&bad).is_err());
        assert!(JsonDeserializer::<serde_json::Value>::new()
            .deserialize(&bad)
            .is_err());
        let tomb = KafkaRecord::new("t", 1, 9, None, None);
        assert_eq!(RawBytesDeserializer.deserialize(&tomb), Ok(Vec::new()));
        assert!(JsonDeserializer::<serde_json::Value>::new()
            .deserialize(&tomb)
            .is_err());
        assert_eq!(r.headers().count(), 0);
    }
}
