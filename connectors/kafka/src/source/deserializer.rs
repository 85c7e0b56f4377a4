//! Turning Kafka records into the user's type: the [`KafkaDeserializer`] trait, the
//! [`KafkaRecord`] view it reads, and ready-made deserializers for raw bytes, UTF-8 strings and
//! JSON (serde).

use std::fmt;
use std::marker::PhantomData;

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
    pub(crate) headers: HeadersView<'a>,
}

/// A header's name and value.
type HeaderPair<'a> = (&'a str, Option<&'a [u8]>);

/// Where a record's headers are: copied into the fetched batch by the source, or given as pairs
/// (records built with [`KafkaRecord::with_headers`]).
#[derive(Clone, Copy)]
pub(crate) enum HeadersView<'a> {
    None,
    Copied {
        entries: &'a [CopiedHeader],
        data: &'a [u8],
    },
    Pairs(&'a [HeaderPair<'a>]),
}

/// A header copied into a fetched batch: byte ranges of its name and value in the batch's data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CopiedHeader {
    pub(crate) name: (u32, u32),
    pub(crate) value: Option<(u32, u32)>,
}

/// `data[start..start + len]`, or empty if out of range (never, for ranges the fetcher wrote).
pub(crate) fn span(data: &[u8], (start, len): (u32, u32)) -> &[u8] {
    let start = start as usize;
    data.get(start..start + len as usize).unwrap_or_default()
}

/// Whether a deserializer reads record headers. The source copies a record's headers out of
/// librdkafka only for deserializers that do: parsing them costs librdkafka about as much as
/// fetching the record, even when a record has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderAccess {
    /// [`KafkaRecord::headers`] yields the record's headers.
    Read,
    /// The deserializer reads no headers; [`KafkaRecord::headers`] yields none.
    Ignore,
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
            headers: HeadersView::None,
        }
    }

    /// Sets the headers, as `(name, value)` pairs (for tests of deserializers).
    pub fn with_headers(mut self, headers: &'a [(&'a str, Option<&'a [u8]>)]) -> Self {
        self.headers = HeadersView::Pairs(headers);
        self
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
    /// The headers as `(name, value)` pairs, in order. Empty when the deserializer declared
    /// [`HeaderAccess::Ignore`] (the source then does not copy them).
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        let (copied, data, pairs): (&[CopiedHeader], &[u8], &[HeaderPair<'_>]) = match self.headers
        {
            HeadersView::None => (&[], &[], &[]),
            HeadersView::Copied { entries, data } => (entries, data, &[]),
            HeadersView::Pairs(pairs) => (&[], &[], pairs),
        };
        copied
            .iter()
            .filter_map(move |h| {
                // The fetcher copied only names that are UTF-8.
                let name = std::str::from_utf8(span(data, h.name)).ok()?;
                Some((name, h.value.map(|v| span(data, v))))
            })
            .chain(pairs.iter().copied())
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

/// Turns a Kafka record into `T`. Runs on the source's task (as in Flink, where the record
/// emitter deserializes), once per record, over bytes the fetcher thread copied out of
/// librdkafka. An `Err` is a malformed record: the source fails or skips it according to its
/// [`MalformedRecordPolicy`](crate::MalformedRecordPolicy), naming the partition and offset.
///
/// ```
/// use weir_connector_kafka::source::{HeaderAccess, KafkaDeserializer, KafkaRecord};
///
/// /// The value's length, and the `source` header if there is one.
/// struct Sized;
/// impl KafkaDeserializer<(usize, Option<Vec<u8>>)> for Sized {
///     fn deserialize(&self, r: &KafkaRecord<'_>) -> Result<(usize, Option<Vec<u8>>), String> {
///         Ok((r.value().map_or(0, <[u8]>::len), r.header("source").map(<[u8]>::to_vec)))
///     }
///     fn header_access(&self) -> HeaderAccess {
///         HeaderAccess::Read
///     }
/// }
/// let headers = [("source", Some(&b"web"[..]))];
/// let record = KafkaRecord::new("t", 0, 5, None, Some(b"abc")).with_headers(&headers);
/// assert_eq!(Sized.deserialize(&record), Ok((3, Some(b"web".to_vec()))));
/// ```
pub trait KafkaDeserializer<T>: Send + Sync + 'static {
    /// Deserializes one record; `Err` holds why it is malformed.
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<T, String>;

    /// Whether [`deserialize`](Self::deserialize) reads headers. The default, `Read`, is always
    /// correct; a deserializer that reads none should say `Ignore`, which saves the source
    /// parsing and copying every record's headers. Closures read them; wrap a closure that does
    /// not in [`IgnoreHeaders`].
    fn header_access(&self) -> HeaderAccess {
        HeaderAccess::Read
    }
}

impl<T, F> KafkaDeserializer<T> for F
where
    F: Fn(&KafkaRecord<'_>) -> Result<T, String> + Send + Sync + 'static,
{
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<T, String> {
        self(record)
    }
}

/// A closure deserializer that reads no headers, so the source does not copy them.
///
/// ```
/// use weir_connector_kafka::source::{IgnoreHeaders, KafkaDeserializer, KafkaRecord};
/// let lengths = IgnoreHeaders(|r: &KafkaRecord<'_>| Ok::<_, String>(r.value().map_or(0, <[u8]>::len)));
/// assert_eq!(lengths.deserialize(&KafkaRecord::new("t", 0, 0, None, Some(b"ab"))), Ok(2));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct IgnoreHeaders<F>(pub F);

impl<T, F> KafkaDeserializer<T> for IgnoreHeaders<F>
where
    F: Fn(&KafkaRecord<'_>) -> Result<T, String> + Send + Sync + 'static,
{
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<T, String> {
        (self.0)(record)
    }
    fn header_access(&self) -> HeaderAccess {
        HeaderAccess::Ignore
    }
}

/// The value's bytes (an empty vector for a tombstone).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytesDeserializer;

impl KafkaDeserializer<Vec<u8>> for RawBytesDeserializer {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<Vec<u8>, String> {
        Ok(record.value.unwrap_or_default().to_vec())
    }
    fn header_access(&self) -> HeaderAccess {
        HeaderAccess::Ignore
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
    fn header_access(&self) -> HeaderAccess {
        HeaderAccess::Ignore
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
    fn header_access(&self) -> HeaderAccess {
        HeaderAccess::Ignore
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
        assert_eq!(RawBytesDeserializer.header_access(), HeaderAccess::Ignore);
    }

    #[test]
    fn headers_from_pairs_and_from_a_batch() {
        let pairs = [("a", Some(&b"1"[..])), ("b", None)];
        let r = KafkaRecord::new("t", 0, 0, None, None).with_headers(&pairs);
        assert_eq!(r.headers().collect::<Vec<_>>(), pairs);
        assert_eq!(r.header("a"), Some(&b"1"[..]));
        assert_eq!(r.header("b"), None);
        let data = b"a1bzz";
        let entries = [
            CopiedHeader {
                name: (0, 1),
                value: Some((1, 1)),
            },
            CopiedHeader {
                name: (2, 1),
                value: None,
            },
        ];
        let mut r = KafkaRecord::new("t", 0, 0, None, None);
        r.headers = HeadersView::Copied {
            entries: &entries,
            data,
        };
        assert_eq!(r.headers().collect::<Vec<_>>(), pairs);
        let closure = |_: &KafkaRecord<'_>| Ok::<_, String>(());
        assert_eq!(closure.header_access(), HeaderAccess::Read);
        assert_eq!(IgnoreHeaders(closure).header_access(), HeaderAccess::Ignore);
    }
}
