//! [`PartialCachingLookupFunction`]: a cache in front of a lookup function (Flink's
//! `PartialCachingLookupProvider` with its `CachingLookupFunction`).

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use weir_connector_api::error::Result;
use weir_connector_api::lookup::{LookupContext, LookupFunction};
use weir_connector_api::metrics::{Counter, Gauge};

use super::front::{FrontSize, HotKeys};
use super::{LookupCache, LATEST_LOAD_TIME, LOAD_COUNT, NUM_LOAD_FAILURES};

/// Answers lookups from a [`LookupCache`] and, on a miss, from the wrapped function, caching
/// what it returns (rows or, if the cache keeps them, "no rows").
///
/// A failed load is not cached and fails the lookup; it counts in `numLoadFailures`.
///
/// Hot keys are answered from a small front of copies of this function's own (a
/// [`FrontSize`], default 4096 slots, see [`with_front`](Self::with_front)): a hit there costs
/// a hash and a compare instead of the shared cache's bookkeeping, and counts as a hit of the
/// cache. Copies obey the cache's expiry times and invalidations exactly (see
/// [`CopyValidity`](super::CopyValidity)); a hot key may outlive its size-based eviction from
/// the shared cache in a front.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Arc;
/// use std::time::Duration;
/// use weir_connector_api::error::Result;
/// use weir_connector_api::lookup::LookupFunction;
/// use weir_connector_base::lookup::{DefaultLookupCache, PartialCachingLookupFunction};
///
/// struct Customers { table: HashMap<u64, String>, loads: usize }
///
/// impl LookupFunction<u64, String> for Customers {
///     fn lookup(&mut self, id: &u64) -> Result<Vec<String>> {
///         self.loads += 1;
///         Ok(self.table.get(id).cloned().into_iter().collect())
///     }
/// }
///
/// let cache = Arc::new(
///     DefaultLookupCache::builder().maximum_size(1_000).build()?,
/// );
/// let customers = Customers { table: HashMap::from([(7, "Ada".to_owned())]), loads: 0 };
/// let mut lookup = PartialCachingLookupFunction::new(customers, cache);
/// for _ in 0..3 {
///     assert_eq!(lookup.lookup(&7)?, vec!["Ada".to_owned()]);
///     assert!(lookup.lookup(&8)?.is_empty()); // a missing key, cached as such
/// }
/// assert_eq!(lookup.function().loads, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PartialCachingLookupFunction<K, V, F, C = super::DefaultLookupCache<K, V>> {
    function: F,
    cache: Arc<C>,
    front: Option<HotKeys<K, V>>,
    loads: Counter,
    load_failures: Counter,
    latest_load_time: Gauge,
    _rows: PhantomData<fn(K) -> V>,
}

impl<K, V, F, C> fmt::Debug for PartialCachingLookupFunction<K, V, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartialCachingLookupFunction")
            .field("loads", &self.loads.get())
            .field("load_failures", &self.load_failures.get())
            .finish_non_exhaustive()
    }
}

impl<K, V, F, C> PartialCachingLookupFunction<K, V, F, C>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
    F: LookupFunction<K, V>,
    C: LookupCache<K, V> + 'static,
{
    /// `function` behind `cache` (which other lookup functions may share).
    pub fn new(function: F, cache: Arc<C>) -> Self {
        PartialCachingLookupFunction {
            function,
            cache,
            front: HotKeys::new(FrontSize::default()),
            loads: Counter::new(),
            load_failures: Counter::new(),
            latest_load_time: Gauge::new(),
            _rows: PhantomData,
        }
    }

    /// Sets the size of the front of copies (or turns it off).
    #[must_use]
    pub fn with_front(mut self, size: FrontSize) -> Self {
        self.front = HotKeys::new(size);
        self
    }

    /// The wrapped function.
    pub fn function(&self) -> &F {
        &self.function
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<C> {
        &self.cache
    }

    /// The rows of `key` as shared rows: a hit costs a reference count, no copy.
    #[inline]
    pub fn lookup_shared(&mut self, key: &K) -> Result<Arc<[V]>> {
        if let Some(front) = &mut self.front {
            if let Some(rows) = front.get(key, self.cache.generation()) {
                self.cache.record_copy_hit();
                return Ok(rows);
            }
            if let Some((rows, validity)) = self.cache.get_for_copy(key) {
                front.offer(key, &rows, validity);
                return Ok(rows);
            }
        } else if let Some(rows) = self.cache.get_if_present(key) {
            return Ok(rows);
        }
        self.load(key)
    }

    /// Loads `key`'s rows from the function into the cache.
    fn load(&mut self, key: &K) -> Result<Arc<[V]>> {
        let started = Instant::now();
        let loaded = self.function.lookup(key);
        let took = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.latest_load_time.set(took);
        match loaded {
            Ok(rows) => {
                self.loads.inc();
                let rows: Arc<[V]> = Arc::from(rows);
                // The next read takes a copy from the cache, with the cache's validity.
                self.cache.put(key.clone(), Arc::clone(&rows));
                Ok(rows)
            }
            Err(error) => {
                self.load_failures.inc();
                Err(error)
            }
        }
    }
}

impl<K, V, F, C> LookupFunction<K, V> for PartialCachingLookupFunction<K, V, F, C>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
    F: LookupFunction<K, V>,
    C: LookupCache<K, V> + 'static,
{
    fn open(&mut self, ctx: &dyn LookupContext) -> Result<()> {
        let group = ctx.metric_group();
        self.cache.open(&*group);
        self.loads = group.counter(LOAD_COUNT);
        self.load_failures = group.counter(NUM_LOAD_FAILURES);
        self.latest_load_time = group.gauge(LATEST_LOAD_TIME);
        self.function.open(ctx)
    }

    /// The rows of `key`, copied out of the cache (the API returns a `Vec`); use
    /// [`lookup_shared`](PartialCachingLookupFunction::lookup_shared) to avoid the copy.
    fn lookup(&mut self, key: &K) -> Result<Vec<V>> {
        self.lookup_shared(key).map(|rows| rows.to_vec())
    }

    fn close(&mut self) -> Result<()> {
        self.function.close()
    }
}
