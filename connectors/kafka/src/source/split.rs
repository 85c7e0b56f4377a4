//! Splits (one per topic-partition, with the next offset to read and an optional stopping
//! offset) with their versioned serializer, and the positions the reader commits.

use weir_connector_api::source::SourceSplit;
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

/// `starting_offset` value meaning "the partition's earliest offset" (resolved by the reader).
pub const EARLIEST_OFFSET: i64 = -2;

/// One topic-partition with its reading progress.
///
/// `starting_offset` is the next offset to read (or [`EARLIEST_OFFSET`]); `stopping_offset`,
/// when set, is the first offset *not* to read: the split finishes when it reaches it (bounded
/// mode).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaPartitionSplit {
    id: String,
    topic: String,
    partition: i32,
    /// The next offset to read, or [`EARLIEST_OFFSET`].
    pub starting_offset: i64,
    /// The first offset not to read, in bounded mode.
    pub stopping_offset: Option<i64>,
}

impl KafkaPartitionSplit {
    /// A split of `topic`/`partition` starting at `starting_offset`.
    pub fn new(
        topic: impl Into<String>,
        partition: i32,
        starting_offset: i64,
        stopping_offset: Option<i64>,
    ) -> Self {
        let topic = topic.into();
        KafkaPartitionSplit {
            id: split_id(&topic, partition),
            topic,
            partition,
            starting_offset,
            stopping_offset,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Whether nothing is left to read: the start has reached the stopping offset.
    pub fn is_finished(&self) -> bool {
        match self.stopping_offset {
            Some(stop) => self.starting_offset >= stop,
            None => false,
        }
    }
}

impl SourceSplit for KafkaPartitionSplit {
    fn split_id(&self) -> &str {
        &self.id
    }
}

/// A position in a topic-partition: the next offset to read there (what a consumer group
/// commits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPartitionOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

impl KafkaPartitionSplit {
    /// The split's position for the consumer group: its next offset, when that is a real
    /// offset (not [`EARLIEST_OFFSET`] still to be resolved).
    pub fn position(&self) -> Option<TopicPartitionOffset> {
        (self.starting_offset >= 0).then(|| TopicPartitionOffset {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.starting_offset,
        })
    }
}

/// The split id of a topic-partition: `<topic>-<partition>` (Flink's form).
pub(crate) fn split_id(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Serializes [`KafkaPartitionSplit`]s. Version 1: topic (`u32` length + UTF-8), partition
/// (`i32`), starting offset (`i64`), stopping offset (optional `i64`), big-endian.
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaPartitionSplitSerializer;

impl KafkaPartitionSplitSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;

    pub(crate) fn write(w: &mut StateWriter, s: &KafkaPartitionSplit) {
        w.put_str(&s.topic)
            .put_i32(s.partition)
            .put_i64(s.starting_offset)
            .put_opt_i64(s.stopping_offset);
    }

    pub(crate) fn read(r: &mut StateReader<'_>) -> Result<KafkaPartitionSplit, StateError> {
        let topic = r.get_str()?.to_owned();
        let partition = r.get_i32()?;
        let starting = r.get_i64()?;
        let stopping = r.get_opt_i64()?;
        Ok(KafkaPartitionSplit::new(
            topic, partition, starting, stopping,
        ))
    }
}

impl VersionedSerializer<KafkaPartitionSplit> for KafkaPartitionSplitSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }

    fn serialize(&self, split: &KafkaPartitionSplit) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        Self::write(&mut w, split);
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<KafkaPartitionSplit, StateError> {
        if version != Self::VERSION {
            return Err(StateError::unknown_version(
                "kafka partition split",
                version,
                &[Self::VERSION],
            ));
        }
        let mut r = StateReader::new(bytes);
        let split = Self::read(&mut r)?;
        r.finish()?;
        Ok(split)
    }
}
