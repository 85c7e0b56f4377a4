//! `csv`: one delimited record per line, columns in schema order, no header.

use std::sync::{LazyLock, Mutex, PoisonError};

use weir_connector_api::config::{ConfigError, ConfigOption, OptionSet, ValidatedConfig};
use weir_connector_api::error::Result;
use weir_connector_api::format::{FormatFactory, RowDecoder, RowEncoder};
use weir_connector_api::row::{DataType, Row, RowKind, Schema, Value};

use crate::convert::{
    from_text, malformed, to_text, unencodable, TimestampFormat, IGNORE_PARSE_ERRORS,
    TIMESTAMP_FORMAT,
};

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

pub(crate) mod chunk;

/// The `csv` format.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvFormat;

/// The registered instance.
pub(crate) static CSV: CsvFormat = CsvFormat;
weir_connector_api::register_format!(CSV);

impl CsvFormat {
    /// The codec of validated `csv` options for rows of `schema` (what the registered format's
    /// encoder and decoder are).
    pub fn codec(schema: &Schema, config: &ValidatedConfig) -> CsvCodec {
        let delimiter = byte_of(&config.get(&FIELD_DELIMITER));
        let quote = byte_of(&config.get(&QUOTE_CHARACTER));
        CsvCodec {
            schema: schema.clone(),
            parser: parser(delimiter, quote),
            delimiter,
            quote,
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
        scalars_only(schema)?;
        Ok(Box::new(Self::codec(schema, config)))
    }
    fn encoder(&self, schema: &Schema, config: &ValidatedConfig) -> Result<Box<dyn RowEncoder>> {
        scalars_only(schema)?;
        Ok(Box::new(Self::codec(schema, config)))
    }
}

/// Refuses a schema with a list, struct or map field: csv cells hold scalars.
fn scalars_only(schema: &Schema) -> Result<()> {
    match crate::typed::refuse_nested("csv", &schema.fields) {
        Some(reason) => Err(weir_connector_api::error::ConnectorError::Config(
            weir_connector_api::config::ConfigErrors::new(
                "csv format",
                vec![weir_connector_api::config::ConfigError::conflict(
                    ["format"],
                    reason,
                )],
            ),
        )),
        None => Ok(()),
    }
}

/// A parser of the dialect. Built once per codec: building one builds its transition tables
/// (~17 µs, as long as decoding a hundred rows). Not cloned: `csv_core::Reader::clone` copies
/// only part of those tables (csv-core 0.1.13), and the copy misparses.
fn parser(delimiter: u8, quote: u8) -> Mutex<csv_core::Reader> {
    Mutex::new(
        csv_core::ReaderBuilder::new()
            .delimiter(delimiter)
            .quote(quote)
            .build(),
    )
}

/// Decodes and encodes `csv` messages. A message may hold several lines; each is a row. Encoded
/// rows carry no line terminator (the connector separates messages).
#[derive(Debug)]
pub struct CsvCodec {
    pub(crate) schema: Schema,
    /// The dialect's parser, reset for every message.
    parser: Mutex<csv_core::Reader>,
    delimiter: u8,
    quote: u8,
    pub(crate) null_literal: Option<String>,
    ignore_errors: bool,
    timestamps: TimestampFormat,
}

impl Clone for CsvCodec {
    fn clone(&self) -> Self {
        CsvCodec {
            schema: self.schema.clone(),
            parser: parser(self.delimiter, self.quote),
            delimiter: self.delimiter,
            quote: self.quote,
            null_literal: self.null_literal.clone(),
            ignore_errors: self.ignore_errors,
            timestamps: self.timestamps,
        }
    }
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
        self.each_record(bytes, |line, cells, ends| {
            let mut values = Vec::with_capacity(ends.len());
            let mut start = 0;
            for (i, end) in ends.iter().enumerate() {
                let cell = cells.get(start..*end).unwrap_or_default();
                start = *end;
                let text = std::str::from_utf8(cell)
                    .map_err(|e| format!("line {line}: field {}: invalid UTF-8: {e}", i + 1))?;
                values.push(self.cell(i, text)?);
            }
            out.push(Row::insert(values));
            Ok(())
        })
    }

    /// Calls `f` with each record of `bytes` that has a cell per field (its line number, its
    /// cells' bytes one after another and where each ends), skipping empty lines; a record of
    /// another width is an error.
    pub(crate) fn each_record(
        &self,
        bytes: &[u8],
        mut f: impl FnMut(u64, &[u8], &[usize]) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut parser = self.parser.lock().unwrap_or_else(PoisonError::into_inner);
        parser.reset();
        let mut input = bytes;
        let mut cells = vec![0_u8; bytes.len().max(16)];
        let mut ends = vec![0_usize; self.schema.fields.len().max(1) + 1];
        let mut line = 0_u64;
        loop {
            let (mut len, mut fields) = (0, 0);
            loop {
                let (result, read, written, ended) = parser.read_record(
                    input,
                    cells.get_mut(len..).unwrap_or_default(),
                    ends.get_mut(fields..).unwrap_or_default(),
                );
                input = input.get(read..).unwrap_or_default();
                len += written;
                fields += ended;
                match result {
                    // An empty input next round ends the last record.
                    csv_core::ReadRecordResult::InputEmpty => {}
                    csv_core::ReadRecordResult::OutputFull => cells.resize(cells.len() * 2, 0),
                    csv_core::ReadRecordResult::OutputEndsFull => {
                        ends.resize(ends.len() * 2, 0);
                    }
                    csv_core::ReadRecordResult::Record => break,
                    csv_core::ReadRecordResult::End => return Ok(()),
                }
            }
            line += 1;
            let ends = ends.get(..fields).unwrap_or_default();
            if ends == [0] && self.schema.fields.len() != 1 {
                continue; // an empty line
            }
            if fields != self.schema.fields.len() {
                return Err(format!(
                    "line {line}: expected {} columns ({}), got {fields}",
                    self.schema.fields.len(),
                    self.schema
                        .fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
            f(line, cells.get(..len).unwrap_or_default(), ends)?;
        }
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
        // The writer's buffer sized to the record (its default is 8 KiB, zeroed for every row:
        // most of a CSV sink's instructions in the bench-peers profile of job c).
        let capacity = cells.iter().map(|c| 2 * c.len() + 3).sum::<usize>() + 8;
        let mut writer = ::csv::WriterBuilder::new()
            .buffer_capacity(capacity)
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
