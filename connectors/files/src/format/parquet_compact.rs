//! Compaction of Parquet part files without re-encoding what is already well encoded: row
//! groups of at least an eighth of the row-group size (131 072 rows of the default 1 Mi, about
//! DuckDB's default row group) are copied as they are (their encoded
//! column chunks, statistics and page indexes, as `parquet-concat` does); smaller ones — the
//! tails of part files cut at checkpoints, or whole files of a slow stream — are decoded and
//! encoded again together, into row groups of up to the row-group size. So compacting the
//! files of a fast stream costs little more than reading them, and compacting many small
//! files still yields full row groups. Rows keep their order.
//!
//! It streams: the inputs are read range by range where they lie ([`CompactInput`]: a local
//! file is read in place, with positioned reads), and the compacted file goes to the output as
//! it is made, so neither the inputs nor the output are ever held in memory whole.

use std::io::Write;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::arrow::parquet_to_arrow_schema;
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterPropertiesBuilder;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::writer::SerializedFileWriter;
use weir_connector_api::error::Result;

use super::compact_input::{CompactInput, InputReader};
use super::parquet::parquet_error;

/// A row group of at least `row_group_rows / COPY_FRACTION` rows is copied.
const COPY_FRACTION: usize = 8;

/// A [`CompactInput`] as the parquet crate reads files.
struct ParquetInput(CompactInput);

impl Length for ParquetInput {
    fn len(&self) -> u64 {
        self.0.len()
    }
}

impl ChunkReader for ParquetInput {
    type T = InputReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<InputReader> {
        Ok(self.0.reader_at(start))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.0
            .range(start, length)
            .map_err(|e| ParquetError::External(Box::new(e)))
    }
}

/// Compacts `inputs` (Parquet files of one schema) into one file written to `out` with
/// `props` (compression and row-group size, for what is encoded again). Writes nothing when the
/// inputs hold no rows.
pub(crate) fn compact<W: Write + Send>(
    inputs: &[CompactInput],
    props: WriterPropertiesBuilder,
    row_group_rows: usize,
    out: W,
) -> Result<()> {
    let mut files = Vec::with_capacity(inputs.len());
    for input in inputs {
        let input = ParquetInput(input.clone());
        let metadata = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .parse_and_finish(&input)
            .map_err(|e| parquet_error("reading the footer of a Parquet file to compact", e))?;
        files.push((input, Arc::new(metadata)));
    }
    let Some((_, first)) = files.first() else {
        return Ok(());
    };
    if files.iter().all(|(_, m)| m.file_metadata().num_rows() == 0) {
        return Ok(());
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
    let mut writer = SerializedFileWriter::new(out, schema.root_schema_ptr(), props)
        .map_err(|e| parquet_error("creating the compacted Parquet file", e))?;
    let copy_rows = (row_group_rows / COPY_FRACTION).max(1);
    let mut small = SmallGroups::new(&writer, arrow, row_group_rows, copy_rows);
    for (input, metadata) in &files {
        // Made once per file, for its first small row group.
        let mut reader_metadata = None;
        for (index, group) in metadata.row_groups().iter().enumerate() {
            if group.num_rows() >= copy_rows as i64 {
                small.flush(&mut writer)?;
                copy_row_group(&mut writer, input, metadata, index)?;
            } else {
                let reader_metadata = match &reader_metadata {
                    Some(m) => m,
                    None => reader_metadata.insert(
                        ArrowReaderMetadata::try_new(
                            Arc::clone(metadata),
                            ArrowReaderOptions::new(),
                        )
                        .map_err(|e| parquet_error("reading a Parquet file to compact", e))?,
                    ),
                };
                small.read(&mut writer, input, reader_metadata, index)?;
            }
        }
    }
    small.flush(&mut writer)?;
    writer
        .close()
        .map_err(|e| parquet_error("closing the compacted Parquet file", e))?;
    Ok(())
}

/// Appends row group `index` of `input` to `writer` as it is encoded.
fn copy_row_group<W: Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    input: &ParquetInput,
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

/// The rows of small row groups, decoded and encoded again into full row groups: the column
/// writers of the row group being filled stay open across inputs.
struct SmallGroups {
    factory: ArrowRowGroupWriterFactory,
    arrow: SchemaRef,
    row_group_rows: usize,
    /// Each small row group is read as one batch.
    batch_rows: usize,
    /// The column writers of the row group being filled, if any.
    open: Option<Vec<ArrowColumnWriter>>,
    rows: usize,
}

impl SmallGroups {
    fn new<W: Write + Send>(
        writer: &SerializedFileWriter<W>,
        arrow: SchemaRef,
        row_group_rows: usize,
        batch_rows: usize,
    ) -> Self {
        SmallGroups {
            factory: ArrowRowGroupWriterFactory::new(writer, Arc::clone(&arrow)),
            arrow,
            row_group_rows: row_group_rows.max(1),
            batch_rows: batch_rows.max(1),
            open: None,
            rows: 0,
        }
    }

    /// Decodes row group `index` of `input` into the row group being filled, writing full row
    /// groups as they fill.
    fn read<W: Write + Send>(
        &mut self,
        writer: &mut SerializedFileWriter<W>,
        input: &ParquetInput,
        metadata: &ArrowReaderMetadata,
        index: usize,
    ) -> Result<()> {
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
            ParquetInput(input.0.clone()),
            metadata.clone(),
        )
        .with_row_groups(vec![index])
        .with_batch_size(self.batch_rows)
        .build()
        .map_err(|e| parquet_error("reading a Parquet file to compact", e))?;
        for batch in reader {
            let mut batch = batch.map_err(|e| parquet_error("reading a Parquet batch", e))?;
            while self.rows + batch.num_rows() >= self.row_group_rows {
                let take = self.row_group_rows - self.rows;
                self.write(writer, &batch.slice(0, take))?;
                batch = batch.slice(take, batch.num_rows() - take);
                self.flush(writer)?;
            }
            if batch.num_rows() > 0 {
                self.write(writer, &batch)?;
            }
        }
        Ok(())
    }

    /// Encodes `batch` into the row group being filled.
    fn write<W: Write + Send>(
        &mut self,
        writer: &SerializedFileWriter<W>,
        batch: &RecordBatch,
    ) -> Result<()> {
        let columns = match &mut self.open {
            Some(columns) => columns,
            None => self.open.insert(
                self.factory
                    .create_column_writers(writer.flushed_row_groups().len())
                    .map_err(encode_error)?,
            ),
        };
        let mut leaves_of = columns.iter_mut();
        for (array, field) in batch.columns().iter().zip(self.arrow.fields()) {
            for leaf in compute_leaves(field, array).map_err(encode_error)? {
                let Some(column) = leaves_of.next() else {
                    return Err(encode_error(ParquetError::General(
                        "more leaf columns than the schema has".into(),
                    )));
                };
                column.write(&leaf).map_err(encode_error)?;
            }
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Closes the row group being filled, if any.
    fn flush<W: Write + Send>(&mut self, writer: &mut SerializedFileWriter<W>) -> Result<()> {
        let Some(columns) = self.open.take() else {
            return Ok(());
        };
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

fn encode_error(e: ParquetError) -> weir_connector_api::error::ConnectorError {
    parquet_error("encoding a row group of the compacted file", e)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use arrow_array::{Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use std::io::{Read, Seek};

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

    /// Compacts files held in memory into memory.
    fn compact_bytes(inputs: &[Bytes], row_group_rows: usize) -> Result<Vec<u8>> {
        let inputs: Vec<CompactInput> = inputs
            .iter()
            .cloned()
            .map(CompactInput::from_bytes)
            .collect();
        let mut out = Vec::new();
        compact(&inputs, props(), row_group_rows, &mut out)?;
        Ok(out)
    }

    #[test]
    fn large_row_groups_are_copied_and_small_ones_encoded_together() {
        // Two files of a fast stream: 1 000-row groups and a 100-row tail each (an eighth of
        // 1 000 is 125, so the tails are re-encoded), then ten small files of 100 rows.
        let mut inputs = vec![file(0..2_100, 1_000), file(2_100..4_200, 1_000)];
        inputs.extend((0..10).map(|i| file(4_200 + i * 100..4_300 + i * 100, 1_000)));
        let out = compact_bytes(&inputs, 1_000).unwrap();
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
        let (rows, groups) = read(&compact_bytes(&inputs, 1_000).unwrap());
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
        let err = compact_bytes(&[file(0..10, 1_000), other], 1_000).unwrap_err();
        assert!(err.to_string().contains("different schemas"), "{err}");
    }

    #[test]
    fn files_read_in_place_compact_into_a_file_as_in_memory() {
        // Copied groups, re-encoded tails and small files, read from files on disk (each with
        // bytes after its end that are not its own) and written into a file.
        let mut inputs = vec![file(0..2_100, 1_000), file(2_100..4_200, 1_000)];
        inputs.extend((0..10).map(|i| file(4_200 + i * 100..4_300 + i * 100, 1_000)));
        let in_memory = compact_bytes(&inputs, 1_000).unwrap();
        let on_disk: Vec<CompactInput> = inputs
            .iter()
            .map(|bytes| {
                let mut f = tempfile::tempfile().unwrap();
                f.write_all(bytes).unwrap();
                f.write_all(b"not this file's").unwrap();
                CompactInput::from_file(f, bytes.len() as u64)
            })
            .collect();
        let mut out = tempfile::tempfile().unwrap();
        compact(&on_disk, props(), 1_000, &mut out).unwrap();
        let mut written = Vec::new();
        out.seek(std::io::SeekFrom::Start(0)).unwrap();
        out.read_to_end(&mut written).unwrap();
        assert_eq!(read(&written).0, expected(0..5_200));
        assert_eq!(written, in_memory, "the same file, byte for byte");
    }

    #[test]
    fn inputs_without_rows_write_nothing() {
        let empty = {
            let mut out = Vec::new();
            ArrowWriter::try_new(&mut out, schema(), None)
                .unwrap()
                .close()
                .unwrap();
            Bytes::from(out)
        };
        assert!(compact_bytes(&[empty.clone(), empty], 1_000)
            .unwrap()
            .is_empty());
        assert!(compact_bytes(&[], 1_000).unwrap().is_empty());
    }
}
