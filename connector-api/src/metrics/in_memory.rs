//! [`InMemoryMetricGroup`]: a thread-safe metric registry kept in memory.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{scoped_name, Counter, Gauge, Histogram, HistogramSnapshot, MetricGroup};

/// The value of one metric at the moment of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum MetricValue {
    /// A counter's count.
    Counter(u64),
    /// A gauge's value.
    Gauge(i64),
    /// A histogram's summary.
    Histogram(HistogramSnapshot),
}

#[derive(Debug, Clone)]
enum Metric {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

impl Metric {
    fn value(&self) -> MetricValue {
        match self {
            Metric::Counter(c) => MetricValue::Counter(c.get()),
            Metric::Gauge(g) => MetricValue::Gauge(g.get()),
            Metric::Histogram(h) => MetricValue::Histogram(h.snapshot()),
        }
    }
}

#[derive(Debug, Default)]
struct Registry {
    metrics: BTreeMap<String, Metric>,
    collisions: Vec<String>,
}

/// A [`MetricGroup`] that keeps its metrics in memory, for tests and for runtimes that export
/// metrics by polling [`snapshot`](InMemoryMetricGroup::snapshot).
///
/// A root group and all of its sub-groups share one registry. The registry is locked only when
/// a metric is registered or a snapshot is taken; updates go straight to the atomic handles.
///
/// ```
/// use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup, MetricValue};
///
/// let root = InMemoryMetricGroup::new("job.source");
/// let split = root.group("split-0");
/// split.counter("numRecordsIn").add(3);
/// assert_eq!(
///     root.value("job.source.split-0.numRecordsIn"),
///     Some(MetricValue::Counter(3))
/// );
/// ```
#[derive(Debug, Clone)]
pub struct InMemoryMetricGroup {
    scope: String,
    registry: Arc<Mutex<Registry>>,
}

impl InMemoryMetricGroup {
    /// A root group with a new, empty registry; `scope` is its dotted path (may be empty).
    pub fn new(scope: impl Into<String>) -> Self {
        InMemoryMetricGroup {
            scope: scope.into(),
            registry: Arc::default(),
        }
    }

    /// The sub-group `name`, sharing this group's registry; the typed form of
    /// [`MetricGroup::add_group`].
    pub fn group(&self, name: &str) -> InMemoryMetricGroup {
        InMemoryMetricGroup {
            scope: scoped_name(&self.scope, name),
            registry: Arc::clone(&self.registry),
        }
    }

    /// The current value of every metric in this group and its sub-groups, keyed by full scoped
    /// name (e.g. `job.source.split-0.numRecordsIn`).
    pub fn snapshot(&self) -> BTreeMap<String, MetricValue> {
        let registry = self.lock();
        registry
            .metrics
            .iter()
            .filter(|(name, _)| self.contains(name))
            .map(|(name, metric)| (name.clone(), metric.value()))
            .collect()
    }

    /// The current value of the metric with the full scoped name `scoped_name`, if registered.
    pub fn value(&self, scoped_name: &str) -> Option<MetricValue> {
        self.lock().metrics.get(scoped_name).map(Metric::value)
    }

    /// Full names that were requested as a different kind of metric than first registered
    /// (e.g. a gauge named like an existing counter). Those requests got handles that are not
    /// reported.
    pub fn collisions(&self) -> Vec<String> {
        self.lock().collisions.clone()
    }

    fn contains(&self, full_name: &str) -> bool {
        self.scope.is_empty()
            || full_name
                .strip_prefix(self.scope.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Registry updates cannot be left half done, so a poisoned lock is still consistent.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register<H: Clone + Default>(
        &self,
        name: &str,
        wrap: fn(H) -> Metric,
        unwrap: fn(&Metric) -> Option<&H>,
    ) -> H {
        let full_name = scoped_name(&self.scope, name);
        let mut guard = self.lock();
        let registry = &mut *guard;
        match registry.metrics.entry(full_name) {
            Entry::Vacant(entry) => {
                let handle = H::default();
                entry.insert(wrap(handle.clone()));
                handle
            }
            Entry::Occupied(entry) => {
                if let Some(handle) = unwrap(entry.get()) {
                    handle.clone()
                } else {
                    registry.collisions.push(entry.key().clone());
                    H::default()
                }
            }
        }
    }
}

impl MetricGroup for InMemoryMetricGroup {
    fn counter(&self, name: &str) -> Counter {
        self.register(name, Metric::Counter, |m| match m {
            Metric::Counter(c) => Some(c),
            _ => None,
        })
    }

    fn gauge(&self, name: &str) -> Gauge {
        self.register(name, Metric::Gauge, |m| match m {
            Metric::Gauge(g) => Some(g),
            _ => None,
        })
    }

    fn histogram(&self, name: &str) -> Histogram {
        self.register(name, Metric::Histogram, |m| match m {
            Metric::Histogram(h) => Some(h),
            _ => None,
        })
    }

    fn add_group(&self, name: &str) -> Arc<dyn MetricGroup> {
        Arc::new(self.group(name))
    }

    fn scope(&self) -> String {
        self.scope.clone()
    }
}
