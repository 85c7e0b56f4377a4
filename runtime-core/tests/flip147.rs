//! FLIP-147's rules for jobs with finished operators: a restore may not put an operator that
//! has not finished upstream of one that had, and the max watermark that ends the input (at
//! its end, or when a stop drains it) fires every pending event-time window.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{FakeTransactionStore, TwoPhaseSink};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::restore::UpstreamStatus;
use weir_runtime::{
    CheckpointConfig, Job, JobConfig, JobResult, JobStatus, RestoreFrom, RestoreProblem,
    RuntimeError, SinkOptions, StopMode, StorageConfig, StreamEnvironment, WindowCount,
};

fn numbers(count: Option<u64>, rate: f64) -> DataGeneratorSource<u64> {
    DataGeneratorSource::new(|n| n, count, RateLimiterStrategy::per_second(rate))
}

fn sink(store: &Arc<FakeTransactionStore>) -> (TwoPhaseSink, SinkOptions) {
    (
        TwoPhaseSink {
            store: Arc::clone(store),
        },
        SinkOptions {
            uid: Some("sink".into()),
            committer_parallelism: None,
        },
    )
}

async fn finish(job: Job) -> JobResult {
    tokio::time::timeout(Duration::from_secs(30), job.execute())
        .await
        .expect("the job ends")
}

/// `numbers` (300 records) into `sink`, or, `with_more`, the union of `numbers` and a new
/// source `more` into `sink`; checkpoints in `dir`, restoring from the latest one if asked.
fn job(
    dir: &std::path::Path,
    restore: RestoreFrom,
    with_more: bool,
    store: &Arc<FakeTransactionStore>,
) -> Job {
    let env = StreamEnvironment::new(
        JobConfig::new("flip147")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(20)))
            .storage(StorageConfig::Local(dir.to_path_buf()))
            .restore(restore),
    );
    let mut stream = env
        .from_source(
            numbers(Some(300), 1e9),
            WatermarkStrategy::no_watermarks(),
            "numbers",
        )
        .uid("numbers");
    if with_more {
        let more = env
            .from_source(
                DataGeneratorSource::new(|n| n + 1_000, Some(50), RateLimiterStrategy::no_op()),
                WatermarkStrategy::no_watermarks(),
                "more",
            )
            .uid("more");
        stream = stream.union(more);
    }
    let (sink, options) = sink(store);
    stream.sink_to_with(sink, &options);
    env.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_adding_an_operator_upstream_of_a_finished_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FakeTransactionStore::default());
    let first = finish(job(dir.path(), RestoreFrom::Nothing, false, &store)).await;
    assert!(first.is_finished(), "{:?}", first.status);
    assert_eq!(store.records(), (0..300).collect::<Vec<_>>());

    // A new source feeding the sink that had finished: its records would never be written.
    let changed = finish(job(dir.path(), RestoreFrom::LatestCheckpoint, true, &store)).await;
    match &changed.status {
        JobStatus::Failed(error @ RuntimeError::RestoreRefused { problems, .. }) => {
            assert_eq!(
                problems,
                &vec![RestoreProblem::UpstreamOfFinished {
                    operator: "more".into(),
                    status: UpstreamStatus::New,
                    finished: "sink".into(),
                }]
            );
            let text = error.to_string();
            assert!(
                text.contains(
                    "source `more` is new, but it is upstream of `sink`, which had finished in \
                     the snapshot"
                ),
                "{text}"
            );
        }
        other => panic!("expected the restore to be refused, got {other:?}"),
    }
    assert_eq!(changed.attempts, 0, "refused before anything ran");

    // The same job restores fine: everything had finished, nothing is read again.
    let same = finish(job(
        dir.path(),
        RestoreFrom::LatestCheckpoint,
        false,
        &store,
    ))
    .await;
    assert!(same.is_finished(), "{:?}", same.status);
    assert!(same.restored_from.is_some());
    assert_eq!(store.records(), (0..300).collect::<Vec<_>>());
}

/// Keys 0..4 with every event at time 0, counted in one-hour windows behind a `key_by`: no
/// watermark before the input's end reaches the window's end, so only the max watermark that
/// ends the input can fire them. The counts are committed as `key << 48 | window end in
/// seconds << 32 | count`.
fn windows(count: Option<u64>, store: &Arc<FakeTransactionStore>) -> Job {
    let env = StreamEnvironment::new(
        JobConfig::new("windows")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(20))),
    );
    let (sink, options) = sink(store);
    env.from_source(
        numbers(count, 20_000.0),
        WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|_: &u64, _| 0),
        "numbers",
    )
    .uid("numbers")
    .key_by(|n| n % 4)
    .window_count("windows", Duration::from_secs(3600), |n| n % 4, |_| 0)
    .map(|w: WindowCount| (w.key << 48) | ((w.window_end as u64 / 1000) << 32) | w.count)
    .sink_to_with(sink, &options);
    env.build().unwrap()
}

/// Committed window counts by key (every window is the first hour).
fn counts(store: &FakeTransactionStore) -> BTreeMap<u64, u64> {
    let mut by_key = BTreeMap::new();
    for encoded in store.records() {
        let (key, end) = (encoded >> 48, (encoded >> 32) & 0xFFFF);
        assert_eq!(end, 3_600, "key {key}: a window of the first hour");
        let previous = by_key.insert(key, encoded & 0xFFFF_FFFF);
        assert!(previous.is_none(), "key {key} fired twice");
    }
    by_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_input_fires_every_pending_window() {
    let store = Arc::new(FakeTransactionStore::default());
    let result = finish(windows(Some(2_000), &store)).await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(
        counts(&store),
        (0..4).map(|k| (k, 500)).collect(),
        "each key's window fired once with all of its records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_fires_every_pending_window_before_its_savepoint() {
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().unwrap();
    let running = windows(None, &store).start();
    tokio::time::sleep(Duration::from_millis(300)).await;
    running
        .stop_with_savepoint(dir.path().join("sp"), StopMode::Drain)
        .await
        .expect("the drained savepoint");
    let result = running.wait().await;
    assert!(
        matches!(result.status, JobStatus::Stopped { .. }),
        "{:?}",
        result.status
    );
    let read = result.counter("numbers", "numRecordsOut");
    let counts = counts(&store);
    assert!(read > 0);
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2, 3],
        "every key's window fired: {counts:?}"
    );
    assert_eq!(
        counts.values().sum::<u64>(),
        read,
        "the windows counted every record read before the drain"
    );
}
