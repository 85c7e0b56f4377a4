//! Checkpoints under backpressure with aligned barriers, unaligned ones and an alignment
//! timeout: an unbounded datagen source (2 subtasks) → rebalance → map (2) → rebalance → a
//! slow sink (1) whose writer takes `WEIR_BENCH_SINK_DELAY_MS` (default 5) per batch, so both
//! exchanges stay full.
//! Each mode runs `WEIR_BENCH_SECONDS` (default 10) with checkpoints every 500 ms; the modes
//! are interleaved over `WEIR_BENCH_ROUNDS` (default 2) rounds. Reported from the job's
//! checkpoint history: checkpoint duration (trigger to completion), the longest per-subtask
//! start delay (trigger to first barrier) and barrier alignment, records in flight stored, and
//! the sink's throughput.
//!
//! `cargo bench -p weir-runtime --bench unaligned`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark binary

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use weir_connector_api::error::Result;
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::{
    BarrierAlignment, CheckpointConfig, CheckpointRecord, CheckpointStatus, JobConfig,
    StreamEnvironment,
};

/// A sink whose writer waits `delay` before each batch (a slow external system).
struct SlowSink {
    delay: Duration,
    written: Arc<AtomicU64>,
}

struct SlowWriter {
    delay: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    written: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl SinkWriter<u64> for SlowWriter {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let delay = self.delay;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timer = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
    fn write(&mut self, _element: u64, _ctx: &WriteContext) -> Result<()> {
        self.written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl Sink<u64> for SlowSink {
    type Writer = SlowWriter;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<SlowWriter> {
        Ok(SlowWriter {
            delay: self.delay,
            timer: None,
            written: Arc::clone(&self.written),
        })
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run: the completed checkpoints and the records the sink wrote per second.
fn run(
    runtime: &tokio::runtime::Runtime,
    alignment: BarrierAlignment,
    seconds: u64,
    delay: Duration,
) -> (Vec<CheckpointRecord>, f64) {
    let config = JobConfig::new("unaligned-bench")
        .parallelism(2)
        .checkpointing(
            CheckpointConfig::every(Duration::from_millis(500))
                .alignment(alignment)
                .timeout(Duration::from_secs(60)),
        );
    let env = StreamEnvironment::new(config);
    let written = Arc::new(AtomicU64::new(0));
    env.from_source(
        DataGeneratorSource::new(|n| n, None, RateLimiterStrategy::no_op()),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .uid("numbers")
    .channel_state_serializer(U64Serializer)
    .rebalance()
    .map(|n: u64| n.wrapping_mul(3))
    .channel_state_serializer(U64Serializer)
    .rebalance()
    .parallelism(1)
    .sink_to(SlowSink {
        delay,
        written: Arc::clone(&written),
    });
    let job = env.build().expect("valid job");
    let (history, rate) = runtime.block_on(async {
        let handle = job.start();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let rate = written.load(Ordering::Relaxed) as f64 / seconds as f64;
        let history = handle.checkpoint_history();
        handle.cancel();
        handle.wait().await;
        (history, rate)
    });
    let completed = history
        .into_iter()
        .filter(|c| c.status == CheckpointStatus::Completed)
        .collect();
    (completed, rate)
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let seconds: u64 = env_or("WEIR_BENCH_SECONDS", 10);
    let rounds: usize = env_or("WEIR_BENCH_ROUNDS", 2);
    let delay = Duration::from_millis(env_or("WEIR_BENCH_SINK_DELAY_MS", 5));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let modes = [
        ("aligned", BarrierAlignment::Aligned),
        ("unaligned", BarrierAlignment::Unaligned),
        (
            "aligned, 10 ms timeout",
            BarrierAlignment::AlignedWithTimeout(Duration::from_millis(10)),
        ),
    ];
    let mut results: Vec<(Vec<CheckpointRecord>, Vec<f64>)> =
        modes.iter().map(|_| (Vec::new(), Vec::new())).collect();
    for _ in 0..rounds {
        for ((_, alignment), (checkpoints, rates)) in modes.iter().zip(&mut results) {
            let (completed, rate) = run(&runtime, *alignment, seconds, delay);
            checkpoints.extend(completed);
            rates.push(rate);
        }
    }
    println!(
        "datagen (2) -> rebalance -> map (2) -> rebalance -> sink (1) taking {} ms per \
         1024-record batch; \
         checkpoints every 500 ms; {rounds} x {seconds} s per mode, interleaved",
        delay.as_millis()
    );
    println!(
        "| barriers | checkpoints | duration p50 | duration p90 | max | start delay p50 | \
         alignment p50 | unaligned subtasks | in flight p50 | sink records/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ((name, _), (checkpoints, rates)) in modes.iter().zip(results) {
        let durations: Vec<f64> = checkpoints
            .iter()
            .filter_map(|c| c.duration.map(ms))
            .collect();
        let delays: Vec<f64> = checkpoints
            .iter()
            .filter_map(|c| c.start_delay().map(ms))
            .collect();
        let alignments: Vec<f64> = checkpoints
            .iter()
            .filter_map(|c| c.alignment().map(ms))
            .collect();
        let in_flight: Vec<f64> = checkpoints.iter().map(|c| c.unaligned().1 as f64).collect();
        let unaligned: usize = checkpoints.iter().map(|c| c.unaligned().0).sum();
        let subtasks: usize = checkpoints.iter().map(|c| c.subtasks.len()).sum();
        println!(
            "| {name} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | \
             {unaligned} of {subtasks} | {:.0} KiB | {:.0} |",
            checkpoints.len(),
            quantile(durations.clone(), 0.5),
            quantile(durations.clone(), 0.9),
            quantile(durations, 1.0),
            quantile(delays, 0.5),
            quantile(alignments, 0.5),
            quantile(in_flight, 0.5) / 1024.0,
            quantile(rates, 0.5),
        );
    }
}
