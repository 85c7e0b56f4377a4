//! What a connector supplies to the AsyncSink writer: an [`ElementConverter`] (record → request
//! entry) and a [`RequestSubmitter`] (a batch of entries → one request, with an
//! [`EntryOutcome`] per entry).

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use weir_connector_api::error::{ErrorClass, Result};
use weir_connector_api::sink::WriteContext;

/// Turns one record into one request entry (Flink's `ElementConverter`).
///
/// Called for every record from [`SinkWriter::write`](weir_connector_api::sink::SinkWriter::write),
/// so it must not block; keep it allocation-light (serializing the record into the entry is the
/// usual and only allocation). An error fails the writer (a malformed record, say) — return a
/// [`ConnectorError::Malformed`](weir_connector_api::ConnectorError::Malformed) that names the
/// record.
///
/// Any `FnMut(In, &WriteContext) -> Result<E>` closure is a converter:
///
/// ```
/// use weir_connector_api::error::Result;
/// use weir_connector_api::sink::WriteContext;
/// use weir_connector_base::sink::ElementConverter;
///
/// /// An order as a JSON document keyed by its id.
/// struct OrderToDocument;
///
/// impl ElementConverter<(u64, f64), String> for OrderToDocument {
///     fn convert(&mut self, (id, amount): (u64, f64), _ctx: &WriteContext) -> Result<String> {
///         Ok(format!(r#"{{"id":{id},"amount":{amount}}}"#))
///     }
/// }
///
/// let mut converter = OrderToDocument;
/// assert_eq!(
///     converter.convert((7, 2.5), &WriteContext::default())?,
///     r#"{"id":7,"amount":2.5}"#
/// );
///
/// // The same as a closure.
/// let mut closure = |(id, _amount): (u64, f64), _ctx: &WriteContext| Ok(id.to_string());
/// assert_eq!(closure.convert((7, 2.5), &WriteContext::default())?, "7");
/// # Ok::<(), weir_connector_api::ConnectorError>(())
/// ```
pub trait ElementConverter<In, E>: Send + 'static {
    /// The request entry for `element`.
    fn convert(&mut self, element: In, ctx: &WriteContext) -> Result<E>;
}

impl<In, E, F> ElementConverter<In, E> for F
where
    F: FnMut(In, &WriteContext) -> Result<E> + Send + 'static,
{
    #[inline]
    fn convert(&mut self, element: In, ctx: &WriteContext) -> Result<E> {
        self(element, ctx)
    }
}

/// The entries of one request, in the order the writer buffered them.
///
/// Dereferences to `[E]`. The writer keeps a handle on the same entries while the request is in
/// flight, so the entries that fail are retried without being copied: do not keep the batch
/// after [`RequestSubmitter::submit`] returns (if you do, the writer clones the failed entries).
pub struct RequestBatch<E> {
    entries: Arc<Vec<E>>,
}

impl<E> RequestBatch<E> {
    pub(crate) fn new(entries: Vec<E>) -> Self {
        RequestBatch {
            entries: Arc::new(entries),
        }
    }

    /// A second handle on the same entries (the writer's).
    pub(crate) fn share(&self) -> Self {
        RequestBatch {
            entries: Arc::clone(&self.entries),
        }
    }

    /// The entries back, without copying when this is the last handle.
    pub(crate) fn into_entries(self) -> std::result::Result<Vec<E>, Self> {
        Arc::try_unwrap(self.entries).map_err(|entries| RequestBatch { entries })
    }

    /// The entries.
    pub fn entries(&self) -> &[E] {
        &self.entries
    }
}

impl<E> Deref for RequestBatch<E> {
    type Target = [E];

    fn deref(&self) -> &[E] {
        &self.entries
    }
}

impl<E: fmt::Debug> fmt::Debug for RequestBatch<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries.iter()).finish()
    }
}

/// What happened to one entry of a request.
///
/// The classification is an explicit [`ErrorClass`] (Flink's `FatalExceptionClassifier`
/// returned an inverted boolean): a [`Retryable`](ErrorClass::Retryable) entry goes back to the
/// head of the buffer and is sent again after a backoff, at most
/// [`RetryPolicy::max_retries`](super::RetryPolicy) times; a [`Fatal`](ErrorClass::Fatal) one
/// fails the writer (the job restarts from its last checkpoint, which still holds the entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// The destination accepted the entry.
    Delivered,
    /// The destination refused the entry.
    Failed {
        /// Whether sending it again may succeed.
        class: ErrorClass,
        /// Why, as the destination said it (e.g. `429 too many requests`,
        /// `mapper_parsing_exception: failed to parse field [amount]`).
        reason: Cow<'static, str>,
    },
}

impl EntryOutcome {
    /// A retryable failure (throttling, a full queue, a shard moving).
    pub fn retryable(reason: impl Into<Cow<'static, str>>) -> Self {
        EntryOutcome::Failed {
            class: ErrorClass::Retryable,
            reason: reason.into(),
        }
    }

    /// A fatal failure (a malformed document, a missing permission).
    pub fn fatal(reason: impl Into<Cow<'static, str>>) -> Self {
        EntryOutcome::Failed {
            class: ErrorClass::Fatal,
            reason: reason.into(),
        }
    }

    /// Whether the entry was delivered.
    pub fn is_delivered(&self) -> bool {
        matches!(self, EntryOutcome::Delivered)
    }
}

/// Sends batches of request entries to the destination (Flink's `submitRequestEntries` and
/// `getSizeInBytes`).
///
/// [`submit`](Self::submit) is called once per batch, never per record; several calls may be in
/// flight at once (up to the configured maximum), so it takes `&self`. It answers either
///
/// - `Ok(outcomes)`: the request reached the destination, with one [`EntryOutcome`] per entry,
///   in the batch's order (a bulk API's per-item results); or
/// - `Err(error)`: the whole request failed (connection refused, a 503 for the request).
///   [`ConnectorError::class`](weir_connector_api::ConnectorError::class) decides: a retryable
///   error retries every entry, a fatal one fails the writer.
///
/// Use a [`ConnectorError::external`](weir_connector_api::ConnectorError::external) error with
/// context (`sending 500 documents to index orders`) so the user knows what failed.
///
/// ```
/// use std::sync::Mutex;
/// use weir_connector_api::error::Result;
/// use weir_connector_base::sink::{EntryOutcome, RequestBatch, RequestSubmitter};
///
/// /// Appends lines to an in-memory "log" that refuses empty lines.
/// #[derive(Default)]
/// struct LineLog { lines: Mutex<Vec<String>> }
///
/// #[async_trait::async_trait]
/// impl RequestSubmitter<String> for LineLog {
///     fn entry_size(&self, line: &String) -> u64 {
///         line.len() as u64 + 1 // with its newline
///     }
///
///     async fn submit(&self, batch: RequestBatch<String>) -> Result<Vec<EntryOutcome>> {
///         let mut log = self.lines.lock().unwrap_or_else(|e| e.into_inner());
///         Ok(batch
///             .iter()
///             .map(|line| {
///                 if line.is_empty() {
///                     EntryOutcome::fatal("empty lines are not allowed")
///                 } else {
///                     log.push(line.clone());
///                     EntryOutcome::Delivered
///                 }
///             })
///             .collect())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait RequestSubmitter<E: Send + Sync + 'static>: Send + Sync + 'static {
    /// The size of `entry` in bytes as it is sent, for batching by bytes, the record size limit
    /// and `numBytesSend`. Called once per record: keep it cheap.
    fn entry_size(&self, entry: &E) -> u64;

    /// Sends `batch` as one request.
    async fn submit(&self, batch: RequestBatch<E>) -> Result<Vec<EntryOutcome>>;
}
