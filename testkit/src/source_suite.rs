//! The source suite (FLIP-133's `SourceTestSuiteBase`, with fault injection): every case runs
//! a job `source under test → collector` and checks what the collector committed.
//!
//! The collector is the reference two-phase-committing sink ([`FakeTxnSink`]) with one
//! committer: it only shows records of completed checkpoints, so what it holds is exactly what
//! the source's checkpointed progress accounts for, and its read-back keeps each split's order.
//!
//! | case | what it proves |
//! |---|---|
//! | `single_split_{bounded,unbounded}` | one split, one reader: every record, in order |
//! | `multiple_splits_{bounded,unbounded}` | four splits, four readers: per-split order |
//! | `savepoint_{bounded,unbounded}` | stop with a savepoint mid-stream, restore, read the rest |
//! | `savepoint_write_more` | stop with a savepoint, write more records, restore: old and new |
//! | `scale_up` / `scale_down` | stop at parallelism 2 (4), restore at 4 (2) |
//! | `metrics` | `numRecordsIn` equals the records read |
//! | `idle_reader` | more readers than splits: the bounded job still finishes |
//! | `failover_{bounded,unbounded}` | read set A, fail the job, (write and) read set B |
//!
//! Each case runs in exactly-once and in at-least-once mode, checked with that semantic.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;

use weir_connector_api::metrics::NUM_RECORDS_IN;
use weir_connector_api::source::Boundedness;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_runtime::{Job, JobResult, RestoreFrom, SinkOptions, StreamEnvironment};

use crate::case::SuiteKind;
pub use crate::case::{SourceCase, CASE_TIMEOUT};
use crate::check::{
    check_records, CheckOptions, Completeness, ExpectedSplit, Finding, FindingKind, Semantic,
};
use crate::context::{
    SourceContext, SourceData, SourceSettings, SourceSupport, SplitLayout, SplitWriter, TestInfo,
};
use crate::harness::{context_finding, job_config, test_id, JobMonitor, RunningJob, SuiteConfig};
use crate::reference::{FakeTransactionalStore, FakeTxnSink};
use crate::report::CaseReport;
use crate::suite::{build_job, in_context, open_case, AsSource, Jobs, Step};

/// The uid of the source under test in the suites' jobs.
pub const SOURCE_UID: &str = "source";
/// The uid of the collecting sink in the source suite's jobs.
pub const COLLECTOR_UID: &str = "collect";

/// Why `case` does not apply to a source with `support`, if it does not.
pub fn not_applicable(support: &SourceSupport, case: SourceCase) -> Option<String> {
    if let Some((_, reason)) = support.not_applicable.iter().find(|(c, _)| *c == case) {
        return Some(format!("declared by the connector: {reason}"));
    }
    if !support.bounded && !support.unbounded {
        return Some("the context declares neither a bounded nor a continuous mode".into());
    }
    match case.needs() {
        Some(Boundedness::Bounded) if !support.bounded => {
            return Some(if case == SourceCase::IdleReader {
                "the source has no bounded mode, and only a bounded job can show that it finishes \
                 with an idle reader"
                    .into()
            } else {
                "the source has no bounded mode".into()
            })
        }
        Some(Boundedness::ContinuousUnbounded) if !support.unbounded => {
            return Some("the source has no continuous (unbounded) mode".into())
        }
        _ => {}
    }
    if case == SourceCase::SavepointWriteMore {
        if let SourceData::Generated { reason } = &support.data {
            return Some(format!("writing more records is not possible: {reason}"));
        }
    }
    None
}

pub(crate) struct SourceRun<'a, C: SourceContext> {
    pub(crate) ctx: &'a mut C,
    semantic: Semantic,
    pub(crate) config: &'a SuiteConfig,
    support: SourceSupport,
    pub(crate) settings: SourceSettings,
    writers: Vec<Box<dyn SplitWriter<C::Record>>>,
    written: Vec<u64>,
    pub(crate) store: Arc<FakeTransactionalStore<C::Record>>,
    pub(crate) notes: Vec<String>,
    /// Overrides the number of records to wait for (restoring a golden savepoint reads only the
    /// rest).
    pub(crate) target_override: Option<usize>,
    /// Its jobs and their savepoints.
    pub(crate) jobs: Jobs,
}

impl<'a, C: SourceContext> SourceRun<'a, C> {
    pub(crate) fn new(
        ctx: &'a mut C,
        semantic: Semantic,
        config: &'a SuiteConfig,
        support: SourceSupport,
        settings: SourceSettings,
    ) -> Self {
        SourceRun {
            ctx,
            semantic,
            config,
            support,
            settings,
            writers: Vec::new(),
            written: Vec::new(),
            store: FakeTransactionalStore::new(),
            notes: Vec::new(),
            target_override: None,
            jobs: Jobs::default(),
        }
    }

    pub(crate) fn close_writers(&mut self) {
        self.writers.clear();
    }

    pub(crate) fn is_written(&self) -> bool {
        self.support.data == SourceData::Written
    }

    pub(crate) fn unbounded(&self) -> bool {
        self.settings.boundedness == Boundedness::ContinuousUnbounded
    }

    /// How many records the job should have committed at the end of the case.
    pub(crate) fn target(&self) -> usize {
        if let Some(t) = self.target_override {
            return t;
        }
        if self.is_written() {
            self.written.iter().sum::<u64>() as usize
        } else {
            (self.settings.splits as u64 * self.settings.records_per_split) as usize
        }
    }

    pub(crate) async fn create_splits(&mut self) -> Step {
        if !self.is_written() {
            return Ok(());
        }
        for split in 0..self.settings.splits {
            let writer = self
                .ctx
                .create_split_writer(&self.settings, split)
                .await
                .map_err(|e| context_finding(&format!("creating split {split}"), &e))?;
            self.writers.push(writer);
            self.written.push(0);
        }
        Ok(())
    }

    /// Writes `per_split` more records into every split (written data only).
    pub(crate) async fn write(&mut self, per_split: u64) -> Step {
        if !self.is_written() {
            return Ok(());
        }
        for (split, writer) in self.writers.iter_mut().enumerate() {
            let Some(done) = self.written.get_mut(split) else {
                continue;
            };
            let records = self
                .ctx
                .records(&self.settings, split, *done..*done + per_split);
            writer
                .write(&records)
                .await
                .map_err(|e| context_finding(&format!("writing to split {split}"), &e))?;
            *done += per_split;
        }
        self.notes.push(format!(
            "wrote {per_split} records into each of {} splits",
            self.writers.len()
        ));
        Ok(())
    }

    fn job(
        &mut self,
        parallelism: usize,
        restore: RestoreFrom,
        monitor: &Arc<JobMonitor>,
        restart: bool,
    ) -> Step<Job> {
        let name = self.jobs.next_name(SuiteKind::Source);
        let source = self
            .ctx
            .create_source(&self.settings)
            .map_err(|e| context_finding("creating the source", &e))?;
        let config = job_config(
            &name,
            parallelism,
            self.semantic,
            self.config.checkpoint_interval,
            restore,
            restart,
            monitor,
        );
        let env = StreamEnvironment::new(config);
        env.from_source(
            source,
            WatermarkStrategy::no_watermarks(),
            "source under test",
        )
        .uid(SOURCE_UID)
        .sink_to_with(
            FakeTxnSink::new(Arc::clone(&self.store)),
            &SinkOptions {
                uid: Some(COLLECTOR_UID.into()),
                committer_parallelism: NonZeroUsize::new(1),
            },
        );
        build_job(env)
    }

    /// Runs a job until every expected record is committed: bounded, until it finishes;
    /// continuous, until the collector holds the target, then a little longer (extra records
    /// would show), then cancels it.
    pub(crate) async fn read_all(
        &mut self,
        parallelism: usize,
        restore: RestoreFrom,
    ) -> Step<JobResult> {
        let monitor = JobMonitor::new(None);
        let job = self.job(parallelism, restore, &monitor, false)?;
        let running = RunningJob::start(job, &monitor);
        self.finish_reading(running).await
    }

    async fn finish_reading(&mut self, mut running: RunningJob) -> Step<JobResult> {
        if !self.unbounded() {
            return running.finish(self.config.wait_timeout).await;
        }
        let target = self.target();
        let store = Arc::clone(&self.store);
        running
            .wait_for(
                &format!("{target} records to be committed"),
                self.config.wait_timeout,
                // Distinct: in at-least-once mode duplicates could reach the target first.
                || store.committed_distinct_len() >= target,
            )
            .await?;
        tokio::time::sleep(self.config.checkpoint_interval * 5).await;
        running.cancel().await
    }

    /// Starts a paced job, waits until `fraction` of the target is committed, and stops it
    /// with a savepoint.
    pub(crate) async fn read_part_and_stop(
        &mut self,
        parallelism: usize,
        fraction: f64,
    ) -> Step<PathBuf> {
        let monitor = JobMonitor::new(None);
        let job = self.job(parallelism, RestoreFrom::Nothing, &monitor, false)?;
        let mut running = RunningJob::start(job, &monitor);
        let part = ((self.target() as f64 * fraction) as usize).max(1);
        let store = Arc::clone(&self.store);
        running
            .wait_for(
                &format!("{part} records to be committed"),
                self.config.wait_timeout,
                || store.committed_len() >= part,
            )
            .await?;
        let dir = self.jobs.savepoint_dir()?;
        let savepoint = running.stop_with_savepoint(&dir).await?;
        self.notes.push(format!(
            "stopped with a savepoint at parallelism {parallelism} after {} of {} records",
            self.store.committed_len(),
            self.target()
        ));
        Ok(savepoint)
    }

    /// Checks the committed records against what the splits hold.
    fn check(&mut self) -> Vec<Finding> {
        let actual = self.store.committed();
        let generated_unbounded = !self.is_written() && self.unbounded();
        let expected: Vec<ExpectedSplit<C::Record>> = (0..self.settings.splits)
            .map(|split| {
                let len = if self.is_written() {
                    self.written.get(split).copied().unwrap_or(0)
                } else if generated_unbounded {
                    actual.len() as u64
                } else {
                    self.settings.records_per_split
                };
                ExpectedSplit::new(
                    format!("split {split}"),
                    self.ctx.records(&self.settings, split, 0..len),
                )
            })
            .collect();
        let completeness = if generated_unbounded {
            Completeness::Prefix
        } else {
            Completeness::Complete
        };
        let result = check_records(
            &expected,
            &actual,
            &CheckOptions::for_semantic(self.semantic).completeness(completeness),
        );
        self.notes.push(format!(
            "{} records committed, {} distinct, {} expected{}",
            result.summary.received,
            result.summary.distinct,
            result.summary.expected,
            if generated_unbounded { " (prefix)" } else { "" }
        ));
        let mut findings = result.findings;
        if generated_unbounded && actual.len() < self.target() {
            findings.push(Finding::new(
                FindingKind::Missing,
                format!(
                    "only {} of at least {} records were read",
                    actual.len(),
                    self.target()
                ),
            ));
        }
        findings
    }
}

/// Runs one case of the source suite against the context and returns its report (it never
/// panics on a failing connector: the findings say what went wrong).
pub async fn run_source_case<C: SourceContext>(
    ctx: &mut C,
    case: SourceCase,
    semantic: Semantic,
    config: &SuiteConfig,
) -> CaseReport {
    let mut subject = AsSource(ctx);
    let (started, seed, report) = open_case(&subject, case.name(), semantic, config);
    let support = subject.0.support();
    if let Some(reason) = not_applicable(&support, case) {
        return report.not_applicable(reason).finish(started);
    }
    let boundedness = case.needs().unwrap_or(if support.bounded {
        Boundedness::Bounded
    } else {
        Boundedness::ContinuousUnbounded
    });
    let info = TestInfo::new(
        SuiteKind::Source,
        case.name(),
        semantic,
        &test_id(case.name()),
        seed,
    );
    let settings = SourceSettings::new(
        &info.test_id,
        boundedness,
        1,
        config.records_per_split,
        seed,
    );
    in_context(&mut subject, &info, report, started, async |s| {
        let mut run = SourceRun::new(&mut *s.0, semantic, config, support, settings);
        let findings = match run_case(&mut run, case).await {
            Ok(()) => run.check(),
            Err(f) => vec![f],
        };
        let notes = std::mem::take(&mut run.notes);
        run.close_writers();
        (findings, notes)
    })
    .await
}

async fn run_case<C: SourceContext>(run: &mut SourceRun<'_, C>, case: SourceCase) -> Step {
    let n = run.config.records_per_split;
    match case {
        SourceCase::SingleSplitBounded | SourceCase::SingleSplitUnbounded => {
            read_everything(run, 1).await
        }
        SourceCase::MultipleSplitsBounded | SourceCase::MultipleSplitsUnbounded => {
            read_everything(run, 4).await
        }
        SourceCase::SavepointBounded | SourceCase::SavepointUnbounded => {
            stop_and_restore(run, 2, 2).await
        }
        SourceCase::SavepointWriteMore => {
            run.settings.splits = 2;
            run.create_splits().await?;
            run.write(n).await?;
            let monitor = JobMonitor::new(None);
            let job = run.job(2, RestoreFrom::Nothing, &monitor, false)?;
            let mut running = RunningJob::start(job, &monitor);
            let target = run.target();
            let store = Arc::clone(&run.store);
            running
                .wait_for(
                    &format!("the first {target} records"),
                    run.config.wait_timeout,
                    || store.committed_distinct_len() >= target,
                )
                .await?;
            let dir = run.jobs.savepoint_dir()?;
            let savepoint = running.stop_with_savepoint(&dir).await?;
            run.notes.push(format!(
                "stopped with a savepoint after all {target} records"
            ));
            run.write(n).await?;
            run.read_all(2, RestoreFrom::Savepoint(savepoint)).await?;
            Ok(())
        }
        SourceCase::ScaleUp => stop_and_restore(run, 2, 4).await,
        SourceCase::ScaleDown => stop_and_restore(run, 4, 2).await,
        SourceCase::Metrics => {
            run.settings.splits = 2;
            if !run.is_written() && run.unbounded() {
                run.settings.rate = Some(run.config.pace(run.target() as u64));
            }
            run.create_splits().await?;
            run.write(n).await?;
            let result = run.read_all(2, RestoreFrom::Nothing).await?;
            let counted = result.counter(SOURCE_UID, NUM_RECORDS_IN);
            let committed = run.store.committed_len() as u64;
            run.notes.push(format!("numRecordsIn = {counted}"));
            let exact = run.is_written() || !run.unbounded();
            if counted == 0 {
                return Err(Finding::new(
                    FindingKind::Metric,
                    format!("the reader reports no {NUM_RECORDS_IN} (0 after {committed} records)"),
                ));
            }
            if exact && counted != run.target() as u64 {
                return Err(Finding::new(
                    FindingKind::Metric,
                    format!(
                        "{NUM_RECORDS_IN} is {counted}, but the source read {} records",
                        run.target()
                    ),
                ));
            }
            if !exact && counted < committed {
                return Err(Finding::new(
                    FindingKind::Metric,
                    format!(
                        "{NUM_RECORDS_IN} is {counted}, below the {committed} records committed"
                    ),
                ));
            }
            Ok(())
        }
        SourceCase::IdleReader => match run.support.layout {
            SplitLayout::AsRequested => {
                run.settings.splits = 4;
                run.create_splits().await?;
                run.write(n).await?;
                run.notes.push("4 splits read by 5 readers".into());
                run.read_all(5, RestoreFrom::Nothing).await?;
                Ok(())
            }
            SplitLayout::OnePerReader => {
                run.notes.push(
                    "the source cuts one split per reader at first start: ran 4 readers, then \
                     restored the savepoint with 5 (one idle)"
                        .into(),
                );
                stop_and_restore(run, 4, 5).await
            }
        },
        SourceCase::FailoverBounded | SourceCase::FailoverUnbounded => failover(run).await,
    }
}

async fn read_everything<C: SourceContext>(run: &mut SourceRun<'_, C>, splits: usize) -> Step {
    run.settings.splits = splits;
    if !run.is_written() && run.unbounded() {
        run.settings.rate = Some(run.config.pace(run.target() as u64));
    }
    run.create_splits().await?;
    run.write(run.config.records_per_split).await?;
    run.read_all(splits, RestoreFrom::Nothing).await?;
    Ok(())
}

/// Reads a third at parallelism `from` (paced), stops with a savepoint, (for continuous written
/// data writes more), and reads the rest at parallelism `to`.
async fn stop_and_restore<C: SourceContext>(
    run: &mut SourceRun<'_, C>,
    from: usize,
    to: usize,
) -> Step {
    let n = run.config.records_per_split;
    run.settings.splits = from;
    run.settings.rate = Some(run.config.pace(from as u64 * n));
    run.create_splits().await?;
    run.write(n).await?;
    let savepoint = run.read_part_and_stop(from, 1.0 / 3.0).await?;
    if run.is_written() && run.unbounded() {
        run.write(n / 2).await?;
    }
    run.read_all(to, RestoreFrom::Savepoint(savepoint)).await?;
    run.notes.push(format!("restored at parallelism {to}"));
    Ok(())
}

/// Reads set A, fails the job at the collector's next checkpoint barrier, lets it restart from
/// the latest checkpoint, and reads set B.
async fn failover<C: SourceContext>(run: &mut SourceRun<'_, C>) -> Step {
    let n = run.config.records_per_split;
    run.settings.splits = 2;
    run.settings.rate = Some(run.config.pace(2 * n));
    run.create_splits().await?;
    run.write(n).await?;
    let monitor = JobMonitor::new(None);
    let job = run.job(2, RestoreFrom::Nothing, &monitor, true)?;
    let mut running = RunningJob::start(job, &monitor);
    let set_a = if run.is_written() && run.unbounded() {
        run.target()
    } else {
        (run.target() / 3).max(1)
    };
    let store = Arc::clone(&run.store);
    running
        .wait_for(
            &format!("set A ({set_a} records)"),
            run.config.wait_timeout,
            || store.committed_len() >= set_a,
        )
        .await?;
    monitor.arm();
    running
        .wait_for(
            "the injected failure and the restart",
            run.config.wait_timeout,
            || monitor.max_attempt() >= 1,
        )
        .await?;
    run.notes.push(format!(
        "read {} records, then failed the job at {}",
        run.store.committed_len(),
        monitor.fired_at().unwrap_or_else(|| "?".into())
    ));
    if run.is_written() && run.unbounded() {
        run.write(n).await?;
    }
    let result = run.finish_reading(running).await?;
    if result.attempts < 2 {
        return Err(Finding::new(
            FindingKind::Inconclusive,
            format!(
                "the job ran {} attempt(s): the injected failure did not restart it",
                result.attempts
            ),
        ));
    }
    Ok(())
}
