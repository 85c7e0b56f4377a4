//! [`AsyncSinkConfig`]: batching, buffering, in-flight, retry and checkpoint settings of the
//! AsyncSink writer, validated all at once.

use std::time::Duration;

use weir_connector_api::config::{ConfigError, ConfigErrors};

use super::rate_limit::RateLimiting;

/// Option keys the configuration errors name (Flink's `AsyncSinkConnectorOptions` keys where
/// Flink has one), so a connector that exposes these settings as options reports the same keys.
pub mod keys {
    /// Entries per request.
    pub const MAX_BATCH_SIZE: &str = "sink.batch.max-size";
    /// Requests in flight.
    pub const MAX_IN_FLIGHT_REQUESTS: &str = "sink.requests.max-inflight";
    /// Entries buffered before `poll_ready` applies backpressure.
    pub const MAX_BUFFERED_ENTRIES: &str = "sink.requests.max-buffered";
    /// Bytes per request.
    pub const MAX_BATCH_SIZE_BYTES: &str = "sink.flush-buffer.size";
    /// How long an entry may wait in the buffer.
    pub const MAX_TIME_IN_BUFFER: &str = "sink.flush-buffer.timeout";
    /// Bytes per entry.
    pub const MAX_RECORD_SIZE_BYTES: &str = "sink.record.max-size";
    /// Timeout of one request.
    pub const REQUEST_TIMEOUT: &str = "sink.request.timeout";
    /// Retries of one entry.
    pub const MAX_RETRIES: &str = "sink.retry.max-retries";
    /// First backoff after a retryable failure.
    pub const INITIAL_BACKOFF: &str = "sink.retry.initial-backoff";
    /// Longest backoff.
    pub const MAX_BACKOFF: &str = "sink.retry.max-backoff";
    /// AIMD additive increase.
    pub const AIMD_INCREASE: &str = "sink.rate-limit.aimd.increase";
    /// AIMD multiplicative decrease.
    pub const AIMD_DECREASE_FACTOR: &str = "sink.rate-limit.aimd.decrease-factor";
}

/// What a checkpoint flush sends (the runtime flushes the writer before every checkpoint
/// barrier; at the end of input the writer always sends everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointFlush {
    /// Flink's behaviour: wait until every request in flight has completed, and send the entries
    /// whose batch is full or whose time in the buffer is up; the other buffered entries stay
    /// buffered and go into the checkpoint, and a restore sends them. Checkpoints stay fast
    /// under throttling.
    #[default]
    AwaitInFlight,
    /// Send every buffered entry and wait until all are acknowledged (retrying within the
    /// [`RetryPolicy`]); the checkpoint then holds only what could not be delivered. Checkpoints
    /// wait for the destination.
    SendAll,
}

/// What happens when a request exceeds [`AsyncSinkConfigBuilder::request_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeoutPolicy {
    /// Abandon the request and retry its entries (the default; the destination may then receive
    /// an entry twice, which at-least-once allows).
    #[default]
    Retry,
    /// Fail the writer.
    Fail,
}

/// Bounded retries of entries that failed with a retryable error, with exponential backoff.
///
/// After a retryable failure the writer sends nothing for the backoff of the entry's attempt
/// (`initial_backoff × 2^(attempt − 1)`, at most `max_backoff`); a destination that throttles is
/// throttling every request. An entry that has failed `max_retries + 1` times fails the
/// writer with the last reason: the job restarts from its last checkpoint, nothing is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of one entry before the writer fails (default 10).
    pub max_retries: u32,
    /// Backoff after an entry's first failure (default 50 ms).
    pub initial_backoff: Duration,
    /// Longest backoff (default 5 s).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The backoff before sending an entry that has failed `failures` times (≥ 1).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(1_u32 << doublings)
            .min(self.max_backoff)
    }
}

/// The validated settings of an AsyncSink writer (Flink's `AsyncSinkWriterConfiguration`).
///
/// ```
/// use std::time::Duration;
/// use weir_connector_base::sink::{AsyncSinkConfig, CheckpointFlush};
///
/// let config = AsyncSinkConfig::builder()
///     .max_batch_size(500)
///     .max_in_flight_requests(4)
///     .max_buffered_entries(5_000)
///     .max_time_in_buffer(Duration::from_millis(200))
///     .checkpoint_flush(CheckpointFlush::SendAll)
///     .build()?;
/// assert_eq!(config.max_batch_size(), 500);
///
/// // Every problem is reported at once, under the option keys.
/// let errors = AsyncSinkConfig::builder()
///     .max_batch_size(0)
///     .max_in_flight_requests(0)
///     .build()
///     .unwrap_err();
/// assert_eq!(errors.len(), 2);
/// assert!(errors.to_string().contains("sink.batch.max-size"));
/// # Ok::<(), weir_connector_api::config::ConfigErrors>(())
/// ```
#[derive(Debug, Clone)]
pub struct AsyncSinkConfig {
    max_batch_size: usize,
    max_batch_size_bytes: u64,
    max_in_flight_requests: usize,
    max_buffered_entries: usize,
    max_time_in_buffer: Duration,
    max_record_size_bytes: u64,
    request_timeout: Option<Duration>,
    timeout_policy: TimeoutPolicy,
    retry: RetryPolicy,
    checkpoint_flush: CheckpointFlush,
    rate_limiting: RateLimiting,
}

impl Default for AsyncSinkConfig {
    /// The builder's defaults (which are valid).
    fn default() -> Self {
        AsyncSinkConfigBuilder::default().unchecked()
    }
}

impl AsyncSinkConfig {
    /// A builder with the defaults.
    pub fn builder() -> AsyncSinkConfigBuilder {
        AsyncSinkConfigBuilder::default()
    }

    /// Most entries per request.
    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    /// Most bytes per request (by [`RequestSubmitter::entry_size`](super::RequestSubmitter::entry_size)).
    pub fn max_batch_size_bytes(&self) -> u64 {
        self.max_batch_size_bytes
    }

    /// Most requests in flight.
    pub fn max_in_flight_requests(&self) -> usize {
        self.max_in_flight_requests
    }

    /// Buffered entries at which `poll_ready` applies backpressure.
    pub fn max_buffered_entries(&self) -> usize {
        self.max_buffered_entries
    }

    /// How long an entry may wait for its batch to fill.
    pub fn max_time_in_buffer(&self) -> Duration {
        self.max_time_in_buffer
    }

    /// Largest entry; a larger one fails the writer.
    pub fn max_record_size_bytes(&self) -> u64 {
        self.max_record_size_bytes
    }

    /// Timeout of one request, if any.
    pub fn request_timeout(&self) -> Option<Duration> {
        self.request_timeout
    }

    /// What a timed-out request leads to.
    pub fn timeout_policy(&self) -> TimeoutPolicy {
        self.timeout_policy
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// What a checkpoint flush sends.
    pub fn checkpoint_flush(&self) -> CheckpointFlush {
        self.checkpoint_flush
    }

    /// The rate-limiting strategy.
    pub fn rate_limiting(&self) -> &RateLimiting {
        &self.rate_limiting
    }
}

/// Builds an [`AsyncSinkConfig`]; [`build`](Self::build) reports every invalid setting at once.
#[derive(Debug, Clone)]
#[must_use]
pub struct AsyncSinkConfigBuilder {
    config: AsyncSinkConfig,
}

impl Default for AsyncSinkConfigBuilder {
    fn default() -> Self {
        AsyncSinkConfigBuilder {
            config: AsyncSinkConfig {
                max_batch_size: 500,
                max_batch_size_bytes: 5 * 1024 * 1024,
                max_in_flight_requests: 8,
                max_buffered_entries: 10_000,
                max_time_in_buffer: Duration::from_secs(5),
                max_record_size_bytes: 1024 * 1024,
                request_timeout: None,
                timeout_policy: TimeoutPolicy::Retry,
                retry: RetryPolicy::default(),
                checkpoint_flush: CheckpointFlush::AwaitInFlight,
                rate_limiting: RateLimiting::default(),
            },
        }
    }
}

impl AsyncSinkConfigBuilder {
    /// Most entries per request (default 500; `sink.batch.max-size`).
    pub fn max_batch_size(mut self, entries: usize) -> Self {
        self.config.max_batch_size = entries;
        self
    }

    /// Most bytes per request (default 5 MiB; `sink.flush-buffer.size`).
    pub fn max_batch_size_bytes(mut self, bytes: u64) -> Self {
        self.config.max_batch_size_bytes = bytes;
        self
    }

    /// Most requests in flight (default 8; `sink.requests.max-inflight`).
    pub fn max_in_flight_requests(mut self, requests: usize) -> Self {
        self.config.max_in_flight_requests = requests;
        self
    }

    /// Buffered entries at which the writer applies backpressure; must exceed the batch size
    /// (default 10 000; `sink.requests.max-buffered`).
    pub fn max_buffered_entries(mut self, entries: usize) -> Self {
        self.config.max_buffered_entries = entries;
        self
    }

    /// How long an entry may wait for its batch to fill (default 5 s;
    /// `sink.flush-buffer.timeout`).
    pub fn max_time_in_buffer(mut self, time: Duration) -> Self {
        self.config.max_time_in_buffer = time;
        self
    }

    /// Largest entry; must not exceed the bytes per request (default 1 MiB;
    /// `sink.record.max-size`).
    pub fn max_record_size_bytes(mut self, bytes: u64) -> Self {
        self.config.max_record_size_bytes = bytes;
        self
    }

    /// A timeout for every request, and what a timeout leads to (default: none).
    pub fn request_timeout(mut self, timeout: Duration, policy: TimeoutPolicy) -> Self {
        self.config.request_timeout = Some(timeout);
        self.config.timeout_policy = policy;
        self
    }

    /// The retry policy (default: 10 retries, 50 ms doubling up to 5 s).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.config.retry = retry;
        self
    }

    /// What a checkpoint flush sends (default [`CheckpointFlush::AwaitInFlight`]).
    pub fn checkpoint_flush(mut self, flush: CheckpointFlush) -> Self {
        self.config.checkpoint_flush = flush;
        self
    }

    /// The rate-limiting strategy (default AIMD congestion control).
    pub fn rate_limiting(mut self, rate_limiting: RateLimiting) -> Self {
        self.config.rate_limiting = rate_limiting;
        self
    }

    fn unchecked(self) -> AsyncSinkConfig {
        self.config
    }

    /// The validated configuration, or every problem found.
    pub fn build(self) -> Result<AsyncSinkConfig, ConfigErrors> {
        let c = &self.config;
        let mut errors = Vec::new();
        let mut at_least_one = |key: &str, value: String, ok: bool| {
            if !ok {
                errors.push(ConfigError::Rejected {
                    key: key.to_owned(),
                    value,
                    reason: "must be at least 1".to_owned(),
                });
            }
        };
        at_least_one(
            keys::MAX_BATCH_SIZE,
            c.max_batch_size.to_string(),
            c.max_batch_size > 0,
        );
        at_least_one(
            keys::MAX_BATCH_SIZE_BYTES,
            c.max_batch_size_bytes.to_string(),
            c.max_batch_size_bytes > 0,
        );
        at_least_one(
            keys::MAX_IN_FLIGHT_REQUESTS,
            c.max_in_flight_requests.to_string(),
            c.max_in_flight_requests > 0,
        );
        at_least_one(
            keys::MAX_RECORD_SIZE_BYTES,
            c.max_record_size_bytes.to_string(),
            c.max_record_size_bytes > 0,
        );
        if c.max_time_in_buffer.is_zero() {
            errors.push(ConfigError::Rejected {
                key: keys::MAX_TIME_IN_BUFFER.to_owned(),
                value: format!("{:?}", c.max_time_in_buffer),
                reason: "must be longer than zero".to_owned(),
            });
        }
        if c.request_timeout.is_some_and(|t| t.is_zero()) {
            errors.push(ConfigError::Rejected {
                key: keys::REQUEST_TIMEOUT.to_owned(),
                value: "0s".to_owned(),
                reason: "must be longer than zero".to_owned(),
            });
        }
        if c.max_batch_size > 0 && c.max_buffered_entries <= c.max_batch_size {
            errors.push(ConfigError::conflict(
                [keys::MAX_BUFFERED_ENTRIES, keys::MAX_BATCH_SIZE],
                format!(
                    "the buffer ({} entries) must hold more than one batch ({} entries): raise \
                     {} or lower {}",
                    c.max_buffered_entries,
                    c.max_batch_size,
                    keys::MAX_BUFFERED_ENTRIES,
                    keys::MAX_BATCH_SIZE
                ),
            ));
        }
        if c.max_record_size_bytes > c.max_batch_size_bytes {
            errors.push(ConfigError::conflict(
                [keys::MAX_RECORD_SIZE_BYTES, keys::MAX_BATCH_SIZE_BYTES],
                format!(
                    "an entry ({} bytes) may not exceed a request ({} bytes): raise {} or lower {}",
                    c.max_record_size_bytes,
                    c.max_batch_size_bytes,
                    keys::MAX_BATCH_SIZE_BYTES,
                    keys::MAX_RECORD_SIZE_BYTES
                ),
            ));
        }
        if c.retry.max_backoff < c.retry.initial_backoff {
            errors.push(ConfigError::conflict(
                [keys::MAX_BACKOFF, keys::INITIAL_BACKOFF],
                format!(
                    "the longest backoff ({:?}) is shorter than the first ({:?})",
                    c.retry.max_backoff, c.retry.initial_backoff
                ),
            ));
        }
        if let RateLimiting::CongestionControl {
            increase,
            decrease_factor,
        } = &c.rate_limiting
        {
            if *increase == 0 {
                errors.push(ConfigError::Rejected {
                    key: keys::AIMD_INCREASE.to_owned(),
                    value: "0".to_owned(),
                    reason: "must be at least 1".to_owned(),
                });
            }
            if !(*decrease_factor > 0.0 && *decrease_factor < 1.0) {
                errors.push(ConfigError::Rejected {
                    key: keys::AIMD_DECREASE_FACTOR.to_owned(),
                    value: decrease_factor.to_string(),
                    reason: "must be between 0 and 1 (exclusive)".to_owned(),
                });
            }
        }
        if errors.is_empty() {
            Ok(self.config)
        } else {
            Err(ConfigErrors::new("AsyncSink writer", errors))
        }
    }
}
