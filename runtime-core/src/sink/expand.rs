//! A sink's expansion into tasks: the writer joins its input's chain; the sink's declared
//! capabilities add a pre-write exchange, pre-commit stages, a committer (with its own
//! parallelism) and post-commit stages, connected by committable edges.

use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use weir_connector_api::metrics::NUM_RECORDS_IN;
use weir_connector_api::sink::{AnyCommittable, ErasedStage, Routing, Sink, StageParallelism};

use crate::error::{Result, RuntimeError};
use weir_connector_api::state::VersionedSerializer;

use crate::exchange::{ChannelsOf, EdgeId, ExchangeOutput, Partitioning, SerializerSlot};
use crate::graph::{DataStream, SinkOptions};
use crate::operator::{BoxOutput, Counted};
use crate::plan::{add_message_group, lock, GraphBuilder, SubtaskSetup};
use crate::sink::committer_op::{CommitterOperator, COMMITTABLES_STATE};
use crate::sink::spread::{Spread, SpreadOutput};
use crate::sink::stage_op::StageOperator;
use crate::sink::wire::CommittableCodec;
use crate::sink::writer_op::WriterOperator;
use crate::sink::{Discard, Message};

impl<T: Send + 'static> DataStream<T> {
    /// Writes the stream to `sink` (see [`DataStream::sink_to_with`]).
    pub(crate) fn expand_sink<S: Sink<T>>(self, sink: S, options: &SinkOptions) {
        let input = self;
        let sink = Arc::new(sink);
        let caps = Arc::clone(&sink).capabilities();
        let uid = options
            .uid
            .clone()
            .unwrap_or_else(|| lock(&input.graph).next_id("sink"));
        // Pre-write topology: route records to the writers.
        let mut stream = match caps.pre_write() {
            Some(pre) => match pre.routing.clone() {
                Routing::Forward => input,
                Routing::Rebalance => input.rebalance(),
                Routing::Global => input.exchange(&Partitioning::Global, false),
                Routing::KeyBy(f) => input.exchange(&Partitioning::KeyBy(f), false),
            },
            None => input,
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
            // Straight to the committer: its committables cross processes (cluster mode) with
            // the committer's committable serializer.
            Some(c) if pre_stages.is_empty() => NextHop::to_committer(
                &graph,
                committer_parallelism,
                Arc::new(CommittableCodec {
                    committer: Arc::clone(c),
                }),
            ),
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

    /// A hop over a new edge straight to the committer, whose messages cross processes with
    /// `codec`.
    fn to_committer(
        graph: &Arc<Mutex<GraphBuilder>>,
        parallelism: usize,
        codec: Arc<dyn VersionedSerializer<Message>>,
    ) -> Self {
        let slot: SerializerSlot<Message> = Arc::new(Mutex::new(Some(codec)));
        NextHop::Edge {
            edge: lock(graph).new_edge_of(false, ChannelsOf::with_codecs(vec![slot])),
            routing: Routing::Forward,
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
                e.partitioning = crate::exchange::EdgePartitioning::Committables;
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
                let senders = setup.take_senders::<Message>(*edge)?;
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
