//! `csv` messages into columns: records parsed by the row decoder's csv-core parser, each
//! cell appended to its column as the row decoder reads it.

use arrow_schema::SchemaRef;
use weir_connector_api::config::{ConfigError, ConfigErrors, ValidatedConfig};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::Schema;

use super::builder::{builders, finish, schema_builders, Builder};
use super::{through_rows, ChunkDecoder};
use crate::chunk::{arrow_schema, Chunk};
use crate::csv::{CsvCodec, CsvFormat};

/// Decodes `csv` messages (each one or more records) into chunks; see the
/// [module docs](super).
#[derive(Debug, Clone)]
pub struct CsvChunkDecoder {
    codec: CsvCodec,
    arrow: SchemaRef,
    nullable: Vec<bool>,
}

impl CsvChunkDecoder {
    /// The decoder of rows of `schema` with the `csv` format's validated options.
    pub fn new(schema: &Schema, config: &ValidatedConfig) -> Result<Self> {
        if let Some(reason) = crate::typed::refuse_nested("csv", &schema.fields) {
            // The row decoder's refusal (`CsvFormat::decoder`).
            return Err(ConnectorError::Config(ConfigErrors::new(
                "csv format",
                vec![ConfigError::conflict(["format"], reason)],
            )));
        }
        let arrow = arrow_schema(schema);
        builders(&schema.fields).map_err(ConnectorError::Contract)?;
        Ok(CsvChunkDecoder {
            codec: CsvFormat::codec(schema, config),
            nullable: schema.fields.iter().map(|f| f.nullable).collect(),
            arrow,
        })
    }

    /// Appends the records of one message; `Err` when the row decoder would not read it
    /// without error. Returns the records appended.
    fn append(&self, message: &[u8], columns: &mut [Builder]) -> Result<usize, String> {
        let mut records = 0;
        let literal = self.codec.null_literal.as_deref();
        self.codec.each_record(message, |_, cells, ends| {
            let mut start = 0;
            for ((end, column), nullable) in ends.iter().zip(columns.iter_mut()).zip(&self.nullable)
            {
                let cell = cells.get(start..*end).unwrap_or_default();
                start = *end;
                let text = std::str::from_utf8(cell).map_err(|e| e.to_string())?;
                let null = match literal {
                    Some(literal) => text == literal,
                    None => text.is_empty() && !column.is_utf8(),
                };
                if null {
                    if !nullable {
                        return Err(String::new());
                    }
                    column.append_null();
                } else {
                    column.append_text(text).map_err(|()| String::new())?;
                }
            }
            records += 1;
            Ok(())
        })?;
        Ok(records)
    }
}

impl CsvChunkDecoder {
    /// The chunk of `messages` read on columns (`Ok(None)`: no rows), or `Err` when one
    /// of them is not read without error by the row decoder's rules.
    pub(super) fn on_columns(&self, messages: &[&[u8]]) -> Result<Option<Chunk>, ()> {
        let mut columns = schema_builders(&self.codec.schema)?;
        let mut rows = 0;
        for message in messages {
            rows += self.append(message, &mut columns).map_err(|_| ())?;
        }
        if rows == 0 {
            return Ok(None);
        }
        finish(&self.arrow, &mut columns, rows)
            .map(|batch| Some(Chunk::inserts(batch)))
            .ok_or(())
    }
}

impl ChunkDecoder for CsvChunkDecoder {
    fn decode_chunk(&self, messages: &[&[u8]]) -> Result<Option<Chunk>> {
        match self.on_columns(messages) {
            Ok(chunk) => Ok(chunk),
            Err(()) => through_rows(&self.codec, &self.codec.schema, messages),
        }
    }
}
