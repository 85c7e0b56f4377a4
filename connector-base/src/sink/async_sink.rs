//! [`AsyncSink`]: a complete stateful [`Sink`] from an [`AsyncSinkParts`] implementation.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use weir_connector_api::error::Result;
use weir_connector_api::sink::{
    InitContext, Sink, SinkCapabilities, SupportsWriterState, WriterStateOf,
};
use weir_connector_api::state::VersionedSerializer;

use super::config::AsyncSinkConfig;
use super::entry::{ElementConverter, RequestSubmitter};
use super::state::{BufferedRequestState, BufferedRequestStateSerializer};
use super::writer::AsyncSinkWriter;

/// What a connector supplies to make an [`AsyncSink`]: how records become entries, how batches
/// are sent, and how entries are persisted in checkpoints.
///
/// The [module docs](super) run a complete sink as a job; the parts alone:
///
/// ```
/// use std::sync::Arc;
/// use weir_connector_api::error::Result;
/// use weir_connector_api::sink::{InitContext, Sink, WriteContext};
/// use weir_connector_api::state::{BytesSerializer, VersionedSerializer};
/// use weir_connector_base::sink::{
///     AsyncSink, AsyncSinkConfig, AsyncSinkParts, EntryOutcome, RequestBatch, RequestSubmitter,
/// };
///
/// /// Drops every batch (a stand-in for a client).
/// struct Discard;
///
/// #[async_trait::async_trait]
/// impl RequestSubmitter<Vec<u8>> for Discard {
///     fn entry_size(&self, entry: &Vec<u8>) -> u64 {
///         entry.len() as u64
///     }
///     async fn submit(&self, batch: RequestBatch<Vec<u8>>) -> Result<Vec<EntryOutcome>> {
///         Ok(vec![EntryOutcome::Delivered; batch.len()])
///     }
/// }
///
/// struct LineParts;
///
/// impl AsyncSinkParts<String> for LineParts {
///     type Entry = Vec<u8>;
///     type Converter = fn(String, &WriteContext) -> Result<Vec<u8>>;
///     type Submitter = Discard;
///     fn create_converter(&self, _ctx: &dyn InitContext) -> Result<Self::Converter> {
///         Ok(|line, _ctx| Ok(line.into_bytes()))
///     }
///     fn create_submitter(&self, _ctx: &dyn InitContext) -> Result<Discard> {
///         Ok(Discard)
///     }
///     fn entry_serializer(&self) -> Arc<dyn VersionedSerializer<Vec<u8>>> {
///         Arc::new(BytesSerializer)
///     }
/// }
///
/// let sink = Arc::new(AsyncSink::new(LineParts, AsyncSinkConfig::default()));
/// // The buffered entries are writer state, restored after a failure.
/// assert!(sink.capabilities().writer_state().is_some());
/// ```
pub trait AsyncSinkParts<In>: Send + Sync + 'static {
    /// The request entry (a document, a record of a `PutRecords` call).
    type Entry: Clone + Send + Sync + 'static;
    /// Turns records into entries.
    type Converter: ElementConverter<In, Self::Entry>;
    /// Sends batches of entries.
    type Submitter: RequestSubmitter<Self::Entry>;

    /// The converter of one writer (subtask).
    fn create_converter(&self, ctx: &dyn InitContext) -> Result<Self::Converter>;

    /// The submitter of one writer (subtask); typically a handle on a shared client.
    fn create_submitter(&self, ctx: &dyn InitContext) -> Result<Self::Submitter>;

    /// Serializes entries into the writer's checkpointed state (versioned: read every version
    /// you ever wrote).
    fn entry_serializer(&self) -> Arc<dyn VersionedSerializer<Self::Entry>>;
}

/// A sink whose writers are [`AsyncSinkWriter`]s, with their buffered entries as writer state.
///
/// Declares the writer-state capability; it has no committer (delivery is at-least-once; with
/// idempotent entry ids the destination holds each record once).
pub struct AsyncSink<In, P> {
    parts: P,
    config: AsyncSinkConfig,
    _in: PhantomData<fn(In)>,
}

impl<In, P> AsyncSink<In, P> {
    /// A sink from the connector's parts and a validated configuration.
    pub fn new(parts: P, config: AsyncSinkConfig) -> Self {
        AsyncSink {
            parts,
            config,
            _in: PhantomData,
        }
    }

    /// The connector's parts.
    pub fn parts(&self) -> &P {
        &self.parts
    }

    /// The writers' configuration.
    pub fn config(&self) -> &AsyncSinkConfig {
        &self.config
    }
}

impl<In, P: fmt::Debug> fmt::Debug for AsyncSink<In, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSink")
            .field("parts", &self.parts)
            .field("config", &self.config)
            .finish()
    }
}

/// The writer type of an [`AsyncSink`] over `P`.
pub type AsyncSinkWriterOf<In, P> = AsyncSinkWriter<
    In,
    <P as AsyncSinkParts<In>>::Entry,
    <P as AsyncSinkParts<In>>::Converter,
    <P as AsyncSinkParts<In>>::Submitter,
>;

impl<In, P> Sink<In> for AsyncSink<In, P>
where
    In: Send + 'static,
    P: AsyncSinkParts<In>,
{
    type Writer = AsyncSinkWriterOf<In, P>;

    fn create_writer(&self, ctx: &dyn InitContext) -> Result<Self::Writer> {
        AsyncSinkWriter::new(
            ctx,
            self.parts.create_converter(ctx)?,
            self.parts.create_submitter(ctx)?,
            self.config.clone(),
        )
    }

    fn capabilities(self: Arc<Self>) -> SinkCapabilities<In, Self::Writer> {
        SinkCapabilities::none().with_writer_state(self)
    }
}

impl<In, P> SupportsWriterState<In> for AsyncSink<In, P>
where
    In: Send + 'static,
    P: AsyncSinkParts<In>,
{
    fn restore_writer(
        &self,
        ctx: &dyn InitContext,
        states: Vec<BufferedRequestState<P::Entry>>,
    ) -> Result<Self::Writer> {
        AsyncSinkWriter::restore(
            ctx,
            self.parts.create_converter(ctx)?,
            self.parts.create_submitter(ctx)?,
            self.config.clone(),
            states,
        )
    }

    fn writer_state_serializer(&self) -> Arc<dyn VersionedSerializer<WriterStateOf<In, Self>>> {
        Arc::new(BufferedRequestStateSerializer::new(
            self.parts.entry_serializer(),
        ))
    }
}
