//! The `elasticsearch` connector factory for pipeline files: a sink of rows (changelog rows
//! become index / upsert / delete actions, see [`RowEmitter`]) with the keys of
//! [`sink_options`], a lookup table for the `lookup` transform with the keys of
//! [`lookup_options`] (uncached: a pipeline's `lookup` transform caches with its own `cache`
//! setting, the base's partial cache), and the connection check of `weir check`.
//!
//! On API line 1.1 it also writes columns natively (`ChunkSinkFactory`): a columnar pipeline
//! hands the sink Arrow chunks, whose rows become the same actions the row sink makes
//! (`ChunkEmitter`), with the same options, writer and checkpoint state. Every option works
//! on columns, so it never answers `RowsOnly`.

use std::sync::Arc;

use weir_connector_api::check::{CheckItem, ConnectionCheck, ConnectorRole};
use weir_connector_api::config::{ConfigError, ConfigErrors, OptionSet, ValidatedConfig};
use weir_connector_api::erased::BoxedSink;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::factory::{
    ConnectorFactory, ConnectorInfo, FactoryContext, LookupFactory, LookupProvider, SinkFactory,
};
use weir_connector_api::row::{Row, Schema};

use crate::config::{keys, lookup_options, sink_options, LookupOptions, SinkOptions};
use crate::index::IndexRouting;
use crate::lookup::ElasticsearchLookup;
use crate::row::RowEmitter;
use crate::sink::{BatchEmitter, ElasticsearchSink};
#[cfg(weir_api_1_1)]
use weir_connector_api::{
    columnar::{Chunk, ChunkSinkFactory, ChunkSinkParts, Columnar},
    factory::JobContext,
};

/// The `elasticsearch` connector factory.
#[derive(Debug, Clone, Copy, Default)]
pub struct ElasticsearchFactory;

/// The registered instance.
pub static ELASTICSEARCH: ElasticsearchFactory = ElasticsearchFactory;
weir_connector_api::register_connector!(ELASTICSEARCH);

impl ConnectorFactory for ElasticsearchFactory {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            identifier: "elasticsearch",
            crate_name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            description: "writes documents with bulk requests (upserts and deletes from changelogs) and looks them up; Elasticsearch and OpenSearch",
        }
    }
    fn as_sink(&self) -> Option<&dyn SinkFactory> {
        Some(self)
    }
    fn as_lookup(&self) -> Option<&dyn LookupFactory> {
        Some(self)
    }
    fn as_connection_check(&self) -> Option<&dyn ConnectionCheck> {
        Some(self)
    }
    #[cfg(weir_api_1_1)]
    fn as_chunk_sink(&self) -> Option<&dyn ChunkSinkFactory> {
        Some(self)
    }
}

fn config_error(set: &str, key: &str, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Config(ConfigErrors::new(
        set,
        vec![ConfigError::conflict([key], reason)],
    ))
}

/// The emitter of a sink with these options for rows of `schema`; errors name the option.
pub(crate) fn row_emitter(options: &SinkOptions, schema: &Schema) -> Result<RowEmitter> {
    let routing = IndexRouting::parse(&options.index, schema)
        .map_err(|e| config_error("elasticsearch sink", keys::INDEX, e))?;
    RowEmitter::new(
        schema,
        routing,
        &options.id_fields,
        &options.key_delimiter,
        options.action,
    )
    .map_err(|e| config_error("elasticsearch sink", keys::ID_FIELDS, e))
}

impl SinkFactory for ElasticsearchFactory {
    fn sink_options(&self) -> OptionSet {
        sink_options()
    }

    fn create_sink(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Result<BoxedSink<Row>> {
        sink_of(config, ctx, |emitter| emitter)
    }
}

/// The sink of these options, with the emitter `wrap` makes of the row emitter.
fn sink_of<T, E>(
    config: &ValidatedConfig,
    ctx: &FactoryContext<'_>,
    wrap: impl FnOnce(RowEmitter) -> E,
) -> Result<BoxedSink<T>>
where
    T: Send + 'static,
    E: BatchEmitter<T> + Clone + Sync,
{
    {
        if let Some((format, _)) = ctx.format {
            if format != "json" {
                return Err(config_error(
                    "elasticsearch sink",
                    "format",
                    format!(
                        "Elasticsearch documents are JSON: remove `format` (or set `json`), not \
                         `{format}`"
                    ),
                ));
            }
        }
        let options = SinkOptions::from_config(config)?;
        let emitter = wrap(row_emitter(&options, ctx.schema)?);
        let sink = ElasticsearchSink::builder(options.connection, emitter)
            .refresh(options.refresh)
            .failure_policy(options.failure_policy)
            .async_sink_config(options.async_sink)
            .build()?;
        Ok(BoxedSink::new(sink))
    }
}

/// Columns natively (API line 1.1): the same sink with a [`ChunkEmitter`](crate::ChunkEmitter),
/// for every option the row sink takes.
#[cfg(weir_api_1_1)]
impl ChunkSinkFactory for ElasticsearchFactory {
    fn create_chunk_sink(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        _job: &JobContext,
    ) -> Result<Columnar<ChunkSinkParts>> {
        let sink: BoxedSink<Chunk> = sink_of(config, ctx, crate::chunk::ChunkEmitter::new)?;
        Ok(Columnar::Chunks(ChunkSinkParts::new(sink)))
    }
}

impl LookupFactory for ElasticsearchFactory {
    fn lookup_options(&self) -> OptionSet {
        lookup_options()
    }

    fn create_lookup(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        key_fields: &[String],
    ) -> Result<LookupProvider> {
        let options = LookupOptions::from_config(config);
        if key_fields.is_empty() {
            return Err(ConnectorError::Contract(
                "a lookup join names at least one key field".to_owned(),
            ));
        }
        let lookup = ElasticsearchLookup::new(
            options.connection.clone(),
            options.index.clone(),
            ctx.schema.clone(),
            options.lookup_by(key_fields),
        )?;
        Ok(LookupProvider::Async(Arc::new(lookup)))
    }
}

#[async_trait::async_trait]
impl ConnectionCheck for ElasticsearchFactory {
    async fn check(
        &self,
        role: ConnectorRole,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Vec<CheckItem> {
        crate::check::check(role, config, ctx).await
    }
}
