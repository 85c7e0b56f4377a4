//! External contexts: how a connector plugs its external system into the suites (FLIP-133's
//! `ExternalContext`).
//!
//! - A **source** context creates the source for given [`SourceSettings`] and either writes test
//!   data into splits of the external system ([`SourceData::Written`]: a Kafka partition, a file,
//!   an index) or declares that the source makes its own records ([`SourceData::Generated`]:
//!   datagen), in which case [`SourceContext::records`] says which records each split produces.
//! - A **sink** context creates the sink and reads back what reached the external system.
//! - Both get [`setup`](SourceContext::setup) and [`teardown`](SourceContext::teardown) calls around
//!   every case (and every fault-injection trial), with a [`TestInfo`] whose `test_id` is unique
//!   and safe as a topic, index, bucket or directory name.
//!
//! Records of one test must be distinct across splits: contexts derive them from the split
//! index, the position in the split and the settings' seed (see [`crate::SplitRecord`]).

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use serde::Serialize;
use weir_connector_api::sink::Sink;
use weir_connector_api::source::{Boundedness, Source};
use weir_connector_api::ConnectorError;

pub use crate::case::SuiteKind;
use crate::case::{SinkCase, SourceCase};
use crate::check::Semantic;
use crate::record::TestRecord;
use crate::servers::FixtureError;

/// Why a context could not do what a suite asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The context cannot do this (the case is reported as failed with this reason; declare
    /// cases you cannot support in [`SourceSupport`] / [`SinkSupport`] instead).
    #[error("not supported: {0}")]
    NotSupported(String),
    /// The external system failed or answered unexpectedly.
    #[error("external system: {0}")]
    External(String),
    /// A connector call failed.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// A server fixture failed.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
}

impl ContextError {
    /// An external-system error with a message.
    pub fn external(message: impl fmt::Display) -> Self {
        ContextError::External(message.to_string())
    }
}

/// The test a setup or teardown call belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestInfo {
    /// The suite.
    pub suite: SuiteKind,
    /// The case name, e.g. `single_split_bounded`.
    pub case: String,
    /// The checked semantic.
    pub semantic: Semantic,
    /// Unique per case run (and per fault trial): lowercase ASCII letters, digits and `-`, at
    /// most 40 characters, starting with `weir-`. Use it to name topics, indices, buckets.
    pub test_id: String,
    /// The seed of the test's records.
    pub seed: u64,
}

impl TestInfo {
    /// A test info (the suites create these; contexts only read them).
    pub fn new(suite: SuiteKind, case: &str, semantic: Semantic, test_id: &str, seed: u64) -> Self {
        TestInfo {
            suite,
            case: case.to_owned(),
            semantic,
            test_id: test_id.to_owned(),
            seed,
        }
    }
}

/// Where a source's test data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceData {
    /// The suite writes records into splits of the external system through
    /// [`SourceContext::create_split_writer`].
    Written,
    /// The source makes its own records; [`SourceContext::records`] says which. Nothing can be
    /// written to it: cases that write more data are not applicable, for this reason.
    Generated {
        /// Why nothing can be written (shown in the report).
        reason: String,
    },
}

/// How a source's splits come about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitLayout {
    /// One split per [`SourceContext::create_split_writer`] call (or, for generated data, as many
    /// splits as [`SourceSettings::splits`] asks for, whatever the parallelism).
    AsRequested,
    /// The source cuts its data into one split per reader when a job first starts (datagen):
    /// the suite starts every job with as many readers as splits, and reaches "more readers than
    /// splits" through a savepoint.
    OnePerReader,
}

/// What a source supports; cases outside it are reported as not applicable, with the reason.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SourceSupport {
    /// Where the test data comes from.
    pub data: SourceData,
    /// Whether the source has a bounded mode.
    pub bounded: bool,
    /// Whether the source has a continuous (unbounded) mode.
    pub unbounded: bool,
    /// How splits come about.
    pub layout: SplitLayout,
    /// Cases the connector declares not applicable, with the reason.
    pub not_applicable: Vec<(SourceCase, String)>,
}

impl SourceSupport {
    /// The suite writes the test data (call [`bounded`](Self::bounded) and/or
    /// [`unbounded`](Self::unbounded) too).
    pub fn written() -> Self {
        SourceSupport {
            data: SourceData::Written,
            bounded: false,
            unbounded: false,
            layout: SplitLayout::AsRequested,
            not_applicable: Vec::new(),
        }
    }

    /// The source generates its records; `reason` says why nothing can be written to it.
    pub fn generated(reason: impl Into<String>) -> Self {
        SourceSupport {
            data: SourceData::Generated {
                reason: reason.into(),
            },
            ..Self::written()
        }
    }

    /// The source has a bounded mode.
    pub fn bounded(mut self) -> Self {
        self.bounded = true;
        self
    }

    /// The source has a continuous mode.
    pub fn unbounded(mut self) -> Self {
        self.unbounded = true;
        self
    }

    /// The source cuts one split per reader at first start (see [`SplitLayout::OnePerReader`]).
    pub fn one_split_per_reader(mut self) -> Self {
        self.layout = SplitLayout::OnePerReader;
        self
    }

    /// Declares a case not applicable, with the reason shown in the report.
    pub fn not_applicable(mut self, case: SourceCase, reason: impl Into<String>) -> Self {
        self.not_applicable.push((case, reason.into()));
        self
    }

    /// Whether the source supports `boundedness`.
    pub fn supports(&self, boundedness: Boundedness) -> bool {
        match boundedness {
            Boundedness::Bounded => self.bounded,
            Boundedness::ContinuousUnbounded => self.unbounded,
        }
    }
}

/// What a sink guarantees and how its output reads back.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SinkSupport {
    /// The strongest guarantee the sink gives (checks never expect more).
    pub guarantee: Semantic,
    /// Whether reading back keeps the order in which each split's records were written (then the
    /// exactly-once checks include per-split order).
    pub ordered: bool,
    /// Cases the connector declares not applicable, with the reason.
    pub not_applicable: Vec<(SinkCase, String)>,
}

impl SinkSupport {
    /// An exactly-once sink (two-phase commit or idempotent writes).
    pub fn exactly_once() -> Self {
        SinkSupport {
            guarantee: Semantic::ExactlyOnce,
            ordered: false,
            not_applicable: Vec::new(),
        }
    }

    /// An at-least-once sink.
    pub fn at_least_once() -> Self {
        SinkSupport {
            guarantee: Semantic::AtLeastOnce,
            ..Self::exactly_once()
        }
    }

    /// Reading back keeps each split's write order.
    pub fn ordered(mut self) -> Self {
        self.ordered = true;
        self
    }

    /// Declares a case not applicable, with the reason shown in the report.
    pub fn not_applicable(mut self, case: SinkCase, reason: impl Into<String>) -> Self {
        self.not_applicable.push((case, reason.into()));
        self
    }
}

/// How the suite wants a source made.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SourceSettings {
    /// The test's id (the same as [`TestInfo::test_id`]).
    pub test_id: String,
    /// Bounded or continuous.
    #[serde(serialize_with = "ser_boundedness")]
    pub boundedness: Boundedness,
    /// How many splits the test uses (for generated data: how many the source must produce).
    pub splits: usize,
    /// For generated bounded data: how many records each split produces. Written data: how many
    /// the suite writes into each split at first.
    pub records_per_split: u64,
    /// The seed of the records.
    pub seed: u64,
    /// A pacing hint: records per second over all readers, so that stops and failures land
    /// mid-stream. Honour it if the source can (datagen's rate limiter does).
    pub rate: Option<f64>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // the signature serde asks for
fn ser_boundedness<S: serde::Serializer>(b: &Boundedness, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match b {
        Boundedness::Bounded => "bounded",
        Boundedness::ContinuousUnbounded => "unbounded",
    })
}

impl SourceSettings {
    /// Settings (the suites create these; a context's own unit tests may too).
    pub fn new(
        test_id: &str,
        boundedness: Boundedness,
        splits: usize,
        records_per_split: u64,
        seed: u64,
    ) -> Self {
        SourceSettings {
            test_id: test_id.to_owned(),
            boundedness,
            splits,
            records_per_split,
            seed,
            rate: None,
        }
    }

    /// Sets the pacing hint.
    pub fn with_rate(mut self, records_per_second: Option<f64>) -> Self {
        self.rate = records_per_second;
        self
    }
}

/// How the suite wants a sink made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SinkSettings {
    /// The test's id (the same as [`TestInfo::test_id`]).
    pub test_id: String,
    /// The semantic the job checkpoints with (a sink with a configurable guarantee uses it).
    pub semantic: Semantic,
    /// The seed of the records.
    pub seed: u64,
}

impl SinkSettings {
    /// Settings (the suites create these; a context's own unit tests may too).
    pub fn new(test_id: &str, semantic: Semantic, seed: u64) -> Self {
        SinkSettings {
            test_id: test_id.to_owned(),
            semantic,
            seed,
        }
    }
}

/// Writes test records into one split of the external system (FLIP-133's
/// `ExternalSystemSplitDataWriter`).
#[async_trait]
pub trait SplitWriter<T>: Send {
    /// Appends `records`, in order; they must be readable when this returns.
    async fn write(&mut self, records: &[T]) -> Result<(), ContextError>;
}

/// Plugs a source connector and its external system into the [source suite](mod@crate::source_suite).
///
/// See the [crate docs](crate) for a complete example.
#[async_trait]
pub trait SourceContext: Send + Sync + 'static {
    /// The records the source emits.
    type Record: TestRecord;
    /// The source under test.
    type Source: Source<Output = Self::Record>;

    /// The connector's name in reports (e.g. `kafka`); report files are named after it.
    fn name(&self) -> String;

    /// What the source supports.
    fn support(&self) -> SourceSupport;

    /// Creates the test's resources (called before each case).
    async fn setup(&mut self, _test: &TestInfo) -> Result<(), ContextError> {
        Ok(())
    }

    /// Removes the test's resources (called after each case, also when it failed).
    async fn teardown(&mut self, _test: &TestInfo) -> Result<(), ContextError> {
        Ok(())
    }

    /// Creates the source for `settings`. Called once per job run (a restore creates a new one).
    fn create_source(&self, settings: &SourceSettings) -> Result<Self::Source, ContextError>;

    /// Creates split number `split` (0, 1, … in order) in the external system and returns its
    /// writer. Only for [`SourceData::Written`].
    async fn create_split_writer(
        &mut self,
        _settings: &SourceSettings,
        split: usize,
    ) -> Result<Box<dyn SplitWriter<Self::Record>>, ContextError> {
        Err(ContextError::NotSupported(format!(
            "this context does not write data (asked for split {split})"
        )))
    }

    /// The records at positions `positions` of split `split`, distinct from every other
    /// split's, derived from `settings.seed`. Written data: what the suite writes. Generated
    /// data: what the source produces for that split.
    fn records(
        &self,
        settings: &SourceSettings,
        split: usize,
        positions: Range<u64>,
    ) -> Vec<Self::Record>;
}

/// Plugs a sink connector and its external system into the [sink suite](mod@crate::sink_suite).
#[async_trait]
pub trait SinkContext: Send + Sync + 'static {
    /// The records the sink consumes.
    type Record: TestRecord;
    /// The sink under test.
    type Sink: Sink<Self::Record>;

    /// The connector's name in reports; report files are named after it.
    fn name(&self) -> String;

    /// What the sink guarantees.
    fn support(&self) -> SinkSupport;

    /// Creates the test's resources (called before each case and each fault trial).
    async fn setup(&mut self, _test: &TestInfo) -> Result<(), ContextError> {
        Ok(())
    }

    /// Removes the test's resources (called after each case and trial, also when it failed).
    async fn teardown(&mut self, _test: &TestInfo) -> Result<(), ContextError> {
        Ok(())
    }

    /// Creates the sink for `settings`. Called once per job run (a restore creates a new one).
    fn create_sink(&self, settings: &SinkSettings) -> Result<Self::Sink, ContextError>;

    /// Everything that reached the external system for this test and is visible to readers
    /// (committed), in the order the system returns it.
    async fn read_back(&self, settings: &SinkSettings) -> Result<Vec<Self::Record>, ContextError>;

    /// The records at positions `positions` of input split `split`, distinct from every other
    /// split's, derived from `settings.seed`.
    fn records(
        &self,
        settings: &SinkSettings,
        split: usize,
        positions: Range<u64>,
    ) -> Vec<Self::Record>;
}
