//! # Weir S3 connector
//!
//! Amazon S3 (and S3-compatible stores such as SeaweedFS or MinIO) for Weir:
//!
//! - [`S3FileSystem`]: a [`FileSystem`](weir_connector_files::fs::FileSystem) for the files
//!   connector, so `FileSource` and `FileSink` read and write buckets with every format.
//! - Its recoverable writer ([`writer`]): **one multipart upload per part file, spanning
//!   checkpoints**. Parts of `part-size` bytes upload in the background while records are
//!   written (bounded in flight, with backpressure); at a checkpoint the uploaded parts (number,
//!   ETag) and the not-yet-uploaded tail go into the writer state; after a failure the upload is
//!   resumed from there. Commit = `CompleteMultipartUpload`, idempotent (a repeated commit finds
//!   the object and reports it already committed). Orphaned uploads (of the sink's prefix, that
//!   no checkpoint references) are aborted when the sink restores.
//! - `S3CheckpointStorage` (feature `checkpoint-storage`): checkpoints of a Weir job in a
//!   bucket.
//! - [`config`]: typed options (`s3.endpoint`, credentials, part size …) and `from_config`
//!   constructors of S3 file sinks and sources.

pub mod config;
pub mod copy;
mod error;
pub mod fs;
pub mod scheme;
pub mod writer;

#[cfg(feature = "checkpoint-storage")]
pub mod checkpoint;

#[cfg(feature = "checkpoint-storage")]
pub use checkpoint::S3CheckpointStorage;
pub use config::S3Options;
pub use fs::{S3FileSystem, S3Location};
