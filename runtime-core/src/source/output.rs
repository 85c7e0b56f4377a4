//! The runtime's [`ReaderOutput`]: records go into a batch buffer; each split has its own
//! watermark generator, and the reader's watermark is the minimum over its active splits.

use weir_connector_api::source::{ReaderOutput, SourceOutput, SplitOutputId};
use weir_connector_api::watermark::{
    TimestampAssigner, Watermark, WatermarkGenerator, WatermarkOutput, WatermarkStrategy,
};

use crate::element::Event;

/// Event-time state of one output (a split, or the reader's own output).
struct Channel<T> {
    id: String,
    generator: Box<dyn WatermarkGenerator<T>>,
    watermark: Watermark,
    idle: bool,
    released: bool,
    used: bool,
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
    strategy: WatermarkStrategy<T>,
    assigner: Box<dyn TimestampAssigner<T>>,
    main: Channel<T>,
    splits: Vec<Channel<T>>,
    emitted: Watermark,
    idle: bool,
    pending: Vec<Event>,
}

impl<T: Send + 'static> RuntimeReaderOutput<T> {
    pub(crate) fn new(strategy: WatermarkStrategy<T>, capacity: usize) -> Self {
        let assigner = strategy.create_timestamp_assigner();
        let main = Channel {
            id: String::new(),
            generator: strategy.create_generator(),
            watermark: Watermark::MIN,
            idle: false,
            released: false,
            used: false,
        };
        RuntimeReaderOutput {
            buffer: Vec::with_capacity(capacity),
            strategy,
            assigner,
            main,
            splits: Vec::new(),
            emitted: Watermark::MIN,
            idle: false,
            pending: Vec::new(),
        }
    }

    fn observe(
        channel: &mut Channel<T>,
        assigner: &mut dyn TimestampAssigner<T>,
        record: &T,
        ts: Option<i64>,
    ) {
        let timestamp = assigner.extract_timestamp(record, ts);
        channel.used = true;
        let mut out = ChannelOut {
            watermark: &mut channel.watermark,
            idle: &mut channel.idle,
        };
        channel.generator.on_event(record, timestamp, &mut out);
        // A record makes an idle output active again.
        channel.idle = false;
    }

    /// Runs the periodic watermark emission and queues a watermark or idleness change if the
    /// reader's combined watermark moved.
    pub(crate) fn on_periodic_emit(&mut self) {
        for channel in std::iter::once(&mut self.main).chain(self.splits.iter_mut()) {
            if channel.released {
                continue;
            }
            let mut out = ChannelOut {
                watermark: &mut channel.watermark,
                idle: &mut channel.idle,
            };
            channel.generator.on_periodic_emit(&mut out);
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
        let idle = any && all_idle;
        if idle != self.idle {
            self.idle = idle;
            self.pending.push(Event::Idle(idle));
        }
        if any && !idle && min > self.emitted && min != Watermark::MAX {
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

    fn channel(&mut self, split: SplitOutputId) -> Option<&mut Channel<T>> {
        self.splits.get_mut(split.0 as usize)
    }
}

impl<T: Send + 'static> SourceOutput<T> for RuntimeReaderOutput<T> {
    fn collect(&mut self, record: T) {
        Self::observe(&mut self.main, self.assigner.as_mut(), &record, None);
        self.buffer.push(record);
    }
    fn collect_with_timestamp(&mut self, record: T, timestamp: i64) {
        Self::observe(
            &mut self.main,
            self.assigner.as_mut(),
            &record,
            Some(timestamp),
        );
        self.buffer.push(record);
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
        self.splits.push(Channel {
            id: split_id.to_owned(),
            generator: self.strategy.create_generator(),
            watermark: Watermark::MIN,
            idle: false,
            released: false,
            used: true,
        });
        SplitOutputId((self.splits.len() - 1) as u32)
    }

    fn collect_for_split(&mut self, split: SplitOutputId, record: T, timestamp: Option<i64>) {
        if let Some(channel) = self.splits.get_mut(split.0 as usize) {
            Self::observe(channel, self.assigner.as_mut(), &record, timestamp);
        }
        self.buffer.push(record);
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
    use std::time::Duration;

    #[test]
    fn reader_watermark_is_the_minimum_over_active_splits() {
        let strategy = WatermarkStrategy::<i64>::for_monotonous_timestamps()
            .with_timestamp_assigner(|v: &i64, _: Option<i64>| *v);
        let mut out = RuntimeReaderOutput::new(strategy, 16);
        let a = out.create_split_output("a");
        let b = out.create_split_output("b");
        out.collect_for_split(a, 100, None);
        out.collect_for_split(b, 10, None);
        out.on_periodic_emit();
        assert_eq!(out.take_events(), vec![Event::Watermark(Watermark(9))]);
        out.release_split_output(b);
        out.on_periodic_emit();
        assert_eq!(out.take_events(), vec![Event::Watermark(Watermark(99))]);
        assert_eq!(out.buffer, vec![100, 10]);
    }

    #[test]
    fn idle_splits_do_not_hold_the_watermark() {
        let strategy = WatermarkStrategy::<i64>::for_bounded_out_of_orderness(Duration::ZERO)
            .with_timestamp_assigner(|v: &i64, _: Option<i64>| *v);
        let mut out = RuntimeReaderOutput::new(strategy, 16);
        let a = out.create_split_output("a");
        let b = out.create_split_output("b");
        out.collect_for_split(a, 50, None);
        out.mark_split_idle(b);
        out.on_periodic_emit();
        // b became idle, a sets the pace.
        assert!(out.take_events().contains(&Event::Watermark(Watermark(49))));
        out.mark_split_idle(a);
        assert_eq!(out.take_events(), vec![Event::Idle(true)]);
    }
}
