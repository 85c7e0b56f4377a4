//! Checkpoints of a Weir job in an S3 bucket: a job fails after a checkpoint, restarts from the
//! checkpoint read back from S3, and its file sink output is exact.

#![cfg(feature = "checkpoint-storage")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::server;

use std::sync::Arc;
use std::time::Duration;

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_connector_files::fs::FileSystem;
use weir_connector_files::sink::BasePathBucketAssigner;
use weir_connector_files::{FileSink, JsonLinesFormat};
use weir_connector_s3::S3CheckpointStorage;
use weir_runtime::fault::{FailOnce, FaultInjector, FaultPoint};
use weir_runtime::restart::RestartStrategy;
use weir_runtime::storage::CheckpointStorage;
use weir_runtime::{CheckpointConfig, JobConfig, StorageConfig, StreamEnvironment};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_restores_from_checkpoints_in_s3() {
    let s = server::server();
    let client = server::options(&s).client().unwrap();
    let storage = Arc::new(S3CheckpointStorage::new(
        client,
        server::BUCKET,
        "checkpoints/job-1",
    ));
    let fs = Arc::new(server::filesystem(&s));
    let sink = FileSink::row(
        fs.clone(),
        "checkpointed/out",
        JsonLinesFormat::<u64>::new(),
    )
    .bucket_assigner(BasePathBucketAssigner)
    .build()
    .unwrap();
    let fault = Arc::new(FailOnce::new(
        FaultPoint::AfterSnapshotBeforeNotify,
        CheckpointId(3),
    ));
    let env = StreamEnvironment::new(
        JobConfig::new("s3-checkpoints")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(20)))
            .storage(StorageConfig::Custom(storage.clone()))
            .restart(RestartStrategy::FixedDelay {
                attempts: 2,
                delay: Duration::ZERO,
            })
            .faults(fault.clone() as Arc<dyn FaultInjector>),
    );
    env.from_source(
        DataGeneratorSource::new(
            |n| n,
            Some(20_000),
            RateLimiterStrategy::per_second(40_000.0),
        ),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .sink_to(sink);
    let result = env.build().unwrap().execute().await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(result.attempts, 2, "the injected failure restarted the job");
    assert!(
        result.restored_from.is_some(),
        "restored from a checkpoint in S3"
    );
    let listed = storage.list_checkpoints().await.unwrap();
    assert!(!listed.is_empty());
    let (_, latest) = listed.last().unwrap();
    assert!(latest
        .as_str()
        .starts_with("s3://weir-tests/checkpoints/job-1/chk-"));
    let metadata = storage.read(latest).await.unwrap();
    assert_eq!(metadata.job_name, "s3-checkpoints");
    // Output: every number exactly once.
    let mut got = Vec::new();
    for f in fs.list_files("checkpointed/out").await.unwrap() {
        let bytes = fs.read_all(&f.path).await.unwrap();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            got.push(serde_json::from_slice::<u64>(line).unwrap());
        }
    }
    got.sort_unstable();
    assert_eq!(got, (0..20_000).collect::<Vec<u64>>());
    for (_, location) in listed {
        storage.discard(&location).await.unwrap();
    }
    assert!(storage.list_checkpoints().await.unwrap().is_empty());
}
