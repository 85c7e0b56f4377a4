//! The `blackhole` connector factory for pipeline files: a sink that discards rows and counts
//! them. It takes no options and no format.

use weir_connector_api::config::{ConfigError, ConfigErrors, OptionSet, ValidatedConfig};
use weir_connector_api::erased::BoxedSink;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::factory::{ConnectorFactory, ConnectorInfo, FactoryContext, SinkFactory};
use weir_connector_api::row::Row;
#[cfg(weir_api_1_1)]
use weir_connector_api::{
    columnar::{Chunk, ChunkSinkFactory, ChunkSinkParts, Columnar},
    factory::JobContext,
};

use crate::config::SET_NAME;
use crate::BlackholeSink;

/// The `blackhole` connector factory.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlackholeFactory;

/// The registered instance.
pub static BLACKHOLE: BlackholeFactory = BlackholeFactory;
weir_connector_api::register_connector!(BLACKHOLE);

impl ConnectorFactory for BlackholeFactory {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            identifier: "blackhole",
            crate_name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            description: "discards every row and counts it",
        }
    }
    fn as_sink(&self) -> Option<&dyn SinkFactory> {
        Some(self)
    }
    #[cfg(weir_api_1_1)]
    fn as_chunk_sink(&self) -> Option<&dyn ChunkSinkFactory> {
        Some(self)
    }
}

/// Columns natively (API line 1.1): chunks are dropped whole, their rows counted.
#[cfg(weir_api_1_1)]
impl ChunkSinkFactory for BlackholeFactory {
    fn create_chunk_sink(
        &self,
        _config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        _job: &JobContext,
    ) -> Result<Columnar<ChunkSinkParts>> {
        no_format(ctx)?;
        Ok(Columnar::Chunks(ChunkSinkParts::new(BoxedSink::new(
            BlackholeSink::<Chunk>::of_rows(|chunk| chunk.num_rows() as u64),
        ))))
    }
}

/// The blackhole sink writes no bytes, so it takes no format.
fn no_format(ctx: &FactoryContext<'_>) -> Result<()> {
    if ctx.format.is_some() {
        return Err(ConnectorError::Config(ConfigErrors::new(
            SET_NAME,
            vec![ConfigError::conflict(
                ["format"],
                "the blackhole sink writes no bytes: remove `format`",
            )],
        )));
    }
    Ok(())
}

impl SinkFactory for BlackholeFactory {
    fn sink_options(&self) -> OptionSet {
        crate::config::options()
    }

    fn create_sink(
        &self,
        _config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Result<BoxedSink<Row>> {
        no_format(ctx)?;
        Ok(BoxedSink::new(BlackholeSink::<Row>::new()))
    }
}
