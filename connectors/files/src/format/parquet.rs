//! Apache Parquet through Arrow: a bulk writer with codec and row-group options, async reading
//! of single row groups over any [`FileSystem`], and record-wise compaction.

use std::io::Write;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStream};
use parquet::arrow::{ArrowWriter, ParquetRecordBatchStreamBuilder};
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use weir_connector_api::error::{ConnectorError, Result};

use super::{BulkWriter, BulkWriterFactory, CompactInput, ToBatches, ToBatchesFactory};
use crate::fs::FileSystem;
use crate::Codec;

/// The default maximum rows per row group.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 1024 * 1024;

pub(crate) fn parquet_error(what: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::malformed(what.to_owned(), e.to_string())
}

/// Writes Parquet part files from records (through a [`ToBatches`] converter).
pub struct ParquetFormat<T> {
    to_batches: ToBatchesFactory<T>,
    schema: Option<SchemaRef>,
    codec: Codec,
    row_group_rows: usize,
}

impl<T> std::fmt::Debug for ParquetFormat<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetFormat")
            .field("codec", &self.codec)
            .field("row_group_rows", &self.row_group_rows)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for ParquetFormat<T> {
    fn clone(&self) -> Self {
        ParquetFormat {
            to_batches: Arc::clone(&self.to_batches),
            schema: self.schema.clone(),
            codec: self.codec,
            row_group_rows: self.row_group_rows,
        }
    }
}

impl<T: Send + 'static> ParquetFormat<T> {
    /// Parquet from records converted by `to_batches` (e.g.
    /// [`SerdeRecords::to_batches`](super::SerdeRecords::to_batches) or
    /// [`Batches::to_batches`](super::Batches::to_batches)), Snappy-compressed.
    pub fn new(to_batches: ToBatchesFactory<T>) -> Self {
        ParquetFormat {
            to_batches,
            schema: None,
            codec: Codec::Snappy,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
        }
    }

    /// Declares the schema up front (otherwise it is taken from the first batch of each file).
    pub fn with_schema(mut self, schema: SchemaRef) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Sets the compression codec.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Sets the maximum rows per row group.
    pub fn row_group_rows(mut self, rows: usize) -> Self {
        self.row_group_rows = rows.max(1);
        self
    }

    fn properties(&self) -> WriterProperties {
        self.properties_builder().build()
    }

    fn properties_builder(&self) -> WriterPropertiesBuilder {
        let compression = match self.codec {
            Codec::None => Compression::UNCOMPRESSED,
            Codec::Snappy => Compression::SNAPPY,
            Codec::Zstd => Compression::ZSTD(ZstdLevel::default()),
            Codec::Gzip => Compression::GZIP(GzipLevel::default()),
            Codec::Lz4 => Compression::LZ4_RAW,
        };
        WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.row_group_rows))
    }
}

/// A `Write` into a shared buffer, so the writer's output can be taken as it is produced.
#[derive(Clone, Default)]
pub(crate) struct SharedBuf(pub(crate) Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    /// Moves what was written into `out`: an empty `out` is swapped in (no copy; the writer
    /// drains `out` and hands its capacity back at the next swap), otherwise appended to.
    pub(crate) fn drain_into(&self, out: &mut Vec<u8>) {
        let mut buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if out.is_empty() {
            std::mem::swap(&mut *buf, out);
        } else {
            out.extend_from_slice(&buf);
            buf.clear();
        }
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct ParquetBulkWriter<T> {
    to_batches: Box<dyn ToBatches<T>>,
    writer: Option<ArrowWriter<SharedBuf>>,
    buf: SharedBuf,
    props: WriterProperties,
}

impl<T> ParquetBulkWriter<T> {
    fn write_batch(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let writer = match &mut self.writer {
            Some(w) => w,
            None => self.writer.insert(
                ArrowWriter::try_new(self.buf.clone(), batch.schema(), Some(self.props.clone()))
                    .map_err(|e| parquet_error("creating a Parquet writer", e))?,
            ),
        };
        writer
            .write(batch)
            .map_err(|e| parquet_error("writing a Parquet batch", e))?;
        self.buf.drain_into(out);
        Ok(())
    }
}

impl<T: Send> BulkWriter<T> for ParquetBulkWriter<T> {
    fn add(&mut self, element: T, out: &mut Vec<u8>) -> Result<()> {
        if let Some(batch) = self.to_batches.push(element)? {
            self.write_batch(&batch, out)?;
        }
        Ok(())
    }

    fn buffered_bytes(&self) -> u64 {
        self.to_batches.buffered_bytes()
            + self
                .writer
                .as_ref()
                .map_or(0, |w| w.in_progress_size() as u64)
    }

    fn finish(mut self: Box<Self>, out: &mut Vec<u8>) -> Result<()> {
        if let Some(batch) = self.to_batches.flush()? {
            self.write_batch(&batch, out)?;
        }
        if let Some(writer) = self.writer.take() {
            writer
                .close()
                .map_err(|e| parquet_error("closing a Parquet file", e))?;
        }
        self.buf.drain_into(out);
        Ok(())
    }
}

impl<T: Send + 'static> BulkWriterFactory<T> for ParquetFormat<T> {
    fn create_writer(&self) -> Result<Box<dyn BulkWriter<T>>> {
        let buf = SharedBuf::default();
        let props = self.properties();
        let writer = match &self.schema {
            Some(schema) => Some(
                ArrowWriter::try_new(buf.clone(), Arc::clone(schema), Some(props.clone()))
                    .map_err(|e| parquet_error("creating a Parquet writer", e))?,
            ),
            None => None,
        };
        Ok(Box::new(ParquetBulkWriter {
            to_batches: (self.to_batches)()?,
            writer,
            buf,
            props,
        }))
    }

    fn name(&self) -> &'static str {
        "parquet"
    }

    fn compact(&self, inputs: &[Bytes]) -> Result<Vec<u8>> {
        let inputs: Vec<CompactInput> = inputs
            .iter()
            .cloned()
            .map(CompactInput::from_bytes)
            .collect();
        // The output is about as large as the inputs: one allocation, no regrowth copies.
        let mut out = Vec::with_capacity(inputs.iter().map(|i| i.len() as usize).sum());
        super::parquet_compact::compact(
            &inputs,
            self.properties_builder(),
            self.row_group_rows,
            &mut out,
        )?;
        Ok(out)
    }

    fn compact_into(&self, inputs: &[CompactInput], out: &mut (dyn Write + Send)) -> Result<()> {
        super::parquet_compact::compact(inputs, self.properties_builder(), self.row_group_rows, out)
    }
}

/// Reads byte ranges of a Parquet file through a [`FileSystem`].
pub(crate) struct FsParquetReader {
    fs: Arc<dyn FileSystem>,
    path: String,
    len: u64,
}

impl FsParquetReader {
    pub(crate) fn new(fs: Arc<dyn FileSystem>, path: String, len: u64) -> Self {
        FsParquetReader { fs, path, len }
    }
}

fn to_parquet_error(e: &ConnectorError) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(e.to_string().into())
}

impl AsyncFileReader for FsParquetReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.fs
                .read_range(&self.path, range)
                .await
                .map_err(|e| to_parquet_error(&e))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let len = self.len;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(&mut *self, len)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// The row counts of a Parquet file's row groups.
pub async fn row_group_rows(fs: &Arc<dyn FileSystem>, path: &str, len: u64) -> Result<Vec<u64>> {
    let mut reader = FsParquetReader::new(Arc::clone(fs), path.to_owned(), len);
    let metadata = reader
        .get_metadata(None)
        .await
        .map_err(|e| parquet_error(&format!("reading the footer of {path}"), e))?;
    Ok(metadata
        .row_groups()
        .iter()
        .map(|rg| rg.num_rows().max(0) as u64)
        .collect())
}

/// A stream of batches of one Parquet file (or one of its row groups), skipping `skip` rows.
pub(crate) async fn open_stream(
    fs: &Arc<dyn FileSystem>,
    path: &str,
    len: u64,
    row_group: Option<usize>,
    skip: u64,
    batch_size: usize,
) -> Result<ParquetRecordBatchStream<FsParquetReader>> {
    let reader = FsParquetReader::new(Arc::clone(fs), path.to_owned(), len);
    let mut builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| parquet_error(&format!("opening {path}"), e))?
        .with_batch_size(batch_size.max(1));
    if let Some(rg) = row_group {
        builder = builder.with_row_groups(vec![rg]);
    }
    if skip > 0 {
        builder = builder.with_offset(skip as usize);
    }
    builder
        .build()
        .map_err(|e| parquet_error(&format!("opening {path}"), e))
}

/// The next batch of a Parquet stream (cancel-safe).
pub(crate) async fn next_batch(
    stream: &mut ParquetRecordBatchStream<FsParquetReader>,
    path: &str,
) -> Result<Option<RecordBatch>> {
    match stream.next().await {
        Some(Ok(batch)) => Ok(Some(batch)),
        Some(Err(e)) => Err(parquet_error(&format!("reading {path}"), e)),
        None => Ok(None),
    }
}
