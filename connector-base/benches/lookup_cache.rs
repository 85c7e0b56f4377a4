//! Partial lookup cache hits: `DefaultLookupCache::get_if_present` (metrics on) and
//! `PartialCachingLookupFunction::lookup_shared` (with its per-subtask front of copies, the
//! default; without it; and with the front over a cache with expire-after-write, which reads
//! the clock per hit) against a bare moka `Cache::get`, on one thread, same keys, same access
//! sequence, interleaved, median reported.
//!
//! 100 000 keys (`WEIR_BENCH_KEYS`), each with one row (`Arc<[u64]>`), all cached; 2 000 000
//! lookups per run in a pseudo-random order. Time is the thread's CPU time (`/proc/thread-self/schedstat`, Linux).
//! Targets: ≥ 10 M hits/s, and ≥ 0.9 × the bare moka get.
//!
//! `cargo bench -p weir-connector-base --bench lookup_cache` (`WEIR_BENCH_LOOKUPS`, default
//! 2 000 000; `WEIR_BENCH_ROUNDS`, default 7;
//! `WEIR_BENCH_ONLY=moka|moka-foldhash|cache|function|no-front|front-ttl` runs one side once,
//! for `valgrind --tool=callgrind`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark binary

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use weir_connector_api::error::Result;
use weir_connector_api::lookup::LookupFunction;
use weir_connector_api::metrics::InMemoryMetricGroup;
use weir_connector_base::lookup::{
    DefaultLookupCache, FrontSize, LookupCache, PartialCachingLookupFunction,
};

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn row(key: u64) -> Arc<[u64]> {
    Arc::from(vec![key * 3])
}

/// Never called in the benchmark (every key is cached); loads a row if it were.
struct Table;

impl LookupFunction<u64, u64> for Table {
    fn lookup(&mut self, key: &u64) -> Result<Vec<u64>> {
        Ok(vec![key * 3])
    }
}

fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// ns per lookup of `get` over `keys`, checking every answer.
fn measure(keys: &[u64], mut get: impl FnMut(u64) -> Option<Arc<[u64]>>) -> f64 {
    let start = thread_cpu();
    let mut sum = 0_u64;
    for &key in keys {
        let rows = get(key).unwrap();
        sum = sum.wrapping_add(rows[0]);
    }
    black_box(sum);
    let cpu = thread_cpu().saturating_sub(start);
    cpu.as_nanos() as f64 / keys.len() as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let lookups = env("WEIR_BENCH_LOOKUPS").unwrap_or(2_000_000);
    let rounds = env("WEIR_BENCH_ROUNDS").unwrap_or(7) as usize;
    let key_count = env("WEIR_BENCH_KEYS").unwrap_or(100_000).max(1);
    let keys: Vec<u64> = (0..lookups).map(|i| mix(i) % key_count).collect();

    // Bare moka as a user gets it (its default hasher), and with the cache's hasher.
    let bare: moka::sync::Cache<u64, Arc<[u64]>> = moka::sync::Cache::builder()
        .max_capacity(10 * key_count)
        .build();
    let bare_fold: moka::sync::Cache<u64, Arc<[u64]>, foldhash::fast::RandomState> =
        moka::sync::Cache::builder()
            .max_capacity(10 * key_count)
            .build_with_hasher(foldhash::fast::RandomState::default());
    let cache = Arc::new(
        DefaultLookupCache::<u64, u64>::builder()
            .maximum_size(10 * key_count)
            .build()
            .unwrap(),
    );
    let group = InMemoryMetricGroup::new("bench");
    cache.open(&group);
    for key in 0..key_count {
        bare.insert(key, row(key));
        bare_fold.insert(key, row(key));
        cache.put(key, row(key));
    }
    bare.run_pending_tasks();
    bare_fold.run_pending_tasks();
    cache.run_pending_tasks();
    let mut function = PartialCachingLookupFunction::new(Table, Arc::clone(&cache));
    let mut no_front =
        PartialCachingLookupFunction::new(Table, Arc::clone(&cache)).with_front(FrontSize::Off);
    // The same with an expire-after-write cache: every front hit reads the clock.
    let ttl_cache = Arc::new(
        DefaultLookupCache::<u64, u64>::builder()
            .maximum_size(10 * key_count)
            .expire_after_write(Duration::from_secs(3600))
            .build()
            .unwrap(),
    );
    ttl_cache.open(&group);
    for key in 0..key_count {
        ttl_cache.put(key, row(key));
    }
    ttl_cache.run_pending_tasks();
    let mut front_ttl = PartialCachingLookupFunction::new(Table, Arc::clone(&ttl_cache));

    match std::env::var("WEIR_BENCH_ONLY").ok().as_deref() {
        Some("moka") => {
            println!("moka: {:.2} ns", measure(&keys, |k| bare.get(&k)));
            return;
        }
        Some("moka-foldhash") => {
            println!(
                "moka-foldhash: {:.2} ns",
                measure(&keys, |k| bare_fold.get(&k))
            );
            return;
        }
        Some("cache") => {
            println!(
                "cache: {:.2} ns",
                measure(&keys, |k| cache.get_if_present(&k))
            );
            return;
        }
        Some("function") => {
            let ns = measure(&keys, |k| function.lookup_shared(&k).ok());
            println!("function: {ns:.2} ns");
            return;
        }
        Some("no-front") => {
            let ns = measure(&keys, |k| no_front.lookup_shared(&k).ok());
            println!("no-front: {ns:.2} ns");
            return;
        }
        Some("front-ttl") => {
            let ns = measure(&keys, |k| front_ttl.lookup_shared(&k).ok());
            println!("front-ttl: {ns:.2} ns");
            return;
        }
        _ => {}
    }
    // Warm up.
    measure(&keys, |k| bare.get(&k));
    measure(&keys, |k| cache.get_if_present(&k));
    let names = [
        "bare moka",
        "bare moka + foldhash",
        "DefaultLookupCache",
        "caching function (front)",
        "caching function (no front)",
        "caching function (front, TTL)",
    ];
    let mut runs: [Vec<f64>; 6] = Default::default();
    let (mut ratios, mut ratios_fold, mut ratios_function) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut ns = [0.0; 6];
        let order: [usize; 6] = if round % 2 == 0 {
            [0, 1, 2, 3, 4, 5]
        } else {
            [5, 4, 3, 2, 1, 0]
        };
        for side in order {
            ns[side] = match side {
                0 => measure(&keys, |k| bare.get(&k)),
                1 => measure(&keys, |k| bare_fold.get(&k)),
                2 => measure(&keys, |k| cache.get_if_present(&k)),
                3 => measure(&keys, |k| function.lookup_shared(&k).ok()),
                4 => measure(&keys, |k| no_front.lookup_shared(&k).ok()),
                _ => measure(&keys, |k| front_ttl.lookup_shared(&k).ok()),
            };
        }
        println!(
            "round {round}: {}",
            names
                .iter()
                .zip(ns)
                .map(|(n, v)| format!("{n} {v:.1} ns"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (all, v) in runs.iter_mut().zip(ns) {
            all.push(v);
        }
        ratios.push(ns[0] / ns[2]);
        ratios_fold.push(ns[1] / ns[2]);
        ratios_function.push(ns[0] / ns[3]);
    }
    let medians: Vec<String> = names
        .iter()
        .zip(runs.iter_mut())
        .map(|(n, all)| {
            let m = median(all);
            format!("{n} {:.2} M/s ({m:.1} ns)", 1e3 / m)
        })
        .collect();
    println!(
        "median over {rounds} rounds of {lookups} hits on {key_count} keys: {}; \
         throughput / bare moka: DefaultLookupCache {:.3} (/ moka + foldhash {:.3}), caching \
         function with its front {:.3} (targets: >= 10 M/s, >= 0.9)",
        medians.join(", "),
        median(&mut ratios),
        median(&mut ratios_fold),
        median(&mut ratios_function)
    );
}
