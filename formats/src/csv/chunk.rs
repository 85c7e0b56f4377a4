//! `csv` lines from columns: every row of a [`Chunk`] written as [`CsvCodec`]'s row encoder
//! writes it (the same cell texts, the `csv` crate's quoting — a cell is quoted when it holds
//! the delimiter, the quote, `\r` or `\n`, quotes doubled, and a record of one empty cell is
//! `""`), each followed by `\n`, without making a row, a `String` per cell or a writer per
//! row.

use arrow_array::{
    Array, BinaryArray, BooleanArray, Float64Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use base64::Engine as _;
use weir_connector_api::error::Result;
use weir_connector_api::row::RowKind;

use super::CsvCodec;
use crate::chunk::Chunk;
use crate::convert::{render_timestamp, unencodable, TimestampFormat};

/// A column of a chunk, by its type.
enum Column<'a> {
    Boolean(&'a BooleanArray),
    Int64(&'a Int64Array),
    Float64(&'a Float64Array),
    Utf8(&'a StringArray),
    Binary(&'a BinaryArray),
    Timestamp(&'a TimestampMillisecondArray),
}

impl<'a> Column<'a> {
    fn of(array: &'a dyn Array) -> Option<Self> {
        let any = array.as_any();
        if let Some(a) = any.downcast_ref::<Int64Array>() {
            return Some(Column::Int64(a));
        }
        if let Some(a) = any.downcast_ref::<StringArray>() {
            return Some(Column::Utf8(a));
        }
        if let Some(a) = any.downcast_ref::<Float64Array>() {
            return Some(Column::Float64(a));
        }
        if let Some(a) = any.downcast_ref::<TimestampMillisecondArray>() {
            return Some(Column::Timestamp(a));
        }
        if let Some(a) = any.downcast_ref::<BooleanArray>() {
            return Some(Column::Boolean(a));
        }
        any.downcast_ref::<BinaryArray>().map(Column::Binary)
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            Column::Boolean(a) => a.is_null(row),
            Column::Int64(a) => a.is_null(row),
            Column::Float64(a) => a.is_null(row),
            Column::Utf8(a) => a.is_null(row),
            Column::Binary(a) => a.is_null(row),
            Column::Timestamp(a) => a.is_null(row),
        }
    }

    /// Whether a cell of this column can hold a byte that `special` marks (and so may need
    /// quoting): text always, the other types when a byte of their alphabet is special
    /// (a delimiter or quote character that is a digit, a letter, `-`, `.`, `:`…).
    fn may_need_quotes(&self, timestamps: TimestampFormat, special: &[bool; 256]) -> bool {
        let alphabet: &[u8] = match self {
            Column::Utf8(_) | Column::Binary(_) => return true,
            Column::Boolean(_) => b"truefals",
            Column::Int64(_) => b"-0123456789",
            Column::Timestamp(_) if matches!(timestamps, TimestampFormat::EpochMillis) => {
                b"-0123456789"
            }
            // `render_timestamp` beyond years 0–9999 writes a sign and more digits.
            Column::Timestamp(_) => b"+-0123456789T:.Z",
            Column::Float64(_) => b"-.0123456789NaninfINF",
        };
        alphabet.iter().any(|b| special[usize::from(*b)])
    }

    /// Appends the text of row `row` (not null) to `out`, as `to_text` renders its value.
    fn write(&self, row: usize, timestamps: TimestampFormat, days: &mut Days, out: &mut Vec<u8>) {
        match self {
            Column::Boolean(a) => {
                out.extend_from_slice(if a.value(row) { b"true" } else { b"false" });
            }
            Column::Int64(a) => {
                out.extend_from_slice(itoa::Buffer::new().format(a.value(row)).as_bytes());
            }
            Column::Float64(a) => crate::float::push_f64(a.value(row), out),
            Column::Utf8(a) => out.extend_from_slice(a.value(row).as_bytes()),
            Column::Binary(a) => {
                let mut text = String::new();
                base64::engine::general_purpose::STANDARD.encode_string(a.value(row), &mut text);
                out.extend_from_slice(text.as_bytes());
            }
            Column::Timestamp(a) => match timestamps {
                TimestampFormat::Iso8601 => days.render(a.value(row), out),
                TimestampFormat::EpochMillis => {
                    out.extend_from_slice(itoa::Buffer::new().format(a.value(row)).as_bytes());
                }
            },
        }
    }
}

/// RFC 3339 timestamps in UTC with milliseconds (`render_timestamp`'s text), the date part
/// rendered once per day and the time of day from digits.
#[derive(Default)]
pub(crate) struct Days {
    /// The last day (days since the epoch) and its `YYYY-MM-DDT`, when it has that shape.
    last: Option<(i64, Option<String>)>,
}

impl Days {
    /// Appends `millis` as `render_timestamp` renders it.
    pub(crate) fn render(&mut self, millis: i64, out: &mut Vec<u8>) {
        let day = millis.div_euclid(86_400_000);
        if self.last.as_ref().map(|(d, _)| *d) != Some(day) {
            // `YYYY-MM-DDT…`: years 0 to 9999; others (a sign and more digits) go the slow way.
            // The first day (i64::MIN's) starts before i64::MIN: no prefix, the slow way.
            let rendered = day
                .checked_mul(86_400_000)
                .map(render_timestamp)
                .unwrap_or_default();
            let prefix = (rendered.len() == 24 && rendered.as_bytes().get(10) == Some(&b'T'))
                .then(|| rendered[..11].to_owned());
            self.last = Some((day, prefix));
        }
        let Some((_, Some(prefix))) = &self.last else {
            out.extend_from_slice(render_timestamp(millis).as_bytes());
            return;
        };
        let of_day = millis.rem_euclid(86_400_000);
        let (hours, minutes) = (of_day / 3_600_000, of_day / 60_000 % 60);
        let (seconds, ms) = (of_day / 1_000 % 60, of_day % 1_000);
        let two = |n: i64| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        let [h1, h2] = two(hours);
        let [m1, m2] = two(minutes);
        let [s1, s2] = two(seconds);
        let [ms1, ms23] = [ms / 100, ms % 100];
        let [ms2, ms3] = two(ms23);
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(&[
            h1,
            h2,
            b':',
            m1,
            m2,
            b':',
            s1,
            s2,
            b'.',
            b'0' + ms1 as u8,
            ms2,
            ms3,
            b'Z',
        ]);
    }
}

impl CsvCodec {
    /// [`encode_chunk_lines`](Self::encode_chunk_lines) through the row encoder, for the
    /// column types that have no cell renderer here (the types of API line 1.1: their text
    /// is `crate::typed`'s, one place for both paths).
    fn encode_rows_of(&self, chunk: &Chunk, one_per_line: bool, out: &mut Vec<u8>) -> Result<()> {
        use weir_connector_api::format::RowEncoder as _;
        let start = out.len();
        let mut line = Vec::new();
        let mut result = Ok(());
        chunk
            .for_each_row(|row| {
                if result.is_err() {
                    return;
                }
                line.clear();
                result = self.encode(&row, &mut line).and_then(|()| {
                    if one_per_line && line.iter().any(|b| matches!(b, b'\n' | b'\r')) {
                        return Err(unencodable(
                            "csv",
                            "a cell holds a line break, which one record per line cannot hold",
                        ));
                    }
                    out.extend_from_slice(&line);
                    out.push(b'\n');
                    Ok(())
                });
            })
            .map_err(|e| unencodable("csv", e.to_string()))?;
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Appends every row of `chunk` as a line: the bytes [`RowEncoder::encode`] writes for the
    /// row, then `\n`. As the row path refuses them, a chunk with a row other than an insert
    /// and, with `one_per_line`, a cell with a line break (which quoting keeps in the line) are
    /// errors; nothing of the chunk is appended then.
    ///
    /// [`RowEncoder::encode`]: weir_connector_api::format::RowEncoder::encode
    pub fn encode_chunk_lines(
        &self,
        chunk: &Chunk,
        one_per_line: bool,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(kind) = chunk
            .kinds()
            .and_then(|k| k.iter().find(|k| **k != RowKind::Insert))
        {
            return Err(unencodable(
                "csv",
                format!("the csv format is append-only and cannot write a {kind:?} row"),
            ));
        }
        let batch = chunk.batch();
        if batch.num_columns() != self.schema.fields.len() {
            return Err(unencodable(
                "csv",
                format!(
                    "the row has {} values but the schema has {} fields",
                    batch.num_columns(),
                    self.schema.fields.len()
                ),
            ));
        }
        if batch
            .columns()
            .iter()
            .any(|a| Column::of(a.as_ref()).is_none())
        {
            return self.encode_rows_of(chunk, one_per_line, out);
        }
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (array, field) in batch.columns().iter().zip(&self.schema.fields) {
            let Some(column) = Column::of(array.as_ref()) else {
                return Err(unencodable(
                    "csv",
                    format!(
                        "field `{}`: this value type is not supported by this format",
                        field.name
                    ),
                ));
            };
            columns.push(column);
        }
        let start = out.len();
        let single = columns.len() == 1;
        let mut special = [false; 256];
        for b in [self.delimiter, self.quote, b'\n', b'\r'] {
            special[usize::from(b)] = true;
        }
        // Which columns' cells are scanned for bytes to quote; the others are written as
        // they are (a number never holds the usual delimiters).
        let scanned: Vec<bool> = columns
            .iter()
            .map(|c| single || c.may_need_quotes(self.timestamps, &special))
            .collect();
        // A null's cell, quoted as a cell of its text would be.
        let mut null_cell = Vec::new();
        let null_breaks = self.push_cell(
            self.null_literal.as_deref().unwrap_or("").as_bytes(),
            single,
            &special,
            &mut null_cell,
        );
        let mut cell = Vec::new();
        let mut days = Days::default();
        for row in 0..batch.num_rows() {
            let mut line_break = false;
            for (i, (column, scan)) in columns.iter().zip(&scanned).enumerate() {
                if i > 0 {
                    out.push(self.delimiter);
                }
                if column.is_null(row) {
                    out.extend_from_slice(&null_cell);
                    line_break |= null_breaks;
                } else if let (Column::Utf8(a), true) = (column, scan) {
                    line_break |= self.push_cell(a.value(row).as_bytes(), single, &special, out);
                } else if *scan {
                    cell.clear();
                    column.write(row, self.timestamps, &mut days, &mut cell);
                    line_break |= self.push_cell(&cell, single, &special, out);
                } else {
                    column.write(row, self.timestamps, &mut days, out);
                }
            }
            if one_per_line && line_break {
                out.truncate(start);
                return Err(unencodable(
                    "csv",
                    "the encoded row contains a line break, but files of this format hold one \
                     row per line",
                ));
            }
            out.push(b'\n');
        }
        Ok(())
    }

    /// Appends one cell, quoted when the `csv` crate would quote it (it holds a byte `special`
    /// marks, or it is the empty only cell of its record); whether it holds a `\n`.
    fn push_cell(
        &self,
        cell: &[u8],
        only_cell: bool,
        special: &[bool; 256],
        out: &mut Vec<u8>,
    ) -> bool {
        if !(cell.iter().any(|b| special[usize::from(*b)]) || (only_cell && cell.is_empty())) {
            out.extend_from_slice(cell);
            return false;
        }
        out.push(self.quote);
        for b in cell {
            if *b == self.quote {
                out.push(self.quote);
            }
            out.push(*b);
        }
        out.push(self.quote);
        cell.contains(&b'\n')
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use weir_connector_api::config::ValidatedConfig;
    use weir_connector_api::format::{FormatFactory, RowEncoder};
    use weir_connector_api::row::{DataType, Field, Row, Schema, Value};

    use super::*;
    use crate::chunk::arrow_schema;
    use crate::CsvFormat;

    fn config(options: &[(&str, &str)]) -> ValidatedConfig {
        let input = options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        CsvFormat.options().validate(&input).unwrap()
    }

    /// Every row encoded by the row encoder, each with its `\n`.
    fn row_lines(codec: &CsvCodec, rows: &[Row]) -> Vec<u8> {
        let mut out = Vec::new();
        for row in rows {
            codec.encode(row, &mut out).unwrap();
            out.push(b'\n');
        }
        out
    }

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("b", DataType::Boolean, true),
            Field::new("i", DataType::Int64, true),
            Field::new("f", DataType::Float64, true),
            Field::new("s", DataType::String, true),
            Field::new("t", DataType::TimestampMillis, true),
            Field::new("x", DataType::Bytes, true),
        ])
    }

    fn rows() -> Vec<Row> {
        let texts = [
            "plain",
            "",
            "a,b",
            "say \"hi\"",
            "semi;colon",
            "tab\there",
            "cr\rhere",
            "é ü",
        ];
        // 2024, before the epoch, year 1, year 9999's end, beyond year 9999, before year 0.
        let times = [
            1_704_067_200_123_i64,
            -1_234_567_891,
            -62_135_596_800_000,
            253_402_300_799_999 - 80 * 86_400_000,
            253_402_300_800_000,
            -62_167_219_200_001,
            i64::MAX / 2,
        ];
        let floats = [
            0.0,
            -0.0,
            1.5,
            1e21,
            1e-7,
            f64::NAN,
            f64::INFINITY,
            -2.25,
            123_456_789.125,
        ];
        (0..72)
            .map(|i: usize| {
                let null = |k: usize| (i + k) % 7 == 0;
                let v = |k: usize, value: Value| if null(k) { Value::Null } else { value };
                Row::insert(vec![
                    v(0, Value::Boolean(i % 2 == 0)),
                    v(1, Value::Int64(i as i64 * 7919 - 250_000)),
                    v(2, Value::Float64(floats[i % floats.len()])),
                    v(3, Value::String(texts[i % texts.len()].to_owned())),
                    v(
                        4,
                        Value::TimestampMillis(times[i % times.len()] + i as i64 * 86_400_007),
                    ),
                    v(5, Value::Bytes(vec![i as u8, 0, 255, b',', b'"'])),
                ])
            })
            .collect()
    }

    #[test]
    fn chunk_lines_are_the_row_encoders_lines() {
        let schema = schema();
        let rows = rows();
        let chunk = Chunk::from_rows(&arrow_schema(&schema), &rows).unwrap();
        for options in [
            vec![],
            vec![("field-delimiter", ";")],
            vec![("null-literal", "NULL"), ("quote-character", "'")],
            vec![
                ("timestamp-format", "epoch-millis"),
                ("field-delimiter", "\\t"),
            ],
            // Delimiters and quotes that numbers, times and booleans hold: their cells are
            // scanned and quoted too.
            vec![("field-delimiter", "5")],
            vec![("field-delimiter", "."), ("quote-character", "-")],
            vec![("field-delimiter", "T"), ("null-literal", "aTb")],
            vec![
                ("quote-character", "0"),
                ("timestamp-format", "epoch-millis"),
            ],
            vec![("field-delimiter", "e")],
            vec![("field-delimiter", "A")],
        ] {
            let codec = CsvFormat::codec(&schema, &config(&options));
            let mut lines = Vec::new();
            codec.encode_chunk_lines(&chunk, true, &mut lines).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&lines),
                String::from_utf8_lossy(&row_lines(&codec, &rows)),
                "{options:?}"
            );
        }
    }

    #[test]
    fn a_record_of_one_empty_cell_is_quoted_as_the_csv_crate_does() {
        let schema = Schema::new(vec![Field::new("s", DataType::String, true)]);
        let rows = vec![
            Row::insert(vec![Value::String(String::new())]),
            Row::insert(vec![Value::Null]),
            Row::insert(vec![Value::String("x".to_owned())]),
        ];
        let chunk = Chunk::from_rows(&arrow_schema(&schema), &rows).unwrap();
        let codec = CsvFormat::codec(&schema, &config(&[]));
        let mut lines = Vec::new();
        codec.encode_chunk_lines(&chunk, true, &mut lines).unwrap();
        assert_eq!(lines, row_lines(&codec, &rows));
        assert_eq!(lines, b"\"\"\n\"\"\nx\n");
    }

    #[test]
    fn line_breaks_and_changelogs_are_refused_as_on_the_row_path() {
        let schema = Schema::new(vec![Field::new("s", DataType::String, false)]);
        let codec = CsvFormat::codec(&schema, &config(&[]));
        let broken = Row::insert(vec![Value::String("two\nlines".to_owned())]);
        let chunk = Chunk::from_rows(&arrow_schema(&schema), &[broken]).unwrap();
        let mut out = b"kept".to_vec();
        let err = codec
            .encode_chunk_lines(&chunk, true, &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("line break"), "{err}");
        assert_eq!(out, b"kept", "nothing of the chunk is appended");
        // Without one row per line, the quoted line break is written as the csv crate does.
        codec.encode_chunk_lines(&chunk, false, &mut out).unwrap();
        assert_eq!(out, b"kept\"two\nlines\"\n");

        let mut delete = Row::insert(vec![Value::String("x".to_owned())]);
        delete.kind = RowKind::Delete;
        let chunk = Chunk::from_rows(&arrow_schema(&schema), &[delete]).unwrap();
        let err = codec
            .encode_chunk_lines(&chunk, true, &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}
