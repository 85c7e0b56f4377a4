//! Restart strategies: whether, and after how long, a failed job attempt is restarted from the
//! latest completed checkpoint (Flink's restart strategies).
//!
//! A [`RestartStrategy`] is configuration; a [`RestartTracker`] applies it to the failures of
//! one job and answers each with a [`RestartDecision`]. Time is passed in, so the tracker is
//! deterministic and testable without sleeping; jitter comes from a seeded generator.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use weir_runtime::restart::{RestartDecision, RestartStrategy, RestartTracker};
//!
//! let strategy = RestartStrategy::FixedDelay { attempts: 1, delay: Duration::from_secs(2) };
//! let mut tracker = RestartTracker::new(strategy, 0);
//! let start = Instant::now();
//! let now = start + Duration::from_secs(5);
//! assert_eq!(
//!     tracker.on_failure(now, start),
//!     RestartDecision::RestartAfter(Duration::from_secs(2))
//! );
//! assert!(matches!(tracker.on_failure(now, now), RestartDecision::GiveUp { .. }));
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// How a job reacts to failures.
#[derive(Debug, Clone, PartialEq)]
pub enum RestartStrategy {
    /// Never restart: the first failure fails the job.
    None,
    /// Restart after a fixed delay, at most `attempts` times over the job's life.
    FixedDelay {
        /// How many restarts are allowed.
        attempts: u32,
        /// How long to wait before each restart.
        delay: Duration,
    },
    /// Restart after a delay that grows with each failure in a row.
    ExponentialBackoff {
        /// The delay before the first restart.
        initial: Duration,
        /// The longest delay (before jitter).
        max: Duration,
        /// Factor by which the delay grows per failure in a row (≥ 1).
        multiplier: f64,
        /// Random spread of each delay as a fraction of it, in `0..=1` (0.1 = ±10 %).
        jitter: f64,
        /// A run longer than this resets the backoff to `initial`.
        reset_after: Duration,
        /// At most this many restarts in a row (without a run longer than `reset_after`);
        /// `None` for no limit.
        max_attempts: Option<u32>,
    },
    /// Restart after a fixed delay unless failures come too often.
    FailureRate {
        /// The job gives up when more than this many failures fall within `interval`.
        max_failures: u32,
        /// The sliding window over which failures are counted.
        interval: Duration,
        /// How long to wait before each restart.
        delay: Duration,
    },
}

impl Default for RestartStrategy {
    /// Exponential backoff from 1 s to 60 s, doubling, ±10 % jitter, reset after an hour of
    /// running, no attempt limit (like Flink's default when checkpointing is enabled).
    fn default() -> Self {
        RestartStrategy::ExponentialBackoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.1,
            reset_after: Duration::from_secs(3600),
            max_attempts: None,
        }
    }
}

impl RestartStrategy {
    /// The strategy's name as in Flink: `none`, `fixed-delay`, `exponential-delay`,
    /// `failure-rate`.
    pub fn name(&self) -> &'static str {
        match self {
            RestartStrategy::None => "none",
            RestartStrategy::FixedDelay { .. } => "fixed-delay",
            RestartStrategy::ExponentialBackoff { .. } => "exponential-delay",
            RestartStrategy::FailureRate { .. } => "failure-rate",
        }
    }

    /// Checks the parameters; the error lists every problem, separated by `; `.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        match self {
            RestartStrategy::None | RestartStrategy::FixedDelay { .. } => {}
            RestartStrategy::ExponentialBackoff {
                initial,
                max,
                multiplier,
                jitter,
                reset_after,
                max_attempts: _,
            } => {
                if initial.is_zero() {
                    problems.push("initial backoff must be greater than zero".to_owned());
                }
                if initial > max {
                    problems.push(format!(
                        "initial backoff {initial:?} must not exceed the maximum backoff {max:?}"
                    ));
                }
                if !(multiplier.is_finite() && *multiplier >= 1.0) {
                    problems.push(format!(
                        "backoff multiplier must be a number of at least 1, got {multiplier}"
                    ));
                }
                if !(0.0..=1.0).contains(jitter) {
                    problems.push(format!(
                        "jitter must be a fraction between 0 and 1, got {jitter}"
                    ));
                }
                if reset_after.is_zero() {
                    problems.push("reset-after must be greater than zero".to_owned());
                }
            }
            RestartStrategy::FailureRate {
                max_failures: _,
                interval,
                delay: _,
            } => {
                if interval.is_zero() {
                    problems.push("failure-rate interval must be greater than zero".to_owned());
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "invalid {} restart strategy: {}",
                self.name(),
                problems.join("; ")
            ))
        }
    }
}

/// What to do after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart from the latest completed checkpoint after this delay.
    RestartAfter(Duration),
    /// Fail the job for good.
    GiveUp {
        /// Which limit was hit, for the job's final error.
        reason: String,
    },
}

/// Applies a [`RestartStrategy`] to the failures of one job.
///
/// Parameters that [`RestartStrategy::validate`] would reject never make the tracker panic: a
/// jitter outside `0..=1` is clamped and delays saturate.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    strategy: RestartStrategy,
    rng: SmallRng,
    /// All failures seen.
    failures: u32,
    /// Failures in a row since the last reset of the backoff (exponential).
    consecutive: u32,
    /// Times of the most recent failures within the interval (failure rate).
    recent: VecDeque<Instant>,
}

impl RestartTracker {
    /// A tracker with no failures yet; `seed` seeds the jitter so runs are reproducible.
    pub fn new(strategy: RestartStrategy, seed: u64) -> Self {
        RestartTracker {
            strategy,
            rng: SmallRng::seed_from_u64(seed),
            failures: 0,
            consecutive: 0,
            recent: VecDeque::new(),
        }
    }

    /// The strategy being applied.
    pub fn strategy(&self) -> &RestartStrategy {
        &self.strategy
    }

    /// A failure happened at `now`; `running_since` is when the failed attempt started.
    pub fn on_failure(&mut self, now: Instant, running_since: Instant) -> RestartDecision {
        self.failures = self.failures.saturating_add(1);
        let failures = self.failures;
        match self.strategy {
            RestartStrategy::None => RestartDecision::GiveUp {
                reason: "restart strategy none allows no restarts; the job failed".to_owned(),
            },
            RestartStrategy::FixedDelay { attempts, delay } => {
                if failures > attempts {
                    RestartDecision::GiveUp {
                        reason: format!(
                            "restart strategy fixed-delay allows {attempts} restart{}; the job \
                             failed {failures} times",
                            plural(attempts)
                        ),
                    }
                } else {
                    RestartDecision::RestartAfter(delay)
                }
            }
            RestartStrategy::ExponentialBackoff {
                initial,
                max,
                multiplier,
                jitter,
                reset_after,
                max_attempts,
            } => {
                if now.saturating_duration_since(running_since) > reset_after {
                    self.consecutive = 0;
                }
                self.consecutive = self.consecutive.saturating_add(1);
                let in_a_row = self.consecutive;
                if let Some(limit) = max_attempts {
                    if in_a_row > limit {
                        return RestartDecision::GiveUp {
                            reason: format!(
                                "restart strategy exponential-delay allows {limit} restart{} \
                                 without a run longer than {reset_after:?}; the job failed \
                                 {in_a_row} times in a row",
                                plural(limit)
                            ),
                        };
                    }
                }
                let base = backoff(initial, max, multiplier, in_a_row - 1);
                RestartDecision::RestartAfter(self.jittered(base, jitter, max))
            }
            RestartStrategy::FailureRate {
                max_failures,
                interval,
                delay,
            } => {
                self.recent.push_back(now);
                while self
                    .recent
                    .front()
                    .is_some_and(|t| now.saturating_duration_since(*t) > interval)
                {
                    self.recent.pop_front();
                }
                // Only the newest `max_failures + 1` matter; keep memory bounded.
                let keep = usize::try_from(max_failures)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1);
                while self.recent.len() > keep {
                    self.recent.pop_front();
                }
                let in_window = self.recent.len();
                if in_window >= keep {
                    RestartDecision::GiveUp {
                        reason: format!(
                            "restart strategy failure-rate allows {max_failures} failure{} per \
                             {interval:?}; the job failed {in_window} times within {interval:?}",
                            plural(max_failures)
                        ),
                    }
                } else {
                    RestartDecision::RestartAfter(delay)
                }
            }
        }
    }

    /// How many failures were reported so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// `base` spread uniformly by ±`jitter` × `base`.
    fn jittered(&mut self, base: Duration, jitter: f64, max: Duration) -> Duration {
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if jitter == 0.0 || base.is_zero() {
            return base;
        }
        let factor = 1.0 + self.rng.gen_range(-jitter..=jitter);
        Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(max)
    }
}

/// `min(max, initial × multiplier^exponent)`, saturating.
fn backoff(initial: Duration, max: Duration, multiplier: f64, exponent: u32) -> Duration {
    let exponent = i32::try_from(exponent).unwrap_or(i32::MAX);
    let secs = initial.as_secs_f64() * multiplier.powi(exponent);
    if secs.is_nan() || secs >= max.as_secs_f64() {
        return max;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(max).min(max)
}

fn plural(count: u32) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn exponential(jitter: f64, max_attempts: Option<u32>) -> RestartStrategy {
        RestartStrategy::ExponentialBackoff {
            initial: secs(1),
            max: secs(60),
            multiplier: 2.0,
            jitter,
            reset_after: secs(3600),
            max_attempts,
        }
    }

    fn delay(decision: &RestartDecision) -> Duration {
        match decision {
            RestartDecision::RestartAfter(delay) => *delay,
            RestartDecision::GiveUp { reason } => panic!("gave up: {reason}"),
        }
    }

    fn reason(decision: RestartDecision) -> String {
        match decision {
            RestartDecision::GiveUp { reason } => reason,
            RestartDecision::RestartAfter(delay) => panic!("restarts after {delay:?}"),
        }
    }

    #[test]
    fn none_gives_up_at_once() {
        let mut tracker = RestartTracker::new(RestartStrategy::None, 1);
        let t0 = Instant::now();
        let reason = reason(tracker.on_failure(t0, t0));
        assert!(reason.contains("none"), "{reason}");
        assert_eq!(tracker.failures(), 1);
    }

    #[test]
    fn fixed_delay_gives_up_after_its_attempts() {
        let strategy = RestartStrategy::FixedDelay {
            attempts: 3,
            delay: secs(2),
        };
        let mut tracker = RestartTracker::new(strategy, 1);
        let t0 = Instant::now();
        for i in 0..3 {
            let now = t0 + secs(10 * i);
            assert_eq!(
                tracker.on_failure(now, now),
                RestartDecision::RestartAfter(secs(2))
            );
        }
        assert_eq!(
            reason(tracker.on_failure(t0 + secs(40), t0)),
            "restart strategy fixed-delay allows 3 restarts; the job failed 4 times"
        );
        assert_eq!(tracker.failures(), 4);
    }

    #[test]
    fn fixed_delay_with_zero_attempts_gives_up_at_once() {
        let strategy = RestartStrategy::FixedDelay {
            attempts: 0,
            delay: secs(2),
        };
        let mut tracker = RestartTracker::new(strategy, 1);
        let t0 = Instant::now();
        assert!(matches!(
            tracker.on_failure(t0, t0),
            RestartDecision::GiveUp { .. }
        ));
    }

    #[test]
    fn exponential_backoff_doubles_up_to_the_maximum() {
        let mut tracker = RestartTracker::new(exponential(0.0, None), 1);
        let t0 = Instant::now();
        let delays: Vec<u64> = (0..10)
            .map(|i| {
                let now = t0 + secs(i);
                delay(&tracker.on_failure(now, now)).as_secs()
            })
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        // Many failures in a row never overflow.
        for _ in 0..10_000 {
            assert_eq!(delay(&tracker.on_failure(t0, t0)), secs(60));
        }
    }

    #[test]
    fn exponential_backoff_resets_after_a_long_run() {
        let mut tracker = RestartTracker::new(exponential(0.0, None), 1);
        let t0 = Instant::now();
        for expected in [1, 2, 4] {
            assert_eq!(delay(&tracker.on_failure(t0, t0)), secs(expected));
        }
        // Exactly `reset_after` is not longer than it: no reset.
        let started = t0 + secs(10);
        assert_eq!(
            delay(&tracker.on_failure(started + secs(3600), started)),
            secs(8)
        );
        // Longer: back to the initial delay.
        assert_eq!(
            delay(&tracker.on_failure(started + secs(3601), started)),
            secs(1)
        );
        assert_eq!(delay(&tracker.on_failure(t0, t0)), secs(2));
        assert_eq!(tracker.failures(), 6);
    }

    #[test]
    fn exponential_backoff_limits_attempts_in_a_row() {
        let mut tracker = RestartTracker::new(exponential(0.0, Some(2)), 1);
        let t0 = Instant::now();
        assert_eq!(delay(&tracker.on_failure(t0, t0)), secs(1));
        assert_eq!(delay(&tracker.on_failure(t0, t0)), secs(2));
        let reason = reason(tracker.on_failure(t0, t0));
        assert!(
            reason.contains("allows 2 restarts") && reason.contains("failed 3 times in a row"),
            "{reason}"
        );
        // A long run starts a fresh series.
        let mut tracker = RestartTracker::new(exponential(0.0, Some(2)), 1);
        assert_eq!(delay(&tracker.on_failure(t0, t0)), secs(1));
        assert_eq!(delay(&tracker.on_failure(t0, t0)), secs(2));
        let later = t0 + secs(7200);
        assert_eq!(delay(&tracker.on_failure(later, t0)), secs(1));
    }

    #[test]
    fn jitter_stays_within_bounds_and_is_reproducible() {
        let t0 = Instant::now();
        let mut tracker = RestartTracker::new(exponential(0.25, None), 42);
        let mut seen = Vec::with_capacity(1000);
        for i in 0..1000u32 {
            // Every 7th failure follows a long run, so bases of 1, 2, 4, … 60 s all occur.
            let running_since = if i % 7 == 0 { t0 } else { t0 + secs(7200) };
            let base = backoff(secs(1), secs(60), 2.0, i % 7);
            let got = delay(&tracker.on_failure(t0 + secs(7200), running_since));
            let low = base.mul_f64(0.75);
            let high = base.mul_f64(1.25);
            assert!(
                got >= low && got <= high,
                "draw {i}: {got:?} outside {low:?}..={high:?}"
            );
            seen.push(got);
        }
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() > 500, "jitter barely varies: {}", seen.len());

        let draw = |seed| {
            let mut tracker = RestartTracker::new(exponential(0.25, None), seed);
            (0..20)
                .map(|_| delay(&tracker.on_failure(t0, t0)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn jitter_outside_its_range_never_panics() {
        let t0 = Instant::now();
        for jitter in [-1.0, 5.0, f64::NAN, f64::INFINITY] {
            let mut tracker = RestartTracker::new(exponential(jitter, None), 3);
            for _ in 0..100 {
                let got = delay(&tracker.on_failure(t0, t0));
                assert!(got <= secs(120), "{got:?}");
            }
        }
        let strategy = RestartStrategy::ExponentialBackoff {
            initial: Duration::MAX,
            max: Duration::MAX,
            multiplier: f64::INFINITY,
            jitter: 1.0,
            reset_after: secs(1),
            max_attempts: None,
        };
        let mut tracker = RestartTracker::new(strategy, 3);
        for _ in 0..10 {
            let _ = delay(&tracker.on_failure(t0, t0));
        }
    }

    #[test]
    fn failure_rate_counts_failures_in_a_sliding_window() {
        let strategy = RestartStrategy::FailureRate {
            max_failures: 3,
            interval: secs(60),
            delay: secs(5),
        };
        let mut tracker = RestartTracker::new(strategy, 1);
        let t0 = Instant::now();
        // Three failures within a minute are tolerated.
        for at in [0, 20, 40] {
            let now = t0 + secs(at);
            assert_eq!(
                tracker.on_failure(now, now),
                RestartDecision::RestartAfter(secs(5))
            );
        }
        // At 61 s the failure at 0 s has left the window: still three.
        assert_eq!(
            tracker.on_failure(t0 + secs(61), t0),
            RestartDecision::RestartAfter(secs(5))
        );
        // At 70 s: 20, 40, 61, 70 are within 60 s → four, more than three.
        assert_eq!(
            reason(tracker.on_failure(t0 + secs(70), t0)),
            "restart strategy failure-rate allows 3 failures per 60s; the job failed 4 times \
             within 60s"
        );
        assert_eq!(tracker.failures(), 5);
    }

    #[test]
    fn failure_rate_tolerates_a_steady_trickle() {
        let strategy = RestartStrategy::FailureRate {
            max_failures: 1,
            interval: secs(10),
            delay: secs(1),
        };
        let mut tracker = RestartTracker::new(strategy, 1);
        let t0 = Instant::now();
        for i in 0..1000 {
            let now = t0 + secs(11 * i);
            assert_eq!(
                tracker.on_failure(now, now),
                RestartDecision::RestartAfter(secs(1))
            );
        }
        let now = t0 + secs(11 * 999 + 5);
        assert!(matches!(
            tracker.on_failure(now, now),
            RestartDecision::GiveUp { .. }
        ));
    }

    #[test]
    fn validation_lists_every_problem() {
        assert_eq!(RestartStrategy::default().validate(), Ok(()));
        assert_eq!(RestartStrategy::None.validate(), Ok(()));
        let bad = RestartStrategy::ExponentialBackoff {
            initial: secs(10),
            max: secs(1),
            multiplier: 0.5,
            jitter: 1.5,
            reset_after: Duration::ZERO,
            max_attempts: None,
        };
        let err = bad.validate().unwrap_err();
        for expected in ["must not exceed", "multiplier", "jitter", "reset-after"] {
            assert!(err.contains(expected), "{expected} missing from: {err}");
        }
        assert!(RestartStrategy::ExponentialBackoff {
            initial: secs(1),
            max: secs(1),
            multiplier: f64::NAN,
            jitter: 0.0,
            reset_after: secs(1),
            max_attempts: None,
        }
        .validate()
        .is_err());
        let bad_rate = RestartStrategy::FailureRate {
            max_failures: 1,
            interval: Duration::ZERO,
            delay: secs(1),
        };
        assert!(bad_rate.validate().unwrap_err().contains("interval"));
    }

    #[test]
    fn default_is_exponential_backoff() {
        assert_eq!(RestartStrategy::default(), exponential(0.1, None));
        assert_eq!(RestartStrategy::default().name(), "exponential-delay");
    }
}
