//! # The embedded Weir runtime
//!
//! Runs a job graph of connector sources and sinks on tokio, with exactly-once checkpoints.
pub mod element;
pub mod error;
pub mod exchange;
pub mod fault;
pub mod graph;
pub mod job;
pub mod operator;
pub mod restart;
pub(crate) mod sink;
pub(crate) mod source;
pub mod storage;
pub(crate) mod task;

pub use error::{Result, RuntimeError};
pub use exchange::CheckpointingMode;
pub use graph::{DataStream, SinkOptions, StreamEnvironment};
pub use job::{
    CheckpointConfig, Job, JobConfig, JobHandle, JobResult, JobStatus, RestoreFrom, StopMode,
    StorageConfig,
};
