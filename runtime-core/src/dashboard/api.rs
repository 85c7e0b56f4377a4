//! Version 1 of the dashboard's JSON API (`/api/v1/…`): what [`crate::monitor::JobSnapshot`]
//! holds, in field names and units that stay put (documented in `docs/dashboard.md`). A change
//! that removes or renames a field, or changes its meaning, is version 2; new fields may be
//! added to version 1.

// Field names are the API's (e.g. `job.job`, `subtask.subtask`).
#![allow(clippy::struct_field_names)]

use serde::Serialize;
use weir_connector_api::metrics::MetricValue;

use crate::history::{CheckpointRecord, CheckpointStatus, Failover, SubtaskCheckpoint};
use crate::monitor::{JobSnapshot, SubtaskStatus};

/// The API version these types describe.
pub(crate) const VERSION: u32 = 1;

fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `GET /api/v1/job`: everything the pages show, but the metrics.
#[derive(Debug, Serialize)]
pub(crate) struct Job {
    api_version: u32,
    job: Summary,
    graph: Graph,
    subtasks: Vec<Subtask>,
    checkpoints: Vec<Checkpoint>,
    failovers: Vec<FailoverV1>,
    config: Vec<ConfigEntry>,
    restored_from: Option<Restored>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    name: String,
    state: &'static str,
    attempt: u32,
    started_at_millis: u64,
    taken_at_millis: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Graph {
    tasks: Vec<Task>,
    edges: Vec<Edge>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Task {
    id: String,
    name: String,
    parallelism: usize,
    operators: Vec<String>,
    role: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct Edge {
    from: String,
    to: String,
    partitioning: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct Subtask {
    task: String,
    subtask: usize,
    records_in: u64,
    records_out: u64,
    records_in_per_second: Option<f64>,
    records_out_per_second: Option<f64>,
    busy_ms_per_second: Option<f64>,
    idle_ms_per_second: Option<f64>,
    backpressured_ms_per_second: Option<f64>,
    backpressure: Option<&'static str>,
    watermark_millis: Option<i64>,
    end_of_input: bool,
    alignment_paused_ms: u64,
    paused_splits: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Checkpoint {
    id: u64,
    kind: &'static str,
    status: &'static str,
    failure_reason: Option<String>,
    trigger_millis: u64,
    duration_millis: Option<f64>,
    size_bytes: Option<u64>,
    alignment_millis: Option<f64>,
    start_delay_millis: Option<f64>,
    subtasks: Vec<CheckpointSubtask>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CheckpointSubtask {
    task: String,
    subtask: usize,
    start_delay_millis: f64,
    alignment_millis: f64,
    acknowledged_after_millis: f64,
}

#[derive(Debug, Serialize)]
pub(crate) struct FailoverV1 {
    at_millis: u64,
    attempt: u32,
    task: Option<String>,
    root_cause: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct ConfigEntry {
    key: String,
    value: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Restored {
    checkpoint_id: u64,
    source: String,
}

/// `GET /api/v1/job/metrics`.
#[derive(Debug, Serialize)]
pub(crate) struct Metrics {
    api_version: u32,
    metrics: Vec<Metric>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Metric {
    name: String,
    kind: &'static str,
    value: Option<i64>,
    count: Option<u64>,
    sum: Option<u64>,
}

fn subtask(s: &SubtaskStatus) -> Subtask {
    let end_of_input = s.watermark == Some(i64::MAX);
    Subtask {
        task: s.task.clone(),
        subtask: s.subtask,
        records_in: s.records_in,
        records_out: s.records_out,
        records_in_per_second: s.records_in_per_second,
        records_out_per_second: s.records_out_per_second,
        busy_ms_per_second: s.time.map(|t| t.busy_ms_per_second),
        idle_ms_per_second: s.time.map(|t| t.idle_ms_per_second),
        backpressured_ms_per_second: s.time.map(|t| t.backpressured_ms_per_second),
        backpressure: s.time.map(|t| t.backpressure.as_str()),
        watermark_millis: s.watermark.filter(|_| !end_of_input),
        end_of_input,
        alignment_paused_ms: s.alignment_paused_ms,
        paused_splits: s.paused_splits,
    }
}

fn checkpoint_subtask(s: &SubtaskCheckpoint) -> CheckpointSubtask {
    CheckpointSubtask {
        task: s.task.clone(),
        subtask: s.subtask,
        start_delay_millis: millis(s.start_delay),
        alignment_millis: millis(s.alignment),
        acknowledged_after_millis: millis(s.acknowledged_after),
    }
}

fn checkpoint(c: &CheckpointRecord) -> Checkpoint {
    let (status, failure_reason) = match &c.status {
        CheckpointStatus::InProgress => ("in_progress", None),
        CheckpointStatus::Completed => ("completed", None),
        CheckpointStatus::Failed(reason) => ("failed", Some(reason.clone())),
    };
    Checkpoint {
        id: c.id,
        kind: c.kind.as_str(),
        status,
        failure_reason,
        trigger_millis: c.trigger_millis,
        duration_millis: c.duration.map(millis),
        size_bytes: c.size_bytes,
        alignment_millis: c.alignment().map(millis),
        start_delay_millis: c.start_delay().map(millis),
        subtasks: c.subtasks.iter().map(checkpoint_subtask).collect(),
    }
}

fn failover(f: &Failover) -> FailoverV1 {
    FailoverV1 {
        at_millis: f.at_millis,
        attempt: f.attempt,
        task: f.task.clone(),
        root_cause: f.root_cause.clone(),
    }
}

impl Job {
    pub(crate) fn of(s: &JobSnapshot) -> Self {
        Job {
            api_version: VERSION,
            job: Summary {
                name: s.name.clone(),
                state: s.state.as_str(),
                attempt: s.attempt,
                started_at_millis: s.started_at_millis,
                taken_at_millis: s.taken_at_millis,
            },
            graph: Graph {
                tasks: s
                    .graph
                    .tasks
                    .iter()
                    .map(|t| Task {
                        id: t.id.clone(),
                        name: t.name.clone(),
                        parallelism: t.parallelism,
                        operators: t.operators.clone(),
                        role: match t.role {
                            crate::monitor::TaskRole::Source => "source",
                            crate::monitor::TaskRole::PostCommit => "post-commit",
                            _ => "operator",
                        },
                    })
                    .collect(),
                edges: s
                    .graph
                    .edges
                    .iter()
                    .map(|e| Edge {
                        from: e.from.clone(),
                        to: e.to.clone(),
                        partitioning: e.partitioning.as_str(),
                    })
                    .collect(),
            },
            subtasks: s.subtasks.iter().map(subtask).collect(),
            checkpoints: s.checkpoints.iter().map(checkpoint).collect(),
            failovers: s.failovers.iter().map(failover).collect(),
            config: s
                .config
                .iter()
                .map(|c| ConfigEntry {
                    key: c.key.clone(),
                    value: c.value.clone(),
                })
                .collect(),
            restored_from: s.restored_from.as_ref().map(|r| Restored {
                checkpoint_id: r.checkpoint_id,
                source: r.source.clone(),
            }),
        }
    }
}

impl Metrics {
    pub(crate) fn of(s: &JobSnapshot) -> Self {
        let metrics = s
            .metrics
            .iter()
            .map(|(name, value)| {
                let (kind, value, count, sum) = match value {
                    MetricValue::Counter(n) => ("counter", i64::try_from(*n).ok(), None, None),
                    MetricValue::Gauge(v) => ("gauge", Some(*v), None, None),
                    MetricValue::Histogram(h) => ("histogram", None, Some(h.count), Some(h.sum)),
                    _ => ("other", None, None, None),
                };
                Metric {
                    name: name.clone(),
                    kind,
                    value,
                    count,
                    sum,
                }
            })
            .collect();
        Metrics {
            api_version: VERSION,
            metrics,
        }
    }
}

/// One part of [`Job`], for the narrower endpoints.
pub(crate) fn part(job: &Job, name: &str) -> Option<serde_json::Value> {
    let value = match name {
        "graph" => serde_json::to_value(&job.graph),
        "subtasks" => serde_json::to_value(&job.subtasks),
        "checkpoints" => serde_json::to_value(&job.checkpoints),
        "failovers" => serde_json::to_value(&job.failovers),
        "config" => serde_json::to_value(&job.config),
        _ => return None,
    }
    .ok()?;
    Some(serde_json::json!({ "api_version": VERSION, name: value }))
}
