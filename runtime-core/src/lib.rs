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
//! - the user API: [`graph`] ([`StreamEnvironment`], [`DataStream`]; its exchanges `key_by`,
//!   `rebalance`, `union` and the channel-state serializer are in `repartition`) and
//!   [`config`] ([`JobConfig`] and its options) describe a job; [`lookup`] holds the lookup join's
//!   settings and operators (synchronous, and asynchronous with its ordered / unordered queue
//!   and checkpointed in-flight inputs);
//! - the physical plan: `plan` (task groups, edges, source specs, what each subtask gets when
//!   launched, how restored state is distributed) and `sink/expand` (a sink's expansion into
//!   writer, stages and committer) turn it into tasks;
//! - execution: [`job`] (the master: attempts, restore, restarts; `job/checkpoints` is the
//!   checkpoint coordinator), `task` (the source task and the one-input task on one shared
//!   `task/lifecycle`), `source` (coordinators) and `sink` (writer, stage and committer
//!   operators);
//! - two narrow seams, so subtasks and their channels can live elsewhere (a cluster mode puts a
//!   second implementation behind them, the master unchanged): [`exchange`] (the `Exchange`
//!   that makes an attempt's channels and hands each subtask its `ChannelSender` /
//!   `ChannelReceiver` ends, in process: `LocalExchange`; batching outputs and input gates on
//!   top) and `launch` (a `Deployment` makes each attempt's exchange and `TaskLauncher`;
//!   `launch_attempt` creates every subtask of the plan with its share of the restored state
//!   and starts them; in process: tokio tasks);
//! - what a running job shows: [`handle`] ([`JobHandle`], [`JobResult`]), [`history`] (the
//!   checkpoint and failover histories) and [`monitor`] ([`JobHandle::snapshot`]: graph,
//!   per subtask records, rates, busy / idle / back-pressured time, watermarks; `load` measures
//!   them per wait, never per record), served as pages and JSON by `dashboard` (feature
//!   `dashboard`); [`restore`] is what a restore checks; [`storage`] is where checkpoints go.
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
//!   A checkpoint that times out, that a task declines (its snapshot cannot be used) or that
//!   the storage fails to write is aborted: it counts toward the tolerable failures, and every
//!   participant hears `checkpoint_aborted` — the split enumerators, source readers, sink
//!   writers, committers and pre- and post-commit stages (API line 1.1; Flink's
//!   `notifyCheckpointAborted`), even a task whose barrier of it is still on its way. Such a
//!   barrier is then late: the task's input gate stops aligning (or recording) the aborted
//!   checkpoint at once, unblocking its channels, and ignores its barriers that still come, so
//!   nothing snapshots a checkpoint that can no longer complete. What the aborted checkpoint
//!   covered is carried by the next one that completes.
//! - **Unaligned checkpoints** ([`BarrierAlignment`], seed 001, Flink 1.11 and 1.13). Aligned
//!   barriers queue behind every batch between tasks. Unaligned, an exchange sends a barrier
//!   ahead of its channels' queues (with its partly filled batch queued behind them), telling
//!   the receiver how many elements still come before the barrier's place; the input gate
//!   snapshots at the first barrier and stores, as channel state, the records each channel
//!   holds before its barrier's place (copied out of the queue when the barrier comes, or
//!   recorded as they are delivered on channels whose barrier is still on its way); the task
//!   acknowledges once every input's barrier came. Channel state is versioned (one entry per
//!   channel: serializer version, records), kept under `<first uid>/input-channels` of the
//!   reading task, and replayed before new input on restore; on a rescale, records of keyed
//!   inputs go by key and other channels are dealt whole, round-robin. With
//!   `AlignedWithTimeout(d)` a gate aligns and goes unaligned when alignment takes longer than
//!   `d`. Streams entering an exchange need [`DataStream::channel_state_serializer`];
//!   savepoints stay aligned; one checkpoint at a time, exactly-once only. The checkpoint
//!   history shows per subtask whether it snapshotted unaligned and the bytes it stored.
//! - **Sinks.** A sink expands into writer → pre-commit stages → committer (its own
//!   parallelism) → post-commit stages, as its declared capabilities say; uids derive from the
//!   sink's uid (`<uid>/committer`, `<uid>/pre-commit/<stage>`).
//! - **Bounded input (FLIP-147).** Finished sources emit the max watermark and end of data;
//!   the max watermark fires every pending event-time window; writers flush and hand over
//!   end-of-input committables; checkpoints go on with finished tasks marked finished; a final
//!   checkpoint commits everything, then tasks close. `stop_with_savepoint` drains the same
//!   way ([`StopMode::Drain`]: windows fire, their results are in the savepoint's commits) or
//!   stops right after the savepoint ([`StopMode::NoDrain`], resumable).
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
//! - **Record timestamps.** A record's event time (what the source's timestamp assigner gives
//!   it) travels with it through its task's chain: batches carry a column of timestamps beside
//!   the records, only while some record of the batch has one (`Output::push_timestamped`), so
//!   a source without event time pays one comparison per record. `map` and `filter` keep each
//!   record's time, `flat_map` gives it to every record it makes, a window's results carry the
//!   window's last millisecond, and a sink writer finds it in `WriteContext::timestamp`
//!   (`None` for a record without one). Channels between tasks (`key_by`, `rebalance`, unions)
//!   carry them in the batch ([`element::Batch`]): the exchange output keeps a column per
//!   target only once a record with a time came, and the records in flight of an unaligned
//!   checkpoint are stored and replayed with their times.
//! - **Restores.** Before any task starts, a restore is checked against the job ([`restore`]):
//!   a snapshot of a job of another name, state that maps to no operator (listed with the
//!   closest uids) and a source whose recorded schema ([`DataStream::state_schema`]) lost or
//!   changed a field are refused, unless [`NonRestoredState::Allow`] /
//!   [`SnapshotOfOtherJob::Allow`] say otherwise; so is, whatever the allowances, a source
//!   without state in the snapshot (added or renamed) or an operator still running in it
//!   upstream of an operator that had finished (FLIP-147: a finished operator takes no more
//!   input), naming both;
//!   [`RestoreFrom::LatestCheckpoint`] with no checkpoint is an error, never a silent fresh
//!   start.
//! - **Savepoints.** Each gets a new `savepoint-<id>-<unix millis>` directory under the one
//!   asked for. A failed savepoint is reported to its requester and never counts as a failed
//!   checkpoint, so it never restarts the job.
//! - **Failures.** Any task error fails the attempt; the [`restart::RestartStrategy`] restarts
//!   from the latest checkpoint, possibly at another parallelism when restoring a savepoint:
//!   split, writer and committer states are redistributed. Every failover (time, task, root
//!   cause) and every checkpoint (status, trigger time, duration, size) is in the job's
//!   history, live through [`JobHandle::checkpoint_history`] and at the end in [`JobResult`];
//!   each checkpoint records per subtask its start delay and barrier alignment. A cancelled
//!   job keeps its checkpoints unless [`ExternalizedCheckpointRetention::DeleteOnCancellation`]
//!   says otherwise.
//! - **Observability.** Each subtask's busy / idle / back-pressured milliseconds per second
//!   (Flink's metrics of those names, and its ok / low / high back-pressure level) are sampled
//!   once a second from what the tasks measure when they wait: for input (idle) or for room in
//!   a full output channel (back-pressured). [`JobHandle::monitor`] gives a [`JobMonitor`] for
//!   dashboards; with the `dashboard` feature, `dashboard::DashboardServer` serves the pages and
//!   the `/api/v1` JSON API.
//! - **Tests.** [`fault::FaultInjector`] fails jobs at every checkpoint and commit boundary.
pub(crate) mod batch;
pub mod cluster;
pub mod config;
#[cfg(feature = "dashboard")]
pub mod dashboard;
pub mod element;
pub mod error;
pub mod exchange;
pub mod fault;
pub mod graph;
pub mod handle;
pub mod history;
pub mod job;
pub(crate) mod launch;
pub(crate) mod load;
pub mod lookup;
pub mod metrics_export;
pub mod monitor;
pub mod operator;
pub(crate) mod plan;
pub(crate) mod repartition;
pub mod restart;
pub mod restore;
pub(crate) mod sink;
pub(crate) mod source;
pub mod storage;
pub(crate) mod task;
pub mod window;

pub use config::ExternalizedCheckpointRetention;
pub use error::{Result, RuntimeError};
pub use exchange::{BarrierAlignment, CheckpointingMode};
pub use graph::{DataStream, SinkOptions, StreamEnvironment};
pub use history::{CheckpointRecord, CheckpointStatus, Failover, SubtaskCheckpoint};
pub use job::{
    CheckpointConfig, Job, JobConfig, JobHandle, JobResult, JobStatus, RestoreFrom, StopMode,
    StorageConfig,
};
#[cfg(feature = "prometheus")]
pub use metrics_export::install_prometheus_exporter;
pub use monitor::{BackPressureLevel, JobMonitor, JobSnapshot};
pub use restore::{NonRestoredState, RestoreProblem, SnapshotOfOtherJob};
pub use window::WindowCount;
