//! The checkpointed state of the asynchronous lookup join: the inputs of the records whose
//! lookups were in flight (or done but not emitted) at the barrier, re-issued on restore
//! (Flink's `AsyncWaitOperator` keeps the same list).
//!
//! Each input is one list entry, version 1: the input serializer's version (u32), then its
//! bytes. The list is dealt round-robin on a rescale: any subtask may look any key up.

use weir_connector_api::checkpoint::VersionedBytes;
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

/// The state name of in-flight inputs.
pub(crate) const IN_FLIGHT_STATE: &str = "in-flight";
const ENTRY_VERSION: u32 = 1;

/// One in-flight input as a state entry.
pub(crate) fn encode<T>(
    serializer: &dyn VersionedSerializer<T>,
    input: &T,
) -> Result<VersionedBytes, StateError> {
    let bytes = serializer.serialize(input)?;
    let mut w = StateWriter::with_capacity(bytes.len() + 16);
    w.put_u32(serializer.version()).put_bytes(&bytes);
    Ok(VersionedBytes {
        version: ENTRY_VERSION,
        bytes: w.finish()?,
    })
}

/// An in-flight input from a state entry.
pub(crate) fn decode<T>(
    serializer: &dyn VersionedSerializer<T>,
    entry: &VersionedBytes,
) -> Result<T, StateError> {
    if entry.version != ENTRY_VERSION {
        return Err(StateError::unknown_version(
            "lookup join in-flight input",
            entry.version,
            &[ENTRY_VERSION],
        ));
    }
    let mut r = StateReader::new(&entry.bytes);
    let version = r.get_u32()?;
    let bytes = r.get_bytes()?;
    r.finish()?;
    serializer.deserialize(version, bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use weir_connector_api::state::{StringSerializer, U64Serializer};

    use super::*;

    #[test]
    fn inputs_round_trip_and_foreign_versions_are_refused() {
        let entry = encode(&StringSerializer, &"order-7".to_owned()).unwrap();
        assert_eq!(entry.version, 1);
        assert_eq!(decode(&StringSerializer, &entry).unwrap(), "order-7");
        let future = VersionedBytes {
            version: 2,
            bytes: entry.bytes.clone(),
        };
        assert!(decode(&StringSerializer, &future).is_err());
        let entry = encode(&U64Serializer, &41).unwrap();
        assert_eq!(decode(&U64Serializer, &entry).unwrap(), 41);
        let mut truncated = entry;
        truncated.bytes.pop();
        assert!(decode(&U64Serializer, &truncated).is_err());
    }
}
