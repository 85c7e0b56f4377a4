//! Recovery of lingering transactions does not wait for records (issue 13, item 6): a writer
//! that receives no record at all — an idle or filtered input, a source still opening its split
//! after a restore — must still abort what an earlier run left open, before its first
//! checkpoint completes. Before the fix, recovery ran only when the first record reached a
//! writer; such a transaction then stayed open for good on noida-db (which never times
//! transactions out), blocking every read_committed reader.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::Kafka;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_connector_kafka::sink::RecordSerializer;
use weir_connector_kafka::{DeliveryGuarantee, KafkaSink};
use weir_runtime::{CheckpointConfig, JobConfig, SinkOptions, StreamEnvironment};

/// The high watermark of partition 0 of `topic` for a consumer of `isolation` (for
/// read_committed: the last stable offset, held back by an open transaction).
fn high_watermark(bootstrap: &str, topic: &str, isolation: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap()
        .1
}

/// Leaves transaction `id` open with a few records in `topic`, as a killed writer would.
fn crashed_transaction(bootstrap: &str, topic: &str, id: &str) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(10)).unwrap();
    producer.begin_transaction().unwrap();
    for _ in 0..5 {
        producer
            .send(BaseRecord::<(), str>::to(topic).payload("lingering"))
            .map_err(|e| e.0)
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    std::mem::forget(producer); // killed: the transaction stays open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_that_get_no_record_still_abort_lingering_transactions() {
    let kafka = Kafka::start();
    let bootstrap = kafka.bootstrap();
    kafka.create_topic("out", 1).await;
    // Open transactions of both writer subtasks of an earlier run of the job, and of a subtask
    // of a run with a larger parallelism (subtask 3 of 4: writer 1 of 2 takes its ids over).
    crashed_transaction(&bootstrap, "out", "quiet-job-0-3");
    crashed_transaction(&bootstrap, "out", "quiet-job-1-4");
    crashed_transaction(&bootstrap, "out", "quiet-job-3-2");
    assert!(
        high_watermark(&bootstrap, "out", "read_committed")
            < high_watermark(&bootstrap, "out", "read_uncommitted"),
        "the crashed transactions hold the last stable offset back"
    );

    // The job runs ~1 s with checkpoints every 50 ms, and its writers never get a record.
    let env = StreamEnvironment::new(
        JobConfig::new("quiet")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(50))),
    );
    let sink = KafkaSink::builder()
        .bootstrap_servers(&bootstrap)
        .topic("out")
        .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
        .transactional_id_prefix("quiet-job")
        .serializer(RecordSerializer::<u64>::new(|n, out| {
            out.extend_from_slice(n.to_string().as_bytes());
            Ok(())
        }))
        .build()
        .unwrap();
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(400), RateLimiterStrategy::per_second(400.0)),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .uid("numbers")
    .filter(|_: &u64| false)
    .sink_to_with(
        sink,
        &SinkOptions {
            uid: Some("kafka".into()),
            committer_parallelism: None,
        },
    );
    let result = env.build().unwrap().execute().await;
    assert!(result.is_finished(), "{:?}", result.status);

    assert_eq!(
        high_watermark(&bootstrap, "out", "read_committed"),
        high_watermark(&bootstrap, "out", "read_uncommitted"),
        "a transaction is still open: the writers did not abort the lingering ones"
    );
    assert!(kafka.read_committed("out").is_empty());
}
