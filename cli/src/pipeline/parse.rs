//! Walks a pipeline file (a `toml_edit` document, which keeps spans) into a [`Pipeline`],
//! collecting every problem on the way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use toml_edit::{ImDocument, Item, Key, TableLike, Value as TomlValue};
use weir_connector_api::config::{
    parse_duration, ConfigError, ConfigErrors, OptionSet, ValidatedConfig,
};
use weir_connector_api::factory::{connectors, find_connector, FactoryContext};
use weir_connector_api::format::{find_format, formats, FormatFactory};
use weir_connector_api::row::{DataType, Field, Schema};
use weir_connector_api::sink::Sink;
use weir_connector_api::source::{Boundedness, Source};
use weir_connector_api::ConnectorError;
use weir_runtime::restart::RestartStrategy;
use weir_runtime::{CheckpointConfig, CheckpointingMode};

use super::diag::{hint, Diagnostics};
use super::expr::Expr;
use super::{Checkpointing, Pipeline, SinkNode, SourceNode, Storage, TransformNode, WatermarkSpec};

type Span = Option<Range<usize>>;

const ROOT_KEYS: [&str; 6] = [
    "pipeline",
    "checkpointing",
    "restart",
    "sources",
    "transforms",
    "sinks",
];
const PIPELINE_KEYS: [&str; 4] = [
    "name",
    "parallelism",
    "watermark-interval",
    "allow-unaligned-source-splits",
];
const CHECKPOINT_KEYS: [&str; 8] = [
    "interval",
    "mode",
    "storage",
    "timeout",
    "min-pause",
    "max-concurrent",
    "retained",
    "tolerable-failures",
];
const SOURCE_KEYS: [&str; 7] = [
    "name",
    "connector",
    "parallelism",
    "schema",
    "format",
    "options",
    "watermark",
];
const WATERMARK_KEYS: [&str; 6] = [
    "timestamp-field",
    "out-of-orderness",
    "idleness",
    "alignment-group",
    "alignment-max-drift",
    "alignment-update-interval",
];
const TRANSFORM_KEYS: [&str; 4] = ["name", "input", "filter", "select"];
const SINK_KEYS: [&str; 7] = [
    "name",
    "input",
    "connector",
    "parallelism",
    "committer-parallelism",
    "format",
    "options",
];
const FIELD_KEYS: [&str; 3] = ["name", "type", "nullable"];
const TYPES: [&str; 6] = [
    "boolean",
    "int64",
    "float64",
    "string",
    "bytes",
    "timestamp",
];
const STRATEGIES: [&str; 4] = ["none", "fixed-delay", "exponential-delay", "failure-rate"];

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

/// Flattened options with the spans of their keys and values.
#[derive(Default)]
struct Options {
    values: BTreeMap<String, String>,
    spans: HashMap<String, (Span, Span)>,
    table_span: Span,
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

/// A transform as written, before its inputs are resolved.
struct Raw<'a> {
    name: String,
    table: &'a dyn TableLike,
    span: Span,
    inputs: Option<Vec<(String, Span)>>,
}

/// A parsed `format = ...`.
struct FormatSpec {
    id: String,
    config: ValidatedConfig,
    span: Span,
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

impl Parser {
    pub(super) fn run(text: &str, default_name: &str) -> (Option<Pipeline>, Diagnostics) {
        let mut parser = Parser {
            d: Diagnostics::new(text),
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

    // ---- generic helpers -------------------------------------------------------------------

    fn unknown_keys(&mut self, s: Section<'_>, allowed: &[&str]) {
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

    fn item<'a>(s: Section<'a>, key: &str) -> Option<(&'a Key, &'a Item)> {
        s.table.get_key_value(key).filter(|(_, i)| !i.is_none())
    }

    fn wrong_type(&mut self, s: Section<'_>, key: &str, item: &Item, expected: &str) {
        self.d.error(
            item.span().or_else(|| key_span(s.table, key)),
            format!(
                "`{key}` in {} must be {expected}, not {}",
                s.what,
                kind_of(item)
            ),
        );
    }

    fn missing(&mut self, s: Section<'_>, key: &str, example: &str) {
        self.d.error(
            unpair(s.span),
            format!("missing `{key}` in {}: add {example}", s.what),
        );
    }

    fn string(&mut self, s: Section<'_>, key: &str) -> Option<(String, Span)> {
        let (_, item) = Self::item(s, key)?;
        match item.as_str() {
            Some(v) => Some((v.to_owned(), item.span())),
            None => {
                self.wrong_type(s, key, item, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, s: Section<'_>, key: &str) -> Option<bool> {
        let (_, item) = Self::item(s, key)?;
        match item.as_bool() {
            Some(v) => Some(v),
            None => {
                self.wrong_type(s, key, item, "`true` or `false`");
                None
            }
        }
    }

    fn integer(&mut self, s: Section<'_>, key: &str, min: i64, max: i64) -> Option<i64> {
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

    fn float(&mut self, s: Section<'_>, key: &str, min: f64, max: f64) -> Option<f64> {
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

    fn duration(&mut self, s: Section<'_>, key: &str, positive: bool) -> Option<Duration> {
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

    fn section<'a>(&mut self, root: Section<'a>, key: &str, what: &'a str) -> Option<Section<'a>> {
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

    // ---- the file --------------------------------------------------------------------------

    fn pipeline(&mut self, root: &toml_edit::Table, default_name: &str) -> Option<Pipeline> {
        let root = Section {
            table: root,
            span: pair(None),
            what: "the file",
        };
        self.unknown_keys(root, &ROOT_KEYS);

        let mut name = default_name.to_owned();
        let mut parallelism = 1;
        let mut watermark_interval = None;
        let mut allow_unaligned = false;
        if let Some(s) = self.section(root, "pipeline", "[pipeline]") {
            self.unknown_keys(s, &PIPELINE_KEYS);
            if let Some((n, span)) = self.string(s, "name") {
                if n.trim().is_empty() {
                    self.d.error(span, "`name` in [pipeline] must not be empty");
                } else {
                    name = n;
                }
            }
            if let Some(p) = self.integer(s, "parallelism", 1, 1024) {
                parallelism = p as usize;
            }
            watermark_interval = self.duration(s, "watermark-interval", true);
            allow_unaligned = self
                .boolean(s, "allow-unaligned-source-splits")
                .unwrap_or(false);
        }
        let checkpointing = self.checkpointing(root);
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
            name,
            parallelism,
            watermark_interval,
            allow_unaligned_source_splits: allow_unaligned,
            checkpointing,
            restart,
            sources,
            transforms,
            sinks: sinks.into_iter().map(|(s, _)| s).collect(),
        })
    }

    fn checkpointing(&mut self, root: Section<'_>) -> Option<Checkpointing> {
        let s = self.section(root, "checkpointing", "[checkpointing]")?;
        self.unknown_keys(s, &CHECKPOINT_KEYS);
        let interval = self.duration(s, "interval", true);
        if Self::item(s, "interval").is_none() {
            self.missing(s, "interval", "interval = \"1s\"");
        }
        let mut config = CheckpointConfig::every(interval.unwrap_or(Duration::from_secs(1)));
        if let Some((mode, span)) = self.string(s, "mode") {
            match mode.as_str() {
                "exactly-once" => config.mode = CheckpointingMode::ExactlyOnce,
                "at-least-once" => config.mode = CheckpointingMode::AtLeastOnce,
                other => self.d.error(
                    span,
                    format!(
                        "`mode` in [checkpointing] must be \"exactly-once\" or \"at-least-once\", \
                         not \"{other}\"{}",
                        hint(other, ["exactly-once", "at-least-once"])
                    ),
                ),
            }
        }
        if let Some(d) = self.duration(s, "timeout", true) {
            config.timeout = d;
        }
        if let Some(d) = self.duration(s, "min-pause", false) {
            config.min_pause = d;
        }
        if let Some(n) = self.integer(s, "max-concurrent", 1, 64) {
            config.max_concurrent = n as usize;
        }
        if let Some(n) = self.integer(s, "retained", 1, 1000) {
            config.retained = n as usize;
        }
        if let Some(n) = self.integer(s, "tolerable-failures", 0, i64::from(u32::MAX)) {
            config.tolerable_failures = n as u32;
        }
        let storage = match self.string(s, "storage") {
            None => Storage::Memory,
            Some((text, span)) => self.storage(&text, span),
        };
        Some(Checkpointing { config, storage })
    }

    fn storage(&mut self, text: &str, span: Span) -> Storage {
        let text = text.trim();
        if text == "memory" {
            return Storage::Memory;
        }
        if text.is_empty() {
            self.d.error(
                span,
                "`storage` in [checkpointing] is empty: give a directory, or \"memory\"",
            );
            return Storage::Memory;
        }
        if let Some((scheme, _)) = text.split_once("://") {
            match scheme {
                "file" => return Storage::Local(PathBuf::from(&text["file://".len()..])),
                "s3" => match weir_connector_s3::S3Location::parse(text) {
                    Ok(l) => {
                        return Storage::S3 {
                            bucket: l.bucket,
                            prefix: l.prefix,
                        }
                    }
                    Err(e) => self
                        .d
                        .error(span, format!("checkpoint storage `{text}`: {e}")),
                },
                other => self.d.error(
                    span,
                    format!(
                        "checkpoint storage scheme `{other}://` is not supported: use a local \
                         directory, `file://…`, `s3://bucket/prefix`, or \"memory\""
                    ),
                ),
            }
            return Storage::Memory;
        }
        Storage::Local(PathBuf::from(text))
    }

    fn restart(&mut self, root: Section<'_>) -> RestartStrategy {
        let Some(s) = self.section(root, "restart", "[restart]") else {
            return RestartStrategy::None;
        };
        let Some((strategy, span)) = self.string(s, "strategy") else {
            if Self::item(s, "strategy").is_none() {
                self.missing(
                    s,
                    "strategy",
                    "strategy = \"fixed-delay\" (or none, exponential-delay, failure-rate)",
                );
            }
            return RestartStrategy::None;
        };
        let allowed: &[&str] = match strategy.as_str() {
            "none" => &["strategy"],
            "fixed-delay" => &["strategy", "attempts", "delay"],
            "exponential-delay" => &[
                "strategy",
                "initial-backoff",
                "max-backoff",
                "multiplier",
                "jitter",
                "reset-after",
                "max-attempts",
            ],
            "failure-rate" => &["strategy", "max-failures", "interval", "delay"],
            other => {
                self.d.error(
                    span,
                    format!(
                        "unknown restart strategy \"{other}\"{}; the strategies are none, \
                         fixed-delay, exponential-delay and failure-rate",
                        hint(other, STRATEGIES)
                    ),
                );
                return RestartStrategy::None;
            }
        };
        let all: BTreeSet<&str> = [
            "strategy",
            "attempts",
            "delay",
            "initial-backoff",
            "max-backoff",
            "multiplier",
            "jitter",
            "reset-after",
            "max-attempts",
            "max-failures",
            "interval",
        ]
        .into_iter()
        .collect();
        for (key, _) in s.table.iter() {
            if allowed.contains(&key) {
                continue;
            }
            let message = if all.contains(key) {
                format!("`{key}` does not apply to the {strategy} restart strategy")
            } else {
                format!(
                    "unknown key `{key}` in [restart]{}",
                    hint(key, allowed.iter().copied())
                )
            };
            self.d.error(key_span(s.table, key), message);
        }
        let secs = Duration::from_secs;
        let strategy = match strategy.as_str() {
            "fixed-delay" => RestartStrategy::FixedDelay {
                attempts: self
                    .integer(s, "attempts", 0, i64::from(u32::MAX))
                    .map_or(3, |n| n as u32),
                delay: self.duration(s, "delay", false).unwrap_or(secs(1)),
            },
            "exponential-delay" => {
                let RestartStrategy::ExponentialBackoff {
                    initial,
                    max,
                    multiplier,
                    jitter,
                    reset_after,
                    max_attempts,
                } = RestartStrategy::default()
                else {
                    return RestartStrategy::None;
                };
                RestartStrategy::ExponentialBackoff {
                    initial: self.duration(s, "initial-backoff", true).unwrap_or(initial),
                    max: self.duration(s, "max-backoff", true).unwrap_or(max),
                    multiplier: self
                        .float(s, "multiplier", 1.0, 1000.0)
                        .unwrap_or(multiplier),
                    jitter: self.float(s, "jitter", 0.0, 1.0).unwrap_or(jitter),
                    reset_after: self.duration(s, "reset-after", true).unwrap_or(reset_after),
                    max_attempts: self
                        .integer(s, "max-attempts", 0, i64::from(u32::MAX))
                        .map(|n| n as u32)
                        .or(max_attempts),
                }
            }
            "failure-rate" => RestartStrategy::FailureRate {
                max_failures: self
                    .integer(s, "max-failures", 1, i64::from(u32::MAX))
                    .map_or(3, |n| n as u32),
                interval: self.duration(s, "interval", true).unwrap_or(secs(60)),
                delay: self.duration(s, "delay", false).unwrap_or(secs(1)),
            },
            _ => RestartStrategy::None,
        };
        if let Err(problems) = strategy.validate() {
            self.d.error(unpair(s.span), problems);
        }
        strategy
    }

    // ---- nodes -----------------------------------------------------------------------------

    /// The entries of `[[sources]]`, `[[transforms]]` or `[[sinks]]`.
    fn entries<'a>(&mut self, root: Section<'a>, key: &str) -> Vec<(&'a dyn TableLike, Span)> {
        let Some((_, item)) = Self::item(root, key) else {
            return Vec::new();
        };
        if let Some(tables) = tables_of(item) {
            tables
        } else {
            self.d.error(
                item.span().or_else(|| key_span(root.table, key)),
                format!(
                    "`{key}` must be an array of tables ([[{key}]]), not {}",
                    kind_of(item)
                ),
            );
            Vec::new()
        }
    }

    /// The name of a node; unique among all nodes.
    fn node_name(
        &mut self,
        s: Section<'_>,
        kind: &str,
        index: usize,
        taken: &mut BTreeMap<String, &'static str>,
        kind_static: &'static str,
    ) -> String {
        match self.string(s, "name") {
            Some((name, span)) if name.trim().is_empty() => {
                self.d
                    .error(span, format!("the name of {kind} {index} is empty"));
                format!("{kind}-{index}")
            }
            Some((name, span)) => {
                if let Some(other) = taken.get(&name) {
                    self.d.error(
                        span,
                        format!(
                            "the name `{name}` is already used by a {other}: names of sources, \
                             transforms and sinks must be unique"
                        ),
                    );
                } else {
                    taken.insert(name.clone(), kind_static);
                }
                name
            }
            None => {
                if Self::item(s, "name").is_none() {
                    self.missing(s, "name", "name = \"…\"");
                }
                format!("{kind}-{index}")
            }
        }
    }

    fn connector_id(&mut self, s: Section<'_>, want_source: bool) -> Option<(String, Span)> {
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
        let ok = if want_source {
            factory.as_source().is_some()
        } else {
            factory.as_sink().is_some()
        };
        if !ok {
            let (is, isnt) = if want_source {
                ("sink", "source")
            } else {
                ("source", "sink")
            };
            self.d.error(
                span,
                format!("connector `{id}` is a {is} only: it cannot be used as a {isnt}"),
            );
            return None;
        }
        Some((id, span))
    }

    fn options(&mut self, s: Section<'_>, key: &str) -> Options {
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

    fn flatten(&mut self, table: &dyn TableLike, prefix: &str, out: &mut Options, what: &str) {
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
    fn config_errors(&mut self, errors: &ConfigErrors, options: &Options, what: &str) {
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

    fn validate_options(
        &mut self,
        set: &OptionSet,
        options: &Options,
        what: &str,
    ) -> Option<ValidatedConfig> {
        match set.validate(&options.values) {
            Ok(config) => {
                for warning in config.warnings() {
                    let key = match warning {
                        weir_connector_api::config::ConfigWarning::DeprecatedKey {
                            key, ..
                        } => key.clone(),
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

    #[allow(clippy::option_option)] // None: invalid; Some(None): no format
    fn format(&mut self, s: Section<'_>) -> Option<Option<FormatSpec>> {
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

    fn schema(&mut self, s: Section<'_>) -> Option<Schema> {
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
                    "type = \"int64\" (boolean, int64, float64, string, bytes, timestamp)",
                );
            }
            let nullable = self.boolean(f, "nullable").unwrap_or(true);
            let data_type = ty.and_then(|(t, span)| {
                let data_type = match t.as_str() {
                    "boolean" => Some(DataType::Boolean),
                    "int64" => Some(DataType::Int64),
                    "float64" => Some(DataType::Float64),
                    "string" => Some(DataType::String),
                    "bytes" => Some(DataType::Bytes),
                    "timestamp" => Some(DataType::TimestampMillis),
                    _ => None,
                };
                if data_type.is_none() {
                    let alias = match t.to_ascii_lowercase().as_str() {
                        "int" | "integer" | "bigint" | "long" | "i64" => Some("int64"),
                        "double" | "float" | "real" | "f64" => Some("float64"),
                        "bool" => Some("boolean"),
                        "text" | "varchar" | "str" | "utf8" => Some("string"),
                        "binary" | "blob" | "varbinary" => Some("bytes"),
                        "datetime" | "timestamp_ltz" | "instant" => Some("timestamp"),
                        _ => None,
                    };
                    let suggestion =
                        alias.map_or_else(|| hint(&t, TYPES), |a| format!(": did you mean `{a}`?"));
                    self.d.error(
                        span,
                        format!(
                            "unknown type `{t}` in {what}{}",
                            listed(&suggestion, "the types are", &TYPES)
                        ),
                    );
                }
                data_type
            });
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

    fn watermark(&mut self, s: Section<'_>, schema: Option<&Schema>) -> Option<WatermarkSpec> {
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
                let data_type = schema.fields.get(index).map(|f| f.data_type);
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

    fn sources(
        &mut self,
        root: Section<'_>,
        streams: &mut BTreeMap<String, Stream>,
    ) -> Vec<SourceNode> {
        let entries = self.entries(root, "sources");
        if Self::item(root, "sources").is_none() {
            self.d.error(
                None,
                "the pipeline has no source: add a [[sources]] table (`weir connectors` lists the \
                 connectors)",
            );
        }
        let mut taken = BTreeMap::new();
        let mut nodes = Vec::new();
        for (i, (table, span)) in entries.into_iter().enumerate() {
            let placeholder = format!("sources[{i}]");
            let s0 = Section {
                table,
                span: pair(span.clone()),
                what: &placeholder,
            };
            let name = self.node_name(s0, "source", i + 1, &mut taken, "source");
            let what = format!("source `{name}`");
            let s = Section {
                table,
                span: pair(span.clone()),
                what: &what,
            };
            self.unknown_keys(s, &SOURCE_KEYS);
            let connector = self.connector_id(s, true);
            let parallelism = self.integer(s, "parallelism", 1, 1024).map(|p| p as usize);
            let schema = self.schema(s);
            let format = self.format(s);
            let options = self.options(s, "options");
            let watermark = self.watermark(s, schema.as_ref());
            // Register the name even when the source has errors, so that readers of it are
            // not reported as dangling.
            // (with the schema when it is valid, so that readers of the source are checked).
            streams.entry(name.clone()).or_insert_with(|| Stream {
                schema: schema.clone(),
                span: span.clone(),
                bounded: true,
            });
            let Some((id, id_span)) = connector else {
                continue;
            };
            let Some(factory) = find_connector(&id).and_then(|f| f.as_source()) else {
                continue;
            };
            let config = self.validate_options(&factory.source_options(), &options, &what);
            let (Some(config), Some(schema), Some(format)) = (config, schema, format) else {
                continue;
            };
            if let Some(f) = &format {
                self.check_format(f, &schema, true, &what);
            }
            let ctx = FactoryContext {
                name: &name,
                schema: &schema,
                format: format.as_ref().map(|f| (f.id.as_str(), &f.config)),
            };
            match factory.create_source(&config, &ctx) {
                Ok(source) => {
                    let bounded = source.boundedness() == Boundedness::Bounded;
                    streams.insert(
                        name.clone(),
                        Stream {
                            schema: Some(schema.clone()),
                            span: span.clone(),
                            bounded,
                        },
                    );
                    nodes.push(SourceNode {
                        name,
                        connector: id,
                        source,
                        schema,
                        parallelism,
                        watermark,
                    });
                }
                Err(e) => self.factory_error(&e, &options, format.as_ref(), id_span, &what, &id),
            }
        }
        nodes
    }

    fn check_format(&mut self, f: &FormatSpec, schema: &Schema, decode: bool, what: &str) {
        let Some(format) = find_format(&f.id) else {
            return;
        };
        let result = if decode {
            format.decoder(schema, &f.config).map(|_| ())
        } else {
            format.encoder(schema, &f.config).map(|_| ())
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

    fn factory_error(
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

    /// `input = "a"` or `input = ["a", "b"]`.
    fn inputs(&mut self, s: Section<'_>) -> Option<Vec<(String, Span)>> {
        let Some((_, item)) = Self::item(s, "input") else {
            self.missing(s, "input", "input = \"<a source or transform>\"");
            return None;
        };
        if let Some(name) = item.as_str() {
            return Some(vec![(name.to_owned(), item.span())]);
        }
        if let Some(array) = item.as_array() {
            let mut inputs = Vec::new();
            for v in array {
                match v.as_str() {
                    Some(name) => inputs.push((name.to_owned(), v.span())),
                    None => self.d.error(
                        v.span(),
                        format!("`input` of {} must list names (strings)", s.what),
                    ),
                }
            }
            if inputs.is_empty() {
                self.d
                    .error(item.span(), format!("`input` of {} is empty", s.what));
                return None;
            }
            return Some(inputs);
        }
        self.wrong_type(s, "input", item, "a name or a list of names");
        None
    }

    /// The transforms that could be built, and the name and inputs of every transform.
    fn transforms(
        &mut self,
        root: Section<'_>,
        streams: &mut BTreeMap<String, Stream>,
    ) -> (Vec<TransformNode>, Vec<(String, Vec<String>)>) {
        let entries = self.entries(root, "transforms");
        let mut taken: BTreeMap<String, &'static str> =
            streams.keys().map(|k| (k.clone(), "source")).collect();
        // First pass: names and raw definitions.
        let mut raws: Vec<Raw<'_>> = Vec::new();
        for (i, (table, span)) in entries.into_iter().enumerate() {
            let placeholder = format!("transforms[{i}]");
            let s0 = Section {
                table,
                span: pair(span.clone()),
                what: &placeholder,
            };
            let name = self.node_name(s0, "transform", i + 1, &mut taken, "transform");
            let what = format!("transform `{name}`");
            let s = Section {
                table,
                span: pair(span.clone()),
                what: &what,
            };
            self.unknown_keys(s, &TRANSFORM_KEYS);
            let inputs = self.inputs(s);
            raws.push(Raw {
                name,
                table,
                span,
                inputs,
            });
        }
        let names: BTreeSet<String> = raws.iter().map(|r| r.name.clone()).collect();
        // Resolve in dependency order.
        let mut done: Vec<TransformNode> = Vec::new();
        let mut pending: Vec<usize> = (0..raws.len()).collect();
        loop {
            let before = pending.len();
            let mut still = Vec::new();
            for index in pending {
                let Some(raw) = raws.get(index) else { continue };
                let ready = raw.inputs.as_ref().is_none_or(|inputs| {
                    inputs
                        .iter()
                        .all(|(n, _)| streams.contains_key(n) || !names.contains(n))
                });
                if !ready {
                    still.push(index);
                    continue;
                }
                let what = format!("transform `{}`", raw.name);
                let s = Section {
                    table: raw.table,
                    span: pair(raw.span.clone()),
                    what: &what,
                };
                let schema = raw
                    .inputs
                    .as_ref()
                    .and_then(|inputs| self.input_schema(inputs, streams, &what));
                let bounded = raw.inputs.as_ref().is_some_and(|inputs| {
                    inputs
                        .iter()
                        .all(|(n, _)| streams.get(n).is_some_and(|s| s.bounded))
                });
                let filter = match (self.string(s, "filter"), &schema) {
                    (Some((text, span)), Some(schema)) => match Expr::parse(&text, schema) {
                        Ok(expr) => Some(expr),
                        Err(e) => {
                            let at = span.map(|r| self.inside_string(r, &text, e.offset));
                            self.d
                                .error(at, format!("`filter` of {what}: {}", e.message));
                            None
                        }
                    },
                    _ => None,
                };
                let select = match (Self::item(s, "select"), &schema) {
                    (Some((_, item)), Some(schema)) => self.select(item, schema, &what),
                    _ => None,
                };
                let out_schema = match (&schema, &select) {
                    (Some(schema), Some(indices)) => Some(Schema::new(
                        indices
                            .iter()
                            .filter_map(|i| schema.fields.get(*i).cloned())
                            .collect(),
                    )),
                    (Some(schema), None) => Some(schema.clone()),
                    _ => None,
                };
                streams.insert(
                    raw.name.clone(),
                    Stream {
                        schema: out_schema.clone(),
                        span: raw.span.clone(),
                        bounded,
                    },
                );
                if let (Some(out), Some(inputs)) = (out_schema, &raw.inputs) {
                    done.push(TransformNode {
                        name: raw.name.clone(),
                        inputs: inputs.iter().map(|(n, _)| n.clone()).collect(),
                        filter,
                        select,
                        schema: out,
                    });
                }
            }
            pending = still;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        for index in pending {
            if let Some(raw) = raws.get(index) {
                self.d.error(
                    raw.span.clone(),
                    format!(
                        "transform `{}` is part of a cycle: its input depends on its own output",
                        raw.name
                    ),
                );
            }
        }
        let inputs = raws
            .iter()
            .map(|r| {
                let names = r.inputs.iter().flatten().map(|(n, _)| n.clone()).collect();
                (r.name.clone(), names)
            })
            .collect();
        (done, inputs)
    }

    /// The span of character `offset` of `value`, a string written at `span` of the file: the
    /// character itself when the file spells the string plainly in one pair of quotes, else
    /// the string's first quote (escapes and multi-line strings shift the characters).
    fn inside_string(&self, span: Range<usize>, value: &str, offset: usize) -> Range<usize> {
        let raw = self.source.get(span.clone()).unwrap_or_default();
        let plain = raw.len() == value.len() + 2
            && raw.get(1..raw.len() - 1) == Some(value)
            && (raw.starts_with('"') || raw.starts_with('\''));
        let start = if plain {
            span.start
                + 1
                + value
                    .char_indices()
                    .nth(offset)
                    .map_or(value.len(), |(b, _)| b)
        } else {
            span.start
        };
        start..start + 1
    }

    fn select(&mut self, item: &Item, schema: &Schema, what: &str) -> Option<Vec<usize>> {
        let Some(array) = item.as_array() else {
            self.d.error(
                item.span(),
                format!("`select` of {what} must be a list of field names"),
            );
            return None;
        };
        let mut indices = Vec::new();
        let mut ok = true;
        for v in array {
            let Some(name) = v.as_str() else {
                self.d.error(
                    v.span(),
                    format!("`select` of {what} must list field names (strings)"),
                );
                ok = false;
                continue;
            };
            match schema.index_of(name) {
                Some(i) if indices.contains(&i) => {
                    self.d
                        .error(v.span(), format!("`select` of {what} names `{name}` twice"));
                    ok = false;
                }
                Some(i) => indices.push(i),
                None => {
                    self.d.error(
                        v.span(),
                        format!(
                            "`select` of {what}: there is no field `{name}` in its input{}",
                            hint(name, schema.fields.iter().map(|f| f.name.as_str()))
                        ),
                    );
                    ok = false;
                }
            }
        }
        if indices.is_empty() && ok {
            self.d
                .error(item.span(), format!("`select` of {what} keeps no field"));
            return None;
        }
        ok.then_some(indices)
    }

    /// The schema of the inputs (all must agree), or `None` after reporting why.
    fn input_schema(
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

    fn sinks(
        &mut self,
        root: Section<'_>,
        streams: &BTreeMap<String, Stream>,
        sources: &[SourceNode],
        transforms: &[(String, Vec<String>)],
    ) -> Vec<(SinkNode, Span)> {
        let entries = self.entries(root, "sinks");
        if Self::item(root, "sinks").is_none() {
            self.d.error(
                None,
                "the pipeline has no sink: add a [[sinks]] table (`weir connectors` lists the \
                 connectors)",
            );
        }
        let mut taken: BTreeMap<String, &'static str> = sources
            .iter()
            .map(|s| (s.name.clone(), "source"))
            .chain(transforms.iter().map(|(t, _)| (t.clone(), "transform")))
            .collect();
        let mut nodes = Vec::new();
        // Who reads each stream: the runtime gives every stream exactly one consumer.
        let mut readers: BTreeMap<String, Vec<(String, Span)>> = BTreeMap::new();
        for (name, inputs) in transforms {
            for input in inputs {
                readers
                    .entry(input.clone())
                    .or_default()
                    .push((format!("transform `{name}`"), None));
            }
        }
        for (i, (table, span)) in entries.into_iter().enumerate() {
            let placeholder = format!("sinks[{i}]");
            let s0 = Section {
                table,
                span: pair(span.clone()),
                what: &placeholder,
            };
            let name = self.node_name(s0, "sink", i + 1, &mut taken, "sink");
            let what = format!("sink `{name}`");
            let s = Section {
                table,
                span: pair(span.clone()),
                what: &what,
            };
            self.unknown_keys(s, &SINK_KEYS);
            let inputs = self.inputs(s);
            let connector = self.connector_id(s, false);
            let parallelism = self.integer(s, "parallelism", 1, 1024).map(|p| p as usize);
            let committer_parallelism = self
                .integer(s, "committer-parallelism", 1, 1024)
                .and_then(|p| NonZeroUsize::new(p as usize));
            let format = self.format(s);
            let options = self.options(s, "options");
            if let Some(inputs) = &inputs {
                for (input, ispan) in inputs {
                    readers
                        .entry(input.clone())
                        .or_default()
                        .push((what.clone(), ispan.clone()));
                }
            }
            let schema = inputs
                .as_ref()
                .and_then(|inputs| self.input_schema(inputs, streams, &what));
            let Some((id, id_span)) = connector else {
                continue;
            };
            let Some(factory) = find_connector(&id).and_then(|f| f.as_sink()) else {
                continue;
            };
            let config = self.validate_options(&factory.sink_options(), &options, &what);
            let (Some(config), Some(schema), Some(format), Some(inputs)) =
                (config, schema, format, inputs)
            else {
                continue;
            };
            if let Some(f) = &format {
                self.check_format(f, &schema, false, &what);
            }
            let ctx = FactoryContext {
                name: &name,
                schema: &schema,
                format: format.as_ref().map(|f| (f.id.as_str(), &f.config)),
            };
            match factory.create_sink(&config, &ctx) {
                Ok(sink) => {
                    let two_phase = Arc::new(sink.clone()).capabilities().committer().is_some();
                    let guarantee = config.to_map().get("sink.delivery-guarantee").cloned();
                    let exactly_once = guarantee.map_or(two_phase, |g| g == "exactly-once");
                    nodes.push((
                        SinkNode {
                            name,
                            connector: id,
                            sink,
                            inputs: inputs.into_iter().map(|(n, _)| n).collect(),
                            parallelism,
                            committer_parallelism,
                            exactly_once,
                        },
                        id_span,
                    ));
                }
                Err(e) => self.factory_error(&e, &options, format.as_ref(), id_span, &what, &id),
            }
        }
        let has_sinks = Self::item(root, "sinks").is_some();
        for (stream, info) in streams {
            match readers.get(stream).map(Vec::as_slice) {
                None | Some([]) if has_sinks => self.d.error(
                    info.span.clone(),
                    format!(
                        "`{stream}` is never read: add a sink (or transform) with \
                         input = \"{stream}\", or remove it"
                    ),
                ),
                None | Some([] | [_]) => {}
                Some(many) => {
                    let who: Vec<&str> = many.iter().map(|(w, _)| w.as_str()).collect();
                    let span = many
                        .get(1)
                        .and_then(|(_, s)| s.clone())
                        .or(info.span.clone());
                    self.d.error(
                        span,
                        format!(
                            "`{stream}` is read by {}: every stream has exactly one reader in \
                             the embedded runtime; declare a second source for the second reader",
                            who.join(" and ")
                        ),
                    );
                }
            }
        }
        nodes
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

/// A scalar TOML value as option text.
fn scalar(v: &TomlValue) -> Option<String> {
    match v {
        TomlValue::String(s) => Some(s.value().clone()),
        TomlValue::Integer(i) => Some(i.value().to_string()),
        TomlValue::Float(f) => Some(f.value().to_string()),
        TomlValue::Boolean(b) => Some(b.value().to_string()),
        TomlValue::Datetime(d) => Some(d.value().to_string()),
        _ => None,
    }
}
