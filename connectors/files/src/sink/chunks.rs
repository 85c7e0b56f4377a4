//! Date-time buckets for columnar pipeline batches. The sink's writer names one bucket per
//! record, and a chunk is one record: [`ChunkBuckets::split`] first cuts a chunk into chunks of
//! one bucket each (zero-copy slices for times in order), then [`ChunkBuckets`] names each
//! one's bucket from its first row — the buckets the row path gives the same rows.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::UInt32Array;
use weir_formats::chunk::Chunk;

use super::bucket::{BucketAssigner, BucketContext, DateTimeBucketAssigner, TimeSource};

/// Date-time buckets named by a time column of the chunks (a null time uses processing time,
/// as for rows).
#[derive(Debug, Clone)]
pub struct ChunkBuckets {
    inner: Arc<DateTimeBucketAssigner>,
    index: usize,
}

impl ChunkBuckets {
    /// Buckets formatted with `format` (a checked `chrono` format string) from column `index`
    /// (a millisecond timestamp or an int64 of epoch milliseconds).
    pub fn new(format: &str, index: usize) -> Self {
        ChunkBuckets {
            inner: Arc::new(DateTimeBucketAssigner::new(format).time_source(TimeSource::EventTime)),
            index,
        }
    }

    /// `chunk` cut into chunks of one bucket each: the chunk itself when all its rows share
    /// one, zero-copy slices when its rows come in a few runs of one bucket (times in order,
    /// as most event times are), else one chunk per bucket gathered with Arrow's `take`, rows
    /// in their order. Names are formatted once per span of time they cover (a day for
    /// `%Y-%m-%d`), not per row.
    pub fn split(&self, chunk: Chunk) -> Vec<Chunk> {
        let rows = chunk.num_rows();
        // The bucket of every row, as an index into `names` (`None`: a null time).
        let mut names: HashMap<Option<String>, u32> = HashMap::new();
        let mut of_row: Vec<u32> = Vec::with_capacity(rows);
        let mut runs = 0;
        let mut last_span = None::<Option<i64>>;
        let mut current = 0u32;
        let times = chunk.times(self.index);
        for row in 0..rows {
            let time = times.as_ref().and_then(|t| t.get(row));
            let span = time.map(|t| self.inner.span_of(t));
            if last_span != Some(span) {
                last_span = Some(span);
                // A null time has its own bucket (the writer's processing time).
                let name = time.map(|t| self.inner.format_millis(t));
                let next = names.len() as u32;
                let index = *names.entry(name).or_insert(next);
                if row == 0 || index != current {
                    runs += 1;
                }
                current = index;
            }
            of_row.push(current);
        }
        if names.len() <= 1 {
            return vec![chunk];
        }
        if runs <= MAX_SLICES {
            let mut pieces = Vec::with_capacity(runs);
            let mut start = 0;
            for row in 1..=rows {
                if row == rows || of_row[row] != of_row[start] {
                    pieces.push(chunk.slice(start, row - start));
                    start = row;
                }
            }
            return pieces;
        }
        (0..names.len() as u32)
            .filter_map(|bucket| {
                let indices: UInt32Array = of_row
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == bucket)
                    .map(|(row, _)| row as u32)
                    .collect();
                (!indices.is_empty()).then(|| gather(&chunk, &indices))
            })
            .collect()
    }
}

/// Up to this many runs of one bucket, a chunk is cut into slices; more, and each bucket's
/// rows are gathered into one chunk (a copy, but one record per bucket, not per run).
const MAX_SLICES: usize = 8;

/// The rows `indices` of `chunk`, in that order.
fn gather(chunk: &Chunk, indices: &UInt32Array) -> Chunk {
    // The indices are rows of the chunk: taking them cannot fail.
    #[allow(clippy::expect_used)]
    let batch = arrow_select::take::take_record_batch(chunk.batch(), indices)
        .expect("the indices are rows of the chunk");
    let kinds = chunk.kinds().map(|kinds| {
        indices
            .values()
            .iter()
            .map(|i| kinds[*i as usize])
            .collect::<Arc<[_]>>()
    });
    // One kind per taken row.
    #[allow(clippy::expect_used)]
    Chunk::new(batch, kinds).expect("one kind per row")
}

impl BucketAssigner<Chunk> for ChunkBuckets {
    fn bucket_id(&self, element: &Chunk, ctx: &BucketContext) -> String {
        let timestamp = element.times(self.index).and_then(|t| t.get(0));
        self.inner
            .bucket_id(element, &BucketContext { timestamp, ..*ctx })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use arrow_array::{Array, Int64Array, RecordBatch, TimestampMillisecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use weir_connector_api::row::RowKind;

    use super::*;

    /// A chunk of ids `0..` with the times `at` (milliseconds, `None` for a null).
    fn chunk(at: &[Option<i64>], kinds: Option<Vec<RowKind>>) -> Chunk {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let ids = Int64Array::from_iter_values(0..at.len() as i64);
        let times = TimestampMillisecondArray::from(at.to_vec());
        let batch = RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(times)]).unwrap();
        Chunk::new(batch, kinds.map(Arc::from)).unwrap()
    }

    fn ids(chunk: &Chunk) -> Vec<i64> {
        let ids = chunk
            .batch()
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>();
        ids.unwrap().values().to_vec()
    }

    fn bucket(buckets: &ChunkBuckets, chunk: &Chunk) -> String {
        let ctx = BucketContext {
            processing_time_millis: 0,
            timestamp: None,
            watermark: i64::MIN,
        };
        buckets.bucket_id(chunk, &ctx)
    }

    #[test]
    fn times_in_order_are_cut_into_slices_at_bucket_changes() {
        let buckets = ChunkBuckets::new("%M", 1);
        // Minute 0 for three rows, minute 1 for two, one null, minute 1 again.
        let at = [0, 30_000, 59_999, 60_000, 119_000]
            .map(Some)
            .into_iter()
            .chain([None, Some(61_000)])
            .collect::<Vec<_>>();
        let pieces = buckets.split(chunk(&at, None));
        let got: Vec<(String, Vec<i64>)> = pieces
            .iter()
            .map(|p| (bucket(&buckets, p), ids(p)))
            .collect();
        assert_eq!(
            got,
            [
                ("00".to_owned(), vec![0, 1, 2]),
                ("01".to_owned(), vec![3, 4]),
                // A null time: the writer's processing time (0 here).
                ("00".to_owned(), vec![5]),
                ("01".to_owned(), vec![6]),
            ]
        );
    }

    #[test]
    fn one_bucket_keeps_the_chunk_whole() {
        let buckets = ChunkBuckets::new("%Y", 1);
        let whole = chunk(&[Some(0), Some(1_000), Some(86_400_000)], None);
        let pieces = buckets.split(whole.clone());
        assert_eq!(pieces, vec![whole]);
    }

    #[test]
    fn times_out_of_order_are_gathered_per_bucket_with_their_kinds() {
        let buckets = ChunkBuckets::new("%S", 1);
        // Alternating seconds 0 and 1: 20 runs, two buckets.
        let at: Vec<Option<i64>> = (0..20).map(|i| Some((i % 2) * 1_000)).collect();
        let kinds: Vec<RowKind> = (0..20)
            .map(|i| {
                if i == 3 {
                    RowKind::Delete
                } else {
                    RowKind::Insert
                }
            })
            .collect();
        let pieces = buckets.split(chunk(&at, Some(kinds)));
        assert_eq!(pieces.len(), 2);
        let mut got: Vec<(String, Vec<i64>)> = pieces
            .iter()
            .map(|p| (bucket(&buckets, p), ids(p)))
            .collect();
        got.sort();
        assert_eq!(got[0], ("00".to_owned(), (0..20).step_by(2).collect()));
        assert_eq!(got[1], ("01".to_owned(), (1..20).step_by(2).collect()));
        // Row 3 (the second of bucket 01) kept its kind.
        let odd = pieces.iter().find(|p| ids(p)[0] == 1).unwrap();
        assert_eq!(odd.kinds().unwrap()[1], RowKind::Delete);
        assert_eq!(odd.kinds().unwrap()[0], RowKind::Insert);
    }
}
