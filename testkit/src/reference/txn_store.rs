//! A two-phase-committing reference sink over a fake transactional external system.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::SinkWriterMetrics;
use weir_connector_api::sink::{
    CommitRequest, Committer, CommittingSinkWriter, FlushMode, InitContext, Sink, SinkCapabilities,
    SinkWriter, StatefulSinkWriter, SupportsCommitter, SupportsWriterState, WriteContext,
};
use weir_connector_api::state::{StringSerializer, U64Serializer, VersionedSerializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnState {
    Open,
    Prepared,
    Committed,
    Aborted,
}

#[derive(Debug)]
struct Txn<T> {
    records: Vec<T>,
    state: TxnState,
    /// When the transaction was first written to: committed transactions read back in this
    /// order, as a log-structured system (Kafka) keeps them at the offsets they were written at.
    position: u64,
}

#[derive(Debug)]
struct StoreState<T> {
    txns: HashMap<String, Txn<T>>,
    /// Visible entries: (read order, transaction id). A transaction published twice by a broken
    /// committer appears twice.
    visible: Vec<(u64, String)>,
    next_position: u64,
    stats: StoreStats,
}

/// Counters of a [`FakeTransactionalStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions committed (first time).
    pub commits: u64,
    /// Commits of transactions that were already committed (answered "already committed").
    pub recommits: u64,
    /// Commits of transactions the store does not know (e.g. from a savepoint of another
    /// process).
    pub unknown_commits: u64,
    /// Transactions published unconditionally (by deliberately broken committers).
    pub unconditional_publishes: u64,
}

/// What [`FakeTransactionalStore::commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitStatus {
    /// The transaction is now visible.
    Committed,
    /// It was committed before; nothing changed.
    AlreadyCommitted,
    /// The store does not know it (never written, aborted, or from another process).
    Unknown,
}

/// A **fake** transactional external system, in memory: writers append records to open
/// transactions, prepare them, and committers make them visible — idempotently. Like Kafka,
/// the read-back order of committed transactions is the order in which they were first written,
/// not the order of their commits.
#[derive(Debug)]
pub struct FakeTransactionalStore<T> {
    state: Mutex<StoreState<T>>,
}

impl<T> Default for FakeTransactionalStore<T> {
    fn default() -> Self {
        FakeTransactionalStore {
            state: Mutex::new(StoreState {
                txns: HashMap::new(),
                visible: Vec::new(),
                next_position: 0,
                stats: StoreStats::default(),
            }),
        }
    }
}

impl<T: Clone> FakeTransactionalStore<T> {
    /// An empty store.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, StoreState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends records to transaction `txn`, opening it if needed. Writing to a transaction that
    /// was prepared, committed or aborted is an error.
    pub fn write(&self, txn: &str, records: impl IntoIterator<Item = T>) -> Result<()> {
        let mut s = self.lock();
        let position = s.next_position;
        let entry = s.txns.entry(txn.to_owned()).or_insert_with(|| Txn {
            records: Vec::new(),
            state: TxnState::Open,
            position,
        });
        if entry.state != TxnState::Open {
            return Err(ConnectorError::Contract(format!(
                "transaction {txn} is {:?}: it takes no more records",
                entry.state
            )));
        }
        entry.records.extend(records);
        if entry.position == position {
            s.next_position += 1;
        }
        Ok(())
    }

    /// Prepares (pre-commits) an open transaction. Returns whether it existed.
    pub fn prepare(&self, txn: &str) -> bool {
        let mut s = self.lock();
        match s.txns.get_mut(txn) {
            Some(t) if t.state == TxnState::Open => {
                t.state = TxnState::Prepared;
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Commits a transaction, idempotently.
    pub fn commit(&self, txn: &str) -> CommitStatus {
        let mut s = self.lock();
        let Some(t) = s.txns.get_mut(txn) else {
            s.stats.unknown_commits += 1;
            return CommitStatus::Unknown;
        };
        match t.state {
            TxnState::Open | TxnState::Prepared => {
                t.state = TxnState::Committed;
                let position = t.position;
                s.visible.push((position, txn.to_owned()));
                s.stats.commits += 1;
                CommitStatus::Committed
            }
            TxnState::Committed => {
                s.stats.recommits += 1;
                CommitStatus::AlreadyCommitted
            }
            TxnState::Aborted => {
                s.stats.unknown_commits += 1;
                CommitStatus::Unknown
            }
        }
    }

    /// Makes a transaction's records visible again even if they already are — what a
    /// non-idempotent external call does. Exists for deliberately broken committers in negative
    /// tests. Returns whether the transaction exists.
    pub fn publish_unconditionally(&self, txn: &str) -> bool {
        let mut s = self.lock();
        let Some(t) = s.txns.get_mut(txn) else {
            return false;
        };
        t.state = TxnState::Committed;
        let position = s.next_position;
        s.next_position += 1;
        s.visible.push((position, txn.to_owned()));
        s.stats.unconditional_publishes += 1;
        true
    }

    /// Aborts an open or prepared transaction: its records never become visible.
    pub fn abort(&self, txn: &str) {
        if let Some(t) = self.lock().txns.get_mut(txn) {
            if matches!(t.state, TxnState::Open | TxnState::Prepared) {
                t.state = TxnState::Aborted;
            }
        }
    }

    /// The visible (committed) records, in read order.
    pub fn committed(&self) -> Vec<T> {
        let s = self.lock();
        let mut visible = s.visible.clone();
        visible.sort_by_key(|(position, _)| *position);
        visible
            .iter()
            .filter_map(|(_, id)| s.txns.get(id))
            .flat_map(|t| t.records.iter().cloned())
            .collect()
    }

    /// How many records are visible.
    pub fn committed_len(&self) -> usize {
        let s = self.lock();
        s.visible
            .iter()
            .filter_map(|(_, id)| s.txns.get(id))
            .map(|t| t.records.len())
            .sum()
    }

    /// How many distinct records are visible (duplicates, which at-least-once allows, once).
    pub fn committed_distinct_len(&self) -> usize
    where
        T: Eq + std::hash::Hash,
    {
        let s = self.lock();
        s.visible
            .iter()
            .filter_map(|(_, id)| s.txns.get(id))
            .flat_map(|t| t.records.iter())
            .collect::<std::collections::HashSet<&T>>()
            .len()
    }

    /// The records of every prepared or committed transaction (everything a job handed over
    /// for commit), in write order.
    pub fn prepared_or_committed(&self) -> Vec<T> {
        let s = self.lock();
        let mut txns: Vec<&Txn<T>> = s
            .txns
            .values()
            .filter(|t| matches!(t.state, TxnState::Prepared | TxnState::Committed))
            .collect();
        txns.sort_by_key(|t| t.position);
        txns.iter()
            .flat_map(|t| t.records.iter().cloned())
            .collect()
    }

    /// The store's counters.
    pub fn stats(&self) -> StoreStats {
        self.lock().stats
    }
}

/// The reference two-phase-committing sink over a [`FakeTransactionalStore`].
///
/// - The writer buffers records, appends them to its open transaction at every flush (counting
///   `numRecordsSend`), and at `prepare_commit` prepares the transaction and hands its id to the
///   committer. Transaction ids are unique across subtasks, attempts and job runs (a random
///   per-sink nonce: attempt numbers restart at 0 in a new run).
/// - Its writer state is the number of records it sent (restored summed after rescaling).
/// - The committer commits idempotently: "already committed" and unknown transactions (from
///   another process's savepoint) are reported as such, never committed twice.
#[derive(Debug)]
pub struct FakeTxnSink<T> {
    store: Arc<FakeTransactionalStore<T>>,
    nonce: u64,
}

impl<T: Clone + Send + Sync + 'static> FakeTxnSink<T> {
    /// A sink writing into `store`.
    pub fn new(store: Arc<FakeTransactionalStore<T>>) -> Self {
        FakeTxnSink {
            store,
            nonce: rand::random(),
        }
    }

    /// The store it writes into.
    pub fn store(&self) -> &Arc<FakeTransactionalStore<T>> {
        &self.store
    }

    fn writer(&self, ctx: &dyn InitContext, sent: u64) -> FakeTxnWriter<T> {
        FakeTxnWriter {
            store: Arc::clone(&self.store),
            prefix: format!(
                "{}-{:016x}-{}-{}",
                ctx.operator_id(),
                self.nonce,
                ctx.subtask_index(),
                ctx.attempt()
            ),
            seq: 0,
            buffer: Vec::new(),
            open: false,
            sent,
            metrics: SinkWriterMetrics::new(&*ctx.metric_group()),
        }
    }
}

/// The writer of [`FakeTxnSink`].
pub struct FakeTxnWriter<T> {
    store: Arc<FakeTransactionalStore<T>>,
    prefix: String,
    seq: u64,
    buffer: Vec<T>,
    /// Whether the current transaction has records.
    open: bool,
    sent: u64,
    metrics: SinkWriterMetrics,
}

impl<T> std::fmt::Debug for FakeTxnWriter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTxnWriter")
            .field("transaction", &self.current())
            .field("buffered", &self.buffer.len())
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl<T> FakeTxnWriter<T> {
    fn current(&self) -> String {
        format!("{}-{}", self.prefix, self.seq)
    }
}

#[async_trait::async_trait]
impl<T: Clone + Send + Sync + 'static> SinkWriter<T> for FakeTxnWriter<T> {
    fn write(&mut self, element: T, _ctx: &WriteContext) -> Result<()> {
        self.buffer.push(element);
        Ok(())
    }

    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let n = self.buffer.len() as u64;
        let txn = self.current();
        self.store.write(&txn, self.buffer.drain(..))?;
        self.open = true;
        self.sent += n;
        self.metrics.add_records_send(n);
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        if self.open {
            self.store.abort(&self.current());
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl<T: Clone + Send + Sync + 'static> CommittingSinkWriter<T> for FakeTxnWriter<T> {
    type Committable = String;

    async fn prepare_commit(&mut self) -> Result<Vec<String>> {
        if !self.open {
            return Ok(Vec::new());
        }
        let txn = self.current();
        self.store.prepare(&txn);
        self.seq += 1;
        self.open = false;
        Ok(vec![txn])
    }
}

impl<T: Clone + Send + Sync + 'static> StatefulSinkWriter<T> for FakeTxnWriter<T> {
    type State = u64;

    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<Vec<u64>> {
        Ok(vec![self.sent])
    }
}

/// The committer of [`FakeTxnSink`].
#[derive(Debug)]
pub struct FakeTxnCommitter<T> {
    store: Arc<FakeTransactionalStore<T>>,
}

impl<T> FakeTxnCommitter<T> {
    /// A committer for `store`.
    pub fn new(store: Arc<FakeTransactionalStore<T>>) -> Self {
        FakeTxnCommitter { store }
    }
}

#[async_trait::async_trait]
impl<T: Clone + Send + Sync + 'static> Committer<String> for FakeTxnCommitter<T> {
    async fn commit(&mut self, requests: &mut [CommitRequest<String>]) -> Result<()> {
        for request in requests.iter_mut() {
            match self.store.commit(request.committable()) {
                CommitStatus::Committed => {}
                CommitStatus::AlreadyCommitted => request.already_committed(),
                CommitStatus::Unknown => request.failed_known(
                    "the transaction is unknown to the fake system: it was aborted, or it \
                     belongs to another process (a savepoint restored elsewhere)",
                ),
            }
        }
        Ok(())
    }
}

impl<T: Clone + Send + Sync + 'static> Sink<T> for FakeTxnSink<T> {
    type Writer = FakeTxnWriter<T>;

    fn create_writer(&self, ctx: &dyn InitContext) -> Result<FakeTxnWriter<T>> {
        Ok(self.writer(ctx, 0))
    }

    fn capabilities(self: Arc<Self>) -> SinkCapabilities<T, FakeTxnWriter<T>> {
        SinkCapabilities::none()
            .with_writer_state(Arc::clone(&self))
            .with_committer(self)
    }
}

impl<T: Clone + Send + Sync + 'static> SupportsWriterState<T> for FakeTxnSink<T> {
    fn restore_writer(&self, ctx: &dyn InitContext, states: Vec<u64>) -> Result<FakeTxnWriter<T>> {
        Ok(self.writer(ctx, states.iter().sum()))
    }

    fn writer_state_serializer(&self) -> Arc<dyn VersionedSerializer<u64>> {
        Arc::new(U64Serializer)
    }
}

impl<T: Clone + Send + Sync + 'static> SupportsCommitter<T> for FakeTxnSink<T> {
    type Committable = String;
    type Committer = FakeTxnCommitter<T>;

    fn create_committer(&self, _ctx: &dyn InitContext) -> Result<FakeTxnCommitter<T>> {
        Ok(FakeTxnCommitter::new(Arc::clone(&self.store)))
    }

    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<String>> {
        Arc::new(StringSerializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_idempotent_and_read_in_write_order() {
        let store = FakeTransactionalStore::new();
        store.write("a", [1, 2]).unwrap();
        store.write("b", [3]).unwrap();
        store.write("a", [4]).unwrap();
        assert!(store.prepare("a") && store.prepare("b"));
        assert!(
            store.write("a", [9]).is_err(),
            "a prepared transaction is closed"
        );
        assert_eq!(store.commit("b"), CommitStatus::Committed);
        assert_eq!(store.commit("a"), CommitStatus::Committed);
        assert_eq!(store.commit("a"), CommitStatus::AlreadyCommitted);
        assert_eq!(store.commit("zzz"), CommitStatus::Unknown);
        assert_eq!(store.committed(), vec![1, 2, 4, 3]);
        assert_eq!(store.committed_len(), 4);
        let stats = store.stats();
        assert_eq!(
            (stats.commits, stats.recommits, stats.unknown_commits),
            (2, 1, 1)
        );
        store.write("c", [5]).unwrap();
        store.abort("c");
        assert_eq!(store.commit("c"), CommitStatus::Unknown);
        assert!(store.publish_unconditionally("a"));
        assert_eq!(store.committed(), vec![1, 2, 4, 3, 1, 2, 4]);
    }
}
