//! # The embedded Weir runtime
//!
//! Runs a job graph of connector sources and sinks on tokio, like Flink's MiniCluster, with
//! exactly-once checkpoints.
//!
//! ```
//! use std::time::Duration;
//! use weir_connector_api::watermark::WatermarkStrategy;
//! use weir_connector_blackhole::BlackholeSink;
//! use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
//! use weir_runtime::{CheckpointConfig, JobConfig, StreamEnvironment};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! let env = StreamEnvironment::new(
//!     JobConfig::new("squares")
//!         .parallelism(2)
//!         .checkpointing(CheckpointConfig::every(Duration::from_secs(1))),
//! );
//! let sink = BlackholeSink::new();
//! let seen = sink.counter();
//! env.from_source(
//!     DataGeneratorSource::new(|n| n, Some(100_000), RateLimiterStrategy::no_op()),
//!     WatermarkStrategy::no_watermarks(),
//!     "numbers",
//! )
//! .uid("numbers") // a stable id, so state maps onto a changed job
//! .map(|n| n * n)
//! .filter(|n| n % 2 == 0)
//! .sink_to(sink);
//! let result = env.build().expect("a valid job").execute().await;
//! assert!(result.is_finished());
//! assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 50_000);
//! # }
//! ```
//!
//! ## Where things live
//!
//! Planning and execution are separate layers, and no module imports one that imports it back:
//!
//! - the user API: [`graph`] ([`StreamEnvironment`], [`DataStream`]) and [`config`]
//!   ([`JobConfig`] and its options) describe a job;
//! - the physical plan: `plan` (task groups, edges, source specs, what each subtask gets when
//!   launched, how restored state is distributed) and `sink/expand` (a sink's expansion into
//!   writer, stages and committer) turn it into tasks;
//! - execution: [`job`] (the master: attempts, restore, restarts; `job/checkpoints` is the
//!   checkpoint coordinator), `task` (the source task and the one-input task on one shared
//!   `task/lifecycle`), [`exchange`] (batching channels, input gates), `source` (coordinators)
//!   and `sink` (writer, stage and committer operators);
//! - what a running job shows: [`handle`] ([`JobHandle`], [`JobResult`]) and [`history`] (the
//!   checkpoint and failover histories); [`restore`] is what a restore checks; [`storage`] is
//!   where checkpoints go.
//!
//! ## How a job runs
//!
//! - **Plan.** Operators with the same parallelism joined by forward edges are chained into one
//!   task and call each other directly, batch by batch. `key_by`, `rebalance` and a sink's
//!   committer (and topology stages) start new tasks, connected by bounded channels that carry
//!   record batches (cut at 1024 records, at every event, and after a linger timeout) and
//!   in-band events: watermarks, idleness, barriers, end of data. A full channel is
//!   backpressure.
//! - **Sources.** One coordinator per source runs its split enumerator on a single event loop;
//!   async calls run on workers and come back to the loop. The coordinator snapshots the
//!   enumerator and injects the barrier into its readers in one step, so a split assigned after
//!   the snapshot always reaches its reader after the barrier. Splits assigned after the last
//!   completed checkpoint go back to the enumerator (`add_splits_back`) when readers restart.
//! - **Checkpoints.** The master triggers them (interval, minimum pause, timeout, maximum
//!   concurrent, tolerable failures); tasks with several inputs align barriers (exactly-once)
//!   or count them (at-least-once); each task acks its operators' state; the master writes the
//!   metadata atomically (versioned, checksummed) and then notifies every operator; committers
//!   commit then. The last `retained` checkpoints are kept; a corrupt one is skipped with a
//!   report and the previous one is used; if none is readable the job refuses to start empty.
//! - **Sinks.** A sink expands into writer → pre-commit stages → committer (its own
//!   parallelism) → post-commit stages, as its declared capabilities say; uids derive from the
//!   sink's uid (`<uid>/committer`, `<uid>/pre-commit/<stage>`).
//! - **Bounded input (FLIP-147).** Finished sources emit the max watermark and end of data;
//!   writers flush and hand over end-of-input committables; checkpoints go on with finished
//!   tasks marked finished; a final checkpoint commits everything, then tasks close.
//!   `stop_with_savepoint` drains the same way ([`StopMode::Drain`]) or stops right after the
//!   savepoint ([`StopMode::NoDrain`], resumable).
//! - **Event time.** Each split gets its own watermark generator; a reader's watermark is the
//!   minimum over its active splits, and tasks with several inputs take the minimum over their
//!   non-idle inputs. With `with_idleness(d)` an output (a split, or a reader without splits)
//!   that produces nothing for `d` is idle and holds nothing back; a split paused for alignment
//!   is not idle meanwhile (FLINK-36751). With `with_watermark_alignment(group, max_drift,
//!   update_interval)`, readers report their watermark every interval (idle or finished:
//!   `MAX`), each source's coordinator publishes its minimum into the job-wide
//!   `CoordinatorStore` under the group, keyed by the source's uid, and announces `group
//!   minimum + max drift`: splits ahead of it are paused through the reader's pause
//!   capability (FLIP-217) and the reader stops polling while its own watermark is ahead.
//!   Readers that cannot pause splits fail the job at start unless
//!   [`job::UnalignedSplits::TaskLevel`] allows task-level alignment. Metrics:
//!   `currentOutputWatermark`, `watermarkLag`, `currentEmitEventTimeLag`, `sourceIdleTime`,
//!   `watermarkAlignmentPausedTimeMs`. [`DataStream::window_count`] is an event-time
//!   operator (keyed tumbling counts) whose buffered state is exposed as
//!   `windowStateEntries`.
//! - **Restores.** Before any task starts, a restore is checked against the job ([`restore`]):
//!   a snapshot of a job of another name, state that maps to no operator (listed with the
//!   closest uids) and a source whose recorded schema ([`DataStream::state_schema`]) lost or
//!   changed a field are refused, unless [`NonRestoredState::Allow`] /
//!   [`SnapshotOfOtherJob::Allow`] say otherwise; [`RestoreFrom::LatestCheckpoint`] with no
//!   checkpoint is an error, never a silent fresh start.
//! - **Savepoints.** Each gets a new `savepoint-<id>-<unix millis>` directory under the one
//!   asked for. A failed savepoint is reported to its requester and never counts as a failed
//!   checkpoint, so it never restarts the job.
//! - **Failures.** Any task error fails the attempt; the [`restart::RestartStrategy`] restarts
//!   from the latest checkpoint, possibly at another parallelism when restoring a savepoint:
//!   split, writer and committer states are redistributed. Every failover (time, task, root
//!   cause) and every checkpoint (status, trigger time, duration, size) is in the job's
//!   history, live through [`JobHandle::checkpoint_history`] and at the end in [`JobResult`].
//! - **Tests.** [`fault::FaultInjector`] fails jobs at every checkpoint and commit boundary.
pub mod config;
pub mod element;
pub mod error;
pub mod exchange;
pub mod fault;
pub mod graph;
pub mod handle;
pub mod history;
pub mod job;
pub mod metrics_export;
pub mod operator;
pub(crate) mod plan;
pub mod restart;
pub mod restore;
pub(crate) mod sink;
pub(crate) mod source;
pub mod storage;
pub(crate) mod task;
pub mod window;

pub use error::{Result, RuntimeError};
pub use exchange::CheckpointingMode;
pub use graph::{DataStream, SinkOptions, StreamEnvironment};
pub use history::{CheckpointRecord, CheckpointStatus, Failover};
pub use job::{
    CheckpointConfig, Job, JobConfig, JobHandle, JobResult, JobStatus, RestoreFrom, StopMode,
    StorageConfig,
};
#[cfg(feature = "prometheus")]
pub use metrics_export::install_prometheus_exporter;
pub use restore::{NonRestoredState, RestoreProblem, SnapshotOfOtherJob};
pub use window::WindowCount;
