//! The input gate of a task: merges its input channels, handles barriers (aligned, counted or
//! unaligned, see [`GateAlignment`]) and merges watermarks.
//!
//! Every barrier has a place in each channel's stream. An in-band barrier is at its place when
//! it arrives; an overtaking barrier (unaligned modes) arrives early and says how many elements
//! still come before its place. Aligned, a channel whose barrier reached its place is blocked
//! until every unfinished channel's did, then the task snapshots. Unaligned, the task snapshots
//! at the first barrier and the gate records, as channel state, the records each channel
//! delivers before its barrier's place; the task acknowledges once every channel got there.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::watermark::Watermark;

use super::channel_state::Recorded;
use super::{BarrierAlignment, BoxReceiver, ChannelStateCodec, CheckpointingMode, Received};
use crate::element::{Barrier, Batch, Event, SnapshotType, StreamElement};
use crate::error::{Result, RuntimeError};
use crate::load::BarrierTiming;

/// How a gate treats barriers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateAlignment {
    /// At-least-once: barriers are counted; no channel waits.
    Counted,
    /// Exactly-once, aligned.
    Aligned,
    /// Exactly-once, unaligned: snapshot at the first barrier (savepoints stay aligned).
    Unaligned,
    /// Exactly-once, aligned until alignment has taken this long, then unaligned.
    AlignedWithTimeout(Duration),
}

impl GateAlignment {
    /// The gate's behaviour for a job's mode and barrier alignment.
    pub(crate) fn of(mode: CheckpointingMode, alignment: BarrierAlignment) -> Self {
        match (mode, alignment) {
            (CheckpointingMode::AtLeastOnce, _) => GateAlignment::Counted,
            (CheckpointingMode::ExactlyOnce, BarrierAlignment::Aligned) => GateAlignment::Aligned,
            (CheckpointingMode::ExactlyOnce, BarrierAlignment::Unaligned) => {
                GateAlignment::Unaligned
            }
            (CheckpointingMode::ExactlyOnce, BarrierAlignment::AlignedWithTimeout(d))
                if d.is_zero() =>
            {
                GateAlignment::Unaligned
            }
            (CheckpointingMode::ExactlyOnce, BarrierAlignment::AlignedWithTimeout(d)) => {
                GateAlignment::AlignedWithTimeout(d)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelState {
    Open,
    Blocked,
    Finished,
}

struct Channel<T> {
    rx: BoxReceiver<T>,
    state: ChannelState,
    watermark: Watermark,
    idle: bool,
    /// For the pending barrier: `None` before it arrived on this channel, `Some(n)` when `n`
    /// elements still come before its place (`Some(0)`: at or past it).
    ahead: Option<usize>,
    /// Unaligned: how many of the `ahead` elements were recorded already, straight from the
    /// channel's queue when the barrier came (they are not recorded again when delivered).
    already: usize,
    /// The records in flight recorded for the pending unaligned checkpoint.
    recorded: Recorded,
}

impl<T> Channel<T> {
    /// Whether the pending barrier no longer waits for this channel: aligned, it reached its
    /// place; unaligned, every record before its place is recorded.
    fn passed(&self, phase: Phase) -> bool {
        match (self.state, phase, self.ahead) {
            (ChannelState::Finished, _, _) => true,
            (_, Phase::Unaligned, Some(n)) => n == self.already,
            (_, _, ahead) => ahead == Some(0),
        }
    }
}

/// What an input gate delivers to its task.
#[derive(Debug)]
pub(crate) enum GateEvent<T> {
    /// Records, with their event times if some have one.
    Batch(Batch<T>),
    /// The combined watermark advanced.
    Watermark(Watermark),
    /// Every input is idle (`true`) or one became active again (`false`).
    Idle(bool),
    /// A barrier reached its place on every unfinished channel (aligned or counted): snapshot
    /// and acknowledge.
    Barrier(Barrier),
    /// An unaligned barrier: snapshot now; the acknowledgement waits for the checkpoint's
    /// [`GateEvent::ChannelState`].
    UnalignedBarrier(Barrier),
    /// The records that were in flight at the last unaligned barrier (one entry per channel
    /// that had some), to acknowledge with the snapshot.
    ChannelState(CheckpointId, Vec<VersionedBytes>),
    /// Every channel delivered end of data.
    EndOfData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Counting,
    Aligning,
    Unaligned,
}

/// The barrier the gate is handling.
struct Pending {
    barrier: Barrier,
    /// When its first barrier arrived.
    first: Instant,
    phase: Phase,
}

/// Merges the input channels of one subtask.
pub(crate) struct InputGate<T> {
    channels: Vec<Channel<T>>,
    alignment: GateAlignment,
    /// Writes records in flight as channel state (needed unless aligned or counted).
    codec: Option<ChannelStateCodec<T>>,
    pending: Option<Pending>,
    /// The last barrier handled: older ones that arrive late are ignored.
    last: Option<CheckpointId>,
    /// The alignment timeout of the pending barrier.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The timing of the last barrier released, until the task takes it.
    released: Option<BarrierTiming>,
    /// Events ready for the task, in order.
    ready: VecDeque<GateEvent<T>>,
    watermark: Watermark,
    all_idle: bool,
    start: usize,
    ended: bool,
}

impl<T: Send + 'static> InputGate<T> {
    pub(crate) fn new(
        receivers: Vec<BoxReceiver<T>>,
        alignment: GateAlignment,
        codec: Option<ChannelStateCodec<T>>,
    ) -> Self {
        InputGate {
            channels: receivers
                .into_iter()
                .map(|rx| Channel {
                    rx,
                    state: ChannelState::Open,
                    watermark: Watermark::MIN,
                    idle: false,
                    ahead: None,
                    already: 0,
                    recorded: Recorded::default(),
                })
                .collect(),
            alignment,
            codec,
            pending: None,
            last: None,
            timer: None,
            released: None,
            ready: VecDeque::new(),
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

    fn watermark_update(&mut self) {
        let Some(combined) = self.combined_watermark() else {
            return;
        };
        if combined > self.watermark {
            self.watermark = combined;
            self.ready.push_back(GateEvent::Watermark(combined));
        }
    }

    fn idle_update(&mut self) -> bool {
        let all_idle = self
            .channels
            .iter()
            .filter(|c| c.state != ChannelState::Finished)
            .all(|c| c.idle)
            && self.unfinished() > 0;
        if all_idle != self.all_idle {
            self.all_idle = all_idle;
            self.ready.push_back(GateEvent::Idle(all_idle));
            return true;
        }
        false
    }

    /// Forgets the pending barrier: a newer one overtook it, so it cannot complete here.
    fn abandon(&mut self) {
        for c in &mut self.channels {
            if c.state == ChannelState::Blocked {
                c.state = ChannelState::Open;
            }
            c.ahead = None;
            c.already = 0;
            c.recorded.clear();
        }
        self.pending = None;
        self.timer = None;
    }

    /// Unaligned: records, straight from the queue of channel `index`, the elements its
    /// barrier overtook that are not recorded yet.
    fn record_overtaken(&mut self, index: usize) -> Result<()> {
        let (Some(codec), Some(c)) = (&self.codec, self.channels.get_mut(index)) else {
            return Ok(());
        };
        let Some(n) = c.ahead.filter(|n| *n > c.already) else {
            return Ok(());
        };
        let mut failed = None;
        let recorded = &mut c.recorded;
        let shown = c.rx.visit_queued(n, &mut |element| {
            if let (StreamElement::Batch(batch), None) = (element, &failed) {
                failed = codec.record(batch, recorded).err();
            }
        });
        if let Some(e) = failed {
            return Err(channel_state_error(&e));
        }
        c.already = shown;
        Ok(())
    }

    /// Barrier `barrier` arrived on channel `index`, `overtaken` elements before its place.
    fn on_barrier(&mut self, index: usize, barrier: Barrier, overtaken: usize) -> Result<()> {
        let id = barrier.checkpoint_id;
        if self.last.is_some_and(|last| last >= id) {
            return Ok(());
        }
        match &self.pending {
            Some(p) if p.barrier.checkpoint_id > id => return Ok(()),
            Some(p) if p.barrier.checkpoint_id < id => self.abandon(),
            _ => {}
        }
        if self.pending.is_none() {
            let savepoint = barrier.kind == SnapshotType::Savepoint;
            let phase = match self.alignment {
                GateAlignment::Counted => Phase::Counting,
                _ => Phase::Aligning,
            };
            if let (GateAlignment::AlignedWithTimeout(timeout), false) = (self.alignment, savepoint)
            {
                self.timer = Some(Box::pin(tokio::time::sleep(timeout)));
            }
            self.pending = Some(Pending {
                barrier,
                first: Instant::now(),
                phase,
            });
        }
        if let Some(c) = self.channels.get_mut(index) {
            c.ahead = Some(overtaken);
            c.already = 0;
        }
        if overtaken == 0 {
            self.on_place(index);
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.phase == Phase::Unaligned)
        {
            self.record_overtaken(index)?;
        }
        let unaligned_now = self.alignment == GateAlignment::Unaligned
            && barrier.kind == SnapshotType::Checkpoint
            && self
                .pending
                .as_ref()
                .is_some_and(|p| p.phase == Phase::Aligning);
        if unaligned_now {
            self.go_unaligned()?;
        }
        self.check_pending()
    }

    /// Channel `index` reached the pending barrier's place.
    fn on_place(&mut self, index: usize) {
        let aligning = self
            .pending
            .as_ref()
            .is_some_and(|p| p.phase == Phase::Aligning);
        if let Some(c) = self.channels.get_mut(index) {
            if aligning && c.state == ChannelState::Open {
                c.state = ChannelState::Blocked;
            }
        }
    }

    /// Snapshots now and records what is still in flight before each channel's barrier.
    fn go_unaligned(&mut self) -> Result<()> {
        if self.codec.is_none() {
            return Err(RuntimeError::InvalidJob(vec![
                "unaligned checkpoints need a channel-state serializer for every stream that \
                 enters an exchange: declare one with DataStream::channel_state_serializer, or \
                 use aligned barriers"
                    .into(),
            ]));
        }
        let Some(p) = self.pending.as_mut() else {
            return Ok(());
        };
        p.phase = Phase::Unaligned;
        self.timer = None;
        self.released = Some(BarrierTiming {
            first_barrier: p.first,
            alignment: p.first.elapsed(),
            in_flight_bytes: Some(0),
        });
        let barrier = p.barrier;
        for c in &mut self.channels {
            if c.state == ChannelState::Blocked {
                c.state = ChannelState::Open;
            }
            c.already = 0;
            c.recorded.clear();
        }
        for index in 0..self.channels.len() {
            self.record_overtaken(index)?;
        }
        self.ready.push_back(GateEvent::UnalignedBarrier(barrier));
        Ok(())
    }

    /// Completes the pending barrier once no channel holds it back.
    fn check_pending(&mut self) -> Result<()> {
        let Some(p) = &self.pending else {
            return Ok(());
        };
        let phase = p.phase;
        if !self.channels.iter().all(|c| c.passed(phase)) {
            return Ok(());
        }
        let (barrier, first, phase) = (p.barrier, p.first, p.phase);
        self.pending = None;
        self.timer = None;
        self.last = Some(barrier.checkpoint_id);
        let mut entries = Vec::new();
        for c in &mut self.channels {
            if c.state == ChannelState::Blocked {
                c.state = ChannelState::Open;
            }
            c.ahead = None;
            c.already = 0;
            let recorded = std::mem::take(&mut c.recorded);
            if phase == Phase::Unaligned && !recorded.is_empty() {
                if let Some(codec) = &self.codec {
                    entries.push(
                        codec
                            .encode(&recorded)
                            .map_err(|e| channel_state_error(&e))?,
                    );
                }
            }
        }
        match phase {
            Phase::Unaligned => {
                self.ready
                    .push_back(GateEvent::ChannelState(barrier.checkpoint_id, entries));
            }
            Phase::Counting | Phase::Aligning => {
                self.released = Some(BarrierTiming {
                    first_barrier: first,
                    alignment: first.elapsed(),
                    in_flight_bytes: None,
                });
                self.ready.push_back(GateEvent::Barrier(barrier));
            }
        }
        Ok(())
    }

    fn on_received(&mut self, index: usize, received: Received<T>) -> Result<()> {
        match received {
            Received::Overtaking { barrier, overtaken } => {
                self.on_barrier(index, barrier, overtaken)
            }
            Received::Element(element) => self.on_element(index, element),
            Received::Failed(e) => Err(e),
        }
    }

    fn on_element(&mut self, index: usize, element: StreamElement<T>) -> Result<()> {
        let unaligned = self
            .pending
            .as_ref()
            .is_some_and(|p| p.phase == Phase::Unaligned);
        let Some(c) = self.channels.get_mut(index) else {
            return Ok(());
        };
        // Unaligned, an element before the pending barrier's place (or before its barrier
        // came) is recorded, unless it was recorded from the queue when the barrier came.
        let record = unaligned
            && match c.ahead {
                Some(0) => false,
                Some(_) if c.already > 0 => {
                    c.already -= 1;
                    false
                }
                None | Some(_) => true,
            };
        let reached = match c.ahead {
            Some(n) if n > 0 => {
                c.ahead = Some(n - 1);
                n == 1
            }
            _ => false,
        };
        match element {
            StreamElement::Batch(batch) => {
                if record && !batch.is_empty() {
                    if let Some(codec) = &self.codec {
                        codec
                            .record(&batch, &mut c.recorded)
                            .map_err(|e| channel_state_error(&e))?;
                    }
                }
                self.ready.push_back(GateEvent::Batch(batch));
            }
            StreamElement::Event(Event::Watermark(w)) => {
                c.watermark = c.watermark.max(w);
                self.watermark_update();
            }
            StreamElement::Event(Event::Idle(idle)) => {
                c.idle = idle;
                if !self.idle_update() {
                    self.watermark_update();
                }
            }
            StreamElement::Event(Event::Barrier(barrier)) => {
                self.on_barrier(index, barrier, 0)?;
            }
            StreamElement::Event(Event::EndOfData) => {
                c.state = ChannelState::Finished;
                self.check_pending()?;
                if self.unfinished() == 0 {
                    self.ended = true;
                    self.ready.push_back(GateEvent::EndOfData);
                } else {
                    self.watermark_update();
                }
                return Ok(());
            }
        }
        if reached {
            self.on_place(index);
            self.check_pending()?;
        }
        Ok(())
    }

    /// Checkpoint `id` was aborted (Flink's late barriers): the gate stops aligning or
    /// recording it (or an older one), unblocking its channels, drops what it readied for it,
    /// and ignores its barriers that still come, so no task snapshots a checkpoint that can
    /// no longer complete.
    pub(crate) fn abort(&mut self, id: CheckpointId) {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.barrier.checkpoint_id <= id)
        {
            self.abandon();
        }
        self.ready.retain(|event| match event {
            GateEvent::Barrier(b) | GateEvent::UnalignedBarrier(b) => b.checkpoint_id > id,
            GateEvent::ChannelState(c, _) => *c > id,
            _ => true,
        });
        let readied = self.ready.iter().any(|event| {
            matches!(
                event,
                GateEvent::Barrier(_) | GateEvent::UnalignedBarrier(_)
            )
        });
        if !readied {
            self.released = None; // the timing of a barrier dropped above
        }
        self.last = Some(self.last.map_or(id, |last| last.max(id)));
    }

    /// When the barrier last delivered as [`GateEvent::Barrier`] or
    /// [`GateEvent::UnalignedBarrier`] first arrived, and how long the gate aligned it.
    pub(crate) fn take_barrier_timing(&mut self) -> Option<BarrierTiming> {
        self.released.take()
    }

    /// The next event. Cancel-safe: nothing is lost if the future is dropped.
    pub(crate) async fn next(&mut self) -> Result<GateEvent<T>> {
        if let Some(event) = self.ready.pop_front() {
            return Ok(event);
        }
        if self.ended {
            return Ok(GateEvent::EndOfData);
        }
        poll_fn(|cx| {
            if let Some(event) = self.ready.pop_front() {
                return Poll::Ready(Ok(event));
            }
            if let Some(timer) = self.timer.as_mut() {
                if timer.as_mut().poll(cx).is_ready() {
                    self.timer = None;
                    if let Err(e) = self.go_unaligned().and_then(|()| self.check_pending()) {
                        return Poll::Ready(Err(e));
                    }
                    if let Some(event) = self.ready.pop_front() {
                        return Poll::Ready(Ok(event));
                    }
                }
            }
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
                        Poll::Ready(Some(received)) => {
                            self.start = (i + 1) % n;
                            progressed = true;
                            if let Err(e) = self.on_received(i, received) {
                                return Poll::Ready(Err(e));
                            }
                            if let Some(event) = self.ready.pop_front() {
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

fn channel_state_error(e: &weir_connector_api::state::StateError) -> RuntimeError {
    RuntimeError::InvalidJob(vec![format!(
        "a record in flight could not be written as channel state for an unaligned \
         checkpoint: {e}; fix the stream's channel-state serializer, or use aligned barriers"
    )])
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
