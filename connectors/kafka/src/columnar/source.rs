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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use weir_connector_api::columnar::arrow::array::{Int64Array, RecordBatch};
    use weir_connector_api::columnar::arrow::schema::{DataType, Field, Schema};
    use weir_connector_api::error::{ConnectorError, Result};
    use weir_formats::chunk::Chunk;
    use weir_formats::columnar::ChunkDecoder;

    use super::ChunkRuns;
    use crate::source::{KafkaBatchDecoder, KafkaElement, TestRun};

    /// Reads each message's length into a row; refuses `bad`, and `x` with `y` in one batch
    /// (each alone is fine).
    #[derive(Debug)]
    struct Lengths;

    impl ChunkDecoder for Lengths {
        fn decode_chunk(&self, messages: &[&[u8]]) -> Result<Option<Chunk>> {
            if let Some(i) = messages.iter().position(|m| *m == b"bad") {
                return Err(ConnectorError::malformed(
                    "a message",
                    format!("bad at {i}"),
                ));
            }
            if messages.contains(&&b"x"[..]) && messages.contains(&&b"y"[..]) {
                return Err(ConnectorError::malformed("a batch", "x with y"));
            }
            if messages.is_empty() {
                return Ok(None);
            }
            let lengths: Int64Array = messages.iter().map(|m| m.len() as i64).collect();
            let schema = Arc::new(Schema::new(vec![Field::new("len", DataType::Int64, false)]));
            let batch = RecordBatch::try_new(schema, vec![Arc::new(lengths)]).unwrap();
            Ok(Some(Chunk::inserts(batch)))
        }
    }

    /// An element seen: last offset, timestamp, rows or error, extra rows.
    type Seen = (i64, Option<i64>, Result<usize, String>, u64);

    /// Every element of a run of `values`.
    fn elements(values: &[Option<&[u8]>]) -> Vec<Seen> {
        let runs = ChunkRuns {
            decoder: Box::new(Lengths),
        };
        let mut test = TestRun::new(values);
        let mut run = test.run();
        let mut out = Vec::new();
        while let Some(KafkaElement {
            offset,
            timestamp,
            value,
            extra_rows,
            ..
        }) = runs.next_element(&mut run)
        {
            let rows = value.map(|c| c.map_or(0, |c| c.num_rows()));
            out.push((offset, timestamp, rows, extra_rows));
        }
        out
    }

    #[test]
    fn a_run_becomes_one_chunk_with_its_last_offset_and_latest_timestamp() {
        let got = elements(&[Some(b"a"), None, Some(b"bb"), Some(b"ccc")]);
        // The tombstone holds no row but its offset is covered.
        assert_eq!(got, vec![(3, Some(103), Ok(3), 2)]);
        assert_eq!(elements(&[None, None]), vec![(1, Some(101), Ok(0), 0)]);
    }

    #[test]
    fn a_refused_record_is_cut_out_with_its_own_offset_and_error() {
        let got = elements(&[
            Some(b"a"),
            Some(b"b"),
            Some(b"bad"),
            Some(b"c"),
            Some(b"bad"),
        ]);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], (1, Some(101), Ok(2), 1));
        assert_eq!(got[1].0, 2);
        assert!(
            got[1].2.as_ref().unwrap_err().contains("bad at 0"),
            "{got:?}"
        );
        assert_eq!(got[2], (3, Some(103), Ok(1), 0));
        assert_eq!(got[3].0, 4);
        assert!(got[3].2.is_err());
    }

    #[test]
    fn records_that_decode_alone_but_not_together_go_one_at_a_time() {
        let got = elements(&[Some(b"x"), Some(b"y")]);
        assert_eq!(
            got,
            vec![(0, Some(100), Ok(1), 0), (1, Some(101), Ok(1), 0)]
        );
    }

    #[test]
    fn a_chunk_holds_at_most_chunk_records() {
        let values: Vec<Option<&[u8]>> = vec![Some(b"v"); super::super::CHUNK_RECORDS * 2 + 5];
        let got = elements(&values);
        let rows: Vec<usize> = got.iter().map(|e| *e.2.as_ref().unwrap()).collect();
        let n = super::super::CHUNK_RECORDS;
        assert_eq!(rows, vec![n, n, 5]);
        assert_eq!(got[2].0, i64::try_from(2 * n + 4).unwrap());
    }
}
