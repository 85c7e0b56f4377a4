//! The types of API line 1.1 in the row formats: JSON holds every type, text cells (csv)
//! every scalar type.
//!
//! | type | JSON written | JSON read | text (csv) |
//! |---|---|---|---|
//! | `int8`…`int32`, `uint8`…`uint64` | number | number (or its text, canal-json) | digits |
//! | `float32` | number (shortest float32 text, `0.1` not `0.10000000149011612`) | number | number |
//! | `decimal(P, S)` | string `"-12.34"`: exact (a JSON number would pass through binary floats in most readers) | string or number, at most `S` digits after the point | `-12.34` |
//! | `date` | string `"2024-01-31"` | that, or a day number | `2024-01-31` |
//! | `timestamp(UNIT[, ZONE])` | RFC 3339 in UTC with the unit's digits (`timestamp-format = "epoch-millis"`: the count of units since the epoch) | RFC 3339 text or a count of units | as JSON |
//! | `list<T>` | array | array | refused |
//! | `struct<…>` | object of the fields | object (missing fields null) | refused |
//! | `map<K, V>` | object, keys as their text | object | refused |
//!
//! The zone of a zoned timestamp type is what Arrow shows; its values are instants, written
//! in UTC. JSON objects are unordered: a map's entries are written in order but read back by
//! key (and a repeated key keeps its last value), and a struct's fields are written by name.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, SecondsFormat};
use serde_json::{Map, Number, Value as Json};
use weir_connector_api::row::{decimal_text, parse_decimal, DataType, Field, TimeUnit, Value};

use crate::convert::{from_json, to_json, TimestampFormat};

/// Whether text cells (csv) can hold the type: every type but list, struct and map.
pub fn text_holds(data_type: &DataType) -> bool {
    !data_type.is_nested()
}

/// The first field of `fields` a text format (csv) cannot hold, with a message saying so.
pub fn refuse_nested(format: &str, fields: &[Field]) -> Option<String> {
    let field = fields.iter().find(|f| !text_holds(&f.data_type))?;
    Some(format!(
        "field `{}` is {}, which the {format} format cannot hold (its cells are scalars): use \
         the json format, or Parquet or ORC files",
        field.name, field.data_type
    ))
}

/// A date as `YYYY-MM-DD` (the day number when out of chrono's range).
pub fn date_text(days: i32) -> String {
    NaiveDate::default()
        .checked_add_signed(chrono::Duration::days(days.into()))
        .map_or_else(|| days.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

fn parse_date(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(days) = text.parse::<i32>() {
        return Some(days);
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    i32::try_from(date.signed_duration_since(NaiveDate::default()).num_days()).ok()
}

fn timestamp_text(value: i64, unit: TimeUnit) -> String {
    let per = unit.per_second();
    let (secs, frac) = (value.div_euclid(per), value.rem_euclid(per));
    let nanos = u32::try_from(frac * (1_000_000_000 / per)).unwrap_or(0);
    let format = match unit {
        TimeUnit::Second => SecondsFormat::Secs,
        TimeUnit::Microsecond => SecondsFormat::Micros,
        TimeUnit::Nanosecond => SecondsFormat::Nanos,
        _ => SecondsFormat::Millis,
    };
    DateTime::from_timestamp(secs, nanos)
        .map_or_else(|| value.to_string(), |t| t.to_rfc3339_opts(format, true))
}

fn parse_timestamp(text: &str, unit: TimeUnit) -> Option<i64> {
    let text = text.trim();
    if let Ok(count) = text.parse::<i64>() {
        return Some(count);
    }
    let t = DateTime::parse_from_rfc3339(text).ok()?;
    match unit {
        TimeUnit::Second => Some(t.timestamp()),
        TimeUnit::Microsecond => Some(t.timestamp_micros()),
        TimeUnit::Nanosecond => t.timestamp_nanos_opt(),
        _ => Some(t.timestamp_millis()),
    }
}

/// A scalar of a line 1.1 type from text; `None` for the types of line 1.0 and nested ones,
/// `Some(Err(expected))` for text that is not one.
pub(crate) fn scalar_from_text(
    data_type: &DataType,
    text: &str,
) -> Option<Result<Value, &'static str>> {
    let t = text.trim();
    Some(match data_type {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            let (lo, hi) = data_type.integer_range().unwrap_or((0, 0));
            t.parse::<i64>()
                .ok()
                .filter(|v| (lo..=hi).contains(&i128::from(*v)))
                .map(Value::Int64)
                .ok_or("an integer within the type's range")
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            let (_, hi) = data_type.integer_range().unwrap_or((0, 0));
            t.parse::<u64>()
                .ok()
                .filter(|v| i128::from(*v) <= hi)
                .map(Value::UInt64)
                .ok_or("an unsigned integer within the type's range")
        }
        DataType::Float32 => t.parse::<f32>().map(Value::Float32).map_err(|_| "a number"),
        DataType::Decimal128 { scale, .. } => parse_decimal(t, *scale)
            .map(|value| Value::Decimal128 {
                value,
                scale: *scale,
            })
            .ok_or("a decimal number with at most the type's digits after the point"),
        DataType::Date32 => parse_date(t)
            .map(Value::Date32)
            .ok_or("a date like 2024-01-31 or a day number"),
        DataType::Timestamp { unit, .. } => parse_timestamp(t, *unit)
            .map(|v| Value::Timestamp(v, *unit))
            .ok_or("RFC 3339 text or a count of the type's units since the epoch"),
        _ => return None,
    })
}

/// A line 1.1 scalar as text; `None` for other values.
pub(crate) fn scalar_to_text(value: &Value, ts: TimestampFormat) -> Option<String> {
    Some(match value {
        Value::UInt64(v) => v.to_string(),
        Value::Float32(x) => x.to_string(),
        Value::Decimal128 { value, scale } => decimal_text(*value, *scale),
        Value::Date32(d) => date_text(*d),
        Value::Timestamp(v, unit) => match ts {
            TimestampFormat::EpochMillis => v.to_string(),
            TimestampFormat::Iso8601 => timestamp_text(*v, *unit),
        },
        _ => return None,
    })
}

/// What a JSON value of a line 1.1 scalar type looks like, for messages.
fn expected(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Float32 => "a number",
        DataType::Decimal128 { .. } => "a decimal as a string or number",
        DataType::Date32 => "a date like \"2024-01-31\" or a day number",
        DataType::Timestamp { .. } => "RFC 3339 text or a count of the type's units",
        _ => "an integer",
    }
}

/// A value of a line 1.1 type from JSON; `None` for the types of line 1.0.
pub(crate) fn from_json_typed(
    field: &Field,
    json: &Json,
    lenient: bool,
) -> Option<Result<Value, String>> {
    let wrong = |expected: &str| format!("field `{}`: expected {expected}, got {json}", field.name);
    let part = |name: String, data_type: &DataType, json: &Json| {
        from_json(&Field::new(name, data_type.clone(), true), json, lenient)
    };
    Some(match (&field.data_type, json) {
        (DataType::List(item), Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, j)| part(format!("{}[{i}]", field.name), item, j))
            .collect::<Result<_, _>>()
            .map(Value::List),
        (DataType::Struct(fields), Json::Object(object)) => fields
            .iter()
            .map(|f| {
                let name = format!("{}.{}", field.name, f.name);
                let inner = Field::new(name, f.data_type.clone(), f.nullable);
                from_json(&inner, object.get(&f.name).unwrap_or(&Json::Null), lenient)
            })
            .collect::<Result<_, _>>()
            .map(Value::Struct),
        (DataType::Map(key, value), Json::Object(object)) => object
            .iter()
            .map(|(k, v)| {
                let key = match scalar_from_text(key, k) {
                    Some(parsed) => parsed.map_err(&wrong)?,
                    None => crate::convert::from_text(
                        &Field::new(format!("{}.key", field.name), (**key).clone(), false),
                        k,
                    )?,
                };
                Ok((key, part(format!("{}.{k}", field.name), value, v)?))
            })
            .collect::<Result<_, String>>()
            .map(Value::Map),
        (DataType::List(_) | DataType::Struct(_) | DataType::Map(..), _) => {
            Err(wrong(match field.data_type {
                DataType::List(_) => "an array",
                _ => "an object",
            }))
        }
        (t, Json::String(s)) => {
            // Numbers as strings only where lenient (canal-json), or where text is the form.
            let text_form = lenient
                || matches!(
                    t,
                    DataType::Decimal128 { .. } | DataType::Date32 | DataType::Timestamp { .. }
                );
            match scalar_from_text(t, s) {
                None => return None,
                Some(result) if text_form => result.map_err(&wrong),
                Some(_) => Err(wrong(expected(t))),
            }
        }
        (t, Json::Number(n)) => match scalar_from_text(t, &n.to_string()) {
            Some(result) => result.map_err(&wrong),
            None => return None,
        },
        (t, _) => match scalar_from_text(t, "") {
            Some(_) => Err(wrong(expected(t))),
            None => return None,
        },
    })
}

/// A line 1.1 value as JSON; `None` for other values.
pub(crate) fn to_json_typed(
    field: &Field,
    value: &Value,
    ts: TimestampFormat,
) -> Option<Result<Json, String>> {
    let part = |name: String, data_type: &DataType, v: &Value| {
        to_json(&Field::new(name, data_type.clone(), true), v, ts)
    };
    Some(match (value, &field.data_type) {
        (Value::UInt64(v), _) => Ok(Json::Number((*v).into())),
        (Value::Float32(x), _) => x
            .to_string()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Json::Number)
            .ok_or_else(|| {
                format!(
                    "field `{}`: {x} cannot be written as JSON (not a finite number)",
                    field.name
                )
            }),
        (Value::Timestamp(v, _), _) if ts == TimestampFormat::EpochMillis => {
            Ok(Json::Number((*v).into()))
        }
        (Value::Decimal128 { .. } | Value::Date32(_) | Value::Timestamp(..), _) => {
            Ok(Json::String(scalar_to_text(value, ts).unwrap_or_default()))
        }
        (Value::List(items), t) => {
            let item = match t {
                DataType::List(item) => (**item).clone(),
                _ => DataType::String,
            };
            items
                .iter()
                .enumerate()
                .map(|(i, v)| part(format!("{}[{i}]", field.name), &item, v))
                .collect::<Result<_, _>>()
                .map(Json::Array)
        }
        (Value::Struct(values), DataType::Struct(fields)) => {
            let mut object = Map::new();
            for (f, v) in fields
                .iter()
                .zip(values.iter().chain(std::iter::repeat(&Value::Null)))
            {
                let json = match part(format!("{}.{}", field.name, f.name), &f.data_type, v) {
                    Ok(json) => json,
                    Err(e) => return Some(Err(e)),
                };
                object.insert(f.name.clone(), json);
            }
            Ok(Json::Object(object))
        }
        (Value::Map(entries), DataType::Map(_, value_type)) => {
            let mut object = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Value::String(s) => s.clone(),
                    Value::Int64(n) => n.to_string(),
                    Value::Boolean(b) => b.to_string(),
                    Value::Float64(x) => x.to_string(),
                    Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
                    other => match scalar_to_text(other, ts) {
                        Some(text) => text,
                        None => {
                            return Some(Err(format!(
                                "field `{}`: a map key must be a scalar",
                                field.name
                            )))
                        }
                    },
                };
                let json = match part(format!("{}.{key}", field.name), value_type, v) {
                    Ok(json) => json,
                    Err(e) => return Some(Err(e)),
                };
                object.insert(key, json);
            }
            Ok(Json::Object(object))
        }
        _ => return None,
    })
}
