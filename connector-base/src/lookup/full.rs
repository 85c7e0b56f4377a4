//! [`FullCachingLookupFunction`]: the whole table in memory, loaded through a bounded scan
//! source and reloaded on a [`ReloadTrigger`] (Flink's `FullCachingLookupProvider` with its
//! `LookupFullCache`, `CacheLoader` and reload triggers).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant as StdInstant;

use arc_swap::ArcSwapOption;
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use tokio::sync::watch;
use weir_connector_api::config::ConfigErrors;
use weir_connector_api::error::{ConnectorError, ErrorClass, Result};
use weir_connector_api::lookup::{AsyncLookupFunction, LookupContext, LookupFunction};
use weir_connector_api::metrics::{Counter, Gauge, MetricGroup};
use weir_connector_api::source::Source;

use super::reload::{unix_millis_now, ReloadTrigger, Schedule};
use super::scan::read_bounded;
use super::{
    SizeOf, HIT_COUNT, LATEST_LOAD_TIME, LOAD_COUNT, MISS_COUNT, NUM_CACHED_BYTES,
    NUM_CACHED_RECORDS, NUM_LOAD_FAILURES,
};

type Table<K, V> = HashMap<K, Arc<[V]>, foldhash::fast::RandomState>;

/// Loads a whole table (one run of the scan), on the loader's thread.
type LoadFn<K, V> =
    Arc<dyn Fn(Arc<dyn MetricGroup>) -> LocalBoxFuture<'static, Result<Table<K, V>>> + Send + Sync>;

/// Where the loader is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    /// No loader runs (never opened).
    Idle,
    /// The first load runs.
    Loading,
    /// A table is in place (later reloads may run meanwhile).
    Loaded,
    /// The first load failed with this message; the next open starts again.
    Failed(String),
}

/// The metrics, registered in the first opener's group.
struct Opened {
    hits: Counter,
    misses: Counter,
    loads: Counter,
    failures: Counter,
    latest_load_time: Gauge,
    records: Gauge,
    bytes: Option<Gauge>,
    group: Arc<dyn MetricGroup>,
}

/// What the lookups and the loader share.
struct Shared<K, V> {
    table: ArcSwapOption<Table<K, V>>,
    empty: Arc<[V]>,
    status: watch::Sender<Status>,
    opened: OnceLock<Opened>,
    loads: AtomicU64,
    failures: AtomicU64,
    load: LoadFn<K, V>,
    size_of: Option<SizeOf<K, V>>,
    trigger: ReloadTrigger,
}

/// Owns the loader: dropping the last clone of the function stops it.
struct Handle<K, V> {
    shared: Arc<Shared<K, V>>,
    /// Dropped with the handle, which the loader sees and stops.
    stop: watch::Sender<()>,
}

/// A full lookup cache: the whole table in memory, keyed by [`key_of`](FullCacheBuilder)
/// of each row, loaded by running a bounded scan [`Source`] to its end (in-process, with
/// [`read_bounded`]) and reloaded on a [`ReloadTrigger`]. Lookups never reach the external
/// system; a key the table lacks has no rows.
///
/// - The first [`open`](LookupFunction::open) starts a loader thread and waits for the first
///   load; if it fails, `open` fails (the next `open` tries again).
/// - Reloads build a new table beside the old one and swap it in when complete: lookups see the
///   old table or the new one, never a partial one. A failed reload keeps the old table and
///   counts in `numLoadFailures`.
/// - Clones share the table and the loader (one per subtask of a lookup join is the intended
///   use); the loader stops when the last clone is dropped.
///
/// Metrics, in the first opener's group: `hitCount`, `missCount` (lookups of keys the table
/// has or lacks), `loadCount` (successful loads), `numLoadFailures`, `latestLoadTime` (ms of
/// the latest load, failed or not), `numCachedRecords` (keys in the table, as Flink counts
/// them) and, with [`FullCacheBuilder::size_of`], `numCachedBytes`.
///
/// ```
/// use std::time::Duration;
/// use weir_connector_api::lookup::LookupFunction;
/// use weir_connector_base::lookup::{FullCachingLookupFunction, ReloadTrigger};
/// use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
/// # use std::sync::Arc;
/// # use weir_connector_api::lookup::LookupContext;
/// # use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup};
/// # struct Ctx;
/// # impl LookupContext for Ctx {
/// #     fn subtask_index(&self) -> usize { 0 }
/// #     fn metric_group(&self) -> Arc<dyn MetricGroup> { Arc::new(InMemoryMetricGroup::new("l")) }
/// # }
///
/// // A "table" of (id, name) rows, scanned in full every hour.
/// let table = DataGeneratorSource::new(
///     |id| (id, format!("name-{id}")),
///     Some(100),
///     RateLimiterStrategy::no_op(),
/// );
/// let mut names = FullCachingLookupFunction::builder(
///     table,
///     |row: &(u64, String)| row.0,
///     ReloadTrigger::FixedDelay(Duration::from_secs(3600)),
/// )
/// .build()?;
/// names.open(&Ctx)?; // loads the table
/// assert_eq!(names.lookup(&7)?, vec![(7, "name-7".to_owned())]);
/// assert!(names.lookup(&100)?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FullCachingLookupFunction<K, V> {
    handle: Arc<Handle<K, V>>,
}

impl<K, V> Clone for FullCachingLookupFunction<K, V> {
    fn clone(&self) -> Self {
        FullCachingLookupFunction {
            handle: Arc::clone(&self.handle),
        }
    }
}

impl<K, V> fmt::Debug for FullCachingLookupFunction<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.handle.shared;
        f.debug_struct("FullCachingLookupFunction")
            .field("status", &*shared.status.borrow())
            .field("trigger", &shared.trigger)
            .field("loads", &shared.loads.load(Ordering::Relaxed))
            .field("failures", &shared.failures.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Builds a [`FullCachingLookupFunction`].
#[must_use]
pub struct FullCacheBuilder<K, V> {
    load: Box<dyn FnOnce(NonZeroUsize) -> LoadFn<K, V>>,
    trigger: ReloadTrigger,
    readers: NonZeroUsize,
    size_of: Option<SizeOf<K, V>>,
}

impl<K, V> fmt::Debug for FullCacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FullCacheBuilder")
            .field("trigger", &self.trigger)
            .field("readers", &self.readers)
            .field("size_of", &self.size_of.is_some())
            .finish_non_exhaustive()
    }
}

impl<K, V> FullCacheBuilder<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// Scan with `readers` readers at once (default 1).
    pub fn readers(mut self, readers: NonZeroUsize) -> Self {
        self.readers = readers;
        self
    }

    /// Estimates the bytes of a key and its rows, reported as `numCachedBytes`.
    pub fn size_of(mut self, size_of: impl Fn(&K, &[V]) -> u64 + Send + Sync + 'static) -> Self {
        self.size_of = Some(Arc::new(size_of));
        self
    }

    /// The function (not loaded yet: the first `open` loads), or what is wrong with the trigger.
    pub fn build(self) -> Result<FullCachingLookupFunction<K, V>, ConfigErrors> {
        self.trigger.validate()?;
        let (stop, _) = watch::channel(());
        let (status, _) = watch::channel(Status::Idle);
        Ok(FullCachingLookupFunction {
            handle: Arc::new(Handle {
                shared: Arc::new(Shared {
                    table: ArcSwapOption::empty(),
                    empty: Arc::from(Vec::new()),
                    status,
                    opened: OnceLock::new(),
                    loads: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    load: (self.load)(self.readers),
                    size_of: self.size_of,
                    trigger: self.trigger,
                }),
                stop,
            }),
        })
    }
}

impl<K, V> FullCachingLookupFunction<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// A full cache of the rows of the bounded `source`, each under `key_of(row)`, reloaded on
    /// `trigger`.
    pub fn builder<S>(
        source: S,
        key_of: impl Fn(&V) -> K + Send + Sync + 'static,
        trigger: ReloadTrigger,
    ) -> FullCacheBuilder<K, V>
    where
        S: Source<Output = V>,
    {
        let source = Arc::new(source);
        let key_of = Arc::new(key_of);
        FullCacheBuilder {
            load: Box::new(move |readers| {
                Arc::new(move |metrics: Arc<dyn MetricGroup>| {
                    let source = Arc::clone(&source);
                    let key_of = Arc::clone(&key_of);
                    async move {
                        let mut grouped: HashMap<K, Vec<V>, foldhash::fast::RandomState> =
                            HashMap::default();
                        read_bounded(&*source, readers, metrics, |row| {
                            grouped.entry(key_of(&row)).or_default().push(row);
                        })
                        .await?;
                        Ok(grouped
                            .into_iter()
                            .map(|(key, rows)| (key, Arc::from(rows)))
                            .collect())
                    }
                    .boxed_local()
                })
            }),
            trigger,
            readers: NonZeroUsize::MIN,
            size_of: None,
        }
    }

    /// The rows of `key` as shared rows (empty if the table lacks the key, or before the first
    /// load): a reference count, no copy.
    #[inline]
    pub fn lookup_shared(&self, key: &K) -> Arc<[V]> {
        let shared = &*self.handle.shared;
        let table = shared.table.load();
        let found = table.as_ref().and_then(|table| table.get(key)).cloned();
        if let Some(opened) = shared.opened.get() {
            match found {
                Some(_) => opened.hits.inc(),
                None => opened.misses.inc(),
            }
        }
        found.unwrap_or_else(|| Arc::clone(&shared.empty))
    }

    /// Successful loads so far (the first one and every reload).
    pub fn loads(&self) -> u64 {
        self.handle.shared.loads.load(Ordering::Relaxed)
    }

    /// Failed loads so far.
    pub fn load_failures(&self) -> u64 {
        self.handle.shared.failures.load(Ordering::Relaxed)
    }

    /// Keys in the current table.
    pub fn cached_keys(&self) -> usize {
        self.handle
            .shared
            .table
            .load()
            .as_ref()
            .map_or(0, |t| t.len())
    }

    /// Registers the metrics (first opener), starts the loader unless it runs, and waits for
    /// the first load.
    async fn open_shared(&self, group: Arc<dyn MetricGroup>) -> Result<()> {
        let shared = &self.handle.shared;
        let _ = shared.opened.set(Opened {
            hits: group.counter(HIT_COUNT),
            misses: group.counter(MISS_COUNT),
            loads: group.counter(LOAD_COUNT),
            failures: group.counter(NUM_LOAD_FAILURES),
            latest_load_time: group.gauge(LATEST_LOAD_TIME),
            records: group.gauge(NUM_CACHED_RECORDS),
            bytes: shared
                .size_of
                .as_ref()
                .map(|_| group.gauge(NUM_CACHED_BYTES)),
            group,
        });
        let start = shared.status.send_if_modified(|status| {
            if matches!(status, Status::Idle | Status::Failed(_)) {
                *status = Status::Loading;
                true
            } else {
                false
            }
        });
        if start {
            let loader_shared = Arc::clone(shared);
            let stop = self.handle.stop.subscribe();
            let spawned = std::thread::Builder::new()
                .name("weir-lookup-load".to_owned())
                .spawn(move || run_loader(&loader_shared, stop));
            if let Err(error) = spawned {
                shared
                    .status
                    .send_replace(Status::Failed(format!("cannot start its thread: {error}")));
            }
        }
        let mut status = shared.status.subscribe();
        let settled = status
            .wait_for(|s| matches!(s, Status::Loaded | Status::Failed(_)))
            .await
            .map(|s| s.clone());
        match settled {
            Ok(Status::Loaded) => Ok(()),
            Ok(Status::Failed(message)) => Err(ConnectorError::external(
                "loading the lookup table (full cache)",
                ErrorClass::Retryable,
                message,
            )),
            _ => Err(ConnectorError::Closed(
                "the lookup table's loader".to_owned(),
            )),
        }
    }
}

/// The loader thread: a small runtime of its own, so loads never take a worker of the job's
/// runtime and a synchronous `open` can wait for the first load without a deadlock.
fn run_loader<K, V>(shared: &Arc<Shared<K, V>>, stop: watch::Receiver<()>)
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    // A loader that panics while its first load is pending (in the scan, say) fails the
    // openers instead of leaving them waiting. Only on a panic: a loader that returns has set
    // the status itself, and by the time this thread ends a later `open` may have started a
    // new loader whose pending first load this must not fail.
    struct Guard<'a, K, V>(&'a Shared<K, V>);
    impl<K, V> Drop for Guard<'_, K, V> {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                return;
            }
            self.0.status.send_if_modified(|status| {
                let pending = *status == Status::Loading;
                if pending {
                    *status = Status::Failed("the loader stopped during the first load".to_owned());
                }
                pending
            });
        }
    }
    let _guard = Guard(shared);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            shared
                .status
                .send_replace(Status::Failed(format!("cannot start its runtime: {error}")));
            return;
        }
    };
    runtime.block_on(load_loop(shared, stop));
}

async fn load_loop<K, V>(shared: &Arc<Shared<K, V>>, mut stop: watch::Receiver<()>)
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    let mut schedule = Schedule::new(shared.trigger);
    let metrics = shared.opened.get().map(|o| o.group.add_group("scan"));
    let metrics: Arc<dyn MetricGroup> = match metrics {
        Some(group) => group,
        None => Arc::new(weir_connector_api::metrics::InMemoryMetricGroup::new(
            "scan",
        )),
    };
    loop {
        let started = tokio::time::Instant::now();
        let clock = StdInstant::now();
        let loaded = tokio::select! {
            loaded = (shared.load)(Arc::clone(&metrics)) => loaded,
            _ = stop.changed() => return,
        };
        let took = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
        let opened = shared.opened.get();
        if let Some(opened) = opened {
            opened.latest_load_time.set(took);
        }
        match loaded {
            Ok(table) => {
                let keys = i64::try_from(table.len()).unwrap_or(i64::MAX);
                let bytes = shared.size_of.as_ref().map(|size_of| {
                    table
                        .iter()
                        .map(|(key, rows)| size_of(key, rows))
                        .fold(0_u64, u64::saturating_add)
                });
                shared.table.store(Some(Arc::new(table)));
                shared.loads.fetch_add(1, Ordering::Relaxed);
                if let Some(opened) = opened {
                    opened.loads.inc();
                    opened.records.set(keys);
                    if let (Some(gauge), Some(bytes)) = (&opened.bytes, bytes) {
                        gauge.set(i64::try_from(bytes).unwrap_or(i64::MAX));
                    }
                }
                shared.status.send_if_modified(|status| {
                    let first = *status != Status::Loaded;
                    *status = Status::Loaded;
                    first
                });
            }
            Err(error) => {
                shared.failures.fetch_add(1, Ordering::Relaxed);
                if let Some(opened) = opened {
                    opened.failures.inc();
                }
                if *shared.status.borrow() != Status::Loaded {
                    // The first load failed: the opener fails; the next open starts again.
                    shared
                        .status
                        .send_replace(Status::Failed(error.to_string()));
                    return;
                }
                tracing::warn!(
                    "reloading a lookup table failed; the previous table stays in use: {error}"
                );
            }
        }
        let next = schedule.next(started, tokio::time::Instant::now(), unix_millis_now());
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = stop.changed() => return,
        }
    }
}

impl<K, V> LookupFunction<K, V> for FullCachingLookupFunction<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Waits (blocking the calling thread) for the first load; call it off async workers.
    fn open(&mut self, ctx: &dyn LookupContext) -> Result<()> {
        futures::executor::block_on(self.open_shared(ctx.metric_group()))
    }

    /// The rows of `key`, copied out of the table (the API returns a `Vec`); use
    /// [`lookup_shared`](FullCachingLookupFunction::lookup_shared) to avoid the copy.
    fn lookup(&mut self, key: &K) -> Result<Vec<V>> {
        Ok(self.lookup_shared(key).to_vec())
    }
}

#[async_trait::async_trait]
impl<K, V> AsyncLookupFunction<K, V> for FullCachingLookupFunction<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    async fn open(&mut self, ctx: &dyn LookupContext) -> Result<()> {
        self.open_shared(ctx.metric_group()).await
    }

    async fn lookup(&self, key: &K) -> Result<Vec<V>> {
        Ok(self.lookup_shared(key).to_vec())
    }
}
