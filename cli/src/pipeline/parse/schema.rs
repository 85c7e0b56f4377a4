//! Schemas: a source's `schema`, its `watermark` (which names a field of it), and the schema
//! a transform or sink reads from its inputs.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_connector_api::row::{DataType, Field, Schema};

use super::super::diag::hint;
use super::super::WatermarkSpec;
use super::types::{parse_type, TYPE_NAMES};
use super::{key_span, listed, pair, tables_of, Parser, Section, Span, Stream};

const FIELD_KEYS: [&str; 3] = ["name", "type", "nullable"];
const WATERMARK_KEYS: [&str; 6] = [
    "timestamp-field",
    "out-of-orderness",
    "idleness",
    "alignment-group",
    "alignment-max-drift",
    "alignment-update-interval",
];

impl Parser {
    pub(super) fn schema(&mut self, s: Section<'_>) -> Option<Schema> {
        let Some((_, item)) = Self::item(s, "schema") else {
            self.missing(
                s,
                "schema",
                "schema = [{ name = \"id\", type = \"int64\" }, …]",
            );
            return None;
        };
        let Some(entries) = tables_of(item) else {
            self.wrong_type(
                s,
                "schema",
                item,
                "an array of fields like { name = \"id\", type = \"int64\" }",
            );
            return None;
        };
        if entries.is_empty() {
            self.d.error(
                item.span(),
                format!("the schema of {} has no fields", s.what),
            );
            return None;
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut ok = true;
        for (i, (table, span)) in entries.into_iter().enumerate() {
            let what = format!("field {} of the schema of {}", i + 1, s.what);
            let f = Section {
                table,
                span: pair(span),
                what: &what,
            };
            self.unknown_keys(f, &FIELD_KEYS);
            let name = self.string(f, "name");
            if name.is_none() && Self::item(f, "name").is_none() {
                self.missing(f, "name", "name = \"…\"");
            }
            let ty = self.string(f, "type");
            if ty.is_none() && Self::item(f, "type").is_none() {
                self.missing(
                    f,
                    "type",
                    "type = \"int64\" (or int32, float64, string, decimal(10, 2), timestamp, \
                     list<int64>...)",
                );
            }
            let nullable = self.boolean(f, "nullable").unwrap_or(true);
            let data_type = ty.and_then(|(t, span)| self.field_type(&t, span, &what));
            match (name, data_type) {
                (Some((name, span)), Some(data_type)) => {
                    if fields.iter().any(|f| f.name == name) {
                        self.d.error(
                            span,
                            format!("field `{name}` appears twice in the schema of {}", s.what),
                        );
                        ok = false;
                    }
                    fields.push(Field::new(name, data_type, nullable));
                }
                _ => ok = false,
            }
        }
        ok.then(|| Schema::new(fields))
    }

    /// The type of a field from its `type` text, or `None` after reporting the mistake (at its
    /// place in the text when the string has no escapes, so offsets map one to one).
    fn field_type(&mut self, text: &str, span: Span, what: &str) -> Option<DataType> {
        match parse_type(text) {
            Ok(t) => Some(t),
            Err(e) => {
                let plain = span.as_ref().is_some_and(|s| s.len() == text.len() + 2);
                let at = match &span {
                    Some(s) if plain && e.offset > 0 => Some(s.start + 1 + e.offset..s.end),
                    _ => span,
                };
                let message = if e.unknown_name && e.offset == 0 {
                    let (head, hint) = e
                        .message
                        .split_once(": ")
                        .map_or((e.message.as_str(), String::new()), |(h, m)| {
                            (h, format!(": {m}"))
                        });
                    format!(
                        "{head} in {what}{}",
                        listed(&hint, "the types are", &TYPE_NAMES)
                    )
                } else {
                    format!("type `{text}` of {what}: {}", e.message)
                };
                self.d.error(at, message);
                None
            }
        }
    }

    pub(super) fn watermark(
        &mut self,
        s: Section<'_>,
        schema: Option<&Schema>,
    ) -> Option<WatermarkSpec> {
        let w = self.section(s, "watermark", s.what)?;
        self.unknown_keys(w, &WATERMARK_KEYS);
        let field = match self.string(w, "timestamp-field") {
            Some((name, span)) => schema.and_then(|schema| {
                let Some(index) = schema.index_of(&name) else {
                    self.d.error(
                        span,
                        format!(
                            "`timestamp-field` of {}: there is no field `{name}` in the \
                             schema{}",
                            s.what,
                            hint(&name, schema.fields.iter().map(|f| f.name.as_str()))
                        ),
                    );
                    return None;
                };
                let data_type = schema.fields.get(index).map(|f| f.data_type.clone());
                if !matches!(data_type, Some(DataType::TimestampMillis | DataType::Int64)) {
                    self.d.error(
                        span,
                        format!(
                            "`timestamp-field` of {}: field `{name}` is {}, but event time \
                             needs a timestamp or int64 (epoch milliseconds) field",
                            s.what,
                            data_type.map_or_else(|| "?".to_owned(), |t| t.to_string())
                        ),
                    );
                    return None;
                }
                Some(index)
            }),
            None => {
                if Self::item(w, "timestamp-field").is_none() {
                    self.missing(
                        w,
                        "timestamp-field",
                        "timestamp-field = \"<a timestamp field>\"",
                    );
                }
                None
            }
        };
        let out_of_orderness = self
            .duration(w, "out-of-orderness", false)
            .unwrap_or(Duration::ZERO);
        let idleness = self.duration(w, "idleness", true);
        let group = self.string(w, "alignment-group");
        let drift = self.duration(w, "alignment-max-drift", true);
        let update = self.duration(w, "alignment-update-interval", true);
        let alignment = match (group, drift) {
            (Some((group, _)), Some(drift)) => {
                Some((group, drift, update.unwrap_or(Duration::from_secs(1))))
            }
            (Some((_, span)), None) => {
                if Self::item(w, "alignment-max-drift").is_none() {
                    self.d.error(
                        span,
                        format!(
                            "`alignment-group` of {} needs `alignment-max-drift`, e.g. \"20s\"",
                            s.what
                        ),
                    );
                }
                None
            }
            (None, _) => {
                for key in ["alignment-max-drift", "alignment-update-interval"] {
                    if Self::item(w, key).is_some() {
                        self.d.error(
                            key_span(w.table, key),
                            format!("`{key}` of {} needs an `alignment-group`", s.what),
                        );
                    }
                }
                None
            }
        };
        Some(WatermarkSpec {
            timestamp_field: field?,
            out_of_orderness,
            idleness,
            alignment,
        })
    }

    /// The schema of the inputs (all must agree), or `None` after reporting why.
    pub(super) fn input_schema(
        &mut self,
        inputs: &[(String, Span)],
        streams: &BTreeMap<String, Stream>,
        what: &str,
    ) -> Option<Schema> {
        let mut schema: Option<(&str, &Schema)> = None;
        let mut ok = true;
        for (name, span) in inputs {
            match streams.get(name) {
                Some(Stream { schema: None, .. }) => ok = false,
                Some(Stream {
                    schema: Some(this), ..
                }) => match schema {
                    Some((first, s)) if s != this => {
                        self.d.error(
                            span.clone(),
                            format!(
                                "{what} unites `{first}` and `{name}`, whose schemas differ: \
                                 inputs of one transform or sink need the same fields"
                            ),
                        );
                        ok = false;
                    }
                    Some(_) => {}
                    None => schema = Some((name, this)),
                },
                None => {
                    let known: Vec<&str> = streams.keys().map(String::as_str).collect();
                    self.d.error(
                        span.clone(),
                        format!(
                            "`input` of {what}: there is no source or transform `{name}`{}",
                            hint(name, known)
                        ),
                    );
                    ok = false;
                }
            }
        }
        if ok {
            schema.map(|(_, s)| s.clone())
        } else {
            None
        }
    }
}
