//! The AsyncSink writer's checkpointed state: the entries it had buffered but not sent
//! (Flink's `BufferedRequestState`), and their versioned serializer.

use std::sync::Arc;

use weir_connector_api::state::{StateError, VecSerializer, VersionedSerializer};

/// The entries a writer held when a checkpoint was taken; a restored writer sends them first.
///
/// After scaling down, a writer is restored from the states of several old writers and sends
/// all of their entries; after scaling up, some writers start empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BufferedRequestState<E> {
    /// The buffered entries, oldest first.
    pub entries: Vec<E>,
}

/// Serializes [`BufferedRequestState`] with the connector's entry serializer.
///
/// Version 1: the entry serializer's version, the number of entries, then each entry as a
/// length-prefixed byte string (the layout of
/// [`VecSerializer`]). The entry serializer's version travels with the list, so state written
/// by an older entry format stays readable as long as the entry serializer reads that version.
///
/// ```
/// use std::sync::Arc;
/// use weir_connector_api::state::{StringSerializer, VersionedSerializer};
/// use weir_connector_base::sink::{BufferedRequestState, BufferedRequestStateSerializer};
///
/// let serializer = BufferedRequestStateSerializer::new(Arc::new(StringSerializer));
/// let state = BufferedRequestState { entries: vec!["a".to_owned(), "b".to_owned()] };
/// let bytes = serializer.serialize(&state)?;
/// assert_eq!(serializer.deserialize(serializer.version(), &bytes)?, state);
/// // Damaged bytes are an error, never a guess.
/// assert!(serializer.deserialize(1, &bytes[..bytes.len() - 1]).is_err());
/// # Ok::<(), weir_connector_api::state::StateError>(())
/// ```
pub struct BufferedRequestStateSerializer<E> {
    entries: VecSerializer<Arc<dyn VersionedSerializer<E>>>,
}

impl<E> BufferedRequestStateSerializer<E> {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;

    /// A serializer whose entries are written by `entry_serializer`.
    pub fn new(entry_serializer: Arc<dyn VersionedSerializer<E>>) -> Self {
        BufferedRequestStateSerializer {
            entries: VecSerializer::new(entry_serializer),
        }
    }
}

impl<E> std::fmt::Debug for BufferedRequestStateSerializer<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedRequestStateSerializer")
            .field("version", &Self::VERSION)
            .field("entry_version", &self.entries.inner().version())
            .finish()
    }
}

impl<E> VersionedSerializer<BufferedRequestState<E>> for BufferedRequestStateSerializer<E> {
    fn version(&self) -> u32 {
        Self::VERSION
    }

    fn serialize(&self, value: &BufferedRequestState<E>) -> Result<Vec<u8>, StateError> {
        self.entries.serialize(&value.entries)
    }

    fn deserialize(
        &self,
        version: u32,
        bytes: &[u8],
    ) -> Result<BufferedRequestState<E>, StateError> {
        match version {
            // Version 1 is the list layout of VecSerializer version 1.
            1 => Ok(BufferedRequestState {
                entries: self.entries.deserialize(1, bytes)?,
            }),
            other => Err(StateError::unknown_version(
                "AsyncSink buffered entries",
                other,
                &[Self::VERSION],
            )),
        }
    }
}
