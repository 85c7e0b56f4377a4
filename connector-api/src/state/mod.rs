//! Versioned serialization of connector state: splits, enumerator checkpoints, writer state and
//! committables.
//!
//! State outlives the code that wrote it: a checkpoint taken by release 1.4 of a connector is
//! restored by release 1.7. So every persisted byte carries the version of the serializer that
//! wrote it, every serializer reads all versions it ever wrote, and reads are strict: a short,
//! padded or damaged input is an error, never a guess.
//!
//! - [`VersionedSerializer`] is the trait a connector implements for each kind of state.
//! - [`frame`] wraps serialized bytes with a magic marker, the version, the length and a checksum;
//!   [`serialize_framed`] and [`deserialize_framed`] combine the two.
//! - [`StateWriter`] and [`StateReader`] are the building blocks for hand-written formats.
//! - [`StringSerializer`], [`U64Serializer`], [`BytesSerializer`] and [`VecSerializer`] are
//!   ready-made.
//!
//! A split serializer at version 2 that still reads what version 1 wrote:
//!
//! ```
//! use weir_connector_api::state::{self, Magic, StateError, StateReader, StateWriter,
//!     VersionedSerializer};
//!
//! #[derive(Debug, PartialEq)]
//! struct PartitionSplit {
//!     topic: String,
//!     partition: u32,
//!     offset: u64,
//!     stop_offset: Option<u64>, // added in version 2
//! }
//!
//! struct PartitionSplitSerializer;
//!
//! impl VersionedSerializer<PartitionSplit> for PartitionSplitSerializer {
//!     fn version(&self) -> u32 {
//!         2
//!     }
//!
//!     fn serialize(&self, split: &PartitionSplit) -> Result<Vec<u8>, StateError> {
//!         let mut w = StateWriter::new();
//!         w.put_str(&split.topic)
//!             .put_u32(split.partition)
//!             .put_u64(split.offset)
//!             .put_opt_u64(split.stop_offset);
//!         w.finish()
//!     }
//!
//!     fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<PartitionSplit, StateError> {
//!         if !(1..=2).contains(&version) {
//!             return Err(StateError::unknown_version("partition split", version, &[1, 2]));
//!         }
//!         let mut r = StateReader::new(bytes);
//!         let topic = r.get_str()?.to_owned();
//!         let partition = r.get_u32()?;
//!         let offset = r.get_u64()?;
//!         let stop_offset = if version >= 2 { r.get_opt_u64()? } else { None };
//!         r.finish()?;
//!         Ok(PartitionSplit { topic, partition, offset, stop_offset })
//!     }
//! }
//!
//! const SPLIT: Magic = Magic::new(*b"WPSP");
//! let ser = PartitionSplitSerializer;
//! let split = PartitionSplit {
//!     topic: "orders".into(),
//!     partition: 3,
//!     offset: 1041,
//!     stop_offset: None,
//! };
//! let bytes = state::serialize_framed(&ser, SPLIT, &split)?;
//! assert_eq!(state::deserialize_framed(&ser, SPLIT, &bytes)?, split);
//!
//! // Bytes from a newer release are refused with a clear error.
//! let future = state::frame::encode(SPLIT, 3, b"...")?;
//! assert!(matches!(
//!     state::deserialize_framed(&ser, SPLIT, &future),
//!     Err(StateError::UnknownVersion { version: 3, .. })
//! ));
//! # Ok::<(), StateError>(())
//! ```

use std::sync::Arc;

pub mod codec;
mod error;
pub mod frame;
mod serializers;

#[cfg(test)]
mod tests;

pub use codec::{StateReader, StateWriter};
pub use error::StateError;
pub use frame::{Frame, Magic};
pub use serializers::{BytesSerializer, StringSerializer, U64Serializer, VecSerializer};

/// Turns values of one kind of state into bytes and back, with a version that travels with the
/// bytes (Flink's `SimpleVersionedSerializer`).
///
/// The contract:
///
/// - [`version`](Self::version) is the version [`serialize`](Self::serialize) writes. Bump it
///   whenever the byte format changes, and never reuse a number.
/// - The version is *not* part of the bytes `serialize` returns. Whoever stores the bytes stores
///   the version beside them (as [`serialize_framed`] does) and hands it back to
///   [`deserialize`](Self::deserialize).
/// - `deserialize` accepts every version this serializer ever wrote, in any release, and rejects
///   any other version with [`StateError::unknown_version`] rather than guessing. Check the
///   version before reading any bytes, so that newer state is reported as such and not as
///   corruption.
/// - `deserialize` is strict and total: it consumes all of the bytes (see
///   [`StateReader::finish`]), reports damaged input as an error and never panics on any input.
/// - Reading old bytes and writing them again produces the current version; older formats are
///   only ever read.
pub trait VersionedSerializer<T>: Send + Sync {
    /// The version that [`serialize`](Self::serialize) writes.
    fn version(&self) -> u32;

    /// Serializes `value` in the format of the current [`version`](Self::version).
    fn serialize(&self, value: &T) -> Result<Vec<u8>, StateError>;

    /// Deserializes bytes that were written by version `version` of this serializer.
    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<T, StateError>;
}

impl<T, S: VersionedSerializer<T> + ?Sized> VersionedSerializer<T> for &S {
    fn version(&self) -> u32 {
        (**self).version()
    }

    fn serialize(&self, value: &T) -> Result<Vec<u8>, StateError> {
        (**self).serialize(value)
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<T, StateError> {
        (**self).deserialize(version, bytes)
    }
}

impl<T, S: VersionedSerializer<T> + ?Sized> VersionedSerializer<T> for Box<S> {
    fn version(&self) -> u32 {
        (**self).version()
    }

    fn serialize(&self, value: &T) -> Result<Vec<u8>, StateError> {
        (**self).serialize(value)
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<T, StateError> {
        (**self).deserialize(version, bytes)
    }
}

impl<T, S: VersionedSerializer<T> + ?Sized> VersionedSerializer<T> for Arc<S> {
    fn version(&self) -> u32 {
        (**self).version()
    }

    fn serialize(&self, value: &T) -> Result<Vec<u8>, StateError> {
        (**self).serialize(value)
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<T, StateError> {
        (**self).deserialize(version, bytes)
    }
}

/// Serializes `value` with `serializer` and wraps the bytes in a [`frame`] stamped with `magic`
/// and the serializer's current version.
pub fn serialize_framed<T, S>(
    serializer: &S,
    magic: Magic,
    value: &T,
) -> Result<Vec<u8>, StateError>
where
    S: VersionedSerializer<T> + ?Sized,
{
    let payload = serializer.serialize(value)?;
    frame::encode(magic, serializer.version(), &payload)
}

/// Checks the [`frame`] around `bytes` and deserializes its payload with the version stored in
/// it.
///
/// Frame damage is reported by [`frame::decode`]; a version the serializer does not read yields
/// [`StateError::UnknownVersion`] from the serializer.
pub fn deserialize_framed<T, S>(serializer: &S, magic: Magic, bytes: &[u8]) -> Result<T, StateError>
where
    S: VersionedSerializer<T> + ?Sized,
{
    let frame = frame::decode(magic, bytes)?;
    serializer.deserialize(frame.version, frame.payload)
}
