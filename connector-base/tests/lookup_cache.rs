//! `DefaultLookupCache` options and metrics, and `PartialCachingLookupFunction`.
//!
//! The expiry tests run on the real clock (moka's), with wide margins: they check that entries
//! are gone well after their time, and present when read long before it.

// Test helpers may fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::sleep;
use std::time::Duration;

use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::lookup::{LookupContext, LookupFunction};
use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup, MetricValue};
use weir_connector_base::lookup::{
    DefaultLookupCache, FrontSize, LookupCache, MissingKeys, PartialCachingLookupFunction,
    HIT_COUNT, LATEST_LOAD_TIME, LOAD_COUNT, MISS_COUNT, NUM_CACHED_BYTES, NUM_CACHED_RECORDS,
    NUM_LOAD_FAILURES,
};

fn rows(values: &[&str]) -> Arc<[String]> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn value(group: &InMemoryMetricGroup, name: &str) -> i64 {
    match group.value(&format!("lookup.{name}")) {
        Some(MetricValue::Counter(n)) => i64::try_from(n).unwrap(),
        Some(MetricValue::Gauge(n)) => n,
        other => panic!("no metric {name}: {other:?}"),
    }
}

#[test]
fn maximum_size_bounds_the_keys() {
    let cache = DefaultLookupCache::<u64, String>::builder()
        .maximum_size(100)
        .build()
        .unwrap();
    let group = InMemoryMetricGroup::new("lookup");
    cache.open(&group);
    for key in 0..1_000 {
        cache.put(key, rows(&["row"]));
    }
    cache.run_pending_tasks();
    let size = cache.size();
    assert!((1..=100).contains(&size), "{size} keys cached");
    let present = (0..1_000)
        .filter(|k| cache.get_if_present(k).is_some())
        .count();
    assert!(present <= 100, "{present} keys answered");
    assert_eq!(
        value(&group, NUM_CACHED_RECORDS),
        i64::try_from(size).unwrap()
    );
}

#[test]
fn expire_after_write_drops_rows_even_when_read() {
    let cache = DefaultLookupCache::<u64, String>::builder()
        .expire_after_write(Duration::from_millis(800))
        .build()
        .unwrap();
    cache.put(1, rows(&["a"]));
    assert!(cache.get_if_present(&1).is_some());
    // Read every 100 ms: reads do not extend a write expiry.
    for _ in 0..14 {
        sleep(Duration::from_millis(100));
        let _ = cache.get_if_present(&1);
    }
    sleep(Duration::from_millis(300));
    assert!(
        cache.get_if_present(&1).is_none(),
        "alive 1.7 s after its write"
    );
}

#[test]
fn expire_after_access_keeps_rows_that_are_read() {
    let cache = DefaultLookupCache::<u64, String>::builder()
        .expire_after_access(Duration::from_secs(1))
        .build()
        .unwrap();
    cache.put(1, rows(&["a"]));
    cache.put(2, rows(&["b"]));
    // Key 1 is read every 100 ms for 2 s; key 2 never.
    for _ in 0..20 {
        sleep(Duration::from_millis(100));
        assert!(
            cache.get_if_present(&1).is_some(),
            "a key read every 100 ms expired"
        );
    }
    assert!(
        cache.get_if_present(&2).is_none(),
        "unread for 2 s and still cached"
    );
    sleep(Duration::from_millis(1_500));
    assert!(
        cache.get_if_present(&1).is_none(),
        "unread for 1.5 s and still cached"
    );
}

#[test]
fn missing_keys_are_cached_or_not() {
    let caching = DefaultLookupCache::<u64, String>::builder()
        .maximum_size(10)
        .missing_keys(MissingKeys::Cache)
        .build()
        .unwrap();
    caching.put(1, rows(&[]));
    assert_eq!(caching.get_if_present(&1).map(|r| r.len()), Some(0));

    let not_caching = DefaultLookupCache::<u64, String>::builder()
        .maximum_size(10)
        .missing_keys(MissingKeys::DoNotCache)
        .build()
        .unwrap();
    not_caching.put(1, rows(&[]));
    assert!(not_caching.get_if_present(&1).is_none());
    not_caching.put(2, rows(&["x"]));
    assert!(not_caching.get_if_present(&2).is_some());
}

#[test]
fn invalidate_forgets_a_key() {
    let cache = DefaultLookupCache::<u64, String>::builder()
        .maximum_size(10)
        .build()
        .unwrap();
    cache.put(1, rows(&["a"]));
    cache.put(2, rows(&["b"]));
    cache.invalidate(&1);
    assert!(cache.get_if_present(&1).is_none());
    assert!(cache.get_if_present(&2).is_some());
    cache.run_pending_tasks();
    assert_eq!(cache.size(), 1);
}

#[test]
fn the_cache_reports_hits_misses_records_and_bytes() {
    let cache = DefaultLookupCache::<u64, String>::builder()
        .maximum_size(100)
        .size_of(|_key, rows| 8 + rows.iter().map(|r| r.len() as u64).sum::<u64>())
        .build()
        .unwrap();
    let group = InMemoryMetricGroup::new("lookup");
    cache.open(&group);
    cache.put(1, rows(&["abc"]));
    cache.put(2, rows(&["de", "f"]));
    for key in [1, 1, 2, 3] {
        let _ = cache.get_if_present(&key);
    }
    assert_eq!(value(&group, HIT_COUNT), 3);
    assert_eq!(value(&group, MISS_COUNT), 1);
    assert_eq!(value(&group, NUM_CACHED_RECORDS), 2);
    assert_eq!(value(&group, NUM_CACHED_BYTES), (8 + 3) + (8 + 3));
    // Replacing a key's rows replaces its bytes.
    cache.put(1, rows(&["abcdef"]));
    cache.run_pending_tasks();
    assert_eq!(value(&group, NUM_CACHED_RECORDS), 2);
    assert_eq!(value(&group, NUM_CACHED_BYTES), (8 + 6) + (8 + 3));
}

#[test]
fn a_cache_needs_a_bound_and_valid_times() {
    let errors = DefaultLookupCache::<u64, String>::builder()
        .build()
        .unwrap_err();
    assert!(
        errors.to_string().contains("lookup.partial-cache.max-rows"),
        "{errors}"
    );
    let errors = DefaultLookupCache::<u64, String>::builder()
        .maximum_size(0)
        .expire_after_access(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(errors.len(), 2, "{errors}");
}

/// A lookup function over a map standing in for a database; key 99 fails.
struct Table {
    rows: HashMap<u64, Vec<String>>,
    loads: u32,
}

impl LookupFunction<u64, String> for Table {
    fn lookup(&mut self, key: &u64) -> Result<Vec<String>> {
        self.loads += 1;
        if *key == 99 {
            return Err(ConnectorError::retryable(
                "looking up key 99",
                "connection reset",
            ));
        }
        sleep(Duration::from_millis(5));
        Ok(self.rows.get(key).cloned().unwrap_or_default())
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

#[test]
fn the_caching_function_loads_on_a_miss_only_and_reports_loads() {
    let table = Table {
        rows: HashMap::from([(1, vec!["Ada".to_owned()]), (2, vec!["Bo".to_owned()])]),
        loads: 0,
    };
    let cache = Arc::new(
        DefaultLookupCache::builder()
            .maximum_size(100)
            .build()
            .unwrap(),
    );
    let mut lookup = PartialCachingLookupFunction::new(table, Arc::clone(&cache));
    let group = InMemoryMetricGroup::new("lookup");
    lookup.open(&Ctx(group.clone())).unwrap();
    for _ in 0..5 {
        assert_eq!(lookup.lookup(&1).unwrap(), vec!["Ada".to_owned()]);
        assert!(lookup.lookup(&3).unwrap().is_empty());
    }
    assert_eq!(lookup.function().loads, 2, "one load per key");
    // The latest load (key 3) slept 5 ms in the table.
    assert!(value(&group, LATEST_LOAD_TIME) >= 5);
    assert!(lookup.lookup(&99).is_err());
    assert!(lookup.lookup(&99).is_err(), "a failed load is not cached");
    assert_eq!(lookup.function().loads, 4);
    assert_eq!(value(&group, LOAD_COUNT), 2);
    assert_eq!(value(&group, NUM_LOAD_FAILURES), 2);
    assert_eq!(value(&group, HIT_COUNT), 8);
    assert_eq!(value(&group, MISS_COUNT), 4);
    assert_eq!(
        cache.get_if_present(&1).as_deref(),
        Some(&["Ada".to_owned()][..])
    );
}

/// Counts its loads; answers every key with one row naming the load.
struct Counting {
    loads: u32,
}

impl LookupFunction<u64, String> for Counting {
    fn lookup(&mut self, key: &u64) -> Result<Vec<String>> {
        self.loads += 1;
        Ok(vec![format!("{key}@{}", self.loads)])
    }
}

#[test]
fn the_front_of_copies_answers_hot_keys_and_counts_them_as_hits() {
    let cache = Arc::new(
        DefaultLookupCache::builder()
            .maximum_size(100)
            .build()
            .unwrap(),
    );
    let mut lookup = PartialCachingLookupFunction::new(Counting { loads: 0 }, Arc::clone(&cache));
    let group = InMemoryMetricGroup::new("lookup");
    lookup.open(&Ctx(group.clone())).unwrap();
    for _ in 0..1_000 {
        assert_eq!(lookup.lookup(&7).unwrap(), vec!["7@1".to_owned()]);
    }
    assert_eq!(lookup.function().loads, 1);
    assert_eq!(value(&group, HIT_COUNT), 999);
    assert_eq!(value(&group, MISS_COUNT), 1);
    // An invalidation reaches the copy: the next lookup loads again.
    cache.invalidate(&7);
    assert_eq!(lookup.lookup(&7).unwrap(), vec!["7@2".to_owned()]);
    assert_eq!(value(&group, MISS_COUNT), 2);
}

#[test]
fn copies_in_the_front_expire_with_the_cache() {
    // Expire after write: a key read all the time is still loaded again after its time.
    let cache = Arc::new(
        DefaultLookupCache::builder()
            .expire_after_write(Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    let mut lookup = PartialCachingLookupFunction::new(Counting { loads: 0 }, cache);
    for _ in 0..80 {
        let _ = lookup.lookup(&1).unwrap();
        sleep(Duration::from_millis(10));
    }
    // 800 ms of reads every 10 ms: loaded at 0, about 300 and about 600 ms.
    let loads = lookup.function().loads;
    assert!((2..=4).contains(&loads), "{loads} loads in 800 ms");

    // Expire after access: read every 20 ms it stays, unread for 500 ms it goes.
    let cache = Arc::new(
        DefaultLookupCache::builder()
            .expire_after_access(Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    let mut lookup = PartialCachingLookupFunction::new(Counting { loads: 0 }, cache);
    for _ in 0..40 {
        assert_eq!(lookup.lookup(&1).unwrap(), vec!["1@1".to_owned()]);
        sleep(Duration::from_millis(20));
    }
    sleep(Duration::from_millis(500));
    assert_eq!(lookup.lookup(&1).unwrap(), vec!["1@2".to_owned()]);
}

#[test]
fn without_a_front_every_lookup_asks_the_cache() {
    let cache = Arc::new(
        DefaultLookupCache::builder()
            .maximum_size(100)
            .build()
            .unwrap(),
    );
    let mut lookup = PartialCachingLookupFunction::new(Counting { loads: 0 }, Arc::clone(&cache))
        .with_front(FrontSize::Off);
    for _ in 0..10 {
        let _ = lookup.lookup(&3).unwrap();
    }
    // Replacing the rows in the shared cache shows at once (a front would keep its copy).
    cache.put(3, rows(&["replaced"]));
    assert_eq!(lookup.lookup(&3).unwrap(), vec!["replaced".to_owned()]);
    assert_eq!(lookup.function().loads, 1);
}
