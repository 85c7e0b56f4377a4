//! Small-file compaction (FLIP-191): many small files become at most one file per bucket per
//! trigger, and turning compaction off across a savepoint loses nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use common::Order;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_connector_files::fs::FileSystem;
use weir_connector_files::fs::{file_name, parent};
use weir_connector_files::sink::parse_label;
use weir_connector_files::sink::RollingPolicy;
use weir_connector_files::sink::{FileCompactStrategy, FileCompactor};
use weir_connector_files::{
    FileSink, FileSinkBuilder, JsonLinesFormat, LocalFileSystem, ParquetFormat, SerdeRecords,
};
use weir_runtime::{
    CheckpointConfig, JobConfig, RestoreFrom, SinkOptions, StopMode, StreamEnvironment,
};

fn local() -> Arc<dyn FileSystem> {
    Arc::new(LocalFileSystem::new())
}

fn json_sink(base: &str) -> FileSinkBuilder<Order> {
    FileSink::row(local(), base.to_owned(), JsonLinesFormat::<Order>::new())
        .bucket_assigner(|o: &Order, _: &_| format!("b{}", o.id % 3))
        // Tiny part files: many per checkpoint and bucket.
        .rolling_policy(RollingPolicy::default_policy().with_part_size(300))
        .suffix(".jsonl")
}

/// Files per bucket directory, and every record read back.
async fn read_back(base: &str) -> (BTreeMap<String, Vec<String>>, Vec<Order>) {
    let files = common::visible_files(&local(), base).await.unwrap();
    let mut per_bucket: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut records = Vec::new();
    for f in files {
        per_bucket
            .entry(parent(&f).to_owned())
            .or_default()
            .push(file_name(&f).to_owned());
        let bytes = std::fs::read(&f).unwrap();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            records.push(serde_json::from_slice::<Order>(line).unwrap());
        }
    }
    records.sort_by_key(|o| o.id);
    (per_bucket, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_files_become_one_file_per_bucket_per_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<Order> = (0..6_000).map(Order::new).collect();
    // Without compaction: many small files.
    let plain = format!("{}/plain", dir.path().display());
    common::write_all(
        data.clone(),
        json_sink(&plain).build().unwrap(),
        2,
        Duration::from_millis(50),
        Some(30_000.0),
    )
    .await;
    let (plain_files, records) = read_back(&plain).await;
    assert_eq!(records, data);
    let plain_count: usize = plain_files.values().map(Vec::len).sum();
    // With compaction every 2 checkpoints.
    let compacted = format!("{}/compacted", dir.path().display());
    let sink = json_sink(&compacted)
        .enable_compaction(
            FileCompactStrategy::builder()
                .enable_compaction_on_checkpoint(2)
                .num_compact_threads(2)
                .build()
                .unwrap(),
            FileCompactor::Concat,
        )
        .build()
        .unwrap();
    let checkpoints = common::write_all(
        data.clone(),
        sink,
        2,
        Duration::from_millis(50),
        Some(30_000.0),
    )
    .await;
    let (files, records) = read_back(&compacted).await;
    assert_eq!(records, data, "compaction lost or duplicated records");
    // Triggers: every 2nd checkpoint, plus end of input.
    let triggers = checkpoints / 2 + 1;
    for (bucket, names) in &files {
        assert!(
            names.len() as u64 <= triggers,
            "{bucket}: {} files for {triggers} triggers",
            names.len()
        );
        assert!(
            names.iter().all(|n| n.starts_with("compacted-part-")),
            "{names:?}"
        );
    }
    let count: usize = files.values().map(Vec::len).sum();
    assert!(
        count * 3 <= plain_count,
        "{count} compacted files vs {plain_count} without compaction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_files_compact_record_wise_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/pq", dir.path().display());
    let data: Vec<Order> = (0..8_000).map(Order::new).collect();
    let records = SerdeRecords::<Order>::traced().unwrap().batch_size(256);
    let sink = FileSink::bulk(
        local(),
        base.clone(),
        ParquetFormat::new(records.to_batches()),
    )
    .bucket_assigner(|o: &Order, _: &_| format!("b{}", o.id % 2))
    .suffix(".parquet")
    .enable_compaction(
        FileCompactStrategy::builder()
            .size_threshold(64 * 1024)
            .build()
            .unwrap(),
        FileCompactor::RecordWise,
    )
    .build()
    .unwrap();
    common::write_all(
        data.clone(),
        sink,
        2,
        Duration::from_millis(20),
        Some(40_000.0),
    )
    .await;
    let files = common::visible_files(&local(), &base).await.unwrap();
    let mut got = Vec::new();
    for f in &files {
        got.extend(common::parse_parquet_orders(bytes::Bytes::from(
            std::fs::read(f).unwrap(),
        )));
    }
    got.sort_by_key(|o| o.id);
    assert_eq!(got, data);
    assert!(
        files.iter().all(|f| file_name(f).starts_with("compacted-")),
        "{files:?}"
    );
}

fn job(
    base: &str,
    compaction: bool,
    restore: RestoreFrom,
    data: Arc<Vec<Order>>,
    rate: f64,
) -> weir_runtime::Job {
    let n = data.len() as u64;
    let feeder = DataGeneratorSource::new(
        move |i| data.get(i as usize).cloned(),
        Some(n),
        RateLimiterStrategy::per_second(rate),
    );
    let env = StreamEnvironment::new(
        JobConfig::new("compaction-savepoint")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(20)))
            .restore(restore),
    );
    let sink = if compaction {
        // Triggers that never fire before the stop: everything waits in the coordinator.
        json_sink(base).enable_compaction(
            FileCompactStrategy::builder()
                .enable_compaction_on_checkpoint(1_000_000)
                .size_threshold(1 << 40)
                .build()
                .unwrap(),
            FileCompactor::Concat,
        )
    } else {
        json_sink(base).disable_compaction()
    };
    env.from_source(feeder, WatermarkStrategy::no_watermarks(), "feeder")
        .uid("feeder")
        .flat_map(|r: Option<Order>| r)
        .sink_to_with(
            sink.build().unwrap(),
            &SinkOptions {
                uid: Some("files".into()),
                committer_parallelism: NonZeroUsize::new(2),
            },
        );
    env.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_compaction_across_a_savepoint_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/out", dir.path().display());
    let data: Arc<Vec<Order>> = Arc::new((0..4_000).map(Order::new).collect());
    let running = job(
        &base,
        true,
        RestoreFrom::Nothing,
        Arc::clone(&data),
        // Slow enough that the stop comes long before the input ends (the end of input would
        // compact and publish everything).
        2_000.0,
    )
    .start();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let savepoint = running
        .stop_with_savepoint(dir.path().join("savepoint"), StopMode::NoDrain)
        .await
        .unwrap()
        .to_path();
    let first = running.wait().await;
    assert!(
        first.completed_checkpoints >= 1,
        "{}",
        first.completed_checkpoints
    );
    // Part files are held by the coordinator: hidden, not yet published.
    let listed = local().list_files(&base).await.unwrap();
    assert!(
        listed.iter().any(|f| file_name(&f.path).starts_with('.')),
        "the first run left hidden part files for the coordinator ({} files)",
        listed.len()
    );
    let second = job(
        &base,
        false,
        RestoreFrom::Savepoint(savepoint),
        data.clone(),
        1e9,
    )
    .execute()
    .await;
    assert!(second.is_finished(), "{:?}", second.status);
    let (_, records) = read_back(&base).await;
    assert_eq!(records.len(), data.len(), "records lost or duplicated");
    assert_eq!(records, *data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_requests_spread_over_every_compactor_subtask() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/spread", dir.path().display());
    let data: Vec<Order> = (0..6_000).map(Order::new).collect();
    // One coordinator fires a request per bucket (3 buckets) at every checkpoint; they are
    // routed round-robin to 3 compactor subtasks.
    let sink = json_sink(&base)
        .enable_compaction(
            FileCompactStrategy::builder()
                .enable_compaction_on_checkpoint(1)
                .parallelism(3)
                .build()
                .unwrap(),
            FileCompactor::Concat,
        )
        .build()
        .unwrap();
    common::write_all(
        data.clone(),
        sink,
        2,
        Duration::from_millis(50),
        Some(30_000.0),
    )
    .await;
    let (files, records) = read_back(&base).await;
    assert_eq!(records, data, "compaction lost or duplicated records");
    let names: Vec<&String> = files.values().flatten().collect();
    let mut compactors = std::collections::BTreeSet::new();
    for name in &names {
        let rest = name
            .strip_prefix("compacted-part-")
            .unwrap_or_else(|| panic!("not a compacted file: {name}"));
        let id = uuid::Uuid::parse_str(rest.get(..36).unwrap()).unwrap();
        compactors.insert(parse_label(&id).unwrap().subtask);
    }
    assert!(
        compactors.len() > 1,
        "only compactor subtasks {compactors:?} wrote compacted files: {names:?}"
    );
}
