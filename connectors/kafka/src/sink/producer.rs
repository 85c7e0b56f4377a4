//! Producers: the delivery-tracking context and partitioners, the process-wide pool that keeps
//! prepared transactions' producers alive until their commit, the reaper thread that destroys
//! producers off the async threads, and the recovery that aborts lingering transactions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use futures::task::AtomicWaker;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{DeliveryResult, Partitioner, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::{Counter, Gauge};

use crate::error::kafka_error;
use crate::protocol::WireClient;

/// How records without an explicit partition are spread (`sink.partitioner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SinkPartitioner {
    /// Kafka's: by key hash, keyless records sticky per batch.
    Default,
    /// Each writer subtask writes to one partition (`subtask % partitions`).
    Fixed,
    /// Records go to partitions in turn.
    RoundRobin,
}

weir_connector_api::config_enum!(SinkPartitioner {
    "default" => Default,
    "fixed" => Fixed,
    "round-robin" => RoundRobin,
});

/// The partitioner handed to librdkafka for `fixed` and `round-robin`.
pub(crate) struct WeirPartitioner {
    mode: SinkPartitioner,
    subtask: usize,
    next: AtomicUsize,
}

impl Partitioner for WeirPartitioner {
    fn partition(
        &self,
        _topic: &str,
        _key: Option<&[u8]>,
        partition_cnt: i32,
        _available: impl Fn(i32) -> bool,
    ) -> i32 {
        let n = partition_cnt.max(1) as usize;
        match self.mode {
            SinkPartitioner::Fixed => (self.subtask % n) as i32,
            _ => (self.next.fetch_add(1, Ordering::Relaxed) % n) as i32,
        }
    }
}

/// What delivery reports tell the writer: the first failure, and a waker for backpressure.
#[derive(Default)]
pub(crate) struct DeliveryState {
    pub(crate) first_error: Mutex<Option<String>>,
    pub(crate) waker: AtomicWaker,
    pub(crate) failed: AtomicU64,
}

impl DeliveryState {
    pub(crate) fn take_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Per-writer metric handles the producer context updates.
#[derive(Clone)]
pub(crate) struct ProducerMetrics {
    pub(crate) errors: Counter,
    pub(crate) send_time: Gauge,
}

/// The context of every sink producer.
pub(crate) struct SinkProducerContext {
    pub(crate) state: Arc<DeliveryState>,
    pub(crate) partitioner: Option<WeirPartitioner>,
    pub(crate) metrics: ProducerMetrics,
}

impl ClientContext for SinkProducerContext {
    fn stats(&self, statistics: Statistics) {
        let rtts: Vec<i64> = statistics
            .brokers
            .values()
            .filter_map(|b| b.rtt.as_ref().map(|w| w.avg))
            .filter(|v| *v > 0)
            .collect();
        if let Some(max) = rtts.iter().max() {
            self.metrics.send_time.set(max / 1000);
        }
    }
}

impl ProducerContext<WeirPartitioner> for SinkProducerContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        if let Err((e, _)) = result {
            self.metrics.errors.inc();
            self.state.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self
                .state
                .first_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if first.is_none() {
                *first = Some(e.to_string());
            }
        }
        self.state.waker.wake();
    }

    fn get_custom_partitioner(&self) -> Option<&WeirPartitioner> {
        self.partitioner.as_ref()
    }
}

/// The producer type of the sink.
pub(crate) type SinkProducer = ThreadedProducer<SinkProducerContext, WeirPartitioner>;

/// Creates a producer with `config`, the partitioner mode and fresh delivery state.
pub(crate) fn create_producer(
    config: &ClientConfig,
    partitioner: SinkPartitioner,
    subtask: usize,
    metrics: ProducerMetrics,
) -> Result<(SinkProducer, Arc<DeliveryState>)> {
    let state = Arc::new(DeliveryState::default());
    let mut config = config.clone();
    let partitioner = match partitioner {
        SinkPartitioner::Default => None,
        mode => {
            config.set("sticky.partitioning.linger.ms", "0");
            Some(WeirPartitioner {
                mode,
                subtask,
                next: AtomicUsize::new(subtask),
            })
        }
    };
    let producer = config
        .create_with_context(SinkProducerContext {
            state: Arc::clone(&state),
            partitioner,
            metrics,
        })
        .map_err(|e| kafka_error("creating the Kafka producer", &e))?;
    Ok((producer, state))
}

/// A transactional producer with its open transaction.
pub(crate) struct TxnProducer {
    pub(crate) producer: SinkProducer,
    pub(crate) state: Arc<DeliveryState>,
    pub(crate) transactional_id: String,
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    /// The checkpoint counter in the id (`<prefix>-<subtask>-<counter>`).
    pub(crate) counter: u64,
}

/// Prepared transactions by transactional id, waiting for their commit.
static POOL: LazyLock<Mutex<HashMap<String, TxnProducer>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Recently committed transactional ids (bounded), so a repeated commit is recognised.
static COMMITTED: LazyLock<Mutex<(HashSet<String>, VecDeque<String>)>> =
    LazyLock::new(|| Mutex::new((HashSet::new(), VecDeque::new())));

const COMMITTED_MEMORY: usize = 100_000;

pub(crate) fn pool_put(p: TxnProducer) {
    let old = POOL
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(p.transactional_id.clone(), p);
    if let Some(old) = old {
        reap(old.producer);
    }
}

pub(crate) fn pool_take(id: &str) -> Option<TxnProducer> {
    POOL.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(id)
}

pub(crate) fn remember_committed(id: &str) {
    let mut c = COMMITTED.lock().unwrap_or_else(PoisonError::into_inner);
    if c.0.insert(id.to_owned()) {
        c.1.push_back(id.to_owned());
        while c.1.len() > COMMITTED_MEMORY {
            if let Some(old) = c.1.pop_front() {
                c.0.remove(&old);
            }
        }
    }
}

pub(crate) fn was_committed(id: &str) -> bool {
    COMMITTED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .0
        .contains(id)
}

enum Reap {
    Producer(Box<SinkProducer>),
    Abort(Box<SinkProducer>),
}

static REAPER: LazyLock<Mutex<Option<std_mpsc::Sender<Reap>>>> = LazyLock::new(|| {
    let (tx, rx) = std_mpsc::channel::<Reap>();
    let started = std::thread::Builder::new()
        .name("kafka-producer-reaper".into())
        .spawn(move || {
            for item in rx {
                match item {
                    Reap::Producer(p) => drop(p),
                    Reap::Abort(p) => {
                        let _ = p.abort_transaction(Duration::from_secs(30));
                        drop(p);
                    }
                }
            }
        });
    Mutex::new(started.ok().map(|_| tx))
});

fn send_reap(item: Reap) {
    let tx = REAPER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match tx {
        Some(tx) => {
            if let Err(std_mpsc::SendError(item)) = tx.send(item) {
                drop(item);
            }
        }
        None => drop(item),
    }
}

/// Destroys a producer on the reaper thread (destroying one blocks for up to 100 ms).
pub(crate) fn reap(producer: SinkProducer) {
    send_reap(Reap::Producer(Box::new(producer)));
}

/// Aborts the producer's open transaction and destroys it, on the reaper thread.
pub(crate) fn reap_aborting(producer: SinkProducer) {
    send_reap(Reap::Abort(Box::new(producer)));
}

/// Live writers per transactional-id prefix and sink instance, to refuse two sinks of one
/// process sharing a prefix.
static PREFIXES: LazyLock<Mutex<HashMap<String, (u64, usize)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Registers a writer of sink `instance` under `prefix`; fails if another live sink uses it.
pub(crate) fn register_prefix(prefix: &str, instance: u64) -> Result<()> {
    let mut map = PREFIXES.lock().unwrap_or_else(PoisonError::into_inner);
    match map.get_mut(prefix) {
        Some((owner, writers)) if *owner == instance || *writers == 0 => {
            *owner = instance;
            *writers += 1;
            Ok(())
        }
        Some(_) => Err(ConnectorError::fatal(
            "starting the exactly-once Kafka writer",
            format!(
                "another running Kafka sink in this process uses sink.transactional-id-prefix \
                 `{prefix}`; two sinks with one prefix fence each other's transactions: give \
                 each sink (and each job) its own prefix"
            ),
        )),
        None => {
            map.insert(prefix.to_owned(), (instance, 1));
            Ok(())
        }
    }
}

/// Unregisters a writer registered with [`register_prefix`].
pub(crate) fn unregister_prefix(prefix: &str, instance: u64) {
    let mut map = PREFIXES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((owner, writers)) = map.get_mut(prefix) {
        if *owner == instance {
            *writers = writers.saturating_sub(1);
        }
    }
}

/// Which writer may initialise the transactional ids of one `(prefix, subtask)`: the newest.
///
/// Transactions are created and aborted on helper threads that outlive their writer when a job
/// attempt fails. Without this, such a thread of a failed attempt could initialise an id after
/// the restarted attempt had prepared a transaction under it — fencing it and aborting records
/// of a completed checkpoint. Every writer takes a [`generation`] when created; a thread
/// initialises an id only while holding its `(prefix, subtask)` slot and only if no newer
/// generation has claimed the slot.
static CLAIMS: LazyLock<Mutex<HashMap<(String, usize), ClaimSlot>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The newest generation that initialised ids of one `(prefix, subtask)`.
type ClaimSlot = Arc<Mutex<u64>>;

static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// A new writer generation, newer than every earlier one in this process.
pub(crate) fn generation() -> u64 {
    GENERATIONS.fetch_add(1, Ordering::Relaxed)
}

/// Runs `init` holding the claim of `(prefix, subtask)` for `generation`; fails without
/// running it when a newer generation has claimed the slot.
fn with_claim<R>(
    prefix: &str,
    subtask: usize,
    generation: u64,
    init: impl FnOnce() -> Result<R>,
) -> Result<R> {
    let slot = Arc::clone(
        CLAIMS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((prefix.to_owned(), subtask))
            .or_default(),
    );
    let mut owner = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if *owner > generation {
        return Err(ConnectorError::retryable(
            format!("initialising a transactional id of {prefix}-{subtask}"),
            "a newer writer (of a restarted attempt) owns these transactional ids",
        ));
    }
    *owner = generation;
    init()
}

/// `<prefix>-<subtask>-<counter>`.
pub(crate) fn transactional_id(prefix: &str, subtask: usize, counter: u64) -> String {
    format!("{prefix}-{subtask}-{counter}")
}

/// Splits a transactional id of `prefix` into subtask and counter.
pub(crate) fn parse_transactional_id(prefix: &str, id: &str) -> Option<(usize, u64)> {
    let rest = id.strip_prefix(prefix)?.strip_prefix('-')?;
    let (subtask, counter) = rest.split_once('-')?;
    if subtask.is_empty() || counter.is_empty() {
        return None;
    }
    Some((subtask.parse().ok()?, counter.parse().ok()?))
}

/// Creates a transactional producer for `id`, initialises it (which aborts a lingering
/// transaction of the id and fences older producers) and reads its producer id and epoch.
#[allow(clippy::too_many_arguments)] // the transaction's identity and its timeouts
pub(crate) fn init_transactional(
    config: &ClientConfig,
    (prefix, generation): (&str, u64),
    counter: u64,
    partitioner: SinkPartitioner,
    subtask: usize,
    metrics: ProducerMetrics,
    wire: &WireClient,
    timeout: Duration,
) -> Result<TxnProducer> {
    let id = transactional_id(prefix, subtask, counter);
    let id = id.as_str();
    with_claim(prefix, subtask, generation, || {
        let mut config = config.clone();
        config.set("transactional.id", id);
        let (producer, state) = create_producer(&config, partitioner, subtask, metrics)?;
        producer
            .init_transactions(timeout)
            .map_err(|e| kafka_error(&format!("initialising transactional id {id}"), &e))?;
        let description = wire.describe_transaction(id).map_err(|e| {
            ConnectorError::retryable(format!("describing transaction {id}"), e.to_string())
        })?;
        producer
            .begin_transaction()
            .map_err(|e| kafka_error(&format!("beginning a transaction of {id}"), &e))?;
        Ok(TxnProducer {
            producer,
            state,
            transactional_id: id.to_owned(),
            producer_id: description.producer_id,
            epoch: description.producer_epoch,
            counter,
        })
    })
}

/// `host:port` of every broker of the cluster, from the cluster metadata.
fn cluster_brokers(config: &ClientConfig, timeout: Duration) -> Result<Vec<String>> {
    let producer: rdkafka::producer::BaseProducer = config
        .create()
        .map_err(|e| kafka_error("creating a client to list the cluster's brokers", &e))?;
    let metadata = producer
        .client()
        .fetch_metadata(None, timeout)
        .map_err(|e| kafka_error("listing the cluster's brokers", &e))?;
    Ok(metadata
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect())
}

/// Aborts every open transaction of `prefixes` that belongs to this subtask's share (ids whose
/// subtask maps onto `subtask` modulo `parallelism`) and was opened after checkpoint
/// `after` — those can only hold records of checkpoints that did not complete. Transactions
/// with a counter up to `after` belong to completed checkpoints: the committer commits them.
/// Blocking.
#[allow(clippy::too_many_arguments)] // the writer's identity and its timeouts
pub(crate) fn abort_lingering(
    config: &ClientConfig,
    wire: &WireClient,
    prefixes: &[String],
    (subtask, parallelism): (usize, usize),
    generation: u64,
    after: u64,
    timeout: Duration,
) -> Result<usize> {
    // Each broker coordinates a share of the transactional ids: ask every one, not only the
    // bootstrap servers.
    let brokers = cluster_brokers(config, timeout)?;
    let listed = wire
        .list_transactions(&brokers, &["Ongoing"])
        .map_err(|e| ConnectorError::retryable("listing open transactions", e.to_string()))?;
    let mut aborted = 0;
    for t in listed {
        let owned = prefixes.iter().find_map(|p| {
            parse_transactional_id(p, &t.transactional_id)
                .filter(|(s, c)| s % parallelism.max(1) == subtask && *c > after)
                .map(|(s, _)| (p, s))
        });
        let Some((prefix, owner)) = owned else {
            continue;
        };
        tracing::info!(id = %t.transactional_id, "aborting a lingering transaction");
        with_claim(prefix, owner, generation, || {
            if let Some(p) = pool_take(&t.transactional_id) {
                let _ = p.producer.abort_transaction(timeout);
                reap(p.producer);
                return Ok(());
            }
            let mut config = config.clone();
            config.set("transactional.id", &t.transactional_id);
            let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = config
                .create()
                .map_err(|e| kafka_error("creating a producer to abort a transaction", &e))?;
            producer.init_transactions(timeout).map_err(|e| {
                kafka_error(
                    &format!("aborting lingering transaction {}", t.transactional_id),
                    &e,
                )
            })
        })?;
        aborted += 1;
    }
    Ok(aborted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactional_ids_round_trip() {
        let id = transactional_id("my-job", 3, 17);
        assert_eq!(id, "my-job-3-17");
        assert_eq!(parse_transactional_id("my-job", &id), Some((3, 17)));
        assert_eq!(parse_transactional_id("my", &id), None);
        assert_eq!(parse_transactional_id("my-job-3", &id), None);
        assert_eq!(parse_transactional_id("other", &id), None);
        assert_eq!(parse_transactional_id("my-job", "my-job-x-1"), None);
    }

    #[test]
    fn an_older_generation_may_not_initialise_ids_a_newer_one_claimed() {
        let (old, new) = (generation(), generation());
        let ran = |g| with_claim("claims-test", 0, g, || Ok(())).is_ok();
        assert!(ran(old), "the first claim succeeds");
        assert!(ran(new), "a newer generation takes the slot over");
        assert!(!ran(old), "the stale generation is refused");
        assert!(ran(new), "the owner keeps it");
        assert!(
            with_claim("claims-test", 1, old, || Ok(())).is_ok(),
            "slots are per subtask"
        );
    }

    #[test]
    fn prefixes_are_exclusive_per_live_sink() {
        assert!(register_prefix("p-test", 1).is_ok());
        assert!(register_prefix("p-test", 1).is_ok());
        assert!(register_prefix("p-test", 2).is_err());
        unregister_prefix("p-test", 1);
        unregister_prefix("p-test", 1);
        assert!(register_prefix("p-test", 2).is_ok());
    }
}
