//! The columnar sink's encoding: each row of a chunk becomes a record, its value (and key)
//! encoded column by column.

use std::sync::Arc;

use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::Schema;
use weir_formats::chunk::Chunk;
use weir_formats::columnar::JsonChunkEncoder;
use weir_formats::{CsvCodec, CsvFormat};

use crate::factory::RowSerializer;
use crate::sink::{
    malformed_record, KafkaRecordBuf, KafkaRecordSerializer, KafkaRecordsSerializer,
    SerializeContext,
};

/// A format's encoder of chunks into lines, one per row: the bytes of its row encoder.
#[derive(Debug)]
pub(crate) enum LineEncoder {
    /// `json`.
    Json(JsonChunkEncoder),
    /// `csv`: a row whose text holds a line break is refused (the record then goes through
    /// the row encoder, which writes it as it is).
    Csv(Box<CsvCodec>),
}

impl LineEncoder {
    /// The encoder of format `id` for rows of `schema`, if it has one.
    pub(crate) fn of(id: &str, schema: &Schema, config: &ValidatedConfig) -> Option<Self> {
        match id {
            "json" => Some(LineEncoder::Json(JsonChunkEncoder::new(schema, config))),
            "csv" => Some(LineEncoder::Csv(Box::new(CsvFormat::codec(schema, config)))),
            _ => None,
        }
    }

    /// Appends each row of `chunk` as a line (its bytes, then `\n`), or refuses the chunk.
    fn lines(&self, chunk: &Chunk, out: &mut Vec<u8>) -> Result<()> {
        match self {
            LineEncoder::Json(e) => e.encode_chunk_lines(chunk, out),
            LineEncoder::Csv(c) => c.encode_chunk_lines(chunk, true, out),
        }
    }
}

/// Chunks into Kafka records, one per row: values (and keys of `key.fields`) encoded a chunk
/// at a time into lines, which become the records. The lines are exactly the row encoder's
/// bytes, so the records are the row sink's. A chunk the line encoders refuse (a row the row
/// encoder refuses too, such as a changelog row in `json`, or a csv cell with a line break,
/// which a record may hold) is written through the row sink's serializer, row by row: its
/// records, and its error, are then the row sink's.
pub(crate) struct ChunkRecords {
    pub(crate) value: LineEncoder,
    /// The key's encoder and the positions of its fields.
    pub(crate) key: Option<(LineEncoder, Arc<[usize]>)>,
    /// The row sink's serializer.
    pub(crate) rows: RowSerializer,
}

impl ChunkRecords {
    /// The values and keys of `chunk`'s rows as lines, or `None` when an encoder refuses it.
    fn encode(&self, chunk: &Chunk) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        let mut values = Vec::with_capacity(chunk.num_rows() * 64);
        self.value.lines(chunk, &mut values).ok()?;
        let keys = match &self.key {
            None => None,
            Some((encoder, positions)) => {
                let batch = chunk.batch().project(positions).ok()?;
                let kinds = chunk.kinds().map(Arc::from);
                let keys_chunk = Chunk::new(batch, kinds).ok()?;
                let mut keys = Vec::with_capacity(chunk.num_rows() * 16);
                encoder.lines(&keys_chunk, &mut keys).ok()?;
                Some(keys)
            }
        };
        Some((values, keys))
    }

    /// `chunk` row by row through the row sink's serializer.
    fn through_rows(
        &self,
        chunk: &Chunk,
        ctx: &SerializeContext,
        out: &mut KafkaRecordBuf,
        send: &mut dyn FnMut(&KafkaRecordBuf) -> Result<()>,
    ) -> Result<()> {
        let rows = chunk
            .to_rows()
            .map_err(|e| ConnectorError::malformed("a chunk for the Kafka sink", e.to_string()))?;
        for row in &rows {
            out.clear();
            self.rows
                .serialize(row, ctx, out)
                .map_err(|reason| malformed_record(&reason))?;
            send(out)?;
        }
        Ok(())
    }
}

impl KafkaRecordsSerializer<Chunk> for ChunkRecords {
    fn serialize_each(
        &self,
        chunk: &Chunk,
        ctx: &SerializeContext,
        out: &mut KafkaRecordBuf,
        send: &mut dyn FnMut(&KafkaRecordBuf) -> Result<()>,
    ) -> Result<()> {
        let Some((values, keys)) = self.encode(chunk) else {
            return self.through_rows(chunk, ctx, out, send);
        };
        // No line holds a `\n`: JSON escapes it in strings, and the csv lines were refused
        // with a line break in a cell.
        let mut key_lines = keys.as_deref().map(|k| k.split(|b| *b == b'\n'));
        for value in values.split(|b| *b == b'\n').take(chunk.num_rows()) {
            out.clear();
            out.value_mut().extend_from_slice(value);
            if let Some(key) = key_lines.as_mut().and_then(Iterator::next) {
                out.key_mut().extend_from_slice(key);
            }
            send(out)?;
        }
        Ok(())
    }
}
