//! Rate limiting of source readers (FLIP-238): [`RateLimiterStrategy`], the per-subtask
//! [`RateLimiter`] and the [`RateLimitedSourceReader`] wrapper (moved here from the datagen
//! connector, which re-exports them).
//!
//! # How the wrapper limits without blocking
//!
//! Every record the inner reader emits takes one permit; the wrapper counts them through a thin
//! wrapping output. [`RateLimitedSourceReader::poll_next`] polls the inner reader once and
//! returns:
//!
//! - while at least one permit is left: whatever the inner reader returns, except that
//!   [`InputStatus::MoreAvailable`] becomes [`InputStatus::NothingAvailable`] once the permits
//!   are used up (for a [`PollBudget`] reader only after a poll that emitted nothing, see
//!   below);
//! - without permits: [`InputStatus::NothingAvailable`] (or the inner reader's
//!   [`InputStatus::EndOfInput`], see below), and
//!   [`poll_available`](SourceReader::poll_available) becomes ready only when permits are back
//!   *and* the inner reader is available. Per second, the wrapper sleeps on a stored
//!   [`tokio::time::Sleep`] until the next permit is due; per checkpoint, it is woken by
//!   [`notify_checkpoint_complete`](SourceReader::notify_checkpoint_complete).
//!
//! Readers that implement [`PollBudget`] and are wrapped with
//! [`RateLimitedSourceReader::with_poll_budget`] are told before each poll how many permits are
//! left, so they **never exceed the limit**; they are also polled with a budget of 0 when no
//! permit is left, so they can report the end of their input without waiting for a permit (the
//! poll that uses up the last permits therefore still returns `MoreAvailable`, and the next one
//! returns `NothingAvailable` or `EndOfInput`). Any
//! other reader may overshoot by at most one `poll_next` batch minus one record; the overshoot is
//! carried as a debt, so the long-run rate stays exact. The datagen source's reader implements
//! [`PollBudget`].
//!
//! Every other [`SourceReader`] method is forwarded to the inner reader, including
//! [`as_pausable`](SourceReader::as_pausable), [`handle_source_event`](SourceReader::handle_source_event)
//! and the checkpoint notifications (Flink's `RateLimitedSourceReader` forgot some of them):
//! the wrapper is a [`ForwardingSourceReader`] that overrides only `poll_next`,
//! `poll_available`, `notify_checkpoint_complete` and `close`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::config::{ConfigError, ConfigErrors};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::source::{
    InputStatus, ReaderOutput, SourceOutput, SourceReader, SplitOutputId,
};
use weir_connector_api::watermark::Watermark;

use super::forwarding::{Forwarding, ForwardingSourceReader};

/// The option keys a [`RateLimiterStrategy`] names when its parameters are invalid, so the
/// message points at the user's own configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitOptionKeys {
    /// The name of the option set (e.g. `datagen source`).
    pub set_name: &'static str,
    /// The key of the per-second rate.
    pub per_second: &'static str,
    /// The key of the per-checkpoint count.
    pub per_checkpoint: &'static str,
}

impl RateLimitOptionKeys {
    /// The keys [`RateLimiterStrategy::validate`] names: `rows-per-second` and
    /// `rows-per-checkpoint` of the `rate limiter` options.
    pub const DEFAULT: RateLimitOptionKeys = RateLimitOptionKeys {
        set_name: "rate limiter",
        per_second: "rows-per-second",
        per_checkpoint: "rows-per-checkpoint",
    };
}

/// How fast a source may emit, across all of its readers (Flink's `RateLimiterStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum RateLimiterStrategy {
    /// No limit (the default).
    #[default]
    NoOp,
    /// At most `records_per_second` records per second in total; each of `p` readers gets
    /// `records_per_second / p`.
    PerSecond {
        /// The total rate over all readers.
        records_per_second: f64,
    },
    /// At most `records` records in total between two completed checkpoints, split evenly over
    /// the readers (each reader gets at least one).
    PerCheckpoint {
        /// The total number of records per checkpoint over all readers.
        records: u64,
    },
}

impl RateLimiterStrategy {
    /// At most `records_per_second` records per second over all readers (divided by the reader
    /// parallelism). The rate must be finite and positive; this is checked when readers are
    /// created.
    pub fn per_second(records_per_second: f64) -> Self {
        RateLimiterStrategy::PerSecond { records_per_second }
    }

    /// At most `records` records over all readers between two completed checkpoints. Must be at
    /// least 1; this is checked when readers are created.
    pub fn per_checkpoint(records: u64) -> Self {
        RateLimiterStrategy::PerCheckpoint { records }
    }

    /// No limit.
    pub fn no_op() -> Self {
        RateLimiterStrategy::NoOp
    }

    /// Checks the parameters, reporting a problem with the keys of
    /// [`RateLimitOptionKeys::DEFAULT`] (`rows-per-second`, `rows-per-checkpoint`).
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        self.validate_with(&RateLimitOptionKeys::DEFAULT)
    }

    /// Checks the parameters, reporting a problem with the given option keys.
    pub fn validate_with(&self, keys: &RateLimitOptionKeys) -> Result<(), ConfigErrors> {
        let error = match *self {
            RateLimiterStrategy::NoOp => None,
            RateLimiterStrategy::PerSecond { records_per_second } => (!(records_per_second
                .is_finite()
                && records_per_second > 0.0))
                .then(|| ConfigError::Rejected {
                    key: keys.per_second.to_owned(),
                    value: records_per_second.to_string(),
                    reason: "must be a finite number greater than 0".to_owned(),
                }),
            RateLimiterStrategy::PerCheckpoint { records } => {
                (records == 0).then(|| ConfigError::Rejected {
                    key: keys.per_checkpoint.to_owned(),
                    value: records.to_string(),
                    reason: "must be at least 1".to_owned(),
                })
            }
        };
        match error {
            None => Ok(()),
            Some(error) => Err(ConfigErrors::new(keys.set_name, vec![error])),
        }
    }

    /// The limiter of reader `subtask` of `parallelism` (a parallelism of 0 counts as 1); the
    /// parameters are checked with [`validate`](Self::validate).
    pub fn create_rate_limiter(
        &self,
        subtask: usize,
        parallelism: usize,
    ) -> Result<RateLimiter, ConnectorError> {
        self.validate()?;
        let parallelism = parallelism.max(1);
        let kind = match *self {
            RateLimiterStrategy::NoOp => LimiterKind::Unlimited,
            RateLimiterStrategy::PerSecond { records_per_second } => {
                LimiterKind::PerSecond(TokenBucket::new(records_per_second / parallelism as f64))
            }
            RateLimiterStrategy::PerCheckpoint { records } => {
                let p = parallelism as u64;
                let share = records / p + u64::from((subtask as u64) < records % p);
                LimiterKind::PerCheckpoint(CheckpointGate::new(share.max(1)))
            }
        };
        Ok(RateLimiter { kind })
    }
}

/// When the next permit of a [`RateLimiter`] is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextPermit {
    /// A permit is available now.
    Now,
    /// The next permit is due at this instant.
    At(Instant),
    /// The next permit comes with the next completed checkpoint.
    AfterCheckpoint,
}

/// The limiter of one reader: a token bucket (per second), a gate refilled by checkpoints (per
/// checkpoint), or nothing. Time is passed in, so the arithmetic is deterministic.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    kind: LimiterKind,
}

#[derive(Debug, Clone)]
enum LimiterKind {
    Unlimited,
    PerSecond(TokenBucket),
    PerCheckpoint(CheckpointGate),
}

impl RateLimiter {
    /// A limiter that never limits.
    pub fn unlimited() -> Self {
        RateLimiter {
            kind: LimiterKind::Unlimited,
        }
    }

    /// Whether this limiter never limits.
    pub fn is_unlimited(&self) -> bool {
        matches!(self.kind, LimiterKind::Unlimited)
    }

    /// The whole permits available at `now` ([`u64::MAX`] when unlimited).
    pub fn permits(&mut self, now: Instant) -> u64 {
        match &mut self.kind {
            LimiterKind::Unlimited => u64::MAX,
            LimiterKind::PerSecond(bucket) => {
                bucket.refill(now);
                bucket.whole_tokens()
            }
            LimiterKind::PerCheckpoint(gate) => gate.permits(),
        }
    }

    /// Whether at least one permit was left at the last refill (does not read the clock).
    pub fn has_permit(&self) -> bool {
        match &self.kind {
            LimiterKind::Unlimited => true,
            LimiterKind::PerSecond(bucket) => bucket.whole_tokens() > 0,
            LimiterKind::PerCheckpoint(gate) => gate.permits() > 0,
        }
    }

    /// Takes `records` permits; taking more than are available leaves a debt that later permits
    /// pay off first.
    pub fn consume(&mut self, records: u64) {
        match &mut self.kind {
            LimiterKind::Unlimited => {}
            LimiterKind::PerSecond(bucket) => bucket.tokens -= records as f64,
            LimiterKind::PerCheckpoint(gate) => {
                gate.tokens = gate.tokens.saturating_sub(i128::from(records));
            }
        }
    }

    /// When the next permit is due, refilling at `now` first.
    pub fn next_permit(&mut self, now: Instant) -> NextPermit {
        match &mut self.kind {
            LimiterKind::Unlimited => NextPermit::Now,
            LimiterKind::PerSecond(bucket) => {
                bucket.refill(now);
                bucket.next_permit(now)
            }
            LimiterKind::PerCheckpoint(gate) => {
                if gate.permits() > 0 {
                    NextPermit::Now
                } else {
                    NextPermit::AfterCheckpoint
                }
            }
        }
    }

    /// A checkpoint completed: a per-checkpoint limiter gets a new allowance (minus any debt).
    pub fn notify_checkpoint_complete(&mut self) {
        if let LimiterKind::PerCheckpoint(gate) = &mut self.kind {
            gate.tokens = gate.tokens.min(0) + i128::from(gate.capacity);
        }
    }
}

/// Tokens below a whole permit by less than this count as a permit (float rounding).
const EPSILON: f64 = 1e-9;

/// The longest single wait; a later permit is simply waited for in several steps.
const MAX_WAIT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
struct TokenBucket {
    /// Permits per second.
    rate: f64,
    /// At most one second's worth of permits (and at least one) accumulates, like Flink's
    /// Guava-based limiter.
    capacity: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    fn new(rate: f64) -> Self {
        let capacity = rate.max(1.0);
        TokenBucket {
            rate,
            capacity,
            // The first record goes out at once.
            tokens: 1.0,
            last: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        match self.last {
            Some(last) if now <= last => {}
            Some(last) => {
                let elapsed = now.duration_since(last).as_secs_f64();
                self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
                self.last = Some(now);
            }
            None => self.last = Some(now),
        }
    }

    fn whole_tokens(&self) -> u64 {
        let whole = (self.tokens + EPSILON).floor();
        if whole <= 0.0 {
            0
        } else {
            // Saturating float-to-int conversion.
            whole as u64
        }
    }

    fn next_permit(&self, now: Instant) -> NextPermit {
        if self.whole_tokens() > 0 {
            return NextPermit::Now;
        }
        let last = self.last.unwrap_or(now);
        let wait = Duration::try_from_secs_f64((1.0 - self.tokens) / self.rate)
            .map_or(MAX_WAIT, |wait| wait.min(MAX_WAIT));
        NextPermit::At(last.checked_add(wait).unwrap_or(last))
    }
}

#[derive(Debug, Clone)]
struct CheckpointGate {
    capacity: u64,
    tokens: i128,
}

impl CheckpointGate {
    fn new(capacity: u64) -> Self {
        CheckpointGate {
            capacity,
            tokens: i128::from(capacity),
        }
    }

    fn permits(&self) -> u64 {
        u64::try_from(self.tokens.max(0)).unwrap_or(u64::MAX)
    }
}

/// A reader that can be told how many records its next [`SourceReader::poll_next`] may emit at
/// most. [`RateLimitedSourceReader::with_poll_budget`] uses it to never exceed the limit.
pub trait PollBudget {
    /// Caps the number of records the next `poll_next` emits (0: emit nothing, but still report
    /// the status, e.g. [`InputStatus::EndOfInput`]).
    fn set_poll_budget(&mut self, max_records: u64);
}

/// Wraps any [`SourceReader`] and limits how many records it emits; forwards every other method.
/// See the [module docs](self) for the design.
pub type RateLimitedSourceReader<R> = Forwarding<RateLimited<R>>;

/// The wrapper half of a [`RateLimitedSourceReader`]: the inner reader, its limiter and the
/// timer it waits on.
pub struct RateLimited<R> {
    inner: R,
    limiter: RateLimiter,
    budget: Option<fn(&mut R, u64)>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    waker: Option<Waker>,
}

impl<R: SourceReader> Forwarding<RateLimited<R>> {
    /// Limits `inner` with `limiter`. A reader that emits batches may overshoot by at most one
    /// batch minus one record (paid back later); use [`with_poll_budget`](Self::with_poll_budget)
    /// for readers that implement [`PollBudget`].
    pub fn new(inner: R, limiter: RateLimiter) -> Self {
        Forwarding::wrap(RateLimited {
            inner,
            limiter,
            budget: None,
            sleep: None,
            waker: None,
        })
    }

    /// Limits `inner` exactly: before each poll it is told how many permits are left.
    pub fn with_poll_budget(inner: R, limiter: RateLimiter) -> Self
    where
        R: PollBudget,
    {
        let mut reader = Self::new(inner, limiter);
        reader.wrapper_mut().budget = Some(<R as PollBudget>::set_poll_budget);
        reader
    }

    /// The wrapped reader.
    pub fn inner(&self) -> &R {
        &self.wrapper().inner
    }

    /// The wrapped reader, mutably.
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.wrapper_mut().inner
    }

    /// Unwraps the reader.
    pub fn into_inner(self) -> R {
        self.into_wrapper().inner
    }

    /// The limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.wrapper().limiter
    }
}

/// The clock of the wrapper: tokio's, so paused test time applies.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl<R> std::fmt::Debug for RateLimited<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitedSourceReader")
            .field("inner", &std::any::type_name::<R>())
            .field("limiter", &self.limiter)
            .field("exact", &self.budget.is_some())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<R: SourceReader> ForwardingSourceReader for RateLimited<R> {
    type Inner = R;
    type Output = R::Output;

    fn inner(&mut self) -> &mut R {
        &mut self.inner
    }

    fn poll_next<O: ReaderOutput<R::Output>>(&mut self, output: &mut O) -> Result<InputStatus> {
        if self.limiter.is_unlimited() {
            return self.inner.poll_next(output);
        }
        let permits = self.limiter.permits(now());
        match self.budget {
            Some(set_budget) => set_budget(&mut self.inner, permits),
            None if permits == 0 => return Ok(InputStatus::NothingAvailable),
            None => {}
        }
        let mut counting = CountingOutput::new(output);
        let status = self.inner.poll_next(&mut counting)?;
        let count = counting.count();
        self.limiter.consume(count);
        // Out of permits: a budget-aware reader that just emitted is polled once more (with a
        // budget of 0) so it can report the end of its input; any other is asked to wait.
        let wait = !self.limiter.has_permit() && (self.budget.is_none() || count == 0);
        Ok(match status {
            InputStatus::MoreAvailable if wait => InputStatus::NothingAvailable,
            other => other,
        })
    }

    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Two rounds: a timer that fired is followed by a refill that yields the permit.
        for _ in 0..2 {
            match self.limiter.next_permit(now()) {
                NextPermit::Now => return self.inner.poll_available(cx),
                NextPermit::AfterCheckpoint => {
                    self.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                NextPermit::At(deadline) => {
                    if tokio::runtime::Handle::try_current().is_err() {
                        // No timer outside a tokio runtime: ask to be polled again.
                        break;
                    }
                    let deadline = tokio::time::Instant::from_std(deadline);
                    let sleep = match &mut self.sleep {
                        Some(sleep) => {
                            if sleep.deadline() != deadline {
                                sleep.as_mut().reset(deadline);
                            }
                            sleep
                        }
                        None => self
                            .sleep
                            .insert(Box::pin(tokio::time::sleep_until(deadline))),
                    };
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.limiter.notify_checkpoint_complete();
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
        self.inner.notify_checkpoint_complete(checkpoint_id)
    }

    async fn close(&mut self) -> Result<()> {
        self.sleep = None;
        self.waker = None;
        self.inner.close().await
    }
}

/// A [`ReaderOutput`] that passes everything through to `inner` and counts the records (for
/// wrappers that pace or meter what their inner reader emits).
#[derive(Debug)]
pub struct CountingOutput<'a, O> {
    inner: &'a mut O,
    count: u64,
}

impl<'a, O> CountingOutput<'a, O> {
    /// Counts what passes into `inner`, from 0.
    pub fn new(inner: &'a mut O) -> Self {
        CountingOutput { inner, count: 0 }
    }

    /// The records that passed so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl<T, O: ReaderOutput<T>> SourceOutput<T> for CountingOutput<'_, O> {
    #[inline]
    fn collect(&mut self, record: T) {
        self.count += 1;
        self.inner.collect(record);
    }
    #[inline]
    fn collect_with_timestamp(&mut self, record: T, timestamp: i64) {
        self.count += 1;
        self.inner.collect_with_timestamp(record, timestamp);
    }
    fn emit_watermark(&mut self, watermark: Watermark) {
        self.inner.emit_watermark(watermark);
    }
    fn mark_idle(&mut self) {
        self.inner.mark_idle();
    }
    fn mark_active(&mut self) {
        self.inner.mark_active();
    }
}

impl<T, O: ReaderOutput<T>> ReaderOutput<T> for CountingOutput<'_, O> {
    fn create_split_output(&mut self, split_id: &str) -> SplitOutputId {
        self.inner.create_split_output(split_id)
    }
    #[inline]
    fn collect_for_split(&mut self, split: SplitOutputId, record: T, timestamp: Option<i64>) {
        self.count += 1;
        self.inner.collect_for_split(split, record, timestamp);
    }
    fn emit_split_watermark(&mut self, split: SplitOutputId, watermark: Watermark) {
        self.inner.emit_split_watermark(split, watermark);
    }
    fn mark_split_idle(&mut self, split: SplitOutputId) {
        self.inner.mark_split_idle(split);
    }
    fn mark_split_active(&mut self, split: SplitOutputId) {
        self.inner.mark_split_active(split);
    }
    fn release_split_output(&mut self, split: SplitOutputId) {
        self.inner.release_split_output(split);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(strategy: RateLimiterStrategy, subtask: usize, p: usize) -> RateLimiter {
        strategy.create_rate_limiter(subtask, p).unwrap()
    }

    #[test]
    fn token_bucket_grants_the_rate_over_time() {
        let t0 = Instant::now();
        let mut l = limiter(RateLimiterStrategy::per_second(100.0), 0, 1);
        // The first record is free, then one permit every 10 ms.
        assert_eq!(l.permits(t0), 1);
        l.consume(1);
        assert_eq!(l.permits(t0), 0);
        assert_eq!(
            l.next_permit(t0),
            NextPermit::At(t0 + Duration::from_millis(10))
        );
        assert_eq!(l.permits(t0 + Duration::from_millis(9)), 0);
        assert_eq!(l.permits(t0 + Duration::from_millis(10)), 1);
        assert_eq!(l.permits(t0 + Duration::from_millis(500)), 50);
        l.consume(50);
        assert!(!l.has_permit());
    }

    #[test]
    fn token_bucket_caps_bursts_at_one_second() {
        let t0 = Instant::now();
        let mut l = limiter(RateLimiterStrategy::per_second(100.0), 0, 1);
        l.permits(t0);
        assert_eq!(l.permits(t0 + Duration::from_secs(60)), 100);
    }

    #[test]
    fn rate_is_divided_by_parallelism() {
        let t0 = Instant::now();
        let mut l = limiter(RateLimiterStrategy::per_second(400.0), 2, 4);
        l.permits(t0);
        l.consume(1);
        assert_eq!(l.permits(t0 + Duration::from_millis(500)), 50);
    }

    #[test]
    fn slow_rates_still_start_at_once_and_wait_long() {
        let t0 = Instant::now();
        let mut l = limiter(RateLimiterStrategy::per_second(0.5), 0, 1);
        assert_eq!(l.permits(t0), 1);
        l.consume(1);
        assert_eq!(
            l.next_permit(t0),
            NextPermit::At(t0 + Duration::from_secs(2))
        );
        let mut tiny = limiter(RateLimiterStrategy::per_second(1e-300), 0, 1);
        tiny.permits(t0);
        tiny.consume(1);
        assert_eq!(tiny.next_permit(t0), NextPermit::At(t0 + MAX_WAIT));
    }

    #[test]
    fn debt_is_paid_back_first() {
        let t0 = Instant::now();
        let mut l = limiter(RateLimiterStrategy::per_second(10.0), 0, 1);
        l.permits(t0);
        l.consume(5);
        assert_eq!(l.permits(t0 + Duration::from_millis(300)), 0);
        assert_eq!(l.permits(t0 + Duration::from_millis(600)), 2);
    }

    #[test]
    fn per_checkpoint_shares_add_up_to_the_total() {
        let shares: Vec<u64> = (0..3)
            .map(|i| limiter(RateLimiterStrategy::per_checkpoint(10), i, 3).permits(Instant::now()))
            .collect();
        assert_eq!(shares, [4, 3, 3]);
        // Every reader gets at least one record per checkpoint.
        let mut l = limiter(RateLimiterStrategy::per_checkpoint(2), 3, 4);
        assert_eq!(l.permits(Instant::now()), 1);
    }

    #[test]
    fn per_checkpoint_refills_on_completion_only() {
        let now = Instant::now();
        let mut l = limiter(RateLimiterStrategy::per_checkpoint(5), 0, 1);
        l.consume(5);
        assert_eq!(l.next_permit(now), NextPermit::AfterCheckpoint);
        l.notify_checkpoint_complete();
        assert_eq!(l.permits(now), 5);
        // No accumulation beyond one allowance.
        l.notify_checkpoint_complete();
        assert_eq!(l.permits(now), 5);
        l.consume(7);
        l.notify_checkpoint_complete();
        assert_eq!(l.permits(now), 3);
    }

    #[test]
    fn invalid_strategies_are_rejected_with_the_option_name() {
        for bad in [
            RateLimiterStrategy::per_second(0.0),
            RateLimiterStrategy::per_second(-1.0),
            RateLimiterStrategy::per_second(f64::NAN),
            RateLimiterStrategy::per_second(f64::INFINITY),
        ] {
            let err = bad.create_rate_limiter(0, 1).unwrap_err().to_string();
            assert!(err.contains("rows-per-second"), "{err}");
        }
        let err = RateLimiterStrategy::per_checkpoint(0)
            .create_rate_limiter(0, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("rows-per-checkpoint"), "{err}");
        assert!(RateLimiterStrategy::no_op()
            .create_rate_limiter(0, 0)
            .unwrap()
            .is_unlimited());
    }
}
