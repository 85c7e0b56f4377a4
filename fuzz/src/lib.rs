//! Helpers shared by the fuzz targets (`fuzz_targets/`).

use std::collections::BTreeMap;

use weir_connector_api::format::find_format;
use weir_connector_api::row::{DataType, Field, Row, Schema};

/// A schema with a field of every type, nullable or not by `nullable`.
pub fn schema(nullable: bool) -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, nullable),
        Field::new("price", DataType::Float64, nullable),
        Field::new("ok", DataType::Boolean, nullable),
        Field::new("data", DataType::Bytes, nullable),
        Field::new("at", DataType::TimestampMillis, nullable),
    ])
}

/// Decodes `data` with the changelog format `id`: its first byte picks the options (schema
/// envelope, skipped errors, missing fields, timestamp format) and the schema's nullability,
/// the rest is the message. Every decoded row must encode again without a panic.
pub fn decode_message(id: &str, data: &[u8]) {
    weir_formats::link();
    let Some((&flags, message)) = data.split_first() else {
        return;
    };
    let Some(format) = find_format(id) else {
        panic!("format `{id}` is linked");
    };
    let mut options = BTreeMap::new();
    let flag = |bit: u8| (flags & (1 << bit) != 0).to_string();
    if id == "debezium-json" {
        options.insert("schema-include".to_owned(), flag(0));
        options.insert("fail-on-missing-field".to_owned(), flag(2));
    } else if flags & 1 != 0 {
        options.insert("database.include".to_owned(), "shop".to_owned());
        options.insert("table.include".to_owned(), "orders".to_owned());
    }
    options.insert("ignore-parse-errors".to_owned(), flag(1));
    let timestamps = if flags & (1 << 3) != 0 {
        "epoch-millis"
    } else {
        "iso-8601"
    };
    options.insert("timestamp-format".to_owned(), timestamps.to_owned());
    let config = match format.options().validate(&options) {
        Ok(config) => config,
        Err(e) => panic!("the fuzz target's own options are valid: {e}"),
    };
    let schema = schema(flags & (1 << 4) != 0);
    let (Ok(decoder), Ok(encoder)) = (
        format.decoder(&schema, &config),
        format.encoder(&schema, &config),
    ) else {
        panic!("`{id}` makes a decoder and an encoder");
    };
    let mut rows: Vec<Row> = Vec::new();
    let _ = decoder.decode(message, &mut rows);
    for row in &rows {
        let mut out = Vec::new();
        let _ = encoder.encode(row, &mut out);
    }
}
