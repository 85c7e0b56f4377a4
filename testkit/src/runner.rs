//! What the suite macros' tests call (re-exported as the hidden `__private` module): each
//! test makes its context on a fresh runtime, runs one case or golden check within
//! [`CASE_TIMEOUT`], records the report and fails with its findings. One runner serves every
//! kind of test; the public functions name what they run.

use std::future::Future;
use std::path::Path;

use crate::case::{SinkCase, SourceCase, SuiteKind, CASE_TIMEOUT};
use crate::check::{Finding, FindingKind, Semantic};
use crate::context::{SinkContext, SourceContext};
use crate::golden::{sink_state_compat, source_state_compat};
use crate::harness::SuiteConfig;
use crate::paths::{manifest_dir, report_dir};
use crate::report::{record_case, CaseReport, CrateInfo};
use crate::sink_suite::run_sink_case;
use crate::source_suite::run_source_case;

/// The crate under test, from the macros' `env!` values.
pub fn crate_info(name: &str, version: &str, manifest_dir: &str) -> CrateInfo {
    CrateInfo::new(name, version, Some(manifest_dir))
}

/// Runs a case of the source suite as a test.
pub fn source_case<C: SourceContext>(
    factory: impl FnOnce() -> C,
    case: SourceCase,
    semantic: Semantic,
    config: &SuiteConfig,
    info: &CrateInfo,
) {
    let what = (SuiteKind::Source, case.name(), Some(semantic));
    run_test(factory, C::name, what, config, info, async |ctx| {
        run_source_case(ctx, case, semantic, config).await
    });
}

/// Runs a case of the sink suite as a test (a fault case in its own mode).
pub fn sink_case<C: SinkContext>(
    factory: impl FnOnce() -> C,
    case: SinkCase,
    semantic: Semantic,
    config: &SuiteConfig,
    info: &CrateInfo,
) {
    let semantic = case.fixed_mode().unwrap_or(semantic);
    let what = (SuiteKind::Sink, case.name(), Some(semantic));
    run_test(factory, C::name, what, config, info, async |ctx| {
        run_sink_case(ctx, case, semantic, config).await
    });
}

/// Runs the golden check of a source in `dir` (relative to the crate's manifest directory) as
/// a test.
pub fn source_golden<C: SourceContext>(
    factory: impl FnOnce() -> C,
    dir: &str,
    config: &SuiteConfig,
    info: &CrateInfo,
) {
    run_golden(factory, C::name, dir, config, info, async |ctx, path| {
        source_state_compat(ctx, path, config, Some(info)).await
    });
}

/// Runs the golden check of a sink in `dir` (relative to the crate's manifest directory) as a
/// test.
pub fn sink_golden<C: SinkContext>(
    factory: impl FnOnce() -> C,
    dir: &str,
    config: &SuiteConfig,
    info: &CrateInfo,
) {
    run_golden(factory, C::name, dir, config, info, async |ctx, path| {
        sink_state_compat(ctx, path, config, Some(info)).await
    });
}

/// [`run_test`] for the golden check `check` of `dir` (relative to the crate's manifest
/// directory).
fn run_golden<C>(
    factory: impl FnOnce() -> C,
    name: fn(&C) -> String,
    dir: &str,
    config: &SuiteConfig,
    info: &CrateInfo,
    check: impl AsyncFnOnce(&mut C, &Path) -> CaseReport,
) {
    let path = manifest_dir(info.manifest_dir.as_deref()).join(Path::new(dir));
    let what = (SuiteKind::StateCompat, dir, Some(Semantic::ExactlyOnce));
    run_test(factory, name, what, config, info, async |ctx| {
        check(ctx, &path).await
    });
}

/// Makes the context with `factory` on a fresh runtime, runs `test` on it within
/// [`CASE_TIMEOUT`] (`what` names the case in a timeout's report; `name` gives the
/// connector's), then records the report and fails the test with its findings.
fn run_test<C>(
    factory: impl FnOnce() -> C,
    name: fn(&C) -> String,
    what: (SuiteKind, &str, Option<Semantic>),
    config: &SuiteConfig,
    info: &CrateInfo,
    test: impl AsyncFnOnce(&mut C) -> CaseReport,
) {
    let report = runtime().block_on(async {
        let mut ctx = factory();
        let connector = name(&ctx);
        in_time(connector, what, test(&mut ctx)).await
    });
    conclude(&report, config, info);
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
