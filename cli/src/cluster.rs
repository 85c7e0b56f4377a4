//! Cluster mode on the command line: one pipeline across several `weir` processes, on
//! `weir-cluster` (timely-dataflow's communication layer).
//!
//! - `weir run pipeline.toml --cluster-process I --cluster-addresses a,b,c` runs process `I`'s
//!   share of the job (`crate::run::run` with [`RunOptions::cluster`](crate::run::RunOptions::cluster)): every process reads the same pipeline file, forms the
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

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir_runtime::{JobHandle, JobResult, JobStatus, RestoreFrom};

use crate::Exit;

/// The exit code of a process whose cluster broke (a peer died or was cut off) or could not
/// form: the supervisor restarts every process ([`weir_cluster::EXIT_RESTART`], 75).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 75
pub const CLUSTER_BROKEN: u8 = weir_cluster::EXIT_RESTART as u8;

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

/// Ends this process when its parent (the `weir cluster run` supervisor that started it) is
/// gone: a supervisor killed with SIGKILL cannot stop its processes, and a cluster left
/// running beside a new one would write the same output twice. Polls the parent's pid every
/// 200 ms from a thread of its own; exits with [`CLUSTER_BROKEN`].
pub fn exit_with_parent(process: usize) {
    let parent = std::os::unix::process::parent_id();
    let watch = move || loop {
        std::thread::sleep(Duration::from_millis(200));
        if std::os::unix::process::parent_id() != parent {
            eprintln!(
                "weir: process {process}: the supervisor (pid {parent}) is gone; exiting, as \
                 every process of the cluster does"
            );
            std::process::exit(i32::from(CLUSTER_BROKEN));
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("weir-parent-watch".into())
        .spawn(watch)
    {
        eprintln!("weir: process {process}: cannot watch the supervisor: {e}");
    }
}

/// Why a process could not join its cluster.
#[derive(Debug)]
pub enum JoinError {
    /// The addresses are not usable (not `host:port`): fix the command (exit 2).
    Invalid(String),
    /// The cluster did not form (a peer not up in time, a port in use, a process of another
    /// generation): the supervisor starts all processes again (exit 75).
    NotFormed(String),
}

/// Joins the cluster (blocks until every process connected or the connect timeout passed).
pub fn join(membership: &Membership) -> Result<weir_cluster::Cluster, JoinError> {
    let config = weir_cluster::ClusterConfig::new(membership.process, membership.addresses.clone())
        .generation(membership.generation)
        .connect_timeout(Duration::from_secs(30));
    weir_cluster::Cluster::start(&config).map_err(|e| {
        let message = format!(
            "process {} cannot join the cluster {}: {e}",
            membership.process,
            membership.addresses.join(",")
        );
        match e {
            weir_cluster::ClusterError::Config(_) => JoinError::Invalid(message),
            _ => JoinError::NotFormed(message),
        }
    })
}

/// Joins the cluster `membership` names, if any (in a blocking task): `Err` is the exit when it
/// cannot (the reason was printed).
pub(crate) async fn join_if_asked(
    membership: Option<&Membership>,
) -> Result<Option<weir_cluster::Cluster>, Exit> {
    let Some(membership) = membership.cloned() else {
        return Ok(None);
    };
    match tokio::task::spawn_blocking(move || join(&membership)).await {
        Ok(Ok(cluster)) => Ok(Some(cluster)),
        Ok(Err(JoinError::Invalid(e))) => {
            eprintln!("weir: {e}");
            Err(Exit::Invalid)
        }
        Ok(Err(JoinError::NotFormed(e))) => {
            // A cluster that could not form (a peer not up in time, a straggler of another
            // generation): the supervisor starts all processes again.
            eprintln!("weir: {e}");
            Err(Exit::ClusterBroken)
        }
        Err(e) => {
            eprintln!("weir: joining the cluster: {e}");
            Err(Exit::Failed)
        }
    }
}

/// After the job ended with `result`: says what crossed processes, leaves the cluster (unless
/// it broke), and returns the process's exit ([`exit_code`]).
pub(crate) async fn leave(cluster: weir_cluster::Cluster, result: &JobResult, exit: Exit) -> Exit {
    let stats = cluster.stats();
    eprintln!(
        "weir: process {} sent {} bytes to the other processes and received {}",
        cluster.process(),
        stats.bytes_sent,
        stats.bytes_received
    );
    if !matches!(result.status, JobStatus::Failed(_)) {
        let left = tokio::task::spawn_blocking(move || cluster.shutdown(Duration::from_secs(20)));
        if let Ok(Err(e)) = left.await {
            eprintln!("weir: leaving the cluster: {e}");
        }
    }
    exit_code(result, exit)
}

/// A job running in this process, or this process's share of a cluster job.
pub(crate) enum Started {
    /// The whole job, here.
    Local(JobHandle),
    /// This process's share.
    Cluster(weir_runtime::cluster::ClusterJob),
}

impl Started {
    /// The job's handle: here, or in process 0 of a cluster.
    pub(crate) fn handle(&self) -> Option<&JobHandle> {
        match self {
            Started::Local(handle) => Some(handle),
            Started::Cluster(job) => job.handle(),
        }
    }

    /// Whether the job ended (in this process).
    pub(crate) fn is_finished(&self) -> bool {
        match self {
            Started::Local(handle) => handle.is_finished(),
            Started::Cluster(job) => job.is_finished(),
        }
    }

    /// Waits for the job's end.
    pub(crate) async fn wait(self) -> JobResult {
        match self {
            Started::Local(handle) => handle.wait().await,
            Started::Cluster(job) => job.wait().await,
        }
    }
}

/// The exit of a process after the job ended with `result`: a broken cluster (also behind a
/// restart strategy that gave up) is [`CLUSTER_BROKEN`], for the supervisor; else `exit`.
pub fn exit_code(result: &JobResult, exit: Exit) -> Exit {
    if weir_cluster::exit_code(result) == weir_cluster::EXIT_RESTART {
        Exit::ClusterBroken
    } else {
        exit
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

/// `weir cluster run`: starts the processes, restarts them all when one dies
/// ([`weir_cluster::Supervisor`]); Ctrl-C and SIGTERM go to process 0, which stops the job with
/// a savepoint (the processes run in their own process group, so a terminal's Ctrl-C reaches
/// only the supervisor).
pub fn supervise(options: &SuperviseOptions) -> Exit {
    if options.processes == 0 {
        eprintln!("weir cluster run: -n must be at least 1");
        return Exit::Invalid;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("weir cluster run: cannot find the weir program: {e}");
            return Exit::Failed;
        }
    };
    let addresses = match free_addresses(options.processes) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("weir cluster run: cannot find free ports on 127.0.0.1: {e}");
            return Exit::Failed;
        }
    };
    let master = Arc::new(AtomicU32::new(0));
    if let Err(e) = forward_stop_signals(Arc::clone(&master)) {
        eprintln!("weir cluster run: cannot listen for signals: {e}");
        return Exit::Failed;
    }
    let supervisor = weir_cluster::Supervisor::new(addresses)
        .max_restarts(options.max_restarts)
        .grace(Duration::from_secs(10));
    let ran = supervisor.run(|spec| {
        if spec.process == 0 && spec.generation > 0 {
            eprintln!(
                "weir cluster run: restarting all {} processes from the latest checkpoint \
                 (generation {})",
                spec.addresses.len(),
                spec.generation
            );
        }
        let child = std::process::Command::new(&exe)
            .args(process_args(options, spec))
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()?;
        eprintln!(
            "weir cluster run: generation {}: process {} (pid {}) at {}",
            spec.generation,
            spec.process,
            child.id(),
            spec.addresses.get(spec.process).map_or("?", String::as_str)
        );
        if spec.process == 0 {
            master.store(child.id(), Ordering::SeqCst);
        }
        Ok(child)
    });
    match ran {
        Ok(_) => Exit::Ok,
        Err(weir_cluster::SupervisorError::Failed { code, .. }) => match code {
            // The process said why on its standard error.
            Some(2) => Exit::Invalid,
            Some(130) => Exit::Interrupted,
            _ => Exit::Failed,
        },
        Err(e @ weir_cluster::SupervisorError::GaveUp { .. }) => {
            eprintln!(
                "weir cluster run: {e}; the job's checkpoints stay: resume with `weir cluster \
                 run --from-latest-checkpoint` (--max-restarts {})",
                options.max_restarts
            );
            Exit::Failed
        }
        Err(e) => {
            eprintln!("weir cluster run: {e}");
            Exit::Failed
        }
    }
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

/// The `weir run` arguments of one process.
fn process_args(options: &SuperviseOptions, spec: &weir_cluster::ProcessSpec) -> Vec<String> {
    let mut args = vec![
        "run".to_owned(),
        options.file.display().to_string(),
        "--cluster-process".to_owned(),
        spec.process.to_string(),
        "--cluster-addresses".to_owned(),
        spec.addresses.join(","),
        "--cluster-generation".to_owned(),
        spec.generation.to_string(),
        "--exit-with-parent".to_owned(),
    ];
    if spec.generation == 0 {
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

/// Forwards Ctrl-C and SIGTERM to the process whose pid `master` holds (process 0), from a
/// thread of its own: process 0 stops the job with a savepoint (a second signal cancels it,
/// as in `weir run`).
fn forward_stop_signals(master: Arc<AtomicU32>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut terminate = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    })?;
    std::thread::Builder::new()
        .name("weir-cluster-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    let signal = tokio::select! {
                        Ok(()) = tokio::signal::ctrl_c() => "-INT",
                        Some(()) = terminate.recv() => "-TERM",
                        else => break,
                    };
                    let pid = master.load(Ordering::SeqCst);
                    if pid != 0 {
                        eprintln!("weir cluster run: stopping: process 0 stops the job ({signal})");
                        let _ = std::process::Command::new("kill")
                            .args([signal, &pid.to_string()])
                            .status();
                    }
                }
            });
        })?;
    Ok(())
}

/// `--restart-from-latest-checkpoint`: the newest checkpoint, else what the first run started
/// from.
pub fn restart_restore(from_savepoint: Option<PathBuf>) -> RestoreFrom {
    RestoreFrom::LatestCheckpointElse(from_savepoint)
}
