//! `raw`: the whole message as the single string or bytes column.

use weir_connector_api::config::{ConfigError, ConfigErrors, OptionSet, ValidatedConfig};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::format::{FormatFactory, RowDecoder, RowEncoder};
use weir_connector_api::row::{DataType, Row, RowKind, Schema, Value};

use crate::convert::{malformed, unencodable};

/// The `raw` format.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawFormat;

/// The registered instance.
pub(crate) static RAW: RawFormat = RawFormat;
weir_connector_api::register_format!(RAW);

impl RawFormat {
    fn codec(schema: &Schema) -> Result<RawCodec> {
        match schema.fields.as_slice() {
            [field] if matches!(field.data_type, DataType::String | DataType::Bytes) => {
                Ok(RawCodec {
                    text: field.data_type == DataType::String,
                    nullable: field.nullable,
                })
            }
            fields => Err(ConnectorError::Config(ConfigErrors::new(
                "raw format",
                vec![ConfigError::conflict(
                    ["format"],
                    format!(
                        "the raw format needs a schema of exactly one string or bytes field; \
                         this one has {}",
                        describe(fields.len(), schema)
                    ),
                )],
            ))),
        }
    }
}

fn describe(count: usize, schema: &Schema) -> String {
    let fields: Vec<String> = schema
        .fields
        .iter()
        .map(|f| format!("`{}` {}", f.name, f.data_type))
        .collect();
    match count {
        0 => "no fields".to_owned(),
        _ => fields.join(", "),
    }
}

impl FormatFactory for RawFormat {
    fn identifier(&self) -> &'static str {
        "raw"
    }
    fn description(&self) -> &'static str {
        "the whole message as one string (UTF-8) or bytes column"
    }
    fn options(&self) -> OptionSet {
        OptionSet::new("raw format")
    }
    fn decoder(&self, schema: &Schema, _config: &ValidatedConfig) -> Result<Box<dyn RowDecoder>> {
        Ok(Box::new(Self::codec(schema)?))
    }
    fn encoder(&self, schema: &Schema, _config: &ValidatedConfig) -> Result<Box<dyn RowEncoder>> {
        Ok(Box::new(Self::codec(schema)?))
    }
}

/// Decodes and encodes `raw` messages.
#[derive(Debug, Clone, Copy)]
pub struct RawCodec {
    text: bool,
    nullable: bool,
}

impl RowDecoder for RawCodec {
    fn decode(&self, bytes: &[u8], out: &mut Vec<Row>) -> Result<()> {
        let value = if self.text {
            match std::str::from_utf8(bytes) {
                Ok(text) => Value::String(text.to_owned()),
                Err(e) => {
                    return Err(malformed(
                        "raw",
                        bytes,
                        format!("not valid UTF-8 ({e}): use a bytes field for binary data"),
                    ))
                }
            }
        } else {
            Value::Bytes(bytes.to_vec())
        };
        out.push(Row::insert(vec![value]));
        Ok(())
    }
}

impl RowEncoder for RawCodec {
    fn encode(&self, row: &Row, out: &mut Vec<u8>) -> Result<()> {
        if row.kind != RowKind::Insert {
            return Err(unencodable(
                "raw",
                format!("the raw format cannot write a {:?} row", row.kind),
            ));
        }
        match row.values.as_slice() {
            [Value::String(s)] => out.extend_from_slice(s.as_bytes()),
            [Value::Bytes(b)] => out.extend_from_slice(b),
            [Value::Null] if self.nullable => {}
            other => {
                return Err(unencodable(
                    "raw",
                    format!("expected one string or bytes value, got {other:?}"),
                ))
            }
        }
        Ok(())
    }
}
