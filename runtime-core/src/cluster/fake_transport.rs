//! A fake frame transport for unit tests (no other process): it records which channel ends were
//! opened and every frame sent; its senders always have credit, its receivers never deliver.

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use crate::exchange::{ChannelKey, FrameReceiver, FrameSender, FrameTransport, TransportError};

/// An opened end: `sender` or `receiver`, its channel, the other process.
pub(crate) type Opened = (&'static str, ChannelKey, usize);

/// Every frame sent, with its channel.
type Sent = Arc<Mutex<Vec<(ChannelKey, Vec<u8>)>>>;

/// The fake transport.
#[derive(Default)]
pub(crate) struct FakeTransport {
    opened: Mutex<Vec<Opened>>,
    sent: Sent,
}

impl FakeTransport {
    /// The ends opened so far, in order.
    pub(crate) fn opened(&self) -> Vec<Opened> {
        self.opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The frames sent so far on `channel`, in order.
    pub(crate) fn sent(&self, channel: ChannelKey) -> Vec<Vec<u8>> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(k, _)| *k == channel)
            .map(|(_, f)| f.clone())
            .collect()
    }
}

struct FakeSender {
    key: ChannelKey,
    sent: Sent,
}

struct FakeReceiver;

impl FakeSender {
    fn record(&self, frame: Vec<u8>) {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.key, frame));
    }
}

impl FrameSender for FakeSender {
    fn poll_credit(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }
    fn send_data(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.record(frame);
        Ok(())
    }
    fn send_priority(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.record(frame);
        Ok(())
    }
}

impl FrameReceiver for FakeReceiver {
    fn poll_frame(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Vec<u8>, TransportError>>> {
        Poll::Pending
    }
    fn grant(&mut self, _credits: usize) {}
}

impl FrameTransport for FakeTransport {
    fn open_sender(
        &self,
        channel: ChannelKey,
        to: usize,
    ) -> Result<Box<dyn FrameSender>, TransportError> {
        self.opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(("sender", channel, to));
        Ok(Box::new(FakeSender {
            key: channel,
            sent: Arc::clone(&self.sent),
        }))
    }
    fn open_receiver(
        &self,
        channel: ChannelKey,
        from: usize,
        _capacity: usize,
    ) -> Result<Box<dyn FrameReceiver>, TransportError> {
        self.opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(("receiver", channel, from));
        Ok(Box::new(FakeReceiver))
    }
}
