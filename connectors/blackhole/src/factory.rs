//! The `blackhole` connector factory for pipeline files: a sink that discards rows and counts
//! them. It takes no options and no format.

use weir_connector_api::config::{ConfigError, ConfigErrors, OptionSet, ValidatedConfig};
use weir_connector_api::erased::BoxedSink;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::factory::{ConnectorFactory, ConnectorInfo, FactoryContext, SinkFactory};
use weir_connector_api::row::Row;

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
        if ctx.format.is_some() {
            return Err(ConnectorError::Config(ConfigErrors::new(
                SET_NAME,
                vec![ConfigError::conflict(
                    ["format"],
                    "the blackhole sink writes no bytes: remove `format`",
                )],
            )));
        }
        Ok(BoxedSink::new(BlackholeSink::<Row>::new()))
    }
}
