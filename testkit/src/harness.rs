//! What every suite shares: the configuration, a job monitor that doubles as a fault injector,
//! and a handle on a running job that turns every way of going wrong into a finding.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use weir_runtime::fault::{FaultInjector, FaultPoint, FaultSite};
use weir_runtime::restart::RestartStrategy;
use weir_runtime::{
    CheckpointConfig, Job, JobConfig, JobHandle, JobResult, JobStatus, RestoreFrom, StopMode,
};

use crate::check::{Finding, FindingKind, Semantic};
use crate::context::ContextError;

/// The variable that sets the number of exactly-once fault-injection trials of the sink suite.
pub const FAULT_TRIALS_ENV: &str = "WEIR_TESTKIT_FAULT_TRIALS";
/// The variable that sets the number of at-least-once fault-injection trials of the sink suite.
pub const AT_LEAST_ONCE_TRIALS_ENV: &str = "WEIR_TESTKIT_AT_LEAST_ONCE_TRIALS";
/// The variable that sets the base seed of every case (default: a fixed seed, so runs repeat).
pub const SEED_ENV: &str = "WEIR_TESTKIT_SEED";

/// How the suites run. [`SuiteConfig::from_env`] is what the suite macros use.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SuiteConfig {
    /// Exactly-once fault-injection trials, spread over the five fault points (default 50,
    /// `WEIR_TESTKIT_FAULT_TRIALS`).
    pub fault_trials: usize,
    /// At-least-once fault-injection trials (default 10, `WEIR_TESTKIT_AT_LEAST_ONCE_TRIALS`).
    pub at_least_once_trials: usize,
    /// Records per split (default 500).
    pub records_per_split: u64,
    /// Checkpoint interval of the suites' jobs (default 10 ms).
    pub checkpoint_interval: Duration,
    /// How long a paced job should take (default 300 ms), so stops and failures land
    /// mid-stream.
    pub paced_run: Duration,
    /// How long the paced job of one sink fault trial should take (default 80 ms, with 5 ms
    /// checkpoints); a sink whose first checkpoint is slow (a producer that starts slowly)
    /// needs longer, or the trials end before their failure point.
    pub trial_run: Duration,
    /// How long to wait for any one thing (records, a stop, a restart) before giving up
    /// (default 30 s).
    pub wait_timeout: Duration,
    /// The base seed (default fixed, `WEIR_TESTKIT_SEED`).
    pub seed: u64,
    /// Whether to write reports under `target/weir-testkit/` (default true).
    pub write_reports: bool,
}

impl Default for SuiteConfig {
    fn default() -> Self {
        SuiteConfig {
            fault_trials: 50,
            at_least_once_trials: 10,
            records_per_split: 500,
            checkpoint_interval: Duration::from_millis(10),
            paced_run: Duration::from_millis(300),
            trial_run: Duration::from_millis(80),
            wait_timeout: Duration::from_secs(30),
            seed: 0x5EED_2024,
            write_reports: true,
        }
    }
}

impl SuiteConfig {
    /// The defaults, with the trial counts and seed taken from the environment variables.
    pub fn from_env() -> Self {
        let mut c = Self::default();
        let num = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse().ok());
        if let Some(n) = num(FAULT_TRIALS_ENV) {
            c.fault_trials = n as usize;
        }
        if let Some(n) = num(AT_LEAST_ONCE_TRIALS_ENV) {
            c.at_least_once_trials = n as usize;
        }
        if let Some(n) = num(SEED_ENV) {
            c.seed = n;
        }
        c
    }

    /// Sets the number of exactly-once fault trials.
    pub fn fault_trials(mut self, trials: usize) -> Self {
        self.fault_trials = trials;
        self
    }

    /// Sets the number of at-least-once fault trials.
    pub fn at_least_once_trials(mut self, trials: usize) -> Self {
        self.at_least_once_trials = trials;
        self
    }

    /// Sets the records per split.
    pub fn records_per_split(mut self, records: u64) -> Self {
        self.records_per_split = records.max(1);
        self
    }

    /// Sets the checkpoint interval of the suites' jobs.
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets how long a paced job should take.
    pub fn paced_run(mut self, run: Duration) -> Self {
        self.paced_run = run.max(Duration::from_millis(10));
        self
    }

    /// Sets how long the paced job of one sink fault trial should take.
    pub fn trial_run(mut self, run: Duration) -> Self {
        self.trial_run = run.max(Duration::from_millis(10));
        self
    }

    /// Sets how long to wait for any one thing (slow external systems need more).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// Sets the base seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Turns report files on or off.
    pub fn write_reports(mut self, write: bool) -> Self {
        self.write_reports = write;
        self
    }

    /// The seed of a case: the base seed mixed with the case name.
    pub(crate) fn case_seed(&self, case: &str) -> u64 {
        let mut h = self.seed;
        for b in case.bytes() {
            h = crate::record::mix(h ^ u64::from(b));
        }
        h
    }

    /// Records per second so that `records` take [`paced_run`](Self::paced_run).
    pub(crate) fn pace(&self, records: u64) -> f64 {
        (records.max(1) as f64 / self.paced_run.as_secs_f64().max(0.01)).max(1.0)
    }
}

/// The first `max` characters of `name` as lowercase ASCII letters and digits, every other
/// character a `-` (safe in topic, index, bucket and directory names).
pub(crate) fn slug(name: &str, max: usize) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(max)
        .collect()
}

/// A unique test id: `weir-<case>-<8 hex digits>`, at most 40 characters.
pub(crate) fn test_id(case: &str) -> String {
    format!("weir-{}-{:08x}", slug(case, 26), rand::random::<u32>())
}

pub(crate) fn context_finding(what: &str, e: &ContextError) -> Finding {
    Finding::new(FindingKind::Context, format!("{what}: {e}"))
}

#[derive(Debug)]
struct MonitorState {
    last_activity: Instant,
    checkpoints: u64,
    max_attempt: u32,
    fired_at: Option<String>,
}

/// Watches a job through the fault-injection hooks (checkpoints completed, attempts, activity)
/// and fails it once on demand ([`arm`](Self::arm)); delegates to an inner injector.
pub(crate) struct JobMonitor {
    inner: Option<Arc<dyn FaultInjector>>,
    state: Mutex<MonitorState>,
    armed: AtomicBool,
}

impl JobMonitor {
    pub(crate) fn new(inner: Option<Arc<dyn FaultInjector>>) -> Arc<Self> {
        Arc::new(JobMonitor {
            inner,
            state: Mutex::new(MonitorState {
                last_activity: Instant::now(),
                checkpoints: 0,
                max_attempt: 0,
                fired_at: None,
            }),
            armed: AtomicBool::new(false),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MonitorState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails the job at the next barrier reaching a sink writer.
    pub(crate) fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Where the armed failure fired.
    pub(crate) fn fired_at(&self) -> Option<String> {
        self.state().fired_at.clone()
    }

    /// Checkpoints that became durable.
    pub(crate) fn checkpoints(&self) -> u64 {
        self.state().checkpoints
    }

    /// The highest attempt number seen at a fault point.
    pub(crate) fn max_attempt(&self) -> u32 {
        self.state().max_attempt
    }

    /// How long since the job last reached a fault point.
    pub(crate) fn idle_for(&self) -> Duration {
        self.state().last_activity.elapsed()
    }
}

impl FaultInjector for JobMonitor {
    fn check(&self, point: FaultPoint, site: &FaultSite<'_>) -> Result<(), String> {
        {
            let mut s = self.state();
            s.last_activity = Instant::now();
            s.max_attempt = s.max_attempt.max(site.attempt);
            if point == FaultPoint::AfterSnapshotBeforeNotify {
                s.checkpoints += 1;
            }
            if point == FaultPoint::BeforeSnapshot && self.armed.swap(false, Ordering::SeqCst) {
                let what = format!(
                    "{point} in {} subtask {} at checkpoint {} (attempt {})",
                    site.operator, site.subtask, site.checkpoint_id, site.attempt
                );
                s.fired_at = Some(what.clone());
                return Err(format!("testkit failure injected {what}"));
            }
        }
        match &self.inner {
            Some(inner) => inner.check(point, site),
            None => Ok(()),
        }
    }
}

/// A job configuration for the suites.
pub(crate) fn job_config(
    name: &str,
    parallelism: usize,
    semantic: Semantic,
    interval: Duration,
    restore: RestoreFrom,
    restart: bool,
    monitor: &Arc<JobMonitor>,
) -> JobConfig {
    let mut config = JobConfig::new(name)
        .parallelism(parallelism)
        .checkpointing(CheckpointConfig::every(interval).mode(semantic.checkpointing_mode()))
        .restore(restore)
        // Each run of a case is a job of its own name; golden savepoints of earlier releases
        // carry theirs. Unmatched state is still refused, so operator uids stay stable.
        .snapshot_of_other_job(weir_runtime::SnapshotOfOtherJob::Allow)
        .faults(Arc::clone(monitor) as Arc<dyn FaultInjector>);
    if restart {
        config = config.restart(RestartStrategy::FixedDelay {
            attempts: 3,
            delay: Duration::ZERO,
        });
    }
    config
}

/// How a job ended, for a finding.
pub(crate) fn describe(result: &JobResult) -> String {
    let status = match &result.status {
        JobStatus::Finished => "finished".to_owned(),
        JobStatus::Cancelled => "cancelled".to_owned(),
        JobStatus::Stopped { savepoint } => format!("stopped with savepoint {savepoint}"),
        JobStatus::Failed(e) => format!("failed: {e}"),
        other => format!("{other:?}"),
    };
    let mut s = format!("{status} after {} attempt(s)", result.attempts);
    if !result.failures.is_empty() {
        let shown: Vec<&str> = result.failures.iter().take(3).map(String::as_str).collect();
        let _ = write!(s, "; failures: {}", shown.join(" | "));
    }
    s
}

/// What a running job is doing, for a report on a job that hangs or is slow: its state and
/// attempt, its checkpoints, when it last reached a fault point, its last failover, and per
/// task the records in and out with where its subtasks' time went.
pub(crate) fn progress(handle: &JobHandle, monitor: &JobMonitor) -> String {
    let snapshot = handle.snapshot();
    let mut s = format!(
        "{:?}, attempt {}, {} checkpoint(s) durable, last fault point {:.1?} ago",
        snapshot.state,
        snapshot.attempt,
        monitor.checkpoints(),
        monitor.idle_for()
    );
    if let Some(last) = snapshot.failovers.last() {
        // The first line, at most 200 characters: the report must stay short.
        let cause = last.root_cause.lines().next().unwrap_or_default();
        let cause: String = cause.chars().take(200).collect();
        let _ = write!(
            s,
            "; {} failover(s), the last: {cause}",
            snapshot.failovers.len()
        );
    }
    // Per task (subtasks summed, their time shares averaged), so the report stays short.
    let mut tasks: Vec<(&str, u64, u64, [f64; 3], usize)> = Vec::new();
    for t in &snapshot.subtasks {
        let i = match tasks.iter().position(|(name, ..)| *name == t.task) {
            Some(i) => i,
            None => {
                tasks.push((&t.task, 0, 0, [0.0; 3], 0));
                tasks.len() - 1
            }
        };
        let entry = &mut tasks[i];
        entry.1 += t.records_in;
        entry.2 += t.records_out;
        if let Some(time) = &t.time {
            entry.3[0] += time.busy_ms_per_second;
            entry.3[1] += time.idle_ms_per_second;
            entry.3[2] += time.backpressured_ms_per_second;
            entry.4 += 1;
        }
    }
    for (task, records_in, records_out, time, timed) in tasks {
        let _ = write!(s, "; {task}: in {records_in} out {records_out}");
        if timed > 0 {
            let n = timed as f64;
            let _ = write!(
                s,
                " (busy {:.0} idle {:.0} back-pressured {:.0} ms/s)",
                time[0] / n,
                time[1] / n,
                time[2] / n
            );
        }
    }
    s
}

/// No fault-point activity for this long means the job died or hangs.
const IDLE_LIMIT: Duration = Duration::from_secs(5);
/// How long ending a job may take.
const END_TIMEOUT: Duration = Duration::from_secs(10);

/// A running job and its monitor.
pub(crate) struct RunningJob {
    handle: Option<JobHandle>,
    monitor: Arc<JobMonitor>,
}

impl RunningJob {
    pub(crate) fn start(job: Job, monitor: &Arc<JobMonitor>) -> Self {
        RunningJob {
            handle: Some(job.start()),
            monitor: Arc::clone(monitor),
        }
    }

    /// Ends the job by cancelling it and returns what it says about itself, starting with
    /// what it was doing (see [`progress`]).
    async fn abandon(&mut self) -> String {
        match self.handle.take() {
            Some(handle) => {
                let doing = progress(&handle, &self.monitor);
                handle.cancel();
                match tokio::time::timeout(END_TIMEOUT, handle.wait()).await {
                    Ok(result) => format!("{} (it was: {doing})", describe(&result)),
                    Err(_) => {
                        format!("the job did not end after being cancelled (it was: {doing})")
                    }
                }
            }
            None => "the job had ended".to_owned(),
        }
    }

    /// Ends the job by cancelling it and returns how it ended (for a job that has ended on
    /// its own: what it was doing says nothing more).
    async fn abandon_quietly(&mut self) -> String {
        match self.handle.take() {
            Some(handle) => {
                handle.cancel();
                match tokio::time::timeout(END_TIMEOUT, handle.wait()).await {
                    Ok(result) => describe(&result),
                    Err(_) => "the job did not end after being cancelled".to_owned(),
                }
            }
            None => "the job had ended".to_owned(),
        }
    }

    /// The job's result once it ends within `timeout`; otherwise it is cancelled and the
    /// error says what it was doing (see [`progress`]).
    async fn end_within(
        &mut self,
        handle: JobHandle,
        timeout: Duration,
    ) -> Result<JobResult, String> {
        let deadline = Instant::now() + timeout;
        while !handle.is_finished() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if handle.is_finished() {
            Ok(handle.wait().await)
        } else {
            self.handle = Some(handle);
            Err(self.abandon().await)
        }
    }

    /// Waits until `done()` holds. On a timeout, or when the job stops reaching checkpoints
    /// (it failed or hangs), ends the job and returns a finding that says how it ended.
    pub(crate) async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut() -> bool,
    ) -> Result<(), Finding> {
        let deadline = Instant::now() + timeout;
        loop {
            if done() {
                return Ok(());
            }
            if self.handle.as_ref().is_some_and(JobHandle::is_finished) {
                let end = self.abandon_quietly().await;
                let kind = if end.starts_with("finished") {
                    FindingKind::Inconclusive
                } else {
                    FindingKind::JobFailed
                };
                return Err(Finding::new(
                    kind,
                    format!(
                        "the job ended before {what}: {end} (give the case more records or a \
                         longer SuiteConfig::paced_run if the connector starts slowly)"
                    ),
                ));
            }
            if Instant::now() > deadline {
                let end = self.abandon().await;
                return Err(Finding::new(
                    FindingKind::Timeout,
                    format!("waited {timeout:?} for {what}; the job: {end}"),
                ));
            }
            if self.monitor.idle_for() > IDLE_LIMIT {
                let end = self.abandon().await;
                return Err(Finding::new(
                    FindingKind::JobFailed,
                    format!(
                        "while waiting for {what}, the job reached no checkpoint for {IDLE_LIMIT:?}; the job: {end}"
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits for the job to finish on its own; anything but `Finished` is a finding.
    pub(crate) async fn finish(mut self, timeout: Duration) -> Result<JobResult, Finding> {
        let Some(handle) = self.handle.take() else {
            return Err(Finding::new(FindingKind::JobFailed, "the job had ended"));
        };
        let result = self.end_within(handle, timeout).await.map_err(|end| {
            Finding::new(
                FindingKind::Timeout,
                format!("the bounded job did not finish within {timeout:?}; the job: {end}"),
            )
        })?;
        if result.is_finished() {
            Ok(result)
        } else {
            Err(Finding::new(
                FindingKind::JobFailed,
                format!("the job did not finish: {}", describe(&result)),
            ))
        }
    }

    /// Cancels the job; anything but `Cancelled` is a finding.
    pub(crate) async fn cancel(mut self) -> Result<JobResult, Finding> {
        let Some(handle) = self.handle.take() else {
            return Err(Finding::new(FindingKind::JobFailed, "the job had ended"));
        };
        handle.cancel();
        match tokio::time::timeout(END_TIMEOUT, handle.wait()).await {
            Ok(result) if matches!(result.status, JobStatus::Cancelled) => Ok(result),
            Ok(result) => Err(Finding::new(
                FindingKind::JobFailed,
                format!("the job did not end as cancelled: {}", describe(&result)),
            )),
            Err(_) => Err(Finding::new(
                FindingKind::Timeout,
                format!("the job did not end within {END_TIMEOUT:?} of being cancelled"),
            )),
        }
    }

    /// Stops the job with a savepoint (no drain) into `dir`.
    pub(crate) async fn stop_with_savepoint(mut self, dir: &Path) -> Result<PathBuf, Finding> {
        let Some(handle) = self.handle.take() else {
            return Err(Finding::new(FindingKind::JobFailed, "the job had ended"));
        };
        let stop = tokio::time::timeout(
            END_TIMEOUT,
            handle.stop_with_savepoint(dir, StopMode::NoDrain),
        )
        .await;
        let result = match self.end_within(handle, END_TIMEOUT).await {
            Ok(result) => result,
            Err(end) => {
                let asked = match &stop {
                    Ok(Ok(_)) => "the savepoint completed",
                    Ok(Err(_)) => "the savepoint failed",
                    Err(_) => "the savepoint did not complete",
                };
                return Err(Finding::new(
                    FindingKind::Timeout,
                    format!(
                        "the job did not end after stop-with-savepoint ({asked}); the job: {end}"
                    ),
                ));
            }
        };
        match (stop, &result.status) {
            (Ok(Ok(location)), JobStatus::Stopped { .. }) => Ok(location.to_path()),
            (_, JobStatus::Finished) => Err(Finding::new(
                FindingKind::Inconclusive,
                "the job finished before it could be stopped with a savepoint: the source read \
                 everything too fast (honour SourceSettings::rate, or give the case more records)",
            )),
            (Ok(Err(e)), _) => Err(Finding::new(
                FindingKind::JobFailed,
                format!(
                    "stop-with-savepoint failed: {e}; the job: {}",
                    describe(&result)
                ),
            )),
            (Err(_), _) => Err(Finding::new(
                FindingKind::Timeout,
                format!(
                    "stop-with-savepoint did not complete within {END_TIMEOUT:?}; the job: {}",
                    describe(&result)
                ),
            )),
            (Ok(Ok(_)), _) => Err(Finding::new(
                FindingKind::JobFailed,
                format!("the job did not stop: {}", describe(&result)),
            )),
        }
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        // Dropping the handle cancels the job; say so explicitly.
        if let Some(handle) = self.handle.take() {
            handle.cancel();
        }
    }
}
