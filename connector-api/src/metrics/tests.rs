use std::sync::Arc;
use std::thread;

use super::*;

#[test]
fn same_name_returns_the_same_counter() {
    let group = InMemoryMetricGroup::new("job");
    let a = group.counter("numRecordsIn");
    let b = group.counter("numRecordsIn");
    assert!(a.same_as(&b));
    a.inc();
    b.add(2);
    assert_eq!(a.get(), 3);
    assert!(!a.same_as(&group.counter("other")));

    let g1 = group.gauge("lag");
    let g2 = group.gauge("lag");
    assert!(g1.same_as(&g2));
    let h1 = group.histogram("latency");
    assert!(h1.same_as(&group.histogram("latency")));
}

#[test]
fn same_sub_group_twice_shares_metrics() {
    let root = InMemoryMetricGroup::new("job");
    let a = root.add_group("split-0");
    let b = root.add_group("split-0");
    assert!(a.counter("n").same_as(&b.counter("n")));
}

#[test]
fn sub_groups_are_scoped() {
    let root = InMemoryMetricGroup::new("job.source.subtask-0");
    let split = root.add_group("split-1");
    let nested = split.add_group("reader");
    assert_eq!(root.scope(), "job.source.subtask-0");
    assert_eq!(split.scope(), "job.source.subtask-0.split-1");
    assert_eq!(nested.scope(), "job.source.subtask-0.split-1.reader");

    split.counter("numRecordsIn").add(5);
    root.counter("numRecordsIn").add(1);
    assert_eq!(
        root.value("job.source.subtask-0.split-1.numRecordsIn"),
        Some(MetricValue::Counter(5))
    );
    assert_eq!(
        root.value("job.source.subtask-0.numRecordsIn"),
        Some(MetricValue::Counter(1))
    );
    // Counters in different groups are different counters.
    assert!(!split
        .counter("numRecordsIn")
        .same_as(&root.counter("numRecordsIn")));
}

#[test]
fn empty_root_scope_has_no_leading_dot() {
    let root = InMemoryMetricGroup::new("");
    root.counter("a").inc();
    root.add_group("g").counter("b").inc();
    let names: Vec<String> = root.snapshot().into_keys().collect();
    assert_eq!(names, vec!["a".to_owned(), "g.b".to_owned()]);
}

#[test]
fn snapshot_contains_every_metric_with_its_value() {
    let root = InMemoryMetricGroup::new("job");
    root.counter("records").add(7);
    root.gauge("lag").set(-3);
    let latency = root.histogram("latency");
    latency.record(10);
    latency.record(30);
    root.histogram("unused");
    root.group("split-0").gauge("offset").set(99);

    let expected: std::collections::BTreeMap<String, MetricValue> = [
        ("job.records", MetricValue::Counter(7)),
        ("job.lag", MetricValue::Gauge(-3)),
        (
            "job.latency",
            MetricValue::Histogram(HistogramSnapshot {
                count: 2,
                sum: 40,
                min: Some(10),
                max: Some(30),
            }),
        ),
        (
            "job.unused",
            MetricValue::Histogram(HistogramSnapshot::default()),
        ),
        ("job.split-0.offset", MetricValue::Gauge(99)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(root.snapshot(), expected);
}

#[test]
fn sub_group_snapshot_is_limited_to_its_scope() {
    let root = InMemoryMetricGroup::new("job");
    let split1 = root.group("split-1");
    let split10 = root.group("split-10");
    split1.counter("n").inc();
    split10.counter("n").add(10);
    root.counter("n").add(100);
    let names: Vec<String> = split1.snapshot().into_keys().collect();
    assert_eq!(names, vec!["job.split-1.n".to_owned()]);
    assert_eq!(root.snapshot().len(), 3);
}

#[test]
fn kind_collision_yields_an_unreported_handle_and_is_recorded() {
    let root = InMemoryMetricGroup::new("job");
    root.counter("x").add(4);
    let stray = root.gauge("x");
    stray.set(123);
    assert_eq!(root.value("job.x"), Some(MetricValue::Counter(4)));
    assert_eq!(root.collisions(), vec!["job.x".to_owned()]);
    // The original counter is unaffected and still shared.
    assert_eq!(root.counter("x").get(), 4);
}

#[test]
fn concurrent_increments_sum_correctly() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 10_000;
    let root = Arc::new(InMemoryMetricGroup::new("job"));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let root = Arc::clone(&root);
            thread::spawn(move || {
                // Half the threads register their own handle, half clone a shared one.
                let metrics = SourceReaderMetrics::new(&*root);
                let latency = root.histogram("latency");
                for _ in 0..PER_THREAD {
                    metrics.inc_records_in();
                    metrics.add_bytes_in(3);
                    latency.record(i);
                }
            })
        })
        .collect();
    for handle in handles {
        assert!(handle.join().is_ok(), "worker thread panicked");
    }
    let snapshot = root.snapshot();
    assert_eq!(
        snapshot.get("job.numRecordsIn"),
        Some(&MetricValue::Counter(THREADS * PER_THREAD))
    );
    assert_eq!(
        snapshot.get("job.numBytesIn"),
        Some(&MetricValue::Counter(3 * THREADS * PER_THREAD))
    );
    assert_eq!(
        snapshot.get("job.latency"),
        Some(&MetricValue::Histogram(HistogramSnapshot {
            count: THREADS * PER_THREAD,
            sum: PER_THREAD * (0..THREADS).sum::<u64>(),
            min: Some(0),
            max: Some(THREADS - 1),
        }))
    );
}

#[test]
fn source_reader_metrics_use_the_standard_names() {
    let root = InMemoryMetricGroup::new("r");
    let m = SourceReaderMetrics::new(&root);
    m.inc_records_in();
    m.add_records_in(2);
    m.add_bytes_in(10);
    m.inc_records_in_errors();
    m.set_pending_records(42);
    m.set_emit_event_time_lag(250);
    let s = root.snapshot();
    assert_eq!(s.get("r.numRecordsIn"), Some(&MetricValue::Counter(3)));
    assert_eq!(s.get("r.numBytesIn"), Some(&MetricValue::Counter(10)));
    assert_eq!(
        s.get("r.numRecordsInErrors"),
        Some(&MetricValue::Counter(1))
    );
    assert_eq!(s.get("r.pendingRecords"), Some(&MetricValue::Gauge(42)));
    assert_eq!(
        s.get("r.currentEmitEventTimeLag"),
        Some(&MetricValue::Gauge(250))
    );
    assert_eq!(s.len(), 5);
    assert_eq!(m.num_records_in().get(), 3);
    assert_eq!(m.num_bytes_in().get(), 10);
    assert_eq!(m.num_records_in_errors().get(), 1);
    assert_eq!(m.pending_records().get(), 42);
    assert_eq!(m.current_emit_event_time_lag().get(), 250);
}

#[test]
fn sink_writer_metrics_use_the_standard_names() {
    let root = InMemoryMetricGroup::new("w");
    let m = SinkWriterMetrics::new(&root);
    m.inc_records_send();
    m.add_records_send(4);
    m.add_bytes_send(100);
    m.inc_records_send_errors();
    m.add_records_send_errors(2);
    m.set_current_send_time(17);
    let s = root.snapshot();
    assert_eq!(
        s.get(&scoped_name("w", NUM_RECORDS_SEND)),
        Some(&MetricValue::Counter(5))
    );
    assert_eq!(
        s.get(&scoped_name("w", NUM_BYTES_SEND)),
        Some(&MetricValue::Counter(100))
    );
    assert_eq!(
        s.get(&scoped_name("w", NUM_RECORDS_SEND_ERRORS)),
        Some(&MetricValue::Counter(3))
    );
    assert_eq!(
        s.get(&scoped_name("w", NUM_RECORDS_OUT_ERRORS)),
        Some(&MetricValue::Counter(3))
    );
    assert_eq!(
        s.get(&scoped_name("w", CURRENT_SEND_TIME)),
        Some(&MetricValue::Gauge(17))
    );
    assert_eq!(s.len(), 5);
    assert_eq!(m.num_records_send().get(), 5);
    assert_eq!(m.num_bytes_send().get(), 100);
    assert_eq!(m.num_records_send_errors().get(), 3);
    assert_eq!(m.num_records_out_errors().get(), 3);
    assert_eq!(m.current_send_time().get(), 17);
}

#[test]
fn standard_names_match_flip_33() {
    let names = [
        (NUM_RECORDS_IN, "numRecordsIn"),
        (NUM_BYTES_IN, "numBytesIn"),
        (NUM_RECORDS_IN_ERRORS, "numRecordsInErrors"),
        (CURRENT_EMIT_EVENT_TIME_LAG, "currentEmitEventTimeLag"),
        (CURRENT_FETCH_EVENT_TIME_LAG, "currentFetchEventTimeLag"),
        (WATERMARK_LAG, "watermarkLag"),
        (SOURCE_IDLE_TIME, "sourceIdleTime"),
        (PENDING_RECORDS, "pendingRecords"),
        (PENDING_BYTES, "pendingBytes"),
        (NUM_RECORDS_SEND, "numRecordsSend"),
        (NUM_BYTES_SEND, "numBytesSend"),
        (NUM_RECORDS_OUT_ERRORS, "numRecordsOutErrors"),
        (CURRENT_SEND_TIME, "currentSendTime"),
        (NUM_RECORDS_OUT, "numRecordsOut"),
        (NUM_RECORDS_SEND_ERRORS, "numRecordsSendErrors"),
    ];
    for (constant, expected) in names {
        assert_eq!(constant, expected);
    }
}

#[test]
fn handles_work_standalone() {
    let c = Counter::new();
    let c2 = c.clone();
    c.inc();
    c2.add(u64::MAX); // wraps
    assert_eq!(c.get(), 0);

    let g = Gauge::new();
    g.set(5);
    g.add(-7);
    assert_eq!(g.get(), -2);

    let h = Histogram::new();
    assert_eq!(h.snapshot(), HistogramSnapshot::default());
    assert_eq!(h.snapshot().mean(), None);
    h.record(u64::MAX);
    h.record(1);
    let s = h.snapshot();
    assert_eq!((s.count, s.min, s.max), (2, Some(1), Some(u64::MAX)));
}

#[test]
fn histogram_mean() {
    let h = Histogram::new();
    for v in [2, 4, 9] {
        h.record(v);
    }
    let mean = h.snapshot().mean().unwrap_or(f64::NAN);
    assert!((mean - 5.0).abs() < 1e-9, "{mean}");
}

#[test]
fn metric_group_is_object_safe_and_shareable() {
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}
    assert_send_sync::<dyn MetricGroup>();
    assert_send_sync::<SourceReaderMetrics>();
    assert_send_sync::<SinkWriterMetrics>();
    let group: Arc<dyn MetricGroup> = Arc::new(InMemoryMetricGroup::new("x"));
    let sub = group.add_group("y");
    sub.counter("z").inc();
    assert_eq!(sub.scope(), "x.y");
}
