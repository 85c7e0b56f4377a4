//! [`BulkAction`]: one action of a bulk request (index, create, update, upsert or delete of one
//! document), and how it is written into the request body.

use std::fmt;
use std::sync::Arc;

/// What a bulk action does to its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Put the document, replacing one with the same id (idempotent with an id).
    Index,
    /// Put the document only if no document has its id. A replay after a failure finds its own
    /// earlier write: a `409 version_conflict` answer counts as delivered (the document exists).
    Create,
    /// Merge the fields into the existing document; a missing document is a permanent failure.
    Update,
    /// Merge the fields into the document, creating it when missing (`doc_as_upsert`).
    Upsert,
    /// Delete the document; a missing document counts as delivered (already gone).
    Delete,
}

impl ActionKind {
    /// The action's name in the bulk API.
    pub fn bulk_name(self) -> &'static str {
        match self {
            ActionKind::Index => "index",
            ActionKind::Create => "create",
            ActionKind::Update | ActionKind::Upsert => "update",
            ActionKind::Delete => "delete",
        }
    }

    /// Whether the action carries a document.
    pub fn has_document(self) -> bool {
        !matches!(self, ActionKind::Delete)
    }

    /// Whether the action needs a document id.
    pub fn needs_id(self) -> bool {
        matches!(
            self,
            ActionKind::Update | ActionKind::Upsert | ActionKind::Delete
        )
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            ActionKind::Index => 0,
            ActionKind::Create => 1,
            ActionKind::Update => 2,
            ActionKind::Upsert => 3,
            ActionKind::Delete => 4,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => ActionKind::Index,
            1 => ActionKind::Create,
            2 => ActionKind::Update,
            3 => ActionKind::Upsert,
            4 => ActionKind::Delete,
            _ => return None,
        })
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActionKind::Index => "index",
            ActionKind::Create => "create",
            ActionKind::Update => "update",
            ActionKind::Upsert => "upsert",
            ActionKind::Delete => "delete",
        })
    }
}

/// Why an action could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// Update, upsert and delete address a document by id.
    #[error("a{} `{kind}` action needs a document id: set the id (in pipelines: `document-id.fields`)", if matches!(.kind, ActionKind::Update | ActionKind::Upsert) { "n" } else { "" })]
    MissingId {
        /// The action.
        kind: ActionKind,
    },
    /// The index name is empty.
    #[error("the index name is empty")]
    EmptyIndex,
}

/// One action of a bulk request: what to do, in which index, to which document.
///
/// The document is JSON bytes (an object), written into the request as they are; line breaks
/// in it (JSON whitespace) are replaced by spaces, as the bulk format is one line per document.
/// The id makes replays idempotent: with an id, a record sent twice (at-least-once delivery
/// after a failure) ends as one document; without one Elasticsearch generates an id per
/// request, and a replay makes a second document.
///
/// ```
/// use weir_connector_elasticsearch::sink::{ActionKind, BulkAction};
///
/// let put = BulkAction::index("orders", Some("7".into()), br#"{"id":7,"amount":2.5}"#.to_vec())?;
/// assert_eq!(put.kind(), ActionKind::Index);
/// let mut body = Vec::new();
/// put.write_to(&mut body);
/// assert_eq!(
///     String::from_utf8(body).unwrap(),
///     "{\"index\":{\"_index\":\"orders\",\"_id\":\"7\"}}\n{\"id\":7,\"amount\":2.5}\n"
/// );
///
/// let delete = BulkAction::delete("orders", "7".into())?;
/// let mut body = Vec::new();
/// delete.write_to(&mut body);
/// assert_eq!(String::from_utf8(body).unwrap(), "{\"delete\":{\"_index\":\"orders\",\"_id\":\"7\"}}\n");
///
/// // An upsert needs an id.
/// assert!(BulkAction::upsert("orders", None, b"{}".to_vec()).is_err());
/// # Ok::<(), weir_connector_elasticsearch::sink::ActionError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BulkAction {
    kind: ActionKind,
    index: Arc<str>,
    id: Option<Box<str>>,
    document: Box<[u8]>,
}

impl fmt::Debug for BulkAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkAction")
            .field("kind", &self.kind)
            .field("index", &self.index)
            .field("id", &self.id)
            .field("document", &String::from_utf8_lossy(&self.document))
            .finish()
    }
}

/// Bytes of the action line besides the index name and the id (`{"create":{"_index":"","_id":""}}\n`).
const ACTION_LINE_OVERHEAD: u64 = 36;

impl BulkAction {
    /// An action of any kind (`document` is ignored for [`ActionKind::Delete`]).
    pub fn new(
        kind: ActionKind,
        index: impl Into<Arc<str>>,
        id: Option<String>,
        document: Vec<u8>,
    ) -> Result<Self, ActionError> {
        let index = index.into();
        if index.is_empty() {
            return Err(ActionError::EmptyIndex);
        }
        if kind.needs_id() && id.is_none() {
            return Err(ActionError::MissingId { kind });
        }
        let mut document = if kind.has_document() {
            document
        } else {
            Vec::new()
        };
        if document.iter().any(|&b| b == b'\n' || b == b'\r') {
            for b in &mut document {
                if *b == b'\n' || *b == b'\r' {
                    *b = b' ';
                }
            }
        }
        Ok(BulkAction {
            kind,
            index,
            id: id.map(String::into_boxed_str),
            document: document.into_boxed_slice(),
        })
    }

    /// Put `document`, replacing any document with the same id.
    pub fn index(
        index: impl Into<Arc<str>>,
        id: Option<String>,
        document: Vec<u8>,
    ) -> Result<Self, ActionError> {
        Self::new(ActionKind::Index, index, id, document)
    }

    /// Put `document` unless a document with its id exists.
    pub fn create(
        index: impl Into<Arc<str>>,
        id: Option<String>,
        document: Vec<u8>,
    ) -> Result<Self, ActionError> {
        Self::new(ActionKind::Create, index, id, document)
    }

    /// Merge `document`'s fields into the existing document `id`.
    pub fn update(
        index: impl Into<Arc<str>>,
        id: Option<String>,
        document: Vec<u8>,
    ) -> Result<Self, ActionError> {
        Self::new(ActionKind::Update, index, id, document)
    }

    /// Merge `document`'s fields into document `id`, creating it when missing.
    pub fn upsert(
        index: impl Into<Arc<str>>,
        id: Option<String>,
        document: Vec<u8>,
    ) -> Result<Self, ActionError> {
        Self::new(ActionKind::Upsert, index, id, document)
    }

    /// Delete document `id`.
    pub fn delete(index: impl Into<Arc<str>>, id: String) -> Result<Self, ActionError> {
        Self::new(ActionKind::Delete, index, Some(id), Vec::new())
    }

    /// What the action does.
    pub fn kind(&self) -> ActionKind {
        self.kind
    }

    /// The target index.
    pub fn index_name(&self) -> &str {
        &self.index
    }

    /// The document id, if any.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The document (empty for deletes).
    pub fn document(&self) -> &[u8] {
        &self.document
    }

    /// About how many bytes the action takes in a request (exact up to JSON escapes).
    pub fn size(&self) -> u64 {
        let id = self.id.as_ref().map_or(0, |id| id.len() as u64);
        let document = if self.kind.has_document() {
            // The document line; updates wrap it in `{"doc":...,"doc_as_upsert":true}`.
            self.document.len() as u64 + 30
        } else {
            0
        };
        ACTION_LINE_OVERHEAD + self.index.len() as u64 + id + document
    }

    /// Appends the action's lines (NDJSON, each ending in `\n`) to a bulk request body.
    pub fn write_to(&self, body: &mut Vec<u8>) {
        body.extend_from_slice(b"{\"");
        body.extend_from_slice(self.kind.bulk_name().as_bytes());
        body.extend_from_slice(b"\":{\"_index\":");
        write_json_string(body, &self.index);
        if let Some(id) = &self.id {
            body.extend_from_slice(b",\"_id\":");
            write_json_string(body, id);
        }
        body.extend_from_slice(b"}}\n");
        match self.kind {
            ActionKind::Index | ActionKind::Create => {
                body.extend_from_slice(&self.document);
                body.push(b'\n');
            }
            ActionKind::Update => {
                body.extend_from_slice(b"{\"doc\":");
                body.extend_from_slice(&self.document);
                body.extend_from_slice(b"}\n");
            }
            ActionKind::Upsert => {
                body.extend_from_slice(b"{\"doc\":");
                body.extend_from_slice(&self.document);
                body.extend_from_slice(b",\"doc_as_upsert\":true}\n");
            }
            ActionKind::Delete => {}
        }
    }

    /// `index <index>, id <id>` for messages.
    pub fn describe(&self) -> String {
        match &self.id {
            Some(id) => format!("{} of document `{id}` in index `{}`", self.kind, self.index),
            None => format!(
                "{} of a document without id in index `{}`",
                self.kind, self.index
            ),
        }
    }

    pub(crate) fn from_parts(
        kind: ActionKind,
        index: Arc<str>,
        id: Option<Box<str>>,
        document: Box<[u8]>,
    ) -> Self {
        BulkAction {
            kind,
            index,
            id,
            document,
        }
    }
}

/// Writes `s` as a JSON string (quoted, escaped).
pub(crate) fn write_json_string(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
    {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // serde_json escapes every control character, quote and backslash; writing into a
        // Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}
