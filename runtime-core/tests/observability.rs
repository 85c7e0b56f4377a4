//! What Flink users watch, on the real runtime: busy / idle / back-pressured time per subtask
//! and the back-pressure level, checkpoint alignment and start delay, the job snapshot of a
//! running job, and whether a cancelled job keeps its checkpoints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use weir_connector_api::error::Result;
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_blackhole::BlackholeSink;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::monitor::{EdgePartitioning, JobSnapshot, SubtaskStatus, TaskRole};
use weir_runtime::{
    BackPressureLevel, CheckpointConfig, CheckpointStatus, ExternalizedCheckpointRetention,
    JobConfig, JobHandle, JobStatus, StorageConfig, StreamEnvironment,
};

/// A sink whose writer takes `delay` before each batch (its `poll_ready` waits on a timer): a
/// slow external system.
struct SlowSink {
    delay: Duration,
}

struct SlowWriter {
    delay: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

#[async_trait::async_trait]
impl SinkWriter<u64> for SlowWriter {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let delay = self.delay;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timer = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
    fn write(&mut self, _element: u64, _ctx: &WriteContext) -> Result<()> {
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl Sink<u64> for SlowSink {
    type Writer = SlowWriter;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<SlowWriter> {
        Ok(SlowWriter {
            delay: self.delay,
            timer: None,
        })
    }
}

fn unbounded(rate: Option<f64>) -> DataGeneratorSource<u64> {
    let limiter = rate.map_or_else(RateLimiterStrategy::no_op, RateLimiterStrategy::per_second);
    DataGeneratorSource::new(|n| n, None, limiter)
}

fn subtasks<'a>(snapshot: &'a JobSnapshot, task: &str) -> Vec<&'a SubtaskStatus> {
    snapshot
        .subtasks
        .iter()
        .filter(|s| s.task == task)
        .collect()
}

/// Polls the job's snapshot until `done` holds (or 20 s pass), returning the last one.
async fn until(handle: &JobHandle, done: impl Fn(&JobSnapshot) -> bool) -> JobSnapshot {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let snapshot = handle.snapshot();
        if done(&snapshot) || tokio::time::Instant::now() >= deadline {
            return snapshot;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_back_pressures_its_upstream_and_a_trickling_source_is_idle() {
    let env = StreamEnvironment::new(
        JobConfig::new("load")
            .batch_size(64)
            .channel_capacity(2)
            .buffer_timeout(Duration::from_millis(5)),
    );
    env.from_source(unbounded(None), WatermarkStrategy::no_watermarks(), "fast")
        .uid("fast")
        .rebalance()
        .sink_to_with(
            SlowSink {
                delay: Duration::from_millis(20),
            },
            &weir_runtime::SinkOptions {
                uid: Some("slow".into()),
                ..Default::default()
            },
        );
    env.from_source(
        unbounded(Some(5.0)),
        WatermarkStrategy::no_watermarks(),
        "trickle",
    )
    .uid("trickle")
    .sink_to(BlackholeSink::new());
    let handle = env.build().unwrap().start();
    // Two sampling windows: the first after a second, the second with the pipeline full.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let snapshot = until(&handle, |s| {
        subtasks(s, "fast")
            .first()
            .and_then(|f| f.time)
            .is_some_and(|t| t.backpressure == BackPressureLevel::High)
    })
    .await;
    handle.cancel();
    let result = handle.wait().await;
    assert!(matches!(result.status, JobStatus::Cancelled));

    let fast = subtasks(&snapshot, "fast");
    let time = fast[0].time.expect("sampled");
    assert_eq!(time.backpressure, BackPressureLevel::High, "{fast:?}");
    assert!(time.backpressured_ms_per_second > 500.0, "{time:?}");
    assert!(
        (time.busy_ms_per_second + time.idle_ms_per_second + time.backpressured_ms_per_second
            - 1000.0)
            .abs()
            < 1.0
    );
    assert!(fast[0].records_out > 0 && fast[0].records_out_per_second.unwrap() > 0.0);

    let trickle = subtasks(&snapshot, "trickle");
    let time = trickle[0].time.expect("sampled");
    assert!(time.idle_ms_per_second > 800.0, "{time:?}");
    assert_eq!(time.backpressure, BackPressureLevel::Ok);

    // The graph: the fast source feeds the slow sink's writer over a rebalance edge.
    let writer = snapshot
        .graph
        .tasks
        .iter()
        .find(|t| t.operators.contains(&"slow".to_owned()))
        .expect("the slow sink's task");
    assert_eq!(writer.role, TaskRole::Operator);
    assert!(snapshot.graph.edges.iter().any(|e| e.from == "fast"
        && e.to == writer.id
        && e.partitioning == EdgePartitioning::Rebalance));
    assert_eq!(snapshot.graph.tasks.len(), 3, "{:?}", snapshot.graph);
    // The metrics carry the same shares.
    assert!(result
        .metrics
        .keys()
        .any(|k| k == "load.fast.0.backPressuredTimeMsPerSecond"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alignment_and_start_delay_are_recorded_per_subtask() {
    // The union task waits for the fast source's barrier, queued behind batches its slow sink
    // has not taken yet, while the trickle's barrier is already there.
    let env = StreamEnvironment::new(
        JobConfig::new("aligned")
            .batch_size(64)
            .channel_capacity(2)
            .buffer_timeout(Duration::from_millis(5))
            .checkpointing(CheckpointConfig::every(Duration::from_millis(200))),
    );
    let fast = env
        .from_source(unbounded(None), WatermarkStrategy::no_watermarks(), "fast")
        .uid("fast");
    let trickle = env
        .from_source(
            unbounded(Some(50.0)),
            WatermarkStrategy::no_watermarks(),
            "trickle",
        )
        .uid("trickle");
    fast.union(trickle).sink_to_with(
        SlowSink {
            delay: Duration::from_millis(10),
        },
        &weir_runtime::SinkOptions {
            uid: Some("slow".into()),
            ..Default::default()
        },
    );
    let handle = env.build().unwrap().start();
    let snapshot = until(&handle, |s| {
        s.checkpoints
            .iter()
            .filter(|c| c.status == CheckpointStatus::Completed)
            .count()
            >= 2
    })
    .await;
    handle.cancel();
    handle.wait().await;
    let completed: Vec<_> = snapshot
        .checkpoints
        .iter()
        .filter(|c| c.status == CheckpointStatus::Completed)
        .collect();
    assert!(completed.len() >= 2, "{:?}", snapshot.checkpoints);
    for checkpoint in &completed {
        // Every subtask acknowledged: two sources and the union task.
        assert_eq!(checkpoint.subtasks.len(), 3, "{checkpoint:?}");
        let union = checkpoint
            .subtasks
            .iter()
            .find(|s| s.task.contains('+'))
            .expect("the union task's record");
        assert!(union.alignment > Duration::ZERO, "{checkpoint:?}");
        assert!(union.acknowledged_after >= union.start_delay + union.alignment);
        assert_eq!(checkpoint.alignment(), Some(union.alignment));
        for source in checkpoint.subtasks.iter().filter(|s| !s.task.contains('+')) {
            assert_eq!(source.alignment, Duration::ZERO, "a source has one input");
        }
    }
}

fn checkpoint_dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("chk-"))
                .collect()
        })
        .unwrap_or_default()
}

async fn cancel_after_a_checkpoint(
    dir: &Path,
    retention: ExternalizedCheckpointRetention,
) -> Vec<String> {
    let env = StreamEnvironment::new(
        JobConfig::new("retention")
            .checkpointing(CheckpointConfig::every(Duration::from_millis(50)))
            .storage(StorageConfig::Local(dir.to_path_buf()))
            .checkpoint_retention(retention),
    );
    env.from_source(
        unbounded(Some(1000.0)),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .uid("numbers")
    .sink_to(BlackholeSink::new());
    let handle = env.build().unwrap().start();
    let snapshot = until(&handle, |s| {
        s.checkpoints
            .iter()
            .any(|c| c.status == CheckpointStatus::Completed)
    })
    .await;
    assert!(
        !checkpoint_dirs(dir).is_empty(),
        "a checkpoint completed before the cancel: {:?}",
        snapshot.checkpoints
    );
    handle.cancel();
    let result = handle.wait().await;
    assert!(matches!(result.status, JobStatus::Cancelled));
    checkpoint_dirs(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_keeps_or_deletes_its_checkpoints_as_configured() {
    let retained = tempfile::tempdir().unwrap();
    let kept = cancel_after_a_checkpoint(
        retained.path(),
        ExternalizedCheckpointRetention::RetainOnCancellation,
    )
    .await;
    assert!(!kept.is_empty(), "retained on cancellation");

    let deleted = tempfile::tempdir().unwrap();
    let left = cancel_after_a_checkpoint(
        deleted.path(),
        ExternalizedCheckpointRetention::DeleteOnCancellation,
    )
    .await;
    assert!(left.is_empty(), "deleted on cancellation, left: {left:?}");
}
