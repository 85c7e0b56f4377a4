//! The batch: what the fetcher thread hands to the reader. Every record's key, value and (for
//! deserializers that read them) headers are copied out of librdkafka into one buffer per
//! batch, grouped in runs by partition; records are decoded as the reader takes them, by a
//! [`KafkaBatchDecoder`]: one element per record (a [`KafkaDeserializer`], the row source), or
//! one element for many records of a partition (the columnar source: a chunk per run).

use std::collections::VecDeque;
use std::sync::Arc;

use rdkafka::message::{BorrowedMessage, Headers, Message};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_base::source::reader::RecordsWithSplitIds;

use crate::source::deserializer::{
    span, CopiedHeader, HeaderAccess, HeadersView, KafkaDeserializer, KafkaRecord,
};

/// The decoder a batch decodes its records with, shared by the fetcher and every batch.
pub(crate) type SharedDeserializer<T> = Arc<dyn KafkaBatchDecoder<T>>;

/// How the records of a fetched batch become the reader's elements. Each call takes the next
/// records of one partition's run (at least one, in offset order) and gives their element:
/// the element's offset is the last record's, so the split's position after emitting it is the
/// same as after emitting those records one by one.
pub(crate) trait KafkaBatchDecoder<T>: Send + Sync {
    /// Whether the records' headers are read (they are copied out of librdkafka only then).
    fn header_access(&self) -> HeaderAccess;

    /// The element of the next records of `run`, taken from it; `None` when it has none left.
    fn next_element(&self, run: &mut RunRecords<'_>) -> Option<KafkaElement<T>>;
}

/// One element per record, from a [`KafkaDeserializer`] (the row source and typed jobs).
pub(crate) struct PerRecord<T>(pub(crate) Arc<dyn KafkaDeserializer<T>>);

impl<T: 'static> KafkaBatchDecoder<T> for PerRecord<T> {
    fn header_access(&self) -> HeaderAccess {
        self.0.header_access()
    }

    fn next_element(&self, run: &mut RunRecords<'_>) -> Option<KafkaElement<T>> {
        let record = run.record(0)?;
        run.take(1);
        Some(KafkaElement {
            offset: record.offset,
            timestamp: record.timestamp,
            bytes: record_bytes(&record),
            value: self.0.deserialize(&record).map(Some),
            extra_rows: 0,
        })
    }
}

#[cfg_attr(not(weir_api_1_1), allow(dead_code))] // used by the columnar module
/// The bytes of a record counted in `numBytesIn`: its key and value.
pub(crate) fn record_bytes(record: &KafkaRecord<'_>) -> u32 {
    let len = |b: Option<&[u8]>| b.map_or(0, |b| u32::try_from(b.len()).unwrap_or(u32::MAX));
    len(record.key).saturating_add(len(record.value))
}

/// The records of one partition's run not yet taken, as [`KafkaRecord`] views.
pub(crate) struct RunRecords<'a> {
    topic: &'a str,
    partition: i32,
    data: &'a [u8],
    records: &'a [RawRecord],
    headers: &'a [CopiedHeader],
    /// The positions in `records` not yet taken.
    next: &'a mut std::ops::Range<usize>,
}

impl<'a> RunRecords<'a> {
    #[cfg_attr(not(weir_api_1_1), allow(dead_code))] // used by the columnar module
    /// How many records are left.
    pub(crate) fn remaining(&self) -> usize {
        self.next.len()
    }

    /// The `i`-th record left (`None` past the end).
    pub(crate) fn record(&self, i: usize) -> Option<KafkaRecord<'a>> {
        let at = self
            .next
            .start
            .checked_add(i)
            .filter(|at| *at < self.next.end)?;
        let raw = *self.records.get(at)?;
        let data = self.data;
        let (first, count) = (raw.headers.0 as usize, raw.headers.1 as usize);
        Some(KafkaRecord {
            topic: self.topic,
            partition: self.partition,
            offset: raw.offset,
            timestamp: raw.timestamp,
            key: raw.key.map(|k| span(data, k)),
            value: raw.value.map(|v| span(data, v)),
            headers: if count == 0 {
                HeadersView::None
            } else {
                HeadersView::Copied {
                    entries: self.headers.get(first..first + count).unwrap_or_default(),
                    data,
                }
            },
        })
    }

    /// Takes the next `n` records (at most those left).
    pub(crate) fn take(&mut self, n: usize) {
        self.next.start = self.next.start.saturating_add(n).min(self.next.end);
    }
}

/// One element: the offset of the last record it covers, the latest timestamp of its records,
/// their size, their decoded value (`None`: they hold nothing to emit, e.g. tombstones of a
/// columnar source) or why it is malformed, and the rows it holds beyond one (a chunk's: the
/// emitter counts them in `numRecordsOut`, where the runtime counts one per element).
#[derive(Debug)]
pub struct KafkaElement<T> {
    pub(crate) offset: i64,
    pub(crate) timestamp: Option<i64>,
    pub(crate) bytes: u32,
    pub(crate) value: std::result::Result<Option<T>, String>,
    pub(crate) extra_rows: u64,
}

/// A batch stops taking records once its buffer holds this many bytes (so every position in
/// it fits in `u32`, whatever the record sizes).
pub(super) const MAX_BATCH_BYTES: usize = 256 << 20;

/// One fetched record before deserialization: where its bytes are in the batch's buffer.
#[derive(Debug, Clone, Copy)]
struct RawRecord {
    offset: i64,
    timestamp: Option<i64>,
    key: Option<(u32, u32)>,
    value: Option<(u32, u32)>,
    /// Start and count of its entries in the batch's header list.
    headers: (u32, u32),
}

/// A partition's consecutive records in a batch.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) split: String,
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) records: std::ops::Range<usize>,
}

/// A batch fetched by the fetcher thread: every record's key, value and (for deserializers that
/// read them) headers copied out of librdkafka into one buffer, grouped in runs by partition.
/// Records are deserialized as the reader takes them, on its task: an allocation per record made
/// on the fetcher thread and freed on another thread costs glibc several times what one made and
/// freed on the same thread does.
pub struct KafkaBatch<T> {
    deserializer: SharedDeserializer<T>,
    data: Vec<u8>,
    records: Vec<RawRecord>,
    headers: Vec<CopiedHeader>,
    pub(super) runs: VecDeque<Run>,
    current: Option<Run>,
    pub(super) finished: Vec<String>,
}

impl<T> std::fmt::Debug for KafkaBatch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBatch")
            .field("records", &self.records.len())
            .field("bytes", &self.data.len())
            .field("runs", &self.runs)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<T> KafkaBatch<T> {
    pub(super) fn new(deserializer: SharedDeserializer<T>, bytes: usize, records: usize) -> Self {
        KafkaBatch {
            deserializer,
            data: Vec::with_capacity(bytes),
            records: Vec::with_capacity(records),
            headers: Vec::new(),
            runs: VecDeque::new(),
            current: None,
            finished: Vec::new(),
        }
    }

    /// The records in the batch.
    pub(super) fn record_count(&self) -> usize {
        self.records.len()
    }

    /// The bytes copied into the batch's buffer.
    pub(super) fn byte_len(&self) -> usize {
        self.data.len()
    }

    /// Appends `bytes` to the buffer: their start and length.
    fn copy(&mut self, bytes: &[u8]) -> Result<(u32, u32)> {
        let start = u32::try_from(self.data.len());
        let len = u32::try_from(bytes.len());
        let (Ok(start), Ok(len)) = (start, len) else {
            return Err(ConnectorError::fatal(
                "reading from Kafka",
                format!(
                    "a record of {} bytes does not fit in a fetched batch (at most 4 GiB)",
                    bytes.len()
                ),
            ));
        };
        self.data.extend_from_slice(bytes);
        Ok((start, len))
    }

    /// Copies `msg`'s key, value and (with `headers` = `Read`) headers into the batch, as the
    /// next record of the last run.
    pub(super) fn push(&mut self, msg: &BorrowedMessage<'_>, headers: HeaderAccess) -> Result<()> {
        let key = msg.key().map(|k| self.copy(k)).transpose()?;
        let value = msg.payload().map(|v| self.copy(v)).transpose()?;
        let first_header = self.headers.len();
        if headers == HeaderAccess::Read {
            if let Some(hs) = msg.headers() {
                for h in (0..hs.count()).filter_map(|i| hs.try_get(i)) {
                    let name = self.copy(h.key.as_bytes())?;
                    let value = h.value.map(|v| self.copy(v)).transpose()?;
                    self.headers.push(CopiedHeader { name, value });
                }
            }
        }
        self.records.push(RawRecord {
            offset: msg.offset(),
            timestamp: msg.timestamp().to_millis(),
            key,
            value,
            headers: (
                first_header as u32,
                (self.headers.len() - first_header) as u32,
            ),
        });
        if let Some(run) = self.runs.back_mut() {
            run.records.end = self.records.len();
        }
        Ok(())
    }
}

impl<T: Send + 'static> RecordsWithSplitIds for KafkaBatch<T> {
    type Record = KafkaElement<T>;

    fn next_split(&mut self) -> Option<String> {
        let mut run = self.runs.pop_front()?;
        let id = std::mem::take(&mut run.split);
        self.current = Some(run);
        Some(id)
    }

    fn next_record_from_split(&mut self) -> Option<KafkaElement<T>> {
        let run = self.current.as_mut()?;
        let mut records = RunRecords {
            topic: &run.topic,
            partition: run.partition,
            data: &self.data,
            records: &self.records,
            headers: &self.headers,
            next: &mut run.records,
        };
        self.deserializer.next_element(&mut records)
    }

    fn finished_splits(&self) -> &[String] {
        &self.finished
    }
}

/// Runs of records built from values, for tests of batch decoders.
#[cfg(all(test, weir_api_1_1))]
pub(crate) struct TestRun {
    data: Vec<u8>,
    records: Vec<RawRecord>,
    next: std::ops::Range<usize>,
}

#[cfg(all(test, weir_api_1_1))]
impl TestRun {
    /// Records at offsets 0, 1, ... with these values (`None`: a tombstone) and timestamps
    /// 100, 101, ...
    pub(crate) fn new(values: &[Option<&[u8]>]) -> Self {
        let mut data = Vec::new();
        let mut records = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let value = value.map(|v| {
                let start = data.len() as u32;
                data.extend_from_slice(v);
                (start, v.len() as u32)
            });
            records.push(RawRecord {
                offset: i as i64,
                timestamp: Some(100 + i as i64),
                key: None,
                value,
                headers: (0, 0),
            });
        }
        let next = 0..records.len();
        TestRun {
            data,
            records,
            next,
        }
    }

    /// The records not yet taken.
    pub(crate) fn run(&mut self) -> RunRecords<'_> {
        RunRecords {
            topic: "t",
            partition: 0,
            data: &self.data,
            records: &self.records,
            headers: &[],
            next: &mut self.next,
        }
    }
}
