//! The cluster seam: what a cluster mode (the `weir-cluster` crate, on timely-dataflow's
//! communication layer) implements and uses to carry a job's channels between processes.
//!
//! - [`FrameTransport`] opens the two ends of a cross-process channel ([`ChannelKey`]:
//!   attempt, edge, upstream and downstream subtask) as a [`FrameSender`] and a
//!   [`FrameReceiver`]: ordered byte frames with credit-based backpressure (the receiver
//!   grants the edge's channel capacity, then one credit per frame its task consumed;
//!   priority frames need none).
//! - [`RemoteSender`] / [`RemoteReceiver`] are the runtime's [`ChannelSender`] /
//!   [`ChannelReceiver`] over them: each batch (with its records' event times) and each
//!   event is one versioned, checksummed frame, records written with the stream's codec
//!   (declared with [`DataStream::channel_state_serializer`]; only cluster mode requires it
//!   for every exchange); barriers of unaligned checkpoints overtake as priority frames. A
//!   damaged or unknown frame, or a broken transport, is an error naming the channel
//!   ([`RemoteChannelError`]), never a panic.
//!
//! Inside the runtime, an edge's `ChannelFactory` makes these ends for its record type, so a
//! cluster exchange can put local channels inside a process and remote ones between
//! processes behind the same `Exchange` seam.
//!
//! ## One job across processes
//!
//! [`Job::start_in_cluster`] / [`Job::execute_in_cluster`] run a job in every process of a
//! cluster, each with its [`ClusterMember`] (index, process count, transport):
//!
//! - **Placement** ([`process_of`]): subtask `i` of every task group runs in process `i mod N`.
//! - **Deployment**: per attempt, a cluster exchange connects each edge with in-memory
//!   channels inside a process and remote ends between processes (an edge without codec that
//!   crosses processes is an error naming it, [`RemoteChannelError::NoCodec`]); the launcher
//!   creates only this process's subtasks.
//! - **Process 0** runs the job master unchanged (checkpoints, restarts, enumerators, the
//!   coordinator store) with a deployment that tells the other processes to start and stop
//!   each attempt and gives the master one proxy control channel per remote subtask.
//! - **The other processes** run their subtasks; their messages to the master and their
//!   readers' requests to the enumerators travel back as control messages.
//! - **Control messages** are versioned, checksummed frames (marker `WCTL`, version 1, see
//!   `control.rs` for the layout) sent as priority frames on one control channel per direction
//!   and pair of processes (key: attempt and edge `u32::MAX`); a damaged one is a
//!   [`ControlError`] that fails the attempt, never a panic.
//! - **A broken transport** (a process died) is [`RuntimeError::ClusterBroken`] in every
//!   process: the job ends without restarting in place; a supervisor restarts every process
//!   from the latest checkpoint.
//!
//! [`RuntimeError::ClusterBroken`]: crate::RuntimeError::ClusterBroken
//!
//! [`DataStream::channel_state_serializer`]: crate::DataStream::channel_state_serializer

pub use crate::exchange::{
    ChannelKey, ChannelReceiver, ChannelSender, FrameReceiver, FrameSender, FrameTransport,
    Received, RemoteChannelError, RemoteReceiver, RemoteSender, TransportError, TrySendError,
    FRAME_VERSION,
};

mod control;
mod exchange;
#[cfg(test)]
mod fake_transport;
mod link;
mod master_side;
mod placement;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use control::ControlError;
pub(crate) use control::{SplitCodec, SplitsOf};
pub use placement::process_of;
pub(crate) use placement::Placement;

use crate::error::RuntimeError;
use crate::handle::{JobHandle, JobResult, JobStatus};
use crate::job::Job;
use crate::task::TaskKey;
use control::{Outcome, SplitCodecs};

/// How the job master sees a failed attempt's error: a cross-process channel whose transport
/// failed means the cluster failed (a process died), which no restart in these processes can
/// fix; neither can a job error, nor a stream without codec between processes. Returns the
/// error and whether a restart may help.
pub(crate) fn after_failure(error: RuntimeError) -> (RuntimeError, bool) {
    let error = match error {
        RuntimeError::RemoteChannel(RemoteChannelError::Transport { channel, reason }) => {
            RuntimeError::ClusterBroken(format!("cross-process channel {channel}: {reason}"))
        }
        error => error,
    };
    let restartable = !matches!(
        error,
        RuntimeError::InvalidJob(_)
            | RuntimeError::ClusterBroken(_)
            | RuntimeError::RemoteChannel(RemoteChannelError::NoCodec { .. })
    );
    (error, restartable)
}

/// This process's place in a cluster running one job: its index, the number of processes,
/// and the transport to the others (`weir-cluster`'s `Cluster::transport`).
#[derive(Clone)]
pub struct ClusterMember {
    /// This process's index (process 0 runs the job master).
    pub process: usize,
    /// How many processes run the job.
    pub processes: usize,
    /// Carries channels and control messages to and from the other processes.
    pub transport: Arc<dyn FrameTransport>,
}

/// What the cluster's processes need to know about a job's plan besides its tasks.
pub(crate) struct JobLayout {
    /// Each edge's name (`from-group -> to-group`), for errors.
    pub(crate) edge_names: Vec<String>,
    /// Each edge's upstream and downstream task group.
    pub(crate) edge_groups: Vec<(usize, usize)>,
    /// Each source's split codec, by the task group of its readers.
    pub(crate) splits: SplitCodecs,
    /// Each source's reader task group, by uid.
    pub(crate) source_groups: BTreeMap<String, usize>,
    /// Each task group's parallelism.
    pub(crate) parallelisms: Vec<usize>,
}

impl JobLayout {
    pub(crate) fn of(job: &Job) -> Self {
        let name = |g: usize| job.groups.get(g).map_or("?", |g| g.name.as_str());
        JobLayout {
            edge_names: job
                .edges
                .iter()
                .enumerate()
                .map(|(i, e)| format!("edge {i} ({} -> {})", name(e.from), name(e.to)))
                .collect(),
            edge_groups: job.edges.iter().map(|e| (e.from, e.to)).collect(),
            splits: job
                .sources
                .iter()
                .map(|s| (s.group, Arc::clone(&s.splits)))
                .collect(),
            source_groups: job
                .sources
                .iter()
                .map(|s| (s.uid.clone(), s.group))
                .collect(),
            parallelisms: job.groups.iter().map(|g| g.parallelism).collect(),
        }
    }

    /// A subtask of process `process` (the first of the plan placed there), to name it in a
    /// failure that is the process's.
    pub(crate) fn task_in(&self, process: usize) -> TaskKey {
        let group = self
            .parallelisms
            .iter()
            .position(|&p| p > process)
            .unwrap_or(0);
        TaskKey {
            group,
            subtask: process,
        }
    }
}

/// A job running in cluster mode, as this process sees it ([`Job::start_in_cluster`]).
pub struct ClusterJob {
    inner: Running,
}

enum Running {
    Master {
        handle: JobHandle,
        deployment: master_side::MasterDeployment,
    },
    Worker(tokio::task::JoinHandle<JobResult>),
    NotStarted(RuntimeError),
}

impl ClusterJob {
    /// The job's handle (savepoints, stop with savepoint, cancel, monitor), in process 0, which
    /// runs the job master; `None` in the other processes.
    pub fn handle(&self) -> Option<&JobHandle> {
        match &self.inner {
            Running::Master { handle, .. } => Some(handle),
            _ => None,
        }
    }

    /// Whether the job ended (in this process): [`wait`](Self::wait) returns at once.
    pub fn is_finished(&self) -> bool {
        match &self.inner {
            Running::Master { handle, .. } => handle.is_finished(),
            Running::Worker(join) => join.is_finished(),
            Running::NotStarted(_) => true,
        }
    }

    /// Waits for the job's end. Process 0 then tells the other processes how it ended (they
    /// return the same status) and adds the metrics of their subtasks to its result, so its
    /// [`JobResult::counter`] counts over every process.
    pub async fn wait(self) -> JobResult {
        match self.inner {
            Running::Master { handle, deployment } => {
                let mut result = handle.wait().await;
                let remote = deployment
                    .end_job(match &result.status {
                        JobStatus::Finished => Outcome::Finished,
                        JobStatus::Cancelled => Outcome::Cancelled,
                        JobStatus::Stopped { savepoint } => Outcome::Stopped(savepoint.to_string()),
                        JobStatus::Failed(e) => Outcome::Failed(e.to_string()),
                    })
                    .await;
                result.metrics.extend(remote);
                result
            }
            Running::Worker(join) => match join.await {
                Ok(result) => result,
                Err(e) => JobResult::failed_early(RuntimeError::Lost(format!(
                    "this process's share of the job: {e}"
                ))),
            },
            Running::NotStarted(e) => JobResult::failed_early(e),
        }
    }
}

impl Job {
    /// Starts the job in cluster mode on the current tokio runtime: every process of the
    /// cluster calls this with the same job (the same `main` or pipeline file) and its own
    /// [`ClusterMember`]. Process 0 runs the job master (checkpoints, restarts, split
    /// enumerators, the coordinator store) and its share of the subtasks ([`process_of`]); the
    /// others run their share when the master says so, until it says the job ended.
    ///
    /// A transport failure (a process died) fails the job in every process with
    /// [`RuntimeError::ClusterBroken`], without restart: restart every process, restoring the
    /// latest checkpoint (what a supervisor does, see the `weir-cluster` crate).
    pub fn start_in_cluster(self, member: ClusterMember) -> ClusterJob {
        if member.process != 0 {
            return ClusterJob {
                inner: Running::Worker(tokio::spawn(worker::run(self, member))),
            };
        }
        let placement = Placement {
            process: 0,
            processes: member.processes.max(1),
        };
        let layout = Arc::new(JobLayout::of(&self));
        let inner = match master_side::MasterDeployment::start(placement, member.transport, layout)
        {
            Ok(deployment) => Running::Master {
                handle: self.start_on(Arc::new(deployment.clone())),
                deployment,
            },
            Err(e) => Running::NotStarted(e),
        };
        ClusterJob { inner }
    }

    /// Runs the job in cluster mode to its end ([`Job::start_in_cluster`], then
    /// [`ClusterJob::wait`]). Every process returns the job's status; process 0's result has
    /// the job's checkpoints and failovers and the metrics of every process's subtasks (of
    /// the last attempt), the others' the metrics of their own subtasks.
    pub async fn execute_in_cluster(self, member: ClusterMember) -> JobResult {
        self.start_in_cluster(member).wait().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_cluster_and_a_missing_codec_are_not_restarted_other_failures_are() {
        let (error, restartable) =
            after_failure(RuntimeError::RemoteChannel(RemoteChannelError::Transport {
                channel: "edge 0 subtask 1 -> 0".into(),
                reason: "process 2 died".into(),
            }));
        assert!(!restartable);
        assert!(
            matches!(&error, RuntimeError::ClusterBroken(m) if m.contains("edge 0") && m.contains("process 2 died")),
            "{error}"
        );
        let (_, restartable) =
            after_failure(RuntimeError::RemoteChannel(RemoteChannelError::NoCodec {
                channel: "edge 0".into(),
            }));
        assert!(!restartable);
        let (error, restartable) = after_failure(RuntimeError::Injected("write".into()));
        assert!(restartable);
        assert!(matches!(error, RuntimeError::Injected(_)));
        let (_, restartable) = after_failure(RuntimeError::Remote {
            process: 1,
            message: "a writer failed".into(),
        });
        assert!(
            restartable,
            "a task failure in another process restarts the job"
        );
    }
}
