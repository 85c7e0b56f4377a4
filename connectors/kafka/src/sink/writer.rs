//! The Kafka sink writer for all three delivery guarantees.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::oneshot;
use futures::FutureExt;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::Counter;
use weir_connector_api::sink::{
    CommittingSinkWriter, FlushMode, SinkWriter, StatefulSinkWriter, WriteContext,
};

use super::producer::{
    abort_lingering, create_producer, init_transactional, pool_put, reap, reap_aborting,
    unregister_prefix, DeliveryState, ProducerMetrics, SinkPartitioner, SinkProducer, TxnProducer,
};
use super::serializer::{KafkaRecordBuf, KafkaRecordsSerializer, SerializeContext};
use super::{DeliveryGuarantee, KafkaCommittable, KafkaWriterState};
use crate::error::kafka_error;
use crate::protocol::WireClient;

/// A record librdkafka's queue refused (full); sent again before the next batch.
struct Overflow {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    partition: Option<i32>,
    timestamp: Option<i64>,
    headers: Option<OwnedHeaders>,
}

pub(crate) struct WriterSettings {
    pub(crate) config: ClientConfig,
    pub(crate) guarantee: DeliveryGuarantee,
    pub(crate) default_topic: Option<String>,
    pub(crate) partitioner: SinkPartitioner,
    pub(crate) prefix: Option<String>,
    pub(crate) flush_timeout: Duration,
    pub(crate) bootstrap: String,
    pub(crate) instance: u64,
}

type Creation = oneshot::Receiver<Result<TxnProducer>>;

/// The exactly-once state: the open transaction, the next one being created, the last barrier.
struct Transactions {
    prefix: String,
    /// The prefixes whose lingering transactions this subtask aborts (configured + restored).
    abort_prefixes: Vec<String>,
    last_barrier: u64,
    recovered: bool,
    current: Option<(TxnProducer, u64)>,
    creating: Option<(u64, Creation)>,
    wire: WireClient,
    registered: bool,
    /// This writer's claim on its transactional ids (see `producer::generation`).
    generation: u64,
}

/// Writes records to Kafka; see the [sink module](super) for the guarantees.
pub struct KafkaWriter<T> {
    settings: Arc<WriterSettings>,
    serializer: Arc<dyn KafkaRecordsSerializer<T>>,
    buf: KafkaRecordBuf,
    subtask: usize,
    parallelism: usize,
    metrics: ProducerMetrics,
    records_send: Counter,
    bytes_send: Counter,
    /// The producer of `none` and `at-least-once`.
    producer: Option<(SinkProducer, Arc<DeliveryState>)>,
    txn: Option<Transactions>,
    overflow: VecDeque<Overflow>,
    ended: bool,
}

impl<T: Send + 'static> KafkaWriter<T> {
    #[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
    pub(crate) fn new(
        settings: Arc<WriterSettings>,
        serializer: Arc<dyn KafkaRecordsSerializer<T>>,
        subtask: usize,
        parallelism: usize,
        metrics: ProducerMetrics,
        records_send: Counter,
        bytes_send: Counter,
        restored: Option<(u64, Vec<KafkaWriterState>)>,
    ) -> Result<Self> {
        let mut w = KafkaWriter {
            serializer,
            buf: KafkaRecordBuf::default(),
            subtask,
            parallelism,
            metrics,
            records_send,
            bytes_send,
            producer: None,
            txn: None,
            overflow: VecDeque::new(),
            ended: false,
            settings: Arc::clone(&settings),
        };
        match settings.guarantee {
            DeliveryGuarantee::None | DeliveryGuarantee::AtLeastOnce => {
                w.producer = Some(create_producer(
                    &settings.config,
                    settings.partitioner,
                    subtask,
                    w.metrics.clone(),
                )?);
            }
            DeliveryGuarantee::ExactlyOnce => {
                let prefix = settings.prefix.clone().ok_or_else(|| {
                    ConnectorError::fatal(
                        "starting the exactly-once Kafka writer",
                        "sink.transactional-id-prefix is required for exactly-once",
                    )
                })?;
                super::producer::register_prefix(&prefix, settings.instance)?;
                let (last_barrier, states) = restored.unwrap_or((0, Vec::new()));
                let mut abort_prefixes = vec![prefix.clone()];
                for s in states {
                    if !abort_prefixes.contains(&s.transactional_id_prefix) {
                        abort_prefixes.push(s.transactional_id_prefix);
                    }
                }
                w.txn = Some(Transactions {
                    prefix,
                    abort_prefixes,
                    last_barrier,
                    recovered: false,
                    current: None,
                    creating: None,
                    wire: WireClient::new(&settings.bootstrap, Duration::from_secs(10)),
                    registered: true,
                    generation: super::producer::generation(),
                });
                // Recovery starts now, not at the first record: a writer that gets no record
                // before a barrier (an idle or finished input) must still abort what an
                // earlier run left open, before its first checkpoint (see `await_recovery`).
                w.start_creation();
            }
        }
        Ok(w)
    }

    /// Waits until this writer has aborted the lingering transactions of its share (the
    /// recovery that precedes its first transaction).
    ///
    /// Every flush (at a barrier or at the end of input) waits for it, so no checkpoint
    /// completes before the recovery of every writer that takes part in it: a checkpoint `c`
    /// that completed guarantees that every transaction an earlier run opened with an id
    /// above the checkpoint it restored was aborted — else, restored from `c`, such a
    /// transaction with an id up to `c` would be taken for one of `c`'s own and stay open for
    /// good (on brokers that never time transactions out it blocks every read_committed
    /// reader).
    async fn await_recovery(&mut self) -> Result<()> {
        let pending = self.txn.as_ref().is_some_and(|t| !t.recovered);
        if !pending {
            return Ok(());
        }
        if self.txn.as_ref().is_some_and(|t| t.creating.is_none()) {
            self.start_creation();
        }
        std::future::poll_fn(|cx| self.poll_transaction(cx)).await
    }

    /// Drives the creation of the next transaction's producer (and the recovery before the
    /// first); ready once a producer is open or when no exactly-once transaction is needed.
    fn poll_transaction(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let need = self.txn.as_ref().is_some_and(|t| t.current.is_none());
        if !need {
            return Poll::Ready(Ok(()));
        }
        let stale = self
            .txn
            .as_ref()
            .and_then(|t| t.creating.as_ref().map(|(n, _)| *n <= t.last_barrier));
        if stale != Some(false) {
            self.start_creation();
        }
        let Some(txn) = self.txn.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let Some((_, rx)) = txn.creating.as_mut() else {
            return Poll::Pending;
        };
        match rx.poll_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => {
                txn.creating = None;
                Poll::Ready(Err(ConnectorError::Closed(
                    "the Kafka transaction thread".into(),
                )))
            }
            Poll::Ready(Ok(Err(e))) => {
                txn.creating = None;
                Poll::Ready(Err(e))
            }
            Poll::Ready(Ok(Ok(p))) => {
                txn.creating = None;
                txn.recovered = true;
                txn.current = Some((p, 0));
                Poll::Ready(Ok(()))
            }
        }
    }

    /// Starts creating the producer of the next transaction (after recovery, the first time).
    fn start_creation(&mut self) {
        let Some(txn) = self.txn.as_mut() else {
            return;
        };
        let counter = txn.last_barrier + 1;
        let (tx, rx) = oneshot::channel();
        let config = self.settings.config.clone();
        let prefix = txn.prefix.clone();
        let generation = txn.generation;
        let wire = txn.wire.clone();
        let recover = (!txn.recovered).then(|| txn.abort_prefixes.clone());
        let (subtask, parallelism, after) = (self.subtask, self.parallelism, txn.last_barrier);
        let partitioner = self.settings.partitioner;
        let metrics = self.metrics.clone();
        let timeout = self.settings.flush_timeout;
        let spawned = std::thread::Builder::new()
            .name(format!("kafka-txn-{subtask}"))
            .spawn(move || {
                let result = (|| {
                    if let Some(prefixes) = recover {
                        let n = abort_lingering(
                            &config,
                            &wire,
                            &prefixes,
                            (subtask, parallelism),
                            generation,
                            after,
                            timeout,
                        )?;
                        if n > 0 {
                            tracing::info!(subtask, aborted = n, "aborted lingering transactions");
                        }
                    }
                    init_transactional(
                        &config,
                        (&prefix, generation),
                        counter,
                        partitioner,
                        subtask,
                        metrics,
                        &wire,
                        timeout,
                    )
                })();
                if let Err(Ok(p)) = tx.send(result) {
                    // Nobody waits any more (a barrier made it stale): discard it here.
                    drop(p);
                }
            });
        match spawned {
            Ok(_) => txn.creating = Some((counter, rx)),
            Err(e) => {
                let (tx, rx) = oneshot::channel();
                let _ = tx.send(Err(ConnectorError::fatal("starting a thread", e)));
                txn.creating = Some((counter, rx));
            }
        }
    }

    fn check_delivery(&self) -> Result<()> {
        let state = match (
            &self.producer,
            self.txn.as_ref().and_then(|t| t.current.as_ref()),
        ) {
            (Some((_, s)), _) => s,
            (None, Some((p, _))) => &p.state,
            _ => return Ok(()),
        };
        match state.take_error() {
            Some(e) => Err(ConnectorError::retryable(
                "delivering records to Kafka",
                format!(
                    "{e} ({} records failed)",
                    state.failed.load(std::sync::atomic::Ordering::Relaxed)
                ),
            )),
            None => Ok(()),
        }
    }

    fn active_producer(&self) -> Option<&SinkProducer> {
        match (
            &self.producer,
            self.txn.as_ref().and_then(|t| t.current.as_ref()),
        ) {
            (Some((p, _)), _) => Some(p),
            (None, Some((p, _))) => Some(&p.producer),
            _ => None,
        }
    }

    fn waker_state(&self) -> Option<&Arc<DeliveryState>> {
        match (
            &self.producer,
            self.txn.as_ref().and_then(|t| t.current.as_ref()),
        ) {
            (Some((_, s)), _) => Some(s),
            (None, Some((p, _))) => Some(&p.state),
            _ => None,
        }
    }

    /// Sends queued overflow records; true when none is left.
    fn drain_overflow(&mut self) -> Result<bool> {
        while let Some(o) = self.overflow.pop_front() {
            let Some(producer) = self.active_producer() else {
                self.overflow.push_front(o);
                return Ok(false);
            };
            let mut record = BaseRecord::<Vec<u8>, Vec<u8>>::to(&o.topic);
            if let Some(k) = &o.key {
                record = record.key(k);
            }
            if let Some(v) = &o.value {
                record = record.payload(v);
            }
            if let Some(p) = o.partition {
                record = record.partition(p);
            }
            if let Some(ts) = o.timestamp {
                record = record.timestamp(ts);
            }
            if let Some(h) = &o.headers {
                record = record.headers(h.clone());
            }
            match producer.send(record) {
                Ok(()) => {}
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.overflow.push_front(o);
                    return Ok(false);
                }
                Err((e, _)) => {
                    return Err(kafka_error(&format!("sending to topic {}", o.topic), &e))
                }
            }
        }
        Ok(true)
    }

    async fn flush_producer(&mut self) -> Result<()> {
        loop {
            if self.drain_overflow()? {
                break;
            }
            if let Some(p) = self.active_producer() {
                p.poll(Duration::ZERO);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let timeout = self.settings.flush_timeout;
        let result = match (
            &self.producer,
            self.txn.as_ref().and_then(|t| t.current.as_ref()),
        ) {
            (Some((p, _)), _) => flush_blocking(p, timeout).await,
            (None, Some((p, _))) => flush_blocking(&p.producer, timeout).await,
            _ => Ok(()),
        };
        result.map_err(|e| kafka_error("flushing records to Kafka", &e))?;
        self.check_delivery()
    }
}

/// Flushes. rdkafka's `flush` polls the producer queue for up to 100 ms at a time, racing the
/// threaded producer's own polling thread for delivery reports; instead, librdkafka's flush is
/// triggered without waiting (it sends lingering batches at once) and the queue length is watched.
async fn flush_blocking(
    p: &SinkProducer,
    timeout: Duration,
) -> std::result::Result<(), KafkaError> {
    let deadline = std::time::Instant::now() + timeout;
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    loop {
        match p.flush(Duration::ZERO) {
            Ok(()) => return Ok(()),
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {}
            Err(e) => return Err(e),
        }
        if p.in_flight_count() == 0 {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        if multi {
            tokio::task::block_in_place(|| std::thread::sleep(Duration::from_micros(200)));
        } else {
            tokio::task::yield_now().await;
        }
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> SinkWriter<T> for KafkaWriter<T> {
    fn write(&mut self, element: T, ctx: &WriteContext) -> Result<()> {
        let sctx = SerializeContext {
            timestamp: ctx.timestamp,
            subtask: self.subtask,
            parallelism: self.parallelism,
        };
        let serializer = Arc::clone(&self.serializer);
        let mut buf = std::mem::take(&mut self.buf);
        let written =
            serializer.serialize_each(&element, &sctx, &mut buf, &mut |buf| self.send(buf));
        self.buf = buf;
        written
    }
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Err(e) = self.check_delivery() {
            return Poll::Ready(Err(e));
        }
        if self.txn.is_some() {
            match self.poll_transaction(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
        match self.drain_overflow() {
            Err(e) => Poll::Ready(Err(e)),
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => {
                if let Some(s) = self.waker_state() {
                    s.waker.register(cx.waker());
                }
                // Delivery reports free queue space and wake us; retry once now in case they
                // came before the registration.
                match self.drain_overflow() {
                    Err(e) => Poll::Ready(Err(e)),
                    Ok(true) => Poll::Ready(Ok(())),
                    Ok(false) => Poll::Pending,
                }
            }
        }
    }

    async fn flush(&mut self, mode: FlushMode) -> Result<()> {
        self.await_recovery().await?;
        if mode == FlushMode::EndOfInput {
            self.ended = true;
        }
        let flush = match self.settings.guarantee {
            DeliveryGuarantee::None => mode == FlushMode::EndOfInput || !self.overflow.is_empty(),
            _ => true,
        };
        if flush {
            self.flush_producer().await?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        if let Some((p, _)) = self.producer.take() {
            let _ = flush_blocking(&p, self.settings.flush_timeout).await;
            reap(p);
        }
        if let Some(txn) = self.txn.as_mut() {
            if let Some((p, n)) = txn.current.take() {
                if n > 0 {
                    reap_aborting(p.producer);
                } else {
                    reap(p.producer);
                }
            }
            txn.creating = None;
        }
        Ok(())
    }
}

impl<T: Send + 'static> KafkaWriter<T> {
    /// Sends the record in `buf` (its topic, or the sink's).
    fn send(&mut self, buf: &KafkaRecordBuf) -> Result<()> {
        let topic: &str = if buf.has_topic {
            &buf.topic
        } else {
            match &self.settings.default_topic {
                Some(t) => t,
                None => {
                    return Err(ConnectorError::malformed(
                        "a record for the Kafka sink",
                        "it has no topic: set the sink's `topic` option or choose one in the \
                         record serializer",
                    ))
                }
            }
        };
        if topic.is_empty() || topic.contains('\0') {
            return Err(ConnectorError::malformed(
                "a record for the Kafka sink",
                format!("invalid topic name {topic:?}"),
            ));
        }
        let producer = match (
            &self.producer,
            self.txn.as_mut().and_then(|t| t.current.as_mut()),
        ) {
            (Some((p, _)), _) => p,
            (None, Some((p, n))) => {
                *n += 1;
                &p.producer
            }
            _ => {
                return Err(ConnectorError::Contract(
                    "the Kafka writer got a record before poll_ready was ready".into(),
                ))
            }
        };
        let mut record = BaseRecord::<Vec<u8>, Vec<u8>>::to(topic);
        if buf.has_key {
            record = record.key(&buf.key);
        }
        if buf.has_value {
            record = record.payload(&buf.value);
        }
        if let Some(p) = buf.partition {
            record = record.partition(p);
        }
        if let Some(ts) = buf.timestamp {
            record = record.timestamp(ts);
        }
        let headers = (!buf.headers.is_empty()).then(|| {
            buf.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(v),
                })
            })
        });
        if let Some(h) = &headers {
            record = record.headers(h.clone());
        }
        let bytes = buf.key.len() + buf.value.len();
        match producer.send(record) {
            Ok(()) => {}
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                self.overflow.push_back(Overflow {
                    topic: topic.to_owned(),
                    key: buf.has_key.then(|| buf.key.clone()),
                    value: buf.has_value.then(|| buf.value.clone()),
                    partition: buf.partition,
                    timestamp: buf.timestamp,
                    headers,
                });
            }
            Err((e, _)) => {
                self.metrics.errors.inc();
                return Err(kafka_error(
                    &format!("sending a record to topic {topic}"),
                    &e,
                ));
            }
        }
        self.records_send.inc();
        self.bytes_send.add(bytes as u64);
        Ok(())
    }
}

impl<T> Drop for KafkaWriter<T> {
    fn drop(&mut self) {
        if let Some((p, _)) = self.producer.take() {
            reap(p);
        }
        if let Some(txn) = self.txn.as_mut() {
            if let Some((p, _)) = txn.current.take() {
                // Its records were not prepared: recovery or a newer producer aborts it.
                reap(p.producer);
            }
            if txn.registered {
                txn.registered = false;
                unregister_prefix(&txn.prefix, self.settings.instance);
            }
        }
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> CommittingSinkWriter<T> for KafkaWriter<T> {
    type Committable = KafkaCommittable;

    async fn prepare_commit(&mut self) -> Result<Vec<KafkaCommittable>> {
        let Some(txn) = self.txn.as_mut() else {
            return Ok(Vec::new());
        };
        match txn.current.take() {
            Some((p, n)) if n > 0 => {
                let committable = KafkaCommittable {
                    transactional_id: p.transactional_id.clone(),
                    producer_id: p.producer_id,
                    epoch: p.epoch,
                };
                pool_put(p);
                Ok(vec![committable])
            }
            other => {
                // Nothing written: the transaction is unknown to the broker; keep it if its id is
                // still ahead of the barrier (checked in snapshot_state).
                txn.current = other;
                Ok(Vec::new())
            }
        }
    }
}

impl<T: Send + 'static> StatefulSinkWriter<T> for KafkaWriter<T> {
    type State = KafkaWriterState;

    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<KafkaWriterState>> {
        let mut eager = false;
        if let Some(txn) = self.txn.as_mut() {
            if !checkpoint_id.is_end_of_input() {
                let prepared_now = txn.current.is_none() && txn.recovered;
                txn.last_barrier = txn.last_barrier.max(checkpoint_id.0);
                // An unused producer whose id is no longer ahead of the barrier may not be used:
                // after a restore from this checkpoint nobody would abort its transaction.
                if txn
                    .current
                    .as_ref()
                    .is_some_and(|(p, _)| p.counter <= txn.last_barrier)
                {
                    if let Some((p, _)) = txn.current.take() {
                        reap(p.producer);
                    }
                }
                if txn
                    .creating
                    .as_ref()
                    .is_some_and(|(n, _)| *n <= txn.last_barrier)
                {
                    txn.creating = None;
                }
                eager = prepared_now && !self.ended;
            }
            let state = vec![KafkaWriterState {
                transactional_id_prefix: txn.prefix.clone(),
            }];
            if eager && txn.creating.is_none() && txn.current.is_none() {
                self.start_creation();
            }
            return Ok(state);
        }
        Ok(Vec::new())
    }
}
