//! Compaction of Parquet part files without re-encoding what is already well encoded: row
//! groups of at least an eighth of the row-group size (131 072 rows of the default 1 Mi, about
//! DuckDB's default row group) are copied as they are (their encoded
//! column chunks, statistics and page indexes, as `parquet-concat` does); smaller ones — the
//! tails of part files cut at checkpoints, or whole files of a slow stream — are decoded and
//! encoded again together, into row groups of up to the row-group size. So compacting the
//! files of a fast stream costs little more than reading them, and compacting many small
//! files still yields full row groups. Rows keep their order.

use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowRowGroupWriterFactory};
use parquet::arrow::parquet_to_arrow_schema;
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterPropertiesBuilder;
use parquet::file::writer::SerializedFileWriter;
use weir_connector_api::error::Result;

use super::parquet::{parquet_error, SharedBuf};

/// A row group of at least `row_group_rows / COPY_FRACTION` rows is copied.
const COPY_FRACTION: usize = 8;

/// Compacts `inputs` (Parquet files of one schema) into one file written with `props`
/// (compression and row-group size, for what is encoded again).
pub(crate) fn compact(
    inputs: &[Bytes],
    props: WriterPropertiesBuilder,
    row_group_rows: usize,
) -> Result<Vec<u8>> {
    let mut files = Vec::with_capacity(inputs.len());
    for input in inputs {
        let metadata = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .parse_and_finish(input)
            .map_err(|e| parquet_error("reading the footer of a Parquet file to compact", e))?;
        files.push((input, metadata));
    }
    let Some((_, first)) = files.first() else {
        return Ok(Vec::new());
    };
    if files.iter().all(|(_, m)| m.file_metadata().num_rows() == 0) {
        return Ok(Vec::new());
    }
    let schema = first.file_metadata().schema_descr_ptr();
    if let Some((_, other)) = files
        .iter()
        .find(|(_, m)| m.file_metadata().schema() != schema.root_schema())
    {
        return Err(parquet_error(
            "compacting Parquet files",
            format!(
                "the files have different schemas ({:?} and {:?}): only files of one sink's \
                 schema can be compacted together",
                schema.root_schema(),
                other.file_metadata().schema()
            ),
        ));
    }
    let key_value = first.file_metadata().key_value_metadata().cloned();
    let arrow: SchemaRef = Arc::new(
        parquet_to_arrow_schema(&schema, key_value.as_ref())
            .map_err(|e| parquet_error("reading the Arrow schema of a Parquet file", e))?,
    );
    let props = Arc::new(props.set_key_value_metadata(key_value).build());
    // The output is about as large as the inputs: one allocation, no regrowth copies.
    let total: usize = inputs.iter().map(Bytes::len).sum();
    let buf = SharedBuf(Arc::new(Mutex::new(Vec::with_capacity(total))));
    let mut writer = SerializedFileWriter::new(buf.clone(), schema.root_schema_ptr(), props)
        .map_err(|e| parquet_error("creating the compacted Parquet file", e))?;
    let mut small = SmallGroups::new(arrow, row_group_rows);
    let copy_rows = (row_group_rows / COPY_FRACTION).max(1) as i64;
    for (input, metadata) in &files {
        for (index, group) in metadata.row_groups().iter().enumerate() {
            if group.num_rows() >= copy_rows {
                small.flush(&mut writer)?;
                copy_row_group(&mut writer, input, metadata, index)?;
            } else {
                small.read(&mut writer, input, index)?;
            }
        }
    }
    small.flush(&mut writer)?;
    writer
        .close()
        .map_err(|e| parquet_error("closing the compacted Parquet file", e))?;
    let mut out = Vec::new();
    buf.drain_into(&mut out);
    Ok(out)
}

/// Appends row group `index` of `input` to `writer` as it is encoded.
fn copy_row_group(
    writer: &mut SerializedFileWriter<SharedBuf>,
    input: &Bytes,
    metadata: &ParquetMetaData,
    index: usize,
) -> Result<()> {
    let copy_error = |e| parquet_error("copying a row group into the compacted Parquet file", e);
    let group = &metadata.row_groups()[index];
    let column_index = metadata.column_index().and_then(|c| c.get(index));
    let offset_index = metadata.offset_index().and_then(|o| o.get(index));
    let mut out = writer.next_row_group().map_err(copy_error)?;
    for (c, column) in group.columns().iter().enumerate() {
        let close = ColumnCloseResult {
            bytes_written: column.compressed_size() as u64,
            rows_written: group.num_rows() as u64,
            metadata: column.clone(),
            bloom_filter: None,
            column_index: column_index.and_then(|row| row.get(c)).cloned(),
            offset_index: offset_index.and_then(|row| row.get(c)).cloned(),
        };
        out.append_column(input, close).map_err(copy_error)?;
    }
    out.close().map_err(copy_error)?;
    Ok(())
}

/// Rows of small row groups, decoded, waiting to be encoded into full row groups.
struct SmallGroups {
    arrow: SchemaRef,
    row_group_rows: usize,
    batches: Vec<RecordBatch>,
    rows: usize,
}

impl SmallGroups {
    fn new(arrow: SchemaRef, row_group_rows: usize) -> Self {
        SmallGroups {
            arrow,
            row_group_rows: row_group_rows.max(1),
            batches: Vec::new(),
            rows: 0,
        }
    }

    /// Decodes row group `index` of `input`, writing full row groups as they fill.
    fn read(
        &mut self,
        writer: &mut SerializedFileWriter<SharedBuf>,
        input: &Bytes,
        index: usize,
    ) -> Result<()> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(input.clone())
            .map(|b| b.with_row_groups(vec![index]))
            .and_then(ParquetRecordBatchReaderBuilder::build)
            .map_err(|e| parquet_error("reading a Parquet file to compact", e))?;
        for batch in reader {
            let mut batch = batch.map_err(|e| parquet_error("reading a Parquet batch", e))?;
            while self.rows + batch.num_rows() >= self.row_group_rows {
                let take = self.row_group_rows - self.rows;
                self.push(batch.slice(0, take));
                batch = batch.slice(take, batch.num_rows() - take);
                self.flush(writer)?;
            }
            if batch.num_rows() > 0 {
                self.push(batch);
            }
        }
        Ok(())
    }

    fn push(&mut self, batch: RecordBatch) {
        self.rows += batch.num_rows();
        self.batches.push(batch);
    }

    /// Encodes what waits as one row group.
    fn flush(&mut self, writer: &mut SerializedFileWriter<SharedBuf>) -> Result<()> {
        if self.batches.is_empty() {
            return Ok(());
        }
        let encode_error = |e| parquet_error("encoding a row group of the compacted file", e);
        let index = writer.flushed_row_groups().len();
        let mut columns = ArrowRowGroupWriterFactory::new(writer, Arc::clone(&self.arrow))
            .create_column_writers(index)
            .map_err(encode_error)?;
        for batch in self.batches.drain(..) {
            let mut leaves_of = columns.iter_mut();
            for (array, field) in batch.columns().iter().zip(self.arrow.fields()) {
                for leaf in compute_leaves(field, array).map_err(encode_error)? {
                    let Some(column) = leaves_of.next() else {
                        return Err(encode_error(parquet::errors::ParquetError::General(
                            "more leaf columns than the schema has".into(),
                        )));
                    };
                    column.write(&leaf).map_err(encode_error)?;
                }
            }
        }
        self.rows = 0;
        let mut group = writer.next_row_group().map_err(encode_error)?;
        for column in columns {
            column
                .close()
                .and_then(|chunk| chunk.append_to_row_group(&mut group))
                .map_err(encode_error)?;
        }
        group.close().map_err(encode_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use arrow_array::{Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    /// A file of ids `ids`, in row groups of `group` rows.
    fn file(ids: std::ops::Range<i64>, group: usize) -> Bytes {
        let names: Vec<Option<String>> = ids
            .clone()
            .map(|i| (i % 3 != 0).then(|| format!("n{i}")))
            .collect();
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group))
            .build();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        Bytes::from(out)
    }

    /// The ids and names of a file, and the rows of its row groups.
    fn read(file: &[u8]) -> (Vec<(i64, Option<String>)>, Vec<i64>) {
        let bytes = Bytes::copy_from_slice(file);
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        assert_eq!(builder.schema(), &schema());
        let groups = builder
            .metadata()
            .row_groups()
            .iter()
            .map(parquet::file::metadata::RowGroupMetaData::num_rows)
            .collect();
        let mut rows = Vec::new();
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let names = batch
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            for r in 0..batch.num_rows() {
                let name = names.is_valid(r).then(|| names.value(r).to_owned());
                rows.push((ids.value(r), name));
            }
        }
        (rows, groups)
    }

    fn expected(ids: std::ops::Range<i64>) -> Vec<(i64, Option<String>)> {
        ids.map(|i| (i, (i % 3 != 0).then(|| format!("n{i}"))))
            .collect()
    }

    fn props() -> WriterPropertiesBuilder {
        WriterProperties::builder()
    }

    #[test]
    fn large_row_groups_are_copied_and_small_ones_encoded_together() {
        // Two files of a fast stream: 1 000-row groups and a 100-row tail each (an eighth of
        // 1 000 is 125, so the tails are re-encoded), then ten small files of 100 rows.
        let mut inputs = vec![file(0..2_100, 1_000), file(2_100..4_200, 1_000)];
        inputs.extend((0..10).map(|i| file(4_200 + i * 100..4_300 + i * 100, 1_000)));
        let out = compact(&inputs, props(), 1_000).unwrap();
        let (rows, groups) = read(&out);
        assert_eq!(rows, expected(0..5_200), "every row once, in order");
        // Copied, copied, the first tail (written before the next copy, to keep the order);
        // copied, copied, then the second tail and the small files encoded together: 1 100
        // rows, a full group and 100.
        assert_eq!(groups, [1_000, 1_000, 100, 1_000, 1_000, 1_000, 100]);
        // The copied groups are the input's encoded column chunks, byte for byte.
        let input = ParquetMetaDataReader::new()
            .parse_and_finish(&inputs[0])
            .unwrap();
        let output = ParquetMetaDataReader::new()
            .parse_and_finish(&Bytes::from(out))
            .unwrap();
        let sizes = |m: &ParquetMetaData, g: usize| {
            m.row_groups()[g]
                .columns()
                .iter()
                .map(parquet::file::metadata::ColumnChunkMetaData::compressed_size)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(&output, 0), sizes(&input, 0));
    }

    #[test]
    fn small_files_fill_whole_row_groups() {
        let inputs: Vec<Bytes> = (0..25)
            .map(|i| file(i * 100..i * 100 + 100, 1_000))
            .collect();
        let (rows, groups) = read(&compact(&inputs, props(), 1_000).unwrap());
        assert_eq!(rows, expected(0..2_500));
        assert_eq!(groups, [1_000, 1_000, 500]);
    }

    #[test]
    fn files_of_other_schemas_are_refused() {
        let other = {
            let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from_iter_values(0..10))],
            )
            .unwrap();
            let mut out = Vec::new();
            let mut w = ArrowWriter::try_new(&mut out, schema, None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            Bytes::from(out)
        };
        let err = compact(&[file(0..10, 1_000), other], props(), 1_000).unwrap_err();
        assert!(err.to_string().contains("different schemas"), "{err}");
    }
}
