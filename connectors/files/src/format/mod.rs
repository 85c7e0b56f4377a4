//! File formats: row formats ([`text`](TextLinesFormat), [`csv`](CsvRecordFormat),
//! [`JSON lines`](JsonLinesFormat)) that encode and decode one record after another, and bulk
//! formats ([`ParquetFormat`], [`OrcFormat`]) that go through Arrow [`RecordBatch`]es.
//!
//! Typed records map to and from Arrow with [`serde_arrow`] ([`SerdeRecords`]); a sink or
//! source of `RecordBatch` itself uses [`Batches`]. Pipeline rows map to Arrow with
//! [`RowBatches`], and to row formats with [`TextRows`] and [`MessageRows`]; columnar pipeline
//! batches (`weir-formats` chunks) go to the bulk formats as they are with `ChunkBatches`, and
//! are read from them with `ChunkFromBatches` and from row formats with `ChunkMessages`.

mod arrow;
#[cfg(weir_api_1_1)]
mod chunk_source;
#[cfg(weir_api_1_1)]
mod chunks;
mod compact_input;
pub(crate) mod orc;
pub(crate) mod parquet;
mod parquet_compact;
pub(crate) mod row;
mod rows;

pub use self::arrow::{Batches, SerdeRecords, DEFAULT_BATCH_SIZE};
#[cfg(weir_api_1_1)]
pub use self::chunk_source::{ChunkFromBatches, ChunkMessages, CHUNK_ROWS};
#[cfg(weir_api_1_1)]
pub use self::chunks::{ChunkBatches, CsvChunks, JsonChunks};
pub use self::compact_input::{CompactInput, InputReader};
#[cfg(weir_api_1_1)]
pub use self::orc::orc_refusal;
pub use self::orc::{OrcFormat, DEFAULT_STRIPE_BYTES};
pub use self::parquet::{row_group_rows, ParquetFormat, DEFAULT_ROW_GROUP_ROWS};
pub use self::row::{CsvRecordFormat, JsonLinesFormat, TextLinesFormat};
pub use self::rows::{arrow_schema, arrow_type, Framing, MessageRows, RowBatches, TextRows};

use std::io::Write;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use weir_connector_api::error::Result;

/// Makes the encoder of each part file of a row format.
pub trait RowFormat<T>: Send + Sync + 'static {
    /// A fresh encoder for a new part file (or for a resumed one, with `at_file_start` false).
    fn create_encoder(&self, at_file_start: bool) -> Result<Box<dyn RecordEncoder<T>>>;
    /// A fresh decoder for reading a file from its start (`at_file_start`) or from an offset.
    fn create_decoder(&self, at_file_start: bool) -> Result<Box<dyn RecordDecoder<T>>>;
    /// A decoder resuming a split whose first `records` records of the message at its offset
    /// were emitted before (see [`FilePosition`](crate::source::FilePosition)), and how many
    /// records the reader still drops: by default all of them (the reader drops the first
    /// `records` records decoded). A format whose records hold several rows (chunks) drops the
    /// rows itself and returns 0.
    fn create_decoder_resuming(
        &self,
        at_file_start: bool,
        records: u64,
    ) -> Result<(Box<dyn RecordDecoder<T>>, u64)> {
        Ok((self.create_decoder(at_file_start)?, records))
    }
    /// The name for messages, e.g. `csv`.
    fn name(&self) -> &'static str;
}

/// Encodes typed records of one part file, appending to `out`. Called for every record:
/// appends, never waits. (Not `weir_connector_api::format::RowEncoder`, which encodes one
/// pipeline row into one message; [`MessageRows`] puts those into files.)
pub trait RecordEncoder<T>: Send {
    /// Bytes at the start of a new file (e.g. a CSV header); nothing by default.
    fn begin(&mut self, _out: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
    /// Appends one record.
    fn encode(&mut self, record: &T, out: &mut Vec<u8>) -> Result<()>;
}

/// What a [`RecordDecoder`] found at the start of a buffer.
#[derive(Debug)]
pub enum Decoded<T> {
    /// A record that used `usize` bytes. `0` when more records of the same message follow:
    /// the decoder returns them from its own state on the next calls, the last one with the
    /// bytes the message used (so a position can count the records emitted at an offset).
    Record(T, usize),
    /// Bytes that hold no record (an empty line, a header), to skip.
    Skip(usize),
    /// The buffer holds no complete record: read more (or, at the end of the file, the rest is
    /// an incomplete record and an error was returned instead).
    NeedMore,
}

/// Decodes typed records of a row format from a byte buffer. (Not
/// `weir_connector_api::format::RowDecoder`, which decodes one message into pipeline rows.)
pub trait RecordDecoder<T>: Send {
    /// Decodes the record at the start of `buf`. `eof`: no more bytes follow `buf`.
    fn decode(&mut self, buf: &[u8], eof: bool) -> Result<Decoded<T>>;
}

/// Makes the writer of each part file of a bulk format.
pub trait BulkWriterFactory<T>: Send + Sync + 'static {
    /// A writer for a new part file.
    fn create_writer(&self) -> Result<Box<dyn BulkWriter<T>>>;
    /// The name for messages, e.g. `parquet`.
    fn name(&self) -> &'static str;
    /// Rewrites the content of several files of this format into one (record-wise compaction).
    fn compact(&self, inputs: &[Bytes]) -> Result<Vec<u8>>;
    /// Like [`compact`](Self::compact), reading the inputs where they lie and writing the
    /// compacted file to `out` as it is made; writes nothing when `compact` would return no
    /// bytes. By default the inputs are read into memory and given to `compact`; Parquet
    /// streams.
    fn compact_into(&self, inputs: &[CompactInput], out: &mut (dyn Write + Send)) -> Result<()> {
        let inputs = inputs
            .iter()
            .map(CompactInput::to_bytes)
            .collect::<Result<Vec<_>>>()?;
        let compacted = self.compact(&inputs)?;
        out.write_all(&compacted)
            .map_err(|e| crate::fs::io_error("writing a compacted file", e))
    }
}

/// Writes one part file of a bulk format. Bytes appear in `out` as row groups / stripes are
/// completed; the footer on [`BulkWriter::finish`].
pub trait BulkWriter<T>: Send {
    /// Adds a record (or a batch, for a `RecordBatch` writer).
    fn add(&mut self, element: T, out: &mut Vec<u8>) -> Result<()>;
    /// Bytes held in memory that are not yet in `out` (for size-based rolling).
    fn buffered_bytes(&self) -> u64;
    /// Completes the file.
    fn finish(self: Box<Self>, out: &mut Vec<u8>) -> Result<()>;
}

/// Converts Arrow batches read by a bulk format into the source's records.
pub trait FromBatch<T>: Send + Sync + 'static {
    /// The elements of `batch`, each with the number of rows it covers (1 for a typed record,
    /// the batch's rows for a `RecordBatch`).
    fn decode_batch(&self, batch: RecordBatch, out: &mut Vec<(T, usize)>) -> Result<()>;
}

/// Converts records into Arrow batches for a bulk format.
pub trait ToBatches<T>: Send {
    /// Adds a record; returns a batch when one is full.
    fn push(&mut self, element: T) -> Result<Option<RecordBatch>>;
    /// The rest as a batch, if any.
    fn flush(&mut self) -> Result<Option<RecordBatch>>;
    /// The approximate bytes held.
    fn buffered_bytes(&self) -> u64;
}

/// Makes [`ToBatches`] converters (one per part file).
pub type ToBatchesFactory<T> = Arc<dyn Fn() -> Result<Box<dyn ToBatches<T>>> + Send + Sync>;

/// The format of a file sink.
pub enum SinkFormat<T> {
    /// A row format: part files roll by size and time, in-progress files span checkpoints.
    Row(Arc<dyn RowFormat<T>>),
    /// A bulk format: part files roll at every checkpoint (and optionally by size).
    Bulk(Arc<dyn BulkWriterFactory<T>>),
}

impl<T> Clone for SinkFormat<T> {
    fn clone(&self) -> Self {
        match self {
            SinkFormat::Row(f) => SinkFormat::Row(Arc::clone(f)),
            SinkFormat::Bulk(f) => SinkFormat::Bulk(Arc::clone(f)),
        }
    }
}

impl<T: 'static> SinkFormat<T> {
    /// The format's name.
    pub fn name(&self) -> &'static str {
        match self {
            SinkFormat::Row(f) => f.name(),
            SinkFormat::Bulk(f) => f.name(),
        }
    }
}

/// Which bulk reader a source uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BulkKind {
    /// Apache Parquet (splittable per row group).
    Parquet,
    /// Apache ORC.
    Orc,
}

/// The format of a file source.
pub enum SourceFormat<T> {
    /// A row format read as a byte stream; splits resume at a byte offset.
    Row(Arc<dyn RowFormat<T>>),
    /// A bulk format read as Arrow batches; splits resume at a row.
    Bulk {
        /// Parquet or ORC.
        kind: BulkKind,
        /// Batches to records.
        decode: Arc<dyn FromBatch<T>>,
        /// Rows per batch read.
        batch_size: usize,
    },
}

impl<T> Clone for SourceFormat<T> {
    fn clone(&self) -> Self {
        match self {
            SourceFormat::Row(f) => SourceFormat::Row(Arc::clone(f)),
            SourceFormat::Bulk {
                kind,
                decode,
                batch_size,
            } => SourceFormat::Bulk {
                kind: *kind,
                decode: Arc::clone(decode),
                batch_size: *batch_size,
            },
        }
    }
}
