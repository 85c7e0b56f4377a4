//! The kafka connector (in progress).

pub mod config;
pub mod error;
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
