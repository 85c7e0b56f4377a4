//! KafkaSource behaviour beyond the testkit suite, against the real broker: partition and topic
//! discovery (new partitions from the earliest offset), every bounded mode, starting offsets,
//! the FLIP-208 record evaluator, headers seen by deserializers, the malformed-record policies,
//! and offsets committed to the consumer group when checkpoints complete.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Kafka;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use weir_connector_api::error::Result;
use weir_connector_api::metrics::NUM_RECORDS_IN_ERRORS;
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_kafka::source::{IgnoreHeaders, KafkaRecord, StartingOffsets, StoppingOffsets};
use weir_connector_kafka::{KafkaSource, MalformedRecordPolicy};
use weir_runtime::{CheckpointConfig, JobConfig, JobResult, StreamEnvironment};

/// A fake sink (in memory) that keeps every record it is given.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

struct CollectWriter(Arc<Mutex<Vec<String>>>);

#[async_trait::async_trait]
impl SinkWriter<String> for CollectWriter {
    fn write(&mut self, r: String, _: &WriteContext) -> Result<()> {
        self.0.lock().unwrap().push(r);
        Ok(())
    }
    async fn flush(&mut self, _: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl Sink<String> for Collect {
    type Writer = CollectWriter;
    fn create_writer(&self, _: &dyn InitContext) -> Result<CollectWriter> {
        Ok(CollectWriter(Arc::clone(&self.0)))
    }
}

impl Collect {
    fn sorted(&self) -> Vec<String> {
        let mut v = self.0.lock().unwrap().clone();
        v.sort();
        v
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// `<topic>/<partition>/<value>`: where each record came from.
fn tagged(r: &KafkaRecord<'_>) -> std::result::Result<String, String> {
    let v = std::str::from_utf8(r.value().unwrap_or_default()).map_err(|e| e.to_string())?;
    if v.starts_with("bad") {
        return Err(format!("`{v}` is not a record"));
    }
    Ok(format!("{}/{}/{v}", r.topic(), r.partition()))
}

fn values(prefix: &str, range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range
        .map(|i| format!("{prefix}{i:03}").into_bytes())
        .collect()
}

fn expected(topic: &str, partition: i32, prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    range
        .map(|i| format!("{topic}/{partition}/{prefix}{i:03}"))
        .collect()
}

fn builder(kafka: &Kafka) -> weir_connector_kafka::source::KafkaSourceBuilder<String> {
    KafkaSource::builder()
        .bootstrap_servers(kafka.bootstrap())
        .deserializer(tagged)
        .starting_offsets(StartingOffsets::Earliest)
}

async fn run(source: KafkaSource<String>, config: JobConfig) -> (JobResult, Collect) {
    let out = Collect::default();
    let env = StreamEnvironment::new(config);
    env.from_source(source, WatermarkStrategy::no_watermarks(), "kafka")
        .uid("kafka")
        .sink_to(out.clone());
    let result = env.build().unwrap().start().wait().await;
    (result, out)
}

async fn run_bounded(source: KafkaSource<String>) -> Vec<String> {
    let (result, out) = run(source, JobConfig::new("bounded").parallelism(2)).await;
    assert!(result.is_finished(), "{:?}", result.status);
    out.sorted()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_new_partitions_and_topics_and_reads_them_from_the_start() {
    let kafka = Kafka::start();
    kafka.create_topic("disc-a", 1).await;
    kafka.produce("disc-a", 0, &values("a", 0..10));
    let source = builder(&kafka)
        .topic_pattern("disc-.*")
        .starting_offsets(StartingOffsets::Latest) // new partitions still start at the earliest
        .discovery_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let out = Collect::default();
    let env = StreamEnvironment::new(
        JobConfig::new("discovery")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(100))),
    );
    env.from_source(source, WatermarkStrategy::no_watermarks(), "kafka")
        .sink_to(out.clone());
    let handle = env.build().unwrap().start();
    // Give the first discovery time to resolve `latest` for disc-a/0.
    tokio::time::sleep(Duration::from_millis(800)).await;
    kafka.produce("disc-a", 0, &values("a", 10..15));
    // Written before the source sees them: a new partition and a new topic.
    kafka.add_partitions("disc-a", 2).await;
    kafka.produce("disc-a", 1, &values("b", 0..7));
    kafka.create_topic("disc-new", 2).await;
    kafka.produce("disc-new", 1, &values("c", 0..5));
    let mut want = expected("disc-a", 0, "a", 10..15);
    want.extend(expected("disc-a", 1, "b", 0..7));
    want.extend(expected("disc-new", 1, "c", 0..5));
    want.sort();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < want.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little longer, so duplicates would show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.cancel();
    handle.wait().await;
    // A discovery request sent just before the cancel runs on a blocking thread until the broker
    // answers; stopping the broker first would leave it waiting for its 30 s timeout, and the
    // test's runtime waits for blocking threads when it shuts down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(out.sorted(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_modes_stop_where_they_say() {
    let kafka = Kafka::start();
    kafka.create_topic("bnd", 2).await;
    // Recent timestamps: the broker's retention deletes records older than a week.
    let base = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
        - 60_000;
    let stamped = |p: &str| -> Vec<(Vec<u8>, i64)> {
        (0..20u32)
            .map(|i| {
                (
                    format!("{p}{i:03}").into_bytes(),
                    base + i64::from(i) * 1000,
                )
            })
            .collect()
    };
    kafka.produce_with_timestamps("bnd", 0, &stamped("x"));
    kafka.produce_with_timestamps("bnd", 1, &stamped("y"));

    // Latest at start: everything written so far.
    let all = run_bounded(
        builder(&kafka)
            .topics(["bnd"])
            .bounded(StoppingOffsets::Latest)
            .build()
            .unwrap(),
    )
    .await;
    let mut want = expected("bnd", 0, "x", 0..20);
    want.extend(expected("bnd", 1, "y", 0..20));
    assert_eq!(all, want);

    // Timestamp: records before it.
    let before = run_bounded(
        builder(&kafka)
            .topics(["bnd"])
            .bounded(StoppingOffsets::Timestamp(base + 12 * 1000))
            .build()
            .unwrap(),
    )
    .await;
    let mut want = expected("bnd", 0, "x", 0..12);
    want.extend(expected("bnd", 1, "y", 0..12));
    assert_eq!(before, want);

    // Specific offsets: partition 0 up to offset 5; partition 1 (unlisted) to its latest.
    let specific = run_bounded(
        builder(&kafka)
            .topics(["bnd"])
            .bounded(StoppingOffsets::Specific(BTreeMap::from([(
                ("bnd".to_owned(), 0),
                5,
            )])))
            .build()
            .unwrap(),
    )
    .await;
    let mut want = expected("bnd", 0, "x", 0..5);
    want.extend(expected("bnd", 1, "y", 0..20));
    assert_eq!(specific, want);

    // Starting at a timestamp and at specific offsets.
    let from = run_bounded(
        builder(&kafka)
            .topics(["bnd"])
            .starting_offsets(StartingOffsets::Timestamp(base + 15 * 1000))
            .bounded(StoppingOffsets::Latest)
            .build()
            .unwrap(),
    )
    .await;
    let mut want = expected("bnd", 0, "x", 15..20);
    want.extend(expected("bnd", 1, "y", 15..20));
    assert_eq!(from, want);
    let from = run_bounded(
        builder(&kafka)
            .topics(["bnd"])
            .starting_offsets(StartingOffsets::Specific(BTreeMap::from([(
                ("bnd".to_owned(), 1),
                18,
            )])))
            .bounded(StoppingOffsets::Latest)
            .build()
            .unwrap(),
    )
    .await;
    let mut want = expected("bnd", 0, "x", 0..20); // unlisted: from the earliest
    want.extend(expected("bnd", 1, "y", 18..20));
    assert_eq!(from, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_evaluator_ends_a_partition_without_emitting_the_marker() {
    let kafka = Kafka::start();
    kafka.create_topic("eval", 2).await;
    let mut p0 = values("r", 0..5);
    p0.push(b"END".to_vec());
    p0.extend(values("r", 5..10));
    kafka.produce("eval", 0, &p0);
    kafka.produce("eval", 1, &values("s", 0..4));
    // Unbounded, yet the job finishes: partition 0 ends at its marker; partition 1 ends at
    // its own marker, written below.
    kafka.produce("eval", 1, &[b"END".to_vec()]);
    let source = builder(&kafka)
        .topics(["eval"])
        .discovery_interval(Duration::ZERO)
        .record_evaluator(|r: &String| r.ends_with("/END"))
        .build()
        .unwrap();
    let (result, out) = run(source, JobConfig::new("eval").parallelism(2)).await;
    assert!(result.is_finished(), "{:?}", result.status);
    let mut want = expected("eval", 0, "r", 0..5);
    want.extend(expected("eval", 1, "s", 0..4));
    assert_eq!(out.sorted(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deserializers_see_each_records_headers() {
    let kafka = Kafka::start();
    kafka.create_topic("hdr", 1).await;
    kafka.produce_with_headers(
        "hdr",
        0,
        &[
            (
                b"a".to_vec(),
                vec![("tenant", &b"t1"[..]), ("trace", &b"x"[..])],
            ),
            (b"b".to_vec(), vec![]),
            (b"c".to_vec(), vec![("tenant", &b"t2"[..])]),
        ],
    );
    let source = KafkaSource::builder()
        .bootstrap_servers(kafka.bootstrap())
        .topics(["hdr"])
        .starting_offsets(StartingOffsets::Earliest)
        .bounded(StoppingOffsets::Latest)
        .deserializer(|r: &KafkaRecord<'_>| {
            let value = String::from_utf8_lossy(r.value().unwrap_or_default()).into_owned();
            let names: Vec<&str> = r.headers().map(|(name, _)| name).collect();
            let tenant = r.header("tenant").map_or_else(
                || "-".to_owned(),
                |t| String::from_utf8_lossy(t).into_owned(),
            );
            Ok(format!("{value} {tenant} [{}]", names.join(",")))
        })
        .build()
        .unwrap();
    assert_eq!(
        run_bounded(source).await,
        ["a t1 [tenant,trace]", "b - []", "c t2 [tenant]"]
    );
    // A deserializer that declares it reads no headers is given none (they are not copied).
    let source = KafkaSource::builder()
        .bootstrap_servers(kafka.bootstrap())
        .topics(["hdr"])
        .starting_offsets(StartingOffsets::Earliest)
        .bounded(StoppingOffsets::Latest)
        .deserializer(IgnoreHeaders(|r: &KafkaRecord<'_>| {
            let value = String::from_utf8_lossy(r.value().unwrap_or_default()).into_owned();
            Ok(format!("{value} {}", r.headers().count()))
        }))
        .build()
        .unwrap();
    assert_eq!(run_bounded(source).await, ["a 0", "b 0", "c 0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reader_tells_apart_topics_with_the_same_partition_numbers() {
    // One reader, two topics with partitions 0 and 1 each, bounded. The fetcher matches records
    // to splits by partition alone only while all of a reader's splits share a topic, so here it
    // must compare topics. And rdkafka reports an end of partition by number only: this test
    // caught the reader finishing `same-a/1`, unread, at the end of `same-b/1` (a whole
    // partition lost).
    let kafka = Kafka::start();
    kafka.create_topic("same-a", 2).await;
    kafka.create_topic("same-b", 2).await;
    for round in 0..4_u32 {
        let r = round * 50..round * 50 + 50;
        kafka.produce("same-a", 0, &values("a", r.clone()));
        kafka.produce("same-b", 0, &values("b", r.clone()));
        kafka.produce("same-a", 1, &values("c", r.clone()));
        kafka.produce("same-b", 1, &values("d", r));
    }
    let source = builder(&kafka)
        .topics(["same-a", "same-b"])
        .bounded(StoppingOffsets::Latest)
        .max_batch(64)
        .build()
        .unwrap();
    let (result, out) = run(source, JobConfig::new("same-partitions").parallelism(1)).await;
    assert!(result.is_finished(), "{:?}", result.status);
    let mut want = expected("same-a", 0, "a", 0..200);
    want.extend(expected("same-b", 0, "b", 0..200));
    want.extend(expected("same-a", 1, "c", 0..200));
    want.extend(expected("same-b", 1, "d", 0..200));
    want.sort();
    let got = out.sorted();
    let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
    let extra: Vec<&String> = got.iter().filter(|g| !want.contains(g)).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && got.len() == want.len(),
        "{} records, {} expected; missing {missing:?}; not expected {extra:?}",
        got.len(),
        want.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_fail_the_job_with_their_position_or_are_skipped_and_counted() {
    let kafka = Kafka::start();
    kafka.create_topic("mal", 1).await;
    let mut data = values("ok", 0..3);
    data.push(b"bad-one".to_vec());
    data.extend(values("ok", 3..6));
    kafka.produce("mal", 0, &data);

    let failing = builder(&kafka)
        .topics(["mal"])
        .bounded(StoppingOffsets::Latest)
        .build()
        .unwrap();
    let (result, _) = run(failing, JobConfig::new("mal-fail")).await;
    assert!(!result.is_finished());
    let failure = format!("{:?}", result.status);
    assert!(
        failure.contains("mal-0") && failure.contains("offset 3") && failure.contains("bad-one"),
        "{failure}"
    );

    let skipping = builder(&kafka)
        .topics(["mal"])
        .bounded(StoppingOffsets::Latest)
        .malformed_records(MalformedRecordPolicy::Skip)
        .build()
        .unwrap();
    let (result, out) = run(skipping, JobConfig::new("mal-skip")).await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(out.sorted(), expected("mal", 0, "ok", 0..6));
    assert_eq!(result.counter("kafka", NUM_RECORDS_IN_ERRORS), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_checkpoints_commit_offsets_to_the_group_and_group_offsets_resume_there() {
    let kafka = Kafka::start();
    kafka.create_topic("grp", 1).await;
    kafka.produce("grp", 0, &values("g", 0..30));
    let source = builder(&kafka)
        .topics(["grp"])
        .group_id("weir-grp")
        .bounded(StoppingOffsets::Latest)
        .build()
        .unwrap();
    let (result, out) = run(
        source,
        JobConfig::new("grp").checkpointing(CheckpointConfig::every(Duration::from_millis(20))),
    )
    .await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(out.len(), 30);

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("group.id", "weir-grp")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("grp", 0);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    let offset = committed
        .find_partition("grp", 0)
        .map(|e| e.offset())
        .unwrap();
    assert_eq!(
        offset,
        Offset::Offset(30),
        "the final checkpoint commits the end (commits succeeded {}, failed {})",
        result.counter("kafka", "commitsSucceeded"),
        result.counter("kafka", "commitsFailed")
    );

    // A group-offsets source starts where the group is.
    kafka.produce("grp", 0, &values("g", 30..35));
    let resumed = run_bounded(
        builder(&kafka)
            .topics(["grp"])
            .group_id("weir-grp")
            .starting_offsets(StartingOffsets::Committed {
                reset: weir_connector_kafka::source::OffsetResetStrategy::None,
            })
            .bounded(StoppingOffsets::Latest)
            .build()
            .unwrap(),
    )
    .await;
    assert_eq!(resumed, expected("grp", 0, "g", 30..35));
}
