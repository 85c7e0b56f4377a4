//! `json` messages into columns: each object parsed by serde_json's streaming deserializer
//! (the parser of the row decoder), its values appended to the columns of their fields.

use arrow_schema::SchemaRef;
use serde::de::Deserializer;
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::Schema;

use super::builder::{builders, finish, schema_builders, Builder};
use super::cells::{JsonCell, Keys, ObjectVisitor};
use super::{through_rows, ChunkDecoder};
use crate::chunk::{arrow_schema, Chunk};
use crate::envelope::JsonSettings;
use crate::json::JsonCodec;

/// Decodes `json` messages (one object each) into chunks; see the [module docs](super).
#[derive(Debug, Clone)]
pub struct JsonChunkDecoder {
    codec: JsonCodec,
    schema: Schema,
    arrow: SchemaRef,
    keys: Keys,
    nullable: Vec<bool>,
    fail_on_missing: bool,
}

impl JsonChunkDecoder {
    /// The decoder of rows of `schema` with the `json` format's validated options.
    pub fn new(schema: &Schema, config: &ValidatedConfig) -> Result<Self> {
        let settings = JsonSettings::from_config(config);
        let arrow = arrow_schema(schema);
        builders(&schema.fields).map_err(ConnectorError::Contract)?;
        Ok(JsonChunkDecoder {
            codec: JsonCodec::new(schema.clone(), settings),
            schema: schema.clone(),
            keys: Keys::of(&schema.fields),
            nullable: schema.fields.iter().map(|f| f.nullable).collect(),
            fail_on_missing: settings.fail_on_missing,
            arrow,
        })
    }

    /// Appends the row of one message, or `Err` when the message is not one the row decoder
    /// reads without error (the caller then takes the row path for the batch).
    fn append(&self, message: &[u8], columns: &mut [Builder]) -> Result<(), ()> {
        let mut cells = self.keys.empty();
        let mut de = serde_json::Deserializer::from_slice(message);
        de.deserialize_map(ObjectVisitor {
            keys: &self.keys,
            cells: &mut cells,
        })
        .map_err(|_| ())?;
        de.end().map_err(|_| ())?;
        append_cells(
            cells.iter().map(Option::as_ref),
            columns,
            &self.nullable,
            self.fail_on_missing,
            false,
        )
    }
}

/// Appends one row of `cells` (one per field, `None` for a missing key), as
/// `convert::object_to_values` reads an object (`lenient`: canal-json's strings for numbers
/// and booleans); `Err` where it fails.
pub(super) fn append_cells<'c, 'de: 'c>(
    cells: impl IntoIterator<Item = Option<&'c JsonCell<'de>>>,
    columns: &mut [Builder],
    nullable: &[bool],
    fail_on_missing: bool,
    lenient: bool,
) -> Result<(), ()> {
    for ((cell, column), nullable) in cells.into_iter().zip(columns).zip(nullable) {
        match cell {
            None if fail_on_missing => return Err(()),
            None | Some(JsonCell::Null) if !nullable => return Err(()),
            None => column.append_null(),
            Some(cell) => column.append_json(cell, lenient)?,
        }
    }
    Ok(())
}

impl JsonChunkDecoder {
    /// The chunk of `messages` read on columns (`Ok(None)`: no rows), or `Err` when one
    /// of them is not read without error by the row decoder's rules.
    pub(super) fn on_columns(&self, messages: &[&[u8]]) -> Result<Option<Chunk>, ()> {
        let mut columns = schema_builders(&self.schema)?;
        let mut rows = 0;
        for message in messages {
            if message.iter().all(u8::is_ascii_whitespace) {
                continue; // a tombstone
            }
            self.append(message, &mut columns)?;
            rows += 1;
        }
        if rows == 0 {
            return Ok(None);
        }
        finish(&self.arrow, &mut columns, rows)
            .map(|batch| Some(Chunk::inserts(batch)))
            .ok_or(())
    }
}

impl ChunkDecoder for JsonChunkDecoder {
    fn decode_chunk(&self, messages: &[&[u8]]) -> Result<Option<Chunk>> {
        match self.on_columns(messages) {
            Ok(chunk) => Ok(chunk),
            Err(()) => through_rows(&self.codec, &self.schema, messages),
        }
    }
}
