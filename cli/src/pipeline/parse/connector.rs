//! The connector and the format of a source or sink: `connector = "…"` checked against the
//! registry, `format = …` parsed and checked against the schema, and a factory's refusal
//! reported at the keys it is about.

use weir_connector_api::config::{ConfigError, ConfigErrors, ValidatedConfig};
use weir_connector_api::factory::{connectors, find_connector};
use weir_connector_api::format::{find_format, formats, FormatFactory};
use weir_connector_api::row::Schema;
use weir_connector_api::ConnectorError;

use super::super::diag::hint;
use super::values::{scalar, Options};
use super::{key_span, listed, pair, Parser, Section, Span};

/// A parsed `format = ...`.
pub(super) struct FormatSpec {
    pub(super) id: String,
    pub(super) config: ValidatedConfig,
    pub(super) span: Span,
}

/// What a source or sink uses its connector (and format) as.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// A source: its format decodes.
    Source,
    /// A sink: its format encodes.
    Sink,
}

impl Role {
    /// How messages call it.
    fn word(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Sink => "sink",
        }
    }

    /// The other role.
    fn other(self) -> Self {
        match self {
            Self::Source => Self::Sink,
            Self::Sink => Self::Source,
        }
    }
}

impl Parser {
    pub(super) fn connector_id(&mut self, s: Section<'_>, role: Role) -> Option<(String, Span)> {
        let Some((id, span)) = self.string(s, "connector") else {
            if Self::item(s, "connector").is_none() {
                self.missing(
                    s,
                    "connector",
                    "connector = \"<identifier>\" (`weir connectors` lists them)",
                );
            }
            return None;
        };
        let Some(factory) = find_connector(&id) else {
            let all = connectors();
            let ids: Vec<&str> = all.iter().map(|f| f.info().identifier).collect();
            self.d.error(
                span,
                format!(
                    "unknown connector `{id}` in {}{}",
                    s.what,
                    listed(
                        &hint(&id, ids.iter().copied()),
                        "this build of weir has",
                        &ids
                    )
                ),
            );
            return None;
        };
        let ok = match role {
            Role::Source => factory.as_source().is_some(),
            Role::Sink => factory.as_sink().is_some(),
        };
        if !ok {
            self.d.error(
                span,
                format!(
                    "connector `{id}` is a {} only: it cannot be used as a {}",
                    role.other().word(),
                    role.word()
                ),
            );
            return None;
        }
        Some((id, span))
    }

    #[allow(clippy::option_option)] // None: invalid; Some(None): no format
    pub(super) fn format(&mut self, s: Section<'_>) -> Option<Option<FormatSpec>> {
        let Some((k, item)) = Self::item(s, "format") else {
            return Some(None);
        };
        let span = item.span().or_else(|| k.span());
        let (id, options) = if let Some(id) = item.as_str() {
            (id.to_owned(), Options::default())
        } else if let Some(table) = item.as_table_like() {
            let section = Section {
                table,
                span: pair(span.clone()),
                what: s.what,
            };
            let Some((id, _)) = self.string(section, "type") else {
                if Self::item(section, "type").is_none() {
                    self.d.error(
                        span,
                        format!(
                            "`format` of {} needs a `type`, e.g. {{ type = \"json\" }}",
                            s.what
                        ),
                    );
                }
                return None;
            };
            let mut options = Options {
                table_span: span.clone(),
                ..Options::default()
            };
            for (key, value) in table.iter() {
                if key == "type" {
                    continue;
                }
                let kspan = key_span(table, key);
                if let Some(inner) = value.as_table_like() {
                    self.flatten(inner, &format!("{key}."), &mut options, s.what);
                } else if let Some(text) = value.as_value().and_then(scalar) {
                    options.spans.insert(key.to_owned(), (kspan, value.span()));
                    options.values.insert(key.to_owned(), text);
                } else {
                    self.d.error(
                        value.span().or(kspan),
                        format!("format option `{key}` of {} must be a value", s.what),
                    );
                }
            }
            (id, options)
        } else {
            self.wrong_type(s, "format", item, "a string or a table");
            return None;
        };
        let Some(format) = find_format(&id) else {
            let mut ids: Vec<&str> = formats().map(FormatFactory::identifier).collect();
            ids.sort_unstable();
            self.d.error(
                span,
                format!(
                    "unknown format `{id}` in {}{}",
                    s.what,
                    listed(&hint(&id, ids.iter().copied()), "the formats are", &ids)
                ),
            );
            return None;
        };
        let what = format!("{} format {id}", s.what);
        let config = self.validate_options(&format.options(), &options, &what)?;
        Some(Some(FormatSpec { id, config, span }))
    }

    pub(super) fn check_format(&mut self, f: &FormatSpec, schema: &Schema, role: Role, what: &str) {
        let Some(format) = find_format(&f.id) else {
            return;
        };
        let result = match role {
            Role::Source => format.decoder(schema, &f.config).map(|_| ()),
            Role::Sink => format.encoder(schema, &f.config).map(|_| ()),
        };
        if let Err(e) = result {
            let message = match e {
                ConnectorError::Config(errors) => errors
                    .iter()
                    .map(|e| match e {
                        ConfigError::Conflict { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            };
            self.d
                .error(f.span.clone(), format!("{what} format {}: {message}", f.id));
        }
    }

    pub(super) fn factory_error(
        &mut self,
        error: &ConnectorError,
        options: &Options,
        format: Option<&FormatSpec>,
        connector_span: Span,
        what: &str,
        id: &str,
    ) {
        match error {
            ConnectorError::Config(errors) => {
                for e in errors {
                    if e.keys().contains(&"format") {
                        let span = format
                            .and_then(|f| f.span.clone())
                            .or(connector_span.clone());
                        let message = match e {
                            ConfigError::Conflict { reason, .. } => reason.clone(),
                            other => other.to_string(),
                        };
                        self.d.error(span, format!("{what}: {message}"));
                    } else {
                        let single = ConfigErrors::new(errors.set_name(), vec![e.clone()]);
                        self.config_errors(&single, options, what);
                    }
                }
            }
            other => self.d.error(
                connector_span,
                format!("{what}: the {id} connector refused its configuration: {other}"),
            ),
        }
    }
}
