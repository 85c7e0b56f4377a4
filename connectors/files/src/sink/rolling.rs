//! When a part file stops taking records and becomes pending.

use std::time::Duration;

/// A rolling policy (Flink's `DefaultRollingPolicy` / `OnCheckpointRollingPolicy` in one type).
///
/// Row formats usually roll by size and time and keep in-progress files open across
/// checkpoints; bulk formats must roll at every checkpoint (a Parquet or ORC file cannot be
/// resumed), which the sink enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RollingPolicy {
    /// Roll when a part file reaches this many bytes.
    pub part_size: Option<u64>,
    /// Roll when a part file has been open this long.
    pub rollover_interval: Option<Duration>,
    /// Roll when a part file has received nothing for this long.
    pub inactivity_interval: Option<Duration>,
    /// Roll at every checkpoint.
    pub on_checkpoint: bool,
}

impl Default for RollingPolicy {
    fn default() -> Self {
        Self::default_policy()
    }
}

impl RollingPolicy {
    /// Flink's defaults for row formats: 128 MiB, 60 s open, 60 s inactive.
    pub fn default_policy() -> Self {
        RollingPolicy {
            part_size: Some(128 * 1024 * 1024),
            rollover_interval: Some(Duration::from_secs(60)),
            inactivity_interval: Some(Duration::from_secs(60)),
            on_checkpoint: false,
        }
    }

    /// Roll at every checkpoint only (bulk formats).
    pub fn on_checkpoint() -> Self {
        RollingPolicy {
            part_size: None,
            rollover_interval: None,
            inactivity_interval: None,
            on_checkpoint: true,
        }
    }

    /// Sets the size limit.
    pub fn with_part_size(mut self, bytes: u64) -> Self {
        self.part_size = Some(bytes.max(1));
        self
    }

    /// Sets the open-time limit.
    pub fn with_rollover_interval(mut self, interval: Duration) -> Self {
        self.rollover_interval = Some(interval);
        self
    }

    /// Sets the inactivity limit.
    pub fn with_inactivity_interval(mut self, interval: Duration) -> Self {
        self.inactivity_interval = Some(interval);
        self
    }

    /// Whether a file of `size` bytes must roll after a write.
    pub fn should_roll_on_size(&self, size: u64) -> bool {
        self.part_size.is_some_and(|limit| size >= limit)
    }

    /// Whether a file opened `open_for` ago and last written `idle_for` ago must roll.
    pub fn should_roll_on_time(&self, open_for: Duration, idle_for: Duration) -> bool {
        self.rollover_interval.is_some_and(|i| open_for >= i)
            || self.inactivity_interval.is_some_and(|i| idle_for >= i)
    }
}
