//! The source side of the runtime: coordinators that run split enumerators, and the reader
//! output that turns emitted records into batches and per-split watermarks.

pub(crate) mod coordinator;
pub(crate) mod output;
