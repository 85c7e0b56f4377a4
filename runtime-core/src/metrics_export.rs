//! Publishes the runtime's metrics through the [`metrics`] facade, so any `metrics` recorder
//! (Prometheus, StatsD, ...) exports them. Names are `weir_<metric>` with labels `job`,
//! `operator` and `subtask`. With the `prometheus` feature,
//! [`install_prometheus_exporter`] serves them over HTTP.

use std::collections::BTreeMap;

use weir_connector_api::metrics::MetricValue;

/// Splits a scoped name (`<job>.<operator uid>.<subtask>.<metric>`) into its labels.
fn labels(scoped: &str) -> Option<(&str, &str, &str, &str)> {
    let (job, rest) = scoped.split_once('.')?;
    let (path, name) = rest.rsplit_once('.')?;
    let (operator, subtask) = match path.rsplit_once('.') {
        Some((operator, subtask)) => (operator, subtask),
        None => (path, ""),
    };
    Some((job, operator, subtask, name))
}

/// Pushes a snapshot into the installed `metrics` recorder (a no-op without one).
pub(crate) fn publish(snapshot: &BTreeMap<String, MetricValue>) {
    for (scoped, value) in snapshot {
        let Some((job, operator, subtask, name)) = labels(scoped) else {
            continue;
        };
        let labels = [
            ("job", job.to_owned()),
            ("operator", operator.to_owned()),
            ("subtask", subtask.to_owned()),
        ];
        let key = format!("weir_{name}");
        match value {
            MetricValue::Counter(n) => metrics::counter!(key, &labels).absolute(*n),
            MetricValue::Gauge(v) => metrics::gauge!(key, &labels).set(*v as f64),
            MetricValue::Histogram(h) => {
                metrics::gauge!(format!("{key}_count"), &labels).set(h.count as f64);
                metrics::gauge!(format!("{key}_sum"), &labels).set(h.sum as f64);
            }
            _ => {}
        }
    }
}

/// Installs a global Prometheus recorder serving `http://<addr>/metrics`.
#[cfg(feature = "prometheus")]
pub fn install_prometheus_exporter(addr: std::net::SocketAddr) -> Result<(), String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::labels;

    #[test]
    fn scoped_names_become_labels() {
        assert_eq!(
            labels("job.numbers.0.numRecordsOut"),
            Some(("job", "numbers", "0", "numRecordsOut"))
        );
        assert_eq!(
            labels("job.sink/committer.1.numRecordsIn"),
            Some(("job", "sink/committer", "1", "numRecordsIn"))
        );
        assert_eq!(
            labels("job.checkpoints.completed"),
            Some(("job", "checkpoints", "", "completed"))
        );
        assert_eq!(labels("nodots"), None);
    }
}
