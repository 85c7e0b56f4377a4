//! datagen → blackhole on the embedded runtime against a raw loop that generates the same
//! records, and the throughput cost of 1 s checkpoints. Runs are interleaved and repeated; the
//! median is reported.
//!
//! `cargo bench -p weir-runtime --bench throughput` (set `WEIR_BENCH_RECORDS` to change the
//! record count, default 1 billion).

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

fn job(
    runtime: &tokio::runtime::Runtime,
    count: u64,
    checkpoints: Option<Duration>,
) -> (Duration, u64) {
    let mut config = JobConfig::new("bench").parallelism(1);
    if let Some(interval) = checkpoints {
        config = config.checkpointing(CheckpointConfig::every(interval));
    }
    let env = StreamEnvironment::new(config);
    let sink = BlackholeSink::<u64>::new();
    let counter = sink.counter();
    env.from_source(
        DataGeneratorSource::new(record, Some(count), RateLimiterStrategy::no_op()),
        WatermarkStrategy::no_watermarks(),
        "datagen",
    )
    .sink_to(sink);
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
    let rounds = 3;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Warm up.
    raw_loop(count / 10);
    job(&runtime, count / 10, None);
    let (mut raw, mut plain, mut checkpointed) = (Vec::new(), Vec::new(), Vec::new());
    let mut checkpoints = 0;
    for _ in 0..rounds {
        raw.push(raw_loop(count));
        plain.push(job(&runtime, count, None).0);
        let (d, c) = job(&runtime, count, Some(Duration::from_secs(1)));
        checkpointed.push(d);
        checkpoints += c;
    }
    let per = |d: Duration| d.as_nanos() as f64 / count as f64;
    let (raw, plain, checkpointed) = (median(raw), median(plain), median(checkpointed));
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
        "framework overhead:          {:7.2} ns/record",
        per(plain) - per(raw)
    );
    println!(
        "checkpoint cost:             {:.2}% of throughput",
        (1.0 - plain.as_secs_f64() / checkpointed.as_secs_f64()) * 100.0
    );
}
