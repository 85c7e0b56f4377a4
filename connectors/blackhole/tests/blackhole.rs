//! The blackhole sink: counting, metrics, capabilities, options.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::task::noop_waker_ref;
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::config::ConfigError;
use weir_connector_api::metrics::{
    InMemoryMetricGroup, MetricGroup, MetricValue, NUM_RECORDS_SEND,
};
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::watermark::Watermark;
use weir_connector_blackhole::sink::PUBLISH_INTERVAL;
use weir_connector_blackhole::{options, BlackholeSink};

/// An InitContext for writer `subtask`, with its own metric group.
struct TestInitContext {
    subtask: usize,
    parallelism: usize,
    metrics: InMemoryMetricGroup,
}

impl TestInitContext {
    fn new(subtask: usize, parallelism: usize) -> Self {
        TestInitContext {
            subtask,
            parallelism,
            metrics: InMemoryMetricGroup::new(format!("writer-{subtask}")),
        }
    }

    fn records_send(&self) -> u64 {
        match self
            .metrics
            .value(&format!("writer-{}.{NUM_RECORDS_SEND}", self.subtask))
        {
            Some(MetricValue::Counter(n)) => n,
            other => panic!("no numRecordsSend: {other:?}"),
        }
    }
}

impl InitContext for TestInitContext {
    fn subtask_index(&self) -> usize {
        self.subtask
    }
    fn parallelism(&self) -> usize {
        self.parallelism
    }
    fn attempt(&self) -> u32 {
        0
    }
    fn restored_checkpoint_id(&self) -> Option<CheckpointId> {
        None
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::new(self.metrics.clone())
    }
    fn operator_id(&self) -> &'static str {
        "blackhole-sink"
    }
}

fn write_n<W: SinkWriter<u64>>(writer: &mut W, n: u64) {
    for i in 0..n {
        writer.write(i, &WriteContext::default()).unwrap();
    }
}

#[tokio::test]
async fn parallel_writers_add_to_one_counter_and_report_their_own_metric() {
    let sink = BlackholeSink::<u64>::new();
    let counter = sink.counter();
    let contexts: Vec<TestInitContext> = (0..3).map(|i| TestInitContext::new(i, 3)).collect();
    let mut writers: Vec<_> = contexts
        .iter()
        .map(|ctx| sink.create_writer(ctx).unwrap())
        .collect();
    for (i, writer) in writers.iter_mut().enumerate() {
        write_n(writer, 5000 * (i as u64 + 1));
    }
    for writer in &mut writers {
        writer.flush(FlushMode::Checkpoint).await.unwrap();
    }
    assert_eq!(counter.load(Ordering::Relaxed), 30_000);
    assert_eq!(sink.count(), 30_000);
    let per_writer: Vec<u64> = contexts.iter().map(TestInitContext::records_send).collect();
    assert_eq!(per_writer, [5000, 10_000, 15_000]);
}

#[test]
fn the_counter_is_exact_between_batches() {
    let sink = BlackholeSink::<u64>::new();
    let ctx = TestInitContext::new(0, 1);
    let mut writer = sink.create_writer(&ctx).unwrap();
    write_n(&mut writer, 10);
    // Within a batch the count may trail, by less than the publish interval.
    assert!(sink.count() <= 10);
    assert!(10 - sink.count() < PUBLISH_INTERVAL);
    let mut cx = Context::from_waker(noop_waker_ref());
    assert!(matches!(writer.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(sink.count(), 10);
    assert_eq!(ctx.records_send(), 10);

    write_n(&mut writer, 3 * PUBLISH_INTERVAL + 1);
    assert_eq!(
        sink.count(),
        10 + 3 * PUBLISH_INTERVAL - writer.unpublished() + 1
    );
    assert!(writer.unpublished() < PUBLISH_INTERVAL);
}

#[tokio::test]
async fn close_and_drop_publish_the_rest() {
    let sink = BlackholeSink::<u64>::new();
    let ctx = TestInitContext::new(0, 2);
    let mut closed = sink.create_writer(&ctx).unwrap();
    write_n(&mut closed, 7);
    closed.close().await.unwrap();
    assert_eq!(sink.count(), 7);

    // A writer torn down after a failure (no close) still counts what it discarded.
    let mut dropped = sink.create_writer(&ctx).unwrap();
    write_n(&mut dropped, 5);
    drop(dropped);
    assert_eq!(sink.count(), 12);
    assert_eq!(ctx.records_send(), 12);
}

#[test]
fn records_are_dropped_at_once() {
    let sink = BlackholeSink::<Arc<String>>::new();
    let mut writer = sink.create_writer(&TestInitContext::new(0, 1)).unwrap();
    let record = Arc::new("order".to_owned());
    writer
        .write(Arc::clone(&record), &WriteContext::default())
        .unwrap();
    assert_eq!(Arc::strong_count(&record), 1);
    writer.write_watermark(Watermark(42)).unwrap();
}

#[test]
fn clones_share_the_counter() {
    let sink = BlackholeSink::<u64>::default();
    let clone = sink.clone();
    let mut writer = clone.create_writer(&TestInitContext::new(0, 1)).unwrap();
    write_n(&mut writer, 2);
    drop(writer);
    assert_eq!(sink.count(), 2);
    assert!(Arc::ptr_eq(&sink.counter(), &clone.counter()));
    assert_eq!(format!("{sink:?}"), "BlackholeSink { count: 2 }");
}

#[test]
fn the_sink_declares_no_capability() {
    let caps = Arc::new(BlackholeSink::<u64>::new()).capabilities();
    assert!(caps.writer_state().is_none());
    assert!(caps.committer().is_none());
    assert!(caps.pre_write().is_none());
}

#[test]
fn no_options_are_accepted_and_every_key_is_rejected() {
    assert!(BlackholeSink::<u64>::from_options(&BTreeMap::new()).is_ok());
    assert_eq!(options().keys().count(), 0);
    let input: BTreeMap<String, String> = [("rows-per-second", "1"), ("path", "/tmp")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let err = BlackholeSink::<u64>::from_options(&input).unwrap_err();
    let keys: Vec<&str> = err.iter().map(ConfigError::key).collect();
    assert_eq!(keys, ["path", "rows-per-second"]);
    assert!(err.iter().all(|e| matches!(
        e,
        ConfigError::UnknownKey {
            suggestion: None,
            ..
        }
    )));
    assert!(err
        .to_string()
        .starts_with("2 problems in blackhole sink options:"));
}

/// The README's options table is generated: regenerate it with the output of
/// `options().to_markdown()` when options change.
#[test]
fn readme_contains_exactly_the_generated_options_table() {
    let readme = include_str!("../README.md");
    let start = "<!-- options:start -->\n";
    let end = "<!-- options:end -->";
    let from = readme
        .find(start)
        .expect("README has an options:start marker")
        + start.len();
    let to = readme.find(end).expect("README has an options:end marker");
    assert_eq!(
        &readme[from..to],
        options().to_markdown(),
        "README options table is out of date; replace it with options().to_markdown()"
    );
}

#[test]
fn the_pipeline_factory_is_registered_and_refuses_options() {
    use weir_connector_api::factory::find_connector;
    let factory = find_connector("blackhole").expect("registered");
    assert_eq!(factory.info().crate_name, "weir-connector-blackhole");
    let sink = factory.as_sink().expect("a sink");
    assert!(factory.as_source().is_none());
    let bad: std::collections::BTreeMap<String, String> = [("path".to_owned(), "/tmp".to_owned())]
        .into_iter()
        .collect();
    assert_eq!(
        sink.sink_options()
            .validate(&bad)
            .err()
            .map(|e| e.to_string()),
        Some(
            "1 problem in blackhole sink options:\n  - unknown option `path`: remove it, or check \
             the connector's documentation for the supported options"
                .to_owned()
        )
    );
}

/// Line 1.1's columnar sink: chunks dropped whole, their rows counted as rows.
#[cfg(weir_api_1_1)]
#[tokio::test]
async fn the_columnar_sink_counts_the_rows_of_its_chunks() {
    use weir_connector_api::columnar::arrow::array::{Int64Array, RecordBatch};
    use weir_connector_api::columnar::arrow::schema::{DataType, Field, Schema};
    use weir_connector_api::columnar::{Chunk, Columnar};
    use weir_connector_api::factory::{find_connector, FactoryContext, JobContext};
    use weir_connector_api::metrics::NUM_RECORDS_IN;

    let factory = find_connector("blackhole").expect("registered");
    let chunks = factory.as_chunk_sink().expect("a columnar sink");
    let config = options().validate(&BTreeMap::new()).unwrap();
    let schema = weir_connector_api::row::Schema::default();
    let ctx = FactoryContext {
        name: "out",
        schema: &schema,
        format: None,
    };
    let Columnar::Chunks(parts) = chunks
        .create_chunk_sink(&config, &ctx, &JobContext::new())
        .unwrap()
    else {
        panic!("the blackhole takes chunks");
    };
    assert!(parts.split.is_none());
    // A format is refused, as on rows.
    let format = options().validate(&BTreeMap::new()).unwrap();
    let with_format = FactoryContext {
        format: Some(("csv", &format)),
        ..ctx
    };
    assert!(chunks
        .create_chunk_sink(&config, &with_format, &JobContext::new())
        .is_err());

    let arrow = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let chunk = |n: i64| {
        let column = Int64Array::from_iter_values(0..n);
        Chunk::inserts(RecordBatch::try_new(Arc::clone(&arrow), vec![Arc::new(column)]).unwrap())
    };
    let sink = BlackholeSink::<Chunk>::of_rows(|c| c.num_rows() as u64);
    let ctx = TestInitContext::new(0, 1);
    let mut writer = sink.create_writer(&ctx).unwrap();
    for n in [3, 0, 2000, 1] {
        writer.write(chunk(n), &WriteContext::default()).unwrap();
    }
    writer.flush(FlushMode::Checkpoint).await.unwrap();
    assert_eq!(sink.count(), 2004);
    assert_eq!(ctx.records_send(), 2004);
    // The runtime counts one record in per chunk; the writer adds the other rows.
    assert_eq!(
        ctx.metrics.value(&format!("writer-0.{NUM_RECORDS_IN}")),
        Some(MetricValue::Counter(2004 - 3))
    );
    // The pipeline's blackhole of chunks is a working sink too.
    let mut boxed = parts
        .sink
        .create_writer(&TestInitContext::new(1, 1))
        .unwrap();
    boxed.write(chunk(5), &WriteContext::default()).unwrap();
}
