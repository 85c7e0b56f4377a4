//! `json`: one JSON object per message, fields by name.

use serde_json::Value as Json;
use weir_connector_api::config::{OptionSet, ValidatedConfig};
use weir_connector_api::error::Result;
use weir_connector_api::format::{FormatFactory, RowDecoder, RowEncoder};
use weir_connector_api::row::{Row, RowKind, Schema};

use crate::convert::{
    object_to_values, unencodable, write_object, IGNORE_PARSE_ERRORS, TIMESTAMP_FORMAT,
};
use crate::envelope::{self, JsonMessages, JsonSettings, FAIL_ON_MISSING_FIELD};

/// The `json` format.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonFormat;

/// The registered instance.
pub(crate) static JSON: JsonFormat = JsonFormat;
weir_connector_api::register_format!(JSON);

impl FormatFactory for JsonFormat {
    fn identifier(&self) -> &'static str {
        "json"
    }
    fn description(&self) -> &'static str {
        "one JSON object per message, fields by name (append-only)"
    }
    fn options(&self) -> OptionSet {
        OptionSet::new("json format")
            .option(&FAIL_ON_MISSING_FIELD)
            .option(&IGNORE_PARSE_ERRORS)
            .option(&TIMESTAMP_FORMAT)
    }
    fn decoder(&self, schema: &Schema, config: &ValidatedConfig) -> Result<Box<dyn RowDecoder>> {
        Ok(Box::new(JsonCodec {
            schema: schema.clone(),
            settings: JsonSettings::from_config(config),
        }))
    }
    fn encoder(&self, schema: &Schema, config: &ValidatedConfig) -> Result<Box<dyn RowEncoder>> {
        Ok(Box::new(JsonCodec {
            schema: schema.clone(),
            settings: JsonSettings::from_config(config),
        }))
    }
}

/// Decodes and encodes `json` messages.
#[derive(Debug, Clone)]
pub struct JsonCodec {
    schema: Schema,
    settings: JsonSettings,
}

impl JsonCodec {
    /// The codec of rows of `schema` with `settings`.
    pub(crate) fn new(schema: Schema, settings: JsonSettings) -> Self {
        JsonCodec { schema, settings }
    }
}

impl JsonMessages for JsonCodec {
    const FORMAT: &'static str = "json";

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn settings(&self) -> &JsonSettings {
        &self.settings
    }

    fn rows(&self, json: Json) -> Result<Vec<Row>, String> {
        let Json::Object(object) = json else {
            return Err("expected a JSON object".to_owned());
        };
        let values = object_to_values(&self.schema, &object, self.settings.fail_on_missing, false)?;
        Ok(vec![Row::insert(values)])
    }
}

impl RowDecoder for JsonCodec {
    fn decode(&self, bytes: &[u8], out: &mut Vec<Row>) -> Result<()> {
        envelope::decode(self, bytes, out)
    }
}

impl RowEncoder for JsonCodec {
    fn encode(&self, row: &Row, out: &mut Vec<u8>) -> Result<()> {
        if row.kind != RowKind::Insert {
            return Err(unencodable(
                "json",
                format!(
                    "the json format is append-only and cannot write a {:?} row: use \
                     debezium-json or canal-json for changelogs",
                    row.kind
                ),
            ));
        }
        let mut object = Vec::new();
        write_object(
            &mut object,
            &self.schema,
            &row.values,
            self.settings.timestamps,
        )
        .map_err(|reason| unencodable("json", reason))?;
        out.extend_from_slice(&object);
        Ok(())
    }
}
