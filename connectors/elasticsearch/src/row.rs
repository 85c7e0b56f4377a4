//! Rows of pipelines as documents: [`RowEmitter`] (changelog rows → bulk actions, ids from key
//! fields, index routing) and the JSON encoding of a row.

use std::io::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Datelike, Timelike};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::{DataType, Row, RowKind, Schema, Value};
use weir_connector_api::sink::WriteContext;

use crate::index::IndexRouting;
use crate::sink::{write_json_string, ActionKind, BulkAction, Emitter};

/// How rows become bulk actions: the changelog mapping of the Elasticsearch sink.
///
/// | row kind | action |
/// |---|---|
/// | `+I` insert, `+U` update-after | the write action (`sink.action`: `index` by default; `create`, `update`, `upsert`) |
/// | `-D` delete | `delete` of the row's document (needs `document-id.fields`) |
/// | `-U` update-before | none (the `+U` that follows carries the new state) |
///
/// With `sink.action = delete` every `+I`, `+U` and `-D` row deletes its document.
///
/// The document is the row as a JSON object, field names as keys: `int64` and `float64` as
/// numbers (NaN and infinities as `null`), `timestamp` as an ISO-8601 UTC string with
/// milliseconds (`2026-01-01T00:00:00.000Z`, which Elasticsearch maps as `date`), `bytes` as
/// base64 (the `binary` type), `null` as `null`.
///
/// ```
/// use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, Value};
/// use weir_connector_api::sink::WriteContext;
/// use weir_connector_elasticsearch::sink::{ActionKind, Emitter};
/// use weir_connector_elasticsearch::{IndexRouting, RowEmitter};
///
/// let schema = Schema::new(vec![
///     Field::new("id", DataType::Int64, false),
///     Field::new("name", DataType::String, true),
/// ]);
/// let mut emitter = RowEmitter::new(&schema, IndexRouting::parse("customers", &schema)?, &["id".to_owned()], "_", ActionKind::Index)?;
/// let ctx = WriteContext::default();
/// let upsert = emitter
///     .emit(Row::with_kind(RowKind::UpdateAfter, vec![Value::Int64(7), Value::String("Ada".into())]), &ctx)
///     .unwrap()
///     .unwrap();
/// assert_eq!((upsert.kind(), upsert.id()), (ActionKind::Index, Some("7")));
/// assert_eq!(upsert.document(), br#"{"id":7,"name":"Ada"}"#);
/// let delete = emitter
///     .emit(Row::with_kind(RowKind::Delete, vec![Value::Int64(7), Value::Null]), &ctx)
///     .unwrap()
///     .unwrap();
/// assert_eq!((delete.kind(), delete.id()), (ActionKind::Delete, Some("7")));
/// let before = Row::with_kind(RowKind::UpdateBefore, vec![Value::Int64(7), Value::Null]);
/// assert!(emitter.emit(before, &ctx).unwrap().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RowEmitter {
    /// `"name":` of every field, JSON-escaped.
    pub(crate) keys: Arc<[Vec<u8>]>,
    /// The type of every field (nested values are written by it).
    pub(crate) types: Arc<[DataType]>,
    pub(crate) routing: IndexRouting,
    pub(crate) id_fields: Arc<[usize]>,
    pub(crate) delimiter: Arc<str>,
    pub(crate) action: ActionKind,
    /// Reused for index names.
    pub(crate) scratch: String,
    /// The size of the last document, to allocate the next one at once.
    pub(crate) last_size: usize,
}

impl RowEmitter {
    /// An emitter for rows of `schema`; `id_fields` (possibly none) form the document id,
    /// joined by `delimiter`; `action` writes `+I` / `+U` rows. The error names what is wrong.
    pub fn new(
        schema: &Schema,
        routing: IndexRouting,
        id_fields: &[String],
        delimiter: &str,
        action: ActionKind,
    ) -> std::result::Result<Self, String> {
        let mut positions = Vec::with_capacity(id_fields.len());
        for name in id_fields {
            let Some(i) = schema.index_of(name) else {
                let fields: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
                return Err(format!(
                    "`{name}` is not a field of the sink's input (fields: {})",
                    fields.join(", ")
                ));
            };
            positions.push(i);
        }
        if positions.is_empty() && action.needs_id() {
            return Err(format!(
                "the `{action}` action needs document ids: set `document-id.fields`"
            ));
        }
        let keys = schema
            .fields
            .iter()
            .map(|f| {
                let mut key = Vec::with_capacity(f.name.len() + 3);
                write_json_string(&mut key, &f.name);
                key.push(b':');
                key
            })
            .collect();
        Ok(RowEmitter {
            keys,
            types: schema.fields.iter().map(|f| f.data_type.clone()).collect(),
            routing,
            id_fields: positions.into(),
            delimiter: Arc::from(delimiter),
            action,
            scratch: String::new(),
            last_size: 64,
        })
    }

    /// The id of `row` from its id fields (`None` without id fields): values joined by the
    /// delimiter, a null as `null` (as Flink does).
    fn id_of(&self, row: &Row) -> Result<Option<String>> {
        if self.id_fields.is_empty() {
            return Ok(None);
        }
        let mut id = String::new();
        for (n, &i) in self.id_fields.iter().enumerate() {
            if n > 0 {
                id.push_str(&self.delimiter);
            }
            match row.get(i) {
                Some(Value::String(s)) => id.push_str(s),
                Some(Value::Int64(v) | Value::TimestampMillis(v)) => {
                    id.push_str(itoa::Buffer::new().format(*v));
                }
                Some(Value::Float64(v)) => id.push_str(&v.to_string()),
                Some(Value::Boolean(v)) => id.push_str(if *v { "true" } else { "false" }),
                Some(Value::Bytes(b)) => {
                    id.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
                }
                Some(Value::Null) | None => id.push_str("null"),
                Some(other) => {
                    return Err(ConnectorError::malformed(
                        "a row for Elasticsearch",
                        format!("an id field holds {other:?}, which makes no document id"),
                    ))
                }
            }
        }
        check_id_length(&id)?;
        Ok(Some(id))
    }

    /// The action of a row of `kind` (`None`: the row makes none, like a `-U`).
    pub(crate) fn action_of(&self, kind: RowKind) -> Option<ActionKind> {
        match (kind, self.action) {
            (RowKind::UpdateBefore, _) => None,
            (RowKind::Delete, _) | (_, ActionKind::Delete) => Some(ActionKind::Delete),
            (RowKind::Insert | RowKind::UpdateAfter, action) => Some(action),
        }
    }

    /// The row as a JSON object.
    fn document(&mut self, row: &Row) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.last_size + 16);
        out.push(b'{');
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            let data_type = self.types.get(i).unwrap_or(&DataType::String);
            write_value(&mut out, row.get(i).unwrap_or(&Value::Null), data_type)?;
        }
        out.push(b'}');
        self.last_size = out.len();
        Ok(out)
    }
}

impl Emitter<Row> for RowEmitter {
    fn emit(&mut self, row: Row, _ctx: &WriteContext) -> Result<Option<BulkAction>> {
        let Some(kind) = self.action_of(row.kind) else {
            return Ok(None);
        };
        let id = self.id_of(&row)?;
        if id.is_none() && kind.needs_id() {
            return Err(missing_id(row.kind, kind));
        }
        let index = self
            .routing
            .index_of_mut(&row, &mut self.scratch)
            .map_err(|e| ConnectorError::malformed("a row for Elasticsearch", e))?;
        let document = if kind.has_document() {
            self.document(&row)?
        } else {
            Vec::new()
        };
        BulkAction::new(kind, index, id, document)
            .map(Some)
            .map_err(|e| ConnectorError::malformed("a row for Elasticsearch", e.to_string()))
    }
}

/// The error of a row of `row_kind` whose `kind` action needs an id it has not.
pub(crate) fn missing_id(row_kind: RowKind, kind: ActionKind) -> ConnectorError {
    ConnectorError::malformed(
        "a row for Elasticsearch",
        format!(
            "a {} row needs a document id to {kind} its document: set \
             `document-id.fields` to the fields that identify a row",
            match row_kind {
                RowKind::Delete => "-D",
                _ => "+I/+U",
            }
        ),
    )
}

/// Elasticsearch's limit on ids: 512 bytes.
pub(crate) fn check_id_length(id: &str) -> Result<()> {
    if id.len() > 512 {
        return Err(ConnectorError::malformed(
            "a row for Elasticsearch",
            format!(
                "the document id is {} bytes; Elasticsearch allows at most 512 (`{}…`)",
                id.len(),
                id.chars().take(40).collect::<String>()
            ),
        ));
    }
    Ok(())
}

/// Writes one value as JSON.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value, data_type: &DataType) -> Result<()> {
    if crate::row_types::write_typed(out, value, data_type)? {
        return Ok(());
    }
    match value {
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int64(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        Value::Float64(f) => write_f64(out, *f),
        Value::Null => out.extend_from_slice(b"null"),
        Value::String(s) => write_json_string(out, s),
        Value::Bytes(b) => write_bytes(out, b),
        Value::TimestampMillis(ms) => write_timestamp(out, *ms)?,
        other => {
            return Err(ConnectorError::malformed(
                "a row for Elasticsearch",
                format!("{other:?} has no JSON form here"),
            ))
        }
    }
    Ok(())
}

/// ryu's shortest form of the `f64`, `null` for NaN and infinities (JSON has none).
pub(crate) fn write_f64(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Bytes as a base64 string (the `binary` field type).
pub(crate) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .as_bytes(),
    );
    out.push(b'"');
}

/// `"2026-01-01T00:00:00.000Z"`.
pub(crate) fn write_timestamp(out: &mut Vec<u8>, millis: i64) -> Result<()> {
    let t = DateTime::from_timestamp_millis(millis).ok_or_else(|| {
        ConnectorError::malformed(
            "a row for Elasticsearch",
            format!("timestamp {millis} ms is out of the range of dates"),
        )
    })?;
    let year = t.year();
    if (0..=9999).contains(&year) {
        let _ = write!(
            out,
            "\"{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\"",
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.timestamp_subsec_millis()
        );
    } else {
        // Outside four-digit years ISO-8601 needs a sign; epoch milliseconds are unambiguous.
        out.extend_from_slice(itoa::Buffer::new().format(millis).as_bytes());
    }
    Ok(())
}
