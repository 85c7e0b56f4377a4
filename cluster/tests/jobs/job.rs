//! The job every test cluster runs, and what a process of it does: datagen (parallelism 3,
//! readers spread over the processes) → key_by → an exactly-once file sink (writers of
//! parallelism 3, one committer in process 0), checkpoints every 200 ms into a directory every
//! process shares.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weir_cluster::{Cluster, ClusterConfig};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_connector_files::sink::BasePathBucketAssigner;
use weir_connector_files::{FileSink, LocalFileSystem, TextLinesFormat};
use weir_runtime::fault::{FailOnce, FaultPoint};
use weir_runtime::restart::RestartStrategy;
use weir_runtime::{
    BarrierAlignment, CheckpointConfig, CheckpointStatus, Job, JobConfig, JobHandle, JobStatus,
    RestoreFrom, SinkOptions, StopMode, StorageConfig, StreamEnvironment,
};

use super::support::{ADDRESSES, GENERATION, PROCESS};

/// Records the job generates.
pub(crate) const COUNT: u64 = 6_000;
/// Records per second over every reader (the job runs about three seconds, so it takes
/// checkpoints on the way).
const RATE: f64 = 2_000.0;
/// The directories of a run.
pub(crate) const OUT: &str = "WEIR_CLUSTER_OUT";
pub(crate) const CHECKPOINTS: &str = "WEIR_CLUSTER_CHECKPOINTS";
/// `latest` to restore the latest checkpoint, `savepoint:<path>` to restore a savepoint.
pub(crate) const RESTORE: &str = "WEIR_CLUSTER_RESTORE";
/// A directory: process 0 stops the job with a savepoint into it after its first completed
/// checkpoint.
pub(crate) const STOP_INTO: &str = "WEIR_CLUSTER_STOP_INTO";
/// Set: that stop drains the input first (every reader, in every process, ends its input).
pub(crate) const DRAIN: &str = "WEIR_CLUSTER_DRAIN";
/// A process index: that process's sink writer fails once at checkpoint 3, and the job may
/// restart.
pub(crate) const FAIL_IN: &str = "WEIR_CLUSTER_FAIL_IN";
/// Set: checkpoints are unaligned (barriers overtake the records in flight, which are stored
/// with the checkpoint).
pub(crate) const UNALIGNED: &str = "WEIR_CLUSTER_UNALIGNED";
/// Set: the stream before key_by declares no codec (its records cannot cross processes).
pub(crate) const NO_CODEC: &str = "WEIR_CLUSTER_NO_CODEC";

/// The job, writing its output under `out`, its checkpoints under `checkpoints`; with `fail`,
/// a sink writer of this process fails once before its snapshot of checkpoint 3, and the job
/// restarts up to 3 times.
pub(crate) fn job(
    out: &Path,
    checkpoints: &Path,
    restore: RestoreFrom,
    fail: bool,
) -> Result<Job, String> {
    let mut config = JobConfig::new("cluster-job")
        .parallelism(3)
        .checkpointing(
            CheckpointConfig::every(Duration::from_millis(200)).alignment(
                if std::env::var(UNALIGNED).is_ok() {
                    BarrierAlignment::Unaligned
                } else {
                    BarrierAlignment::Aligned
                },
            ),
        )
        .storage(StorageConfig::Local(checkpoints.to_path_buf()))
        .restore(restore);
    if std::env::var(FAIL_IN).is_ok() {
        config = config.restart(RestartStrategy::FixedDelay {
            attempts: 3,
            delay: Duration::from_millis(100),
        });
    }
    if fail {
        config = config.faults(Arc::new(FailOnce::new(
            FaultPoint::BeforeSnapshot,
            CheckpointId(3),
        )));
    }
    let env = StreamEnvironment::new(config);
    let sink = FileSink::row(
        Arc::new(LocalFileSystem::new()),
        out.to_string_lossy().into_owned(),
        TextLinesFormat,
    )
    .bucket_assigner(BasePathBucketAssigner)
    .build()
    .map_err(|e| e.to_string())?;
    let numbers = env
        .from_source(
            DataGeneratorSource::new(|n| n, Some(COUNT), RateLimiterStrategy::per_second(RATE)),
            WatermarkStrategy::no_watermarks(),
            "numbers",
        )
        .uid("numbers");
    let numbers = if std::env::var(NO_CODEC).is_ok() {
        numbers
    } else {
        numbers.channel_state_serializer(U64Serializer)
    };
    numbers.key_by(|n| *n).map(|n| n.to_string()).sink_to_with(
        sink,
        &SinkOptions {
            uid: Some("files".into()),
            committer_parallelism: NonZeroUsize::new(1),
        },
    );
    env.build().map_err(|e| e.to_string())
}

/// How often each number is in the committed part files under `out` (in-progress and hidden
/// files are not output yet).
pub(crate) fn committed(out: &Path) -> Result<BTreeMap<u64, usize>, String> {
    let mut counts = BTreeMap::new();
    let entries = std::fs::read_dir(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("part-") || name.contains(".inprogress.") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).map_err(|e| e.to_string())?;
        for line in text.lines() {
            let n: u64 = line
                .parse()
                .map_err(|e| format!("{name}: line `{line}`: {e}"))?;
            *counts.entry(n).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Stops the job with a savepoint into `dir` once a checkpoint completed.
async fn stop_after_a_checkpoint(handle: &JobHandle, dir: &Path) -> Result<(), String> {
    while !handle
        .checkpoint_history()
        .iter()
        .any(|c| c.status == CheckpointStatus::Completed)
    {
        if handle.is_finished() {
            return Err("the job ended before its first checkpoint".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let savepoint = handle
        .stop_with_savepoint(
            dir,
            if std::env::var(DRAIN).is_ok() {
                StopMode::Drain
            } else {
                StopMode::NoDrain
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    println!("WEIR: savepoint {savepoint}");
    Ok(())
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|e| format!("{name}: {e}"))
}

/// Why a process ends early: its exit code and error.
struct Exit(i32, String);

impl From<String> for Exit {
    fn from(e: String) -> Self {
        Exit(1, e)
    }
}

/// Runs this process's part of the job; the exit code (`weir_cluster::exit_code`'s: 75 when
/// the cluster broke, so a supervisor restarts every process).
pub(crate) fn run() -> i32 {
    let result = run_process();
    match result {
        Ok(()) => 0,
        Err(Exit(code, e)) => {
            eprintln!("WEIR: error: {e}");
            code
        }
    }
}

fn run_process() -> Result<(), Exit> {
    let process: usize = var(PROCESS)?.parse().map_err(|e| format!("{e}"))?;
    let addresses: Vec<String> = var(ADDRESSES)?.split(',').map(str::to_owned).collect();
    let generation: u64 = var(GENERATION)?.parse().map_err(|e| format!("{e}"))?;
    let restore = match var(RESTORE) {
        Ok(r) if r == "latest" => RestoreFrom::LatestCheckpoint,
        Ok(r) => match r.strip_prefix("savepoint:") {
            Some(path) => RestoreFrom::Savepoint(PathBuf::from(path)),
            None => RestoreFrom::Nothing,
        },
        Err(_) => RestoreFrom::Nothing,
    };
    let out = PathBuf::from(var(OUT)?);
    let checkpoints = PathBuf::from(var(CHECKPOINTS)?);
    let config = ClusterConfig::new(process, addresses)
        .generation(generation)
        .connect_timeout(Duration::from_secs(10));
    let fail = var(FAIL_IN).is_ok_and(|p| p == process.to_string());
    let job = job(&out, &checkpoints, restore, fail)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let cluster =
        Cluster::start(&config).map_err(|e| Exit(weir_cluster::EXIT_RESTART, e.to_string()))?;
    println!("WEIR: started");
    let member = cluster.member();
    let stop_into = var(STOP_INTO).ok().map(PathBuf::from);
    let result = runtime.block_on(async move {
        let running = job.start_in_cluster(member);
        if let (Some(dir), Some(handle)) = (stop_into, running.handle()) {
            stop_after_a_checkpoint(handle, &dir).await?;
        }
        // What process 0's monitor (the dashboard's source) shows of every subtask.
        if let Some(handle) = running.handle() {
            let mut seen = std::collections::BTreeSet::new();
            while !handle.is_finished() {
                for s in handle.snapshot().subtasks {
                    if s.records_in > 0 {
                        seen.insert(format!("{}#{}", s.task, s.subtask));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let seen: Vec<String> = seen.into_iter().collect();
            println!("WEIR: monitor saw records in {}", seen.join(" "));
        }
        Ok::<_, String>(running.wait().await)
    })?;
    runtime.shutdown_timeout(Duration::from_secs(2));
    let stats = cluster.stats();
    println!(
        "WEIR: crossed {} frames {} bytes out, {} frames {} bytes in",
        stats.frames_sent, stats.bytes_sent, stats.frames_received, stats.bytes_received
    );
    println!(
        "WEIR: attempts {} checkpoints {}",
        result.attempts, result.completed_checkpoints
    );
    println!(
        "WEIR: sink records in {}",
        result.counter("files", "numRecordsIn")
    );
    let unaligned: Vec<u64> = result
        .checkpoint_history
        .iter()
        .flat_map(|c| c.subtasks.iter().filter_map(|s| s.in_flight_bytes))
        .collect();
    println!(
        "WEIR: unaligned snapshots {} in-flight bytes {}",
        unaligned.len(),
        unaligned.iter().sum::<u64>()
    );
    if let Some(id) = result.restored_from {
        println!("WEIR: restored from {id}");
    }
    let code = weir_cluster::exit_code(&result);
    let shutdown = |cluster: Cluster| {
        cluster
            .shutdown(Duration::from_secs(20))
            .map_err(|e| Exit(weir_cluster::EXIT_RESTART, e.to_string()))
    };
    match result.status {
        JobStatus::Finished => {
            println!("WEIR: finished");
            shutdown(cluster)
        }
        JobStatus::Stopped { savepoint } => {
            println!("WEIR: stopped with savepoint {savepoint}");
            shutdown(cluster)
        }
        JobStatus::Failed(e) => Err(Exit(code, format!("the job failed: {e}"))),
        other => Err(format!("the job ended {other:?}").into()),
    }
}
