//! The `lookup` of a transform: the table (a connector with its schema, format and options),
//! the key fields, the join type, the added fields, the cache, and the settings of an
//! asynchronous table; the table is created as validation goes, so its factory checks its
//! options, and the output schema is the input's fields followed by the added ones.

use weir_connector_api::factory::{
    find_connector, ConnectorFactory, FactoryContext, LookupProvider,
};
use weir_connector_api::row::{Field, Schema};
use weir_runtime::lookup::JoinType;

use super::super::diag::hint;
use super::super::lookup::{Answers, LookupNode, LookupTable};
use super::super::ConnectorSettings;
use super::{key_span, kind_of, Parser, Section, Span};

const LOOKUP_KEYS: [&str; 13] = [
    "connector",
    "schema",
    "format",
    "options",
    "keys",
    "join",
    "fields",
    "cache",
    "capacity",
    "order",
    "timeout",
    "on-timeout",
    "retry",
];

impl Parser {
    /// The `lookup` of transform `what` reading rows of `input`: the join and its output
    /// schema, or `None` after reporting every problem.
    pub(super) fn lookup(
        &mut self,
        s: Section<'_>,
        input: &Schema,
        what: &str,
    ) -> Option<(LookupNode, Schema)> {
        let lwhat = format!("the lookup of {what}");
        let l = self.section(s, "lookup", &lwhat)?;
        self.unknown_keys(l, &LOOKUP_KEYS);
        let connector = self.lookup_connector(l);
        let schema = self.schema(l);
        let format = self.format(l);
        let options = self.options(l, "options");
        let keys = schema
            .as_ref()
            .and_then(|table| self.lookup_keys(l, input, table));
        let join_type = self.join_type(l);
        let added = schema
            .as_ref()
            .and_then(|table| self.added_fields(l, input, table, keys.as_deref()));
        let cache = self.cache(l);
        let async_options = self.async_options(l);
        // What can be checked before the table exists: its options and, for a table read
        // through a source, its cache and asynchronous settings.
        let mut config = None;
        let mut scan_trigger = None;
        if let Some((_, _, factory)) = &connector {
            if let Some(lookups) = factory.as_lookup() {
                config = self.validate_options(&lookups.lookup_options(), &options, &lwhat);
            } else if let Some(sources) = factory.as_source() {
                config = self.validate_options(&sources.source_options(), &options, &lwhat);
                scan_trigger = cache
                    .as_ref()
                    .and_then(|cache| self.full_trigger(l, cache, &lwhat));
            }
        }
        let ((id, id_span, factory), schema, Some(format), keys, join_type, added, cache, config) = (
            connector?, schema?, format, keys?, join_type?, added?, cache?, config?,
        ) else {
            return None;
        };
        let settings = ConnectorSettings {
            options: config.clone(),
            format: format.as_ref().map(|f| (f.id.clone(), f.config.clone())),
            schema: schema.clone(),
            job: self.job.clone(),
        };
        let key_names: Vec<String> = keys
            .iter()
            .filter_map(|(_, t)| schema.fields.get(*t).map(|f| f.name.clone()))
            .collect();
        let table_keys: Vec<usize> = keys.iter().map(|(_, t)| *t).collect();
        let ctx: FactoryContext<'_> = settings.context(&id);
        let table = if let Some(lookups) = factory.as_lookup() {
            let provider = match lookups.create_lookup(&config, &ctx, &key_names) {
                Ok(provider) => provider,
                Err(e) => {
                    self.factory_error(&e, &options, format.as_ref(), id_span, &lwhat, &id);
                    return None;
                }
            };
            match provider {
                LookupProvider::Sync(_) => {
                    let cache = self.function_cache(l, Answers::Synchronously, cache, &lwhat)?;
                    LookupTable::Function {
                        factory: lookups,
                        answers: Answers::Synchronously,
                        cache,
                    }
                }
                LookupProvider::Async(_) => {
                    let cache = self.function_cache(l, Answers::Asynchronously, cache, &lwhat)?;
                    LookupTable::Function {
                        factory: lookups,
                        answers: Answers::Asynchronously,
                        cache,
                    }
                }
                LookupProvider::Scan(source) => {
                    let trigger = self.full_trigger(l, &cache, &lwhat)?;
                    self.full_table(source, table_keys, trigger, id_span, &lwhat)?
                }
                _ => {
                    self.d.error(
                        id_span,
                        format!(
                            "{lwhat}: connector `{id}` offers a kind of lookup table this build \
                             of weir does not know; upgrade weir"
                        ),
                    );
                    return None;
                }
            }
        } else {
            let sources = factory.as_source()?;
            if let Some(f) = &format {
                self.check_format(f, &schema, super::connector::Role::Source, &lwhat);
            }
            let source = match sources.create_source_in_job(&config, &ctx, &self.job) {
                Ok(source) => source,
                Err(e) => {
                    self.factory_error(&e, &options, format.as_ref(), id_span, &lwhat, &id);
                    return None;
                }
            };
            self.full_table(source, table_keys, scan_trigger?, id_span, &lwhat)?
        };
        let mut fields = input.fields.clone();
        for index in &added {
            if let Some(field) = schema.fields.get(*index) {
                let nullable = field.nullable || join_type == JoinType::LeftOuter;
                fields.push(Field::new(
                    field.name.clone(),
                    field.data_type.clone(),
                    nullable,
                ));
            }
        }
        let joined = Schema::new(fields);
        Some((
            LookupNode {
                connector: id,
                settings,
                table,
                keys,
                added,
                join_type,
                async_options,
                joined: joined.clone(),
            },
            joined,
        ))
    }

    /// `connector = "…"`: a connector with a lookup table or a source.
    fn lookup_connector(
        &mut self,
        l: Section<'_>,
    ) -> Option<(String, Span, &'static dyn ConnectorFactory)> {
        let Some((id, span)) = self.string(l, "connector") else {
            if Self::item(l, "connector").is_none() {
                self.missing(
                    l,
                    "connector",
                    "connector = \"files\" (a connector with a lookup table or a source)",
                );
            }
            return None;
        };
        let Some(factory) = find_connector(&id) else {
            let all = weir_connector_api::factory::connectors();
            let ids: Vec<&str> = all
                .iter()
                .filter(|f| f.as_lookup().is_some() || f.as_source().is_some())
                .map(|f| f.info().identifier)
                .collect();
            self.d.error(
                span,
                format!(
                    "unknown connector `{id}` in {}{}",
                    l.what,
                    super::listed(
                        &hint(&id, ids.iter().copied()),
                        "connectors that can be lookup tables",
                        &ids
                    )
                ),
            );
            return None;
        };
        if factory.as_lookup().is_none() && factory.as_source().is_none() {
            self.d.error(
                span,
                format!(
                    "connector `{id}` has neither a lookup table nor a source: it cannot be \
                     the table of {}",
                    l.what
                ),
            );
            return None;
        }
        Some((id, span, factory))
    }

    /// `keys = { <input field> = "<table field>", … }`: positions in the input and the table.
    fn lookup_keys(
        &mut self,
        l: Section<'_>,
        input: &Schema,
        table: &Schema,
    ) -> Option<Vec<(usize, usize)>> {
        let Some((k, item)) = Self::item(l, "keys") else {
            self.missing(l, "keys", "keys = { <input field> = \"<table field>\" }");
            return None;
        };
        let Some(entries) = item.as_table_like() else {
            self.wrong_type(
                l,
                "keys",
                item,
                "a table of input fields and table fields, e.g. { customer = \"id\" }",
            );
            return None;
        };
        let span = item.span().or_else(|| k.span());
        let mut keys = Vec::new();
        let mut ok = true;
        for (name, value) in entries.iter() {
            let kspan = key_span(entries, name);
            let Some(input_index) = input.index_of(name) else {
                self.d.error(
                    kspan,
                    format!(
                        "`keys` of {}: the input has no field `{name}`{}",
                        l.what,
                        hint(name, input.fields.iter().map(|f| f.name.as_str()))
                    ),
                );
                ok = false;
                continue;
            };
            let Some(table_name) = value.as_str() else {
                self.d.error(
                    value.span().or(kspan),
                    format!(
                        "`keys` of {}: `{name}` must name a field of the table (a string), not {}",
                        l.what,
                        kind_of(value)
                    ),
                );
                ok = false;
                continue;
            };
            let Some(table_index) = table.index_of(table_name) else {
                self.d.error(
                    value.span(),
                    format!(
                        "`keys` of {}: the table has no field `{table_name}`{}",
                        l.what,
                        hint(table_name, table.fields.iter().map(|f| f.name.as_str()))
                    ),
                );
                ok = false;
                continue;
            };
            let (a, b) = (&input.fields[input_index], &table.fields[table_index]);
            if a.data_type != b.data_type {
                self.d.error(
                    value.span(),
                    format!(
                        "`keys` of {}: input field `{name}` is {} but table field \
                         `{table_name}` is {}: key fields must have the same type",
                        l.what, a.data_type, b.data_type
                    ),
                );
                ok = false;
                continue;
            }
            keys.push((input_index, table_index));
        }
        if keys.is_empty() && ok {
            self.d.error(
                span,
                format!("`keys` of {} names no field: add one", l.what),
            );
            return None;
        }
        ok.then_some(keys)
    }

    /// `join = "inner" | "left"`.
    fn join_type(&mut self, l: Section<'_>) -> Option<JoinType> {
        let Some((text, span)) = self.string(l, "join") else {
            return Self::item(l, "join").is_none().then_some(JoinType::Inner);
        };
        match text.as_str() {
            "inner" => Some(JoinType::Inner),
            "left" | "left-outer" => Some(JoinType::LeftOuter),
            other => {
                self.d.error(
                    span,
                    format!(
                        "`join` of {} must be \"inner\" (rows without a match are dropped) or \
                         \"left\" (they are kept, the table's fields null), not `{other}`",
                        l.what
                    ),
                );
                None
            }
        }
    }

    /// `fields = [...]`: the table fields added to each row; by default every field that is
    /// not a key. A name the input has already is refused.
    fn added_fields(
        &mut self,
        l: Section<'_>,
        input: &Schema,
        table: &Schema,
        keys: Option<&[(usize, usize)]>,
    ) -> Option<Vec<usize>> {
        let (listed, span) = match Self::item(l, "fields") {
            Some((k, item)) => {
                let span = item.span().or_else(|| k.span());
                let Some(array) = item.as_array() else {
                    self.wrong_type(l, "fields", item, "a list of field names of the table");
                    return None;
                };
                let mut indices = Vec::new();
                for v in array {
                    let Some(name) = v.as_str() else {
                        self.d.error(
                            v.span(),
                            format!("`fields` of {} must list field names (strings)", l.what),
                        );
                        return None;
                    };
                    let Some(index) = table.index_of(name) else {
                        self.d.error(
                            v.span(),
                            format!(
                                "`fields` of {}: the table has no field `{name}`{}",
                                l.what,
                                hint(name, table.fields.iter().map(|f| f.name.as_str()))
                            ),
                        );
                        return None;
                    };
                    indices.push(index);
                }
                (indices, span)
            }
            None => {
                let keys = keys?;
                let indices = (0..table.fields.len())
                    .filter(|i| !keys.iter().any(|(_, t)| t == i))
                    .collect();
                (indices, l.span.map(|(a, b)| a..b))
            }
        };
        let mut ok = true;
        for index in &listed {
            let Some(field) = table.fields.get(*index) else {
                continue;
            };
            if input.index_of(&field.name).is_some() {
                self.d.error(
                    span.clone(),
                    format!(
                        "{}: table field `{}` would be added, but the input has a field of \
                         that name: list the table fields to add in `fields` without it",
                        l.what, field.name
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(listed)
    }
}
