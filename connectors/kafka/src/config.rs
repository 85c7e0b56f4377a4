//! Typed options with Flink's keys, for pipeline files and `from_config` constructors. The
//! README's tables are generated from [`source_options`] and [`sink_options`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use weir_connector_kafka::config::KafkaSourceOptions;
//! use weir_connector_kafka::source::Utf8Deserializer;
//!
//! let input: BTreeMap<String, String> = [
//!     ("properties.bootstrap.servers", "localhost:9092"),
//!     ("topic", "orders"),
//!     ("scan.startup.mode", "earliest-offset"),
//!     ("scan.bounded.mode", "latest-offset"),
//! ]
//! .into_iter()
//! .map(|(k, v)| (k.to_owned(), v.to_owned()))
//! .collect();
//! let options = KafkaSourceOptions::from_map(&input)?;
//! let source = options.builder(Utf8Deserializer).build()?;
//! # let _ = source;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use weir_connector_api::config::{
    non_empty, ConfigError, ConfigErrors, ConfigOption, OptionSet, ValidatedConfig,
};

use crate::sink::{
    check_transactional_id_prefix, DeliveryGuarantee, KafkaRecordSerializer, KafkaSink,
    KafkaSinkBuilder, SinkPartitioner,
};
use crate::source::parse_specific_offsets;
use crate::source::{
    KafkaDeserializer, KafkaSource, KafkaSourceBuilder, OffsetResetStrategy, StartingOffsets,
    StoppingOffsets,
};
use crate::MalformedRecordPolicy;

/// `scan.startup.mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StartupMode {
    /// From the earliest offset.
    EarliestOffset,
    /// From the latest offset.
    LatestOffset,
    /// From the group's committed offsets (`properties.auto.offset.reset` where none).
    GroupOffsets,
    /// From `scan.startup.timestamp-millis`.
    Timestamp,
    /// From `scan.startup.specific-offsets`.
    SpecificOffsets,
}

weir_connector_api::config_enum!(StartupMode {
    "earliest-offset" => EarliestOffset,
    "latest-offset" => LatestOffset,
    "group-offsets" => GroupOffsets,
    "timestamp" => Timestamp,
    "specific-offsets" => SpecificOffsets,
});

/// `scan.bounded.mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoundedMode {
    /// Never stop.
    Unbounded,
    /// Stop at the latest offsets when the job starts.
    LatestOffset,
    /// Stop at the group's committed offsets.
    GroupOffsets,
    /// Stop at `scan.bounded.timestamp-millis`.
    Timestamp,
    /// Stop at `scan.bounded.specific-offsets`.
    SpecificOffsets,
}

weir_connector_api::config_enum!(BoundedMode {
    "unbounded" => Unbounded,
    "latest-offset" => LatestOffset,
    "group-offsets" => GroupOffsets,
    "timestamp" => Timestamp,
    "specific-offsets" => SpecificOffsets,
});

/// `properties.auto.offset.reset` values (for `group-offsets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutoOffsetReset {
    /// Earliest.
    Earliest,
    /// Latest.
    Latest,
    /// Fail.
    None,
}

weir_connector_api::config_enum!(AutoOffsetReset {
    "earliest" => Earliest,
    "latest" => Latest,
    "none" => None,
});

/// `properties.bootstrap.servers`.
pub static BOOTSTRAP_SERVERS: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("properties.bootstrap.servers")
        .description("Comma-separated `host:port` list of Kafka brokers.")
        .validator(non_empty())
});
/// `properties.group.id`.
pub static GROUP_ID: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("properties.group.id")
        .optional()
        .description(
            "Consumer group: needed for `group-offsets`; offsets are committed to it when \
             checkpoints complete (monitoring only).",
        )
        .validator(non_empty())
});
/// `properties.auto.offset.reset`.
pub static AUTO_OFFSET_RESET: LazyLock<ConfigOption<AutoOffsetReset>> = LazyLock::new(|| {
    ConfigOption::new("properties.auto.offset.reset")
        .default_value(AutoOffsetReset::None)
        .description("Where `group-offsets` starts a partition without a committed offset.")
});
/// `topic` (source: a list).
pub static TOPICS: LazyLock<ConfigOption<Vec<String>>> = LazyLock::new(|| {
    ConfigOption::new("topic")
        .optional()
        .description("Topics to read, separated by `;`. Excludes `topic-pattern`.")
});
/// `topic-pattern`.
pub static TOPIC_PATTERN: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("topic-pattern")
        .optional()
        .description(
            "Regular expression for the names of topics to read (whole name). Excludes `topic`.",
        )
        .validator(|p: &String| {
            regex::Regex::new(p)
                .map(|_| ())
                .map_err(|e| format!("not a valid regular expression: {e}"))
        })
});
/// `scan.startup.mode`.
pub static STARTUP_MODE: LazyLock<ConfigOption<StartupMode>> = LazyLock::new(|| {
    ConfigOption::new("scan.startup.mode")
        .default_value(StartupMode::GroupOffsets)
        .description("Where partitions start reading.")
});
/// `scan.startup.specific-offsets`.
pub static STARTUP_SPECIFIC: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("scan.startup.specific-offsets")
        .optional()
        .description("For `specific-offsets`: `partition:0,offset:42;partition:1,offset:300` (one topic; other partitions start from the earliest offset).")
});
/// `scan.startup.timestamp-millis`.
pub static STARTUP_TIMESTAMP: LazyLock<ConfigOption<i64>> = LazyLock::new(|| {
    ConfigOption::new("scan.startup.timestamp-millis")
        .optional()
        .description("For `timestamp`: start at the first record at or after this time (epoch milliseconds).")
});
/// `scan.bounded.mode`.
pub static BOUNDED_MODE: LazyLock<ConfigOption<BoundedMode>> = LazyLock::new(|| {
    ConfigOption::new("scan.bounded.mode")
        .default_value(BoundedMode::Unbounded)
        .description(
            "Where a bounded source stops; the job finishes when every partition reached it.",
        )
});
/// `scan.bounded.specific-offsets`.
pub static BOUNDED_SPECIFIC: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("scan.bounded.specific-offsets")
        .optional()
        .description("For `specific-offsets`: the first offsets not to read, as `partition:0,offset:42;...` (other partitions stop at their latest offset).")
});
/// `scan.bounded.timestamp-millis`.
pub static BOUNDED_TIMESTAMP: LazyLock<ConfigOption<i64>> = LazyLock::new(|| {
    ConfigOption::new("scan.bounded.timestamp-millis")
        .optional()
        .description("For `timestamp`: stop before the first record at or after this time (epoch milliseconds).")
});
/// `scan.topic-partition-discovery.interval`.
pub static DISCOVERY_INTERVAL: LazyLock<ConfigOption<Duration>> = LazyLock::new(|| {
    ConfigOption::new("scan.topic-partition-discovery.interval")
        .default_value(Duration::from_secs(300))
        .description("How often to look for new partitions and topics (they start from the earliest offset); 0 disables. Bounded sources discover once.")
});
/// `scan.malformed-records`.
pub static MALFORMED: LazyLock<ConfigOption<MalformedRecordPolicy>> = LazyLock::new(|| {
    ConfigOption::new("scan.malformed-records")
        .default_value(MalformedRecordPolicy::Fail)
        .description("What to do with a record the deserializer rejects: fail the job, or skip it and count it in `numRecordsInErrors`.")
});
/// `scan.commit-offsets-on-checkpoint`.
pub static COMMIT_OFFSETS: LazyLock<ConfigOption<bool>> = LazyLock::new(|| {
    ConfigOption::new("scan.commit-offsets-on-checkpoint")
        .default_value(true)
        .description("Commit offsets to `properties.group.id` when checkpoints complete (monitoring only; progress lives in checkpoints).")
});
/// `topic` (sink).
pub static SINK_TOPIC: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("topic")
        .optional()
        .description("Topic of records whose serializer chooses none.")
        .validator(non_empty())
});
/// `sink.delivery-guarantee`.
pub static DELIVERY_GUARANTEE: LazyLock<ConfigOption<DeliveryGuarantee>> = LazyLock::new(|| {
    ConfigOption::new("sink.delivery-guarantee")
        .default_value(DeliveryGuarantee::AtLeastOnce)
        .description("`none`, `at-least-once` (flush at checkpoints) or `exactly-once` (Kafka transactions committed after checkpoints).")
});
/// `sink.transactional-id-prefix`.
pub static TRANSACTIONAL_ID_PREFIX: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("sink.transactional-id-prefix")
        .optional()
        .description("Prefix of the transactional ids (`<prefix>-<subtask>-<n>`); required for exactly-once and unique per job.")
        .validator(|p: &String| check_transactional_id_prefix(p))
});
/// `sink.partitioner`.
pub static PARTITIONER: LazyLock<ConfigOption<SinkPartitioner>> = LazyLock::new(|| {
    ConfigOption::new("sink.partitioner")
        .default_value(SinkPartitioner::Default)
        .description("`default` (by key hash, keyless sticky), `fixed` (subtask % partitions) or `round-robin`.")
});
/// `sink.flush-timeout`.
pub static FLUSH_TIMEOUT: LazyLock<ConfigOption<Duration>> = LazyLock::new(|| {
    ConfigOption::new("sink.flush-timeout")
        .default_value(Duration::from_secs(120))
        .description("How long a flush or a transaction commit may take before it fails.")
});

const PROPERTIES: &str = "properties.";

/// librdkafka properties that load a shared library into the process: a pipeline file must not
/// be able to run code of its choosing (set them in the client's own configuration instead).
const LIBRARY_LOADING_PROPERTIES: [&str; 2] = ["plugin.library.paths", "ssl.engine.location"];

/// Refuses `properties.*` that would load a shared library (see [`LIBRARY_LOADING_PROPERTIES`]).
fn library_loading_properties(c: &ValidatedConfig) -> Vec<ConfigError> {
    c.prefixed(PROPERTIES)
        .iter()
        .filter(|(key, _)| LIBRARY_LOADING_PROPERTIES.contains(&key.trim()))
        .map(|(key, value)| ConfigError::Rejected {
            key: format!("{PROPERTIES}{key}"),
            value: value.clone(),
            reason: "it loads a shared library into the weir process, which a pipeline file \
                     may not do; remove it"
                .to_owned(),
        })
        .collect()
}

/// The Kafka source's options.
pub fn source_options() -> OptionSet {
    OptionSet::new("kafka source")
        .option(&BOOTSTRAP_SERVERS)
        .option(&GROUP_ID)
        .option(&TOPICS)
        .option(&TOPIC_PATTERN)
        .option(&STARTUP_MODE)
        .option(&STARTUP_SPECIFIC)
        .option(&STARTUP_TIMESTAMP)
        .option(&AUTO_OFFSET_RESET)
        .option(&BOUNDED_MODE)
        .option(&BOUNDED_SPECIFIC)
        .option(&BOUNDED_TIMESTAMP)
        .option(&DISCOVERY_INTERVAL)
        .option(&MALFORMED)
        .option(&COMMIT_OFFSETS)
        .prefix(PROPERTIES, "Passed to the librdkafka consumer (e.g. `properties.fetch.max.bytes`), overriding the tuned defaults.")
        .cross_validator(source_cross)
}

fn source_cross(c: &ValidatedConfig) -> Vec<ConfigError> {
    let mut e = library_loading_properties(c);
    match (c.is_set(&TOPICS), c.is_set(&TOPIC_PATTERN)) {
        (true, true) => e.push(ConfigError::conflict(
            ["topic", "topic-pattern"],
            "read either a topic list or a pattern; remove one",
        )),
        (false, false) => e.push(ConfigError::conflict(
            ["topic", "topic-pattern"],
            "one of them is required: the topics to read",
        )),
        _ => {}
    }
    let topics = c.get(&TOPICS);
    let single = topics.len() == 1 && !c.is_set(&TOPIC_PATTERN);
    let mut need = |mode_key: &str, needed: &str, present: bool, group: bool| {
        if group && !c.is_set(&GROUP_ID) {
            e.push(ConfigError::conflict(
                [mode_key, "properties.group.id"],
                "group offsets need a consumer group: set properties.group.id",
            ));
        }
        if !needed.is_empty() && !present {
            e.push(ConfigError::conflict(
                [mode_key, needed],
                format!("this mode needs `{needed}`"),
            ));
        }
    };
    match c.get(&STARTUP_MODE) {
        StartupMode::GroupOffsets => need("scan.startup.mode", "", true, true),
        StartupMode::Timestamp => need(
            "scan.startup.mode",
            "scan.startup.timestamp-millis",
            c.is_set(&STARTUP_TIMESTAMP),
            false,
        ),
        StartupMode::SpecificOffsets => need(
            "scan.startup.mode",
            "scan.startup.specific-offsets",
            c.is_set(&STARTUP_SPECIFIC),
            false,
        ),
        _ => {}
    }
    match c.get(&BOUNDED_MODE) {
        BoundedMode::GroupOffsets => need("scan.bounded.mode", "", true, true),
        BoundedMode::Timestamp => need(
            "scan.bounded.mode",
            "scan.bounded.timestamp-millis",
            c.is_set(&BOUNDED_TIMESTAMP),
            false,
        ),
        BoundedMode::SpecificOffsets => need(
            "scan.bounded.mode",
            "scan.bounded.specific-offsets",
            c.is_set(&BOUNDED_SPECIFIC),
            false,
        ),
        _ => {}
    }
    for (opt, key) in [
        (&*STARTUP_SPECIFIC, "scan.startup.specific-offsets"),
        (&*BOUNDED_SPECIFIC, "scan.bounded.specific-offsets"),
    ] {
        if let Some(raw) = c.get_optional(opt) {
            if !single {
                e.push(ConfigError::conflict(
                    [key, "topic"],
                    "specific offsets name partitions of one topic: set exactly one `topic`",
                ));
            } else if let Err(reason) = parse_specific_offsets(&raw, "") {
                e.push(ConfigError::Rejected {
                    key: key.to_owned(),
                    value: raw,
                    reason,
                });
            }
        }
    }
    e
}

/// The Kafka source's settings read from validated options.
#[derive(Debug, Clone)]
pub struct KafkaSourceOptions {
    config: ValidatedConfig,
}

impl KafkaSourceOptions {
    /// Validates `input` against [`source_options`]; every problem is reported at once.
    pub fn from_map(input: &BTreeMap<String, String>) -> Result<Self, ConfigErrors> {
        source_options()
            .validate(input)
            .map(|config| KafkaSourceOptions { config })
    }

    /// A source builder with these settings and `deserializer`.
    pub fn builder<T: Send + 'static>(
        &self,
        deserializer: impl KafkaDeserializer<T>,
    ) -> KafkaSourceBuilder<T> {
        self.configure(KafkaSource::builder().deserializer(deserializer))
    }

    /// `b` with these settings (everything but how records are decoded).
    pub(crate) fn configure<T: Send + 'static>(
        &self,
        mut b: KafkaSourceBuilder<T>,
    ) -> KafkaSourceBuilder<T> {
        let c = &self.config;
        for (k, v) in c.prefixed(PROPERTIES) {
            if k == "auto.offset.reset" {
                continue; // Flink's meaning (the group-offsets fallback), not librdkafka's
            }
            b = b.property(k.clone(), v.clone());
        }
        let topics = c.get(&TOPICS);
        let first = topics.first().cloned().unwrap_or_default();
        b = match c.get_optional(&TOPIC_PATTERN) {
            Some(p) => b.topic_pattern(&p),
            None => b.topics(topics),
        };
        let specific = |opt: &ConfigOption<String>| {
            c.get_optional(opt)
                .and_then(|raw| parse_specific_offsets(&raw, &first).ok())
                .unwrap_or_default()
        };
        let reset = match c.get(&AUTO_OFFSET_RESET) {
            AutoOffsetReset::Earliest => OffsetResetStrategy::Earliest,
            AutoOffsetReset::Latest => OffsetResetStrategy::Latest,
            AutoOffsetReset::None => OffsetResetStrategy::None,
        };
        b = b.starting_offsets(match c.get(&STARTUP_MODE) {
            StartupMode::EarliestOffset => StartingOffsets::Earliest,
            StartupMode::LatestOffset => StartingOffsets::Latest,
            StartupMode::GroupOffsets => StartingOffsets::Committed { reset },
            StartupMode::Timestamp => StartingOffsets::Timestamp(c.get(&STARTUP_TIMESTAMP)),
            StartupMode::SpecificOffsets => StartingOffsets::Specific(specific(&STARTUP_SPECIFIC)),
        });
        b = b.bounded(match c.get(&BOUNDED_MODE) {
            BoundedMode::Unbounded => StoppingOffsets::Unbounded,
            BoundedMode::LatestOffset => StoppingOffsets::Latest,
            BoundedMode::GroupOffsets => StoppingOffsets::Committed,
            BoundedMode::Timestamp => StoppingOffsets::Timestamp(c.get(&BOUNDED_TIMESTAMP)),
            BoundedMode::SpecificOffsets => StoppingOffsets::Specific(specific(&BOUNDED_SPECIFIC)),
        });
        b.discovery_interval(c.get(&DISCOVERY_INTERVAL))
            .malformed_records(c.get(&MALFORMED))
            .commit_offsets_on_checkpoint(c.get(&COMMIT_OFFSETS))
    }
}

impl<T: Send + 'static> KafkaSource<T> {
    /// A source from validated [`source_options`] decoding with `decoder`, at most `per_poll`
    /// elements per poll of its reader (the columnar source).
    #[cfg(weir_api_1_1)]
    pub(crate) fn from_config_decoding(
        config: &ValidatedConfig,
        decoder: std::sync::Arc<dyn crate::source::KafkaBatchDecoder<T>>,
        per_poll: usize,
    ) -> weir_connector_api::error::Result<Self> {
        KafkaSourceOptions {
            config: config.clone(),
        }
        .configure(KafkaSource::builder().batch_decoder(decoder, per_poll))
        .build()
    }

    /// A source from validated [`source_options`] and a deserializer.
    pub fn from_config(
        config: &ValidatedConfig,
        deserializer: impl KafkaDeserializer<T>,
    ) -> weir_connector_api::error::Result<Self> {
        KafkaSourceOptions {
            config: config.clone(),
        }
        .builder(deserializer)
        .build()
    }
}

/// The Kafka sink's options.
pub fn sink_options() -> OptionSet {
    OptionSet::new("kafka sink")
        .option(&BOOTSTRAP_SERVERS)
        .option(&SINK_TOPIC)
        .option(&DELIVERY_GUARANTEE)
        .option(&TRANSACTIONAL_ID_PREFIX)
        .option(&PARTITIONER)
        .option(&FLUSH_TIMEOUT)
        .prefix(PROPERTIES, "Passed to the librdkafka producer (e.g. `properties.transaction.timeout.ms`, `properties.compression.type`).")
        .cross_validator(|c| {
            let mut e = library_loading_properties(c);
            if c.get(&DELIVERY_GUARANTEE) == DeliveryGuarantee::ExactlyOnce
                && !c.is_set(&TRANSACTIONAL_ID_PREFIX)
            {
                e.push(ConfigError::conflict(
                    ["sink.delivery-guarantee", "sink.transactional-id-prefix"],
                    "exactly-once needs a transactional-id prefix, unique per job",
                ));
            }
            e
        })
}

/// The Kafka sink's settings read from validated options.
#[derive(Debug, Clone)]
pub struct KafkaSinkOptions {
    config: ValidatedConfig,
}

impl KafkaSinkOptions {
    /// Validates `input` against [`sink_options`]; every problem is reported at once.
    pub fn from_map(input: &BTreeMap<String, String>) -> Result<Self, ConfigErrors> {
        sink_options()
            .validate(input)
            .map(|config| KafkaSinkOptions { config })
    }

    /// The settings of a configuration validated against [`sink_options`] or a set that extends
    /// it (the pipeline factory's adds `key.fields`).
    pub fn from_config(config: &ValidatedConfig) -> Self {
        KafkaSinkOptions {
            config: config.clone(),
        }
    }

    /// A sink builder with these settings and `serializer`.
    pub fn builder<T: Send + Sync + 'static>(
        &self,
        serializer: impl KafkaRecordSerializer<T>,
    ) -> KafkaSinkBuilder<T> {
        self.configure(KafkaSink::builder().serializer(serializer))
    }

    /// `b` with these settings (everything but how records are encoded).
    pub(crate) fn configure<T: Send + Sync + 'static>(
        &self,
        b: KafkaSinkBuilder<T>,
    ) -> KafkaSinkBuilder<T> {
        let c = &self.config;
        let mut b = b
            .delivery_guarantee(c.get(&DELIVERY_GUARANTEE))
            .partitioner(c.get(&PARTITIONER))
            .flush_timeout(c.get(&FLUSH_TIMEOUT));
        for (k, v) in c.prefixed(PROPERTIES) {
            b = b.property(k.clone(), v.clone());
        }
        if let Some(t) = c.get_optional(&SINK_TOPIC) {
            b = b.topic(t);
        }
        if let Some(p) = c.get_optional(&TRANSACTIONAL_ID_PREFIX) {
            b = b.transactional_id_prefix(p);
        }
        b
    }
}

impl<T: Send + Sync + 'static> KafkaSink<T> {
    /// A sink from validated [`sink_options`] and a record serializer.
    pub fn from_config(
        config: &ValidatedConfig,
        serializer: impl KafkaRecordSerializer<T>,
    ) -> weir_connector_api::error::Result<Self> {
        KafkaSinkOptions::from_config(config)
            .builder(serializer)
            .build()
    }
}
