//! Checkpoint metadata and its versioned binary format.
//!
//! The metadata of a checkpoint or savepoint holds every byte of state inline, so one file is the
//! whole snapshot: nothing in it points to another file, which keeps savepoints relocatable.
//!
//! Format version 1 is a [`frame`] with marker `WCKP` around this payload (encoding of
//! [`StateWriter`]: big-endian integers, `u32`-length-prefixed strings and byte strings, `u32`
//! collection counts, option tags `0`/`1`):
//!
//! ```text
//! u64 checkpoint_id, u8 kind (0 checkpoint, 1 savepoint), str job_name, u64 created_at_millis,
//! len operators, each:
//!     str uid, u32 parallelism, bool finished, opt versioned coordinator,
//!     len subtasks, each:
//!         bool finished, len states, each:
//!             str name, len entries, each: versioned
//! versioned = u32 version, bytes
//! ```
//!
//! Format version 2 (written since the restore checks) appends to each operator, after its
//! subtasks, the schema its state was written for: `len fields, each: str field`. Version 1
//! stays readable; its operators have no recorded schema.

use std::collections::BTreeMap;
use std::fmt;

use weir_connector_api::checkpoint::VersionedBytes;
use weir_connector_api::state::{frame, Magic, StateError, StateReader, StateWriter};

/// The marker at the start of every checkpoint and savepoint metadata file.
pub const METADATA_MAGIC: Magic = Magic::new(*b"WCKP");

/// The metadata format version this release writes.
pub const METADATA_FORMAT_VERSION: u32 = 2;

/// The metadata format versions this release reads.
pub const SUPPORTED_METADATA_VERSIONS: &[u32] = &[1, 2];

const WHAT: &str = "checkpoint metadata";

/// Whether a snapshot was taken by the runtime for failover or by the user for a later restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum SnapshotKind {
    /// Periodic, owned by the runtime, retained only while it is among the newest N.
    #[default]
    Checkpoint,
    /// Taken on request, owned by the user, self-contained and relocatable.
    Savepoint,
}

impl SnapshotKind {
    /// `checkpoint` or `savepoint`.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotKind::Checkpoint => "checkpoint",
            SnapshotKind::Savepoint => "savepoint",
        }
    }

    fn tag(self) -> u8 {
        match self {
            SnapshotKind::Checkpoint => 0,
            SnapshotKind::Savepoint => 1,
        }
    }

    fn from_tag(tag: u8) -> Result<Self, StateError> {
        match tag {
            0 => Ok(SnapshotKind::Checkpoint),
            1 => Ok(SnapshotKind::Savepoint),
            other => Err(StateError::malformed(
                WHAT,
                format!("snapshot kind tag {other} is neither 0 (checkpoint) nor 1 (savepoint)"),
            )),
        }
    }
}

impl fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a completed checkpoint or savepoint holds: the state of every operator, inline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointMetadata {
    /// The id of the checkpoint (savepoints take an id from the same sequence).
    pub checkpoint_id: u64,
    /// Checkpoint or savepoint.
    pub kind: SnapshotKind,
    /// The name of the job that took it.
    pub job_name: String,
    /// When it was triggered, in milliseconds since the Unix epoch.
    pub created_at_millis: u64,
    /// by stable operator uid
    pub operators: BTreeMap<String, OperatorSnapshot>,
}

/// The state of one operator: its coordinator and each of its subtasks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OperatorSnapshot {
    /// The parallelism the operator ran with when the snapshot was taken.
    pub parallelism: u32,
    /// every subtask finished (FLIP-147): skipped on restore
    pub finished: bool,
    /// source coordinator (split enumerator) state, if any
    pub coordinator: Option<VersionedBytes>,
    /// index = subtask index
    pub subtasks: Vec<SubtaskSnapshot>,
    /// The schema the operator's state was written for, one line per field (empty: none was
    /// declared). A restore refuses a source whose fields were removed or changed since.
    pub schema: Vec<String>,
}

/// The state of one subtask of an operator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubtaskSnapshot {
    /// Whether this subtask had finished (reached end of input and committed everything).
    pub finished: bool,
    /// named list states, e.g. "splits", "writer", "committables", "end-of-input"
    pub state: BTreeMap<String, Vec<VersionedBytes>>,
}

impl CheckpointMetadata {
    /// Encodes the metadata in the current format ([`METADATA_FORMAT_VERSION`]), framed with
    /// [`METADATA_MAGIC`], a length and a checksum.
    ///
    /// Fails only if a string, byte string or collection is longer than the format can record
    /// (4 GiB or 2³² − 1 entries).
    pub fn encode(&self) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_u64(self.checkpoint_id)
            .put_u8(self.kind.tag())
            .put_str(&self.job_name)
            .put_u64(self.created_at_millis)
            .put_len(self.operators.len());
        for (uid, operator) in &self.operators {
            w.put_str(uid)
                .put_u32(operator.parallelism)
                .put_bool(operator.finished)
                .put_opt(operator.coordinator.as_ref(), put_versioned)
                .put_len(operator.subtasks.len());
            for subtask in &operator.subtasks {
                w.put_bool(subtask.finished).put_len(subtask.state.len());
                for (name, entries) in &subtask.state {
                    w.put_str(name).put_len(entries.len());
                    for entry in entries {
                        put_versioned(&mut w, entry);
                    }
                }
            }
            w.put_len(operator.schema.len());
            for field in &operator.schema {
                w.put_str(field);
            }
        }
        let payload = w.finish()?;
        frame::encode(METADATA_MAGIC, METADATA_FORMAT_VERSION, &payload)
    }

    /// Decodes metadata written in any supported format version.
    ///
    /// Strict: a wrong marker, a cut-short or padded input, a checksum mismatch, malformed
    /// content (such as an operator uid that appears twice) and a format version this release
    /// does not read ([`StateError::UnknownVersion`]) are all errors. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        let frame = frame::decode(METADATA_MAGIC, bytes)?;
        match frame.version {
            1 => decode_payload(frame.payload, FormatVersion::V1),
            2 => decode_payload(frame.payload, FormatVersion::V2),
            other => Err(StateError::unknown_version(
                WHAT,
                other,
                SUPPORTED_METADATA_VERSIONS,
            )),
        }
    }
}

fn put_versioned(w: &mut StateWriter, value: &VersionedBytes) {
    w.put_u32(value.version).put_bytes(&value.bytes);
}

fn get_versioned(r: &mut StateReader<'_>) -> Result<VersionedBytes, StateError> {
    let version = r.get_u32()?;
    let bytes = r.get_bytes()?.to_vec();
    Ok(VersionedBytes { version, bytes })
}

/// The metadata format versions that [`CheckpointMetadata::decode`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FormatVersion {
    /// No schema per operator.
    V1,
    /// A schema after each operator's subtasks.
    V2,
}

fn decode_payload(
    payload: &[u8],
    version: FormatVersion,
) -> Result<CheckpointMetadata, StateError> {
    let mut r = StateReader::new(payload);
    let checkpoint_id = r.get_u64()?;
    let kind = SnapshotKind::from_tag(r.get_u8()?)?;
    let job_name = r.get_str()?.to_owned();
    let created_at_millis = r.get_u64()?;
    let mut operators = BTreeMap::new();
    for _ in 0..r.get_len()? {
        let uid = r.get_str()?.to_owned();
        let operator = decode_operator(&mut r, version)?;
        if let Some(uid) = insert_new(&mut operators, uid, operator) {
            return Err(StateError::malformed(
                WHAT,
                format!("operator uid `{uid}` appears twice"),
            ));
        }
    }
    r.finish()?;
    Ok(CheckpointMetadata {
        checkpoint_id,
        kind,
        job_name,
        created_at_millis,
        operators,
    })
}

fn decode_operator(
    r: &mut StateReader<'_>,
    version: FormatVersion,
) -> Result<OperatorSnapshot, StateError> {
    let parallelism = r.get_u32()?;
    let finished = r.get_bool()?;
    let coordinator = r.get_opt(get_versioned)?;
    let count = r.get_len()?;
    let mut subtasks = Vec::with_capacity(count);
    for _ in 0..count {
        let finished = r.get_bool()?;
        let mut state = BTreeMap::new();
        for _ in 0..r.get_len()? {
            let name = r.get_str()?.to_owned();
            let len = r.get_len()?;
            let mut entries = Vec::with_capacity(len);
            for _ in 0..len {
                entries.push(get_versioned(r)?);
            }
            if let Some(name) = insert_new(&mut state, name, entries) {
                return Err(StateError::malformed(
                    WHAT,
                    format!("state `{name}` appears twice in one subtask"),
                ));
            }
        }
        subtasks.push(SubtaskSnapshot { finished, state });
    }
    let mut schema = Vec::new();
    if version == FormatVersion::V2 {
        for _ in 0..r.get_len()? {
            schema.push(r.get_str()?.to_owned());
        }
    }
    Ok(OperatorSnapshot {
        parallelism,
        finished,
        coordinator,
        subtasks,
        schema,
    })
}

/// Inserts `key` unless it is present; returns the key back if it was a duplicate.
fn insert_new<V>(map: &mut BTreeMap<String, V>, key: String, value: V) -> Option<String> {
    match map.entry(key) {
        std::collections::btree_map::Entry::Occupied(entry) => Some(entry.key().clone()),
        std::collections::btree_map::Entry::Vacant(entry) => {
            entry.insert(value);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vb(version: u32, bytes: &[u8]) -> VersionedBytes {
        VersionedBytes {
            version,
            bytes: bytes.to_vec(),
        }
    }

    /// The metadata pinned by [`GOLDEN_V2`]: [`golden_metadata_v1`] with a schema on `src`.
    fn golden_metadata() -> CheckpointMetadata {
        let mut metadata = golden_metadata_v1();
        if let Some(src) = metadata.operators.get_mut("src") {
            src.schema = vec!["id int64 not null".to_owned(), "name string".to_owned()];
        }
        metadata
    }

    /// The metadata pinned by [`GOLDEN_V1`] (format version 1 records no schemas).
    fn golden_metadata_v1() -> CheckpointMetadata {
        let mut operators = BTreeMap::new();
        operators.insert(
            "src".to_owned(),
            OperatorSnapshot {
                parallelism: 2,
                finished: false,
                coordinator: Some(vb(1, b"enum")),
                subtasks: vec![
                    SubtaskSnapshot {
                        finished: false,
                        state: BTreeMap::from([("splits".to_owned(), vec![vb(2, b"s0")])]),
                    },
                    SubtaskSnapshot {
                        finished: true,
                        state: BTreeMap::new(),
                    },
                ],
                schema: Vec::new(),
            },
        );
        operators.insert(
            "sink".to_owned(),
            OperatorSnapshot {
                parallelism: 1,
                finished: true,
                coordinator: None,
                subtasks: vec![SubtaskSnapshot {
                    finished: true,
                    state: BTreeMap::from([(
                        "committables".to_owned(),
                        vec![vb(1, b""), vb(1, b"\x00\xff")],
                    )]),
                }],
                schema: Vec::new(),
            },
        );
        CheckpointMetadata {
            checkpoint_id: 7,
            kind: SnapshotKind::Savepoint,
            job_name: "orders".to_owned(),
            created_at_millis: 1_700_000_000_123,
            operators,
        }
    }

    /// Format version 1 of [`golden_metadata`]. Never change these bytes: every later release
    /// must keep reading them.
    const GOLDEN_V1: &str = "\
        57434b50000000010000009bef6e287d000000000000000701000000066f7264\
        6572730000018bcfe5687b000000020000000473696e6b000000010100000000\
        0101000000010000000c636f6d6d69747461626c657300000002000000010000\
        0000000000010000000200ff0000000373726300000002000100000001000000\
        04656e756d0000000200000000010000000673706c6974730000000100000002\
        0000000273300100000000";

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn to_hex(bytes: &[u8]) -> String {
        use std::fmt::Write;
        bytes.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }

    /// Format version 2 of [`golden_metadata`]. Never change these bytes either.
    const GOLDEN_V2: &str = "\
        57434b5000000002000000c70fd3387b000000000000000701000000066f7264\
        6572730000018bcfe5687b000000020000000473696e6b000000010100000000\
        0101000000010000000c636f6d6d69747461626c657300000002000000010000\
        0000000000010000000200ff0000000000000003737263000000020001000000\
        0100000004656e756d0000000200000000010000000673706c69747300000001\
        0000000200000002733001000000000000000200000011696420696e74363420\
        6e6f74206e756c6c0000000b6e616d6520737472696e67";

    #[test]
    fn golden_bytes_of_format_version_2() {
        let golden = hex(GOLDEN_V2);
        let encoded = golden_metadata().encode().unwrap();
        assert_eq!(
            to_hex(&encoded),
            to_hex(&golden),
            "format version 2 changed"
        );
        assert_eq!(
            CheckpointMetadata::decode(&golden).unwrap(),
            golden_metadata()
        );
    }

    #[test]
    fn golden_bytes_of_format_version_1() {
        let golden = hex(GOLDEN_V1);
        assert_eq!(
            CheckpointMetadata::decode(&golden).unwrap(),
            golden_metadata_v1()
        );
    }

    #[test]
    fn default_metadata_round_trips() {
        let metadata = CheckpointMetadata::default();
        let bytes = metadata.encode().unwrap();
        assert_eq!(CheckpointMetadata::decode(&bytes).unwrap(), metadata);
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = golden_metadata().encode().unwrap();
        for len in 0..bytes.len() {
            let err = CheckpointMetadata::decode(&bytes[..len]).unwrap_err();
            assert!(
                matches!(err, StateError::Truncated { .. }),
                "prefix of {len} bytes: {err}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = golden_metadata().encode().unwrap();
        bytes.push(0);
        assert!(matches!(
            CheckpointMetadata::decode(&bytes),
            Err(StateError::TrailingBytes { count: 1 })
        ));
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let bytes = golden_metadata().encode().unwrap();
        for index in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[index] ^= 1 << bit;
                assert!(
                    CheckpointMetadata::decode(&damaged).is_err(),
                    "flip of bit {bit} in byte {index} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn unknown_format_version_is_rejected() {
        let payload = frame::decode(METADATA_MAGIC, &golden_metadata().encode().unwrap())
            .unwrap()
            .payload
            .to_vec();
        let future = frame::encode(METADATA_MAGIC, 3, &payload).unwrap();
        let err = CheckpointMetadata::decode(&future).unwrap_err();
        assert!(
            matches!(err, StateError::UnknownVersion { version: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn other_magic_is_rejected() {
        let bytes = frame::encode(Magic::new(*b"WSPL"), 1, b"").unwrap();
        assert!(matches!(
            CheckpointMetadata::decode(&bytes),
            Err(StateError::BadMagic { .. })
        ));
    }

    #[test]
    fn malformed_content_in_an_intact_frame_is_rejected() {
        // Duplicate operator uid.
        let mut w = StateWriter::new();
        w.put_u64(1).put_u8(0).put_str("job").put_u64(0).put_len(2);
        for _ in 0..2 {
            w.put_str("op")
                .put_u32(1)
                .put_bool(false)
                .put_u8(0)
                .put_len(0);
        }
        let bytes = frame::encode(METADATA_MAGIC, 1, &w.finish().unwrap()).unwrap();
        let err = CheckpointMetadata::decode(&bytes).unwrap_err();
        assert!(err.to_string().contains("`op` appears twice"), "{err}");

        // Unknown snapshot kind.
        let mut w = StateWriter::new();
        w.put_u64(1).put_u8(9).put_str("job").put_u64(0).put_len(0);
        let bytes = frame::encode(METADATA_MAGIC, 1, &w.finish().unwrap()).unwrap();
        assert!(matches!(
            CheckpointMetadata::decode(&bytes),
            Err(StateError::Malformed { .. })
        ));
    }

    fn versioned() -> impl Strategy<Value = VersionedBytes> {
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(version, bytes)| VersionedBytes { version, bytes })
    }

    fn subtask() -> impl Strategy<Value = SubtaskSnapshot> {
        (
            any::<bool>(),
            proptest::collection::btree_map(
                "[a-z-]{0,8}",
                proptest::collection::vec(versioned(), 0..4),
                0..3,
            ),
        )
            .prop_map(|(finished, state)| SubtaskSnapshot { finished, state })
    }

    fn operator() -> impl Strategy<Value = OperatorSnapshot> {
        (
            any::<u32>(),
            any::<bool>(),
            proptest::option::of(versioned()),
            proptest::collection::vec(subtask(), 0..4),
            proptest::collection::vec("\\PC{0,10}", 0..3),
        )
            .prop_map(|(parallelism, finished, coordinator, subtasks, schema)| {
                OperatorSnapshot {
                    parallelism,
                    finished,
                    coordinator,
                    subtasks,
                    schema,
                }
            })
    }

    pub(crate) fn metadata() -> impl Strategy<Value = CheckpointMetadata> {
        (
            any::<u64>(),
            any::<bool>(),
            "\\PC{0,12}",
            any::<u64>(),
            proptest::collection::btree_map("\\PC{0,10}", operator(), 0..4),
        )
            .prop_map(
                |(checkpoint_id, savepoint, job_name, created_at_millis, operators)| {
                    CheckpointMetadata {
                        checkpoint_id,
                        kind: if savepoint {
                            SnapshotKind::Savepoint
                        } else {
                            SnapshotKind::Checkpoint
                        },
                        job_name,
                        created_at_millis,
                        operators,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn any_metadata_round_trips(metadata in metadata()) {
            let bytes = metadata.encode().unwrap();
            prop_assert_eq!(CheckpointMetadata::decode(&bytes).unwrap(), metadata);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = CheckpointMetadata::decode(&bytes);
        }

        #[test]
        fn arbitrary_payloads_in_a_valid_frame_never_panic(
            payload in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let bytes = frame::encode(METADATA_MAGIC, 1, &payload).unwrap();
            let _ = CheckpointMetadata::decode(&bytes);
        }
    }
}
