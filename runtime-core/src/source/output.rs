//! The runtime's [`ReaderOutput`]: records go into a batch buffer; each split has its own
//! watermark generator, and the reader's watermark is the minimum over its active splits.
//! Outputs that produce nothing for the idleness timeout are idle and do not hold the
//! watermark back; a split paused for watermark alignment does not count as idle meanwhile.

use std::time::Duration;

use tokio::time::Instant;
use weir_connector_api::source::{ReaderOutput, SourceOutput, SplitOutputId};
use weir_connector_api::watermark::{
    TimestampAssigner, Watermark, WatermarkGenerator, WatermarkOutput, WatermarkStrategy,
};

use crate::element::Event;
use crate::operator::NO_TIMESTAMP;

/// Event-time state of one output (a split, or the reader's own output).
// The flags are independent facts about one output, checked per record or per tick; folding
// them into one state enum would make the hot path match on combinations.
#[allow(clippy::struct_excessive_bools)]
struct Channel<T> {
    id: String,
    generator: Box<dyn WatermarkGenerator<T>>,
    watermark: Watermark,
    idle: bool,
    released: bool,
    used: bool,
    /// A record arrived since the last periodic emission (cheaper than a clock per record).
    active_since_tick: bool,
    /// When the output last produced, for idleness; frozen while paused for alignment.
    last_activity: Instant,
    /// Paused by watermark alignment: its idleness clock does not run (FLINK-36751).
    paused: bool,
}

impl<T> Channel<T> {
    fn new(
        id: String,
        generator: Box<dyn WatermarkGenerator<T>>,
        used: bool,
        now: Instant,
    ) -> Self {
        Channel {
            id,
            generator,
            watermark: Watermark::MIN,
            idle: false,
            released: false,
            used,
            active_since_tick: false,
            last_activity: now,
            paused: false,
        }
    }

    fn observe(
        &mut self,
        assigner: &mut dyn TimestampAssigner<T>,
        record: &T,
        ts: Option<i64>,
    ) -> i64 {
        let timestamp = assigner.extract_timestamp(record, ts);
        self.used = true;
        self.active_since_tick = true;
        // A record makes an idle output active again.
        self.idle = false;
        let mut out = ChannelOut {
            watermark: &mut self.watermark,
            idle: &mut self.idle,
        };
        self.generator.on_event(record, timestamp, &mut out);
        timestamp
    }
}

struct ChannelOut<'a> {
    watermark: &'a mut Watermark,
    idle: &'a mut bool,
}

impl WatermarkOutput for ChannelOut<'_> {
    fn emit_watermark(&mut self, watermark: Watermark) {
        // Only progress makes an idle output active; a periodic repeat does not.
        if watermark > *self.watermark {
            *self.watermark = watermark;
            *self.idle = false;
        }
    }
    fn mark_idle(&mut self) {
        *self.idle = true;
    }
    fn mark_active(&mut self) {
        *self.idle = false;
    }
}

/// Collects what a reader emits between two hand-offs to the chain.
pub(crate) struct RuntimeReaderOutput<T> {
    pub(crate) buffer: Vec<T>,
    /// The event timestamps of `buffer`'s records, up to its last record that has one (the
    /// rest have none); empty while no record of the batch has one, so a source without event
    /// time costs one comparison per record. [`Self::timestamps`] completes it.
    timestamps: Vec<i64>,
    strategy: WatermarkStrategy<T>,
    assigner: Box<dyn TimestampAssigner<T>>,
    main: Channel<T>,
    splits: Vec<Channel<T>>,
    emitted: Watermark,
    idle: bool,
    pending: Vec<Event>,
    idleness: Option<Duration>,
    /// The highest event time seen, for the event-time lag metrics.
    max_timestamp: i64,
    /// Since when the reader has had no active output (no split yet, or all finished).
    without_output_since: Option<Instant>,
    /// No active output for the idleness timeout: the reader is idle.
    idle_without_output: bool,
}

impl<T: Send + 'static> RuntimeReaderOutput<T> {
    pub(crate) fn new(strategy: WatermarkStrategy<T>, capacity: usize) -> Self {
        let assigner = strategy.create_timestamp_assigner();
        let main = Channel::new(
            String::new(),
            strategy.create_generator(),
            false,
            Instant::now(),
        );
        let idleness = strategy.idleness();
        RuntimeReaderOutput {
            buffer: Vec::with_capacity(capacity),
            timestamps: Vec::new(),
            strategy,
            assigner,
            main,
            splits: Vec::new(),
            emitted: Watermark::MIN,
            idle: false,
            pending: Vec::new(),
            idleness,
            max_timestamp: i64::MIN,
            without_output_since: Some(Instant::now()),
            idle_without_output: false,
        }
    }

    /// Runs the periodic watermark emission (with idleness detection) and queues a watermark or
    /// idleness change if the reader's combined watermark moved.
    pub(crate) fn on_periodic_emit(&mut self, now: Instant) {
        let idleness = self.idleness;
        for channel in std::iter::once(&mut self.main).chain(self.splits.iter_mut()) {
            if channel.released {
                continue;
            }
            if channel.active_since_tick {
                channel.active_since_tick = false;
                channel.last_activity = now;
            }
            let mut out = ChannelOut {
                watermark: &mut channel.watermark,
                idle: &mut channel.idle,
            };
            channel.generator.on_periodic_emit(&mut out);
            if let Some(timeout) = idleness {
                if channel.used
                    && !channel.paused
                    && now.duration_since(channel.last_activity) >= timeout
                {
                    channel.idle = true;
                }
            }
        }
        // A reader without splits is idle once it has had none for the idleness timeout
        // (never at once: at start every reader is briefly without splits, and marking it idle
        // then would let other inputs' watermarks race ahead of its first records).
        let has_output = self.main.used || self.splits.iter().any(|c| !c.released);
        if has_output {
            self.without_output_since = None;
            self.idle_without_output = false;
        } else {
            let since = *self.without_output_since.get_or_insert(now);
            self.idle_without_output = idleness.is_some_and(|t| now.duration_since(since) >= t);
        }
        self.update();
    }

    fn update(&mut self) {
        let active = std::iter::once(&self.main)
            .filter(|c| c.used)
            .chain(self.splits.iter().filter(|c| !c.released));
        let mut any = false;
        let mut all_idle = true;
        let mut min = Watermark::MAX;
        for c in active {
            any = true;
            if !c.idle {
                all_idle = false;
                min = min.min(c.watermark);
            }
        }
        let idle = if any {
            all_idle
        } else {
            self.idle_without_output
        };
        if idle != self.idle {
            self.idle = idle;
            self.pending.push(Event::Idle(idle));
        }
        if !idle && min > self.emitted && min != Watermark::MAX {
            self.emitted = min;
            self.pending.push(Event::Watermark(min));
        }
    }

    /// Events to send after the buffered records.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.pending)
    }

    /// The watermark emitted so far.
    pub(crate) fn current_watermark(&self) -> Watermark {
        self.emitted
    }

    /// Whether the reader as a whole is idle (no active output).
    pub(crate) fn is_idle(&self) -> bool {
        self.idle
    }

    /// The highest event time emitted so far (`i64::MIN` if none).
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// How many splits are paused for watermark alignment now.
    pub(crate) fn paused_splits(&self) -> usize {
        self.splits
            .iter()
            .filter(|c| c.paused && !c.released)
            .count()
    }

    /// Splits to pause (watermark above `max_allowed`) and to resume (paused, now at or below),
    /// for split-level watermark alignment (FLIP-217). Records the new paused state.
    pub(crate) fn align_splits(
        &mut self,
        max_allowed: Watermark,
        now: Instant,
    ) -> (Vec<String>, Vec<String>) {
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        for c in self.splits.iter_mut().filter(|c| !c.released) {
            if !c.paused && c.watermark > max_allowed {
                c.paused = true;
                pause.push(c.id.clone());
            } else if c.paused && c.watermark <= max_allowed {
                c.paused = false;
                // The idleness clock restarts: paused time is not idle time.
                c.last_activity = now;
                resume.push(c.id.clone());
            }
        }
        (pause, resume)
    }

    fn channel(&mut self, split: SplitOutputId) -> Option<&mut Channel<T>> {
        self.splits.get_mut(split.0 as usize)
    }

    /// Buffers a record with its event time. Kept small so that it inlines into the reader's
    /// loop: a record without a time costs one comparison.
    #[inline]
    fn buffer(&mut self, record: T, timestamp: i64) {
        // `timestamp != NO_TIMESTAMP`: only `i64::MIN - 1` overflows, and the overflow check
        // needs no 64-bit constant (one instruction fewer per record, measured).
        if timestamp.checked_sub(1).is_some() {
            self.buffer_timestamp(timestamp);
        }
        self.buffer.push(record);
    }

    /// Adds the event time of the record about to be buffered to the timestamp column; the
    /// records since the last one with a time have none.
    #[inline(never)]
    fn buffer_timestamp(&mut self, timestamp: i64) {
        self.timestamps.resize(self.buffer.len(), NO_TIMESTAMP);
        self.timestamps.push(timestamp);
    }

    /// The buffered records and, if any of them has an event time, their timestamps (one per
    /// record, [`NO_TIMESTAMP`] for those without). The caller leaves both empty.
    pub(crate) fn batch(&mut self) -> (&mut Vec<T>, Option<&mut Vec<i64>>) {
        if self.timestamps.is_empty() {
            return (&mut self.buffer, None);
        }
        self.timestamps.resize(self.buffer.len(), NO_TIMESTAMP);
        (&mut self.buffer, Some(&mut self.timestamps))
    }
}

impl<T: Send + 'static> SourceOutput<T> for RuntimeReaderOutput<T> {
    fn collect(&mut self, record: T) {
        let ts = self.main.observe(self.assigner.as_mut(), &record, None);
        self.max_timestamp = self.max_timestamp.max(ts);
        self.buffer(record, ts);
    }
    fn collect_with_timestamp(&mut self, record: T, timestamp: i64) {
        let ts = self
            .main
            .observe(self.assigner.as_mut(), &record, Some(timestamp));
        self.max_timestamp = self.max_timestamp.max(ts);
        self.buffer(record, ts);
    }
    fn emit_watermark(&mut self, watermark: Watermark) {
        self.main.used = true;
        self.main.watermark = self.main.watermark.max(watermark);
        self.update();
    }
    fn mark_idle(&mut self) {
        self.main.idle = true;
        self.update();
    }
    fn mark_active(&mut self) {
        self.main.idle = false;
        self.update();
    }
}

impl<T: Send + 'static> ReaderOutput<T> for RuntimeReaderOutput<T> {
    fn create_split_output(&mut self, split_id: &str) -> SplitOutputId {
        if let Some(i) = self
            .splits
            .iter()
            .position(|c| c.id == split_id && !c.released)
        {
            return SplitOutputId(i as u32);
        }
        self.splits.push(Channel::new(
            split_id.to_owned(),
            self.strategy.create_generator(),
            true,
            Instant::now(),
        ));
        SplitOutputId((self.splits.len() - 1) as u32)
    }

    #[inline]
    fn collect_for_split(&mut self, split: SplitOutputId, record: T, timestamp: Option<i64>) {
        let ts = match self.splits.get_mut(split.0 as usize) {
            Some(channel) => {
                let ts = channel.observe(self.assigner.as_mut(), &record, timestamp);
                self.max_timestamp = self.max_timestamp.max(ts);
                ts
            }
            None => timestamp.unwrap_or(NO_TIMESTAMP),
        };
        self.buffer(record, ts);
    }

    fn emit_split_watermark(&mut self, split: SplitOutputId, watermark: Watermark) {
        if let Some(c) = self.channel(split) {
            c.watermark = c.watermark.max(watermark);
        }
        self.update();
    }

    fn mark_split_idle(&mut self, split: SplitOutputId) {
        if let Some(c) = self.channel(split) {
            c.idle = true;
        }
        self.update();
    }

    fn mark_split_active(&mut self, split: SplitOutputId) {
        if let Some(c) = self.channel(split) {
            c.idle = false;
        }
        self.update();
    }

    fn release_split_output(&mut self, split: SplitOutputId) {
        if let Some(c) = self.channel(split) {
            c.released = true;
        }
        self.update();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy() -> WatermarkStrategy<i64> {
        WatermarkStrategy::<i64>::for_monotonous_timestamps()
            .with_timestamp_assigner(|v: &i64, _: Option<i64>| *v)
    }

    #[test]
    fn reader_watermark_is_the_minimum_over_active_splits() {
        let mut out = RuntimeReaderOutput::new(strategy(), 16);
        let a = out.create_split_output("a");
        let b = out.create_split_output("b");
        out.collect_for_split(a, 100, None);
        out.collect_for_split(b, 10, None);
        out.on_periodic_emit(Instant::now());
        assert_eq!(out.take_events(), vec![Event::Watermark(Watermark(9))]);
        out.release_split_output(b);
        out.on_periodic_emit(Instant::now());
        assert_eq!(out.take_events(), vec![Event::Watermark(Watermark(99))]);
        assert_eq!(out.buffer, vec![100, 10]);
    }

    #[test]
    fn records_keep_their_event_time_and_sources_without_any_keep_no_column() {
        let mut none = RuntimeReaderOutput::new(WatermarkStrategy::<i64>::no_watermarks(), 16);
        let a = none.create_split_output("a");
        none.collect_for_split(a, 1, None);
        none.collect(2);
        assert!(
            none.batch().1.is_none(),
            "no column while no record has a time"
        );
        // Records with a time between records without: each gets its own.
        none.collect_with_timestamp(3, 30);
        none.collect(4);
        none.collect_for_split(a, 5, Some(50));
        none.collect(6);
        let (records, timestamps) = none.batch();
        assert_eq!(*records, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(
            timestamps.map(|t| t.clone()),
            Some(vec![i64::MIN, i64::MIN, 30, i64::MIN, 50, i64::MIN])
        );
        // The strategy's assigner decides the time.
        let mut assigned = RuntimeReaderOutput::new(strategy(), 16);
        assigned.collect(7);
        assigned.collect_with_timestamp(8, 1);
        assert_eq!(assigned.batch().1.map(|t| t.clone()), Some(vec![7, 8]));
    }

    #[test]
    fn idle_splits_do_not_hold_the_watermark() {
        let mut out = RuntimeReaderOutput::new(strategy(), 16);
        let a = out.create_split_output("a");
        let b = out.create_split_output("b");
        out.collect_for_split(a, 50, None);
        out.mark_split_idle(b);
        out.on_periodic_emit(Instant::now());
        assert!(out.take_events().contains(&Event::Watermark(Watermark(49))));
        out.mark_split_idle(a);
        assert_eq!(out.take_events(), vec![Event::Idle(true)]);
    }

    #[test]
    fn a_reader_without_splits_is_idle_after_the_idleness_timeout() {
        let mut out = RuntimeReaderOutput::<i64>::new(
            strategy().with_idleness(Duration::from_millis(100)),
            16,
        );
        let start = Instant::now();
        out.on_periodic_emit(start);
        assert!(
            out.take_events().is_empty(),
            "not idle at once: a split may be on its way"
        );
        out.on_periodic_emit(start + Duration::from_millis(150));
        assert_eq!(out.take_events(), vec![Event::Idle(true)]);
        let a = out.create_split_output("a");
        out.collect_for_split(a, 5, None);
        out.on_periodic_emit(start + Duration::from_millis(160));
        assert_eq!(
            out.take_events(),
            vec![Event::Idle(false), Event::Watermark(Watermark(4))]
        );
        // Without an idleness timeout, a reader without splits never declares itself idle.
        let mut plain = RuntimeReaderOutput::<i64>::new(strategy(), 16);
        plain.on_periodic_emit(start + Duration::from_secs(3600));
        assert!(plain.take_events().is_empty());
    }

    #[test]
    fn idleness_timeout_marks_silent_splits_idle_but_not_paused_ones() {
        let strategy = strategy().with_idleness(Duration::from_millis(100));
        let mut out = RuntimeReaderOutput::new(strategy, 16);
        let a = out.create_split_output("a");
        let b = out.create_split_output("b");
        let start = Instant::now();
        out.collect_for_split(a, 10, None);
        out.collect_for_split(b, 500, None);
        out.on_periodic_emit(start);
        assert_eq!(out.current_watermark(), Watermark(9));
        // b runs ahead and is paused by alignment; a goes silent.
        assert_eq!(
            out.align_splits(Watermark(100), start),
            (vec!["b".to_string()], vec![])
        );
        out.on_periodic_emit(start + Duration::from_millis(150));
        // a is idle now; b is paused, not idle, so it alone sets the watermark.
        assert_eq!(out.current_watermark(), Watermark(499));
        assert!(!out.is_idle());
        // b resumes; its idleness clock restarts at the resume.
        let resumed_at = start + Duration::from_millis(500);
        assert_eq!(
            out.align_splits(Watermark(1000), resumed_at),
            (vec![], vec!["b".to_string()])
        );
        out.on_periodic_emit(resumed_at + Duration::from_millis(50));
        assert!(!out.is_idle(), "paused time does not count as idle time");
        out.on_periodic_emit(resumed_at + Duration::from_millis(150));
        assert!(out.is_idle());
        // Data comes back: active again.
        out.collect_for_split(a, 20, None);
        out.on_periodic_emit(resumed_at + Duration::from_millis(160));
        assert!(!out.is_idle());
    }
}
