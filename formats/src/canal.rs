//! `canal-json`: Alibaba Canal change events (`data`, `old`, `type`), as changelog rows.

use std::sync::LazyLock;

use serde_json::{Map, Value as Json};
use weir_connector_api::config::{ConfigOption, OptionSet, ValidatedConfig};
use weir_connector_api::error::Result;
use weir_connector_api::format::{FormatFactory, RowDecoder, RowEncoder};
use weir_connector_api::row::{Row, RowKind, Schema};

use crate::convert::object_to_values;
use crate::envelope::{self, changelog_options, Change, Envelope, JsonMessages, JsonSettings};

/// `database.include`: only events of this database.
pub(crate) static DATABASE_INCLUDE: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("database.include")
        .optional()
        .description("Only read events whose `database` is exactly this name.")
});

/// `table.include`: only events of this table.
pub(crate) static TABLE_INCLUDE: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("table.include")
        .optional()
        .description("Only read events whose `table` is exactly this name.")
});

/// The `canal-json` format.
#[derive(Debug, Clone, Copy, Default)]
pub struct CanalJsonFormat;

/// The registered instance.
pub(crate) static CANAL_JSON: CanalJsonFormat = CanalJsonFormat;
weir_connector_api::register_format!(CANAL_JSON);

impl CanalJsonFormat {
    fn codec(schema: &Schema, config: &ValidatedConfig) -> CanalCodec {
        CanalCodec {
            schema: schema.clone(),
            settings: JsonSettings::from_config(config),
            database: config.get_optional(&DATABASE_INCLUDE),
            table: config.get_optional(&TABLE_INCLUDE),
        }
    }
}

impl FormatFactory for CanalJsonFormat {
    fn identifier(&self) -> &'static str {
        "canal-json"
    }
    fn description(&self) -> &'static str {
        "Canal change events: INSERT → inserts, UPDATE → update before (data + old) + after, DELETE → deletes"
    }
    fn options(&self) -> OptionSet {
        changelog_options(
            OptionSet::new("canal-json format")
                .option(&DATABASE_INCLUDE)
                .option(&TABLE_INCLUDE),
        )
    }
    fn decoder(&self, schema: &Schema, config: &ValidatedConfig) -> Result<Box<dyn RowDecoder>> {
        Ok(Box::new(Self::codec(schema, config)))
    }
    fn encoder(&self, schema: &Schema, config: &ValidatedConfig) -> Result<Box<dyn RowEncoder>> {
        Ok(Box::new(Self::codec(schema, config)))
    }
}

/// Decodes and encodes `canal-json` messages.
///
/// Decoding: every element of `data` is a row; for `UPDATE`, element `i` of `old` holds the
/// previous values of the columns that changed, so the before image is `data[i]` overlaid with
/// `old[i]`. DDL events (`isDdl: true`, or types such as `CREATE`) give no row. Values may be
/// strings (`"42"`), as Canal writes them. Encoding (as Flink): inserts and update-afters are
/// `INSERT` events, deletes and update-befores `DELETE` events.
#[derive(Debug, Clone)]
pub struct CanalCodec {
    schema: Schema,
    settings: JsonSettings,
    database: Option<String>,
    table: Option<String>,
}

impl CanalCodec {
    fn rows_of(
        &self,
        items: &[Json],
        what: &str,
    ) -> Result<Vec<Vec<weir_connector_api::row::Value>>, String> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Json::Object(object) => object_to_values(&self.schema, object, false, true)
                    .map_err(|e| format!("`{what}[{i}]`: {e}")),
                _ => Err(format!("`{what}[{i}]` is not an object")),
            })
            .collect()
    }
}

impl JsonMessages for CanalCodec {
    const FORMAT: &'static str = "canal-json";

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn settings(&self) -> &JsonSettings {
        &self.settings
    }

    fn rows(&self, json: Json) -> Result<Vec<Row>, String> {
        let Json::Object(event) = json else {
            return Err("expected a JSON object".to_owned());
        };
        let matches = |key: &str, wanted: &Option<String>| match wanted {
            Some(name) => event.get(key).and_then(Json::as_str) == Some(name.as_str()),
            None => true,
        };
        if !matches("database", &self.database) || !matches("table", &self.table) {
            return Ok(Vec::new());
        }
        if event.get("isDdl").and_then(Json::as_bool) == Some(true) {
            return Ok(Vec::new());
        }
        let kind = match event.get("type") {
            Some(Json::String(kind)) => kind.as_str(),
            _ => return Err("no `type` field: is this a Canal change event?".to_owned()),
        };
        let data = match event.get("data") {
            Some(Json::Array(items)) => items.as_slice(),
            Some(Json::Null) | None if !matches!(kind, "INSERT" | "UPDATE" | "DELETE") => &[],
            _ => return Err(format!("a `{kind}` event needs a `data` array")),
        };
        match kind {
            "INSERT" => Ok(self
                .rows_of(data, "data")?
                .into_iter()
                .map(Row::insert)
                .collect()),
            "DELETE" => Ok(self
                .rows_of(data, "data")?
                .into_iter()
                .map(|v| Row::with_kind(RowKind::Delete, v))
                .collect()),
            "UPDATE" => {
                let old = match event.get("old") {
                    Some(Json::Array(items)) if items.len() == data.len() => items,
                    Some(Json::Array(items)) => {
                        return Err(format!(
                            "an UPDATE event has {} `data` rows but {} `old` rows",
                            data.len(),
                            items.len()
                        ))
                    }
                    _ => return Err("an UPDATE event needs an `old` array".to_owned()),
                };
                let mut rows = Vec::with_capacity(data.len() * 2);
                for (i, (after, changed)) in data.iter().zip(old).enumerate() {
                    let (Json::Object(after), Json::Object(changed)) = (after, changed) else {
                        return Err(format!("`data[{i}]` and `old[{i}]` must be objects"));
                    };
                    let mut before: Map<String, Json> = after.clone();
                    for (key, value) in changed {
                        before.insert(key.clone(), value.clone());
                    }
                    let before = object_to_values(&self.schema, &before, false, true)
                        .map_err(|e| format!("`old[{i}]`: {e}"))?;
                    let after = object_to_values(&self.schema, after, false, true)
                        .map_err(|e| format!("`data[{i}]`: {e}"))?;
                    rows.push(Row::with_kind(RowKind::UpdateBefore, before));
                    rows.push(Row::with_kind(RowKind::UpdateAfter, after));
                }
                Ok(rows)
            }
            // CREATE, ALTER, QUERY, ...: schema changes and statements, not rows.
            _ => Ok(Vec::new()),
        }
    }
}

impl Envelope for CanalCodec {
    fn wrap(change: Change, image: &[u8], out: &mut Vec<u8>) {
        let kind: &[u8] = match change {
            Change::Insert => b"INSERT",
            Change::Delete => b"DELETE",
        };
        out.extend_from_slice(b"{\"data\":[");
        out.extend_from_slice(image);
        out.extend_from_slice(b"],\"type\":\"");
        out.extend_from_slice(kind);
        out.extend_from_slice(b"\"}");
    }
}

impl RowDecoder for CanalCodec {
    fn decode(&self, bytes: &[u8], out: &mut Vec<Row>) -> Result<()> {
        envelope::decode(self, bytes, out)
    }
}

impl RowEncoder for CanalCodec {
    fn encode(&self, row: &Row, out: &mut Vec<u8>) -> Result<()> {
        envelope::encode(self, row, out)
    }
}
