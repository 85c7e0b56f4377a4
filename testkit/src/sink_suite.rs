//! The sink suite (FLIP-133's `SinkTestSuiteBase`, plus randomized fault injection at every
//! two-phase-commit boundary): every case runs a job `feeder → sink under test` and checks what
//! the context reads back from the external system.
//!
//! The feeder is a datagen source over the context's records, one split per reader at first
//! start, with checkpointed progress: whatever the sink loses or duplicates is the sink's doing.
//!
//! | case | what it proves |
//! |---|---|
//! | `basic` | every record arrives (exactly once, for an exactly-once sink) |
//! | `start_from_savepoint` | stop with a savepoint mid-stream, restore, finish |
//! | `scale_up` / `scale_down` | stop at parallelism 2 (4), restore at 4 (2): writer state and pending commits survive rescaling |
//! | `metrics` | `numRecordsSend` equals the records written |
//! | `exactly_once_under_faults` | randomized trials failing the job once at each fault point (before snapshot, after snapshot before notify, between pre-commit and commit, during commit, at end of input): the output is exact |
//! | `at_least_once_under_faults` | the same in at-least-once mode: every record present, duplicates only of real records |
//!
//! The first five run in both checkpointing modes; the checked semantic is the weaker of the
//! mode and the sink's declared guarantee.

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::metrics::NUM_RECORDS_SEND;
use weir_connector_api::sink::Sink;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::fault::{FailOnce, FaultInjector, FaultPoint};
use weir_runtime::{Job, JobResult, RestoreFrom, SinkOptions, StreamEnvironment};

pub use crate::case::SinkCase;
use crate::case::SuiteKind;
use crate::check::{check_records, CheckOptions, ExpectedSplit, Finding, FindingKind, Semantic};
use crate::context::{SinkContext, SinkSettings, SinkSupport, TestInfo};
use crate::harness::{context_finding, job_config, test_id, JobMonitor, RunningJob, SuiteConfig};
use crate::report::CaseReport;
use crate::suite::{build_job, in_context, open_case, AsSink, Jobs, Step};

/// The uid of the feeder source in the sink suite's jobs.
pub const FEEDER_UID: &str = "feeder";
/// The uid of the sink under test in the sink suite's jobs.
pub const SINK_UID: &str = "sink";

/// The fault points the sink suite injects failures at, in trial order.
pub const FAULT_POINTS: [FaultPoint; 5] = [
    FaultPoint::BeforeSnapshot,
    FaultPoint::AfterSnapshotBeforeNotify,
    FaultPoint::BetweenPreCommitAndCommit,
    FaultPoint::DuringCommit,
    FaultPoint::AtEndOfInput,
];

/// Why `case` does not apply to a sink with `support`, if it does not.
pub fn not_applicable(support: &SinkSupport, case: SinkCase) -> Option<String> {
    if let Some((_, reason)) = support.not_applicable.iter().find(|(c, _)| *c == case) {
        return Some(format!("declared by the connector: {reason}"));
    }
    if case == SinkCase::ExactlyOnceUnderFaults && support.guarantee == Semantic::AtLeastOnce {
        return Some(
            "the sink declares at-least-once delivery; at_least_once_under_faults covers it".into(),
        );
    }
    None
}

pub(crate) struct SinkRun<'a, C: SinkContext> {
    pub(crate) ctx: &'a mut C,
    semantic: Semantic,
    checked: Semantic,
    ordered: bool,
    pub(crate) config: &'a SuiteConfig,
    pub(crate) settings: SinkSettings,
    splits: usize,
    per_split: u64,
    pub(crate) data: Arc<Vec<C::Record>>,
    pub(crate) rate: Option<f64>,
    interval: Duration,
    pub(crate) notes: Vec<String>,
    /// Its jobs and their savepoints.
    pub(crate) jobs: Jobs,
}

impl<'a, C: SinkContext> SinkRun<'a, C> {
    pub(crate) fn new(
        ctx: &'a mut C,
        semantic: Semantic,
        support: &SinkSupport,
        config: &'a SuiteConfig,
        settings: SinkSettings,
    ) -> Self {
        SinkRun {
            ctx,
            semantic,
            checked: semantic.weakest(support.guarantee),
            ordered: support.ordered,
            config,
            settings,
            splits: 0,
            per_split: 0,
            data: Arc::new(Vec::new()),
            rate: None,
            interval: config.checkpoint_interval,
            notes: Vec::new(),
            jobs: Jobs::default(),
        }
    }

    pub(crate) fn generate(&mut self, splits: usize, per_split: u64) {
        self.splits = splits;
        self.per_split = per_split;
        let data: Vec<C::Record> = (0..splits)
            .flat_map(|s| self.ctx.records(&self.settings, s, 0..per_split))
            .collect();
        self.data = Arc::new(data);
    }

    pub(crate) fn total(&self) -> u64 {
        self.data.len() as u64
    }

    pub(crate) fn job(
        &mut self,
        parallelism: usize,
        restore: RestoreFrom,
        monitor: &Arc<JobMonitor>,
        restart: bool,
        committers: Option<usize>,
    ) -> Step<Job> {
        let name = self.jobs.next_name(SuiteKind::Sink);
        let sink = self
            .ctx
            .create_sink(&self.settings)
            .map_err(|e| context_finding("creating the sink", &e))?;
        let config = job_config(
            &name,
            parallelism,
            self.semantic,
            self.interval,
            restore,
            restart,
            monitor,
        );
        let data = Arc::clone(&self.data);
        let count = self.total();
        let rate = self.rate.map_or(
            RateLimiterStrategy::no_op(),
            RateLimiterStrategy::per_second,
        );
        let feeder = DataGeneratorSource::new(
            move |i| usize::try_from(i).ok().and_then(|i| data.get(i)).cloned(),
            Some(count),
            rate,
        );
        let env = StreamEnvironment::new(config);
        env.from_source(feeder, WatermarkStrategy::no_watermarks(), "feeder")
            .uid(FEEDER_UID)
            .flat_map(|r: Option<C::Record>| r)
            .sink_to_with(
                sink,
                &SinkOptions {
                    uid: Some(SINK_UID.into()),
                    committer_parallelism: committers.and_then(NonZeroUsize::new),
                },
            );
        build_job(env)
    }

    pub(crate) async fn run_to_end(
        &mut self,
        parallelism: usize,
        restore: RestoreFrom,
    ) -> Step<JobResult> {
        let monitor = JobMonitor::new(None);
        let job = self.job(parallelism, restore, &monitor, false, None)?;
        RunningJob::start(job, &monitor)
            .finish(self.config.wait_timeout)
            .await
    }

    /// The generated records of each split.
    pub(crate) fn split_data(&self) -> Vec<Vec<C::Record>> {
        let per_split = usize::try_from(self.per_split).unwrap_or(usize::MAX);
        self.data
            .chunks(per_split.max(1))
            .map(<[C::Record]>::to_vec)
            .collect()
    }

    async fn check(&mut self) -> Vec<Finding> {
        let expected: Vec<ExpectedSplit<C::Record>> = self
            .split_data()
            .into_iter()
            .enumerate()
            .map(|(s, records)| ExpectedSplit::new(format!("split {s}"), records))
            .collect();
        self.check_against(&expected).await
    }

    /// Reads back and checks against `expected`.
    pub(crate) async fn check_against(
        &mut self,
        expected: &[ExpectedSplit<C::Record>],
    ) -> Vec<Finding> {
        let actual = match self.ctx.read_back(&self.settings).await {
            Ok(a) => a,
            Err(e) => return vec![context_finding("reading back", &e)],
        };
        let options = CheckOptions::for_semantic(self.checked)
            .per_split_order(self.ordered && self.checked == Semantic::ExactlyOnce);
        let result = check_records(expected, &actual, &options);
        self.notes.push(format!(
            "{} records read back, {} distinct, {} expected",
            result.summary.received, result.summary.distinct, result.summary.expected
        ));
        result.findings
    }
}

/// Runs one case of the sink suite against the context and returns its report (it never
/// panics on a failing connector: the findings say what went wrong).
///
/// For the fault cases `semantic` is ignored: they run in their own mode.
pub async fn run_sink_case<C: SinkContext>(
    ctx: &mut C,
    case: SinkCase,
    semantic: Semantic,
    config: &SuiteConfig,
) -> CaseReport {
    let semantic = case.fixed_mode().unwrap_or(semantic);
    let mut subject = AsSink(ctx);
    let (started, seed, report) = open_case(&subject, case.name(), semantic, config);
    let support = subject.0.support();
    if let Some(reason) = not_applicable(&support, case) {
        return report.not_applicable(reason).finish(started);
    }
    let mut report = report;
    if matches!(
        case,
        SinkCase::ExactlyOnceUnderFaults | SinkCase::AtLeastOnceUnderFaults
    ) {
        let trials = match case {
            SinkCase::ExactlyOnceUnderFaults => config.fault_trials,
            _ => config.at_least_once_trials,
        };
        fault_trials(
            subject.0,
            &support,
            semantic,
            trials,
            seed,
            config,
            &mut report,
        )
        .await;
        return report.finish(started);
    }
    let info = TestInfo::new(
        SuiteKind::Sink,
        case.name(),
        semantic,
        &test_id(case.name()),
        seed,
    );
    let settings = SinkSettings::new(&info.test_id, semantic, seed);
    in_context(&mut subject, &info, report, started, async |s| {
        let mut run = SinkRun::new(&mut *s.0, semantic, &support, config, settings);
        let findings = match run_case(&mut run, case).await {
            Ok(()) => run.check().await,
            Err(f) => vec![f],
        };
        (findings, std::mem::take(&mut run.notes))
    })
    .await
}

async fn run_case<C: SinkContext>(run: &mut SinkRun<'_, C>, case: SinkCase) -> Step {
    let n = run.config.records_per_split;
    match case {
        SinkCase::Basic => {
            run.generate(2, n);
            run.run_to_end(2, RestoreFrom::Nothing).await?;
            Ok(())
        }
        SinkCase::StartFromSavepoint => stop_and_restore(run, 2, 2).await,
        SinkCase::ScaleUp => stop_and_restore(run, 2, 4).await,
        SinkCase::ScaleDown => stop_and_restore(run, 4, 2).await,
        SinkCase::Metrics => {
            run.generate(2, n);
            let result = run.run_to_end(2, RestoreFrom::Nothing).await?;
            let sent = result.counter(SINK_UID, NUM_RECORDS_SEND);
            run.notes.push(format!("numRecordsSend = {sent}"));
            if sent == 0 {
                return Err(Finding::new(
                    FindingKind::Metric,
                    format!(
                        "the writer reports no {NUM_RECORDS_SEND} (0 after {} records)",
                        run.total()
                    ),
                ));
            }
            if sent != run.total() {
                return Err(Finding::new(
                    FindingKind::Metric,
                    format!(
                        "{NUM_RECORDS_SEND} is {sent}, but {} records were written",
                        run.total()
                    ),
                ));
            }
            Ok(())
        }
        SinkCase::ExactlyOnceUnderFaults | SinkCase::AtLeastOnceUnderFaults => Ok(()),
    }
}

async fn stop_and_restore<C: SinkContext>(
    run: &mut SinkRun<'_, C>,
    from: usize,
    to: usize,
) -> Step {
    run.generate(from, run.config.records_per_split);
    let savepoint = run.run_part_and_stop(from).await?;
    run.run_to_end(to, RestoreFrom::Savepoint(savepoint))
        .await?;
    run.notes.push(format!("restored at parallelism {to}"));
    Ok(())
}

impl<C: SinkContext> SinkRun<'_, C> {
    /// Runs the generated records (paced) at `from`, and stops with a savepoint after three
    /// checkpoints.
    pub(crate) async fn run_part_and_stop(&mut self, from: usize) -> Step<std::path::PathBuf> {
        let run = self;
        run.rate = Some(run.config.pace(run.total()));
        let monitor = JobMonitor::new(None);
        let job = run.job(from, RestoreFrom::Nothing, &monitor, false, None)?;
        let mut running = RunningJob::start(job, &monitor);
        let check = Arc::clone(&monitor);
        running
            .wait_for(
                "three completed checkpoints",
                run.config.wait_timeout,
                || check.checkpoints() >= 3,
            )
            .await?;
        let dir = run.jobs.savepoint_dir()?;
        let savepoint = running.stop_with_savepoint(&dir).await?;
        run.notes.push(format!(
            "stopped with a savepoint at parallelism {from} after {} checkpoints",
            monitor.checkpoints()
        ));
        run.rate = None;
        Ok(savepoint)
    }
}

/// Whether the sink has a committer (the commit fault points need one).
fn has_committer<C: SinkContext>(ctx: &C, settings: &SinkSettings) -> Option<bool> {
    let sink = ctx.create_sink(settings).ok()?;
    Some(Arc::new(sink).capabilities().committer().is_some())
}

fn needs_committer(point: FaultPoint) -> bool {
    matches!(
        point,
        FaultPoint::BetweenPreCommitAndCommit | FaultPoint::DuringCommit
    )
}

#[derive(Default, Clone, Copy)]
struct PointTally {
    trials: usize,
    fired: usize,
}

async fn fault_trials<C: SinkContext>(
    ctx: &mut C,
    support: &SinkSupport,
    semantic: Semantic,
    trials: usize,
    seed: u64,
    config: &SuiteConfig,
    report: &mut CaseReport,
) {
    let mut tally = [PointTally::default(); FAULT_POINTS.len()];
    let mut committer = None;
    let mut ran = 0;
    for trial in 0..trials {
        let trial_seed = seed.wrapping_add(trial as u64);
        let mut rng = SmallRng::seed_from_u64(trial_seed);
        let point_index = trial % FAULT_POINTS.len();
        let Some(point) = FAULT_POINTS.get(point_index).copied() else {
            continue;
        };
        let parallelism = rng.gen_range(1..=3_usize);
        let committers = rng.gen_range(1..=parallelism);
        let per_split = rng.gen_range(200..=800_u64);
        let after = CheckpointId(rng.gen_range(1..=4));
        let case = format!("{}-{trial}", report.case);
        let info = TestInfo::new(
            SuiteKind::Sink,
            &case,
            semantic,
            &test_id("fault"),
            trial_seed,
        );
        if let Err(e) = ctx.setup(&info).await {
            report
                .findings
                .push(context_finding(&format!("trial {trial}: setup"), &e));
            break;
        }
        let settings = SinkSettings::new(&info.test_id, semantic, trial_seed);
        if committer.is_none() {
            committer = has_committer(ctx, &settings);
        }
        let fault = Arc::new(FailOnce::new(point, after));
        let mut run = SinkRun::new(&mut *ctx, semantic, support, config, settings);
        run.interval = Duration::from_millis(5);
        run.generate(parallelism, per_split);
        // Paced to take `trial_run` (80 ms by default), so the job spans many 5 ms checkpoints.
        run.rate = Some(run.total() as f64 / config.trial_run.as_secs_f64().max(0.01));
        let monitor = JobMonitor::new(Some(Arc::clone(&fault) as Arc<dyn FaultInjector>));
        let mut findings = match run.job(
            parallelism,
            RestoreFrom::Nothing,
            &monitor,
            true,
            Some(committers),
        ) {
            Ok(job) => match RunningJob::start(job, &monitor)
                .finish(config.wait_timeout)
                .await
            {
                Ok(_) => run.check().await,
                Err(f) => vec![f],
            },
            Err(f) => vec![f],
        };
        if let Err(e) = run.ctx.teardown(&info).await {
            findings.push(context_finding("teardown", &e));
        }
        ran += 1;
        if let Some(t) = tally.get_mut(point_index) {
            t.trials += 1;
            if fault.fired_at().is_some() {
                t.fired += 1;
            }
        }
        if !findings.is_empty() {
            let what = format!(
                "trial {trial} (seed {trial_seed}: fail at {point} from checkpoint {}, writers {parallelism}, committers {committers}, {} records; fired {})",
                after.0,
                run.total(),
                fault.fired_at().unwrap_or_else(|| "never".into())
            );
            for f in findings {
                report
                    .findings
                    .push(Finding::new(f.kind, format!("{what}: {}", f.message)));
            }
            break;
        }
    }
    let mut summary = format!("{ran} of {trials} trials ran:");
    for (point, t) in FAULT_POINTS.iter().zip(tally.iter()) {
        let _ = write!(summary, " {point} {}/{} fired;", t.fired, t.trials);
    }
    report.notes.push(summary);
    if !report.findings.is_empty() || trials == 0 {
        if trials == 0 {
            report.notes.push("no trials configured".into());
        }
        return;
    }
    for (point, t) in FAULT_POINTS.iter().zip(tally.iter()) {
        if t.trials == 0 || t.fired > 0 {
            continue;
        }
        if needs_committer(*point) && committer == Some(false) {
            report.notes.push(format!(
                "{point}: not applicable, the sink has no committer"
            ));
            continue;
        }
        report.findings.push(Finding::new(
            FindingKind::Inconclusive,
            format!(
                "the failure at {point} never fired in {} trials: the jobs ended before it was reached",
                t.trials
            ),
        ));
    }
}
