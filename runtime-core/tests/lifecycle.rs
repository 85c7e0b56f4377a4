//! Savepoints, rescaling, stop-with-savepoint, FLIP-147 endings and corrupt checkpoints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{FakeTransactionStore, TwoPhaseSink};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::storage::METADATA_FILE_NAME;
use weir_runtime::{
    CheckpointConfig, Job, JobConfig, JobResult, JobStatus, RestoreFrom, SinkOptions, StopMode,
    StorageConfig, StreamEnvironment,
};

const COUNT: u64 = 60_000;

/// datagen (paced at `rate` records/s) → sink, with stable uids so state maps across runs.
fn job(config: JobConfig, store: &Arc<FakeTransactionStore>, rate: f64) -> Job {
    let env = StreamEnvironment::new(config);
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(COUNT), RateLimiterStrategy::per_second(rate)),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .uid("numbers")
    .sink_to_with(
        TwoPhaseSink {
            store: Arc::clone(store),
        },
        &SinkOptions {
            uid: Some("sink".into()),
            committer_parallelism: None,
        },
    );
    env.build().expect("valid job")
}

fn config(name: &str, parallelism: usize) -> JobConfig {
    JobConfig::new(name)
        .parallelism(parallelism)
        .checkpointing(CheckpointConfig::every(Duration::from_millis(10)))
}

async fn finish(job: Job) -> JobResult {
    tokio::time::timeout(Duration::from_secs(60), job.execute())
        .await
        .expect("the job ends within a minute")
}

fn assert_exactly_once(store: &FakeTransactionStore) {
    let got = store.records();
    let distinct: BTreeSet<u64> = got.iter().copied().collect();
    let missing: Vec<u64> = (0..COUNT).filter(|n| !distinct.contains(n)).collect();
    let extra: Vec<u64> = distinct.iter().copied().filter(|n| *n >= COUNT).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && distinct.len() == got.len(),
        "{} committed, {} distinct, expected {COUNT}; {} missing (first {:?}, last {:?}); {} duplicates; {} unexpected",
        got.len(),
        distinct.len(),
        missing.len(),
        missing.first(),
        missing.last(),
        got.len() - distinct.len(),
        extra.len()
    );
}

/// Runs at `from` parallelism, stops with a savepoint (no drain), moves the savepoint, and
/// resumes at `to` parallelism.
async fn rescale(from: usize, to: usize) {
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let first = job(config("rescale-1", from), &store, 200_000.0).start();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let savepoint = first
        .stop_with_savepoint(dir.path().join("sp"), StopMode::NoDrain)
        .await
        .expect("savepoint taken");
    let result = first.wait().await;
    assert!(
        matches!(result.status, JobStatus::Stopped { .. }),
        "{:?}",
        result.status
    );
    let before = store.records().len() as u64;
    assert!(
        before > 0 && before < COUNT,
        "stopped mid-way: {before} of {COUNT}"
    );
    // Savepoints are self-contained: they still restore after being moved.
    let moved = dir.path().join("moved");
    std::fs::rename(savepoint.to_path(), &moved).expect("move savepoint");
    let name = savepoint.to_path();
    let name = name
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    assert!(
        savepoint.to_path().starts_with(dir.path().join("sp")) && name.starts_with("savepoint-"),
        "each savepoint gets its own directory under the one asked for: {savepoint}"
    );
    let second = job(
        config("rescale-1", to).restore(RestoreFrom::Savepoint(moved)),
        &store,
        1_000_000.0,
    );
    let result = finish(second).await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert!(result.restored_from.is_some());
    assert_exactly_once(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescale_up_from_2_to_4_through_a_savepoint() {
    rescale(2, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescale_down_from_4_to_2_through_a_savepoint() {
    rescale(4, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_drain_finishes_the_input_and_commits_what_was_read() {
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let running = job(config("drain", 2), &store, 200_000.0).start();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let savepoint = running
        .stop_with_savepoint(dir.path().join("sp"), StopMode::Drain)
        .await
        .expect("final savepoint");
    let result = running.wait().await;
    assert!(
        matches!(result.status, JobStatus::Stopped { .. }),
        "{:?}",
        result.status
    );
    let got = store.records();
    assert!(
        !got.is_empty() && (got.len() as u64) < COUNT,
        "{} committed",
        got.len()
    );
    // What was read is committed, once: per split a contiguous prefix.
    let half = COUNT / 2;
    for (start, end) in [(0, half), (half, COUNT)] {
        let split: Vec<u64> = got
            .iter()
            .copied()
            .filter(|n| (start..end).contains(n))
            .collect();
        let expected: Vec<u64> = (start..start + split.len() as u64).collect();
        assert_eq!(split, expected, "split {start}..{end} is not a prefix");
    }
    // The drained sources are finished: resuming from the savepoint reads nothing more.
    let resumed = finish(job(
        config("drain", 2).restore(RestoreFrom::Savepoint(savepoint.to_path())),
        &store,
        1_000_000.0,
    ))
    .await;
    assert!(resumed.is_finished(), "{:?}", resumed.status);
    assert_eq!(store.records(), got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_checkpointing_a_bounded_job_commits_at_the_end() {
    let store = Arc::new(FakeTransactionStore::default());
    let result = finish(job(
        JobConfig::new("batch").parallelism(3),
        &store,
        10_000_000.0,
    ))
    .await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert_exactly_once(&store);
    assert_eq!(
        result.completed_checkpoints, 1,
        "only the final (FLIP-147) checkpoint"
    );
    assert_eq!(result.counter("numbers", "numRecordsOut"), COUNT);
    assert_eq!(result.counter("sink", "numRecordsIn"), COUNT);
}

fn checkpoint_dirs(dir: &Path) -> Vec<(u64, std::path::PathBuf)> {
    let mut found: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .expect("checkpoint dir")
        .filter_map(|e| {
            let e = e.ok()?;
            let id = e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok()?;
            Some((id, e.path()))
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_latest_checkpoint_is_reported_and_the_previous_one_used() {
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = config("corrupt-1", 2).storage(StorageConfig::Local(dir.path().to_path_buf()));
    if let Some(c) = first.checkpointing.as_mut() {
        c.retained = 3;
    }
    let result = finish(job(first, &store, 300_000.0)).await;
    assert!(result.is_finished(), "{:?}", result.status);
    let kept = checkpoint_dirs(dir.path());
    assert_eq!(kept.len(), 3, "three retained: {kept:?}");
    // Truncate the newest checkpoint's metadata.
    let (newest, newest_dir) = kept[2].clone();
    let metadata = newest_dir.join(METADATA_FILE_NAME);
    let bytes = std::fs::read(&metadata).expect("read metadata");
    std::fs::write(&metadata, &bytes[..bytes.len() / 2]).expect("truncate");

    let resumed = finish(job(
        config("corrupt-1", 2)
            .storage(StorageConfig::Local(dir.path().to_path_buf()))
            .restore(RestoreFrom::LatestCheckpoint),
        &Arc::new(FakeTransactionStore::default()),
        10_000_000.0,
    ))
    .await;
    assert!(resumed.is_finished(), "{:?}", resumed.status);
    assert_eq!(
        resumed.restored_from,
        Some(kept[1].0),
        "restored from the previous checkpoint"
    );
    assert_eq!(
        resumed.skipped_checkpoints.len(),
        1,
        "{:?}",
        resumed.skipped_checkpoints
    );
    let why = &resumed.skipped_checkpoints[0];
    assert!(
        why.contains(&format!("chk-{newest}")) && why.contains("corrupt or truncated"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_checkpoint_is_corrupt_the_job_refuses_to_start_empty() {
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let result = finish(job(
        config("all-corrupt-1", 1).storage(StorageConfig::Local(dir.path().to_path_buf())),
        &store,
        10_000_000.0,
    ))
    .await;
    assert!(result.is_finished(), "{:?}", result.status);
    for (_, d) in checkpoint_dirs(dir.path()) {
        std::fs::write(d.join(METADATA_FILE_NAME), b"WCKP garbage").expect("corrupt");
    }
    let result = finish(job(
        config("all-corrupt-1", 1)
            .storage(StorageConfig::Local(dir.path().to_path_buf()))
            .restore(RestoreFrom::LatestCheckpoint),
        &store,
        10_000_000.0,
    ))
    .await;
    match result.status {
        JobStatus::Failed(e) => {
            let message = e.to_string();
            assert!(
                message.contains("corrupt") || message.contains("readable"),
                "{message}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_savepoint_neither_fails_nor_restarts_the_job() {
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().expect("temp dir");
    // A file where the savepoint's directory should go: every savepoint under it fails.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"not a directory").expect("write");
    // No tolerable checkpoint failures: a savepoint counted as one would fail the job.
    let running = job(config("savepoint-fails", 2), &store, 200_000.0).start();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = running
        .savepoint(&blocked)
        .await
        .expect_err("the savepoint cannot be written");
    assert!(err.to_string().contains("blocked"), "{err}");
    let err = running
        .stop_with_savepoint(&blocked, StopMode::NoDrain)
        .await
        .expect_err("nor can the stop's");
    assert!(err.to_string().contains("blocked"), "{err}");
    let result = tokio::time::timeout(Duration::from_secs(60), running.wait())
        .await
        .expect("the job goes on and ends");
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(result.attempts, 1, "no restart: {:?}", result.failures);
    assert_exactly_once(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_whose_savepoint_fails_still_commits_everything_it_read() {
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"not a directory").expect("write");
    let running = job(config("drain-fails", 2), &store, 200_000.0).start();
    tokio::time::sleep(Duration::from_millis(100)).await;
    running
        .stop_with_savepoint(&blocked, StopMode::Drain)
        .await
        .expect_err("the drained savepoint cannot be written");
    let result = tokio::time::timeout(Duration::from_secs(60), running.wait())
        .await
        .expect("the job ends after the drain");
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(result.attempts, 1, "{:?}", result.failures);
    let got = store.records();
    let distinct: BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(distinct.len(), got.len(), "no duplicates");
    assert!(!got.is_empty(), "what was read is committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_that_do_not_fit_the_job_are_refused() {
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let first = job(config("fit", 2), &store, 200_000.0).start();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let savepoint = first
        .stop_with_savepoint(dir.path().join("sp"), StopMode::NoDrain)
        .await
        .expect("savepoint")
        .to_path();
    first.wait().await;
    // No checkpoint at all in an empty storage.
    let empty = tempfile::tempdir().expect("temp dir");
    let result = finish(job(
        config("fit", 2)
            .storage(StorageConfig::Local(empty.path().to_path_buf()))
            .restore(RestoreFrom::LatestCheckpoint),
        &store,
        1e6,
    ))
    .await;
    let JobStatus::Failed(e @ weir_runtime::RuntimeError::NoCheckpoint { .. }) = &result.status
    else {
        panic!("{:?}", result.status);
    };
    assert!(
        e.to_string().contains(&empty.path().display().to_string()),
        "{e}"
    );
    // Another job's savepoint; and a source whose uid changed.
    let result = finish(job(
        config("other", 2).restore(RestoreFrom::Savepoint(savepoint.clone())),
        &store,
        1e6,
    ))
    .await;
    assert!(
        matches!(
            &result.status,
            JobStatus::Failed(weir_runtime::RuntimeError::RestoreRefused { problems, .. })
                if matches!(problems.as_slice(), [weir_runtime::RestoreProblem::OtherJob { .. }])
        ),
        "{:?}",
        result.status
    );
    assert_eq!(result.attempts, 0, "refused before any attempt");
    let renamed = {
        let env = StreamEnvironment::new(
            config("fit", 2)
                .restore(RestoreFrom::Savepoint(savepoint.clone()))
                .non_restored_state(weir_runtime::NonRestoredState::Refuse),
        );
        env.from_source(
            DataGeneratorSource::new(|n| n, Some(COUNT), RateLimiterStrategy::no_op()),
            WatermarkStrategy::no_watermarks(),
            "numbers",
        )
        .uid("numbers-renamed")
        .sink_to_with(
            TwoPhaseSink {
                store: Arc::clone(&store),
            },
            &SinkOptions {
                uid: Some("sink".into()),
                committer_parallelism: None,
            },
        );
        env.build().expect("valid job")
    };
    let result = finish(renamed).await;
    let JobStatus::Failed(e) = &result.status else {
        panic!("{:?}", result.status);
    };
    assert!(
        e.to_string().contains(
            "state of `numbers` matches no operator of this job (closest: `numbers-renamed`"
        ),
        "{e}"
    );
}
