//! Connector factories: how pipeline files and the `weir` CLI find connectors. A connector crate
//! implements [`ConnectorFactory`] (its identity) plus [`SourceFactory`] and/or
//! [`SinkFactory`] (declared through [`ConnectorFactory::as_source`] / `as_sink`), and
//! registers it with [`crate::register_connector!`]: depending on the crate is all it takes.
//! Options are the same [`OptionSet`]s that validate the configuration and render the docs.
//!
//! ```
//! use weir_connector_api::config::{OptionSet, ValidatedConfig};
//! use weir_connector_api::erased::BoxedSink;
//! use weir_connector_api::error::Result;
//! use weir_connector_api::factory::{ConnectorFactory, ConnectorInfo, FactoryContext, SinkFactory};
//! use weir_connector_api::row::Row;
//! # use weir_connector_api::sink::*;
//! # struct Drop;
//! # struct DropWriter;
//! # #[async_trait::async_trait]
//! # impl SinkWriter<Row> for DropWriter {
//! #     fn write(&mut self, _: Row, _: &WriteContext) -> Result<()> { Ok(()) }
//! #     async fn flush(&mut self, _: FlushMode) -> Result<()> { Ok(()) }
//! # }
//! # impl Sink<Row> for Drop {
//! #     type Writer = DropWriter;
//! #     fn create_writer(&self, _: &dyn InitContext) -> Result<DropWriter> { Ok(DropWriter) }
//! # }
//!
//! struct DropFactory;
//! impl ConnectorFactory for DropFactory {
//!     fn info(&self) -> ConnectorInfo {
//!         ConnectorInfo { identifier: "drop", crate_name: "my-connector-drop", version: "0.1.0-1.0",
//!                         description: "discards rows" }
//!     }
//!     fn as_sink(&self) -> Option<&dyn SinkFactory> { Some(self) }
//! }
//! impl SinkFactory for DropFactory {
//!     fn sink_options(&self) -> OptionSet { OptionSet::new("drop sink") }
//!     fn create_sink(&self, _config: &ValidatedConfig, _ctx: &FactoryContext<'_>) -> Result<BoxedSink<Row>> {
//!         Ok(BoxedSink::new(Drop))
//!     }
//! }
//! static DROP: DropFactory = DropFactory;
//! weir_connector_api::register_connector!(DROP);
//!
//! let found = weir_connector_api::factory::find_connector("drop").expect("registered");
//! assert!(found.as_sink().is_some() && found.as_source().is_none());
//! ```

use crate::config::{OptionSet, ValidatedConfig};
use crate::erased::{BoxedSink, BoxedSource};
use crate::error::Result;
use crate::row::{Row, Schema};

/// Who a connector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// The identifier pipeline files use (`connector = "kafka"`).
    pub identifier: &'static str,
    /// The crate that provides it.
    pub crate_name: &'static str,
    /// The crate's version (`MAJOR.MINOR.PATCH-API`).
    pub version: &'static str,
    /// A one-line description.
    pub description: &'static str,
}

impl ConnectorInfo {
    /// The API line the connector targets: the suffix of its version.
    pub fn api_line(&self) -> &'static str {
        self.version.split_once('-').map_or("", |(_, api)| api)
    }
}

/// What a factory gets besides its options.
pub struct FactoryContext<'a> {
    /// The name of the source or sink in the pipeline.
    pub name: &'a str,
    /// The rows' schema.
    pub schema: &'a Schema,
    /// The format's identifier and options, when the pipeline sets one.
    pub format: Option<(&'a str, &'a ValidatedConfig)>,
}

/// A connector's identity and its declared abilities.
pub trait ConnectorFactory: Send + Sync + 'static {
    /// Who it is.
    fn info(&self) -> ConnectorInfo;
    /// Its source ability, if it has one.
    fn as_source(&self) -> Option<&dyn SourceFactory> {
        None
    }
    /// Its sink ability, if it has one.
    fn as_sink(&self) -> Option<&dyn SinkFactory> {
        None
    }
}

/// Builds sources of rows for pipelines.
pub trait SourceFactory: Send + Sync {
    /// The source's options.
    fn source_options(&self) -> OptionSet;
    /// A source from validated options.
    fn create_source(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Result<BoxedSource<Row>>;
}

/// Builds sinks of rows for pipelines.
pub trait SinkFactory: Send + Sync {
    /// The sink's options.
    fn sink_options(&self) -> OptionSet;
    /// A sink from validated options.
    fn create_sink(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Result<BoxedSink<Row>>;
}

/// A registered connector (see [`crate::register_connector!`]).
pub struct ConnectorRegistration(pub &'static dyn ConnectorFactory);

inventory::collect!(ConnectorRegistration);

/// Every connector linked into this program, by identifier.
pub fn connectors() -> Vec<&'static dyn ConnectorFactory> {
    let mut all: Vec<&'static dyn ConnectorFactory> = inventory::iter::<ConnectorRegistration>
        .into_iter()
        .map(|r| r.0)
        .collect();
    all.sort_by_key(|f| f.info().identifier);
    all
}

/// The connector with this identifier.
pub fn find_connector(identifier: &str) -> Option<&'static dyn ConnectorFactory> {
    connectors()
        .into_iter()
        .find(|f| f.info().identifier == identifier)
}

/// Registers a connector factory (a `static` implementing [`ConnectorFactory`]) at compile time.
#[macro_export]
macro_rules! register_connector {
    ($factory:expr) => {
        $crate::inventory::submit! { $crate::factory::ConnectorRegistration(&$factory) }
    };
}
