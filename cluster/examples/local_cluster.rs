//! One job on three local processes: `cargo run -p weir-cluster --example local_cluster`.
//!
//! Without arguments this binary is the supervisor: it picks three loopback addresses and
//! starts itself three times through [`Supervisor`] (restarting all of them with a new
//! generation if one dies). Started with `--process I --addresses A,B,C --generation G`, it is
//! process `I` of the cluster: it joins, runs its share of the job (datagen → key_by → map →
//! blackhole, checkpoints every second) and exits with [`exit_code`]. On several machines, run
//! the second form on each host with its index and every host's address.

use std::net::TcpListener;
use std::process::{Command, ExitCode};
use std::time::Duration;

use weir_cluster::{exit_code, Cluster, ClusterConfig, Supervisor, EXIT_RESTART};
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_blackhole::BlackholeSink;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::{
    CheckpointConfig, JobConfig, RestoreFrom, SinkOptions, StorageConfig, StreamEnvironment,
};

const RECORDS: u64 = 1_000_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = if args.is_empty() {
        supervise()
    } else {
        process(&args)
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).map(String::as_str)
}

/// The supervisor: three processes of this binary on loopback.
fn supervise() -> i32 {
    let addresses: Vec<String> = (0..3)
        .filter_map(|_| TcpListener::bind("127.0.0.1:0").ok())
        .collect::<Vec<_>>()
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("error: cannot find this binary to start it again");
        return 1;
    };
    let checkpoints =
        std::env::temp_dir().join(format!("weir-local-cluster-{}", std::process::id()));
    let result = Supervisor::new(addresses).run(|spec| {
        Command::new(&exe)
            .args(["--process", &spec.process.to_string()])
            .args(["--addresses", &spec.addresses.join(",")])
            .args(["--generation", &spec.generation.to_string()])
            .args(["--checkpoints", &checkpoints.to_string_lossy()])
            .spawn()
    });
    let _ = std::fs::remove_dir_all(&checkpoints);
    match result {
        Ok(supervised) => {
            println!("the cluster ran {} generation(s)", supervised.generations);
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Process `--process` of the cluster.
fn process(args: &[String]) -> i32 {
    let (Some(process), Some(addresses), Some(generation), Some(checkpoints)) = (
        arg(args, "--process").and_then(|p| p.parse::<usize>().ok()),
        arg(args, "--addresses"),
        arg(args, "--generation").and_then(|g| g.parse::<u64>().ok()),
        arg(args, "--checkpoints"),
    ) else {
        eprintln!(
            "usage: local_cluster [--process I --addresses A,B,C --generation G --checkpoints DIR]"
        );
        return 1;
    };
    let addresses: Vec<String> = addresses.split(',').map(str::to_owned).collect();
    // A restarted generation resumes from the latest checkpoint, if one completed.
    let has_checkpoint = std::fs::read_dir(checkpoints).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.path().join("_metadata").exists())
    });
    let restore = if generation > 0 && has_checkpoint {
        RestoreFrom::LatestCheckpoint
    } else {
        RestoreFrom::Nothing
    };
    let env = StreamEnvironment::new(
        JobConfig::new("local-cluster")
            .parallelism(3)
            .checkpointing(CheckpointConfig::every(Duration::from_secs(1)))
            .storage(StorageConfig::Local(checkpoints.into()))
            .restore(restore),
    );
    let sink = BlackholeSink::<u64>::new();
    env.from_source(
        DataGeneratorSource::new(
            |n| n,
            Some(RECORDS),
            RateLimiterStrategy::per_second(500_000.0),
        ),
        WatermarkStrategy::no_watermarks(),
        "numbers",
    )
    .uid("numbers")
    // Records crossing processes need a codec.
    .channel_state_serializer(U64Serializer)
    .key_by(|n| *n)
    .map(|n| n * 2)
    .sink_to_with(
        sink.clone(),
        &SinkOptions {
            uid: Some("blackhole".into()),
            ..SinkOptions::default()
        },
    );
    let job = match env.build() {
        Ok(job) => job,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let config = ClusterConfig::new(process, addresses).generation(generation);
    let cluster = match Cluster::start(&config) {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("error: process {process}: {e}");
            return EXIT_RESTART;
        }
    };
    let result = runtime.block_on(job.execute_in_cluster(cluster.member()));
    runtime.shutdown_timeout(Duration::from_secs(2));
    let stats = cluster.stats();
    println!(
        "process {process}: {:?}; its sink counted {} records; {} bytes sent to the others",
        result.status,
        sink.count(),
        stats.bytes_sent
    );
    if process == 0 {
        println!(
            "the job: {} records into the sinks of all processes, {} checkpoints",
            result.counter("blackhole", "numRecordsIn"),
            result.completed_checkpoints
        );
    }
    let code = exit_code(&result);
    if code == 0 {
        if let Err(e) = cluster.shutdown(Duration::from_secs(20)) {
            eprintln!("error: process {process}: {e}");
            return EXIT_RESTART;
        }
    }
    code
}
