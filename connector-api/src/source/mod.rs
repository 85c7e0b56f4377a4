//! FLIP-27 sources: a [`Source`] ties together a [`SplitEnumerator`] (one per source, on the
//! coordinator) and [`SourceReader`]s (one per parallel subtask).
//!
//! The enumerator discovers splits and assigns them to readers; readers read their splits and
//! checkpoint them with their progress; splits assigned after a failed reader's last completed
//! checkpoint go back to the enumerator through [`SplitEnumerator::add_splits_back`].
//!
//! Most connectors build their reader from `SourceReaderBase` of the `weir-connector-base`
//! crate (`weir_connector_base::source::reader`). The complete example below is a source over
//! fixed in-memory ranges, written against the raw traits.
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use std::task::{Context, Poll};
//! use weir_connector_api::checkpoint::CheckpointId;
//! use weir_connector_api::error::Result;
//! use weir_connector_api::source::*;
//! use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};
//!
//! /// A split: the numbers `next..end`.
//! #[derive(Debug, Clone, PartialEq)]
//! struct RangeSplit { id: String, next: u64, end: u64 }
//! impl SourceSplit for RangeSplit {
//!     fn split_id(&self) -> &str { &self.id }
//! }
//!
//! struct RangeSplitSerializer;
//! impl VersionedSerializer<RangeSplit> for RangeSplitSerializer {
//!     fn version(&self) -> u32 { 1 }
//!     fn serialize(&self, s: &RangeSplit) -> Result<Vec<u8>, StateError> {
//!         let mut w = StateWriter::new();
//!         w.put_str(&s.id).put_u64(s.next).put_u64(s.end);
//!         w.finish()
//!     }
//!     fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<RangeSplit, StateError> {
//!         if version != 1 { return Err(StateError::unknown_version("range split", version, &[1])); }
//!         let mut r = StateReader::new(bytes);
//!         let split = RangeSplit { id: r.get_str()?.to_owned(), next: r.get_u64()?, end: r.get_u64()? };
//!         r.finish()?;
//!         Ok(split)
//!     }
//! }
//!
//! /// Hands every split to the first reader that asks.
//! struct Enumerator { pending: Vec<RangeSplit>, ctx: EnumeratorContext<RangeSplit, Infallible> }
//! impl SplitEnumerator for Enumerator {
//!     type Split = RangeSplit;
//!     type State = Vec<RangeSplit>;
//!     type AsyncResult = Infallible;
//!     fn handle_split_request(&mut self, subtask: usize) -> Result<()> {
//!         match self.pending.pop() {
//!             Some(split) => self.ctx.assign_splits(SplitsAssignment::single(subtask, split)),
//!             None => self.ctx.signal_no_more_splits(subtask),
//!         }
//!     }
//!     fn add_splits_back(&mut self, splits: Vec<RangeSplit>, _subtask: usize) -> Result<()> {
//!         self.pending.extend(splits);
//!         Ok(())
//!     }
//!     fn add_reader(&mut self, _subtask: usize) -> Result<()> { Ok(()) }
//!     fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> Result<Vec<RangeSplit>> {
//!         Ok(self.pending.clone())
//!     }
//!     fn handle_async_result(&mut self, result: Infallible) -> Result<()> { match result {} }
//! }
//!
//! /// Emits numbers from its splits, asking for a new split when it has none.
//! struct Reader { splits: Vec<RangeSplit>, no_more: bool, ctx: Arc<dyn SourceReaderContext> }
//! impl SourceReader for Reader {
//!     type Output = u64;
//!     type Split = RangeSplit;
//!     fn start(&mut self) -> Result<()> { self.ctx.send_split_request() }
//!     fn poll_next<O: ReaderOutput<u64>>(&mut self, output: &mut O) -> Result<InputStatus> {
//!         let Some(split) = self.splits.last_mut() else {
//!             return Ok(if self.no_more { InputStatus::EndOfInput } else { InputStatus::NothingAvailable });
//!         };
//!         if split.next < split.end {
//!             output.collect(split.next);
//!             split.next += 1;
//!         } else {
//!             self.splits.pop();
//!             self.ctx.send_split_request()?;
//!         }
//!         Ok(InputStatus::MoreAvailable)
//!     }
//!     fn poll_available(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
//!         // New splits arrive through add_splits, which the runtime calls between polls.
//!         Poll::Pending
//!     }
//!     fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> Result<Vec<RangeSplit>> {
//!         Ok(self.splits.clone())
//!     }
//!     fn add_splits(&mut self, splits: Vec<RangeSplit>) -> Result<()> {
//!         self.splits.extend(splits);
//!         Ok(())
//!     }
//!     fn notify_no_more_splits(&mut self) { self.no_more = true; }
//! }
//!
//! struct RangeSource { splits: Vec<RangeSplit> }
//! impl Source for RangeSource {
//!     type Output = u64;
//!     type Split = RangeSplit;
//!     type Reader = Reader;
//!     type Enumerator = Enumerator;
//!     fn boundedness(&self) -> Boundedness { Boundedness::Bounded }
//!     fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<Reader> {
//!         Ok(Reader { splits: Vec::new(), no_more: false, ctx })
//!     }
//!     fn create_enumerator(&self, ctx: EnumeratorContext<RangeSplit, Infallible>) -> Result<Enumerator> {
//!         Ok(Enumerator { pending: self.splits.clone(), ctx })
//!     }
//!     fn restore_enumerator(&self, ctx: EnumeratorContext<RangeSplit, Infallible>, state: Vec<RangeSplit>) -> Result<Enumerator> {
//!         Ok(Enumerator { pending: state, ctx })
//!     }
//!     fn split_serializer(&self) -> Arc<dyn VersionedSerializer<RangeSplit>> {
//!         Arc::new(RangeSplitSerializer)
//!     }
//!     fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<Vec<RangeSplit>>> {
//!         Arc::new(weir_connector_api::state::VecSerializer::new(RangeSplitSerializer))
//!     }
//! }
//!
//! let split = RangeSplit { id: "r0".into(), next: 3, end: 9 };
//! let bytes = RangeSplitSerializer.serialize(&split).unwrap();
//! assert_eq!(RangeSplitSerializer.deserialize(1, &bytes).unwrap(), split);
//! ```

mod enumerator;
mod flatten;
mod output;
mod reader;

use std::any::Any;
use std::fmt;
use std::sync::Arc;

pub use enumerator::{
    EnumeratorContext, SplitEnumerator, SplitEnumeratorContext, SplitsAssignment,
};
#[allow(deprecated)]
pub use flatten::{FlattenOutput, FlattenReader, FlattenSource};
pub use output::{
    CollectedEvent, CollectingOutput, ReaderOutput, SourceOutput, SplitOutput, SplitOutputId,
};
pub use reader::{
    InputStatus, PausableSourceReader, SourceReader, SourceReaderContext, SourceReaderExt,
};

use crate::error::Result;
use crate::state::VersionedSerializer;

/// Whether a source ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Boundedness {
    /// The source reads a finite input and then ends (FLIP-147 shutdown follows).
    Bounded,
    /// The source may run forever.
    ContinuousUnbounded,
}

/// A unit of work of a source (a partition, a file, a range) with its reading progress.
pub trait SourceSplit: Clone + Send + Sync + fmt::Debug + 'static {
    /// A stable id: the same split has the same id across restarts and rescaling.
    fn split_id(&self) -> &str;
}

/// A custom message between a source's enumerator and its readers.
pub struct SourceEvent(Box<dyn Any + Send>);

impl SourceEvent {
    /// Wraps a value.
    pub fn new<E: Any + Send>(event: E) -> Self {
        SourceEvent(Box::new(event))
    }

    /// The value, if it has type `E`; otherwise the event is given back.
    pub fn downcast<E: Any + Send>(self) -> std::result::Result<E, SourceEvent> {
        self.0.downcast::<E>().map(|e| *e).map_err(SourceEvent)
    }

    /// A reference to the value, if it has type `E`.
    pub fn downcast_ref<E: Any + Send>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }
}

impl fmt::Debug for SourceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SourceEvent(..)")
    }
}

/// The enumerator state type of a source.
pub type EnumeratorState<S> = <<S as Source>::Enumerator as SplitEnumerator>::State;

/// The context type handed to a source's enumerator.
pub type EnumeratorContextOf<S> = EnumeratorContext<
    <S as Source>::Split,
    <<S as Source>::Enumerator as SplitEnumerator>::AsyncResult,
>;

/// A FLIP-27 source: the factory of its enumerator and readers, and of the serializers of its
/// checkpointed state. See the module docs for a complete example.
pub trait Source: Send + Sync + 'static {
    /// The records this source emits.
    type Output: Send + 'static;
    /// The split type.
    type Split: SourceSplit;
    /// The reader run in every subtask.
    type Reader: SourceReader<Output = Self::Output, Split = Self::Split>;
    /// The enumerator run once per source.
    type Enumerator: SplitEnumerator<Split = Self::Split>;

    /// Whether this source ends.
    fn boundedness(&self) -> Boundedness;

    /// Creates the reader of one subtask.
    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<Self::Reader>;

    /// Creates a fresh enumerator.
    fn create_enumerator(&self, ctx: EnumeratorContextOf<Self>) -> Result<Self::Enumerator>;

    /// Creates an enumerator from checkpointed state.
    fn restore_enumerator(
        &self,
        ctx: EnumeratorContextOf<Self>,
        state: EnumeratorState<Self>,
    ) -> Result<Self::Enumerator>;

    /// Serializes splits (reader state and split assignment).
    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<Self::Split>>;

    /// Serializes the enumerator's checkpoint.
    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<EnumeratorState<Self>>>;
}
