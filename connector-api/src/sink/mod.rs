//! SinkV2 sinks in Flink's 1.19+ mixin form.
//!
//! A [`Sink`] creates [`SinkWriter`]s. Everything else is an optional capability the sink
//! implements *and declares* in [`Sink::capabilities`]:
//!
//! | capability | trait | what the runtime adds |
//! |---|---|---|
//! | writer state | [`SupportsWriterState`] + [`StatefulSinkWriter`] | snapshots writer state at checkpoints, restores (and redistributes it on rescale) |
//! | two-phase commit | [`SupportsCommitter`] + [`CommittingSinkWriter`] | a committer operator that commits after each completed checkpoint |
//! | pre-write topology | [`SupportsPreWriteTopology`] | routing of records to writers |
//! | pre-commit topology | [`SupportsPreCommitTopology`] | stages between writer and committer (may change the committable type) |
//! | post-commit topology | [`SupportsPostCommitTopology`] | stages that see committed committables |
//!
//! Declaring is type-checked: [`SinkCapabilities::with_committer`] only accepts a sink whose
//! writer produces the committer's committable type; nothing is ever "supported by default and
//! then panics".
//!
//! ```
//! use std::sync::Arc;
//! use weir_connector_api::error::Result;
//! use weir_connector_api::sink::*;
//! use weir_connector_api::state::{StringSerializer, VersionedSerializer};
//!
//! /// Writes lines into a staging buffer; the committer "publishes" them.
//! struct StagedSink;
//!
//! #[derive(Default)]
//! struct StagedWriter { staged: Vec<String> }
//!
//! #[async_trait::async_trait]
//! impl SinkWriter<String> for StagedWriter {
//!     fn write(&mut self, line: String, _ctx: &WriteContext) -> Result<()> {
//!         self.staged.push(line);
//!         Ok(())
//!     }
//!     async fn flush(&mut self, _mode: FlushMode) -> Result<()> { Ok(()) }
//! }
//!
//! #[async_trait::async_trait]
//! impl CommittingSinkWriter<String> for StagedWriter {
//!     type Committable = String;
//!     async fn prepare_commit(&mut self) -> Result<Vec<String>> {
//!         Ok(vec![self.staged.drain(..).collect::<Vec<_>>().join("\n")])
//!     }
//! }
//!
//! struct Publisher;
//! #[async_trait::async_trait]
//! impl Committer<String> for Publisher {
//!     async fn commit(&mut self, requests: &mut [CommitRequest<String>]) -> Result<()> {
//!         for r in requests { println!("publish {}", r.committable()); }
//!         Ok(())
//!     }
//! }
//!
//! impl Sink<String> for StagedSink {
//!     type Writer = StagedWriter;
//!     fn create_writer(&self, _ctx: &dyn InitContext) -> Result<StagedWriter> {
//!         Ok(StagedWriter::default())
//!     }
//!     fn capabilities(self: Arc<Self>) -> SinkCapabilities<String, StagedWriter> {
//!         SinkCapabilities::none().with_committer(self)
//!     }
//! }
//!
//! impl SupportsCommitter<String> for StagedSink {
//!     type Committable = String;
//!     type Committer = Publisher;
//!     fn create_committer(&self, _ctx: &dyn InitContext) -> Result<Publisher> { Ok(Publisher) }
//!     fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<String>> {
//!         Arc::new(StringSerializer)
//!     }
//! }
//!
//! let caps = Arc::new(StagedSink).capabilities();
//! assert!(caps.committer().is_some());
//! assert!(caps.writer_state().is_none());
//! ```

mod committer;
mod topology;
mod writer;

use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;

pub use committer::{
    apply_commit_error, CommitOutcome, CommitRequest, CommittableMessage, CommittableSummary,
    CommittableWithLineage, Committer,
};
pub use topology::{
    box_committable, unbox_committable, AnyCommittable, CommittableOperator,
    CommittableOperatorFactory, CommittableStage, CommittableTopology, ErasedStage, NoOutput,
    PreWriteTopology, Routing, StageParallelism,
};
pub use writer::{
    CommittingSinkWriter, FlushMode, InitContext, SinkWriter, StatefulSinkWriter, WriteContext,
};

use crate::checkpoint::{CheckpointId, VersionedBytes};
use crate::error::Result;
use crate::state::VersionedSerializer;

/// A sink: creates writers and declares its optional capabilities.
///
/// See the [module docs](self) for an example.
pub trait Sink<In>: Send + Sync + 'static {
    /// The writer run in every subtask.
    type Writer: SinkWriter<In>;

    /// Creates the writer of a fresh subtask.
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<Self::Writer>;

    /// Declares the capabilities this sink implements. The default declares none.
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<In, Self::Writer> {
        SinkCapabilities::none()
    }
}

/// The checkpointed state type of a stateful sink's writer.
pub type WriterStateOf<In, S> = <<S as Sink<In>>::Writer as StatefulSinkWriter<In>>::State;

/// A sink whose writers checkpoint state (mixin; declare with
/// [`SinkCapabilities::with_writer_state`]).
pub trait SupportsWriterState<In>: Sink<In, Writer: StatefulSinkWriter<In>> {
    /// Creates a writer from checkpointed states (all states of the subtasks that map to this
    /// one: several after scaling down, none after scaling up).
    fn restore_writer(
        &self,
        ctx: &dyn InitContext,
        states: Vec<WriterStateOf<In, Self>>,
    ) -> Result<Self::Writer>;

    /// Serializes writer state.
    fn writer_state_serializer(&self) -> Arc<dyn VersionedSerializer<WriterStateOf<In, Self>>>;

    /// Earlier names of this sink's state, so a renamed sink still restores.
    fn compatible_writer_state_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A two-phase-committing sink (mixin; declare with [`SinkCapabilities::with_committer`], or
/// with [`SinkCapabilities::with_pre_commit_topology`] when a pre-commit topology turns the
/// writer's results into committables).
pub trait SupportsCommitter<In>: Sink<In> {
    /// What the committer commits.
    type Committable: Send + 'static;
    /// The committer.
    type Committer: Committer<Self::Committable>;
    /// Creates a committer (the committer's parallelism is set on the job, not here).
    fn create_committer(&self, ctx: &dyn InitContext) -> Result<Self::Committer>;
    /// Serializes committables into the committer's checkpointed state.
    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<Self::Committable>>;
}

/// A sink that routes records to its writers (mixin).
pub trait SupportsPreWriteTopology<In>: Sink<In> {
    /// The routing before the writer.
    fn pre_write_topology(&self) -> PreWriteTopology<In>;
}

/// A sink with stages between writer and committer (mixin), e.g. file compaction.
pub trait SupportsPreCommitTopology<In>: SupportsCommitter<In> {
    /// What the writer produces (the topology's input).
    type WriteResult: Send + 'static;
    /// The stages from write results to committables.
    fn pre_commit_topology(&self) -> CommittableTopology<Self::WriteResult, Self::Committable>;
}

/// A sink with stages after the committer (mixin): they receive committed committables.
pub trait SupportsPostCommitTopology<In>: SupportsCommitter<In> {
    /// The stages after commit.
    fn post_commit_topology(&self) -> CommittableTopology<Self::Committable, NoOutput>;
}

/// The erased writer-state capability, as the runtime uses it.
pub trait WriterStateCapability<W>: Send + Sync {
    /// Snapshots a writer's state as versioned bytes.
    fn snapshot(&self, writer: &mut W, checkpoint_id: CheckpointId) -> Result<Vec<VersionedBytes>>;
    /// Restores a writer from versioned bytes.
    fn restore(&self, ctx: &dyn InitContext, states: Vec<VersionedBytes>) -> Result<W>;
    /// Earlier state names that must still restore.
    fn compatible_state_names(&self) -> Vec<String>;
}

/// The erased committer capability, as the runtime uses it.
pub trait CommitterCapability<W>: Send + Sync {
    /// Calls the writer's `prepare_commit`, boxing its results.
    fn prepare_commit<'a>(
        &'a self,
        writer: &'a mut W,
    ) -> BoxFuture<'a, Result<Vec<AnyCommittable>>>;
    /// Creates the committer.
    fn create_committer(&self, ctx: &dyn InitContext)
        -> Result<Box<dyn Committer<AnyCommittable>>>;
    /// Serializes a committable for the committer's state.
    fn serialize_committable(&self, committable: &AnyCommittable) -> Result<VersionedBytes>;
    /// Restores a committable from the committer's state.
    fn deserialize_committable(&self, bytes: &VersionedBytes) -> Result<AnyCommittable>;
    /// The pre-commit stages, if any.
    fn pre_commit_stages(&self) -> Vec<ErasedStage>;
    /// The post-commit stages, if any.
    fn post_commit_stages(&self) -> Vec<ErasedStage>;
}

/// What a sink declares it can do, in the form the runtime expands into operators.
pub struct SinkCapabilities<In, W> {
    writer_state: Option<Arc<dyn WriterStateCapability<W>>>,
    committer: Option<Arc<dyn CommitterCapability<W>>>,
    pre_write: Option<PreWriteTopology<In>>,
}

impl<In, W> std::fmt::Debug for SinkCapabilities<In, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkCapabilities")
            .field("writer_state", &self.writer_state.is_some())
            .field("committer", &self.committer.is_some())
            .field("pre_write", &self.pre_write)
            .finish()
    }
}

impl<In, W> SinkCapabilities<In, W> {
    /// No optional capability.
    pub fn none() -> Self {
        SinkCapabilities {
            writer_state: None,
            committer: None,
            pre_write: None,
        }
    }
}

impl<In: 'static, W: SinkWriter<In>> SinkCapabilities<In, W> {
    /// Declares writer state.
    pub fn with_writer_state<S>(mut self, sink: Arc<S>) -> Self
    where
        S: SupportsWriterState<In, Writer = W>,
        W: StatefulSinkWriter<In>,
    {
        self.writer_state = Some(Arc::new(WriterStateAdapter {
            sink,
            _in: PhantomData,
        }));
        self
    }

    /// Declares a committer that commits what the writer prepares.
    pub fn with_committer<S>(mut self, sink: Arc<S>) -> Self
    where
        S: SupportsCommitter<In, Writer = W>,
        W: CommittingSinkWriter<In, Committable = S::Committable>,
    {
        self.committer = Some(Arc::new(CommitterAdapter {
            sink,
            pre_commit: PreCommit::None,
            post_commit: Vec::new(),
            _in: PhantomData,
        }));
        self
    }

    /// Declares a committer fed through the sink's pre-commit topology.
    pub fn with_pre_commit_topology<S>(mut self, sink: Arc<S>) -> Self
    where
        S: SupportsPreCommitTopology<In, Writer = W>,
        W: CommittingSinkWriter<In, Committable = S::WriteResult>,
    {
        let stages = sink.pre_commit_topology().into_stages();
        self.committer = Some(Arc::new(CommitterAdapter {
            sink,
            pre_commit: PreCommit::Stages(stages),
            post_commit: Vec::new(),
            _in: PhantomData,
        }));
        self
    }

    /// Declares the sink's post-commit topology; call after declaring the committer.
    pub fn with_post_commit_topology<S>(mut self, sink: &Arc<S>) -> Self
    where
        S: SupportsPostCommitTopology<In, Writer = W>,
    {
        if let Some(committer) = self.committer.take() {
            self.committer = Some(Arc::new(WithPostCommit {
                inner: committer,
                stages: sink.post_commit_topology().into_stages(),
            }));
        }
        self
    }

    /// Declares the sink's pre-write topology.
    pub fn with_pre_write_topology<S>(mut self, sink: &Arc<S>) -> Self
    where
        S: SupportsPreWriteTopology<In, Writer = W>,
    {
        self.pre_write = Some(sink.pre_write_topology());
        self
    }

    /// Capabilities assembled from erased parts (for wrappers such as
    /// [`crate::erased::BoxedSink`]).
    pub fn from_parts(
        writer_state: Option<Arc<dyn WriterStateCapability<W>>>,
        committer: Option<Arc<dyn CommitterCapability<W>>>,
        pre_write: Option<PreWriteTopology<In>>,
    ) -> Self {
        SinkCapabilities {
            writer_state,
            committer,
            pre_write,
        }
    }

    /// The writer-state capability, if declared.
    pub fn writer_state(&self) -> Option<&Arc<dyn WriterStateCapability<W>>> {
        self.writer_state.as_ref()
    }

    /// The committer capability, if declared.
    pub fn committer(&self) -> Option<&Arc<dyn CommitterCapability<W>>> {
        self.committer.as_ref()
    }

    /// The pre-write topology, if declared.
    pub fn pre_write(&self) -> Option<&PreWriteTopology<In>> {
        self.pre_write.as_ref()
    }
}

struct WriterStateAdapter<S, In> {
    sink: Arc<S>,
    _in: PhantomData<fn(In)>,
}

impl<In: 'static, S> WriterStateCapability<S::Writer> for WriterStateAdapter<S, In>
where
    S: SupportsWriterState<In>,
{
    fn snapshot(
        &self,
        writer: &mut S::Writer,
        checkpoint_id: CheckpointId,
    ) -> Result<Vec<VersionedBytes>> {
        let serializer = self.sink.writer_state_serializer();
        let version = serializer.version();
        writer
            .snapshot_state(checkpoint_id)?
            .iter()
            .map(|state| {
                Ok(VersionedBytes {
                    version,
                    bytes: serializer.serialize(state)?,
                })
            })
            .collect()
    }

    fn restore(&self, ctx: &dyn InitContext, states: Vec<VersionedBytes>) -> Result<S::Writer> {
        let serializer = self.sink.writer_state_serializer();
        let states = states
            .iter()
            .map(|s| serializer.deserialize(s.version, &s.bytes))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.sink.restore_writer(ctx, states)
    }

    fn compatible_state_names(&self) -> Vec<String> {
        self.sink.compatible_writer_state_names()
    }
}

enum PreCommit {
    None,
    Stages(Vec<ErasedStage>),
}

struct CommitterAdapter<S, In> {
    sink: Arc<S>,
    pre_commit: PreCommit,
    post_commit: Vec<ErasedStage>,
    _in: PhantomData<fn(In)>,
}

impl<In: 'static, S> CommitterCapability<S::Writer> for CommitterAdapter<S, In>
where
    S: SupportsCommitter<In>,
    S::Writer: CommittingSinkWriter<In>,
{
    fn prepare_commit<'a>(
        &'a self,
        writer: &'a mut S::Writer,
    ) -> BoxFuture<'a, Result<Vec<AnyCommittable>>> {
        Box::pin(async move {
            Ok(writer
                .prepare_commit()
                .await?
                .into_iter()
                .map(box_committable)
                .collect())
        })
    }

    fn create_committer(
        &self,
        ctx: &dyn InitContext,
    ) -> Result<Box<dyn Committer<AnyCommittable>>> {
        Ok(Box::new(ErasedCommitter::<S::Committable, S::Committer> {
            inner: self.sink.create_committer(ctx)?,
            _c: PhantomData,
        }))
    }

    fn serialize_committable(&self, committable: &AnyCommittable) -> Result<VersionedBytes> {
        let serializer = self.sink.committable_serializer();
        let typed = committable
            .downcast_ref::<S::Committable>()
            .ok_or_else(|| {
                crate::error::ConnectorError::Contract(format!(
                    "committable is not a {}",
                    std::any::type_name::<S::Committable>()
                ))
            })?;
        Ok(VersionedBytes {
            version: serializer.version(),
            bytes: serializer.serialize(typed)?,
        })
    }

    fn deserialize_committable(&self, bytes: &VersionedBytes) -> Result<AnyCommittable> {
        let serializer = self.sink.committable_serializer();
        Ok(box_committable(
            serializer.deserialize(bytes.version, &bytes.bytes)?,
        ))
    }

    fn pre_commit_stages(&self) -> Vec<ErasedStage> {
        match &self.pre_commit {
            PreCommit::None => Vec::new(),
            PreCommit::Stages(stages) => stages.iter().map(clone_stage).collect(),
        }
    }

    fn post_commit_stages(&self) -> Vec<ErasedStage> {
        self.post_commit.iter().map(clone_stage).collect()
    }
}

struct WithPostCommit<W> {
    inner: Arc<dyn CommitterCapability<W>>,
    stages: Vec<ErasedStage>,
}

impl<W> CommitterCapability<W> for WithPostCommit<W> {
    fn prepare_commit<'a>(
        &'a self,
        writer: &'a mut W,
    ) -> BoxFuture<'a, Result<Vec<AnyCommittable>>> {
        self.inner.prepare_commit(writer)
    }
    fn create_committer(
        &self,
        ctx: &dyn InitContext,
    ) -> Result<Box<dyn Committer<AnyCommittable>>> {
        self.inner.create_committer(ctx)
    }
    fn serialize_committable(&self, committable: &AnyCommittable) -> Result<VersionedBytes> {
        self.inner.serialize_committable(committable)
    }
    fn deserialize_committable(&self, bytes: &VersionedBytes) -> Result<AnyCommittable> {
        self.inner.deserialize_committable(bytes)
    }
    fn pre_commit_stages(&self) -> Vec<ErasedStage> {
        self.inner.pre_commit_stages()
    }
    fn post_commit_stages(&self) -> Vec<ErasedStage> {
        self.stages.iter().map(clone_stage).collect()
    }
}

fn clone_stage(s: &ErasedStage) -> ErasedStage {
    ErasedStage {
        name: s.name.clone(),
        parallelism: s.parallelism,
        routing: s.routing.clone(),
        factory: Arc::clone(&s.factory),
    }
}

struct ErasedCommitter<C, K> {
    inner: K,
    _c: PhantomData<fn(C)>,
}

#[async_trait::async_trait]
impl<C: Send + 'static, K: Committer<C>> Committer<AnyCommittable> for ErasedCommitter<C, K> {
    async fn commit(&mut self, requests: &mut [CommitRequest<AnyCommittable>]) -> Result<()> {
        // Move the committables into typed requests, commit, and move them back with outcomes.
        let mut typed = Vec::with_capacity(requests.len());
        for request in requests.iter_mut() {
            let placeholder = CommitRequest::new(box_committable(()), request.retries());
            let taken = std::mem::replace(request, placeholder);
            let (committable, _) = taken.into_parts();
            typed.push(CommitRequest::new(
                unbox_committable::<C>(committable, "committer")?,
                request.retries(),
            ));
        }
        let result = self.inner.commit(&mut typed).await;
        for (slot, request) in requests.iter_mut().zip(typed) {
            let retries = slot.retries();
            let (committable, outcome) = request.into_parts();
            let outcome = match outcome {
                CommitOutcome::Committed => CommitOutcome::Committed,
                CommitOutcome::AlreadyCommitted => CommitOutcome::AlreadyCommitted,
                CommitOutcome::RetryLater => CommitOutcome::RetryLater,
                CommitOutcome::UpdateAndRetry(c) => {
                    CommitOutcome::UpdateAndRetry(box_committable(c))
                }
                CommitOutcome::FailedKnown { reason } => CommitOutcome::FailedKnown { reason },
                CommitOutcome::FailedUnknown(e) => CommitOutcome::FailedUnknown(e),
            };
            let mut restored = CommitRequest::new(box_committable(committable), retries);
            restored.set_outcome(outcome);
            *slot = restored;
        }
        result
    }

    async fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.inner.checkpoint_aborted(checkpoint_id).await
    }

    async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests;
