//! How a job is configured: [`JobConfig`] with its checkpointing, storage, restore and restart
//! options, each with a builder setter.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::exchange::{BarrierAlignment, CheckpointingMode};
use crate::fault::{FaultInjector, NoFaults};
use crate::restart::RestartStrategy;
use crate::restore::{NonRestoredState, SnapshotOfOtherJob};
use crate::storage::CheckpointStorage;

/// Periodic checkpointing.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// Time between two checkpoint triggers.
    pub interval: Duration,
    /// Barrier alignment (exactly-once) or not (at-least-once).
    pub mode: CheckpointingMode,
    /// Exactly-once: aligned barriers, unaligned ones (records in flight stored with the
    /// checkpoint), or aligned ones that go unaligned after a timeout.
    pub alignment: BarrierAlignment,
    /// Minimum time between the end of one checkpoint and the start of the next.
    pub min_pause: Duration,
    /// A checkpoint not complete after this long is aborted.
    pub timeout: Duration,
    /// How many checkpoints may be in progress at once.
    pub max_concurrent: usize,
    /// How many checkpoints may fail in a row before the job fails.
    pub tolerable_failures: u32,
    /// How many completed checkpoints to keep.
    pub retained: usize,
}

impl CheckpointConfig {
    /// Exactly-once checkpoints every `interval`, with Flink's defaults otherwise.
    pub fn every(interval: Duration) -> Self {
        CheckpointConfig {
            interval,
            mode: CheckpointingMode::ExactlyOnce,
            alignment: BarrierAlignment::Aligned,
            min_pause: Duration::ZERO,
            timeout: Duration::from_secs(600),
            max_concurrent: 1,
            tolerable_failures: 0,
            retained: 1,
        }
    }

    /// Sets the checkpointing mode.
    pub fn mode(mut self, mode: CheckpointingMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets how exactly-once checkpoints treat barriers (see [`BarrierAlignment`]).
    pub fn alignment(mut self, alignment: BarrierAlignment) -> Self {
        self.alignment = alignment;
        self
    }

    /// Sets the minimum time between the end of one checkpoint and the start of the next.
    pub fn min_pause(mut self, min_pause: Duration) -> Self {
        self.min_pause = min_pause;
        self
    }

    /// Sets how long a checkpoint may take before it is aborted.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many checkpoints may be in progress at once.
    pub fn max_concurrent(mut self, max_concurrent: usize) -> Self {
        self.max_concurrent = max_concurrent;
        self
    }

    /// Sets how many checkpoints may fail in a row before the job fails.
    pub fn tolerable_failures(mut self, tolerable_failures: u32) -> Self {
        self.tolerable_failures = tolerable_failures;
        self
    }

    /// Sets how many completed checkpoints to keep.
    pub fn retained(mut self, retained: usize) -> Self {
        self.retained = retained;
        self
    }
}

/// Where completed checkpoints are kept.
#[derive(Debug, Clone, Default)]
pub enum StorageConfig {
    /// In memory: survives restarts of the job, not of the process.
    #[default]
    Memory,
    /// In a local directory: `<dir>/chk-<id>/_metadata`.
    Local(PathBuf),
    /// A storage of your own (e.g. S3).
    Custom(Arc<dyn CheckpointStorage>),
}

/// What a job starts from.
#[derive(Debug, Clone, Default)]
pub enum RestoreFrom {
    /// Empty state.
    #[default]
    Nothing,
    /// The newest readable checkpoint in the checkpoint storage. The job fails with
    /// [`crate::RuntimeError::NoCheckpoint`] if there is none (starting empty would re-read the input).
    LatestCheckpoint,
    /// A savepoint directory (or its `_metadata` file).
    Savepoint(PathBuf),
    /// The newest readable checkpoint if the storage holds one, else this savepoint (or empty
    /// state): how a supervisor restarts a job after a process died, before or after its
    /// first checkpoint (`weir cluster run`).
    LatestCheckpointElse(Option<PathBuf>),
}

/// What watermark alignment does with a source whose reader cannot pause splits
/// (`pipeline.watermark-alignment.allow-unaligned-source-splits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnalignedSplits {
    /// The job fails at start with a message naming the source (the default).
    #[default]
    Fail,
    /// The whole reader stops polling while it is ahead (Flink 1.15's task-level alignment).
    TaskLevel,
}

/// What happens to a job's checkpoints when the job is cancelled (Flink's
/// `ExternalizedCheckpointRetention`). Savepoints are never deleted; a job that fails for good
/// keeps its checkpoints either way, so it can be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExternalizedCheckpointRetention {
    /// The checkpoints stay, for a resume with [`RestoreFrom::LatestCheckpoint`] (the default).
    #[default]
    RetainOnCancellation,
    /// The checkpoints this run wrote are deleted from the checkpoint storage.
    DeleteOnCancellation,
}

/// How a job is configured.
#[derive(Clone)]
pub struct JobConfig {
    /// The job's name.
    pub name: String,
    /// Default parallelism of sources and stages.
    pub parallelism: usize,
    /// Periodic checkpoints; `None` commits only at the end of bounded input.
    pub checkpointing: Option<CheckpointConfig>,
    /// Where checkpoints go.
    pub storage: StorageConfig,
    /// What to start from.
    pub restore: RestoreFrom,
    /// Whether a cancelled job keeps its checkpoints.
    pub checkpoint_retention: ExternalizedCheckpointRetention,
    /// What a restore does with state that maps to no operator.
    pub non_restored_state: NonRestoredState,
    /// What a restore does with a snapshot taken by a job of another name.
    pub snapshot_of_other_job: SnapshotOfOtherJob,
    /// How to restart after failures.
    pub restart: RestartStrategy,
    /// Records per hand-off between tasks.
    pub batch_size: usize,
    /// Batches a channel holds before backpressure.
    pub channel_capacity: usize,
    /// How long a partly filled batch may wait before it is sent.
    pub buffer_timeout: Duration,
    /// How often watermarks are generated.
    pub watermark_interval: Duration,
    /// Watermark alignment for readers that cannot pause splits.
    pub unaligned_source_splits: UnalignedSplits,
    /// How often a committer retries a committable before the job fails.
    pub committer_retries: u32,
    /// Fault injection for tests.
    pub faults: Arc<dyn FaultInjector>,
    /// Seed for restart jitter.
    pub seed: u64,
}

impl std::fmt::Debug for JobConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobConfig")
            .field("name", &self.name)
            .field("parallelism", &self.parallelism)
            .field("checkpointing", &self.checkpointing)
            .field("storage", &self.storage)
            .field("restore", &self.restore)
            .field("restart", &self.restart)
            .finish_non_exhaustive()
    }
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            name: "weir-job".into(),
            parallelism: 1,
            checkpointing: None,
            storage: StorageConfig::Memory,
            restore: RestoreFrom::Nothing,
            checkpoint_retention: ExternalizedCheckpointRetention::RetainOnCancellation,
            non_restored_state: NonRestoredState::Refuse,
            snapshot_of_other_job: SnapshotOfOtherJob::Refuse,
            restart: RestartStrategy::None,
            batch_size: 1024,
            channel_capacity: 8,
            buffer_timeout: Duration::from_millis(50),
            watermark_interval: Duration::from_millis(200),
            unaligned_source_splits: UnalignedSplits::Fail,
            committer_retries: 10,
            faults: Arc::new(NoFaults),
            seed: 0,
        }
    }
}

impl JobConfig {
    /// A configuration with defaults and a name.
    pub fn new(name: &str) -> Self {
        JobConfig {
            name: name.to_owned(),
            ..Self::default()
        }
    }
    /// Sets the default parallelism.
    pub fn parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism;
        self
    }
    /// Enables periodic checkpoints.
    pub fn checkpointing(mut self, checkpointing: CheckpointConfig) -> Self {
        self.checkpointing = Some(checkpointing);
        self
    }
    /// Sets the checkpoint storage.
    pub fn storage(mut self, storage: StorageConfig) -> Self {
        self.storage = storage;
        self
    }
    /// Sets what the job starts from.
    pub fn restore(mut self, restore: RestoreFrom) -> Self {
        self.restore = restore;
        self
    }
    /// Sets whether a cancelled job keeps its checkpoints.
    pub fn checkpoint_retention(mut self, retention: ExternalizedCheckpointRetention) -> Self {
        self.checkpoint_retention = retention;
        self
    }
    /// Sets what a restore does with state that maps to no operator.
    pub fn non_restored_state(mut self, policy: NonRestoredState) -> Self {
        self.non_restored_state = policy;
        self
    }
    /// Sets what a restore does with a snapshot taken by a job of another name.
    pub fn snapshot_of_other_job(mut self, policy: SnapshotOfOtherJob) -> Self {
        self.snapshot_of_other_job = policy;
        self
    }
    /// Sets the restart strategy.
    pub fn restart(mut self, restart: RestartStrategy) -> Self {
        self.restart = restart;
        self
    }
    /// Sets the fault injector.
    pub fn faults(mut self, faults: Arc<dyn FaultInjector>) -> Self {
        self.faults = faults;
        self
    }

    /// Sets the records per hand-off between tasks.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// Sets how many batches a channel holds before backpressure.
    pub fn channel_capacity(mut self, channel_capacity: usize) -> Self {
        self.channel_capacity = channel_capacity;
        self
    }
    /// Sets how long a partly filled batch may wait before it is sent.
    pub fn buffer_timeout(mut self, buffer_timeout: Duration) -> Self {
        self.buffer_timeout = buffer_timeout;
        self
    }
    /// Sets how often watermarks are generated.
    pub fn watermark_interval(mut self, watermark_interval: Duration) -> Self {
        self.watermark_interval = watermark_interval;
        self
    }
    /// Sets what watermark alignment does with readers that cannot pause splits.
    pub fn unaligned_source_splits(mut self, policy: UnalignedSplits) -> Self {
        self.unaligned_source_splits = policy;
        self
    }
    /// Sets how often a committer retries a committable before the job fails.
    pub fn committer_retries(mut self, retries: u32) -> Self {
        self.committer_retries = retries;
        self
    }
    /// Sets the seed for restart jitter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub(crate) fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.parallelism == 0 {
            errors.push("parallelism must be at least 1".into());
        }
        if self.batch_size == 0 {
            errors.push("batch size must be at least 1".into());
        }
        if self.channel_capacity == 0 {
            errors.push("channel capacity must be at least 1".into());
        }
        if let Some(c) = &self.checkpointing {
            if c.interval.is_zero() {
                errors.push("checkpoint interval must be positive".into());
            }
            if c.max_concurrent == 0 {
                errors.push("at least one concurrent checkpoint must be allowed".into());
            }
            if c.retained == 0 {
                errors.push("at least one completed checkpoint must be retained".into());
            }
            if c.alignment.overtakes() {
                if c.mode == CheckpointingMode::AtLeastOnce {
                    errors.push(
                        "unaligned barriers (and an alignment timeout) need exactly-once \
                         checkpoints; at-least-once checkpoints never align barriers"
                            .into(),
                    );
                }
                if c.max_concurrent > 1 {
                    errors.push(format!(
                        "unaligned barriers (and an alignment timeout) allow one checkpoint in \
                         progress at a time, not {}; set max concurrent checkpoints to 1",
                        c.max_concurrent
                    ));
                }
            }
        }
        if let Err(e) = self.restart.validate() {
            errors.push(format!("restart strategy: {e}"));
        }
        errors
    }
}
