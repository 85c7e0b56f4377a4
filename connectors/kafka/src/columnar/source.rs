//! The columnar source's decoding: a partition's records of a fetched batch become one chunk.

use weir_formats::chunk::Chunk;
use weir_formats::columnar::ChunkDecoder;

use crate::source::{record_bytes, HeaderAccess, KafkaBatchDecoder, KafkaElement, RunRecords};

/// Decodes the records of a partition's run at once with a format's columnar decoder.
///
/// A run the decoder refuses as a whole is cut where the first record it refuses alone is:
/// the records before it make one chunk, that record becomes an element of its own with the
/// row decoder's error (which the source's `scan.malformed-records` policy fails on or skips,
/// with the same partition, offset and message as the row source), and the records after it
/// are decoded at the next call. So malformed input is treated record by record, as on rows.
#[derive(Debug)]
pub(crate) struct ChunkRuns {
    pub(crate) decoder: Box<dyn ChunkDecoder>,
}

impl ChunkRuns {
    /// The rows of the first `n` records of `run`, decoded together (`None`: they hold none).
    fn decode(&self, run: &RunRecords<'_>, n: usize) -> Result<Option<Chunk>, String> {
        // A tombstone holds no row (as on rows, where it decodes to none).
        let values: Vec<&[u8]> = (0..n)
            .filter_map(|i| run.record(i).and_then(|r| r.value()))
            .collect();
        self.decoder
            .decode_chunk(&values)
            .map_err(|e| e.to_string())
    }

    /// Whether the decoder refuses record `i` of `run` on its own.
    fn refuses(&self, run: &RunRecords<'_>, i: usize) -> bool {
        run.record(i)
            .and_then(|r| r.value())
            .is_some_and(|v| self.decoder.decode_chunk(&[v]).is_err())
    }
}

impl KafkaBatchDecoder<Chunk> for ChunkRuns {
    fn header_access(&self) -> HeaderAccess {
        HeaderAccess::Ignore
    }

    fn next_element(&self, run: &mut RunRecords<'_>) -> Option<KafkaElement<Chunk>> {
        let n = run.remaining().min(super::CHUNK_RECORDS);
        if n == 0 {
            return None;
        }
        // Most runs decode at once: nothing is decoded twice then.
        let decoded = self.decode(run, n);
        if decoded.is_ok() {
            return Some(take(run, n, decoded));
        }
        // The first record refused on its own: an element of its own (with its error); the
        // records before it, one chunk. Without one (the records decode alone but not
        // together), one record at a time.
        let n = (0..n).find(|&i| self.refuses(run, i)).unwrap_or(0).max(1);
        let decoded = self.decode(run, n);
        Some(take(run, n, decoded))
    }
}

/// The element of the first `n` records of `run`, which decoded into `value`, taken from it:
/// the last record's offset, the latest timestamp, their bytes.
fn take(
    run: &mut RunRecords<'_>,
    n: usize,
    value: Result<Option<Chunk>, String>,
) -> KafkaElement<Chunk> {
    let (mut offset, mut timestamp, mut bytes) = (0, None, 0u32);
    for record in (0..n).filter_map(|i| run.record(i)) {
        offset = record.offset();
        timestamp = timestamp.max(record.timestamp());
        bytes = bytes.saturating_add(record_bytes(&record));
    }
    run.take(n);
    let rows = match &value {
        Ok(Some(chunk)) => chunk.num_rows(),
        _ => 0,
    };
    KafkaElement {
        offset,
        timestamp,
        bytes,
        value,
        extra_rows: rows.saturating_sub(1) as u64,
    }
}
