//! Shared by the AsyncSink tests: the fake bulk destination, the sink over it, and its testkit
//! context.

// Each test file uses a part; helpers are `pub` for the test files that include this module.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fake_destination;
pub mod writer_harness;

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::Result;
use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup, MetricValue};
use weir_connector_api::sink::{InitContext, WriteContext};
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};
use weir_connector_base::sink::{AsyncSink, AsyncSinkConfig, AsyncSinkParts};
use weir_testkit::prelude::*;
use weir_testkit::SplitRecord;

pub use fake_destination::{FakeBulkDestination, FakeStats, FakeSubmitter, Faults, Storage};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An [`InitContext`] with its own in-memory metric group.
pub struct TestInitContext {
    pub metrics: InMemoryMetricGroup,
}

impl TestInitContext {
    pub fn new() -> Self {
        TestInitContext {
            metrics: InMemoryMetricGroup::new("writer"),
        }
    }

    /// The value of metric `name` of the writer.
    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        self.metrics.value(&format!("writer.{name}"))
    }

    pub fn counter(&self, name: &str) -> u64 {
        match self.metric(name) {
            Some(MetricValue::Counter(n)) => n,
            other => panic!("{name} is not a counter: {other:?}"),
        }
    }

    pub fn gauge(&self, name: &str) -> i64 {
        match self.metric(name) {
            Some(MetricValue::Gauge(n)) => n,
            other => panic!("{name} is not a gauge: {other:?}"),
        }
    }
}

impl InitContext for TestInitContext {
    fn subtask_index(&self) -> usize {
        0
    }
    fn parallelism(&self) -> usize {
        1
    }
    fn attempt(&self) -> u32 {
        0
    }
    fn restored_checkpoint_id(&self) -> Option<CheckpointId> {
        None
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::new(self.metrics.clone())
    }
    fn operator_id(&self) -> &'static str {
        "async-sink-under-test"
    }
}

/// Serializes [`SplitRecord`] entries (version 1: split, seq, payload), counting the entries it
/// reads back (those a restored writer got from its state).
#[derive(Default)]
pub struct SplitRecordSerializer {
    pub restored: Arc<AtomicU64>,
}

impl VersionedSerializer<SplitRecord> for SplitRecordSerializer {
    fn version(&self) -> u32 {
        1
    }

    fn serialize(&self, r: &SplitRecord) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_u32(r.split).put_u64(r.seq).put_u64(r.payload);
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<SplitRecord, StateError> {
        if version != 1 {
            return Err(StateError::unknown_version("split record", version, &[1]));
        }
        let mut r = StateReader::new(bytes);
        let record = SplitRecord {
            split: r.get_u32()?,
            seq: r.get_u64()?,
            payload: r.get_u64()?,
        };
        r.finish()?;
        self.restored.fetch_add(1, Ordering::Relaxed);
        Ok(record)
    }
}

/// The converter of the sink under test: a record is its own entry.
pub type Identity = fn(SplitRecord, &WriteContext) -> Result<SplitRecord>;

/// The AsyncSink parts over a fake destination.
pub struct FakeParts {
    pub destination: Arc<FakeBulkDestination<SplitRecord>>,
    /// Entries restored from writer state, over every writer.
    pub restored: Arc<AtomicU64>,
}

impl AsyncSinkParts<SplitRecord> for FakeParts {
    type Entry = SplitRecord;
    type Converter = Identity;
    type Submitter = FakeSubmitter<SplitRecord>;

    fn create_converter(&self, _ctx: &dyn InitContext) -> Result<Identity> {
        Ok(|record, _ctx| Ok(record))
    }

    fn create_submitter(&self, _ctx: &dyn InitContext) -> Result<Self::Submitter> {
        Ok(FakeSubmitter {
            destination: Arc::clone(&self.destination),
            entry_bytes: 24,
        })
    }

    fn entry_serializer(&self) -> Arc<dyn VersionedSerializer<SplitRecord>> {
        Arc::new(SplitRecordSerializer {
            restored: Arc::clone(&self.restored),
        })
    }
}

/// What every test of a context saw, summed over its cases and trials.
#[derive(Debug, Default)]
pub struct Totals {
    pub tests: AtomicU64,
    pub generated: AtomicU64,
    pub received: AtomicU64,
    pub distinct: AtomicU64,
    pub missing: AtomicU64,
    pub requests: AtomicU64,
    pub failed_requests: AtomicU64,
    pub slow_requests: AtomicU64,
    pub entry_failures: AtomicU64,
    pub throttled_entries: AtomicU64,
    /// Entries restored from writer state and sent again.
    pub restored_entries: Arc<AtomicU64>,
}

impl Totals {
    pub fn get(&self, counter: impl Fn(&Totals) -> &AtomicU64) -> u64 {
        counter(self).load(Ordering::Relaxed)
    }
}

/// The testkit context of an [`AsyncSink`] over a [`FakeBulkDestination`] per test.
pub struct AsyncSinkContext {
    name: String,
    support: SinkSupport,
    storage: Storage,
    faults: Faults,
    config: AsyncSinkConfig,
    destinations: Mutex<HashMap<String, Arc<FakeBulkDestination<SplitRecord>>>>,
    generated: Mutex<HashMap<String, HashSet<SplitRecord>>>,
    pub totals: Arc<Totals>,
}

impl AsyncSinkContext {
    pub fn new(
        name: &str,
        support: SinkSupport,
        storage: Storage,
        faults: Faults,
        config: AsyncSinkConfig,
    ) -> Self {
        AsyncSinkContext {
            name: name.to_owned(),
            support,
            storage,
            faults,
            config,
            destinations: Mutex::new(HashMap::new()),
            generated: Mutex::new(HashMap::new()),
            totals: Arc::default(),
        }
    }

    fn destination(
        &self,
        test_id: &str,
    ) -> Result<Arc<FakeBulkDestination<SplitRecord>>, ContextError> {
        lock(&self.destinations)
            .get(test_id)
            .cloned()
            .ok_or_else(|| ContextError::external(format!("no fake destination for `{test_id}`")))
    }
}

#[async_trait]
impl SinkContext for AsyncSinkContext {
    type Record = SplitRecord;
    type Sink = AsyncSink<SplitRecord, FakeParts>;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn support(&self) -> SinkSupport {
        self.support.clone()
    }

    async fn setup(&mut self, test: &TestInfo) -> Result<(), ContextError> {
        let mut faults = self.faults;
        faults.seed ^= test.seed;
        lock(&self.destinations).insert(
            test.test_id.clone(),
            FakeBulkDestination::new(self.storage, faults),
        );
        Ok(())
    }

    async fn teardown(&mut self, test: &TestInfo) -> Result<(), ContextError> {
        lock(&self.generated).remove(&test.test_id);
        if let Some(d) = lock(&self.destinations).remove(&test.test_id) {
            let t = &self.totals;
            let add = |to: &AtomicU64, from: &AtomicU64| {
                to.fetch_add(FakeStats::get(from), Ordering::Relaxed);
            };
            add(&t.requests, &d.stats.requests);
            add(&t.failed_requests, &d.stats.failed_requests);
            add(&t.slow_requests, &d.stats.slow_requests);
            add(&t.entry_failures, &d.stats.entry_failures);
            add(&t.throttled_entries, &d.stats.throttled_entries);
        }
        Ok(())
    }

    fn create_sink(&self, settings: &SinkSettings) -> Result<Self::Sink, ContextError> {
        Ok(AsyncSink::new(
            FakeParts {
                destination: self.destination(&settings.test_id)?,
                restored: Arc::clone(&self.totals.restored_entries),
            },
            self.config.clone(),
        ))
    }

    async fn read_back(&self, settings: &SinkSettings) -> Result<Vec<SplitRecord>, ContextError> {
        let stored = self.destination(&settings.test_id)?.stored();
        let distinct: HashSet<SplitRecord> = stored.iter().copied().collect();
        let generated = lock(&self.generated)
            .get(&settings.test_id)
            .cloned()
            .unwrap_or_default();
        let t = &self.totals;
        t.tests.fetch_add(1, Ordering::Relaxed);
        t.generated
            .fetch_add(generated.len() as u64, Ordering::Relaxed);
        t.received.fetch_add(stored.len() as u64, Ordering::Relaxed);
        t.distinct
            .fetch_add(distinct.len() as u64, Ordering::Relaxed);
        t.missing.fetch_add(
            generated.difference(&distinct).count() as u64,
            Ordering::Relaxed,
        );
        Ok(stored)
    }

    fn records(
        &self,
        settings: &SinkSettings,
        split: usize,
        positions: Range<u64>,
    ) -> Vec<SplitRecord> {
        let split = u32::try_from(split).unwrap_or(u32::MAX);
        let records: Vec<SplitRecord> = positions
            .map(|seq| SplitRecord::new(split, seq, settings.seed))
            .collect();
        lock(&self.generated)
            .entry(settings.test_id.clone())
            .or_default()
            .extend(records.iter().copied());
        records
    }
}
