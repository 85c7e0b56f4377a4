//! Rate limiting of the AsyncSink writer's requests: the [`RateLimitingStrategy`] trait and its
//! default, [`CongestionControlRateLimiting`] with [`AimdScaling`] (Flink's
//! `CongestionControlRateLimitingStrategy` and `AIMDScalingStrategy`).

use std::fmt;

/// The request the writer is about to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestInfo {
    /// Entries in the request.
    pub batch_size: usize,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultInfo {
    /// Entries in the request.
    pub batch_size: usize,
    /// Entries the destination refused (all of them when the whole request failed).
    pub failed_entries: usize,
}

/// Whether a request may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Send it.
    Send,
    /// Wait until a request in flight completes.
    Wait,
}

/// Decides when the writer may send another request and how large it may be.
///
/// The writer calls it per request (never per record), from its own task: `&mut self` needs no
/// locking. Every request registered in flight is later registered completed. The writer
/// always lets a request through while none is in flight, so a strategy cannot stall it, and
/// it never exceeds the configured `max_in_flight_requests` whatever the strategy says.
///
/// A strategy that allows a fixed number of entries in flight:
///
/// ```
/// use weir_connector_base::sink::{RateDecision, RateLimitingStrategy, RequestInfo, ResultInfo};
///
/// struct FixedEntries { max: usize, in_flight: usize }
///
/// impl RateLimitingStrategy for FixedEntries {
///     fn register_in_flight(&mut self, request: RequestInfo) {
///         self.in_flight += request.batch_size;
///     }
///     fn register_completed(&mut self, result: ResultInfo) {
///         self.in_flight = self.in_flight.saturating_sub(result.batch_size);
///     }
///     fn decide(&self, request: RequestInfo) -> RateDecision {
///         if self.in_flight + request.batch_size > self.max {
///             RateDecision::Wait
///         } else {
///             RateDecision::Send
///         }
///     }
///     fn max_batch_size(&self) -> usize {
///         self.max
///     }
/// }
///
/// let mut fixed = FixedEntries { max: 100, in_flight: 0 };
/// fixed.register_in_flight(RequestInfo { batch_size: 80 });
/// assert_eq!(fixed.decide(RequestInfo { batch_size: 30 }), RateDecision::Wait);
/// fixed.register_completed(ResultInfo { batch_size: 80, failed_entries: 0 });
/// assert_eq!(fixed.decide(RequestInfo { batch_size: 30 }), RateDecision::Send);
/// ```
pub trait RateLimitingStrategy: Send + 'static {
    /// A request of `request.batch_size` entries was sent.
    fn register_in_flight(&mut self, request: RequestInfo);

    /// A request completed (whatever its outcome).
    fn register_completed(&mut self, result: ResultInfo);

    /// Whether `request` may be sent now.
    fn decide(&self, request: RequestInfo) -> RateDecision;

    /// The largest batch the strategy allows now (the writer also caps batches at its
    /// `max_batch_size`).
    fn max_batch_size(&self) -> usize;

    /// The strategy's current limit on entries in flight, if it has one (reported as the
    /// `currentMaxInFlightEntries` gauge).
    fn max_in_flight_entries(&self) -> Option<usize> {
        None
    }
}

/// Additive increase, multiplicative decrease (Flink's `AIMDScalingStrategy`): the TCP
/// congestion-control rule applied to a rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AimdScaling {
    increase: usize,
    decrease_factor: f64,
    threshold: usize,
}

impl AimdScaling {
    /// Flink's default additive increase (entries per successful request).
    pub const DEFAULT_INCREASE: usize = 10;
    /// Flink's default multiplicative decrease.
    pub const DEFAULT_DECREASE_FACTOR: f64 = 0.5;

    /// Adds `increase` on success, multiplies by `decrease_factor` on failure, never above
    /// `threshold` nor below 1. Values out of range are clamped: `increase` and `threshold` to at
    /// least 1, `decrease_factor` into `[0.01, 0.99]` (a NaN becomes the default 0.5); the
    /// [`AsyncSinkConfig`](super::AsyncSinkConfig) builder reports them as errors instead.
    pub fn new(increase: usize, decrease_factor: f64, threshold: usize) -> Self {
        let decrease_factor = if decrease_factor.is_nan() {
            Self::DEFAULT_DECREASE_FACTOR
        } else {
            decrease_factor.clamp(0.01, 0.99)
        };
        AimdScaling {
            increase: increase.max(1),
            decrease_factor,
            threshold: threshold.max(1),
        }
    }

    /// The rate after a success: `rate + increase`, at most the threshold.
    pub fn scale_up(&self, rate: usize) -> usize {
        rate.saturating_add(self.increase).min(self.threshold)
    }

    /// The rate after a failure: `rate × decrease_factor`, rounded, at least 1.
    pub fn scale_down(&self, rate: usize) -> usize {
        ((rate as f64 * self.decrease_factor).round() as usize).max(1)
    }

    /// The highest rate.
    pub fn threshold(&self) -> usize {
        self.threshold
    }
}

/// The default strategy: a limit on entries in flight that grows by a constant after every
/// request without failures and halves after a request with any failed entry (AIMD), plus a cap
/// on requests in flight (Flink's `CongestionControlRateLimitingStrategy`).
///
/// Throttling answers (per-entry `429`s) thus shrink both the batches and the concurrency
/// until the destination keeps up, and the limit climbs back once it does.
///
/// ```
/// use weir_connector_base::sink::{
///     AimdScaling, CongestionControlRateLimiting, RateDecision, RateLimitingStrategy,
///     RequestInfo, ResultInfo,
/// };
///
/// // Two requests of up to 100 entries in flight at first.
/// let mut limiter = CongestionControlRateLimiting::new(2, 200, AimdScaling::new(10, 0.5, 200));
/// let request = RequestInfo { batch_size: 100 };
/// limiter.register_in_flight(request);
/// assert_eq!(limiter.decide(request), RateDecision::Send);
/// limiter.register_in_flight(request);
/// assert_eq!(limiter.decide(request), RateDecision::Wait);
///
/// // The destination throttled some entries: the limit halves.
/// limiter.register_completed(ResultInfo { batch_size: 100, failed_entries: 40 });
/// assert_eq!(limiter.current_max_in_flight_entries(), 100);
/// // A clean request: it grows by 10.
/// limiter.register_completed(ResultInfo { batch_size: 100, failed_entries: 0 });
/// assert_eq!(limiter.current_max_in_flight_entries(), 110);
/// ```
#[derive(Debug, Clone)]
pub struct CongestionControlRateLimiting {
    max_in_flight_requests: usize,
    scaling: AimdScaling,
    current_max_in_flight_entries: usize,
    in_flight_requests: usize,
    in_flight_entries: usize,
}

impl CongestionControlRateLimiting {
    /// At most `max_in_flight_requests` requests (at least 1) and, at first,
    /// `initial_max_in_flight_entries` entries in flight (at least 1, at most the scaling's
    /// threshold).
    pub fn new(
        max_in_flight_requests: usize,
        initial_max_in_flight_entries: usize,
        scaling: AimdScaling,
    ) -> Self {
        CongestionControlRateLimiting {
            max_in_flight_requests: max_in_flight_requests.max(1),
            scaling,
            current_max_in_flight_entries: initial_max_in_flight_entries
                .clamp(1, scaling.threshold()),
            in_flight_requests: 0,
            in_flight_entries: 0,
        }
    }

    /// The current limit on entries in flight.
    pub fn current_max_in_flight_entries(&self) -> usize {
        self.current_max_in_flight_entries
    }
}

impl RateLimitingStrategy for CongestionControlRateLimiting {
    fn register_in_flight(&mut self, request: RequestInfo) {
        self.in_flight_requests += 1;
        self.in_flight_entries = self.in_flight_entries.saturating_add(request.batch_size);
    }

    fn register_completed(&mut self, result: ResultInfo) {
        self.in_flight_requests = self.in_flight_requests.saturating_sub(1);
        self.in_flight_entries = self.in_flight_entries.saturating_sub(result.batch_size);
        self.current_max_in_flight_entries = if result.failed_entries > 0 {
            self.scaling.scale_down(self.current_max_in_flight_entries)
        } else {
            self.scaling.scale_up(self.current_max_in_flight_entries)
        };
    }

    fn decide(&self, request: RequestInfo) -> RateDecision {
        if self.in_flight_requests >= self.max_in_flight_requests
            || self.in_flight_entries.saturating_add(request.batch_size)
                > self.current_max_in_flight_entries
        {
            RateDecision::Wait
        } else {
            RateDecision::Send
        }
    }

    fn max_batch_size(&self) -> usize {
        self.current_max_in_flight_entries
    }

    fn max_in_flight_entries(&self) -> Option<usize> {
        Some(self.current_max_in_flight_entries)
    }
}

/// A factory of per-writer strategies, for [`RateLimiting::Custom`].
pub type RateLimitingFactory =
    std::sync::Arc<dyn Fn(&super::AsyncSinkConfig) -> Box<dyn RateLimitingStrategy> + Send + Sync>;

/// Which rate-limiting strategy each writer gets.
#[derive(Clone)]
#[non_exhaustive]
pub enum RateLimiting {
    /// [`CongestionControlRateLimiting`] starting at, and never above,
    /// `max_batch_size × max_in_flight_requests` entries in flight (the default, as in Flink).
    CongestionControl {
        /// Entries added to the limit after a request without failures (default 10).
        increase: usize,
        /// Factor applied to the limit after a request with a failed entry (default 0.5).
        decrease_factor: f64,
    },
    /// A strategy of your own, made per writer from the validated configuration.
    Custom(RateLimitingFactory),
}

impl RateLimiting {
    /// A custom strategy made by `factory` for every writer.
    pub fn custom<F>(factory: F) -> Self
    where
        F: Fn(&super::AsyncSinkConfig) -> Box<dyn RateLimitingStrategy> + Send + Sync + 'static,
    {
        RateLimiting::Custom(std::sync::Arc::new(factory))
    }

    pub(crate) fn create(&self, config: &super::AsyncSinkConfig) -> Box<dyn RateLimitingStrategy> {
        match self {
            RateLimiting::CongestionControl {
                increase,
                decrease_factor,
            } => {
                let threshold = config
                    .max_batch_size()
                    .saturating_mul(config.max_in_flight_requests());
                Box::new(CongestionControlRateLimiting::new(
                    config.max_in_flight_requests(),
                    threshold,
                    AimdScaling::new(*increase, *decrease_factor, threshold),
                ))
            }
            RateLimiting::Custom(factory) => factory(config),
        }
    }
}

impl Default for RateLimiting {
    fn default() -> Self {
        RateLimiting::CongestionControl {
            increase: AimdScaling::DEFAULT_INCREASE,
            decrease_factor: AimdScaling::DEFAULT_DECREASE_FACTOR,
        }
    }
}

impl fmt::Debug for RateLimiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimiting::CongestionControl {
                increase,
                decrease_factor,
            } => f
                .debug_struct("CongestionControl")
                .field("increase", increase)
                .field("decrease_factor", decrease_factor)
                .finish(),
            RateLimiting::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}
