//! Documents of the types of API line 1.1: unsigned integers and float32 as numbers,
//! decimals as exact strings (`"-12.34"`, which Elasticsearch's numeric and `scaled_float`
//! fields parse), dates as `"2024-01-31"`, timestamps as RFC 3339 in UTC with their unit's
//! digits (a `date_nanos` field keeps nanoseconds), lists as arrays, structs as objects and
//! maps as objects keyed by the keys' text.

use chrono::{DateTime, NaiveDate, SecondsFormat};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::{decimal_text, DataType, TimeUnit, Value};

use crate::sink::write_json_string;

fn refused(reason: String) -> ConnectorError {
    ConnectorError::malformed("a row for Elasticsearch", reason)
}

/// `0.1` (ryu's shortest form of the `f32`), `null` for NaN and infinities (JSON has none).
pub(crate) fn write_f32(out: &mut Vec<u8>, f: f32) {
    if f.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// `"2024-01-31"`: a date of days since 1970-01-01.
pub(crate) fn write_date(out: &mut Vec<u8>, days: i32) -> Result<()> {
    let date = NaiveDate::default()
        .checked_add_signed(chrono::Duration::days(days.into()))
        .ok_or_else(|| refused(format!("date {days} is out of the range of dates")))?;
    write_json_string(out, &date.format("%Y-%m-%d").to_string());
    Ok(())
}

/// A timestamp of `unit`s as RFC 3339 in UTC with the unit's digits.
pub(crate) fn write_time(out: &mut Vec<u8>, v: i64, unit: TimeUnit) -> Result<()> {
    let per = unit.per_second();
    let nanos = u32::try_from(v.rem_euclid(per) * (1_000_000_000 / per)).unwrap_or(0);
    let format = match unit {
        TimeUnit::Second => SecondsFormat::Secs,
        TimeUnit::Microsecond => SecondsFormat::Micros,
        TimeUnit::Nanosecond => SecondsFormat::Nanos,
        _ => SecondsFormat::Millis,
    };
    let t = DateTime::from_timestamp(v.div_euclid(per), nanos).ok_or_else(|| {
        refused(format!(
            "timestamp {v} ({}) is out of the range of dates",
            unit.name()
        ))
    })?;
    write_json_string(out, &t.to_rfc3339_opts(format, true));
    Ok(())
}

/// Writes a value of a line 1.1 type as JSON; `Ok(false)` for the other values (written by
/// the caller).
pub(crate) fn write_typed(out: &mut Vec<u8>, value: &Value, data_type: &DataType) -> Result<bool> {
    match value {
        Value::UInt64(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        Value::Float32(f) => write_f32(out, *f),
        Value::Decimal128 { value, scale } => write_json_string(out, &decimal_text(*value, *scale)),
        Value::Date32(days) => write_date(out, *days)?,
        Value::Timestamp(v, unit) => write_time(out, *v, *unit)?,
        Value::List(items) => {
            let item = match data_type {
                DataType::List(item) => item.as_ref(),
                _ => &DataType::String,
            };
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                crate::row::write_value(out, v, item)?;
            }
            out.push(b']');
        }
        Value::Struct(values) => {
            let DataType::Struct(fields) = data_type else {
                return Err(refused(format!("a struct value in a {data_type} field")));
            };
            out.push(b'{');
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(out, &field.name);
                out.push(b':');
                let v = values.get(i).unwrap_or(&Value::Null);
                crate::row::write_value(out, v, &field.data_type)?;
            }
            out.push(b'}');
        }
        Value::Map(entries) => {
            let DataType::Map(_, value_type) = data_type else {
                return Err(refused(format!("a map value in a {data_type} field")));
            };
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let key = match k {
                    Value::String(s) => s.clone(),
                    Value::Int64(n) => n.to_string(),
                    Value::UInt64(n) => n.to_string(),
                    Value::Boolean(b) => b.to_string(),
                    other => {
                        return Err(refused(format!(
                            "a map key {other:?}: document keys are text, so map keys must be \
                             strings, integers or booleans"
                        )))
                    }
                };
                write_json_string(out, &key);
                out.push(b':');
                crate::row::write_value(out, v, value_type)?;
            }
            out.push(b'}');
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use weir_connector_api::row::Field;

    use super::*;

    #[test]
    fn nested_and_new_scalars_are_json_documents() {
        let data_type = DataType::Struct(vec![
            Field::new("u", DataType::UInt64, true),
            Field::new(
                "d",
                DataType::Decimal128 {
                    precision: 5,
                    scale: 2,
                },
                true,
            ),
            Field::new("day", DataType::Date32, true),
            Field::new("t", DataType::timestamp(TimeUnit::Microsecond, None), true),
            Field::new("l", DataType::List(Box::new(DataType::Float32)), true),
            Field::new(
                "m",
                DataType::Map(Box::new(DataType::String), Box::new(DataType::Int64)),
                true,
            ),
        ]);
        let value = Value::Struct(vec![
            Value::UInt64(u64::MAX),
            Value::Decimal128 {
                value: -105,
                scale: 2,
            },
            Value::Date32(-1),
            Value::Timestamp(1_500_000, TimeUnit::Microsecond),
            Value::List(vec![Value::Float32(0.1), Value::Null]),
            Value::Map(vec![(Value::String("k".into()), Value::Int64(3))]),
        ]);
        let mut out = Vec::new();
        assert!(write_typed(&mut out, &value, &data_type).unwrap());
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "u": u64::MAX,
                "d": "-1.05",
                "day": "1969-12-31",
                "t": "1970-01-01T00:00:01.500000Z",
                "l": [0.1, null],
                "m": {"k": 3},
            })
        );
        let mut out = Vec::new();
        let map = Value::Map(vec![(Value::Float64(1.0), Value::Int64(1))]);
        let map_type = DataType::Map(Box::new(DataType::Float64), Box::new(DataType::Int64));
        assert!(write_typed(&mut out, &map, &map_type).is_err());
    }
}
