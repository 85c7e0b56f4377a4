//! Metrics (per operator, per checkpoint, exported through `metrics`) and restart strategies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{FakeTransactionStore, TwoPhaseSink};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::MetricValue;
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::restart::RestartStrategy;
use weir_runtime::{CheckpointConfig, JobConfig, JobStatus, RuntimeError, StreamEnvironment};

fn numbers(count: u64, rate: f64) -> DataGeneratorSource<u64> {
    DataGeneratorSource::new(|n| n, Some(count), RateLimiterStrategy::per_second(rate))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_and_checkpoints_report_metrics() {
    let store = Arc::new(FakeTransactionStore::default());
    let env = StreamEnvironment::new(
        JobConfig::new("metrics")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(10))),
    );
    env.from_source(
        numbers(20_000, 200_000.0),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .uid("numbers")
    .sink_to(TwoPhaseSink { store });
    let result = env.build().unwrap().execute().await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(result.counter("numbers", "numRecordsOut"), 20_000);
    assert_eq!(
        result.counter("numbers", "numRecordsIn"),
        20_000,
        "the reader's own count"
    );
    assert!(
        result.completed_checkpoints >= 3,
        "{}",
        result.completed_checkpoints
    );
    match result.metrics.get("metrics.checkpoints.completed") {
        Some(MetricValue::Counter(n)) => assert_eq!(*n, result.completed_checkpoints),
        other => panic!("no checkpoint counter: {other:?}"),
    }
    match result.metrics.get("metrics.checkpoints.lastSizeBytes") {
        Some(MetricValue::Gauge(n)) => {
            assert!(*n > 0, "checkpoints hold split and committer state");
        }
        other => panic!("no checkpoint size: {other:?}"),
    }
}

/// A sink whose writer fails on one record, on every attempt.
struct FailsAt(u64);
struct FailingWriter(u64);

#[async_trait::async_trait]
impl SinkWriter<u64> for FailingWriter {
    fn write(&mut self, element: u64, _ctx: &WriteContext) -> Result<()> {
        if element == self.0 {
            return Err(ConnectorError::fatal(
                "writing to the fake",
                format!("record {element} rejected"),
            ));
        }
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl Sink<u64> for FailsAt {
    type Writer = FailingWriter;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<FailingWriter> {
        Ok(FailingWriter(self.0))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_strategy_gives_up_and_reports_the_root_cause() {
    let env = StreamEnvironment::new(
        JobConfig::new("doomed")
            .checkpointing(CheckpointConfig::every(Duration::from_millis(10)))
            .restart(RestartStrategy::FixedDelay {
                attempts: 2,
                delay: Duration::from_millis(1),
            }),
    );
    env.from_source(
        numbers(1_000, 1e9),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .sink_to(FailsAt(500));
    let result = env.build().unwrap().execute().await;
    assert_eq!(result.attempts, 3, "the first run and two restarts");
    assert_eq!(result.failures.len(), 3);
    assert!(
        result
            .failures
            .iter()
            .all(|f| f.contains("record 500 rejected")),
        "{:?}",
        result.failures
    );
    match result.status {
        JobStatus::Failed(RuntimeError::GaveUp {
            attempts,
            reason,
            cause,
        }) => {
            assert_eq!(attempts, 3);
            assert!(reason.contains("fixed-delay"), "{reason}");
            assert!(cause.to_string().contains("record 500 rejected"), "{cause}");
        }
        other => panic!("expected the job to give up, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_jobs_report_every_mistake_at_once() {
    let env = StreamEnvironment::new(JobConfig {
        batch_size: 0,
        channel_capacity: 0,
        ..JobConfig::new("bad").parallelism(0)
    });
    env.from_source(numbers(10, 1e9), WatermarkStrategy::no_watermarks(), "a")
        .uid("same")
        .sink_to(FailsAt(1));
    env.from_source(numbers(10, 1e9), WatermarkStrategy::no_watermarks(), "b")
        .uid("same")
        .sink_to(FailsAt(1));
    let Err(RuntimeError::InvalidJob(problems)) = env.build() else {
        panic!("the job is invalid");
    };
    let all = problems.join("\n");
    assert!(all.contains("uid `same`"), "{all}");
    assert!(all.contains("parallelism 0"), "{all}");
    assert!(problems.len() >= 3, "{all}");
}

#[cfg(feature = "prometheus")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_prometheus_format() {
    use std::io::{Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    weir_runtime::install_prometheus_exporter(addr).unwrap();
    let store = Arc::new(FakeTransactionStore::default());
    let env = StreamEnvironment::new(JobConfig::new("scraped"));
    env.from_source(
        numbers(5_000, 1e9),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .uid("numbers")
    .sink_to(TwoPhaseSink { store });
    assert!(env.build().unwrap().execute().await.is_finished());
    let body = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        body
    })
    .await
    .unwrap();
    let line = body
        .lines()
        .find(|l| l.starts_with("weir_numRecordsOut{") && l.contains("job=\"scraped\""))
        .unwrap_or_else(|| panic!("no numRecordsOut in:\n{body}"));
    assert!(line.ends_with(" 5000"), "{line}");
}
