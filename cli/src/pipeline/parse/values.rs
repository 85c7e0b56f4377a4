//! Typed values of the file: strings, booleans, numbers in a range, durations, tables, and
//! the option tables of connectors and formats, each wrong value reported at its span.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use toml_edit::{Item, Key, TableLike, Value as TomlValue};
use weir_connector_api::config::{
    parse_duration, ConfigError, ConfigErrors, ConfigWarning, OptionSet, ValidatedConfig,
};

use super::super::diag::hint;
use super::{key_span, kind_of, pair, unpair, Parser, Section, Span};

/// Flattened options with the spans of their keys and values.
#[derive(Default)]
pub(super) struct Options {
    pub(super) values: BTreeMap<String, String>,
    pub(super) spans: HashMap<String, (Span, Span)>,
    pub(super) table_span: Span,
}

impl Options {
    fn key_span(&self, key: &str) -> Span {
        self.spans
            .get(key)
            .and_then(|(k, _)| k.clone())
            .or_else(|| self.table_span.clone())
    }

    fn value_span(&self, key: &str) -> Span {
        self.spans
            .get(key)
            .and_then(|(_, v)| v.clone())
            .or_else(|| self.key_span(key))
    }
}

impl Parser {
    pub(super) fn unknown_keys(&mut self, s: Section<'_>, allowed: &[&str]) {
        for (key, _) in s.table.iter() {
            if !allowed.contains(&key) {
                self.d.error(
                    key_span(s.table, key),
                    format!(
                        "unknown key `{key}` in {}{}",
                        s.what,
                        hint(key, allowed.iter().copied())
                    ),
                );
            }
        }
    }

    pub(super) fn item<'a>(s: Section<'a>, key: &str) -> Option<(&'a Key, &'a Item)> {
        s.table.get_key_value(key).filter(|(_, i)| !i.is_none())
    }

    pub(super) fn wrong_type(&mut self, s: Section<'_>, key: &str, item: &Item, expected: &str) {
        self.d.error(
            item.span().or_else(|| key_span(s.table, key)),
            format!(
                "`{key}` in {} must be {expected}, not {}",
                s.what,
                kind_of(item)
            ),
        );
    }

    pub(super) fn missing(&mut self, s: Section<'_>, key: &str, example: &str) {
        self.d.error(
            unpair(s.span),
            format!("missing `{key}` in {}: add {example}", s.what),
        );
    }

    pub(super) fn string(&mut self, s: Section<'_>, key: &str) -> Option<(String, Span)> {
        let (_, item) = Self::item(s, key)?;
        match item.as_str() {
            Some(v) => Some((v.to_owned(), item.span())),
            None => {
                self.wrong_type(s, key, item, "a string");
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, s: Section<'_>, key: &str) -> Option<bool> {
        let (_, item) = Self::item(s, key)?;
        match item.as_bool() {
            Some(v) => Some(v),
            None => {
                self.wrong_type(s, key, item, "`true` or `false`");
                None
            }
        }
    }

    pub(super) fn integer(&mut self, s: Section<'_>, key: &str, min: i64, max: i64) -> Option<i64> {
        let (_, item) = Self::item(s, key)?;
        match item.as_integer() {
            Some(v) if (min..=max).contains(&v) => Some(v),
            Some(v) => {
                let range = if max == i64::MAX {
                    format!("at least {min}")
                } else {
                    format!("between {min} and {max}")
                };
                self.d.error(
                    item.span(),
                    format!("`{key}` in {} must be {range}, not {v}", s.what),
                );
                None
            }
            None => {
                self.wrong_type(s, key, item, "an integer");
                None
            }
        }
    }

    pub(super) fn float(&mut self, s: Section<'_>, key: &str, min: f64, max: f64) -> Option<f64> {
        let (_, item) = Self::item(s, key)?;
        let value = item
            .as_float()
            .or_else(|| item.as_integer().map(|i| i as f64));
        match value {
            Some(v) if (min..=max).contains(&v) => Some(v),
            Some(v) => {
                self.d.error(
                    item.span(),
                    format!(
                        "`{key}` in {} must be between {min} and {max}, not {v}",
                        s.what
                    ),
                );
                None
            }
            None => {
                self.wrong_type(s, key, item, "a number");
                None
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        s: Section<'_>,
        key: &str,
        positive: bool,
    ) -> Option<Duration> {
        let (_, item) = Self::item(s, key)?;
        let Some(text) = item.as_str() else {
            self.d.error(
                item.span(),
                format!(
                    "`{key}` in {} must be a duration with a unit in quotes, e.g. \"1s\" or \
                     \"500ms\", not {}",
                    s.what,
                    kind_of(item)
                ),
            );
            return None;
        };
        match parse_duration(text) {
            Ok(d) if positive && d.is_zero() => {
                self.d.error(
                    item.span(),
                    format!("`{key}` in {} must be greater than zero", s.what),
                );
                None
            }
            Ok(d) => Some(d),
            Err(expected) => {
                self.d.error(
                    item.span(),
                    format!(
                        "`{key}` in {}: `{text}` is not a duration: expected {expected}",
                        s.what
                    ),
                );
                None
            }
        }
    }

    pub(super) fn section<'a>(
        &mut self,
        root: Section<'a>,
        key: &str,
        what: &'a str,
    ) -> Option<Section<'a>> {
        let (k, item) = Self::item(root, key)?;
        match item.as_table_like() {
            Some(table) => Some(Section {
                table,
                span: pair(item.span().or_else(|| k.span())),
                what,
            }),
            None => {
                self.wrong_type(root, key, item, "a table");
                None
            }
        }
    }

    pub(super) fn options(&mut self, s: Section<'_>, key: &str) -> Options {
        let mut options = Options::default();
        let Some((k, item)) = Self::item(s, key) else {
            return options;
        };
        options.table_span = item.span().or_else(|| k.span());
        match item.as_table_like() {
            Some(table) => self.flatten(table, "", &mut options, s.what),
            None => self.wrong_type(s, key, item, "a table"),
        }
        options
    }

    pub(super) fn flatten(
        &mut self,
        table: &dyn TableLike,
        prefix: &str,
        out: &mut Options,
        what: &str,
    ) {
        for (key, item) in table.iter() {
            let full = format!("{prefix}{key}");
            let kspan = key_span(table, key);
            if let Some(inner) = item.as_table_like() {
                self.flatten(inner, &format!("{full}."), out, what);
                continue;
            }
            let rendered = match item {
                Item::Value(TomlValue::Array(array)) => {
                    let mut parts = Vec::new();
                    for v in array {
                        match scalar(v) {
                            Some(p) => parts.push(p),
                            None => self.d.error(
                                v.span(),
                                format!(
                                    "option `{full}` of {what}: a list may only hold strings, \
                                     numbers and booleans"
                                ),
                            ),
                        }
                    }
                    Some(parts.join(","))
                }
                Item::Value(v) => scalar(v),
                _ => None,
            };
            match rendered {
                Some(value) => {
                    out.spans.insert(full.clone(), (kspan, item.span()));
                    out.values.insert(full, value);
                }
                None => self.d.error(
                    item.span().or(kspan),
                    format!(
                        "option `{full}` of {what} must be a value, not {}",
                        kind_of(item)
                    ),
                ),
            }
        }
    }

    /// Reports connector option errors at the lines of the keys they are about.
    pub(super) fn config_errors(&mut self, errors: &ConfigErrors, options: &Options, what: &str) {
        for error in errors {
            let span = match error {
                ConfigError::InvalidValue { key, .. } | ConfigError::Rejected { key, .. } => {
                    options.value_span(key)
                }
                ConfigError::Missing { .. } => options.table_span.clone(),
                other => other
                    .keys()
                    .iter()
                    .find_map(|k| options.spans.get(*k).and_then(|(s, _)| s.clone()))
                    .or_else(|| options.key_span(other.key())),
            };
            self.d.error(span, format!("{what}: {error}"));
        }
    }

    pub(super) fn validate_options(
        &mut self,
        set: &OptionSet,
        options: &Options,
        what: &str,
    ) -> Option<ValidatedConfig> {
        match set.validate(&options.values) {
            Ok(config) => {
                for warning in config.warnings() {
                    let key = match warning {
                        ConfigWarning::DeprecatedKey { key, .. } => key.clone(),
                        _ => String::new(),
                    };
                    self.d
                        .warning(options.key_span(&key), format!("{what}: {warning}"));
                }
                Some(config)
            }
            Err(errors) => {
                self.config_errors(&errors, options, what);
                None
            }
        }
    }
}

/// A scalar TOML value as option text.
pub(super) fn scalar(v: &TomlValue) -> Option<String> {
    match v {
        TomlValue::String(s) => Some(s.value().clone()),
        TomlValue::Integer(i) => Some(i.value().to_string()),
        TomlValue::Float(f) => Some(f.value().to_string()),
        TomlValue::Boolean(b) => Some(b.value().to_string()),
        TomlValue::Datetime(d) => Some(d.value().to_string()),
        _ => None,
    }
}
