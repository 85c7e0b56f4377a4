//! What travels between tasks: batches of records and in-band control events.

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::watermark::Watermark;

/// Whether a barrier belongs to a checkpoint or a savepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotType {
    /// A periodic checkpoint, owned by the runtime.
    Checkpoint,
    /// A savepoint, owned by the user.
    Savepoint,
}

/// A checkpoint barrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Barrier {
    /// The checkpoint it cuts.
    pub checkpoint_id: CheckpointId,
    /// Checkpoint or savepoint.
    pub kind: SnapshotType,
}

/// An in-band control event. Events never overtake records: they travel in the same channel as
/// the batch before them, and a batch is cut at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Event time advanced.
    Watermark(Watermark),
    /// The sender became idle (`true`) or active (`false`) for watermark purposes.
    Idle(bool),
    /// A checkpoint barrier.
    Barrier(Barrier),
    /// The sender's input ended (FLIP-147): no more records will come from it.
    EndOfData,
}

/// A batch of records, with each record's event time while some record of it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<T> {
    /// The records.
    pub records: Vec<T>,
    /// Empty when no record of the batch has an event time; else one entry per record, in
    /// epoch milliseconds ([`NO_TIMESTAMP`](crate::operator::NO_TIMESTAMP) for a record
    /// without one).
    pub timestamps: Vec<i64>,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Batch::untimed(Vec::new())
    }
}

impl<T> Batch<T> {
    /// A batch whose records carry no event time.
    pub fn untimed(records: Vec<T>) -> Self {
        Batch {
            records,
            timestamps: Vec::new(),
        }
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch has no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// One message in a channel between tasks.
#[derive(Debug)]
pub enum StreamElement<T> {
    /// A batch of records.
    Batch(Batch<T>),
    /// A control event.
    Event(Event),
}

/// A notification delivered to every operator of every task (not in-band).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notification {
    /// The checkpoint completed: its metadata is durable.
    CheckpointComplete(CheckpointId),
    /// The checkpoint was aborted.
    CheckpointAborted(CheckpointId),
}
