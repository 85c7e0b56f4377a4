//! Where readers put records: the reader output and its per-split views.

use crate::watermark::Watermark;

/// The sink of a reader or of one split: records with optional timestamps, watermarks and
/// idleness.
pub trait SourceOutput<T> {
    /// Emits a record without a source timestamp.
    fn collect(&mut self, record: T);
    /// Emits a record with the timestamp the source attached (e.g. Kafka's record timestamp).
    fn collect_with_timestamp(&mut self, record: T, timestamp: i64);
    /// Emits a watermark directly (sources that know their event-time progress).
    fn emit_watermark(&mut self, watermark: Watermark);
    /// This output will produce nothing for a while; it does not hold back watermarks.
    fn mark_idle(&mut self);
    /// This output produces again.
    fn mark_active(&mut self);
}

/// A handle to one split's output inside a [`ReaderOutput`]; cheap to copy and compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SplitOutputId(pub u32);

/// The output of a reader, with a separate output per split so each split gets its own
/// watermark generator (per-split watermarks): the reader's watermark is the minimum over its
/// active splits. Implemented by the runtime.
pub trait ReaderOutput<T>: SourceOutput<T> {
    /// Creates (or returns the existing) output for a split.
    fn create_split_output(&mut self, split_id: &str) -> SplitOutputId;
    /// Emits a record of a split.
    fn collect_for_split(&mut self, split: SplitOutputId, record: T, timestamp: Option<i64>);
    /// Emits a watermark for a split.
    fn emit_split_watermark(&mut self, split: SplitOutputId, watermark: Watermark);
    /// Marks a split idle.
    fn mark_split_idle(&mut self, split: SplitOutputId);
    /// Marks a split active.
    fn mark_split_active(&mut self, split: SplitOutputId);
    /// The split finished or left this reader: it no longer holds back the watermark.
    fn release_split_output(&mut self, split: SplitOutputId);
}

impl<T, O: SourceOutput<T> + ?Sized> SourceOutput<T> for &mut O {
    fn collect(&mut self, record: T) {
        (**self).collect(record);
    }
    fn collect_with_timestamp(&mut self, record: T, timestamp: i64) {
        (**self).collect_with_timestamp(record, timestamp);
    }
    fn emit_watermark(&mut self, watermark: Watermark) {
        (**self).emit_watermark(watermark);
    }
    fn mark_idle(&mut self) {
        (**self).mark_idle();
    }
    fn mark_active(&mut self) {
        (**self).mark_active();
    }
}

/// Lets a type-erased reader hand `&mut dyn ReaderOutput<T>` to any typed reader.
impl<T, O: ReaderOutput<T> + ?Sized> ReaderOutput<T> for &mut O {
    fn create_split_output(&mut self, split_id: &str) -> SplitOutputId {
        (**self).create_split_output(split_id)
    }
    fn collect_for_split(&mut self, split: SplitOutputId, record: T, timestamp: Option<i64>) {
        (**self).collect_for_split(split, record, timestamp);
    }
    fn emit_split_watermark(&mut self, split: SplitOutputId, watermark: Watermark) {
        (**self).emit_split_watermark(split, watermark);
    }
    fn mark_split_idle(&mut self, split: SplitOutputId) {
        (**self).mark_split_idle(split);
    }
    fn mark_split_active(&mut self, split: SplitOutputId) {
        (**self).mark_split_active(split);
    }
    fn release_split_output(&mut self, split: SplitOutputId) {
        (**self).release_split_output(split);
    }
}

/// A [`SourceOutput`] view of one split of a [`ReaderOutput`].
#[derive(Debug)]
pub struct SplitOutput<'a, O: ?Sized> {
    output: &'a mut O,
    split: SplitOutputId,
}

impl<'a, O: ?Sized> SplitOutput<'a, O> {
    /// The view of `split` in `output`.
    pub fn new(output: &'a mut O, split: SplitOutputId) -> Self {
        SplitOutput { output, split }
    }
}

impl<T, O: ReaderOutput<T> + ?Sized> SourceOutput<T> for SplitOutput<'_, O> {
    fn collect(&mut self, record: T) {
        self.output.collect_for_split(self.split, record, None);
    }
    fn collect_with_timestamp(&mut self, record: T, timestamp: i64) {
        self.output
            .collect_for_split(self.split, record, Some(timestamp));
    }
    fn emit_watermark(&mut self, watermark: Watermark) {
        self.output.emit_split_watermark(self.split, watermark);
    }
    fn mark_idle(&mut self) {
        self.output.mark_split_idle(self.split);
    }
    fn mark_active(&mut self) {
        self.output.mark_split_active(self.split);
    }
}

/// One thing a [`CollectingOutput`] saw.
#[derive(Debug, Clone, PartialEq)]
pub enum CollectedEvent<T> {
    /// A record, with its split (if emitted through a split output) and timestamp.
    Record {
        /// The split id, if the record came through a split output.
        split: Option<String>,
        /// The record.
        record: T,
        /// Its source timestamp.
        timestamp: Option<i64>,
    },
    /// A watermark, with its split if it was a split watermark.
    Watermark {
        /// The split id, if it was a split watermark.
        split: Option<String>,
        /// The watermark.
        watermark: Watermark,
    },
    /// An idleness change (`true` = idle), with its split if any.
    Idle {
        /// The split id, if it was a split's idleness.
        split: Option<String>,
        /// Whether the output became idle (`true`) or active (`false`).
        idle: bool,
    },
    /// A split output was released.
    Released(String),
}

/// A [`ReaderOutput`] that records everything in memory in order: for unit tests of readers and
/// for draining a reader without a runtime.
#[derive(Debug)]
pub struct CollectingOutput<T> {
    events: Vec<CollectedEvent<T>>,
    splits: Vec<String>,
}

impl<T> Default for CollectingOutput<T> {
    fn default() -> Self {
        CollectingOutput {
            events: Vec::new(),
            splits: Vec::new(),
        }
    }
}

impl<T> CollectingOutput<T> {
    /// An empty output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything seen, in order.
    pub fn events(&self) -> &[CollectedEvent<T>] {
        &self.events
    }

    /// Takes everything seen so far.
    pub fn take_events(&mut self) -> Vec<CollectedEvent<T>> {
        std::mem::take(&mut self.events)
    }

    /// The records seen, in order, with their split ids.
    pub fn records(&self) -> impl Iterator<Item = (Option<&str>, &T)> {
        self.events.iter().filter_map(|e| match e {
            CollectedEvent::Record { split, record, .. } => Some((split.as_deref(), record)),
            _ => None,
        })
    }

    fn split_name(&self, split: SplitOutputId) -> Option<String> {
        self.splits.get(split.0 as usize).cloned()
    }
}

impl<T> SourceOutput<T> for CollectingOutput<T> {
    fn collect(&mut self, record: T) {
        self.events.push(CollectedEvent::Record {
            split: None,
            record,
            timestamp: None,
        });
    }
    fn collect_with_timestamp(&mut self, record: T, timestamp: i64) {
        self.events.push(CollectedEvent::Record {
            split: None,
            record,
            timestamp: Some(timestamp),
        });
    }
    fn emit_watermark(&mut self, watermark: Watermark) {
        self.events.push(CollectedEvent::Watermark {
            split: None,
            watermark,
        });
    }
    fn mark_idle(&mut self) {
        self.events.push(CollectedEvent::Idle {
            split: None,
            idle: true,
        });
    }
    fn mark_active(&mut self) {
        self.events.push(CollectedEvent::Idle {
            split: None,
            idle: false,
        });
    }
}

impl<T> ReaderOutput<T> for CollectingOutput<T> {
    fn create_split_output(&mut self, split_id: &str) -> SplitOutputId {
        if let Some(i) = self.splits.iter().position(|s| s == split_id) {
            return SplitOutputId(i as u32);
        }
        self.splits.push(split_id.to_owned());
        SplitOutputId((self.splits.len() - 1) as u32)
    }
    fn collect_for_split(&mut self, split: SplitOutputId, record: T, timestamp: Option<i64>) {
        let split = self.split_name(split);
        self.events.push(CollectedEvent::Record {
            split,
            record,
            timestamp,
        });
    }
    fn emit_split_watermark(&mut self, split: SplitOutputId, watermark: Watermark) {
        let split = self.split_name(split);
        self.events
            .push(CollectedEvent::Watermark { split, watermark });
    }
    fn mark_split_idle(&mut self, split: SplitOutputId) {
        let split = self.split_name(split);
        self.events.push(CollectedEvent::Idle { split, idle: true });
    }
    fn mark_split_active(&mut self, split: SplitOutputId) {
        let split = self.split_name(split);
        self.events
            .push(CollectedEvent::Idle { split, idle: false });
    }
    fn release_split_output(&mut self, split: SplitOutputId) {
        if let Some(name) = self.split_name(split) {
            self.events.push(CollectedEvent::Released(name));
        }
    }
}
