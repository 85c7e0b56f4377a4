//! Test support: a noida-db broker per test, topic helpers, and the testkit contexts of the
//! Kafka source and sink.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code, unreachable_pub)]

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use weir_connector_api::source::Boundedness;
use weir_connector_kafka::sink::RecordSerializer;
use weir_connector_kafka::source::{JsonDeserializer, StartingOffsets, StoppingOffsets};
use weir_connector_kafka::{DeliveryGuarantee, KafkaSink, KafkaSource};
use weir_testkit::prelude::*;
use weir_testkit::servers::NoidaDb;

/// A record's value and its headers (`(name, value)`).
pub type WithHeaders<'a> = (Vec<u8>, Vec<(&'a str, &'a [u8])>);

/// A broker for one test.
pub struct Kafka {
    pub server: NoidaDb,
    pub admin: AdminClient<DefaultClientContext>,
    pub producer: ThreadedProducer<DefaultProducerContext>,
}

impl Kafka {
    pub fn start() -> Kafka {
        let server = NoidaDb::start().expect("noida-db starts (run `cargo xtask deps`)");
        let admin = ClientConfig::new()
            .set("bootstrap.servers", server.kafka_bootstrap())
            .create()
            .unwrap();
        let producer = ClientConfig::new()
            .set("bootstrap.servers", server.kafka_bootstrap())
            .set("linger.ms", "1")
            .create()
            .unwrap();
        Kafka {
            server,
            admin,
            producer,
        }
    }

    pub fn bootstrap(&self) -> String {
        self.server.kafka_bootstrap()
    }

    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        let r = self
            .admin
            .create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .unwrap();
        for x in r {
            x.unwrap();
        }
    }

    pub async fn add_partitions(&self, topic: &str, total: usize) {
        let r = self
            .admin
            .create_partitions(&[NewPartitions::new(topic, total)], &AdminOptions::new())
            .await
            .unwrap();
        for x in r {
            x.unwrap();
        }
    }

    /// Writes values into a partition and waits until they are acknowledged.
    pub fn produce(&self, topic: &str, partition: i32, values: &[Vec<u8>]) {
        for v in values {
            let mut record = BaseRecord::<(), Vec<u8>>::to(topic)
                .payload(v)
                .partition(partition);
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((e, r)) => {
                        record = r;
                        if !matches!(
                            e,
                            KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                        ) {
                            // A partition or topic created since the producer's last metadata
                            // refresh (every 5 minutes by default): refresh now.
                            let _ = self
                                .producer
                                .client()
                                .fetch_metadata(Some(topic), Duration::from_secs(5));
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        self.producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// `n` tombstones (records without a value) into `partition`.
    #[allow(dead_code)] // not every test file writes tombstones
    pub fn produce_tombstones(&self, topic: &str, partition: i32, n: usize) {
        for _ in 0..n {
            let record = BaseRecord::<(), ()>::to(topic).partition(partition);
            self.producer.send(record).map_err(|(e, _)| e).unwrap();
        }
        self.producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// Records with headers.
    pub fn produce_with_headers(&self, topic: &str, partition: i32, records: &[WithHeaders<'_>]) {
        for (v, headers) in records {
            let mut owned = rdkafka::message::OwnedHeaders::new();
            for (name, value) in headers {
                owned = owned.insert(rdkafka::message::Header {
                    key: name,
                    value: Some(*value),
                });
            }
            self.producer
                .send(
                    BaseRecord::<(), Vec<u8>>::to(topic)
                        .payload(v)
                        .partition(partition)
                        .headers(owned),
                )
                .map_err(|e| e.0)
                .unwrap();
        }
        self.producer.flush(Duration::from_secs(30)).unwrap();
    }

    pub fn produce_with_timestamps(&self, topic: &str, partition: i32, values: &[(Vec<u8>, i64)]) {
        for (v, ts) in values {
            self.producer
                .send(
                    BaseRecord::<(), Vec<u8>>::to(topic)
                        .payload(v)
                        .partition(partition)
                        .timestamp(*ts),
                )
                .map_err(|e| e.0)
                .unwrap();
        }
        self.producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// Every committed record of `topic` (read_committed), per partition in offset order.
    pub fn read_committed(&self, topic: &str) -> Vec<(i32, i64, Vec<u8>)> {
        self.read_committed_records(topic)
            .into_iter()
            .map(|(p, o, _, v)| (p, o, v))
            .collect()
    }

    /// Every committed record's key and value, per partition in offset order.
    #[allow(dead_code)] // not every test file reads keys
    pub fn read_committed_keys(&self, topic: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.read_committed_records(topic)
            .into_iter()
            .map(|(_, _, k, v)| (k, v))
            .collect()
    }

    /// Partition, offset, key and value of every committed record.
    fn read_committed_records(&self, topic: &str) -> Vec<(i32, i64, Vec<u8>, Vec<u8>)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("isolation.level", "read_committed")
            .set("group.id", "weir-test-reader")
            .set("enable.partition.eof", "true")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .flat_map(|t| {
                t.partitions()
                    .iter()
                    .map(rdkafka::metadata::MetadataPartition::id)
            })
            .collect();
        let mut tpl = TopicPartitionList::new();
        let mut ends = std::collections::BTreeMap::new();
        for p in &partitions {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .unwrap();
            let (_, high) = consumer
                .fetch_watermarks(topic, *p, Duration::from_secs(10))
                .unwrap();
            ends.insert(*p, high);
        }
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let mut eof = std::collections::BTreeSet::new();
        let start = Instant::now();
        while eof.len() < partitions.len() && start.elapsed() < Duration::from_secs(30) {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    out.push((
                        m.partition(),
                        m.offset(),
                        m.key().unwrap_or_default().to_vec(),
                        m.payload().unwrap_or_default().to_vec(),
                    ));
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    let pos = consumer
                        .position()
                        .unwrap()
                        .find_partition(topic, p)
                        .map(|e| e.offset());
                    if let Some(Offset::Offset(pos)) = pos {
                        if pos >= ends[&p] {
                            eof.insert(p);
                        }
                    } else if ends[&p] == 0 {
                        eof.insert(p);
                    }
                }
                Some(Err(e)) => panic!("reading back: {e}"),
                None => {}
            }
        }
        assert_eq!(
            eof.len(),
            partitions.len(),
            "read_committed did not reach the end of every partition (an open transaction?)"
        );
        out.sort_by_key(|(p, o, _, _)| (*p, *o));
        out
    }
}

fn json(r: &SplitRecord) -> Vec<u8> {
    serde_json::to_vec(r).unwrap()
}

/// The source suite's context: one topic per test, one partition per split.
pub struct SourceCtx {
    pub kafka: Kafka,
}

impl SourceCtx {
    pub fn new() -> Self {
        SourceCtx {
            kafka: Kafka::start(),
        }
    }
}

struct PartitionWriter {
    kafka: Arc<ThreadedProducer<DefaultProducerContext>>,
    topic: String,
    partition: i32,
}

#[async_trait]
impl SplitWriter<SplitRecord> for PartitionWriter {
    async fn write(&mut self, records: &[SplitRecord]) -> Result<(), ContextError> {
        for r in records {
            let payload = json(r);
            let mut record = BaseRecord::<(), Vec<u8>>::to(&self.topic)
                .payload(&payload)
                .partition(self.partition);
            loop {
                match self.kafka.send(record) {
                    Ok(()) => break,
                    Err((_, rec)) => {
                        record = rec;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        }
        let p = Arc::clone(&self.kafka);
        tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(30)))
            .await
            .map_err(ContextError::external)?
            .map_err(ContextError::external)
    }
}

#[async_trait]
impl SourceContext for SourceCtx {
    type Record = SplitRecord;
    type Source = KafkaSource<SplitRecord>;

    fn name(&self) -> String {
        "kafka".into()
    }

    fn support(&self) -> SourceSupport {
        SourceSupport::written().bounded().unbounded()
    }

    fn create_source(&self, s: &SourceSettings) -> Result<Self::Source, ContextError> {
        let mut b = KafkaSource::builder()
            .bootstrap_servers(self.kafka.bootstrap())
            .topics([s.test_id.clone()])
            .group_id(format!("{}-group", s.test_id))
            .starting_offsets(StartingOffsets::Earliest)
            .deserializer(JsonDeserializer::<SplitRecord>::new())
            .discovery_interval(Duration::from_millis(500));
        if s.boundedness == Boundedness::Bounded {
            b = b.bounded(StoppingOffsets::Latest);
        }
        if let Some(rate) = s.rate {
            b = b.rate_limit(rate);
        }
        Ok(b.build()?)
    }

    async fn create_split_writer(
        &mut self,
        s: &SourceSettings,
        split: usize,
    ) -> Result<Box<dyn SplitWriter<SplitRecord>>, ContextError> {
        if split == 0 {
            self.kafka.create_topic(&s.test_id, s.splits as i32).await;
        }
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", self.kafka.bootstrap())
            .set("linger.ms", "1")
            .create()
            .map_err(ContextError::external)?;
        Ok(Box::new(PartitionWriter {
            kafka: Arc::new(producer),
            topic: s.test_id.clone(),
            partition: split as i32,
        }))
    }

    fn records(&self, s: &SourceSettings, split: usize, positions: Range<u64>) -> Vec<SplitRecord> {
        positions
            .map(|i| SplitRecord::new(split as u32, i, s.seed))
            .collect()
    }
}

/// The sink suite's context: one topic per test (3 partitions), keyed by split so each
/// split's records keep their order; read back with read_committed.
pub struct SinkCtx {
    pub kafka: Kafka,
}

impl SinkCtx {
    pub fn new() -> Self {
        SinkCtx {
            kafka: Kafka::start(),
        }
    }
}

#[async_trait]
impl SinkContext for SinkCtx {
    type Record = SplitRecord;
    type Sink = KafkaSink<SplitRecord>;

    fn name(&self) -> String {
        "kafka".into()
    }

    fn support(&self) -> SinkSupport {
        SinkSupport::exactly_once().ordered()
    }

    async fn setup(&mut self, test: &TestInfo) -> Result<(), ContextError> {
        self.kafka.create_topic(&test.test_id, 3).await;
        Ok(())
    }

    fn create_sink(&self, s: &SinkSettings) -> Result<Self::Sink, ContextError> {
        let guarantee = match s.semantic {
            Semantic::ExactlyOnce => DeliveryGuarantee::ExactlyOnce,
            Semantic::AtLeastOnce => DeliveryGuarantee::AtLeastOnce,
        };
        Ok(KafkaSink::builder()
            .bootstrap_servers(self.kafka.bootstrap())
            .topic(s.test_id.clone())
            .delivery_guarantee(guarantee)
            .transactional_id_prefix(s.test_id.clone())
            .serializer(
                RecordSerializer::<SplitRecord>::json()
                    .key(|r, k| k.extend_from_slice(&r.split.to_be_bytes())),
            )
            .build()?)
    }

    async fn read_back(&self, s: &SinkSettings) -> Result<Vec<SplitRecord>, ContextError> {
        let topic = s.test_id.clone();
        let records = self.kafka.read_committed(&topic);
        records
            .into_iter()
            .map(|(_, _, v)| serde_json::from_slice(&v).map_err(ContextError::external))
            .collect()
    }

    fn records(&self, s: &SinkSettings, split: usize, positions: Range<u64>) -> Vec<SplitRecord> {
        positions
            .map(|i| SplitRecord::new(split as u32, i, s.seed))
            .collect()
    }
}
