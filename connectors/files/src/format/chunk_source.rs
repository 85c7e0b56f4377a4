//! Files read into columnar pipeline batches ([`Chunk`]s of `weir-formats`) without a row
//! detour: Parquet and ORC record batches converted column by column to the pipeline's Arrow
//! schema ([`ChunkFromBatches`]), and files of a row format split into messages as
//! [`MessageRows`] splits them, many messages at once decoded into columns by a
//! `weir-formats` [`ChunkDecoder`] ([`ChunkMessages`]).
//!
//! The rows are the row source's, in the same order, and a split's position means the same:
//! a chunk of messages ends at a message boundary (its position is the next message's offset),
//! a chunk of a bulk file at a batch boundary (its position counts the rows read), so a
//! checkpoint of either source restores on the other.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{new_null_array, Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, SchemaRef, TimeUnit};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::{Field, Row, Schema};
use weir_formats::chunk::{arrow_schema, Chunk};
use weir_formats::columnar::ChunkDecoder;

use super::rows::{cast, malformed, to_millis_in_zone, Frame, MessageFramer};
use super::{Decoded, FromBatch, MessageRows, RecordDecoder, RecordEncoder, RowFormat};

/// The most rows of a chunk read from a bulk file, and the most messages decoded into one
/// chunk: datagen's chunk size, so that a source poll of a few chunks holds about as many rows
/// as a poll of the row source (and a source task yields as often).
pub const CHUNK_ROWS: usize = 1024;

/// Bulk-format batches → chunks of a pipeline schema (of at most [`CHUNK_ROWS`] rows), with
/// the row source's conversions (see [`RowBatches`](super::RowBatches): columns by name, other
/// types cast without loss, a missing column null).
#[derive(Debug, Clone)]
pub struct ChunkFromBatches {
    fields: Arc<Vec<Field>>,
    arrow: SchemaRef,
}

impl ChunkFromBatches {
    /// The conversion to chunks of rows of `schema`.
    pub fn new(schema: &Schema) -> Self {
        ChunkFromBatches {
            fields: Arc::new(schema.fields.clone()),
            arrow: arrow_schema(schema),
        }
    }

    /// Column `field` of the chunk from `batch`, as the row source reads it.
    fn column(field: &Field, to: &ArrowType, batch: &RecordBatch) -> Result<ArrayRef> {
        let name = field.name.as_str();
        let Some(column) = batch.column_by_name(name) else {
            if field.nullable {
                return Ok(new_null_array(to, batch.num_rows()));
            }
            return Err(malformed(
                format!("field `{name}`"),
                format!(
                    "the file has no column `{name}` and the field is not nullable; its \
                     columns are {}",
                    batch
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| format!("`{}`", f.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let converted = match to {
            ArrowType::Timestamp(TimeUnit::Millisecond, None) => {
                // Milliseconds in the column's zone, then the zone dropped without touching
                // the values.
                let c = to_millis_in_zone(column, name)?;
                let millis = c
                    .as_primitive_opt::<TimestampMillisecondType>()
                    .ok_or_else(|| {
                        malformed(
                            format!("column `{name}`"),
                            format!("cannot be read as {}", field.data_type),
                        )
                    })?
                    .clone()
                    .with_timezone_opt(None::<Arc<str>>);
                Arc::new(millis) as ArrayRef
            }
            other => cast(column, other, name)?,
        };
        if !field.nullable && converted.null_count() > 0 {
            let row = (0..converted.len())
                .find(|i| converted.is_null(*i))
                .unwrap_or_default();
            return Err(malformed(
                format!("column `{name}`, row {row}"),
                "the value is null but the field is not nullable",
            ));
        }
        Ok(converted)
    }
}

impl FromBatch<Chunk> for ChunkFromBatches {
    fn decode_batch(&self, batch: RecordBatch, out: &mut Vec<(Chunk, usize)>) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let columns = self
            .fields
            .iter()
            .zip(self.arrow.fields())
            .map(|(field, to)| Self::column(field, to.data_type(), &batch))
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(Arc::clone(&self.arrow), columns)
            .map_err(|e| malformed("building a chunk of a file's batch", e.to_string()))?;
        // Zero-copy slices; each covers its rows, so positions fall on slice boundaries.
        let mut offset = 0;
        while offset < rows {
            let length = CHUNK_ROWS.min(rows - offset);
            out.push((Chunk::inserts(batch.slice(offset, length)), length));
            offset += length;
        }
        Ok(())
    }
}

/// Files of a row format read into chunks: messages framed as [`MessageRows`] frames them
/// (lines or CSV records, the header checked and skipped, blank lines skipped), up to
/// [`CHUNK_ROWS`] messages decoded at once by a [`ChunkDecoder`] (all the complete
/// messages of the bytes read so far, so a chunk ends at a message boundary). Reading only:
/// the sink writes chunks with its own encoders.
#[derive(Clone)]
pub struct ChunkMessages {
    rows: MessageRows,
    decoder: Arc<dyn ChunkDecoder>,
}

impl std::fmt::Debug for ChunkMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkMessages")
            .field("rows", &self.rows)
            .field("decoder", &self.decoder)
            .finish()
    }
}

impl ChunkMessages {
    /// Files framed as `rows` frames them, messages decoded by `decoder` (of the same format
    /// and schema as `rows`' row decoder).
    pub fn new(rows: MessageRows, decoder: Box<dyn ChunkDecoder>) -> Self {
        ChunkMessages {
            rows,
            decoder: Arc::from(decoder),
        }
    }

    fn decoder(&self, at_file_start: bool, skip: u64) -> ChunkMessageDecoder {
        ChunkMessageDecoder {
            framer: MessageFramer::new(&self.rows, at_file_start),
            decoder: Arc::clone(&self.decoder),
            skip,
        }
    }
}

impl RowFormat<Chunk> for ChunkMessages {
    fn create_encoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordEncoder<Chunk>>> {
        Err(ConnectorError::Contract(
            "chunks of messages are read only: the files sink writes chunks with its own \
             encoders"
                .to_owned(),
        ))
    }

    fn create_decoder(&self, at_file_start: bool) -> Result<Box<dyn RecordDecoder<Chunk>>> {
        Ok(Box::new(self.decoder(at_file_start, 0)))
    }

    fn create_decoder_resuming(
        &self,
        at_file_start: bool,
        records: u64,
    ) -> Result<(Box<dyn RecordDecoder<Chunk>>, u64)> {
        // A row source's checkpoint inside a message of several rows: its first `records`
        // rows were emitted; the decoder drops them from the first chunk.
        Ok((Box::new(self.decoder(at_file_start, records)), 0))
    }

    fn name(&self) -> &'static str {
        RowFormat::<Row>::name(&self.rows)
    }
}

struct ChunkMessageDecoder {
    framer: MessageFramer,
    decoder: Arc<dyn ChunkDecoder>,
    /// Rows of the first message emitted before a restore, to drop.
    skip: u64,
}

impl RecordDecoder<Chunk> for ChunkMessageDecoder {
    fn decode(&mut self, buf: &[u8], eof: bool) -> Result<Decoded<Chunk>> {
        let mut at = 0;
        let mut messages = Vec::new();
        while messages.len() < CHUNK_ROWS {
            match self.framer.next(buf.get(at..).unwrap_or_default(), eof)? {
                Frame::Message(message, used) => {
                    messages.push(message);
                    at += used;
                }
                Frame::Skip(used) => at += used,
                Frame::NeedMore => break,
            }
        }
        if messages.is_empty() {
            return Ok(if at > 0 {
                Decoded::Skip(at)
            } else {
                Decoded::NeedMore
            });
        }
        let Some(chunk) = self.decoder.decode_chunk(&messages)? else {
            return Ok(Decoded::Skip(at));
        };
        let drop = usize::try_from(std::mem::take(&mut self.skip))
            .unwrap_or(usize::MAX)
            .min(chunk.num_rows());
        if drop == chunk.num_rows() {
            return Ok(Decoded::Skip(at));
        }
        let chunk = if drop > 0 {
            chunk.slice(drop, chunk.num_rows() - drop)
        } else {
            chunk
        };
        Ok(Decoded::Record(chunk, at))
    }
}
