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
//! ## Next steps (the job-level part of issue 19)
//!
//! - **Placement**: a fixed function of the plan puts each subtask on a process; a cluster
//!   `Exchange` connects each edge with local channels inside a process and, between
//!   processes, remote ones from the edge's `ChannelFactory` over this transport (streams
//!   need a codec: `DataStream::channel_state_serializer`); a cluster `TaskLauncher` starts
//!   only this process's subtasks.
//! - **Master in process 0**: the checkpoint coordinator, restart strategy, split enumerators
//!   and coordinator store run there; other processes run subtasks only.
//! - **Control messages across processes**: split assignments, barriers injected into remote
//!   readers, acknowledgements with state, notifications, failures, as another kind of
//!   message on the same timely channel (ordered with the frames between the same pair).
//! - **`weir cluster` supervisor**: starts N processes, restarts them all from the latest
//!   checkpoint with a new generation when one dies; shared checkpoint storage (local or S3).

mod config;
mod panics;
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
