//! `KafkaSource`: a FLIP-27 source over Kafka topic-partitions.
//!
//! - **Splits** are topic-partitions ([`KafkaPartitionSplit`]), from a topic list or a regex;
//!   the enumerator discovers new partitions and topics every discovery interval, assigns each to
//!   a fixed reader (Flink's hash of topic and partition), and starts partitions found after the
//!   first discovery from the earliest offset (FLIP-288).
//! - **Offsets**: [`StartingOffsets`] (earliest, latest, committed with a reset strategy,
//!   timestamp, specific) and, for a bounded source, [`StoppingOffsets`] (latest at start,
//!   timestamp, specific, committed). The progress lives in the checkpointed split state; on
//!   checkpoint completion offsets are committed to the consumer group for monitoring only.
//! - **Reading**: one `BaseConsumer` per reader on a dedicated fetcher thread, which polls
//!   batches and copies each record's key, value (and headers, if the deserializer reads them)
//!   into one buffer per batch ([`KafkaBatch`]); the reader deserializes on its task as it emits
//!   (so each record's allocation is made and freed on the same thread), each partition through
//!   its own output (per-partition watermarks) with the record timestamps, and pauses partitions
//!   in the consumer for split-level watermark alignment. Finished and removed splits are
//!   unassigned incrementally, so the other partitions keep their prefetched messages.

mod deserializer;
mod enumerator;
mod offsets;
mod reader;
mod split;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use regex::Regex;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::source::{Boundedness, EnumeratorContextOf, Source, SourceReaderContext};
use weir_connector_api::state::VersionedSerializer;
use weir_connector_base::source::reader::RecordEvaluator;
use weir_connector_base::source::Forwarding;

pub use deserializer::{
    HeaderAccess, IgnoreHeaders, JsonDeserializer, KafkaDeserializer, KafkaRecord,
    RawBytesDeserializer, Utf8Deserializer,
};
pub use enumerator::{
    DiscoveryResult, KafkaEnumeratorState, KafkaEnumeratorStateSerializer, KafkaSourceEnumerator,
    TopicSelection,
};
pub(crate) use offsets::parse_specific_offsets;
pub use offsets::{OffsetResetStrategy, StartingOffsets, StoppingOffsets};
#[cfg(all(test, weir_api_1_1))]
pub(crate) use reader::TestRun;
pub use reader::{
    partition_split_id, KafkaBatch, KafkaElement, KafkaReader, KafkaRecordEmitter,
    KafkaSourceReader, KafkaSplitReader, COMMITS_FAILED, COMMITS_SUCCEEDED,
};
#[cfg(weir_api_1_1)]
pub(crate) use reader::{record_bytes, RunRecords};
pub(crate) use reader::{KafkaBatchDecoder, PerRecord};
pub use split::{
    KafkaPartitionSplit, KafkaPartitionSplitSerializer, TopicPartitionOffset, EARLIEST_OFFSET,
};

use crate::error::kafka_error;
use crate::MalformedRecordPolicy;

/// The default partition discovery interval (Flink's: 5 minutes).
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(300);

/// Consumer defaults tuned for throughput; any of them can be overridden through
/// [`KafkaSourceBuilder::property`] (`properties.*` in options).
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("enable.partition.eof", "true"),
    ("isolation.level", "read_committed"),
    ("auto.offset.reset", "earliest"),
    ("queued.min.messages", "1000000"),
    ("queued.max.messages.kbytes", "262144"),
    ("fetch.wait.max.ms", "100"),
    ("fetch.max.bytes", "104857600"),
    ("max.partition.fetch.bytes", "8388608"),
    ("statistics.interval.ms", "1000"),
];

/// A Kafka source; build it with [`KafkaSource::builder`] or from options
/// ([`crate::config::KafkaSourceOptions`]).
pub struct KafkaSource<T> {
    properties: BTreeMap<String, String>,
    topics: TopicSelection,
    starting: StartingOffsets,
    stopping: StoppingOffsets,
    discovery_interval: Option<Duration>,
    deserializer: Arc<dyn KafkaBatchDecoder<T>>,
    policy: MalformedRecordPolicy,
    evaluator: Option<Arc<dyn RecordEvaluator<T>>>,
    commit_offsets: bool,
    max_batch: usize,
    elements_per_poll: usize,
    rate: Option<f64>,
}

impl<T> fmt::Debug for KafkaSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSource")
            .field("topics", &self.topics)
            .field("starting", &self.starting)
            .field("stopping", &self.stopping)
            .field("discovery_interval", &self.discovery_interval)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> KafkaSource<T> {
    /// A builder; `bootstrap_servers`, topics and a deserializer are required.
    pub fn builder() -> KafkaSourceBuilder<T> {
        KafkaSourceBuilder {
            properties: BTreeMap::new(),
            topics: None,
            pattern_error: None,
            starting: StartingOffsets::Earliest,
            stopping: StoppingOffsets::Unbounded,
            discovery_interval: DEFAULT_DISCOVERY_INTERVAL,
            deserializer: None,
            policy: MalformedRecordPolicy::Fail,
            evaluator: None,
            commit_offsets: true,
            max_batch: 4096,
            elements_per_poll: 8192,
            rate: None,
        }
    }

    /// The consumer configuration. Readers assign partitions themselves (never subscribe);
    /// group offsets are read and committed over the wire.
    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (k, v) in CONSUMER_DEFAULTS {
            config.set(*k, *v);
        }
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        if !self.properties.contains_key("group.id") {
            // librdkafka needs a group to assign partitions; nothing is committed to it.
            config.set("group.id", "weir-kafka-source");
        }
        config
    }

    fn wire(&self) -> crate::protocol::WireClient {
        crate::protocol::WireClient::new(
            self.properties
                .get("bootstrap.servers")
                .map_or("", String::as_str),
            Duration::from_secs(10),
        )
    }

    fn group(&self) -> Option<String> {
        self.properties.get("group.id").cloned()
    }

    fn discovery(&self) -> Result<Arc<enumerator::Discovery>> {
        let mut config = self.client_config();
        config.set("enable.partition.eof", "false");
        config.set("statistics.interval.ms", "0");
        let client = config
            .create()
            .map_err(|e| kafka_error("creating the Kafka metadata client", &e))?;
        Ok(Arc::new(enumerator::Discovery {
            client,
            wire: self.wire(),
            topics: self.topics.clone(),
            starting: self.starting.clone(),
            stopping: self.stopping.clone(),
            group: self.group(),
            timeout: Duration::from_secs(30),
        }))
    }
}

impl<T: Send + 'static> Source for KafkaSource<T> {
    type Output = T;
    type Split = KafkaPartitionSplit;
    type Reader = KafkaSourceReader<T>;
    type Enumerator = KafkaSourceEnumerator;

    fn boundedness(&self) -> Boundedness {
        if self.stopping.is_bounded() {
            Boundedness::Bounded
        } else {
            Boundedness::ContinuousUnbounded
        }
    }

    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<Self::Reader> {
        let settings = reader::FetcherSettings {
            client_config: self.client_config(),
            max_batch: self.max_batch,
            poll_timeout: Duration::from_millis(100),
        };
        let committer = match (self.commit_offsets, self.group()) {
            (true, Some(group)) => Some(reader::OffsetCommitter::start(
                self.wire(),
                group,
                &ctx.metric_group(),
            )?),
            _ => None,
        };
        let split_reader = KafkaSplitReader::start(
            settings,
            Arc::clone(&self.deserializer),
            ctx.metric_group(),
            ctx.subtask_index(),
        )?;
        let rate = self.rate.map(|r| r / ctx.parallelism().max(1) as f64);
        Ok(Forwarding::wrap(KafkaReader::new(
            ctx,
            split_reader,
            self.policy,
            self.evaluator.clone(),
            committer,
            rate,
            self.elements_per_poll,
        )))
    }

    fn create_enumerator(&self, ctx: EnumeratorContextOf<Self>) -> Result<KafkaSourceEnumerator> {
        Ok(KafkaSourceEnumerator::new(
            ctx,
            self.discovery()?,
            self.discovery_interval,
            self.stopping.is_bounded(),
            None,
        ))
    }

    fn restore_enumerator(
        &self,
        ctx: EnumeratorContextOf<Self>,
        state: KafkaEnumeratorState,
    ) -> Result<KafkaSourceEnumerator> {
        Ok(KafkaSourceEnumerator::new(
            ctx,
            self.discovery()?,
            self.discovery_interval,
            self.stopping.is_bounded(),
            Some(state),
        ))
    }

    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<KafkaPartitionSplit>> {
        Arc::new(KafkaPartitionSplitSerializer)
    }

    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<KafkaEnumeratorState>> {
        Arc::new(KafkaEnumeratorStateSerializer)
    }
}

/// Builds a [`KafkaSource`].
pub struct KafkaSourceBuilder<T> {
    properties: BTreeMap<String, String>,
    topics: Option<TopicSelection>,
    pattern_error: Option<String>,
    starting: StartingOffsets,
    stopping: StoppingOffsets,
    discovery_interval: Duration,
    deserializer: Option<Arc<dyn KafkaBatchDecoder<T>>>,
    policy: MalformedRecordPolicy,
    evaluator: Option<Arc<dyn RecordEvaluator<T>>>,
    commit_offsets: bool,
    max_batch: usize,
    elements_per_poll: usize,
    rate: Option<f64>,
}

impl<T> fmt::Debug for KafkaSourceBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSourceBuilder")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> KafkaSourceBuilder<T> {
    /// `bootstrap.servers` of the cluster.
    pub fn bootstrap_servers(self, servers: impl Into<String>) -> Self {
        self.property("bootstrap.servers", servers)
    }

    /// The consumer group (for `StartingOffsets::Committed` and for offset commits).
    pub fn group_id(self, group: impl Into<String>) -> Self {
        self.property("group.id", group)
    }

    /// Sets a librdkafka consumer property, overriding the tuned defaults.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Reads these topics.
    pub fn topics<S: Into<String>>(mut self, topics: impl IntoIterator<Item = S>) -> Self {
        self.topics = Some(TopicSelection::Topics(
            topics.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Reads every topic whose whole name matches `pattern` (a regex); checked in `build`.
    pub fn topic_pattern(mut self, pattern: &str) -> Self {
        match Regex::new(pattern) {
            Ok(re) => self.topics = Some(TopicSelection::Pattern(re)),
            Err(e) => self.pattern_error = Some(format!("invalid topic pattern `{pattern}`: {e}")),
        }
        self
    }

    /// Where partitions start (default: earliest).
    pub fn starting_offsets(mut self, starting: StartingOffsets) -> Self {
        self.starting = starting;
        self
    }

    /// Makes the source bounded: every partition stops at `stopping` (default: unbounded).
    pub fn bounded(mut self, stopping: StoppingOffsets) -> Self {
        self.stopping = stopping;
        self
    }

    /// How often to look for new partitions and topics; `Duration::ZERO` disables discovery
    /// after the first (default 5 minutes; bounded sources discover once).
    pub fn discovery_interval(mut self, interval: Duration) -> Self {
        self.discovery_interval = interval;
        self
    }

    /// How records become `T`.
    pub fn deserializer(mut self, deserializer: impl KafkaDeserializer<T>) -> Self {
        self.deserializer = Some(Arc::new(PerRecord(Arc::new(deserializer))));
        self
    }

    #[cfg_attr(not(weir_api_1_1), allow(dead_code))] // used by the columnar module
    /// How records become elements, many records at once (the columnar source: a partition's
    /// records of a fetched batch become one chunk); `per_poll` elements at most per poll of
    /// the reader.
    pub(crate) fn batch_decoder(
        mut self,
        decoder: Arc<dyn KafkaBatchDecoder<T>>,
        per_poll: usize,
    ) -> Self {
        self.deserializer = Some(decoder);
        self.elements_per_poll = per_poll.max(1);
        self
    }

    /// What to do with records the deserializer rejects (default: fail the job).
    pub fn malformed_records(mut self, policy: MalformedRecordPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Ends a partition's split at the first record `evaluator` accepts (FLIP-208); that record
    /// is not emitted.
    pub fn record_evaluator(mut self, evaluator: impl RecordEvaluator<T>) -> Self {
        self.evaluator = Some(Arc::new(evaluator));
        self
    }

    /// Whether to commit offsets to the consumer group when checkpoints complete (default true;
    /// needs a group id).
    pub fn commit_offsets_on_checkpoint(mut self, commit: bool) -> Self {
        self.commit_offsets = commit;
        self
    }

    /// The most records the fetcher thread hands over at once (default 4096).
    pub fn max_batch(mut self, records: usize) -> Self {
        self.max_batch = records.max(1);
        self
    }

    /// Caps the records emitted per second over all readers (a pacing aid for backfills and
    /// tests; each of `p` readers gets `1/p`).
    pub fn rate_limit(mut self, records_per_second: f64) -> Self {
        self.rate = (records_per_second > 0.0).then_some(records_per_second);
        self
    }

    /// Checks the settings and builds the source; every problem is reported at once.
    pub fn build(self) -> Result<KafkaSource<T>> {
        let mut problems = Vec::new();
        if !self.properties.contains_key("bootstrap.servers") {
            problems.push("bootstrap servers are required (bootstrap_servers)".to_owned());
        }
        if let Some(e) = &self.pattern_error {
            problems.push(e.clone());
        }
        if self.topics.is_none() && self.pattern_error.is_none() {
            problems.push("topics or a topic pattern are required".to_owned());
        }
        if let Some(TopicSelection::Topics(t)) = &self.topics {
            if t.is_empty() || t.iter().any(String::is_empty) {
                problems.push("topic names must not be empty".to_owned());
            }
        }
        if self.deserializer.is_none() {
            problems.push("a deserializer is required".to_owned());
        }
        let needs_group = matches!(self.starting, StartingOffsets::Committed { .. })
            || matches!(self.stopping, StoppingOffsets::Committed);
        if needs_group && !self.properties.contains_key("group.id") {
            problems.push("committed offsets need a consumer group id (group_id)".to_owned());
        }
        let (Some(topics), Some(deserializer), true) =
            (self.topics, self.deserializer, problems.is_empty())
        else {
            return Err(ConnectorError::fatal(
                "building the Kafka source",
                problems.join("; "),
            ));
        };
        Ok(KafkaSource {
            properties: self.properties,
            topics,
            starting: self.starting,
            stopping: self.stopping,
            discovery_interval: if self.discovery_interval.is_zero() {
                None
            } else {
                Some(self.discovery_interval)
            },
            deserializer,
            policy: self.policy,
            evaluator: self.evaluator,
            commit_offsets: self.commit_offsets,
            max_batch: self.max_batch,
            elements_per_poll: self.elements_per_poll,
            rate: self.rate,
        })
    }
}
