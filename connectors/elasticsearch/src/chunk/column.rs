//! Columns of a chunk written as the row sink writes their values: [`Column`] downcasts an
//! Arrow array once per chunk and writes the JSON of one row's value, byte for byte what
//! [`write_value`](crate::row::write_value) writes for the [`Value`] the API's row mapping
//! (`weir_connector_api::columnar`) makes of that cell.
//!
//! **Why not `arrow-json`'s writer** (or `weir-formats`' `JsonChunkEncoder`): both write other
//! documents than the row sink for the same rows. `arrow-json` writes binary columns as hex
//! (the sink writes base64, Elasticsearch's `binary`), decimals as numbers (the sink writes
//! exact strings), timestamps without a zone without `Z`, refuses NaN (the sink writes `null`)
//! and leaves null fields out; `JsonChunkEncoder` writes the `json` format's lines (epoch or
//! ISO timestamps by `timestamp-format`, errors on NaN) and only its six scalar types. The
//! scalar writers here are the row sink's own functions, so the bytes cannot drift apart.
//!
//! [`Value`]: weir_connector_api::row::Value

use weir_connector_api::columnar::arrow::array::cast::AsArray;
use weir_connector_api::columnar::arrow::array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use weir_connector_api::columnar::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, ListArray, MapArray, PrimitiveArray, StringArray,
    StructArray,
};
use weir_connector_api::columnar::arrow::schema::{DataType as ArrowType, TimeUnit as ArrowUnit};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::{decimal_text, TimeUnit};

use crate::row::{write_bytes, write_f64, write_timestamp};
use crate::row_types::{write_date, write_f32, write_time};
use crate::sink::write_json_string;

fn refused(reason: String) -> ConnectorError {
    ConnectorError::malformed("a row for Elasticsearch", reason)
}

/// One column of a chunk, downcast for writing (nested columns hold their children).
pub(crate) enum Column<'a> {
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
    /// Milliseconds without a zone: the row type `TimestampMillis`.
    TimestampMillis(&'a PrimitiveArray<TimestampMillisecondType>),
    Seconds(&'a PrimitiveArray<TimestampSecondType>),
    /// Milliseconds with a zone: the row type `Timestamp`.
    Millis(&'a PrimitiveArray<TimestampMillisecondType>),
    Micros(&'a PrimitiveArray<TimestampMicrosecondType>),
    Nanos(&'a PrimitiveArray<TimestampNanosecondType>),
    List(&'a ListArray, Box<Column<'a>>),
    /// With each field's `"name":`.
    Struct(&'a StructArray, Vec<(Vec<u8>, Column<'a>)>),
    Map(&'a MapArray, Box<Column<'a>>, Box<Column<'a>>),
}

impl<'a> Column<'a> {
    /// The column of `array` (named `name` in errors); a type pipeline rows cannot hold is
    /// an error.
    pub(crate) fn of(name: &str, array: &'a ArrayRef) -> Result<Self> {
        let column = match array.data_type() {
            ArrowType::Boolean => array.as_boolean_opt().map(Column::Boolean),
            ArrowType::Int8 => array.as_primitive_opt().map(Column::Int8),
            ArrowType::Int16 => array.as_primitive_opt().map(Column::Int16),
            ArrowType::Int32 => array.as_primitive_opt().map(Column::Int32),
            ArrowType::Int64 => array.as_primitive_opt().map(Column::Int64),
            ArrowType::UInt8 => array.as_primitive_opt().map(Column::UInt8),
            ArrowType::UInt16 => array.as_primitive_opt().map(Column::UInt16),
            ArrowType::UInt32 => array.as_primitive_opt().map(Column::UInt32),
            ArrowType::UInt64 => array.as_primitive_opt().map(Column::UInt64),
            ArrowType::Float32 => array.as_primitive_opt().map(Column::Float32),
            ArrowType::Float64 => array.as_primitive_opt().map(Column::Float64),
            ArrowType::Decimal128(_, scale) => {
                array.as_primitive_opt().map(|a| Column::Decimal(a, *scale))
            }
            ArrowType::Utf8 => array.as_string_opt().map(Column::String),
            ArrowType::Binary => array.as_binary_opt().map(Column::Bytes),
            ArrowType::Date32 => array.as_primitive_opt().map(Column::Date),
            ArrowType::Timestamp(ArrowUnit::Millisecond, None) => {
                array.as_primitive_opt().map(Column::TimestampMillis)
            }
            ArrowType::Timestamp(ArrowUnit::Second, _) => {
                array.as_primitive_opt().map(Column::Seconds)
            }
            ArrowType::Timestamp(ArrowUnit::Millisecond, _) => {
                array.as_primitive_opt().map(Column::Millis)
            }
            ArrowType::Timestamp(ArrowUnit::Microsecond, _) => {
                array.as_primitive_opt().map(Column::Micros)
            }
            ArrowType::Timestamp(ArrowUnit::Nanosecond, _) => {
                array.as_primitive_opt().map(Column::Nanos)
            }
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
                        .map(|(f, c)| {
                            let mut key = Vec::with_capacity(f.name().len() + 3);
                            write_json_string(&mut key, f.name());
                            key.push(b':');
                            Ok((key, Column::of(&format!("{name}.{}", f.name()), c)?))
                        })
                        .collect::<Result<_>>()?,
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
        column.ok_or_else(|| {
            refused(format!(
                "column `{name}` is {}, which has no JSON form here (the sink writes the types \
                 of pipeline schemas)",
                array.data_type()
            ))
        })
    }

    /// The array.
    pub(crate) fn array(&self) -> &dyn Array {
        match self {
            Column::Boolean(a) => *a,
            Column::Int8(a) => *a,
            Column::Int16(a) => *a,
            Column::Int32(a) => *a,
            Column::Int64(a) => *a,
            Column::UInt8(a) => *a,
            Column::UInt16(a) => *a,
            Column::UInt32(a) => *a,
            Column::UInt64(a) => *a,
            Column::Float32(a) => *a,
            Column::Float64(a) => *a,
            Column::Decimal(a, _) => *a,
            Column::String(a) => *a,
            Column::Bytes(a) => *a,
            Column::Date(a) => *a,
            Column::TimestampMillis(a) | Column::Millis(a) => *a,
            Column::Seconds(a) => *a,
            Column::Micros(a) => *a,
            Column::Nanos(a) => *a,
            Column::List(a, _) => *a,
            Column::Struct(a, _) => *a,
            Column::Map(a, _, _) => *a,
        }
    }

    /// Whether row `i` is null.
    #[inline]
    pub(crate) fn is_null(&self, i: usize) -> bool {
        self.array().is_null(i)
    }

    /// The value of row `i` as a signed integer, for the integer columns (the row type
    /// `int64` holds all of them) and millisecond timestamps without a zone.
    pub(crate) fn int(&self, i: usize) -> Option<i64> {
        Some(match self {
            Column::Int8(a) => a.value(i).into(),
            Column::Int16(a) => a.value(i).into(),
            Column::Int32(a) => a.value(i).into(),
            Column::Int64(a) => a.value(i),
            Column::TimestampMillis(a) => a.value(i),
            _ => return None,
        })
    }

    /// The value of row `i` as an unsigned integer, for the unsigned integer columns.
    fn uint(&self, i: usize) -> Option<u64> {
        Some(match self {
            Column::UInt8(a) => a.value(i).into(),
            Column::UInt16(a) => a.value(i).into(),
            Column::UInt32(a) => a.value(i).into(),
            Column::UInt64(a) => a.value(i),
            _ => return None,
        })
    }

    /// Writes the JSON of row `i`'s value.
    pub(crate) fn write(&self, i: usize, out: &mut Vec<u8>) -> Result<()> {
        if self.is_null(i) {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        let int = |out: &mut Vec<u8>, v: i64| {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        };
        match self {
            Column::Boolean(a) => {
                out.extend_from_slice(if a.value(i) { b"true" } else { b"false" });
            }
            Column::Int8(_) | Column::Int16(_) | Column::Int32(_) | Column::Int64(_) => {
                int(out, self.int(i).unwrap_or_default());
            }
            Column::UInt8(_) | Column::UInt16(_) | Column::UInt32(_) | Column::UInt64(_) => {
                let v = self.uint(i).unwrap_or_default();
                out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            }
            Column::Float32(a) => write_f32(out, a.value(i)),
            Column::Float64(a) => write_f64(out, a.value(i)),
            Column::Decimal(a, scale) => write_json_string(out, &decimal_text(a.value(i), *scale)),
            Column::String(a) => write_json_string(out, a.value(i)),
            Column::Bytes(a) => write_bytes(out, a.value(i)),
            Column::Date(a) => write_date(out, a.value(i))?,
            Column::TimestampMillis(a) => write_timestamp(out, a.value(i))?,
            Column::Seconds(a) => write_time(out, a.value(i), TimeUnit::Second)?,
            Column::Millis(a) => write_time(out, a.value(i), TimeUnit::Millisecond)?,
            Column::Micros(a) => write_time(out, a.value(i), TimeUnit::Microsecond)?,
            Column::Nanos(a) => write_time(out, a.value(i), TimeUnit::Nanosecond)?,
            Column::List(a, items) => {
                out.push(b'[');
                for (n, j) in range(a.value_offsets(), i).enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    items.write(j, out)?;
                }
                out.push(b']');
            }
            Column::Struct(_, fields) => {
                out.push(b'{');
                for (n, (key, field)) in fields.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(key);
                    field.write(i, out)?;
                }
                out.push(b'}');
            }
            Column::Map(a, keys, values) => {
                out.push(b'{');
                for (n, j) in range(a.value_offsets(), i).enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    keys.write_key(j, out)?;
                    out.push(b':');
                    values.write(j, out)?;
                }
                out.push(b'}');
            }
        }
        Ok(())
    }

    /// Writes row `i`'s value as a document key: the text of a string, integer or boolean.
    fn write_key(&self, i: usize, out: &mut Vec<u8>) -> Result<()> {
        if !self.is_null(i) {
            match self {
                Column::String(a) => {
                    write_json_string(out, a.value(i));
                    return Ok(());
                }
                Column::Boolean(a) => {
                    write_json_string(out, if a.value(i) { "true" } else { "false" });
                    return Ok(());
                }
                Column::UInt8(_) | Column::UInt16(_) | Column::UInt32(_) | Column::UInt64(_) => {
                    let v = self.uint(i).unwrap_or_default();
                    write_json_string(out, itoa::Buffer::new().format(v));
                    return Ok(());
                }
                // Not the row type `TimestampMillis`, which the row sink refuses as a key.
                Column::Int8(_) | Column::Int16(_) | Column::Int32(_) | Column::Int64(_) => {
                    let v = self.int(i).unwrap_or_default();
                    write_json_string(out, itoa::Buffer::new().format(v));
                    return Ok(());
                }
                _ => {}
            }
        }
        Err(refused(format!(
            "a map key of type {}{}: document keys are text, so map keys must be strings, \
             integers or booleans",
            self.array().data_type(),
            if self.is_null(i) { " (null)" } else { "" },
        )))
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
    at(i)..at(i + 1).max(at(i))
}
