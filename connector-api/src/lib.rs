//! # Weir connector API, line 1.0
//!
//! The platform line every Weir connector builds against. It holds contracts, kept small and
//! stable (like `tower-service`), and the reusable pieces beside them:
//!
//! | module | what it holds |
//! |---|---|
//! | [`source`] | FLIP-27 sources: [`source::Source`], [`source::SplitEnumerator`], [`source::SourceReader`], outputs with per-split views, split pausing as a declared capability |
//! | [`base`] | reusable implementations: [`base::reader::SourceReaderBase`] with async [`base::reader::SplitReader`]s on fetcher tasks, emitters, the FLIP-208 record evaluator |
//! | [`sink`] | SinkV2 in the mixin form: writers, writer state, committers with explicit [`sink::CommitOutcome`]s, committable messages, pre-write / pre-commit / post-commit topologies |
//! | [`lookup`] | FLIP-221 lookup functions, sync and async |
//! | [`watermark`] | watermarks, generators, [`watermark::WatermarkStrategy`] with idleness and alignment, the job-wide [`watermark::CoordinatorStore`] |
//! | [`state`] | [`state::VersionedSerializer`], checksummed framing, binary codecs: every persisted byte is versioned |
//! | [`config`] | typed [`config::ConfigOption`]s and [`config::OptionSet`]s that report every mistake at once and render their docs |
//! | [`metrics`] | the FLIP-33 standard metric names and the [`metrics::MetricGroup`] the runtime implements |
//! | [`error`] | [`ConnectorError`] with an [`ErrorClass`] (`Retryable` / `Fatal`) |
//! | [`erased`] | [`erased::BoxedSource`] and [`erased::BoxedSink`]: any connector as one type |
//! | [`row`], [`format`] | the dynamic row type of pipeline files and the format traits |
//! | [`factory`] | connector factories, registered at compile time ([`register_connector!`]) |
//!
//! The API has no async runtime inside: readers are polled (non-blocking `poll_next` plus an
//! availability signal), per-record calls are synchronous, and `async` appears only at batch,
//! flush, checkpoint, commit and coordinator granularity. Background work (split fetchers) runs
//! on whatever executor the runtime hands over through [`source::SourceReaderContext::spawn`].
//!
//! Complete examples: a source over in-memory ranges in [`source`], a two-phase-committing sink
//! in [`sink`], a split reader in [`base::reader`].
//!
//! ## Versioning
//!
//! Connector crates are versioned `MAJOR.MINOR.PATCH-API`, where `API` is the `MAJOR.MINOR` of
//! this crate they build against (for example `1.0.0-1.0`). [`API_LINE`] is that suffix.

pub mod base;
pub mod checkpoint;
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
pub const API_LINE: &str = "1.0";

#[cfg(test)]
mod tests {
    #[test]
    fn api_line_matches_the_crate_version() {
        let version = env!("CARGO_PKG_VERSION");
        let line: Vec<&str> = version.split('.').take(2).collect();
        assert_eq!(super::API_LINE, line.join("."));
    }
}
