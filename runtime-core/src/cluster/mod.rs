//! The cluster seam: what a cluster mode (the `weir-cluster` crate, on timely-dataflow's
//! communication layer) implements and uses to carry a job's channels between processes.
//!
//! - [`FrameTransport`] opens the two ends of a cross-process channel ([`ChannelKey`]:
//!   attempt, edge, upstream and downstream subtask) as a [`FrameSender`] and a
//!   [`FrameReceiver`]: ordered byte frames with credit-based backpressure (the receiver
//!   grants the edge's channel capacity, then one credit per frame its task consumed;
//!   priority frames need none).
//! - [`RemoteSender`] / [`RemoteReceiver`] are the runtime's [`ChannelSender`] /
//!   [`ChannelReceiver`] over them: each batch (with its records' event times) and each
//!   event is one versioned, checksummed frame, records written with the stream's codec
//!   (declared with [`DataStream::channel_state_serializer`]; only cluster mode requires it
//!   for every exchange); barriers of unaligned checkpoints overtake as priority frames. A
//!   damaged or unknown frame, or a broken transport, is an error naming the channel
//!   ([`RemoteChannelError`]), never a panic.
//!
//! Inside the runtime, an edge's `ChannelFactory` makes these ends for its record type, so a
//! cluster exchange can put local channels inside a process and remote ones between
//! processes behind the same `Exchange` seam.
//!
//! [`DataStream::channel_state_serializer`]: crate::DataStream::channel_state_serializer

pub use crate::exchange::{
    ChannelKey, ChannelReceiver, ChannelSender, FrameReceiver, FrameSender, FrameTransport,
    Received, RemoteChannelError, RemoteReceiver, RemoteSender, TransportError, TrySendError,
    FRAME_VERSION,
};

mod placement;

pub use placement::process_of;
#[allow(unused_imports)] // used by the cluster deployment
pub(crate) use placement::Placement;
