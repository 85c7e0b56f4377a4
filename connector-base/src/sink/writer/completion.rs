//! What the writer does when a request completes: metrics, the rate limiter, and the entries
//! that failed back to the head of the buffer (or the writer's failure).

use std::time::Duration;

use tokio::time::Instant;
use weir_connector_api::error::{ConnectorError, ErrorClass, Result};

use super::{AsyncSinkWriter, Completion};
use crate::sink::config::{keys, TimeoutPolicy};
use crate::sink::entry::{ElementConverter, EntryOutcome, RequestSubmitter};
use crate::sink::rate_limit::ResultInfo;

impl<In, E, C, S> AsyncSinkWriter<In, E, C, S>
where
    In: Send + 'static,
    E: Clone + Send + Sync + 'static,
    C: ElementConverter<In, E>,
    S: RequestSubmitter<E>,
{
    /// Accounts for a completed request.
    pub(super) fn complete(&mut self, done: Completion<E>) -> Result<()> {
        let Completion {
            batch,
            failures,
            bytes,
            result,
            sent_at,
        } = done;
        let n = batch.len();
        self.in_flight_entries = self.in_flight_entries.saturating_sub(n);
        let elapsed = sent_at.elapsed();
        self.metrics
            .sink
            .set_current_send_time(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
        let outcomes = match result {
            Ok(outcomes) if outcomes.len() == n => outcomes,
            Ok(outcomes) => {
                self.register(n, n);
                return Err(ConnectorError::Contract(format!(
                    "the request submitter answered {} outcomes for a batch of {n} entries; it \
                     must answer one per entry, in order",
                    outcomes.len()
                )));
            }
            Err(error) if error.class() == ErrorClass::Fatal => {
                self.metrics.sink.add_records_send_errors(n as u64);
                self.register(n, n);
                return Err(error);
            }
            Err(error) => vec![EntryOutcome::retryable(error.to_string()); n],
        };
        if outcomes.iter().all(EntryOutcome::is_delivered) {
            // The common case: no entry is looked at again; the allocation is reused. The
            // outcomes go first: a large block freed while many small ones sit in glibc's
            // fastbins makes it consolidate them all (measured: ~20 instructions per entry).
            drop(outcomes);
            self.metrics.sink.add_records_send(n as u64);
            self.metrics.sink.add_bytes_send(bytes);
            self.register(n, 0);
            if let Ok(mut entries) = batch.into_entries() {
                entries.clear();
                if self.buffer.is_empty() && self.buffer.capacity() <= entries.capacity() {
                    // Keep writing into the memory just used (still in the CPU's caches).
                    std::mem::swap(&mut self.buffer, &mut entries);
                }
                if self.spare.is_none() {
                    self.spare = Some(entries);
                }
            }
            return Ok(());
        }
        let (mut owned, kept) = match batch.into_entries() {
            Ok(entries) => (Some(entries.into_iter()), None),
            Err(batch) => {
                tracing::warn!(
                    "the AsyncSink request submitter kept a batch after answering; its failed \
                     entries are cloned (drop the batch when `submit` returns)"
                );
                (None, Some(batch))
            }
        };
        let max_retries = self.config.retry().max_retries;
        let mut retry = Vec::new();
        let mut retry_failures = Vec::new();
        let mut failed_bytes = 0_u64;
        let mut fatal = None;
        let mut delivered = 0_usize;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            // Advance the owned entries in step with the outcomes.
            let entry = owned.as_mut().and_then(Iterator::next);
            let EntryOutcome::Failed { class, reason } = outcome else {
                delivered += 1;
                continue;
            };
            let earlier = failures
                .as_ref()
                .and_then(|f| f.get(i).copied())
                .unwrap_or(0);
            let count = earlier.saturating_add(1);
            let Some(entry) = entry.or_else(|| kept.as_ref().and_then(|b| b.get(i)).cloned())
            else {
                return Err(ConnectorError::Contract(format!(
                    "entry {i} of a batch of {n} is missing after its request"
                )));
            };
            failed_bytes = failed_bytes.saturating_add(self.submitter.entry_size(&entry));
            if class == ErrorClass::Fatal || count > max_retries {
                if fatal.is_none() {
                    fatal = Some(entry_failed(class, &reason, count, max_retries));
                }
                continue;
            }
            retry.push(entry);
            retry_failures.push(count);
        }
        let failed = n - delivered;
        self.metrics.sink.add_records_send(delivered as u64);
        self.metrics
            .sink
            .add_bytes_send(bytes.saturating_sub(failed_bytes));
        self.metrics.sink.add_records_send_errors(failed as u64);
        self.register(n, failed);
        if let Some(error) = fatal {
            return Err(error);
        }
        self.requeue(retry, retry_failures);
        Ok(())
    }

    /// Tells the rate limiter how a request of `n` entries ended.
    fn register(&mut self, n: usize, failed_entries: usize) {
        self.rate.register_completed(ResultInfo {
            batch_size: n,
            failed_entries,
        });
        self.update_batch_limit();
    }

    /// Puts failed entries back at the head of the buffer, in their order, and starts the
    /// backoff of the most-failed one.
    fn requeue(&mut self, retry: Vec<E>, failures: Vec<u32>) {
        let Some(most) = failures.iter().copied().max() else {
            return;
        };
        if self.buffer.is_empty() {
            self.buffered_since = Some(Instant::now());
        }
        for size in retry.iter().map(|e| self.submitter.entry_size(e)) {
            self.buffered_bytes = self.buffered_bytes.saturating_add(size);
        }
        // Entries already back for a retry keep their counts, after the new ones.
        let mut head: std::collections::VecDeque<u32> = failures.into();
        head.append(&mut self.head_failures);
        self.head_failures = head;
        self.buffer.splice(0..0, retry);
        let at = Instant::now() + self.config.retry().backoff(most);
        if self.retry_at.is_none_or(|current| current < at) {
            self.retry_at = Some(at);
            self.retry_sleep = None;
        }
    }
}

pub(super) fn timed_out(n: usize, limit: Duration, policy: TimeoutPolicy) -> ConnectorError {
    let context = format!("sending a request of {n} entries");
    let message = format!(
        "no answer within {limit:?} ({}); raise it if the destination is slow",
        keys::REQUEST_TIMEOUT
    );
    match policy {
        TimeoutPolicy::Retry => ConnectorError::retryable(context, message),
        TimeoutPolicy::Fail => ConnectorError::fatal(context, message),
    }
}

fn entry_failed(
    class: ErrorClass,
    reason: &str,
    failures: u32,
    max_retries: u32,
) -> ConnectorError {
    match class {
        ErrorClass::Fatal => ConnectorError::fatal(
            "sending an entry",
            format!("the destination refused it: {reason}"),
        ),
        ErrorClass::Retryable => ConnectorError::fatal(
            "sending an entry",
            format!(
                "it failed {failures} times, the last time with: {reason}; the writer gives up \
                 after {max_retries} retries ({}): raise it, or check the destination",
                keys::MAX_RETRIES
            ),
        ),
    }
}
