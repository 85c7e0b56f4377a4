//! Runtime errors.

use weir_connector_api::ConnectorError;

use crate::storage::StorageError;

/// Why a job, a task or a job submission failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A connector call failed.
    #[error("{operator} (subtask {subtask}): {source}")]
    Connector {
        /// The operator's uid.
        operator: String,
        /// The subtask index.
        subtask: usize,
        /// The connector's error.
        #[source]
        source: ConnectorError,
    },
    /// The job graph is invalid; every problem is listed.
    #[error("invalid job: {}", .0.join("; "))]
    InvalidJob(Vec<String>),
    /// Reading or writing checkpoints failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Restoring state failed.
    #[error("cannot restore {operator}: {reason}")]
    Restore {
        /// The operator's uid.
        operator: String,
        /// What is wrong.
        reason: String,
    },
    /// `RestoreFrom::LatestCheckpoint`, but the checkpoint storage holds no checkpoint.
    #[error(
        "there is no checkpoint to restore from in {storage}; start without restoring to \
         read the input from the beginning, or point the job at the storage that holds its checkpoints"
    )]
    NoCheckpoint {
        /// Where the runtime looked.
        storage: String,
    },
    /// The snapshot does not fit the job; every problem is listed.
    #[error("cannot restore from {snapshot}: {}", join_problems(.problems))]
    RestoreRefused {
        /// The savepoint path or checkpoint that was to be restored.
        snapshot: String,
        /// Why it does not fit.
        problems: Vec<crate::restore::RestoreProblem>,
    },
    /// A failure injected by a test's fault injector.
    #[error("injected failure at {0}")]
    Injected(String),
    /// A task or coordinator stopped unexpectedly (its channel closed).
    #[error("{0} stopped unexpectedly")]
    Lost(String),
    /// A subtask in another process of a cluster failed; the message is its error's.
    #[error("process {process}: {message}")]
    Remote {
        /// The process it ran in.
        process: usize,
        /// Its error, as text.
        message: String,
    },
    /// The cluster's transport failed (a process died or a connection broke): the job cannot
    /// go on in these processes, so it does not restart; a supervisor restarts every process
    /// from the latest checkpoint.
    #[error(
        "the cluster failed: {0}; restart every process of the job (it restores its latest checkpoint)"
    )]
    ClusterBroken(String),
    /// A channel between processes (cluster mode) failed.
    #[error(transparent)]
    RemoteChannel(#[from] crate::exchange::RemoteChannelError),
    /// Too many checkpoints failed in a row.
    #[error("{failed} consecutive checkpoints failed (tolerable: {tolerable}); last: {last}")]
    CheckpointsFailing {
        /// How many failed in a row.
        failed: u32,
        /// How many may fail in a row.
        tolerable: u32,
        /// Why the last one failed.
        last: String,
    },
    /// The job gave up after failures.
    #[error("job failed after {attempts} attempts and will not restart ({reason}); last failure: {cause}")]
    GaveUp {
        /// How many attempts ran.
        attempts: u32,
        /// Why the restart strategy gave up.
        reason: String,
        /// The last failure.
        cause: Box<RuntimeError>,
    },
}

fn join_problems(problems: &[crate::restore::RestoreProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl RuntimeError {
    /// Wraps a connector error with where it happened.
    pub fn connector(operator: &str, subtask: usize, source: ConnectorError) -> Self {
        RuntimeError::Connector {
            operator: operator.to_owned(),
            subtask,
            source,
        }
    }
}

/// Shorthand for runtime results.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
