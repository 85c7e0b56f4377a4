//! The exchanges of the user API: [`DataStream::key_by`], [`DataStream::rebalance`] and
//! [`DataStream::union`] end a stage in channels to a new one, and
//! [`DataStream::channel_state_serializer`] says how the records in those channels are stored
//! when an unaligned checkpoint holds them.

use std::sync::Arc;

use weir_connector_api::state::VersionedSerializer;

use crate::exchange::{
    BarrierDelivery, ChannelsOf, EdgeId, ExchangeOutput, Partitioning, Rescale, SerializerSlot,
};
use crate::graph::DataStream;
use crate::plan::{input_head, lock, Alignment, ChannelInput};

impl<T: Send + 'static> DataStream<T> {
    /// Repartitions by key: records with equal keys reach the same subtask of the next stage.
    pub fn key_by(self, key: impl Fn(&T) -> u64 + Send + Sync + 'static) -> DataStream<T> {
        self.exchange(&Partitioning::KeyBy(Arc::new(key)), false)
    }

    /// Redistributes batches round-robin to the next stage.
    pub fn rebalance(self) -> DataStream<T> {
        self.exchange(&Partitioning::Rebalance, false)
    }

    /// Declares how records of this stream are written when an unaligned checkpoint stores
    /// them in flight (channel state, see [`crate::exchange::BarrierAlignment`]). Needed, with
    /// unaligned barriers or an alignment timeout, for every stream that enters an exchange
    /// (`key_by`, `rebalance`, `union`, a sink's pre-write exchange); the job refuses to build
    /// without it. It holds for this stream on both sides of its exchanges and through
    /// `filter`; a `map` makes a stream of another type, which needs its own. Restoring a
    /// checkpoint that holds records in flight needs it too, whatever the alignment.
    #[must_use]
    pub fn channel_state_serializer(
        self,
        serializer: impl VersionedSerializer<T> + 'static,
    ) -> DataStream<T> {
        *lock(&self.in_flight) = Some(Arc::new(serializer));
        self
    }

    /// Ends this stage in an exchange on a new edge, returning the edge; records cross
    /// processes (cluster mode) with the first serializer declared in `codecs`.
    fn close_into_edge(
        self,
        partitioning: &Partitioning<T>,
        pointwise: bool,
        codecs: Vec<SerializerSlot<T>>,
    ) -> EdgeId {
        let edge = lock(&self.graph).new_edge_of(pointwise, ChannelsOf::with_codecs(codecs));
        let batch_partitioning = partitioning.clone();
        let (group, graph, _) = self.close("exchange", move |setup| {
            let senders = setup.take_senders::<T>(edge)?;
            let barriers = match &setup.config.checkpointing {
                Some(c) if c.alignment.overtakes() => BarrierDelivery::Overtaking,
                _ => BarrierDelivery::InBand,
            };
            Ok(Box::new(
                ExchangeOutput::new(senders, batch_partitioning.clone(), setup.config.batch_size)
                    .with_barriers(barriers),
            ))
        });
        if let Some(e) = lock(&graph).edges.get_mut(edge) {
            e.from = Some(group);
            e.partitioning = crate::exchange::EdgePartitioning::of(partitioning);
        }
        edge
    }

    /// A new stage reading this one through an exchange.
    pub(crate) fn exchange(self, partitioning: &Partitioning<T>, pointwise: bool) -> DataStream<T> {
        let name = self.name.clone();
        let graph = Arc::clone(&self.graph);
        let parallelism = self.parallelism;
        let slot = Arc::clone(&self.in_flight);
        let rescale = match partitioning {
            Partitioning::KeyBy(key) => Rescale::ByKey(Arc::clone(key)),
            _ => Rescale::RoundRobin,
        };
        let edge = self.close_into_edge(partitioning, pointwise, vec![Arc::clone(&slot)]);
        let input = ChannelInput::new(&graph, &name, vec![Arc::clone(&slot)], rescale);
        DataStream {
            graph,
            parallelism,
            name,
            input: vec![edge],
            source: None,
            uids: Vec::new(),
            build: input_head::<T>(vec![edge], Alignment::JobMode, Some(input)),
            in_flight: slot,
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
        let slots = vec![Arc::clone(&self.in_flight), Arc::clone(&other.in_flight)];
        let slot = Arc::clone(&self.in_flight);
        let (a_codecs, b_codecs) = (slots.clone(), slots.iter().rev().cloned().collect());
        let a = self.close_into_edge(&Partitioning::Rebalance, false, a_codecs);
        let b = other.close_into_edge(&Partitioning::Rebalance, false, b_codecs);
        let input = ChannelInput::new(&graph, &name, slots, Rescale::RoundRobin);
        DataStream {
            graph,
            parallelism,
            name,
            input: vec![a, b],
            source: None,
            uids: Vec::new(),
            build: input_head::<T>(vec![a, b], Alignment::JobMode, Some(input)),
            in_flight: slot,
        }
    }
}
