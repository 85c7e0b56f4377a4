//! Documents as rows: a document's `_source` read into the lookup table's schema.

use base64::Engine as _;
use serde_json::Value as Json;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::{DataType, Row, Schema, Value};

/// Reads `source` (a document's `_source`) as a row of `schema`: fields by name, a missing
/// field or JSON `null` as null. Numbers in strings and strings of numbers convert; a
/// timestamp reads epoch milliseconds or an RFC 3339 / ISO-8601 date (`2026-01-01`,
/// `2026-01-01T10:00:00Z`). Anything else that does not fit the field's type is an error that
/// names the document and the field.
pub(crate) fn row_from_source(schema: &Schema, source: &Json, document: &str) -> Result<Row> {
    let mut values = Vec::with_capacity(schema.fields.len());
    for field in &schema.fields {
        let json = source.get(&field.name).unwrap_or(&Json::Null);
        let value = value_from_json(&field.data_type, json).ok_or_else(|| {
            ConnectorError::malformed(
                document.to_owned(),
                format!(
                    "field `{}` is {json}, which does not read as {} (the lookup table's schema)",
                    field.name, field.data_type
                ),
            )
        })?;
        values.push(value);
    }
    Ok(Row::insert(values))
}

fn value_from_json(data_type: &DataType, json: &Json) -> Option<Value> {
    if json.is_null() {
        return Some(Value::Null);
    }
    Some(match data_type {
        DataType::Boolean => match json {
            Json::Bool(b) => Value::Boolean(*b),
            Json::String(s) => Value::Boolean(s.parse().ok()?),
            _ => return None,
        },
        DataType::Int64 => match json {
            Json::Number(n) => Value::Int64(n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })?),
            Json::String(s) => Value::Int64(s.trim().parse().ok()?),
            _ => return None,
        },
        DataType::Float64 => match json {
            Json::Number(n) => Value::Float64(n.as_f64()?),
            Json::String(s) => Value::Float64(s.trim().parse().ok()?),
            _ => return None,
        },
        DataType::String => match json {
            Json::String(s) => Value::String(s.clone()),
            other => Value::String(other.to_string()),
        },
        DataType::Bytes => match json {
            Json::String(s) => {
                Value::Bytes(base64::engine::general_purpose::STANDARD.decode(s).ok()?)
            }
            _ => return None,
        },
        DataType::TimestampMillis => match json {
            Json::Number(n) => Value::TimestampMillis(n.as_i64()?),
            Json::String(s) => Value::TimestampMillis(parse_time(s)?),
            _ => return None,
        },
        _ => return None,
    })
}

fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// A key value as a JSON value for a `term` query.
pub(crate) fn json_of(value: &Value) -> Json {
    match value {
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int64(n) | Value::TimestampMillis(n) => Json::from(*n),
        Value::Float64(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        _ => Json::Null,
    }
}
