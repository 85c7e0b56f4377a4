//! Record timestamps travel with records: a sink writer's `WriteContext::timestamp` is the
//! event time its source assigned to the record, through `map`, `filter` and `flat_map`; a
//! window's results carry the window's last millisecond; records without event time have none.
//! Times cross the channels between tasks too (`key_by`, `rebalance`, `union`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_connector_api::error::Result;
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::{JobConfig, StreamEnvironment, WindowCount};

/// Every record a writer was given, with its `WriteContext::timestamp`.
type Seen<T> = Arc<Mutex<Vec<(T, Option<i64>)>>>;

/// A sink that records every record with the timestamp its writer was given.
#[derive(Clone)]
struct TimestampRecordingSinkFake<T> {
    seen: Seen<T>,
}

impl<T> Default for TimestampRecordingSinkFake<T> {
    fn default() -> Self {
        TimestampRecordingSinkFake {
            seen: Arc::default(),
        }
    }
}

impl<T: Clone + Send + 'static> TimestampRecordingSinkFake<T> {
    fn seen(&self) -> Vec<(T, Option<i64>)> {
        self.seen.lock().unwrap().clone()
    }
}

struct RecordingWriter<T> {
    seen: Seen<T>,
}

#[async_trait::async_trait]
impl<T: Send + 'static> SinkWriter<T> for RecordingWriter<T> {
    fn write(&mut self, element: T, ctx: &WriteContext) -> Result<()> {
        self.seen.lock().unwrap().push((element, ctx.timestamp));
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl<T: Send + 'static> Sink<T> for TimestampRecordingSinkFake<T> {
    type Writer = RecordingWriter<T>;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<RecordingWriter<T>> {
        Ok(RecordingWriter {
            seen: Arc::clone(&self.seen),
        })
    }
}

const COUNT: u64 = 5_000;

fn numbers() -> DataGeneratorSource<u64> {
    DataGeneratorSource::new(|n| n, Some(COUNT), RateLimiterStrategy::no_op())
}

async fn run(env: StreamEnvironment) {
    let result = tokio::time::timeout(Duration::from_secs(30), env.build().unwrap().execute())
        .await
        .expect("the job ends");
    assert!(result.is_finished(), "{:?}", result.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_see_each_records_event_time_through_map_filter_and_flat_map() {
    let sink = TimestampRecordingSinkFake::<u64>::default();
    let env = StreamEnvironment::new(JobConfig::new("timestamps").parallelism(2));
    env.from_source(
        numbers(),
        // Record n happened at 10 n ms; the 0th has no time at all (a mix in one batch).
        WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|n: &u64, _| {
            if *n == 0 {
                i64::MIN
            } else {
                *n as i64 * 10
            }
        }),
        "numbers",
    )
    .map(|n| n * 2)
    .filter(|n| n % 3 != 0)
    .flat_map(|n| [n, n + 1])
    .sink_to(sink.clone());
    run(env).await;
    let seen = sink.seen();
    let expected_records = (0..COUNT).filter(|n| (n * 2) % 3 != 0).count() * 2;
    assert_eq!(seen.len(), expected_records, "every record arrived once");
    for (record, timestamp) in seen {
        let n = record / 2; // map doubled it, flat_map added 0 or 1
        let expected = (n != 0).then_some(n as i64 * 10);
        assert_eq!(timestamp, expected, "record {record} (from {n})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_event_time_have_no_timestamp() {
    let sink = TimestampRecordingSinkFake::<u64>::default();
    let env = StreamEnvironment::new(JobConfig::new("no-timestamps").parallelism(2));
    env.from_source(numbers(), WatermarkStrategy::no_watermarks(), "numbers")
        .map(|n| n + 1)
        .sink_to(sink.clone());
    run(env).await;
    let seen = sink.seen();
    assert_eq!(seen.len(), COUNT as usize);
    assert!(
        seen.iter().all(|(_, ts)| ts.is_none()),
        "no record has a time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_results_carry_the_windows_last_millisecond() {
    let sink = TimestampRecordingSinkFake::<WindowCount>::default();
    let env = StreamEnvironment::new(JobConfig::new("window-timestamps").parallelism(2));
    env.from_source(
        numbers(),
        WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|n: &u64, _| *n as i64),
        "numbers",
    )
    .key_by(|n| n % 3)
    .window_count("windows", Duration::from_secs(1), |n| n % 3, |n| *n as i64)
    .sink_to(sink.clone());
    run(env).await;
    let seen = sink.seen();
    let mut counted: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    for (window, timestamp) in &seen {
        assert_eq!(*timestamp, Some(window.window_end - 1), "{window:?}");
        *counted
            .entry((window.key, window.window_start))
            .or_default() += window.count;
    }
    assert_eq!(counted.len(), 15, "3 keys, 5 windows of 1 000 ms each");
    assert_eq!(counted.values().sum::<u64>(), COUNT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_cross_key_by_rebalance_and_union_channels() {
    let sink = TimestampRecordingSinkFake::<u64>::default();
    let env = StreamEnvironment::new(JobConfig::new("timestamps-exchanged").parallelism(2));
    let timed = |from: u64, uid: &str| {
        env.from_source(
            DataGeneratorSource::new(move |n| from + n, Some(COUNT), RateLimiterStrategy::no_op()),
            // Every 7th record has no time (a mix in one batch, before and after the timed).
            WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|n: &u64, _| {
                if n % 7 == 0 {
                    i64::MIN
                } else {
                    *n as i64 * 10
                }
            }),
            uid,
        )
    };
    timed(0, "first")
        .union(timed(COUNT, "second"))
        .key_by(|n| n % 5)
        .map(|n| n + 1)
        .parallelism(3)
        .rebalance()
        .filter(|n| n % 2 == 0)
        .parallelism(2)
        .sink_to(sink.clone());
    run(env).await;
    let seen = sink.seen();
    let expected = (1..=2 * COUNT).filter(|n| n % 2 == 0).count();
    assert_eq!(seen.len(), expected, "every record arrived once");
    for (record, timestamp) in seen {
        let n = record - 1;
        let time = (n % 7 != 0).then_some(n as i64 * 10);
        assert_eq!(timestamp, time, "record {record} (from {n})");
    }
}
