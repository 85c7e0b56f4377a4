//! The physical plan: task groups (chains of operators with one parallelism), the channel
//! edges between them, the source coordinators to start, and what each subtask gets when it is
//! launched (its restored state, its wiring, its context). [`crate::graph`] builds it; the
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
use crate::error::{Result, RuntimeError};
use crate::exchange::{CheckpointingMode, EdgeId, InputGate, Wiring};
use crate::fault::FaultInjector;
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
    pub(crate) wiring: &'a mut Wiring,
    pub(crate) restored: &'a BTreeMap<String, RestoredOperator>,
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

pub(crate) type ConnectFn =
    Arc<dyn Fn(&mut Wiring, EdgeId, usize, usize, bool, usize) + Send + Sync>;

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
    pub(crate) connect: ConnectFn,
}

/// A source coordinator to start.
pub(crate) struct SourceSpec {
    pub(crate) uid: String,
    /// The declared schema, one line per field (see [`DataStream::state_schema`]).
    pub(crate) schema: Vec<String>,
    pub(crate) group: usize,
    pub(crate) start: StartCoordinator,
}

#[derive(Default)]
pub(crate) struct GraphBuilder {
    pub(crate) groups: Vec<TaskGroup>,
    pub(crate) edges: Vec<PendingEdge>,
    pub(crate) sources: Vec<SourceSpec>,
    pub(crate) errors: Vec<String>,
    pub(crate) counter: usize,
}

pub(crate) struct PendingEdge {
    pub(crate) from: Option<usize>,
    pub(crate) to: Option<usize>,
    pub(crate) pointwise: bool,
    pub(crate) connect: ConnectFn,
}

impl GraphBuilder {
    pub(crate) fn next_id(&mut self, kind: &str) -> String {
        self.counter += 1;
        format!("{kind}-{}", self.counter)
    }

    pub(crate) fn new_edge<T: Send + 'static>(&mut self, pointwise: bool) -> EdgeId {
        self.edges.push(PendingEdge {
            from: None,
            to: None,
            pointwise,
            connect: Arc::new(|w, id, up, down, pointwise, cap| {
                w.connect::<T>(id, up, down, pointwise, cap);
            }),
        });
        self.edges.len() - 1
    }

    pub(crate) fn finish(self) -> Result<(Vec<TaskGroup>, Vec<EdgeSpec>, Vec<SourceSpec>)> {
        let mut errors = self.errors;
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
                    connect: e.connect,
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

/// The head of a stage that reads from channel edges.
pub(crate) fn input_head<T: Send + 'static>(
    edges: Vec<EdgeId>,
    alignment: Alignment,
) -> ChainBuilder<T> {
    Arc::new(move |setup: &mut SubtaskSetup<'_>, chain: BoxOutput<T>| {
        let mut receivers = Vec::new();
        for edge in &edges {
            receivers.extend(setup.wiring.take_receivers::<T>(*edge, setup.key.subtask)?);
        }
        let mode = match alignment {
            Alignment::Always => CheckpointingMode::ExactlyOnce,
            Alignment::JobMode => setup
                .config
                .checkpointing
                .as_ref()
                .map_or(CheckpointingMode::ExactlyOnce, |c| c.mode),
        };
        let task = OneInputTask {
            life: Lifecycle::new(setup.key, setup.master.clone()),
            gate: InputGate::new(receivers, mode),
            chain,
            control: setup.take_control()?,
            cx: setup.cx(),
            linger: setup.config.buffer_timeout,
        };
        Ok(Box::pin(task.run()) as BoxFuture<'static, ()>)
    })
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
    let head = input_head::<Message>(edge.into_iter().collect(), Alignment::Always);
    let mut g = lock(graph);
    let group = g.groups.len();
    if let Some(e) = edge.and_then(|edge| g.edges.get_mut(edge)) {
        e.to = Some(group);
    }
    g.groups.push(TaskGroup {
        name,
        parallelism,
        uids: vec![uid],
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
