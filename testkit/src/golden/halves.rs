//! The half of a golden check that differs between sources and sinks: how the data of a new
//! golden is run into its savepoint, and how a restored job is checked.
//!
//! Sources run through the same collector as the source suite; sinks through the same datagen
//! feeder as the sink suite, whose checkpointed position tells which records the savepoint
//! covers.

use std::path::Path;

use weir_connector_api::source::Boundedness;
use weir_connector_api::state::{VecSerializer, VersionedSerializer};
use weir_connector_datagen::{NumberSequenceSplit, NumberSequenceSplitSerializer};
use weir_runtime::storage::read_savepoint;
use weir_runtime::RestoreFrom;

use super::manifest::{
    as_state_compat, finding, flatten_savepoint, GoldenManifest, GOLDEN_SEED, PARALLELISM, SPLITS,
};
use crate::check::{
    check_records, CheckOptions, Completeness, ExpectedSplit, Finding, FindingKind, Semantic,
};
use crate::context::{SinkContext, SinkSettings, SourceContext, SourceSettings};
use crate::harness::SuiteConfig;
use crate::record::TestRecord;
use crate::sink_suite::{SinkRun, FEEDER_UID};
use crate::source_suite::SourceRun;
use crate::suite::{AsSink, AsSource, Subject};

/// Where a golden's savepoint is, and the configuration its jobs run with.
pub(super) struct Golden<'a> {
    /// The savepoint directory.
    pub(super) savepoint: &'a Path,
    /// The suite configuration.
    pub(super) config: &'a SuiteConfig,
}

/// What writing a golden gives: the boundedness of its data and, per split, how many records
/// the savepoint covers.
pub(super) type Written = Result<(Boundedness, Vec<u64>), Finding>;

/// What checking a golden gives: the findings (or the finding that ended the check), and notes.
pub(super) type Checked = (Result<Vec<Finding>, Finding>, Vec<String>);

/// What a golden check does differently for a source and for a sink.
pub(super) trait Half: Subject {
    /// Runs the current code's job (set up for `test_id`) into the golden's savepoint.
    async fn write(&mut self, golden: &Golden<'_>, test_id: &str) -> Written;

    /// Restores a job from the golden's savepoint, which `manifest` describes, and checks that
    /// it resumes exactly.
    async fn check(&mut self, golden: &Golden<'_>, manifest: &GoldenManifest) -> Checked;
}

impl<C: SourceContext> AsSource<'_, C> {
    /// An exactly-once run of the source suite over this context.
    fn run<'b>(
        &'b mut self,
        config: &'b SuiteConfig,
        settings: SourceSettings,
    ) -> SourceRun<'b, C> {
        let support = self.0.support();
        SourceRun::new(
            &mut *self.0,
            Semantic::ExactlyOnce,
            config,
            support,
            settings,
        )
    }
}

impl<C: SinkContext> AsSink<'_, C> {
    /// An exactly-once run of the sink suite over this context.
    fn run<'b>(&'b mut self, config: &'b SuiteConfig, settings: SinkSettings) -> SinkRun<'b, C> {
        let support = self.0.support();
        SinkRun::new(
            &mut *self.0,
            Semantic::ExactlyOnce,
            &support,
            config,
            settings,
        )
    }
}

impl<C: SourceContext> Half for AsSource<'_, C> {
    /// Runs the source (two splits, paced) into the collector and stops it with a savepoint a
    /// third of the way.
    async fn write(&mut self, golden: &Golden<'_>, test_id: &str) -> Written {
        let (savepoint, config) = (golden.savepoint, golden.config);
        let boundedness = if self.0.support().bounded {
            Boundedness::Bounded
        } else {
            Boundedness::ContinuousUnbounded
        };
        let n = config.records_per_split;
        let settings = SourceSettings::new(test_id, boundedness, SPLITS, n, GOLDEN_SEED)
            .with_rate(Some(config.pace(SPLITS as u64 * n)));
        let mut run = self.run(config, settings.clone());
        run.jobs.savepoint_at = Some(savepoint.to_path_buf());
        let result = async {
            run.create_splits().await?;
            run.write(n).await?;
            run.read_part_and_stop(PARALLELISM, 1.0 / 3.0).await?;
            flatten_savepoint(savepoint)?;
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
        Ok((boundedness, covered?))
    }

    async fn check(&mut self, golden: &Golden<'_>, manifest: &GoldenManifest) -> Checked {
        let (savepoint, config) = (golden.savepoint, golden.config);
        let settings = source_settings(manifest);
        let n = manifest.records_per_split;
        let mut run = self.run(config, settings.clone());
        let mut notes = Vec::new();
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
                RestoreFrom::Savepoint(savepoint.to_path_buf()),
            )
            .await
            .map_err(|f| as_state_compat(f, savepoint))?;
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
        (findings, notes)
    }
}

impl<C: SinkContext> Half for AsSink<'_, C> {
    /// Feeds the sink (two splits, paced) and stops the job with a savepoint after three
    /// checkpoints; the feeder's checkpointed position says what the savepoint covers.
    async fn write(&mut self, golden: &Golden<'_>, test_id: &str) -> Written {
        let (savepoint, config) = (golden.savepoint, golden.config);
        let settings = SinkSettings::new(test_id, Semantic::ExactlyOnce, GOLDEN_SEED);
        let n = config.records_per_split;
        let mut run = self.run(config, settings);
        run.generate(SPLITS, n);
        run.jobs.savepoint_at = Some(savepoint.to_path_buf());
        run.run_part_and_stop(PARALLELISM).await?;
        flatten_savepoint(savepoint)?;
        let covered = feeder_positions(savepoint, SPLITS, n).await?;
        Ok((Boundedness::Bounded, covered))
    }

    async fn check(&mut self, golden: &Golden<'_>, manifest: &GoldenManifest) -> Checked {
        let (savepoint, config) = (golden.savepoint, golden.config);
        let settings = SinkSettings::new(&manifest.test_id, Semantic::ExactlyOnce, manifest.seed);
        let mut run = self.run(config, settings);
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
                RestoreFrom::Savepoint(savepoint.to_path_buf()),
            )
            .await
            .map_err(|f| as_state_compat(f, savepoint));
        let findings = match result {
            Ok(_) => Ok(run.check_against(&expected).await),
            Err(f) => Err(f),
        };
        (findings, std::mem::take(&mut run.notes))
    }
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

/// Per split, the length of the prefix that `seen` holds (which must be exactly a prefix).
fn covered_prefixes<T: TestRecord>(splits: &[Vec<T>], seen: &[T]) -> Result<Vec<u64>, Finding> {
    let expected: Vec<ExpectedSplit<T>> = splits
        .iter()
        .enumerate()
        .map(|(s, r)| ExpectedSplit::new(format!("split {s}"), r.clone()))
        .collect();
    let check = check_records(
        &expected,
        seen,
        &CheckOptions::exactly_once().completeness(Completeness::Prefix),
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
