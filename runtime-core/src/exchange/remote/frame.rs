//! The frames of a cross-process channel: one per element, versioned and checksummed (the
//! layout is in the parent module's docs).

use std::sync::Arc;

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};
use weir_connector_api::watermark::Watermark;

use super::RemoteChannelError;
use crate::element::{Barrier, Batch, Event, SnapshotType, StreamElement};

/// The frame format version this build writes and reads.
pub const FRAME_VERSION: u8 = 1;
const MAGIC: [u8; 2] = *b"WX";
const HEADER_LEN: usize = 4;
const CRC_LEN: usize = 4;

const KIND_BATCH: u8 = 1;
const KIND_WATERMARK: u8 = 2;
const KIND_IDLE: u8 = 3;
const KIND_BARRIER: u8 = 4;
const KIND_END_OF_DATA: u8 = 5;
const KIND_OVERTAKING: u8 = 6;

/// How a cross-process channel's records are written: the stream's codec and the channel's
/// name for errors.
pub(super) struct Codec<T> {
    pub(super) serializer: Arc<dyn VersionedSerializer<T>>,
    pub(super) channel: String,
}

impl<T> Codec<T> {
    fn codec_error(&self, source: StateError) -> RemoteChannelError {
        RemoteChannelError::Codec {
            channel: self.channel.clone(),
            source,
        }
    }

    fn put_batch(&self, w: &mut StateWriter, batch: &Batch<T>) -> Result<(), RemoteChannelError> {
        w.put_u32(self.serializer.version())
            .put_len(batch.records.len());
        for record in &batch.records {
            let bytes = self
                .serializer
                .serialize(record)
                .map_err(|e| self.codec_error(e))?;
            w.put_bytes(&bytes);
        }
        w.put_len(batch.timestamps.len());
        for t in &batch.timestamps {
            w.put_i64(*t);
        }
        Ok(())
    }

    fn get_batch(&self, r: &mut StateReader<'_>) -> Result<Batch<T>, DecodeError> {
        let version = r.get_u32()?;
        let n = r.get_len()?;
        let mut records = Vec::with_capacity(n.min(r.remaining() / 4));
        for _ in 0..n {
            let bytes = r.get_bytes()?;
            records.push(
                self.serializer
                    .deserialize(version, bytes)
                    .map_err(DecodeError::Codec)?,
            );
        }
        let times = r.get_len()?;
        if times != 0 && times != n {
            return Err(DecodeError::Structure(format!(
                "{n} records but {times} event times"
            )));
        }
        let mut timestamps = Vec::with_capacity(times.min(r.remaining() / 8));
        for _ in 0..times {
            timestamps.push(r.get_i64()?);
        }
        Ok(Batch {
            records,
            timestamps,
        })
    }

    /// One element as a frame.
    pub(super) fn encode(&self, element: &StreamElement<T>) -> Result<Vec<u8>, RemoteChannelError> {
        let records = match element {
            StreamElement::Batch(b) => b.len(),
            StreamElement::Event(_) => 0,
        };
        let mut w = start(
            records,
            match element {
                StreamElement::Batch(_) => KIND_BATCH,
                StreamElement::Event(Event::Watermark(_)) => KIND_WATERMARK,
                StreamElement::Event(Event::Idle(_)) => KIND_IDLE,
                StreamElement::Event(Event::Barrier(_)) => KIND_BARRIER,
                StreamElement::Event(Event::EndOfData) => KIND_END_OF_DATA,
            },
        );
        match element {
            StreamElement::Batch(batch) => self.put_batch(&mut w, batch)?,
            StreamElement::Event(Event::Watermark(wm)) => {
                w.put_i64(wm.0);
            }
            StreamElement::Event(Event::Idle(idle)) => {
                w.put_bool(*idle);
            }
            StreamElement::Event(Event::Barrier(barrier)) => put_barrier(&mut w, *barrier),
            StreamElement::Event(Event::EndOfData) => {}
        }
        self.finish(w)
    }

    /// An overtaking barrier as a frame: its place (`sent_before` elements precede it) and the
    /// sender's partly filled batch, queued before its place.
    pub(super) fn encode_overtaking(
        &self,
        sent_before: u64,
        barrier: Barrier,
        pending: &Batch<T>,
    ) -> Result<Vec<u8>, RemoteChannelError> {
        let mut w = start(pending.len(), KIND_OVERTAKING);
        w.put_u64(sent_before);
        put_barrier(&mut w, barrier);
        w.put_bool(!pending.is_empty());
        if !pending.is_empty() {
            self.put_batch(&mut w, pending)?;
        }
        self.finish(w)
    }

    fn finish(&self, w: StateWriter) -> Result<Vec<u8>, RemoteChannelError> {
        let mut bytes = w.finish().map_err(|e| self.codec_error(e))?;
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        Ok(bytes)
    }

    /// Reads one frame.
    pub(super) fn decode(&self, frame: &[u8]) -> Result<Decoded<T>, RemoteChannelError> {
        let damaged = |reason: String| RemoteChannelError::Damaged {
            channel: self.channel.clone(),
            len: frame.len(),
            reason,
        };
        let Some((body, crc)) = frame
            .len()
            .checked_sub(CRC_LEN)
            .filter(|n| *n >= HEADER_LEN)
            .map(|n| frame.split_at(n))
        else {
            return Err(damaged(format!(
                "shorter than the {} bytes of a frame's header and checksum",
                HEADER_LEN + CRC_LEN
            )));
        };
        let expected = u32::from_be_bytes(crc.try_into().unwrap_or_default());
        let actual = crc32fast::hash(body);
        if expected != actual {
            return Err(damaged(format!(
                "checksum {expected:#010x} recorded, {actual:#010x} computed"
            )));
        }
        let [m0, m1, version, kind] = body
            .first_chunk::<HEADER_LEN>()
            .copied()
            .unwrap_or_default();
        if [m0, m1] != MAGIC {
            return Err(damaged(
                "it does not start with the frame marker `WX`".into(),
            ));
        }
        if version != FRAME_VERSION || !(KIND_BATCH..=KIND_OVERTAKING).contains(&kind) {
            return Err(RemoteChannelError::Unknown {
                channel: self.channel.clone(),
                version,
                kind,
            });
        }
        let mut r = StateReader::new(body.get(HEADER_LEN..).unwrap_or_default());
        let decoded = self.decode_payload(kind, &mut r).and_then(|decoded| {
            r.finish()?;
            Ok(decoded)
        });
        decoded.map_err(|e| match e {
            DecodeError::Codec(source) => self.codec_error(source),
            DecodeError::Structure(reason) => damaged(reason),
        })
    }

    fn decode_payload(&self, kind: u8, r: &mut StateReader<'_>) -> Result<Decoded<T>, DecodeError> {
        let event = |e| Ok(Decoded::Element(StreamElement::Event(e)));
        match kind {
            KIND_BATCH => Ok(Decoded::Element(StreamElement::Batch(self.get_batch(r)?))),
            KIND_WATERMARK => event(Event::Watermark(Watermark(r.get_i64()?))),
            KIND_IDLE => event(Event::Idle(r.get_bool()?)),
            KIND_BARRIER => event(Event::Barrier(get_barrier(r)?)),
            KIND_END_OF_DATA => event(Event::EndOfData),
            _ => {
                let sent_before = r.get_u64()?;
                let barrier = get_barrier(r)?;
                let pending = if r.get_bool()? {
                    Some(self.get_batch(r)?)
                } else {
                    None
                };
                Ok(Decoded::Overtaking {
                    sent_before,
                    barrier,
                    pending,
                })
            }
        }
    }
}

/// Why a frame's payload could not be read.
enum DecodeError {
    Codec(StateError),
    Structure(String),
}

impl From<StateError> for DecodeError {
    fn from(e: StateError) -> Self {
        DecodeError::Structure(e.to_string())
    }
}

/// A frame, read.
pub(super) enum Decoded<T> {
    /// An element in order.
    Element(StreamElement<T>),
    /// An overtaking barrier, with the number of elements sent before its place and the
    /// sender's pending batch (queued before its place).
    Overtaking {
        sent_before: u64,
        barrier: Barrier,
        pending: Option<Batch<T>>,
    },
}

/// A frame's writer, with room for `records` records of 8 bytes and their times.
fn start(records: usize, kind: u8) -> StateWriter {
    let mut w = StateWriter::with_capacity(64 + records * 20);
    w.put_raw(&MAGIC).put_u8(FRAME_VERSION).put_u8(kind);
    w
}

fn put_barrier(w: &mut StateWriter, barrier: Barrier) {
    w.put_u64(barrier.checkpoint_id.0)
        .put_u8(match barrier.kind {
            SnapshotType::Checkpoint => 0,
            SnapshotType::Savepoint => 1,
        });
}

fn get_barrier(r: &mut StateReader<'_>) -> Result<Barrier, DecodeError> {
    let checkpoint_id = CheckpointId(r.get_u64()?);
    let kind = match r.get_u8()? {
        0 => SnapshotType::Checkpoint,
        1 => SnapshotType::Savepoint,
        other => {
            return Err(DecodeError::Structure(format!(
                "barrier kind {other} (0 checkpoint, 1 savepoint)"
            )))
        }
    };
    Ok(Barrier {
        checkpoint_id,
        kind,
    })
}
