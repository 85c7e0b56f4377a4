//! Checkpoint options seen through the job's checkpoint history: the minimum pause between
//! checkpoints, more than one concurrent checkpoint, and what the history and the failover
//! history record (statuses, sizes, savepoints, failures with their task and root cause).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{FakeTransactionStore, TwoPhaseSink};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::fault::{FailOnce, FaultPoint};
use weir_runtime::restart::RestartStrategy;
use weir_runtime::storage::SnapshotKind;
use weir_runtime::{
    CheckpointConfig, CheckpointRecord, CheckpointStatus, Job, JobConfig, SinkOptions,
    StreamEnvironment,
};

/// datagen (`count` records at `rate`/s) → map (sleeping `slow` per record) → two-phase sink.
fn job(
    config: JobConfig,
    count: u64,
    rate: f64,
    slow: Duration,
) -> (Job, Arc<FakeTransactionStore>) {
    let store = Arc::new(FakeTransactionStore::default());
    let env = StreamEnvironment::new(config);
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(count), RateLimiterStrategy::per_second(rate)),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .uid("numbers")
    .map(move |n| {
        if !slow.is_zero() {
            std::thread::sleep(slow);
        }
        n
    })
    .rebalance()
    .sink_to_with(
        TwoPhaseSink {
            store: Arc::clone(&store),
        },
        &SinkOptions {
            uid: Some("sink".into()),
            committer_parallelism: None,
        },
    );
    (env.build().expect("valid job"), store)
}

fn completed(history: &[CheckpointRecord]) -> Vec<&CheckpointRecord> {
    history
        .iter()
        .filter(|r| r.status == CheckpointStatus::Completed)
        .collect()
}

/// When a checkpoint ended, in milliseconds since the epoch.
fn end_of(r: &CheckpointRecord) -> u64 {
    r.trigger_millis + r.duration.map_or(0, |d| d.as_millis() as u64)
}

/// The most checkpoints in progress at one time.
fn max_overlap(history: &[CheckpointRecord]) -> usize {
    history
        .iter()
        .map(|r| {
            history
                .iter()
                .filter(|o| o.trigger_millis <= r.trigger_millis && end_of(o) > r.trigger_millis)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimum_pause_separates_one_checkpoints_end_from_the_next_trigger() {
    let mut checkpoints = CheckpointConfig::every(Duration::from_millis(5));
    checkpoints.min_pause = Duration::from_millis(150);
    let (job, _) = job(
        JobConfig::new("min-pause")
            .parallelism(1)
            .checkpointing(checkpoints),
        4_000,
        4_000.0,
        Duration::ZERO,
    );
    let result = job.execute().await;
    assert!(result.is_finished(), "{:?}", result.status);
    let history = result.checkpoint_history;
    let done = completed(&history);
    assert!(done.len() >= 3, "{history:?}");
    for pair in history.windows(2) {
        let gap = pair[1].trigger_millis.saturating_sub(end_of(&pair[0]));
        // The final checkpoint after end of input is not periodic: no pause applies to it.
        if pair[1].id == done.last().unwrap().id {
            continue;
        }
        assert!(
            gap + 1 >= 150,
            "checkpoint {} triggered {gap} ms after {} ended: {history:?}",
            pair[1].id,
            pair[0].id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checkpoints_overlap_up_to_the_limit_and_not_beyond() {
    for max_concurrent in [1, 3] {
        let mut checkpoints = CheckpointConfig::every(Duration::from_millis(10));
        checkpoints.max_concurrent = max_concurrent;
        // A slow operator behind the source: barriers queue behind batches, so a checkpoint
        // takes far longer than the interval.
        let (job, store) = job(
            JobConfig::new("concurrent")
                .parallelism(1)
                .checkpointing(checkpoints),
            3_000,
            1e9,
            Duration::from_micros(300),
        );
        let result = job.execute().await;
        assert!(result.is_finished(), "{:?}", result.status);
        assert_eq!(store.records().len(), 3_000);
        let overlap = max_overlap(&result.checkpoint_history);
        assert!(
            overlap <= max_concurrent,
            "{overlap} > {max_concurrent} in progress at once: {:?}",
            result.checkpoint_history
        );
        if max_concurrent > 1 {
            assert!(
                overlap > 1,
                "checkpoints never overlapped: {:?}",
                result.checkpoint_history
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_histories_record_checkpoints_savepoints_and_failovers() {
    let fault = Arc::new(FailOnce::new(FaultPoint::BeforeSnapshot, CheckpointId(3)));
    let (job, _) = job(
        JobConfig::new("history")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(20)))
            .restart(RestartStrategy::FixedDelay {
                attempts: 2,
                delay: Duration::ZERO,
            })
            .faults(fault.clone()),
        20_000,
        40_000.0,
        Duration::ZERO,
    );
    let dir = tempfile::tempdir().unwrap();
    let running = job.start();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let savepoint = running.savepoint(dir.path()).await;
    let live = running.checkpoint_history();
    let result = tokio::time::timeout(Duration::from_secs(60), running.wait())
        .await
        .unwrap();
    assert!(result.is_finished(), "{:?}", result.status);
    assert!(fault.fired_at().is_some());
    assert!(
        !live.is_empty(),
        "the handle shows the history while the job runs"
    );

    let history = &result.checkpoint_history;
    let failed: Vec<_> = history
        .iter()
        .filter(|r| matches!(r.status, CheckpointStatus::Failed(_)))
        .collect();
    assert!(
        failed.iter().any(|r| r.id == 3),
        "the checkpoint the failure interrupted: {history:?}"
    );
    for r in completed(history) {
        assert!(r.size_bytes.is_some_and(|s| s > 0), "{r:?}");
        assert!(r.duration.is_some(), "{r:?}");
    }
    if savepoint.is_ok() {
        assert!(
            history
                .iter()
                .any(|r| r.kind == SnapshotKind::Savepoint
                    && r.status == CheckpointStatus::Completed),
            "{history:?}"
        );
    }
    let ids: Vec<u64> = history.iter().map(|r| r.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");

    assert_eq!(
        result.failover_history.len(),
        1,
        "{:?}",
        result.failover_history
    );
    let failover = &result.failover_history[0];
    assert_eq!(failover.attempt, 0);
    assert!(
        failover.root_cause.contains("injected failure"),
        "{failover:?}"
    );
    assert!(
        failover
            .task
            .as_deref()
            .is_some_and(|t| t.contains("subtask")),
        "{failover:?}"
    );
}
