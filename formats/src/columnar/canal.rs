//! `canal-json` events into columns: each event parsed by serde_json's streaming
//! deserializer, every element of its `data` (and `old`) array read into one cell per field,
//! then its rows appended with their kinds as the row decoder gives them (`INSERT`: an insert
//! per element of `data`; `DELETE`: a delete per element; `UPDATE`: per element, an
//! update-before of `data[i]` overlaid with `old[i]`, then an update-after of `data[i]`).
//! Values are read leniently, as the row decoder reads them: numbers and booleans may be
//! strings (`"42"`, `"1"`), as Canal writes them. Events of another database or table
//! (`database.include`, `table.include`), DDL events and other types give no row.

use std::fmt;

use arrow_schema::SchemaRef;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::format::{FormatFactory as _, RowDecoder};
use weir_connector_api::row::{RowKind, Schema};

use super::builder::{builders, finish_changelog, schema_builders, Builder};
use super::cells::{object_cells, Cells, JsonCell, Keys, Skip, StrSeed, ValueSeed};
use super::json::append_cells;
use super::{through_rows, ChunkDecoder};
use crate::canal::{CanalJsonFormat, DATABASE_INCLUDE, TABLE_INCLUDE};
use crate::chunk::{arrow_schema, Chunk};

/// Decodes `canal-json` events into chunks of changelog rows; see the
/// [`columnar`](super) module. A batch with a message the row decoder fails on (or skips,
/// with `ignore-parse-errors`) goes through the row decoder.
pub struct CanalChunkDecoder {
    codec: Box<dyn RowDecoder>,
    schema: Schema,
    arrow: SchemaRef,
    keys: Keys,
    nullable: Vec<bool>,
    database: Option<String>,
    table: Option<String>,
}

impl fmt::Debug for CanalChunkDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CanalChunkDecoder")
            .field("schema", &self.schema)
            .field("database", &self.database)
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// The `data` or `old` member of an event.
#[derive(Default)]
enum Items<'de> {
    #[default]
    Absent,
    Null,
    /// An array: each element's cells, `None` for an element that is not an object.
    Array(Vec<Option<Cells<'de>>>),
    /// Anything else.
    Other,
}

/// What the columnar path reads of one event.
#[derive(Default)]
struct Event<'de> {
    database: Option<JsonCell<'de>>,
    table: Option<JsonCell<'de>>,
    is_ddl: Option<JsonCell<'de>>,
    kind: Option<JsonCell<'de>>,
    data: Items<'de>,
    old: Items<'de>,
}

impl CanalChunkDecoder {
    /// The decoder of rows of `schema` with the `canal-json` format's validated options.
    pub fn new(schema: &Schema, config: &ValidatedConfig) -> Result<Self> {
        builders(&schema.fields).map_err(ConnectorError::Contract)?;
        Ok(CanalChunkDecoder {
            codec: CanalJsonFormat.decoder(schema, config)?,
            schema: schema.clone(),
            arrow: arrow_schema(schema),
            keys: Keys::of(&schema.fields),
            nullable: schema.fields.iter().map(|f| f.nullable).collect(),
            database: config.get_optional(&DATABASE_INCLUDE),
            table: config.get_optional(&TABLE_INCLUDE),
        })
    }

    /// Appends the rows of one event and their kinds; `Err` where the row decoder fails.
    fn append(
        &self,
        message: &[u8],
        columns: &mut [Builder],
        kinds: &mut Vec<RowKind>,
    ) -> Result<(), ()> {
        let mut de = serde_json::Deserializer::from_slice(message);
        let event = de
            .deserialize_map(EventVisitor { keys: &self.keys })
            .map_err(|_| ())?;
        de.end().map_err(|_| ())?;
        let matches = |cell: &Option<JsonCell<'_>>, wanted: &Option<String>| match wanted {
            Some(name) => matches!(cell, Some(JsonCell::Str(s)) if s == name),
            None => true,
        };
        if !matches(&event.database, &self.database) || !matches(&event.table, &self.table) {
            return Ok(());
        }
        if matches!(event.is_ddl, Some(JsonCell::Bool(true))) {
            return Ok(());
        }
        let Some(JsonCell::Str(kind)) = &event.kind else {
            return Err(());
        };
        let changes = matches!(kind.as_ref(), "INSERT" | "UPDATE" | "DELETE");
        let data = match event.data {
            Items::Array(items) => items,
            Items::Null | Items::Absent if !changes => Vec::new(),
            _ => return Err(()),
        };
        match kind.as_ref() {
            "INSERT" | "DELETE" => {
                let kind = if kind == "INSERT" {
                    RowKind::Insert
                } else {
                    RowKind::Delete
                };
                for item in &data {
                    let cells = item.as_ref().ok_or(())?;
                    self.row(cells.iter().map(Option::as_ref), kind, columns, kinds)?;
                }
                Ok(())
            }
            "UPDATE" => {
                let Items::Array(old) = event.old else {
                    return Err(());
                };
                if old.len() != data.len() {
                    return Err(());
                }
                for (after, changed) in data.iter().zip(&old) {
                    let (Some(after), Some(changed)) = (after, changed) else {
                        return Err(());
                    };
                    // The before image: `data[i]` overlaid with the keys of `old[i]`.
                    let before = changed
                        .iter()
                        .zip(after)
                        .map(|(o, a)| o.as_ref().or(a.as_ref()));
                    self.row(before, RowKind::UpdateBefore, columns, kinds)?;
                    let after = after.iter().map(Option::as_ref);
                    self.row(after, RowKind::UpdateAfter, columns, kinds)?;
                }
                Ok(())
            }
            // CREATE, ALTER, QUERY, ...: schema changes and statements, not rows.
            _ => Ok(()),
        }
    }

    /// Appends a row of `cells` (one per field) read leniently, and its kind.
    fn row<'c, 'de: 'c>(
        &self,
        cells: impl Iterator<Item = Option<&'c JsonCell<'de>>>,
        kind: RowKind,
        columns: &mut [Builder],
        kinds: &mut Vec<RowKind>,
    ) -> Result<(), ()> {
        append_cells(cells, columns, &self.nullable, false, true)?;
        kinds.push(kind);
        Ok(())
    }

    /// The chunk of `messages` read on columns (`Ok(None)`: no rows), or `Err` when the row
    /// decoder fails on one of them.
    pub(super) fn on_columns(&self, messages: &[&[u8]]) -> Result<Option<Chunk>, ()> {
        let mut columns = schema_builders(&self.schema)?;
        let mut kinds = Vec::with_capacity(messages.len());
        for message in messages {
            if message.iter().all(u8::is_ascii_whitespace) {
                continue; // a tombstone
            }
            self.append(message, &mut columns, &mut kinds)?;
        }
        finish_changelog(&self.arrow, &mut columns, kinds)
    }
}

impl ChunkDecoder for CanalChunkDecoder {
    fn decode_chunk(&self, messages: &[&[u8]]) -> Result<Option<Chunk>> {
        match self.on_columns(messages) {
            Ok(chunk) => Ok(chunk),
            Err(()) => through_rows(&*self.codec, &self.schema, messages),
        }
    }
}

/// Visits an event object (a repeated key: its last value, as `serde_json::Map`).
struct EventVisitor<'a> {
    keys: &'a Keys,
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = Event<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Canal event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event<'de>, A::Error> {
        let mut event = Event::default();
        let scalar = || ValueSeed { nested: false };
        while let Some(key) = map.next_key_seed(StrSeed)? {
            match key.as_ref() {
                "database" => event.database = Some(map.next_value_seed(scalar())?),
                "table" => event.table = Some(map.next_value_seed(scalar())?),
                "isDdl" => event.is_ddl = Some(map.next_value_seed(scalar())?),
                "type" => event.kind = Some(map.next_value_seed(scalar())?),
                "data" => event.data = map.next_value_seed(ItemsSeed { keys: self.keys })?,
                "old" => event.old = map.next_value_seed(ItemsSeed { keys: self.keys })?,
                _ => {
                    map.next_value_seed(Skip)?;
                }
            }
        }
        Ok(event)
    }
}

/// A `data` or `old` member.
struct ItemsSeed<'a> {
    keys: &'a Keys,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Items<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Items<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Items<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of objects")
    }
    fn visit_unit<E>(self) -> Result<Items<'de>, E> {
        Ok(Items::Null)
    }
    fn visit_none<E>(self) -> Result<Items<'de>, E> {
        Ok(Items::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Items<'de>, E> {
        Ok(Items::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Items<'de>, E> {
        Ok(Items::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Items<'de>, E> {
        Ok(Items::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Items<'de>, E> {
        Ok(Items::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Items<'de>, E> {
        Ok(Items::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Items<'de>, A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(Items::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ItemSeed { keys: self.keys })? {
            items.push(item);
        }
        Ok(Items::Array(items))
    }
}

/// An element of `data` or `old`: its cells if it is an object.
struct ItemSeed<'a> {
    keys: &'a Keys,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = Option<Cells<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = Option<Cells<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        object_cells(self.keys, map).map(Some)
    }
}
