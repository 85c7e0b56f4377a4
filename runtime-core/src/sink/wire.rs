//! The codec of committable messages when they cross processes (cluster mode): a writer's
//! committables travel to a committer in another process.
//!
//! Version 1, integers big-endian: `u8 0` summary (`u64` subtask, number of subtasks,
//! checkpoint id, committables, failed), or `u8 1` committable (`u64` checkpoint id, `u64`
//! subtask, the committable as the sink's committer serializes it: `u32` version, `u32` length,
//! bytes).

use std::sync::Arc;

use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::sink::{
    CommittableMessage, CommittableSummary, CommittableWithLineage, CommitterCapability,
};
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

use super::Message;

const WHAT: &str = "committable message";

/// Writes committable messages with the committer's committable serializer.
pub(crate) struct CommittableCodec<W> {
    pub(crate) committer: Arc<dyn CommitterCapability<W>>,
}

fn get_usize(r: &mut StateReader<'_>) -> Result<usize, StateError> {
    usize::try_from(r.get_u64()?).map_err(|_| StateError::malformed(WHAT, "count too large"))
}

impl<W: 'static> VersionedSerializer<Message> for CommittableCodec<W> {
    fn version(&self) -> u32 {
        1
    }

    fn serialize(&self, value: &Message) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        match value {
            CommittableMessage::Summary(s) => {
                w.put_u8(0)
                    .put_u64(s.subtask_id as u64)
                    .put_u64(s.number_of_subtasks as u64)
                    .put_u64(s.checkpoint_id.0)
                    .put_u64(s.number_of_committables as u64)
                    .put_u64(s.number_of_failed as u64);
            }
            CommittableMessage::WithLineage(c) => {
                let bytes = self
                    .committer
                    .serialize_committable(&c.committable)
                    .map_err(|e| {
                        StateError::malformed(WHAT, format!("the sink's committable: {e}"))
                    })?;
                w.put_u8(1)
                    .put_u64(c.checkpoint_id.0)
                    .put_u64(c.subtask_id as u64)
                    .put_u32(bytes.version)
                    .put_bytes(&bytes.bytes);
            }
        }
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<Message, StateError> {
        if version != 1 {
            return Err(StateError::unknown_version(WHAT, version, &[1]));
        }
        let mut r = StateReader::new(bytes);
        let message = match r.get_u8()? {
            0 => CommittableMessage::Summary(CommittableSummary {
                subtask_id: get_usize(&mut r)?,
                number_of_subtasks: get_usize(&mut r)?,
                checkpoint_id: CheckpointId(r.get_u64()?),
                number_of_committables: get_usize(&mut r)?,
                number_of_failed: get_usize(&mut r)?,
            }),
            1 => {
                let checkpoint_id = CheckpointId(r.get_u64()?);
                let subtask_id = get_usize(&mut r)?;
                let bytes = VersionedBytes {
                    version: r.get_u32()?,
                    bytes: r.get_bytes()?.to_vec(),
                };
                let committable = self
                    .committer
                    .deserialize_committable(&bytes)
                    .map_err(|e| {
                        StateError::malformed(WHAT, format!("the sink's committable: {e}"))
                    })?;
                CommittableMessage::WithLineage(CommittableWithLineage {
                    committable,
                    checkpoint_id,
                    subtask_id,
                })
            }
            other => return Err(StateError::malformed(WHAT, format!("kind {other}"))),
        };
        r.finish()?;
        Ok(message)
    }
}
