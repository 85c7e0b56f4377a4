//! The write side of the S3 filesystem: the files sink's part files on S3, each one multipart
//! upload spanning checkpoints.
//!
//! - Writes append to a buffer; every `part_size` bytes a part upload starts in the background
//!   (the upload itself is created with the first part). At most `max_in_flight` run at once
//!   per file: then `poll_ready` of the [`RecoverableStream`] is pending (backpressure).
//! - `persist` waits for the uploads in flight and returns the upload id, the uploaded parts
//!   (number, ETag, size) and the buffered tail (less than one part) — the writer state
//!   ([`S3UploadState`]). [`RecoverableWriter::recover`] continues the same upload from there
//!   (parts uploaded after the checkpoint are overwritten).
//! - `close_for_commit` uploads the tail as the last part; [`RecoverableWriter::commit`]
//!   completes the upload. A repeated commit finds no upload but the object with the right
//!   size: [`CommitStatus::AlreadyCommitted`].
//! - A hidden part file completed by a compactor of an attempt that later failed is taken back
//!   on recovery: a new upload copies its persisted bytes (`UploadPartCopy`, or a download when
//!   smaller than a part) and goes on.
//!
//! | file | role |
//! |---|---|
//! | `writer.rs` | [`S3RecoverableWriter`]: opens, resumes, commits (completes) and aborts uploads; the stream that uploads parts in the background |
//! | `state.rs` | [`S3UploadState`]: the upload id, the uploaded parts and the buffered tail, in each [`Recoverable`](weir_connector_files::fs::Recoverable)'s data, with its versioned serializer |

mod state;
mod writer;

#[cfg(doc)]
use weir_connector_files::fs::{CommitStatus, RecoverableStream, RecoverableWriter};

pub use state::{S3UploadState, S3UploadStateSerializer, S3UploadedPart};
pub use writer::S3RecoverableWriter;
