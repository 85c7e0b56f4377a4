//! How a subtask spends its time, measured cheaply: Flink's `idleTimeMsPerSecond` (waiting for
//! input), `backPressuredTimeMsPerSecond` (waiting for room in a full output channel) and
//! `busyTimeMsPerSecond` (the rest), plus the records it read and sent and its watermark.
//!
//! Nothing here reads a clock per record. A task reads the clock when it starts and ends a wait
//! for input (once per batch or event at most) and an exchange only when a send finds its channel
//! full; records are counted per batch. A wait in progress is visible to the sampler (the master,
//! once a second), so a task blocked for minutes shows as idle or back-pressured meanwhile.
//!
//! The job master puts each subtask's [`TaskLoad`] in a tokio task-local ([`scope`]), so an
//! exchange deep in a chain finds it without it being passed through every operator.

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

tokio::task_local! {
    static CURRENT: Arc<TaskLoad>;
}

/// Runs `future` (a subtask) with `load` as its [`current`] load.
pub(crate) fn scope<F: Future>(
    load: Arc<TaskLoad>,
    future: F,
) -> tokio::task::futures::TaskLocalFuture<Arc<TaskLoad>, F> {
    CURRENT.scope(load, future)
}

/// The load of the subtask running this code, if the master started it.
pub(crate) fn current() -> Option<Arc<TaskLoad>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// What a task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Input: nothing to do (idle time).
    Input,
    /// Room in a full output channel (back-pressured time).
    Output,
}

/// A wait in progress, from [`TaskLoad::begin`].
#[derive(Debug, Clone, Copy)]
#[must_use = "end the wait with TaskLoad::end"]
pub(crate) struct WaitStart {
    at: Instant,
    kind: Wait,
}

/// When a barrier reached a subtask and how long it waited for the same barrier on its other
/// inputs (alignment); carried by the subtask's acknowledgement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BarrierTiming {
    /// When the first barrier of the checkpoint arrived (or the master's trigger, for a task
    /// whose input ended, or a source).
    pub(crate) first_barrier: Instant,
    /// From the first to the last barrier (zero with one input); unaligned: until the snapshot.
    pub(crate) alignment: Duration,
    /// `Some` when the snapshot was unaligned: the bytes of records in flight it stored.
    pub(crate) in_flight_bytes: Option<u64>,
}

impl BarrierTiming {
    /// A barrier that needed no alignment, arriving now.
    pub(crate) fn now() -> Self {
        BarrierTiming {
            first_barrier: Instant::now(),
            alignment: Duration::ZERO,
            in_flight_bytes: None,
        }
    }
}

/// The time and record counts of one subtask, shared between the task and the sampler.
#[derive(Debug)]
pub(crate) struct TaskLoad {
    origin: Instant,
    idle_ns: AtomicU64,
    backpressured_ns: AtomicU64,
    /// A wait in progress: `((start ns since origin + 1) << 1) | kind`, 0 when none.
    waiting: AtomicU64,
    records_in: AtomicU64,
    records_out: AtomicU64,
    watermark: AtomicI64,
    /// Time a source subtask spent not polling because watermark alignment held it back.
    alignment_paused_ms: AtomicU64,
    /// Splits a source subtask has paused for split-level watermark alignment now.
    paused_splits: AtomicU64,
}

impl Default for TaskLoad {
    fn default() -> Self {
        TaskLoad {
            origin: Instant::now(),
            idle_ns: AtomicU64::new(0),
            backpressured_ns: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            alignment_paused_ms: AtomicU64::new(0),
            paused_splits: AtomicU64::new(0),
        }
    }
}

/// Cumulative totals at one instant, for [`TaskLoad::sample`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadTotals {
    pub(crate) at: Instant,
    pub(crate) idle: Duration,
    pub(crate) backpressured: Duration,
    pub(crate) records_in: u64,
    pub(crate) records_out: u64,
}

/// The time shares of one window, in milliseconds per second (each within 0..=1000).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TimeShares {
    pub(crate) busy: f64,
    pub(crate) idle: f64,
    pub(crate) backpressured: f64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl TaskLoad {
    /// Starts a wait.
    pub(crate) fn begin(&self, kind: Wait) -> WaitStart {
        let at = Instant::now();
        let start = nanos(at.duration_since(self.origin));
        let bit = match kind {
            Wait::Input => 0,
            Wait::Output => 1,
        };
        self.waiting
            .store(((start + 1) << 1) | bit, Ordering::Relaxed);
        WaitStart { at, kind }
    }

    /// Ends a wait, adding its time to its kind.
    pub(crate) fn end(&self, wait: WaitStart) {
        let spent = nanos(wait.at.elapsed());
        self.waiting.store(0, Ordering::Relaxed);
        self.total(wait.kind).fetch_add(spent, Ordering::Relaxed);
    }

    fn total(&self, kind: Wait) -> &AtomicU64 {
        match kind {
            Wait::Input => &self.idle_ns,
            Wait::Output => &self.backpressured_ns,
        }
    }

    /// Counts records read (from a reader or the input channels).
    pub(crate) fn records_in(&self, n: usize) {
        self.records_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts records sent to the next task.
    pub(crate) fn records_out(&self, n: usize) {
        self.records_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The subtask's current watermark advanced.
    pub(crate) fn watermark(&self, millis: i64) {
        self.watermark.store(millis, Ordering::Relaxed);
    }

    /// A source subtask waited `ms` because watermark alignment held it back (task level).
    pub(crate) fn alignment_paused(&self, ms: u64) {
        self.alignment_paused_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// A source subtask now has `n` splits paused for watermark alignment (split level).
    pub(crate) fn paused_splits(&self, n: usize) {
        self.paused_splits.store(n as u64, Ordering::Relaxed);
    }

    /// The total time held back by watermark alignment, and the splits paused now.
    pub(crate) fn alignment_pauses(&self) -> (u64, u64) {
        (
            self.alignment_paused_ms.load(Ordering::Relaxed),
            self.paused_splits.load(Ordering::Relaxed),
        )
    }

    /// The current watermark (`None` before the first).
    pub(crate) fn current_watermark(&self) -> Option<i64> {
        let w = self.watermark.load(Ordering::Relaxed);
        (w != i64::MIN).then_some(w)
    }

    /// The totals now, a wait in progress included up to now.
    pub(crate) fn totals(&self) -> LoadTotals {
        let at = Instant::now();
        let mut idle = self.idle_ns.load(Ordering::Relaxed);
        let mut backpressured = self.backpressured_ns.load(Ordering::Relaxed);
        let waiting = self.waiting.load(Ordering::Relaxed);
        if waiting != 0 {
            let start = (waiting >> 1) - 1;
            let so_far = nanos(at.duration_since(self.origin)).saturating_sub(start);
            if waiting & 1 == 0 {
                idle += so_far;
            } else {
                backpressured += so_far;
            }
        }
        LoadTotals {
            at,
            idle: Duration::from_nanos(idle),
            backpressured: Duration::from_nanos(backpressured),
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
        }
    }
}

/// What a subtask in another process measured, as its process sends it to the master's
/// monitor (cluster mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mirrored {
    pub(crate) idle_ns: u64,
    pub(crate) backpressured_ns: u64,
    pub(crate) records_in: u64,
    pub(crate) records_out: u64,
    pub(crate) watermark: i64,
    pub(crate) alignment_paused_ms: u64,
    pub(crate) paused_splits: u64,
}

impl TaskLoad {
    /// What this subtask measured so far (a wait in progress included up to now).
    pub(crate) fn mirrored(&self) -> Mirrored {
        let totals = self.totals();
        Mirrored {
            idle_ns: nanos(totals.idle),
            backpressured_ns: nanos(totals.backpressured),
            records_in: totals.records_in,
            records_out: totals.records_out,
            watermark: self.watermark.load(Ordering::Relaxed),
            alignment_paused_ms: self.alignment_paused_ms.load(Ordering::Relaxed),
            paused_splits: self.paused_splits.load(Ordering::Relaxed),
        }
    }

    /// Takes over what a subtask in another process measured: this load then shows it.
    pub(crate) fn mirror(&self, m: &Mirrored) {
        self.waiting.store(0, Ordering::Relaxed);
        self.idle_ns.store(m.idle_ns, Ordering::Relaxed);
        self.backpressured_ns
            .store(m.backpressured_ns, Ordering::Relaxed);
        self.records_in.store(m.records_in, Ordering::Relaxed);
        self.records_out.store(m.records_out, Ordering::Relaxed);
        self.watermark.store(m.watermark, Ordering::Relaxed);
        self.alignment_paused_ms
            .store(m.alignment_paused_ms, Ordering::Relaxed);
        self.paused_splits.store(m.paused_splits, Ordering::Relaxed);
    }
}

impl LoadTotals {
    /// The time shares between `earlier` and `self`; busy is what is neither idle nor
    /// back-pressured (as in Flink).
    pub(crate) fn shares_since(&self, earlier: &LoadTotals) -> Option<TimeShares> {
        let window = self.at.checked_duration_since(earlier.at)?.as_secs_f64();
        if window <= 0.0 {
            return None;
        }
        let per_second = |now: Duration, before: Duration| {
            (now.saturating_sub(before).as_secs_f64() * 1000.0 / window).clamp(0.0, 1000.0)
        };
        let idle = per_second(self.idle, earlier.idle);
        let backpressured =
            per_second(self.backpressured, earlier.backpressured).min(1000.0 - idle);
        Some(TimeShares {
            busy: (1000.0 - idle - backpressured).max(0.0),
            idle,
            backpressured,
        })
    }

    /// Records per second read and sent between `earlier` and `self`.
    pub(crate) fn rates_since(&self, earlier: &LoadTotals) -> Option<(f64, f64)> {
        let window = self.at.checked_duration_since(earlier.at)?.as_secs_f64();
        if window <= 0.0 {
            return None;
        }
        Some((
            self.records_in.saturating_sub(earlier.records_in) as f64 / window,
            self.records_out.saturating_sub(earlier.records_out) as f64 / window,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_in_progress_counts_for_its_kind() {
        let load = TaskLoad::default();
        let before = load.totals();
        let wait = load.begin(Wait::Output);
        std::thread::sleep(Duration::from_millis(30));
        let during = load.totals();
        assert!(during.backpressured >= Duration::from_millis(30));
        assert_eq!(during.idle, Duration::ZERO);
        load.end(wait);
        let after = load.totals();
        assert!(after.backpressured >= during.backpressured);
        let shares = after.shares_since(&before).unwrap_or(TimeShares {
            busy: 0.0,
            idle: 0.0,
            backpressured: 0.0,
        });
        assert!(shares.backpressured > 900.0, "{shares:?}");
        assert!((shares.busy + shares.idle + shares.backpressured - 1000.0).abs() < 1e-6);
    }

    #[test]
    fn records_and_watermarks_are_kept() {
        let load = TaskLoad::default();
        assert_eq!(load.current_watermark(), None);
        load.records_in(3);
        load.records_out(2);
        load.watermark(42);
        let t = load.totals();
        assert_eq!((t.records_in, t.records_out), (3, 2));
        assert_eq!(load.current_watermark(), Some(42));
    }
}
