//! Test contexts and a hand-driven "runtime" for the datagen source.

// Test support: failing loudly is the point.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::Result;
use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup, MetricValue};
use weir_connector_api::source::{
    CollectingOutput, InputStatus, Source, SourceEvent, SourceReader, SourceReaderContext,
    SplitEnumerator, SplitEnumeratorContext, SplitsAssignment,
};
use weir_connector_api::state::VersionedSerializer;
use weir_connector_datagen::{DataGeneratorSource, NumberSequenceSplit};

/// A reader context that records split requests and events.
pub struct TestReaderContext {
    pub subtask: usize,
    pub parallelism: usize,
    pub metrics: InMemoryMetricGroup,
    pub split_requests: AtomicUsize,
    pub events: Mutex<Vec<SourceEvent>>,
}

impl TestReaderContext {
    pub fn new(subtask: usize, parallelism: usize) -> Arc<Self> {
        Arc::new(TestReaderContext {
            subtask,
            parallelism,
            metrics: InMemoryMetricGroup::new(format!("reader-{subtask}")),
            split_requests: AtomicUsize::new(0),
            events: Mutex::new(Vec::new()),
        })
    }

    pub fn take_split_requests(&self) -> usize {
        self.split_requests.swap(0, Ordering::SeqCst)
    }

    pub fn counter(&self, name: &str) -> u64 {
        match self
            .metrics
            .value(&format!("reader-{}.{name}", self.subtask))
        {
            Some(MetricValue::Counter(value)) => value,
            other => panic!("no counter {name}: {other:?}"),
        }
    }

    pub fn gauge(&self, name: &str) -> i64 {
        match self
            .metrics
            .value(&format!("reader-{}.{name}", self.subtask))
        {
            Some(MetricValue::Gauge(value)) => value,
            other => panic!("no gauge {name}: {other:?}"),
        }
    }
}

impl SourceReaderContext for TestReaderContext {
    fn subtask_index(&self) -> usize {
        self.subtask
    }
    fn parallelism(&self) -> usize {
        self.parallelism
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::new(self.metrics.clone())
    }
    fn send_split_request(&self) -> Result<()> {
        self.split_requests.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn send_source_event(&self, event: SourceEvent) -> Result<()> {
        self.events.lock().unwrap().push(event);
        Ok(())
    }
    fn spawn(&self, _name: &str, _task: BoxFuture<'static, ()>) {
        panic!("the datagen reader spawns no tasks");
    }
}

/// What the enumerator did through its context.
#[derive(Default)]
pub struct EnumeratorRecord {
    /// Every assignment, in order: (subtask, split).
    pub assignments: Mutex<Vec<(usize, NumberSequenceSplit)>>,
    /// Assignments not yet delivered to readers.
    pub undelivered: Mutex<Vec<(usize, NumberSequenceSplit)>>,
    /// Subtasks told "no more splits", not yet delivered.
    pub no_more: Mutex<Vec<usize>>,
}

/// An enumerator context that records assignments.
pub struct TestEnumeratorContext {
    pub parallelism: usize,
    pub record: Arc<EnumeratorRecord>,
}

impl SplitEnumeratorContext<NumberSequenceSplit, Infallible> for TestEnumeratorContext {
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::new(InMemoryMetricGroup::new("enumerator"))
    }
    fn current_parallelism(&self) -> usize {
        self.parallelism
    }
    fn registered_readers(&self) -> Vec<usize> {
        (0..self.parallelism).collect()
    }
    fn assign_splits(&self, assignment: SplitsAssignment<NumberSequenceSplit>) -> Result<()> {
        for (subtask, splits) in assignment.assignment {
            for split in splits {
                self.record
                    .assignments
                    .lock()
                    .unwrap()
                    .push((subtask, split.clone()));
                self.record
                    .undelivered
                    .lock()
                    .unwrap()
                    .push((subtask, split));
            }
        }
        Ok(())
    }
    fn signal_no_more_splits(&self, subtask: usize) -> Result<()> {
        self.record.no_more.lock().unwrap().push(subtask);
        Ok(())
    }
    fn send_event_to_reader(&self, _subtask: usize, _event: SourceEvent) -> Result<()> {
        Ok(())
    }
    fn call_async(&self, _task: BoxFuture<'static, Infallible>) {}
    fn call_async_periodic(
        &self,
        _task: Box<dyn FnMut() -> BoxFuture<'static, Infallible> + Send>,
        _initial_delay: Duration,
        _period: Duration,
    ) {
    }
}

pub type Gen = DataGeneratorSource<u64>;
pub type Reader = <Gen as Source>::Reader;
pub type Enumerator = <Gen as Source>::Enumerator;

/// A checkpoint of the whole source, serialized as a runtime would store it.
pub struct Snapshot {
    pub enumerator: (u32, Vec<u8>),
    pub readers: Vec<Vec<(u32, Vec<u8>)>>,
}

/// Drives one enumerator and `p` readers by hand: routes split requests to the enumerator and
/// assignments back, polls readers, takes and restores checkpoints.
pub struct Harness {
    pub source: Arc<Gen>,
    pub enumerator: Enumerator,
    pub record: Arc<EnumeratorRecord>,
    pub readers: Vec<Reader>,
    pub contexts: Vec<Arc<TestReaderContext>>,
    pub outputs: Vec<CollectingOutput<u64>>,
    pub finished: Vec<bool>,
}

impl Harness {
    /// A fresh job: enumerator created, readers created and started.
    pub fn start(source: Gen, parallelism: usize) -> Self {
        let source = Arc::new(source);
        let record = Arc::new(EnumeratorRecord::default());
        let ctx = TestEnumeratorContext {
            parallelism,
            record: Arc::clone(&record),
        };
        let enumerator = source.create_enumerator(Box::new(ctx)).unwrap();
        Self::with_enumerator(source, enumerator, record, parallelism, Vec::new())
    }

    /// A job restored from `snapshot` at `parallelism`: reader states are redistributed round
    /// robin over the new readers (rescaling).
    pub fn restore(source: Gen, parallelism: usize, snapshot: &Snapshot) -> Self {
        let source = Arc::new(source);
        let record = Arc::new(EnumeratorRecord::default());
        let ctx = TestEnumeratorContext {
            parallelism,
            record: Arc::clone(&record),
        };
        let state_serializer = source.enumerator_state_serializer();
        let (version, bytes) = &snapshot.enumerator;
        let state = state_serializer.deserialize(*version, bytes).unwrap();
        let enumerator = source.restore_enumerator(Box::new(ctx), state).unwrap();
        let split_serializer = source.split_serializer();
        let splits: Vec<NumberSequenceSplit> = snapshot
            .readers
            .iter()
            .flatten()
            .map(|(version, bytes)| split_serializer.deserialize(*version, bytes).unwrap())
            .collect();
        let mut per_reader = vec![Vec::new(); parallelism];
        for (i, split) in splits.into_iter().enumerate() {
            per_reader[i % parallelism].push(split);
        }
        Self::with_enumerator(source, enumerator, record, parallelism, per_reader)
    }

    fn with_enumerator(
        source: Arc<Gen>,
        mut enumerator: Enumerator,
        record: Arc<EnumeratorRecord>,
        parallelism: usize,
        restored: Vec<Vec<NumberSequenceSplit>>,
    ) -> Self {
        enumerator.start().unwrap();
        let mut readers = Vec::new();
        let mut contexts = Vec::new();
        let mut restored = restored.into_iter();
        for subtask in 0..parallelism {
            let ctx = TestReaderContext::new(subtask, parallelism);
            let mut reader = source.create_reader(ctx.clone()).unwrap();
            enumerator.add_reader(subtask).unwrap();
            if let Some(splits) = restored.next() {
                if !splits.is_empty() {
                    reader.add_splits(splits).unwrap();
                }
            }
            reader.start().unwrap();
            readers.push(reader);
            contexts.push(ctx);
        }
        Harness {
            source,
            enumerator,
            record,
            outputs: (0..parallelism).map(|_| CollectingOutput::new()).collect(),
            finished: vec![false; parallelism],
            readers,
            contexts,
        }
    }

    /// Delivers split requests to the enumerator and its answers to the readers.
    pub fn route(&mut self) {
        for (subtask, ctx) in self.contexts.iter().enumerate() {
            for _ in 0..ctx.take_split_requests() {
                self.enumerator.handle_split_request(subtask).unwrap();
            }
        }
        let undelivered: Vec<_> = self.record.undelivered.lock().unwrap().drain(..).collect();
        for (subtask, split) in undelivered {
            self.readers[subtask].add_splits(vec![split]).unwrap();
        }
        let no_more: Vec<_> = self.record.no_more.lock().unwrap().drain(..).collect();
        for subtask in no_more {
            self.readers[subtask].notify_no_more_splits();
        }
    }

    /// Routes, then polls reader `subtask` once.
    pub fn poll(&mut self, subtask: usize) -> InputStatus {
        self.route();
        let status = self.readers[subtask]
            .poll_next(&mut self.outputs[subtask])
            .unwrap();
        if status == InputStatus::EndOfInput {
            self.finished[subtask] = true;
        }
        status
    }

    /// Polls every unfinished reader once, round robin, `rounds` times.
    pub fn run_rounds(&mut self, rounds: usize) {
        for _ in 0..rounds {
            for subtask in 0..self.readers.len() {
                if !self.finished[subtask] {
                    self.poll(subtask);
                }
            }
        }
    }

    /// Polls until every reader reported end of input.
    pub fn run_to_end(&mut self) {
        for _ in 0..1_000_000 {
            if self.finished.iter().all(|f| *f) {
                return;
            }
            self.run_rounds(1);
        }
        panic!("readers did not finish");
    }

    /// Takes a checkpoint of enumerator and readers, serialized.
    pub fn snapshot(&mut self, checkpoint: u64) -> Snapshot {
        self.route();
        let id = CheckpointId(checkpoint);
        let state_serializer = self.source.enumerator_state_serializer();
        let state = self.enumerator.snapshot_state(id).unwrap();
        let enumerator = (
            state_serializer.version(),
            state_serializer.serialize(&state).unwrap(),
        );
        let split_serializer = self.source.split_serializer();
        let readers = self
            .readers
            .iter_mut()
            .map(|reader| {
                reader
                    .snapshot_state(id)
                    .unwrap()
                    .iter()
                    .map(|split| {
                        (
                            split_serializer.version(),
                            split_serializer.serialize(split).unwrap(),
                        )
                    })
                    .collect()
            })
            .collect();
        Snapshot {
            enumerator,
            readers,
        }
    }

    /// Every record emitted so far, over all readers.
    pub fn records(&self) -> Vec<u64> {
        self.outputs
            .iter()
            .flat_map(|out| out.records().map(|(_, r)| *r))
            .collect()
    }

    /// The records emitted so far, by split id.
    pub fn records_by_split(&self) -> BTreeMap<String, Vec<u64>> {
        let mut by_split: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for out in &self.outputs {
            for (split, record) in out.records() {
                by_split
                    .entry(split.expect("records go through split outputs").to_owned())
                    .or_default()
                    .push(*record);
            }
        }
        by_split
    }

    /// Forgets the records emitted so far.
    pub fn clear_outputs(&mut self) {
        for out in &mut self.outputs {
            out.take_events();
        }
    }
}

/// Asserts that `records` hold every number of `0..count` exactly once.
pub fn assert_exactly_once(mut records: Vec<u64>, count: u64) {
    records.sort_unstable();
    let expected: Vec<u64> = (0..count).collect();
    if records != expected {
        let mut seen = std::collections::BTreeMap::<u64, usize>::new();
        for r in &records {
            *seen.entry(*r).or_default() += 1;
        }
        let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
        let missing: Vec<_> = (0..count)
            .filter(|n| !seen.contains_key(n))
            .take(5)
            .collect();
        panic!(
            "{} records for {count} numbers; duplicates {duplicates:?}, missing {missing:?}",
            records.len()
        );
    }
}
