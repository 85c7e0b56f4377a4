//! Walks a pipeline file (a `toml_edit` document, which keeps spans) into a [`Pipeline`],
//! collecting every problem on the way.
//!
//! One file a part of the format: [`values`] reads typed values and option tables, [`job`]
//! the job settings (`[pipeline]`, `[checkpointing]`, `[restart]`), [`schema`] schemas and
//! watermarks, [`nodes`] the sources and sinks (with [`connector`] for their connectors and
//! formats), [`transforms`] the transforms and [`lookup`] their lookup joins (with
//! [`lookup_settings`] for their cache and asynchronous settings).

mod connector;
mod job;
mod lookup;
mod lookup_settings;
mod nodes;
mod schema;
mod transforms;
mod types;
mod values;

use std::collections::BTreeMap;
use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike, Value as TomlValue};
use weir_connector_api::factory::{CheckpointMode, JobContext};
use weir_connector_api::row::Schema;
use weir_runtime::CheckpointingMode;

use super::diag::Diagnostics;
use super::Pipeline;

type Span = Option<Range<usize>>;

const ROOT_KEYS: [&str; 6] = [
    "pipeline",
    "checkpointing",
    "restart",
    "sources",
    "transforms",
    "sinks",
];

/// A table of the file and how to name it in messages.
#[derive(Clone, Copy)]
struct Section<'a> {
    table: &'a dyn TableLike,
    span: Pair,
    what: &'a str,
}

/// A span that is `Copy`.
type Pair = Option<(usize, usize)>;

fn pair(span: Span) -> Pair {
    span.map(|r| (r.start, r.end))
}

fn unpair(pair: Pair) -> Span {
    pair.map(|(a, b)| a..b)
}

/// What is known about a stream (a source or a transform) while the graph is checked.
struct Stream {
    /// `None` when the node had errors of its own (already reported).
    schema: Option<Schema>,
    span: Span,
    bounded: bool,
}

pub(super) struct Parser {
    d: Diagnostics,
    /// What factories learn about the job (its checkpointing), known once `[checkpointing]`
    /// is read.
    job: JobContext,
    /// The file's text, to map offsets inside strings (filters) back to the file.
    source: String,
}

fn kind_of(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => match v {
            TomlValue::String(_) => "a string",
            TomlValue::Integer(_) => "an integer",
            TomlValue::Float(_) => "a float",
            TomlValue::Boolean(_) => "a boolean",
            TomlValue::Datetime(_) => "a date-time",
            TomlValue::Array(_) => "an array",
            TomlValue::InlineTable(_) => "a table",
        },
    }
}

fn key_span(table: &dyn TableLike, key: &str) -> Span {
    table.get_key_value(key).and_then(|(k, _)| k.span())
}

/// The tables of an array of tables or an array of inline tables, with their spans.
fn tables_of(item: &Item) -> Option<Vec<(&dyn TableLike, Span)>> {
    match item {
        Item::ArrayOfTables(array) => Some(
            array
                .iter()
                .map(|t| (t as &dyn TableLike, t.span()))
                .collect(),
        ),
        Item::Value(TomlValue::Array(array)) => array
            .iter()
            .map(|v| match v {
                TomlValue::InlineTable(t) => Some((t as &dyn TableLike, t.span())),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// `: did you mean `x`? (<what>: a, b)` or `; <what>: a, b`.
fn listed(hint: &str, what: &str, all: &[&str]) -> String {
    if hint.is_empty() {
        format!("; {what}: {}", all.join(", "))
    } else {
        format!("{hint} ({what}: {})", all.join(", "))
    }
}

impl Parser {
    pub(super) fn run(text: &str, default_name: &str) -> (Option<Pipeline>, Diagnostics) {
        let mut parser = Parser {
            d: Diagnostics::new(text),
            job: JobContext::new(),
            source: text.to_owned(),
        };
        let doc = match ImDocument::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let message = e.message().trim().replace('\n', " ");
                parser
                    .d
                    .error(e.span(), format!("not valid TOML: {message}"));
                return (None, parser.d);
            }
        };
        let pipeline = parser.pipeline(doc.as_table(), default_name);
        if parser.d.has_errors() {
            (None, parser.d)
        } else {
            (pipeline, parser.d)
        }
    }

    fn pipeline(&mut self, root: &toml_edit::Table, default_name: &str) -> Option<Pipeline> {
        let root = Section {
            table: root,
            span: pair(None),
            what: "the file",
        };
        self.unknown_keys(root, &ROOT_KEYS);

        let settings = self.settings(root, default_name);
        let checkpointing = self.checkpointing(root);
        if let Some(c) = &checkpointing {
            self.job = JobContext::new()
                .with_checkpoint_interval(Some(c.config.interval))
                .with_checkpoint_mode(match c.config.mode {
                    CheckpointingMode::AtLeastOnce => CheckpointMode::AtLeastOnce,
                    CheckpointingMode::ExactlyOnce => CheckpointMode::ExactlyOnce,
                });
        }
        let restart = self.restart(root);

        let mut streams: BTreeMap<String, Stream> = BTreeMap::new();
        let sources = self.sources(root, &mut streams);
        let (transforms, transform_inputs) = self.transforms(root, &mut streams);
        let sinks = self.sinks(root, &streams, &sources, &transform_inputs);

        // Exactly-once sinks need checkpoints when the input never ends.
        let unbounded = streams.values().any(|s| !s.bounded);
        for (sink, span) in &sinks {
            if !sink.exactly_once {
                continue;
            }
            match &checkpointing {
                None if unbounded => self.d.error(
                    span.clone(),
                    format!(
                        "sink `{}` commits its output on checkpoints (exactly-once), but \
                         checkpointing is off and the input is unbounded: nothing would ever be \
                         committed; add a [checkpointing] section with an `interval`",
                        sink.name
                    ),
                ),
                Some(c) if c.config.mode == CheckpointingMode::AtLeastOnce => self.d.warning(
                    span.clone(),
                    format!(
                        "sink `{}` is exactly-once but checkpoints are at-least-once: after a \
                         failure it may write records twice; set mode = \"exactly-once\"",
                        sink.name
                    ),
                ),
                _ => {}
            }
        }

        if self.d.has_errors() {
            return None;
        }
        Some(Pipeline {
            name: settings.name,
            parallelism: settings.parallelism,
            watermark_interval: settings.watermark_interval,
            allow_unaligned_source_splits: settings.allow_unaligned_source_splits,
            checkpointing,
            restart,
            sources,
            transforms,
            sinks: sinks.into_iter().map(|(s, _)| s).collect(),
        })
    }
}
