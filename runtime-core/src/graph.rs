//! The job graph API: sources, stateless operators, repartitioning and sinks, with stable uids.
//!
//! Operators with the same parallelism joined by forward edges are *chained*: they run in one
//! task and call each other directly, batch by batch. `key_by`, `rebalance` and a sink's
//! committer start new tasks connected by channels.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::metrics::{
    Gauge, InMemoryMetricGroup, MetricGroup, NUM_RECORDS_IN, NUM_RECORDS_OUT,
};
use weir_connector_api::sink::{
    AnyCommittable, ErasedStage, InitContext, Routing, Sink, StageParallelism,
};
use weir_connector_api::source::Source;
use weir_connector_api::state::VersionedSerializer;
use weir_connector_api::watermark::{CoordinatorStore, WatermarkStrategy};

use crate::error::{Result, RuntimeError};
use crate::exchange::{CheckpointingMode, EdgeId, ExchangeOutput, InputGate, Partitioning, Wiring};
use crate::fault::FaultInjector;
use crate::job::{Job, JobConfig};
use crate::operator::{
    BoxOutput, Counted, FilterFn, FlatMapFn, MapFn, TaskCx, Transform, TransformOperator,
};
use crate::sink::committer_op::{CommitterOperator, COMMITTABLES_STATE};
use crate::sink::spread::{Spread, SpreadOutput};
use crate::sink::stage_op::StageOperator;
use crate::sink::writer_op::WriterOperator;
use crate::sink::{Discard, Message};
use crate::source::coordinator::{self, CoordinatorHandle};
use crate::source::output::RuntimeReaderOutput;
use crate::task::one_input::OneInputTask;
use crate::task::source_task::{ReaderContext, SourceTask, SourceTaskOptions};
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
    fn restored(&self, uid: &str) -> RestoredOperator {
        self.restored.get(uid).cloned().unwrap_or_default()
    }

    fn operator_metrics(&self, uid: &str) -> InMemoryMetricGroup {
        self.metrics.group(uid).group(&self.key.subtask.to_string())
    }

    /// The [`InitContext`] of an operator of this subtask.
    fn init_context(&self, uid: &str) -> RuntimeInitContext {
        RuntimeInitContext {
            subtask: self.key.subtask,
            parallelism: self.parallelism,
            attempt: self.attempt,
            restored: self.restored_checkpoint,
            metrics: Arc::new(self.operator_metrics(uid)),
            uid: uid.to_owned(),
        }
    }

    fn cx(&self) -> TaskCx {
        TaskCx::new(
            self.key.subtask,
            self.parallelism,
            self.attempt,
            Arc::clone(&self.faults),
        )
    }

    fn take_control(&mut self) -> Result<mpsc::UnboundedReceiver<TaskCommand>> {
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

type ConnectFn = Arc<dyn Fn(&mut Wiring, EdgeId, usize, usize, bool, usize) + Send + Sync>;

type StartCoordinator = Arc<
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
    counter: usize,
}

pub(crate) struct PendingEdge {
    from: Option<usize>,
    to: Option<usize>,
    pointwise: bool,
    connect: ConnectFn,
}

impl GraphBuilder {
    fn next_id(&mut self, kind: &str) -> String {
        self.counter += 1;
        format!("{kind}-{}", self.counter)
    }

    fn new_edge<T: Send + 'static>(&mut self, pointwise: bool) -> EdgeId {
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

/// Entry point for building a job.
pub struct StreamEnvironment {
    graph: Arc<Mutex<GraphBuilder>>,
    config: JobConfig,
}

impl StreamEnvironment {
    /// A new environment with the job's configuration.
    pub fn new(config: JobConfig) -> Self {
        StreamEnvironment {
            graph: Arc::new(Mutex::new(GraphBuilder::default())),
            config,
        }
    }

    /// The job's configuration.
    pub fn config(&self) -> &JobConfig {
        &self.config
    }

    /// Adds a source. Its uid defaults to `source-<n>` in creation order; set a stable one with
    /// [`DataStream::uid`] so state survives changes to the job.
    pub fn from_source<S: Source>(
        &self,
        source: S,
        watermarks: WatermarkStrategy<S::Output>,
        name: &str,
    ) -> DataStream<S::Output> {
        let source = Arc::new(source);
        let alignment = watermarks.alignment().cloned();
        let uid = {
            let mut g = lock(&self.graph);
            Arc::new(Mutex::new(g.next_id("source")))
        };
        let uid_for_chain = Arc::clone(&uid);
        let build: ChainBuilder<S::Output> = {
            let source = Arc::clone(&source);
            Arc::new(
                move |setup: &mut SubtaskSetup<'_>, chain: BoxOutput<S::Output>| {
                    let uid = lock(&uid_for_chain).clone();
                    let restored = setup.restored(&uid);
                    let coordinator = setup.coordinators.get(&uid).cloned().ok_or_else(|| {
                        RuntimeError::Lost(format!("coordinator of source {uid}"))
                    })?;
                    let metrics = setup.operator_metrics(&uid);
                    let records_out = metrics.counter(NUM_RECORDS_OUT);
                    let watermark_gauge: Gauge = metrics.gauge("currentOutputWatermark");
                    let split_serializer: Arc<dyn VersionedSerializer<S::Split>> =
                        source.split_serializer();
                    let (reader, restored_splits) = if restored.finished {
                        (None, Vec::new())
                    } else {
                        let mut splits = Vec::new();
                        for v in restored.state.get("splits").into_iter().flatten() {
                            splits.push(
                                split_serializer
                                    .deserialize(v.version, &v.bytes)
                                    .map_err(|e| RuntimeError::Restore {
                                        operator: uid.clone(),
                                        reason: format!("split state: {e}"),
                                    })?,
                            );
                        }
                        let ctx = Arc::new(ReaderContext {
                            subtask: setup.key.subtask,
                            parallelism: setup.parallelism,
                            metrics: Arc::new(metrics.clone()),
                            coordinator: coordinator.clone(),
                        });
                        let reader = source
                            .create_reader(ctx)
                            .map_err(|e| RuntimeError::connector(&uid, setup.key.subtask, e))?;
                        (Some(reader), splits)
                    };
                    let task = SourceTask::<S> {
                        uid: uid.clone(),
                        key: setup.key,
                        reader,
                        restored_splits,
                        output: RuntimeReaderOutput::new(
                            watermarks.clone(),
                            setup.config.batch_size,
                        ),
                        chain,
                        control: setup.take_control()?,
                        control_tx: setup.control_tx.clone(),
                        master: setup.master.clone(),
                        coordinator,
                        cx: setup.cx(),
                        split_serializer,
                        options: SourceTaskOptions {
                            batch_size: setup.config.batch_size,
                            watermark_interval: setup.config.watermark_interval,
                        },
                        records_out,
                        watermark_gauge,
                        last_barrier: None,
                        event_time: crate::task::source_task::EventTime::new(
                            watermarks.alignment().cloned(),
                            setup.config.unaligned_source_splits,
                            &metrics,
                        ),
                    };
                    Ok(Box::pin(task.run()))
                },
            )
        };
        let parallelism = self.config.parallelism;
        {
            let mut g = lock(&self.graph);
            let uid_for_spec = Arc::clone(&uid);
            let source_for_spec = Arc::clone(&source);
            let start: StartCoordinator =
                Arc::new(move |parallelism, restored, metrics, master, store| {
                    coordinator::start(
                        Arc::clone(&source_for_spec),
                        lock(&uid_for_spec).clone(),
                        parallelism,
                        restored,
                        metrics,
                        master,
                        alignment.clone(),
                        store,
                    )
                });
            g.sources.push(SourceSpec {
                uid: String::new(), // filled in when the stage closes
                schema: Vec::new(),
                group: usize::MAX,
                start,
            });
        }
        DataStream {
            graph: Arc::clone(&self.graph),
            parallelism,
            name: name.to_owned(),
            input: Vec::new(),
            source: Some(SourceStage {
                uid,
                spec_index: lock(&self.graph).sources.len() - 1,
            }),
            uids: Vec::new(),
            build,
        }
    }

    /// Builds the job; every mistake in the graph is reported at once.
    pub fn build(self) -> Result<Job> {
        let builder = std::mem::take(&mut *lock(&self.graph));
        let (groups, edges, sources) = builder.finish()?;
        Job::new(self.config, groups, edges, sources)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct SourceStage {
    uid: Arc<Mutex<String>>,
    spec_index: usize,
}

/// A stream of records of type `T`: the open end of a chain that more operators, an exchange
/// or a sink can be attached to. Consuming methods take `self`: every stream has one consumer.
pub struct DataStream<T: Send + 'static> {
    graph: Arc<Mutex<GraphBuilder>>,
    parallelism: usize,
    name: String,
    /// The edge this stage reads from, if it does not start at a source.
    input: Vec<EdgeId>,
    source: Option<SourceStage>,
    uids: Vec<String>,
    build: ChainBuilder<T>,
}

/// How a sink is attached.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// The sink's stable uid (default `sink-<n>`); its writer, committer and topology stages
    /// derive theirs from it (`<uid>/committer`, `<uid>/pre-commit/<stage>`...).
    pub uid: Option<String>,
    /// The committer's parallelism (default: the writer's).
    pub committer_parallelism: Option<NonZeroUsize>,
}

impl<T: Send + 'static> DataStream<T> {
    /// Sets the parallelism of this stage (the source, or the operators after the last
    /// exchange).
    pub fn parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// Sets the uid of the stage's source (for restoring state). Only sources carry state among
    /// chainable operators.
    pub fn uid(self, uid: &str) -> Self {
        if let Some(s) = &self.source {
            uid.clone_into(&mut lock(&s.uid));
        }
        self
    }

    /// Declares the schema of the stage's source, one line per field (e.g. `id int64 not
    /// null`); it is recorded with the source's state. A restore refuses a snapshot whose
    /// recorded schema has a line this one lacks (a field removed or changed); added lines are
    /// fine. Without a source, or with an empty list, nothing is checked.
    pub fn state_schema(self, fields: impl IntoIterator<Item = impl Into<String>>) -> Self {
        if let Some(s) = &self.source {
            if let Some(spec) = lock(&self.graph).sources.get_mut(s.spec_index) {
                spec.schema = fields.into_iter().map(Into::into).collect();
            }
        }
        self
    }

    fn chain<U: Send + 'static>(
        self,
        wrap: impl Fn(BoxOutput<U>) -> BoxOutput<T> + Send + Sync + 'static,
    ) -> DataStream<U> {
        let prev = self.build;
        DataStream {
            graph: self.graph,
            parallelism: self.parallelism,
            name: self.name,
            input: self.input,
            source: self.source,
            uids: self.uids,
            build: Arc::new(move |setup, tail| prev(setup, wrap(tail))),
        }
    }

    /// Chains a stateless batch transformation (cloned into every subtask).
    fn transform<U: Send + 'static, X>(self, transform: X) -> DataStream<U>
    where
        X: Transform<T, U> + Clone + Sync,
    {
        self.chain(move |next: BoxOutput<U>| {
            Box::new(TransformOperator {
                transform: transform.clone(),
                buffer: Vec::new(),
                next,
                _input: PhantomData,
            })
        })
    }

    /// Transforms every record.
    pub fn map<U: Send + 'static>(
        self,
        f: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> DataStream<U> {
        self.transform(MapFn(Arc::new(f)))
    }

    /// Keeps the records for which `f` is true.
    pub fn filter(self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> DataStream<T> {
        self.transform(FilterFn(Arc::new(f)))
    }

    /// Turns every record into zero or more records.
    pub fn flat_map<U: Send + 'static, I: IntoIterator<Item = U> + 'static>(
        self,
        f: impl Fn(T) -> I + Send + Sync + 'static,
    ) -> DataStream<U> {
        self.transform(FlatMapFn(Arc::new(f)))
    }

    /// Repartitions by key: records with equal keys reach the same subtask of the next stage.
    pub fn key_by(self, key: impl Fn(&T) -> u64 + Send + Sync + 'static) -> DataStream<T> {
        self.exchange(&Partitioning::KeyBy(Arc::new(key)), false)
    }

    /// Redistributes batches round-robin to the next stage.
    pub fn rebalance(self) -> DataStream<T> {
        self.exchange(&Partitioning::Rebalance, false)
    }

    /// Closes this stage into a task group whose chain ends in `tail`, returning its index.
    fn close(
        self,
        name: &str,
        tail: impl Fn(&mut SubtaskSetup<'_>) -> Result<BoxOutput<T>> + Send + Sync + 'static,
    ) -> (usize, Arc<Mutex<GraphBuilder>>, usize) {
        let build = self.build;
        let mut uids = self.uids;
        let is_source = self.source.is_some();
        let mut g = lock(&self.graph);
        let group = g.groups.len();
        if let Some(s) = &self.source {
            let uid = lock(&s.uid).clone();
            uids.insert(0, uid.clone());
            if let Some(spec) = g.sources.get_mut(s.spec_index) {
                spec.uid = uid;
                spec.group = group;
            }
        }
        for edge in &self.input {
            if let Some(e) = g.edges.get_mut(*edge) {
                e.to = Some(group);
            }
        }
        let factory: TaskFactory = Arc::new(move |setup| {
            let out = tail(setup)?;
            build(setup, out)
        });
        g.groups.push(TaskGroup {
            name: format!("{} ({name})", self.name),
            parallelism: self.parallelism,
            uids,
            is_source,
            post_commit: false,
            factory,
        });
        drop(g);
        (group, self.graph, self.parallelism)
    }

    /// Ends this stage in an exchange on a new edge, returning the edge.
    fn close_into_edge(self, partitioning: &Partitioning<T>, pointwise: bool) -> EdgeId {
        let edge = lock(&self.graph).new_edge::<T>(pointwise);
        let batch_partitioning = partitioning.clone();
        let (group, graph, _) = self.close("exchange", move |setup| {
            let senders = setup.wiring.take_senders::<T>(edge, setup.key.subtask)?;
            Ok(Box::new(ExchangeOutput::new(
                senders,
                batch_partitioning.clone(),
                setup.config.batch_size,
            )))
        });
        if let Some(e) = lock(&graph).edges.get_mut(edge) {
            e.from = Some(group);
        }
        edge
    }

    fn exchange(self, partitioning: &Partitioning<T>, pointwise: bool) -> DataStream<T> {
        let name = self.name.clone();
        let graph = Arc::clone(&self.graph);
        let parallelism = self.parallelism;
        let edge = self.close_into_edge(partitioning, pointwise);
        DataStream {
            graph,
            parallelism,
            name,
            input: vec![edge],
            source: None,
            uids: Vec::new(),
            build: input_head::<T>(vec![edge], Alignment::JobMode),
        }
    }

    /// Merges two streams of the same type into one stage (with this stream's parallelism)
    /// that reads both; its watermark is the minimum over the non-idle inputs.
    pub fn union(self, other: DataStream<T>) -> DataStream<T> {
        if !Arc::ptr_eq(&self.graph, &other.graph) {
            lock(&self.graph)
                .errors
                .push("a union joins streams of different environments".into());
        }
        let name = format!("{} + {}", self.name, other.name);
        let graph = Arc::clone(&self.graph);
        let parallelism = self.parallelism;
        let a = self.close_into_edge(&Partitioning::Rebalance, false);
        let b = other.close_into_edge(&Partitioning::Rebalance, false);
        DataStream {
            graph,
            parallelism,
            name,
            input: vec![a, b],
            source: None,
            uids: Vec::new(),
            build: input_head::<T>(vec![a, b], Alignment::JobMode),
        }
    }

    /// Counts records per key in tumbling event-time windows of `size`, emitting each count
    /// once the watermark passes the window's end; late records are dropped and counted
    /// (`numLateRecordsDropped`). Put it after [`DataStream::key_by`] with the same key so each
    /// key lives in one subtask; its state is checkpointed under `uid` and follows the keys on
    /// rescale.
    pub fn window_count(
        mut self,
        uid: &str,
        size: std::time::Duration,
        key: impl Fn(&T) -> u64 + Send + Sync + 'static,
        timestamp: impl Fn(&T) -> i64 + Send + Sync + 'static,
    ) -> DataStream<crate::window::WindowCount> {
        use crate::window::{WindowCountOperator, WindowMetrics, WINDOWS_STATE};
        let uid = uid.to_owned();
        self.uids.push(uid.clone());
        let size = i64::try_from(size.as_millis()).unwrap_or(i64::MAX).max(1);
        let key: crate::window::KeyFn<T> = Arc::new(key);
        let timestamp: crate::window::TimestampFn<T> = Arc::new(timestamp);
        let prev = self.build;
        let build: ChainBuilder<crate::window::WindowCount> =
            Arc::new(move |setup: &mut SubtaskSetup<'_>, next| {
                let restored = setup.restored(&uid);
                let metrics = setup.operator_metrics(&uid);
                let mut op = WindowCountOperator {
                    uid: uid.clone(),
                    size,
                    key: Arc::clone(&key),
                    timestamp: Arc::clone(&timestamp),
                    windows: std::collections::HashMap::new(),
                    watermark: weir_connector_api::watermark::Watermark::MIN,
                    next,
                    metrics: WindowMetrics {
                        entries: metrics.gauge("windowStateEntries"),
                        peak: metrics.gauge("windowStateEntriesPeak"),
                        late: metrics.counter("numLateRecordsDropped"),
                    },
                    out: Vec::new(),
                    ended: restored.finished,
                };
                let (subtask, parallelism) = (setup.key.subtask, setup.parallelism);
                op.restore(
                    restored
                        .state
                        .get(WINDOWS_STATE)
                        .map_or(&[][..], Vec::as_slice),
                    |k| crate::exchange::target_of(k, parallelism) == subtask || parallelism == 1,
                )?;
                prev(setup, Box::new(op))
            });
        DataStream {
            graph: self.graph,
            parallelism: self.parallelism,
            name: self.name,
            input: self.input,
            source: self.source,
            uids: self.uids,
            build,
        }
    }

    /// Writes the stream to `sink` with default options.
    pub fn sink_to<S: Sink<T>>(self, sink: S) {
        self.sink_to_with(sink, &SinkOptions::default());
    }

    /// Writes the stream to `sink`: the writer joins this stage's chain; the sink's declared
    /// capabilities add a pre-write exchange, pre-commit stages, a committer and post-commit
    /// stages.
    pub fn sink_to_with<S: Sink<T>>(self, sink: S, options: &SinkOptions) {
        let sink = Arc::new(sink);
        let caps = Arc::clone(&sink).capabilities();
        let uid = options
            .uid
            .clone()
            .unwrap_or_else(|| lock(&self.graph).next_id("sink"));
        // Pre-write topology: route records to the writers.
        let mut stream = match caps.pre_write() {
            Some(pre) => match pre.routing.clone() {
                Routing::Forward => self,
                Routing::Rebalance => self.rebalance(),
                Routing::Global => self.exchange(&Partitioning::Global, false),
                Routing::KeyBy(f) => self.exchange(&Partitioning::KeyBy(f), false),
            },
            None => self,
        };
        let writer_parallelism = stream.parallelism;
        let graph = Arc::clone(&stream.graph);
        let committer = caps.committer().cloned();
        let state_cap = caps.writer_state().cloned();
        let committer_parallelism = options
            .committer_parallelism
            .map_or(writer_parallelism, NonZeroUsize::get);
        let (pre_stages, post_stages) = committer
            .as_ref()
            .map(|c| (c.pre_commit_stages(), c.post_commit_stages()))
            .unwrap_or_default();
        // Where the writer's committables go: the first pre-commit stage or the committer.
        let writer_next = match &committer {
            None => NextHop::Nowhere,
            Some(_) => NextHop::to(
                &graph,
                pre_stages
                    .first()
                    .map_or(Routing::Forward, |s| s.routing.clone()),
                pre_stages.first().map_or(committer_parallelism, |s| {
                    stage_parallelism(s.parallelism, writer_parallelism)
                }),
            ),
        };
        let writer_uid = uid.clone();
        let writer_committer = committer.clone();
        let writer_hop = writer_next.clone();
        stream.uids.push(writer_uid.clone());
        let (writer_group, _, _) = stream.close("writer", move |setup| {
            let restored = setup.restored(&writer_uid);
            let ctx = setup.init_context(&writer_uid);
            let writer = match (&state_cap, setup.restored_checkpoint) {
                (Some(cap), Some(_)) => cap.restore(
                    &ctx,
                    restored.state.get("writer").cloned().unwrap_or_default(),
                ),
                _ => sink.create_writer(&ctx),
            }
            .map_err(|e| RuntimeError::connector(&writer_uid, setup.key.subtask, e))?;
            Ok(Box::new(Counted {
                records_in: ctx.metrics.counter(NUM_RECORDS_IN),
                inner: Box::new(WriterOperator::<T, S::Writer> {
                    uid: writer_uid.clone(),
                    writer,
                    state: state_cap.clone(),
                    committer: writer_committer.clone(),
                    next: writer_hop.output(setup)?,
                    // End of input is per operator: only when every writer subtask had
                    // finished is there nothing left to write (FLIP-147).
                    end_of_input: restored.finished,
                    watermark: weir_connector_api::watermark::Watermark::MIN,
                    messages: Vec::new(),
                    _in: PhantomData,
                }),
            }) as BoxOutput<T>)
        });
        let Some(committer) = committer else {
            return;
        };
        writer_next.connect_from(&graph, writer_group);
        // Pre-commit stages, then the committer, then post-commit stages.
        let into_committer = add_stages(
            &graph,
            &uid,
            StagePhase::PreCommit,
            &pre_stages,
            writer_next,
            writer_parallelism,
            Some(&(Routing::Forward, committer_parallelism)),
        );
        let committer_uid = format!("{uid}/committer");
        let committer_next = match post_stages.first() {
            Some(s) => NextHop::to(
                &graph,
                Routing::Forward,
                stage_parallelism(s.parallelism, committer_parallelism),
            ),
            None => NextHop::Nowhere,
        };
        let hop = committer_next.clone();
        let committer_group = add_message_group(
            &graph,
            false,
            format!("committer ({committer_uid})"),
            committer_parallelism,
            into_committer.edge(),
            committer_uid.clone(),
            Arc::new(move |setup: &mut SubtaskSetup<'_>| {
                let restored = setup.restored(&committer_uid);
                let ctx = setup.init_context(&committer_uid);
                let inner = committer
                    .create_committer(&ctx)
                    .map_err(|e| RuntimeError::connector(&committer_uid, setup.key.subtask, e))?;
                let mut op = CommitterOperator::<S::Writer>::new(
                    committer_uid.clone(),
                    inner,
                    Arc::clone(&committer),
                    setup.key.subtask,
                    setup.config.committer_retries,
                    hop.output(setup)?,
                );
                op.restore(
                    restored
                        .state
                        .get(COMMITTABLES_STATE)
                        .map_or(&[][..], Vec::as_slice),
                    restored.finished,
                )?;
                Ok(Box::new(op) as BoxOutput<Message>)
            }),
        );
        committer_next.connect_from(&graph, committer_group);
        add_stages(
            &graph,
            &uid,
            StagePhase::PostCommit,
            &post_stages,
            committer_next,
            committer_parallelism,
            None,
        );
    }
}

/// Where a committable operator sends its output.
#[derive(Clone)]
enum NextHop {
    /// Over `edge` to a stage of `parallelism`, routed per upstream subtask.
    Edge {
        edge: EdgeId,
        routing: Routing<AnyCommittable>,
        parallelism: usize,
    },
    /// Nowhere: the end of the sink.
    Nowhere,
}

impl NextHop {
    /// A hop over a new edge.
    fn to(
        graph: &Arc<Mutex<GraphBuilder>>,
        routing: Routing<AnyCommittable>,
        parallelism: usize,
    ) -> Self {
        NextHop::Edge {
            edge: lock(graph).new_edge::<Message>(false),
            routing,
            parallelism,
        }
    }

    fn edge(&self) -> Option<EdgeId> {
        match self {
            NextHop::Edge { edge, .. } => Some(*edge),
            NextHop::Nowhere => None,
        }
    }

    /// Records the task group that feeds this hop.
    fn connect_from(&self, graph: &Arc<Mutex<GraphBuilder>>, group: usize) {
        if let Some(edge) = self.edge() {
            if let Some(e) = lock(graph).edges.get_mut(edge) {
                e.from = Some(group);
            }
        }
    }

    /// The output a subtask writes its committables into.
    fn output(&self, setup: &mut SubtaskSetup<'_>) -> Result<BoxOutput<Message>> {
        match self {
            NextHop::Edge {
                edge,
                routing,
                parallelism,
            } => {
                let senders = setup
                    .wiring
                    .take_senders::<Message>(*edge, setup.key.subtask)?;
                Ok(
                    match committable_partitioning(routing, setup.key.subtask, *parallelism) {
                        CommittableRoute::Fixed(partitioning) => Box::new(ExchangeOutput::new(
                            senders,
                            partitioning,
                            setup.config.batch_size,
                        )),
                        CommittableRoute::Spread(spread) => Box::new(SpreadOutput::new(
                            senders,
                            spread,
                            setup.key.subtask,
                            setup.config.batch_size,
                        )),
                    },
                )
            }
            NextHop::Nowhere => Ok(Box::new(Discard)),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StagePhase {
    PreCommit,
    PostCommit,
}

/// Adds a chain of topology stages fed by `input`; returns the hop out of the last stage (to
/// `after`: a routing and parallelism, or nowhere), or `input` unchanged when there are none.
fn add_stages(
    graph: &Arc<Mutex<GraphBuilder>>,
    sink_uid: &str,
    phase: StagePhase,
    stages: &[ErasedStage],
    input: NextHop,
    base_parallelism: usize,
    after: Option<&(Routing<AnyCommittable>, usize)>,
) -> NextHop {
    let mut hop = input;
    let kind = match phase {
        StagePhase::PreCommit => "pre-commit",
        StagePhase::PostCommit => "post-commit",
    };
    for (i, stage) in stages.iter().enumerate() {
        let p = stage_parallelism(stage.parallelism, base_parallelism);
        let next = match stages.get(i + 1) {
            Some(n) => NextHop::to(
                graph,
                n.routing.clone(),
                stage_parallelism(n.parallelism, base_parallelism),
            ),
            None => match after {
                Some((routing, parallelism)) => NextHop::to(graph, routing.clone(), *parallelism),
                None => NextHop::Nowhere,
            },
        };
        let stage_uid = format!("{sink_uid}/{kind}/{}", stage.name);
        let factory = Arc::clone(&stage.factory);
        let out = next.clone();
        let Some(edge) = hop.edge() else {
            break;
        };
        let group = add_message_group(
            graph,
            phase == StagePhase::PostCommit,
            format!("{} ({stage_uid})", stage.name),
            p,
            Some(edge),
            stage_uid.clone(),
            Arc::new(move |setup: &mut SubtaskSetup<'_>| {
                let restored = setup.restored(&stage_uid);
                let ctx = setup.init_context(&stage_uid);
                let operator = factory
                    .create(
                        &ctx,
                        restored.state.get("stage").cloned().unwrap_or_default(),
                    )
                    .map_err(|e| RuntimeError::connector(&stage_uid, setup.key.subtask, e))?;
                Ok(Box::new(StageOperator {
                    uid: stage_uid.clone(),
                    operator,
                    next: out.output(setup)?,
                    out: Vec::new(),
                    ended: restored.finished,
                }) as BoxOutput<Message>)
            }),
        );
        next.connect_from(graph, group);
        hop = next;
    }
    hop
}

fn stage_parallelism(p: StageParallelism, writer: usize) -> usize {
    match p {
        StageParallelism::One => 1,
        StageParallelism::Fixed(n) => n.get(),
        StageParallelism::SameAsWriter => writer,
    }
}

/// How the committables of one upstream subtask are routed over a committable edge.
enum CommittableRoute {
    /// All of them (and their summaries) to one downstream subtask.
    Fixed(Partitioning<Message>),
    /// Spread over the downstream subtasks, with summaries rewritten per target.
    Spread(Spread),
}

/// The routing of a committable edge. Committables travel with per-upstream-subtask
/// [`CommittableSummary`](weir_connector_api::sink::CommittableSummary)s that tell the
/// downstream when it has every committable of a checkpoint, so:
///
/// - `Global` sends everything to subtask 0;
/// - `Forward` sends everything of upstream subtask `i` to downstream subtask
///   `i % downstream` (`i` to `i` when the parallelisms match);
/// - `Rebalance` (round-robin) and `KeyBy` (by key hash) spread the committables themselves
///   over every downstream subtask through a [`SpreadOutput`], which holds back a checkpoint's
///   messages until its summaries and committables match, then sends every downstream subtask a
///   summary counting exactly the committables it gets (0 if none), followed by them.
fn committable_partitioning(
    routing: &Routing<AnyCommittable>,
    subtask: usize,
    downstream: usize,
) -> CommittableRoute {
    match routing {
        Routing::Global => CommittableRoute::Fixed(Partitioning::Fixed(0)),
        Routing::Forward => {
            CommittableRoute::Fixed(Partitioning::Fixed(subtask % downstream.max(1)))
        }
        Routing::Rebalance => CommittableRoute::Spread(Spread::RoundRobin),
        Routing::KeyBy(key) => CommittableRoute::Spread(Spread::KeyBy(Arc::clone(key))),
    }
}

/// How a stage's inputs treat barriers.
#[derive(Clone, Copy)]
enum Alignment {
    /// As the job's checkpointing mode says.
    JobMode,
    /// Always aligned: committable edges. In at-least-once mode an unaligned committer or
    /// topology stage could snapshot committables a writer produced after its own barrier, which
    /// the writer's restore would then treat as its own leftovers. Committables are few, so
    /// aligning costs nothing.
    Always,
}

/// The head of a stage that reads from channel edges.
fn input_head<T: Send + 'static>(edges: Vec<EdgeId>, alignment: Alignment) -> ChainBuilder<T> {
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
            key: setup.key,
            gate: InputGate::new(receivers, mode),
            chain,
            control: setup.take_control()?,
            master: setup.master.clone(),
            cx: setup.cx(),
            linger: setup.config.buffer_timeout,
        };
        Ok(Box::pin(task.run()) as BoxFuture<'static, ()>)
    })
}

type MessageOperatorFactory =
    Arc<dyn Fn(&mut SubtaskSetup<'_>) -> Result<BoxOutput<Message>> + Send + Sync>;

/// Adds a task group that reads committable messages from `edge` and runs one operator.
fn add_message_group(
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
struct RuntimeInitContext {
    subtask: usize,
    parallelism: usize,
    attempt: u32,
    restored: Option<CheckpointId>,
    metrics: Arc<dyn MetricGroup>,
    uid: String,
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
