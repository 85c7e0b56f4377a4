//! `csv`: one delimited record per line, columns in schema order, no header.

use std::sync::LazyLock;

use weir_connector_api::config::{ConfigError, ConfigOption, OptionSet, ValidatedConfig};
use weir_connector_api::error::Result;
use weir_connector_api::format::{FormatFactory, RowDecoder, RowEncoder};
use weir_connector_api::row::{DataType, Row, RowKind, Schema, Value};

use crate::convert::{from_text, malformed, to_text, unencodable, TimestampFormat};
use crate::json::{IGNORE_PARSE_ERRORS, TIMESTAMP_FORMAT};

fn single_byte(
    key: &'static str,
    default: &'static str,
    what: &'static str,
) -> ConfigOption<String> {
    ConfigOption::new(key)
        .default_value(default.to_owned())
        .description(what)
        .validator(|value: &String| match value.as_bytes() {
            // A line break would split records inside a cell: nothing could read them back.
            [b'\n' | b'\r'] => Err("must not be a line break: records are separated by line \
                                    breaks, so no reader could tell cells from records"
                .to_owned()),
            [b] if b.is_ascii_graphic() || *b == b' ' || *b == b'\t' => Ok(()),
            _ if value == "\\t" => Ok(()),
            _ => Err("must be a single printable ASCII character (or `\\t`)".to_owned()),
        })
}

/// `field-delimiter`: the column separator.
pub(crate) static FIELD_DELIMITER: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    single_byte(
        "field-delimiter",
        ",",
        "The column separator (one character; `\\t` for tab).",
    )
});

/// `quote-character`: the quote around cells that contain delimiters.
pub(crate) static QUOTE_CHARACTER: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    single_byte(
        "quote-character",
        "\"",
        "The quote around cells that contain the delimiter.",
    )
});

/// `null-literal`: the text that stands for null.
pub(crate) static NULL_LITERAL: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("null-literal").optional().description(
        "The text that stands for null. Unset: an empty cell is null, except in string columns.",
    )
});

fn byte_of(value: &str) -> u8 {
    if value == "\\t" {
        b'\t'
    } else {
        value.bytes().next().unwrap_or(b',')
    }
}

/// The `csv` format.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvFormat;

/// The registered instance.
pub(crate) static CSV: CsvFormat = CsvFormat;
weir_connector_api::register_format!(CSV);

impl CsvFormat {
    fn codec(schema: &Schema, config: &ValidatedConfig) -> CsvCodec {
        CsvCodec {
            schema: schema.clone(),
            delimiter: byte_of(&config.get(&FIELD_DELIMITER)),
            quote: byte_of(&config.get(&QUOTE_CHARACTER)),
            null_literal: config.get_optional(&NULL_LITERAL),
            ignore_errors: config.get(&IGNORE_PARSE_ERRORS),
            timestamps: config.get(&TIMESTAMP_FORMAT),
        }
    }
}

impl FormatFactory for CsvFormat {
    fn identifier(&self) -> &'static str {
        "csv"
    }
    fn description(&self) -> &'static str {
        "delimited text, one record per line, columns in schema order (append-only)"
    }
    fn options(&self) -> OptionSet {
        OptionSet::new("csv format")
            .option(&FIELD_DELIMITER)
            .option(&QUOTE_CHARACTER)
            .option(&NULL_LITERAL)
            .option(&IGNORE_PARSE_ERRORS)
            .option(&TIMESTAMP_FORMAT)
            .cross_validator(|config| {
                if config.get(&FIELD_DELIMITER) == config.get(&QUOTE_CHARACTER) {
                    vec![ConfigError::conflict(
                        ["field-delimiter", "quote-character"],
                        "the delimiter and the quote must differ",
                    )]
                } else {
                    Vec::new()
                }
            })
    }
    fn decoder(&self, schema: &Schema, config: &ValidatedConfig) -> Result<Box<dyn RowDecoder>> {
        Ok(Box::new(Self::codec(schema, config)))
    }
    fn encoder(&self, schema: &Schema, config: &ValidatedConfig) -> Result<Box<dyn RowEncoder>> {
        Ok(Box::new(Self::codec(schema, config)))
    }
}

/// Decodes and encodes `csv` messages. A message may hold several lines; each is a row. Encoded
/// rows carry no line terminator (the connector separates messages).
#[derive(Debug, Clone)]
pub struct CsvCodec {
    schema: Schema,
    delimiter: u8,
    quote: u8,
    null_literal: Option<String>,
    ignore_errors: bool,
    timestamps: TimestampFormat,
}

impl CsvCodec {
    fn cell(&self, index: usize, text: &str) -> Result<Value, String> {
        let Some(field) = self.schema.fields.get(index) else {
            return Err("more columns than fields".to_owned());
        };
        let is_null = match &self.null_literal {
            Some(literal) => text == literal,
            None => text.is_empty() && field.data_type != DataType::String,
        };
        if is_null {
            return if field.nullable {
                Ok(Value::Null)
            } else {
                Err(format!(
                    "field `{}` is not nullable but the cell is empty (null)",
                    field.name
                ))
            };
        }
        from_text(field, text)
    }

    fn decode_all(&self, bytes: &[u8], out: &mut Vec<Row>) -> Result<(), String> {
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .quote(self.quote)
            .from_reader(bytes);
        for (line, record) in reader.records().enumerate() {
            let record = record.map_err(|e| format!("line {}: {e}", line + 1))?;
            if record.len() == 1 && record.get(0) == Some("") && self.schema.fields.len() != 1 {
                continue; // an empty line
            }
            if record.len() != self.schema.fields.len() {
                return Err(format!(
                    "line {}: expected {} columns ({}), got {}",
                    line + 1,
                    self.schema.fields.len(),
                    self.schema
                        .fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    record.len()
                ));
            }
            let values = record
                .iter()
                .enumerate()
                .map(|(i, text)| self.cell(i, text))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(Row::insert(values));
        }
        Ok(())
    }
}

impl RowDecoder for CsvCodec {
    fn decode(&self, bytes: &[u8], out: &mut Vec<Row>) -> Result<()> {
        let mut rows = Vec::new();
        match self.decode_all(bytes, &mut rows) {
            Ok(()) => {
                out.extend(rows);
                Ok(())
            }
            Err(_) if self.ignore_errors => Ok(()),
            Err(reason) => Err(malformed("csv", bytes, reason)),
        }
    }
}

impl RowEncoder for CsvCodec {
    fn encode(&self, row: &Row, out: &mut Vec<u8>) -> Result<()> {
        if row.kind != RowKind::Insert {
            return Err(unencodable(
                "csv",
                format!(
                    "the csv format is append-only and cannot write a {:?} row",
                    row.kind
                ),
            ));
        }
        if row.values.len() != self.schema.fields.len() {
            return Err(unencodable(
                "csv",
                format!(
                    "the row has {} values but the schema has {} fields",
                    row.values.len(),
                    self.schema.fields.len()
                ),
            ));
        }
        let mut cells = Vec::with_capacity(row.values.len());
        for (field, value) in self.schema.fields.iter().zip(&row.values) {
            let text = match (value, &self.null_literal) {
                (Value::Null, Some(literal)) => literal.clone(),
                _ => to_text(field, value, self.timestamps).map_err(|r| unencodable("csv", r))?,
            };
            cells.push(text);
        }
        let mut writer = ::csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .quote(self.quote)
            .terminator(::csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        writer
            .write_record(&cells)
            .map_err(|e| unencodable("csv", e.to_string()))?;
        let mut bytes = writer
            .into_inner()
            .map_err(|e| unencodable("csv", e.to_string()))?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        out.extend_from_slice(&bytes);
        Ok(())
    }
}
