//! [`PartialCachingAsyncLookupFunction`]: a cache in front of an asynchronous lookup function
//! (Flink's `PartialCachingAsyncLookupProvider` with its `CachingAsyncLookupFunction`).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use weir_connector_api::error::Result;
use weir_connector_api::lookup::{AsyncLookupFunction, LookupContext};
use weir_connector_api::metrics::{Counter, Gauge};

use super::{LATEST_LOAD_TIME, LOAD_COUNT, NUM_LOAD_FAILURES};

/// Answers lookups from a [`LookupCache`](super::LookupCache) and, on a miss, from the wrapped asynchronous
/// function, caching what it returns. Lookups run concurrently (the join keeps several in
/// flight); two concurrent misses of one key both load it, and the later answer stays cached.
///
/// A failed load is not cached and fails the lookup; it counts in `numLoadFailures`.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Arc;
/// use weir_connector_api::error::Result;
/// use weir_connector_api::lookup::AsyncLookupFunction;
/// use weir_connector_base::lookup::{DefaultLookupCache, PartialCachingAsyncLookupFunction};
///
/// struct Customers(HashMap<u64, String>);
///
/// #[async_trait::async_trait]
/// impl AsyncLookupFunction<u64, String> for Customers {
///     async fn lookup(&self, id: &u64) -> Result<Vec<String>> {
///         Ok(self.0.get(id).cloned().into_iter().collect())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = Arc::new(DefaultLookupCache::builder().maximum_size(1_000).build()?);
/// let customers = Customers(HashMap::from([(7, "Ada".to_owned())]));
/// let lookup = PartialCachingAsyncLookupFunction::new(customers, Arc::clone(&cache));
/// assert_eq!(lookup.lookup(&7).await?, vec!["Ada".to_owned()]);
/// assert_eq!(cache.get_if_present(&7).map(|rows| rows.len()), Some(1));
/// # Ok(())
/// # }
/// # use weir_connector_base::lookup::LookupCache;
/// ```
pub struct PartialCachingAsyncLookupFunction<K, V, F, C = super::DefaultLookupCache<K, V>> {
    function: F,
    cache: Arc<C>,
    loads: Counter,
    load_failures: Counter,
    latest_load_time: Gauge,
    _rows: PhantomData<fn(K) -> V>,
}

impl<K, V, F, C> fmt::Debug for PartialCachingAsyncLookupFunction<K, V, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartialCachingAsyncLookupFunction")
            .field("loads", &self.loads.get())
            .field("load_failures", &self.load_failures.get())
            .finish_non_exhaustive()
    }
}

impl<K, V, F, C> PartialCachingAsyncLookupFunction<K, V, F, C>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: AsyncLookupFunction<K, V>,
    C: super::LookupCache<K, V> + 'static,
{
    /// `function` behind `cache` (which other lookup functions may share).
    pub fn new(function: F, cache: Arc<C>) -> Self {
        PartialCachingAsyncLookupFunction {
            function,
            cache,
            loads: Counter::new(),
            load_failures: Counter::new(),
            latest_load_time: Gauge::new(),
            _rows: PhantomData,
        }
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
    pub async fn lookup_shared(&self, key: &K) -> Result<Arc<[V]>> {
        if let Some(rows) = self.cache.get_if_present(key) {
            return Ok(rows);
        }
        let started = Instant::now();
        let loaded = self.function.lookup(key).await;
        let took = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.latest_load_time.set(took);
        match loaded {
            Ok(rows) => {
                self.loads.inc();
                let rows: Arc<[V]> = Arc::from(rows);
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

#[async_trait::async_trait]
impl<K, V, F, C> AsyncLookupFunction<K, V> for PartialCachingAsyncLookupFunction<K, V, F, C>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: AsyncLookupFunction<K, V>,
    C: super::LookupCache<K, V> + 'static,
{
    async fn open(&mut self, ctx: &dyn LookupContext) -> Result<()> {
        let group = ctx.metric_group();
        self.cache.open(&*group);
        self.loads = group.counter(LOAD_COUNT);
        self.load_failures = group.counter(NUM_LOAD_FAILURES);
        self.latest_load_time = group.gauge(LATEST_LOAD_TIME);
        self.function.open(ctx).await
    }

    /// The rows of `key`, copied out of the cache (the API returns a `Vec`).
    async fn lookup(&self, key: &K) -> Result<Vec<V>> {
        self.lookup_shared(key).await.map(|rows| rows.to_vec())
    }

    async fn close(&mut self) -> Result<()> {
        self.function.close().await
    }
}
