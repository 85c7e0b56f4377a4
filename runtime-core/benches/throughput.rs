//! datagen → blackhole on the embedded runtime against a raw loop that generates the same
//! records, and the throughput cost of 1 s checkpoints. Runs are interleaved and repeated; the
//! median is reported.
//!
//! `cargo bench -p weir-runtime --bench throughput` (set `WEIR_BENCH_RECORDS` to change the
//! record count, default 1 billion; `WEIR_BENCH_ROUNDS`, default 3). `WEIR_BENCH_ONLY=job` runs
//! only datagen → blackhole and `WEIR_BENCH_ONLY=exchange` only datagen → rebalance →
//! blackhole (no warm-up, no raw loop), for counting instructions under callgrind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark binary

use std::hint::black_box;
use std::time::{Duration, Instant};

use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_blackhole::BlackholeSink;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::{CheckpointConfig, JobConfig, StreamEnvironment};

/// The generator both sides use.
fn record(n: u64) -> u64 {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (n >> 7)
}

fn raw_loop(count: u64) -> Duration {
    let start = Instant::now();
    let mut sink = 0_u64;
    for n in 0..count {
        sink = sink.wrapping_add(black_box(record(n)));
    }
    black_box(sink);
    start.elapsed()
}

/// How the source reaches the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Chained in one task: no channel.
    Chained,
    /// Through a rebalance exchange: one channel between two tasks.
    Exchange,
}

fn job(
    runtime: &tokio::runtime::Runtime,
    count: u64,
    checkpoints: Option<Duration>,
    path: Path,
) -> (Duration, u64) {
    let mut config = JobConfig::new("bench").parallelism(1);
    if let Some(interval) = checkpoints {
        config = config.checkpointing(CheckpointConfig::every(interval));
    }
    let env = StreamEnvironment::new(config);
    let sink = BlackholeSink::<u64>::new();
    let counter = sink.counter();
    let stream = env.from_source(
        DataGeneratorSource::new(record, Some(count), RateLimiterStrategy::no_op()),
        WatermarkStrategy::no_watermarks(),
        "datagen",
    );
    match path {
        Path::Chained => stream.sink_to(sink),
        Path::Exchange => stream.rebalance().sink_to(sink),
    }
    let job = env.build().expect("valid job");
    let start = Instant::now();
    let result = runtime.block_on(job.execute());
    let elapsed = start.elapsed();
    assert!(result.is_finished(), "{:?}", result.status);
    let seen = counter.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(seen, count, "blackhole saw every record");
    (elapsed, result.completed_checkpoints)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let count: u64 = std::env::var("WEIR_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000_000);
    let rounds: usize = std::env::var("WEIR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let only = std::env::var("WEIR_BENCH_ONLY").ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(only) = only {
        let path = match only.as_str() {
            "job" => Path::Chained,
            "exchange" => Path::Exchange,
            other => panic!("WEIR_BENCH_ONLY is `job` or `exchange`, not `{other}`"),
        };
        let runs: Vec<Duration> = (0..rounds)
            .map(|_| job(&runtime, count, None, path).0)
            .collect();
        let d = median(runs);
        println!(
            "{path:?}: {count} records, {:.2} ns/record",
            d.as_nanos() as f64 / count as f64
        );
        return;
    }
    // Warm up.
    raw_loop(count / 10);
    job(&runtime, count / 10, None, Path::Chained);
    let (mut raw, mut plain, mut checkpointed) = (Vec::new(), Vec::new(), Vec::new());
    let mut exchanged = Vec::new();
    let mut checkpoints = 0;
    for _ in 0..rounds {
        raw.push(raw_loop(count));
        plain.push(job(&runtime, count, None, Path::Chained).0);
        let (d, c) = job(&runtime, count, Some(Duration::from_secs(1)), Path::Chained);
        checkpointed.push(d);
        checkpoints += c;
        exchanged.push(job(&runtime, count, None, Path::Exchange).0);
    }
    let per = |d: Duration| d.as_nanos() as f64 / count as f64;
    let (raw, plain, checkpointed) = (median(raw), median(plain), median(checkpointed));
    let exchanged = median(exchanged);
    println!("records per run: {count}, rounds: {rounds} (median), parallelism 1");
    println!(
        "raw loop:                    {:7.2} ns/record  {:6.1} M records/s",
        per(raw),
        count as f64 / raw.as_secs_f64() / 1e6
    );
    println!(
        "datagen -> blackhole:        {:7.2} ns/record  {:6.1} M records/s",
        per(plain),
        count as f64 / plain.as_secs_f64() / 1e6
    );
    println!(
        "  with 1 s checkpoints:      {:7.2} ns/record  {:6.1} M records/s  ({} checkpoints over {rounds} runs)",
        per(checkpointed),
        count as f64 / checkpointed.as_secs_f64() / 1e6,
        checkpoints
    );
    println!(
        "datagen -> rebalance -> blackhole (two tasks, one channel): {:7.2} ns/record  {:6.1} M records/s",
        per(exchanged),
        count as f64 / exchanged.as_secs_f64() / 1e6
    );
    println!(
        "framework overhead:          {:7.2} ns/record",
        per(plain) - per(raw)
    );
    println!(
        "checkpoint cost:             {:.2}% of throughput",
        (1.0 - plain.as_secs_f64() / checkpointed.as_secs_f64()) * 100.0
    );
}
