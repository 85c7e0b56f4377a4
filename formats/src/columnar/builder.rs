//! Column builders chosen by pipeline type, filled with the row decoders' rules for text
//! cells (`convert::from_text`, `typed::scalar_from_text`) and JSON values
//! (`convert::from_json`, `typed::from_json_typed`).
//!
//! The builder is chosen by the pipeline type, not the Arrow type: `timestamp` (line 1.0) and
//! `timestamp(ms)` are the same Arrow column but read JSON strings differently.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, StringBuilder,
    TimestampMicrosecondBuilder, TimestampMillisecondBuilder, TimestampNanosecondBuilder,
    TimestampSecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow_array::types::{Decimal128Type, DecimalType};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;
use base64::Engine as _;
use chrono::NaiveDate;
use weir_connector_api::row::{DataType, Field, RowKind, Schema, TimeUnit, Value};

use super::cells::JsonCell;
use super::nested::{ListColumn, MapColumn, StructColumn};
use crate::chunk::Chunk;
use crate::convert::parse_timestamp_text;
use crate::typed::scalar_from_text;

/// The builder of one column.
#[derive(Debug)]
pub(super) enum Builder {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    /// Line 1.0's `timestamp` (milliseconds, no zone).
    TimestampMillis(TimestampMillisecondBuilder),
    /// A scalar type of line 1.1, its values read by `typed::scalar_from_text`.
    Typed(DataType, Typed),
    List(Box<ListColumn>),
    Struct(Box<StructColumn>),
    Map(Box<MapColumn>),
}

/// The column of a line 1.1 scalar type.
#[derive(Debug)]
pub(super) enum Typed {
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    UInt8(UInt8Builder),
    UInt16(UInt16Builder),
    UInt32(UInt32Builder),
    UInt64(UInt64Builder),
    Float32(Float32Builder),
    /// With the type's precision: a value with more digits makes the batch take the row
    /// path, where the rows' conversion into a chunk refuses it.
    Decimal(Decimal128Builder, u8),
    Date32(Date32Builder),
    Seconds(TimestampSecondBuilder),
    Millis(TimestampMillisecondBuilder),
    Micros(TimestampMicrosecondBuilder),
    Nanos(TimestampNanosecondBuilder),
}

impl Typed {
    fn of(data_type: &DataType) -> Result<Self, String> {
        Ok(match data_type {
            DataType::Int8 => Typed::Int8(Int8Builder::new()),
            DataType::Int16 => Typed::Int16(Int16Builder::new()),
            DataType::Int32 => Typed::Int32(Int32Builder::new()),
            DataType::UInt8 => Typed::UInt8(UInt8Builder::new()),
            DataType::UInt16 => Typed::UInt16(UInt16Builder::new()),
            DataType::UInt32 => Typed::UInt32(UInt32Builder::new()),
            DataType::UInt64 => Typed::UInt64(UInt64Builder::new()),
            DataType::Float32 => Typed::Float32(Float32Builder::new()),
            DataType::Decimal128 { precision, scale } => Typed::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| e.to_string())?,
                *precision,
            ),
            DataType::Date32 => Typed::Date32(Date32Builder::new()),
            DataType::Timestamp { unit, tz } => {
                let tz = tz.clone();
                match unit {
                    TimeUnit::Second => {
                        Typed::Seconds(TimestampSecondBuilder::new().with_timezone_opt(tz))
                    }
                    TimeUnit::Microsecond => {
                        Typed::Micros(TimestampMicrosecondBuilder::new().with_timezone_opt(tz))
                    }
                    TimeUnit::Nanosecond => {
                        Typed::Nanos(TimestampNanosecondBuilder::new().with_timezone_opt(tz))
                    }
                    _ => Typed::Millis(TimestampMillisecondBuilder::new().with_timezone_opt(tz)),
                }
            }
            other => return Err(format!("the columnar decoder has no {other} column")),
        })
    }

    /// Appends a value `scalar_from_text` read for the column's type.
    fn push(&mut self, value: Value) -> Result<(), ()> {
        match (self, value) {
            (Typed::Int8(b), Value::Int64(x)) => b.append_value(narrow(x)?),
            (Typed::Int16(b), Value::Int64(x)) => b.append_value(narrow(x)?),
            (Typed::Int32(b), Value::Int64(x)) => b.append_value(narrow(x)?),
            (Typed::UInt8(b), Value::UInt64(x)) => b.append_value(narrow(x)?),
            (Typed::UInt16(b), Value::UInt64(x)) => b.append_value(narrow(x)?),
            (Typed::UInt32(b), Value::UInt64(x)) => b.append_value(narrow(x)?),
            (Typed::UInt64(b), Value::UInt64(x)) => b.append_value(x),
            (Typed::Float32(b), Value::Float32(x)) => b.append_value(x),
            (Typed::Decimal(b, precision), Value::Decimal128 { value, .. }) => {
                if !Decimal128Type::is_valid_decimal_precision(value, *precision) {
                    return Err(());
                }
                b.append_value(value);
            }
            (Typed::Date32(b), Value::Date32(d)) => b.append_value(d),
            (Typed::Seconds(b), Value::Timestamp(t, _)) => b.append_value(t),
            (Typed::Millis(b), Value::Timestamp(t, _)) => b.append_value(t),
            (Typed::Micros(b), Value::Timestamp(t, _)) => b.append_value(t),
            (Typed::Nanos(b), Value::Timestamp(t, _)) => b.append_value(t),
            _ => return Err(()),
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            Typed::Int8(b) => b.append_null(),
            Typed::Int16(b) => b.append_null(),
            Typed::Int32(b) => b.append_null(),
            Typed::UInt8(b) => b.append_null(),
            Typed::UInt16(b) => b.append_null(),
            Typed::UInt32(b) => b.append_null(),
            Typed::UInt64(b) => b.append_null(),
            Typed::Float32(b) => b.append_null(),
            Typed::Decimal(b, _) => b.append_null(),
            Typed::Date32(b) => b.append_null(),
            Typed::Seconds(b) => b.append_null(),
            Typed::Millis(b) => b.append_null(),
            Typed::Micros(b) => b.append_null(),
            Typed::Nanos(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Typed::Int8(b) => Arc::new(b.finish()),
            Typed::Int16(b) => Arc::new(b.finish()),
            Typed::Int32(b) => Arc::new(b.finish()),
            Typed::UInt8(b) => Arc::new(b.finish()),
            Typed::UInt16(b) => Arc::new(b.finish()),
            Typed::UInt32(b) => Arc::new(b.finish()),
            Typed::UInt64(b) => Arc::new(b.finish()),
            Typed::Float32(b) => Arc::new(b.finish()),
            Typed::Decimal(b, _) => Arc::new(b.finish()),
            Typed::Date32(b) => Arc::new(b.finish()),
            Typed::Seconds(b) => Arc::new(b.finish()),
            Typed::Millis(b) => Arc::new(b.finish()),
            Typed::Micros(b) => Arc::new(b.finish()),
            Typed::Nanos(b) => Arc::new(b.finish()),
        }
    }
}

/// `x` in a narrower integer type (`scalar_from_text` has checked the range).
fn narrow<T: TryFrom<X>, X>(x: X) -> Result<T, ()> {
    T::try_from(x).map_err(|_| ())
}

/// A date written `YYYY-MM-DD` (after trimming, as `typed::scalar_from_text`) as days since
/// the epoch: the common form read without chrono's `%Y-%m-%d` parser, which parses its format
/// string for every value (a sixth of a columnar CSV decode of dates). `None` for anything
/// else, left to `scalar_from_text` — an invalid date like `2024-02-30` too, so the result is
/// always the row decoder's.
fn iso_date_days(text: &str) -> Option<i32> {
    let &[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = text.trim().as_bytes() else {
        return None;
    };
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0_u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(number(&[y0, y1, y2, y3])?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(&[m0, m1])?, number(&[d0, d1])?)?;
    i32::try_from(date.signed_duration_since(NaiveDate::default()).num_days()).ok()
}

/// The text serde_json writes for a JSON number (`Number`'s `Display`), which the row
/// decoder reads the number of a line 1.1 type from.
fn number_text(cell: &JsonCell<'_>, buffer: &mut itoa::Buffer) -> Option<String> {
    Some(match cell {
        JsonCell::I64(n) => buffer.format(*n).to_owned(),
        JsonCell::U64(n) => buffer.format(*n).to_owned(),
        JsonCell::F64(x) => serde_json::Number::from_f64(*x)?.to_string(),
        _ => return None,
    })
}

impl Builder {
    /// The builder of a column of `data_type`, or why there is none.
    pub(super) fn of(data_type: &DataType) -> Result<Self, String> {
        Ok(match data_type {
            DataType::Boolean => Builder::Boolean(BooleanBuilder::new()),
            DataType::Int64 => Builder::Int64(Int64Builder::new()),
            DataType::Float64 => Builder::Float64(Float64Builder::new()),
            DataType::String => Builder::Utf8(StringBuilder::new()),
            DataType::Bytes => Builder::Binary(BinaryBuilder::new()),
            DataType::TimestampMillis => {
                Builder::TimestampMillis(TimestampMillisecondBuilder::new())
            }
            DataType::List(item) => Builder::List(Box::new(ListColumn::new(item)?)),
            DataType::Struct(fields) => Builder::Struct(Box::new(StructColumn::new(fields)?)),
            DataType::Map(key, value) => Builder::Map(Box::new(MapColumn::new(key, value)?)),
            other => Builder::Typed(other.clone(), Typed::of(other)?),
        })
    }

    /// Whether this is a string column (where an empty csv cell is a value, not null).
    pub(super) fn is_utf8(&self) -> bool {
        matches!(self, Builder::Utf8(_))
    }

    /// Appends a null.
    pub(super) fn append_null(&mut self) {
        match self {
            Builder::Boolean(b) => b.append_null(),
            Builder::Int64(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Utf8(b) => b.append_null(),
            Builder::Binary(b) => b.append_null(),
            Builder::TimestampMillis(b) => b.append_null(),
            Builder::Typed(_, b) => b.append_null(),
            Builder::List(b) => b.append_null(),
            Builder::Struct(b) => b.append_null(),
            Builder::Map(b) => b.append_null(),
        }
    }

    /// Appends a (non-null) text cell, read as `convert::from_text` reads it (csv cells and
    /// map keys); nested columns take no text.
    pub(super) fn append_text(&mut self, text: &str) -> Result<(), ()> {
        match self {
            Builder::Boolean(b) => match text.trim() {
                t if t.eq_ignore_ascii_case("true") => b.append_value(true),
                t if t.eq_ignore_ascii_case("false") => b.append_value(false),
                _ => return Err(()),
            },
            Builder::Int64(b) => b.append_value(text.trim().parse().map_err(|_| ())?),
            Builder::Float64(b) => b.append_value(text.trim().parse().map_err(|_| ())?),
            Builder::Utf8(b) => b.append_value(text),
            Builder::Binary(b) => b.append_value(
                base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|_| ())?,
            ),
            Builder::TimestampMillis(b) => b.append_value(
                parse_timestamp_text(text)
                    .or_else(|| text.trim().parse().ok())
                    .ok_or(())?,
            ),
            Builder::Typed(data_type, b) => {
                if let (Typed::Date32(dates), Some(days)) = (&mut *b, iso_date_days(text)) {
                    dates.append_value(days);
                    return Ok(());
                }
                match scalar_from_text(data_type, text) {
                    Some(Ok(value)) => b.push(value)?,
                    _ => return Err(()),
                }
            }
            Builder::List(_) | Builder::Struct(_) | Builder::Map(_) => return Err(()),
        }
        Ok(())
    }

    /// Appends a JSON value, read as `convert::from_json` reads it (`lenient`: also numbers
    /// and booleans written as strings, as canal-json); a null is the caller's to check
    /// against the field's nullability.
    pub(super) fn append_json(&mut self, cell: &JsonCell<'_>, lenient: bool) -> Result<(), ()> {
        if matches!(cell, JsonCell::Null) {
            self.append_null();
            return Ok(());
        }
        match self {
            Builder::Boolean(b) => b.append_value(match cell {
                JsonCell::Bool(v) => *v,
                JsonCell::Str(t) if lenient && (t.eq_ignore_ascii_case("true") || t == "1") => true,
                JsonCell::Str(t) if lenient && (t.eq_ignore_ascii_case("false") || t == "0") => {
                    false
                }
                _ => return Err(()),
            }),
            Builder::Int64(b) => b.append_value(match cell {
                JsonCell::I64(n) => *n,
                JsonCell::U64(n) => i64::try_from(*n).map_err(|_| ())?,
                JsonCell::Str(t) if lenient => t.trim().parse().map_err(|_| ())?,
                _ => return Err(()),
            }),
            // As `serde_json::Value::as_f64`.
            #[allow(clippy::cast_precision_loss)]
            Builder::Float64(b) => b.append_value(match cell {
                JsonCell::I64(n) => *n as f64,
                JsonCell::U64(n) => *n as f64,
                JsonCell::F64(x) => *x,
                JsonCell::Str(t) if lenient => t.trim().parse().map_err(|_| ())?,
                _ => return Err(()),
            }),
            Builder::Utf8(b) => match cell {
                JsonCell::Str(s) => b.append_value(s),
                JsonCell::Bool(v) if lenient => b.append_value(if *v { "true" } else { "false" }),
                JsonCell::I64(_) | JsonCell::U64(_) | JsonCell::F64(_) if lenient => {
                    b.append_value(number_text(cell, &mut itoa::Buffer::new()).ok_or(())?);
                }
                _ => return Err(()),
            },
            Builder::Binary(b) => match cell {
                JsonCell::Str(s) => b.append_value(
                    base64::engine::general_purpose::STANDARD
                        .decode(s.as_bytes())
                        .map_err(|_| ())?,
                ),
                _ => return Err(()),
            },
            Builder::TimestampMillis(b) => b.append_value(match cell {
                JsonCell::I64(n) => *n,
                JsonCell::U64(n) => i64::try_from(*n).map_err(|_| ())?,
                JsonCell::Str(s) => parse_timestamp_text(s)
                    .or_else(|| if lenient { s.trim().parse().ok() } else { None })
                    .ok_or(())?,
                _ => return Err(()),
            }),
            Builder::Typed(data_type, b) => {
                let parsed = match cell {
                    JsonCell::Str(s) => {
                        // Text only where lenient, or where text is the type's JSON form.
                        let text_form = lenient
                            || matches!(
                                data_type,
                                DataType::Decimal128 { .. }
                                    | DataType::Date32
                                    | DataType::Timestamp { .. }
                            );
                        if !text_form {
                            return Err(());
                        }
                        if let (Typed::Date32(dates), Some(days)) = (&mut *b, iso_date_days(s)) {
                            dates.append_value(days);
                            return Ok(());
                        }
                        scalar_from_text(data_type, s)
                    }
                    JsonCell::I64(_) | JsonCell::U64(_) | JsonCell::F64(_) => {
                        let text = number_text(cell, &mut itoa::Buffer::new()).ok_or(())?;
                        scalar_from_text(data_type, &text)
                    }
                    _ => return Err(()),
                };
                match parsed {
                    Some(Ok(value)) => b.push(value)?,
                    _ => return Err(()),
                }
            }
            Builder::List(b) => b.append_json(cell, lenient)?,
            Builder::Struct(b) => b.append_json(cell, lenient)?,
            Builder::Map(b) => b.append_json(cell, lenient)?,
        }
        Ok(())
    }

    /// The column of the values appended since the last call (`None` if Arrow refuses it).
    pub(super) fn finish(&mut self) -> Option<ArrayRef> {
        Some(match self {
            Builder::Boolean(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Binary(b) => Arc::new(b.finish()),
            Builder::TimestampMillis(b) => Arc::new(b.finish()),
            Builder::Typed(_, b) => b.finish(),
            Builder::List(b) => b.finish()?,
            Builder::Struct(b) => b.finish()?,
            Builder::Map(b) => b.finish()?,
        })
    }
}

/// The builders of a schema's columns (or why a type has none).
pub(super) fn builders(fields: &[Field]) -> Result<Vec<Builder>, String> {
    fields
        .iter()
        .map(|f| Builder::of(&f.data_type).map_err(|e| format!("field `{}`: {e}", f.name)))
        .collect()
}

/// The builders of `schema`'s columns.
pub(super) fn schema_builders(schema: &Schema) -> Result<Vec<Builder>, ()> {
    builders(&schema.fields).map_err(|_| ())
}

/// The batch of `rows` rows the builders hold (emptied); `None` if Arrow refuses it (e.g. a
/// null in a non-nullable column, which the decoders check before).
pub(super) fn finish(
    schema: &SchemaRef,
    builders: &mut [Builder],
    rows: usize,
) -> Option<RecordBatch> {
    let columns = builders
        .iter_mut()
        .map(Builder::finish)
        .collect::<Option<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options).ok()
}

/// The changelog chunk of the rows the builders hold (emptied), one kind per row; `None` when
/// there are no rows, `Err` if Arrow refuses the batch.
pub(super) fn finish_changelog(
    schema: &SchemaRef,
    builders: &mut [Builder],
    kinds: Vec<RowKind>,
) -> Result<Option<Chunk>, ()> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let batch = finish(schema, builders, kinds.len()).ok_or(())?;
    Chunk::new(batch, Some(Arc::from(kinds)))
        .map(Some)
        .map_err(|_| ())
}
