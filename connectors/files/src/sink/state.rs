//! What the file sink checkpoints, each with a versioned serializer: committables, writer state
//! (in-progress files), and the state of the compaction stages (files held by the coordinator,
//! compaction requests in flight at the compactors).

use std::collections::BTreeMap;

use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

use crate::fs::Recoverable;

/// What the file sink's committer commits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileSinkCommittable {
    /// A pending part file: publish it at its target.
    Pending {
        /// Its bucket.
        bucket_id: String,
        /// The pending file.
        file: Recoverable,
    },
    /// An input of a compaction: remove it (after the compacted file was published).
    Cleanup {
        /// The input.
        file: Recoverable,
    },
    /// A finished file to move to its visible name (compaction disabled after a savepoint, or a
    /// file that needed no compaction on a filesystem that cannot retarget pending files).
    Move {
        /// Its bucket.
        bucket_id: String,
        /// Where it is.
        from: String,
        /// Where it goes.
        to: String,
        /// Its length.
        len: u64,
    },
}

impl FileSinkCommittable {
    /// The bytes the committable publishes (0 for a cleanup).
    pub fn len(&self) -> u64 {
        match self {
            FileSinkCommittable::Pending { file, .. } => file.len,
            FileSinkCommittable::Move { len, .. } => *len,
            FileSinkCommittable::Cleanup { .. } => 0,
        }
    }

    /// Whether it publishes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn write_to(&self, w: &mut StateWriter) {
        match self {
            FileSinkCommittable::Pending { bucket_id, file } => {
                w.put_u8(0).put_str(bucket_id);
                file.write_to(w);
            }
            FileSinkCommittable::Cleanup { file } => {
                w.put_u8(1);
                file.write_to(w);
            }
            FileSinkCommittable::Move {
                bucket_id,
                from,
                to,
                len,
            } => {
                w.put_u8(2)
                    .put_str(bucket_id)
                    .put_str(from)
                    .put_str(to)
                    .put_u64(*len);
            }
        }
    }

    pub(crate) fn read_from(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        Ok(match r.get_u8()? {
            0 => FileSinkCommittable::Pending {
                bucket_id: r.get_str()?.to_owned(),
                file: Recoverable::read_from(r)?,
            },
            1 => FileSinkCommittable::Cleanup {
                file: Recoverable::read_from(r)?,
            },
            2 => FileSinkCommittable::Move {
                bucket_id: r.get_str()?.to_owned(),
                from: r.get_str()?.to_owned(),
                to: r.get_str()?.to_owned(),
                len: r.get_u64()?,
            },
            other => {
                return Err(StateError::malformed(
                    "file sink committable",
                    format!("unknown kind {other}"),
                ))
            }
        })
    }
}

/// Every serializer of this module writes version 1 and reads only that.
fn check_version(what: &str, version: u32) -> Result<(), StateError> {
    if version == 1 {
        Ok(())
    } else {
        Err(StateError::unknown_version(what, version, &[1]))
    }
}

/// Serializes [`FileSinkCommittable`]s (version 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSinkCommittableSerializer;

impl FileSinkCommittableSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<FileSinkCommittable> for FileSinkCommittableSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }
    fn serialize(&self, value: &FileSinkCommittable) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        value.write_to(&mut w);
        w.finish()
    }
    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<FileSinkCommittable, StateError> {
        check_version("file sink committable", version)?;
        let mut r = StateReader::new(bytes);
        let value = FileSinkCommittable::read_from(&mut r)?;
        r.finish()?;
        Ok(value)
    }
}

/// An in-progress part file in the writer state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InProgressState {
    /// The resumable file.
    pub file: Recoverable,
    /// When it was opened, milliseconds since the epoch (for the rollover interval).
    pub created_at_millis: i64,
}

/// One element of a file writer's state: a bucket with its in-progress file (row formats), or
/// only the part counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileWriterState {
    /// The bucket (empty when the element only carries the counter).
    pub bucket_id: String,
    /// The bucket's in-progress file.
    pub in_progress: Option<InProgressState>,
    /// The writer's next part counter.
    pub counter: u64,
}

/// Serializes [`FileWriterState`] (version 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct FileWriterStateSerializer;

impl FileWriterStateSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<FileWriterState> for FileWriterStateSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }
    fn serialize(&self, value: &FileWriterState) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_str(&value.bucket_id).put_u64(value.counter);
        match &value.in_progress {
            Some(p) => {
                w.put_bool(true).put_i64(p.created_at_millis);
                p.file.write_to(&mut w);
            }
            None => {
                w.put_bool(false);
            }
        }
        w.finish()
    }
    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<FileWriterState, StateError> {
        check_version("file writer state", version)?;
        let mut r = StateReader::new(bytes);
        let bucket_id = r.get_str()?.to_owned();
        let counter = r.get_u64()?;
        let in_progress = if r.get_bool()? {
            let created_at_millis = r.get_i64()?;
            Some(InProgressState {
                file: Recoverable::read_from(&mut r)?,
                created_at_millis,
            })
        } else {
            None
        };
        r.finish()?;
        Ok(FileWriterState {
            bucket_id,
            in_progress,
            counter,
        })
    }
}

/// Files of one bucket to compact into one (or to pass through), sent by the compact
/// coordinator to a compactor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompactorRequest {
    /// The bucket.
    pub bucket_id: String,
    /// Pending files to compact.
    pub to_compact: Vec<Recoverable>,
    /// Committables to hand on unchanged.
    pub pass_through: Vec<FileSinkCommittable>,
    /// Whether to compact `to_compact` (false: each file is published as it is, under its
    /// visible name).
    pub compact: bool,
}

impl CompactorRequest {
    pub(crate) fn write_to(&self, w: &mut StateWriter) {
        w.put_str(&self.bucket_id)
            .put_bool(self.compact)
            .put_len(self.to_compact.len());
        for f in &self.to_compact {
            f.write_to(w);
        }
        w.put_len(self.pass_through.len());
        for c in &self.pass_through {
            c.write_to(w);
        }
    }

    pub(crate) fn read_from(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let bucket_id = r.get_str()?.to_owned();
        let compact = r.get_bool()?;
        let n = r.get_len()?;
        let mut to_compact = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            to_compact.push(Recoverable::read_from(r)?);
        }
        let n = r.get_len()?;
        let mut pass_through = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            pass_through.push(FileSinkCommittable::read_from(r)?);
        }
        Ok(CompactorRequest {
            bucket_id,
            to_compact,
            pass_through,
            compact,
        })
    }
}

/// The compaction coordinator's state (one subtask): the pending files not yet packed into
/// requests, per bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactCoordinatorState {
    /// The input ended: nothing more is emitted.
    pub ended: bool,
    /// Checkpoints since the last "every n checkpoints" trigger.
    pub checkpoints: u64,
    /// Pending files not yet packed, per bucket.
    pub held: BTreeMap<String, Vec<Recoverable>>,
}

/// Serializes [`CompactCoordinatorState`] (version 1): the flag, the checkpoint count, then per
/// bucket its id and files.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompactCoordinatorStateSerializer;

impl CompactCoordinatorStateSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<CompactCoordinatorState> for CompactCoordinatorStateSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }
    fn serialize(&self, value: &CompactCoordinatorState) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_bool(value.ended)
            .put_u64(value.checkpoints)
            .put_len(value.held.len());
        for (bucket, files) in &value.held {
            w.put_str(bucket).put_len(files.len());
            for f in files {
                f.write_to(&mut w);
            }
        }
        w.finish()
    }
    fn deserialize(
        &self,
        version: u32,
        bytes: &[u8],
    ) -> Result<CompactCoordinatorState, StateError> {
        check_version("compact coordinator state", version)?;
        let mut r = StateReader::new(bytes);
        let ended = r.get_bool()?;
        let checkpoints = r.get_u64()?;
        let buckets = r.get_len()?;
        let mut held: BTreeMap<String, Vec<Recoverable>> = BTreeMap::new();
        for _ in 0..buckets {
            let bucket = r.get_str()?.to_owned();
            let n = r.get_len()?;
            let files = held.entry(bucket).or_default();
            for _ in 0..n {
                files.push(Recoverable::read_from(&mut r)?);
            }
        }
        r.finish()?;
        Ok(CompactCoordinatorState {
            ended,
            checkpoints,
            held,
        })
    }
}

/// A compaction request a compactor holds, with the checkpoint that fired it (0: restored, to
/// compact at the first barrier).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeldCompaction {
    /// The checkpoint whose completion releases it.
    pub checkpoint: u64,
    /// The request.
    pub request: CompactorRequest,
}

/// A compactor's state (one subtask): the requests not yet compacted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactorState {
    /// The input ended: nothing more is emitted.
    pub ended: bool,
    /// The requests in flight.
    pub held: Vec<HeldCompaction>,
}

/// Serializes [`CompactorState`] (version 1): the flag, then per request its checkpoint and
/// the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompactorStateSerializer;

impl CompactorStateSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<CompactorState> for CompactorStateSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }
    fn serialize(&self, value: &CompactorState) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_bool(value.ended).put_len(value.held.len());
        for held in &value.held {
            w.put_u64(held.checkpoint);
            held.request.write_to(&mut w);
        }
        w.finish()
    }
    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<CompactorState, StateError> {
        check_version("compactor state", version)?;
        let mut r = StateReader::new(bytes);
        let ended = r.get_bool()?;
        let n = r.get_len()?;
        let mut held = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let checkpoint = r.get_u64()?;
            held.push(HeldCompaction {
                checkpoint,
                request: CompactorRequest::read_from(&mut r)?,
            });
        }
        r.finish()?;
        Ok(CompactorState { ended, held })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u64) -> Recoverable {
        Recoverable {
            target: format!("/out/b/part-{n}"),
            len: n,
            data: vec![1, 2, 3],
        }
    }

    #[test]
    fn states_roundtrip_and_reject_unknown_versions() {
        for c in [
            FileSinkCommittable::Pending {
                bucket_id: "b".into(),
                file: rec(1),
            },
            FileSinkCommittable::Cleanup { file: rec(2) },
            FileSinkCommittable::Move {
                bucket_id: "b".into(),
                from: "/a".into(),
                to: "/b".into(),
                len: 9,
            },
        ] {
            let s = FileSinkCommittableSerializer;
            let bytes = s.serialize(&c).unwrap();
            assert_eq!(s.deserialize(1, &bytes).unwrap(), c);
            assert!(s.deserialize(2, &bytes).is_err());
            assert!(s.deserialize(1, &bytes[..bytes.len() - 1]).is_err());
        }
        let state = FileWriterState {
            bucket_id: "2024".into(),
            in_progress: Some(InProgressState {
                file: rec(3),
                created_at_millis: -5,
            }),
            counter: 17,
        };
        let s = FileWriterStateSerializer;
        assert_eq!(
            s.deserialize(1, &s.serialize(&state).unwrap()).unwrap(),
            state
        );
    }
}
