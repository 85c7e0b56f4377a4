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
//! | [`source_suite`](mod@source_suite) | the source cases: single / multiple splits, savepoints, rescaling, metrics, idle readers, failover |
//! | [`sink_suite`](mod@sink_suite) | the sink cases: basic, savepoints, rescaling, metrics, randomized fault injection |
//! | [`check`] | exactly-once and at-least-once checkers with concise findings |
//! | [`report`] | per-case reports, aggregated per connector into `target/weir-testkit/<connector>.json` and `.md` |
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
//! savepoint checked into the connector's `tests/golden/` (see [`golden`]).
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

pub mod check;
pub mod context;
pub mod golden;
mod harness;
mod record;
pub mod reference;
pub mod report;
pub mod servers;
pub mod sink_suite;
pub mod source_suite;

pub use async_trait::async_trait;
pub use check::{Finding, FindingKind, Semantic};
pub use context::{
    ContextError, SinkContext, SinkSettings, SinkSupport, SourceContext, SourceData,
    SourceSettings, SourceSupport, SplitLayout, SplitWriter, SuiteKind, TestInfo,
};
pub use harness::{SuiteConfig, AT_LEAST_ONCE_TRIALS_ENV, FAULT_TRIALS_ENV, SEED_ENV};
pub use record::{SplitRecord, TestRecord};
pub use report::{CaseReport, CaseStatus, CrateInfo};
pub use sink_suite::{run_sink_case, SinkCase};
pub use source_suite::{run_source_case, SourceCase};

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
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run(case: $crate::SourceCase, semantic: $crate::Semantic) {
                $crate::__private::source_case(
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

            $crate::__tests! { run; SourceCase;
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
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run(case: $crate::SinkCase, semantic: $crate::Semantic) {
                $crate::__private::sink_case(
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

            $crate::__tests! { run; SinkCase;
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
        }
    };
}

/// A `#[test]` named `$test` that restores the source from the golden savepoint in `$dir`
/// (relative to the crate's manifest directory, e.g. `"tests/golden/source-1.0.0"`).
#[macro_export]
macro_rules! source_state_compat {
    ($test:ident, $factory:expr, $dir:expr) => {
        #[test]
        fn $test() {
            $crate::__private::source_golden(
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

/// A `#[test]` named `$test` that restores the sink from the golden savepoint in `$dir`
/// (relative to the crate's manifest directory).
#[macro_export]
macro_rules! sink_state_compat {
    ($test:ident, $factory:expr, $dir:expr) => {
        #[test]
        fn $test() {
            $crate::__private::sink_golden(
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

#[doc(hidden)]
#[macro_export]
macro_rules! __tests {
    ($run:ident; $kind:ident; $($test:ident: $case:ident, $mode:ident;)*) => {
        $(
            #[test]
            fn $test() {
                $run($crate::$kind::$case, $crate::Semantic::$mode);
            }
        )*
    };
}

/// Support for the macros; not a public API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;
    use std::path::Path;

    use crate::check::{Finding, FindingKind, Semantic};
    use crate::context::{SinkContext, SourceContext, SuiteKind};
    use crate::harness::SuiteConfig;
    use crate::report::{record_case, report_dir, CaseReport, CrateInfo};
    use crate::sink_suite::SinkCase;
    use crate::source_suite::{SourceCase, CASE_TIMEOUT};

    pub fn crate_info(name: &str, version: &str, manifest_dir: &str) -> CrateInfo {
        CrateInfo::new(name, version, Some(manifest_dir))
    }

    /// A fresh multi-thread runtime for one case.
    #[allow(clippy::panic)] // a failed case fails the test: that is the point
    fn runtime() -> tokio::runtime::Runtime {
        match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => panic!("cannot start a tokio runtime for the case: {e}"),
        }
    }

    /// Runs `case`; one over [`CASE_TIMEOUT`] becomes a timeout finding.
    async fn in_time(
        connector: String,
        what: (SuiteKind, &str, Option<Semantic>),
        case: impl Future<Output = CaseReport>,
    ) -> CaseReport {
        let started = std::time::Instant::now();
        match tokio::time::timeout(CASE_TIMEOUT, case).await {
            Ok(report) => report,
            Err(_) => {
                let mut report = CaseReport::new(&connector, what.0, what.1, what.2, 0);
                report.findings.push(Finding::new(
                    FindingKind::Timeout,
                    format!("the case did not end within {CASE_TIMEOUT:?}"),
                ));
                report.finish(started)
            }
        }
    }

    #[allow(clippy::panic)] // a failed case fails the test: that is the point
    fn conclude(report: &CaseReport, config: &SuiteConfig, info: &CrateInfo) {
        if config.write_reports {
            let dir = report_dir(info.manifest_dir.as_deref());
            if let Err(e) = record_case(&dir, report, Some(info)) {
                eprintln!(
                    "weir-testkit: could not write the report into {}: {e}",
                    dir.display()
                );
            }
        }
        println!("{report}");
        assert!(!report.failed(), "{report}");
    }

    pub fn source_case<C: SourceContext>(
        factory: impl FnOnce() -> C,
        case: SourceCase,
        semantic: Semantic,
        config: &SuiteConfig,
        info: &CrateInfo,
    ) {
        let report = runtime().block_on(async {
            let mut ctx = factory();
            let what = (SuiteKind::Source, case.name(), Some(semantic));
            let name = ctx.name();
            let run = crate::source_suite::run_source_case(&mut ctx, case, semantic, config);
            in_time(name, what, run).await
        });
        conclude(&report, config, info);
    }

    pub fn sink_case<C: SinkContext>(
        factory: impl FnOnce() -> C,
        case: SinkCase,
        semantic: Semantic,
        config: &SuiteConfig,
        info: &CrateInfo,
    ) {
        let semantic = case.fixed_mode().unwrap_or(semantic);
        let report = runtime().block_on(async {
            let mut ctx = factory();
            let what = (SuiteKind::Sink, case.name(), Some(semantic));
            let name = ctx.name();
            let run = crate::sink_suite::run_sink_case(&mut ctx, case, semantic, config);
            in_time(name, what, run).await
        });
        conclude(&report, config, info);
    }

    pub fn source_golden<C: SourceContext>(
        factory: impl FnOnce() -> C,
        dir: &str,
        config: &SuiteConfig,
        info: &CrateInfo,
    ) {
        let base = crate::report::manifest_dir(info.manifest_dir.as_deref());
        let path = base.join(Path::new(dir));
        let report = runtime().block_on(async {
            let mut ctx = factory();
            let name = ctx.name();
            let what = (SuiteKind::StateCompat, dir, Some(Semantic::ExactlyOnce));
            let run = crate::golden::source_state_compat(&mut ctx, &path, config, Some(info));
            in_time(name, what, run).await
        });
        conclude(&report, config, info);
    }

    pub fn sink_golden<C: SinkContext>(
        factory: impl FnOnce() -> C,
        dir: &str,
        config: &SuiteConfig,
        info: &CrateInfo,
    ) {
        let base = crate::report::manifest_dir(info.manifest_dir.as_deref());
        let path = base.join(Path::new(dir));
        let report = runtime().block_on(async {
            let mut ctx = factory();
            let name = ctx.name();
            let what = (SuiteKind::StateCompat, dir, Some(Semantic::ExactlyOnce));
            let run = crate::golden::sink_state_compat(&mut ctx, &path, config, Some(info));
            in_time(name, what, run).await
        });
        conclude(&report, config, info);
    }
}
