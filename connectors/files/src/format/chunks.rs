//! Columnar pipeline batches — [`Chunk`]s of `weir-formats`, Arrow record batches with their
//! changelog kinds — into files without a row detour: into the bulk formats as they are
//! ([`ChunkBatches`]), and into `csv` and `json` lines column by column ([`CsvChunks`],
//! [`JsonChunks`]). A chunk becomes one
//! record batch of the sink's Arrow schema (the same schema [`RowBatches`](super::RowBatches)
//! writes rows with, so a file is the same whichever path wrote it); timestamps get the
//! schema's `UTC` zone without a copy.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow_schema::{DataType as ArrowType, SchemaRef, TimeUnit};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::RowKind;
use weir_formats::chunk::Chunk;
use weir_formats::columnar::JsonChunkEncoder;
use weir_formats::CsvCodec;

use super::{Decoded, RecordDecoder, RecordEncoder, RowFormat, ToBatches, ToBatchesFactory};

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

/// The `csv` row format for chunks: each row a line, as the registered `csv` format writes
/// it (`CsvCodec::encode_chunk_lines`), files starting with the header line if any. Write-only:
/// a file source reads rows.
#[derive(Debug, Clone)]
pub struct CsvChunks {
    codec: Arc<CsvCodec>,
    header: Option<Arc<[u8]>>,
}

impl CsvChunks {
    /// Lines of `codec`, each file starting with `header` (with its `\n`).
    pub fn new(codec: CsvCodec, header: Option<Arc<[u8]>>) -> Self {
        CsvChunks {
            codec: Arc::new(codec),
            header,
        }
    }
}

impl RowFormat<Chunk> for CsvChunks {
    fn create_encoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordEncoder<Chunk>>> {
        Ok(Box::new(self.clone()))
    }

    fn create_decoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordDecoder<Chunk>>> {
        Ok(Box::new(WriteOnly))
    }

    fn name(&self) -> &'static str {
        "csv"
    }
}

impl RecordEncoder<Chunk> for CsvChunks {
    fn begin(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if let Some(header) = &self.header {
            out.extend_from_slice(header);
        }
        Ok(())
    }

    fn encode(&mut self, record: &Chunk, out: &mut Vec<u8>) -> Result<()> {
        self.codec.encode_chunk_lines(record, true, out)
    }
}

/// The `json` row format for chunks: each row a line, as the registered `json` format writes
/// it ([`JsonChunkEncoder`]). Write-only: the source reads json files with
/// [`ChunkMessages`](super::ChunkMessages).
#[derive(Debug, Clone)]
pub struct JsonChunks {
    encoder: Arc<JsonChunkEncoder>,
}

impl JsonChunks {
    /// Lines of `encoder`.
    pub fn new(encoder: JsonChunkEncoder) -> Self {
        JsonChunks {
            encoder: Arc::new(encoder),
        }
    }
}

impl RowFormat<Chunk> for JsonChunks {
    fn create_encoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordEncoder<Chunk>>> {
        Ok(Box::new(self.clone()))
    }

    fn create_decoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordDecoder<Chunk>>> {
        Ok(Box::new(WriteOnly))
    }

    fn name(&self) -> &'static str {
        "json"
    }
}

impl RecordEncoder<Chunk> for JsonChunks {
    fn encode(&mut self, record: &Chunk, out: &mut Vec<u8>) -> Result<()> {
        self.encoder.encode_chunk_lines(record, out)
    }
}

/// The decoder of a write-only format: every call says so.
struct WriteOnly;

impl RecordDecoder<Chunk> for WriteOnly {
    fn decode(&mut self, _buf: &[u8], _eof: bool) -> Result<Decoded<Chunk>> {
        Err(ConnectorError::Contract(
            "this format for chunks only writes: read files with `ChunkMessages`".to_owned(),
        ))
    }
}
