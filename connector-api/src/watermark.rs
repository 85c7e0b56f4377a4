//! Event time: watermarks, timestamp assigners, watermark generators, the watermark strategy with
//! idleness and alignment, and the job-wide [`CoordinatorStore`].
//!
//! # Watermark alignment
//!
//! Alignment keeps fast sources (or fast splits of one source) from running far ahead of slow ones
//! in event time, which would make downstream windows and joins buffer unboundedly. It takes three
//! parameters:
//!
//! - **group**: sources that share a group name are aligned with each other, even different
//!   sources (a fast and a slow input of one join);
//! - **max drift**: how far (in event time) a source may be ahead of the slowest member of the
//!   group; a source, subtask or split whose watermark exceeds `group minimum + max drift` stops
//!   being read until the group catches up;
//! - **update interval**: how often sources report their watermark and receive the new allowed
//!   maximum; the drift actually observed can exceed `max drift` by the progress made within one
//!   interval.
//!
//! ```
//! use std::time::Duration;
//! use weir_connector_api::watermark::WatermarkStrategy;
//!
//! #[derive(Debug)]
//! struct Click { at_millis: i64 }
//!
//! let strategy = WatermarkStrategy::<Click>::for_bounded_out_of_orderness(Duration::from_secs(5))
//!     .with_timestamp_assigner(|click: &Click, _source_ts: Option<i64>| click.at_millis)
//!     .with_idleness(Duration::from_secs(30))
//!     .with_watermark_alignment("clicks-and-orders", Duration::from_secs(20), Duration::from_secs(1));
//! let alignment = strategy.alignment().expect("alignment was set");
//! assert_eq!(alignment.group(), "clicks-and-orders");
//! assert_eq!(alignment.max_drift(), Duration::from_secs(20));
//! ```

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A watermark: the assertion that no more records with an event time at or below it will come.
/// Event times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Watermark(pub i64);

impl Watermark {
    /// The lowest watermark: nothing is known yet.
    pub const MIN: Watermark = Watermark(i64::MIN);
    /// The highest watermark: the input has ended (or is idle for alignment purposes).
    pub const MAX: Watermark = Watermark(i64::MAX);

    /// The event time in milliseconds.
    pub fn timestamp(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Watermark::MIN => f.write_str("MIN"),
            Watermark::MAX => f.write_str("MAX"),
            Watermark(t) => write!(f, "{t}"),
        }
    }
}

/// Extracts the event time of a record.
///
/// ```
/// use weir_connector_api::watermark::TimestampAssigner;
/// struct Reading { ts: i64 }
/// let mut assign = |r: &Reading, _source_ts: Option<i64>| r.ts;
/// assert_eq!(assign.extract_timestamp(&Reading { ts: 7 }, None), 7);
/// ```
pub trait TimestampAssigner<T>: Send {
    /// The event time of `record`; `source_timestamp` is the timestamp the source attached, if any.
    fn extract_timestamp(&mut self, record: &T, source_timestamp: Option<i64>) -> i64;
}

impl<T, F> TimestampAssigner<T> for F
where
    F: FnMut(&T, Option<i64>) -> i64 + Send,
{
    fn extract_timestamp(&mut self, record: &T, source_timestamp: Option<i64>) -> i64 {
        self(record, source_timestamp)
    }
}

/// Uses the timestamp attached by the source (e.g. the Kafka record timestamp), or `i64::MIN`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceTimestampAssigner;

impl<T> TimestampAssigner<T> for SourceTimestampAssigner {
    fn extract_timestamp(&mut self, _record: &T, source_timestamp: Option<i64>) -> i64 {
        source_timestamp.unwrap_or(i64::MIN)
    }
}

/// Where a [`WatermarkGenerator`] sends watermarks and idleness changes.
pub trait WatermarkOutput {
    /// Emits a watermark; a watermark not above the last one is ignored by the runtime.
    fn emit_watermark(&mut self, watermark: Watermark);
    /// Marks this output idle: it no longer holds back downstream watermarks.
    fn mark_idle(&mut self);
    /// Marks this output active again.
    fn mark_active(&mut self);
}

/// Generates watermarks from events and/or periodically.
///
/// ```
/// use weir_connector_api::watermark::{BoundedOutOfOrderness, Watermark, WatermarkGenerator, WatermarkOutput};
/// #[derive(Default)]
/// struct Last(Option<Watermark>);
/// impl WatermarkOutput for Last {
///     fn emit_watermark(&mut self, wm: Watermark) { self.0 = Some(wm); }
///     fn mark_idle(&mut self) {}
///     fn mark_active(&mut self) {}
/// }
/// let mut generator = BoundedOutOfOrderness::new(std::time::Duration::from_millis(100));
/// let mut out = Last::default();
/// WatermarkGenerator::<()>::on_event(&mut generator, &(), 1_000, &mut out);
/// WatermarkGenerator::<()>::on_periodic_emit(&mut generator, &mut out);
/// assert_eq!(out.0, Some(Watermark(899)));
/// ```
pub trait WatermarkGenerator<T>: Send {
    /// Called for every record with its extracted event time.
    fn on_event(&mut self, record: &T, timestamp: i64, output: &mut dyn WatermarkOutput);
    /// Called every auto-watermark interval.
    fn on_periodic_emit(&mut self, output: &mut dyn WatermarkOutput);
}

/// Watermarks that trail the highest timestamp seen by a fixed bound: `max - bound - 1`.
#[derive(Debug, Clone)]
pub struct BoundedOutOfOrderness {
    max_timestamp: i64,
    bound_millis: i64,
}

impl BoundedOutOfOrderness {
    /// A generator that tolerates records up to `bound` late.
    pub fn new(bound: Duration) -> Self {
        let bound_millis = i64::try_from(bound.as_millis()).unwrap_or(i64::MAX);
        BoundedOutOfOrderness {
            // Start so that the first periodic watermark is i64::MIN.
            max_timestamp: i64::MIN.saturating_add(bound_millis).saturating_add(1),
            bound_millis,
        }
    }
}

impl<T> WatermarkGenerator<T> for BoundedOutOfOrderness {
    fn on_event(&mut self, _record: &T, timestamp: i64, _output: &mut dyn WatermarkOutput) {
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    fn on_periodic_emit(&mut self, output: &mut dyn WatermarkOutput) {
        output.emit_watermark(Watermark(
            self.max_timestamp
                .saturating_sub(self.bound_millis)
                .saturating_sub(1),
        ));
    }
}

/// Never emits watermarks (processing-time pipelines).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWatermarks;

impl<T> WatermarkGenerator<T> for NoWatermarks {
    fn on_event(&mut self, _record: &T, _timestamp: i64, _output: &mut dyn WatermarkOutput) {}
    fn on_periodic_emit(&mut self, _output: &mut dyn WatermarkOutput) {}
}

/// The alignment parameters of a [`WatermarkStrategy`]; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkAlignment {
    group: String,
    max_drift: Duration,
    update_interval: Duration,
}

impl WatermarkAlignment {
    /// The default interval at which watermarks are reported and alignment is recomputed.
    pub const DEFAULT_UPDATE_INTERVAL: Duration = Duration::from_secs(1);

    /// The alignment group name.
    pub fn group(&self) -> &str {
        &self.group
    }
    /// How far a member may run ahead of the group's minimum watermark.
    pub fn max_drift(&self) -> Duration {
        self.max_drift
    }
    /// How often watermarks are reported and the allowed maximum recomputed.
    pub fn update_interval(&self) -> Duration {
        self.update_interval
    }

    /// The highest watermark a member may reach: `group_min + max_drift`, saturating at MAX.
    pub fn max_allowed(&self, group_min: Watermark) -> Watermark {
        let drift = i64::try_from(self.max_drift.as_millis()).unwrap_or(i64::MAX);
        Watermark(group_min.0.saturating_add(drift))
    }
}

type GeneratorFactory<T> = Arc<dyn Fn() -> Box<dyn WatermarkGenerator<T>> + Send + Sync>;
type AssignerFactory<T> = Arc<dyn Fn() -> Box<dyn TimestampAssigner<T>> + Send + Sync>;

/// How a source derives event time and watermarks: a generator, a timestamp assigner,
/// optional idleness and optional alignment.
pub struct WatermarkStrategy<T> {
    generator: GeneratorFactory<T>,
    assigner: AssignerFactory<T>,
    idleness: Option<Duration>,
    alignment: Option<WatermarkAlignment>,
}

impl<T> Clone for WatermarkStrategy<T> {
    fn clone(&self) -> Self {
        WatermarkStrategy {
            generator: Arc::clone(&self.generator),
            assigner: Arc::clone(&self.assigner),
            idleness: self.idleness,
            alignment: self.alignment.clone(),
        }
    }
}

impl<T> fmt::Debug for WatermarkStrategy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatermarkStrategy")
            .field("idleness", &self.idleness)
            .field("alignment", &self.alignment)
            .finish_non_exhaustive()
    }
}

impl<T: 'static> WatermarkStrategy<T> {
    /// A strategy built from a generator factory; timestamps come from the source.
    pub fn for_generator<G, F>(factory: F) -> Self
    where
        G: WatermarkGenerator<T> + 'static,
        F: Fn() -> G + Send + Sync + 'static,
    {
        WatermarkStrategy {
            generator: Arc::new(move || Box::new(factory())),
            assigner: Arc::new(|| Box::new(SourceTimestampAssigner)),
            idleness: None,
            alignment: None,
        }
    }

    /// No watermarks at all.
    pub fn no_watermarks() -> Self {
        Self::for_generator(|| NoWatermarks)
    }

    /// Watermarks trailing the highest seen timestamp by `bound`.
    pub fn for_bounded_out_of_orderness(bound: Duration) -> Self {
        Self::for_generator(move || BoundedOutOfOrderness::new(bound))
    }

    /// Watermarks for ascending timestamps (bounded out-of-orderness with a zero bound).
    pub fn for_monotonous_timestamps() -> Self {
        Self::for_bounded_out_of_orderness(Duration::ZERO)
    }

    /// Uses `assigner` to extract event times (cloned for every split and subtask).
    pub fn with_timestamp_assigner<A>(mut self, assigner: A) -> Self
    where
        A: TimestampAssigner<T> + Clone + Sync + 'static,
    {
        self.assigner = Arc::new(move || Box::new(assigner.clone()));
        self
    }

    /// Marks an output idle when it produced no record for `timeout`, so it stops holding back
    /// watermarks; it becomes active again with its next record.
    pub fn with_idleness(mut self, timeout: Duration) -> Self {
        self.idleness = Some(timeout);
        self
    }

    /// Aligns this source with every source of `group`; see the module docs.
    pub fn with_watermark_alignment(
        mut self,
        group: impl Into<String>,
        max_drift: Duration,
        update_interval: Duration,
    ) -> Self {
        self.alignment = Some(WatermarkAlignment {
            group: group.into(),
            max_drift,
            update_interval,
        });
        self
    }

    /// A new generator (one per split or per subtask).
    pub fn create_generator(&self) -> Box<dyn WatermarkGenerator<T>> {
        (self.generator)()
    }

    /// A new timestamp assigner.
    pub fn create_timestamp_assigner(&self) -> Box<dyn TimestampAssigner<T>> {
        (self.assigner)()
    }

    /// The idleness timeout, if set.
    pub fn idleness(&self) -> Option<Duration> {
        self.idleness
    }

    /// The alignment parameters, if set.
    pub fn alignment(&self) -> Option<&WatermarkAlignment> {
        self.alignment.as_ref()
    }
}

/// A value in a [`CoordinatorStore`].
pub type StoreValue = Arc<dyn Any + Send + Sync>;

/// A job-wide key-value store shared by all source coordinators, e.g. to aggregate the watermarks
/// of an alignment group. Keys should contain stable operator ids, never display names.
///
/// ```
/// use std::sync::Arc;
/// use weir_connector_api::watermark::{CoordinatorStore, InMemoryCoordinatorStore};
/// let store = InMemoryCoordinatorStore::default();
/// store.compute("group/clicks", &mut |old| {
///     let count = old.and_then(|v| v.downcast_ref::<u32>().copied()).unwrap_or(0);
///     Some(Arc::new(count + 1))
/// });
/// let now = store.get("group/clicks").and_then(|v| v.downcast_ref::<u32>().copied());
/// assert_eq!(now, Some(1));
/// ```
pub trait CoordinatorStore: Send + Sync {
    /// The current value under `key`.
    fn get(&self, key: &str) -> Option<StoreValue>;
    /// Atomically replaces the value under `key` by `f(old)` (removing it if `f` returns `None`)
    /// and returns the new value.
    fn compute(
        &self,
        key: &str,
        f: &mut dyn FnMut(Option<&StoreValue>) -> Option<StoreValue>,
    ) -> Option<StoreValue>;
}

/// A [`CoordinatorStore`] in memory, shared by every coordinator of one job.
#[derive(Default)]
pub struct InMemoryCoordinatorStore {
    entries: Mutex<HashMap<String, StoreValue>>,
}

impl fmt::Debug for InMemoryCoordinatorStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryCoordinatorStore")
            .finish_non_exhaustive()
    }
}

impl CoordinatorStore for InMemoryCoordinatorStore {
    fn get(&self, key: &str) -> Option<StoreValue> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(key).cloned()
    }

    fn compute(
        &self,
        key: &str,
        f: &mut dyn FnMut(Option<&StoreValue>) -> Option<StoreValue>,
    ) -> Option<StoreValue> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match f(entries.get(key)) {
            Some(value) => {
                entries.insert(key.to_owned(), Arc::clone(&value));
                Some(value)
            }
            None => {
                entries.remove(key);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorded(Vec<Watermark>);
    impl WatermarkOutput for Recorded {
        fn emit_watermark(&mut self, watermark: Watermark) {
            self.0.push(watermark);
        }
        fn mark_idle(&mut self) {}
        fn mark_active(&mut self) {}
    }

    #[test]
    fn bounded_out_of_orderness_trails_the_maximum() {
        let mut g = BoundedOutOfOrderness::new(Duration::from_millis(10));
        let mut out = Recorded::default();
        WatermarkGenerator::<()>::on_periodic_emit(&mut g, &mut out);
        for ts in [100, 50, 120, 110] {
            WatermarkGenerator::<()>::on_event(&mut g, &(), ts, &mut out);
        }
        WatermarkGenerator::<()>::on_periodic_emit(&mut g, &mut out);
        assert_eq!(out.0, vec![Watermark::MIN, Watermark(109)]);
    }

    #[test]
    fn monotonous_strategy_emits_max_minus_one() {
        let s = WatermarkStrategy::<()>::for_monotonous_timestamps();
        let mut g = s.create_generator();
        let mut out = Recorded::default();
        g.on_event(&(), 5, &mut out);
        g.on_periodic_emit(&mut out);
        assert_eq!(out.0, vec![Watermark(4)]);
    }

    #[test]
    fn alignment_max_allowed_saturates() {
        let s = WatermarkStrategy::<()>::no_watermarks().with_watermark_alignment(
            "g",
            Duration::from_millis(5),
            WatermarkAlignment::DEFAULT_UPDATE_INTERVAL,
        );
        let a = s.alignment().cloned();
        assert_eq!(
            a.as_ref().map(|a| a.max_allowed(Watermark(10))),
            Some(Watermark(15))
        );
        assert_eq!(
            a.map(|a| a.max_allowed(Watermark(i64::MAX - 1))),
            Some(Watermark::MAX)
        );
    }

    #[test]
    fn timestamp_assigner_closure_is_used() {
        let s = WatermarkStrategy::<i64>::no_watermarks()
            .with_timestamp_assigner(|r: &i64, _: Option<i64>| r * 2);
        assert_eq!(
            s.create_timestamp_assigner().extract_timestamp(&21, None),
            42
        );
        let d = WatermarkStrategy::<i64>::no_watermarks();
        assert_eq!(
            d.create_timestamp_assigner().extract_timestamp(&1, Some(9)),
            9
        );
    }

    #[test]
    fn coordinator_store_compute_and_remove() {
        let store = InMemoryCoordinatorStore::default();
        assert!(store.get("k").is_none());
        store.compute("k", &mut |_| Some(Arc::new(3_i64)));
        let v = store
            .get("k")
            .and_then(|v| v.downcast_ref::<i64>().copied());
        assert_eq!(v, Some(3));
        assert!(store.compute("k", &mut |_| None).is_none());
        assert!(store.get("k").is_none());
    }
}
