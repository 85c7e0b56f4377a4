//! # Weir's cluster mode, first layer: channels between processes on timely-dataflow
//!
//! A Weir job whose subtasks run in several processes needs channels between subtasks in
//! different processes. This crate carries them: it forms a cluster of processes from a list of
//! addresses ([`ClusterConfig`], [`Cluster::start`]) and implements the runtime's cluster seam
//! ([`weir_runtime::cluster`]): a [`FrameTransport`](weir_runtime::cluster::FrameTransport)
//! whose ends the runtime wraps in its typed `RemoteSender` / `RemoteReceiver` (batches with
//! their event times, watermarks, idleness, barriers, end of data, and the overtaking barriers of
//! unaligned checkpoints, as versioned, checksummed frames).
//!
//! ```no_run
//! use std::sync::Arc;
//! use weir_cluster::{Cluster, ClusterConfig};
//! use weir_connector_api::state::U64Serializer;
//! use weir_runtime::cluster::{ChannelKey, ChannelSender, FrameTransport, RemoteSender};
//! use weir_runtime::element::{Batch, StreamElement};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let addresses = vec!["127.0.0.1:7001".to_owned(), "127.0.0.1:7002".to_owned()];
//! let cluster = Cluster::start(&ClusterConfig::new(0, addresses))?; // process 1 starts too
//! let key = ChannelKey { attempt: 0, edge: 0, upstream: 0, downstream: 0 };
//! let frames = cluster.transport().open_sender(key, 1)?;
//! let mut tx = RemoteSender::new(frames, Arc::new(U64Serializer), key.to_string());
//! tx.send(StreamElement::Batch(Batch::untimed(vec![1, 2, 3]))).await?;
//! drop(tx);
//! cluster.shutdown(std::time::Duration::from_secs(10))?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Design
//!
//! - **Why timely's communication layer.** timely-dataflow forms a cluster from a list of
//!   addresses and carries messages between workers over ordered per-pair TCP channels, with
//!   its own send and receive threads per peer; that is exactly what cross-process channels
//!   need. Its dataflow engine (scopes, operators, progress tracking) is not used: Weir keeps
//!   its own tasks, checkpoints and restarts on tokio, as Bytewax and Pathway keep theirs on
//!   timely. So the dependency is `timely_communication` (the crate of timely-dataflow that
//!   timely itself uses for this), pinned exactly (`=0.32.0`).
//! - **One process, one timely worker, one communication thread.** Timely's allocator must
//!   stay on the thread that built it, while Weir's subtasks run on tokio's threads. A
//!   dedicated thread (`weir-cluster-comm`) owns the allocator: channel ends post messages into
//!   an outbox and wake it; it pushes them into timely and hands received frames to the ends,
//!   waking their tasks.
//! - **Multiplexed.** Every cross-process message travels on one timely channel, tagged with its
//!   channel key (attempt, edge, upstream subtask, downstream subtask). Timely's channels are
//!   FIFO per pair of workers, so each Weir channel stays ordered; channels open and close at
//!   any time (a new job attempt opens new keys) without timely's collective, ordered channel
//!   allocation; frames for a channel whose receiver is not open yet wait for it.
//! - **Framing.** A frame is Weir's own bytes (format version, kind, payload, CRC-32), written
//!   and checked by the runtime's typed ends; this crate adds a 17-byte routing head.
//! - **Credits.** Timely has no backpressure. The receiver grants the edge's channel capacity
//!   when it opens and one credit per data frame its task consumed (coalesced into one message
//!   per wake of the communication thread); a sender without credit is full
//!   (`try_send` → `Full`, `send` waits). Priority frames (overtaking barriers, with the
//!   sender's partly filled batch) need none, so a barrier never waits behind backpressure.
//!   In flight per channel: at most `capacity` data frames plus overtaking barriers.
//! - **Failures.** Timely panics when a connection breaks (its network threads, then whatever
//!   touches the poisoned queues). The communication thread runs under `catch_unwind`, a panic
//!   hook keeps timely's panics from printing crash reports, and the first failure becomes the
//!   transport's error: every channel end returns it (naming the broken connection), so the
//!   tasks fail with it and the process can exit with a clear message
//!   ([`Cluster::failure`]). Like timely, a cluster fate-shares: one dead process stops all.
//!   The cluster forms with a deadline ([`ClusterConfig::connect_timeout`]) and a handshake
//!   that refuses a process of another size or [generation](ClusterConfig::generation).
//! - **Shutdown.** [`Cluster::shutdown`] says goodbye to every peer and waits for theirs
//!   before closing the connections, so no process closes a connection another still sends on.
//!
//! ## The job level (in `weir_runtime::cluster`)
//!
//! Every process runs the same job (the same `main`, or the same pipeline file) and calls
//! `Job::execute_in_cluster` (or `Job::start_in_cluster`, which in process 0 gives the job's
//! `JobHandle` for savepoints and stops) with its [`ClusterMember`](weir_runtime::cluster::ClusterMember):
//!
//! ```no_run
//! use std::time::Duration;
//! use weir_cluster::{Cluster, ClusterConfig};
//!
//! # async fn run(job: weir_runtime::Job, process: usize, addresses: Vec<String>, generation: u64)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClusterConfig::new(process, addresses).generation(generation);
//! let cluster = tokio::task::spawn_blocking(move || Cluster::start(&config)).await??;
//! let result = job.execute_in_cluster(cluster.member()).await;
//! println!("{:?}, {:?} crossed", result.status, cluster.stats());
//! if result.is_finished() {
//!     cluster.shutdown(Duration::from_secs(20))?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! - **Placement** is a fixed function of the plan, so every process computes it alone:
//!   subtask `i` of every task group runs in process `i mod N`
//!   ([`process_of`](weir_runtime::cluster::process_of)). A source's readers spread over every
//!   process; groups of parallelism 1 (committers) run in process 0; subtasks of equal index
//!   share a process, so pointwise edges stay local.
//! - **Channels**: an edge's channel between two subtasks of one process is an in-memory
//!   channel; between processes it is a `RemoteSender` / `RemoteReceiver` over this transport,
//!   its records written with the stream's codec (`DataStream::channel_state_serializer`; a
//!   sink's committables with its committer's serializer). An edge that crosses processes
//!   without a codec fails the job at once, naming the edge; it is not restarted.
//! - **One master, in process 0**: the checkpoint coordinator, the restart strategy, every
//!   source's split enumerator and the coordinator store. The other processes run subtasks
//!   only: the master tells them to start each attempt (with the restored checkpoint's
//!   metadata, which holds every subtask's state), to stop it, and that the job ended.
//! - **Control messages** travel as versioned, checksummed frames (marker `WCTL`, format
//!   version 1) on one control channel per direction and pair of processes, as priority frames
//!   of this transport, so they never wait for data credits. Commands to a remote subtask go
//!   through one proxy channel per subtask, so they keep their order: a split assigned after a
//!   snapshot reaches its reader after the barrier. Split assignments are written with the
//!   source's split serializer, acknowledgements carry the snapshot bytes, errors travel as
//!   text; a custom source event cannot cross processes (an error says so).
//! - **Failures.** A failed subtask anywhere fails the attempt; the master restarts every
//!   process's subtasks from the latest checkpoint (its restart strategy). A dead process
//!   breaks the transport: every other process fails the job with `RuntimeError::ClusterBroken`
//!   and no restart in place (a restart cannot bring a process back) — the supervisor restarts
//!   them all. Tested with real processes: 20 SIGKILL trials (any process, the master
//!   included), restarts on 3 → 2 and 2 → 3 processes from a checkpoint and from a savepoint,
//!   and a task failure in another process (`tests/jobs.rs`).
//! - **Monitoring and metrics**: every process reports what its subtasks measure (busy /
//!   idle / back-pressured time, records in and out, watermark, alignment pauses) to process 0
//!   four times a second, so its monitor and dashboard show every subtask; when the job ended,
//!   the other processes send the metrics of their subtasks to process 0, whose `JobResult`
//!   has them all (e.g. `counter` sums over every process).
//! - **Limits today**: a sink's pre-commit topology stages have no committable codec yet (it needs a
//!   serializer on the connector API's stages), so they must not cross processes; one job per
//!   [`Cluster`] (its control channels have fixed keys).
//!
//! ## What a supervisor must do (`weir cluster run -n 3 pipeline.toml` does it)
//!
//! The `weir` binary's `weir cluster run -n N pipeline.toml` is this supervisor for pipeline
//! files, on [`Supervisor`]: it starts `weir run --cluster-process i …` processes in their own
//! process group, forwards Ctrl-C and SIGTERM to process 0 (a savepoint), and restarts all
//! with `--restart-from-latest-checkpoint` (`RestoreFrom::LatestCheckpointElse`: the newest
//! checkpoint, else the first start's savepoint or empty state). Only [`EXIT_RESTART`] or a
//! process killed by a signal restarts; any other non-zero exit ends supervision with that
//! code (an invalid pipeline is not restarted). See `docs/cluster.md`.
//!
//! `examples/local_cluster.rs` is a complete example: a supervisor starting itself as 3
//! processes of one job (`cargo run -p weir-cluster --example local_cluster`).
//!
//! [`Supervisor`] does steps 1 and 3 for local processes: the CLI gives it the addresses and a
//! closure that starts process `i` of generation `g` (its own binary with the pipeline file,
//! `--cluster-process i`, the addresses, the generation, and from generation 1 on "restore the
//! latest checkpoint"); each process ends with [`exit_code`] of its job's result (0, 1 for a
//! failure for good, [`EXIT_RESTART`] when its cluster broke). Tested with the job of
//! `tests/jobs.rs`: a process killed with SIGKILL, all restarted as generation 1, every record
//! committed once.
//!
//! 1. Choose N addresses (free loopback ports for local processes; `host:port` per machine) and
//!    a generation `g`, starting at 0.
//! 2. Start N processes of the same binary and job, process `i` with its index, every address
//!    and `g` (for pipelines: `weir run --cluster-process i --cluster-addresses a,b,c
//!    --cluster-generation g pipeline.toml`). Each one does what the example above does and
//!    exits with [`exit_code`]: 0 when the job finished or stopped, 1 with an `error:` line
//!    when it failed for good, [`EXIT_RESTART`] (75) when the cluster broke (also when the
//!    cluster could not form).
//!    Checkpoint storage must be shared: a local directory for one machine, S3 (the S3
//!    checkpoint storage) for several; only process 0 writes checkpoint metadata, but a file
//!    sink's writers and its committer (process 0) must see the same files too.
//! 3. Wait for all of them. All exit 0: done. One exits 75 or dies: the others exit on
//!    their own within moments (with `the cluster failed: …`); kill any that has not after a
//!    grace period, then start all N again with generation `g + 1`, restoring the latest
//!    checkpoint (`RestoreFrom::LatestCheckpointElse`: the newest checkpoint, else the first
//!    start's savepoint or nothing when no checkpoint was completed yet: nothing was committed
//!    then). The same addresses can be reused. A
//!    process of an older generation is refused at the handshake. The job's restart strategy
//!    applies to these restarts (the cluster never restarts in place after a process died);
//!    a failure that is the job's own (`InvalidJob`, a stream without codec) is not restarted.
//! 4. Rescale: stop with a savepoint through process 0's `ClusterJob::handle` (`weir cluster
//!    run` forwards Ctrl-C to process 0, whose `weir run` takes it), then start M processes
//!    restoring the savepoint (`RestoreFrom::Savepoint`). Parallelism stays the plan's; only the
//!    placement changes.
//!
//! On several machines, run step 2's command on each host with its index. On Kubernetes, a
//! StatefulSet gives each pod its ordinal (the process index) and stable DNS names through a
//! headless service (the addresses); checkpoints go to S3. When a pod dies the others exit,
//! so every pod restarts: bump the generation for the new run (e.g. from a ConfigMap the
//! operator updates), so a straggling pod of the old run is refused.

mod config;
mod panics;
mod supervisor;
mod transport;
mod wire;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use timely_communication::allocator::zero_copy::initialize::{
    initialize_networking_from_sockets, CommsGuard,
};
use timely_communication::allocator::ProcessBuilder;
use timely_communication::{Allocator, Hooks};

pub use config::{ClusterConfig, ClusterError};
pub use supervisor::{
    exit_code, ProcessSpec, Supervised, Supervisor, SupervisorError, EXIT_RESTART,
};
pub use transport::{TimelyTransport, TransportStats};

use transport::{Endpoints, Shared};
use wire::{Message, Wire};

/// This process's membership of a cluster: its connections to every other process and the
/// transport that carries channels over them.
pub struct Cluster {
    shared: Arc<Shared>,
    comm: Option<JoinHandle<()>>,
    /// Timely's network threads; joined at shutdown.
    network: Option<CommsGuard>,
}

impl Cluster {
    /// Joins the cluster: connects to every other process (they start the same way, each with
    /// its own index), then starts the communication thread. Blocks until the cluster formed
    /// or `connect_timeout` passed (from async code, call it in `spawn_blocking`).
    pub fn start(config: &ClusterConfig) -> Result<Cluster, ClusterError> {
        panics::install_hook();
        let sockets = config::form(config)?;
        let process = config.process;
        let processes = config.addresses.len();
        let hooks = Hooks::default();
        let inner = ProcessBuilder::new_typed_vector(1, hooks.refill.clone(), None);
        let (mut builders, network) = initialize_networking_from_sockets(
            inner, sockets, process, 1, hooks,
        )
        .map_err(|source| ClusterError::Io {
            process,
            context: "starting timely's network threads".into(),
            source,
        })?;
        let builder = builders
            .pop()
            .ok_or_else(|| ClusterError::Failed("timely made no worker for this process".into()))?;
        let shared = Arc::new(Shared::new(process, processes));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let comm = std::thread::Builder::new()
            .name(panics::COMM_THREAD.into())
            .spawn(move || {
                let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let mut allocator = Allocator::Tcp(builder.build());
                    let (pushers, puller) = allocator.allocate::<Wire>(0);
                    (allocator, Endpoints { pushers, puller })
                }));
                let _ = thread_shared.comm.set(std::thread::current());
                let _ = ready_tx.send(());
                match built {
                    Ok((allocator, endpoints)) => {
                        transport::run(&thread_shared, allocator, endpoints);
                    }
                    Err(_) => thread_shared.fail(panics::describe("starting")),
                }
            })
            .map_err(|source| ClusterError::Io {
                process,
                context: "starting the communication thread".into(),
                source,
            })?;
        let _ = ready_rx.recv();
        let cluster = Cluster {
            shared,
            comm: Some(comm),
            network: Some(network),
        };
        match cluster.failure() {
            Some(e) => Err(e),
            None => Ok(cluster),
        }
    }

    /// This process's index.
    pub fn process(&self) -> usize {
        self.shared.process
    }

    /// The number of processes.
    pub fn processes(&self) -> usize {
        self.shared.processes
    }

    /// The transport that opens channel ends to and from other processes.
    pub fn transport(&self) -> TimelyTransport {
        TimelyTransport {
            shared: Arc::clone(&self.shared),
        }
    }

    /// This process's membership as a job in cluster mode needs it
    /// (`Job::execute_in_cluster`): its index, the number of processes, the transport.
    pub fn member(&self) -> weir_runtime::cluster::ClusterMember {
        weir_runtime::cluster::ClusterMember {
            process: self.shared.process,
            processes: self.shared.processes,
            transport: Arc::new(self.transport()),
        }
    }

    /// What crossed processes so far.
    pub fn stats(&self) -> TransportStats {
        self.shared.stats()
    }

    /// Why the cluster stopped working, if it did (every channel end fails with the same
    /// reason).
    pub fn failure(&self) -> Option<ClusterError> {
        self.shared.failure().map(ClusterError::Failed)
    }

    /// Leaves the cluster: says goodbye to every other process, waits up to `timeout` for all
    /// of theirs (so nothing still on its way is cut off), then closes the connections. Every
    /// channel end should be dropped before (their closes travel before the goodbye).
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + timeout;
        for peer in (0..self.shared.processes).filter(|p| *p != self.shared.process) {
            self.shared.post_message(peer, Message::Goodbye);
        }
        let peers = self.shared.processes.saturating_sub(1);
        while self.shared.goodbyes.load(Ordering::Acquire) < peers {
            if let Some(e) = self.failure() {
                return Err(self.abandon(e));
            }
            if Instant::now() >= deadline {
                let e = ClusterError::Failed(format!(
                    "process {}: not every other process said goodbye within {timeout:?}",
                    self.shared.process
                ));
                return Err(self.abandon(e));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop_comm();
        if let Some(e) = self.failure() {
            return Err(self.abandon(e));
        }
        // Joining timely's network threads: they end once every peer closed its side.
        let network = self.network.take();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let joined = std::thread::Builder::new()
            .name(format!("{}-close", panics::COMM_THREAD))
            .spawn(move || {
                let clean =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(network)));
                let _ = done_tx.send(clean.is_ok());
            });
        let left = deadline.saturating_duration_since(Instant::now());
        match joined.map(|_| done_rx.recv_timeout(left.max(Duration::from_millis(100)))) {
            Ok(Ok(true)) => Ok(()),
            _ => Err(ClusterError::Failed(format!(
                "process {}: the connections did not close cleanly: {}",
                self.shared.process,
                panics::describe("closing")
            ))),
        }
    }

    fn stop_comm(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(comm) = self.shared.comm.get() {
            comm.unpark();
        }
        if let Some(handle) = self.comm.take() {
            let _ = handle.join();
        }
    }

    /// Gives up on a failed cluster: timely's threads are left as they are (joining them could
    /// wait forever or panic again).
    fn abandon(&mut self, e: ClusterError) -> ClusterError {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(comm) = self.shared.comm.get() {
            comm.unpark();
        }
        std::mem::forget(self.network.take());
        self.comm.take();
        e
    }
}

impl Drop for Cluster {
    /// Without [`Cluster::shutdown`], the connections are abandoned (the other processes see
    /// them break).
    fn drop(&mut self) {
        if self.network.is_some() || self.comm.is_some() {
            let _ = self.abandon(ClusterError::Failed("dropped".into()));
        }
    }
}
