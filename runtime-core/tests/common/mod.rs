//! Test support: a two-phase-committing sink whose external system is an in-memory transaction
//! store (a fake external system), and helpers to count what reached it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::Result;
use weir_connector_api::sink::{
    CommitRequest, Committer, CommittingSinkWriter, FlushMode, InitContext, Sink, SinkCapabilities,
    SinkWriter, StatefulSinkWriter, SupportsCommitter, SupportsWriterState, WriteContext,
};
use weir_connector_api::state::{
    StateError, StateReader, StateWriter, U64Serializer, VersionedSerializer,
};

pub mod speeds;

/// Installs a log subscriber once (RUST_LOG controls it).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The fake external system: committed transactions by id.
#[derive(Debug, Default)]
pub struct FakeTransactionStore {
    committed: Mutex<BTreeMap<String, Vec<u64>>>,
    pub commit_calls: AtomicU64,
    pub duplicate_commits: AtomicU64,
}

impl FakeTransactionStore {
    /// Every committed record, sorted.
    pub fn records(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self
            .committed
            .lock()
            .unwrap()
            .values()
            .flatten()
            .copied()
            .collect();
        all.sort_unstable();
        all
    }

    /// The ids of the committed transactions.
    pub fn ids(&self) -> Vec<String> {
        self.committed.lock().unwrap().keys().cloned().collect()
    }

    pub fn transactions(&self) -> usize {
        self.committed.lock().unwrap().len()
    }
}

/// A transaction: records prepared by one writer subtask for one checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Txn {
    pub id: String,
    pub records: Vec<u64>,
}

struct TxnSerializer;
impl VersionedSerializer<Txn> for TxnSerializer {
    fn version(&self) -> u32 {
        1
    }
    fn serialize(&self, t: &Txn) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_str(&t.id).put_len(t.records.len());
        for r in &t.records {
            w.put_u64(*r);
        }
        w.finish()
    }
    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<Txn, StateError> {
        if version != 1 {
            return Err(StateError::unknown_version("txn", version, &[1]));
        }
        let mut r = StateReader::new(bytes);
        let id = r.get_str()?.to_owned();
        let n = r.get_len()?;
        let mut records = Vec::with_capacity(n);
        for _ in 0..n {
            records.push(r.get_u64()?);
        }
        r.finish()?;
        Ok(Txn { id, records })
    }
}

/// A two-phase-committing sink: writers stage records in a transaction per checkpoint; the
/// committer publishes transactions idempotently. Its writer state counts records written (to
/// exercise writer state and its redistribution).
#[derive(Clone)]
pub struct TwoPhaseSink {
    pub store: Arc<FakeTransactionStore>,
}

pub struct TwoPhaseWriter {
    subtask: usize,
    attempt: u32,
    /// Distinguishes writers of different job runs (attempt numbers restart at 0).
    run: u64,
    counter: u64,
    staged: Vec<u64>,
    written: u64,
}

#[async_trait::async_trait]
impl SinkWriter<u64> for TwoPhaseWriter {
    fn write(&mut self, element: u64, _ctx: &WriteContext) -> Result<()> {
        self.staged.push(element);
        self.written += 1;
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl CommittingSinkWriter<u64> for TwoPhaseWriter {
    type Committable = Txn;
    async fn prepare_commit(&mut self) -> Result<Vec<Txn>> {
        if self.staged.is_empty() {
            return Ok(Vec::new());
        }
        self.counter += 1;
        Ok(vec![Txn {
            id: format!(
                "{}-{:x}-{}-{}",
                self.subtask, self.run, self.attempt, self.counter
            ),
            records: std::mem::take(&mut self.staged),
        }])
    }
}

impl StatefulSinkWriter<u64> for TwoPhaseWriter {
    type State = u64;
    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<Vec<u64>> {
        Ok(vec![self.written])
    }
}

pub struct TxnCommitter {
    store: Arc<FakeTransactionStore>,
}

#[async_trait::async_trait]
impl Committer<Txn> for TxnCommitter {
    async fn commit(&mut self, requests: &mut [CommitRequest<Txn>]) -> Result<()> {
        let mut committed = self.store.committed.lock().unwrap();
        for r in requests {
            self.store.commit_calls.fetch_add(1, Ordering::SeqCst);
            let txn = r.committable();
            if committed.contains_key(&txn.id) {
                self.store.duplicate_commits.fetch_add(1, Ordering::SeqCst);
                r.already_committed();
            } else {
                committed.insert(txn.id.clone(), txn.records.clone());
            }
        }
        Ok(())
    }
}

impl Sink<u64> for TwoPhaseSink {
    type Writer = TwoPhaseWriter;
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<TwoPhaseWriter> {
        Ok(TwoPhaseWriter {
            subtask: ctx.subtask_index(),
            attempt: ctx.attempt(),
            run: rand::random(),
            counter: 0,
            staged: Vec::new(),
            written: 0,
        })
    }
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<u64, TwoPhaseWriter> {
        SinkCapabilities::none()
            .with_writer_state(Arc::clone(&self))
            .with_committer(self)
    }
}

impl SupportsWriterState<u64> for TwoPhaseSink {
    fn restore_writer(&self, ctx: &dyn InitContext, states: Vec<u64>) -> Result<TwoPhaseWriter> {
        let mut w = self.create_writer(ctx)?;
        w.written = states.iter().sum();
        Ok(w)
    }
    fn writer_state_serializer(&self) -> Arc<dyn VersionedSerializer<u64>> {
        Arc::new(U64Serializer)
    }
}

impl SupportsCommitter<u64> for TwoPhaseSink {
    type Committable = Txn;
    type Committer = TxnCommitter;
    fn create_committer(&self, _ctx: &dyn InitContext) -> Result<TxnCommitter> {
        Ok(TxnCommitter {
            store: Arc::clone(&self.store),
        })
    }
    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<Txn>> {
        Arc::new(TxnSerializer)
    }
}
