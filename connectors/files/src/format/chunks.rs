//! Columnar pipeline batches — [`Chunk`]s of `weir-formats`, Arrow record batches with their
//! changelog kinds — into the bulk formats as they are: no row detour. A chunk becomes one
//! record batch of the sink's Arrow schema (the same schema [`RowBatches`](super::RowBatches)
//! writes rows with, so a file is the same whichever path wrote it); timestamps get the
//! schema's `UTC` zone without a copy.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow_schema::{DataType as ArrowType, SchemaRef, TimeUnit};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::RowKind;
use weir_formats::chunk::Chunk;

use super::{ToBatches, ToBatchesFactory};

fn malformed(reason: String) -> ConnectorError {
    ConnectorError::malformed("a chunk for a Parquet or ORC file".to_owned(), reason)
}

/// Chunks → Arrow batches of a sink's schema, for the bulk formats.
#[derive(Debug, Clone)]
pub struct ChunkBatches {
    arrow: SchemaRef,
}

impl ChunkBatches {
    /// Batches of `arrow` (e.g. [`RowBatches::arrow_schema`](super::RowBatches::arrow_schema)).
    pub fn new(arrow: SchemaRef) -> Self {
        ChunkBatches { arrow }
    }

    /// A factory of converters for bulk writers.
    pub fn to_batches(&self) -> ToBatchesFactory<Chunk> {
        let arrow = Arc::clone(&self.arrow);
        Arc::new(move || {
            Ok(Box::new(ChunkBatches {
                arrow: Arc::clone(&arrow),
            }) as Box<dyn ToBatches<Chunk>>)
        })
    }

    /// The record batch of `chunk`, in this schema.
    pub fn convert(&self, chunk: &Chunk) -> Result<RecordBatch> {
        if let Some(kind) = chunk
            .kinds()
            .and_then(|k| k.iter().find(|k| **k != RowKind::Insert))
        {
            return Err(malformed(format!(
                "files hold inserts only, but the chunk has a {kind:?} row: write a changelog \
                 with a row format such as `debezium-json` instead"
            )));
        }
        let batch = chunk.batch();
        if batch.num_columns() != self.arrow.fields().len() {
            return Err(malformed(format!(
                "the chunk has {} columns but the schema has {} fields",
                batch.num_columns(),
                self.arrow.fields().len()
            )));
        }
        let columns = batch
            .columns()
            .iter()
            .zip(self.arrow.fields())
            .map(|(column, field)| conform(column, field.data_type(), field.name()))
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(Arc::clone(&self.arrow), columns).map_err(|e| malformed(e.to_string()))
    }
}

/// `column` as `to` (the same type, or a millisecond timestamp given `to`'s zone).
fn conform(column: &ArrayRef, to: &ArrowType, name: &str) -> Result<ArrayRef> {
    if column.data_type() == to {
        return Ok(Arc::clone(column));
    }
    if let ArrowType::Timestamp(TimeUnit::Millisecond, zone) = to {
        if let Some(times) = column.as_any().downcast_ref::<TimestampMillisecondArray>() {
            let times = times.clone();
            return Ok(Arc::new(match zone {
                Some(zone) => times.with_timezone(Arc::clone(zone)),
                None => times.with_timezone_opt(None::<String>),
            }));
        }
    }
    Err(malformed(format!(
        "column `{name}` holds {} where the file's schema has {to}",
        column.data_type()
    )))
}

impl ToBatches<Chunk> for ChunkBatches {
    fn push(&mut self, element: Chunk) -> Result<Option<RecordBatch>> {
        self.convert(&element).map(Some)
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        Ok(None)
    }

    fn buffered_bytes(&self) -> u64 {
        0
    }
}
