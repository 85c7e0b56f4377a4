//! Column builders chosen by Arrow type, filled with the row decoders' rules for text cells
//! (`convert::from_text`) and JSON values (`convert::from_json`).

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType as ArrowType, FieldRef, SchemaRef, TimeUnit};
use base64::Engine as _;

use crate::convert::parse_timestamp_text;

/// The builder of one column.
#[derive(Debug)]
pub(super) enum Builder {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    TimestampMillis(TimestampMillisecondBuilder),
}

/// A JSON value as the streaming parser gives it (strings borrowed when unescaped).
#[derive(Debug)]
pub(super) enum JsonCell<'de> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(std::borrow::Cow<'de, str>),
    /// An array or object: no column type of the row formats reads one.
    Nested,
}

impl Builder {
    /// The builder of a column of `field`'s Arrow type, or why there is none.
    pub(super) fn of(field: &FieldRef) -> Result<Self, String> {
        Ok(match field.data_type() {
            ArrowType::Boolean => Builder::Boolean(BooleanBuilder::new()),
            ArrowType::Int64 => Builder::Int64(Int64Builder::new()),
            ArrowType::Float64 => Builder::Float64(Float64Builder::new()),
            ArrowType::Utf8 => Builder::Utf8(StringBuilder::new()),
            ArrowType::Binary => Builder::Binary(BinaryBuilder::new()),
            ArrowType::Timestamp(TimeUnit::Millisecond, None) => {
                Builder::TimestampMillis(TimestampMillisecondBuilder::new())
            }
            other => {
                return Err(format!(
                    "field `{}`: the columnar decoder has no {other} column",
                    field.name()
                ))
            }
        })
    }

    /// Whether this is a string column (where an empty csv cell is a value, not null).
    pub(super) fn is_utf8(&self) -> bool {
        matches!(self, Builder::Utf8(_))
    }

    pub(super) fn append_null(&mut self) {
        match self {
            Builder::Boolean(b) => b.append_null(),
            Builder::Int64(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Utf8(b) => b.append_null(),
            Builder::Binary(b) => b.append_null(),
            Builder::TimestampMillis(b) => b.append_null(),
        }
    }

    /// Appends a (non-null) csv cell, read as `convert::from_text` reads it.
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
        }
        Ok(())
    }

    /// Appends a JSON value, read as `convert::from_json` reads it (not lenient); a null is
    /// the caller's to check against the field's nullability.
    pub(super) fn append_json(&mut self, cell: &JsonCell<'_>) -> Result<(), ()> {
        match (self, cell) {
            (b, JsonCell::Null) => b.append_null(),
            (Builder::Boolean(b), JsonCell::Bool(v)) => b.append_value(*v),
            (Builder::Int64(b), JsonCell::I64(n)) => b.append_value(*n),
            (Builder::Int64(b), JsonCell::U64(n)) => {
                b.append_value(i64::try_from(*n).map_err(|_| ())?);
            }
            (Builder::TimestampMillis(b), JsonCell::I64(n)) => b.append_value(*n),
            (Builder::TimestampMillis(b), JsonCell::U64(n)) => {
                b.append_value(i64::try_from(*n).map_err(|_| ())?);
            }
            (Builder::TimestampMillis(b), JsonCell::Str(s)) => {
                b.append_value(parse_timestamp_text(s).ok_or(())?);
            }
            // As `serde_json::Value::as_f64`.
            #[allow(clippy::cast_precision_loss)]
            (Builder::Float64(b), JsonCell::I64(n)) => b.append_value(*n as f64),
            #[allow(clippy::cast_precision_loss)]
            (Builder::Float64(b), JsonCell::U64(n)) => b.append_value(*n as f64),
            (Builder::Float64(b), JsonCell::F64(x)) => b.append_value(*x),
            (Builder::Utf8(b), JsonCell::Str(s)) => b.append_value(s),
            (Builder::Binary(b), JsonCell::Str(s)) => b.append_value(
                base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|_| ())?,
            ),
            _ => return Err(()),
        }
        Ok(())
    }

    pub(super) fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Boolean(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Binary(b) => Arc::new(b.finish()),
            Builder::TimestampMillis(b) => Arc::new(b.finish()),
        }
    }
}

/// The builders of a schema's columns.
pub(super) fn builders(schema: &SchemaRef) -> Result<Vec<Builder>, String> {
    schema.fields().iter().map(Builder::of).collect()
}

/// The batch of `rows` rows the builders hold (emptied); `None` if Arrow refuses it (e.g. a
/// null in a non-nullable column, which the decoders check before).
pub(super) fn finish(
    schema: &SchemaRef,
    builders: &mut [Builder],
    rows: usize,
) -> Option<RecordBatch> {
    let columns = builders.iter_mut().map(Builder::finish).collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options).ok()
}
