//! Committers, commit requests with explicit outcomes, and the committable messages that flow
//! from writers to committers.

use std::fmt;

use crate::checkpoint::CheckpointId;
use crate::error::{ConnectorError, Result};

/// The outcome of one commit request, set by the committer.
#[derive(Debug)]
#[non_exhaustive]
pub enum CommitOutcome<C> {
    /// Committed now. The outcome of a request the committer does not touch.
    Committed,
    /// It had been committed before (e.g. by an earlier attempt): nothing to do.
    AlreadyCommitted,
    /// Transient failure: retry later, up to the committer's retry bound.
    RetryLater,
    /// Retry later with a changed committable (e.g. a refreshed upload id).
    UpdateAndRetry(C),
    /// It can never be committed for a known, harmless reason: discard it and go on.
    FailedKnown {
        /// Why, for the log.
        reason: String,
    },
    /// It failed in an unknown way: the job must fail rather than risk data loss.
    FailedUnknown(ConnectorError),
}

impl<C> CommitOutcome<C> {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            CommitOutcome::Committed => "committed",
            CommitOutcome::AlreadyCommitted => "already-committed",
            CommitOutcome::RetryLater => "retry-later",
            CommitOutcome::UpdateAndRetry(_) => "update-and-retry",
            CommitOutcome::FailedKnown { .. } => "failed-known",
            CommitOutcome::FailedUnknown(_) => "failed-unknown",
        }
    }
}

/// One committable to commit, with how often it was retried, and its outcome.
#[derive(Debug)]
pub struct CommitRequest<C> {
    committable: C,
    retries: u32,
    outcome: CommitOutcome<C>,
}

impl<C> CommitRequest<C> {
    /// A request (created by the runtime).
    pub fn new(committable: C, retries: u32) -> Self {
        CommitRequest {
            committable,
            retries,
            outcome: CommitOutcome::Committed,
        }
    }
    /// The committable.
    pub fn committable(&self) -> &C {
        &self.committable
    }
    /// How many times this committable was retried before.
    pub fn retries(&self) -> u32 {
        self.retries
    }
    /// The outcome set so far ([`CommitOutcome::Committed`] if none was set).
    pub fn outcome(&self) -> &CommitOutcome<C> {
        &self.outcome
    }
    /// Sets the outcome.
    pub fn set_outcome(&mut self, outcome: CommitOutcome<C>) {
        self.outcome = outcome;
    }
    /// Marks it committed by an earlier attempt.
    pub fn already_committed(&mut self) {
        self.outcome = CommitOutcome::AlreadyCommitted;
    }
    /// Asks for a later retry.
    pub fn retry_later(&mut self) {
        self.outcome = CommitOutcome::RetryLater;
    }
    /// Asks for a later retry with a new committable.
    pub fn update_and_retry(&mut self, committable: C) {
        self.outcome = CommitOutcome::UpdateAndRetry(committable);
    }
    /// Discards it for a known reason.
    pub fn failed_known(&mut self, reason: impl Into<String>) {
        self.outcome = CommitOutcome::FailedKnown {
            reason: reason.into(),
        };
    }
    /// Fails the job.
    pub fn failed_unknown(&mut self, error: ConnectorError) {
        self.outcome = CommitOutcome::FailedUnknown(error);
    }
    /// The committable and its outcome.
    pub fn into_parts(self) -> (C, CommitOutcome<C>) {
        (self.committable, self.outcome)
    }
}

/// Commits what writers prepared, after the checkpoint that contains it completed.
///
/// Commits must be **idempotent**: after a failure the same committable can be committed again
/// (report [`CommitOutcome::AlreadyCommitted`] when it is detectably done). The runtime commits in
/// checkpoint order and retries up to a configured bound. If `commit` returns `Err`, every request
/// still marked committed gets `RetryLater` when the error is retryable, and fails the job
/// otherwise.
///
/// ```
/// use std::collections::BTreeSet;
/// use weir_connector_api::error::Result;
/// use weir_connector_api::sink::{CommitRequest, Committer};
///
/// /// "Commits" file names by publishing them into a set.
/// #[derive(Default)]
/// struct Publish { published: BTreeSet<String> }
///
/// #[async_trait::async_trait]
/// impl Committer<String> for Publish {
///     async fn commit(&mut self, requests: &mut [CommitRequest<String>]) -> Result<()> {
///         for request in requests {
///             if !self.published.insert(request.committable().clone()) {
///                 request.already_committed();
///             }
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Committer<C>: Send + 'static {
    /// Commits the requests, setting each one's outcome.
    async fn commit(&mut self, requests: &mut [CommitRequest<C>]) -> Result<()>;
    /// A checkpoint was aborted (API line 1.1); its committables never reach `commit`
    /// unless a later checkpoint completes and carries them.
    async fn checkpoint_aborted(&mut self, _checkpoint_id: CheckpointId) -> Result<()> {
        Ok(())
    }
    /// Releases resources.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Per checkpoint and writer subtask, announces how many committables follow (Flink's
/// `CommittableSummary`). A committer commits a checkpoint only when every subtask's summary
/// and all announced committables arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommittableSummary {
    /// The subtask that produced the committables.
    pub subtask_id: usize,
    /// The parallelism of the producing operator.
    pub number_of_subtasks: usize,
    /// The checkpoint (or [`CheckpointId::END_OF_INPUT`]).
    pub checkpoint_id: CheckpointId,
    /// How many committables this subtask produced for the checkpoint.
    pub number_of_committables: usize,
    /// How many of them failed to commit (set on the post-commit side).
    pub number_of_failed: usize,
}

/// A committable with where it came from (Flink's `CommittableWithLineage`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommittableWithLineage<C> {
    /// The committable.
    pub committable: C,
    /// The checkpoint it belongs to.
    pub checkpoint_id: CheckpointId,
    /// The producing subtask.
    pub subtask_id: usize,
}

impl<C> CommittableWithLineage<C> {
    /// The same lineage with another committable.
    pub fn map<D>(self, f: impl FnOnce(C) -> D) -> CommittableWithLineage<D> {
        CommittableWithLineage {
            committable: f(self.committable),
            checkpoint_id: self.checkpoint_id,
            subtask_id: self.subtask_id,
        }
    }
}

/// What flows between writers, pre-commit stages, committers and post-commit stages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CommittableMessage<C> {
    /// Announces a subtask's committables of a checkpoint.
    Summary(CommittableSummary),
    /// One committable.
    WithLineage(CommittableWithLineage<C>),
}

impl<C> CommittableMessage<C> {
    /// The checkpoint the message belongs to.
    pub fn checkpoint_id(&self) -> CheckpointId {
        match self {
            CommittableMessage::Summary(s) => s.checkpoint_id,
            CommittableMessage::WithLineage(c) => c.checkpoint_id,
        }
    }
}

impl fmt::Display for CommittableSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "summary(checkpoint {}, subtask {}/{}, {} committables, {} failed)",
            self.checkpoint_id,
            self.subtask_id,
            self.number_of_subtasks,
            self.number_of_committables,
            self.number_of_failed
        )
    }
}

/// Applies a [`Committer`]'s call-level error to requests that still look committed.
pub fn apply_commit_error<C>(
    requests: &mut [CommitRequest<C>],
    error: ConnectorError,
) -> Result<()> {
    match error.class() {
        crate::error::ErrorClass::Retryable => {
            for r in requests.iter_mut() {
                if matches!(r.outcome, CommitOutcome::Committed) {
                    r.outcome = CommitOutcome::RetryLater;
                }
            }
            Ok(())
        }
        crate::error::ErrorClass::Fatal => Err(error),
    }
}
