//! The Kafka connector of Weir: a FLIP-27 [`KafkaSource`] (topic-partitions as splits,
//! discovery, bounded modes, FLIP-208 record evaluator, per-partition watermarks and split-level
//! alignment) and a SinkV2 [`KafkaSink`] (`none`, `at-least-once`, or `exactly-once` through
//! Kafka transactions committed after checkpoints), on `rdkafka`. The crate README has the
//! options tables, the exact guarantees and the state formats; [`factory`] registers the
//! `kafka` connector for pipeline files, and on API line 1.1 its `columnar` module reads and
//! writes Arrow chunks natively for columnar pipelines (the same source and sink, their state
//! interchangeable with the row path's).
//!
//! ```no_run
//! use std::time::Duration;
//! use weir_connector_api::watermark::WatermarkStrategy;
//! use weir_connector_kafka::sink::RecordSerializer;
//! use weir_connector_kafka::source::{StartingOffsets, Utf8Deserializer};
//! use weir_connector_kafka::{DeliveryGuarantee, KafkaSink, KafkaSource};
//! use weir_runtime::{CheckpointConfig, JobConfig, StreamEnvironment};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let source = KafkaSource::builder()
//!     .bootstrap_servers("localhost:9092")
//!     .topics(["lines"])
//!     .starting_offsets(StartingOffsets::Earliest)
//!     .deserializer(Utf8Deserializer)
//!     .build()?;
//! let sink = KafkaSink::builder()
//!     .bootstrap_servers("localhost:9092")
//!     .topic("upper")
//!     .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
//!     .transactional_id_prefix("upper-job") // unique per job
//!     .checkpoint_interval(Duration::from_secs(1))
//!     .serializer(RecordSerializer::<String>::string())
//!     .build()?;
//! let env = StreamEnvironment::new(
//!     JobConfig::new("upper").checkpointing(CheckpointConfig::every(Duration::from_secs(1))),
//! );
//! env.from_source(source, WatermarkStrategy::no_watermarks(), "lines")
//!     .uid("lines")
//!     .map(|s: String| s.to_uppercase())
//!     .sink_to(sink);
//! env.build()?.execute().await;
//! # Ok(())
//! # }
//! ```

#[cfg(weir_api_1_1)]
mod check;
#[cfg(weir_api_1_1)]
pub mod columnar;
pub mod config;
mod error;
pub mod factory;
mod protocol;
pub mod sink;
pub mod source;

pub use sink::{DeliveryGuarantee, KafkaSink};
pub use source::KafkaSource;

/// What the source does with a record its deserializer rejects (`scan.malformed-records`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MalformedRecordPolicy {
    /// Fail the job with the partition, offset and reason (the default).
    Fail,
    /// Skip it, count it in `numRecordsInErrors` and log it.
    Skip,
}

weir_connector_api::config_enum!(MalformedRecordPolicy {
    "fail" => Fail,
    "skip" => Skip,
});
