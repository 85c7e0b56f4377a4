//! What a running job looks like from outside, as Flink's web UI shows it: its graph (tasks,
//! chained operators, parallelism, edges and their partitioning), per subtask the records read
//! and sent and their rates, the busy / idle / back-pressured time per second with a
//! back-pressure level, the current watermark; the checkpoint and failover histories; its
//! configuration and the checkpoint it was restored from.
//!
//! [`crate::JobHandle::monitor`] gives a [`JobMonitor`], a cheap clone that outlives the handle;
//! [`JobMonitor::snapshot`] reads everything at once from the runtime's own counters (nothing is
//! scraped from an exporter). The job master samples the time shares and rates once a second;
//! they are also published as the metrics `busyTimeMsPerSecond`, `idleTimeMsPerSecond` and
//! `backPressuredTimeMsPerSecond` of each task (scoped `<job>.<task id>.<subtask>`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use weir_connector_api::metrics::{Gauge, InMemoryMetricGroup, MetricGroup, MetricValue};

use crate::config::{ExternalizedCheckpointRetention, JobConfig, RestoreFrom, StorageConfig};
pub use crate::exchange::EdgePartitioning;
use crate::history::{now_millis, CheckpointRecord, Failover, History};
use crate::load::{LoadTotals, TaskLoad, TimeShares};

/// The shortest sampling window: shorter ones (the master's first tick, right after the
/// launch) would give noisy shares and rates.
const MIN_WINDOW: std::time::Duration = std::time::Duration::from_millis(500);

/// What a job is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobState {
    /// Restoring and launching its first attempt.
    Starting,
    /// An attempt is running.
    Running,
    /// An attempt failed; the next one starts after the restart delay.
    Restarting,
    /// All input was processed and committed.
    Finished,
    /// Cancelled by the user.
    Cancelled,
    /// Stopped with a savepoint.
    Stopped,
    /// Failed for good.
    Failed,
}

impl JobState {
    /// Its name in lower case (`running`, `restarting`...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Starting => "starting",
            JobState::Running => "running",
            JobState::Restarting => "restarting",
            JobState::Finished => "finished",
            JobState::Cancelled => "cancelled",
            JobState::Stopped => "stopped",
            JobState::Failed => "failed",
        }
    }
}

/// What a task of the graph does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskRole {
    /// It runs a source reader (and what is chained to it).
    Source,
    /// It reads from channels: operators, sink writers, committers, pre-commit stages.
    Operator,
    /// A post-commit stage of a sink.
    PostCommit,
}

/// One task of the physical plan: a chain of operators with one parallelism (Flink's job
/// vertex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskVertex {
    /// A stable id: the uid of its first stateful operator, else `task-<index>`.
    pub id: String,
    /// Its name (the stream's name and what ends the chain), as given by the job.
    pub name: String,
    /// How many subtasks run it.
    pub parallelism: usize,
    /// The uids of its operators that have one (sources, windows, sink writers, committers).
    pub operators: Vec<String>,
    /// What it does.
    pub role: TaskRole,
}

/// A channel edge between two tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphEdge {
    /// The id of the upstream task.
    pub from: String,
    /// The id of the downstream task.
    pub to: String,
    /// How records are distributed over the downstream subtasks.
    pub partitioning: EdgePartitioning,
}

/// The job graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobGraph {
    /// The tasks, in plan order (sources first).
    pub tasks: Vec<TaskVertex>,
    /// The edges between them.
    pub edges: Vec<GraphEdge>,
}

/// Flink's back-pressure level of a subtask, from the share of time it is back-pressured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackPressureLevel {
    /// At most 10 % of the time.
    Ok,
    /// At most 50 %.
    Low,
    /// More than 50 %.
    High,
}

impl BackPressureLevel {
    /// The level of `ms_per_second` milliseconds back-pressured per second.
    pub fn of(ms_per_second: f64) -> Self {
        if ms_per_second <= 100.0 {
            BackPressureLevel::Ok
        } else if ms_per_second <= 500.0 {
            BackPressureLevel::Low
        } else {
            BackPressureLevel::High
        }
    }

    /// `ok`, `low` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackPressureLevel::Ok => "ok",
            BackPressureLevel::Low => "low",
            BackPressureLevel::High => "high",
        }
    }
}

/// Where a subtask spends its time, in milliseconds per second over the last sampling window
/// (about a second), as Flink's `busyTimeMsPerSecond`, `idleTimeMsPerSecond` and
/// `backPressuredTimeMsPerSecond`; the three add up to 1000.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeShare {
    /// Working: neither waiting for input nor for room downstream.
    pub busy_ms_per_second: f64,
    /// Waiting for input.
    pub idle_ms_per_second: f64,
    /// Waiting for room in a full output channel.
    pub backpressured_ms_per_second: f64,
    /// The level of `backpressured_ms_per_second`.
    pub backpressure: BackPressureLevel,
}

/// One subtask of a task, live.
#[derive(Debug, Clone, PartialEq)]
pub struct SubtaskStatus {
    /// The id of its task ([`TaskVertex::id`]).
    pub task: String,
    /// Its index.
    pub subtask: usize,
    /// Records read in this attempt (from its reader, or from its input channels).
    pub records_in: u64,
    /// Records sent to the next task in this attempt.
    pub records_out: u64,
    /// Records read per second over the last window (`None` before the first window ends).
    pub records_in_per_second: Option<f64>,
    /// Records sent per second over the last window.
    pub records_out_per_second: Option<f64>,
    /// Where its time went over the last window.
    pub time: Option<TimeShare>,
    /// Its current watermark in epoch milliseconds (`None` before the first; `i64::MAX` at the
    /// end of input).
    pub watermark: Option<i64>,
    /// A source subtask's time in this attempt held back by watermark alignment: it was ahead
    /// of its alignment group and read nothing (task-level alignment), in milliseconds.
    pub alignment_paused_ms: u64,
    /// A source subtask's splits paused now because they are ahead of their alignment group
    /// (split-level alignment, FLIP-217).
    pub paused_splits: u64,
}

/// One configuration value of the job, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Its key (`checkpointing.interval`...).
    pub key: String,
    /// Its value, as text.
    pub value: String,
}

/// What the current attempt started from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredFrom {
    /// The checkpoint or savepoint id.
    pub checkpoint_id: u64,
    /// Where it came from (a savepoint path, or the checkpoint storage).
    pub source: String,
}

/// Everything a dashboard shows about a job, read at one moment.
#[derive(Debug, Clone)]
pub struct JobSnapshot {
    /// The job's name.
    pub name: String,
    /// What it is doing.
    pub state: JobState,
    /// The current attempt (0 is the first).
    pub attempt: u32,
    /// When the job started, in milliseconds since the Unix epoch.
    pub started_at_millis: u64,
    /// When this snapshot was taken.
    pub taken_at_millis: u64,
    /// The job graph.
    pub graph: JobGraph,
    /// Every subtask of the current attempt, by task then subtask.
    pub subtasks: Vec<SubtaskStatus>,
    /// The checkpoint and savepoint history, oldest first.
    pub checkpoints: Vec<CheckpointRecord>,
    /// The failover history, oldest first.
    pub failovers: Vec<Failover>,
    /// The job's configuration.
    pub config: Vec<ConfigEntry>,
    /// What the current attempt was restored from.
    pub restored_from: Option<RestoredFrom>,
    /// Every metric of the current attempt and the job, by scoped name
    /// (`<job>.<uid>.<subtask>.<metric>`).
    pub metrics: BTreeMap<String, MetricValue>,
}

/// A read-only view of a running (or ended) job; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct JobMonitor {
    pub(crate) live: Live,
}

impl JobMonitor {
    /// Reads the job's state now.
    pub fn snapshot(&self) -> JobSnapshot {
        self.live.snapshot()
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.live.inner.name
    }
}

/// The live state shared by the master, the tasks' loads and the monitors.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    inner: Arc<LiveInner>,
}

#[derive(Debug)]
struct LiveInner {
    name: String,
    started_at_millis: u64,
    graph: JobGraph,
    config: Vec<ConfigEntry>,
    history: History,
    state: Mutex<LiveState>,
}

#[derive(Debug)]
struct LiveState {
    state: JobState,
    attempt: u32,
    restored_from: Option<RestoredFrom>,
    metrics: Option<InMemoryMetricGroup>,
    job_metrics: Option<InMemoryMetricGroup>,
    subtasks: Vec<SubtaskEntry>,
}

#[derive(Debug)]
struct SubtaskEntry {
    task: usize,
    subtask: usize,
    load: Arc<TaskLoad>,
    last: LoadTotals,
    shares: Option<TimeShares>,
    rates: Option<(f64, f64)>,
    gauges: [Gauge; 3],
}

impl Live {
    pub(crate) fn new(config: &JobConfig, graph: JobGraph, history: History) -> Self {
        Live {
            inner: Arc::new(LiveInner {
                name: config.name.clone(),
                started_at_millis: now_millis(),
                graph,
                config: config_entries(config),
                history,
                state: Mutex::new(LiveState {
                    state: JobState::Starting,
                    attempt: 0,
                    restored_from: None,
                    metrics: None,
                    job_metrics: None,
                    subtasks: Vec::new(),
                }),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LiveState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// An attempt starts: its subtasks register anew.
    pub(crate) fn attempt_started(
        &self,
        attempt: u32,
        restored_from: Option<RestoredFrom>,
        metrics: &InMemoryMetricGroup,
        job_metrics: &InMemoryMetricGroup,
    ) {
        let mut s = self.lock();
        s.state = JobState::Running;
        s.attempt = attempt;
        s.restored_from = restored_from;
        s.metrics = Some(metrics.clone());
        s.job_metrics = Some(job_metrics.clone());
        s.subtasks.clear();
    }

    /// The job is in `state` now.
    pub(crate) fn set_state(&self, state: JobState) {
        self.lock().state = state;
    }

    /// Registers subtask `subtask` of task `task` (an index into the graph) and returns the load
    /// its task measures into.
    pub(crate) fn register(&self, task: usize, subtask: usize) -> Arc<TaskLoad> {
        let load = Arc::new(TaskLoad::default());
        let id = self
            .inner
            .graph
            .tasks
            .get(task)
            .map_or_else(|| format!("task-{task}"), |t| t.id.clone());
        let mut s = self.lock();
        let group = s.metrics.as_ref().map_or_else(
            || InMemoryMetricGroup::new(""),
            |m| m.group(&id).group(&subtask.to_string()),
        );
        s.subtasks.push(SubtaskEntry {
            task,
            subtask,
            last: load.totals(),
            load: Arc::clone(&load),
            shares: None,
            rates: None,
            gauges: [
                group.gauge("busyTimeMsPerSecond"),
                group.gauge("idleTimeMsPerSecond"),
                group.gauge("backPressuredTimeMsPerSecond"),
            ],
        });
        load
    }

    /// Every registered subtask's load, as `(task, subtask, load)` (cluster mode: a process
    /// sends them to the master's monitor).
    pub(crate) fn loads(&self) -> Vec<(usize, usize, Arc<TaskLoad>)> {
        self.lock()
            .subtasks
            .iter()
            .map(|e| (e.task, e.subtask, Arc::clone(&e.load)))
            .collect()
    }

    /// Closes a sampling window for every subtask (the master calls this once a second).
    pub(crate) fn sample(&self) {
        let mut s = self.lock();
        for entry in &mut s.subtasks {
            let now = entry.load.totals();
            if now.at.saturating_duration_since(entry.last.at) < MIN_WINDOW {
                continue; // too short to say anything (e.g. right after the start)
            }
            if let Some(shares) = now.shares_since(&entry.last) {
                let [busy, idle, backpressured] = &entry.gauges;
                busy.set(shares.busy.round() as i64);
                idle.set(shares.idle.round() as i64);
                backpressured.set(shares.backpressured.round() as i64);
                entry.shares = Some(shares);
            }
            if let Some(rates) = now.rates_since(&entry.last) {
                entry.rates = Some(rates);
            }
            entry.last = now;
        }
    }

    /// Reads everything now.
    pub(crate) fn snapshot(&self) -> JobSnapshot {
        let inner = &self.inner;
        let (state, attempt, restored_from, metrics, subtasks) = {
            let s = self.lock();
            let mut metrics = s.metrics.as_ref().map(InMemoryMetricGroup::snapshot);
            if let (Some(all), Some(job)) = (metrics.as_mut(), s.job_metrics.as_ref()) {
                all.extend(job.snapshot());
            }
            let subtasks = s
                .subtasks
                .iter()
                .map(|e| {
                    let totals = e.load.totals();
                    SubtaskStatus {
                        task: inner
                            .graph
                            .tasks
                            .get(e.task)
                            .map_or_else(|| format!("task-{}", e.task), |t| t.id.clone()),
                        subtask: e.subtask,
                        records_in: totals.records_in,
                        records_out: totals.records_out,
                        records_in_per_second: e.rates.map(|r| r.0),
                        records_out_per_second: e.rates.map(|r| r.1),
                        time: e.shares.map(|t| TimeShare {
                            busy_ms_per_second: t.busy,
                            idle_ms_per_second: t.idle,
                            backpressured_ms_per_second: t.backpressured,
                            backpressure: BackPressureLevel::of(t.backpressured),
                        }),
                        watermark: e.load.current_watermark(),
                        alignment_paused_ms: e.load.alignment_pauses().0,
                        paused_splits: e.load.alignment_pauses().1,
                    }
                })
                .collect();
            (
                s.state,
                s.attempt,
                s.restored_from.clone(),
                metrics.unwrap_or_default(),
                subtasks,
            )
        };
        JobSnapshot {
            name: inner.name.clone(),
            state,
            attempt,
            started_at_millis: inner.started_at_millis,
            taken_at_millis: now_millis(),
            graph: inner.graph.clone(),
            subtasks,
            checkpoints: inner.history.checkpoints(),
            failovers: inner.history.failovers(),
            config: inner.config.clone(),
            restored_from,
            metrics,
        }
    }
}

fn entry(key: &str, value: impl Into<String>) -> ConfigEntry {
    ConfigEntry {
        key: key.to_owned(),
        value: value.into(),
    }
}

/// The job's configuration as key/value lines.
fn config_entries(config: &JobConfig) -> Vec<ConfigEntry> {
    let mut entries = vec![
        entry("name", config.name.clone()),
        entry("parallelism", config.parallelism.to_string()),
    ];
    match &config.checkpointing {
        None => entries.push(entry("checkpointing", "off")),
        Some(c) => {
            entries.extend([
                entry("checkpointing.interval", format!("{:?}", c.interval)),
                entry("checkpointing.mode", format!("{:?}", c.mode)),
                entry("checkpointing.min-pause", format!("{:?}", c.min_pause)),
                entry("checkpointing.timeout", format!("{:?}", c.timeout)),
                entry("checkpointing.max-concurrent", c.max_concurrent.to_string()),
                entry(
                    "checkpointing.tolerable-failures",
                    c.tolerable_failures.to_string(),
                ),
                entry("checkpointing.retained", c.retained.to_string()),
            ]);
        }
    }
    entries.push(entry(
        "checkpointing.on-cancel",
        match config.checkpoint_retention {
            ExternalizedCheckpointRetention::RetainOnCancellation => "retain",
            ExternalizedCheckpointRetention::DeleteOnCancellation => "delete",
        },
    ));
    entries.push(entry(
        "checkpointing.storage",
        match &config.storage {
            StorageConfig::Memory => "memory".to_owned(),
            StorageConfig::Local(dir) => dir.display().to_string(),
            StorageConfig::Custom(s) => s.describe(),
        },
    ));
    entries.push(entry(
        "restore",
        match &config.restore {
            RestoreFrom::Nothing => "nothing".to_owned(),
            RestoreFrom::LatestCheckpoint => "latest checkpoint".to_owned(),
            RestoreFrom::Savepoint(path) => format!("savepoint {}", path.display()),
            RestoreFrom::LatestCheckpointElse(None) => "latest checkpoint, else nothing".to_owned(),
            RestoreFrom::LatestCheckpointElse(Some(path)) => {
                format!("latest checkpoint, else savepoint {}", path.display())
            }
        },
    ));
    entries.extend([
        entry("restart", format!("{:?}", config.restart)),
        entry("batch-size", config.batch_size.to_string()),
        entry("channel-capacity", config.channel_capacity.to_string()),
        entry("buffer-timeout", format!("{:?}", config.buffer_timeout)),
        entry(
            "watermark-interval",
            format!("{:?}", config.watermark_interval),
        ),
    ]);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flinks_thresholds_decide_the_level() {
        assert_eq!(BackPressureLevel::of(0.0), BackPressureLevel::Ok);
        assert_eq!(BackPressureLevel::of(100.0), BackPressureLevel::Ok);
        assert_eq!(BackPressureLevel::of(100.5), BackPressureLevel::Low);
        assert_eq!(BackPressureLevel::of(500.0), BackPressureLevel::Low);
        assert_eq!(BackPressureLevel::of(500.1), BackPressureLevel::High);
    }
}
