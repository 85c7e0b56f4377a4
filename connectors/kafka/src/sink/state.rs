//! What the Kafka sink checkpoints, with its versioned serializers: the committable (one
//! prepared transaction) and the writer state (the transactional-id prefix in use).

use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

/// What the committer commits: one prepared transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaCommittable {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id that holds the transaction.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
}

/// Serializes [`KafkaCommittable`]. Version 1: id (`u32` length + UTF-8), producer id (`i64`),
/// epoch (`i32`), big-endian.
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaCommittableSerializer;

impl KafkaCommittableSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<KafkaCommittable> for KafkaCommittableSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }
    fn serialize(&self, c: &KafkaCommittable) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_str(&c.transactional_id)
            .put_i64(c.producer_id)
            .put_i32(i32::from(c.epoch));
        w.finish()
    }
    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<KafkaCommittable, StateError> {
        if version != Self::VERSION {
            return Err(StateError::unknown_version(
                "kafka committable",
                version,
                &[Self::VERSION],
            ));
        }
        let mut r = StateReader::new(bytes);
        let transactional_id = r.get_str()?.to_owned();
        let producer_id = r.get_i64()?;
        let epoch = r.get_i32()?;
        r.finish()?;
        Ok(KafkaCommittable {
            transactional_id,
            producer_id,
            epoch: i16::try_from(epoch).unwrap_or(i16::MAX),
        })
    }
}

/// The writer's checkpointed state: the transactional-id prefix in use (so a restored job with a
/// changed prefix still aborts the old prefix's lingering transactions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaWriterState {
    /// The prefix.
    pub transactional_id_prefix: String,
}

/// Serializes [`KafkaWriterState`]. Version 1: the prefix (`u32` length + UTF-8).
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaWriterStateSerializer;

impl KafkaWriterStateSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<KafkaWriterState> for KafkaWriterStateSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }
    fn serialize(&self, s: &KafkaWriterState) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_str(&s.transactional_id_prefix);
        w.finish()
    }
    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<KafkaWriterState, StateError> {
        if version != Self::VERSION {
            return Err(StateError::unknown_version(
                "kafka writer state",
                version,
                &[Self::VERSION],
            ));
        }
        let mut r = StateReader::new(bytes);
        let prefix = r.get_str()?.to_owned();
        r.finish()?;
        Ok(KafkaWriterState {
            transactional_id_prefix: prefix,
        })
    }
}
