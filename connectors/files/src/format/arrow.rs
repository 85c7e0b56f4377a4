//! Records ↔ Arrow: [`SerdeRecords`] maps serde types with `serde_arrow`; [`Batches`] passes
//! `RecordBatch`es through unchanged.

use std::marker::PhantomData;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{FieldRef, Schema, SchemaRef};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_arrow::schema::{SchemaLike, TracingOptions};
use serde_arrow::ArrayBuilder;
use weir_connector_api::error::{ConnectorError, Result};

use super::{FromBatch, ToBatches, ToBatchesFactory};

/// The default number of records per Arrow batch.
pub const DEFAULT_BATCH_SIZE: usize = 8192;

fn arrow_error(what: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::malformed(what.to_owned(), e.to_string())
}

/// Typed records mapped to Arrow columns with `serde_arrow`: struct fields become columns.
pub struct SerdeRecords<T> {
    fields: Arc<Vec<FieldRef>>,
    batch_size: usize,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for SerdeRecords<T> {
    fn clone(&self) -> Self {
        SerdeRecords {
            fields: Arc::clone(&self.fields),
            batch_size: self.batch_size,
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for SerdeRecords<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerdeRecords")
            .field("fields", &self.fields)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> SerdeRecords<T> {
    /// The mapping traced from `T`'s serde implementation (strings as `Utf8`, sequences as
    /// `List`, for the widest reader support).
    pub fn traced() -> Result<Self> {
        let options = TracingOptions::default()
            .allow_null_fields(true)
            .strings_as_large_utf8(false)
            .sequence_as_large_list(false)
            .bytes_as_large_binary(false);
        let fields = Vec::<FieldRef>::from_type::<T>(options)
            .map_err(|e| arrow_error("tracing the Arrow schema of the record type", e))?;
        Ok(Self::with_fields(fields))
    }

    /// The mapping onto given Arrow fields.
    pub fn with_fields(fields: Vec<FieldRef>) -> Self {
        SerdeRecords {
            fields: Arc::new(fields),
            batch_size: DEFAULT_BATCH_SIZE,
            _t: PhantomData,
        }
    }

    /// Sets the records per batch.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.fields.as_slice().to_vec()))
    }

    /// A factory of converters for bulk writers.
    pub fn to_batches(&self) -> ToBatchesFactory<T> {
        let this = self.clone();
        Arc::new(move || {
            let builder = ArrayBuilder::from_arrow(&this.fields)
                .map_err(|e| arrow_error("creating an Arrow builder", e))?;
            Ok(Box::new(SerdeToBatches::<T> {
                builder,
                rows: 0,
                batch_size: this.batch_size,
                approx_bytes: 0,
                _t: PhantomData,
            }) as Box<dyn ToBatches<T>>)
        })
    }
}

struct SerdeToBatches<T> {
    builder: ArrayBuilder,
    rows: usize,
    batch_size: usize,
    approx_bytes: u64,
    _t: PhantomData<fn(T)>,
}

impl<T: Serialize + Send> ToBatches<T> for SerdeToBatches<T> {
    fn push(&mut self, element: T) -> Result<Option<RecordBatch>> {
        self.builder
            .push(&element)
            .map_err(|e| arrow_error("converting a record to Arrow", e))?;
        self.rows += 1;
        self.approx_bytes += std::mem::size_of::<T>() as u64;
        if self.rows >= self.batch_size {
            return self.flush();
        }
        Ok(None)
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        self.rows = 0;
        self.approx_bytes = 0;
        self.builder
            .to_record_batch()
            .map(Some)
            .map_err(|e| arrow_error("building an Arrow batch", e))
    }

    fn buffered_bytes(&self) -> u64 {
        self.approx_bytes
    }
}

impl<T: DeserializeOwned + Send + 'static> FromBatch<T> for SerdeRecords<T> {
    fn decode_batch(&self, batch: RecordBatch, out: &mut Vec<(T, usize)>) -> Result<()> {
        let records: Vec<T> = serde_arrow::from_record_batch(&batch)
            .map_err(|e| arrow_error("converting Arrow rows to records", e))?;
        out.extend(records.into_iter().map(|r| (r, 1)));
        Ok(())
    }
}

/// `RecordBatch`es as they are: a sink of batches writes each batch; a source of batches emits
/// each batch read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Batches;

impl Batches {
    /// A factory of pass-through converters for bulk writers.
    pub fn to_batches() -> ToBatchesFactory<RecordBatch> {
        Arc::new(|| Ok(Box::new(Batches) as Box<dyn ToBatches<RecordBatch>>))
    }
}

impl ToBatches<RecordBatch> for Batches {
    fn push(&mut self, element: RecordBatch) -> Result<Option<RecordBatch>> {
        Ok(Some(element))
    }
    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        Ok(None)
    }
    fn buffered_bytes(&self) -> u64 {
        0
    }
}

impl FromBatch<RecordBatch> for Batches {
    fn decode_batch(&self, batch: RecordBatch, out: &mut Vec<(RecordBatch, usize)>) -> Result<()> {
        let rows = batch.num_rows();
        out.push((batch, rows));
        Ok(())
    }
}
