//! # weir-formats
//!
//! The row formats of Weir pipelines: they turn [`Row`](weir_connector_api::row::Row)s into
//! bytes and back for connectors that carry bytes (Kafka values, text files). Each registers a
//! [`FormatFactory`](weir_connector_api::format::FormatFactory) with
//! [`register_format!`](weir_connector_api::register_format), so depending on this crate is all
//! it takes; look them up with [`weir_connector_api::format::find_format`].
//!
//! | identifier | rows | options |
//! |---|---|---|
//! | `json` | one JSON object per message, fields by name | `fail-on-missing-field`, `ignore-parse-errors`, `timestamp-format` |
//! | `csv` | one delimited record per line, columns in schema order | `field-delimiter`, `quote-character`, `null-literal`, `ignore-parse-errors`, `timestamp-format` |
//! | `raw` | the whole message as the one string or bytes column | none |
//! | `debezium-json` | Debezium events: `c`/`r` insert, `u` update-before + update-after, `d` delete | `schema-include`, `fail-on-missing-field`, `ignore-parse-errors`, `timestamp-format` |
//! | `canal-json` | Canal events: `INSERT`, `UPDATE` (before = `data` overlaid with `old`), `DELETE` | `database.include`, `table.include`, `ignore-parse-errors`, `timestamp-format` |
//!
//! Columnar pipelines decode many `json`, `csv`, `debezium-json` or `canal-json` messages at
//! once straight into a [`Chunk`](chunk::Chunk) with [`columnar::chunk_decoder`] (the same
//! rows, kinds and errors as the row decoder, for every type), and write chunks as `json`
//! lines with [`columnar::JsonChunkEncoder`].
//!
//! Types: booleans, 64-bit integers and floats, strings, bytes (base64 in text formats) and
//! timestamps (RFC 3339 text or epoch milliseconds; written as `timestamp-format` says), and
//! the types of API line 1.1 as [`typed`] describes them (csv holds the scalar ones). A
//! malformed message is a [`ConnectorError::Malformed`](weir_connector_api::ConnectorError)
//! that shows the start of the message and what is wrong with it, unless
//! `ignore-parse-errors` skips it.
//!
//! ```
//! use std::collections::BTreeMap;
//! use weir_connector_api::format::find_format;
//! use weir_connector_api::row::{DataType, Field, RowKind, Schema, Value};
//!
//! weir_formats::link();
//! let schema = Schema::new(vec![
//!     Field::new("id", DataType::Int64, false),
//!     Field::new("name", DataType::String, true),
//! ]);
//! let format = find_format("debezium-json").expect("registered");
//! let config = format.options().validate(&BTreeMap::new())?;
//! let decoder = format.decoder(&schema, &config)?;
//! let mut rows = Vec::new();
//! decoder.decode(
//!     br#"{"before":{"id":1,"name":"a"},"after":{"id":1,"name":"b"},"op":"u"}"#,
//!     &mut rows,
//! )?;
//! assert_eq!(rows[0].kind, RowKind::UpdateBefore);
//! assert_eq!(rows[1].kind, RowKind::UpdateAfter);
//! assert_eq!(rows[1].values[1], Value::String("b".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod canal;
pub mod chunk;
pub mod columnar;
mod convert;
pub(crate) mod csv;
mod debezium;
mod envelope;
mod float;
mod json;
mod raw;
pub mod typed;

#[cfg(test)]
mod tests;

pub use canal::{CanalCodec, CanalJsonFormat};
pub use convert::TimestampFormat;
pub use csv::{CsvCodec, CsvFormat};
pub use debezium::{DebeziumCodec, DebeziumJsonFormat};
pub use json::{JsonCodec, JsonFormat};
pub use raw::{RawCodec, RawFormat};

use weir_connector_api::format::FormatFactory;

/// Every format of this crate.
pub fn all() -> [&'static dyn FormatFactory; 5] {
    [
        &json::JSON,
        &csv::CSV,
        &raw::RAW,
        &debezium::DEBEZIUM_JSON,
        &canal::CANAL_JSON,
    ]
}

/// Makes sure the formats are linked into the program (and so registered); call it once from a
/// binary that finds formats by identifier only.
pub fn link() {
    std::hint::black_box(all());
}
