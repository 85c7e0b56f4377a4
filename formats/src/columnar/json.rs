//! `json` messages into columns: each object parsed by serde_json's streaming deserializer
//! (the parser of the row decoder), its values appended to the columns of their fields.

use std::borrow::Cow;
use std::fmt;

use arrow_schema::SchemaRef;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::Schema;

use super::builder::{builders, finish, Builder, JsonCell};
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
    names: Vec<String>,
    nullable: Vec<bool>,
    fail_on_missing: bool,
}

impl JsonChunkDecoder {
    /// The decoder of rows of `schema` with the `json` format's validated options.
    pub fn new(schema: &Schema, config: &ValidatedConfig) -> Result<Self> {
        let settings = JsonSettings::from_config(config);
        let arrow = arrow_schema(schema);
        builders(&arrow).map_err(ConnectorError::Contract)?;
        Ok(JsonChunkDecoder {
            codec: JsonCodec::new(schema.clone(), settings),
            schema: schema.clone(),
            names: schema.fields.iter().map(|f| f.name.clone()).collect(),
            nullable: schema.fields.iter().map(|f| f.nullable).collect(),
            fail_on_missing: settings.fail_on_missing,
            arrow,
        })
    }

    /// Appends the row of one message, or `Err` when the message is not one the row decoder
    /// reads without error (the caller then takes the row path for the batch).
    fn append(&self, message: &[u8], columns: &mut [Builder]) -> Result<(), ()> {
        let mut cells: Vec<Option<JsonCell<'_>>> = Vec::new();
        cells.resize_with(self.names.len(), || None);
        let mut de = serde_json::Deserializer::from_slice(message);
        de.deserialize_map(ObjectVisitor {
            names: &self.names,
            cells: &mut cells,
        })
        .map_err(|_| ())?;
        de.end().map_err(|_| ())?;
        append_cells(&cells, columns, &self.nullable, self.fail_on_missing)
    }
}

/// Appends one row of `cells` (one per field, `None` for a missing key), as
/// `convert::object_to_values` reads an object; `Err` where it fails.
pub(super) fn append_cells(
    cells: &[Option<JsonCell<'_>>],
    columns: &mut [Builder],
    nullable: &[bool],
    fail_on_missing: bool,
) -> Result<(), ()> {
    for ((cell, column), nullable) in cells.iter().zip(columns).zip(nullable) {
        match cell {
            None if fail_on_missing => return Err(()),
            None | Some(JsonCell::Null) if !nullable => return Err(()),
            None => column.append_null(),
            Some(cell) => column.append_json(cell)?,
        }
    }
    Ok(())
}

impl JsonChunkDecoder {
    /// The chunk of `messages` read on columns (`Ok(None)`: no rows), or `Err` when one
    /// of them is not read without error by the row decoder's rules.
    pub(super) fn on_columns(&self, messages: &[&[u8]]) -> Result<Option<Chunk>, ()> {
        let mut columns = builders(&self.arrow).map_err(|_| ())?;
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

/// Visits the top-level object: each key of a field into its cell (a repeated key: the last
/// value, as `serde_json::Map`), other keys' values parsed and dropped.
struct ObjectVisitor<'a, 'de> {
    names: &'a [String],
    cells: &'a mut [Option<JsonCell<'de>>],
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(index) = map.next_key_seed(KeySeed { names: self.names })? {
            match index.and_then(|i| self.cells.get_mut(i)) {
                Some(cell) => *cell = Some(map.next_value_seed(CellSeed)?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// An image of a change event: an object read as [`ObjectVisitor`] reads it, `None` for
/// `null`; any other value is an error.
pub(super) struct ImageSeed<'a> {
    pub(super) names: &'a [String],
}

impl<'de> DeserializeSeed<'de> for ImageSeed<'_> {
    type Value = Option<Vec<Option<JsonCell<'de>>>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ImageSeed<'_> {
    type Value = Option<Vec<Option<JsonCell<'de>>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut cells = Vec::new();
        cells.resize_with(self.names.len(), || None);
        ObjectVisitor {
            names: self.names,
            cells: &mut cells,
        }
        .visit_map(map)?;
        Ok(Some(cells))
    }
}

/// A key: the index of the field of that name, if any.
struct KeySeed<'a> {
    names: &'a [String],
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.names.iter().position(|n| n == key))
    }
}

/// A field's value.
struct CellSeed;

impl<'de> DeserializeSeed<'de> for CellSeed {
    type Value = JsonCell<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<JsonCell<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CellSeed {
    type Value = JsonCell<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Null)
    }
    fn visit_none<E>(self) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::F64(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonCell<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(JsonCell::Nested)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonCell<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(JsonCell::Nested)
    }
}
