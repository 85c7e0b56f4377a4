//! Type-erased sources and sinks (what pipeline files use) keep every guarantee: exactly-once
//! under injected failures, restore from a savepoint at another parallelism.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{FakeTransactionStore, TwoPhaseSink};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::erased::{BoxedSink, BoxedSource};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::fault::{FailOnce, FaultPoint, NoFaults};
use weir_runtime::restart::RestartStrategy;
use weir_runtime::{
    CheckpointConfig, JobConfig, JobStatus, RestoreFrom, SinkOptions, StopMode, StreamEnvironment,
};

const COUNT: u64 = 30_000;

fn job(config: JobConfig, store: &Arc<FakeTransactionStore>) -> weir_runtime::Job {
    let env = StreamEnvironment::new(config);
    let source = BoxedSource::new(DataGeneratorSource::new(
        |n| n,
        Some(COUNT),
        RateLimiterStrategy::per_second(COUNT as f64 * 8.0),
    ));
    let sink = BoxedSink::new(TwoPhaseSink {
        store: Arc::clone(store),
    });
    env.from_source(source, WatermarkStrategy::no_watermarks(), "erased")
        .uid("erased")
        .sink_to_with(
            sink,
            &SinkOptions {
                uid: Some("sink".into()),
                committer_parallelism: None,
            },
        );
    env.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_connectors_are_exactly_once_under_failures() {
    for (i, point) in [
        FaultPoint::BeforeSnapshot,
        FaultPoint::AfterSnapshotBeforeNotify,
        FaultPoint::BetweenPreCommitAndCommit,
        FaultPoint::DuringCommit,
        FaultPoint::AtEndOfInput,
    ]
    .into_iter()
    .enumerate()
    {
        let store = Arc::new(FakeTransactionStore::default());
        let fault = Arc::new(FailOnce::new(point, CheckpointId(2)));
        let config = JobConfig::new("erased")
            .parallelism(1 + i % 3)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(3)))
            .restart(RestartStrategy::FixedDelay {
                attempts: 2,
                delay: Duration::ZERO,
            })
            .faults(fault.clone());
        let result = job(config, &store).execute().await;
        assert!(result.is_finished(), "{point:?}: {:?}", result.status);
        assert!(fault.fired_at().is_some(), "{point:?} never fired");
        assert_eq!(store.records(), (0..COUNT).collect::<Vec<_>>(), "{point:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_connectors_restore_at_another_parallelism() {
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().unwrap();
    let config = |p: usize| {
        JobConfig::new("erased-rescale")
            .parallelism(p)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(10)))
            .faults(Arc::new(NoFaults))
    };
    let running = job(config(2), &store).start();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let savepoint = running
        .stop_with_savepoint(dir.path().join("sp"), StopMode::NoDrain)
        .await
        .unwrap();
    assert!(matches!(
        running.wait().await.status,
        JobStatus::Stopped { .. }
    ));
    let resumed = job(
        config(3).restore(RestoreFrom::Savepoint(savepoint.to_path())),
        &store,
    )
    .execute()
    .await;
    assert!(resumed.is_finished(), "{:?}", resumed.status);
    assert_eq!(store.records(), (0..COUNT).collect::<Vec<_>>());
}
