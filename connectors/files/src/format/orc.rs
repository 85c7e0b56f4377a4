//! Apache ORC through Arrow (`orc-rust`): a bulk writer with codec and stripe options, reading,
//! and record-wise compaction.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use orc_rust::arrow_reader::ArrowReaderBuilder;
use orc_rust::arrow_writer::{ArrowWriter, ArrowWriterBuilder};
use orc_rust::compression::CompressionType;
use weir_connector_api::error::{ConnectorError, Result};

use super::parquet::SharedBuf;
use super::{BulkWriter, BulkWriterFactory, ToBatches, ToBatchesFactory};
use crate::Codec;

/// The default stripe size in bytes.
pub const DEFAULT_STRIPE_BYTES: usize = 64 * 1024 * 1024;

fn orc_error(what: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::malformed(what.to_owned(), e.to_string())
}

/// Maps a batch onto the types `orc-rust` writes: unsigned integers become the next wider signed
/// type (`u64` values above `i64::MAX` are an error); nested and other types are refused with a
/// clear error instead of reaching the writer (which would panic).
fn orc_compatible(batch: &RecordBatch) -> Result<RecordBatch> {
    use arrow_schema::{DataType, Field, Schema};
    let schema = batch.schema();
    let mut changed = false;
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let target = match field.data_type() {
            DataType::UInt8 => Some(DataType::Int16),
            DataType::UInt16 => Some(DataType::Int32),
            DataType::UInt32 | DataType::UInt64 => Some(DataType::Int64),
            DataType::Float32
            | DataType::Float64
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32
            | DataType::Timestamp(_, _)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::Boolean => None,
            other => {
                return Err(ConnectorError::malformed(
                    format!("ORC column `{}`", field.name()),
                    format!(
                        "the ORC writer does not support {other}; use flat numeric, boolean,                          string, binary, date or timestamp fields (or Parquet)"
                    ),
                ))
            }
        };
        match target {
            Some(t) => {
                changed = true;
                let options = arrow_cast::CastOptions {
                    safe: false,
                    ..Default::default()
                };
                let cast = arrow_cast::cast_with_options(column, &t, &options)
                    .map_err(|e| orc_error(&format!("ORC column `{}`", field.name()), e))?;
                fields.push(Field::new(field.name(), t, field.is_nullable()));
                columns.push(cast);
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(Arc::clone(column));
            }
        }
    }
    if !changed {
        return Ok(batch.clone());
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| orc_error("converting a batch for ORC", e))
}

/// Why the ORC writer cannot hold rows of `schema` (its first decimal, list, struct or map
/// field: `orc-rust` writes none of them), or `None`. Checked when the pipeline is validated,
/// so the mistake is not found at the first row.
#[cfg(weir_api_1_1)]
pub fn orc_refusal(schema: &weir_connector_api::row::Schema) -> Option<String> {
    use weir_connector_api::row::DataType;
    let field = schema
        .fields
        .iter()
        .find(|f| f.data_type.is_nested() || matches!(f.data_type, DataType::Decimal128 { .. }))?;
    Some(format!(
        "field `{}` is {}, which the ORC writer cannot hold (it writes flat numeric, boolean, \
         string, binary, date and timestamp columns): use `format = \"parquet\"`, or change \
         the field's type",
        field.name, field.data_type
    ))
}

/// Runs the `orc-rust` writer, turning a panic inside it into an error.
fn guarded<R>(what: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic in the ORC writer".to_owned());
        Err(orc_error(what, reason))
    })
}

/// Writes ORC part files from records (through a [`ToBatches`] converter).
pub struct OrcFormat<T> {
    to_batches: ToBatchesFactory<T>,
    schema: Option<SchemaRef>,
    codec: Codec,
    stripe_bytes: usize,
}

impl<T> std::fmt::Debug for OrcFormat<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrcFormat")
            .field("codec", &self.codec)
            .field("stripe_bytes", &self.stripe_bytes)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for OrcFormat<T> {
    fn clone(&self) -> Self {
        OrcFormat {
            to_batches: Arc::clone(&self.to_batches),
            schema: self.schema.clone(),
            codec: self.codec,
            stripe_bytes: self.stripe_bytes,
        }
    }
}

impl<T: Send + 'static> OrcFormat<T> {
    /// ORC from records converted by `to_batches`, Zstd-compressed.
    pub fn new(to_batches: ToBatchesFactory<T>) -> Self {
        OrcFormat {
            to_batches,
            schema: None,
            codec: Codec::Zstd,
            stripe_bytes: DEFAULT_STRIPE_BYTES,
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

    /// Sets the stripe size in bytes.
    pub fn stripe_bytes(mut self, bytes: usize) -> Self {
        self.stripe_bytes = bytes.max(1024);
        self
    }

    fn builder(&self, buf: SharedBuf, schema: SchemaRef) -> Result<ArrowWriter<SharedBuf>> {
        let mut builder =
            ArrowWriterBuilder::new(buf, schema).with_stripe_byte_size(self.stripe_bytes);
        let compression = match self.codec {
            Codec::None => None,
            Codec::Snappy => Some(CompressionType::Snappy),
            Codec::Zstd => Some(CompressionType::Zstd),
            Codec::Gzip => Some(CompressionType::Zlib),
            Codec::Lz4 => Some(CompressionType::Lz4),
        };
        if let Some(c) = compression {
            builder = builder.with_compression(c);
        }
        builder
            .try_build()
            .map_err(|e| orc_error("creating an ORC writer", e))
    }
}

/// Holds the file's batches until `finish`: `orc-rust`'s writer is not `Send`, so it only lives
/// inside `finish` (bulk part files are closed at every checkpoint, so this is one checkpoint's
/// worth of data).
struct OrcBulkWriter<T> {
    format: OrcFormat<T>,
    to_batches: Box<dyn ToBatches<T>>,
    batches: Vec<RecordBatch>,
    buffered: u64,
}

impl<T: Send + 'static> BulkWriter<T> for OrcBulkWriter<T> {
    fn add(&mut self, element: T, _out: &mut Vec<u8>) -> Result<()> {
        if let Some(batch) = self.to_batches.push(element)? {
            self.buffered += batch.get_array_memory_size() as u64;
            self.batches.push(batch);
        }
        Ok(())
    }

    fn buffered_bytes(&self) -> u64 {
        self.buffered + self.to_batches.buffered_bytes()
    }

    fn finish(mut self: Box<Self>, out: &mut Vec<u8>) -> Result<()> {
        if let Some(batch) = self.to_batches.flush()? {
            self.batches.push(batch);
        }
        let batches = self
            .batches
            .iter()
            .map(orc_compatible)
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = batches.first() else {
            return Ok(());
        };
        let schema = first.schema();
        let buf = SharedBuf::default();
        let format = &self.format;
        guarded("writing an ORC file", || {
            let mut writer = format.builder(buf.clone(), schema)?;
            for batch in &batches {
                writer
                    .write(batch)
                    .map_err(|e| orc_error("writing an ORC batch", e))?;
            }
            writer
                .close()
                .map_err(|e| orc_error("closing an ORC file", e))
        })?;
        buf.drain_into(out);
        Ok(())
    }
}

impl<T: Send + 'static> BulkWriterFactory<T> for OrcFormat<T> {
    fn create_writer(&self) -> Result<Box<dyn BulkWriter<T>>> {
        Ok(Box::new(OrcBulkWriter {
            format: self.clone(),
            to_batches: (self.to_batches)()?,
            batches: Vec::new(),
            buffered: 0,
        }))
    }

    fn name(&self) -> &'static str {
        "orc"
    }

    fn compact(&self, inputs: &[Bytes]) -> Result<Vec<u8>> {
        let buf = SharedBuf::default();
        guarded("compacting ORC files", || {
            let mut writer: Option<ArrowWriter<SharedBuf>> = None;
            for input in inputs {
                for batch in read_batches(input.clone(), 8192)? {
                    let batch = orc_compatible(&batch)?;
                    let w = match &mut writer {
                        Some(w) => w,
                        None => writer.insert(self.builder(buf.clone(), batch.schema())?),
                    };
                    w.write(&batch)
                        .map_err(|e| orc_error("writing a compacted ORC batch", e))?;
                }
            }
            if let Some(w) = writer {
                w.close()
                    .map_err(|e| orc_error("closing a compacted ORC file", e))?;
            }
            Ok(())
        })?;
        let mut out = Vec::new();
        buf.drain_into(&mut out);
        Ok(out)
    }
}

/// Every batch of an ORC file held in memory.
pub(crate) fn read_batches(file: Bytes, batch_size: usize) -> Result<Vec<RecordBatch>> {
    let reader = ArrowReaderBuilder::try_new(file)
        .map_err(|e| orc_error("opening an ORC file", e))?
        .with_batch_size(batch_size.max(1))
        .build();
    reader
        .map(|b| b.map_err(|e| orc_error("reading an ORC batch", e)))
        .collect()
}
