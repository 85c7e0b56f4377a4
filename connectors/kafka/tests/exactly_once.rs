//! Exactly-once beyond the suite: lingering transactions of a crashed job are aborted at start,
//! and a job process killed between pre-commit and commit is committed exactly once by the
//! restarted job (Arroyo #224), which resumes the prepared transaction over the wire.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Kafka;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_connector_kafka::sink::RecordSerializer;
use weir_connector_kafka::{DeliveryGuarantee, KafkaSink};
use weir_runtime::fault::{FaultInjector, FaultPoint, FaultSite};
use weir_runtime::{
    CheckpointConfig, JobConfig, RestoreFrom, SinkOptions, StorageConfig, StreamEnvironment,
};

fn sink(bootstrap: &str, topic: &str, prefix: &str) -> KafkaSink<u64> {
    KafkaSink::builder()
        .bootstrap_servers(bootstrap)
        .topic(topic)
        .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
        .transactional_id_prefix(prefix)
        .serializer(RecordSerializer::<u64>::new(|n, out| {
            out.extend_from_slice(n.to_string().as_bytes());
            Ok(())
        }))
        .build()
        .unwrap()
}

fn numbers(kafka: &Kafka, topic: &str) -> Vec<u64> {
    let mut got: Vec<u64> = kafka
        .read_committed(topic)
        .into_iter()
        .map(|(_, _, v)| String::from_utf8(v).unwrap().parse().unwrap())
        .collect();
    got.sort_unstable();
    got
}

fn job(
    bootstrap: &str,
    topic: &str,
    prefix: &str,
    count: u64,
    config: JobConfig,
) -> weir_runtime::Job {
    let env = StreamEnvironment::new(config);
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(count), RateLimiterStrategy::per_second(4000.0)),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .uid("numbers")
    .sink_to_with(
        sink(bootstrap, topic, prefix),
        &SinkOptions {
            uid: Some("kafka".into()),
            committer_parallelism: None,
        },
    );
    env.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lingering_transactions_of_a_crashed_job_are_aborted_at_start() {
    let kafka = Kafka::start();
    kafka.create_topic("out", 1).await;
    // A "crashed" writer of an earlier run: an open transaction with records, never ended.
    let crashed: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("transactional.id", "job-a-0-7")
        .create()
        .unwrap();
    crashed.init_transactions(Duration::from_secs(10)).unwrap();
    crashed.begin_transaction().unwrap();
    for _ in 0..10 {
        crashed
            .send(BaseRecord::<(), str>::to("out").payload("999999"))
            .map_err(|e| e.0)
            .unwrap();
    }
    crashed.flush(Duration::from_secs(10)).unwrap();
    std::mem::forget(crashed); // crash: the transaction stays open

    let config =
        JobConfig::new("eo").checkpointing(CheckpointConfig::every(Duration::from_millis(50)));
    let result = job(&kafka.bootstrap(), "out", "job-a", 500, config)
        .execute()
        .await;
    assert!(result.is_finished(), "{:?}", result.status);
    // read_committed reaches the end only if the lingering transaction was aborted.
    assert_eq!(numbers(&kafka, "out"), (0..500).collect::<Vec<u64>>());
}

/// Blocks forever at the first commit after checkpoint 3 of attempt 0, after telling the parent.
struct HangBeforeCommit {
    marker: std::path::PathBuf,
}

impl FaultInjector for HangBeforeCommit {
    fn check(&self, point: FaultPoint, site: &FaultSite<'_>) -> Result<(), String> {
        if point == FaultPoint::BetweenPreCommitAndCommit
            && site.attempt == 0
            && site.checkpoint_id.0 >= 3
            && !site.checkpoint_id.is_end_of_input()
        {
            std::fs::write(&self.marker, site.checkpoint_id.0.to_string()).unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        Ok(())
    }
}

const CHILD_ENV: &str = "WEIR_KAFKA_KILL_CHILD";
const COUNT: u64 = 3000;

/// The libtest name of test `name` of this file: its module path in the test binary (the
/// files of `tests/` are modules of `tests/integration.rs`).
fn test_path(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
    }
}

/// The child part of the kill test: runs the job until the fault point hangs it.
#[test]
fn kill_child() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return; // only runs as the child of the kill test
    };
    let mut parts = args.split('|');
    let (bootstrap, dir) = (parts.next().unwrap(), parts.next().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = JobConfig::new("eo")
            .checkpointing(CheckpointConfig::every(Duration::from_millis(50)))
            .storage(StorageConfig::Local(format!("{dir}/checkpoints").into()))
            .faults(Arc::new(HangBeforeCommit {
                marker: format!("{dir}/marker").into(),
            }));
        let _ = job(bootstrap, "out", "job-k", COUNT, config)
            .execute()
            .await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_killed_between_pre_commit_and_commit_is_committed_exactly_once_after_restart() {
    let kafka = Kafka::start();
    kafka.create_topic("out", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            &test_path("kill_child"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{}|{d}", kafka.bootstrap()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = dir.path().join("marker");
    let started = Instant::now();
    while !marker.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child never reached the commit"
        );
        assert!(child.try_wait().unwrap().is_none(), "the child ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL: the prepared transaction's producer dies with the process
    child.wait().unwrap();
    let checkpoint: u64 = std::fs::read_to_string(&marker).unwrap().parse().unwrap();

    let config = JobConfig::new("eo")
        .checkpointing(CheckpointConfig::every(Duration::from_millis(50)))
        .storage(StorageConfig::Local(dir.path().join("checkpoints")))
        .restore(RestoreFrom::LatestCheckpoint);
    let result = job(&kafka.bootstrap(), "out", "job-k", COUNT, config)
        .execute()
        .await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert!(
        result.counter("kafka/committer", "resumedTransactionCommits") >= 1
            || result.counter("kafka", "resumedTransactionCommits") >= 1,
        "the restarted job should resume the killed job's prepared transaction of checkpoint {checkpoint}: {:?}",
        result.metrics.keys().filter(|k| k.contains("resumed")).collect::<Vec<_>>()
    );
    assert_eq!(numbers(&kafka, "out"), (0..COUNT).collect::<Vec<u64>>());
}
