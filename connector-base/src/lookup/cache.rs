//! [`DefaultLookupCache`]: a partial lookup cache on moka (Flink's `DefaultLookupCache`).

use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use weir_connector_api::config::{ConfigError, ConfigErrors};
use weir_connector_api::metrics::{Counter, Gauge, MetricGroup};

use super::front::CopyValidity;
use super::{LookupCache, HIT_COUNT, MISS_COUNT, NUM_CACHED_BYTES, NUM_CACHED_RECORDS};

/// Option keys the configuration errors name (Flink's `lookup.partial-cache.*` keys).
pub mod keys {
    /// Most cached keys.
    pub const MAX_ROWS: &str = "lookup.partial-cache.max-rows";
    /// Time after a key's rows were written.
    pub const EXPIRE_AFTER_WRITE: &str = "lookup.partial-cache.expire-after-write";
    /// Time after a key's rows were last read.
    pub const EXPIRE_AFTER_ACCESS: &str = "lookup.partial-cache.expire-after-access";
    /// Whether keys without rows are cached.
    pub const CACHE_MISSING_KEY: &str = "lookup.partial-cache.cache-missing-key";
}

/// Whether a key the lookup found no rows for is cached (as "no rows").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKeys {
    /// Cache it: the next lookup of the key answers "no rows" without asking the external
    /// system (Flink's default).
    #[default]
    Cache,
    /// Do not cache it: every lookup of a missing key asks the external system again (for keys
    /// that appear soon after they are first looked up).
    DoNotCache,
}

/// Estimates the bytes a key and its rows take, for `numCachedBytes`.
pub type SizeOf<K, V> = Arc<dyn Fn(&K, &[V]) -> u64 + Send + Sync>;

/// What the cache reports into its metric group once opened.
struct Opened {
    hits: Counter,
    misses: Counter,
    records: Gauge,
    bytes: Option<Gauge>,
}

/// Counts shared with the eviction listener.
struct Counts<K, V> {
    entries: AtomicI64,
    bytes: AtomicI64,
    size_of: Option<SizeOf<K, V>>,
    opened: OnceLock<Opened>,
}

impl<K, V> Counts<K, V> {
    fn change(&self, entries: i64, bytes: i64) {
        let now_entries = self.entries.fetch_add(entries, Ordering::Relaxed) + entries;
        let now_bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(opened) = self.opened.get() {
            opened.records.set(now_entries);
            if let Some(gauge) = &opened.bytes {
                gauge.set(now_bytes);
            }
        }
    }

    fn bytes_of(&self, key: &K, rows: &[V]) -> i64 {
        self.size_of.as_ref().map_or(0, |size_of| {
            i64::try_from(size_of(key, rows)).unwrap_or(i64::MAX)
        })
    }
}

/// A partial lookup cache: keys with their rows, bounded by count and/or time (Flink's
/// `DefaultLookupCache`), on [moka](https://docs.rs/moka)'s concurrent cache.
///
/// - `maximum_size`: at most this many keys (moka evicts by its TinyLFU policy).
/// - `expire_after_write`: a key's rows are dropped this long after they were put.
/// - `expire_after_access`: a key's rows are dropped this long after they were last read.
/// - [`MissingKeys`]: whether "no rows" is cached.
///
/// At least one of the first three must be set, so the cache cannot grow without bound.
/// Shared by reference: every subtask of a lookup join may use one cache (`Arc`).
///
/// Metrics, once [opened](LookupCache::open): `hitCount`, `missCount`, `numCachedRecords` (the
/// number of cached keys, as Flink's `DefaultLookupCache` reports it) and, with
/// [`DefaultLookupCacheBuilder::size_of`], `numCachedBytes`. Removals of expired entries are
/// seen when moka runs its housekeeping (on later reads and writes), so the two gauges may lag
/// behind expirations.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use weir_connector_base::lookup::{DefaultLookupCache, LookupCache, MissingKeys};
///
/// let cache = DefaultLookupCache::<u64, String>::builder()
///     .maximum_size(10_000)
///     .expire_after_write(Duration::from_secs(600))
///     .missing_keys(MissingKeys::DoNotCache)
///     .build()?;
/// cache.put(7, Arc::from(vec!["Ada".to_owned()]));
/// cache.put(8, Arc::from(Vec::<String>::new())); // no rows: not cached
/// assert_eq!(cache.get_if_present(&7).as_deref(), Some(&["Ada".to_owned()][..]));
/// assert!(cache.get_if_present(&8).is_none());
/// # Ok::<(), weir_connector_api::config::ConfigErrors>(())
/// ```
pub struct DefaultLookupCache<K, V> {
    /// Keys are hashed with foldhash (seeded per cache), not SipHash: ~100 instructions less
    /// per lookup of a `u64` key.
    cache: moka::sync::Cache<K, Cached<V>, foldhash::fast::RandomState>,
    missing_keys: MissingKeys,
    counts: Arc<Counts<K, V>>,
    expire_after_write: Option<Duration>,
    expire_after_access: Option<Duration>,
    /// Changes on every invalidation: copies of older generations are stale.
    generation: AtomicU64,
}

/// A key's rows and when they were put (for the copies of per-subtask fronts).
struct Cached<V> {
    rows: Arc<[V]>,
    written: Instant,
}

impl<V> Clone for Cached<V> {
    fn clone(&self) -> Self {
        Cached {
            rows: Arc::clone(&self.rows),
            written: self.written,
        }
    }
}

impl<K, V> fmt::Debug for DefaultLookupCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultLookupCache")
            .field("entries", &self.counts.entries.load(Ordering::Relaxed))
            .field("missing_keys", &self.missing_keys)
            .finish_non_exhaustive()
    }
}

impl<K, V> DefaultLookupCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// A builder; set at least one of the size and time bounds.
    pub fn builder() -> DefaultLookupCacheBuilder<K, V> {
        DefaultLookupCacheBuilder {
            maximum_size: None,
            expire_after_write: None,
            expire_after_access: None,
            missing_keys: MissingKeys::Cache,
            size_of: None,
        }
    }

    /// Runs moka's pending housekeeping now (evictions, expirations, and so the gauges); moka
    /// otherwise runs it as part of later reads and writes.
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }
}

impl<K, V> LookupCache<K, V> for DefaultLookupCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn open(&self, metrics: &dyn MetricGroup) {
        let opened = Opened {
            hits: metrics.counter(HIT_COUNT),
            misses: metrics.counter(MISS_COUNT),
            records: metrics.gauge(NUM_CACHED_RECORDS),
            bytes: self
                .counts
                .size_of
                .as_ref()
                .map(|_| metrics.gauge(NUM_CACHED_BYTES)),
        };
        // The first opener's group reports (a cache shared by subtasks reports once).
        if self.counts.opened.set(opened).is_ok() {
            self.counts.change(0, 0);
        }
    }

    #[inline]
    fn get_if_present(&self, key: &K) -> Option<Arc<[V]>> {
        let found = self.cache.get(key);
        if let Some(opened) = self.counts.opened.get() {
            match found {
                Some(_) => opened.hits.inc(),
                None => opened.misses.inc(),
            }
        }
        found.map(|cached| cached.rows)
    }

    fn put(&self, key: K, rows: Arc<[V]>) {
        if rows.is_empty() && self.missing_keys == MissingKeys::DoNotCache {
            return;
        }
        let bytes = self.counts.bytes_of(&key, &rows);
        self.cache.insert(
            key,
            Cached {
                rows,
                written: Instant::now(),
            },
        );
        self.counts.change(1, bytes);
    }

    fn invalidate(&self, key: &K) {
        // Before the removal: a copy taken between the two is of the old generation.
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate(key);
    }

    /// The rows with how long a copy may be served: until the entry's expire-after-write
    /// instant, while read at least every expire-after-access, and until an invalidation.
    fn get_for_copy(&self, key: &K) -> Option<(Arc<[V]>, CopyValidity)> {
        let generation = self.generation.load(Ordering::Acquire);
        let found = self.cache.get(key);
        if let Some(opened) = self.counts.opened.get() {
            match found {
                Some(_) => opened.hits.inc(),
                None => opened.misses.inc(),
            }
        }
        found.map(|cached| {
            let validity = CopyValidity::Until {
                generation,
                expires: self.expire_after_write.map(|ttl| cached.written + ttl),
                idle: self.expire_after_access,
            };
            (cached.rows, validity)
        })
    }

    #[inline]
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    #[inline]
    fn record_copy_hit(&self) {
        if let Some(opened) = self.counts.opened.get() {
            opened.hits.inc();
        }
    }

    fn size(&self) -> u64 {
        u64::try_from(self.counts.entries.load(Ordering::Relaxed)).unwrap_or(0)
    }
}

/// Builds a [`DefaultLookupCache`]; [`build`](Self::build) reports every invalid setting.
#[must_use]
pub struct DefaultLookupCacheBuilder<K, V> {
    maximum_size: Option<u64>,
    expire_after_write: Option<Duration>,
    expire_after_access: Option<Duration>,
    missing_keys: MissingKeys,
    size_of: Option<SizeOf<K, V>>,
}

impl<K, V> fmt::Debug for DefaultLookupCacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultLookupCacheBuilder")
            .field("maximum_size", &self.maximum_size)
            .field("expire_after_write", &self.expire_after_write)
            .field("expire_after_access", &self.expire_after_access)
            .field("missing_keys", &self.missing_keys)
            .field("size_of", &self.size_of.is_some())
            .finish()
    }
}

/// Moka refuses durations over 1000 years (by panicking); so does the builder, with an error.
const MAX_DURATION: Duration = Duration::from_secs(1000 * 365 * 24 * 3600);

impl<K, V> DefaultLookupCacheBuilder<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// At most `keys` cached keys (`lookup.partial-cache.max-rows`).
    pub fn maximum_size(mut self, keys: u64) -> Self {
        self.maximum_size = Some(keys);
        self
    }

    /// Drop a key's rows `time` after they were put (`lookup.partial-cache.expire-after-write`).
    pub fn expire_after_write(mut self, time: Duration) -> Self {
        self.expire_after_write = Some(time);
        self
    }

    /// Drop a key's rows `time` after they were last read
    /// (`lookup.partial-cache.expire-after-access`).
    pub fn expire_after_access(mut self, time: Duration) -> Self {
        self.expire_after_access = Some(time);
        self
    }

    /// Whether "no rows" is cached (`lookup.partial-cache.cache-missing-key`, default
    /// [`MissingKeys::Cache`]).
    pub fn missing_keys(mut self, missing_keys: MissingKeys) -> Self {
        self.missing_keys = missing_keys;
        self
    }

    /// Estimates the bytes of a key and its rows, reported as `numCachedBytes`.
    pub fn size_of(mut self, size_of: impl Fn(&K, &[V]) -> u64 + Send + Sync + 'static) -> Self {
        self.size_of = Some(Arc::new(size_of));
        self
    }

    /// The cache, or every problem with the settings.
    pub fn build(self) -> Result<DefaultLookupCache<K, V>, ConfigErrors> {
        let mut errors = Vec::new();
        if self.maximum_size.is_none()
            && self.expire_after_write.is_none()
            && self.expire_after_access.is_none()
        {
            errors.push(ConfigError::conflict(
                [
                    keys::MAX_ROWS,
                    keys::EXPIRE_AFTER_WRITE,
                    keys::EXPIRE_AFTER_ACCESS,
                ],
                "the cache would grow without bound: set at least one of them",
            ));
        }
        if self.maximum_size == Some(0) {
            errors.push(ConfigError::Rejected {
                key: keys::MAX_ROWS.to_owned(),
                value: "0".to_owned(),
                reason: "must be at least 1 (to disable caching, use no cache)".to_owned(),
            });
        }
        for (key, time) in [
            (keys::EXPIRE_AFTER_WRITE, self.expire_after_write),
            (keys::EXPIRE_AFTER_ACCESS, self.expire_after_access),
        ] {
            if let Some(time) = time {
                if time.is_zero() || time > MAX_DURATION {
                    errors.push(ConfigError::Rejected {
                        key: key.to_owned(),
                        value: format!("{time:?}"),
                        reason: "must be longer than zero and at most 1000 years".to_owned(),
                    });
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors::new("lookup cache", errors));
        }
        let counts = Arc::new(Counts {
            entries: AtomicI64::new(0),
            bytes: AtomicI64::new(0),
            size_of: self.size_of,
            opened: OnceLock::new(),
        });
        let listener_counts = Arc::clone(&counts);
        let mut builder = moka::sync::Cache::builder().eviction_listener(
            move |key: Arc<K>, cached: Cached<V>, _cause: RemovalCause| {
                // Every removal, replaced values included, leaves the cache.
                let bytes = listener_counts.bytes_of(&key, &cached.rows);
                listener_counts.change(-1, -bytes);
            },
        );
        if let Some(keys) = self.maximum_size {
            builder = builder.max_capacity(keys);
        }
        if let Some(time) = self.expire_after_write {
            builder = builder.time_to_live(time);
        }
        if let Some(time) = self.expire_after_access {
            builder = builder.time_to_idle(time);
        }
        Ok(DefaultLookupCache {
            cache: builder.build_with_hasher(foldhash::fast::RandomState::default()),
            missing_keys: self.missing_keys,
            counts,
            expire_after_write: self.expire_after_write,
            expire_after_access: self.expire_after_access,
            generation: AtomicU64::new(0),
        })
    }
}
