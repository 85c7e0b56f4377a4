//! The cases: which suite a case belongs to ([`SuiteKind`]), the cases of the source suite
//! ([`SourceCase`]) and of the sink suite ([`SinkCase`]), and how long one case may take.
//!
//! The contexts name cases (to declare them not applicable), the suites run them and the
//! reports record them, so they live here, apart from all three.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_connector_api::source::Boundedness;

use crate::check::Semantic;

/// The timeout of a whole case (the suite macros fail a case that takes longer).
pub const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Which suite a case belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuiteKind {
    /// The source suite.
    Source,
    /// The sink suite.
    Sink,
    /// Restoring state written by an earlier release.
    StateCompat,
}

impl SuiteKind {
    /// `source`, `sink` or `state-compat`.
    pub fn as_str(self) -> &'static str {
        match self {
            SuiteKind::Source => "source",
            SuiteKind::Sink => "sink",
            SuiteKind::StateCompat => "state-compat",
        }
    }
}

impl fmt::Display for SuiteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A case of the source suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceCase {
    /// One split, one reader, bounded: every record in order, the job finishes.
    SingleSplitBounded,
    /// One split, one reader, continuous: every record in order.
    SingleSplitUnbounded,
    /// Four splits, four readers, bounded: per-split order.
    MultipleSplitsBounded,
    /// Four splits, four readers, continuous: per-split order.
    MultipleSplitsUnbounded,
    /// Stop with a savepoint mid-stream, restore, finish (bounded).
    SavepointBounded,
    /// Stop with a savepoint mid-stream, restore, read on (continuous).
    SavepointUnbounded,
    /// Stop with a savepoint, write more records, restore: both old and new are read.
    SavepointWriteMore,
    /// Stop at parallelism 2, restore at 4.
    ScaleUp,
    /// Stop at parallelism 4, restore at 2.
    ScaleDown,
    /// `numRecordsIn` equals the records read.
    Metrics,
    /// More readers than splits: the bounded job still finishes.
    IdleReader,
    /// Read set A, fail the job, read set B (bounded: the rest).
    FailoverBounded,
    /// Read set A, fail the job, write and read set B (continuous).
    FailoverUnbounded,
}

impl SourceCase {
    /// Every case, in suite order.
    pub const ALL: [SourceCase; 13] = [
        SourceCase::SingleSplitBounded,
        SourceCase::SingleSplitUnbounded,
        SourceCase::MultipleSplitsBounded,
        SourceCase::MultipleSplitsUnbounded,
        SourceCase::SavepointBounded,
        SourceCase::SavepointUnbounded,
        SourceCase::SavepointWriteMore,
        SourceCase::ScaleUp,
        SourceCase::ScaleDown,
        SourceCase::Metrics,
        SourceCase::IdleReader,
        SourceCase::FailoverBounded,
        SourceCase::FailoverUnbounded,
    ];

    /// The case's name (its test function's name, without the mode).
    pub fn name(self) -> &'static str {
        match self {
            SourceCase::SingleSplitBounded => "single_split_bounded",
            SourceCase::SingleSplitUnbounded => "single_split_unbounded",
            SourceCase::MultipleSplitsBounded => "multiple_splits_bounded",
            SourceCase::MultipleSplitsUnbounded => "multiple_splits_unbounded",
            SourceCase::SavepointBounded => "savepoint_bounded",
            SourceCase::SavepointUnbounded => "savepoint_unbounded",
            SourceCase::SavepointWriteMore => "savepoint_write_more",
            SourceCase::ScaleUp => "scale_up",
            SourceCase::ScaleDown => "scale_down",
            SourceCase::Metrics => "metrics",
            SourceCase::IdleReader => "idle_reader",
            SourceCase::FailoverBounded => "failover_bounded",
            SourceCase::FailoverUnbounded => "failover_unbounded",
        }
    }

    /// The boundedness the case needs, if it needs a particular one.
    pub(crate) fn needs(self) -> Option<Boundedness> {
        match self {
            SourceCase::SingleSplitBounded
            | SourceCase::MultipleSplitsBounded
            | SourceCase::SavepointBounded
            | SourceCase::IdleReader
            | SourceCase::FailoverBounded => Some(Boundedness::Bounded),
            SourceCase::SingleSplitUnbounded
            | SourceCase::MultipleSplitsUnbounded
            | SourceCase::SavepointUnbounded
            | SourceCase::SavepointWriteMore
            | SourceCase::FailoverUnbounded => Some(Boundedness::ContinuousUnbounded),
            SourceCase::ScaleUp | SourceCase::ScaleDown | SourceCase::Metrics => None,
        }
    }
}

/// A case of the sink suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkCase {
    /// Every record arrives.
    Basic,
    /// Stop with a savepoint mid-stream, restore, finish.
    StartFromSavepoint,
    /// Stop at parallelism 2, restore at 4.
    ScaleUp,
    /// Stop at parallelism 4, restore at 2.
    ScaleDown,
    /// `numRecordsSend` equals the records written.
    Metrics,
    /// Randomized failures at every fault point, exactly-once mode: the output is exact.
    ExactlyOnceUnderFaults,
    /// Randomized failures, at-least-once mode: every record present, only real duplicates.
    AtLeastOnceUnderFaults,
}

impl SinkCase {
    /// Every case, in suite order.
    pub const ALL: [SinkCase; 7] = [
        SinkCase::Basic,
        SinkCase::StartFromSavepoint,
        SinkCase::ScaleUp,
        SinkCase::ScaleDown,
        SinkCase::Metrics,
        SinkCase::ExactlyOnceUnderFaults,
        SinkCase::AtLeastOnceUnderFaults,
    ];

    /// The case's name (its test function's name, without the mode).
    pub fn name(self) -> &'static str {
        match self {
            SinkCase::Basic => "basic",
            SinkCase::StartFromSavepoint => "start_from_savepoint",
            SinkCase::ScaleUp => "scale_up",
            SinkCase::ScaleDown => "scale_down",
            SinkCase::Metrics => "metrics",
            SinkCase::ExactlyOnceUnderFaults => "exactly_once_under_faults",
            SinkCase::AtLeastOnceUnderFaults => "at_least_once_under_faults",
        }
    }

    /// The checkpointing mode a fault case runs in (the other cases run in both).
    pub fn fixed_mode(self) -> Option<Semantic> {
        match self {
            SinkCase::ExactlyOnceUnderFaults => Some(Semantic::ExactlyOnce),
            SinkCase::AtLeastOnceUnderFaults => Some(Semantic::AtLeastOnce),
            _ => None,
        }
    }
}
