//! Lock-free metric handles: [`Counter`], [`Gauge`] and [`Histogram`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// A monotonically growing count, shared by every clone of the handle.
///
/// Updating is a single relaxed atomic add, cheap enough to call per record from any thread.
/// The count wraps around at `u64::MAX`.
#[derive(Debug, Clone, Default)]
pub struct Counter {
    value: Arc<AtomicU64>,
}

impl Counter {
    /// A counter at zero that no metric group reports; groups hand out registered ones.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    #[inline]
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    /// Whether both handles update the same underlying counter.
    pub fn same_as(&self, other: &Counter) -> bool {
        Arc::ptr_eq(&self.value, &other.value)
    }
}

/// A value that is set rather than accumulated (a lag, a backlog, a duration), shared by every
/// clone of the handle.
///
/// Updating is a single relaxed atomic store.
#[derive(Debug, Clone, Default)]
pub struct Gauge {
    value: Arc<AtomicI64>,
}

impl Gauge {
    /// A gauge at zero that no metric group reports; groups hand out registered ones.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, value: i64) {
        self.value.store(value, Ordering::Relaxed);
    }

    /// Adds `delta` (which may be negative) to the value, wrapping on overflow.
    #[inline]
    pub fn add(&self, delta: i64) {
        self.value.fetch_add(delta, Ordering::Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }

    /// Whether both handles update the same underlying gauge.
    pub fn same_as(&self, other: &Gauge) -> bool {
        Arc::ptr_eq(&self.value, &other.value)
    }
}

#[derive(Debug)]
struct HistogramCells {
    count: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

impl Default for HistogramCells {
    fn default() -> Self {
        HistogramCells {
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }
}

/// A summary of recorded values (count, sum, minimum, maximum), shared by every clone of the
/// handle.
///
/// Recording is four atomic operations and never locks. It keeps no buckets, so it cannot give
/// percentiles; a runtime that needs them can implement its own
/// [`MetricGroup`](super::MetricGroup).
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    cells: Arc<HistogramCells>,
}

impl Histogram {
    /// An empty histogram that no metric group reports; groups hand out registered ones.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value. The sum wraps around at `u64::MAX`.
    #[inline]
    pub fn record(&self, value: u64) {
        let cells = &*self.cells;
        cells.min.fetch_min(value, Ordering::Relaxed);
        cells.max.fetch_max(value, Ordering::Relaxed);
        cells.sum.fetch_add(value, Ordering::Relaxed);
        // Release: a snapshot that sees this count also sees this value's min and max.
        cells.count.fetch_add(1, Ordering::Release);
    }

    /// The current summary.
    ///
    /// Fields are read one by one: while other threads record, the sum may already include
    /// values the count does not.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let cells = &*self.cells;
        let count = cells.count.load(Ordering::Acquire);
        let sum = cells.sum.load(Ordering::Relaxed);
        let (min, max) = if count == 0 {
            (None, None)
        } else {
            (
                Some(cells.min.load(Ordering::Relaxed)),
                Some(cells.max.load(Ordering::Relaxed)),
            )
        };
        HistogramSnapshot {
            count,
            sum,
            min,
            max,
        }
    }

    /// Whether both handles update the same underlying histogram.
    pub fn same_as(&self, other: &Histogram) -> bool {
        Arc::ptr_eq(&self.cells, &other.cells)
    }
}

/// The summary of a [`Histogram`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistogramSnapshot {
    /// How many values were recorded.
    pub count: u64,
    /// The sum of the recorded values.
    pub sum: u64,
    /// The smallest recorded value, if any.
    pub min: Option<u64>,
    /// The largest recorded value, if any.
    pub max: Option<u64>,
}

impl HistogramSnapshot {
    /// The mean of the recorded values, if any.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }
}
