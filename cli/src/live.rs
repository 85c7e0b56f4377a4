//! Live metrics of a running job for the progress display: a `metrics` recorder that keeps the
//! latest value of every metric the runtime publishes (once a second), optionally also
//! forwarding them to a Prometheus exporter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};

/// `(metric name, operator, subtask)`: the runtime's labels.
type Slot = (String, String, String);

/// The latest values, shared by the recorder and the display.
#[derive(Debug, Clone, Default)]
pub struct LiveMetrics {
    values: Arc<Mutex<HashMap<Slot, f64>>>,
}

impl LiveMetrics {
    fn set(&self, slot: &Slot, value: f64) {
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(slot.clone(), value);
    }

    /// The sum of `metric` (without the `weir_` prefix) over the subtasks of `operators`.
    pub fn sum(&self, metric: &str, operators: &[String]) -> f64 {
        let name = format!("weir_{metric}");
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((n, op, _), _)| *n == name && operators.contains(op))
            .map(|(_, v)| *v)
            .sum()
    }

    /// The minimum of `metric` over the subtasks of `operators`, if any reported it.
    pub fn min(&self, metric: &str, operators: &[String]) -> Option<f64> {
        let name = format!("weir_{metric}");
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((n, op, _), _)| *n == name && operators.contains(op))
            .map(|(_, v)| *v)
            .reduce(f64::min)
    }
}

/// The recorder: records into [`LiveMetrics`] and forwards to `inner` when set.
pub struct LiveRecorder<R> {
    live: LiveMetrics,
    inner: Option<R>,
}

impl<R> LiveRecorder<R> {
    /// A recorder into `live`, forwarding to `inner`.
    pub fn new(live: LiveMetrics, inner: Option<R>) -> Self {
        LiveRecorder { live, inner }
    }
}

fn slot(key: &Key) -> Slot {
    let mut operator = String::new();
    let mut subtask = String::new();
    for label in key.labels() {
        match label.key() {
            "operator" => label.value().clone_into(&mut operator),
            "subtask" => label.value().clone_into(&mut subtask),
            _ => {}
        }
    }
    (key.name().to_owned(), operator, subtask)
}

struct Tee {
    live: LiveMetrics,
    slot: Slot,
    counter: Option<Counter>,
    gauge: Option<Gauge>,
    total: Mutex<f64>,
}

impl CounterFn for Tee {
    fn increment(&self, value: u64) {
        let mut total = self.total.lock().unwrap_or_else(PoisonError::into_inner);
        *total += value as f64;
        self.live.set(&self.slot, *total);
        if let Some(c) = &self.counter {
            c.increment(value);
        }
    }
    fn absolute(&self, value: u64) {
        self.live.set(&self.slot, value as f64);
        if let Some(c) = &self.counter {
            c.absolute(value);
        }
    }
}

impl GaugeFn for Tee {
    fn increment(&self, value: f64) {
        let mut total = self.total.lock().unwrap_or_else(PoisonError::into_inner);
        *total += value;
        self.live.set(&self.slot, *total);
        if let Some(g) = &self.gauge {
            g.increment(value);
        }
    }
    fn decrement(&self, value: f64) {
        GaugeFn::increment(self, -value);
    }
    fn set(&self, value: f64) {
        self.live.set(&self.slot, value);
        if let Some(g) = &self.gauge {
            g.set(value);
        }
    }
}

impl<R: Recorder> Recorder for LiveRecorder<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if let Some(r) = &self.inner {
            r.describe_counter(key, unit, description);
        }
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if let Some(r) = &self.inner {
            r.describe_gauge(key, unit, description);
        }
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if let Some(r) = &self.inner {
            r.describe_histogram(key, unit, description);
        }
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Tee {
            live: self.live.clone(),
            slot: slot(key),
            counter: self
                .inner
                .as_ref()
                .map(|r| r.register_counter(key, metadata)),
            gauge: None,
            total: Mutex::new(0.0),
        }))
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Tee {
            live: self.live.clone(),
            slot: slot(key),
            counter: None,
            gauge: self.inner.as_ref().map(|r| r.register_gauge(key, metadata)),
            total: Mutex::new(0.0),
        }))
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        match &self.inner {
            Some(r) => r.register_histogram(key, metadata),
            None => Histogram::noop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_per_operator_and_subtask() {
        let live = LiveMetrics::default();
        let recorder: LiveRecorder<metrics::NoopRecorder> = LiveRecorder::new(live.clone(), None);
        let meta = Metadata::new("t", metrics::Level::INFO, None);
        for (subtask, n) in [("0", 5), ("1", 7)] {
            let key = Key::from_parts(
                "weir_numRecordsOut",
                vec![
                    metrics::Label::new("operator", "orders"),
                    metrics::Label::new("subtask", subtask),
                ],
            );
            recorder.register_counter(&key, &meta).absolute(n);
            let wm = Key::from_parts(
                "weir_currentOutputWatermark",
                vec![
                    metrics::Label::new("operator", "orders"),
                    metrics::Label::new("subtask", subtask),
                ],
            );
            recorder.register_gauge(&wm, &meta).set(n as f64 * 100.0);
        }
        let ops = vec!["orders".to_owned()];
        assert!((live.sum("numRecordsOut", &ops) - 12.0).abs() < 1e-9);
        assert!(live
            .min("currentOutputWatermark", &ops)
            .is_some_and(|w| (w - 500.0).abs() < 1e-9));
        assert_eq!(live.min("currentOutputWatermark", &["x".to_owned()]), None);
    }
}
