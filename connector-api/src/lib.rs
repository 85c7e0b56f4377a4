//! # Weir connector API, line 1.1
//!
//! The platform line every Weir connector builds against. It holds contracts, kept small and
//! stable (like `tower-service`):
//!
//! | module | what it holds |
//! |---|---|
//! | [`source`] | FLIP-27 sources: [`source::Source`], [`source::SplitEnumerator`], [`source::SourceReader`], outputs with per-split views, split pausing as a declared capability |
//! | [`base`] | **deprecated**: a frozen copy of API 1.0's `SourceReaderBase`; the maintained one is in `weir_connector_base::source::reader` |
//! | [`sink`] | SinkV2 in the mixin form: writers, writer state, committers with explicit [`sink::CommitOutcome`]s, committable messages, pre-write / pre-commit / post-commit topologies |
//! | [`lookup`] | FLIP-221 lookup functions, sync and async |
//! | [`watermark`] | watermarks, generators, [`watermark::WatermarkStrategy`] with idleness and alignment, the job-wide [`watermark::CoordinatorStore`] |
//! | [`state`] | [`state::VersionedSerializer`], checksummed framing, binary codecs: every persisted byte is versioned |
//! | [`config`] | typed [`config::ConfigOption`]s and [`config::OptionSet`]s that report every mistake at once and render their docs |
//! | [`metrics`] | the FLIP-33 standard metric names and the [`metrics::MetricGroup`] the runtime implements |
//! | [`error`] | [`ConnectorError`] with an [`ErrorClass`] (`Retryable` / `Fatal`) |
//! | [`erased`] | [`erased::BoxedSource`] and [`erased::BoxedSink`]: any connector as one type |
//! | [`row`], [`format`](mod@format) | the dynamic row type of pipeline files and the format traits |
//! | [`factory`] | connector factories, registered at compile time ([`register_connector!`]); lookup factories and job settings (1.1) |
//! | [`check`] | connection checks behind `weir check` (1.1) |
//!
//! The API has no async runtime inside: readers are polled (non-blocking `poll_next` plus an
//! availability signal), per-record calls are synchronous, and `async` appears only at batch,
//! flush, checkpoint, commit and coordinator granularity. Background work (split fetchers) runs
//! on whatever executor the runtime hands over through [`source::SourceReaderContext::spawn`].
//!
//! Complete examples: a source over in-memory ranges in [`source`], a two-phase-committing sink
//! in [`sink`]. Reusable implementations (the reader base, reader wrappers, rate limiting, the
//! AsyncSink, lookup caches) are in the `weir-connector-base` crate, which changes without a
//! new API line.
//!
//! ## What line 1.1 adds
//!
//! Every addition has a default, so a connector written for 1.0 builds unchanged on 1.1:
//!
//! - [`factory::LookupFactory`] and [`factory::LookupProvider`] (FLIP-221): lookup tables for
//!   pipelines' `lookup` transform — synchronous, asynchronous, or a bounded scan for full
//!   caching (`weir-connector-base` holds the caches);
//! - [`check::ConnectionCheck`]: what `weir check pipeline.toml` runs for a connector;
//! - [`factory::JobContext`] through [`factory::SourceFactory::create_source_in_job`] and
//!   [`factory::SinkFactory::create_sink_in_job`]: the job's checkpoint interval and mode;
//! - [`sink::SinkWriter::poll_progress`]: a writer's own clock while it waits for input (the
//!   AsyncSink's time-based flush);
//! - `checkpoint_aborted` on split enumerators, sink writers, committers and topology stages;
//! - `columnar` (cargo feature `arrow`): the Arrow factory contract — `Chunk`s (Arrow record
//!   batches with changelog kinds), `ChunkSourceFactory` and `ChunkSinkFactory`, declared with
//!   [`factory::ConnectorFactory::as_chunk_source`] and `as_chunk_sink` — and the mapping
//!   between pipeline rows and chunks.
//!
//! The reusable implementations that lived here in 1.0 ([`base`]) moved to
//! `weir-connector-base`; the 1.0 paths keep compiling, deprecated.
//!
//! ## Versioning
//!
//! Connector crates are versioned `MAJOR.MINOR.PATCH-API`, where `API` is the `MAJOR.MINOR` of
//! this crate they build against (for example `1.0.0-1.0`). [`API_LINE`] is that suffix.

#[deprecated(
    note = "moved to weir_connector_base::source::reader (API line 1.1); this frozen 1.0 copy gets no fixes"
)]
pub mod base;
pub mod check;
pub mod checkpoint;
#[cfg(feature = "arrow")]
pub mod columnar;
pub mod config;
pub mod erased;
pub mod error;
pub mod factory;
pub mod format;
pub mod lookup;
pub mod metrics;
pub mod row;
pub mod sink;
pub mod source;
pub mod state;
pub mod watermark;

pub use error::{ConnectorError, ErrorClass};

#[doc(hidden)]
pub use inventory;

/// The API line of this crate (`MAJOR.MINOR`), the suffix of every connector version built on it.
pub const API_LINE: &str = "1.1";

#[cfg(test)]
mod tests {
    #[test]
    fn api_line_matches_the_crate_version() {
        let version = env!("CARGO_PKG_VERSION");
        let line: Vec<&str> = version.split('.').take(2).collect();
        assert_eq!(super::API_LINE, line.join("."));
    }
}
