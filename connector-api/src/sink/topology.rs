//! Pre-write, pre-commit and post-commit topologies: what a sink asks the runtime to insert
//! around its writer and committer (e.g. keying records by bucket before writing, or compacting
//! small files between writer and committer).
//!
//! A topology is a chain of [`CommittableStage`]s. Each stage is typed (`I` in, `O` out); the
//! chain is built with [`CommittableTopology::new`] and [`CommittableTopology::then`], so the
//! types of adjacent stages must match at compile time. The runtime receives the chain in erased
//! form ([`ErasedStage`]) and runs every stage as an operator with its own parallelism, state and
//! checkpoint notifications.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::Arc;

use super::committer::{CommittableMessage, CommittableWithLineage};
use super::writer::InitContext;
use crate::checkpoint::{CheckpointId, VersionedBytes};
use crate::error::{ConnectorError, Result};

/// How records (or committables) are distributed to the subtasks of the next stage.
///
/// On committable edges (writer → pre-commit stages → committer → post-commit stages) the
/// runtime keeps the [`CommittableSummary`](super::CommittableSummary)s consistent: with
/// `Rebalance` and `KeyBy` it spreads the committables themselves and sends every downstream
/// subtask, per checkpoint and upstream summary, a summary counting exactly the committables it
/// received (0 if none). `Forward` sends all of upstream subtask `i`'s committables to downstream
/// subtask `i % parallelism`, `Global` all of them to subtask 0.
pub enum Routing<T> {
    /// To the subtask with the same index (parallelism must match), else round-robin; on
    /// committable edges, subtask `i` to subtask `i % parallelism`.
    Forward,
    /// Round-robin.
    Rebalance,
    /// Everything to subtask 0.
    Global,
    /// By hash of a key: equal keys reach the same subtask.
    KeyBy(Arc<dyn Fn(&T) -> u64 + Send + Sync>),
}

impl<T> Clone for Routing<T> {
    fn clone(&self) -> Self {
        match self {
            Routing::Forward => Routing::Forward,
            Routing::Rebalance => Routing::Rebalance,
            Routing::Global => Routing::Global,
            Routing::KeyBy(f) => Routing::KeyBy(Arc::clone(f)),
        }
    }
}

impl<T> fmt::Debug for Routing<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Routing::Forward => "Forward",
            Routing::Rebalance => "Rebalance",
            Routing::Global => "Global",
            Routing::KeyBy(_) => "KeyBy(..)",
        })
    }
}

/// What the runtime inserts before the writer.
pub struct PreWriteTopology<In> {
    /// How records reach the writer subtasks (e.g. keyed by bucket so each bucket has one writer).
    pub routing: Routing<In>,
}

impl<In> fmt::Debug for PreWriteTopology<In> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreWriteTopology")
            .field("routing", &self.routing)
            .finish()
    }
}

impl<In> Clone for PreWriteTopology<In> {
    fn clone(&self) -> Self {
        PreWriteTopology {
            routing: self.routing.clone(),
        }
    }
}

/// The parallelism of a topology stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageParallelism {
    /// A single subtask (e.g. a compaction coordinator).
    One,
    /// A fixed number of subtasks.
    Fixed(NonZeroUsize),
    /// As many subtasks as the writer has.
    SameAsWriter,
}

/// An operator of a topology stage: receives committable messages, emits committable messages.
///
/// Summaries must stay consistent: for each checkpoint and output subtask, emit a
/// [`CommittableSummary`](super::CommittableSummary) that counts the committables emitted.
#[async_trait::async_trait]
pub trait CommittableOperator<I, O>: Send + 'static {
    /// Handles one message.
    async fn process(
        &mut self,
        message: CommittableMessage<I>,
        output: &mut Vec<CommittableMessage<O>>,
    ) -> Result<()>;

    /// Emits what must travel before the barrier of `checkpoint_id`.
    async fn prepare_snapshot_pre_barrier(
        &mut self,
        _checkpoint_id: CheckpointId,
        _output: &mut Vec<CommittableMessage<O>>,
    ) -> Result<()> {
        Ok(())
    }

    /// The operator's state for a checkpoint (`None` if stateless).
    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<Option<VersionedBytes>> {
        Ok(None)
    }

    /// A checkpoint completed (e.g. compaction may now read the files of that checkpoint).
    async fn notify_checkpoint_complete(
        &mut self,
        _checkpoint_id: CheckpointId,
        _output: &mut Vec<CommittableMessage<O>>,
    ) -> Result<()> {
        Ok(())
    }

    /// A checkpoint was aborted (API line 1.1).
    async fn checkpoint_aborted(&mut self, _checkpoint_id: CheckpointId) -> Result<()> {
        Ok(())
    }

    /// The input ended: emit everything that is left.
    async fn end_input(&mut self, _output: &mut Vec<CommittableMessage<O>>) -> Result<()> {
        Ok(())
    }
}

/// Creates the operator of each subtask of a stage, from its restored states (empty on a fresh
/// start; several after scaling down).
pub trait CommittableOperatorFactory<I, O>: Send + Sync + 'static {
    /// Creates one subtask's operator.
    fn create(
        &self,
        ctx: &dyn InitContext,
        restored: Vec<VersionedBytes>,
    ) -> Result<Box<dyn CommittableOperator<I, O>>>;
}

impl<I, O, F> CommittableOperatorFactory<I, O> for F
where
    F: Fn(&dyn InitContext, Vec<VersionedBytes>) -> Result<Box<dyn CommittableOperator<I, O>>>
        + Send
        + Sync
        + 'static,
{
    fn create(
        &self,
        ctx: &dyn InitContext,
        restored: Vec<VersionedBytes>,
    ) -> Result<Box<dyn CommittableOperator<I, O>>> {
        self(ctx, restored)
    }
}

/// One typed stage of a topology.
pub struct CommittableStage<I, O> {
    /// A name, unique within the sink; part of the stage's stable id.
    pub name: String,
    /// The stage's parallelism.
    pub parallelism: StageParallelism,
    /// How committables reach the stage's subtasks.
    pub routing: Routing<I>,
    /// Creates the stage's operators.
    pub factory: Arc<dyn CommittableOperatorFactory<I, O>>,
}

/// A committable whose type is known only to the sink that made it.
pub type AnyCommittable = Box<dyn Any + Send>;

/// A stage in the form the runtime runs: committables are [`AnyCommittable`].
pub struct ErasedStage {
    /// The stage's name.
    pub name: String,
    /// The stage's parallelism.
    pub parallelism: StageParallelism,
    /// How committables reach the stage's subtasks.
    pub routing: Routing<AnyCommittable>,
    /// Creates the stage's operators.
    pub factory: Arc<dyn CommittableOperatorFactory<AnyCommittable, AnyCommittable>>,
}

impl fmt::Debug for ErasedStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErasedStage")
            .field("name", &self.name)
            .field("parallelism", &self.parallelism)
            .field("routing", &self.routing)
            .finish_non_exhaustive()
    }
}

/// A typed chain of stages from `I` to `O`.
pub struct CommittableTopology<I, O> {
    stages: Vec<ErasedStage>,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> fmt::Debug for CommittableTopology<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.stages).finish()
    }
}

impl<I: Send + 'static, O: Send + 'static> CommittableTopology<I, O> {
    /// A topology of one stage.
    pub fn new(stage: CommittableStage<I, O>) -> Self {
        CommittableTopology {
            stages: vec![erase(stage)],
            _types: PhantomData,
        }
    }

    /// Appends a stage.
    pub fn then<P: Send + 'static>(
        mut self,
        stage: CommittableStage<O, P>,
    ) -> CommittableTopology<I, P> {
        self.stages.push(erase(stage));
        CommittableTopology {
            stages: self.stages,
            _types: PhantomData,
        }
    }

    /// The stages, in order, for the runtime.
    pub fn into_stages(self) -> Vec<ErasedStage> {
        self.stages
    }
}

/// The output of a post-commit topology's last stage: nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoOutput {}

/// Boxes a typed committable.
pub fn box_committable<C: Send + 'static>(c: C) -> AnyCommittable {
    Box::new(c)
}

/// Unboxes a committable of an expected type.
pub fn unbox_committable<C: Send + 'static>(c: AnyCommittable, what: &str) -> Result<C> {
    c.downcast::<C>().map(|c| *c).map_err(|_| {
        ConnectorError::Contract(format!(
            "{what}: committable is not a {}",
            std::any::type_name::<C>()
        ))
    })
}

fn erase_message<C: Send + 'static>(
    m: CommittableMessage<C>,
) -> CommittableMessage<AnyCommittable> {
    match m {
        CommittableMessage::Summary(s) => CommittableMessage::Summary(s),
        CommittableMessage::WithLineage(c) => {
            CommittableMessage::WithLineage(c.map(box_committable))
        }
    }
}

fn unerase_message<C: Send + 'static>(
    m: CommittableMessage<AnyCommittable>,
    what: &str,
) -> Result<CommittableMessage<C>> {
    Ok(match m {
        CommittableMessage::Summary(s) => CommittableMessage::Summary(s),
        CommittableMessage::WithLineage(CommittableWithLineage {
            committable,
            checkpoint_id,
            subtask_id,
        }) => CommittableMessage::WithLineage(CommittableWithLineage {
            committable: unbox_committable(committable, what)?,
            checkpoint_id,
            subtask_id,
        }),
    })
}

struct ErasedOperator<I, O> {
    inner: Box<dyn CommittableOperator<I, O>>,
    name: String,
    buffer: Vec<CommittableMessage<O>>,
}

impl<I: Send + 'static, O: Send + 'static> ErasedOperator<I, O> {
    fn drain(&mut self, output: &mut Vec<CommittableMessage<AnyCommittable>>) {
        output.extend(self.buffer.drain(..).map(erase_message));
    }
}

#[async_trait::async_trait]
impl<I: Send + 'static, O: Send + 'static> CommittableOperator<AnyCommittable, AnyCommittable>
    for ErasedOperator<I, O>
{
    async fn process(
        &mut self,
        message: CommittableMessage<AnyCommittable>,
        output: &mut Vec<CommittableMessage<AnyCommittable>>,
    ) -> Result<()> {
        let message = unerase_message::<I>(message, &self.name)?;
        self.inner.process(message, &mut self.buffer).await?;
        self.drain(output);
        Ok(())
    }

    async fn prepare_snapshot_pre_barrier(
        &mut self,
        checkpoint_id: CheckpointId,
        output: &mut Vec<CommittableMessage<AnyCommittable>>,
    ) -> Result<()> {
        self.inner
            .prepare_snapshot_pre_barrier(checkpoint_id, &mut self.buffer)
            .await?;
        self.drain(output);
        Ok(())
    }

    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Option<VersionedBytes>> {
        self.inner.snapshot_state(checkpoint_id)
    }

    async fn checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.inner.checkpoint_aborted(checkpoint_id).await
    }

    async fn notify_checkpoint_complete(
        &mut self,
        checkpoint_id: CheckpointId,
        output: &mut Vec<CommittableMessage<AnyCommittable>>,
    ) -> Result<()> {
        self.inner
            .notify_checkpoint_complete(checkpoint_id, &mut self.buffer)
            .await?;
        self.drain(output);
        Ok(())
    }

    async fn end_input(
        &mut self,
        output: &mut Vec<CommittableMessage<AnyCommittable>>,
    ) -> Result<()> {
        self.inner.end_input(&mut self.buffer).await?;
        self.drain(output);
        Ok(())
    }
}

fn erase<I: Send + 'static, O: Send + 'static>(stage: CommittableStage<I, O>) -> ErasedStage {
    let routing = match stage.routing {
        Routing::Forward => Routing::Forward,
        Routing::Rebalance => Routing::Rebalance,
        Routing::Global => Routing::Global,
        Routing::KeyBy(key) => Routing::KeyBy(Arc::new(move |c: &AnyCommittable| {
            // Summaries carry no committable; a foreign type cannot occur by construction.
            c.downcast_ref::<I>().map_or(0, |c| key(c))
        })),
    };
    let factory = stage.factory;
    let name = stage.name.clone();
    ErasedStage {
        name: stage.name,
        parallelism: stage.parallelism,
        routing,
        factory: Arc::new(
            move |ctx: &dyn InitContext,
                  restored: Vec<VersionedBytes>|
                  -> Result<Box<dyn CommittableOperator<AnyCommittable, AnyCommittable>>> {
                let inner = factory.create(ctx, restored)?;
                Ok(Box::new(ErasedOperator {
                    inner,
                    name: name.clone(),
                    buffer: Vec::new(),
                }))
            },
        ),
    }
}
