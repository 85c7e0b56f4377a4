//! Pipeline rows and chunks: the Arrow type of each row type, and the conversions both ways.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch,
    RecordBatchOptions, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType as ArrowType, Field as ArrowField, SchemaRef, TimeUnit};

use super::{Chunk, ChunkError};
use crate::row::{DataType, Row, RowKind, Schema, Value};

impl Chunk {
    /// Builds a chunk of `schema` from rows (a missing trailing value is a null).
    pub fn from_rows(schema: &SchemaRef, rows: &[Row]) -> Result<Self, ChunkError> {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| column(field, i, rows))
            .collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        let batch = RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)?;
        let kinds: Arc<[RowKind]> = rows.iter().map(|r| r.kind).collect();
        Chunk::new(batch, Some(kinds))
    }

    /// The rows of the chunk, in order.
    pub fn to_rows(&self) -> Result<Vec<Row>, ChunkError> {
        let mut rows = Vec::with_capacity(self.num_rows());
        self.for_each_row(|row| rows.push(row))?;
        Ok(rows)
    }

    /// Calls `f` with each row of the chunk, in order.
    pub fn for_each_row(&self, mut f: impl FnMut(Row)) -> Result<(), ChunkError> {
        let columns = self
            .batch
            .schema_ref()
            .fields()
            .iter()
            .zip(self.batch.columns())
            .map(|(field, array)| Column::of(field, array))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..self.num_rows() {
            let kind = self
                .kinds
                .as_deref()
                .and_then(|k| k.get(i).copied())
                .unwrap_or_default();
            f(Row::with_kind(
                kind,
                columns.iter().map(|c| c.value(i)).collect(),
            ));
        }
        Ok(())
    }
}

/// The Arrow schema of pipeline rows of `schema` (see the [module docs](super) for the types).
pub fn arrow_schema(schema: &Schema) -> SchemaRef {
    Arc::new(arrow_schema::Schema::new(
        schema
            .fields
            .iter()
            .map(|f| ArrowField::new(&f.name, arrow_type(f.data_type), f.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// The Arrow type of a pipeline type.
pub fn arrow_type(data_type: DataType) -> ArrowType {
    match data_type {
        DataType::Boolean => ArrowType::Boolean,
        DataType::Float64 => ArrowType::Float64,
        DataType::String => ArrowType::Utf8,
        DataType::Bytes => ArrowType::Binary,
        DataType::TimestampMillis => ArrowType::Timestamp(TimeUnit::Millisecond, None),
        // Int64, and any type added later until it has its own column type.
        _ => ArrowType::Int64,
    }
}

fn value_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Int64(_) => "int64",
        Value::Float64(_) => "float64",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::TimestampMillis(_) => "timestamp",
    }
}

/// Builds column `index` of `rows`.
fn column(field: &ArrowField, index: usize, rows: &[Row]) -> Result<ArrayRef, ChunkError> {
    let mismatch = |row: usize, value: &Value| ChunkError::TypeMismatch {
        row,
        field: field.name().clone(),
        expected: field.data_type().to_string(),
        found: value_name(value),
    };
    let values = rows
        .iter()
        .map(|r| r.values.get(index).unwrap_or(&Value::Null));
    macro_rules! build {
        ($builder:expr, $($pattern:pat => $value:expr),+) => {{
            let mut b = $builder;
            for (row, v) in values.enumerate() {
                match v {
                    Value::Null => b.append_null(),
                    $($pattern => b.append_value($value),)+
                    other => return Err(mismatch(row, other)),
                }
            }
            Ok(Arc::new(b.finish()) as ArrayRef)
        }};
    }
    match field.data_type() {
        ArrowType::Boolean => {
            build!(BooleanBuilder::with_capacity(rows.len()), Value::Boolean(b) => *b)
        }
        ArrowType::Int64 => build!(Int64Builder::with_capacity(rows.len()), Value::Int64(n) => *n),
        ArrowType::Float64 => {
            build!(Float64Builder::with_capacity(rows.len()), Value::Float64(x) => *x)
        }
        ArrowType::Utf8 => build!(StringBuilder::new(), Value::String(s) => s),
        ArrowType::Binary => build!(BinaryBuilder::new(), Value::Bytes(b) => b),
        ArrowType::Timestamp(TimeUnit::Millisecond, None) => build!(
            TimestampMillisecondBuilder::with_capacity(rows.len()),
            // Event-time fields accept integers too (as the row path's timestamps do).
            Value::TimestampMillis(t) | Value::Int64(t) => *t
        ),
        other => Err(ChunkError::UnsupportedType {
            field: field.name().clone(),
            data_type: other.to_string(),
        }),
    }
}

/// A column, downcast once for reading rows.
enum Column<'a> {
    Boolean(&'a BooleanArray),
    Int64(&'a Int64Array),
    Float64(&'a Float64Array),
    String(&'a StringArray),
    Bytes(&'a BinaryArray),
    Timestamp(&'a TimestampMillisecondArray),
}

impl<'a> Column<'a> {
    fn of(field: &ArrowField, array: &'a ArrayRef) -> Result<Self, ChunkError> {
        let any = array.as_any();
        let column = match array.data_type() {
            ArrowType::Boolean => any.downcast_ref().map(Column::Boolean),
            ArrowType::Int64 => any.downcast_ref().map(Column::Int64),
            ArrowType::Float64 => any.downcast_ref().map(Column::Float64),
            ArrowType::Utf8 => any.downcast_ref().map(Column::String),
            ArrowType::Binary => any.downcast_ref().map(Column::Bytes),
            ArrowType::Timestamp(TimeUnit::Millisecond, None) => {
                any.downcast_ref().map(Column::Timestamp)
            }
            _ => None,
        };
        column.ok_or_else(|| ChunkError::UnsupportedType {
            field: field.name().clone(),
            data_type: array.data_type().to_string(),
        })
    }

    fn value(&self, i: usize) -> Value {
        macro_rules! get {
            ($a:expr, $wrap:expr) => {
                if $a.is_null(i) {
                    Value::Null
                } else {
                    $wrap($a.value(i))
                }
            };
        }
        match self {
            Column::Boolean(a) => get!(a, Value::Boolean),
            Column::Int64(a) => get!(a, Value::Int64),
            Column::Float64(a) => get!(a, Value::Float64),
            Column::String(a) => get!(a, |s: &str| Value::String(s.to_owned())),
            Column::Bytes(a) => get!(a, |b: &[u8]| Value::Bytes(b.to_vec())),
            Column::Timestamp(a) => get!(a, Value::TimestampMillis),
        }
    }
}
