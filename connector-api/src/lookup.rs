//! Lookup (dimension-table) functions (FLIP-221): the runtime's lookup join
//! (`weir_runtime::lookup`, `DataStream::lookup_join`) calls them with a key and gets back the
//! matching rows; an asynchronous function gets several keys in flight, with the join's
//! timeout and FLIP-234 retries around each. A function only knows how to fetch: caching is
//! layered on top by `weir-connector-base`'s `lookup` module (a partial cache on moka in front
//! of any function, or a full cache that loads the whole table through a bounded scan source
//! and reloads it on a trigger). Pipelines reach a connector's lookup table through
//! [`LookupFactory`](crate::factory::LookupFactory).
//!
//! ```
//! use std::collections::HashMap;
//! use weir_connector_api::error::Result;
//! use weir_connector_api::lookup::{AsyncLookupFunction, LookupFunction};
//!
//! /// Customers by id, from a map standing in for a database.
//! struct Customers(HashMap<u64, String>);
//!
//! impl LookupFunction<u64, String> for Customers {
//!     fn lookup(&mut self, id: &u64) -> Result<Vec<String>> {
//!         Ok(self.0.get(id).cloned().into_iter().collect())
//!     }
//! }
//!
//! #[async_trait::async_trait]
//! impl AsyncLookupFunction<u64, String> for Customers {
//!     async fn lookup(&self, id: &u64) -> Result<Vec<String>> {
//!         Ok(self.0.get(id).cloned().into_iter().collect())
//!     }
//! }
//!
//! let mut customers = Customers(HashMap::from([(7, "Ada".to_string())]));
//! assert_eq!(LookupFunction::lookup(&mut customers, &7).unwrap(), vec!["Ada".to_string()]);
//! assert!(LookupFunction::lookup(&mut customers, &8).unwrap().is_empty());
//! ```

use std::sync::Arc;

use crate::error::Result;
use crate::metrics::MetricGroup;

/// What a lookup function learns when it opens. Implemented by the runtime.
pub trait LookupContext: Send + Sync {
    /// This subtask's index.
    fn subtask_index(&self) -> usize;
    /// The metric group of the lookup operator.
    fn metric_group(&self) -> Arc<dyn MetricGroup>;
}

/// Looks up the rows matching a key, synchronously (for fast, local stores).
pub trait LookupFunction<K, V>: Send + 'static {
    /// Prepares connections; called once before the first lookup.
    fn open(&mut self, _ctx: &dyn LookupContext) -> Result<()> {
        Ok(())
    }
    /// The rows for `key` (empty if none).
    fn lookup(&mut self, key: &K) -> Result<Vec<V>>;
    /// Releases resources.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Looks up the rows matching a key asynchronously; the runtime keeps several lookups in flight.
#[async_trait::async_trait]
pub trait AsyncLookupFunction<K: Sync, V>: Send + Sync + 'static {
    /// Prepares connections; called once before the first lookup.
    async fn open(&mut self, _ctx: &dyn LookupContext) -> Result<()> {
        Ok(())
    }
    /// The rows for `key` (empty if none).
    async fn lookup(&self, key: &K) -> Result<Vec<V>>;
    /// Releases resources.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
