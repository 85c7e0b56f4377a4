//! Channels between tasks: an [`ExchangeOutput`] batches records per target subtask and sends
//! them with the events between them; an [`InputGate`] merges a task's input channels, aligns
//! barriers (exactly-once) or counts them (at-least-once), and merges watermarks.

use std::any::Any;
use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use tokio::sync::mpsc;
use weir_connector_api::watermark::Watermark;

use crate::element::{Barrier, Event, Notification, StreamElement};
use crate::error::{Result, RuntimeError};
use crate::operator::{Output, TaskCx};

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

/// Whether barriers are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckpointingMode {
    /// Barriers are aligned: a channel that delivered barrier `n` is blocked until every channel
    /// delivered it, so the snapshot contains exactly the records before the barrier.
    ExactlyOnce,
    /// Barriers are counted, not aligned: records after an early barrier may be in the snapshot's
    /// past *and* replayed after a restore.
    AtLeastOnce,
}

/// Identifies an edge of the job graph.
pub(crate) type EdgeId = usize;

/// The channel endpoints of one job attempt, taken by the tasks as they are created.
#[derive(Default)]
pub(crate) struct Wiring {
    senders: HashMap<(EdgeId, usize), Box<dyn Any + Send>>,
    receivers: HashMap<(EdgeId, usize), Box<dyn Any + Send>>,
}

impl Wiring {
    /// Creates the channels of an edge.
    pub(crate) fn connect<T: Send + 'static>(
        &mut self,
        edge: EdgeId,
        upstream: usize,
        downstream: usize,
        pointwise: bool,
        capacity: usize,
    ) {
        if pointwise && upstream == downstream {
            for i in 0..upstream {
                let (tx, rx) = mpsc::channel::<StreamElement<T>>(capacity);
                self.senders.insert((edge, i), Box::new(vec![tx]));
                self.receivers.insert((edge, i), Box::new(vec![rx]));
            }
            return;
        }
        let mut receivers: Vec<Vec<mpsc::Receiver<StreamElement<T>>>> =
            (0..downstream).map(|_| Vec::new()).collect();
        for i in 0..upstream {
            let mut senders = Vec::with_capacity(downstream);
            for rx in &mut receivers {
                let (tx, r) = mpsc::channel::<StreamElement<T>>(capacity);
                senders.push(tx);
                rx.push(r);
            }
            self.senders.insert((edge, i), Box::new(senders));
        }
        for (j, rx) in receivers.into_iter().enumerate() {
            self.receivers.insert((edge, j), Box::new(rx));
        }
    }

    pub(crate) fn take_senders<T: Send + 'static>(
        &mut self,
        edge: EdgeId,
        subtask: usize,
    ) -> Result<Vec<mpsc::Sender<StreamElement<T>>>> {
        self.senders
            .remove(&(edge, subtask))
            .and_then(|b| b.downcast::<Vec<mpsc::Sender<StreamElement<T>>>>().ok())
            .map(|b| *b)
            .ok_or_else(|| {
                RuntimeError::Lost(format!("output channels of edge {edge} subtask {subtask}"))
            })
    }

    pub(crate) fn take_receivers<T: Send + 'static>(
        &mut self,
        edge: EdgeId,
        subtask: usize,
    ) -> Result<Vec<mpsc::Receiver<StreamElement<T>>>> {
        self.receivers
            .remove(&(edge, subtask))
            .and_then(|b| b.downcast::<Vec<mpsc::Receiver<StreamElement<T>>>>().ok())
            .map(|b| *b)
            .ok_or_else(|| {
                RuntimeError::Lost(format!("input channels of edge {edge} subtask {subtask}"))
            })
    }
}

/// The end of a chain that sends records to the next task.
pub(crate) struct ExchangeOutput<T> {
    senders: Vec<mpsc::Sender<StreamElement<T>>>,
    buffers: Vec<Vec<T>>,
    partitioning: Partitioning<T>,
    batch_size: usize,
    next: usize,
    ended: bool,
}

impl<T: Send + 'static> ExchangeOutput<T> {
    pub(crate) fn new(
        senders: Vec<mpsc::Sender<StreamElement<T>>>,
        partitioning: Partitioning<T>,
        batch_size: usize,
    ) -> Self {
        let buffers = senders.iter().map(|_| Vec::new()).collect();
        ExchangeOutput {
            senders,
            buffers,
            partitioning,
            batch_size: batch_size.max(1),
            next: 0,
            ended: false,
        }
    }

    async fn send(&mut self, target: usize) -> Result<()> {
        let Some(buffer) = self.buffers.get_mut(target) else {
            return Ok(());
        };
        if buffer.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(buffer, Vec::with_capacity(self.batch_size));
        self.sender(target)?
            .send(StreamElement::Batch(batch))
            .await
            .map_err(|_| RuntimeError::Lost("a downstream task".into()))
    }

    fn sender(&self, target: usize) -> Result<&mpsc::Sender<StreamElement<T>>> {
        self.senders
            .get(target)
            .ok_or_else(|| RuntimeError::Lost(format!("channel {target}")))
    }

    /// Queues records for `target` without sending them: the next flush or close sends them.
    pub(crate) fn enqueue(&mut self, target: usize, batch: &mut Vec<T>) {
        if let Some(buffer) = self.buffers.get_mut(target) {
            buffer.append(batch);
        } else {
            batch.clear();
        }
    }

    async fn send_all(&mut self) -> Result<()> {
        for t in 0..self.buffers.len() {
            self.send(t).await?;
        }
        Ok(())
    }
}

/// Spreads a key hash over `n` targets.
pub(crate) fn target_of(hash: u64, n: usize) -> usize {
    // Fibonacci hashing spreads consecutive keys.
    (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % n
}

#[async_trait::async_trait]
impl<T: Send + 'static> Output<T> for ExchangeOutput<T> {
    async fn open(&mut self, _cx: &mut TaskCx) -> Result<()> {
        Ok(())
    }

    async fn push(&mut self, batch: &mut Vec<T>, _cx: &mut TaskCx) -> Result<()> {
        let n = self.senders.len();
        if n == 0 {
            batch.clear();
            return Ok(());
        }
        match &self.partitioning {
            Partitioning::KeyBy(key) if n > 1 => {
                let key = Arc::clone(key);
                for record in batch.drain(..) {
                    let t = target_of(key(&record), n);
                    if let Some(buffer) = self.buffers.get_mut(t) {
                        buffer.push(record);
                        if buffer.len() >= self.batch_size {
                            self.send(t).await?;
                        }
                    }
                }
            }
            Partitioning::Rebalance if n > 1 => {
                let t = self.next;
                if let Some(buffer) = self.buffers.get_mut(t) {
                    buffer.append(batch);
                    if buffer.len() >= self.batch_size {
                        self.send(t).await?;
                        self.next = (t + 1) % n;
                    }
                }
            }
            partitioning => {
                // One target: forward, global, fixed, or a single downstream subtask.
                let t = match partitioning {
                    Partitioning::Fixed(t) => *t % n,
                    _ => 0,
                };
                if let Some(buffer) = self.buffers.get_mut(t) {
                    if buffer.is_empty() && batch.len() >= self.batch_size {
                        std::mem::swap(buffer, batch);
                    } else {
                        buffer.append(batch);
                    }
                    if buffer.len() >= self.batch_size {
                        self.send(t).await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn event(&mut self, event: Event, _cx: &mut TaskCx) -> Result<()> {
        if self.ended {
            // Downstream stopped reading this channel at end of data; later events (a barrier
            // of the final checkpoint) are for this task's own operators only.
            return Ok(());
        }
        self.send_all().await?;
        if event == Event::EndOfData {
            self.ended = true;
        }
        // Records may go to one subtask, but every subtask needs every event.
        for t in 0..self.senders.len() {
            self.sender(t)?
                .send(StreamElement::Event(event))
                .await
                .map_err(|_| RuntimeError::Lost("a downstream task".into()))?;
        }
        Ok(())
    }

    async fn notify(&mut self, _n: Notification, _cx: &mut TaskCx) -> Result<()> {
        Ok(())
    }

    async fn flush_buffers(&mut self) -> Result<()> {
        self.send_all().await
    }

    async fn close(&mut self) -> Result<()> {
        self.send_all().await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelState {
    Open,
    Blocked,
    Finished,
}

struct Channel<T> {
    rx: mpsc::Receiver<StreamElement<T>>,
    state: ChannelState,
    watermark: Watermark,
    idle: bool,
}

/// What an input gate delivers to its task.
#[derive(Debug)]
pub(crate) enum GateEvent<T> {
    Batch(Vec<T>),
    /// The combined watermark advanced.
    Watermark(Watermark),
    /// Every input is idle (`true`) or one became active again (`false`).
    Idle(bool),
    /// A barrier arrived on every unfinished channel (aligned or counted).
    Barrier(Barrier),
    /// Every channel delivered end of data.
    EndOfData,
}

/// Merges the input channels of one subtask.
pub(crate) struct InputGate<T> {
    channels: Vec<Channel<T>>,
    mode: CheckpointingMode,
    pending: Option<(Barrier, usize)>,
    watermark: Watermark,
    all_idle: bool,
    start: usize,
    ended: bool,
}

impl<T: Send + 'static> InputGate<T> {
    pub(crate) fn new(
        receivers: Vec<mpsc::Receiver<StreamElement<T>>>,
        mode: CheckpointingMode,
    ) -> Self {
        InputGate {
            channels: receivers
                .into_iter()
                .map(|rx| Channel {
                    rx,
                    state: ChannelState::Open,
                    watermark: Watermark::MIN,
                    idle: false,
                })
                .collect(),
            mode,
            pending: None,
            watermark: Watermark::MIN,
            all_idle: false,
            start: 0,
            ended: false,
        }
    }

    fn unfinished(&self) -> usize {
        self.channels
            .iter()
            .filter(|c| c.state != ChannelState::Finished)
            .count()
    }

    /// The minimum watermark over unfinished, non-idle channels; MAX when all finished.
    fn combined_watermark(&self) -> Option<Watermark> {
        let mut active = self
            .channels
            .iter()
            .filter(|c| c.state != ChannelState::Finished && !c.idle)
            .map(|c| c.watermark)
            .peekable();
        if active.peek().is_none() {
            return if self.unfinished() == 0 {
                Some(Watermark::MAX)
            } else {
                None // every live input is idle: nothing holds the watermark, nothing advances it
            };
        }
        active.min()
    }

    fn watermark_update(&mut self) -> Option<GateEvent<T>> {
        let combined = self.combined_watermark()?;
        if combined > self.watermark {
            self.watermark = combined;
            return Some(GateEvent::Watermark(combined));
        }
        None
    }

    fn idle_update(&mut self) -> Option<GateEvent<T>> {
        let all_idle = self
            .channels
            .iter()
            .filter(|c| c.state != ChannelState::Finished)
            .all(|c| c.idle)
            && self.unfinished() > 0;
        if all_idle != self.all_idle {
            self.all_idle = all_idle;
            return Some(GateEvent::Idle(all_idle));
        }
        None
    }

    /// Completes a pending barrier if every unfinished channel delivered it.
    fn try_release(&mut self) -> Option<GateEvent<T>> {
        let (barrier, count) = self.pending?;
        if count >= self.unfinished() {
            self.pending = None;
            for c in &mut self.channels {
                if c.state == ChannelState::Blocked {
                    c.state = ChannelState::Open;
                }
            }
            return Some(GateEvent::Barrier(barrier));
        }
        None
    }

    fn on_element(&mut self, index: usize, element: StreamElement<T>) -> Option<GateEvent<T>> {
        match element {
            StreamElement::Batch(batch) => Some(GateEvent::Batch(batch)),
            StreamElement::Event(Event::Watermark(w)) => {
                if let Some(c) = self.channels.get_mut(index) {
                    c.watermark = c.watermark.max(w);
                }
                self.watermark_update()
            }
            StreamElement::Event(Event::Idle(idle)) => {
                if let Some(c) = self.channels.get_mut(index) {
                    c.idle = idle;
                }
                self.idle_update().or_else(|| self.watermark_update())
            }
            StreamElement::Event(Event::Barrier(barrier)) => {
                match self.pending {
                    Some((p, _)) if p.checkpoint_id > barrier.checkpoint_id => return None,
                    Some((p, _)) if p.checkpoint_id < barrier.checkpoint_id => {
                        // A newer barrier overtook an unfinished alignment: the older checkpoint
                        // can no longer complete here; start over with the new one.
                        for c in &mut self.channels {
                            if c.state == ChannelState::Blocked {
                                c.state = ChannelState::Open;
                            }
                        }
                        self.pending = None;
                    }
                    _ => {}
                }
                let count = self.pending.map_or(0, |(_, n)| n) + 1;
                self.pending = Some((barrier, count));
                if self.mode == CheckpointingMode::ExactlyOnce {
                    if let Some(c) = self.channels.get_mut(index) {
                        c.state = ChannelState::Blocked;
                    }
                }
                self.try_release()
            }
            StreamElement::Event(Event::EndOfData) => {
                if let Some(c) = self.channels.get_mut(index) {
                    c.state = ChannelState::Finished;
                }
                if let Some(event) = self.try_release() {
                    // The end of data is noticed again on the next call.
                    return Some(event);
                }
                if self.unfinished() == 0 {
                    self.ended = true;
                    return Some(GateEvent::EndOfData);
                }
                self.watermark_update()
            }
        }
    }

    /// The next event. Cancel-safe: nothing is lost if the future is dropped.
    pub(crate) async fn next(&mut self) -> Result<GateEvent<T>> {
        if self.ended {
            return Ok(GateEvent::EndOfData);
        }
        poll_fn(|cx| {
            let n = self.channels.len();
            if n == 0 {
                self.ended = true;
                return Poll::Ready(Ok(GateEvent::EndOfData));
            }
            let mut progressed = true;
            while progressed {
                progressed = false;
                for k in 0..n {
                    let i = (self.start + k) % n;
                    let Some(channel) = self.channels.get_mut(i) else {
                        continue;
                    };
                    if channel.state != ChannelState::Open {
                        continue;
                    }
                    match channel.rx.poll_recv(cx) {
                        Poll::Ready(Some(element)) => {
                            self.start = (i + 1) % n;
                            progressed = true;
                            if let Some(event) = self.on_element(i, element) {
                                return Poll::Ready(Ok(event));
                            }
                        }
                        Poll::Ready(None) => {
                            return Poll::Ready(Err(RuntimeError::Lost(
                                "an upstream task (its channel closed before end of data)".into(),
                            )));
                        }
                        Poll::Pending => {}
                    }
                }
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_connector_api::checkpoint::CheckpointId;

    use crate::element::SnapshotType;

    fn barrier(id: u64) -> StreamElement<u32> {
        StreamElement::Event(Event::Barrier(Barrier {
            checkpoint_id: CheckpointId(id),
            kind: SnapshotType::Checkpoint,
        }))
    }

    fn gate(mode: CheckpointingMode) -> (Vec<mpsc::Sender<StreamElement<u32>>>, InputGate<u32>) {
        let mut txs = Vec::new();
        let mut rxs = Vec::new();
        for _ in 0..2 {
            let (tx, rx) = mpsc::channel(16);
            txs.push(tx);
            rxs.push(rx);
        }
        (txs, InputGate::new(rxs, mode))
    }

    #[tokio::test]
    async fn exactly_once_blocks_a_channel_until_the_barrier_is_aligned() -> Result<()> {
        let (txs, mut gate) = gate(CheckpointingMode::ExactlyOnce);
        txs[0].send(barrier(1)).await.ok();
        txs[0].send(StreamElement::Batch(vec![99])).await.ok(); // after the barrier
        txs[1].send(StreamElement::Batch(vec![1])).await.ok(); // before the barrier
        txs[1].send(barrier(1)).await.ok();
        let mut seen = Vec::new();
        for _ in 0..3 {
            match gate.next().await? {
                GateEvent::Batch(b) => seen.push(format!("batch {b:?}")),
                GateEvent::Barrier(b) => seen.push(format!("barrier {}", b.checkpoint_id)),
                other => seen.push(format!("{other:?}")),
            }
        }
        assert_eq!(seen, ["batch [1]", "barrier 1", "batch [99]"]);
        Ok(())
    }

    #[tokio::test]
    async fn at_least_once_lets_records_overtake_and_counts_barriers() -> Result<()> {
        let (txs, mut gate) = gate(CheckpointingMode::AtLeastOnce);
        txs[0].send(barrier(1)).await.ok();
        txs[0].send(StreamElement::Batch(vec![99])).await.ok();
        let first = gate.next().await?;
        assert!(
            matches!(first, GateEvent::Batch(ref b) if b == &[99]),
            "{first:?}"
        );
        txs[1].send(barrier(1)).await.ok();
        assert!(matches!(gate.next().await?, GateEvent::Barrier(_)));
        Ok(())
    }

    #[tokio::test]
    async fn watermark_is_the_minimum_and_finished_channels_stop_holding_it() -> Result<()> {
        let (txs, mut gate) = gate(CheckpointingMode::ExactlyOnce);
        txs[0]
            .send(StreamElement::Event(Event::Watermark(Watermark(10))))
            .await
            .ok();
        txs[1]
            .send(StreamElement::Event(Event::Watermark(Watermark(5))))
            .await
            .ok();
        assert!(matches!(
            gate.next().await?,
            GateEvent::Watermark(Watermark(5))
        ));
        txs[1]
            .send(StreamElement::Event(Event::EndOfData))
            .await
            .ok();
        assert!(matches!(
            gate.next().await?,
            GateEvent::Watermark(Watermark(10))
        ));
        txs[0]
            .send(StreamElement::Event(Event::EndOfData))
            .await
            .ok();
        assert!(matches!(gate.next().await?, GateEvent::EndOfData));
        Ok(())
    }

    #[tokio::test]
    async fn a_finished_channel_does_not_hold_up_alignment() -> Result<()> {
        let (txs, mut gate) = gate(CheckpointingMode::ExactlyOnce);
        txs[0].send(barrier(3)).await.ok();
        txs[1]
            .send(StreamElement::Event(Event::EndOfData))
            .await
            .ok();
        assert!(matches!(gate.next().await?, GateEvent::Barrier(_)));
        Ok(())
    }

    #[tokio::test]
    async fn key_by_sends_equal_keys_to_one_subtask() -> Result<()> {
        let mut wiring = Wiring::default();
        wiring.connect::<u32>(0, 1, 3, false, 64);
        let senders = wiring.take_senders::<u32>(0, 0)?;
        let mut receivers: Vec<_> = (0..3)
            .map(|j| wiring.take_receivers::<u32>(0, j))
            .collect::<Result<_>>()?;
        let mut out = ExchangeOutput::new(
            senders,
            Partitioning::KeyBy(Arc::new(|v: &u32| u64::from(*v % 7))),
            4,
        );
        let mut cx = TaskCx::new(0, 1, 0, Arc::new(crate::fault::NoFaults));
        let mut batch: Vec<u32> = (0..100).collect();
        out.push(&mut batch, &mut cx).await?;
        out.event(Event::EndOfData, &mut cx).await?;
        let mut owner = HashMap::new();
        let mut total = 0;
        for (j, rxs) in receivers.iter_mut().enumerate() {
            let rx = &mut rxs[0];
            while let Some(e) = rx.recv().await {
                match e {
                    StreamElement::Batch(b) => {
                        for v in b {
                            total += 1;
                            assert_eq!(*owner.entry(v % 7).or_insert(j), j, "key {} split", v % 7);
                        }
                    }
                    StreamElement::Event(Event::EndOfData) => break,
                    StreamElement::Event(_) => {}
                }
            }
        }
        assert_eq!(total, 100);
        Ok(())
    }
}
