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
//! savepoint covers.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use weir_connector_api::source::Boundedness;
use weir_connector_api::state::{VecSerializer, VersionedSerializer};
use weir_connector_datagen::{NumberSequenceSplit, NumberSequenceSplitSerializer};
use weir_runtime::storage::{read_savepoint, METADATA_FILE_NAME};
use weir_runtime::RestoreFrom;

use crate::check::{check_records, CheckOptions, ExpectedSplit, Finding, FindingKind, Semantic};
use crate::context::{
    SinkContext, SinkSettings, SourceContext, SourceSettings, SuiteKind, TestInfo,
};
use crate::harness::{context_finding, SuiteConfig};
use crate::report::{CaseReport, CrateInfo};
use crate::sink_suite::{SinkRun, FEEDER_UID};
use crate::source_suite::SourceRun;

/// Set to `1` to (re)generate golden savepoints with the current code.
pub const REGENERATE_ENV: &str = "WEIR_REGENERATE_GOLDEN";
/// The manifest's file name inside a golden directory.
pub const MANIFEST_FILE: &str = "golden.json";
/// The savepoint's directory name inside a golden directory.
pub const SAVEPOINT_DIR: &str = "savepoint";

const PARALLELISM: usize = 2;
const SPLITS: usize = 2;
const GOLDEN_SEED: u64 = 0x0060_1DE7;

/// What a golden savepoint holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoldenManifest {
    /// The manifest format (1).
    pub format: u32,
    /// `source` or `sink`.
    pub kind: String,
    /// The connector's name.
    pub connector: String,
    /// The crate and version that wrote it, if known.
    pub written_by: Option<String>,
    /// The test id the data was written under (external resources are named after it).
    pub test_id: String,
    /// The seed of the records.
    pub seed: u64,
    /// `bounded` or `unbounded` (sources).
    pub boundedness: String,
    /// The number of splits.
    pub splits: usize,
    /// Records per split.
    pub records_per_split: u64,
    /// The parallelism the savepoint was taken at.
    pub parallelism: usize,
    /// Per split, how many of its first records the savepoint covers.
    pub covered: Vec<u64>,
    /// When it was written (milliseconds since the Unix epoch).
    pub created_at_ms: u64,
}

/// Whether `WEIR_REGENERATE_GOLDEN` asks for new goldens.
pub fn regenerate_requested() -> bool {
    std::env::var(REGENERATE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn golden_test_id(dir: &Path) -> String {
    let name: String = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("golden")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(28)
        .collect();
    format!("weir-golden-{name}")
}

fn finding(kind: FindingKind, message: impl Into<String>) -> Finding {
    Finding::new(kind, message)
}

fn read_manifest(dir: &Path) -> Result<GoldenManifest, Finding> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = fs::read(&path).map_err(|e| {
        finding(
            FindingKind::StateCompat,
            format!(
                "no golden at {} ({e}): run the test with {REGENERATE_ENV}=1 to write one, and commit it",
                path.display()
            ),
        )
    })?;
    let manifest: GoldenManifest = serde_json::from_slice(&bytes).map_err(|e| {
        finding(
            FindingKind::StateCompat,
            format!("{} is not a golden manifest: {e}", path.display()),
        )
    })?;
    if manifest.format != 1 {
        return Err(finding(
            FindingKind::StateCompat,
            format!(
                "{}: unknown manifest format {}",
                path.display(),
                manifest.format
            ),
        ));
    }
    if !dir.join(SAVEPOINT_DIR).join(METADATA_FILE_NAME).is_file() {
        return Err(finding(
            FindingKind::StateCompat,
            format!(
                "{} has no {SAVEPOINT_DIR}/{METADATA_FILE_NAME}",
                dir.display()
            ),
        ));
    }
    Ok(manifest)
}

fn write_manifest(dir: &Path, manifest: &GoldenManifest) -> Result<(), Finding> {
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| finding(FindingKind::Context, format!("encoding the manifest: {e}")))?;
    fs::write(dir.join(MANIFEST_FILE), json)
        .map_err(|e| finding(FindingKind::Context, format!("writing the manifest: {e}")))
}

/// Moves the savepoint that a stop wrote into its own `savepoint-<id>-<time>` directory under
/// `savepoint` up into `savepoint` itself, the layout golden directories keep.
fn flatten_savepoint(savepoint: &Path) -> Result<(), Finding> {
    let context = |what: &str, e: std::io::Error| {
        finding(
            FindingKind::Context,
            format!("{what} {}: {e}", savepoint.display()),
        )
    };
    let entries = fs::read_dir(savepoint).map_err(|e| context("listing", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| context("listing", e))?;
        let inner = entry.path().join(METADATA_FILE_NAME);
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("savepoint-")
            && inner.is_file()
        {
            fs::rename(&inner, savepoint.join(METADATA_FILE_NAME))
                .map_err(|e| context("moving the savepoint into", e))?;
            fs::remove_dir(entry.path()).map_err(|e| context("cleaning up", e))?;
        }
    }
    Ok(())
}

fn fresh_dir(dir: &Path) -> Result<PathBuf, Finding> {
    let savepoint = dir.join(SAVEPOINT_DIR);
    if savepoint.exists() {
        fs::remove_dir_all(&savepoint).map_err(|e| {
            finding(
                FindingKind::Context,
                format!("removing {}: {e}", savepoint.display()),
            )
        })?;
    }
    fs::create_dir_all(dir).map_err(|e| {
        finding(
            FindingKind::Context,
            format!("creating {}: {e}", dir.display()),
        )
    })?;
    Ok(savepoint)
}

fn as_state_compat(f: Finding, savepoint: &Path) -> Finding {
    if matches!(f.kind, FindingKind::JobFailed | FindingKind::Timeout) {
        Finding::new(
            FindingKind::StateCompat,
            format!("restoring {}: {}", savepoint.display(), f.message),
        )
    } else {
        f
    }
}

/// The case name of a golden check: `restore_<directory name>`.
fn case_name(dir: &Path) -> String {
    format!(
        "restore_{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("golden")
    )
}

/// Checks that the source restores from the golden in `dir` and resumes exactly; with
/// `WEIR_REGENERATE_GOLDEN=1`, first writes the golden anew with the current code.
pub async fn source_state_compat<C: SourceContext>(
    ctx: &mut C,
    dir: &Path,
    config: &SuiteConfig,
    crate_info: Option<&CrateInfo>,
) -> CaseReport {
    let started = Instant::now();
    let mut report = CaseReport::new(
        &ctx.name(),
        SuiteKind::StateCompat,
        &case_name(dir),
        Some(Semantic::ExactlyOnce),
        GOLDEN_SEED,
    );
    if regenerate_requested() {
        match write_source_golden(ctx, dir, config, crate_info).await {
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
    let checked = check_source_golden(ctx, dir, config).await;
    report.findings.extend(checked.findings);
    report.notes.extend(checked.notes);
    report.finish(started)
}

/// Restores the source from the golden in `dir` and checks that it resumes exactly (never
/// writes the golden).
pub async fn check_source_golden<C: SourceContext>(
    ctx: &mut C,
    dir: &Path,
    config: &SuiteConfig,
) -> CaseReport {
    let started = Instant::now();
    let mut report = CaseReport::new(
        &ctx.name(),
        SuiteKind::StateCompat,
        &case_name(dir),
        Some(Semantic::ExactlyOnce),
        GOLDEN_SEED,
    );
    match check_source(ctx, dir, config, &mut report.notes).await {
        Ok(findings) => report.findings.extend(findings),
        Err(f) => report.findings.push(f),
    }
    report.finish(started)
}

fn source_settings(m: &GoldenManifest) -> SourceSettings {
    let boundedness = if m.boundedness == "unbounded" {
        Boundedness::ContinuousUnbounded
    } else {
        Boundedness::Bounded
    };
    SourceSettings::new(
        &m.test_id,
        boundedness,
        m.splits,
        m.records_per_split,
        m.seed,
    )
}

/// Writes a golden into `dir` with the current code: runs the source (two splits, paced) into
/// the collector, stops it with a savepoint a third of the way, and records the manifest.
pub async fn write_source_golden<C: SourceContext>(
    ctx: &mut C,
    dir: &Path,
    config: &SuiteConfig,
    crate_info: Option<&CrateInfo>,
) -> Result<GoldenManifest, Finding> {
    let savepoint = fresh_dir(dir)?;
    let support = ctx.support();
    let boundedness = if support.bounded {
        Boundedness::Bounded
    } else {
        Boundedness::ContinuousUnbounded
    };
    let test_id = golden_test_id(dir);
    let n = config.records_per_split;
    let settings = SourceSettings::new(&test_id, boundedness, SPLITS, n, GOLDEN_SEED)
        .with_rate(Some(config.pace(SPLITS as u64 * n)));
    let info = TestInfo::new(
        SuiteKind::StateCompat,
        "generate",
        Semantic::ExactlyOnce,
        &test_id,
        GOLDEN_SEED,
    );
    ctx.setup(&info)
        .await
        .map_err(|e| context_finding("setup", &e))?;
    let mut run = SourceRun::new(
        &mut *ctx,
        Semantic::ExactlyOnce,
        config,
        support,
        settings.clone(),
    );
    run.savepoint_at = Some(savepoint.clone());
    let result = async {
        run.create_splits().await?;
        run.write(n).await?;
        run.read_part_and_stop(PARALLELISM, 1.0 / 3.0).await?;
        flatten_savepoint(&savepoint)?;
        Ok::<_, Finding>(())
    }
    .await;
    let covered = result.and_then(|()| {
        covered_prefixes(
            &(0..SPLITS)
                .map(|s| run.ctx.records(&settings, s, 0..n))
                .collect::<Vec<_>>(),
            &run.store.prepared_or_committed(),
        )
    });
    run.close_writers();
    let _ = ctx.teardown(&info).await;
    let covered = covered?;
    let manifest = GoldenManifest {
        format: 1,
        kind: "source".into(),
        connector: ctx.name(),
        written_by: crate_info.map(|c| format!("{} {}", c.name, c.version)),
        test_id,
        seed: GOLDEN_SEED,
        boundedness: match boundedness {
            Boundedness::Bounded => "bounded".into(),
            Boundedness::ContinuousUnbounded => "unbounded".into(),
        },
        splits: SPLITS,
        records_per_split: n,
        parallelism: PARALLELISM,
        covered,
        created_at_ms: now_ms(),
    };
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

/// Per split, the length of the prefix that `seen` holds (which must be exactly a prefix).
fn covered_prefixes<T: crate::TestRecord>(
    splits: &[Vec<T>],
    seen: &[T],
) -> Result<Vec<u64>, Finding> {
    let expected: Vec<ExpectedSplit<T>> = splits
        .iter()
        .enumerate()
        .map(|(s, r)| ExpectedSplit::new(format!("split {s}"), r.clone()))
        .collect();
    let check = check_records(
        &expected,
        seen,
        &CheckOptions::exactly_once().completeness(crate::check::Completeness::Prefix),
    );
    if let Some(f) = check.findings.into_iter().next() {
        return Err(finding(
            f.kind,
            format!(
                "the job did not hand over an exact prefix before its savepoint: {}",
                f.message
            ),
        ));
    }
    Ok(splits
        .iter()
        .map(|records| {
            records
                .iter()
                .rposition(|r| seen.contains(r))
                .map_or(0, |i| i as u64 + 1)
        })
        .collect())
}

async fn check_source<C: SourceContext>(
    ctx: &mut C,
    dir: &Path,
    config: &SuiteConfig,
    notes: &mut Vec<String>,
) -> Result<Vec<Finding>, Finding> {
    let manifest = read_manifest(dir)?;
    if manifest.kind != "source" {
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
    let settings = source_settings(&manifest);
    let savepoint = dir.join(SAVEPOINT_DIR);
    let info = TestInfo::new(
        SuiteKind::StateCompat,
        "check",
        Semantic::ExactlyOnce,
        &manifest.test_id,
        manifest.seed,
    );
    ctx.setup(&info)
        .await
        .map_err(|e| context_finding("setup", &e))?;
    let support = ctx.support();
    let n = manifest.records_per_split;
    let mut run = SourceRun::new(
        &mut *ctx,
        Semantic::ExactlyOnce,
        config,
        support,
        settings.clone(),
    );
    let expected: Vec<ExpectedSplit<C::Record>> = (0..manifest.splits)
        .map(|s| {
            let from = manifest.covered.get(s).copied().unwrap_or(0).min(n);
            ExpectedSplit::new(format!("split {s}"), run.ctx.records(&settings, s, from..n))
        })
        .collect();
    run.target_override = Some(expected.iter().map(|e| e.records.len()).sum());
    let result = async {
        run.create_splits().await?;
        run.write(n).await?;
        run.read_all(
            manifest.parallelism,
            RestoreFrom::Savepoint(savepoint.clone()),
        )
        .await
        .map_err(|f| as_state_compat(f, &savepoint))?;
        Ok::<_, Finding>(())
    }
    .await;
    let findings = result.map(|()| {
        let actual = run.store.committed();
        let check = check_records(&expected, &actual, &CheckOptions::exactly_once());
        notes.push(format!(
            "restored and read {} records, {} expected",
            check.summary.received, check.summary.expected
        ));
        check.findings
    });
    run.close_writers();
    let _ = ctx.teardown(&info).await;
    findings
}

/// Checks that the sink restores from the golden in `dir` and resumes exactly; with
/// `WEIR_REGENERATE_GOLDEN=1`, first writes the golden anew with the current code.
///
/// The external system starts empty: transactions the old release left pending in its
/// savepoint do not exist in it, so the sink's committer must treat them as it treats unknown
/// transactions (the reference sink discards them as "failed with a known reason"). Only the
/// records after the savepoint's position are expected.
pub async fn sink_state_compat<C: SinkContext>(
    ctx: &mut C,
    dir: &Path,
    config: &SuiteConfig,
    crate_info: Option<&CrateInfo>,
) -> CaseReport {
    let started = Instant::now();
    let mut report = CaseReport::new(
        &ctx.name(),
        SuiteKind::StateCompat,
        &case_name(dir),
        Some(Semantic::ExactlyOnce),
        GOLDEN_SEED,
    );
    if regenerate_requested() {
        match write_sink_golden(ctx, dir, config, crate_info).await {
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
    let checked = check_sink_golden(ctx, dir, config).await;
    report.findings.extend(checked.findings);
    report.notes.extend(checked.notes);
    report.finish(started)
}

/// Restores the sink from the golden in `dir` and checks that it resumes exactly (never writes
/// the golden).
pub async fn check_sink_golden<C: SinkContext>(
    ctx: &mut C,
    dir: &Path,
    config: &SuiteConfig,
) -> CaseReport {
    let started = Instant::now();
    let mut report = CaseReport::new(
        &ctx.name(),
        SuiteKind::StateCompat,
        &case_name(dir),
        Some(Semantic::ExactlyOnce),
        GOLDEN_SEED,
    );
    match check_sink(ctx, dir, config, &mut report.notes).await {
        Ok(findings) => report.findings.extend(findings),
        Err(f) => report.findings.push(f),
    }
    report.finish(started)
}

/// Writes a golden into `dir` with the current code: feeds the sink (two splits, paced), stops
/// the job with a savepoint after three checkpoints, and records the manifest (the feeder's
/// checkpointed position says what the savepoint covers).
pub async fn write_sink_golden<C: SinkContext>(
    ctx: &mut C,
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
    ctx.setup(&info)
        .await
        .map_err(|e| context_finding("setup", &e))?;
    let support = ctx.support();
    let settings = SinkSettings::new(&test_id, Semantic::ExactlyOnce, GOLDEN_SEED);
    let n = config.records_per_split;
    let mut run = SinkRun::new(&mut *ctx, Semantic::ExactlyOnce, &support, config, settings);
    run.generate(SPLITS, n);
    run.savepoint_at = Some(savepoint.clone());
    let result = run.run_part_and_stop(PARALLELISM).await;
    let _ = ctx.teardown(&info).await;
    result?;
    flatten_savepoint(&savepoint)?;
    let covered = feeder_positions(&savepoint, SPLITS, n).await?;
    let manifest = GoldenManifest {
        format: 1,
        kind: "sink".into(),
        connector: ctx.name(),
        written_by: crate_info.map(|c| format!("{} {}", c.name, c.version)),
        test_id,
        seed: GOLDEN_SEED,
        boundedness: "bounded".into(),
        splits: SPLITS,
        records_per_split: n,
        parallelism: PARALLELISM,
        covered,
        created_at_ms: now_ms(),
    };
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

/// Per feeder split, how many records come before its checkpointed position.
async fn feeder_positions(savepoint: &Path, splits: usize, n: u64) -> Result<Vec<u64>, Finding> {
    let metadata = read_savepoint(savepoint).await.map_err(|e| {
        finding(
            FindingKind::StateCompat,
            format!("reading the new savepoint: {e}"),
        )
    })?;
    let Some(feeder) = metadata.operators.get(FEEDER_UID) else {
        return Err(finding(
            FindingKind::StateCompat,
            "the savepoint has no feeder state",
        ));
    };
    let mut live: Vec<NumberSequenceSplit> = Vec::new();
    for subtask in &feeder.subtasks {
        for v in subtask.state.get("splits").into_iter().flatten() {
            live.push(
                NumberSequenceSplitSerializer
                    .deserialize(v.version, &v.bytes)
                    .map_err(|e| {
                        finding(FindingKind::StateCompat, format!("feeder split state: {e}"))
                    })?,
            );
        }
    }
    if let Some(c) = &feeder.coordinator {
        let pending = VecSerializer::new(NumberSequenceSplitSerializer)
            .deserialize(c.version, &c.bytes)
            .map_err(|e| {
                finding(
                    FindingKind::StateCompat,
                    format!("feeder enumerator state: {e}"),
                )
            })?;
        live.extend(pending);
    }
    Ok((0..splits)
        .map(|s| {
            let start = s as u64 * n;
            live.iter()
                .find(|split| split.id == NumberSequenceSplit::id_for(s))
                .map_or(n, |split| split.next.saturating_sub(start).min(n))
        })
        .collect())
}

async fn check_sink<C: SinkContext>(
    ctx: &mut C,
    dir: &Path,
    config: &SuiteConfig,
    notes: &mut Vec<String>,
) -> Result<Vec<Finding>, Finding> {
    let manifest = read_manifest(dir)?;
    if manifest.kind != "sink" {
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
    ctx.setup(&info)
        .await
        .map_err(|e| context_finding("setup", &e))?;
    let support = ctx.support();
    let settings = SinkSettings::new(&manifest.test_id, Semantic::ExactlyOnce, manifest.seed);
    let mut run = SinkRun::new(&mut *ctx, Semantic::ExactlyOnce, &support, config, settings);
    run.generate(manifest.splits, manifest.records_per_split);
    let expected: Vec<ExpectedSplit<C::Record>> = run
        .split_data()
        .into_iter()
        .enumerate()
        .map(|(s, records)| {
            let from = usize::try_from(manifest.covered.get(s).copied().unwrap_or(0))
                .unwrap_or(usize::MAX)
                .min(records.len());
            ExpectedSplit::new(
                format!("split {s}"),
                records
                    .get(from..)
                    .map(<[C::Record]>::to_vec)
                    .unwrap_or_default(),
            )
        })
        .collect();
    let result = run
        .run_to_end(
            manifest.parallelism,
            RestoreFrom::Savepoint(savepoint.clone()),
        )
        .await
        .map_err(|f| as_state_compat(f, &savepoint));
    let findings = match result {
        Ok(_) => Ok(run.check_against(&expected).await),
        Err(f) => Err(f),
    };
    notes.append(&mut run.notes);
    let _ = ctx.teardown(&info).await;
    findings
}
