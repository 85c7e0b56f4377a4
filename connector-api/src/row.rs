//! The dynamic row type of declarative pipelines: a [`Schema`] of typed fields, rows of
//! [`Value`]s, and a [`RowKind`] for changelogs (CDC formats such as debezium-json).
//!
//! ```
//! use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, Value};
//! let schema = Schema::new(vec![
//!     Field::new("id", DataType::Int64, false),
//!     Field::new("name", DataType::String, true),
//! ]);
//! let row = Row::insert(vec![Value::Int64(7), Value::String("Ada".into())]);
//! assert_eq!(schema.index_of("name"), Some(1));
//! assert_eq!(row.get(1), Some(&Value::String("Ada".into())));
//! assert_eq!(row.kind, RowKind::Insert);
//! ```

use std::fmt;
use std::sync::Arc;

/// The type of a field: Arrow's type set (API line 1.1 added every variant after
/// [`TimestampMillis`](DataType::TimestampMillis); line 1.0 had the first six).
///
/// Nested types ([`List`](DataType::List), [`Struct`](DataType::Struct),
/// [`Map`](DataType::Map)) make the type a tree, so it is `Clone` but not `Copy` (it was
/// `Copy` on line 1.0: `.clone()` works on both lines). [`Display`](fmt::Display) writes the
/// pipeline-file syntax (`int32`, `decimal(10, 2)`, `timestamp(us, "UTC")`, `list<int64>`,
/// `struct<a: int64, b: string>`, `map<string, float64>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataType {
    /// true / false.
    Boolean,
    /// A 64-bit signed integer.
    Int64,
    /// A 64-bit float.
    Float64,
    /// UTF-8 text.
    String,
    /// Raw bytes (Arrow's `Binary`).
    Bytes,
    /// Milliseconds since the Unix epoch, without a time zone: the name of
    /// `Timestamp(Millisecond, None)`, which [`DataType::timestamp`] normalizes to this.
    TimestampMillis,
    /// An 8-bit signed integer.
    Int8,
    /// A 16-bit signed integer.
    Int16,
    /// A 32-bit signed integer.
    Int32,
    /// An 8-bit unsigned integer.
    UInt8,
    /// A 16-bit unsigned integer.
    UInt16,
    /// A 32-bit unsigned integer.
    UInt32,
    /// A 64-bit unsigned integer.
    UInt64,
    /// A 32-bit float.
    Float32,
    /// A decimal: `value / 10^scale`, at most `precision` digits (1 to 38).
    Decimal128 {
        /// The number of digits, 1 to 38.
        precision: u8,
        /// The digits after the point (negative: zeros before it).
        scale: i8,
    },
    /// Days since the Unix epoch.
    Date32,
    /// A timestamp in `unit`s since the Unix epoch, with an optional time zone (an IANA name
    /// or an offset like `+02:00`). Milliseconds without a zone are
    /// [`TimestampMillis`](DataType::TimestampMillis): build timestamps with
    /// [`DataType::timestamp`].
    Timestamp {
        /// The unit.
        unit: TimeUnit,
        /// The time zone, `None` for a zone-less (local) time.
        tz: Option<Arc<str>>,
    },
    /// A list of values of one type (elements may be null).
    List(Box<DataType>),
    /// A record of named fields.
    Struct(Vec<Field>),
    /// Entries of a key (never null) and a value (may be null).
    Map(Box<DataType>, Box<DataType>),
}

/// The unit of a [`DataType::Timestamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeUnit {
    /// Seconds.
    Second,
    /// Milliseconds.
    Millisecond,
    /// Microseconds.
    Microsecond,
    /// Nanoseconds.
    Nanosecond,
}

impl TimeUnit {
    /// The short name of the pipeline-file syntax: `s`, `ms`, `us`, `ns`.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Second => "s",
            TimeUnit::Millisecond => "ms",
            TimeUnit::Microsecond => "us",
            TimeUnit::Nanosecond => "ns",
        }
    }

    /// `value` of this unit in milliseconds, rounded down (event time is in milliseconds);
    /// saturating for seconds past the range of milliseconds.
    pub fn to_millis(self, value: i64) -> i64 {
        match self {
            TimeUnit::Second => value.saturating_mul(1_000),
            TimeUnit::Millisecond => value,
            TimeUnit::Microsecond => value.div_euclid(1_000),
            TimeUnit::Nanosecond => value.div_euclid(1_000_000),
        }
    }

    /// How many of this unit make a second.
    pub fn per_second(self) -> i64 {
        match self {
            TimeUnit::Second => 1,
            TimeUnit::Millisecond => 1_000,
            TimeUnit::Microsecond => 1_000_000,
            TimeUnit::Nanosecond => 1_000_000_000,
        }
    }
}

impl DataType {
    /// Whether a field of this type can hold event time: a timestamp of any unit and zone, or
    /// an integer of epoch milliseconds.
    pub fn holds_event_time(&self) -> bool {
        matches!(
            self,
            DataType::TimestampMillis | DataType::Int64 | DataType::Timestamp { .. }
        )
    }

    /// A timestamp type: [`TimestampMillis`](DataType::TimestampMillis) for milliseconds
    /// without a zone, [`Timestamp`](DataType::Timestamp) otherwise, so that equal types
    /// compare equal.
    pub fn timestamp(unit: TimeUnit, tz: Option<Arc<str>>) -> Self {
        match (unit, tz) {
            (TimeUnit::Millisecond, None) => DataType::TimestampMillis,
            (unit, tz) => DataType::Timestamp { unit, tz },
        }
    }

    /// Whether the type is a list, struct or map.
    pub fn is_nested(&self) -> bool {
        matches!(
            self,
            DataType::List(_) | DataType::Struct(_) | DataType::Map(..)
        )
    }

    /// Whether the type is an integer, float or decimal.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
                | DataType::Float32
                | DataType::Float64
                | DataType::Decimal128 { .. }
        )
    }

    /// The inclusive range of an integer type, `None` for other types.
    pub fn integer_range(&self) -> Option<(i128, i128)> {
        Some(match self {
            DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
            DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
            DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
            DataType::Int64 => (i64::MIN.into(), i64::MAX.into()),
            DataType::UInt8 => (0, u8::MAX.into()),
            DataType::UInt16 => (0, u16::MAX.into()),
            DataType::UInt32 => (0, u32::MAX.into()),
            DataType::UInt64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }

    /// How deeply the type nests (0 for a scalar, 1 for `list<int64>`...).
    pub fn depth(&self) -> usize {
        match self {
            DataType::List(t) => 1 + t.depth(),
            DataType::Map(k, v) => 1 + k.depth().max(v.depth()),
            DataType::Struct(fields) => {
                1 + fields
                    .iter()
                    .map(|f| f.data_type.depth())
                    .max()
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            DataType::Boolean => "boolean",
            DataType::Int64 => "int64",
            DataType::Float64 => "float64",
            DataType::String => "string",
            DataType::Bytes => "bytes",
            DataType::TimestampMillis => "timestamp",
            DataType::Int8 => "int8",
            DataType::Int16 => "int16",
            DataType::Int32 => "int32",
            DataType::UInt8 => "uint8",
            DataType::UInt16 => "uint16",
            DataType::UInt32 => "uint32",
            DataType::UInt64 => "uint64",
            DataType::Float32 => "float32",
            DataType::Date32 => "date",
            DataType::Decimal128 { precision, scale } => {
                return write!(f, "decimal({precision}, {scale})")
            }
            DataType::Timestamp { unit, tz: None } => {
                return write!(f, "timestamp({})", unit.name())
            }
            DataType::Timestamp { unit, tz: Some(tz) } => {
                return write!(f, "timestamp({}, {tz:?})", unit.name())
            }
            DataType::List(item) => return write!(f, "list<{item}>"),
            DataType::Map(key, value) => return write!(f, "map<{key}, {value}>"),
            DataType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", field.name, field.data_type)?;
                    if !field.nullable {
                        f.write_str(" not null")?;
                    }
                }
                return f.write_str(">");
            }
        };
        f.write_str(name)
    }
}

/// A named, typed field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
    /// Whether it may be null.
    pub nullable: bool,
}

impl Field {
    /// A field.
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Self {
        Field {
            name: name.into(),
            data_type,
            nullable,
        }
    }
}

/// The fields of a row, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Schema {
    /// The fields.
    pub fields: Vec<Field>,
}

impl Schema {
    /// A schema of these fields.
    pub fn new(fields: Vec<Field>) -> Self {
        Schema { fields }
    }

    /// The position of a field by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// One value of a row.
///
/// Which value each [`DataType`] holds: `Boolean`, `Int64`, `Float64`, `String`, `Bytes`
/// and `TimestampMillis` their namesakes; `Int8`, `Int16`, `Int32` an [`Int64`](Value::Int64)
/// within their range; `UInt8` to `UInt64` a [`UInt64`](Value::UInt64) within theirs;
/// `Float32` a [`Float32`](Value::Float32); `Decimal128` a [`Decimal128`](Value::Decimal128)
/// of the type's scale; `Date32` a [`Date32`](Value::Date32); `Timestamp` a
/// [`Timestamp`](Value::Timestamp) of the type's unit (the zone is the type's); `List`,
/// `Struct` and `Map` a [`List`](Value::List), [`Struct`](Value::Struct) and
/// [`Map`](Value::Map).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// No value.
    Null,
    /// A boolean.
    Boolean(bool),
    /// An integer (of any signed integer type).
    Int64(i64),
    /// A float.
    Float64(f64),
    /// Text.
    String(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A timestamp in epoch milliseconds.
    TimestampMillis(i64),
    /// An unsigned integer (of any unsigned integer type).
    UInt64(u64),
    /// A 32-bit float.
    Float32(f32),
    /// A decimal: `value / 10^scale`.
    Decimal128 {
        /// The unscaled value.
        value: i128,
        /// The digits after the point.
        scale: i8,
    },
    /// A date: days since the Unix epoch.
    Date32(i32),
    /// A timestamp: this many `unit`s since the Unix epoch.
    Timestamp(i64, TimeUnit),
    /// The elements of a list.
    List(Vec<Value>),
    /// The fields of a struct, in the struct type's order (a missing trailing field is null).
    Struct(Vec<Value>),
    /// The entries of a map, in order.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// The value as an event time in epoch milliseconds, when it is one: a timestamp of any
    /// unit (rounded down to the millisecond; a zone does not change the instant) or an integer
    /// of epoch milliseconds.
    pub fn event_time_millis(&self) -> Option<i64> {
        match self {
            Value::TimestampMillis(t) | Value::Int64(t) => Some(*t),
            Value::Timestamp(t, unit) => Some(unit.to_millis(*t)),
            _ => None,
        }
    }

    /// The name of the value's kind, for messages (`int64`, `list`...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "boolean",
            Value::Int64(_) => "int64",
            Value::Float64(_) => "float64",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::TimestampMillis(_) | Value::Timestamp(..) => "timestamp",
            Value::UInt64(_) => "uint64",
            Value::Float32(_) => "float32",
            Value::Decimal128 { .. } => "decimal",
            Value::Date32(_) => "date",
            Value::List(_) => "list",
            Value::Struct(_) => "struct",
            Value::Map(_) => "map",
        }
    }
}

/// What a row means in a changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RowKind {
    /// A new row (and the only kind in append-only streams).
    #[default]
    Insert,
    /// The old image of an updated row.
    UpdateBefore,
    /// The new image of an updated row.
    UpdateAfter,
    /// A deleted row.
    Delete,
}

/// A row: values in schema order, with its changelog kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    /// Its changelog kind.
    pub kind: RowKind,
    /// Its values, in schema order.
    pub values: Vec<Value>,
}

impl Row {
    /// An insert row.
    pub fn insert(values: Vec<Value>) -> Self {
        Row {
            kind: RowKind::Insert,
            values,
        }
    }

    /// A row of a given kind.
    pub fn with_kind(kind: RowKind, values: Vec<Value>) -> Self {
        Row { kind, values }
    }

    /// The value at a position.
    pub fn get(&self, index: usize) -> Option<&Value> {
        self.values.get(index)
    }
}

/// A decimal's text: `value / 10^scale` with exactly `scale` digits after the point
/// (`decimal_text(-1234, 2)` is `-12.34`; a negative scale appends zeros).
pub fn decimal_text(value: i128, scale: i8) -> String {
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    let Ok(scale) = usize::try_from(scale) else {
        if value == 0 {
            return "0".to_owned();
        }
        let zeros = "0".repeat(usize::from(scale.unsigned_abs()));
        return format!("{sign}{digits}{zeros}");
    };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// `text` (`-12.5`, `+3`, `.25`; surrounding spaces ignored) as a decimal's unscaled value at
/// `scale` (`parse_decimal("-12.5", 2)` is `-1250`): the inverse of [`decimal_text`] for
/// scales from 0 up. `None` when it is no decimal, has more digits after the point than
/// `scale`, or does not fit 128 bits.
pub fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let scale = u32::try_from(scale).ok()?;
    let frac_len = u32::try_from(frac.len()).ok()?;
    if frac_len > scale {
        return None;
    }
    let int: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let value = int
        .checked_mul(10_i128.checked_pow(scale)?)?
        .checked_add(frac.checked_mul(10_i128.checked_pow(scale - frac_len)?)?)?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_reads_back_with_parse_decimal() {
        for (value, scale) in [
            (-1234_i128, 2_i8),
            (5, 3),
            (0, 0),
            (i128::from(i64::MAX), 4),
        ] {
            assert_eq!(
                super::parse_decimal(&super::decimal_text(value, scale), scale),
                Some(value)
            );
        }
        assert_eq!(super::parse_decimal(" +.25 ", 2), Some(25));
        assert_eq!(super::parse_decimal("1.234", 2), None);
        assert_eq!(super::parse_decimal("1e5", 2), None);
        assert_eq!(super::parse_decimal("-", 2), None);
        assert_eq!(super::parse_decimal("1", -1), None);
    }

    #[test]
    fn decimal_text_places_the_point() {
        assert_eq!(decimal_text(-1234, 2), "-12.34");
        assert_eq!(decimal_text(5, 3), "0.005");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(decimal_text(12, 0), "12");
        assert_eq!(decimal_text(12, -2), "1200");
        assert_eq!(decimal_text(i128::MIN, 0), i128::MIN.to_string());
    }

    #[test]
    fn types_display_in_pipeline_syntax() {
        let t = DataType::Struct(vec![
            Field::new("a", DataType::List(Box::new(DataType::Int32)), true),
            Field::new(
                "m",
                DataType::Map(Box::new(DataType::String), Box::new(DataType::Float64)),
                false,
            ),
            Field::new(
                "t",
                DataType::timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new(
                "d",
                DataType::Decimal128 {
                    precision: 10,
                    scale: 2,
                },
                true,
            ),
        ]);
        assert_eq!(
            t.to_string(),
            "struct<a: list<int32>, m: map<string, float64> not null, t: timestamp(us, \"UTC\"), \
             d: decimal(10, 2)>"
        );
        assert_eq!(t.depth(), 2);
        assert_eq!(
            DataType::timestamp(TimeUnit::Millisecond, None),
            DataType::TimestampMillis
        );
    }
}
