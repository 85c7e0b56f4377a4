//! `debezium-json` events into columns: each event parsed by serde_json's streaming
//! deserializer, its `before` and `after` images into the fields' cells, then its rows appended
//! with their kinds as the row decoder orders them (`c`/`r`: an insert of `after`; `u`: an
//! update-before of `before`, then an update-after of `after`; `d`: a delete of `before`).

use std::borrow::Cow;
use std::fmt;

use arrow_schema::SchemaRef;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::{RowKind, Schema};

use super::builder::{builders, finish_changelog, schema_builders, Builder};
use super::cells::{Cells, ImageSeed, Keys, Skip, StrSeed};
use super::json::append_cells;
use super::{through_rows, ChunkDecoder};
use crate::chunk::{arrow_schema, Chunk};
use crate::debezium::{DebeziumCodec, DebeziumJsonFormat, SCHEMA_INCLUDE};
use crate::envelope::JsonSettings;

/// Decodes `debezium-json` events into chunks of changelog rows; see the
/// [`columnar`](super) module. Anything but a plain event (a tombstone, a missing image, an
/// unknown `op`, a malformed message) makes the batch go through the row decoder.
#[derive(Debug, Clone)]
pub struct DebeziumChunkDecoder {
    codec: DebeziumCodec,
    schema: Schema,
    arrow: SchemaRef,
    keys: Keys,
    nullable: Vec<bool>,
    fail_on_missing: bool,
    schema_include: bool,
}

/// What the columnar path reads of one event.
#[derive(Default)]
struct Event<'de> {
    op: Option<Cow<'de, str>>,
    /// The images; `None` when absent or `null`.
    before: Option<Cells<'de>>,
    after: Option<Cells<'de>>,
    /// The keys `schema` and `payload` (an envelope the options must ask for).
    schema: bool,
    payload: Option<Box<Event<'de>>>,
}

impl DebeziumChunkDecoder {
    /// The decoder of rows of `schema` with the `debezium-json` format's validated options.
    pub fn new(schema: &Schema, config: &ValidatedConfig) -> Result<Self> {
        let arrow = arrow_schema(schema);
        builders(&schema.fields).map_err(ConnectorError::Contract)?;
        Ok(DebeziumChunkDecoder {
            codec: DebeziumJsonFormat::codec(schema, config),
            schema: schema.clone(),
            keys: Keys::of(&schema.fields),
            nullable: schema.fields.iter().map(|f| f.nullable).collect(),
            fail_on_missing: JsonSettings::from_config(config).fail_on_missing,
            schema_include: config.get(&SCHEMA_INCLUDE),
            arrow,
        })
    }

    /// Appends the rows of one event and their kinds; `Err` for anything but a plain event.
    fn append(
        &self,
        message: &[u8],
        columns: &mut [Builder],
        kinds: &mut Vec<RowKind>,
    ) -> Result<(), ()> {
        let mut de = serde_json::Deserializer::from_slice(message);
        let event = de
            .deserialize_map(EventVisitor {
                keys: &self.keys,
                nested: self.schema_include,
            })
            .map_err(|_| ())?;
        de.end().map_err(|_| ())?;
        let event = if self.schema_include {
            *event.payload.ok_or(())?
        } else if event.schema && event.payload.is_some() {
            return Err(());
        } else {
            event
        };
        let mut row = |image: Option<Cells<'_>>, kind: RowKind| {
            let cells = image.ok_or(())?;
            append_cells(
                cells.iter().map(Option::as_ref),
                columns,
                &self.nullable,
                self.fail_on_missing,
                false,
            )?;
            kinds.push(kind);
            Ok(())
        };
        match event.op.as_deref() {
            Some("c" | "r") => row(event.after, RowKind::Insert),
            Some("d") => row(event.before, RowKind::Delete),
            Some("u") => {
                // Both images are checked before either row is appended, as the row decoder
                // reads both before it gives a row.
                if event.before.is_none() || event.after.is_none() {
                    return Err(());
                }
                row(event.before, RowKind::UpdateBefore)?;
                row(event.after, RowKind::UpdateAfter)
            }
            _ => Err(()),
        }
    }

    /// The chunk of `messages` read on columns (`Ok(None)`: no rows), or `Err` when one of
    /// them is not a plain event the columnar path reads.
    pub(super) fn on_columns(&self, messages: &[&[u8]]) -> Result<Option<Chunk>, ()> {
        let mut columns = schema_builders(&self.schema)?;
        let mut kinds = Vec::with_capacity(messages.len());
        for message in messages {
            self.append(message, &mut columns, &mut kinds)?;
        }
        finish_changelog(&self.arrow, &mut columns, kinds)
    }
}

impl ChunkDecoder for DebeziumChunkDecoder {
    fn decode_chunk(&self, messages: &[&[u8]]) -> Result<Option<Chunk>> {
        match self.on_columns(messages) {
            Ok(chunk) => Ok(chunk),
            Err(()) => through_rows(&self.codec, &self.schema, messages),
        }
    }
}

/// Visits an event object (or, `nested`, the envelope whose `payload` is one).
struct EventVisitor<'a> {
    keys: &'a Keys,
    nested: bool,
}

impl<'de> DeserializeSeed<'de> for EventVisitor<'_> {
    type Value = Event<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Event<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = Event<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Debezium event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event<'de>, A::Error> {
        let mut event = Event::default();
        let mut payload_key = false;
        while let Some(key) = map.next_key_seed(StrSeed)? {
            match key.as_ref() {
                "op" => event.op = Some(map.next_value_seed(StrSeed)?),
                "before" => {
                    event.before = map.next_value_seed(ImageSeed { keys: self.keys })?;
                }
                "after" => {
                    event.after = map.next_value_seed(ImageSeed { keys: self.keys })?;
                }
                "payload" if self.nested => {
                    let inner = EventVisitor {
                        keys: self.keys,
                        nested: false,
                    };
                    event.payload = Some(Box::new(map.next_value_seed(inner)?));
                }
                other => {
                    payload_key |= other == "payload";
                    event.schema |= other == "schema";
                    map.next_value_seed(Skip)?;
                }
            }
        }
        if payload_key {
            // Without the envelope option: a marker that the message has one.
            event.payload = Some(Box::default());
        }
        Ok(event)
    }
}
