//! `KafkaSink`: writes records to Kafka with the delivery guarantee `none`, `at-least-once` or
//! `exactly-once`.
//!
//! - **none**: records are handed to the producer; nothing waits for them at checkpoints.
//! - **at-least-once**: every checkpoint flushes the producer and fails on any delivery error, so
//!   a completed checkpoint means every record before it is in Kafka (retries after a failure
//!   may duplicate).
//! - **exactly-once**: each writer subtask writes into a Kafka transaction per checkpoint with
//!   transactional id `<prefix>-<subtask>-<n>`, where `n` is one more than the last checkpoint
//!   the writer saw (so every transaction opened after checkpoint `c` has `n > c`, and every
//!   transaction of a checkpoint up to `c` has `n <= c`). At the barrier the writer flushes and
//!   hands `(id, producer id, epoch)` to the committer, which commits after the checkpoint
//!   completed. See the crate docs for recovery and the exact guarantee.

mod committer;
mod producer;
mod serializer;
mod state;
mod writer;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::{
    CURRENT_SEND_TIME, NUM_BYTES_SEND, NUM_RECORDS_OUT_ERRORS, NUM_RECORDS_SEND,
};
use weir_connector_api::sink::{
    InitContext, Sink, SinkCapabilities, SupportsCommitter, SupportsWriterState, WriterStateOf,
};
use weir_connector_api::state::VersionedSerializer;

pub use committer::{KafkaCommitter, RESUMED_COMMITS};
pub use producer::SinkPartitioner;
#[cfg(weir_api_1_1)]
pub(crate) use serializer::malformed_record;
pub(crate) use serializer::KafkaRecordsSerializer;
use serializer::OneRecord;
pub use serializer::{KafkaRecordBuf, KafkaRecordSerializer, RecordSerializer, SerializeContext};
pub use state::{
    KafkaCommittable, KafkaCommittableSerializer, KafkaWriterState, KafkaWriterStateSerializer,
};
pub use writer::KafkaWriter;

use crate::protocol::WireClient;

/// The delivery guarantee of the sink (`sink.delivery-guarantee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryGuarantee {
    /// Fire and forget.
    None,
    /// Flush at every checkpoint; duplicates possible after failures.
    AtLeastOnce,
    /// Kafka transactions committed after checkpoints complete.
    ExactlyOnce,
}

weir_connector_api::config_enum!(DeliveryGuarantee {
    "none" => None,
    "at-least-once" => AtLeastOnce,
    "exactly-once" => ExactlyOnce,
});

/// Producer defaults, overridable through `properties.*`.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("linger.ms", "5"),
    ("batch.num.messages", "10000"),
    ("queue.buffering.max.messages", "1000000"),
    ("queue.buffering.max.kbytes", "1048576"),
    ("compression.type", "none"),
    ("statistics.interval.ms", "5000"),
];

/// The default `transaction.timeout.ms` of exactly-once producers: 15 minutes (the broker's
/// default `transaction.max.timeout.ms`).
pub const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(900);

/// A Kafka sink; build it with [`KafkaSink::builder`] or from options.
pub struct KafkaSink<T> {
    settings: Arc<writer::WriterSettings>,
    serializer: Arc<dyn KafkaRecordsSerializer<T>>,
}

impl<T> fmt::Debug for KafkaSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSink")
            .field("guarantee", &self.settings.guarantee)
            .field("topic", &self.settings.default_topic)
            .field("prefix", &self.settings.prefix)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> KafkaSink<T> {
    /// A builder; bootstrap servers and a serializer are required.
    pub fn builder() -> KafkaSinkBuilder<T> {
        KafkaSinkBuilder {
            properties: BTreeMap::new(),
            topic: None,
            guarantee: DeliveryGuarantee::AtLeastOnce,
            prefix: None,
            partitioner: SinkPartitioner::Default,
            serializer: None,
            flush_timeout: Duration::from_secs(120),
            checkpoint_interval: None,
        }
    }

    /// The delivery guarantee.
    pub fn delivery_guarantee(&self) -> DeliveryGuarantee {
        self.settings.guarantee
    }

    fn writer(
        &self,
        ctx: &dyn InitContext,
        restored: Option<(u64, Vec<KafkaWriterState>)>,
    ) -> Result<KafkaWriter<T>> {
        let group = ctx.metric_group();
        let metrics = producer::ProducerMetrics {
            errors: group.counter(NUM_RECORDS_OUT_ERRORS),
            send_time: group.gauge(CURRENT_SEND_TIME),
        };
        KafkaWriter::new(
            Arc::clone(&self.settings),
            Arc::clone(&self.serializer),
            ctx.subtask_index(),
            ctx.parallelism(),
            metrics,
            group.counter(NUM_RECORDS_SEND),
            group.counter(NUM_BYTES_SEND),
            restored,
        )
    }
}

impl<T: Send + Sync + 'static> Sink<T> for KafkaSink<T> {
    type Writer = KafkaWriter<T>;

    fn create_writer(&self, ctx: &dyn InitContext) -> Result<KafkaWriter<T>> {
        let restored = ctx.restored_checkpoint_id().map(|c| (c.0, Vec::new()));
        self.writer(ctx, restored)
    }

    fn capabilities(self: Arc<Self>) -> SinkCapabilities<T, KafkaWriter<T>> {
        match self.settings.guarantee {
            DeliveryGuarantee::ExactlyOnce => SinkCapabilities::none()
                .with_writer_state(Arc::clone(&self))
                .with_committer(self),
            _ => SinkCapabilities::none(),
        }
    }
}

impl<T: Send + Sync + 'static> SupportsWriterState<T> for KafkaSink<T> {
    fn restore_writer(
        &self,
        ctx: &dyn InitContext,
        states: Vec<WriterStateOf<T, Self>>,
    ) -> Result<KafkaWriter<T>> {
        let checkpoint = ctx.restored_checkpoint_id().map_or(0, |c| c.0);
        self.writer(ctx, Some((checkpoint, states)))
    }

    fn writer_state_serializer(&self) -> Arc<dyn VersionedSerializer<KafkaWriterState>> {
        Arc::new(KafkaWriterStateSerializer)
    }
}

impl<T: Send + Sync + 'static> SupportsCommitter<T> for KafkaSink<T> {
    type Committable = KafkaCommittable;
    type Committer = KafkaCommitter;

    fn create_committer(&self, ctx: &dyn InitContext) -> Result<KafkaCommitter> {
        Ok(KafkaCommitter {
            wire: WireClient::new(&self.settings.bootstrap, Duration::from_secs(10)),
            timeout: self.settings.flush_timeout,
            resumed: ctx.metric_group().counter(committer::RESUMED_COMMITS),
        })
    }

    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<KafkaCommittable>> {
        Arc::new(KafkaCommittableSerializer)
    }
}

/// Builds a [`KafkaSink`].
pub struct KafkaSinkBuilder<T> {
    properties: BTreeMap<String, String>,
    topic: Option<String>,
    guarantee: DeliveryGuarantee,
    prefix: Option<String>,
    partitioner: SinkPartitioner,
    serializer: Option<Arc<dyn KafkaRecordsSerializer<T>>>,
    flush_timeout: Duration,
    checkpoint_interval: Option<Duration>,
}

impl<T> fmt::Debug for KafkaSinkBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSinkBuilder")
            .field("topic", &self.topic)
            .field("guarantee", &self.guarantee)
            .finish_non_exhaustive()
    }
}

/// Whether `prefix` is a usable transactional-id prefix: non-empty, at most 200 characters of
/// `[A-Za-z0-9._-]`.
pub fn check_transactional_id_prefix(prefix: &str) -> std::result::Result<(), String> {
    if prefix.is_empty() {
        return Err("must not be empty".into());
    }
    if prefix.len() > 200 {
        return Err("must be at most 200 characters".into());
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "may only contain letters, digits, `.`, `_` and `-` (found {c:?})"
        ));
    }
    Ok(())
}

impl<T: Send + Sync + 'static> KafkaSinkBuilder<T> {
    /// `bootstrap.servers` of the cluster.
    pub fn bootstrap_servers(self, servers: impl Into<String>) -> Self {
        self.property("bootstrap.servers", servers)
    }

    /// Sets a librdkafka producer property, overriding the defaults.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// The topic of records whose serializer chooses none.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// The delivery guarantee (default at-least-once).
    pub fn delivery_guarantee(mut self, guarantee: DeliveryGuarantee) -> Self {
        self.guarantee = guarantee;
        self
    }

    /// The transactional-id prefix (required for exactly-once; unique per job).
    pub fn transactional_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// How records without a partition are spread (default: Kafka's partitioner).
    pub fn partitioner(mut self, partitioner: SinkPartitioner) -> Self {
        self.partitioner = partitioner;
        self
    }

    /// How records become Kafka records.
    pub fn serializer(mut self, serializer: impl KafkaRecordSerializer<T>) -> Self {
        self.serializer = Some(Arc::new(OneRecord(serializer)));
        self
    }

    #[cfg_attr(not(weir_api_1_1), allow(dead_code))] // used by the columnar module
    /// How elements become records, many records per element (the columnar sink: one per
    /// row of a chunk).
    pub(crate) fn records_serializer(
        mut self,
        serializer: Arc<dyn KafkaRecordsSerializer<T>>,
    ) -> Self {
        self.serializer = Some(serializer);
        self
    }

    /// How long a flush or commit may take before it fails (default 2 minutes).
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// The job's checkpoint interval, checked against `transaction.timeout.ms` in exactly-once
    /// mode.
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = Some(interval);
        self
    }

    /// Checks the settings and builds the sink; every problem is reported at once.
    pub fn build(self) -> Result<KafkaSink<T>> {
        let mut problems = Vec::new();
        let bootstrap = self.properties.get("bootstrap.servers").cloned();
        if bootstrap.is_none() {
            problems.push("bootstrap servers are required (bootstrap_servers)".to_owned());
        }
        if self.serializer.is_none() {
            problems.push("a record serializer is required".to_owned());
        }
        if let Some(t) = &self.topic {
            if t.is_empty() || t.contains('\0') {
                problems.push(format!("invalid topic {t:?}"));
            }
        }
        let mut config = ClientConfig::new();
        for (k, v) in PRODUCER_DEFAULTS {
            config.set(*k, *v);
        }
        match self.guarantee {
            DeliveryGuarantee::ExactlyOnce => {
                match &self.prefix {
                    None => problems.push(
                        "exactly-once needs a transactional-id prefix (transactional_id_prefix), \
                         unique per job"
                            .to_owned(),
                    ),
                    Some(p) => {
                        if let Err(e) = check_transactional_id_prefix(p) {
                            problems.push(format!("transactional-id prefix `{p}` {e}"));
                        }
                    }
                }
                config.set(
                    "transaction.timeout.ms",
                    DEFAULT_TRANSACTION_TIMEOUT.as_millis().to_string(),
                );
            }
            DeliveryGuarantee::AtLeastOnce => {
                config.set("enable.idempotence", "true");
            }
            DeliveryGuarantee::None => {}
        }
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        if self.guarantee == DeliveryGuarantee::ExactlyOnce {
            if let Some(interval) = self.checkpoint_interval {
                let timeout = config
                    .get("transaction.timeout.ms")
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_millis);
                if let Some(timeout) = timeout {
                    if timeout <= interval {
                        problems.push(format!(
                            "transaction.timeout.ms ({} ms) must be longer than the checkpoint \
                             interval ({} ms): a transaction stays open from one checkpoint to \
                             the commit after the next, and a broker aborts it after the \
                             timeout, losing its records; raise properties.transaction.timeout.ms \
                             (to several checkpoint intervals plus the restart time)",
                            timeout.as_millis(),
                            interval.as_millis()
                        ));
                    }
                }
            }
        }
        let (Some(bootstrap), Some(serializer), true) =
            (bootstrap, self.serializer, problems.is_empty())
        else {
            return Err(ConnectorError::fatal(
                "building the Kafka sink",
                problems.join("; "),
            ));
        };
        Ok(KafkaSink {
            settings: Arc::new(writer::WriterSettings {
                config,
                guarantee: self.guarantee,
                default_topic: self.topic,
                partitioner: self.partitioner,
                prefix: self.prefix,
                flush_timeout: self.flush_timeout,
                bootstrap,
                instance: rand_instance(),
            }),
            serializer,
        })
    }
}

fn rand_instance() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
