//! Channel state: the records in flight that an unaligned checkpoint holds (those still queued
//! before a channel's barrier when its task took the snapshot), stored with the task's other
//! state and replayed on restore before new input.
//!
//! One entry per input channel that had records in flight, version 2: the record serializer's
//! version (u32), the number of records, each record's bytes, then the number of event times
//! (0 when no record had one, else one per record) and each time (i64, epoch milliseconds,
//! `i64::MIN` for a record without one). Version 1 (written before records carried their times
//! between tasks) is the same without the times; it is still read. On a rescale, entries of a
//! key-partitioned input go to every new subtask, which keeps the records of its own keys (as
//! keyed state moves); entries of other inputs are dealt round-robin, whole, so each channel's
//! records stay in order (Flink's rescaling of channel state does the same).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use weir_connector_api::checkpoint::VersionedBytes;
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

use super::target_of;
use crate::element::Batch;
use crate::operator::NO_TIMESTAMP;

/// One channel's records in flight, serialized, with their event times: `timestamps` is empty
/// while no record had one, else one per record up to the last that had one (the rest are
/// [`NO_TIMESTAMP`]).
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    records: Vec<Vec<u8>>,
    timestamps: Vec<i64>,
}

impl Recorded {
    /// Whether no record is recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Forgets everything recorded.
    pub(crate) fn clear(&mut self) {
        self.records.clear();
        self.timestamps.clear();
    }
}

/// The state name of channel state dealt round-robin on a rescale.
pub(crate) const CHANNEL_STATE: &str = "channels";
/// The state name of channel state of key-partitioned inputs: every subtask sees all of it and
/// keeps its own keys.
const KEYED_CHANNEL_STATE: &str = "union:channels";
const ENTRY_VERSION: u32 = 2;
/// Entries without event times.
const ENTRY_VERSION_1: u32 = 1;

/// Where a stream's channel-state serializer is kept: shared by the streams on both sides of
/// its exchanges, so it can be declared before or after them.
pub(crate) type SerializerSlot<T> = Arc<Mutex<Option<Arc<dyn VersionedSerializer<T>>>>>;

/// How an input's channel state is shared out when the parallelism changes.
pub(crate) enum Rescale<T> {
    /// Whole channels round-robin.
    RoundRobin,
    /// Record by record, by the key the input is partitioned by.
    ByKey(Arc<dyn Fn(&T) -> u64 + Send + Sync>),
}

impl<T> Clone for Rescale<T> {
    fn clone(&self) -> Self {
        match self {
            Rescale::RoundRobin => Rescale::RoundRobin,
            Rescale::ByKey(key) => Rescale::ByKey(Arc::clone(key)),
        }
    }
}

/// Writes records in flight as channel state and reads them back.
pub(crate) struct ChannelStateCodec<T> {
    serializer: Arc<dyn VersionedSerializer<T>>,
    rescale: Rescale<T>,
}

impl<T> Clone for ChannelStateCodec<T> {
    fn clone(&self) -> Self {
        ChannelStateCodec {
            serializer: Arc::clone(&self.serializer),
            rescale: self.rescale.clone(),
        }
    }
}

impl<T> ChannelStateCodec<T> {
    pub(crate) fn new(serializer: Arc<dyn VersionedSerializer<T>>, rescale: Rescale<T>) -> Self {
        ChannelStateCodec {
            serializer,
            rescale,
        }
    }

    /// The name the state is stored under.
    pub(crate) fn state_name(&self) -> &'static str {
        match self.rescale {
            Rescale::RoundRobin => CHANNEL_STATE,
            Rescale::ByKey(_) => KEYED_CHANNEL_STATE,
        }
    }

    /// Serializes the records of `batch`, with their times, onto `recorded`.
    pub(crate) fn record(
        &self,
        batch: &Batch<T>,
        recorded: &mut Recorded,
    ) -> Result<(), StateError> {
        if batch.timestamps.len() == batch.records.len() && !batch.timestamps.is_empty() {
            recorded
                .timestamps
                .resize(recorded.records.len(), NO_TIMESTAMP);
            recorded.timestamps.extend_from_slice(&batch.timestamps);
        }
        recorded.records.reserve(batch.records.len());
        for record in &batch.records {
            recorded.records.push(self.serializer.serialize(record)?);
        }
        Ok(())
    }

    /// One channel's recorded records as a state entry.
    pub(crate) fn encode(&self, recorded: &Recorded) -> Result<VersionedBytes, StateError> {
        let records = &recorded.records;
        let size: usize = records.iter().map(|r| r.len() + 4).sum();
        let timed = !recorded.timestamps.is_empty();
        let mut w =
            StateWriter::with_capacity(size + 24 + if timed { records.len() * 8 } else { 0 });
        w.put_u32(self.serializer.version()).put_len(records.len());
        for record in records {
            w.put_bytes(record);
        }
        if timed {
            w.put_len(records.len());
            for i in 0..records.len() {
                w.put_i64(recorded.timestamps.get(i).copied().unwrap_or(NO_TIMESTAMP));
            }
        } else {
            w.put_len(0);
        }
        Ok(VersionedBytes {
            version: ENTRY_VERSION,
            bytes: w.finish()?,
        })
    }

    /// The records this subtask (of `parallelism`) replays from its restored state, in order,
    /// with their event times (none when no record had one).
    pub(crate) fn restore(
        &self,
        state: &BTreeMap<String, Vec<VersionedBytes>>,
        subtask: usize,
        parallelism: usize,
    ) -> Result<Batch<T>, StateError> {
        let mut replay = Batch::untimed(Vec::new());
        let entries = [CHANNEL_STATE, KEYED_CHANNEL_STATE]
            .into_iter()
            .filter_map(|name| state.get(name))
            .flatten();
        for entry in entries {
            let batch = self.decode(entry)?;
            let mut times = batch.timestamps.into_iter();
            for record in batch.records {
                let timestamp = times.next().unwrap_or(NO_TIMESTAMP);
                let mine = match &self.rescale {
                    Rescale::RoundRobin => true,
                    Rescale::ByKey(key) => target_of(key(&record), parallelism.max(1)) == subtask,
                };
                if mine {
                    if timestamp != NO_TIMESTAMP {
                        replay.timestamps.resize(replay.records.len(), NO_TIMESTAMP);
                        replay.timestamps.push(timestamp);
                    }
                    replay.records.push(record);
                }
            }
        }
        if !replay.timestamps.is_empty() {
            replay.timestamps.resize(replay.records.len(), NO_TIMESTAMP);
        }
        Ok(replay)
    }

    fn decode(&self, entry: &VersionedBytes) -> Result<Batch<T>, StateError> {
        if entry.version != ENTRY_VERSION && entry.version != ENTRY_VERSION_1 {
            return Err(StateError::unknown_version(
                "channel state",
                entry.version,
                &[ENTRY_VERSION_1, ENTRY_VERSION],
            ));
        }
        let mut r = StateReader::new(&entry.bytes);
        let version = r.get_u32()?;
        let n = r.get_len()?;
        let mut records = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            records.push(self.serializer.deserialize(version, r.get_bytes()?)?);
        }
        let mut timestamps = Vec::new();
        if entry.version >= ENTRY_VERSION {
            let times = r.get_len()?;
            if times != 0 && times != n {
                return Err(StateError::malformed(
                    "channel state",
                    format!("{n} records but {times} event times"),
                ));
            }
            timestamps.reserve(times.min(1 << 16));
            for _ in 0..times {
                timestamps.push(r.get_i64()?);
            }
        }
        r.finish()?;
        Ok(Batch {
            records,
            timestamps,
        })
    }
}

#[cfg(test)]
mod tests {
    use weir_connector_api::state::U64Serializer;

    use super::*;

    fn entry(codec: &ChannelStateCodec<u64>, values: &[u64]) -> Result<VersionedBytes, StateError> {
        let mut recorded = Recorded::default();
        codec.record(&Batch::untimed(values.to_vec()), &mut recorded)?;
        codec.encode(&recorded)
    }

    #[test]
    fn records_round_trip_in_order_and_damage_is_refused() -> Result<(), StateError> {
        let codec = ChannelStateCodec::new(Arc::new(U64Serializer), Rescale::RoundRobin);
        let e = entry(&codec, &[5, 3, 9])?;
        let state = BTreeMap::from([(CHANNEL_STATE.to_owned(), vec![e.clone()])]);
        assert_eq!(codec.restore(&state, 0, 1)?, Batch::untimed(vec![5, 3, 9]));
        let mut truncated = e.clone();
        truncated.bytes.pop();
        assert!(codec.decode(&truncated).is_err());
        let future = VersionedBytes {
            version: 3,
            bytes: e.bytes,
        };
        assert!(matches!(
            codec.decode(&future),
            Err(StateError::UnknownVersion { .. })
        ));
        Ok(())
    }

    /// The records part of an entry (both versions) holding the `u64`s 1 and 2.
    fn two_records() -> Vec<u8> {
        [
            &[0, 0, 0, 1][..],         // the record serializer's version
            &[0, 0, 0, 2],             // two records
            &[0, 0, 0, 8],             // the first one's length
            &[0, 0, 0, 0, 0, 0, 0, 1], // 1
            &[0, 0, 0, 8],
            &[0, 0, 0, 0, 0, 0, 0, 2], // 2
        ]
        .concat()
    }

    /// Version 1 (no event times), byte for byte: checkpoints written before records carried
    /// their times between tasks stay readable.
    #[test]
    fn version_1_entries_stay_readable() -> Result<(), StateError> {
        let codec = ChannelStateCodec::new(Arc::new(U64Serializer), Rescale::RoundRobin);
        let golden = two_records();
        let state = BTreeMap::from([(
            CHANNEL_STATE.to_owned(),
            vec![VersionedBytes {
                version: 1,
                bytes: golden,
            }],
        )]);
        assert_eq!(codec.restore(&state, 0, 1)?, Batch::untimed(vec![1, 2]));
        Ok(())
    }

    /// Version 2 of an entry, byte for byte: checkpoints written today must stay readable.
    #[test]
    fn version_2_entries_keep_their_format() -> Result<(), StateError> {
        let codec = ChannelStateCodec::new(Arc::new(U64Serializer), Rescale::RoundRobin);
        let records = two_records();
        // Without event times: no times follow.
        let untimed = [&records[..], &[0, 0, 0, 0]].concat();
        let written = entry(&codec, &[1, 2])?;
        assert_eq!((written.version, &written.bytes), (2, &untimed));
        // With them: the first record has none (i64::MIN), the second 1000.
        let timed = [
            &records[..],
            &[0, 0, 0, 2],
            &[0x80, 0, 0, 0, 0, 0, 0, 0],
            &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],
        ]
        .concat();
        let mut recorded = Recorded::default();
        codec.record(&Batch::untimed(vec![1]), &mut recorded)?;
        let second = Batch {
            records: vec![2],
            timestamps: vec![1000],
        };
        codec.record(&second, &mut recorded)?;
        let written = codec.encode(&recorded)?;
        assert_eq!((written.version, &written.bytes), (2, &timed));
        for (bytes, expected) in [
            (untimed, Batch::untimed(vec![1, 2])),
            (
                timed,
                Batch {
                    records: vec![1, 2],
                    timestamps: vec![NO_TIMESTAMP, 1000],
                },
            ),
        ] {
            let state = BTreeMap::from([(
                CHANNEL_STATE.to_owned(),
                vec![VersionedBytes { version: 2, bytes }],
            )]);
            assert_eq!(codec.restore(&state, 0, 1)?, expected);
        }
        Ok(())
    }

    #[test]
    fn a_count_of_times_other_than_the_records_is_refused() {
        let codec = ChannelStateCodec::new(Arc::new(U64Serializer), Rescale::RoundRobin);
        let bytes = [
            &[0, 0, 0, 1][..],
            &[0, 0, 0, 1],
            &[0, 0, 0, 8],
            &[0, 0, 0, 0, 0, 0, 0, 1],
            &[0, 0, 0, 2], // two times for one record
            &[0, 0, 0, 0, 0, 0, 0, 1],
            &[0, 0, 0, 0, 0, 0, 0, 2],
        ]
        .concat();
        let err = codec.decode(&VersionedBytes { version: 2, bytes });
        assert!(
            matches!(&err, Err(StateError::Malformed { reason, .. }) if reason.contains("1 records but 2 event times")),
            "{err:?}"
        );
    }

    #[test]
    fn keyed_channel_state_is_split_by_key_over_a_new_parallelism() -> Result<(), StateError> {
        let codec = ChannelStateCodec::new(
            Arc::new(U64Serializer),
            Rescale::ByKey(Arc::new(|v: &u64| *v)),
        );
        assert_eq!(codec.state_name(), KEYED_CHANNEL_STATE);
        let values: Vec<u64> = (0..200).collect();
        let state = BTreeMap::from([(
            KEYED_CHANNEL_STATE.to_owned(),
            vec![
                entry(&codec, &values[..120])?,
                entry(&codec, &values[120..])?,
            ],
        )]);
        let mut all = Vec::new();
        for subtask in 0..3 {
            let mine = codec.restore(&state, subtask, 3)?.records;
            assert!(mine.iter().all(|v| target_of(*v, 3) == subtask));
            all.extend(mine);
        }
        all.sort_unstable();
        assert_eq!(all, values);
        // Records keep their event times when they are split by key.
        let timed = |values: &[u64]| -> Result<VersionedBytes, StateError> {
            let mut recorded = Recorded::default();
            let batch = Batch {
                records: values.to_vec(),
                timestamps: values.iter().map(|v| 1000 + *v as i64).collect(),
            };
            codec.record(&batch, &mut recorded)?;
            codec.encode(&recorded)
        };
        let state = BTreeMap::from([(
            KEYED_CHANNEL_STATE.to_owned(),
            vec![timed(&values[..120])?, timed(&values[120..])?],
        )]);
        for subtask in 0..3 {
            let mine = codec.restore(&state, subtask, 3)?;
            assert_eq!(mine.timestamps.len(), mine.records.len());
            for (v, t) in mine.records.iter().zip(&mine.timestamps) {
                assert_eq!(*t, 1000 + *v as i64);
            }
        }
        Ok(())
    }
}
