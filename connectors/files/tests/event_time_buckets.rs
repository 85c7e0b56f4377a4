//! Date-time buckets by event time: the typed file sink puts each record into the bucket of the
//! event time the runtime carries with it (`WriteContext::timestamp`).
//!
//! Only on API line 1.1's platform: the runtime of line 1.0 (`weir-runtime` 0.1) carries no
//! record timestamps, so there every record falls back to processing time.

#![cfg(weir_api_1_1)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::Order;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_connector_files::fs::{file_name, parent, FileSystem};
use weir_connector_files::sink::{DateTimeBucketAssigner, TimeSource};
use weir_connector_files::{FileSink, JsonLinesFormat, LocalFileSystem};
use weir_runtime::{CheckpointConfig, JobConfig, StreamEnvironment};

/// 2026-01-01T00:00:00Z in epoch milliseconds.
const NEW_YEAR: i64 = 1_767_225_600_000;
const DAY: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_time_buckets_follow_each_records_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/out", dir.path().display());
    let fs: Arc<dyn FileSystem> = Arc::new(LocalFileSystem::new());
    let sink = FileSink::row(
        Arc::clone(&fs),
        base.clone(),
        JsonLinesFormat::<Order>::new(),
    )
    .bucket_assigner(DateTimeBucketAssigner::new("%Y-%m-%d").time_source(TimeSource::EventTime))
    .build()
    .unwrap();
    let env = StreamEnvironment::new(
        JobConfig::new("event-time-buckets")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(50))),
    );
    env.from_source(
        DataGeneratorSource::new(Order::new, Some(600), RateLimiterStrategy::no_op()),
        // Order n happened on day n % 3 of the year.
        WatermarkStrategy::no_watermarks()
            .with_timestamp_assigner(|o: &Order, _| NEW_YEAR + (o.id % 3) as i64 * DAY),
        "orders",
    )
    .filter(|o| o.id % 5 != 0)
    .sink_to(sink);
    let result = env.build().unwrap().execute().await;
    assert!(result.is_finished(), "{:?}", result.status);

    let mut days: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for file in common::visible_files(&fs, &base).await.unwrap() {
        let bucket = file_name(parent(&file)).to_owned();
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let order: Order = serde_json::from_str(line).unwrap();
            days.entry(bucket.clone()).or_default().insert(order.id);
        }
    }
    let expected: BTreeMap<String, BTreeSet<u64>> = (0..3)
        .map(|day| {
            let ids = (0..600).filter(|id| id % 3 == day && id % 5 != 0).collect();
            (format!("2026-01-0{}", day + 1), ids)
        })
        .collect();
    assert_eq!(
        days, expected,
        "each order in the bucket of its event time's day"
    );
}
