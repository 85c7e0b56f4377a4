//! `json` lines from columns: every row of a [`Chunk`] written as the `json` format's row
//! encoder writes it — keys in schema order, nulls written as `null`, floats as serde_json
//! writes them, bytes in base64, timestamps as `timestamp-format` says — each followed by
//! `\n`, without making a row or a `serde_json::Value`.
//!
//! **Why not `arrow-json`'s writer.** It writes other JSON for the same rows: binary columns
//! as hex (the `json` format writes and reads base64), millisecond timestamps without a zone
//! as text without `Z` (which the `json` format's reader does not read back), and it leaves
//! null fields out unless told otherwise. Rows written by the row path and by the columnar path
//! must be the same bytes, so values are written with serde_json, as the row encoder does.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType as ArrowType, TimeUnit};
use base64::Engine as _;
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::error::Result;
use weir_connector_api::row::{RowKind, Schema};

use crate::chunk::Chunk;
use crate::convert::{unencodable, TimestampFormat, TIMESTAMP_FORMAT};
use crate::envelope::JsonSettings;
use crate::json::JsonCodec;
use crate::csv::chunk::Days;

/// Writes chunks as `json` lines, the bytes of the `json` row encoder (see the
/// [`columnar`](super) module for why not `arrow-json`'s writer).
#[derive(Debug, Clone)]
pub struct JsonChunkEncoder {
    /// Each field's `"name":`, as serde_json writes the key.
    keys: Vec<Vec<u8>>,
    names: Vec<String>,
    timestamps: TimestampFormat,
    /// The row encoder, for chunks with a column of a type written here from values (the
    /// types of API line 1.1: decimals, dates, other timestamp units, nested types; their
    /// JSON is `crate::typed`'s, one place for both paths).
    rows: JsonCodec,
}

impl JsonChunkEncoder {
    /// The encoder of rows of `schema` with the `json` format's validated options.
    pub fn new(schema: &Schema, config: &ValidatedConfig) -> Self {
        let keys = schema
            .fields
            .iter()
            .map(|f| {
                let mut key = serde_json::to_vec(&f.name).unwrap_or_default();
                key.push(b':');
                key
            })
            .collect();
        JsonChunkEncoder {
            keys,
            names: schema.fields.iter().map(|f| f.name.clone()).collect(),
            timestamps: config.get(&TIMESTAMP_FORMAT),
            rows: JsonCodec::new(schema.clone(), JsonSettings::from_config(config)),
        }
    }

    /// Appends every row of `chunk` as a line: the bytes the `json` row encoder writes for the
    /// row, then `\n`. As the row path refuses them, a row other than an insert, a float that
    /// is not finite and a column of a type the format has no JSON for are errors; nothing of
    /// the chunk is appended then.
    pub fn encode_chunk_lines(&self, chunk: &Chunk, out: &mut Vec<u8>) -> Result<()> {
        if let Some(kind) = chunk
            .kinds()
            .and_then(|k| k.iter().find(|k| **k != RowKind::Insert))
        {
            return Err(unencodable(
                "json",
                format!(
                    "the json format is append-only and cannot write a {kind:?} row: use \
                     debezium-json or canal-json for changelogs"
                ),
            ));
        }
        let batch = chunk.batch();
        if batch.num_columns() != self.keys.len() {
            return Err(unencodable(
                "json",
                format!(
                    "the row has {} values but the schema has {} fields",
                    batch.num_columns(),
                    self.keys.len()
                ),
            ));
        }
        let start = out.len();
        let result = if batch.columns().iter().all(|c| written_here(c.data_type())) {
            self.write_rows(batch.columns(), batch.num_rows(), out)
        } else {
            self.write_through_rows(chunk, out)
        };
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Every row of `chunk` made and written by the row encoder.
    fn write_through_rows(&self, chunk: &Chunk, out: &mut Vec<u8>) -> Result<()> {
        use weir_connector_api::format::RowEncoder as _;
        let mut result = Ok(());
        chunk
            .for_each_row(|row| {
                if result.is_ok() {
                    result = self.rows.encode(&row, out).map(|()| out.push(b'\n'));
                }
            })
            .map_err(|e| unencodable("json", e.to_string()))?;
        result
    }

    fn write_rows(&self, columns: &[ArrayRef], rows: usize, out: &mut Vec<u8>) -> Result<()> {
        let mut days = Days::default();
        let mut text = String::new();
        for row in 0..rows {
            out.push(b'{');
            for (i, ((column, key), name)) in
                columns.iter().zip(&self.keys).zip(&self.names).enumerate()
            {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(key);
                if column.is_null(row) {
                    out.extend_from_slice(b"null");
                    continue;
                }
                self.value(column, row, name, &mut days, &mut text, out)?;
            }
            out.extend_from_slice(b"}\n");
        }
        Ok(())
    }

    /// Writes the non-null value of `column` at `row`.
    fn value(
        &self,
        column: &ArrayRef,
        row: usize,
        name: &str,
        days: &mut Days,
        text: &mut String,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let json = |e: serde_json::Error| unencodable("json", e.to_string());
        match column.data_type() {
            ArrowType::Boolean => {
                let value = column.as_boolean().value(row);
                out.extend_from_slice(if value { b"true" } else { b"false" });
            }
            ArrowType::Int64 => {
                let value = column.as_primitive::<Int64Type>().value(row);
                out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
            }
            ArrowType::Float64 => {
                let x = column.as_primitive::<Float64Type>().value(row);
                if !x.is_finite() {
                    return Err(unencodable(
                        "json",
                        format!(
                            "field `{name}`: {x} cannot be written as JSON (not a finite number)"
                        ),
                    ));
                }
                serde_json::to_writer(&mut *out, &x).map_err(json)?;
            }
            ArrowType::Utf8 => {
                serde_json::to_writer(&mut *out, column.as_string::<i32>().value(row))
                    .map_err(json)?;
            }
            ArrowType::Binary => {
                text.clear();
                base64::engine::general_purpose::STANDARD
                    .encode_string(column.as_binary::<i32>().value(row), text);
                serde_json::to_writer(&mut *out, text.as_str()).map_err(json)?;
            }
            ArrowType::Timestamp(TimeUnit::Millisecond, _) => {
                let millis = column.as_primitive::<TimestampMillisecondType>().value(row);
                match self.timestamps {
                    TimestampFormat::Iso8601 => {
                        // RFC 3339 text: nothing to escape.
                        out.push(b'"');
                        days.render(millis, out);
                        out.push(b'"');
                    }
                    TimestampFormat::EpochMillis => {
                        out.extend_from_slice(itoa::Buffer::new().format(millis).as_bytes());
                    }
                }
            }
            _ => {
                return Err(unencodable(
                    "json",
                    format!("field `{name}`: this value type is not supported by this format"),
                ))
            }
        }
        Ok(())
    }
}

/// Whether [`JsonChunkEncoder::write_rows`] writes columns of type `t` itself.
fn written_here(t: &ArrowType) -> bool {
    matches!(
        t,
        ArrowType::Boolean
            | ArrowType::Int64
            | ArrowType::Float64
            | ArrowType::Utf8
            | ArrowType::Binary
            | ArrowType::Timestamp(TimeUnit::Millisecond, _)
    )
}
