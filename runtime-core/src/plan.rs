//! The physical plan: task groups (chains of operators with one parallelism), the channel
//! edges between them, the source coordinators to start, and what each subtask gets when it is
//! launched (its restored state, its channels, its context). [`crate::graph`] builds it; the
//! job master ([`crate::job`]) launches it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup};
use weir_connector_api::sink::InitContext;
use weir_connector_api::watermark::CoordinatorStore;

use crate::config::JobConfig;
use crate::element::Batch;
use crate::error::{Result, RuntimeError};
use crate::exchange::{
    self, BoxReceiver, BoxSender, ChannelFactory, ChannelStateCodec, ChannelsOf, EdgeId,
    EdgePartitioning, Exchange, GateAlignment, InputGate, Rescale, SerializerSlot, CHANNEL_STATE,
};
use crate::fault::FaultInjector;
use crate::monitor::{GraphEdge, JobGraph, TaskRole, TaskVertex};
use crate::operator::{BoxOutput, TaskCx};
use crate::sink::Message;
use crate::source::coordinator::CoordinatorHandle;
use crate::storage::OperatorSnapshot;
use crate::task::lifecycle::Lifecycle;
use crate::task::one_input::OneInputTask;
use crate::task::{MasterMsg, TaskCommand, TaskKey};

/// The restored state of one operator subtask.
#[derive(Debug, Clone, Default)]
pub(crate) struct RestoredOperator {
    /// Every subtask of the operator had finished (FLIP-147): nothing to redo.
    pub(crate) finished: bool,
    /// Named list states assigned to this subtask.
    pub(crate) state: BTreeMap<String, Vec<VersionedBytes>>,
}

/// Everything a task factory needs to start one subtask.
pub(crate) struct SubtaskSetup<'a> {
    pub(crate) key: TaskKey,
    pub(crate) parallelism: usize,
    pub(crate) attempt: u32,
    pub(crate) exchange: &'a mut dyn Exchange,
    pub(crate) restored: &'a BTreeMap<String, RestoredOperator>,
    /// The id the group's channel state is stored under (see [`TaskGroup::channel_state`]).
    pub(crate) channel_state: Option<&'a str>,
    pub(crate) restored_checkpoint: Option<CheckpointId>,
    pub(crate) coordinators: &'a BTreeMap<String, CoordinatorHandle>,
    pub(crate) control: Option<mpsc::UnboundedReceiver<TaskCommand>>,
    pub(crate) control_tx: mpsc::UnboundedSender<TaskCommand>,
    pub(crate) master: mpsc::UnboundedSender<MasterMsg>,
    pub(crate) config: &'a JobConfig,
    pub(crate) faults: Arc<dyn FaultInjector>,
    pub(crate) metrics: &'a InMemoryMetricGroup,
}

impl SubtaskSetup<'_> {
    pub(crate) fn restored(&self, uid: &str) -> RestoredOperator {
        self.restored.get(uid).cloned().unwrap_or_default()
    }

    pub(crate) fn operator_metrics(&self, uid: &str) -> InMemoryMetricGroup {
        self.metrics.group(uid).group(&self.key.subtask.to_string())
    }

    /// The [`InitContext`] of an operator of this subtask.
    pub(crate) fn init_context(&self, uid: &str) -> RuntimeInitContext {
        RuntimeInitContext {
            subtask: self.key.subtask,
            parallelism: self.parallelism,
            attempt: self.attempt,
            restored: self.restored_checkpoint,
            metrics: Arc::new(self.operator_metrics(uid)),
            uid: uid.to_owned(),
        }
    }

    pub(crate) fn cx(&self) -> TaskCx {
        TaskCx::new(
            self.key.subtask,
            self.parallelism,
            self.attempt,
            Arc::clone(&self.faults),
        )
    }

    /// The sending ends of this subtask on `edge`.
    pub(crate) fn take_senders<T: Send + 'static>(
        &mut self,
        edge: EdgeId,
    ) -> Result<Vec<BoxSender<T>>> {
        exchange::take_senders(self.exchange, edge, self.key.subtask)
    }

    /// The receiving ends of this subtask on `edge`.
    pub(crate) fn take_receivers<T: Send + 'static>(
        &mut self,
        edge: EdgeId,
    ) -> Result<Vec<BoxReceiver<T>>> {
        exchange::take_receivers(self.exchange, edge, self.key.subtask)
    }

    pub(crate) fn take_control(&mut self) -> Result<mpsc::UnboundedReceiver<TaskCommand>> {
        self.control
            .take()
            .ok_or_else(|| RuntimeError::Lost("the control channel of a task".into()))
    }
}

/// Builds the chain of one subtask given the chain's tail, and returns the task to run.
pub(crate) type ChainBuilder<T> = Arc<
    dyn Fn(&mut SubtaskSetup<'_>, BoxOutput<T>) -> Result<BoxFuture<'static, ()>> + Send + Sync,
>;

/// Builds a whole subtask.
pub(crate) type TaskFactory =
    Arc<dyn Fn(&mut SubtaskSetup<'_>) -> Result<BoxFuture<'static, ()>> + Send + Sync>;

pub(crate) type StartCoordinator = Arc<
    dyn Fn(
            usize,
            Option<VersionedBytes>,
            Arc<dyn MetricGroup>,
            mpsc::UnboundedSender<MasterMsg>,
            Arc<dyn CoordinatorStore>,
        ) -> Result<CoordinatorHandle>
        + Send
        + Sync,
>;

/// A group of identical subtasks: one node of the physical plan.
pub(crate) struct TaskGroup {
    pub(crate) name: String,
    pub(crate) parallelism: usize,
    pub(crate) uids: Vec<String>,
    /// Where the records in flight into this group are stored (unaligned checkpoints): a
    /// state id of their own, for groups that read channels of the job's alignment.
    pub(crate) channel_state: Option<String>,
    pub(crate) is_source: bool,
    /// A post-commit stage: it finishes only after its committers commit at the final
    /// checkpoint.
    pub(crate) post_commit: bool,
    pub(crate) factory: TaskFactory,
}

/// A channel edge between two task groups.
pub(crate) struct EdgeSpec {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) pointwise: bool,
    pub(crate) partitioning: EdgePartitioning,
    /// Makes the edge's channels (it knows their record type).
    pub(crate) channels: Arc<dyn ChannelFactory>,
}

/// A source coordinator to start.
pub(crate) struct SourceSpec {
    pub(crate) uid: String,
    /// The declared schema, one line per field (see [`DataStream::state_schema`]).
    pub(crate) schema: Vec<String>,
    pub(crate) group: usize,
    pub(crate) start: StartCoordinator,
    /// Writes and reads its split assignments when they cross processes (cluster mode).
    pub(crate) splits: Arc<dyn crate::cluster::SplitCodec>,
}

#[derive(Default)]
pub(crate) struct GraphBuilder {
    pub(crate) groups: Vec<TaskGroup>,
    pub(crate) edges: Vec<PendingEdge>,
    pub(crate) sources: Vec<SourceSpec>,
    pub(crate) errors: Vec<String>,
    pub(crate) counter: usize,
    /// Stages that read channels, each with a check that its input has a channel-state
    /// serializer (unaligned checkpoints need one).
    pub(crate) channel_inputs: Vec<(String, Box<dyn Fn() -> bool + Send>)>,
}

pub(crate) struct PendingEdge {
    pub(crate) from: Option<usize>,
    pub(crate) to: Option<usize>,
    pub(crate) pointwise: bool,
    /// As the job graph shows it (set by whoever feeds the edge; forward or rebalance by
    /// default).
    pub(crate) partitioning: EdgePartitioning,
    pub(crate) channels: Arc<dyn ChannelFactory>,
}

impl GraphBuilder {
    pub(crate) fn next_id(&mut self, kind: &str) -> String {
        self.counter += 1;
        format!("{kind}-{}", self.counter)
    }

    pub(crate) fn new_edge<T: Send + 'static>(&mut self, pointwise: bool) -> EdgeId {
        self.new_edge_of(pointwise, ChannelsOf::<T>::new())
    }

    /// A new edge whose channels are made by `channels`.
    pub(crate) fn new_edge_of<T: Send + 'static>(
        &mut self,
        pointwise: bool,
        channels: ChannelsOf<T>,
    ) -> EdgeId {
        self.edges.push(PendingEdge {
            from: None,
            to: None,
            pointwise,
            partitioning: if pointwise {
                EdgePartitioning::Forward
            } else {
                EdgePartitioning::Rebalance
            },
            channels: Arc::new(channels),
        });
        self.edges.len() - 1
    }

    pub(crate) fn finish(
        self,
        config: &JobConfig,
    ) -> Result<(Vec<TaskGroup>, Vec<EdgeSpec>, Vec<SourceSpec>)> {
        let mut errors = self.errors;
        if let Some(c) = config
            .checkpointing
            .as_ref()
            .filter(|c| c.alignment.overtakes())
        {
            for (stage, declared) in &self.channel_inputs {
                if !declared() {
                    errors.push(format!(
                        "stage {stage} reads its records through an exchange, and with {:?} \
                         barriers a checkpoint stores the records in flight there: declare how \
                         with DataStream::channel_state_serializer on the stream before the \
                         exchange, or use aligned barriers",
                        c.alignment
                    ));
                }
            }
        }
        let mut seen = BTreeMap::new();
        for (g, group) in self.groups.iter().enumerate() {
            if group.parallelism == 0 {
                errors.push(format!(
                    "task {} has parallelism 0; use at least 1",
                    group.name
                ));
            }
            for uid in &group.uids {
                if let Some(other) = seen.insert(uid.clone(), g) {
                    let other_name = self.groups.get(other).map_or("?", |x| x.name.as_str());
                    errors.push(format!(
                        "uid `{uid}` is used by both {other_name} and {}; uids must be unique",
                        group.name
                    ));
                }
            }
        }
        let mut edges = Vec::new();
        for (i, e) in self.edges.into_iter().enumerate() {
            match (e.from, e.to) {
                (Some(from), Some(to)) => edges.push(EdgeSpec {
                    from,
                    to,
                    pointwise: e.pointwise,
                    partitioning: e.partitioning,
                    channels: e.channels,
                }),
                _ => errors.push(format!(
                    "stream {i} is never consumed: end every stream in a sink"
                )),
            }
        }
        if !errors.is_empty() {
            return Err(RuntimeError::InvalidJob(errors));
        }
        Ok((self.groups, edges, self.sources))
    }
}

/// The job graph a monitor shows: one vertex per task group, one edge per channel edge.
pub(crate) fn job_graph(groups: &[TaskGroup], edges: &[EdgeSpec]) -> JobGraph {
    let id = |g: usize| {
        groups
            .get(g)
            .and_then(|group| group.uids.first().cloned())
            .unwrap_or_else(|| format!("task-{g}"))
    };
    JobGraph {
        tasks: groups
            .iter()
            .enumerate()
            .map(|(g, group)| TaskVertex {
                id: id(g),
                name: group.name.clone(),
                parallelism: group.parallelism,
                operators: group.uids.clone(),
                role: if group.is_source {
                    TaskRole::Source
                } else if group.post_commit {
                    TaskRole::PostCommit
                } else {
                    TaskRole::Operator
                },
            })
            .collect(),
        edges: edges
            .iter()
            .map(|e| GraphEdge {
                from: id(e.from),
                to: id(e.to),
                partitioning: e.partitioning,
            })
            .collect(),
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a stage's inputs treat barriers.
#[derive(Clone, Copy)]
pub(crate) enum Alignment {
    /// As the job's checkpointing mode says.
    JobMode,
    /// Always aligned: committable edges. In at-least-once mode an unaligned committer or
    /// topology stage could snapshot committables a writer produced after its own barrier, which
    /// the writer's restore would then treat as its own leftovers. Committables are few, so
    /// aligning costs nothing.
    Always,
}

/// What a stage reading channels of the job's alignment knows about its records in flight.
pub(crate) struct ChannelInput<T> {
    /// The serializer slots of the streams feeding it (the first one declared is used).
    slots: Vec<SerializerSlot<T>>,
    rescale: Rescale<T>,
}

impl<T: Send + 'static> ChannelInput<T> {
    /// Registers the stage `name` with the graph's checks.
    pub(crate) fn new(
        graph: &Arc<Mutex<GraphBuilder>>,
        name: &str,
        slots: Vec<SerializerSlot<T>>,
        rescale: Rescale<T>,
    ) -> Self {
        let check = slots.clone();
        lock(graph).channel_inputs.push((
            name.to_owned(),
            Box::new(move || check.iter().any(|s| lock(s).is_some())),
        ));
        ChannelInput { slots, rescale }
    }

    fn codec(&self) -> Option<ChannelStateCodec<T>> {
        self.slots
            .iter()
            .find_map(|s| lock(s).clone())
            .map(|serializer| ChannelStateCodec::new(serializer, self.rescale.clone()))
    }
}

/// The head of a stage that reads from channel edges: its input gate, and the records in
/// flight it restored (replayed before new input).
pub(crate) fn input_head<T: Send + 'static>(
    edges: Vec<EdgeId>,
    alignment: Alignment,
    input: Option<ChannelInput<T>>,
) -> ChainBuilder<T> {
    Arc::new(move |setup: &mut SubtaskSetup<'_>, chain: BoxOutput<T>| {
        let mut receivers = Vec::new();
        for edge in &edges {
            receivers.extend(setup.take_receivers::<T>(*edge)?);
        }
        let gate_alignment = match alignment {
            Alignment::Always => GateAlignment::Aligned,
            Alignment::JobMode => setup
                .config
                .checkpointing
                .as_ref()
                .map_or(GateAlignment::Aligned, |c| {
                    GateAlignment::of(c.mode, c.alignment)
                }),
        };
        let codec = input.as_ref().and_then(ChannelInput::codec);
        let (replay, channel_state) = match setup.channel_state {
            Some(id) if alignment_reads_channel_state(alignment) => {
                let restored = setup.restored(id);
                let replay = match &codec {
                    Some(codec) => codec
                        .restore(&restored.state, setup.key.subtask, setup.parallelism)
                        .map_err(|e| RuntimeError::Restore {
                            operator: id.to_owned(),
                            reason: format!("records in flight (channel state): {e}"),
                        })?,
                    None if restored.state.values().any(|v| !v.is_empty()) => {
                        return Err(RuntimeError::Restore {
                            operator: id.to_owned(),
                            reason: "the snapshot holds records in flight (an unaligned \
                                     checkpoint), but the stream has no channel-state \
                                     serializer to read them: declare it with \
                                     DataStream::channel_state_serializer"
                                .into(),
                        });
                    }
                    None => Batch::default(),
                };
                let name = codec
                    .as_ref()
                    .map_or(CHANNEL_STATE, ChannelStateCodec::state_name);
                (replay, Some((id.to_owned(), name)))
            }
            _ => (Batch::default(), None),
        };
        let task = OneInputTask {
            life: Lifecycle::new(setup.key, setup.master.clone()),
            gate: InputGate::new(receivers, gate_alignment, codec),
            chain,
            control: setup.take_control()?,
            cx: setup.cx(),
            linger: setup.config.buffer_timeout,
            replay,
            channel_state,
            held: None,
            batch_size: setup.config.batch_size,
        };
        Ok(Box::pin(task.run()) as BoxFuture<'static, ()>)
    })
}

/// Whether a stage's inputs can hold records in flight at a checkpoint.
fn alignment_reads_channel_state(alignment: Alignment) -> bool {
    matches!(alignment, Alignment::JobMode)
}

pub(crate) type MessageOperatorFactory =
    Arc<dyn Fn(&mut SubtaskSetup<'_>) -> Result<BoxOutput<Message>> + Send + Sync>;

/// Adds a task group that reads committable messages from `edge` and runs one operator.
pub(crate) fn add_message_group(
    graph: &Arc<Mutex<GraphBuilder>>,
    post_commit: bool,
    name: String,
    parallelism: usize,
    edge: Option<EdgeId>,
    uid: String,
    operator: MessageOperatorFactory,
) -> usize {
    let head = input_head::<Message>(edge.into_iter().collect(), Alignment::Always, None);
    let mut g = lock(graph);
    let group = g.groups.len();
    if let Some(e) = edge.and_then(|edge| g.edges.get_mut(edge)) {
        e.to = Some(group);
    }
    g.groups.push(TaskGroup {
        name,
        parallelism,
        uids: vec![uid],
        channel_state: None,
        is_source: false,
        post_commit,
        factory: Arc::new(move |setup| {
            let op = operator(setup)?;
            head(setup, op)
        }),
    });
    group
}

/// The runtime's [`InitContext`] for writers, committers and stages.
pub(crate) struct RuntimeInitContext {
    pub(crate) subtask: usize,
    pub(crate) parallelism: usize,
    pub(crate) attempt: u32,
    pub(crate) restored: Option<CheckpointId>,
    pub(crate) metrics: Arc<dyn MetricGroup>,
    pub(crate) uid: String,
}

impl InitContext for RuntimeInitContext {
    fn subtask_index(&self) -> usize {
        self.subtask
    }
    fn parallelism(&self) -> usize {
        self.parallelism
    }
    fn attempt(&self) -> u32 {
        self.attempt
    }
    fn restored_checkpoint_id(&self) -> Option<CheckpointId> {
        self.restored
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::clone(&self.metrics)
    }
    fn operator_id(&self) -> &str {
        &self.uid
    }
}

/// Splits an operator's checkpointed state over a (possibly new) parallelism: same parallelism
/// keeps each subtask's state; otherwise every named list is pooled and dealt round-robin.
pub(crate) fn distribute(
    op: Option<&OperatorSnapshot>,
    parallelism: usize,
    subtask: usize,
) -> RestoredOperator {
    let Some(op) = op else {
        return RestoredOperator::default();
    };
    let mut restored = RestoredOperator {
        finished: op.finished,
        state: BTreeMap::new(),
    };
    if op.parallelism as usize == parallelism {
        if let Some(s) = op.subtasks.get(subtask) {
            restored.state = s.state.clone();
        }
        return restored;
    }
    let mut pooled: BTreeMap<String, Vec<VersionedBytes>> = BTreeMap::new();
    for s in &op.subtasks {
        for (name, values) in &s.state {
            pooled
                .entry(name.clone())
                .or_default()
                .extend(values.iter().cloned());
        }
    }
    for (name, values) in pooled {
        if name.starts_with("union:") {
            // Keyed state: every subtask sees everything and keeps its own keys.
            restored.state.insert(name, values);
            continue;
        }
        let mine = values
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % parallelism.max(1) == subtask)
            .map(|(_, v)| v)
            .collect();
        restored.state.insert(name, mine);
    }
    restored
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SubtaskSnapshot;

    fn op(parallelism: u32, per_subtask: &[&[u8]]) -> OperatorSnapshot {
        OperatorSnapshot {
            parallelism,
            finished: false,
            coordinator: None,
            subtasks: per_subtask
                .iter()
                .map(|values| SubtaskSnapshot {
                    finished: false,
                    state: BTreeMap::from([(
                        "splits".to_string(),
                        values
                            .iter()
                            .map(|v| VersionedBytes {
                                version: 1,
                                bytes: vec![*v],
                            })
                            .collect(),
                    )]),
                })
                .collect(),
            schema: Vec::new(),
        }
    }

    fn values(r: &RestoredOperator) -> Vec<u8> {
        r.state
            .get("splits")
            .map(|v| v.iter().map(|b| b.bytes[0]).collect())
            .unwrap_or_default()
    }

    #[test]
    fn same_parallelism_keeps_each_subtask_state() {
        let snapshot = op(2, &[&[1, 2], &[3]]);
        assert_eq!(values(&distribute(Some(&snapshot), 2, 0)), vec![1, 2]);
        assert_eq!(values(&distribute(Some(&snapshot), 2, 1)), vec![3]);
    }

    #[test]
    fn rescale_deals_every_value_exactly_once() {
        let snapshot = op(2, &[&[1, 2, 3], &[4, 5]]);
        let mut all: Vec<u8> = (0..4)
            .flat_map(|s| values(&distribute(Some(&snapshot), 4, s)))
            .collect();
        all.sort_unstable();
        assert_eq!(all, vec![1, 2, 3, 4, 5]);
        let down = op(4, &[&[1], &[2], &[3], &[4]]);
        let mut all: Vec<u8> = (0..2)
            .flat_map(|s| values(&distribute(Some(&down), 2, s)))
            .collect();
        all.sort_unstable();
        assert_eq!(all, vec![1, 2, 3, 4]);
    }
}
