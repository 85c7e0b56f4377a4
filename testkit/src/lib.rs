//! # Weir testkit
//!
//! Conformance suites that any Weir connector — ours or a third party's — runs from its own
//! `cargo test` to prove itself: Flink's connector testing framework (FLIP-133) plus fault
//! injection at every two-phase-commit boundary, semantic checkers, state-compatibility checks
//! against golden savepoints, and fixtures that start the real test servers.
//!
//! | module | what it holds |
//! |---|---|
//! | [`context`] | [`SourceContext`] / [`SinkContext`]: how a connector plugs its external system in |
//! | [`case`] | the cases of both suites ([`SourceCase`], [`SinkCase`]) and [`SuiteKind`] |
//! | [`source_suite`](mod@source_suite) | the source cases: single / multiple splits, savepoints, rescaling, metrics, idle readers, failover |
//! | [`sink_suite`](mod@sink_suite) | the sink cases: basic, savepoints, rescaling, metrics, randomized fault injection |
//! | [`check`] | exactly-once and at-least-once checkers with concise findings |
//! | [`columnar`] | the Arrow factory contract: a columnar source or sink reads and writes what the Row one does |
//! | [`report`] | per-case reports, aggregated per connector into `target/weir-testkit/<connector>.json` and `.md` |
//! | [`paths`] | the workspace root of the crate under test and the report directory |
//! | [`golden`] | restoring savepoints written by earlier releases |
//! | [`servers`] | `noida-db` (Kafka, Elasticsearch), SeaweedFS (S3), `osmem-server` and `cargo-http-registry` fixtures |
//! | [`reference`](mod@reference) | the reference connectors the testkit tests itself with |
//!
//! ## Wiring the suites into a connector
//!
//! Implement a context in the connector's `tests/`, then one macro line expands into one
//! `#[test]` per case and mode (`my_datagen::scale_up_exactly_once`, …), so `cargo test` names
//! the case that failed. A complete context for a source that generates its records:
//!
//! ```
//! use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
//! use weir_testkit::prelude::*;
//!
//! struct MyContext;
//!
//! #[async_trait]
//! impl SourceContext for MyContext {
//!     type Record = u64;
//!     type Source = DataGeneratorSource<u64>;
//!     fn name(&self) -> String { "my-datagen".into() }
//!     fn support(&self) -> SourceSupport {
//!         SourceSupport::generated("it makes its own records").bounded().one_split_per_reader()
//!     }
//!     fn create_source(&self, s: &SourceSettings) -> Result<Self::Source, ContextError> {
//!         let rate = s.rate.map_or(RateLimiterStrategy::no_op(), RateLimiterStrategy::per_second);
//!         Ok(DataGeneratorSource::new(|n| n, Some(s.records_per_split * s.splits as u64), rate))
//!     }
//!     fn records(&self, s: &SourceSettings, split: usize, at: std::ops::Range<u64>) -> Vec<u64> {
//!         at.map(|i| split as u64 * s.records_per_split + i).collect()
//!     }
//! }
//!
//! weir_testkit::source_suite!(my_datagen, || MyContext);
//! # fn main() {}
//! ```
//!
//! A connector whose source reads an external system declares [`SourceSupport::written`] and
//! implements [`SourceContext::create_split_writer`] (a Kafka partition, a file, an index per
//! split); a sink implements [`SinkContext`] and wires [`sink_suite!`]. Cases the connector
//! cannot support are declared in its support (or follow from it, like "write more" for a
//! generator) and reported as *not applicable* with the reason — never silently passed.
//!
//! [`source_state_compat!`] and [`sink_state_compat!`] add a test that restores a golden
//! savepoint checked into the connector's `tests/golden/` (see [`golden`]); [`state_compat!`]
//! checks the golden state files of one serializer, every version (see [`state_files`]).
//!
//! ## Environment
//!
//! | variable | effect |
//! |---|---|
//! | `WEIR_TESTKIT_FAULT_TRIALS` | exactly-once fault-injection trials of the sink suite (default 50, over five fault points) |
//! | `WEIR_TESTKIT_AT_LEAST_ONCE_TRIALS` | at-least-once trials (default 10) |
//! | `WEIR_TESTKIT_SEED` | the base seed of every case (default fixed; reports show each case's seed) |
//! | `WEIR_TESTKIT_REPORT_DIR` | where reports go (default `target/weir-testkit/`) |
//! | `WEIR_REGENERATE_GOLDEN` | `1`: rewrite golden savepoints with the current code |
//! | `WEIR_TEST_SERVERS_ENV` | the `servers.env` of `cargo xtask deps` (default `target/test-servers/servers.env`) |

pub mod case;
pub mod check;
pub mod columnar;
pub mod context;
pub mod golden;
mod harness;
pub mod paths;
mod record;
pub mod reference;
pub mod report;
mod runner;
pub mod servers;
pub mod sink_suite;
pub mod source_suite;
pub mod state_files;
mod suite;

pub use async_trait::async_trait;
pub use case::{SinkCase, SourceCase, SuiteKind};
pub use check::{Finding, FindingKind, Semantic};
pub use context::{
    ContextError, SinkContext, SinkSettings, SinkSupport, SourceContext, SourceData,
    SourceSettings, SourceSupport, SplitLayout, SplitWriter, TestInfo,
};
pub use harness::{SuiteConfig, AT_LEAST_ONCE_TRIALS_ENV, FAULT_TRIALS_ENV, SEED_ENV};
pub use record::{SplitRecord, TestRecord};
pub use report::{CaseReport, CaseStatus, CrateInfo};
pub use sink_suite::run_sink_case;
pub use source_suite::run_source_case;

/// Everything a context implementation needs.
pub mod prelude {
    pub use crate::check::Semantic;
    pub use crate::context::{
        ContextError, SinkContext, SinkSettings, SinkSupport, SourceContext, SourceData,
        SourceSettings, SourceSupport, SplitLayout, SplitWriter, TestInfo,
    };
    pub use crate::record::{SplitRecord, TestRecord};
    pub use async_trait::async_trait;
}

/// Support for the macros; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::runner::{crate_info, sink_case, sink_golden, source_case, source_golden};
}

/// Expands into one `#[test]` per source case and mode, in a module named `$name`.
///
/// `source_suite!(name, factory)` or `source_suite!(name, factory, config)`: `factory` is a
/// function or closure returning the [`SourceContext`] (called inside each test, on the test's
/// tokio runtime); `config` a [`SuiteConfig`] (default [`SuiteConfig::from_env`]). Each test
/// writes its case into the connector's report and fails with the case's findings.
#[macro_export]
macro_rules! source_suite {
    ($name:ident, $factory:expr) => {
        $crate::source_suite!($name, $factory, $crate::SuiteConfig::from_env());
    };
    ($name:ident, $factory:expr, $config:expr) => {
        $crate::__suite! { $name, $factory, $config, source_case, SourceCase;
            single_split_bounded_exactly_once: SingleSplitBounded, ExactlyOnce;
            single_split_bounded_at_least_once: SingleSplitBounded, AtLeastOnce;
            single_split_unbounded_exactly_once: SingleSplitUnbounded, ExactlyOnce;
            single_split_unbounded_at_least_once: SingleSplitUnbounded, AtLeastOnce;
            multiple_splits_bounded_exactly_once: MultipleSplitsBounded, ExactlyOnce;
            multiple_splits_bounded_at_least_once: MultipleSplitsBounded, AtLeastOnce;
            multiple_splits_unbounded_exactly_once: MultipleSplitsUnbounded, ExactlyOnce;
            multiple_splits_unbounded_at_least_once: MultipleSplitsUnbounded, AtLeastOnce;
            savepoint_bounded_exactly_once: SavepointBounded, ExactlyOnce;
            savepoint_bounded_at_least_once: SavepointBounded, AtLeastOnce;
            savepoint_unbounded_exactly_once: SavepointUnbounded, ExactlyOnce;
            savepoint_unbounded_at_least_once: SavepointUnbounded, AtLeastOnce;
            savepoint_write_more_exactly_once: SavepointWriteMore, ExactlyOnce;
            savepoint_write_more_at_least_once: SavepointWriteMore, AtLeastOnce;
            scale_up_exactly_once: ScaleUp, ExactlyOnce;
            scale_up_at_least_once: ScaleUp, AtLeastOnce;
            scale_down_exactly_once: ScaleDown, ExactlyOnce;
            scale_down_at_least_once: ScaleDown, AtLeastOnce;
            metrics_exactly_once: Metrics, ExactlyOnce;
            metrics_at_least_once: Metrics, AtLeastOnce;
            idle_reader_exactly_once: IdleReader, ExactlyOnce;
            idle_reader_at_least_once: IdleReader, AtLeastOnce;
            failover_bounded_exactly_once: FailoverBounded, ExactlyOnce;
            failover_bounded_at_least_once: FailoverBounded, AtLeastOnce;
            failover_unbounded_exactly_once: FailoverUnbounded, ExactlyOnce;
            failover_unbounded_at_least_once: FailoverUnbounded, AtLeastOnce;
        }
    };
}

/// Expands into one `#[test]` per sink case (and mode), in a module named `$name`.
///
/// `sink_suite!(name, factory)` or `sink_suite!(name, factory, config)`, as [`source_suite!`].
#[macro_export]
macro_rules! sink_suite {
    ($name:ident, $factory:expr) => {
        $crate::sink_suite!($name, $factory, $crate::SuiteConfig::from_env());
    };
    ($name:ident, $factory:expr, $config:expr) => {
        $crate::__suite! { $name, $factory, $config, sink_case, SinkCase;
            basic_exactly_once: Basic, ExactlyOnce;
            basic_at_least_once: Basic, AtLeastOnce;
            start_from_savepoint_exactly_once: StartFromSavepoint, ExactlyOnce;
            start_from_savepoint_at_least_once: StartFromSavepoint, AtLeastOnce;
            scale_up_exactly_once: ScaleUp, ExactlyOnce;
            scale_up_at_least_once: ScaleUp, AtLeastOnce;
            scale_down_exactly_once: ScaleDown, ExactlyOnce;
            scale_down_at_least_once: ScaleDown, AtLeastOnce;
            metrics_exactly_once: Metrics, ExactlyOnce;
            metrics_at_least_once: Metrics, AtLeastOnce;
            exactly_once_under_faults: ExactlyOnceUnderFaults, ExactlyOnce;
            at_least_once_under_faults: AtLeastOnceUnderFaults, AtLeastOnce;
        }
    };
}

/// A `#[test]` named `$test` that restores the source from the golden savepoint in `$dir`
/// (relative to the crate's manifest directory, e.g. `"tests/golden/source-1.0.0"`).
#[macro_export]
macro_rules! source_state_compat {
    ($test:ident, $factory:expr, $dir:expr) => {
        $crate::__state_compat!($test, $factory, $dir, source_golden);
    };
}

/// A `#[test]` named `$test` that restores the sink from the golden savepoint in `$dir`
/// (relative to the crate's manifest directory).
#[macro_export]
macro_rules! sink_state_compat {
    ($test:ident, $factory:expr, $dir:expr) => {
        $crate::__state_compat!($test, $factory, $dir, sink_golden);
    };
}

/// The body of [`source_suite!`] and [`sink_suite!`]: a module `$name` with one `#[test]` per
/// case and mode, each running through `__private::$runner`.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite {
    (
        $name:ident, $factory:expr, $config:expr, $runner:ident, $kind:ident;
        $($test:ident: $case:ident, $mode:ident;)*
    ) => {
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run(case: $crate::$kind, semantic: $crate::Semantic) {
                $crate::__private::$runner(
                    || ($factory)(),
                    case,
                    semantic,
                    &$config,
                    &$crate::__private::crate_info(
                        env!("CARGO_PKG_NAME"),
                        env!("CARGO_PKG_VERSION"),
                        env!("CARGO_MANIFEST_DIR"),
                    ),
                );
            }

            $(
                #[test]
                fn $test() {
                    run($crate::$kind::$case, $crate::Semantic::$mode);
                }
            )*
        }
    };
}

/// The body of [`source_state_compat!`] and [`sink_state_compat!`]: a `#[test]` running the
/// golden check through `__private::$runner`.
#[doc(hidden)]
#[macro_export]
macro_rules! __state_compat {
    ($test:ident, $factory:expr, $dir:expr, $runner:ident) => {
        #[test]
        fn $test() {
            $crate::__private::$runner(
                || ($factory)(),
                $dir,
                &$crate::SuiteConfig::from_env(),
                &$crate::__private::crate_info(
                    env!("CARGO_PKG_NAME"),
                    env!("CARGO_PKG_VERSION"),
                    env!("CARGO_MANIFEST_DIR"),
                ),
            );
        }
    };
}
