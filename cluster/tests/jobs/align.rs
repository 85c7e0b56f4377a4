//! Watermark alignment across processes: a fast source (parallelism 2: a reader in process 0
//! and one in process 1) and a slow source (parallelism 1, process 0) in one alignment group,
//! unioned into key_by and a blackhole sink. The fast source's coordinator (process 0) holds
//! the reader in process 1 back through control messages; each process samples the highest
//! event time its readers of each source produced, with the wall clock, so the test can
//! compute the drift over both processes.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use weir_cluster::{Cluster, ClusterConfig};
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_blackhole::BlackholeSink;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::{Job, JobConfig, JobStatus, StreamEnvironment};

use super::support::{ADDRESSES, PROCESS};

/// The alignment group's maximum drift, in event-time milliseconds.
pub(crate) const MAX_DRIFT_MS: i64 = 500;
/// How often the coordinators announce the group's allowed maximum.
pub(crate) const UPDATE_MS: u64 = 20;
/// Each fast reader's rate (records/s, 1 ms of event time each).
pub(crate) const FAST_RATE: f64 = 4_000.0;
/// Each fast reader's records.
pub(crate) const FAST_N: u64 = 6_000;
/// The slow source's records (1 000/s).
pub(crate) const SLOW_N: u64 = 2_000;
/// Set to `off`: no alignment (the control run).
pub(crate) const ALIGN: &str = "WEIR_CLUSTER_ALIGN";

static FAST: AtomicI64 = AtomicI64::new(-1);
static SLOW: AtomicI64 = AtomicI64::new(-1);

fn strategy(aligned: bool) -> WatermarkStrategy<u64> {
    let s = WatermarkStrategy::<u64>::for_monotonous_timestamps()
        .with_timestamp_assigner(|n: &u64, _: Option<i64>| *n as i64);
    if aligned {
        s.with_watermark_alignment(
            "fast-and-slow",
            Duration::from_millis(MAX_DRIFT_MS as u64),
            Duration::from_millis(UPDATE_MS),
        )
    } else {
        s
    }
}

fn job(aligned: bool) -> Result<Job, String> {
    let config = JobConfig {
        watermark_interval: Duration::from_millis(5),
        batch_size: 16,
        ..JobConfig::new("aligned")
    };
    let env = StreamEnvironment::new(config);
    // Bounded datagen gives each reader a contiguous range: `n % FAST_N` makes both fast
    // readers produce event times 0..FAST_N.
    let fast = env
        .from_source(
            DataGeneratorSource::new(
                |n| n % FAST_N,
                Some(2 * FAST_N),
                RateLimiterStrategy::per_second(2.0 * FAST_RATE),
            )
            .with_batch_size(16),
            strategy(aligned),
            "fast",
        )
        .parallelism(2)
        .uid("fast")
        .map(|n| {
            FAST.fetch_max(n as i64, Ordering::SeqCst);
            n
        });
    let slow = env
        .from_source(
            DataGeneratorSource::new(
                |n| n,
                Some(SLOW_N),
                RateLimiterStrategy::per_second(1_000.0),
            )
            .with_batch_size(16),
            strategy(aligned),
            "slow",
        )
        .parallelism(1)
        .uid("slow")
        .map(|n| {
            SLOW.fetch_max(n as i64, Ordering::SeqCst);
            n
        });
    fast.union(slow)
        .channel_state_serializer(U64Serializer)
        .key_by(|n| *n)
        .sink_to(BlackholeSink::<u64>::new());
    env.build().map_err(|e| e.to_string())
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Runs this process's part; the exit code.
pub(crate) fn run() -> i32 {
    match run_process() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("WEIR: error: {e}");
            1
        }
    }
}

fn run_process() -> Result<(), String> {
    let var = |name: &str| std::env::var(name).map_err(|e| format!("{name}: {e}"));
    let process: usize = var(PROCESS)?.parse().map_err(|e| format!("{e}"))?;
    let addresses: Vec<String> = var(ADDRESSES)?.split(',').map(str::to_owned).collect();
    let aligned = var(ALIGN).map_or(true, |a| a != "off");
    let job = job(aligned)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let cluster = Cluster::start(
        &ClusterConfig::new(process, addresses).connect_timeout(Duration::from_secs(10)),
    )
    .map_err(|e| e.to_string())?;
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !done.load(Ordering::SeqCst) {
                samples.push(format!(
                    "{}:{}:{}",
                    now_ms(),
                    FAST.load(Ordering::SeqCst),
                    SLOW.load(Ordering::SeqCst)
                ));
                std::thread::sleep(Duration::from_millis(5));
            }
            samples
        })
    };
    let result = runtime.block_on(job.execute_in_cluster(cluster.member()));
    runtime.shutdown_timeout(Duration::from_secs(2));
    done.store(true, Ordering::SeqCst);
    let samples = sampler.join().map_err(|_| "the sampler failed")?;
    println!("WEIR: samples {}", samples.join(","));
    let paused: u64 = result
        .metrics
        .iter()
        .filter(|(name, _)| {
            name.contains(".fast.") && name.ends_with("watermarkAlignmentPausedTimeMs")
        })
        .map(|(_, v)| match v {
            weir_connector_api::metrics::MetricValue::Counter(c) => *c,
            _ => 0,
        })
        .sum();
    println!("WEIR: fast paused {paused} ms");
    match result.status {
        JobStatus::Finished => cluster
            .shutdown(Duration::from_secs(20))
            .map_err(|e| e.to_string()),
        JobStatus::Failed(e) => Err(format!("the job failed: {e}")),
        other => Err(format!("the job ended {other:?}")),
    }
}
