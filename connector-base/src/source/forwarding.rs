//! [`ForwardingSourceReader`]: a reader wrapper states what it changes and forwards the rest.
//!
//! A wrapper around a [`SourceReader`] (rate limiting, flattening, offset commits) must forward
//! every method it does not change, including the ones that are easy to forget
//! ([`as_pausable`](SourceReader::as_pausable), [`handle_source_event`](SourceReader::handle_source_event),
//! the checkpoint notifications). Written by hand, each wrapper repeats eleven methods and a
//! forgotten one is a silent bug (Flink's `RateLimitedSourceReader` forgot some). Here a wrapper
//! implements [`ForwardingSourceReader`]: it names its inner reader, writes `poll_next`, and
//! overrides only what it changes; every other method forwards by default.
//!
//! The wrapper runs as a [`Forwarding<W>`], which implements [`SourceReader`] by calling the
//! wrapper's methods. (The newtype is needed because a blanket `impl SourceReader for W` outside
//! the API crate would break Rust's orphan rule.)
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use weir_connector_api::checkpoint::CheckpointId;
//! use weir_connector_api::error::Result;
//! use weir_connector_api::source::{InputStatus, ReaderOutput, SourceReader};
//! use weir_connector_base::source::{Forwarding, ForwardingSourceReader};
//!
//! /// Counts completed checkpoints; everything else is the inner reader's.
//! struct CountCheckpoints<R> { inner: R, completed: Arc<AtomicU64> }
//!
//! impl<R: SourceReader> ForwardingSourceReader for CountCheckpoints<R> {
//!     type Inner = R;
//!     type Output = R::Output;
//!     fn inner(&mut self) -> &mut R { &mut self.inner }
//!     fn poll_next<O: ReaderOutput<R::Output>>(&mut self, output: &mut O) -> Result<InputStatus> {
//!         self.inner.poll_next(output)
//!     }
//!     fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
//!         self.completed.fetch_add(1, Ordering::Relaxed);
//!         self.inner.notify_checkpoint_complete(checkpoint_id)
//!     }
//! }
//!
//! fn counted<R: SourceReader>(inner: R, completed: Arc<AtomicU64>) -> impl SourceReader {
//!     Forwarding::wrap(CountCheckpoints { inner, completed })
//! }
//! ```

use std::task::{Context, Poll};

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::Result;
use weir_connector_api::source::{
    InputStatus, PausableSourceReader, ReaderOutput, SourceEvent, SourceReader,
};

/// The split type of a forwarding wrapper: its inner reader's.
pub type ForwardedSplit<W> = <<W as ForwardingSourceReader>::Inner as SourceReader>::Split;

/// A [`SourceReader`] wrapper: every method but `poll_next` forwards to [`inner`](Self::inner)
/// unless overridden. Run it as a [`Forwarding<W>`]; see the [module docs](self).
#[async_trait::async_trait]
pub trait ForwardingSourceReader: Send + 'static {
    /// The wrapped reader; its split type is the wrapper's.
    type Inner: SourceReader;
    /// The records the wrapper emits: the inner reader's, or what the wrapper makes of them.
    type Output: Send + 'static;

    /// The wrapped reader, for the forwarding defaults.
    fn inner(&mut self) -> &mut Self::Inner;

    /// See [`SourceReader::poll_next`]. Not forwarded by default: the output type may differ.
    fn poll_next<O: ReaderOutput<Self::Output>>(&mut self, output: &mut O) -> Result<InputStatus>;

    /// See [`SourceReader::start`].
    fn start(&mut self) -> Result<()> {
        self.inner().start()
    }

    /// See [`SourceReader::poll_available`].
    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.inner().poll_available(cx)
    }

    /// See [`SourceReader::snapshot_state`].
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<ForwardedSplit<Self>>> {
        self.inner().snapshot_state(checkpoint_id)
    }

    /// See [`SourceReader::add_splits`].
    fn add_splits(&mut self, splits: Vec<ForwardedSplit<Self>>) -> Result<()> {
        self.inner().add_splits(splits)
    }

    /// See [`SourceReader::notify_no_more_splits`].
    fn notify_no_more_splits(&mut self) {
        self.inner().notify_no_more_splits();
    }

    /// See [`SourceReader::handle_source_event`].
    fn handle_source_event(&mut self, event: SourceEvent) -> Result<()> {
        self.inner().handle_source_event(event)
    }

    /// See [`SourceReader::notify_checkpoint_complete`].
    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.inner().notify_checkpoint_complete(checkpoint_id)
    }

    /// See [`SourceReader::notify_checkpoint_aborted`].
    fn notify_checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.inner().notify_checkpoint_aborted(checkpoint_id)
    }

    /// See [`SourceReader::as_pausable`].
    fn as_pausable(&mut self) -> Option<&mut dyn PausableSourceReader> {
        self.inner().as_pausable()
    }

    /// See [`SourceReader::close`].
    async fn close(&mut self) -> Result<()> {
        self.inner().close().await
    }
}

/// Runs a [`ForwardingSourceReader`] as a [`SourceReader`].
#[derive(Debug, Clone, Default)]
pub struct Forwarding<W>(W);

impl<W> Forwarding<W> {
    /// Runs `wrapper` as a reader.
    pub fn wrap(wrapper: W) -> Self {
        Forwarding(wrapper)
    }

    /// The wrapper.
    pub fn wrapper(&self) -> &W {
        &self.0
    }

    /// The wrapper, mutably.
    pub fn wrapper_mut(&mut self) -> &mut W {
        &mut self.0
    }

    /// Unwraps the wrapper.
    pub fn into_wrapper(self) -> W {
        self.0
    }
}

#[async_trait::async_trait]
impl<W: ForwardingSourceReader> SourceReader for Forwarding<W> {
    type Output = W::Output;
    type Split = ForwardedSplit<W>;

    fn start(&mut self) -> Result<()> {
        self.0.start()
    }

    #[inline]
    fn poll_next<O: ReaderOutput<W::Output>>(&mut self, output: &mut O) -> Result<InputStatus> {
        self.0.poll_next(output)
    }

    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_available(cx)
    }

    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<Self::Split>> {
        self.0.snapshot_state(checkpoint_id)
    }

    fn add_splits(&mut self, splits: Vec<Self::Split>) -> Result<()> {
        self.0.add_splits(splits)
    }

    fn notify_no_more_splits(&mut self) {
        self.0.notify_no_more_splits();
    }

    fn handle_source_event(&mut self, event: SourceEvent) -> Result<()> {
        self.0.handle_source_event(event)
    }

    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.0.notify_checkpoint_complete(checkpoint_id)
    }

    fn notify_checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.0.notify_checkpoint_aborted(checkpoint_id)
    }

    fn as_pausable(&mut self) -> Option<&mut dyn PausableSourceReader> {
        self.0.as_pausable()
    }

    async fn close(&mut self) -> Result<()> {
        self.0.close().await
    }
}
