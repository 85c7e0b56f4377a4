//! The job graph API: sources, stateless operators, repartitioning and sinks, with stable uids.
//!
//! Operators with the same parallelism joined by forward edges are *chained*: they run in one
//! task and call each other directly, batch by batch. `key_by`, `rebalance` and a sink's
//! committer start new tasks connected by channels.

use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use weir_connector_api::error::ConnectorError;
use weir_connector_api::metrics::{Gauge, MetricGroup, NUM_RECORDS_OUT};
use weir_connector_api::sink::Sink;
use weir_connector_api::source::Source;
use weir_connector_api::state::VersionedSerializer;
use weir_connector_api::watermark::WatermarkStrategy;

use crate::config::JobConfig;
use crate::error::{Result, RuntimeError};
use crate::exchange::{EdgeId, SerializerSlot};
use crate::job::Job;
use crate::operator::{
    BoxOutput, FilterFn, FlatMapFn, FlatMapTimestampedFn, MapFn, Transform, TransformOperator,
};
use crate::plan::{
    lock, ChainBuilder, GraphBuilder, SourceSpec, StartCoordinator, SubtaskSetup, TaskFactory,
    TaskGroup,
};
use crate::source::coordinator::{self};
use crate::source::output::RuntimeReaderOutput;
use crate::task::lifecycle::Lifecycle;
use crate::task::source_task::{ReaderContext, SourceTask, SourceTaskOptions};

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
        let batch_size: Arc<Mutex<Option<usize>>> = Arc::default();
        let batch_size_for_chain = Arc::clone(&batch_size);
        let build: ChainBuilder<S::Output> = {
            let source = Arc::clone(&source);
            Arc::new(
                move |setup: &mut SubtaskSetup<'_>, chain: BoxOutput<S::Output>| {
                    let uid = lock(&uid_for_chain).clone();
                    let batch_size =
                        (*lock(&batch_size_for_chain)).unwrap_or(setup.config.batch_size);
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
                        output: RuntimeReaderOutput::new(watermarks.clone(), batch_size),
                        chain,
                        control: setup.take_control()?,
                        control_tx: setup.control_tx.clone(),
                        life: Lifecycle::new(setup.key, setup.master.clone()),
                        coordinator,
                        cx: setup.cx(),
                        split_serializer,
                        options: SourceTaskOptions {
                            batch_size,
                            watermark_interval: setup.config.watermark_interval,
                        },
                        records_out,
                        watermark_gauge,
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
                splits: Arc::new(crate::cluster::SplitsOf(Arc::clone(&source))),
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
                batch_size,
            }),
            uids: Vec::new(),
            build,
            in_flight: SerializerSlot::default(),
        }
    }

    /// Builds the job; every mistake in the graph is reported at once.
    pub fn build(self) -> Result<Job> {
        let builder = std::mem::take(&mut *lock(&self.graph));
        let (groups, edges, sources) = builder.finish(&self.config)?;
        Job::new(self.config, groups, edges, sources)
    }
}

pub(crate) struct SourceStage {
    uid: Arc<Mutex<String>>,
    spec_index: usize,
    /// The source's own batch size ([`DataStream::source_batch_size`]), if set.
    batch_size: Arc<Mutex<Option<usize>>>,
}

/// A stream of records of type `T`: the open end of a chain that more operators, an exchange
/// or a sink can be attached to. Consuming methods take `self`: every stream has one consumer.
pub struct DataStream<T: Send + 'static> {
    pub(crate) graph: Arc<Mutex<GraphBuilder>>,
    pub(crate) parallelism: usize,
    pub(crate) name: String,
    /// The edges this stage reads from, if it does not start at a source.
    pub(crate) input: Vec<EdgeId>,
    pub(crate) source: Option<SourceStage>,
    pub(crate) uids: Vec<String>,
    pub(crate) build: ChainBuilder<T>,
    /// How records of this stream in flight are written as channel state (unaligned
    /// checkpoints); shared by the streams on both sides of an exchange and through `filter`.
    pub(crate) in_flight: SerializerSlot<T>,
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

    /// Sets the batch size of the stage's source (default: the job's
    /// [`batch_size`](crate::config::JobConfig::batch_size)): its task hands records on once it
    /// holds this many, or when its reader has nothing more for now. E.g. a row source whose
    /// batches become columnar chunks ([`try_map_batches`](Self::try_map_batches)) in a job
    /// whose records are chunks, with a batch size of a few. Without a source, nothing changes.
    pub fn source_batch_size(self, batch_size: usize) -> Self {
        if let Some(s) = &self.source {
            *lock(&s.batch_size) = Some(batch_size.max(1));
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
            in_flight: SerializerSlot::default(),
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
                timestamps: Vec::new(),
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
        let in_flight = Arc::clone(&self.in_flight);
        DataStream {
            in_flight,
            ..self.transform(FilterFn(Arc::new(f)))
        }
    }

    /// Turns every record into zero or more records.
    pub fn flat_map<U: Send + 'static, I: IntoIterator<Item = U> + 'static>(
        self,
        f: impl Fn(T) -> I + Send + Sync + 'static,
    ) -> DataStream<U> {
        self.transform(FlatMapFn(Arc::new(f)))
    }

    /// Turns every record into zero or more records, each with its own event timestamp: on a
    /// stream with event time, the output records carry these timestamps instead of their input
    /// record's (e.g. the rows of a columnar batch, each with its row's time); on a stream
    /// without, the timestamps are dropped. Watermarks are not changed, so a timestamp should
    /// not be later than the input record's.
    pub fn flat_map_timestamped<U: Send + 'static, I: IntoIterator<Item = (U, i64)> + 'static>(
        self,
        f: impl Fn(T) -> I + Send + Sync + 'static,
    ) -> DataStream<U> {
        self.transform(FlatMapTimestampedFn(Arc::new(f)))
    }

    /// Turns each batch of records into zero or more records, or fails the task with `f`'s
    /// error, reported as operator `name`'s. A batch is what one upstream step handed over at
    /// once (e.g. the records of one source poll; never records from both sides of a
    /// checkpoint barrier or a watermark). On a stream with event time every output record gets
    /// the batch's latest timestamp. E.g. the rows of a poll into one columnar chunk.
    pub fn try_map_batches<U: Send + 'static>(
        self,
        name: &str,
        f: impl Fn(Vec<T>) -> std::result::Result<Vec<U>, ConnectorError> + Send + Sync + 'static,
    ) -> DataStream<U> {
        let f: crate::batch::BatchFn<T, U> = Arc::new(f);
        let name: Arc<str> = Arc::from(name);
        self.chain(move |next: BoxOutput<U>| {
            Box::new(crate::batch::BatchOperator {
                name: Arc::clone(&name),
                f: Arc::clone(&f),
                buffer: Vec::new(),
                timestamps: Vec::new(),
                next,
            })
        })
    }

    /// Closes this stage into a task group whose chain ends in `tail`, returning its index.
    pub(crate) fn close(
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
        let channel_state = (!self.input.is_empty()).then(|| match uids.first() {
            Some(uid) => format!("{uid}/input-channels"),
            None => format!("stage-{group}/input-channels"),
        });
        g.groups.push(TaskGroup {
            name: format!("{} ({name})", self.name),
            parallelism: self.parallelism,
            uids,
            channel_state,
            is_source,
            post_commit: false,
            factory,
        });
        drop(g);
        (group, self.graph, self.parallelism)
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
            in_flight: SerializerSlot::default(),
        }
    }

    /// Joins every record with the rows a lookup function finds for its key (FLIP-221's lookup
    /// join), synchronously or asynchronously, inner or left outer: see [`crate::lookup`].
    /// `uid` names the operator's state (the inputs of lookups in flight at a checkpoint).
    pub fn lookup_join<K, V, O>(
        self,
        uid: &str,
        join: crate::lookup::LookupJoin<T, K, V, O>,
    ) -> DataStream<O>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
        O: Send + 'static,
    {
        let owned = uid.to_owned();
        self.with_operator(uid, move |setup, next| join.operator(&owned, setup, next))
    }

    /// Chains an operator with state under `uid`, made for each subtask by `make`.
    pub(crate) fn with_operator<U: Send + 'static>(
        mut self,
        uid: &str,
        make: impl Fn(&mut SubtaskSetup<'_>, BoxOutput<U>) -> Result<BoxOutput<T>>
            + Send
            + Sync
            + 'static,
    ) -> DataStream<U> {
        self.uids.push(uid.to_owned());
        let prev = self.build;
        DataStream {
            graph: self.graph,
            parallelism: self.parallelism,
            name: self.name,
            input: self.input,
            source: self.source,
            uids: self.uids,
            build: Arc::new(move |setup: &mut SubtaskSetup<'_>, next| {
                let operator = make(setup, next)?;
                prev(setup, operator)
            }),
            in_flight: SerializerSlot::default(),
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
        self.expand_sink(sink, options);
    }
}
