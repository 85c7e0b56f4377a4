//! The sink's checkpointed state: the bulk actions a writer had buffered but not delivered
//! (the AsyncSink base keeps them in a
//! [`BufferedRequestState`](weir_connector_base::sink::BufferedRequestState)), and their
//! versioned serializer.

use std::sync::Arc;

use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

use super::action::{ActionKind, BulkAction};

/// Serializes one [`BulkAction`] of the writer state.
///
/// Version 1: the action kind (one byte: 0 index, 1 create, 2 update, 3 upsert, 4 delete),
/// the index name (length-prefixed UTF-8), the id (a presence byte, then length-prefixed
/// UTF-8), the document (length-prefixed bytes). Golden bytes in `tests/golden/`.
///
/// ```
/// use weir_connector_api::state::VersionedSerializer;
/// use weir_connector_elasticsearch::sink::{BulkAction, BulkActionSerializer};
///
/// let action = BulkAction::upsert("orders", Some("7".into()), br#"{"n":1}"#.to_vec())?;
/// let bytes = BulkActionSerializer.serialize(&action)?;
/// assert_eq!(BulkActionSerializer.deserialize(1, &bytes)?, action);
/// // A newer version is refused, never guessed.
/// assert!(BulkActionSerializer.deserialize(2, &bytes).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BulkActionSerializer;

impl BulkActionSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<BulkAction> for BulkActionSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }

    fn serialize(&self, action: &BulkAction) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::with_capacity(action.size() as usize + 16);
        w.put_u8(action.kind().code())
            .put_str(action.index_name())
            .put_opt_str(action.id())
            .put_bytes(action.document());
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<BulkAction, StateError> {
        if version != Self::VERSION {
            return Err(StateError::unknown_version(
                "Elasticsearch bulk action",
                version,
                &[Self::VERSION],
            ));
        }
        let mut r = StateReader::new(bytes);
        let code = r.get_u8()?;
        let kind = ActionKind::from_code(code).ok_or_else(|| {
            StateError::malformed(
                "Elasticsearch bulk action",
                format!("unknown action kind {code}"),
            )
        })?;
        let index: Arc<str> = Arc::from(r.get_str()?);
        let id = r.get_opt_str()?.map(Box::from);
        let document: Box<[u8]> = Box::from(r.get_bytes()?);
        r.finish()?;
        if index.is_empty() || (kind.needs_id() && id.is_none()) {
            return Err(StateError::malformed(
                "Elasticsearch bulk action",
                format!("a `{kind}` action without index or id"),
            ));
        }
        Ok(BulkAction::from_parts(kind, index, id, document))
    }
}
