//! The AsyncSink writer inside a running job whose input stops without ending: the runtime
//! polls the writer's `poll_progress` (API 1.1) while the task waits, so buffered entries go
//! when their time in the buffer is up — with no checkpoint, no more input and no end of input
//! to flush them. Before the runtime polled it, these entries waited for the next record.

// Test helpers may fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{FakeBulkDestination, FakeParts, Faults, Storage};
use weir_connector_api::source::Boundedness;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_base::sink::{AsyncSink, AsyncSinkConfig};
use weir_runtime::{JobConfig, StreamEnvironment};
use weir_testkit::reference::{FakeLog, FakeLogSource};
use weir_testkit::SplitRecord;

async fn buffered_entries_go_when_their_time_is_up(parallelism: usize, chained: bool) {
    let log = FakeLog::<SplitRecord>::new();
    log.create_partition("idle-0");
    let records: Vec<SplitRecord> = (0..5).map(|seq| SplitRecord::new(0, seq, 7)).collect();
    log.append("idle-0", &records).unwrap();
    let destination = FakeBulkDestination::new(Storage::Append, Faults::none());
    let config = AsyncSinkConfig::builder()
        .max_batch_size(1000)
        .max_time_in_buffer(Duration::from_millis(100))
        .build()
        .unwrap();
    let sink = AsyncSink::new(
        FakeParts {
            destination: Arc::clone(&destination),
            restored: Arc::new(AtomicU64::new(0)),
        },
        config,
    );
    // No checkpoints: nothing but the writer's own clock can send the five entries.
    let env = StreamEnvironment::new(JobConfig::new("idle-input").parallelism(parallelism));
    let stream = env
        .from_source(
            FakeLogSource::new(Arc::clone(&log), "idle", Boundedness::ContinuousUnbounded),
            WatermarkStrategy::no_watermarks(),
            "log",
        )
        .uid("log");
    // Chained, the writer runs in the source's task; after a rebalance, in a task of its own.
    let stream = if chained { stream } else { stream.rebalance() };
    stream.sink_to(sink);
    let running = env.build().unwrap().start();
    let started = Instant::now();
    while destination.stored().len() < records.len() && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut stored = destination.stored();
    running.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), running.wait()).await;
    stored.sort_unstable();
    assert_eq!(
        stored, records,
        "the entries stayed in the buffer while the input was idle ({parallelism}, chained: \
         {chained})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_sources_task() {
    buffered_entries_go_when_their_time_is_up(1, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_task_of_its_own() {
    buffered_entries_go_when_their_time_is_up(1, false).await;
}
