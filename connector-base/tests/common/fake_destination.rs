//! `FakeBulkDestination`: an in-memory stand-in for a bulk API (not a real server), with
//! injected per-entry failures, throttling, slow requests and failed requests.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_base::sink::{EntryOutcome, RequestBatch, RequestSubmitter};

/// How the fake keeps what it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Every accepted entry, duplicates included (an append-only log).
    Append,
    /// Each entry once, by its value as the id (an index with document ids: re-sending is an
    /// idempotent upsert).
    UpsertById,
}

/// What the fake injects. Decisions are pseudo-random from `seed`, so runs repeat.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Chance that an entry fails with a retryable error on an attempt.
    pub entry_failure_rate: f64,
    /// An entry fails at most this many times (so bounded retries can succeed).
    pub max_failures_per_entry: u32,
    /// Entries in flight at once beyond which entries are refused with `429` (throttling).
    pub throttle_capacity: Option<usize>,
    /// Chance that a whole request fails with a retryable error.
    pub request_failure_rate: f64,
    /// Chance that a request is slow.
    pub slow_request_rate: f64,
    /// Latency of every request.
    pub latency: Duration,
    /// Extra latency of a slow request.
    pub slow_latency: Duration,
    /// The seed of the decisions.
    pub seed: u64,
}

impl Faults {
    /// No faults, no latency.
    pub fn none() -> Self {
        Faults {
            entry_failure_rate: 0.0,
            max_failures_per_entry: 0,
            throttle_capacity: None,
            request_failure_rate: 0.0,
            slow_request_rate: 0.0,
            latency: Duration::ZERO,
            slow_latency: Duration::ZERO,
            seed: 1,
        }
    }
}

/// What the fake saw, for the tests' counts.
#[derive(Debug, Default)]
pub struct FakeStats {
    pub requests: AtomicU64,
    pub failed_requests: AtomicU64,
    pub slow_requests: AtomicU64,
    pub entry_failures: AtomicU64,
    pub throttled_entries: AtomicU64,
    pub delivered_entries: AtomicU64,
    /// The most entries in flight at once since the last [`FakeBulkDestination::reset_peak`].
    pub peak_in_flight_entries: AtomicUsize,
}

impl FakeStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

struct Stored<E> {
    log: Vec<E>,
    ids: HashSet<E>,
    failures: HashMap<E, u32>,
}

/// A fake bulk destination (in memory; not a real server).
pub struct FakeBulkDestination<E> {
    storage: Storage,
    faults: Mutex<Faults>,
    stored: Mutex<Stored<E>>,
    in_flight_entries: AtomicUsize,
    pub stats: FakeStats,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SplitMix64: a cheap, well-spread hash for the fake's decisions.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn chance(hash: u64, rate: f64) -> bool {
    (hash >> 11) as f64 / (1_u64 << 53) as f64 <= rate && rate > 0.0
}

impl<E: Clone + Eq + Hash + Send + Sync + 'static> FakeBulkDestination<E> {
    pub fn new(storage: Storage, faults: Faults) -> Arc<Self> {
        Arc::new(FakeBulkDestination {
            storage,
            faults: Mutex::new(faults),
            stored: Mutex::new(Stored {
                log: Vec::new(),
                ids: HashSet::new(),
                failures: HashMap::new(),
            }),
            in_flight_entries: AtomicUsize::new(0),
            stats: FakeStats::default(),
        })
    }

    /// Changes the injected faults (e.g. throttling on, then off).
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = faults;
    }

    /// Everything stored, in arrival order.
    pub fn stored(&self) -> Vec<E> {
        lock(&self.stored).log.clone()
    }

    /// Starts a new measurement of the peak of entries in flight.
    pub fn reset_peak(&self) -> usize {
        self.stats.peak_in_flight_entries.swap(0, Ordering::Relaxed)
    }

    fn entry_hash(entry: &E) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one(entry)
    }

    async fn handle(&self, batch: &[E]) -> Result<Vec<EntryOutcome>> {
        let faults = *lock(&self.faults);
        let request = self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let n = batch.len();
        let before = self.in_flight_entries.fetch_add(n, Ordering::Relaxed);
        // Counted out also when the writer abandons the request (a timeout, a close).
        let _in_flight = InFlight(&self.in_flight_entries, n);
        self.stats
            .peak_in_flight_entries
            .fetch_max(before + n, Ordering::Relaxed);
        let throttled = faults
            .throttle_capacity
            .map_or(0, |capacity| (before + n).saturating_sub(capacity).min(n));
        let roll = mix(faults.seed ^ mix(request));
        let mut latency = faults.latency;
        if chance(mix(roll ^ 1), faults.slow_request_rate) {
            self.stats.slow_requests.fetch_add(1, Ordering::Relaxed);
            latency += faults.slow_latency;
        }
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let result = if chance(mix(roll ^ 2), faults.request_failure_rate) {
            self.stats.failed_requests.fetch_add(1, Ordering::Relaxed);
            Err(ConnectorError::retryable(
                format!("sending {n} entries to the fake bulk destination"),
                "fake: connection reset by peer",
            ))
        } else {
            Ok(self.apply(batch, throttled, &faults))
        };
        result
    }

    fn apply(&self, batch: &[E], throttled: usize, faults: &Faults) -> Vec<EntryOutcome> {
        let mut stored = lock(&self.stored);
        let accepted = batch.len() - throttled;
        let mut outcomes = Vec::with_capacity(batch.len());
        for (i, entry) in batch.iter().enumerate() {
            if i >= accepted {
                self.stats.throttled_entries.fetch_add(1, Ordering::Relaxed);
                outcomes.push(EntryOutcome::retryable("fake: 429 too many requests"));
                continue;
            }
            let failures = stored.failures.get(entry).copied().unwrap_or(0);
            let roll = mix(faults.seed ^ Self::entry_hash(entry) ^ mix(u64::from(failures) + 7));
            if failures < faults.max_failures_per_entry && chance(roll, faults.entry_failure_rate) {
                stored.failures.insert(entry.clone(), failures + 1);
                self.stats.entry_failures.fetch_add(1, Ordering::Relaxed);
                outcomes.push(EntryOutcome::retryable("fake: shard not available"));
                continue;
            }
            match self.storage {
                Storage::Append => stored.log.push(entry.clone()),
                Storage::UpsertById => {
                    if stored.ids.insert(entry.clone()) {
                        stored.log.push(entry.clone());
                    }
                }
            }
            self.stats.delivered_entries.fetch_add(1, Ordering::Relaxed);
            outcomes.push(EntryOutcome::Delivered);
        }
        outcomes
    }
}

struct InFlight<'a>(&'a AtomicUsize, usize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

/// The [`RequestSubmitter`] of the fake: every entry counts as `entry_bytes` bytes.
pub struct FakeSubmitter<E> {
    pub destination: Arc<FakeBulkDestination<E>>,
    pub entry_bytes: u64,
}

#[async_trait::async_trait]
impl<E: Clone + Eq + Hash + Send + Sync + 'static> RequestSubmitter<E> for FakeSubmitter<E> {
    fn entry_size(&self, _entry: &E) -> u64 {
        self.entry_bytes
    }

    async fn submit(&self, batch: RequestBatch<E>) -> Result<Vec<EntryOutcome>> {
        self.destination.handle(&batch).await
    }
}
