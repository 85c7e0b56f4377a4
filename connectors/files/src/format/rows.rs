//! Pipeline rows in files: the dynamic [`Row`]s of a [`Schema`] (what pipeline files carry)
//! mapped to Arrow for Parquet and ORC ([`RowBatches`]), written as text lines ([`TextRows`]),
//! or as one message of a registered row format per line ([`MessageRows`], e.g. `json`, `csv`,
//! `debezium-json` of `weir-formats`).
//!
//! | pipeline type | Arrow type | read from (besides the same type) |
//! |---|---|---|
//! | `boolean` | `Boolean` | — |
//! | `int64` | `Int64` | other integers |
//! | `float64` | `Float64` | `Float32`, integers |
//! | `string` | `Utf8` | `LargeUtf8`, `Utf8View` |
//! | `bytes` | `Binary` | `LargeBinary`, `BinaryView` |
//! | `timestamp` | `Timestamp(Millisecond, "UTC")` | any timestamp unit, with or without time zone (read as UTC), `Date32`, `Date64`, `Int64` (epoch milliseconds) |
//! | the types of API line 1.1 (`int8`…`uint64`, `float32`, `decimal(P, S)`, `date`, `timestamp(UNIT, ZONE)`, `list`, `struct`, `map`) | as `weir_formats::chunk::arrow_type` maps them | what Arrow's `cast` turns into that type |
//!
//! Columns are matched by name; extra columns in a file are ignored, a missing column reads as
//! null (an error for a field that is not nullable). Files hold inserts only: writing an update
//! or delete row to Parquet or ORC is an error.
//!
//! ```
//! use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
//! use weir_connector_files::format::RowBatches;
//! use weir_connector_files::format::FromBatch;
//!
//! let schema = Schema::new(vec![
//!     Field::new("id", DataType::Int64, false),
//!     Field::new("name", DataType::String, true),
//! ]);
//! let rows = RowBatches::new(&schema);
//! let mut convert = (rows.to_batches())()?;
//! convert.push(Row::insert(vec![Value::Int64(1), Value::String("Ada".into())]))?;
//! convert.push(Row::insert(vec![Value::Int64(2), Value::Null]))?;
//! let batch = convert.flush()?.expect("two rows");
//! assert_eq!(batch.num_rows(), 2);
//!
//! let mut back = Vec::new();
//! rows.decode_batch(batch, &mut back)?;
//! assert_eq!(back[1].0, Row::insert(vec![Value::Int64(2), Value::Null]));
//! # Ok::<(), weir_connector_api::error::ConnectorError>(())
//! ```

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, Field as ArrowField, SchemaRef, TimeUnit};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::format::{RowDecoder as MessageDecoder, RowEncoder as MessageEncoder};
use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, Value};

use super::arrow::DEFAULT_BATCH_SIZE;
use super::row::{CsvFramer, CsvStep};
use super::{
    Decoded, FromBatch, RecordDecoder, RecordEncoder, RowFormat, ToBatches, ToBatchesFactory,
};

/// The time zone of written timestamps: pipeline timestamps are instants (epoch milliseconds).
const UTC: &str = "UTC";

/// The Arrow type a pipeline field is written as.
pub fn arrow_type(data_type: DataType) -> Option<ArrowType> {
    Some(match data_type {
        DataType::Boolean => ArrowType::Boolean,
        DataType::Int64 => ArrowType::Int64,
        DataType::Float64 => ArrowType::Float64,
        DataType::String => ArrowType::Utf8,
        DataType::Bytes => ArrowType::Binary,
        DataType::TimestampMillis => {
            ArrowType::Timestamp(TimeUnit::Millisecond, Some(Arc::from(UTC)))
        }
        // The types of API line 1.1: as the columnar mapping has them.
        #[cfg(weir_api_1_1)]
        other => weir_formats::chunk::arrow_type(&other),
        #[cfg(not(weir_api_1_1))]
        _ => return None,
    })
}

/// The Arrow schema rows of `schema` are written with. A field type without an Arrow mapping is
/// an error naming the field.
pub fn arrow_schema(schema: &Schema) -> Result<SchemaRef> {
    let mut fields = Vec::with_capacity(schema.fields.len());
    for field in &schema.fields {
        let Some(data_type) = arrow_type(field.data_type.clone()) else {
            return Err(ConnectorError::Contract(format!(
                "field `{}` has the type {}, which has no Arrow mapping",
                field.name, field.data_type
            )));
        };
        fields.push(ArrowField::new(&field.name, data_type, field.nullable));
    }
    Ok(Arc::new(arrow_schema::Schema::new(fields)))
}

pub(crate) fn malformed(what: impl Into<String>, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::malformed(what.into(), reason.into())
}

/// Pipeline rows ↔ Arrow batches for the bulk formats (Parquet, ORC).
#[derive(Debug, Clone)]
pub struct RowBatches {
    fields: Arc<Vec<Field>>,
    arrow: SchemaRef,
    batch_size: usize,
}

impl RowBatches {
    /// The mapping of rows of `schema` (see the [module docs](self) for the types). Every type
    /// of the 1.0 API line has a mapping; [`RowBatches::try_new`] reports one that has none.
    pub fn new(schema: &Schema) -> Self {
        let arrow = schema
            .fields
            .iter()
            .filter_map(|f| {
                arrow_type(f.data_type.clone()).map(|t| ArrowField::new(&f.name, t, f.nullable))
            })
            .collect::<Vec<_>>();
        RowBatches {
            fields: Arc::new(schema.fields.clone()),
            arrow: Arc::new(arrow_schema::Schema::new(arrow)),
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// The mapping of rows of `schema`, or an error naming a field without an Arrow mapping.
    pub fn try_new(schema: &Schema) -> Result<Self> {
        arrow_schema(schema)?;
        Ok(Self::new(schema))
    }

    /// Sets the rows per batch written.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The Arrow schema of written batches.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::clone(&self.arrow)
    }

    /// A factory of converters for bulk writers.
    pub fn to_batches(&self) -> ToBatchesFactory<Row> {
        let this = self.clone();
        Arc::new(move || {
            Ok(Box::new(RowToBatches {
                columns: this.fields.iter().map(|f| Column::new(f, 0)).collect(),
                fields: Arc::clone(&this.fields),
                arrow: Arc::clone(&this.arrow),
                rows: 0,
                batch_size: this.batch_size,
                approx_bytes: 0,
            }) as Box<dyn ToBatches<Row>>)
        })
    }
}

/// The builder of one column.
enum Column {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    String(StringBuilder),
    Bytes(BinaryBuilder),
    Timestamp(TimestampMillisecondBuilder),
    /// A type without a mapping: no column (reported by [`arrow_schema`]).
    #[cfg_attr(weir_api_1_1, allow(dead_code))]
    Unmapped,
    /// A type of API line 1.1: the values, made a column by the columnar mapping at
    /// [`finish`](Column::finish).
    #[cfg(weir_api_1_1)]
    Values(Vec<Value>, ArrowField),
}

impl Column {
    fn new(field: &Field, capacity: usize) -> Self {
        match field.data_type {
            DataType::Boolean => Column::Boolean(BooleanBuilder::with_capacity(capacity)),
            DataType::Int64 => Column::Int64(Int64Builder::with_capacity(capacity)),
            DataType::Float64 => Column::Float64(Float64Builder::with_capacity(capacity)),
            DataType::String => Column::String(StringBuilder::new()),
            DataType::Bytes => Column::Bytes(BinaryBuilder::new()),
            DataType::TimestampMillis => Column::Timestamp(
                TimestampMillisecondBuilder::with_capacity(capacity).with_timezone(UTC),
            ),
            #[cfg(weir_api_1_1)]
            ref other => Column::Values(
                Vec::with_capacity(capacity),
                ArrowField::new(&field.name, weir_formats::chunk::arrow_type(other), true),
            ),
            #[cfg(not(weir_api_1_1))]
            _ => Column::Unmapped,
        }
    }

    /// Whether `value` fits this column (nulls are checked by the caller).
    fn accepts(&self, value: &Value) -> bool {
        #[cfg(weir_api_1_1)]
        if let Column::Values(_, field) = self {
            return weir_formats::chunk::array_of(field, &[value]).is_ok();
        }
        matches!(
            (self, value),
            (_, Value::Null)
                | (Column::Boolean(_), Value::Boolean(_))
                | (Column::Int64(_), Value::Int64(_))
                | (Column::Float64(_), Value::Float64(_))
                | (Column::String(_), Value::String(_))
                | (Column::Bytes(_), Value::Bytes(_))
                | (
                    Column::Timestamp(_),
                    Value::TimestampMillis(_) | Value::Int64(_)
                )
                | (Column::Unmapped, _)
        )
    }

    /// Appends a value [`Column::accepts`] (anything else appends a null); returns its size.
    fn append(&mut self, value: &Value) -> u64 {
        match (self, value) {
            (Column::Boolean(b), Value::Boolean(v)) => {
                b.append_value(*v);
                1
            }
            (Column::Int64(b), Value::Int64(v)) => {
                b.append_value(*v);
                8
            }
            (Column::Float64(b), Value::Float64(v)) => {
                b.append_value(*v);
                8
            }
            (Column::String(b), Value::String(v)) => {
                b.append_value(v);
                v.len() as u64 + 4
            }
            (Column::Bytes(b), Value::Bytes(v)) => {
                b.append_value(v);
                v.len() as u64 + 4
            }
            (Column::Timestamp(b), Value::TimestampMillis(v) | Value::Int64(v)) => {
                b.append_value(*v);
                8
            }
            (Column::Boolean(b), _) => {
                b.append_null();
                0
            }
            (Column::Int64(b), _) => {
                b.append_null();
                0
            }
            (Column::Float64(b), _) => {
                b.append_null();
                0
            }
            (Column::String(b), _) => {
                b.append_null();
                0
            }
            (Column::Bytes(b), _) => {
                b.append_null();
                0
            }
            (Column::Timestamp(b), _) => {
                b.append_null();
                0
            }
            (Column::Unmapped, _) => 0,
            #[cfg(weir_api_1_1)]
            (Column::Values(values, _), value) => {
                values.push(value.clone());
                16
            }
        }
    }

    fn finish(&mut self) -> Option<ArrayRef> {
        Some(match self {
            Column::Boolean(b) => Arc::new(b.finish()),
            Column::Int64(b) => Arc::new(b.finish()),
            Column::Float64(b) => Arc::new(b.finish()),
            Column::String(b) => Arc::new(b.finish()),
            Column::Bytes(b) => Arc::new(b.finish()),
            Column::Timestamp(b) => Arc::new(b.finish().with_timezone(UTC)),
            Column::Unmapped => return None,
            #[cfg(weir_api_1_1)]
            Column::Values(values, field) => {
                let refs: Vec<&Value> = values.iter().collect();
                let array = weir_formats::chunk::array_of(field, &refs).ok();
                values.clear();
                return array;
            }
        })
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "a boolean",
        Value::Int64(_) => "an int64",
        Value::Float64(_) => "a float64",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::TimestampMillis(_) => "a timestamp",
        _ => "a value of another type",
    }
}

struct RowToBatches {
    columns: Vec<Column>,
    fields: Arc<Vec<Field>>,
    arrow: SchemaRef,
    rows: usize,
    batch_size: usize,
    approx_bytes: u64,
}

impl RowToBatches {
    /// Checks a row before anything is appended, so that a refused row leaves the columns
    /// aligned.
    fn check(&self, row: &Row) -> Result<()> {
        if row.kind != RowKind::Insert {
            return Err(malformed(
                "a row for a Parquet or ORC file",
                format!(
                    "files hold inserts only, but the row is a {:?}: write a changelog with a \
                     row format such as `debezium-json` instead",
                    row.kind
                ),
            ));
        }
        if row.values.len() != self.fields.len() {
            return Err(malformed(
                "a row for a Parquet or ORC file",
                format!(
                    "the row has {} values but the schema has {} fields",
                    row.values.len(),
                    self.fields.len()
                ),
            ));
        }
        for ((field, column), value) in self.fields.iter().zip(&self.columns).zip(&row.values) {
            if matches!(value, Value::Null) && !field.nullable {
                return Err(malformed(
                    format!("field `{}` of a row", field.name),
                    "the value is null but the field is not nullable",
                ));
            }
            if !column.accepts(value) {
                return Err(malformed(
                    format!("field `{}` of a row", field.name),
                    format!(
                        "the field is {} but the value is {}",
                        field.data_type,
                        describe(value)
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl ToBatches<Row> for RowToBatches {
    fn push(&mut self, element: Row) -> Result<Option<RecordBatch>> {
        self.check(&element)?;
        for (column, value) in self.columns.iter_mut().zip(&element.values) {
            self.approx_bytes += column.append(value);
        }
        self.rows += 1;
        if self.rows >= self.batch_size {
            return self.flush();
        }
        Ok(None)
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        self.rows = 0;
        self.approx_bytes = 0;
        let columns: Vec<ArrayRef> = self.columns.iter_mut().filter_map(Column::finish).collect();
        RecordBatch::try_new(Arc::clone(&self.arrow), columns)
            .map(Some)
            .map_err(|e| malformed("building an Arrow batch of rows", e.to_string()))
    }

    fn buffered_bytes(&self) -> u64 {
        self.approx_bytes
    }
}

/// A timestamp column in milliseconds, in its own time zone: only the unit changes, the values
/// stay UTC instants.
pub(crate) fn to_millis_in_zone(column: &ArrayRef, name: &str) -> Result<ArrayRef> {
    let zone = match column.data_type() {
        ArrowType::Timestamp(_, zone) => zone.clone(),
        _ => None,
    };
    cast(
        column,
        &ArrowType::Timestamp(TimeUnit::Millisecond, zone),
        name,
    )
}

/// Casts `column` to `to`, failing on lossy conversions.
pub(crate) fn cast(column: &ArrayRef, to: &ArrowType, name: &str) -> Result<ArrayRef> {
    let options = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    if !arrow_cast::can_cast_types(column.data_type(), to) {
        return Err(malformed(
            format!("column `{name}`"),
            format!("a {} column cannot be read as {to}", column.data_type()),
        ));
    }
    arrow_cast::cast_with_options(column, to, &options)
        .map_err(|e| malformed(format!("column `{name}`"), e.to_string()))
}

/// Reads one column of a batch into the rows' values.
fn read_column(field: &Field, column: &ArrayRef, rows: &mut [Vec<Value>]) -> Result<()> {
    let name = field.name.as_str();
    let wrong = || {
        malformed(
            format!("column `{name}`"),
            format!("cannot be read as {}", field.data_type),
        )
    };
    let nulls_allowed = |i: usize| {
        if field.nullable {
            Ok(Value::Null)
        } else {
            Err(malformed(
                format!("column `{name}`, row {i}"),
                "the value is null but the field is not nullable",
            ))
        }
    };
    macro_rules! fill {
        ($array:expr, $value:expr) => {{
            let array = $array.ok_or_else(wrong)?;
            for (i, row) in rows.iter_mut().enumerate() {
                let value = if array.is_null(i) {
                    nulls_allowed(i)?
                } else {
                    $value(array.value(i))
                };
                row.push(value);
            }
        }};
    }
    match field.data_type {
        DataType::Boolean => {
            let c = cast(column, &ArrowType::Boolean, name)?;
            fill!(c.as_boolean_opt(), Value::Boolean);
        }
        DataType::Int64 => {
            let c = cast(column, &ArrowType::Int64, name)?;
            fill!(c.as_primitive_opt::<Int64Type>(), Value::Int64);
        }
        DataType::Float64 => {
            let c = cast(column, &ArrowType::Float64, name)?;
            fill!(c.as_primitive_opt::<Float64Type>(), Value::Float64);
        }
        DataType::String => {
            let c = cast(column, &ArrowType::Utf8, name)?;
            fill!(c.as_string_opt::<i32>(), |s: &str| Value::String(
                s.to_owned()
            ));
        }
        DataType::Bytes => {
            let c = cast(column, &ArrowType::Binary, name)?;
            fill!(c.as_binary_opt::<i32>(), |b: &[u8]| Value::Bytes(
                b.to_vec()
            ));
        }
        DataType::TimestampMillis => {
            let c = to_millis_in_zone(column, name)?;
            fill!(
                c.as_primitive_opt::<TimestampMillisecondType>(),
                Value::TimestampMillis
            );
        }
        // The types of API line 1.1: cast to the columnar mapping's type, then its rows.
        #[cfg(weir_api_1_1)]
        ref other => {
            let to = weir_formats::chunk::arrow_type(other);
            let c = cast(column, &to, name)?;
            let schema = Arc::new(arrow_schema::Schema::new(vec![ArrowField::new(
                name, to, true,
            )]));
            let values = RecordBatch::try_new(schema, vec![c])
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    weir_formats::chunk::Chunk::inserts(b)
                        .to_rows()
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| malformed(format!("column `{name}`"), e))?;
            for (i, (row, value)) in rows.iter_mut().zip(values).enumerate() {
                let value = value.values.into_iter().next().unwrap_or(Value::Null);
                row.push(if value == Value::Null {
                    nulls_allowed(i)?
                } else {
                    value
                });
            }
        }
        #[cfg(not(weir_api_1_1))]
        _ => return Err(wrong()),
    }
    Ok(())
}

impl FromBatch<Row> for RowBatches {
    fn decode_batch(&self, batch: RecordBatch, out: &mut Vec<(Row, usize)>) -> Result<()> {
        let n = batch.num_rows();
        let mut rows: Vec<Vec<Value>> = (0..n)
            .map(|_| Vec::with_capacity(self.fields.len()))
            .collect();
        for field in self.fields.iter() {
            match batch.column_by_name(&field.name) {
                Some(column) => read_column(field, column, &mut rows)?,
                None if field.nullable => rows.iter_mut().for_each(|r| r.push(Value::Null)),
                None => {
                    return Err(malformed(
                        format!("field `{}`", field.name),
                        format!(
                            "the file has no column `{}` and the field is not nullable; its \
                             columns are {}",
                            field.name,
                            batch
                                .schema()
                                .fields()
                                .iter()
                                .map(|f| format!("`{}`", f.name()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ))
                }
            }
        }
        out.extend(rows.into_iter().map(|values| (Row::insert(values), 1)));
        Ok(())
    }
}

/// Splits the next line off `buf` (without `\n` or `\r\n`); `None` if no full line is there.
fn next_line(buf: &[u8], eof: bool) -> Option<(&[u8], usize)> {
    match memchr::memchr(b'\n', buf) {
        Some(i) => {
            let line = buf.get(..i).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Some((line, i + 1))
        }
        None if eof && !buf.is_empty() => {
            let line = buf.strip_suffix(b"\r").unwrap_or(buf);
            Some((line, buf.len()))
        }
        None => None,
    }
}

/// Text files of rows with one string (or bytes) field: one row per line.
///
/// Lines end with `\n` (`\r\n` is read too). A value that contains a line break, or a null,
/// cannot be written as a line and is an error.
#[derive(Debug, Clone, Copy)]
pub struct TextRows {
    text: bool,
}

impl TextRows {
    /// The format for `schema`, which must have exactly one string or bytes field.
    pub fn new(schema: &Schema) -> std::result::Result<Self, String> {
        match schema.fields.as_slice() {
            [field] if matches!(field.data_type, DataType::String | DataType::Bytes) => {
                Ok(TextRows {
                    text: field.data_type == DataType::String,
                })
            }
            fields => Err(format!(
                "the text format needs a schema of exactly one string or bytes field; this one \
                 has {}",
                if fields.is_empty() {
                    "no fields".to_owned()
                } else {
                    fields
                        .iter()
                        .map(|f| format!("`{}` {}", f.name, f.data_type))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
        }
    }
}

impl RecordEncoder<Row> for TextRows {
    fn encode(&mut self, record: &Row, out: &mut Vec<u8>) -> Result<()> {
        let bytes: &[u8] = match record.values.as_slice() {
            [Value::String(s)] => s.as_bytes(),
            [Value::Bytes(b)] => b,
            [other] => {
                return Err(malformed(
                    "a text line",
                    format!("expected a string or bytes value, got {}", describe(other)),
                ))
            }
            values => {
                return Err(malformed(
                    "a text line",
                    format!("expected one value, got {}", values.len()),
                ))
            }
        };
        if bytes.contains(&b'\n') || bytes.contains(&b'\r') {
            return Err(malformed(
                "a text line",
                "the value contains a line break, which a text file cannot hold in one line: use \
                 the csv, json or parquet format",
            ));
        }
        out.extend_from_slice(bytes);
        out.push(b'\n');
        Ok(())
    }
}

impl RecordDecoder<Row> for TextRows {
    fn decode(&mut self, buf: &[u8], eof: bool) -> Result<Decoded<Row>> {
        let Some((line, used)) = next_line(buf, eof) else {
            return Ok(Decoded::NeedMore);
        };
        let value = if self.text {
            match std::str::from_utf8(line) {
                Ok(s) => Value::String(s.to_owned()),
                Err(e) => {
                    return Err(malformed(
                        "a text line",
                        format!("not valid UTF-8 ({e}): use a bytes field for binary data"),
                    ))
                }
            }
        } else {
            Value::Bytes(line.to_vec())
        };
        Ok(Decoded::Record(Row::insert(vec![value]), used))
    }
}

impl RowFormat<Row> for TextRows {
    fn create_encoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordEncoder<Row>>> {
        Ok(Box::new(*self))
    }
    fn create_decoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordDecoder<Row>>> {
        Ok(Box::new(*self))
    }
    fn name(&self) -> &'static str {
        "text"
    }
}

/// How the messages of a [`MessageRows`] file are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One message per line; a message must not contain a line break.
    Lines,
    /// One CSV record per message: line breaks inside quoted cells belong to the record.
    Csv {
        /// The field delimiter.
        delimiter: u8,
        /// The quote character.
        quote: u8,
    },
}

/// A registered row format ([`weir_connector_api::format`]) in files: each row is one encoded
/// message followed by `\n`; reading splits the file into messages again and decodes each.
///
/// A message that decodes into several rows (a Debezium update gives an update-before and an
/// update-after) is read exactly once also across a restore: the split's position keeps how
/// many of its rows were emitted. Blank lines are skipped, except for the `raw` format where
/// a blank line is an empty value.
#[derive(Clone)]
pub struct MessageRows {
    name: &'static str,
    encoder: Arc<dyn MessageEncoder>,
    decoder: Arc<dyn MessageDecoder>,
    framing: Framing,
    header: Option<Arc<[u8]>>,
    skip_blank: bool,
}

impl std::fmt::Debug for MessageRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageRows")
            .field("name", &self.name)
            .field("framing", &self.framing)
            .field("header", &self.header.is_some())
            .finish_non_exhaustive()
    }
}

impl MessageRows {
    /// Rows encoded and decoded by a format named `name`, separated by `framing`.
    pub fn new(
        name: &'static str,
        encoder: Box<dyn MessageEncoder>,
        decoder: Box<dyn MessageDecoder>,
        framing: Framing,
    ) -> Self {
        MessageRows {
            name,
            encoder: Arc::from(encoder),
            decoder: Arc::from(decoder),
            framing,
            header: None,
            skip_blank: name != "raw",
        }
    }

    /// Starts every file with this header line (`\n` is added); readers skip the first message
    /// of every file.
    pub fn with_header(mut self, header: Vec<u8>) -> Self {
        let mut header = header;
        header.push(b'\n');
        self.header = Some(Arc::from(header));
        self
    }

    /// The header line each file starts with (with its `\n`), if any.
    pub fn header(&self) -> Option<&Arc<[u8]>> {
        self.header.as_ref()
    }
}

struct MessageEncoderState {
    encoder: Arc<dyn MessageEncoder>,
    name: &'static str,
    lines: bool,
    header: Option<Arc<[u8]>>,
}

impl RecordEncoder<Row> for MessageEncoderState {
    fn begin(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if let Some(header) = &self.header {
            out.extend_from_slice(header);
        }
        Ok(())
    }

    fn encode(&mut self, record: &Row, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        self.encoder.encode(record, out)?;
        if self.lines && out.get(start..).is_some_and(|m| m.contains(&b'\n')) {
            out.truncate(start);
            return Err(malformed(
                format!("a {} row for a file", self.name),
                "the encoded row contains a line break, but files of this format hold one row \
                 per line",
            ));
        }
        out.push(b'\n');
        Ok(())
    }
}

/// What [`MessageFramer::next`] found at the start of a buffer.
pub(crate) enum Frame<'b> {
    /// A message and the bytes it used (with its line end).
    Message(&'b [u8], usize),
    /// Bytes that hold no message (the header line, a blank line).
    Skip(usize),
    /// No complete message yet.
    NeedMore,
}

/// Splits a file of a [`MessageRows`] format into messages: lines or CSV records, the header
/// line checked and skipped, blank lines skipped.
pub(crate) struct MessageFramer {
    framing: Framing,
    /// The header line (with its `\n`) the next message must be, at the start of a file.
    skip_header: Option<Arc<[u8]>>,
    skip_blank: bool,
    csv: Option<CsvFramer>,
}

impl MessageFramer {
    /// The framer of `rows`' files, reading from a file's start or from an offset.
    pub(crate) fn new(rows: &MessageRows, at_file_start: bool) -> Self {
        let csv = match rows.framing {
            Framing::Lines => None,
            Framing::Csv { delimiter, quote } => Some(CsvFramer::new(
                csv_core::ReaderBuilder::new()
                    .delimiter(delimiter)
                    .quote(quote)
                    .build(),
            )),
        };
        MessageFramer {
            framing: rows.framing,
            skip_header: rows.header.clone().filter(|_| at_file_start),
            skip_blank: rows.skip_blank,
            csv,
        }
    }

    /// The next CSV record of `buf`: its bytes (with the terminator) and length.
    fn csv_frame<'b>(&mut self, buf: &'b [u8], eof: bool) -> Option<(&'b [u8], usize)> {
        let consumed = match self.csv.as_mut()?.next(buf, eof) {
            CsvStep::NeedMore => return None,
            CsvStep::End(consumed) | CsvStep::Record { consumed, .. } => consumed,
        };
        Some((buf.get(..consumed).unwrap_or_default(), consumed))
    }

    /// The next message at the start of `buf` (`eof`: no bytes follow `buf`).
    pub(crate) fn next<'b>(&mut self, buf: &'b [u8], eof: bool) -> Result<Frame<'b>> {
        let frame = match self.framing {
            Framing::Lines => next_line(buf, eof),
            Framing::Csv { .. } => self.csv_frame(buf, eof),
        };
        let Some((message, used)) = frame else {
            return Ok(Frame::NeedMore);
        };
        if let Some(header) = self.skip_header.take() {
            let trim = |b: &[u8]| -> Vec<u8> {
                let mut v = b.to_vec();
                while v.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                    v.pop();
                }
                v
            };
            if trim(message) != trim(&header) {
                // Skipping it would silently drop a row of a file without a header.
                return Err(malformed(
                    "the first line of a CSV file",
                    format!(
                        "it is `{}`, not the header `{}` (the field names): set \
                         `csv.header = false` for files without a header line",
                        String::from_utf8_lossy(&trim(message)),
                        String::from_utf8_lossy(&trim(&header))
                    ),
                ));
            }
            return Ok(Frame::Skip(used));
        }
        if self.skip_blank && message.iter().all(u8::is_ascii_whitespace) {
            return Ok(Frame::Skip(used));
        }
        Ok(Frame::Message(message, used))
    }
}

struct MessageDecoderState {
    decoder: Arc<dyn MessageDecoder>,
    framer: MessageFramer,
    /// Rows of the last message not returned yet, and the bytes that message used.
    pending: VecDeque<Row>,
    pending_used: usize,
    scratch: Vec<Row>,
}

impl RecordDecoder<Row> for MessageDecoderState {
    fn decode(&mut self, buf: &[u8], eof: bool) -> Result<Decoded<Row>> {
        if let Some(row) = self.pending.pop_front() {
            let used = if self.pending.is_empty() {
                self.pending_used
            } else {
                0
            };
            return Ok(Decoded::Record(row, used));
        }
        let (message, used) = match self.framer.next(buf, eof)? {
            Frame::Message(message, used) => (message, used),
            Frame::Skip(used) => return Ok(Decoded::Skip(used)),
            Frame::NeedMore => return Ok(Decoded::NeedMore),
        };
        self.scratch.clear();
        self.decoder.decode(message, &mut self.scratch)?;
        let mut rows = self.scratch.drain(..);
        let Some(first) = rows.next() else {
            return Ok(Decoded::Skip(used));
        };
        self.pending.extend(rows);
        if self.pending.is_empty() {
            return Ok(Decoded::Record(first, used));
        }
        // More rows follow from this message: the position stays at its start until the last.
        self.pending_used = used;
        Ok(Decoded::Record(first, 0))
    }
}

impl RowFormat<Row> for MessageRows {
    fn create_encoder(&self, at_file_start: bool) -> Result<Box<dyn RecordEncoder<Row>>> {
        Ok(Box::new(MessageEncoderState {
            encoder: Arc::clone(&self.encoder),
            name: self.name,
            lines: self.framing == Framing::Lines,
            header: self.header.clone().filter(|_| at_file_start),
        }))
    }

    fn create_decoder(&self, at_file_start: bool) -> Result<Box<dyn RecordDecoder<Row>>> {
        Ok(Box::new(MessageDecoderState {
            decoder: Arc::clone(&self.decoder),
            framer: MessageFramer::new(self, at_file_start),
            pending: VecDeque::new(),
            pending_used: 0,
            scratch: Vec::new(),
        }))
    }

    fn name(&self) -> &'static str {
        self.name
    }
}
