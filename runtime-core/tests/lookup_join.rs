//! The lookup join against the runtime: synchronous and asynchronous functions, inner and left
//! outer joins, ordered and unordered output (with lookups finishing out of order, and
//! watermarks checked against the records around them), the capacity, timeouts and FLIP-234
//! retries. The lookup functions are fakes over a formula standing in for a table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::lookup::{AsyncLookupFunction, LookupFunction};
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::{Watermark, WatermarkStrategy};
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::lookup::{
    AsyncLookupOptions, JoinType, LookupJoin, OutputOrder, RetryStrategy, RetryWhen, TimeoutAction,
    NUM_LOOKUP_RETRIES, NUM_LOOKUP_TIMEOUTS,
};
use weir_runtime::restart::RestartStrategy;
use weir_runtime::{DataStream, JobConfig, JobResult, JobStatus, StreamEnvironment};

/// What the sink saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Record(Joined),
    Watermark(i64),
}

/// A record and the row it was joined with.
type Joined = (u64, Option<u64>);

/// Collects records and watermarks in arrival order (a test sink, stateless).
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Seen>>>);

struct CollectWriter(Collect);

#[async_trait::async_trait]
impl SinkWriter<Joined> for CollectWriter {
    fn write(&mut self, element: Joined, _ctx: &WriteContext) -> Result<()> {
        self.0 .0.lock().unwrap().push(Seen::Record(element));
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
    fn write_watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.0 .0.lock().unwrap().push(Seen::Watermark(watermark.0));
        Ok(())
    }
}

impl Sink<Joined> for Collect {
    type Writer = CollectWriter;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<CollectWriter> {
        Ok(CollectWriter(self.clone()))
    }
}

impl Collect {
    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
    fn records(&self) -> Vec<Joined> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Record(r) => Some(r),
                Seen::Watermark(_) => None,
            })
            .collect()
    }
}

/// The fake table: key `k` has no rows when `k % 3 == 0`, one (`10k`) when 1, two (`10k`,
/// `10k + 1`) when 2.
fn rows_of(key: u64) -> Vec<u64> {
    match key % 3 {
        0 => vec![],
        1 => vec![key * 10],
        _ => vec![key * 10, key * 10 + 1],
    }
}

/// What the join must produce for `inputs`, in input order.
fn expected(inputs: impl IntoIterator<Item = u64>, join_type: JoinType) -> Vec<Joined> {
    let mut out = Vec::new();
    for n in inputs {
        let rows = rows_of(n);
        if rows.is_empty() && join_type == JoinType::LeftOuter {
            out.push((n, None));
        }
        out.extend(rows.into_iter().map(|r| (n, Some(r))));
    }
    out
}

/// A synchronous fake over [`rows_of`].
struct SyncTable;

impl LookupFunction<u64, u64> for SyncTable {
    fn lookup(&mut self, key: &u64) -> Result<Vec<u64>> {
        Ok(rows_of(*key))
    }
}

/// What the async fake saw.
#[derive(Default)]
struct Calls {
    running: AtomicUsize,
    peak: AtomicUsize,
    /// Keys in the order their lookups finished.
    finished: Mutex<Vec<u64>>,
    /// Start times of every attempt, by key.
    attempts: Mutex<HashMap<u64, Vec<Instant>>>,
}

type Behaviour = Arc<dyn Fn(u64, usize) -> Result<Vec<u64>> + Send + Sync>;

/// An asynchronous fake over [`rows_of`]: key `k` takes `delay(k)`; `behaviour(key, attempt)`
/// may replace the answer (attempts count from 1).
struct AsyncTable {
    calls: Arc<Calls>,
    delay: Arc<dyn Fn(u64) -> Duration + Send + Sync>,
    behaviour: Option<Behaviour>,
}

#[async_trait::async_trait]
impl AsyncLookupFunction<u64, u64> for AsyncTable {
    async fn lookup(&self, key: &u64) -> Result<Vec<u64>> {
        let attempt = {
            let mut attempts = self.calls.attempts.lock().unwrap();
            let list = attempts.entry(*key).or_default();
            list.push(Instant::now());
            list.len()
        };
        let now = self.calls.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.calls.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep((self.delay)(*key)).await;
        self.calls.running.fetch_sub(1, Ordering::SeqCst);
        self.calls.finished.lock().unwrap().push(*key);
        match &self.behaviour {
            Some(behaviour) => behaviour(*key, attempt),
            None => Ok(rows_of(*key)),
        }
    }
}

fn numbers(env: &StreamEnvironment, count: u64, per_second: Option<f64>) -> DataStream<u64> {
    let rate = per_second.map_or_else(RateLimiterStrategy::no_op, RateLimiterStrategy::per_second);
    let watermarks = WatermarkStrategy::<u64>::for_monotonous_timestamps()
        .with_timestamp_assigner(|n: &u64, _: Option<i64>| i64::try_from(*n).unwrap());
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(count), rate),
        watermarks,
        "numbers",
    )
    .uid("numbers")
}

fn config(name: &str) -> JobConfig {
    JobConfig::new(name)
        .parallelism(1)
        .watermark_interval(Duration::from_millis(5))
        .buffer_timeout(Duration::from_millis(5))
        .restart(RestartStrategy::None)
}

fn async_join(
    calls: &Arc<Calls>,
    delay: impl Fn(u64) -> Duration + Send + Sync + 'static,
    behaviour: Option<Behaviour>,
    options: AsyncLookupOptions,
) -> LookupJoin<u64, u64, u64, Joined> {
    let calls = Arc::clone(calls);
    let delay: Arc<dyn Fn(u64) -> Duration + Send + Sync> = Arc::new(delay);
    LookupJoin::asynchronous(
        |n: &u64| Some(*n),
        move || {
            Ok(Box::new(AsyncTable {
                calls: Arc::clone(&calls),
                delay: Arc::clone(&delay),
                behaviour: behaviour.clone(),
            }) as Box<dyn AsyncLookupFunction<u64, u64>>)
        },
        |n: &u64, row: Option<&u64>| (*n, row.copied()),
        U64Serializer,
        options,
    )
}

async fn run(env: StreamEnvironment) -> JobResult {
    tokio::time::timeout(Duration::from_secs(60), env.build().unwrap().execute())
        .await
        .expect("the job ends within a minute")
}

/// Every watermark comes after every record at or below it, and no record at or below it comes
/// after it: watermarks never overtake records, records never cross watermarks.
fn assert_watermarks_in_place(seen: &[Seen]) {
    let mut watermarks = 0;
    for (i, s) in seen.iter().enumerate() {
        if let Seen::Watermark(w) = s {
            if *w == i64::MAX {
                continue;
            }
            watermarks += 1;
            for later in &seen[i + 1..] {
                if let Seen::Record((n, _)) = later {
                    assert!(
                        i64::try_from(*n).unwrap() > *w,
                        "record {n} after watermark {w}"
                    );
                }
            }
        }
    }
    assert!(
        watermarks >= 3,
        "only {watermarks} watermarks reached the sink"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_inner_and_left_outer_joins() {
    for join_type in [JoinType::Inner, JoinType::LeftOuter] {
        let env = StreamEnvironment::new(config("sync-lookup"));
        let sink = Collect::default();
        numbers(&env, 300, None)
            .lookup_join(
                "table",
                LookupJoin::sync(
                    |n: &u64| Some(*n),
                    || Ok(Box::new(SyncTable) as Box<dyn LookupFunction<u64, u64>>),
                    |n: &u64, row: Option<&u64>| (*n, row.copied()),
                )
                .join_type(join_type),
            )
            .sink_to(sink.clone());
        let result = run(env).await;
        assert!(result.is_finished(), "{:?}", result.status);
        assert_eq!(sink.records(), expected(0..300, join_type), "{join_type:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_a_key_are_not_looked_up() {
    let calls = Arc::new(Calls::default());
    let env = StreamEnvironment::new(config("no-key"));
    let sink = Collect::default();
    let calls_in = Arc::clone(&calls);
    numbers(&env, 40, None)
        .lookup_join(
            "table",
            LookupJoin::asynchronous(
                // Odd numbers have no key (like a null key field).
                |n: &u64| (n % 2 == 0).then_some(*n),
                move || {
                    Ok(Box::new(AsyncTable {
                        calls: Arc::clone(&calls_in),
                        delay: Arc::new(|_| Duration::ZERO),
                        behaviour: None,
                    })
                        as Box<dyn AsyncLookupFunction<u64, u64>>)
                },
                |n: &u64, row: Option<&u64>| (*n, row.copied()),
                U64Serializer,
                AsyncLookupOptions::default(),
            )
            .join_type(JoinType::LeftOuter),
        )
        .sink_to(sink.clone());
    assert!(run(env).await.is_finished());
    let mut want = Vec::new();
    for n in 0..40 {
        if n % 2 == 0 {
            want.extend(expected([n], JoinType::LeftOuter));
        } else {
            want.push((n, None));
        }
    }
    assert_eq!(sink.records(), want);
    assert_eq!(calls.attempts.lock().unwrap().len(), 20);
}

/// Even keys take 4 ms, odd ones none: lookups finish out of order.
fn even_slow(key: u64) -> Duration {
    if key % 2 == 0 {
        Duration::from_millis(4)
    } else {
        Duration::ZERO
    }
}

fn inversions(keys: &[u64]) -> usize {
    keys.windows(2).filter(|w| w[0] > w[1]).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_output_keeps_arrival_order_when_lookups_finish_out_of_order() {
    for join_type in [JoinType::Inner, JoinType::LeftOuter] {
        let calls = Arc::new(Calls::default());
        let env = StreamEnvironment::new(config("ordered"));
        let sink = Collect::default();
        numbers(&env, 600, Some(6_000.0))
            .lookup_join(
                "table",
                async_join(
                    &calls,
                    even_slow,
                    None,
                    AsyncLookupOptions::default()
                        .capacity(16)
                        .order(OutputOrder::Ordered),
                )
                .join_type(join_type),
            )
            .sink_to(sink.clone());
        let result = run(env).await;
        assert!(result.is_finished(), "{:?}", result.status);
        let finished = calls.finished.lock().unwrap().clone();
        assert!(
            inversions(&finished) > 10,
            "lookups did not finish out of order"
        );
        assert_eq!(sink.records(), expected(0..600, join_type), "{join_type:?}");
        assert_watermarks_in_place(&sink.seen());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unordered_output_lets_records_overtake_but_never_across_a_watermark() {
    let calls = Arc::new(Calls::default());
    let env = StreamEnvironment::new(config("unordered"));
    let sink = Collect::default();
    numbers(&env, 600, Some(6_000.0))
        .lookup_join(
            "table",
            async_join(
                &calls,
                even_slow,
                None,
                AsyncLookupOptions::default()
                    .capacity(16)
                    .order(OutputOrder::Unordered),
            )
            .join_type(JoinType::LeftOuter),
        )
        .sink_to(sink.clone());
    let result = run(env).await;
    assert!(result.is_finished(), "{:?}", result.status);
    let records = sink.records();
    let keys: Vec<u64> = records.iter().map(|r| r.0).collect();
    assert!(
        inversions(&keys) > 10,
        "no record overtook another: {} inversions",
        inversions(&keys)
    );
    let mut sorted = records;
    sorted.sort_unstable();
    assert_eq!(sorted, expected(0..600, JoinType::LeftOuter));
    assert_watermarks_in_place(&sink.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capacity_bounds_lookups_in_flight() {
    for capacity in [1, 5] {
        let calls = Arc::new(Calls::default());
        let env = StreamEnvironment::new(config("capacity"));
        let sink = Collect::default();
        numbers(&env, 200, None)
            .lookup_join(
                "table",
                async_join(
                    &calls,
                    |_| Duration::from_millis(3),
                    None,
                    AsyncLookupOptions::default()
                        .capacity(capacity)
                        .order(OutputOrder::Unordered),
                ),
            )
            .sink_to(sink.clone());
        assert!(run(env).await.is_finished());
        let peak = calls.peak.load(Ordering::SeqCst);
        assert_eq!(peak, capacity, "peak of lookups in flight");
        assert_eq!(
            sink.records().len(),
            expected(0..200, JoinType::Inner).len()
        );
    }
}

/// Key 13 never answers in time.
fn thirteen_hangs(key: u64) -> Duration {
    if key == 13 {
        Duration::from_secs(30)
    } else {
        Duration::ZERO
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_fails_the_job_by_default() {
    let calls = Arc::new(Calls::default());
    let env = StreamEnvironment::new(config("timeout-fails"));
    numbers(&env, 50, None)
        .lookup_join(
            "table",
            async_join(
                &calls,
                thirteen_hangs,
                None,
                AsyncLookupOptions::default().timeout(Duration::from_millis(200)),
            ),
        )
        .sink_to(Collect::default());
    let started = Instant::now();
    let result = run(env).await;
    let JobStatus::Failed(error) = &result.status else {
        panic!("the job did not fail: {:?}", result.status);
    };
    assert!(error.to_string().contains("lookup timeout"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it waited for the lookup"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_taken_as_empty_joins_the_record_with_none() {
    let calls = Arc::new(Calls::default());
    let env = StreamEnvironment::new(config("timeout-empty"));
    let sink = Collect::default();
    numbers(&env, 50, None)
        .lookup_join(
            "table",
            async_join(
                &calls,
                thirteen_hangs,
                None,
                AsyncLookupOptions::default()
                    .timeout(Duration::from_millis(200))
                    .on_timeout(TimeoutAction::EmptyResult),
            )
            .join_type(JoinType::LeftOuter),
        )
        .sink_to(sink.clone());
    let result = run(env).await;
    assert!(result.is_finished(), "{:?}", result.status);
    let want: Vec<Joined> = (0..50)
        .flat_map(|n| {
            if n == 13 {
                vec![(13, None)]
            } else {
                expected([n], JoinType::LeftOuter)
            }
        })
        .collect();
    assert_eq!(sink.records(), want);
    assert_eq!(result.counter("table", NUM_LOOKUP_TIMEOUTS), 1);
}

/// Keys `4k + 1` fail at their first attempt; keys `4k + 2` answer empty at their first two.
fn flaky() -> Behaviour {
    Arc::new(|key, attempt| match (key % 4, attempt) {
        (1, 1) => Err(ConnectorError::retryable(
            format!("looking up {key}"),
            "connection reset (fake)",
        )),
        (2, 1 | 2) => Ok(Vec::new()),
        _ => Ok(rows_of(key)),
    })
}

fn retry(max_attempts: u32, when: RetryWhen) -> AsyncLookupOptions {
    AsyncLookupOptions::default().retry(RetryStrategy::FixedDelay {
        max_attempts: NonZeroU32::new(max_attempts).unwrap(),
        delay: Duration::from_millis(20),
        when,
    })
}

/// Joins 40 numbers, each through `key`, with the flaky table under `options` into a fresh
/// sink: the table's calls, the sink and the job's result.
async fn flaky_join(
    name: &str,
    key: fn(u64) -> u64,
    options: AsyncLookupOptions,
) -> (Arc<Calls>, Collect, JobResult) {
    let calls = Arc::new(Calls::default());
    let env = StreamEnvironment::new(config(name));
    let sink = Collect::default();
    numbers(&env, 40, None)
        .map(key)
        .lookup_join(
            "table",
            async_join(&calls, |_| Duration::ZERO, Some(flaky()), options),
        )
        .sink_to(sink.clone());
    let result = run(env).await;
    (calls, sink, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_of_empty_results_and_errors_recover_every_row() {
    let (calls, sink, result) =
        flaky_join("retry-both", |n| n, retry(3, RetryWhen::EmptyResultOrError)).await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(sink.records(), expected(0..40, JoinType::Inner));
    // Keys 4k+2 are tried three times; 4k+1 twice (an error, then rows); every key whose
    // rows are empty (k % 3 == 0) three times, as empty answers are retried too.
    let attempts = calls.attempts.lock().unwrap();
    let mut retries = 0;
    for key in 0..40_u64 {
        let times = &attempts[&key];
        let empty = rows_of(key).is_empty();
        let want = match key % 4 {
            2 => 3,
            1 if !empty => 2,
            _ if empty => 3,
            _ => 1,
        };
        assert_eq!(times.len(), want, "attempts of key {key}");
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(20),
                "retried too soon"
            );
        }
        retries += want - 1;
    }
    assert_eq!(result.counter("table", NUM_LOOKUP_RETRIES), retries as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_their_condition_and_their_attempt_limit() {
    // Only errors retried: keys 4k+2 stay empty (dropped by the inner join).
    let (_, sink, result) = flaky_join("retry-errors", |n| n, retry(3, RetryWhen::Error)).await;
    assert!(result.is_finished());
    assert_eq!(
        sink.records(),
        expected((0..40).filter(|k| k % 4 != 2), JoinType::Inner)
    );

    // Only empty results retried, two attempts: the first error fails the job.
    let (calls, _, result) =
        flaky_join("retry-empty", |n| n, retry(2, RetryWhen::EmptyResult)).await;
    let JobStatus::Failed(error) = &result.status else {
        panic!(
            "an unretried error did not fail the job: {:?}",
            result.status
        );
    };
    assert!(
        error.to_string().contains("connection reset (fake)"),
        "{error}"
    );
    assert_eq!(
        calls.attempts.lock().unwrap().get(&1).map(Vec::len),
        Some(1),
        "an error was retried"
    );

    // Empty results retried, but two attempts are one too few for keys 4k+2.
    let (calls, sink, result) = flaky_join(
        "retry-limit",
        |n| n * 4 + 2,
        retry(2, RetryWhen::EmptyResultOrError),
    )
    .await;
    assert!(result.is_finished());
    assert!(sink.records().is_empty(), "{:?}", sink.records());
    assert!(calls
        .attempts
        .lock()
        .unwrap()
        .values()
        .all(|a| a.len() == 2));
}
