//! The Arrow factory contract: sources and sinks of [`Chunk`]s for pipelines.

use std::fmt;
use std::sync::Arc;

use super::Chunk;
use crate::config::ValidatedConfig;
use crate::erased::{BoxedSink, BoxedSource};
use crate::error::Result;
use crate::factory::{FactoryContext, JobContext};

/// Whether a connector works on columns with the options it was given.
#[derive(Debug)]
#[non_exhaustive]
pub enum Columnar<T> {
    /// It does: here is the columnar source or sink.
    Chunks(T),
    /// These options need rows (e.g. a rate limit that counts rows one by one): the reason,
    /// which the runtime shows when asked to run on columns. The runtime then uses the
    /// connector's Row factory.
    RowsOnly(String),
}

/// Cuts each chunk before a chunk sink's writer (e.g. into one chunk per bucket): every chunk
/// the writer gets is one of the pieces, in order.
pub type ChunkSplitter = Arc<dyn Fn(Chunk) -> Vec<Chunk> + Send + Sync>;

/// A sink of chunks, and what the runtime runs before its writer.
#[non_exhaustive]
pub struct ChunkSinkParts {
    /// The sink.
    pub sink: BoxedSink<Chunk>,
    /// Cuts the chunks before the writer, if the sink needs it.
    pub split: Option<ChunkSplitter>,
}

impl ChunkSinkParts {
    /// A sink that takes chunks as they come.
    pub fn new(sink: BoxedSink<Chunk>) -> Self {
        ChunkSinkParts { sink, split: None }
    }

    /// Cuts the chunks with `split` before the writer.
    #[must_use]
    pub fn with_split(mut self, split: ChunkSplitter) -> Self {
        self.split = Some(split);
        self
    }
}

impl fmt::Debug for ChunkSinkParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSinkParts")
            .field(
                "split",
                &self.split.as_ref().map(|_| "Fn(Chunk) -> Vec<Chunk>"),
            )
            .finish_non_exhaustive()
    }
}

/// Builds sources of chunks for pipelines (API line 1.1, feature `arrow`).
///
/// A connector with this ability also has a [`SourceFactory`](crate::factory::SourceFactory):
/// the options are the same, they are validated by its
/// [`source_options`](crate::factory::SourceFactory::source_options), and its splits and
/// checkpoints are the same on both, so a checkpoint taken on rows restores on columns.
///
/// ```
/// use weir_connector_api::columnar::{Chunk, ChunkSourceFactory, Columnar};
/// use weir_connector_api::config::ValidatedConfig;
/// use weir_connector_api::erased::BoxedSource;
/// use weir_connector_api::error::Result;
/// use weir_connector_api::factory::{FactoryContext, JobContext};
///
/// /// A source that reads columns only without a row limit.
/// struct Numbers;
///
/// impl ChunkSourceFactory for Numbers {
///     fn create_chunk_source(
///         &self,
///         config: &ValidatedConfig,
///         _ctx: &FactoryContext<'_>,
///         _job: &JobContext,
///     ) -> Result<Columnar<BoxedSource<Chunk>>> {
///         if config.to_map().contains_key("rows-per-second") {
///             return Ok(Columnar::RowsOnly("`rows-per-second` counts rows".into()));
///         }
///         todo!("the columnar source")
///     }
/// }
/// ```
pub trait ChunkSourceFactory: Send + Sync {
    /// A source of chunks of `ctx`'s schema (as [`arrow_schema`](super::arrow_schema) maps
    /// it), or why these options need rows.
    fn create_chunk_source(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        job: &JobContext,
    ) -> Result<Columnar<BoxedSource<Chunk>>>;
}

/// Builds sinks of chunks for pipelines (API line 1.1, feature `arrow`).
///
/// A connector with this ability also has a [`SinkFactory`](crate::factory::SinkFactory) with
/// the same options, and writes the same output from the same rows, so a pipeline's result
/// does not depend on which one the runtime picks.
///
/// ```
/// use weir_connector_api::columnar::{ChunkSinkFactory, ChunkSinkParts, Columnar};
/// use weir_connector_api::config::ValidatedConfig;
/// use weir_connector_api::error::Result;
/// use weir_connector_api::factory::{FactoryContext, JobContext};
///
/// /// A sink that only writes rows in its `text` format.
/// struct Files;
///
/// impl ChunkSinkFactory for Files {
///     fn create_chunk_sink(
///         &self,
///         config: &ValidatedConfig,
///         _ctx: &FactoryContext<'_>,
///         _job: &JobContext,
///     ) -> Result<Columnar<ChunkSinkParts>> {
///         match config.to_map().get("format").map(String::as_str) {
///             Some("text") => Ok(Columnar::RowsOnly("`text` encodes rows one by one".into())),
///             _ => todo!("the columnar sink"),
///         }
///     }
/// }
/// ```
pub trait ChunkSinkFactory: Send + Sync {
    /// A sink of chunks of `ctx`'s schema, or why these options need rows.
    fn create_chunk_sink(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        job: &JobContext,
    ) -> Result<Columnar<ChunkSinkParts>>;
}
