//! Conversions shared by the formats: JSON values and text cells to [`Value`]s and back.

use std::sync::LazyLock;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Number, Value as Json};
use weir_connector_api::config::{ConfigEnum, ConfigOption};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::{DataType, Field, Schema, Value};

/// `ignore-parse-errors`: skip malformed messages instead of failing.
pub(crate) static IGNORE_PARSE_ERRORS: LazyLock<ConfigOption<bool>> = LazyLock::new(|| {
    ConfigOption::new("ignore-parse-errors")
        .default_value(false)
        .description("Skip malformed messages instead of failing the job.")
});

/// `timestamp-format`: how timestamps are written.
pub(crate) static TIMESTAMP_FORMAT: LazyLock<ConfigOption<TimestampFormat>> = LazyLock::new(|| {
    ConfigOption::new("timestamp-format")
        .default_value(TimestampFormat::Iso8601)
        .description(
            "How timestamps are written; both RFC 3339 text and epoch milliseconds are read.",
        )
});

/// How timestamps are written (and, besides epoch milliseconds, read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// RFC 3339 / ISO-8601 text in UTC, e.g. `2024-01-01T00:00:00.000Z`.
    Iso8601,
    /// Milliseconds since the Unix epoch, as a number.
    EpochMillis,
}

weir_connector_api::config_enum!(TimestampFormat {
    "iso-8601" => Iso8601,
    "epoch-millis" => EpochMillis,
});

impl TimestampFormat {
    /// The name used in options.
    pub fn name(self) -> &'static str {
        self.config_name()
    }
}

/// Shortens a message for an error location: the first 80 characters, lossy UTF-8.
pub(crate) fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 80;
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// A malformed-message error of `format` for `bytes`.
pub(crate) fn malformed(format: &str, bytes: &[u8], reason: impl Into<String>) -> ConnectorError {
    ConnectorError::malformed(format!("{format} message `{}`", preview(bytes)), reason)
}

/// An error encoding a row with `format`.
pub(crate) fn unencodable(format: &str, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::malformed(format!("the {format} encoder"), reason)
}

fn describe(json: &Json) -> String {
    let text = json.to_string();
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(40).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// Parses a timestamp written as RFC 3339 text (any offset) into epoch milliseconds.
pub(crate) fn parse_timestamp_text(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Renders epoch milliseconds as RFC 3339 in UTC with milliseconds.
pub(crate) fn render_timestamp(millis: i64) -> String {
    DateTime::from_timestamp_millis(millis).map_or_else(
        || millis.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}

/// Converts one JSON value into a value of `field`'s type. `lenient` also accepts numbers and
/// booleans written as strings (canal-json writes every value as a string).
pub(crate) fn from_json(field: &Field, json: &Json, lenient: bool) -> Result<Value, String> {
    if json.is_null() {
        return if field.nullable {
            Ok(Value::Null)
        } else {
            Err(format!(
                "field `{}` is not nullable but the message has null",
                field.name
            ))
        };
    }
    let wrong = |expected: &str| {
        format!(
            "field `{}`: expected {expected}, got {}",
            field.name,
            describe(json)
        )
    };
    let text = if lenient { json.as_str() } else { None };
    match &field.data_type {
        DataType::Boolean => match (json, text) {
            (Json::Bool(b), _) => Ok(Value::Boolean(*b)),
            (_, Some(t)) if t.eq_ignore_ascii_case("true") || t == "1" => Ok(Value::Boolean(true)),
            (_, Some(t)) if t.eq_ignore_ascii_case("false") || t == "0" => {
                Ok(Value::Boolean(false))
            }
            _ => Err(wrong("a boolean")),
        },
        DataType::Int64 => match (json.as_i64(), text) {
            (Some(n), _) => Ok(Value::Int64(n)),
            (None, Some(t)) => t
                .trim()
                .parse::<i64>()
                .map(Value::Int64)
                .map_err(|_| wrong("an integer")),
            _ => Err(wrong("an integer")),
        },
        DataType::Float64 => match (json.as_f64(), text) {
            (Some(x), _) => Ok(Value::Float64(x)),
            (None, Some(t)) => t
                .trim()
                .parse::<f64>()
                .map(Value::Float64)
                .map_err(|_| wrong("a number")),
            _ => Err(wrong("a number")),
        },
        DataType::String => match json {
            Json::String(s) => Ok(Value::String(s.clone())),
            Json::Number(n) if lenient => Ok(Value::String(n.to_string())),
            Json::Bool(b) if lenient => Ok(Value::String(b.to_string())),
            _ => Err(wrong("a string")),
        },
        DataType::Bytes => match json.as_str() {
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(Value::Bytes)
                .map_err(|_| wrong("base64 text")),
            None => Err(wrong("base64 text")),
        },
        DataType::TimestampMillis => match json {
            Json::Number(n) => n
                .as_i64()
                .map(Value::TimestampMillis)
                .ok_or_else(|| wrong("epoch milliseconds or RFC 3339 text")),
            Json::String(s) => parse_timestamp_text(s)
                .or_else(|| {
                    if lenient {
                        s.trim().parse::<i64>().ok()
                    } else {
                        None
                    }
                })
                .map(Value::TimestampMillis)
                .ok_or_else(|| wrong("epoch milliseconds or RFC 3339 text")),
            _ => Err(wrong("epoch milliseconds or RFC 3339 text")),
        },
        _ => crate::typed::from_json_typed(field, json, lenient).unwrap_or_else(|| {
            Err(format!(
                "field `{}`: type {} is not supported by this format",
                field.name, field.data_type
            ))
        }),
    }
}

/// Converts a value into JSON.
pub(crate) fn to_json(field: &Field, value: &Value, ts: TimestampFormat) -> Result<Json, String> {
    Ok(match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int64(n) => Json::Number((*n).into()),
        Value::Float64(x) => Number::from_f64(*x).map(Json::Number).ok_or_else(|| {
            format!(
                "field `{}`: {x} cannot be written as JSON (not a finite number)",
                field.name
            )
        })?,
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::TimestampMillis(t) => match ts {
            TimestampFormat::Iso8601 => Json::String(render_timestamp(*t)),
            TimestampFormat::EpochMillis => Json::Number((*t).into()),
        },
        _ => {
            return crate::typed::to_json_typed(field, value, ts).unwrap_or_else(|| {
                Err(format!(
                    "field `{}`: this value type is not supported by this format",
                    field.name
                ))
            })
        }
    })
}

/// Reads the fields of `schema` from a JSON object. Missing fields are null, or an error with
/// `fail_on_missing`.
pub(crate) fn object_to_values(
    schema: &Schema,
    object: &Map<String, Json>,
    fail_on_missing: bool,
    lenient: bool,
) -> Result<Vec<Value>, String> {
    let mut values = Vec::with_capacity(schema.fields.len());
    for field in &schema.fields {
        match object.get(&field.name) {
            Some(json) => values.push(from_json(field, json, lenient)?),
            None if fail_on_missing => {
                return Err(format!("field `{}` is missing", field.name));
            }
            None => values.push(from_json(field, &Json::Null, lenient)?),
        }
    }
    Ok(values)
}

/// Writes the values of a row as a JSON object, keys in schema order.
pub(crate) fn write_object(
    out: &mut Vec<u8>,
    schema: &Schema,
    values: &[Value],
    ts: TimestampFormat,
) -> Result<(), String> {
    if values.len() != schema.fields.len() {
        return Err(format!(
            "the row has {} values but the schema has {} fields",
            values.len(),
            schema.fields.len()
        ));
    }
    out.push(b'{');
    for (i, (field, value)) in schema.fields.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let json = to_json(field, value, ts)?;
        serde_json::to_writer(&mut *out, &field.name).map_err(|e| e.to_string())?;
        out.push(b':');
        serde_json::to_writer(&mut *out, &json).map_err(|e| e.to_string())?;
    }
    out.push(b'}');
    Ok(())
}

/// Parses a text cell (csv) into a value of `field`'s type.
pub(crate) fn from_text(field: &Field, text: &str) -> Result<Value, String> {
    let wrong =
        |expected: &str| format!("field `{}`: expected {expected}, got `{text}`", field.name);
    match &field.data_type {
        DataType::Boolean => match text.trim() {
            t if t.eq_ignore_ascii_case("true") => Ok(Value::Boolean(true)),
            t if t.eq_ignore_ascii_case("false") => Ok(Value::Boolean(false)),
            _ => Err(wrong("`true` or `false`")),
        },
        DataType::Int64 => text
            .trim()
            .parse()
            .map(Value::Int64)
            .map_err(|_| wrong("an integer")),
        DataType::Float64 => text
            .trim()
            .parse()
            .map(Value::Float64)
            .map_err(|_| wrong("a number")),
        DataType::String => Ok(Value::String(text.to_owned())),
        DataType::Bytes => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(Value::Bytes)
            .map_err(|_| wrong("base64 text")),
        DataType::TimestampMillis => parse_timestamp_text(text)
            .or_else(|| text.trim().parse().ok())
            .map(Value::TimestampMillis)
            .ok_or_else(|| wrong("epoch milliseconds or RFC 3339 text")),
        t => match crate::typed::scalar_from_text(t, text) {
            Some(result) => result.map_err(wrong),
            None => Err(format!(
                "field `{}`: type {} is not supported by this format",
                field.name, field.data_type
            )),
        },
    }
}

/// Renders a non-null value as a text cell (csv).
pub(crate) fn to_text(field: &Field, value: &Value, ts: TimestampFormat) -> Result<String, String> {
    Ok(match value {
        Value::Null => String::new(),
        Value::Boolean(b) => b.to_string(),
        Value::Int64(n) => n.to_string(),
        Value::Float64(x) => x.to_string(),
        Value::String(s) => s.clone(),
        Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
        Value::TimestampMillis(t) => match ts {
            TimestampFormat::Iso8601 => render_timestamp(*t),
            TimestampFormat::EpochMillis => t.to_string(),
        },
        other => crate::typed::scalar_to_text(other, ts).ok_or_else(|| {
            format!(
                "field `{}`: this value type is not supported by this format",
                field.name
            )
        })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_text() {
        let text = render_timestamp(1_704_067_200_123);
        assert_eq!(text, "2024-01-01T00:00:00.123Z");
        assert_eq!(parse_timestamp_text(&text), Some(1_704_067_200_123));
        assert_eq!(
            parse_timestamp_text("2024-01-01T01:00:00+01:00"),
            Some(1_704_067_200_000)
        );
        assert_eq!(parse_timestamp_text("yesterday"), None);
    }

    #[test]
    fn previews_are_short() {
        let long = "x".repeat(200);
        assert_eq!(preview(long.as_bytes()).chars().count(), 81);
    }
}
