//! `FullCachingLookupFunction`: the table loaded through a bounded scan source (datagen, run
//! to its end by `read_bounded`), reloads on each trigger, a failed reload keeping the old
//! table, the metrics; and `PartialCachingAsyncLookupFunction`.
//!
//! Reloads run on the real clock; the tests wait for them (polling, with a generous limit) and
//! check lower bounds on their timing only: the exact schedules are unit-tested in
//! `reload.rs`.

// Test helpers may fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::lookup::{AsyncLookupFunction, LookupContext, LookupFunction};
use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup, MetricValue};
use weir_connector_api::source::{Boundedness, SourceReaderContext};
use weir_connector_api::source::{EnumeratorContextOf, EnumeratorState, Source};
use weir_connector_api::state::VersionedSerializer;
use weir_connector_base::lookup::{
    read_bounded, DefaultLookupCache, FullCachingLookupFunction, LookupCache,
    PartialCachingAsyncLookupFunction, ReloadTrigger, TimeOfDay, HIT_COUNT, LATEST_LOAD_TIME,
    LOAD_COUNT, MISS_COUNT, NUM_CACHED_BYTES, NUM_CACHED_RECORDS, NUM_LOAD_FAILURES,
};
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};

fn value(group: &InMemoryMetricGroup, name: &str) -> i64 {
    match group.value(&format!("lookup.{name}")) {
        Some(MetricValue::Counter(n)) => i64::try_from(n).unwrap(),
        Some(MetricValue::Gauge(n)) => n,
        other => panic!("no metric {name}: {other:?}"),
    }
}

struct Ctx(InMemoryMetricGroup);

impl LookupContext for Ctx {
    fn subtask_index(&self) -> usize {
        0
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::new(self.0.clone())
    }
}

/// A row of the table: key, version of the table it was read in, and its number.
type TableRow = (u64, u64, u64);

/// What the fake table knows: its current version, whether scans fail, and when each scan
/// produced its first and last row.
#[derive(Default)]
struct TableState {
    version: AtomicU64,
    failing: AtomicBool,
    scans: Mutex<Vec<(Instant, Instant)>>,
}

impl TableState {
    fn scans(&self) -> Vec<(Instant, Instant)> {
        self.scans.lock().unwrap().clone()
    }
}

/// A bounded scan source over a fake table of `rows` rows, key `n % keys`: datagen with a
/// generator reading the table's version, wrapped so that a scan fails at its start while
/// `failing` is set (a table server that is down).
struct FakeTable {
    inner: DataGeneratorSource<TableRow>,
    state: Arc<TableState>,
}

fn fake_table(rows: u64, keys: u64, rate: RateLimiterStrategy) -> (FakeTable, Arc<TableState>) {
    let state = Arc::new(TableState::default());
    let generator_state = Arc::clone(&state);
    let inner = DataGeneratorSource::new(
        move |n| {
            let now = Instant::now();
            let mut scans = generator_state.scans.lock().unwrap();
            if n == 0 {
                scans.push((now, now));
            } else if let Some(last) = scans.last_mut() {
                last.1 = now;
            }
            (n % keys, generator_state.version.load(Ordering::SeqCst), n)
        },
        Some(rows),
        rate,
    );
    (
        FakeTable {
            inner,
            state: Arc::clone(&state),
        },
        state,
    )
}

impl Source for FakeTable {
    type Output = TableRow;
    type Split = <DataGeneratorSource<TableRow> as Source>::Split;
    type Reader = <DataGeneratorSource<TableRow> as Source>::Reader;
    type Enumerator = <DataGeneratorSource<TableRow> as Source>::Enumerator;

    fn boundedness(&self) -> Boundedness {
        self.inner.boundedness()
    }
    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<Self::Reader> {
        self.inner.create_reader(ctx)
    }
    fn create_enumerator(&self, ctx: EnumeratorContextOf<Self>) -> Result<Self::Enumerator> {
        if self.state.failing.load(Ordering::SeqCst) {
            return Err(ConnectorError::retryable(
                "listing the table",
                "connection refused (the fake table is down)",
            ));
        }
        self.inner.create_enumerator(ctx)
    }
    fn restore_enumerator(
        &self,
        ctx: EnumeratorContextOf<Self>,
        state: EnumeratorState<Self>,
    ) -> Result<Self::Enumerator> {
        self.inner.restore_enumerator(ctx, state)
    }
    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<Self::Split>> {
        self.inner.split_serializer()
    }
    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<EnumeratorState<Self>>> {
        self.inner.enumerator_state_serializer()
    }
}

/// Waits (up to 20 s) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "waited 20 s for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn versions(function: &FullCachingLookupFunction<u64, TableRow>, key: u64) -> Vec<u64> {
    let mut v: Vec<u64> = function.lookup_shared(&key).iter().map(|r| r.1).collect();
    v.dedup();
    v
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn the_table_is_loaded_through_the_scan_and_answers_every_key() {
    let (table, _state) = fake_table(1_000, 100, RateLimiterStrategy::no_op());
    let mut function = FullCachingLookupFunction::builder(
        table,
        |row: &TableRow| row.0,
        ReloadTrigger::FixedDelay(HOUR),
    )
    .readers(NonZeroUsize::new(3).unwrap())
    .size_of(|_key, rows| 8 + 24 * rows.len() as u64)
    .build()
    .unwrap();
    let group = InMemoryMetricGroup::new("lookup");
    LookupFunction::open(&mut function, &Ctx(group.clone())).unwrap();
    for key in 0..100 {
        let mut numbers: Vec<u64> = LookupFunction::lookup(&mut function, &key)
            .unwrap()
            .iter()
            .map(|r| r.2)
            .collect();
        numbers.sort_unstable();
        let expected: Vec<u64> = (0..10).map(|i| key + 100 * i).collect();
        assert_eq!(numbers, expected, "key {key}");
    }
    assert!(LookupFunction::lookup(&mut function, &100)
        .unwrap()
        .is_empty());
    assert_eq!(value(&group, LOAD_COUNT), 1);
    assert_eq!(value(&group, NUM_LOAD_FAILURES), 0);
    assert_eq!(value(&group, NUM_CACHED_RECORDS), 100);
    assert_eq!(value(&group, NUM_CACHED_BYTES), 100 * (8 + 24 * 10));
    assert_eq!(value(&group, HIT_COUNT), 100);
    assert_eq!(value(&group, MISS_COUNT), 1);
    assert!(value(&group, LATEST_LOAD_TIME) >= 0);
    assert_eq!(function.cached_keys(), 100);
}

#[test]
fn fixed_delay_reloads_start_the_delay_after_the_previous_load_ended() {
    // 200 rows at 2 000 rows/s: each load takes about 100 ms.
    let (table, state) = fake_table(200, 10, RateLimiterStrategy::per_second(2_000.0));
    let delay = Duration::from_millis(300);
    let mut function = FullCachingLookupFunction::builder(
        table,
        |row: &TableRow| row.0,
        ReloadTrigger::FixedDelay(delay),
    )
    .build()
    .unwrap();
    LookupFunction::open(&mut function, &Ctx(InMemoryMetricGroup::new("lookup"))).unwrap();
    assert_eq!(versions(&function, 3), vec![0]);
    state.version.store(1, Ordering::SeqCst);
    wait_until("three loads", || function.loads() >= 3);
    assert_eq!(
        versions(&function, 3),
        vec![1],
        "a reload shows the new rows"
    );
    let scans = state.scans();
    for pair in scans.windows(2) {
        let gap = pair[1].0.duration_since(pair[0].1);
        assert!(
            gap >= delay,
            "a load started {gap:?} after the previous one's last row"
        );
    }
}

#[test]
fn fixed_rate_reloads_start_on_a_grid() {
    // Loads of about 100 ms every 250 ms.
    let (table, state) = fake_table(200, 10, RateLimiterStrategy::per_second(2_000.0));
    let period = Duration::from_millis(250);
    let mut function = FullCachingLookupFunction::builder(
        table,
        |row: &TableRow| row.0,
        ReloadTrigger::FixedRate(period),
    )
    .build()
    .unwrap();
    LookupFunction::open(&mut function, &Ctx(InMemoryMetricGroup::new("lookup"))).unwrap();
    wait_until("four loads", || function.loads() >= 4);
    let scans = state.scans();
    // The first row of load k comes no earlier than k periods after the first load started
    // (minus the first load's own start-up before its first row).
    let slack = Duration::from_millis(20);
    for (k, scan) in scans.iter().enumerate().skip(1) {
        let since_first = scan.0.duration_since(scans[0].0);
        assert!(
            since_first + slack >= period * u32::try_from(k).unwrap(),
            "load {k} started {since_first:?} after the first"
        );
    }
}

#[test]
fn a_time_of_day_reload_happens_when_the_wall_clock_gets_there() {
    let (table, state) = fake_table(10, 10, RateLimiterStrategy::no_op());
    // Two seconds from now, in UTC, to the second.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let target_s = (now_ms / 1000 + 3) % 86_400;
    let text = format!(
        "{:02}:{:02}:{:02}",
        target_s / 3600,
        target_s / 60 % 60,
        target_s % 60
    );
    let at = TimeOfDay::parse(&text).unwrap();
    let mut function = FullCachingLookupFunction::builder(
        table,
        |row: &TableRow| row.0,
        ReloadTrigger::TimeOfDay(at),
    )
    .build()
    .unwrap();
    LookupFunction::open(&mut function, &Ctx(InMemoryMetricGroup::new("lookup"))).unwrap();
    let opened = Instant::now();
    state.version.store(7, Ordering::SeqCst);
    wait_until("the timed reload", || function.loads() >= 2);
    let reloaded_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(
        reloaded_ms / 1000 % 86_400 >= target_s || target_s < 5,
        "reloaded at {reloaded_ms} ms, before {text}"
    );
    assert!(opened.elapsed() >= Duration::from_millis(500));
    assert_eq!(versions(&function, 1), vec![7]);
    // The next one is a day away.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(function.loads(), 2);
}

#[test]
fn a_failed_reload_keeps_the_old_table_and_counts_the_failure() {
    let (table, state) = fake_table(100, 10, RateLimiterStrategy::no_op());
    let mut function = FullCachingLookupFunction::builder(
        table,
        |row: &TableRow| row.0,
        ReloadTrigger::FixedDelay(Duration::from_millis(50)),
    )
    .build()
    .unwrap();
    let group = InMemoryMetricGroup::new("lookup");
    LookupFunction::open(&mut function, &Ctx(group.clone())).unwrap();
    state.failing.store(true, Ordering::SeqCst);
    state.version.store(1, Ordering::SeqCst);
    let loads_before = function.loads();
    wait_until("two failed reloads", || function.load_failures() >= 2);
    assert_eq!(versions(&function, 4), vec![0], "the old table answers");
    assert_eq!(LookupFunction::lookup(&mut function, &4).unwrap().len(), 10);
    assert!(value(&group, NUM_LOAD_FAILURES) >= 2);
    assert_eq!(
        u64::try_from(value(&group, LOAD_COUNT)).unwrap(),
        function.loads()
    );
    assert!(function.loads() <= loads_before + 1);
    state.failing.store(false, Ordering::SeqCst);
    wait_until("a reload after the table is back", || {
        versions(&function, 4) == vec![1]
    });
    assert_eq!(value(&group, NUM_CACHED_RECORDS), 10);
}

/// A full cache, reloaded hourly, of a fake table of `rows` rows over `keys` keys that fails
/// until its state says otherwise.
fn failing_hourly(
    rows: u64,
    keys: u64,
) -> (FullCachingLookupFunction<u64, TableRow>, Arc<TableState>) {
    let (table, state) = fake_table(rows, keys, RateLimiterStrategy::no_op());
    state.failing.store(true, Ordering::SeqCst);
    let function = FullCachingLookupFunction::builder(
        table,
        |row: &TableRow| row.0,
        ReloadTrigger::FixedDelay(HOUR),
    )
    .build()
    .unwrap();
    (function, state)
}

#[test]
fn a_failed_first_load_fails_open_and_the_next_open_loads_again() {
    let (mut function, state) = failing_hourly(20, 5);
    let ctx = Ctx(InMemoryMetricGroup::new("lookup"));
    let error = LookupFunction::open(&mut function, &ctx).unwrap_err();
    assert!(error.to_string().contains("fake table is down"), "{error}");
    assert_eq!(function.load_failures(), 1);
    assert!(
        LookupFunction::lookup(&mut function, &1)
            .unwrap()
            .is_empty(),
        "no table yet"
    );
    state.failing.store(false, Ordering::SeqCst);
    LookupFunction::open(&mut function, &ctx).unwrap();
    assert_eq!(LookupFunction::lookup(&mut function, &1).unwrap().len(), 4);
}

/// The loader of a failed first load ends on its own thread; an `open` right after must not
/// be failed by that thread's end (it once was, under load: "the loader stopped during the
/// first load").
#[test]
fn an_open_right_after_a_failed_first_load_is_not_failed_by_the_old_loader() {
    for round in 0..200 {
        let (mut function, state) = failing_hourly(4, 2);
        let ctx = Ctx(InMemoryMetricGroup::new("lookup"));
        assert!(LookupFunction::open(&mut function, &ctx).is_err());
        state.failing.store(false, Ordering::SeqCst);
        if let Err(error) = LookupFunction::open(&mut function, &ctx) {
            panic!("round {round}: {error}");
        }
    }
}

#[test]
fn the_loader_stops_when_the_last_clone_is_dropped() {
    let (table, state) = fake_table(10, 10, RateLimiterStrategy::no_op());
    let mut function = FullCachingLookupFunction::builder(
        table,
        |row: &TableRow| row.0,
        ReloadTrigger::FixedDelay(Duration::from_millis(30)),
    )
    .build()
    .unwrap();
    LookupFunction::open(&mut function, &Ctx(InMemoryMetricGroup::new("lookup"))).unwrap();
    let clone = function.clone();
    drop(function);
    wait_until("reloads through the remaining clone", || clone.loads() >= 3);
    drop(clone);
    std::thread::sleep(Duration::from_millis(100));
    let scans = state.scans().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        state.scans().len(),
        scans,
        "scans went on after the last drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_lookups_share_one_table() {
    let (table, _state) = fake_table(50, 25, RateLimiterStrategy::no_op());
    let mut first = FullCachingLookupFunction::builder(
        table,
        |row: &TableRow| row.0,
        ReloadTrigger::FixedDelay(HOUR),
    )
    .build()
    .unwrap();
    let mut second = first.clone();
    AsyncLookupFunction::open(&mut first, &Ctx(InMemoryMetricGroup::new("lookup")))
        .await
        .unwrap();
    AsyncLookupFunction::open(&mut second, &Ctx(InMemoryMetricGroup::new("other")))
        .await
        .unwrap();
    assert_eq!(
        AsyncLookupFunction::lookup(&second, &3)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(first.loads(), 1, "one load for both clones");
}

#[tokio::test]
async fn an_unbounded_scan_is_refused() {
    let source = DataGeneratorSource::new(|n| n, None, RateLimiterStrategy::no_op());
    let error = read_bounded(
        &source,
        NonZeroUsize::MIN,
        Arc::new(InMemoryMetricGroup::new("scan")),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("unbounded"), "{error}");
}

/// A lookup function over a map standing in for a remote database; key 99 fails.
struct RemoteTable {
    rows: HashMap<u64, Vec<String>>,
    loads: AtomicU64,
}

#[async_trait::async_trait]
impl AsyncLookupFunction<u64, String> for RemoteTable {
    async fn lookup(&self, key: &u64) -> Result<Vec<String>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2)).await;
        if *key == 99 {
            return Err(ConnectorError::retryable("looking up key 99", "timeout"));
        }
        Ok(self.rows.get(key).cloned().unwrap_or_default())
    }
}

#[tokio::test]
async fn the_async_caching_function_loads_on_a_miss_only() {
    let cache = Arc::new(
        DefaultLookupCache::builder()
            .maximum_size(100)
            .build()
            .unwrap(),
    );
    let remote = RemoteTable {
        rows: HashMap::from([(1, vec!["Ada".to_owned()])]),
        loads: AtomicU64::new(0),
    };
    let mut lookup = PartialCachingAsyncLookupFunction::new(remote, Arc::clone(&cache));
    let group = InMemoryMetricGroup::new("lookup");
    lookup.open(&Ctx(group.clone())).await.unwrap();
    for _ in 0..4 {
        assert_eq!(lookup.lookup(&1).await.unwrap(), vec!["Ada".to_owned()]);
        assert!(lookup.lookup(&2).await.unwrap().is_empty());
    }
    assert_eq!(lookup.function().loads.load(Ordering::SeqCst), 2);
    assert!(lookup.lookup(&99).await.is_err());
    assert!(lookup.lookup(&99).await.is_err(), "a failure is not cached");
    assert_eq!(value(&group, LOAD_COUNT), 2);
    assert_eq!(value(&group, NUM_LOAD_FAILURES), 2);
    assert_eq!(value(&group, HIT_COUNT), 6);
    assert_eq!(value(&group, MISS_COUNT), 4);
    assert!(value(&group, LATEST_LOAD_TIME) >= 2);
    assert_eq!(cache.get_if_present(&2).map(|r| r.len()), Some(0));
}

#[test]
fn a_scan_that_panics_fails_open_instead_of_hanging() {
    let source = DataGeneratorSource::new(
        |n: u64| -> TableRow {
            assert!(n < 3, "a connector bug (fake)");
            (n, 0, n)
        },
        Some(10),
        RateLimiterStrategy::no_op(),
    );
    let mut function = FullCachingLookupFunction::builder(
        source,
        |row: &TableRow| row.0,
        ReloadTrigger::FixedDelay(HOUR),
    )
    .build()
    .unwrap();
    let error =
        LookupFunction::open(&mut function, &Ctx(InMemoryMetricGroup::new("lookup"))).unwrap_err();
    assert!(error.to_string().contains("loader stopped"), "{error}");
}
