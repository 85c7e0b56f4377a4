//! The end of a chain that sends records to the next task.

use std::sync::Arc;

use super::{target_of, BoxSender, Partitioning, TrySendError};
use crate::element::{Barrier, Batch, Event, Notification, StreamElement};
use crate::error::{Result, RuntimeError};
use crate::load::{self, TaskLoad, Wait};
use crate::operator::{Output, TaskCx, NO_TIMESTAMP};

/// How an [`ExchangeOutput`] sends barriers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BarrierDelivery {
    /// In order, after the batches before them (aligned and at-least-once checkpoints;
    /// committable edges always).
    InBand,
    /// Ahead of the queued batches (unaligned checkpoints, aligned ones with a timeout).
    Overtaking,
}

/// The end of a chain that sends records to the next task.
pub(crate) struct ExchangeOutput<T> {
    senders: Vec<BoxSender<T>>,
    buffers: Vec<Vec<T>>,
    /// Per target, the event times of the buffered records: empty while none had one, else
    /// one per record up to the last record that had one (the rest are filled with
    /// [`NO_TIMESTAMP`] when the batch is sent), so records without times cost nothing here.
    times: Vec<Vec<i64>>,
    partitioning: Partitioning<T>,
    batch_size: usize,
    next: usize,
    ended: bool,
    barriers: BarrierDelivery,
    /// The load of the subtask this output sends for, found at the first push.
    load: Option<Arc<TaskLoad>>,
}

impl<T: Send + 'static> ExchangeOutput<T> {
    pub(crate) fn new(
        senders: Vec<BoxSender<T>>,
        partitioning: Partitioning<T>,
        batch_size: usize,
    ) -> Self {
        let buffers = senders.iter().map(|_| Vec::new()).collect();
        let times = senders.iter().map(|_| Vec::new()).collect();
        ExchangeOutput {
            senders,
            buffers,
            times,
            partitioning,
            batch_size: batch_size.max(1),
            next: 0,
            ended: false,
            barriers: BarrierDelivery::InBand,
            load: None,
        }
    }

    /// Sets how barriers are sent (in band by default).
    pub(crate) fn with_barriers(mut self, barriers: BarrierDelivery) -> Self {
        self.barriers = barriers;
        self
    }

    /// Sends `barrier` ahead of everything queued to every target, each target's partly
    /// filled batch queued behind the rest; never waits for room.
    fn send_overtaking(&mut self, barrier: Barrier) -> Result<()> {
        for ((sender, buffer), times) in self
            .senders
            .iter_mut()
            .zip(self.buffers.iter_mut())
            .zip(self.times.iter_mut())
        {
            let pending = take_batch(buffer, times, 0);
            if let Some(load) = &self.load {
                load.records_out(pending.len());
            }
            sender.send_overtaking(pending, barrier)?;
        }
        Ok(())
    }

    /// Sends one element to `target`; the time a full channel makes it wait is back-pressured
    /// time (the clock is read only then).
    async fn deliver(&mut self, target: usize, element: StreamElement<T>) -> Result<()> {
        let sender = self
            .senders
            .get_mut(target)
            .ok_or_else(|| RuntimeError::Lost(format!("channel {target}")))?;
        match sender.try_send(element) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(element)) => match &self.load {
                Some(load) => {
                    let wait = load.begin(Wait::Output);
                    let sent = sender.send(element).await;
                    load.end(wait);
                    sent
                }
                None => sender.send(element).await,
            },
            Err(TrySendError::Closed) => Err(RuntimeError::Lost("a downstream task".into())),
            Err(TrySendError::Failed(e)) => Err(e),
        }
    }

    async fn send(&mut self, target: usize) -> Result<()> {
        let (Some(buffer), Some(times)) =
            (self.buffers.get_mut(target), self.times.get_mut(target))
        else {
            return Ok(());
        };
        if buffer.is_empty() {
            return Ok(());
        }
        let batch = take_batch(buffer, times, self.batch_size);
        if let Some(load) = &self.load {
            load.records_out(batch.len());
        }
        self.deliver(target, StreamElement::Batch(batch)).await
    }

    /// Queues records for `target` without sending them: the next flush or close sends them.
    pub(crate) fn enqueue(&mut self, target: usize, batch: &mut Vec<T>) {
        if let Some(buffer) = self.buffers.get_mut(target) {
            // Their times (if any records before them had some) are filled in when sent.
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

    /// Buffers `record`, whose event time is `timestamp`, for `target`; sends a full buffer.
    async fn buffer_timed(&mut self, target: usize, record: T, timestamp: i64) -> Result<()> {
        let (Some(buffer), Some(times)) =
            (self.buffers.get_mut(target), self.times.get_mut(target))
        else {
            return Ok(());
        };
        if timestamp != NO_TIMESTAMP {
            times.resize(buffer.len(), NO_TIMESTAMP);
            times.push(timestamp);
        }
        buffer.push(record);
        if buffer.len() >= self.batch_size {
            self.send(target).await?;
        }
        Ok(())
    }
}

/// Takes the buffered records and their times as one batch, leaving an empty buffer with
/// `capacity`.
fn take_batch<T>(buffer: &mut Vec<T>, times: &mut Vec<i64>, capacity: usize) -> Batch<T> {
    let records = std::mem::replace(buffer, Vec::with_capacity(capacity));
    let mut timestamps = std::mem::take(times);
    if !timestamps.is_empty() {
        timestamps.resize(records.len(), NO_TIMESTAMP);
    }
    Batch {
        records,
        timestamps,
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> Output<T> for ExchangeOutput<T> {
    async fn open(&mut self, _cx: &mut TaskCx) -> Result<()> {
        Ok(())
    }

    async fn push(&mut self, batch: &mut Vec<T>, _cx: &mut TaskCx) -> Result<()> {
        if self.load.is_none() {
            self.load = load::current();
        }
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

    async fn push_timestamped(
        &mut self,
        batch: &mut Vec<T>,
        timestamps: &mut Vec<i64>,
        cx: &mut TaskCx,
    ) -> Result<()> {
        if timestamps.len() != batch.len() {
            // No times (or a malformed column): the records go on without them.
            timestamps.clear();
            return self.push(batch, cx).await;
        }
        if self.load.is_none() {
            self.load = load::current();
        }
        let n = self.senders.len();
        if n == 0 {
            batch.clear();
            timestamps.clear();
            return Ok(());
        }
        match &self.partitioning {
            Partitioning::KeyBy(key) if n > 1 => {
                let key = Arc::clone(key);
                for (record, ts) in batch.drain(..).zip(timestamps.drain(..)) {
                    let t = target_of(key(&record), n);
                    self.buffer_timed(t, record, ts).await?;
                }
            }
            partitioning => {
                // Rebalance and one target: the whole batch goes to one buffer.
                let t = match partitioning {
                    Partitioning::Fixed(t) => *t % n,
                    Partitioning::Rebalance if n > 1 => self.next,
                    _ => 0,
                };
                let rebalance = matches!(partitioning, Partitioning::Rebalance) && n > 1;
                if let (Some(buffer), Some(times)) =
                    (self.buffers.get_mut(t), self.times.get_mut(t))
                {
                    times.resize(buffer.len(), NO_TIMESTAMP);
                    buffer.append(batch);
                    times.append(timestamps);
                    if buffer.len() >= self.batch_size {
                        self.send(t).await?;
                        if rebalance {
                            self.next = (t + 1) % n;
                        }
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
        if let (Event::Barrier(barrier), BarrierDelivery::Overtaking) = (event, self.barriers) {
            return self.send_overtaking(barrier);
        }
        self.send_all().await?;
        if event == Event::EndOfData {
            self.ended = true;
        }
        // Records may go to one subtask, but every subtask needs every event.
        for t in 0..self.senders.len() {
            self.deliver(t, StreamElement::Event(event)).await?;
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::exchange::{take_receivers, take_senders, LocalExchange};

    #[tokio::test]
    async fn key_by_sends_equal_keys_to_one_subtask() -> Result<()> {
        let mut exchange = LocalExchange::default();
        exchange.connect_typed::<u32>(0, 1, 3, 64);
        let senders = take_senders::<u32>(&mut exchange, 0, 0)?;
        let mut receivers: Vec<_> = (0..3)
            .map(|j| take_receivers::<u32>(&mut exchange, 0, j))
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
            while let Some(e) = crate::exchange::recv(rx).await {
                match e {
                    StreamElement::Batch(b) => {
                        for v in b.records {
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
