//! Reference connectors and their contexts: what the testkit runs its own suites against, and
//! complete examples for connector authors.
//!
//! | connector | external system | context |
//! |---|---|---|
//! | datagen ([`weir_connector_datagen`]) | none: it generates records | [`DatagenContext`] |
//! | [`FakeLogSource`] | [`FakeLog`]: named partitions in memory | [`FakeLogContext`] |
//! | [`FakeTxnSink`] (two-phase commit) | [`FakeTransactionalStore`]: transactions in memory | [`ReferenceSinkContext`] |
//!
//! The fakes are named as such: they model the behaviour the suites care about (offsets,
//! transactions that become visible on commit, idempotent commits) and nothing else.

mod contexts;
mod fake_log;
mod txn_store;

pub use contexts::{DatagenContext, FakeLogContext, ReferenceSinkContext, SinkFactory};
pub use fake_log::{
    FakeLog, FakeLogEnumerator, FakeLogReader, FakeLogSource, FakeLogWriter, LogSplit,
    LogSplitSerializer,
};
pub use txn_store::{
    CommitStatus, FakeTransactionalStore, FakeTxnCommitter, FakeTxnSink, FakeTxnWriter, StoreStats,
};
