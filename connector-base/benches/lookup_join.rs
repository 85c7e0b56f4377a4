//! Records per second through the runtime's lookup join with every lookup a cache hit, against
//! the same job joining with a plain `HashMap` in a `map` (no lookup join, no cache). One
//! subtask (parallelism 1), datagen → join → a counting sink, 1 000 hot keys, each with one row.
//!
//! - `map + HashMap`: `map(|n| (n, table.get(n % keys)))`, the floor of what a join costs;
//! - `sync join, partial cache`: `LookupJoin::sync` over a `PartialCachingLookupFunction`
//!   (moka behind its front of copies) warmed before the run;
//! - `sync join, full cache`: `LookupJoin::sync` over a `FullCachingLookupFunction` (the whole
//!   table in memory);
//! - `async join`: `LookupJoin::asynchronous` over a function that answers from a `HashMap`
//!   at once: what the asynchronous machinery costs per record (the queue, the batches to and
//!   from the subtask's lookup driver, a boxed future and a timeout timer per lookup).
//!
//! Wall time of the job, median of `WEIR_BENCH_ROUNDS` (default 5) interleaved rounds;
//! `WEIR_BENCH_RECORDS` records per run (default 2 000 000).
//!
//! `cargo bench -p weir-connector-base --bench lookup_join`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark binary

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_connector_api::error::Result;
use weir_connector_api::lookup::{AsyncLookupFunction, LookupFunction};
use weir_connector_api::metrics::InMemoryMetricGroup;
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_base::lookup::{
    DefaultLookupCache, FullCachingLookupFunction, LookupCache, PartialCachingLookupFunction,
    ReloadTrigger,
};
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::lookup::{AsyncLookupOptions, LookupJoin, OutputOrder};
use weir_runtime::{DataStream, JobConfig, StreamEnvironment};

const KEYS: u64 = 1_000;

/// Never asked in the partial cache runs (every key is cached).
struct Table;

impl LookupFunction<u64, u64> for Table {
    fn lookup(&mut self, key: &u64) -> Result<Vec<u64>> {
        Ok(vec![key * 3])
    }
}

struct MapTable(Arc<HashMap<u64, u64>>);

#[async_trait::async_trait]
impl AsyncLookupFunction<u64, u64> for MapTable {
    async fn lookup(&self, key: &u64) -> Result<Vec<u64>> {
        Ok(self.0.get(key).copied().into_iter().collect())
    }
}

/// Counts what it receives (a benchmark sink).
#[derive(Clone, Default)]
struct Count(Arc<AtomicU64>);

struct CountWriter(Arc<AtomicU64>, u64);

#[async_trait::async_trait]
impl SinkWriter<(u64, Option<u64>)> for CountWriter {
    fn write(&mut self, _record: (u64, Option<u64>), _ctx: &WriteContext) -> Result<()> {
        self.1 += 1;
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        self.0
            .fetch_add(std::mem::take(&mut self.1), Ordering::Relaxed);
        Ok(())
    }
}

impl Sink<(u64, Option<u64>)> for Count {
    type Writer = CountWriter;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<CountWriter> {
        Ok(CountWriter(Arc::clone(&self.0), 0))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Map,
    Partial,
    Full,
    Async,
}

const SIDES: [(Side, &str); 4] = [
    (Side::Map, "map + HashMap"),
    (Side::Partial, "sync join, partial cache"),
    (Side::Full, "sync join, full cache"),
    (Side::Async, "async join"),
];

fn run(
    runtime: &tokio::runtime::Runtime,
    side: Side,
    count: u64,
    partial: &Arc<DefaultLookupCache<u64, u64>>,
    full: &FullCachingLookupFunction<u64, u64>,
    map: &Arc<HashMap<u64, u64>>,
) -> Duration {
    let env = StreamEnvironment::new(JobConfig::new("lookup-bench").parallelism(1));
    let sink = Count::default();
    let counter = Arc::clone(&sink.0);
    let numbers: DataStream<u64> = env.from_source(
        DataGeneratorSource::new(|n| n, Some(count), RateLimiterStrategy::no_op()),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    );
    let key = |n: &u64| Some(n % KEYS);
    let join = |n: &u64, row: Option<&u64>| (*n, row.copied());
    let joined = match side {
        Side::Map => {
            let map = Arc::clone(map);
            numbers.map(move |n| (n, map.get(&(n % KEYS)).copied()))
        }
        Side::Partial => {
            let cache = Arc::clone(partial);
            numbers.lookup_join(
                "join",
                LookupJoin::sync(
                    key,
                    move || {
                        Ok(
                            Box::new(PartialCachingLookupFunction::new(Table, Arc::clone(&cache)))
                                as Box<dyn LookupFunction<u64, u64>>,
                        )
                    },
                    join,
                ),
            )
        }
        Side::Full => {
            let full = full.clone();
            numbers.lookup_join(
                "join",
                LookupJoin::sync(
                    key,
                    move || Ok(Box::new(full.clone()) as Box<dyn LookupFunction<u64, u64>>),
                    join,
                ),
            )
        }
        Side::Async => {
            let map = Arc::clone(map);
            numbers.lookup_join(
                "join",
                LookupJoin::asynchronous(
                    key,
                    move || {
                        Ok(Box::new(MapTable(Arc::clone(&map)))
                            as Box<dyn AsyncLookupFunction<u64, u64>>)
                    },
                    join,
                    U64Serializer,
                    AsyncLookupOptions::default()
                        .capacity(1_000)
                        .order(OutputOrder::Ordered),
                ),
            )
        }
    };
    joined.sink_to(sink);
    let job = env.build().unwrap();
    let start = Instant::now();
    let result = runtime.block_on(job.execute());
    let took = start.elapsed();
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(counter.load(Ordering::Relaxed), count);
    took
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let count = env("WEIR_BENCH_RECORDS").unwrap_or(2_000_000);
    let rounds = env("WEIR_BENCH_ROUNDS").unwrap_or(5) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let map: Arc<HashMap<u64, u64>> = Arc::new((0..KEYS).map(|k| (k, k * 3)).collect());
    let partial = Arc::new(
        DefaultLookupCache::<u64, u64>::builder()
            .maximum_size(10 * KEYS)
            .build()
            .unwrap(),
    );
    partial.open(&InMemoryMetricGroup::new("bench"));
    for k in 0..KEYS {
        partial.put(k, Arc::from(vec![k * 3]));
    }
    partial.run_pending_tasks();
    let full = FullCachingLookupFunction::builder(
        DataGeneratorSource::new(|k| k, Some(KEYS), RateLimiterStrategy::no_op()),
        |k: &u64| *k,
        ReloadTrigger::FixedDelay(Duration::from_secs(3600)),
    )
    .build()
    .unwrap();
    // Warm up every side once.
    for (side, _) in SIDES {
        run(&runtime, side, count / 10, &partial, &full, &map);
    }
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); SIDES.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..SIDES.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut line = Vec::new();
        for i in order {
            let took = run(&runtime, SIDES[i].0, count, &partial, &full, &map);
            let per_second = count as f64 / took.as_secs_f64();
            runs[i].push(per_second);
            line.push(format!("{} {:.2} M/s", SIDES[i].1, per_second / 1e6));
        }
        println!("round {round}: {}", line.join(", "));
    }
    let medians: Vec<f64> = runs.iter_mut().map(|r| median(r)).collect();
    println!(
        "median over {rounds} rounds of {count} records: {}",
        SIDES
            .iter()
            .zip(&medians)
            .map(|((_, name), m)| format!(
                "{name} {:.2} M records/s ({:.2} of map + HashMap)",
                m / 1e6,
                m / medians[0]
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
