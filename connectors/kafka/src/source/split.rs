//! Splits (one per topic-partition, with the next offset to read and an optional stopping
//! offset) and the enumerator's checkpoint, with their versioned serializers.

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

/// The split id of a topic-partition: `<topic>-<partition>` (Flink's form).
pub fn split_id(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Serializes [`KafkaPartitionSplit`]s. Version 1: topic (`u32` length + UTF-8), partition
/// (`i32`), starting offset (`i64`), stopping offset (optional `i64`), big-endian.
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaPartitionSplitSerializer;

impl KafkaPartitionSplitSerializer {
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
        1
    }

    fn serialize(&self, split: &KafkaPartitionSplit) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        Self::write(&mut w, split);
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<KafkaPartitionSplit, StateError> {
        if version != 1 {
            return Err(StateError::unknown_version(
                "kafka partition split",
                version,
                &[1],
            ));
        }
        let mut r = StateReader::new(bytes);
        let split = Self::read(&mut r)?;
        r.finish()?;
        Ok(split)
    }
}

/// The enumerator's checkpoint: the partitions already handed to readers, the splits not yet
/// assigned, and whether the first discovery ran (partitions found after it start from the
/// earliest offset).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaEnumeratorState {
    /// Topic-partitions assigned to readers (their progress lives in the readers' state).
    pub assigned: Vec<(String, i32)>,
    /// Discovered splits waiting for their reader.
    pub unassigned: Vec<KafkaPartitionSplit>,
    /// Whether the initial discovery completed.
    pub initial_discovery_done: bool,
}

/// Serializes [`KafkaEnumeratorState`]. Version 1: assigned count + (topic, partition), unassigned
/// count + splits (as [`KafkaPartitionSplitSerializer`] v1), the flag as a byte.
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaEnumeratorStateSerializer;

impl VersionedSerializer<KafkaEnumeratorState> for KafkaEnumeratorStateSerializer {
    fn version(&self) -> u32 {
        1
    }

    fn serialize(&self, state: &KafkaEnumeratorState) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_len(state.assigned.len());
        for (topic, partition) in &state.assigned {
            w.put_str(topic).put_i32(*partition);
        }
        w.put_len(state.unassigned.len());
        for split in &state.unassigned {
            KafkaPartitionSplitSerializer::write(&mut w, split);
        }
        w.put_bool(state.initial_discovery_done);
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<KafkaEnumeratorState, StateError> {
        if version != 1 {
            return Err(StateError::unknown_version(
                "kafka enumerator state",
                version,
                &[1],
            ));
        }
        let mut r = StateReader::new(bytes);
        let n = r.get_len()?;
        let mut assigned = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let topic = r.get_str()?.to_owned();
            assigned.push((topic, r.get_i32()?));
        }
        let n = r.get_len()?;
        let mut unassigned = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            unassigned.push(KafkaPartitionSplitSerializer::read(&mut r)?);
        }
        let initial_discovery_done = r.get_bool()?;
        r.finish()?;
        Ok(KafkaEnumeratorState {
            assigned,
            unassigned,
            initial_discovery_done,
        })
    }
}
