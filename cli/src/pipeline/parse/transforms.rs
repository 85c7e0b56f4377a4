//! The transforms: resolved in dependency order (a transform after its inputs), each with
//! its `filter`, `lookup` and `select` checked against the schema it reads.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use toml_edit::Item;
use weir_connector_api::row::Schema;

use super::super::diag::hint;
use super::super::expr::Expr;
use super::super::TransformNode;
use super::nodes::NodeKind;
use super::{Parser, Section, Stream};

impl Parser {
    /// The transforms that could be built, and the name and inputs of every transform.
    pub(super) fn transforms(
        &mut self,
        root: Section<'_>,
        streams: &mut BTreeMap<String, Stream>,
    ) -> (Vec<TransformNode>, Vec<(String, Vec<String>)>) {
        let mut taken: BTreeMap<String, &'static str> =
            streams.keys().map(|k| (k.clone(), "source")).collect();
        // First pass: names and raw definitions.
        let raws = self.nodes(root, NodeKind::Transform, &mut taken);
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
                let what = &raw.what;
                let s = raw.section();
                let schema = raw
                    .inputs
                    .as_ref()
                    .and_then(|inputs| self.input_schema(inputs, streams, what));
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
                // A lookup joins the filtered rows; `select` picks from the joined ones.
                let (lookup, schema) = match (Self::item(s, "lookup"), schema) {
                    (Some(_), Some(schema)) => match self.lookup(s, &schema, what) {
                        Some((lookup, joined)) => (Some(lookup), Some(joined)),
                        None => (None, None),
                    },
                    (_, schema) => (None, schema),
                };
                let select = match (Self::item(s, "select"), &schema) {
                    (Some((_, item)), Some(schema)) => self.select(item, schema, what),
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
                        lookup,
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
}
