//! The committer of exactly-once mode: commits each prepared transaction after its checkpoint
//! completed — through the producer that opened it when it is still alive in this process, or
//! by sending `EndTxn` with its producer id and epoch when the process that prepared it is gone.

use std::time::Duration;

use rdkafka::producer::Producer;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::Counter;
use weir_connector_api::sink::{CommitRequest, Committer};

use super::producer::{pool_put, pool_take, reap, remember_committed, was_committed};
use super::KafkaCommittable;
use crate::error::class_of;
use crate::protocol::{codes, WireClient};

/// Metric: transactions committed by resuming them over the wire (their producer was gone).
pub const RESUMED_COMMITS: &str = "resumedTransactionCommits";

/// Commits [`KafkaCommittable`]s; idempotent.
pub struct KafkaCommitter {
    pub(crate) wire: WireClient,
    pub(crate) timeout: Duration,
    pub(crate) resumed: Counter,
}

enum Outcome {
    Committed,
    AlreadyCommitted,
    Retry(String),
    Lost(ConnectorError),
}

impl KafkaCommitter {
    /// Commits one transaction (blocking).
    fn commit_one(&self, c: &KafkaCommittable) -> Outcome {
        let id = &c.transactional_id;
        if was_committed(id) {
            return Outcome::AlreadyCommitted;
        }
        if let Some(p) = pool_take(id) {
            return match p.producer.commit_transaction(self.timeout) {
                Ok(()) => {
                    remember_committed(id);
                    reap(p.producer);
                    Outcome::Committed
                }
                Err(e) if class_of(&e) == weir_connector_api::error::ErrorClass::Retryable => {
                    let reason = e.to_string();
                    pool_put(p);
                    Outcome::Retry(reason)
                }
                Err(e) => {
                    // The coordinator knows what became of the transaction (another process
                    // may have committed it): ask it rather than guess from the local error.
                    tracing::warn!(id = %id, "committing through the open producer failed: {e}");
                    reap(p.producer);
                    self.resume(c)
                }
            };
        }
        self.resume(c)
    }

    /// Commits a transaction whose producer is gone, as that producer would.
    fn resume(&self, c: &KafkaCommittable) -> Outcome {
        let id = &c.transactional_id;
        let description = match self.wire.describe_transaction(id) {
            Ok(d) => d,
            Err(e) if e.code() == Some(codes::TRANSACTIONAL_ID_NOT_FOUND) => {
                // Coordinators only forget completed transactions (after
                // transactional.id.expiration.ms): this one ended long ago.
                tracing::warn!(
                    id = %id,
                    "the coordinator no longer knows transactional id {id}; it completed long \
                     ago (expired) and is taken as committed"
                );
                return Outcome::AlreadyCommitted;
            }
            Err(e) if e.is_retryable() => return Outcome::Retry(e.to_string()),
            Err(e) => return Outcome::Retry(e.to_string()),
        };
        let same =
            description.producer_id == c.producer_id && description.producer_epoch == c.epoch;
        match description.state.as_str() {
            "CompleteCommit" if same => {
                remember_committed(id);
                return Outcome::AlreadyCommitted;
            }
            "Ongoing" | "PrepareCommit" if same => {}
            // PrepareAbort, CompleteAbort, Empty, Dead, PrepareEpochFence, or another producer.
            _ if !same || description.state.contains("Abort") => {
                return Outcome::Lost(lost(c, &description.state, description.producer_epoch));
            }
            other => {
                return Outcome::Retry(format!("transaction {id} is in state {other}"));
            }
        }
        match self.wire.end_txn(id, c.producer_id, c.epoch, true) {
            Ok(()) => {
                self.resumed.inc();
                remember_committed(id);
                tracing::info!(id = %id, "committed a prepared transaction of a previous process");
                Outcome::Committed
            }
            Err(e) if e.is_retryable() => Outcome::Retry(e.to_string()),
            Err(e)
                if matches!(
                    e.code(),
                    Some(
                        codes::INVALID_PRODUCER_EPOCH
                            | codes::PRODUCER_FENCED
                            | codes::INVALID_TXN_STATE
                            | codes::INVALID_PRODUCER_ID_MAPPING
                    )
                ) =>
            {
                // Ended concurrently by someone else (a committer of an earlier attempt)?
                match self.wire.describe_transaction(id) {
                    Ok(d)
                        if d.producer_id == c.producer_id
                            && d.producer_epoch == c.epoch
                            && d.state.contains("Commit") =>
                    {
                        remember_committed(id);
                        Outcome::AlreadyCommitted
                    }
                    Ok(d) => Outcome::Lost(lost(c, &d.state, d.producer_epoch)),
                    Err(_) => Outcome::Lost(lost(c, "fenced", c.epoch)),
                }
            }
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }
}

fn lost(c: &KafkaCommittable, state: &str, epoch: i16) -> ConnectorError {
    ConnectorError::fatal(
        format!("committing transaction {}", c.transactional_id),
        format!(
            "it can no longer be committed (coordinator state {state}, epoch {epoch}, prepared \
             with epoch {}): it was aborted — by transaction.timeout.ms expiring before the \
             commit (raise properties.transaction.timeout.ms well above the checkpoint interval \
             plus restart time), or by another producer initialising the same id (another job \
             with the same sink.transactional-id-prefix). The records of its checkpoint are not \
             in Kafka",
            c.epoch
        ),
    )
}

#[async_trait::async_trait]
impl Committer<KafkaCommittable> for KafkaCommitter {
    async fn commit(&mut self, requests: &mut [CommitRequest<KafkaCommittable>]) -> Result<()> {
        for request in requests.iter_mut() {
            let c = request.committable().clone();
            let me = KafkaCommitter {
                wire: self.wire.clone(),
                timeout: self.timeout,
                resumed: self.resumed.clone(),
            };
            let outcome = tokio::task::spawn_blocking(move || me.commit_one(&c))
                .await
                .unwrap_or_else(|e| Outcome::Retry(e.to_string()));
            match outcome {
                Outcome::Committed => {}
                Outcome::AlreadyCommitted => request.already_committed(),
                Outcome::Retry(reason) => {
                    tracing::warn!(
                        id = %request.committable().transactional_id,
                        "committing a Kafka transaction failed, will retry: {reason}"
                    );
                    request.retry_later();
                }
                Outcome::Lost(e) => request.failed_unknown(e),
            }
        }
        Ok(())
    }
}
