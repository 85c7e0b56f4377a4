//! The control channels between two processes: one per direction, on the frame transport,
//! every message a priority frame (control messages need no credit; they stay in order with
//! each other).

use std::sync::{Arc, Mutex, PoisonError};

use crate::exchange::{ChannelKey, FrameReceiver, FrameSender, FrameTransport, TransportError};

/// The key of the control channel from process `from` to process `to` (outside every attempt's
/// keys: attempt and edge `u32::MAX`).
pub(crate) fn control_key(from: usize, to: usize) -> ChannelKey {
    ChannelKey {
        attempt: u32::MAX,
        edge: u32::MAX,
        upstream: u32::try_from(from).unwrap_or(u32::MAX),
        downstream: u32::try_from(to).unwrap_or(u32::MAX),
    }
}

/// The sending end of the control channel to one process, shared by every task that sends.
#[derive(Clone)]
pub(crate) struct ControlLink {
    /// The process it sends to.
    pub(crate) peer: usize,
    sender: Arc<Mutex<Box<dyn FrameSender>>>,
}

impl ControlLink {
    /// Opens the control channel from `here` to `peer`.
    pub(crate) fn open(
        transport: &dyn FrameTransport,
        here: usize,
        peer: usize,
    ) -> Result<Self, TransportError> {
        let sender = transport.open_sender(control_key(here, peer), peer)?;
        Ok(ControlLink {
            peer,
            sender: Arc::new(Mutex::new(sender)),
        })
    }

    /// Sends one control message.
    pub(crate) fn send(&self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send_priority(frame)
    }
}

/// Opens the receiving end of the control channel from `peer` to `here`.
pub(crate) fn open_inbox(
    transport: &dyn FrameTransport,
    here: usize,
    peer: usize,
) -> Result<Box<dyn FrameReceiver>, TransportError> {
    transport.open_receiver(control_key(peer, here), peer, 1)
}

/// The next control frame from `inbox`: `Ok(None)` when the other process closed it.
pub(crate) async fn next_frame(
    inbox: &mut Box<dyn FrameReceiver>,
) -> Result<Option<Vec<u8>>, TransportError> {
    std::future::poll_fn(|cx| inbox.poll_frame(cx))
        .await
        .transpose()
}
