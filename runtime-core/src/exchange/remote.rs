//! Channels between subtasks in different processes (cluster mode): typed channel ends over a
//! byte-level, process-agnostic transport.
//!
//! - A [`FrameTransport`] opens the two ends of one cross-process channel, identified by a
//!   [`ChannelKey`]: a [`FrameSender`] in the sending process and a [`FrameReceiver`] in the
//!   receiving one. Frames are byte vectors, delivered in order. The transport has **credits**:
//!   the receiver grants `capacity` when it opens and one more per data frame its task consumed;
//!   a data frame needs a credit, a priority frame does not. The `weir-cluster` crate carries
//!   frames over timely-dataflow's communication layer; tests use an in-memory fake.
//! - [`RemoteSender`] and [`RemoteReceiver`] are a [`ChannelSender`] / [`ChannelReceiver`]
//!   over them: every [`StreamElement`] travels as one frame, its records written with the
//!   stream's codec (the [`VersionedSerializer`] declared with
//!   `DataStream::channel_state_serializer`), so batches, their event times and every event
//!   stay in band and in order.
//!
//! A frame, integers big-endian: `b"WX"`, the format version (1), the kind, the payload, and a
//! CRC-32 (IEEE) of every byte before it. Payloads by kind: 1 batch (record serializer version
//! u32, record count u32, each record as u32 length + bytes, count of event times u32 (0 or one
//! per record), each time i64); 2 watermark (i64); 3 idle (u8 0/1); 4 barrier (checkpoint id
//! u64, u8 0 checkpoint / 1 savepoint); 5 end of data (nothing); 6 overtaking barrier (elements
//! sent before its place u64, the barrier as in 4, u8 whether a batch follows, the batch as in
//! 1). A damaged frame, an unknown version or kind, or a record the codec refuses is an error
//! that names the channel, never a panic.
//!
//! Unaligned checkpoints: the sender counts the elements it sent. An overtaking barrier goes as
//! a priority frame (no credit, so never waiting on a full channel) carrying that count and the
//! sender's partly filled batch. The transport is ordered, so every earlier frame has arrived
//! when it does; the receiver, which reads every arrived frame into its decoded queue on each
//! poll, queues the batch behind them and delivers the barrier first, as
//! [`Received::Overtaking`] with `overtaken = sent before - delivered`: exactly the elements of
//! its decoded queue before the barrier's place, which
//! [`visit_queued`](ChannelReceiver::visit_queued) shows (as the in-process channel does).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use weir_connector_api::state::{StateError, VersionedSerializer};

use super::{ChannelReceiver, ChannelSender, Received, TrySendError};
use crate::element::{Barrier, Batch, StreamElement};
use crate::error::{Result, RuntimeError};

mod frame;

pub use frame::FRAME_VERSION;
use frame::{Codec, Decoded};

/// Identifies one cross-process channel of a job: one upstream subtask to one downstream
/// subtask of an edge, in one job attempt (a restart opens new channels, so frames of an old
/// attempt never reach a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKey {
    /// The job attempt.
    pub attempt: u32,
    /// The edge of the job graph.
    pub edge: u32,
    /// The sending subtask.
    pub upstream: u32,
    /// The receiving subtask.
    pub downstream: u32,
}

impl fmt::Display for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "edge {} subtask {} -> {} (attempt {})",
            self.edge, self.upstream, self.downstream, self.attempt
        )
    }
}

/// Why a transport could not carry a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The other end of the channel is gone (its subtask ended or failed).
    #[error("the other end of the channel is gone")]
    Closed,
    /// The transport itself failed (a lost connection, a peer process that died).
    #[error("{0}")]
    Failed(String),
}

/// The sending end of one cross-process channel, at the byte level (the cluster seam).
pub trait FrameSender: Send {
    /// `Ready(Ok(()))` while at least one credit is left; `Pending` (waking `cx` when the
    /// receiver grants more) when none is; an error when the channel or the transport is gone.
    fn poll_credit(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>>;

    /// Sends a data frame, using one credit (check [`poll_credit`](Self::poll_credit) first: a
    /// transport may refuse a frame without credit).
    fn send_data(&mut self, frame: Vec<u8>) -> Result<(), TransportError>;

    /// Sends a priority frame: it needs no credit and never waits, and still arrives after every
    /// frame sent before it.
    fn send_priority(&mut self, frame: Vec<u8>) -> Result<(), TransportError>;
}

/// The receiving end of one cross-process channel, at the byte level (the cluster seam).
pub trait FrameReceiver: Send {
    /// The next frame, in the order sent; `None` once the sender is gone and every frame it
    /// sent was delivered.
    fn poll_frame(&mut self, cx: &mut Context<'_>)
        -> Poll<Option<Result<Vec<u8>, TransportError>>>;

    /// Gives the sender `credits` more data frames (the receiver's task consumed that many).
    fn grant(&mut self, credits: usize);
}

/// Opens the ends of cross-process channels (implemented by `weir-cluster` over timely).
pub trait FrameTransport: Send + Sync {
    /// The sending end of `channel`, whose receiver runs in process `to`.
    fn open_sender(
        &self,
        channel: ChannelKey,
        to: usize,
    ) -> Result<Box<dyn FrameSender>, TransportError>;

    /// The receiving end of `channel`, whose sender runs in process `from`; grants `capacity`
    /// credits at once (the edge's channel capacity).
    fn open_receiver(
        &self,
        channel: ChannelKey,
        from: usize,
        capacity: usize,
    ) -> Result<Box<dyn FrameReceiver>, TransportError>;
}

/// Why a cross-process channel failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteChannelError {
    /// A frame failed its checksum or its structure.
    #[error(
        "cross-process channel {channel}: a frame of {len} bytes is damaged ({reason}); the \
         connection or a process corrupted it, so the job fails and restarts from its latest \
         checkpoint"
    )]
    Damaged {
        /// The channel.
        channel: String,
        /// The frame's length.
        len: usize,
        /// What is wrong.
        reason: String,
    },
    /// A frame of a format version or kind this build does not know.
    #[error(
        "cross-process channel {channel}: frame format version {version} kind {kind} is not \
         known to this build (it reads version {FRAME_VERSION}, kinds 1-6); every process of a \
         cluster must run the same Weir build"
    )]
    Unknown {
        /// The channel.
        channel: String,
        /// The frame's format version.
        version: u8,
        /// The frame's kind.
        kind: u8,
    },
    /// A record could not be written or read with the stream's codec.
    #[error(
        "cross-process channel {channel}: a record could not be serialized or deserialized \
         with the stream's codec: {source}; fix the serializer declared with \
         DataStream::channel_state_serializer"
    )]
    Codec {
        /// The channel.
        channel: String,
        /// The codec's error.
        #[source]
        source: StateError,
    },
    /// The frames contradict the channel protocol (a sender and a receiver of different builds,
    /// or a bug).
    #[error(
        "cross-process channel {channel}: {reason}; every process must run the same Weir build"
    )]
    Protocol {
        /// The channel.
        channel: String,
        /// What is wrong.
        reason: String,
    },
    /// The transport failed.
    #[error("cross-process channel {channel}: the cluster transport failed: {reason}")]
    Transport {
        /// The channel.
        channel: String,
        /// Why.
        reason: String,
    },
    /// The edge crosses processes, but its stream declares no record codec.
    #[error(
        "{channel} crosses processes, but its stream has no record codec: {}",
        no_codec_hint(channel)
    )]
    NoCodec {
        /// The channel.
        channel: String,
    },
}

/// What to do about an edge without a codec: a sink's topology stages cannot be given one
/// from a job; a stream can.
fn no_codec_hint(channel: &str) -> &'static str {
    if channel.contains("/pre-commit/") || channel.contains("/post-commit/") {
        "a sink's pre- and post-commit stages (such as the files sink's compaction) have no \
         committable codec yet, so they cannot receive from another process: disable them (for \
         the files sink, `compaction.enabled = false`) or run the job in one process"
    } else {
        "declare one with DataStream::channel_state_serializer on the stream before the \
         exchange (only cluster mode requires it)"
    }
}

fn transport_error(channel: &str, e: TransportError) -> RuntimeError {
    let reason = match e {
        TransportError::Failed(reason) => reason,
        e @ TransportError::Closed => e.to_string(),
    };
    RemoteChannelError::Transport {
        channel: channel.to_owned(),
        reason,
    }
    .into()
}

/// The sending end of a cross-process channel: a [`ChannelSender`] over a [`FrameSender`].
pub struct RemoteSender<T> {
    frames: Box<dyn FrameSender>,
    codec: Codec<T>,
    /// Elements sent so far (an overtaking barrier's pending batch included).
    sent: u64,
}

impl<T> RemoteSender<T> {
    /// A sender writing records with `serializer`; `channel` names it in errors.
    pub fn new(
        frames: Box<dyn FrameSender>,
        serializer: Arc<dyn VersionedSerializer<T>>,
        channel: impl Into<String>,
    ) -> Self {
        RemoteSender {
            frames,
            codec: Codec {
                serializer,
                channel: channel.into(),
            },
            sent: 0,
        }
    }

    /// Sends `element`, which has a credit.
    fn send_now(&mut self, element: &StreamElement<T>) -> Result<()> {
        let frame = self.codec.encode(element)?;
        self.frames
            .send_data(frame)
            .map_err(|e| self.closed_or_failed(e))?;
        self.sent += 1;
        Ok(())
    }

    fn closed_or_failed(&self, e: TransportError) -> RuntimeError {
        match e {
            TransportError::Closed => RuntimeError::Lost(format!(
                "the downstream task of cross-process channel {}",
                self.codec.channel
            )),
            e @ TransportError::Failed(_) => transport_error(&self.codec.channel, e),
        }
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> ChannelSender<T> for RemoteSender<T> {
    fn try_send(&mut self, element: StreamElement<T>) -> std::result::Result<(), TrySendError<T>> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.frames.poll_credit(&mut cx) {
            Poll::Pending => Err(TrySendError::Full(element)),
            Poll::Ready(Err(TransportError::Closed)) => Err(TrySendError::Closed),
            Poll::Ready(Err(e)) => Err(TrySendError::Failed(transport_error(
                &self.codec.channel,
                e,
            ))),
            Poll::Ready(Ok(())) => self.send_now(&element).map_err(TrySendError::Failed),
        }
    }

    async fn send(&mut self, element: StreamElement<T>) -> Result<()> {
        std::future::poll_fn(|cx| self.frames.poll_credit(cx))
            .await
            .map_err(|e| self.closed_or_failed(e))?;
        self.send_now(&element)
    }

    fn send_overtaking(&mut self, pending: Batch<T>, barrier: Barrier) -> Result<()> {
        let sent_before = self.sent + u64::from(!pending.is_empty());
        let frame = self
            .codec
            .encode_overtaking(sent_before, barrier, &pending)?;
        self.frames
            .send_priority(frame)
            .map_err(|e| self.closed_or_failed(e))?;
        self.sent = sent_before;
        Ok(())
    }
}

/// Whether a queued element owes the sender a credit when delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credit {
    /// It came in a data frame.
    Owed,
    /// It came with a priority frame (an overtaking barrier's pending batch).
    None,
}

/// The receiving end of a cross-process channel: a [`ChannelReceiver`] over a
/// [`FrameReceiver`]. Every poll reads all arrived frames into its decoded queue (at most the
/// channel's capacity, plus overtaking barriers' batches), so an overtaking barrier is seen
/// as soon as it arrives.
pub struct RemoteReceiver<T> {
    frames: Box<dyn FrameReceiver>,
    codec: Codec<T>,
    queue: VecDeque<(StreamElement<T>, Credit)>,
    /// Overtaking barriers, each with the number of elements sent before its place.
    overtaking: VecDeque<(Barrier, u64)>,
    /// Elements read into the queue so far.
    received: u64,
    /// Elements delivered so far.
    delivered: u64,
    /// The sender is gone and every frame it sent was read.
    ended: bool,
    /// Why the channel failed, until delivered.
    failed: Option<RuntimeError>,
    /// The failure was delivered: the channel is closed.
    broken: bool,
}

impl<T> RemoteReceiver<T> {
    /// A receiver reading records with `serializer`; `channel` names it in errors.
    pub fn new(
        frames: Box<dyn FrameReceiver>,
        serializer: Arc<dyn VersionedSerializer<T>>,
        channel: impl Into<String>,
    ) -> Self {
        RemoteReceiver {
            frames,
            codec: Codec {
                serializer,
                channel: channel.into(),
            },
            queue: VecDeque::new(),
            overtaking: VecDeque::new(),
            received: 0,
            delivered: 0,
            ended: false,
            failed: None,
            broken: false,
        }
    }

    /// Reads every frame that has arrived into the queue; the first failure is kept.
    fn read_arrived(&mut self, cx: &mut Context<'_>) {
        while !self.ended && self.failed.is_none() {
            match self.frames.poll_frame(cx) {
                Poll::Pending => return,
                Poll::Ready(None) => self.ended = true,
                Poll::Ready(Some(Err(e))) => {
                    self.failed = Some(transport_error(&self.codec.channel, e));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Err(e) = self.accept(&frame) {
                        self.failed = Some(e);
                    }
                }
            }
        }
    }

    fn accept(&mut self, frame: &[u8]) -> Result<()> {
        match self.codec.decode(frame)? {
            Decoded::Element(element) => {
                self.queue.push_back((element, Credit::Owed));
                self.received += 1;
            }
            Decoded::Overtaking {
                sent_before,
                barrier,
                pending,
            } => {
                if let Some(batch) = pending {
                    self.queue
                        .push_back((StreamElement::Batch(batch), Credit::None));
                    self.received += 1;
                }
                // Ordered: every element sent before the barrier is here, none after it.
                if sent_before != self.received {
                    return Err(RemoteChannelError::Protocol {
                        channel: self.codec.channel.clone(),
                        reason: format!(
                            "an overtaking barrier says {sent_before} elements precede it, but \
                             {} arrived before it",
                            self.received
                        ),
                    }
                    .into());
                }
                self.overtaking.push_back((barrier, sent_before));
            }
        }
        Ok(())
    }
}

impl<T: Send + 'static> ChannelReceiver<T> for RemoteReceiver<T> {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Received<T>>> {
        if self.broken {
            return Poll::Ready(None);
        }
        self.read_arrived(cx);
        if let Some(e) = self.failed.take() {
            self.broken = true;
            return Poll::Ready(Some(Received::Failed(e)));
        }
        if let Some((barrier, sent_before)) = self.overtaking.pop_front() {
            // Every element before its place that is not delivered yet is still queued.
            let overtaken = sent_before.saturating_sub(self.delivered) as usize;
            return Poll::Ready(Some(Received::Overtaking { barrier, overtaken }));
        }
        if let Some((element, credit)) = self.queue.pop_front() {
            self.delivered += 1;
            if credit == Credit::Owed {
                self.frames.grant(1);
            }
            return Poll::Ready(Some(Received::Element(element)));
        }
        if self.ended {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }

    fn visit_queued(&mut self, n: usize, visit: &mut dyn FnMut(&StreamElement<T>)) -> usize {
        let shown = n.min(self.queue.len());
        for (element, _) in self.queue.iter().take(shown) {
            visit(element);
        }
        shown
    }
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
