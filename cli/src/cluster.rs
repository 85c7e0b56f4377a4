//! Cluster mode on the command line: one pipeline across several `weir` processes, on
//! `weir-cluster` (timely-dataflow's communication layer).
//!
//! - `weir run pipeline.toml --cluster-process I --cluster-addresses a,b,c` runs process `I`'s
//!   share of the job ([`run_member`]): every process reads the same pipeline file, forms the
//!   cluster with the others, and runs the subtasks placed on it (subtask `i` of a task in
//!   process `i mod N`; tasks of parallelism 1, such as committers, in process 0). Process 0
//!   runs the job master: checkpoints, restarts, split enumerators; Ctrl-C or SIGTERM there
//!   stops the job with a savepoint as `weir run` does. The other processes ignore those
//!   signals and end when process 0 says the job ended.
//! - `weir cluster run -n N pipeline.toml` is the supervisor ([`supervise`]): it starts `N`
//!   such processes on loopback, and when one of them dies (or the cluster breaks: a process
//!   that lost a peer exits with [`CLUSTER_BROKEN`]) it stops the others and starts all `N`
//!   again with the next generation, restoring the latest checkpoint
//!   ([`RestoreFrom::LatestCheckpointElse`]: the savepoint or empty state if none completed).
//!   A process of an older generation is refused at the cluster's handshake.
//!
//! Checkpoint storage must be shared by the processes: a local directory for processes on one
//! machine, `s3://` for several machines. On several machines, run the `weir run …
//! --cluster-process I` command on each host (docs/cluster.md).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use weir_runtime::cluster::{ClusterMember, FrameTransport};
use weir_runtime::{JobStatus, RestoreFrom, RuntimeError};

use crate::Exit;

/// The exit code of a process whose cluster broke (a peer died or was cut off): the
/// supervisor restarts every process.
pub const CLUSTER_BROKEN: u8 = 75;

/// This process's place in a cluster (`--cluster-process`, `--cluster-addresses`,
/// `--cluster-generation`).
#[derive(Debug, Clone)]
pub struct Membership {
    /// This process's index; process 0 runs the job master.
    pub process: usize,
    /// Every process's address (`host:port`), in process order.
    pub addresses: Vec<String>,
    /// The supervisor's generation: processes of another generation are refused.
    pub generation: u64,
}

impl Membership {
    /// Checks the index against the addresses.
    pub fn validate(&self) -> Result<(), String> {
        if self.addresses.is_empty() {
            return Err("--cluster-addresses names no process".to_owned());
        }
        if self.process >= self.addresses.len() {
            return Err(format!(
                "--cluster-process {} is not an index of the {} --cluster-addresses (0 to {})",
                self.process,
                self.addresses.len(),
                self.addresses.len() - 1
            ));
        }
        Ok(())
    }
}

/// Joins the cluster (blocks until every process connected or the connect timeout passed).
pub fn join(membership: &Membership) -> Result<weir_cluster::Cluster, String> {
    let config = weir_cluster::ClusterConfig::new(membership.process, membership.addresses.clone())
        .generation(membership.generation)
        .connect_timeout(Duration::from_secs(30));
    weir_cluster::Cluster::start(&config).map_err(|e| {
        format!(
            "process {} cannot join the cluster {}: {e}",
            membership.process,
            membership.addresses.join(",")
        )
    })
}

/// The member handle of a joined cluster.
pub fn member(cluster: &weir_cluster::Cluster) -> ClusterMember {
    let transport: Arc<dyn FrameTransport> = Arc::new(cluster.transport());
    ClusterMember {
        process: cluster.process(),
        processes: cluster.processes(),
        transport,
    }
}

/// The exit of a process after the job ended with `status`: a broken cluster is
/// [`CLUSTER_BROKEN`], for the supervisor.
pub fn exit_code(status: &JobStatus, exit: Exit) -> u8 {
    match status {
        JobStatus::Failed(RuntimeError::ClusterBroken(_)) => CLUSTER_BROKEN,
        _ => exit.code(),
    }
}

/// What `weir cluster run` was asked.
#[derive(Debug, Clone)]
pub struct SuperviseOptions {
    /// The pipeline file.
    pub file: PathBuf,
    /// How many processes.
    pub processes: usize,
    /// The first generation starts from this savepoint.
    pub from_savepoint: Option<PathBuf>,
    /// The first generation starts from the latest checkpoint.
    pub from_latest_checkpoint: bool,
    /// How many times all processes are restarted after one died.
    pub max_restarts: u32,
    /// Extra `weir run` arguments for every process (e.g. `--progress quiet`).
    pub run_args: Vec<String>,
}

/// How one generation ended.
enum Generation {
    /// Every process exited with this code (process 0's).
    Ended(u8),
    /// A process died or the cluster broke: restart all.
    Broken(String),
}

/// `weir cluster run`: starts the processes, restarts them all when one dies.
pub fn supervise(options: &SuperviseOptions) -> Exit {
    if options.processes == 0 {
        eprintln!("weir cluster run: -n must be at least 1");
        return Exit::Invalid;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weir cluster run: cannot start the runtime: {e}");
            return Exit::Failed;
        }
    };
    runtime.block_on(supervise_async(options))
}

async fn supervise_async(options: &SuperviseOptions) -> Exit {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("weir cluster run: cannot find the weir program: {e}");
            return Exit::Failed;
        }
    };
    let mut interrupted = false;
    for generation in 0..=u64::from(options.max_restarts) {
        let addresses = match free_addresses(options.processes) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("weir cluster run: cannot find free ports on 127.0.0.1: {e}");
                return Exit::Failed;
            }
        };
        match run_generation(&exe, options, generation, &addresses, &mut interrupted).await {
            Ok(Generation::Ended(code)) => {
                return match code {
                    0 => Exit::Ok,
                    2 => Exit::Invalid,
                    130 => Exit::Interrupted,
                    _ => Exit::Failed,
                };
            }
            Ok(Generation::Broken(why)) if interrupted => {
                eprintln!("weir cluster run: generation {generation} ended while stopping: {why}");
                return Exit::Interrupted;
            }
            Ok(Generation::Broken(why)) => {
                if generation == u64::from(options.max_restarts) {
                    eprintln!(
                        "weir cluster run: generation {generation}: {why}; no restart left \
                         (--max-restarts {}): the job's checkpoints stay, resume with \
                         `weir cluster run --from-latest-checkpoint`",
                        options.max_restarts
                    );
                    return Exit::Failed;
                }
                eprintln!(
                    "weir cluster run: generation {generation}: {why}; restarting all {} \
                     processes from the latest checkpoint (generation {})",
                    options.processes,
                    generation + 1
                );
            }
            Err(e) => {
                eprintln!("weir cluster run: {e}");
                return Exit::Failed;
            }
        }
    }
    Exit::Failed
}

/// `n` ports on loopback that were free a moment ago.
fn free_addresses(n: usize) -> std::io::Result<Vec<String>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect()
}

/// The `weir run` arguments of process `process` in `generation`.
fn process_args(
    options: &SuperviseOptions,
    generation: u64,
    process: usize,
    addresses: &[String],
) -> Vec<String> {
    let mut args = vec![
        "run".to_owned(),
        options.file.display().to_string(),
        "--cluster-process".to_owned(),
        process.to_string(),
        "--cluster-addresses".to_owned(),
        addresses.join(","),
        "--cluster-generation".to_owned(),
        generation.to_string(),
    ];
    if generation == 0 {
        if options.from_latest_checkpoint {
            args.push("--from-latest-checkpoint".to_owned());
        }
    } else {
        args.push("--restart-from-latest-checkpoint".to_owned());
    }
    if let Some(savepoint) = &options.from_savepoint {
        args.push("--from-savepoint".to_owned());
        args.push(savepoint.display().to_string());
    }
    args.extend(options.run_args.iter().cloned());
    args
}

async fn run_generation(
    exe: &std::path::Path,
    options: &SuperviseOptions,
    generation: u64,
    addresses: &[String],
    interrupted: &mut bool,
) -> Result<Generation, String> {
    let mut children = Vec::with_capacity(options.processes);
    for process in 0..options.processes {
        let child = tokio::process::Command::new(exe)
            .args(process_args(options, generation, process, addresses))
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start process {process}: {e}"))?;
        eprintln!(
            "weir cluster run: generation {generation}: process {process} (pid {}) at {}",
            child.id().unwrap_or(0),
            addresses[process]
        );
        children.push(Some(child));
    }
    let mut codes: Vec<Option<u8>> = vec![None; children.len()];
    let mut broken: Option<String> = None;
    let mut terminate = stop_signals().map_err(|e| format!("cannot listen for signals: {e}"))?;
    loop {
        if codes.iter().all(Option::is_some) {
            break;
        }
        tokio::select! {
            Some(signal) = terminate.recv() => {
                // The processes run in their own process group (a terminal's Ctrl-C reaches
                // only the supervisor): process 0 stops the job with a savepoint (a second
                // signal cancels it, as in `weir run`).
                *interrupted = true;
                if let Some(Some(master)) = children.first() {
                    if let Some(pid) = master.id() {
                        let _ = std::process::Command::new("kill")
                            .args([signal, &pid.to_string()])
                            .status();
                    }
                }
                eprintln!("weir cluster run: stopping: process 0 stops the job ({signal})");
            }
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        for (process, slot) in children.iter_mut().enumerate() {
            let Some(child) = slot else { continue };
            let Ok(Some(status)) = child.try_wait() else {
                continue;
            };
            *slot = None;
            let code = match status.code() {
                Some(code) => u8::try_from(code).unwrap_or(1),
                None => {
                    broken.get_or_insert(format!("process {process} was killed ({status})"));
                    CLUSTER_BROKEN
                }
            };
            if code == CLUSTER_BROKEN {
                broken.get_or_insert(format!("process {process} lost the cluster"));
            }
            codes[process] = Some(code);
        }
        if broken.is_some() {
            // The others lose the cluster within moments; stop any that does not.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            for child in children.iter_mut().flatten() {
                if tokio::time::timeout_at(deadline, child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
            }
            return Ok(Generation::Broken(broken.unwrap_or_default()));
        }
    }
    let code = codes.first().copied().flatten().unwrap_or(1);
    Ok(Generation::Ended(code))
}

/// Ctrl-C and SIGTERM as they reach the supervisor, as the `kill` option that forwards them.
fn stop_signals() -> std::io::Result<tokio::sync::mpsc::UnboundedReceiver<&'static str>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let term_tx = tx.clone();
    tokio::spawn(async move {
        while terminate.recv().await.is_some() {
            if term_tx.send("-TERM").is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send("-INT").is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// `--restart-from-latest-checkpoint`: the newest checkpoint, else what the first run started
/// from.
pub fn restart_restore(from_savepoint: Option<PathBuf>) -> RestoreFrom {
    RestoreFrom::LatestCheckpointElse(from_savepoint)
}
