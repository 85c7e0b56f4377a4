//! Lookup caching (FLIP-221), for the lookup join (`weir_runtime`'s `DataStream::lookup_join`)
//! and pipeline `lookup` transforms:
//!
//! - **partial caching**: a [`LookupCache`] contract, [`DefaultLookupCache`] (on moka, bounded
//!   by key count, expire-after-write and expire-after-access, with or without missing keys),
//!   and [`PartialCachingLookupFunction`] / [`PartialCachingAsyncLookupFunction`], which put a
//!   cache in front of any [`LookupFunction`](weir_connector_api::lookup::LookupFunction) /
//!   [`AsyncLookupFunction`](weir_connector_api::lookup::AsyncLookupFunction);
//! - **full caching**: [`FullCachingLookupFunction`] holds the whole table, loaded through a
//!   bounded scan [`Source`](weir_connector_api::source::Source) ([`read_bounded`] runs it
//!   in-process) and reloaded on a [`ReloadTrigger`] (fixed delay, fixed rate, or a
//!   [`TimeOfDay`]); a failed reload keeps the previous table;
//! - [`RowKey`]: rows of key values as cache keys.
//!
//! Metrics, with Flink's `CacheMetricGroup` names: [`HIT_COUNT`], [`MISS_COUNT`],
//! [`LOAD_COUNT`], [`NUM_LOAD_FAILURES`], [`LATEST_LOAD_TIME`], [`NUM_CACHED_RECORDS`] and
//! [`NUM_CACHED_BYTES`]. A partial cache reports hits, misses, records and bytes, its caching
//! function the loads; a full cache reports all of them.
//!
//! Retries of failed or empty lookups (FLIP-234) belong to the join, not to the cache: see the
//! runtime's lookup join.

mod cache;
mod caching;
mod caching_async;
mod front;
mod full;
mod reload;
mod row_key;
mod scan;

use std::sync::Arc;

use weir_connector_api::metrics::MetricGroup;

pub use cache::{keys, DefaultLookupCache, DefaultLookupCacheBuilder, MissingKeys, SizeOf};
pub use caching::PartialCachingLookupFunction;
pub use caching_async::PartialCachingAsyncLookupFunction;
pub use front::{CopyValidity, FrontSize};
pub use full::{FullCacheBuilder, FullCachingLookupFunction};
pub use reload::{keys as full_cache_keys, ReloadTrigger, TimeOfDay};
pub use row_key::RowKey;
pub use scan::read_bounded;

/// Counter: lookups the cache answered (lookups).
pub const HIT_COUNT: &str = "hitCount";
/// Counter: lookups the cache could not answer (lookups).
pub const MISS_COUNT: &str = "missCount";
/// Counter: loads from the external system after a miss (loads).
pub const LOAD_COUNT: &str = "loadCount";
/// Counter: loads that failed (loads).
pub const NUM_LOAD_FAILURES: &str = "numLoadFailures";
/// Gauge: how long the latest load took (milliseconds).
pub const LATEST_LOAD_TIME: &str = "latestLoadTime";
/// Gauge: cached entries (keys with their rows).
pub const NUM_CACHED_RECORDS: &str = "numCachedRecords";
/// Gauge: estimated bytes in the cache.
pub const NUM_CACHED_BYTES: &str = "numCachedBytes";

/// A cache of lookup results: a key and all of its rows (Flink's `LookupCache`).
///
/// Shared between the subtasks of a lookup join (all methods take `&self`). Rows are
/// `Arc<[V]>`, so a hit costs a reference count, not a copy.
///
/// A cache that keeps the last key only:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use weir_connector_api::metrics::MetricGroup;
/// use weir_connector_base::lookup::LookupCache;
///
/// #[derive(Default)]
/// struct LastKey(Mutex<Option<(u64, Arc<[String]>)>>);
///
/// impl LookupCache<u64, String> for LastKey {
///     fn open(&self, _metrics: &dyn MetricGroup) {}
///     fn get_if_present(&self, key: &u64) -> Option<Arc<[String]>> {
///         let last = self.0.lock().unwrap_or_else(|e| e.into_inner());
///         last.as_ref().filter(|(k, _)| k == key).map(|(_, rows)| Arc::clone(rows))
///     }
///     fn put(&self, key: u64, rows: Arc<[String]>) {
///         *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, rows));
///     }
///     fn invalidate(&self, key: &u64) {
///         let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
///         if last.as_ref().is_some_and(|(k, _)| k == key) {
///             *last = None;
///         }
///     }
///     fn size(&self) -> u64 {
///         u64::from(self.0.lock().unwrap_or_else(|e| e.into_inner()).is_some())
///     }
/// }
///
/// let cache = LastKey::default();
/// cache.put(1, Arc::from(vec!["a".to_owned()]));
/// assert_eq!(cache.get_if_present(&1).map(|rows| rows.len()), Some(1));
/// cache.invalidate(&1);
/// assert_eq!(cache.size(), 0);
/// ```
pub trait LookupCache<K, V>: Send + Sync {
    /// Registers the cache's metrics in `metrics` (a cache shared by several subtasks may
    /// report through the first group only).
    fn open(&self, metrics: &dyn MetricGroup);

    /// The rows cached for `key`, if any (empty rows: the key is known to have none).
    fn get_if_present(&self, key: &K) -> Option<Arc<[V]>>;

    /// Caches `rows` as the rows of `key` (a cache may decline, e.g. empty rows).
    fn put(&self, key: K, rows: Arc<[V]>);

    /// Forgets `key`.
    fn invalidate(&self, key: &K);

    /// The number of cached keys.
    fn size(&self) -> u64;

    /// The rows of `key` and how long a copy of them may be served without asking the cache
    /// again (for the per-subtask front of [`PartialCachingLookupFunction`]); counts as a hit
    /// or a miss like [`get_if_present`](LookupCache::get_if_present). The default allows no
    /// copies.
    fn get_for_copy(&self, key: &K) -> Option<(Arc<[V]>, CopyValidity)> {
        self.get_if_present(key)
            .map(|rows| (rows, CopyValidity::Never))
    }

    /// A number that changes whenever entries are invalidated: copies taken at an older
    /// generation are stale. The default never changes (and allows no copies).
    fn generation(&self) -> u64 {
        0
    }

    /// Counts a lookup that a copy answered as a hit of this cache.
    fn record_copy_hit(&self) {}
}
