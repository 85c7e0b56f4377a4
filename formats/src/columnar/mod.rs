//! Messages decoded straight into columns: [`ChunkDecoder`]s turn many messages of a row
//! format at once into one [`Chunk`] — the rows the format's
//! [`RowDecoder`] gives for them, in the same order with the same changelog kinds — without
//! making a [`Row`], a
//! `serde_json::Value` or a `String` per value.
//!
//! | format | columnar decoder |
//! |---|---|
//! | `json` | [`JsonChunkDecoder`]: serde_json's streaming parser into Arrow builders |
//! | `csv` | [`CsvChunkDecoder`]: the row decoder's csv-core parser, cells into Arrow builders |
//! | `debezium-json` | [`DebeziumChunkDecoder`]: the same parser, each event's images into the fields' columns, the rows' kinds beside them |
//! | `canal-json` | [`CanalChunkDecoder`]: the same parser, every element of an event's `data` (an `UPDATE`'s before image: `data[i]` overlaid with `old[i]`) into the fields' columns, values read leniently as the row decoder reads them (`"42"`), the rows' kinds beside them |
//! | `raw` | none ([`chunk_decoder`] gives `None`: such a source stays on rows) |
//!
//! Every type the row decoders read has a column: booleans, integers of each width, floats,
//! decimals (a value with more digits than the type's precision makes the batch take the row
//! path, where the rows' conversion into a chunk refuses it), dates, timestamps of each unit
//! with or without a zone, strings, bytes (base64), and, in the JSON formats, lists, structs
//! and maps nested to any depth. A nested value is kept as its text (serde_json's
//! `RawValue`, borrowed from the message) while its object is read, then parsed into the
//! children's columns. Values the columnar path skips or only captures are still parsed in
//! full (`cells::Skip`: serde's `IgnoredAny` lets a number out of range or invalid UTF-8
//! through, where the row decoder fails), and a nested value that nests nearly as deep as
//! serde_json allows a message to (its depth counts from the message on rows, from the value
//! when parsed again) sends the batch through the row decoder. csv refuses nested fields when
//! the decoder is made, as its row decoder does.
//!
//! And the other way, [`JsonChunkEncoder`] writes chunks as `json` lines (the bytes of the row
//! encoder; `csv` has `CsvCodec::encode_chunk_lines`).
//!
//! Columns are built for the pipeline type of each field (its Arrow type is
//! [`crate::chunk::arrow_schema`]'s): a builder per type, with the text and JSON rules of the
//! row decoders for each (`convert`, and `typed::scalar_from_text` for the types of line
//! 1.1, called as the row decoders call it).
//!
//! **Why not `arrow-json` and `arrow-csv`.** Both read valid input into the same columns, but
//! they accept input the row decoders reject, and read some of it otherwise, so a job would
//! give other rows (or none of the errors) on columns than on rows:
//! - `arrow-json` reads `"42"` and `1.5` into an int64 column (`1.5` as `1`), `"2.5"` into a
//!   float64 column, binary columns as hex (the row formats write base64), timestamps from
//!   any of arrow-cast's text layouts (`2024-01-01 00:00:00`, `2024-01-01`), numbers with
//!   leading zeros, and two JSON values on one line as two rows; it has no
//!   `fail-on-missing-field`, and its errors name no message.
//! - `arrow-csv` trims nothing (the row decoder reads ` 42` as 42), reads binary cells as
//!   they are (the row format writes base64), timestamps from arrow-cast's text layouts and
//!   booleans from more spellings, and has no empty-cell-is-null-except-strings rule.
//!
//! Likewise `arrow-json`'s writer writes binary columns as hex (the `json` format writes and
//! reads base64), millisecond timestamps without a zone as text without `Z` (which the `json`
//! reader does not read back) and leaves null fields out, so [`JsonChunkEncoder`] writes with
//! serde_json, the row encoder's bytes.
//!
//! So the decoders here keep the row decoders' parsers (serde_json, csv-core) and rules, and
//! only skip the intermediate values. A message the columnar decoder cannot read makes the
//! whole batch go through the row decoder, so malformed input fails (or is skipped with
//! `ignore-parse-errors`) exactly as on rows, with the same message.

mod builder;
mod canal;
mod cells;
mod csv;
mod debezium;
mod json;
mod json_lines;
mod nested;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_canal;
#[cfg(test)]
mod tests_typed;

use std::fmt;

use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::format::RowDecoder;
use weir_connector_api::row::{Row, Schema};

pub use self::canal::CanalChunkDecoder;
pub use self::csv::CsvChunkDecoder;
pub use self::debezium::DebeziumChunkDecoder;
pub use self::json::JsonChunkDecoder;
pub use self::json_lines::JsonChunkEncoder;
use crate::chunk::{arrow_schema, Chunk};

/// Decodes messages of a row format into columns.
pub trait ChunkDecoder: Send + Sync + fmt::Debug {
    /// The rows of `messages` (in order) as one chunk, exactly the rows the format's row
    /// decoder gives for them; `None` when they hold no row (tombstones, skipped messages).
    /// A malformed message is the row decoder's error (or skipped, with
    /// `ignore-parse-errors`).
    fn decode_chunk(&self, messages: &[&[u8]]) -> Result<Option<Chunk>>;
}

/// The columnar decoder of the registered format `id` for rows of `schema` with its validated
/// options, or `None` when the format has none (the source then produces rows).
pub fn chunk_decoder(
    id: &str,
    schema: &Schema,
    config: &ValidatedConfig,
) -> Result<Option<Box<dyn ChunkDecoder>>> {
    Ok(match id {
        "json" => Some(Box::new(JsonChunkDecoder::new(schema, config)?)),
        "csv" => Some(Box::new(CsvChunkDecoder::new(schema, config)?)),
        "debezium-json" => Some(Box::new(DebeziumChunkDecoder::new(schema, config)?)),
        "canal-json" => Some(Box::new(CanalChunkDecoder::new(schema, config)?)),
        _ => None,
    })
}

/// The row path for a batch the columnar decoder could not read: every message through the
/// row decoder, the rows made a chunk.
fn through_rows(
    decoder: &dyn RowDecoder,
    schema: &Schema,
    messages: &[&[u8]],
) -> Result<Option<Chunk>> {
    let mut rows: Vec<Row> = Vec::new();
    for message in messages {
        decoder.decode(message, &mut rows)?;
    }
    if rows.is_empty() {
        return Ok(None);
    }
    Chunk::from_rows(&arrow_schema(schema), &rows)
        .map(Some)
        .map_err(|e| ConnectorError::malformed("rows decoded into a chunk", e.to_string()))
}
