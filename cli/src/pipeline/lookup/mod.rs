//! The `lookup` of a transform: a validated lookup join ([`LookupNode`]) and how it joins a
//! stream of rows in the runtime (`DataStream::lookup_join`).
//!
//! The table is one of two kinds:
//!
//! - a connector's **lookup table** (API 1.1 `LookupFactory`): its lookup function answers
//!   key by key, synchronously or asynchronously, optionally behind a partial cache (moka);
//!   each subtask gets its own function, all share one cache;
//! - a **scanned table**: any connector's bounded source (the `files` connector reading a
//!   Parquet, CSV or JSON file, `datagen` with a row count) or a lookup factory's `Scan`
//!   provider, held whole in a full cache that every subtask shares and that is reloaded on
//!   its trigger (FLIP-221's scan reuse).

mod functions;
mod state;

use std::sync::Arc;
use std::time::Duration;

use weir_connector_api::config::ConfigErrors;
use weir_connector_api::error::{ConnectorError, Result as ConnectorResult};
use weir_connector_api::factory::{FactoryContext, LookupFactory, LookupProvider};
use weir_connector_api::lookup::{AsyncLookupFunction, LookupFunction};
use weir_connector_api::row::{Row, Schema, Value};
use weir_connector_base::lookup::{
    DefaultLookupCache, FullCachingLookupFunction, MissingKeys, PartialCachingAsyncLookupFunction,
    PartialCachingLookupFunction, RowKey,
};
use weir_runtime::lookup::{AsyncLookupOptions, JoinType, LookupJoin};
use weir_runtime::DataStream;

pub use functions::cached_bytes;
pub use state::RowSerializer;

use super::ConnectorSettings;

/// A partial cache's settings (`lookup.cache = { type = "partial", … }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartialCache {
    /// At most this many keys.
    pub max_rows: Option<u64>,
    /// Keys expire this long after they were loaded.
    pub expire_after_write: Option<Duration>,
    /// Keys expire this long after they were last read.
    pub expire_after_access: Option<Duration>,
    /// Whether keys without rows are cached.
    pub missing_keys: MissingKeys,
}

impl PartialCache {
    /// The cache, or what is wrong with the settings.
    pub fn build(&self) -> Result<DefaultLookupCache<RowKey, Row>, ConfigErrors> {
        let mut builder = DefaultLookupCache::builder()
            .missing_keys(self.missing_keys)
            .size_of(cached_bytes);
        if let Some(n) = self.max_rows {
            builder = builder.maximum_size(n);
        }
        if let Some(d) = self.expire_after_write {
            builder = builder.expire_after_write(d);
        }
        if let Some(d) = self.expire_after_access {
            builder = builder.expire_after_access(d);
        }
        builder.build()
    }
}

/// Whether the connector's lookup function answers synchronously or asynchronously (what its
/// factory returned when the pipeline was validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// `LookupProvider::Sync`.
    Synchronously,
    /// `LookupProvider::Async`.
    Asynchronously,
}

/// Where a lookup join's rows come from.
pub enum LookupTable {
    /// The connector's lookup function, one per subtask, optionally behind a shared partial
    /// cache.
    Function {
        /// The connector's lookup factory.
        factory: &'static dyn LookupFactory,
        /// How its function answers.
        answers: Answers,
        /// The partial cache, if any.
        cache: Option<PartialCache>,
    },
    /// The whole table in a full cache, shared by the subtasks.
    Full(FullCachingLookupFunction<RowKey, Row>),
}

/// A transform's lookup join, validated.
pub struct LookupNode {
    /// The table's connector.
    pub connector: String,
    /// The table's options, format and schema (what its factory saw).
    pub settings: ConnectorSettings,
    /// The table.
    pub table: LookupTable,
    /// The key: positions of the input's fields and the table's fields, in join order.
    pub keys: Vec<(usize, usize)>,
    /// The table's fields added to each output row, in order.
    pub added: Vec<usize>,
    /// Inner or left outer.
    pub join_type: JoinType,
    /// Capacity, order, timeout and retries of an asynchronous table.
    pub async_options: AsyncLookupOptions,
    /// The joined rows' schema: the input's fields, then the added ones.
    pub joined: Schema,
}

impl LookupNode {
    /// The names of the table's key fields, in join order (what the factory is told).
    pub fn key_names(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter_map(|(_, t)| self.settings.schema.fields.get(*t))
            .map(|f| f.name.clone())
            .collect()
    }

    /// Joins `stream` with the table; `uid` names the join's state.
    pub fn join(&self, stream: DataStream<Row>, uid: &str) -> ConnectorResult<DataStream<Row>> {
        let input_keys: Arc<[usize]> = self.keys.iter().map(|(i, _)| *i).collect();
        let key = move |row: &Row| {
            let key = RowKey::project(row, &input_keys);
            // SQL joins never match a null key: no lookup, no rows.
            (!key.has_null()).then_some(key)
        };
        let added: Arc<[usize]> = Arc::from(self.added.as_slice());
        let join = move |input: &Row, found: Option<&Row>| {
            let mut values = Vec::with_capacity(input.values.len() + added.len());
            values.extend(input.values.iter().cloned());
            values.extend(added.iter().map(|i| {
                found
                    .and_then(|r| r.get(*i))
                    .cloned()
                    .unwrap_or(Value::Null)
            }));
            Row::with_kind(input.kind, values)
        };
        let join_type = self.join_type;
        let joined = match &self.table {
            LookupTable::Full(table) => {
                let table = table.clone();
                stream.lookup_join(
                    uid,
                    LookupJoin::sync(
                        key,
                        move || Ok(Box::new(table.clone()) as Box<dyn LookupFunction<RowKey, Row>>),
                        join,
                    )
                    .join_type(join_type),
                )
            }
            LookupTable::Function {
                factory,
                answers,
                cache,
            } => {
                let cache = cache
                    .as_ref()
                    .map(|c| c.build().map(Arc::new))
                    .transpose()?;
                let create = self.creator(*factory);
                match answers {
                    Answers::Synchronously => stream.lookup_join(
                        uid,
                        LookupJoin::sync(key, move || sync_function(&create, cache.as_ref()), join)
                            .join_type(join_type),
                    ),
                    Answers::Asynchronously => stream.lookup_join(
                        uid,
                        LookupJoin::asynchronous(
                            key,
                            move || async_function(&create, cache.as_ref()),
                            join,
                            RowSerializer,
                            self.async_options,
                        )
                        .join_type(join_type),
                    ),
                }
            }
        };
        Ok(joined)
    }

    /// Calls the factory as validation did (once per subtask and attempt).
    fn creator(
        &self,
        factory: &'static dyn LookupFactory,
    ) -> impl Fn() -> ConnectorResult<LookupProvider> + Send + Sync + 'static {
        let settings = self.settings.clone();
        let name = self.connector.clone();
        let keys = self.key_names();
        move || {
            let ctx: FactoryContext<'_> = settings.context(&name);
            factory.create_lookup(&settings.options, &ctx, &keys)
        }
    }
}

fn changed_kind(provider: &LookupProvider) -> ConnectorError {
    ConnectorError::Contract(format!(
        "the lookup factory returned a {provider:?} where it returned another kind when the \
         pipeline was validated"
    ))
}

fn sync_function(
    create: &dyn Fn() -> ConnectorResult<LookupProvider>,
    cache: Option<&Arc<DefaultLookupCache<RowKey, Row>>>,
) -> ConnectorResult<Box<dyn LookupFunction<RowKey, Row>>> {
    match create()? {
        LookupProvider::Sync(function) => {
            let keyed = functions::KeyedSync(function);
            Ok(match cache {
                Some(cache) => {
                    Box::new(PartialCachingLookupFunction::new(keyed, Arc::clone(cache)))
                }
                None => Box::new(keyed),
            })
        }
        other => Err(changed_kind(&other)),
    }
}

fn async_function(
    create: &dyn Fn() -> ConnectorResult<LookupProvider>,
    cache: Option<&Arc<DefaultLookupCache<RowKey, Row>>>,
) -> ConnectorResult<Box<dyn AsyncLookupFunction<RowKey, Row>>> {
    match create()? {
        LookupProvider::Async(function) => {
            let keyed = functions::KeyedAsync(function);
            Ok(match cache {
                Some(cache) => Box::new(PartialCachingAsyncLookupFunction::new(
                    keyed,
                    Arc::clone(cache),
                )),
                None => Box::new(keyed),
            })
        }
        other => Err(changed_kind(&other)),
    }
}
