//! The nodes of the graph: the one parser every `[[sources]]`, `[[transforms]]` and `[[sinks]]`
//! entry goes through (its unique name, its keys, what it reads), then the sources and the
//! sinks, and the check that every stream has exactly one reader.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use toml_edit::TableLike;
use weir_connector_api::factory::{find_connector, FactoryContext};
use weir_connector_api::sink::Sink;
use weir_connector_api::source::{Boundedness, Source};

use super::super::{ConnectorSettings, SinkNode, SourceNode};
use super::connector::Role;
use super::{key_span, kind_of, pair, tables_of, Parser, Section, Span, Stream};

const SOURCE_KEYS: [&str; 7] = [
    "name",
    "connector",
    "parallelism",
    "schema",
    "format",
    "options",
    "watermark",
];
const TRANSFORM_KEYS: [&str; 5] = ["name", "input", "filter", "lookup", "select"];
const SINK_KEYS: [&str; 7] = [
    "name",
    "input",
    "connector",
    "parallelism",
    "committer-parallelism",
    "format",
    "options",
];

/// Which array of tables a node is an entry of.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum NodeKind {
    /// `[[sources]]`.
    Source,
    /// `[[transforms]]`.
    Transform,
    /// `[[sinks]]`.
    Sink,
}

impl NodeKind {
    /// How messages call one node of this kind.
    pub(super) fn word(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Transform => "transform",
            Self::Sink => "sink",
        }
    }

    /// The key of the array of tables.
    fn key(self) -> &'static str {
        match self {
            Self::Source => "sources",
            Self::Transform => "transforms",
            Self::Sink => "sinks",
        }
    }

    /// The keys an entry may have.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Source => &SOURCE_KEYS,
            Self::Transform => &TRANSFORM_KEYS,
            Self::Sink => &SINK_KEYS,
        }
    }
}

/// An entry of `[[sources]]`, `[[transforms]]` or `[[sinks]]` with what every kind shares.
pub(super) struct Node<'a> {
    /// Its name (a placeholder like `sink-2` when the name is missing or empty).
    pub(super) name: String,
    /// How messages name it, e.g. ``sink `out` ``.
    pub(super) what: String,
    /// Its table.
    pub(super) table: &'a dyn TableLike,
    /// Where its table is.
    pub(super) span: Span,
    /// The names its `input` lists, with their spans (transforms and sinks); `None` for a
    /// source, or when `input` is missing or wrong (already reported).
    pub(super) inputs: Option<Vec<(String, Span)>>,
}

impl Node<'_> {
    /// Its table as a section named by [`Node::what`].
    pub(super) fn section(&self) -> Section<'_> {
        Section {
            table: self.table,
            span: pair(self.span.clone()),
            what: &self.what,
        }
    }
}

impl Parser {
    /// The entries of `[[sources]]`, `[[transforms]]` or `[[sinks]]`: each named (`taken`
    /// holds the names already used, and gets these), its keys checked, its `input` read.
    pub(super) fn nodes<'a>(
        &mut self,
        root: Section<'a>,
        kind: NodeKind,
        taken: &mut BTreeMap<String, &'static str>,
    ) -> Vec<Node<'a>> {
        let entries = self.entries(root, kind.key());
        if kind != NodeKind::Transform && Self::item(root, kind.key()).is_none() {
            self.d.error(
                None,
                format!(
                    "the pipeline has no {}: add a [[{}]] table (`weir connectors` lists the \
                     connectors)",
                    kind.word(),
                    kind.key()
                ),
            );
        }
        let mut nodes = Vec::new();
        for (i, (table, span)) in entries.into_iter().enumerate() {
            let placeholder = format!("{}[{i}]", kind.key());
            let s0 = Section {
                table,
                span: pair(span.clone()),
                what: &placeholder,
            };
            let name = self.node_name(s0, kind, i + 1, taken);
            let mut node = Node {
                what: format!("{} `{name}`", kind.word()),
                name,
                table,
                span,
                inputs: None,
            };
            self.unknown_keys(node.section(), kind.keys());
            if kind != NodeKind::Source {
                node.inputs = self.inputs(node.section());
            }
            nodes.push(node);
        }
        nodes
    }

    /// The tables of `[[sources]]`, `[[transforms]]` or `[[sinks]]`.
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
        kind: NodeKind,
        index: usize,
        taken: &mut BTreeMap<String, &'static str>,
    ) -> String {
        let kind = kind.word();
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
                    taken.insert(name.clone(), kind);
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
    pub(super) fn sources(
        &mut self,
        root: Section<'_>,
        streams: &mut BTreeMap<String, Stream>,
    ) -> Vec<SourceNode> {
        let mut taken = BTreeMap::new();
        let mut nodes = Vec::new();
        for node in self.nodes(root, NodeKind::Source, &mut taken) {
            let s = node.section();
            let connector = self.connector_id(s, Role::Source);
            let parallelism = self.integer(s, "parallelism", 1, 1024).map(|p| p as usize);
            let schema = self.schema(s);
            let format = self.format(s);
            let options = self.options(s, "options");
            let watermark = self.watermark(s, schema.as_ref());
            // Register the name even when the source has errors, so that readers of it are
            // not reported as dangling.
            // (with the schema when it is valid, so that readers of the source are checked).
            streams.entry(node.name.clone()).or_insert_with(|| Stream {
                schema: schema.clone(),
                span: node.span.clone(),
                bounded: true,
            });
            let Some((id, id_span)) = connector else {
                continue;
            };
            let Some(factory) = find_connector(&id).and_then(|f| f.as_source()) else {
                continue;
            };
            let what = &node.what;
            let config = self.validate_options(&factory.source_options(), &options, what);
            let (Some(config), Some(schema), Some(format)) = (config, schema, format) else {
                continue;
            };
            if let Some(f) = &format {
                self.check_format(f, &schema, Role::Source, what);
            }
            let ctx = FactoryContext {
                name: &node.name,
                schema: &schema,
                format: format.as_ref().map(|f| (f.id.as_str(), &f.config)),
            };
            match factory.create_source_in_job(&config, &ctx, &self.job) {
                Ok(source) => {
                    let bounded = source.boundedness() == Boundedness::Bounded;
                    streams.insert(
                        node.name.clone(),
                        Stream {
                            schema: Some(schema.clone()),
                            span: node.span.clone(),
                            bounded,
                        },
                    );
                    let settings = ConnectorSettings {
                        options: config.clone(),
                        format: format.as_ref().map(|f| (f.id.clone(), f.config.clone())),
                        schema: schema.clone(),
                        job: self.job.clone(),
                    };
                    nodes.push(SourceNode {
                        name: node.name,
                        connector: id,
                        source,
                        schema,
                        parallelism,
                        watermark,
                        settings,
                    });
                }
                Err(e) => self.factory_error(&e, &options, format.as_ref(), id_span, what, &id),
            }
        }
        nodes
    }

    pub(super) fn sinks(
        &mut self,
        root: Section<'_>,
        streams: &BTreeMap<String, Stream>,
        sources: &[SourceNode],
        transforms: &[(String, Vec<String>)],
    ) -> Vec<(SinkNode, Span)> {
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
        for node in self.nodes(root, NodeKind::Sink, &mut taken) {
            let s = node.section();
            let what = &node.what;
            let connector = self.connector_id(s, Role::Sink);
            let parallelism = self.integer(s, "parallelism", 1, 1024).map(|p| p as usize);
            let committer_parallelism = self
                .integer(s, "committer-parallelism", 1, 1024)
                .and_then(|p| NonZeroUsize::new(p as usize));
            let format = self.format(s);
            let options = self.options(s, "options");
            if let Some(inputs) = &node.inputs {
                for (input, ispan) in inputs {
                    readers
                        .entry(input.clone())
                        .or_default()
                        .push((what.clone(), ispan.clone()));
                }
            }
            let schema = node
                .inputs
                .as_ref()
                .and_then(|inputs| self.input_schema(inputs, streams, what));
            let Some((id, id_span)) = connector else {
                continue;
            };
            let Some(factory) = find_connector(&id).and_then(|f| f.as_sink()) else {
                continue;
            };
            let config = self.validate_options(&factory.sink_options(), &options, what);
            let (Some(config), Some(schema), Some(format), Some(inputs)) =
                (config, schema, format, &node.inputs)
            else {
                continue;
            };
            if let Some(f) = &format {
                self.check_format(f, &schema, Role::Sink, what);
            }
            let ctx = FactoryContext {
                name: &node.name,
                schema: &schema,
                format: format.as_ref().map(|f| (f.id.as_str(), &f.config)),
            };
            match factory.create_sink_in_job(&config, &ctx, &self.job) {
                Ok(sink) => {
                    let two_phase = Arc::new(sink.clone()).capabilities().committer().is_some();
                    let guarantee = config.to_map().get("sink.delivery-guarantee").cloned();
                    let exactly_once = guarantee.map_or(two_phase, |g| g == "exactly-once");
                    nodes.push((
                        SinkNode {
                            name: node.name.clone(),
                            connector: id,
                            sink,
                            inputs: inputs.iter().map(|(n, _)| n.clone()).collect(),
                            parallelism,
                            committer_parallelism,
                            exactly_once,
                            settings: ConnectorSettings {
                                options: config.clone(),
                                format: format.as_ref().map(|f| (f.id.clone(), f.config.clone())),
                                schema: schema.clone(),
                                job: self.job.clone(),
                            },
                        },
                        id_span,
                    ));
                }
                Err(e) => self.factory_error(&e, &options, format.as_ref(), id_span, what, &id),
            }
        }
        self.readers(root, streams, &readers);
        nodes
    }

    /// Reports streams that nobody reads (when the file has sinks at all) and streams that
    /// more than one node reads.
    fn readers(
        &mut self,
        root: Section<'_>,
        streams: &BTreeMap<String, Stream>,
        readers: &BTreeMap<String, Vec<(String, Span)>>,
    ) {
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
    }
}
