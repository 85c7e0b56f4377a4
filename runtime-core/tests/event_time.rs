//! Event time: per-split watermarks, idleness, source- and split-level watermark alignment, and
//! the event-time window operator whose buffered state alignment keeps bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::speeds::SpeedSource;
use weir_connector_api::error::Result;
use weir_connector_api::metrics::MetricValue;
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::watermark::{Watermark, WatermarkStrategy};
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::job::UnalignedSplits;
use weir_runtime::{
    CheckpointConfig, JobConfig, JobResult, JobStatus, RestoreFrom, RuntimeError, StopMode,
    StreamEnvironment, WindowCount,
};

/// Collects records and the watermarks its writers see (a test sink, stateless).
struct Collect<T> {
    items: Arc<Mutex<Vec<T>>>,
    watermarks: Arc<Mutex<Vec<i64>>>,
}

impl<T> Default for Collect<T> {
    fn default() -> Self {
        Collect {
            items: Arc::default(),
            watermarks: Arc::default(),
        }
    }
}

impl<T> Clone for Collect<T> {
    fn clone(&self) -> Self {
        Collect {
            items: Arc::clone(&self.items),
            watermarks: Arc::clone(&self.watermarks),
        }
    }
}
struct CollectWriter<T>(Collect<T>);

#[async_trait::async_trait]
impl<T: Send + 'static> SinkWriter<T> for CollectWriter<T> {
    fn write(&mut self, element: T, _ctx: &WriteContext) -> Result<()> {
        self.0.items.lock().unwrap().push(element);
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
    fn write_watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.0.watermarks.lock().unwrap().push(watermark.0);
        Ok(())
    }
}
impl<T: Send + Sync + 'static> Sink<T> for Collect<T> {
    type Writer = CollectWriter<T>;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<CollectWriter<T>> {
        Ok(CollectWriter(self.clone()))
    }
}

fn gauge_max(result: &JobResult, uid: &str, name: &str) -> i64 {
    result
        .metrics
        .iter()
        .filter(|(k, _)| k.contains(&format!(".{uid}.")) && k.ends_with(&format!(".{name}")))
        .filter_map(|(_, v)| match v {
            MetricValue::Gauge(g) => Some(*g),
            _ => None,
        })
        .max()
        .unwrap_or(i64::MIN)
}

#[derive(Debug, Clone, Copy)]
struct Ev {
    ts: i64,
    key: u64,
}

/// How far (in event time) the fast side ran ahead of the slow side while the slow side was
/// still going: the largest `fast max timestamp - slow max timestamp` seen by the fast side.
#[derive(Default)]
struct Drift {
    fast: AtomicI64,
    slow: AtomicI64,
    slow_done: AtomicBool,
    max: AtomicI64,
}

impl Drift {
    fn fast_saw(&self, ts: i64) {
        self.fast.fetch_max(ts, Ordering::SeqCst);
        let slow = self.slow.load(Ordering::SeqCst);
        if slow > 0 && !self.slow_done.load(Ordering::SeqCst) {
            self.max.fetch_max(ts - slow, Ordering::SeqCst);
        }
    }
    fn slow_saw(&self, ts: i64, last: i64) {
        self.slow.fetch_max(ts, Ordering::SeqCst);
        if ts >= last {
            self.slow_done.store(true, Ordering::SeqCst);
        }
    }
}

/// These tests compare wall-clock behaviour (who runs ahead, who finishes first): run them one
/// at a time so they do not compete for the two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MAX_DRIFT_MS: i64 = 1_000;
const UPDATE_MS: u64 = 20;
const FAST_RATE: f64 = 10_000.0; // records/s, 1 ms of event time each
const FAST_N: u64 = 12_000;
const SLOW_N: u64 = 1_500;

fn strategy(aligned: bool, idleness: Option<Duration>) -> WatermarkStrategy<Ev> {
    let mut s = WatermarkStrategy::<Ev>::for_monotonous_timestamps()
        .with_timestamp_assigner(|e: &Ev, _: Option<i64>| e.ts);
    if let Some(i) = idleness {
        s = s.with_idleness(i);
    }
    if aligned {
        s = s.with_watermark_alignment(
            "fast-and-slow",
            Duration::from_millis(MAX_DRIFT_MS as u64),
            Duration::from_millis(UPDATE_MS),
        );
    }
    s
}

fn config(name: &str) -> JobConfig {
    JobConfig {
        watermark_interval: Duration::from_millis(5),
        batch_size: 64,
        ..JobConfig::new(name).parallelism(1)
    }
}

/// What the live snapshots of a job showed of watermark alignment, per task: the most time its
/// subtasks were held back, and the most splits paused at once.
type AlignmentSeen = BTreeMap<String, (u64, u64)>;

/// Runs the job to its end (30 s at most) while reading its live snapshot, as the dashboard
/// does.
async fn run_watching(env: StreamEnvironment) -> (JobResult, AlignmentSeen) {
    let handle = env.build().unwrap().start();
    let mut seen = AlignmentSeen::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !handle.is_finished() {
        assert!(std::time::Instant::now() < deadline, "the job did not end");
        for s in handle.snapshot().subtasks {
            let entry = seen.entry(s.task).or_default();
            entry.0 = entry.0.max(s.alignment_paused_ms);
            entry.1 = entry.1.max(s.paused_splits);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (handle.wait().await, seen)
}

/// The most of `seen` over the tasks whose id contains `name`.
fn seen_for(seen: &AlignmentSeen, name: &str) -> (u64, u64) {
    seen.iter()
        .filter(|(task, _)| task.contains(name))
        .fold((0, 0), |a, (_, v)| (a.0.max(v.0), a.1.max(v.1)))
}

/// A fast and a slow datagen source in one alignment group, unioned into a keyed window count.
async fn two_sources(aligned: bool) -> (i64, i64, u64, u64) {
    let drift = Arc::new(Drift::default());
    let out = Collect::<WindowCount>::default();
    let env = StreamEnvironment::new(config(if aligned { "aligned" } else { "unaligned" }));
    let (d1, d2) = (Arc::clone(&drift), Arc::clone(&drift));
    let fast = env
        .from_source(
            DataGeneratorSource::new(
                |n| Ev {
                    ts: n as i64,
                    key: n % 4,
                },
                Some(FAST_N),
                RateLimiterStrategy::per_second(FAST_RATE),
            )
            .with_batch_size(16),
            strategy(aligned, None),
            "fast",
        )
        .uid("fast")
        .map(move |e: Ev| {
            d1.fast_saw(e.ts);
            e
        });
    let slow = env
        .from_source(
            DataGeneratorSource::new(
                |n| Ev {
                    ts: n as i64,
                    key: n % 4,
                },
                Some(SLOW_N),
                RateLimiterStrategy::per_second(1_000.0),
            )
            .with_batch_size(16),
            strategy(aligned, None),
            "slow",
        )
        .uid("slow")
        .map(move |e: Ev| {
            d2.slow_saw(e.ts, SLOW_N as i64 - 1);
            e
        });
    fast.union(slow)
        .key_by(|e| e.key)
        .window_count("windows", Duration::from_millis(100), |e| e.key, |e| e.ts)
        .sink_to(out.clone());
    let (result, seen) = run_watching(env).await;
    assert!(result.is_finished(), "{:?}", result.status);
    let counted: u64 = out.items.lock().unwrap().iter().map(|w| w.count).sum();
    assert_eq!(
        counted,
        FAST_N + SLOW_N,
        "every record is in exactly one window"
    );
    let peak = gauge_max(&result, "windows", "windowStateEntriesPeak");
    // Event-time metrics of the sources (event times here start at the epoch, so lags are big).
    assert_eq!(
        gauge_max(&result, "fast", "currentOutputWatermark"),
        i64::MAX,
        "MAX at end of input"
    );
    assert!(gauge_max(&result, "slow", "watermarkLag") > 0);
    assert!(gauge_max(&result, "slow", "currentEmitEventTimeLag") > 0);
    assert!(gauge_max(&result, "fast", "sourceIdleTime") >= 0);
    (
        drift.max.load(Ordering::SeqCst),
        peak,
        result.counter("fast", "watermarkAlignmentPausedTimeMs"),
        seen_for(&seen, "fast").0,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_of_different_speeds_stay_within_the_drift_and_bound_window_state() {
    let _serial = SERIAL.lock().await;
    common::init_logs();
    let (aligned_drift, aligned_peak, paused_ms, shown_ms) = two_sources(true).await;
    let (free_drift, free_peak, _, free_shown_ms) = two_sources(false).await;
    // The live snapshot (the dashboard's "alignment pauses") shows the time held back.
    assert!(shown_ms > 0, "the snapshot shows the fast source held back");
    assert_eq!(free_shown_ms, 0, "nothing is held back without alignment");
    // Progress of the fast source within one update interval, plus the slack of one batch and
    // one watermark interval on each side.
    let interval_progress = (FAST_RATE * UPDATE_MS as f64 / 1000.0) as i64;
    let bound = MAX_DRIFT_MS + interval_progress + 150;
    eprintln!(
        "aligned: drift {aligned_drift} ms (bound {bound}), window state peak {aligned_peak}, fast paused {paused_ms} ms; \
         unaligned: drift {free_drift} ms, window state peak {free_peak}"
    );
    assert!(
        aligned_drift <= bound,
        "aligned drift {aligned_drift} ms exceeds {bound} ms"
    );
    assert!(paused_ms > 0, "the fast source was held back");
    assert!(
        free_drift > 3 * bound,
        "without alignment the fast source runs ahead: {free_drift}"
    );
    assert!(
        aligned_peak * 3 < free_peak,
        "alignment keeps the window state bounded: {aligned_peak} vs {free_peak} without"
    );
}

/// One reader with a fast and a slow split: only the fast split is paused.
async fn split_speeds(
    aligned: bool,
    pausable: bool,
    unaligned: UnalignedSplits,
) -> (JobResult, i64, u64) {
    let drift = Arc::new(Drift::default());
    let d = Arc::clone(&drift);
    let env = StreamEnvironment::new(JobConfig {
        unaligned_source_splits: unaligned,
        ..config("splits")
    });
    let mut strategy = WatermarkStrategy::<(u64, u64)>::for_monotonous_timestamps();
    if aligned {
        strategy = strategy.with_watermark_alignment(
            "splits",
            Duration::from_millis(200),
            Duration::from_millis(10),
        );
    }
    env.from_source(
        // split 0: 3 000 records at 1 per ms; split 1: 30 000 at 10 per ms.
        SpeedSource {
            splits: vec![(3_000, 1), (30_000, 10)],
            pausable,
        },
        strategy,
        "speeds",
    )
    .uid("speeds")
    .map(move |(split, n): (u64, u64)| {
        if split == 1 {
            d.fast_saw(n as i64);
        } else {
            d.slow_saw(n as i64, 2_999);
        }
        n
    })
    .sink_to(Collect::<u64>::default());
    let (result, seen) = run_watching(env).await;
    let max = drift.max.load(Ordering::SeqCst);
    (result, max, seen_for(&seen, "speeds").1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_level_alignment_pauses_only_the_split_that_runs_ahead() {
    let _serial = SERIAL.lock().await;
    let (aligned, aligned_drift, paused_splits) =
        split_speeds(true, true, UnalignedSplits::Fail).await;
    assert!(aligned.is_finished(), "{:?}", aligned.status);
    // The live snapshot shows the paused split (the dashboard's "alignment pauses").
    assert_eq!(paused_splits, 1, "only the fast split is ever paused");
    let (free, free_drift, free_paused) = split_speeds(false, true, UnalignedSplits::Fail).await;
    assert_eq!(free_paused, 0);
    assert!(free.is_finished(), "{:?}", free.status);
    eprintln!("split-level: aligned drift {aligned_drift} ms, unaligned {free_drift} ms");
    // 200 ms drift + 10 ms of fast progress (100 ms) + fetch and watermark slack.
    assert!(aligned_drift <= 450, "aligned split drift {aligned_drift}");
    assert!(free_drift > 2_000, "unaligned split drift {free_drift}");
    // The slow split was never paused: the reader as a whole was not stopped for long.
    assert!(aligned.counter("speeds", "numRecordsOut") == 33_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alignment_without_split_pausing_fails_clearly_unless_task_level_is_allowed() {
    let _serial = SERIAL.lock().await;
    let (refused, _, _) = split_speeds(true, false, UnalignedSplits::Fail).await;
    match refused.status {
        JobStatus::Failed(RuntimeError::InvalidJob(problems)) => {
            let text = problems.join(" ");
            assert!(
                text.contains("source speeds") && text.contains("allow-unaligned-source-splits"),
                "{text}"
            );
        }
        other => panic!("expected a clear refusal, got {other:?}"),
    }
    assert_eq!(refused.attempts, 1, "an invalid job is not restarted");
    let (task_level, _, _) = split_speeds(true, false, UnalignedSplits::TaskLevel).await;
    assert!(task_level.is_finished(), "{:?}", task_level.status);
    assert_eq!(task_level.counter("speeds", "numRecordsOut"), 33_000);
}

/// A steady source aligned with a bursty one that is idle between bursts.
async fn steady_and_bursty(idleness: Option<Duration>) -> (JobResult, Duration, u64) {
    let started = std::time::Instant::now();
    let steady_done = Arc::new(Mutex::new(None));
    let done = Arc::clone(&steady_done);
    let out = Collect::<WindowCount>::default();
    let env = StreamEnvironment::new(JobConfig {
        checkpointing: Some(CheckpointConfig::every(Duration::from_millis(100))),
        ..config("bursty")
    });
    let steady = env
        .from_source(
            DataGeneratorSource::new(
                |n| Ev {
                    ts: n as i64,
                    key: n % 4,
                },
                Some(3_000),
                RateLimiterStrategy::per_second(6_000.0),
            )
            .with_batch_size(16),
            strategy(true, None),
            "steady",
        )
        .uid("steady")
        .map(move |e: Ev| {
            if e.ts == 2_999 {
                *done.lock().unwrap() = Some(started.elapsed());
            }
            e
        });
    // 10 records (100 ms of event time) after each completed checkpoint, silent in between.
    let bursty = env
        .from_source(
            DataGeneratorSource::new(
                |n| Ev {
                    ts: n as i64 * 10,
                    key: n % 4,
                },
                Some(300),
                RateLimiterStrategy::per_checkpoint(10),
            )
            .with_batch_size(16),
            strategy(true, idleness),
            "bursty",
        )
        .uid("bursty");
    steady
        .union(bursty)
        .key_by(|e| e.key)
        .window_count("windows", Duration::from_millis(100), |e| e.key, |e| e.ts)
        .sink_to(out.clone());
    let result = tokio::time::timeout(Duration::from_secs(60), env.build().unwrap().execute())
        .await
        .unwrap();
    let counted: u64 = out.items.lock().unwrap().iter().map(|w| w.count).sum();
    // Data that comes back after an idle phase may be behind the watermark: it is late and
    // dropped (and counted), as in Flink. Nothing else may be lost.
    assert_eq!(
        counted + result.counter("windows", "numLateRecordsDropped"),
        3_300
    );
    let steady_finished = steady_done.lock().unwrap().unwrap_or(Duration::MAX);
    let bursty = result.counter("bursty", "numRecordsOut");
    (result, steady_finished, bursty)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_aligned_source_neither_blocks_the_group_nor_stays_stuck() {
    let _serial = SERIAL.lock().await;
    let (with_idleness, steady_free, bursty) =
        steady_and_bursty(Some(Duration::from_millis(30))).await;
    assert!(with_idleness.is_finished(), "{:?}", with_idleness.status);
    assert_eq!(
        bursty, 300,
        "the bursty source resumed after every idle phase (FLINK-32496)"
    );
    let (without, steady_held, bursty) = steady_and_bursty(None).await;
    assert!(without.is_finished(), "{:?}", without.status);
    assert_eq!(bursty, 300);
    eprintln!("steady source done after {steady_free:?} with idleness, {steady_held:?} without");
    // Without idleness the silent source holds the steady one to its pace; with idleness it
    // does not.
    assert!(
        steady_free.as_secs_f64() < 0.5 * steady_held.as_secs_f64(),
        "{steady_free:?} vs {steady_held:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_state_follows_its_keys_across_a_rescale() {
    use common::{FakeTransactionStore, TwoPhaseSink};
    let _serial = SERIAL.lock().await;
    let store = Arc::new(FakeTransactionStore::default());
    let dir = tempfile::tempdir().unwrap();
    let make = |windows: usize, restore: RestoreFrom| {
        let env = StreamEnvironment::new(
            config("rescale-windows")
                .checkpointing(CheckpointConfig::every(Duration::from_millis(20)))
                .restore(restore),
        );
        env.from_source(
            DataGeneratorSource::new(
                |n| Ev {
                    ts: n as i64,
                    key: n % 10,
                },
                Some(20_000),
                RateLimiterStrategy::per_second(40_000.0),
            ),
            strategy(false, None),
            "events",
        )
        .uid("events")
        .key_by(|e| e.key)
        .parallelism(windows)
        .window_count("windows", Duration::from_millis(100), |e| e.key, |e| e.ts)
        // Encoded so the exactly-once test sink can carry it: key, window index, count.
        .map(|w: WindowCount| (w.key << 40) | ((w.window_start as u64 / 100) << 16) | w.count)
        .sink_to(TwoPhaseSink {
            store: Arc::clone(&store),
        });
        env.build().unwrap()
    };
    let first = make(2, RestoreFrom::Nothing).start();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let savepoint = first
        .stop_with_savepoint(dir.path().join("sp"), StopMode::NoDrain)
        .await
        .unwrap();
    assert!(matches!(
        first.wait().await.status,
        JobStatus::Stopped { .. }
    ));
    let second = make(3, RestoreFrom::Savepoint(savepoint.to_path()))
        .execute()
        .await;
    assert!(second.is_finished(), "{:?}", second.status);
    let mut windows: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for encoded in store.records() {
        let (key, window, count) = (encoded >> 40, (encoded >> 16) & 0xFF_FFFF, encoded & 0xFFFF);
        assert!(
            windows.insert((key, window), count).is_none(),
            "window ({key}, {window}) emitted twice"
        );
    }
    assert_eq!(
        windows.len(),
        10 * 200,
        "every key has 200 windows of 100 ms"
    );
    assert!(
        windows.values().all(|c| *c == 10),
        "each window counted its 10 records once"
    );
}

/// A record and the event time its writer was given.
type Stamped = (u64, Option<i64>);

/// Keeps every record with the event time its writer was given.
#[derive(Clone, Default)]
struct Stamps(Arc<Mutex<Vec<Stamped>>>);

struct StampsWriter(Stamps);

#[async_trait::async_trait]
impl SinkWriter<u64> for StampsWriter {
    fn write(&mut self, element: u64, ctx: &WriteContext) -> Result<()> {
        self.0 .0.lock().unwrap().push((element, ctx.timestamp));
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl Sink<u64> for Stamps {
    type Writer = StampsWriter;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<StampsWriter> {
        Ok(StampsWriter(self.clone()))
    }
}

/// `n` → `10 n` and `10 n + 1`, each a millisecond after `n`'s own time (`100 n`).
async fn stamped(event_time: bool) -> Vec<Stamped> {
    let env = StreamEnvironment::new(config(if event_time { "stamped" } else { "untimed" }));
    let strategy = if event_time {
        WatermarkStrategy::<u64>::for_monotonous_timestamps()
            .with_timestamp_assigner(|n: &u64, _: Option<i64>| *n as i64 * 100)
    } else {
        WatermarkStrategy::no_watermarks()
    };
    let sink = Stamps::default();
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(500), RateLimiterStrategy::no_op()),
        strategy,
        "numbers",
    )
    .flat_map_timestamped(|n: u64| {
        let at = n as i64 * 100 + 1;
        [(10 * n, at), (10 * n + 1, at)]
    })
    .sink_to(sink.clone());
    let result = env.build().unwrap().start().wait().await;
    assert!(result.is_finished(), "{:?}", result.status);
    let mut seen = sink.0.lock().unwrap().clone();
    seen.sort_unstable();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamped_flat_map_gives_each_output_record_its_own_time() {
    let seen = stamped(true).await;
    assert_eq!(seen.len(), 1_000);
    for (record, ts) in &seen {
        assert_eq!(*ts, Some((record / 10) as i64 * 100 + 1), "record {record}");
    }
    // Without event time the stream carries no timestamps, as for any other transform.
    let untimed = stamped(false).await;
    assert_eq!(untimed.len(), 1_000);
    assert!(
        untimed.iter().all(|(_, ts)| ts.is_none()),
        "{:?}",
        &untimed[..3]
    );
}

/// `try_map_batches` over `0..500` with times `100 n`: each batch becomes `max * 10_000 +
/// len`, or the job fails on the batch holding `fail_at`.
async fn batches(fail_at: Option<u64>) -> (JobResult, Vec<Stamped>) {
    let env = StreamEnvironment::new(config("batches"));
    let strategy = WatermarkStrategy::<u64>::for_monotonous_timestamps()
        .with_timestamp_assigner(|n: &u64, _: Option<i64>| *n as i64 * 100);
    let sink = Stamps::default();
    // Polls of 5 numbers; the source task hands on its buffer once it holds 7 or more.
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(500), RateLimiterStrategy::no_op()).with_batch_size(5),
        strategy,
        "numbers",
    )
    .source_batch_size(7)
    .try_map_batches("pack", move |batch: Vec<u64>| {
        if fail_at.is_some_and(|n| batch.contains(&n)) {
            return Err(weir_connector_api::ConnectorError::fatal(
                "cannot pack",
                format!("{} numbers", batch.len()),
            ));
        }
        let max = batch.iter().copied().max().unwrap_or(0);
        Ok(vec![max * 10_000 + batch.len() as u64])
    })
    .sink_to(sink.clone());
    let result = env.build().unwrap().start().wait().await;
    let mut seen = sink.0.lock().unwrap().clone();
    seen.sort_unstable();
    (result, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_map_to_records_with_their_latest_time_or_fail_the_job() {
    let (result, seen) = batches(None).await;
    assert!(result.is_finished(), "{:?}", result.status);
    // The batches are consecutive runs of the numbers: each one's max is the previous max plus
    // its length, and together they hold every number once.
    let mut end = 0;
    for (packed, ts) in &seen {
        let (max, len) = (packed / 10_000, packed % 10_000);
        assert!(len >= 1);
        assert_eq!(max + 1, end + len, "batch {max}/{len} after {end}");
        end = max + 1;
        // Its time is its latest record's.
        assert_eq!(*ts, Some(max as i64 * 100));
    }
    assert_eq!(end, 500);
    // Batches of two polls (10 numbers), or fewer at the end of the input.
    assert!(seen.len() >= 50, "{seen:?}");
    assert!(seen.iter().all(|(p, _)| p % 10_000 <= 10), "{seen:?}");

    let (failed, _) = batches(Some(250)).await;
    match &failed.status {
        JobStatus::Failed(e) => {
            let message = e.to_string();
            assert!(
                message.contains("pack") && message.contains("cannot pack"),
                "{message}"
            );
        }
        other => panic!("the job should fail: {other:?}"),
    }
}
