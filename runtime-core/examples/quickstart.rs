//! The quickstart job on embedded defaults: 300 million generated events, keyed by user,
//! exactly-once checkpoints every second into `./out/checkpoints`, counted by a blackhole sink.
//!
//! `cargo run --release -p weir-runtime --example quickstart`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // an example binary

use std::time::{Duration, Instant};

use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_blackhole::BlackholeSink;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::{CheckpointConfig, JobConfig, StorageConfig, StreamEnvironment};

#[derive(Debug, Clone)]
struct Click {
    user: u64,
    page: u32,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events = 300_000_000;
    let env = StreamEnvironment::new(
        JobConfig::new("quickstart")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_secs(1)))
            .storage(StorageConfig::Local("out/checkpoints".into())),
    );
    let sink = BlackholeSink::new();
    let counted = sink.counter();
    env.from_source(
        DataGeneratorSource::new(
            |n| Click {
                user: n % 10_000,
                page: (n % 97) as u32,
            },
            Some(events),
            RateLimiterStrategy::no_op(),
        ),
        WatermarkStrategy::no_watermarks(),
        "clicks",
    )
    .uid("clicks")
    .filter(|c| c.page != 0)
    .key_by(|c| c.user)
    .map(|c| (c.user, c.page))
    .sink_to(sink);
    let started = Instant::now();
    let result = env.build().expect("a valid job").execute().await;
    let elapsed = started.elapsed();
    let written = counted.load(std::sync::atomic::Ordering::Relaxed);
    println!("status:       {:?}", result.status);
    println!("events:       {events} generated, {written} written after the filter");
    println!(
        "checkpoints:  {} completed (in out/checkpoints)",
        result.completed_checkpoints
    );
    println!(
        "time:         {:.2} s, {:.1} M events/s",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64() / 1e6
    );
}
