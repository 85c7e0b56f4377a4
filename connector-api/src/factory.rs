//! Connector factories: how pipeline files and the `weir` CLI find connectors. A connector crate
//! implements [`ConnectorFactory`] (its identity) plus [`SourceFactory`] and/or
//! [`SinkFactory`] (declared through [`ConnectorFactory::as_source`] / `as_sink`), and
//! registers it with [`crate::register_connector!`]: depending on the crate is all it takes.
//! Options are the same [`OptionSet`]s that validate the configuration and render the docs.
//!
//! Since API line 1.1 a factory may also declare a [`LookupFactory`] (lookup tables for the
//! lookup join, [`ConnectorFactory::as_lookup`]) and a [`ConnectionCheck`] (`weir check`,
//! [`ConnectorFactory::as_connection_check`]), and may read the job's checkpointing settings
//! through [`SourceFactory::create_source_in_job`] / [`SinkFactory::create_sink_in_job`] and
//! [`JobContext`]. Every 1.1 addition has a default, so a 1.0 factory compiles unchanged.
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

use std::sync::Arc;
use std::time::Duration;

use crate::config::{OptionSet, ValidatedConfig};
use crate::erased::{BoxedSink, BoxedSource};
use crate::error::Result;
use crate::lookup::{AsyncLookupFunction, LookupFunction};
use crate::row::{Row, Schema};

pub use crate::check::{CheckItem, CheckOutcome, ConnectionCheck, ConnectorRole};

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
    /// Its lookup-table ability, if it has one (API line 1.1).
    fn as_lookup(&self) -> Option<&dyn LookupFactory> {
        None
    }
    /// Its connection check, if it has one (API line 1.1): what `weir check` runs.
    fn as_connection_check(&self) -> Option<&dyn ConnectionCheck> {
        None
    }
    /// Its columnar source ability, if it reads columns natively (API line 1.1, feature
    /// `arrow`). Without it, a pipeline reading from this connector runs on rows.
    #[cfg(feature = "arrow")]
    fn as_chunk_source(&self) -> Option<&dyn crate::columnar::ChunkSourceFactory> {
        None
    }
    /// Its columnar sink ability, if it writes columns natively (API line 1.1, feature
    /// `arrow`). Without it, the runtime hands the sink the rows of every chunk.
    #[cfg(feature = "arrow")]
    fn as_chunk_sink(&self) -> Option<&dyn crate::columnar::ChunkSinkFactory> {
        None
    }
}

/// Whether the job's checkpoints give exactly-once or at-least-once state (API line 1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckpointMode {
    /// Aligned barriers: a snapshot holds exactly the records before its barrier.
    ExactlyOnce,
    /// Unaligned counting of barriers: records may be replayed after a restore.
    AtLeastOnce,
}

/// What a factory learns about the job it builds for (API line 1.1): its checkpointing
/// settings, e.g. so a transactional sink can check its transaction timeout against the
/// checkpoint interval.
///
/// ```
/// use std::time::Duration;
/// use weir_connector_api::factory::{CheckpointMode, JobContext};
///
/// let job = JobContext::new()
///     .with_checkpoint_interval(Some(Duration::from_secs(10)))
///     .with_checkpoint_mode(CheckpointMode::ExactlyOnce);
/// assert_eq!(job.checkpoint_interval(), Some(Duration::from_secs(10)));
/// assert!(JobContext::new().checkpoint_interval().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobContext {
    checkpoint_interval: Option<Duration>,
    checkpoint_mode: CheckpointMode,
}

impl Default for JobContext {
    fn default() -> Self {
        JobContext::new()
    }
}

impl JobContext {
    /// A job without periodic checkpoints, in exactly-once mode.
    pub fn new() -> Self {
        JobContext {
            checkpoint_interval: None,
            checkpoint_mode: CheckpointMode::ExactlyOnce,
        }
    }
    /// Sets the checkpoint interval (`None`: no periodic checkpoints).
    #[must_use]
    pub fn with_checkpoint_interval(mut self, interval: Option<Duration>) -> Self {
        self.checkpoint_interval = interval;
        self
    }
    /// Sets the checkpoint mode.
    #[must_use]
    pub fn with_checkpoint_mode(mut self, mode: CheckpointMode) -> Self {
        self.checkpoint_mode = mode;
        self
    }
    /// The interval between periodic checkpoints, if the job takes them.
    pub fn checkpoint_interval(&self) -> Option<Duration> {
        self.checkpoint_interval
    }
    /// The checkpoint mode.
    pub fn checkpoint_mode(&self) -> CheckpointMode {
        self.checkpoint_mode
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
    /// A source for a job with these settings (API line 1.1). Pipelines call this; the
    /// default ignores the job and calls [`create_source`](SourceFactory::create_source).
    fn create_source_in_job(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        _job: &JobContext,
    ) -> Result<BoxedSource<Row>> {
        self.create_source(config, ctx)
    }
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
    /// A sink for a job with these settings (API line 1.1). Pipelines call this; the default
    /// ignores the job and calls [`create_sink`](SinkFactory::create_sink).
    fn create_sink_in_job(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        _job: &JobContext,
    ) -> Result<BoxedSink<Row>> {
        self.create_sink(config, ctx)
    }
}

/// How a lookup table answers (API line 1.1, FLIP-221's lookup providers): key rows hold the
/// join's key fields in the order the join names them.
#[non_exhaustive]
pub enum LookupProvider {
    /// Looks keys up one at a time, synchronously (fast local stores).
    Sync(Box<dyn LookupFunction<Row, Row>>),
    /// Looks keys up asynchronously; the join keeps several lookups in flight.
    Async(Arc<dyn AsyncLookupFunction<Row, Row>>),
    /// A bounded scan of the whole table, for full caching (the table is loaded, then
    /// reloaded on the cache's schedule; lookups never reach the system).
    Scan(BoxedSource<Row>),
}

impl std::fmt::Debug for LookupProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LookupProvider::Sync(_) => "LookupProvider::Sync",
            LookupProvider::Async(_) => "LookupProvider::Async",
            LookupProvider::Scan(_) => "LookupProvider::Scan",
        })
    }
}

/// Builds lookup tables for pipelines' `lookup` transforms (API line 1.1).
///
/// ```
/// use weir_connector_api::config::{OptionSet, ValidatedConfig};
/// use weir_connector_api::error::Result;
/// use weir_connector_api::factory::{FactoryContext, LookupFactory, LookupProvider};
/// use weir_connector_api::lookup::LookupFunction;
/// use weir_connector_api::row::Row;
///
/// /// Answers every key with itself: a stand-in for a real table.
/// struct Echo;
/// impl LookupFunction<Row, Row> for Echo {
///     fn lookup(&mut self, key: &Row) -> Result<Vec<Row>> { Ok(vec![key.clone()]) }
/// }
///
/// struct EchoFactory;
/// impl LookupFactory for EchoFactory {
///     fn lookup_options(&self) -> OptionSet { OptionSet::new("echo lookup") }
///     fn create_lookup(&self, _: &ValidatedConfig, _: &FactoryContext<'_>, keys: &[String])
///         -> Result<LookupProvider> {
///         assert!(!keys.is_empty());
///         Ok(LookupProvider::Sync(Box::new(Echo)))
///     }
/// }
/// # let _ = EchoFactory.lookup_options();
/// ```
pub trait LookupFactory: Send + Sync {
    /// The lookup table's options.
    fn lookup_options(&self) -> OptionSet;
    /// A lookup table from validated options; `ctx.schema` is the table's schema and `keys`
    /// the fields the join looks rows up by.
    fn create_lookup(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        keys: &[String],
    ) -> Result<LookupProvider>;
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
