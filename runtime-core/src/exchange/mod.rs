//! Channels between tasks, behind a narrow seam.
//!
//! - `Exchange` makes the channels of a job attempt and hands each subtask its ends; a
//!   `ChannelSender` and a `ChannelReceiver` are the two ends of one channel (one upstream
//!   subtask to one downstream subtask), called once per batch or event. `LocalExchange` is the
//!   in-process implementation (bounded queues); a cluster mode can carry channels across
//!   processes behind the same traits. Nothing else in the runtime knows how a channel is made:
//!   an edge's record type reaches the exchange only as a `ChannelFactory` made by the graph
//!   builder.
//! - An `ExchangeOutput` ends a chain: it batches records per target subtask ([`Partitioning`])
//!   and sends them with the events between them.
//! - Cross-process channels (cluster mode): `remote` puts typed [`RemoteSender`] /
//!   [`RemoteReceiver`] ends over a byte-level [`FrameTransport`], with the records written by
//!   the stream's codec (see [`crate::cluster`]).
//! - An `InputGate` merges a task's input channels, aligns barriers (exactly-once) or counts
//!   them (at-least-once, see [`CheckpointingMode`]), and merges watermarks.

mod channel_state;
mod gate;
mod local;
mod output;
mod remote;

use std::any::Any;
use std::sync::Arc;
use std::task::{Context, Poll};

pub(crate) use channel_state::{ChannelStateCodec, Rescale, SerializerSlot, CHANNEL_STATE};
pub(crate) use gate::{GateAlignment, GateEvent, InputGate};
pub(crate) use local::LocalExchange;
pub(crate) use output::{BarrierDelivery, ExchangeOutput};
pub use remote::{
    ChannelKey, FrameReceiver, FrameSender, FrameTransport, RemoteChannelError, RemoteReceiver,
    RemoteSender, TransportError, FRAME_VERSION,
};

use weir_connector_api::state::VersionedSerializer;

use crate::element::{Barrier, Batch, StreamElement};
use crate::error::{Result, RuntimeError};

/// How records of an edge are distributed to the downstream subtasks.
pub enum Partitioning<T> {
    /// Subtask `i` to subtask `i` (same parallelism), else like `Rebalance`.
    Forward,
    /// Whole batches round-robin over the downstream subtasks.
    Rebalance,
    /// By a hash of the key: equal keys reach the same subtask.
    KeyBy(Arc<dyn Fn(&T) -> u64 + Send + Sync>),
    /// Everything to subtask 0.
    Global,
    /// Everything to one subtask (e.g. writer `i` to committer `i % c`).
    Fixed(usize),
}

impl<T> Clone for Partitioning<T> {
    fn clone(&self) -> Self {
        match self {
            Partitioning::Forward => Partitioning::Forward,
            Partitioning::Rebalance => Partitioning::Rebalance,
            Partitioning::KeyBy(f) => Partitioning::KeyBy(Arc::clone(f)),
            Partitioning::Global => Partitioning::Global,
            Partitioning::Fixed(t) => Partitioning::Fixed(*t),
        }
    }
}

/// How an edge of the job graph distributes records, as a running job's graph shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EdgePartitioning {
    /// Subtask `i` to subtask `i`.
    Forward,
    /// Batches round-robin.
    Rebalance,
    /// By a hash of the key.
    KeyBy,
    /// Everything to subtask 0.
    Global,
    /// Everything to one subtask.
    Fixed,
    /// A sink's committables, routed to their committer or topology stage.
    Committables,
}

impl EdgePartitioning {
    /// The kind of `partitioning`.
    pub fn of<T>(partitioning: &Partitioning<T>) -> Self {
        match partitioning {
            Partitioning::Forward => EdgePartitioning::Forward,
            Partitioning::Rebalance => EdgePartitioning::Rebalance,
            Partitioning::KeyBy(_) => EdgePartitioning::KeyBy,
            Partitioning::Global => EdgePartitioning::Global,
            Partitioning::Fixed(_) => EdgePartitioning::Fixed,
        }
    }

    /// Its name in lower case (`forward`, `key-by`...).
    pub fn as_str(self) -> &'static str {
        match self {
            EdgePartitioning::Forward => "forward",
            EdgePartitioning::Rebalance => "rebalance",
            EdgePartitioning::KeyBy => "key-by",
            EdgePartitioning::Global => "global",
            EdgePartitioning::Fixed => "fixed",
            EdgePartitioning::Committables => "committables",
        }
    }
}

/// Whether barriers are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckpointingMode {
    /// Every record is in a snapshot's past or its future, never both: barriers are aligned (a
    /// channel that delivered barrier `n` is blocked until every channel delivered it), or,
    /// with unaligned barriers ([`BarrierAlignment`]), the records in flight that a barrier
    /// overtook are stored with the snapshot.
    ExactlyOnce,
    /// Barriers are counted, not aligned: records after an early barrier may be in the snapshot's
    /// past *and* replayed after a restore.
    AtLeastOnce,
}

/// How exactly-once checkpoints treat barriers at tasks that read channels (Flink's aligned and
/// unaligned checkpoints, and its aligned checkpoint timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BarrierAlignment {
    /// A channel that delivered barrier `n` waits until every channel delivered it, so the
    /// snapshot holds exactly the records before the barrier and no records in flight. Under
    /// backpressure the barrier waits behind every queued batch, at every exchange.
    #[default]
    Aligned,
    /// Barriers overtake the queued batches of their channels (and a sender's partly filled
    /// batch); a task snapshots at the first barrier, and the records still in flight before
    /// each channel's barrier are stored with the checkpoint as channel state and replayed on
    /// restore before new input. Checkpoints no longer wait for backpressure; they hold the
    /// records in flight. Streams entering an exchange need a channel-state serializer
    /// (`DataStream::channel_state_serializer`). Savepoints stay aligned.
    Unaligned,
    /// Aligned, but a task whose alignment has taken longer than this (from its first
    /// barrier) snapshots at once and goes on unaligned for that checkpoint. Barriers travel
    /// as in [`BarrierAlignment::Unaligned`] so the switch can happen at any time;
    /// `AlignedWithTimeout(Duration::ZERO)` is unaligned.
    AlignedWithTimeout(std::time::Duration),
}

impl BarrierAlignment {
    /// Whether barriers overtake queued batches (unaligned, or aligned with a timeout).
    pub fn overtakes(self) -> bool {
        !matches!(self, BarrierAlignment::Aligned)
    }
}

/// Identifies an edge of the job graph.
pub(crate) type EdgeId = usize;

/// Spreads a key hash over `n` targets.
pub(crate) fn target_of(hash: u64, n: usize) -> usize {
    // Fibonacci hashing spreads consecutive keys.
    (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % n
}

/// Why [`ChannelSender::try_send`] did not send.
#[derive(Debug)]
pub enum TrySendError<T> {
    /// The channel is full (backpressure): the element comes back.
    Full(StreamElement<T>),
    /// The receiving subtask is gone.
    Closed,
    /// The channel failed (a cross-process channel: its record codec or its transport).
    Failed(RuntimeError),
}

/// The sending end of one channel: one upstream subtask to one downstream subtask. Called once
/// per batch or event, never per record.
#[async_trait::async_trait]
pub trait ChannelSender<T: Send + 'static>: Send {
    /// Sends `element` if the channel has room, without waiting.
    fn try_send(&mut self, element: StreamElement<T>) -> std::result::Result<(), TrySendError<T>>;

    /// Sends `element`, waiting for room; an error when the receiving subtask is gone.
    async fn send(&mut self, element: StreamElement<T>) -> Result<()>;

    /// Unaligned checkpoints: queues `pending` (the sender's partly filled batch, maybe empty)
    /// behind everything queued, then sends `barrier` ahead of all of it. Never waits, even
    /// on a full channel. The receiver gets the barrier before any element queued now, with
    /// the number of elements between it and its place in the stream
    /// ([`Received::Overtaking`]).
    fn send_overtaking(&mut self, pending: Batch<T>, barrier: Barrier) -> Result<()>;
}

/// What a [`ChannelReceiver`] delivers.
#[derive(Debug)]
pub enum Received<T> {
    /// The next element in order.
    Element(StreamElement<T>),
    /// A barrier that overtook the `overtaken` elements that still come before its place in
    /// the stream.
    Overtaking {
        /// The barrier.
        barrier: Barrier,
        /// Elements queued before its place, delivered next.
        overtaken: usize,
    },
    /// The channel failed (a cross-process channel: a damaged frame, a record its codec
    /// refused, a lost connection); nothing more comes from it.
    Failed(RuntimeError),
}

/// The receiving end of one channel.
pub trait ChannelReceiver<T>: Send {
    /// The next overtaking barrier, else the next element; `None` when the sender is gone
    /// (after everything it sent).
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Received<T>>>;

    /// Shows `visit` the first `n` elements that [`poll_recv`](Self::poll_recv) will deliver
    /// next, as far as they are here, without taking them; returns how many it showed. An
    /// unaligned checkpoint stores the elements a barrier overtook this way, at once, instead
    /// of waiting until the task has processed them.
    fn visit_queued(&mut self, n: usize, visit: &mut dyn FnMut(&StreamElement<T>)) -> usize;
}

/// A boxed sending end.
pub(crate) type BoxSender<T> = Box<dyn ChannelSender<T>>;
/// A boxed receiving end.
pub(crate) type BoxReceiver<T> = Box<dyn ChannelReceiver<T>>;

/// The shape of one edge of a job attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EdgeLayout {
    /// The edge.
    pub(crate) id: EdgeId,
    /// Subtasks that send into it.
    pub(crate) upstream: usize,
    /// Subtasks that read from it.
    pub(crate) downstream: usize,
    /// Subtask `i` feeds only subtask `i` (with equal parallelism).
    pub(crate) pointwise: bool,
    /// Batches a channel holds before backpressure.
    pub(crate) capacity: usize,
}

impl EdgeLayout {
    /// Whether upstream subtask `i` has one channel, to downstream subtask `i`.
    pub(crate) fn is_one_to_one(&self) -> bool {
        self.pointwise && self.upstream == self.downstream
    }
}

/// The typed half of an edge, made where its record type is known (the graph builder): makes
/// channels whose ends come back type-erased, so an [`Exchange`] needs no type parameter.
pub(crate) trait ChannelFactory: Send + Sync {
    /// One in-process channel: a `BoxSender<T>` and a `BoxReceiver<T>`, erased.
    fn local_channel(&self, capacity: usize) -> (Box<dyn Any + Send>, Box<dyn Any + Send>);

    /// The sending end of a cross-process channel over `frames`, a `BoxSender<T>` erased,
    /// writing records with the stream's codec; an error when the stream declares none.
    /// `channel` names it in errors.
    fn remote_sender(
        &self,
        channel: &str,
        frames: Box<dyn FrameSender>,
    ) -> Result<Box<dyn Any + Send>>;

    /// The receiving end of a cross-process channel over `frames`, a `BoxReceiver<T>` erased.
    fn remote_receiver(
        &self,
        channel: &str,
        frames: Box<dyn FrameReceiver>,
    ) -> Result<Box<dyn Any + Send>>;
}

/// The [`ChannelFactory`] of records of type `T`: in-process channels need nothing more;
/// cross-process ones write records with the first codec declared in `codecs` (the serializer
/// slots of the streams that feed the edge).
pub(crate) struct ChannelsOf<T> {
    codecs: Vec<SerializerSlot<T>>,
}

impl<T> ChannelsOf<T> {
    /// Channels of records without a codec (they cannot cross processes).
    pub(crate) fn new() -> Self {
        ChannelsOf { codecs: Vec::new() }
    }

    /// Channels whose records cross processes with the first codec declared in `codecs`.
    pub(crate) fn with_codecs(codecs: Vec<SerializerSlot<T>>) -> Self {
        ChannelsOf { codecs }
    }

    fn codec(&self, channel: &str) -> Result<Arc<dyn VersionedSerializer<T>>> {
        self.codecs
            .iter()
            .find_map(|slot| {
                slot.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
            })
            .ok_or_else(|| {
                RemoteChannelError::NoCodec {
                    channel: channel.to_owned(),
                }
                .into()
            })
    }
}

impl<T: Send + 'static> ChannelFactory for ChannelsOf<T> {
    fn local_channel(&self, capacity: usize) -> (Box<dyn Any + Send>, Box<dyn Any + Send>) {
        let (tx, rx) = local::channel::<T>(capacity);
        (Box::new(tx), Box::new(rx))
    }

    fn remote_sender(
        &self,
        channel: &str,
        frames: Box<dyn FrameSender>,
    ) -> Result<Box<dyn Any + Send>> {
        let tx: BoxSender<T> = Box::new(RemoteSender::new(frames, self.codec(channel)?, channel));
        Ok(Box::new(tx))
    }

    fn remote_receiver(
        &self,
        channel: &str,
        frames: Box<dyn FrameReceiver>,
    ) -> Result<Box<dyn Any + Send>> {
        let rx: BoxReceiver<T> =
            Box::new(RemoteReceiver::new(frames, self.codec(channel)?, channel));
        Ok(Box::new(rx))
    }
}

/// Makes the channels of a job attempt and hands each subtask its ends: the seam between the
/// runtime and how channels are carried (in process, or across processes in a cluster).
pub(crate) trait Exchange: Send {
    /// Creates the channels of an edge (every upstream subtask to the downstream subtasks it
    /// feeds) with `channels`; an error when a channel cannot be made (a cross-process
    /// channel of a stream without codec, a failed transport).
    fn connect(&mut self, edge: EdgeLayout, channels: &dyn ChannelFactory) -> Result<()>;

    /// The sending ends of upstream `subtask` on `edge`, one per downstream subtask it feeds
    /// (in downstream order), each a `BoxSender<T>` erased; `None` when already taken.
    fn take_senders(&mut self, edge: EdgeId, subtask: usize) -> Option<Vec<Box<dyn Any + Send>>>;

    /// The receiving ends of downstream `subtask` on `edge`, one per upstream subtask that
    /// feeds it, each a `BoxReceiver<T>` erased; `None` when already taken.
    fn take_receivers(&mut self, edge: EdgeId, subtask: usize) -> Option<Vec<Box<dyn Any + Send>>>;
}

/// The typed sending ends of upstream `subtask` on `edge`.
pub(crate) fn take_senders<T: Send + 'static>(
    exchange: &mut dyn Exchange,
    edge: EdgeId,
    subtask: usize,
) -> Result<Vec<BoxSender<T>>> {
    let lost = || RuntimeError::Lost(format!("output channels of edge {edge} subtask {subtask}"));
    exchange
        .take_senders(edge, subtask)
        .ok_or_else(lost)?
        .into_iter()
        .map(|end| {
            end.downcast::<BoxSender<T>>()
                .map(|b| *b)
                .map_err(|_| lost())
        })
        .collect()
}

/// The typed receiving ends of downstream `subtask` on `edge`.
pub(crate) fn take_receivers<T: Send + 'static>(
    exchange: &mut dyn Exchange,
    edge: EdgeId,
    subtask: usize,
) -> Result<Vec<BoxReceiver<T>>> {
    let lost = || RuntimeError::Lost(format!("input channels of edge {edge} subtask {subtask}"));
    exchange
        .take_receivers(edge, subtask)
        .ok_or_else(lost)?
        .into_iter()
        .map(|end| {
            end.downcast::<BoxReceiver<T>>()
                .map(|b| *b)
                .map_err(|_| lost())
        })
        .collect()
}

/// The next thing `rx` delivers (tests).
#[cfg(test)]
pub(crate) async fn recv_any<T>(rx: &mut BoxReceiver<T>) -> Option<Received<T>> {
    std::future::poll_fn(|cx| rx.poll_recv(cx)).await
}

/// The next element of `rx`, skipping overtaking barriers (tests).
#[cfg(test)]
pub(crate) async fn recv<T>(rx: &mut BoxReceiver<T>) -> Option<StreamElement<T>> {
    loop {
        match recv_any(rx).await? {
            Received::Element(element) => return Some(element),
            Received::Overtaking { .. } => {}
            Received::Failed(_) => return None,
        }
    }
}
