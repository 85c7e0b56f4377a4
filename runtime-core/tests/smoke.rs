//! A bounded job from datagen through a map into the two-phase-committing test sink.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{FakeTransactionStore, TwoPhaseSink};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::{CheckpointConfig, JobConfig, StreamEnvironment};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_job_commits_every_record_once_and_finishes() {
    common::init_logs();
    let store = Arc::new(FakeTransactionStore::default());
    let env = StreamEnvironment::new(
        JobConfig::new("smoke")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(20))),
    );
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(20_000), RateLimiterStrategy::no_op()),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .map(|n| n * 2)
    .sink_to(TwoPhaseSink {
        store: Arc::clone(&store),
    });
    let job = env.build().expect("valid job");
    let result = tokio::time::timeout(Duration::from_secs(5), job.execute())
        .await
        .expect("job finishes in time");
    assert!(result.is_finished(), "{:?}", result.status);
    let expected: Vec<u64> = (0..20_000).map(|n| n * 2).collect();
    assert_eq!(store.records(), expected);
    assert_eq!(result.attempts, 1);
}
