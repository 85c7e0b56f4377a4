//! # Weir files connector
//!
//! A file source and an exactly-once file sink over any [`fs::FileSystem`] (local disk here;
//! S3 in `weir-connector-s3`), Weir's version of Flink's `FileSource` / `FileSink`.
//!
//! - **Formats** ([`mod@format`]): row formats — text lines, CSV, JSON lines — and bulk formats —
//!   Parquet and ORC through Arrow `RecordBatch`es, with typed records mapped by `serde_arrow`.
//! - **FileSource** ([`source`]): bounded (enumerate files under paths with glob filters; one
//!   split per file, or per Parquet row group) or continuous (monitor paths every interval, new
//!   files become splits, processed files remembered in bounded memory). Splits checkpoint their
//!   position: a restored split resumes at the record where it stopped.
//! - **FileSink** ([`sink`]): buckets (date-time, base path, custom), part files
//!   `<prefix>-<uuid>-<counter><suffix>` that go in-progress → pending (at a checkpoint for bulk
//!   formats, by a rolling policy for row formats) → finished only after the checkpoint
//!   completes (two-phase commit through the committer). In-progress files are written with the
//!   filesystem's [`fs::RecoverableWriter`] and resumed after failures; orphans of failed
//!   attempts are swept on restore.
//! - **Compaction** ([`sink::FileCompactStrategy`], FLIP-191): small files become one file per
//!   bucket and trigger through the sink's pre-commit topology.
//! - **Options** ([`config`]): typed options for pipeline files, with `from_config`
//!   constructors; the README's table is generated from them.
//! - **Pipeline files** ([`factory`]): the `files` connector of `weir run`, a source and a sink
//!   of pipeline rows (Parquet and ORC through Arrow, CSV, JSON lines, text, or any registered
//!   row format) on the local disk.

#[cfg(weir_api_1_1)]
pub mod check;
pub mod config;
pub mod factory;
pub mod format;
pub mod fs;
pub mod sink;
pub mod source;

pub use format::{
    Batches, CsvRecordFormat, JsonLinesFormat, OrcFormat, ParquetFormat, SerdeRecords, SinkFormat,
    SourceFormat, TextLinesFormat,
};
pub use fs::{FileSystem, LocalFileSystem};

pub use sink::{FileSink, FileSinkBuilder};
pub use source::{FileSource, FileSourceBuilder};
#[doc(hidden)]
pub use weir_connector_api::inventory as __inventory;

/// A compression codec of the bulk formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// No compression.
    None,
    /// Snappy.
    Snappy,
    /// Zstandard.
    Zstd,
    /// Gzip / zlib.
    Gzip,
    /// LZ4 (raw).
    Lz4,
}

weir_connector_api::config_enum!(Codec {
    "none" => None,
    "snappy" => Snappy,
    "zstd" => Zstd,
    "gzip" => Gzip,
    "lz4" => Lz4,
});
