//! Contexts of the reference connectors: the datagen source, the fake-log source and the
//! fake two-phase-committing sink. The testkit runs its suites against them; they are also
//! complete examples of contexts.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use weir_connector_api::sink::Sink;
use weir_connector_api::source::Boundedness;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};

use super::fake_log::{FakeLog, FakeLogSource, FakeLogWriter};
use super::txn_store::{FakeTransactionalStore, FakeTxnSink};
use crate::context::{
    ContextError, SinkContext, SinkSettings, SinkSupport, SourceContext, SourceSettings,
    SourceSupport, SplitWriter, TestInfo,
};
use crate::record::SplitRecord;

fn split_records(split: usize, positions: Range<u64>, seed: u64) -> Vec<SplitRecord> {
    let split = u32::try_from(split).unwrap_or(u32::MAX);
    positions
        .map(|seq| SplitRecord::new(split, seq, seed))
        .collect()
}

/// The context of the datagen source ([`DataGeneratorSource`]) producing [`SplitRecord`]s.
///
/// Datagen makes its own records and cuts them into one split per reader when a job first
/// starts: bounded, `splits × records_per_split` numbers in contiguous ranges (number `k` is
/// position `k % n` of split `k / n`); continuous, split `i` of `p` holds `i, i + p, …` (number
/// `k` is position `k / p` of split `k % p`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DatagenContext;

impl DatagenContext {
    /// The context.
    pub fn new() -> Self {
        DatagenContext
    }
}

#[async_trait]
impl SourceContext for DatagenContext {
    type Record = SplitRecord;
    type Source = DataGeneratorSource<SplitRecord>;

    fn name(&self) -> String {
        "datagen".to_owned()
    }

    fn support(&self) -> SourceSupport {
        SourceSupport::generated(
            "datagen generates its records from a function of a sequence number: there is no \
             external system to write more records into",
        )
        .bounded()
        .unbounded()
        .one_split_per_reader()
    }

    fn create_source(
        &self,
        settings: &SourceSettings,
    ) -> Result<DataGeneratorSource<SplitRecord>, ContextError> {
        let splits = settings.splits.max(1) as u64;
        let n = settings.records_per_split.max(1);
        let seed = settings.seed;
        let rate = settings.rate.map_or(
            RateLimiterStrategy::no_op(),
            RateLimiterStrategy::per_second,
        );
        Ok(match settings.boundedness {
            Boundedness::Bounded => DataGeneratorSource::new(
                move |k| SplitRecord::new((k / n) as u32, k % n, seed),
                Some(n * splits),
                rate,
            ),
            Boundedness::ContinuousUnbounded => DataGeneratorSource::new(
                move |k| SplitRecord::new((k % splits) as u32, k / splits, seed),
                None,
                rate,
            ),
        })
    }

    fn records(
        &self,
        settings: &SourceSettings,
        split: usize,
        positions: Range<u64>,
    ) -> Vec<SplitRecord> {
        split_records(split, positions, settings.seed)
    }
}

/// The context of the reference [`FakeLogSource`]: the suite writes [`SplitRecord`]s into
/// partitions `<test id>-<split>` of a shared [`FakeLog`].
#[derive(Debug, Clone, Default)]
pub struct FakeLogContext {
    log: Arc<FakeLog<SplitRecord>>,
}

impl FakeLogContext {
    /// A context with a fresh fake log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fake log.
    pub fn log(&self) -> &Arc<FakeLog<SplitRecord>> {
        &self.log
    }
}

#[async_trait]
impl SourceContext for FakeLogContext {
    type Record = SplitRecord;
    type Source = FakeLogSource<SplitRecord>;

    fn name(&self) -> String {
        "fake-log".to_owned()
    }

    fn support(&self) -> SourceSupport {
        SourceSupport::written().bounded().unbounded()
    }

    async fn teardown(&mut self, test: &TestInfo) -> Result<(), ContextError> {
        self.log.remove_partitions(&format!("{}-", test.test_id));
        Ok(())
    }

    fn create_source(
        &self,
        settings: &SourceSettings,
    ) -> Result<FakeLogSource<SplitRecord>, ContextError> {
        Ok(FakeLogSource::new(
            Arc::clone(&self.log),
            &format!("{}-", settings.test_id),
            settings.boundedness,
        )
        .with_rate(settings.rate))
    }

    async fn create_split_writer(
        &mut self,
        settings: &SourceSettings,
        split: usize,
    ) -> Result<Box<dyn SplitWriter<SplitRecord>>, ContextError> {
        let partition = format!("{}-{split:04}", settings.test_id);
        Ok(Box::new(FakeLogWriter::create(&self.log, &partition)))
    }

    fn records(
        &self,
        settings: &SourceSettings,
        split: usize,
        positions: Range<u64>,
    ) -> Vec<SplitRecord> {
        split_records(split, positions, settings.seed)
    }
}

/// Makes the sink under test from the test's fake store.
pub type SinkFactory<S> = Arc<dyn Fn(Arc<FakeTransactionalStore<SplitRecord>>) -> S + Send + Sync>;

/// The context of a sink over a [`FakeTransactionalStore`] of [`SplitRecord`]s, one store per
/// test. [`ReferenceSinkContext::new`] tests the reference [`FakeTxnSink`];
/// [`ReferenceSinkContext::with_sink`] tests any other sink over the same fake system (the
/// testkit's negative tests plug deliberately broken sinks in here).
pub struct ReferenceSinkContext<S = FakeTxnSink<SplitRecord>> {
    name: String,
    support: SinkSupport,
    make: SinkFactory<S>,
    stores: Mutex<HashMap<String, Arc<FakeTransactionalStore<SplitRecord>>>>,
}

impl<S> std::fmt::Debug for ReferenceSinkContext<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceSinkContext")
            .field("name", &self.name)
            .field("support", &self.support)
            .finish_non_exhaustive()
    }
}

impl ReferenceSinkContext<FakeTxnSink<SplitRecord>> {
    /// The context of the reference sink (exactly-once, ordered read-back).
    pub fn new() -> Self {
        Self::with_sink(
            "reference-sink",
            SinkSupport::exactly_once().ordered(),
            FakeTxnSink::new,
        )
    }
}

impl Default for ReferenceSinkContext<FakeTxnSink<SplitRecord>> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> ReferenceSinkContext<S> {
    /// A context named `name` for sinks made by `make` from the test's store.
    pub fn with_sink(
        name: &str,
        support: SinkSupport,
        make: impl Fn(Arc<FakeTransactionalStore<SplitRecord>>) -> S + Send + Sync + 'static,
    ) -> Self {
        ReferenceSinkContext {
            name: name.to_owned(),
            support,
            make: Arc::new(make),
            stores: Mutex::new(HashMap::new()),
        }
    }

    /// The store of a test, if it is set up.
    pub fn store(&self, test_id: &str) -> Option<Arc<FakeTransactionalStore<SplitRecord>>> {
        self.stores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(test_id)
            .cloned()
    }

    fn require(
        &self,
        test_id: &str,
    ) -> Result<Arc<FakeTransactionalStore<SplitRecord>>, ContextError> {
        self.store(test_id).ok_or_else(|| {
            ContextError::external(format!(
                "no fake store for test `{test_id}`: setup was not called"
            ))
        })
    }
}

#[async_trait]
impl<S: Sink<SplitRecord>> SinkContext for ReferenceSinkContext<S> {
    type Record = SplitRecord;
    type Sink = S;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn support(&self) -> SinkSupport {
        self.support.clone()
    }

    async fn setup(&mut self, test: &TestInfo) -> Result<(), ContextError> {
        self.stores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(test.test_id.clone(), FakeTransactionalStore::new());
        Ok(())
    }

    async fn teardown(&mut self, test: &TestInfo) -> Result<(), ContextError> {
        self.stores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&test.test_id);
        Ok(())
    }

    fn create_sink(&self, settings: &SinkSettings) -> Result<S, ContextError> {
        Ok((self.make)(self.require(&settings.test_id)?))
    }

    async fn read_back(&self, settings: &SinkSettings) -> Result<Vec<SplitRecord>, ContextError> {
        Ok(self.require(&settings.test_id)?.committed())
    }

    fn records(
        &self,
        settings: &SinkSettings,
        split: usize,
        positions: Range<u64>,
    ) -> Vec<SplitRecord> {
        split_records(split, positions, settings.seed)
    }
}
