//! A keyed job on 1, 2 and 3 processes of this machine (cluster mode, loopback): datagen
//! (parallelism 3, unthrottled, `WEIR_BENCH_RECORDS` numbers, default 60 000 000) → key_by →
//! map → a blackhole sink, aligned checkpoints every second into a local directory. Every
//! process count runs the same plan (parallelism 3 everywhere), placed by
//! `weir_runtime::cluster::process_of`; with 1 process every channel is in memory.
//!
//! Process 0 times the job from its start to its end (cluster formation excluded) and reports
//! records/s; every process reports the bytes it sent to the others and what its sinks
//! counted (together: every record).
//!
//! Run: `cargo bench -p weir-cluster --bench job` (`WEIR_BENCH_ROUNDS`, default 3, the process
//! counts interleaved; the median is reported).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_cluster::{Cluster, ClusterConfig};
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_blackhole::BlackholeSink;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::{CheckpointConfig, JobConfig, JobStatus, StorageConfig, StreamEnvironment};

type Outcome<T = ()> = Result<T, String>;

fn main() {
    let result = match std::env::var("WEIR_BENCH_JOB_CHILD") {
        Ok(process) => child(&process),
        Err(_) => parent(),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn records() -> u64 {
    env_or("WEIR_BENCH_RECORDS", 60_000_000)
}

fn addresses(n: usize) -> Vec<String> {
    let listeners: Vec<TcpListener> = (0..n)
        .filter_map(|_| TcpListener::bind("127.0.0.1:0").ok())
        .collect();
    listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect()
}

/// One run on `n` processes: records/s (process 0) and every process's bytes sent; checks
/// that the sinks of all processes together saw every record.
fn run(n: usize, dir: &std::path::Path) -> Outcome<(f64, Vec<u64>)> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let addresses = addresses(n).join(",");
    let checkpoints = dir.join(format!("checkpoints-{n}-{}", std::process::id()));
    let children: Vec<_> = (0..n)
        .map(|p| {
            Command::new(&exe)
                .env("WEIR_BENCH_JOB_CHILD", p.to_string())
                .env("WEIR_BENCH_ADDRESSES", &addresses)
                .env("WEIR_BENCH_CHECKPOINTS", &checkpoints)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| e.to_string())
        })
        .collect::<Outcome<_>>()?;
    let mut rate = None;
    let mut bytes = Vec::new();
    let mut sunk = 0;
    for (p, mut child) in children.into_iter().enumerate() {
        let stdout = child.stdout.take().ok_or("no stdout")?;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(r) = line.strip_prefix("records/s ") {
                rate = r.parse().ok();
            }
            if let Some(b) = line.strip_prefix("bytes sent ") {
                bytes.push(b.parse().unwrap_or(0));
            }
            if let Some(s) = line.strip_prefix("sunk ") {
                sunk += s.parse::<u64>().unwrap_or(0);
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("process {p} of {n} failed: {status}"));
        }
    }
    let _ = std::fs::remove_dir_all(&checkpoints);
    if sunk != records() {
        return Err(format!(
            "{n} processes: {sunk} records reached the sinks of {}",
            records()
        ));
    }
    Ok((rate.ok_or("process 0 reported no rate")?, bytes))
}

fn parent() -> Outcome {
    let rounds = env_or("WEIR_BENCH_ROUNDS", 3);
    let dir = std::env::temp_dir();
    let mut rates: [Vec<f64>; 3] = Default::default();
    let mut sent: [Vec<u64>; 3] = Default::default();
    for round in 0..rounds {
        for n in 1..=3 {
            let (rate, bytes) = run(n, &dir)?;
            println!("round {round}: {n} process(es): {rate:.0} records/s, bytes sent {bytes:?}");
            rates[n - 1].push(rate);
            sent[n - 1] = bytes;
        }
    }
    println!(
        "\n{} records, parallelism 3, key_by, checkpoints every second; median of {rounds}:",
        records()
    );
    for (i, r) in rates.iter_mut().enumerate() {
        r.sort_by(f64::total_cmp);
        let median = r.get(r.len() / 2).copied().unwrap_or(0.0);
        println!(
            "{} process(es): {median:.0} records/s; bytes sent per process (last round) {:?}",
            i + 1,
            sent[i]
        );
    }
    Ok(())
}

fn child(process: &str) -> Outcome {
    let process: usize = process.parse().map_err(|e| format!("{e}"))?;
    let addresses: Vec<String> = std::env::var("WEIR_BENCH_ADDRESSES")
        .map_err(|e| e.to_string())?
        .split(',')
        .map(str::to_owned)
        .collect();
    let checkpoints = std::env::var("WEIR_BENCH_CHECKPOINTS").map_err(|e| e.to_string())?;
    let env = StreamEnvironment::new(
        JobConfig::new("bench")
            .parallelism(3)
            .checkpointing(CheckpointConfig::every(Duration::from_secs(1)))
            .storage(StorageConfig::Local(checkpoints.into())),
    );
    let sink = BlackholeSink::<u64>::new();
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(records()), RateLimiterStrategy::no_op()),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .channel_state_serializer(U64Serializer)
    .key_by(|n| *n)
    .map(|n| n.wrapping_mul(3))
    .sink_to(sink.clone());
    let job = env.build().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let cluster =
        Cluster::start(&ClusterConfig::new(process, addresses)).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let result = runtime.block_on(job.execute_in_cluster(cluster.member()));
    let took = started.elapsed();
    runtime.shutdown_timeout(Duration::from_secs(2));
    if !matches!(result.status, JobStatus::Finished) {
        return Err(format!(
            "process {process}: the job ended {:?}",
            result.status
        ));
    }
    if process == 0 {
        println!("records/s {}", records() as f64 / took.as_secs_f64());
    }
    println!("bytes sent {}", cluster.stats().bytes_sent);
    println!("sunk {}", sink.count());
    cluster
        .shutdown(Duration::from_secs(20))
        .map_err(|e| e.to_string())
}
