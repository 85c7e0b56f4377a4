//! The frame transport over timely: channel ends for the runtime's tasks (any thread), and the
//! communication thread that owns timely's allocator (which must stay on one thread) and moves
//! messages between the two.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use timely_communication::{Allocator, Pull, Push};
use weir_runtime::cluster::{
    ChannelKey, FrameReceiver, FrameSender, FrameTransport, TransportError,
};

use crate::wire::{Message, Wire};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// A sender's side of a channel in this process.
#[derive(Default)]
struct SendSlot {
    credits: u64,
    receiver_closed: bool,
    waker: Option<Waker>,
}

/// A receiver's side of a channel in this process.
#[derive(Default)]
struct RecvSlot {
    frames: VecDeque<Vec<u8>>,
    sender_closed: bool,
    waker: Option<Waker>,
    /// Credits granted by the task and not sent yet.
    ungranted: u64,
    /// A flush of `ungranted` is in the outbox.
    flush_queued: bool,
}

#[derive(Default)]
struct Ends {
    senders: HashMap<ChannelKey, Arc<Mutex<SendSlot>>>,
    receivers: HashMap<ChannelKey, Arc<Mutex<RecvSlot>>>,
    opened_senders: HashSet<ChannelKey>,
    opened_receivers: HashSet<ChannelKey>,
    /// Channels whose end here is gone: late messages for them are dropped.
    gone_senders: HashSet<ChannelKey>,
    gone_receivers: HashSet<ChannelKey>,
}

/// What the communication thread is asked to do.
enum Outgoing {
    Send(usize, Message),
    /// Send the credits a receiver's task granted.
    Flush(usize, ChannelKey, Arc<Mutex<RecvSlot>>),
}

/// Counts of what crossed processes (Weir's frames, without timely's headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Frames sent to other processes.
    pub frames_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Frames received from other processes.
    pub frames_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
}

/// What the channel ends and the communication thread share.
pub(crate) struct Shared {
    pub(crate) process: usize,
    pub(crate) processes: usize,
    outbox: Mutex<VecDeque<Outgoing>>,
    ends: Mutex<Ends>,
    failure: Mutex<Option<String>>,
    failed: AtomicBool,
    /// Set to make the communication thread finish.
    pub(crate) stop: AtomicBool,
    /// Peers that said goodbye.
    pub(crate) goodbyes: AtomicUsize,
    /// The communication thread, to wake.
    pub(crate) comm: OnceLock<std::thread::Thread>,
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    frames_received: AtomicU64,
    bytes_received: AtomicU64,
}

impl Shared {
    pub(crate) fn new(process: usize, processes: usize) -> Self {
        Shared {
            process,
            processes,
            outbox: Mutex::default(),
            ends: Mutex::default(),
            failure: Mutex::default(),
            failed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            goodbyes: AtomicUsize::new(0),
            comm: OnceLock::new(),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            frames_received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> TransportStats {
        TransportStats {
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            frames_received: self.frames_received.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
        }
    }

    /// Why the transport failed, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        if self.failed.load(Ordering::Acquire) {
            lock(&self.failure).clone()
        } else {
            None
        }
    }

    fn check(&self) -> Result<(), TransportError> {
        match self.failure() {
            Some(reason) => Err(TransportError::Failed(reason)),
            None => Ok(()),
        }
    }

    fn post(&self, outgoing: Outgoing) {
        lock(&self.outbox).push_back(outgoing);
        if let Some(comm) = self.comm.get() {
            comm.unpark();
        }
    }

    pub(crate) fn post_message(&self, to: usize, message: Message) {
        self.post(Outgoing::Send(to, message));
    }

    fn peer(&self, process: usize) -> Result<(), TransportError> {
        if process >= self.processes || process == self.process {
            return Err(TransportError::Failed(format!(
                "process {process} is not another process of this cluster of {} (this is \
                 process {})",
                self.processes, self.process
            )));
        }
        Ok(())
    }

    /// Records why the transport failed and wakes every channel end.
    pub(crate) fn fail(&self, reason: String) {
        {
            let mut failure = lock(&self.failure);
            if failure.is_none() {
                *failure = Some(reason);
            }
        }
        self.failed.store(true, Ordering::Release);
        let ends = lock(&self.ends);
        for slot in ends.senders.values() {
            wake(lock(slot).waker.take());
        }
        for slot in ends.receivers.values() {
            wake(lock(slot).waker.take());
        }
    }

    /// Handles a message from process `from`.
    fn dispatch(&self, message: Message) {
        let mut ends = lock(&self.ends);
        let waker = match message {
            Message::Frame(key, bytes) => {
                if ends.gone_receivers.contains(&key) {
                    return;
                }
                self.frames_received.fetch_add(1, Ordering::Relaxed);
                self.bytes_received
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                let slot = ends.receivers.entry(key).or_default();
                let mut slot = lock(slot);
                slot.frames.push_back(bytes);
                slot.waker.take()
            }
            Message::SenderClosed(key) => {
                if ends.gone_receivers.contains(&key) {
                    return;
                }
                let mut slot = lock(ends.receivers.entry(key).or_default());
                slot.sender_closed = true;
                slot.waker.take()
            }
            Message::Credit(key, n) => {
                if ends.gone_senders.contains(&key) {
                    return;
                }
                let mut slot = lock(ends.senders.entry(key).or_default());
                slot.credits += n;
                slot.waker.take()
            }
            Message::ReceiverClosed(key) => {
                if ends.gone_senders.contains(&key) {
                    return;
                }
                let mut slot = lock(ends.senders.entry(key).or_default());
                slot.receiver_closed = true;
                slot.waker.take()
            }
            Message::Goodbye => {
                self.goodbyes.fetch_add(1, Ordering::AcqRel);
                None
            }
        };
        drop(ends);
        wake(waker);
    }
}

/// Opens channel ends on the cluster's timely connections.
#[derive(Clone)]
pub struct TimelyTransport {
    pub(crate) shared: Arc<Shared>,
}

impl FrameTransport for TimelyTransport {
    fn open_sender(
        &self,
        channel: ChannelKey,
        to: usize,
    ) -> Result<Box<dyn FrameSender>, TransportError> {
        self.shared.peer(to)?;
        self.shared.check()?;
        let mut ends = lock(&self.shared.ends);
        if !ends.opened_senders.insert(channel) {
            return Err(TransportError::Failed(format!(
                "the sending end of {channel} is already open in this process"
            )));
        }
        let slot = Arc::clone(ends.senders.entry(channel).or_default());
        Ok(Box::new(TimelyFrameSender {
            key: channel,
            to,
            slot,
            shared: Arc::clone(&self.shared),
        }))
    }

    fn open_receiver(
        &self,
        channel: ChannelKey,
        from: usize,
        capacity: usize,
    ) -> Result<Box<dyn FrameReceiver>, TransportError> {
        self.shared.peer(from)?;
        self.shared.check()?;
        let slot = {
            let mut ends = lock(&self.shared.ends);
            if !ends.opened_receivers.insert(channel) {
                return Err(TransportError::Failed(format!(
                    "the receiving end of {channel} is already open in this process"
                )));
            }
            Arc::clone(ends.receivers.entry(channel).or_default())
        };
        self.shared
            .post_message(from, Message::Credit(channel, capacity.max(1) as u64));
        Ok(Box::new(TimelyFrameReceiver {
            key: channel,
            from,
            slot,
            shared: Arc::clone(&self.shared),
        }))
    }
}

/// The sending end of a channel to another process.
struct TimelyFrameSender {
    key: ChannelKey,
    to: usize,
    slot: Arc<Mutex<SendSlot>>,
    shared: Arc<Shared>,
}

impl TimelyFrameSender {
    fn send(&self, frame: Vec<u8>) {
        self.shared.frames_sent.fetch_add(1, Ordering::Relaxed);
        self.shared
            .bytes_sent
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        self.shared
            .post_message(self.to, Message::Frame(self.key, frame));
    }
}

impl FrameSender for TimelyFrameSender {
    fn poll_credit(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if let Err(e) = self.shared.check() {
            return Poll::Ready(Err(e));
        }
        let mut slot = lock(&self.slot);
        if slot.receiver_closed {
            return Poll::Ready(Err(TransportError::Closed));
        }
        if slot.credits > 0 {
            return Poll::Ready(Ok(()));
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        drop(slot);
        // A failure may have come between the check and the waker.
        match self.shared.check() {
            Err(e) => Poll::Ready(Err(e)),
            Ok(()) => Poll::Pending,
        }
    }

    fn send_data(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.shared.check()?;
        {
            let mut slot = lock(&self.slot);
            if slot.receiver_closed {
                return Err(TransportError::Closed);
            }
            if slot.credits == 0 {
                return Err(TransportError::Failed(format!(
                    "{}: a data frame without credit",
                    self.key
                )));
            }
            slot.credits -= 1;
        }
        self.send(frame);
        Ok(())
    }

    fn send_priority(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.shared.check()?;
        if lock(&self.slot).receiver_closed {
            return Err(TransportError::Closed);
        }
        self.send(frame);
        Ok(())
    }
}

impl Drop for TimelyFrameSender {
    fn drop(&mut self) {
        {
            let mut ends = lock(&self.shared.ends);
            ends.senders.remove(&self.key);
            ends.gone_senders.insert(self.key);
        }
        self.shared
            .post_message(self.to, Message::SenderClosed(self.key));
    }
}

/// The receiving end of a channel from another process.
struct TimelyFrameReceiver {
    key: ChannelKey,
    from: usize,
    slot: Arc<Mutex<RecvSlot>>,
    shared: Arc<Shared>,
}

impl FrameReceiver for TimelyFrameReceiver {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Vec<u8>, TransportError>>> {
        let mut slot = lock(&self.slot);
        if let Some(frame) = slot.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if slot.sender_closed {
            return Poll::Ready(None);
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        drop(slot);
        match self.shared.check() {
            Err(e) => Poll::Ready(Some(Err(e))),
            Ok(()) => Poll::Pending,
        }
    }

    fn grant(&mut self, credits: usize) {
        let flush = {
            let mut slot = lock(&self.slot);
            slot.ungranted += credits as u64;
            !std::mem::replace(&mut slot.flush_queued, true)
        };
        if flush {
            self.shared
                .post(Outgoing::Flush(self.from, self.key, Arc::clone(&self.slot)));
        }
    }
}

impl Drop for TimelyFrameReceiver {
    fn drop(&mut self) {
        {
            let mut ends = lock(&self.shared.ends);
            ends.receivers.remove(&self.key);
            ends.gone_receivers.insert(self.key);
        }
        self.shared
            .post_message(self.from, Message::ReceiverClosed(self.key));
    }
}

/// Timely's endpoints of the one channel every message travels on.
pub(crate) struct Endpoints {
    pub(crate) pushers: Vec<Box<dyn Push<Wire>>>,
    pub(crate) puller: Box<dyn Pull<Wire>>,
}

/// The communication thread's loop: moves outgoing messages into timely and received ones to
/// the channel ends, until asked to stop. A panic inside timely (a broken connection) is
/// caught and fails the transport; timely's objects are then leaked, never dropped, as
/// dropping them after a network thread died panics again.
pub(crate) fn run(shared: &Shared, mut allocator: Allocator, mut endpoints: Endpoints) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pump(shared, &mut allocator, &mut endpoints);
    }));
    match outcome {
        Ok(()) => {
            // Dropping timely's objects flushes and closes the connections.
            let dropped = catch_unwind(AssertUnwindSafe(move || {
                drop(endpoints);
                drop(allocator);
            }));
            if dropped.is_err() {
                shared.fail(crate::panics::describe("closing the connections"));
            }
        }
        Err(_) => {
            shared.fail(crate::panics::describe("moving messages"));
            std::mem::forget(endpoints);
            std::mem::forget(allocator);
        }
    }
}

fn pump(shared: &Shared, allocator: &mut Allocator, endpoints: &mut Endpoints) {
    let mut outgoing = VecDeque::new();
    loop {
        let mut busy = false;
        std::mem::swap(&mut outgoing, &mut *lock(&shared.outbox));
        for o in outgoing.drain(..) {
            busy = true;
            let (to, message) = match o {
                Outgoing::Send(to, message) => (to, message),
                Outgoing::Flush(to, key, slot) => {
                    let n = {
                        let mut slot = lock(&slot);
                        slot.flush_queued = false;
                        std::mem::take(&mut slot.ungranted)
                    };
                    if n == 0 {
                        continue;
                    }
                    (to, Message::Credit(key, n))
                }
            };
            if let Some(pusher) = endpoints.pushers.get_mut(to) {
                pusher.send(Wire::Out(message));
            }
        }
        allocator.release();
        allocator.receive();
        while let Some(wire) = endpoints.puller.recv() {
            busy = true;
            let Wire::In(bytes) = wire else { continue };
            match Message::read(&bytes) {
                Some(message) => shared.dispatch(message),
                None => {
                    shared.fail(format!(
                        "process {} received a message of {} bytes that is not Weir's cluster \
                         protocol; every process must run the same Weir build",
                        shared.process,
                        bytes.len()
                    ));
                    return;
                }
            }
        }
        allocator.events().borrow_mut().clear();
        if shared.stop.load(Ordering::Acquire) && lock(&shared.outbox).is_empty() {
            return;
        }
        if !busy {
            allocator.await_events(Some(Duration::from_millis(50)));
        }
    }
}
