//! [`BulkSubmitter`]: sends a batch of actions as one `_bulk` request and turns the per-item
//! answers into retryable / fatal / delivered outcomes, applying the failure policy.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use elasticsearch::http::Method;
use elasticsearch::Elasticsearch;
use serde::{Deserialize, Serialize};
use weir_connector_api::error::{ConnectorError, ErrorClass, Result};
use weir_connector_api::metrics::{Counter, MetricGroup};
use weir_connector_base::sink::{EntryOutcome, RequestBatch, RequestSubmitter};

use super::action::{ActionKind, BulkAction};
use super::failure::{dead_letter_document, FailedAction, FailurePolicy};
use super::RefreshPolicy;
use crate::client::{classify_status, server_reason, transport_error, Auth};

/// Counter: actions the cluster refused for good and the `skip` policy dropped.
pub const NUM_RECORDS_SKIPPED: &str = "numRecordsSkipped";
/// Counter: actions the cluster refused for good and the dead-letter policy stored.
pub const NUM_RECORDS_DEAD_LETTERED: &str = "numRecordsDeadLettered";
/// Counter: `create` actions whose document already existed (409; counted as delivered).
pub const NUM_CREATE_CONFLICTS: &str = "numCreateConflicts";
/// Counter: actions the cluster answered with a retryable status (429, 502, 503, 504, or a
/// version conflict of an update), each time.
pub const NUM_RECORDS_RETRIED: &str = "numRecordsRetried";

/// How many refused actions of one request the `skip` policy logs.
const SKIP_LOG_LINES: usize = 3;

/// The counters of one writer.
#[derive(Debug, Clone, Default)]
pub(crate) struct SinkCounters {
    pub(crate) skipped: Counter,
    pub(crate) dead_lettered: Counter,
    pub(crate) create_conflicts: Counter,
    pub(crate) retried: Counter,
}

impl SinkCounters {
    pub(crate) fn new(group: &dyn MetricGroup) -> Self {
        SinkCounters {
            skipped: group.counter(NUM_RECORDS_SKIPPED),
            dead_lettered: group.counter(NUM_RECORDS_DEAD_LETTERED),
            create_conflicts: group.counter(NUM_CREATE_CONFLICTS),
            retried: group.counter(NUM_RECORDS_RETRIED),
        }
    }
}

#[derive(Serialize)]
struct BulkQuery {
    filter_path: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh: Option<&'static str>,
}

/// The items of a bulk answer carry only their status and error (`filter_path`).
const FILTER_PATH: &str = "errors,items.*.status,items.*.error";

#[derive(Deserialize)]
struct BulkHead {
    errors: bool,
}

#[derive(Deserialize)]
struct BulkItems {
    items: Vec<HashMap<String, BulkItem>>,
}

#[derive(Deserialize)]
struct BulkItem {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Sends batches of [`BulkAction`]s as `_bulk` requests.
pub(crate) struct BulkSubmitter {
    client: Elasticsearch,
    hosts: Arc<str>,
    auth: Auth,
    query: BulkQuery,
    policy: FailurePolicy,
    counters: SinkCounters,
}

impl BulkSubmitter {
    pub(crate) fn new(
        client: Elasticsearch,
        hosts: Arc<str>,
        auth: Auth,
        refresh: RefreshPolicy,
        policy: FailurePolicy,
        counters: SinkCounters,
    ) -> Self {
        BulkSubmitter {
            client,
            hosts,
            auth,
            query: BulkQuery {
                filter_path: FILTER_PATH,
                refresh: refresh.query_value(),
            },
            policy,
            counters,
        }
    }

    /// Sends `body` (NDJSON) to `_bulk`; the answer's bytes, or a classified error.
    async fn post_bulk(&self, body: Vec<u8>, actions: usize, query: &BulkQuery) -> Result<Vec<u8>> {
        let context = || format!("sending a bulk request of {actions} actions");
        let mut headers = HeaderMap::with_capacity(1);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        let response = self
            .client
            .send(
                Method::Post,
                "/_bulk",
                headers,
                Some(query),
                Some(body),
                None,
            )
            .await
            .map_err(|e| transport_error(context(), &self.hosts, &e))?;
        let status = response.status_code().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(context(), &self.hosts, &e))?;
        if !(200..300).contains(&status) {
            let error = classify_status(status, &bytes, &self.auth);
            return Err(ConnectorError::external(
                format!("{} to {}", context(), self.hosts),
                error.class,
                error.message,
            ));
        }
        Ok(bytes.to_vec())
    }

    /// Stores refused actions in the dead-letter index.
    async fn dead_letter_index(&self, index: &str, failed: &[FailedAction]) -> Result<()> {
        let at = chrono::Utc::now().timestamp_millis();
        let mut body = Vec::new();
        for f in failed {
            // One dead-letter document per original document (a replay overwrites it).
            let id = f
                .action
                .id()
                .map(|id| format!("{}/{id}", f.action.index_name()))
                .filter(|id| id.len() <= 512);
            let action = BulkAction::index(index, id, dead_letter_document(f, at))
                .map_err(|e| ConnectorError::fatal("writing to the dead-letter index", e))?;
            action.write_to(&mut body);
        }
        let query = BulkQuery {
            filter_path: FILTER_PATH,
            refresh: self.query.refresh,
        };
        let answer = self.post_bulk(body, failed.len(), &query).await?;
        let head: BulkHead = serde_json::from_slice(&answer).map_err(|e| {
            ConnectorError::retryable("reading the dead-letter index's answer", e.to_string())
        })?;
        if head.errors {
            let reason = first_item_error(&answer);
            return Err(ConnectorError::retryable(
                format!(
                    "writing {} refused actions to the dead-letter index `{index}`",
                    failed.len()
                ),
                reason,
            ));
        }
        Ok(())
    }

    /// The outcome of every action from the answer's items.
    async fn outcomes(
        &self,
        batch: &RequestBatch<BulkAction>,
        answer: &[u8],
    ) -> Result<Vec<EntryOutcome>> {
        let n = batch.len();
        let head: BulkHead = serde_json::from_slice(answer).map_err(|e| {
            ConnectorError::retryable(
                format!("reading the answer to a bulk request of {n} actions"),
                format!("not a bulk answer: {e}"),
            )
        })?;
        if !head.errors {
            return Ok(vec![EntryOutcome::Delivered; n]);
        }
        let items: BulkItems = serde_json::from_slice(answer).map_err(|e| {
            ConnectorError::retryable(
                format!("reading the answer to a bulk request of {n} actions"),
                format!("not a bulk answer: {e}"),
            )
        })?;
        if items.items.len() != n {
            return Err(ConnectorError::fatal(
                format!("reading the answer to a bulk request of {n} actions"),
                format!(
                    "the cluster answered {} items; a bulk answer has one item per action",
                    items.items.len()
                ),
            ));
        }
        let mut outcomes = Vec::with_capacity(n);
        let mut refused: Vec<(usize, FailedAction)> = Vec::new();
        for (i, (action, item)) in batch.iter().zip(items.items).enumerate() {
            let Some(item) = item.into_values().next() else {
                return Err(ConnectorError::fatal(
                    "reading a bulk answer",
                    format!("item {i} is empty"),
                ));
            };
            let outcome = match classify_item(action.kind(), item.status) {
                ItemClass::Delivered => EntryOutcome::Delivered,
                ItemClass::AlreadyExists => {
                    self.counters.create_conflicts.inc();
                    EntryOutcome::Delivered
                }
                ItemClass::Retryable => {
                    self.counters.retried.inc();
                    let (ty, reason) = item_reason(item.error.as_ref());
                    EntryOutcome::retryable(format!(
                        "the {} was answered {} {ty}: {reason}",
                        action.describe(),
                        item.status
                    ))
                }
                ItemClass::Permanent => {
                    let (error_type, reason) = item_reason(item.error.as_ref());
                    refused.push((
                        i,
                        FailedAction {
                            action: action.clone(),
                            status: item.status,
                            error_type,
                            reason,
                        },
                    ));
                    // Replaced below, by the policy.
                    EntryOutcome::Delivered
                }
            };
            outcomes.push(outcome);
        }
        keep_document_order(batch, &mut outcomes, &self.counters);
        if !refused.is_empty() {
            self.apply_policy(&mut outcomes, refused).await;
        }
        Ok(outcomes)
    }

    /// Applies the failure policy to refused actions (their positions in `outcomes`).
    async fn apply_policy(
        &self,
        outcomes: &mut [EntryOutcome],
        refused: Vec<(usize, FailedAction)>,
    ) {
        let set = |outcomes: &mut [EntryOutcome], i: usize, outcome: EntryOutcome| {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = outcome;
            }
        };
        match &self.policy {
            FailurePolicy::Fail => {
                for (i, failed) in refused {
                    set(
                        outcomes,
                        i,
                        EntryOutcome::fatal(format!(
                            "{failed} (`sink.failure-policy` is `fail`: fix the document or the \
                             mapping, or choose `skip` or `dead-letter`)"
                        )),
                    );
                }
            }
            FailurePolicy::Skip => {
                self.counters.skipped.add(refused.len() as u64);
                for (_, failed) in refused.iter().take(SKIP_LOG_LINES) {
                    tracing::warn!("Elasticsearch sink skipped an action: {failed}");
                }
                if refused.len() > SKIP_LOG_LINES {
                    tracing::warn!(
                        "Elasticsearch sink skipped {} more refused actions of the same request",
                        refused.len() - SKIP_LOG_LINES
                    );
                }
            }
            FailurePolicy::DeadLetterIndex(index) => {
                let failed: Vec<FailedAction> = refused.iter().map(|(_, f)| f.clone()).collect();
                let stored = self.dead_letter_index(index, &failed).await;
                self.after_dead_letter(outcomes, &refused, stored, &format!("index `{index}`"));
            }
            FailurePolicy::DeadLetter(sink) => {
                let failed: Vec<FailedAction> = refused.iter().map(|(_, f)| f.clone()).collect();
                let stored = sink.send(&failed).await;
                self.after_dead_letter(outcomes, &refused, stored, &sink.describe());
            }
        }
    }

    fn after_dead_letter(
        &self,
        outcomes: &mut [EntryOutcome],
        refused: &[(usize, FailedAction)],
        stored: Result<()>,
        target: &str,
    ) {
        match stored {
            Ok(()) => self.counters.dead_lettered.add(refused.len() as u64),
            Err(error) => {
                let reason: Cow<'static, str> = Cow::Owned(format!(
                    "the dead-letter sink ({target}) failed: {error}; the refused actions are \
                     sent again"
                ));
                let class = error.class();
                for (i, _) in refused {
                    if let Some(slot) = outcomes.get_mut(*i) {
                        *slot = EntryOutcome::Failed {
                            class: if class == ErrorClass::Fatal {
                                ErrorClass::Fatal
                            } else {
                                ErrorClass::Retryable
                            },
                            reason: reason.clone(),
                        };
                    }
                }
            }
        }
    }
}

/// Keeps the order of the actions on one document: an action after a retryable failure of an
/// earlier action on the same document (same index and id) in the batch is sent again too,
/// even if it was applied, so that the retry (the earlier action) cannot overtake it — a
/// delete applied before the retried upsert of the same row would otherwise resurrect it. The
/// writer resends failed actions in their order, ahead of newer ones.
fn keep_document_order(
    batch: &[BulkAction],
    outcomes: &mut [EntryOutcome],
    counters: &SinkCounters,
) {
    let mut failed: Option<std::collections::HashSet<(&str, &str)>> = None;
    for (action, outcome) in batch.iter().zip(outcomes.iter_mut()) {
        let Some(id) = action.id() else {
            continue;
        };
        let key = (action.index_name(), id);
        match outcome {
            EntryOutcome::Failed {
                class: ErrorClass::Retryable,
                ..
            } => {
                failed.get_or_insert_with(Default::default).insert(key);
            }
            EntryOutcome::Delivered if failed.as_ref().is_some_and(|f| f.contains(&key)) => {
                counters.retried.inc();
                *outcome = EntryOutcome::retryable(format!(
                    "the {} follows an action on the same document that is retried: it is \
                     sent again after it, to keep their order",
                    action.describe()
                ));
            }
            _ => {}
        }
    }
}

/// What an item's status means for its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemClass {
    /// Done.
    Delivered,
    /// A `create` whose document exists (a replay of an earlier write): done.
    AlreadyExists,
    /// Send again later.
    Retryable,
    /// Refused for good: the failure policy decides.
    Permanent,
}

/// Classifies an item of a bulk answer.
pub(crate) fn classify_item(kind: ActionKind, status: u16) -> ItemClass {
    match (status, kind) {
        (200..=299, _) | (404, ActionKind::Delete) => ItemClass::Delivered,
        (409, ActionKind::Create) => ItemClass::AlreadyExists,
        (409, ActionKind::Update | ActionKind::Upsert) | (429 | 502 | 503 | 504, _) => {
            ItemClass::Retryable
        }
        _ => ItemClass::Permanent,
    }
}

/// The `type` and `reason` (with its `caused_by` reason) of an item's error.
fn item_reason(error: Option<&serde_json::Value>) -> (String, String) {
    let Some(error) = error else {
        return ("(no error type)".to_owned(), "no reason given".to_owned());
    };
    let text =
        |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_str).map(str::to_owned);
    let ty = text(error.get("type")).unwrap_or_else(|| "(no error type)".to_owned());
    let mut reason = text(error.get("reason")).unwrap_or_else(|| error.to_string());
    if let Some(cause) = error.get("caused_by") {
        if let (Some(t), Some(r)) = (text(cause.get("type")), text(cause.get("reason"))) {
            reason = format!("{reason} (caused by {t}: {r})");
        }
    }
    (ty, reason)
}

/// The first item error of a bulk answer, for messages.
fn first_item_error(answer: &[u8]) -> String {
    let Ok(items) = serde_json::from_slice::<BulkItems>(answer) else {
        return server_reason(answer);
    };
    items
        .items
        .into_iter()
        .flat_map(HashMap::into_values)
        .find_map(|item| {
            item.error.map(|e| {
                let (ty, reason) = item_reason(Some(&e));
                format!("{} {ty}: {reason}", item.status)
            })
        })
        .unwrap_or_else(|| "an item failed without a reason".to_owned())
}

#[async_trait::async_trait]
impl RequestSubmitter<BulkAction> for BulkSubmitter {
    #[inline]
    fn entry_size(&self, action: &BulkAction) -> u64 {
        action.size()
    }

    async fn submit(&self, batch: RequestBatch<BulkAction>) -> Result<Vec<EntryOutcome>> {
        let capacity: u64 = batch.iter().map(BulkAction::size).sum();
        let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0) + 64);
        for action in batch.iter() {
            action.write_to(&mut body);
        }
        let answer = self.post_bulk(body, batch.len(), &self.query).await?;
        self.outcomes(&batch, &answer).await
    }
}
