//! State compatibility: restore a connector from a savepoint written by an earlier release.
//!
//! A **golden** is a directory checked into the connector's `tests/golden/`:
//!
//! - `savepoint/_metadata`: a savepoint taken mid-stream by the release that wrote it;
//! - `golden.json`: a [`GoldenManifest`] — which test data the job read (settings and seed, so
//!   the external data can be written again), who wrote it, and how many records of each split
//!   the savepoint already covers.
//!
//! The check restores a job from the savepoint with the current code and proves that it resumes
//! exactly: every record not covered by the savepoint arrives once, in order, and nothing that
//! was covered arrives again. Set `WEIR_REGENERATE_GOLDEN=1` to (re)write the goldens with the
//! current release (then commit them); keep old goldens when a release changes its state format,
//! so the new release proves it still reads them.
//!
//! Sources are checked through the same collector as the source suite; sinks through the same
//! datagen feeder as the sink suite, whose checkpointed position tells which records the
//! savepoint covers. One flow serves both (the private `halves` module holds what differs), and the public
//! functions name the half they run.

mod halves;
mod manifest;

use std::path::Path;
use std::time::Instant;

use weir_connector_api::source::Boundedness;

use self::halves::{Golden, Half};
use self::manifest::{
    finding, fresh_dir, golden_test_id, now_ms, read_manifest, write_manifest, GOLDEN_SEED,
    PARALLELISM, SPLITS,
};
pub use self::manifest::{
    regenerate_requested, GoldenManifest, MANIFEST_FILE, REGENERATE_ENV, SAVEPOINT_DIR,
};
use crate::case::SuiteKind;
use crate::check::{Finding, FindingKind, Semantic};
use crate::context::{SinkContext, SourceContext, TestInfo};
use crate::harness::{context_finding, SuiteConfig};
use crate::report::{CaseReport, CrateInfo};
use crate::suite::{AsSink, AsSource};

/// The public functions of one half, for contexts of trait `$context` seen as `$wrapper`:
/// `$compat` checks a golden (writing it anew first when asked), `$check` only checks it and
/// `$write` only writes it.
macro_rules! half_functions {
    (
        $context:ident, $wrapper:ident;
        $(#[$compat_doc:meta])* $compat:ident;
        $(#[$check_doc:meta])* $check:ident;
        $(#[$write_doc:meta])* $write:ident;
    ) => {
        $(#[$compat_doc])*
        pub async fn $compat<C: $context>(
            ctx: &mut C,
            dir: &Path,
            config: &SuiteConfig,
            crate_info: Option<&CrateInfo>,
        ) -> CaseReport {
            state_compat(&mut $wrapper(ctx), dir, config, crate_info).await
        }

        $(#[$check_doc])*
        pub async fn $check<C: $context>(ctx: &mut C, dir: &Path, config: &SuiteConfig) -> CaseReport {
            check_golden(&mut $wrapper(ctx), dir, config).await
        }

        $(#[$write_doc])*
        pub async fn $write<C: $context>(
            ctx: &mut C,
            dir: &Path,
            config: &SuiteConfig,
            crate_info: Option<&CrateInfo>,
        ) -> Result<GoldenManifest, Finding> {
            write_golden(&mut $wrapper(ctx), dir, config, crate_info).await
        }
    };
}

half_functions! {
    SourceContext, AsSource;
    /// Checks that the source restores from the golden in `dir` and resumes exactly; with
    /// `WEIR_REGENERATE_GOLDEN=1`, first writes the golden anew with the current code.
    source_state_compat;
    /// Restores the source from the golden in `dir` and checks that it resumes exactly (never
    /// writes the golden).
    check_source_golden;
    /// Writes a golden into `dir` with the current code: runs the source (two splits, paced)
    /// into the collector, stops it with a savepoint a third of the way, and records the
    /// manifest.
    write_source_golden;
}

half_functions! {
    SinkContext, AsSink;
    /// Checks that the sink restores from the golden in `dir` and resumes exactly; with
    /// `WEIR_REGENERATE_GOLDEN=1`, first writes the golden anew with the current code.
    ///
    /// The external system starts empty: transactions the old release left pending in its
    /// savepoint do not exist in it, so the sink's committer must treat them as it treats
    /// unknown transactions (the reference sink discards them as "failed with a known reason").
    /// Only the records after the savepoint's position are expected.
    sink_state_compat;
    /// Restores the sink from the golden in `dir` and checks that it resumes exactly (never
    /// writes the golden).
    check_sink_golden;
    /// Writes a golden into `dir` with the current code: feeds the sink (two splits, paced),
    /// stops the job with a savepoint after three checkpoints, and records the manifest (the
    /// feeder's checkpointed position says what the savepoint covers).
    write_sink_golden;
}

/// The case name of a golden check: `restore_<directory name>`.
fn case_name(dir: &Path) -> String {
    format!(
        "restore_{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("golden")
    )
}

/// The report of the golden check of `dir`, not yet run.
fn golden_report<H: Half>(half: &H, dir: &Path) -> CaseReport {
    CaseReport::new(
        &half.name(),
        SuiteKind::StateCompat,
        &case_name(dir),
        Some(Semantic::ExactlyOnce),
        GOLDEN_SEED,
    )
}

async fn state_compat<H: Half>(
    half: &mut H,
    dir: &Path,
    config: &SuiteConfig,
    crate_info: Option<&CrateInfo>,
) -> CaseReport {
    let started = Instant::now();
    let mut report = golden_report(half, dir);
    if regenerate_requested() {
        match write_golden(half, dir, config, crate_info).await {
            Ok(m) => report.notes.push(format!(
                "wrote a new golden: covers {:?} of {} records per split",
                m.covered, m.records_per_split
            )),
            Err(f) => {
                report.findings.push(f);
                return report.finish(started);
            }
        }
    }
    let checked = check_golden(half, dir, config).await;
    report.findings.extend(checked.findings);
    report.notes.extend(checked.notes);
    report.finish(started)
}

async fn check_golden<H: Half>(half: &mut H, dir: &Path, config: &SuiteConfig) -> CaseReport {
    let started = Instant::now();
    let mut report = golden_report(half, dir);
    match check(half, dir, config, &mut report.notes).await {
        Ok(findings) => report.findings.extend(findings),
        Err(f) => report.findings.push(f),
    }
    report.finish(started)
}

async fn write_golden<H: Half>(
    half: &mut H,
    dir: &Path,
    config: &SuiteConfig,
    crate_info: Option<&CrateInfo>,
) -> Result<GoldenManifest, Finding> {
    let savepoint = fresh_dir(dir)?;
    let test_id = golden_test_id(dir);
    let info = TestInfo::new(
        SuiteKind::StateCompat,
        "generate",
        Semantic::ExactlyOnce,
        &test_id,
        GOLDEN_SEED,
    );
    half.setup(&info)
        .await
        .map_err(|e| context_finding("setup", &e))?;
    let golden = Golden {
        savepoint: &savepoint,
        config,
    };
    let written = half.write(&golden, &test_id).await;
    let _ = half.teardown(&info).await;
    let (boundedness, covered) = written?;
    let manifest = GoldenManifest {
        format: 1,
        kind: H::SUITE.as_str().into(),
        connector: half.name(),
        written_by: crate_info.map(|c| format!("{} {}", c.name, c.version)),
        test_id,
        seed: GOLDEN_SEED,
        boundedness: match boundedness {
            Boundedness::Bounded => "bounded".into(),
            Boundedness::ContinuousUnbounded => "unbounded".into(),
        },
        splits: SPLITS,
        records_per_split: config.records_per_split,
        parallelism: PARALLELISM,
        covered,
        created_at_ms: now_ms(),
    };
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

async fn check<H: Half>(
    half: &mut H,
    dir: &Path,
    config: &SuiteConfig,
    notes: &mut Vec<String>,
) -> Result<Vec<Finding>, Finding> {
    let manifest = read_manifest(dir)?;
    if manifest.kind != H::SUITE.as_str() {
        return Err(finding(
            FindingKind::StateCompat,
            format!("{} holds a {} golden", dir.display(), manifest.kind),
        ));
    }
    notes.push(format!(
        "golden written by {} covers {:?} of {} records per split",
        manifest
            .written_by
            .as_deref()
            .unwrap_or("an unknown release"),
        manifest.covered,
        manifest.records_per_split
    ));
    let savepoint = dir.join(SAVEPOINT_DIR);
    let info = TestInfo::new(
        SuiteKind::StateCompat,
        "check",
        Semantic::ExactlyOnce,
        &manifest.test_id,
        manifest.seed,
    );
    half.setup(&info)
        .await
        .map_err(|e| context_finding("setup", &e))?;
    let golden = Golden {
        savepoint: &savepoint,
        config,
    };
    let (findings, mut more) = half.check(&golden, &manifest).await;
    notes.append(&mut more);
    let _ = half.teardown(&info).await;
    findings
}
