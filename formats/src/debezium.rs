//! `debezium-json`: Debezium change events (`before`, `after`, `op`), as changelog rows.

use std::sync::LazyLock;

use serde_json::{Map, Value as Json};
use weir_connector_api::config::{ConfigOption, OptionSet, ValidatedConfig};
use weir_connector_api::error::Result;
use weir_connector_api::format::{FormatFactory, RowDecoder, RowEncoder};
use weir_connector_api::row::{Row, RowKind, Schema};

use crate::convert::object_to_values;
use crate::envelope::{
    self, changelog_options, Change, Envelope, JsonMessages, JsonSettings, FAIL_ON_MISSING_FIELD,
};

/// `schema-include`: messages are wrapped in `{"schema": …, "payload": …}`.
pub(crate) static SCHEMA_INCLUDE: LazyLock<ConfigOption<bool>> =
    LazyLock::new(|| {
        ConfigOption::new("schema-include").default_value(false).description(
        "Messages carry Debezium's schema envelope (`{\"schema\": …, \"payload\": …}`), as with \
         the JSON converter's `schemas.enable=true`.",
    )
    });

/// The `debezium-json` format.
#[derive(Debug, Clone, Copy, Default)]
pub struct DebeziumJsonFormat;

/// The registered instance.
pub(crate) static DEBEZIUM_JSON: DebeziumJsonFormat = DebeziumJsonFormat;
weir_connector_api::register_format!(DEBEZIUM_JSON);

impl DebeziumJsonFormat {
    pub(crate) fn codec(schema: &Schema, config: &ValidatedConfig) -> DebeziumCodec {
        DebeziumCodec {
            schema: schema.clone(),
            settings: JsonSettings::from_config(config),
            schema_include: config.get(&SCHEMA_INCLUDE),
        }
    }
}

impl FormatFactory for DebeziumJsonFormat {
    fn identifier(&self) -> &'static str {
        "debezium-json"
    }
    fn description(&self) -> &'static str {
        "Debezium change events: `op` c/r → insert, u → update before + after, d → delete"
    }
    fn options(&self) -> OptionSet {
        changelog_options(
            OptionSet::new("debezium-json format")
                .option(&SCHEMA_INCLUDE)
                .option(&FAIL_ON_MISSING_FIELD),
        )
    }
    fn decoder(&self, schema: &Schema, config: &ValidatedConfig) -> Result<Box<dyn RowDecoder>> {
        Ok(Box::new(Self::codec(schema, config)))
    }
    fn encoder(&self, schema: &Schema, config: &ValidatedConfig) -> Result<Box<dyn RowEncoder>> {
        Ok(Box::new(Self::codec(schema, config)))
    }
}

/// Decodes and encodes `debezium-json` messages.
///
/// Decoding: `c` (create) and `r` (snapshot read) give an insert of `after`; `u` gives an
/// update-before of `before` and an update-after of `after`; `d` a delete of `before`. A
/// tombstone (an empty or `null` message) gives no row. Encoding (as Flink): inserts and
/// update-afters are written as `c` events, deletes and update-befores as `d` events.
#[derive(Debug, Clone)]
pub struct DebeziumCodec {
    schema: Schema,
    settings: JsonSettings,
    schema_include: bool,
}

impl DebeziumCodec {
    fn image(&self, event: &Map<String, Json>, key: &str, op: &str) -> Result<Vec<Row>, String> {
        match event.get(key) {
            Some(Json::Object(image)) => {
                let values =
                    object_to_values(&self.schema, image, self.settings.fail_on_missing, false)
                        .map_err(|e| format!("`{key}`: {e}"))?;
                Ok(vec![Row::insert(values)])
            }
            _ if key == "before" && op == "u" => Err(
                "an update event without a `before` image: the source table must log full rows \
                 (PostgreSQL: REPLICA IDENTITY FULL)"
                    .to_owned(),
            ),
            _ => Err(format!("a `{op}` event needs a `{key}` object")),
        }
    }
}

impl JsonMessages for DebeziumCodec {
    const FORMAT: &'static str = "debezium-json";

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn settings(&self) -> &JsonSettings {
        &self.settings
    }

    fn rows(&self, json: Json) -> Result<Vec<Row>, String> {
        let event = match json {
            Json::Null => return Ok(Vec::new()),
            Json::Object(object) => object,
            _ => return Err("expected a JSON object".to_owned()),
        };
        let event = if self.schema_include {
            match event.get("payload") {
                Some(Json::Object(payload)) => payload.clone(),
                Some(Json::Null) => return Ok(Vec::new()),
                _ => {
                    return Err(
                        "no `payload` object: the message has no schema envelope; set \
                         `schema-include = false`"
                            .to_owned(),
                    )
                }
            }
        } else if event.contains_key("schema") && event.contains_key("payload") {
            return Err(
                "the message has a schema envelope (`schema` and `payload`): set \
                 `schema-include = true`"
                    .to_owned(),
            );
        } else {
            event
        };
        let op = match event.get("op") {
            Some(Json::String(op)) => op.as_str(),
            _ => return Err("no `op` field: is this a Debezium change event?".to_owned()),
        };
        match op {
            "c" | "r" => self.image(&event, "after", op),
            "d" => self.image(&event, "before", op).map(|rows| {
                rows.into_iter()
                    .map(|r| Row::with_kind(RowKind::Delete, r.values))
                    .collect()
            }),
            "u" => {
                let before = self.image(&event, "before", op)?;
                let after = self.image(&event, "after", op)?;
                Ok(before
                    .into_iter()
                    .map(|r| Row::with_kind(RowKind::UpdateBefore, r.values))
                    .chain(
                        after
                            .into_iter()
                            .map(|r| Row::with_kind(RowKind::UpdateAfter, r.values)),
                    )
                    .collect())
            }
            other => Err(format!(
                "unknown `op` \"{other}\": expected \"c\", \"r\", \"u\" or \"d\""
            )),
        }
    }
}

impl Envelope for DebeziumCodec {
    fn wrap(change: Change, image: &[u8], out: &mut Vec<u8>) {
        let (before, after, op): (&[u8], &[u8], &[u8]) = match change {
            Change::Insert => (b"null", image, b"c"),
            Change::Delete => (image, b"null", b"d"),
        };
        out.extend_from_slice(b"{\"before\":");
        out.extend_from_slice(before);
        out.extend_from_slice(b",\"after\":");
        out.extend_from_slice(after);
        out.extend_from_slice(b",\"op\":\"");
        out.extend_from_slice(op);
        out.extend_from_slice(b"\"}");
    }
}

impl RowDecoder for DebeziumCodec {
    fn decode(&self, bytes: &[u8], out: &mut Vec<Row>) -> Result<()> {
        envelope::decode(self, bytes, out)
    }
}

impl RowEncoder for DebeziumCodec {
    fn encode(&self, row: &Row, out: &mut Vec<u8>) -> Result<()> {
        envelope::encode(self, row, out)
    }
}
