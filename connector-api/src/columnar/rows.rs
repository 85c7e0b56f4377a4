//! Pipeline rows and chunks: the Arrow type of each row type, and the conversions both ways.
//!
//! Both directions are recursive over nested types (list, struct, map), bounded by the depth
//! of the schema (which the pipeline parser bounds).

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, StringBuilder,
    TimestampMicrosecondBuilder, TimestampMillisecondBuilder, TimestampNanosecondBuilder,
    TimestampSecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, ListArray, MapArray, PrimitiveArray, RecordBatch,
    RecordBatchOptions, StringArray, StructArray,
};
use arrow_buffer::{NullBuffer, NullBufferBuilder, OffsetBuffer};
use arrow_schema::{
    ArrowError, DataType as ArrowType, Field as ArrowField, Fields, SchemaRef,
    TimeUnit as ArrowUnit,
};

use super::{Chunk, ChunkError};
use crate::row::{DataType, Field, Row, RowKind, Schema, TimeUnit, Value};

impl Chunk {
    /// Builds a chunk of `schema` from rows (a missing trailing value is a null).
    pub fn from_rows(schema: &SchemaRef, rows: &[Row]) -> Result<Self, ChunkError> {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let values: Vec<&Value> = rows
                    .iter()
                    .map(|r| r.values.get(i).unwrap_or(&NULL))
                    .collect();
                array(field.name(), field.data_type(), &values)
            })
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
            .map(|(field, array)| Column::of(field.name(), array))
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

static NULL: Value = Value::Null;

/// The Arrow schema of pipeline rows of `schema` (see the [module docs](super) for the types).
pub fn arrow_schema(schema: &Schema) -> SchemaRef {
    Arc::new(arrow_schema::Schema::new(
        schema.fields.iter().map(arrow_field).collect::<Vec<_>>(),
    ))
}

/// The Arrow field of a pipeline field.
pub fn arrow_field(field: &Field) -> ArrowField {
    ArrowField::new(&field.name, arrow_type(&field.data_type), field.nullable)
}

/// The Arrow type of a pipeline type: lists have a nullable `item` field, maps an `entries`
/// struct of a non-null `keys` and a nullable `values` field (the names of Arrow's builders).
pub fn arrow_type(data_type: &DataType) -> ArrowType {
    match data_type {
        DataType::Boolean => ArrowType::Boolean,
        DataType::Int8 => ArrowType::Int8,
        DataType::Int16 => ArrowType::Int16,
        DataType::Int32 => ArrowType::Int32,
        DataType::UInt8 => ArrowType::UInt8,
        DataType::UInt16 => ArrowType::UInt16,
        DataType::UInt32 => ArrowType::UInt32,
        DataType::UInt64 => ArrowType::UInt64,
        DataType::Float32 => ArrowType::Float32,
        DataType::Float64 => ArrowType::Float64,
        DataType::Decimal128 { precision, scale } => ArrowType::Decimal128(*precision, *scale),
        DataType::String => ArrowType::Utf8,
        DataType::Bytes => ArrowType::Binary,
        DataType::Date32 => ArrowType::Date32,
        DataType::TimestampMillis => ArrowType::Timestamp(ArrowUnit::Millisecond, None),
        DataType::Timestamp { unit, tz } => ArrowType::Timestamp(arrow_unit(*unit), tz.clone()),
        DataType::List(item) => {
            ArrowType::List(Arc::new(ArrowField::new("item", arrow_type(item), true)))
        }
        DataType::Struct(fields) => {
            ArrowType::Struct(fields.iter().map(arrow_field).collect::<Fields>())
        }
        DataType::Map(key, value) => ArrowType::Map(
            Arc::new(ArrowField::new(
                "entries",
                ArrowType::Struct(Fields::from(vec![
                    ArrowField::new("keys", arrow_type(key), false),
                    ArrowField::new("values", arrow_type(value), true),
                ])),
                false,
            )),
            false,
        ),
        // Int64, and any type added later until it has its own column type.
        _ => ArrowType::Int64,
    }
}

/// The Arrow unit of a timestamp unit.
pub fn arrow_unit(unit: TimeUnit) -> ArrowUnit {
    match unit {
        TimeUnit::Second => ArrowUnit::Second,
        TimeUnit::Microsecond => ArrowUnit::Microsecond,
        TimeUnit::Nanosecond => ArrowUnit::Nanosecond,
        // Milliseconds, and any unit added later.
        _ => ArrowUnit::Millisecond,
    }
}

fn unit_of(unit: ArrowUnit) -> TimeUnit {
    match unit {
        ArrowUnit::Second => TimeUnit::Second,
        ArrowUnit::Millisecond => TimeUnit::Millisecond,
        ArrowUnit::Microsecond => TimeUnit::Microsecond,
        ArrowUnit::Nanosecond => TimeUnit::Nanosecond,
    }
}

fn unsupported(name: &str, data_type: &ArrowType) -> ChunkError {
    ChunkError::UnsupportedType {
        field: name.to_owned(),
        data_type: data_type.to_string(),
    }
}

/// The Arrow column of type `field` holding `values` (one per row, mapped as
/// [`Chunk::from_rows`] maps a row's value): for code that makes values rather than columns
/// (e.g. nested values) and wants the column of them.
pub fn array_of(field: &ArrowField, values: &[&Value]) -> Result<ArrayRef, ChunkError> {
    array(field.name(), field.data_type(), values)
}

/// Builds the column `name` of Arrow type `data_type` from its values (of all rows, or of a
/// nested column's elements; `row` in errors is the position among them).
fn array(name: &str, data_type: &ArrowType, values: &[&Value]) -> Result<ArrayRef, ChunkError> {
    let mismatch = |row: usize, value: &Value, found: &'static str| ChunkError::TypeMismatch {
        row,
        field: name.to_owned(),
        expected: data_type.to_string(),
        found: if found.is_empty() {
            value.kind_name()
        } else {
            found
        },
    };
    let n = values.len();
    // `$value` is an `Option`: `None` is a value of the right kind out of the column's range.
    macro_rules! build {
        ($builder:expr, $($pattern:pat $(if $guard:expr)? => $value:expr),+) => {{
            let mut b = $builder;
            for (row, v) in values.iter().enumerate() {
                match v {
                    Value::Null => b.append_null(),
                    $($pattern $(if $guard)? => match $value {
                        Some(x) => b.append_value(x),
                        None => return Err(mismatch(row, v, "out-of-range")),
                    },)+
                    other => return Err(mismatch(row, other, "")),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match data_type {
        ArrowType::Boolean => {
            build!(BooleanBuilder::with_capacity(n), Value::Boolean(b) => Some(*b))
        }
        ArrowType::Int8 => {
            build!(Int8Builder::with_capacity(n), Value::Int64(x) => (*x).try_into().ok())
        }
        ArrowType::Int16 => {
            build!(Int16Builder::with_capacity(n), Value::Int64(x) => (*x).try_into().ok())
        }
        ArrowType::Int32 => {
            build!(Int32Builder::with_capacity(n), Value::Int64(x) => (*x).try_into().ok())
        }
        ArrowType::Int64 => build!(Int64Builder::with_capacity(n), Value::Int64(x) => Some(*x)),
        ArrowType::UInt8 => {
            build!(UInt8Builder::with_capacity(n), Value::UInt64(x) => (*x).try_into().ok())
        }
        ArrowType::UInt16 => {
            build!(UInt16Builder::with_capacity(n), Value::UInt64(x) => (*x).try_into().ok())
        }
        ArrowType::UInt32 => {
            build!(UInt32Builder::with_capacity(n), Value::UInt64(x) => (*x).try_into().ok())
        }
        ArrowType::UInt64 => build!(UInt64Builder::with_capacity(n), Value::UInt64(x) => Some(*x)),
        ArrowType::Float32 => {
            build!(Float32Builder::with_capacity(n), Value::Float32(x) => Some(*x))
        }
        ArrowType::Float64 => {
            build!(Float64Builder::with_capacity(n), Value::Float64(x) => Some(*x))
        }
        ArrowType::Utf8 => build!(StringBuilder::new(), Value::String(s) => Some(s)),
        ArrowType::Binary => build!(BinaryBuilder::new(), Value::Bytes(b) => Some(b)),
        ArrowType::Date32 => build!(Date32Builder::with_capacity(n), Value::Date32(d) => Some(*d)),
        ArrowType::Decimal128(precision, scale) => {
            let array = build!(
                Decimal128Builder::with_capacity(n).with_precision_and_scale(*precision, *scale)?,
                Value::Decimal128 { value, scale: s } => rescale(*value, *s, *scale)
            );
            array
                .as_primitive::<Decimal128Type>()
                .validate_decimal_precision(*precision)?;
            array
        }
        ArrowType::Timestamp(unit, tz) => {
            let unit = unit_of(*unit);
            // Event-time fields accept integers too (as the row path's timestamps do), and
            // a millisecond column takes the millisecond value of line 1.0.
            let ms = unit == TimeUnit::Millisecond;
            let tz = tz.clone();
            match unit {
                TimeUnit::Second => build!(
                    TimestampSecondBuilder::with_capacity(n).with_timezone_opt(tz),
                    Value::Timestamp(t, u) if *u == unit => Some(*t),
                    Value::Int64(t) => Some(*t)
                ),
                TimeUnit::Microsecond => build!(
                    TimestampMicrosecondBuilder::with_capacity(n).with_timezone_opt(tz),
                    Value::Timestamp(t, u) if *u == unit => Some(*t),
                    Value::Int64(t) => Some(*t)
                ),
                TimeUnit::Nanosecond => build!(
                    TimestampNanosecondBuilder::with_capacity(n).with_timezone_opt(tz),
                    Value::Timestamp(t, u) if *u == unit => Some(*t),
                    Value::Int64(t) => Some(*t)
                ),
                _ => build!(
                    TimestampMillisecondBuilder::with_capacity(n).with_timezone_opt(tz),
                    Value::Timestamp(t, u) if ms && *u == unit => Some(*t),
                    Value::TimestampMillis(t) | Value::Int64(t) => Some(*t)
                ),
            }
        }
        ArrowType::List(item) => {
            let mut offsets = Vec::with_capacity(n + 1);
            offsets.push(0_i32);
            let mut nulls = NullBufferBuilder::new(n);
            let mut elements: Vec<&Value> = Vec::new();
            for (row, v) in values.iter().enumerate() {
                match v {
                    Value::Null => nulls.append_null(),
                    Value::List(items) => {
                        elements.extend(items.iter());
                        nulls.append_non_null();
                    }
                    other => return Err(mismatch(row, other, "")),
                }
                offsets.push(offset(elements.len())?);
            }
            let child = array(&format!("{name}[]"), item.data_type(), &elements)?;
            Arc::new(ListArray::try_new(
                Arc::clone(item),
                OffsetBuffer::new(offsets.into()),
                child,
                nulls.finish(),
            )?)
        }
        ArrowType::Struct(fields) => {
            let (columns, nulls) = struct_columns(fields.len(), values, &mismatch)?;
            let children = fields
                .iter()
                .zip(&columns)
                .map(|(f, c)| array(&format!("{name}.{}", f.name()), f.data_type(), c))
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(StructArray::try_new(fields.clone(), children, nulls)?)
        }
        ArrowType::Map(entries, sorted) => {
            let ArrowType::Struct(kv) = entries.data_type() else {
                return Err(unsupported(name, data_type));
            };
            let (Some(key_field), Some(value_field)) = (kv.first(), kv.get(1)) else {
                return Err(unsupported(name, data_type));
            };
            let mut offsets = Vec::with_capacity(n + 1);
            offsets.push(0_i32);
            let mut nulls = NullBufferBuilder::new(n);
            let (mut keys, mut vals): (Vec<&Value>, Vec<&Value>) = (Vec::new(), Vec::new());
            for (row, v) in values.iter().enumerate() {
                match v {
                    Value::Null => nulls.append_null(),
                    Value::Map(pairs) => {
                        for (k, v) in pairs {
                            keys.push(k);
                            vals.push(v);
                        }
                        nulls.append_non_null();
                    }
                    other => return Err(mismatch(row, other, "")),
                }
                offsets.push(offset(keys.len())?);
            }
            let key_array = array(&format!("{name}.key"), key_field.data_type(), &keys)?;
            let value_array = array(&format!("{name}.value"), value_field.data_type(), &vals)?;
            let entries_array =
                StructArray::try_new(kv.clone(), vec![key_array, value_array], None)?;
            Arc::new(MapArray::try_new(
                Arc::clone(entries),
                OffsetBuffer::new(offsets.into()),
                entries_array,
                nulls.finish(),
                *sorted,
            )?)
        }
        other => return Err(unsupported(name, other)),
    })
}

/// The values of each field of struct values, and the struct's nulls.
fn struct_columns<'v>(
    width: usize,
    values: &[&'v Value],
    mismatch: &dyn Fn(usize, &Value, &'static str) -> ChunkError,
) -> Result<(Vec<Vec<&'v Value>>, Option<NullBuffer>), ChunkError> {
    let mut nulls = NullBufferBuilder::new(values.len());
    let mut columns: Vec<Vec<&Value>> = vec![Vec::with_capacity(values.len()); width];
    for (row, v) in values.iter().enumerate() {
        match v {
            Value::Null => {
                nulls.append_null();
                for c in &mut columns {
                    c.push(&NULL);
                }
            }
            Value::Struct(fields) if fields.len() <= width => {
                nulls.append_non_null();
                for (j, c) in columns.iter_mut().enumerate() {
                    c.push(fields.get(j).unwrap_or(&NULL));
                }
            }
            other => return Err(mismatch(row, other, "")),
        }
    }
    Ok((columns, nulls.finish()))
}

/// A list offset: Arrow's `List` counts elements with `i32`.
fn offset(len: usize) -> Result<i32, ChunkError> {
    i32::try_from(len).map_err(|_| {
        ChunkError::Arrow(ArrowError::InvalidArgumentError(format!(
            "{len} list or map elements in one chunk: more than a List column holds ({})",
            i32::MAX
        )))
    })
}

/// `value` at scale `from` as a value at scale `to`, when exact and within `i128`.
fn rescale(value: i128, from: i8, to: i8) -> Option<i128> {
    if from == to {
        return Some(value);
    }
    let up = u32::try_from(i32::from(to) - i32::from(from)).ok()?;
    value.checked_mul(10_i128.checked_pow(up)?)
}

/// A column, downcast once for reading rows (nested columns hold their children).
enum Column<'a> {
    Boolean(&'a BooleanArray),
    Int8(&'a PrimitiveArray<Int8Type>),
    Int16(&'a PrimitiveArray<Int16Type>),
    Int32(&'a PrimitiveArray<Int32Type>),
    Int64(&'a PrimitiveArray<Int64Type>),
    UInt8(&'a PrimitiveArray<UInt8Type>),
    UInt16(&'a PrimitiveArray<UInt16Type>),
    UInt32(&'a PrimitiveArray<UInt32Type>),
    UInt64(&'a PrimitiveArray<UInt64Type>),
    Float32(&'a PrimitiveArray<Float32Type>),
    Float64(&'a PrimitiveArray<Float64Type>),
    Decimal(&'a PrimitiveArray<Decimal128Type>, i8),
    String(&'a StringArray),
    Bytes(&'a BinaryArray),
    Date(&'a PrimitiveArray<Date32Type>),
    /// Milliseconds without a zone: line 1.0's `TimestampMillis`.
    TimestampMillis(&'a PrimitiveArray<TimestampMillisecondType>),
    Seconds(&'a PrimitiveArray<TimestampSecondType>),
    Millis(&'a PrimitiveArray<TimestampMillisecondType>),
    Micros(&'a PrimitiveArray<TimestampMicrosecondType>),
    Nanos(&'a PrimitiveArray<TimestampNanosecondType>),
    List(&'a ListArray, Box<Column<'a>>),
    Struct(&'a StructArray, Vec<Column<'a>>),
    Map(&'a MapArray, Box<Column<'a>>, Box<Column<'a>>),
}

fn primitive<T: ArrowPrimitiveType>(array: &ArrayRef) -> Option<&PrimitiveArray<T>> {
    array.as_primitive_opt::<T>()
}

impl<'a> Column<'a> {
    fn of(name: &str, array: &'a ArrayRef) -> Result<Self, ChunkError> {
        let column = match array.data_type() {
            ArrowType::Boolean => array.as_boolean_opt().map(Column::Boolean),
            ArrowType::Int8 => primitive(array).map(Column::Int8),
            ArrowType::Int16 => primitive(array).map(Column::Int16),
            ArrowType::Int32 => primitive(array).map(Column::Int32),
            ArrowType::Int64 => primitive(array).map(Column::Int64),
            ArrowType::UInt8 => primitive(array).map(Column::UInt8),
            ArrowType::UInt16 => primitive(array).map(Column::UInt16),
            ArrowType::UInt32 => primitive(array).map(Column::UInt32),
            ArrowType::UInt64 => primitive(array).map(Column::UInt64),
            ArrowType::Float32 => primitive(array).map(Column::Float32),
            ArrowType::Float64 => primitive(array).map(Column::Float64),
            ArrowType::Decimal128(_, scale) => primitive(array).map(|a| Column::Decimal(a, *scale)),
            ArrowType::Utf8 => array.as_string_opt().map(Column::String),
            ArrowType::Binary => array.as_binary_opt().map(Column::Bytes),
            ArrowType::Date32 => primitive(array).map(Column::Date),
            ArrowType::Timestamp(ArrowUnit::Millisecond, None) => {
                primitive(array).map(Column::TimestampMillis)
            }
            ArrowType::Timestamp(ArrowUnit::Second, _) => primitive(array).map(Column::Seconds),
            ArrowType::Timestamp(ArrowUnit::Millisecond, _) => primitive(array).map(Column::Millis),
            ArrowType::Timestamp(ArrowUnit::Microsecond, _) => primitive(array).map(Column::Micros),
            ArrowType::Timestamp(ArrowUnit::Nanosecond, _) => primitive(array).map(Column::Nanos),
            ArrowType::List(_) => match array.as_list_opt::<i32>() {
                Some(list) => Some(Column::List(
                    list,
                    Box::new(Column::of(&format!("{name}[]"), list.values())?),
                )),
                None => None,
            },
            ArrowType::Struct(fields) => match array.as_struct_opt() {
                Some(s) => Some(Column::Struct(
                    s,
                    fields
                        .iter()
                        .zip(s.columns())
                        .map(|(f, c)| Column::of(&format!("{name}.{}", f.name()), c))
                        .collect::<Result<_, _>>()?,
                )),
                None => None,
            },
            ArrowType::Map(..) => match array.as_map_opt() {
                Some(map) => Some(Column::Map(
                    map,
                    Box::new(Column::of(&format!("{name}.key"), map.keys())?),
                    Box::new(Column::of(&format!("{name}.value"), map.values())?),
                )),
                None => None,
            },
            _ => None,
        };
        column.ok_or_else(|| unsupported(name, array.data_type()))
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
            Column::Int8(a) => get!(a, |x| Value::Int64(i64::from(x))),
            Column::Int16(a) => get!(a, |x| Value::Int64(i64::from(x))),
            Column::Int32(a) => get!(a, |x| Value::Int64(i64::from(x))),
            Column::Int64(a) => get!(a, Value::Int64),
            Column::UInt8(a) => get!(a, |x| Value::UInt64(u64::from(x))),
            Column::UInt16(a) => get!(a, |x| Value::UInt64(u64::from(x))),
            Column::UInt32(a) => get!(a, |x| Value::UInt64(u64::from(x))),
            Column::UInt64(a) => get!(a, Value::UInt64),
            Column::Float32(a) => get!(a, Value::Float32),
            Column::Float64(a) => get!(a, Value::Float64),
            Column::Decimal(a, scale) => {
                get!(a, |value| Value::Decimal128 {
                    value,
                    scale: *scale
                })
            }
            Column::String(a) => get!(a, |s: &str| Value::String(s.to_owned())),
            Column::Bytes(a) => get!(a, |b: &[u8]| Value::Bytes(b.to_vec())),
            Column::Date(a) => get!(a, Value::Date32),
            Column::TimestampMillis(a) => get!(a, Value::TimestampMillis),
            Column::Seconds(a) => get!(a, |t| Value::Timestamp(t, TimeUnit::Second)),
            Column::Millis(a) => get!(a, |t| Value::Timestamp(t, TimeUnit::Millisecond)),
            Column::Micros(a) => get!(a, |t| Value::Timestamp(t, TimeUnit::Microsecond)),
            Column::Nanos(a) => get!(a, |t| Value::Timestamp(t, TimeUnit::Nanosecond)),
            Column::List(a, items) => {
                if a.is_null(i) {
                    return Value::Null;
                }
                Value::List(
                    range(a.value_offsets(), i)
                        .map(|j| items.value(j))
                        .collect(),
                )
            }
            Column::Struct(a, fields) => {
                if a.is_null(i) {
                    return Value::Null;
                }
                Value::Struct(fields.iter().map(|f| f.value(i)).collect())
            }
            Column::Map(a, keys, values) => {
                if a.is_null(i) {
                    return Value::Null;
                }
                Value::Map(
                    range(a.value_offsets(), i)
                        .map(|j| (keys.value(j), values.value(j)))
                        .collect(),
                )
            }
        }
    }
}

/// The element positions of list `i` (empty past the offsets' end).
fn range(offsets: &[i32], i: usize) -> std::ops::Range<usize> {
    let at = |k: usize| {
        offsets
            .get(k)
            .and_then(|o| usize::try_from(*o).ok())
            .unwrap_or(0)
    };
    let start = at(i);
    start..at(i + 1).max(start)
}
