//! What the sink does with an action the cluster refused for good (a mapping error, a missing
//! document for an update): [`FailurePolicy`], and the [`DeadLetterSink`] contract.

use std::fmt;
use std::sync::Arc;

use weir_connector_api::error::Result;

use super::action::BulkAction;

/// An action the cluster refused for good, with the cluster's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAction {
    /// The action as it was sent.
    pub action: BulkAction,
    /// The item's HTTP status (e.g. 400).
    pub status: u16,
    /// The error type (e.g. `document_parsing_exception`), if the cluster gave one.
    pub error_type: String,
    /// The cluster's reason.
    pub reason: String,
}

impl fmt::Display for FailedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} failed with {} {}: {}",
            self.action.describe(),
            self.status,
            self.error_type,
            self.reason
        )
    }
}

/// Where refused actions go under [`FailurePolicy::DeadLetter`] (a queue, a table, a file).
///
/// Called by the writer once per bulk request that had refused actions, before those actions
/// count as delivered; an error makes them retryable: they are sent again (and refused
/// again, and handed over again), so a dead-letter sink sees an action at least once.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use weir_connector_api::error::Result;
/// use weir_connector_elasticsearch::sink::{DeadLetterSink, FailedAction, FailurePolicy};
///
/// /// Keeps refused actions in memory.
/// #[derive(Default)]
/// struct Keep(Mutex<Vec<FailedAction>>);
///
/// #[async_trait::async_trait]
/// impl DeadLetterSink for Keep {
///     async fn send(&self, failed: &[FailedAction]) -> Result<()> {
///         self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(failed);
///         Ok(())
///     }
///     fn describe(&self) -> String {
///         "memory".to_owned()
///     }
/// }
///
/// let policy = FailurePolicy::DeadLetter(Arc::new(Keep::default()));
/// assert_eq!(policy.to_string(), "dead-letter (memory)");
/// ```
#[async_trait::async_trait]
pub trait DeadLetterSink: Send + Sync + 'static {
    /// Takes refused actions; `Ok` once they are stored.
    async fn send(&self, failed: &[FailedAction]) -> Result<()>;

    /// Where they go, for messages.
    fn describe(&self) -> String;
}

/// What happens to an action the cluster refused for good (`sink.failure-policy`).
///
/// Refusals that may pass later (429 throttling, 502/503/504, version conflicts of updates)
/// are never subject to the policy: they are retried, with backoff, up to the retry limit.
#[derive(Clone, Default)]
pub enum FailurePolicy {
    /// Fail the job (the default): the error names the action's index, its id and the
    /// cluster's reason; after a restart the action is sent again and fails again until the
    /// data or the mapping is fixed.
    #[default]
    Fail,
    /// Drop the action, count it in `numRecordsSkipped` and log it (at most a few lines per
    /// request).
    Skip,
    /// Index a record of it (original index, id, action, status, reason, the document as
    /// text) into this index of the same cluster, and count it in `numRecordsDeadLettered`.
    DeadLetterIndex(String),
    /// Hand it to a [`DeadLetterSink`] and count it in `numRecordsDeadLettered`.
    DeadLetter(Arc<dyn DeadLetterSink>),
}

impl fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailurePolicy::Fail => f.write_str("fail"),
            FailurePolicy::Skip => f.write_str("skip"),
            FailurePolicy::DeadLetterIndex(index) => write!(f, "dead-letter (index `{index}`)"),
            FailurePolicy::DeadLetter(sink) => write!(f, "dead-letter ({})", sink.describe()),
        }
    }
}

impl fmt::Debug for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailurePolicy({self})")
    }
}

/// The dead-letter document of a refused action (`FailurePolicy::DeadLetterIndex`): the
/// original document as text, so a document the target mapping refused is accepted here.
pub(crate) fn dead_letter_document(failed: &FailedAction, at_millis: i64) -> Vec<u8> {
    let document = String::from_utf8_lossy(failed.action.document());
    let value = serde_json::json!({
        "index": failed.action.index_name(),
        "id": failed.action.id(),
        "action": failed.action.kind().to_string(),
        "status": failed.status,
        "error_type": failed.error_type,
        "reason": failed.reason,
        "document": document,
        "failed_at": at_millis,
    });
    serde_json::to_vec(&value).unwrap_or_default()
}
