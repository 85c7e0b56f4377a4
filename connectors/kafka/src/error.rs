//! Mapping rdkafka errors onto [`ConnectorError`]s with a retry class.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use weir_connector_api::error::{ConnectorError, ErrorClass};

/// Whether an rdkafka error is transient.
pub(crate) fn class_of(error: &KafkaError) -> ErrorClass {
    if let Some(code) = error.rdkafka_error_code() {
        if matches!(
            code,
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::InvalidConfig
                | RDKafkaErrorCode::InvalidArgument
                | RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::UnknownTopicOrPartition
        ) {
            return ErrorClass::Fatal;
        }
    }
    match error {
        KafkaError::ClientCreation(_) | KafkaError::ClientConfig(..) => ErrorClass::Fatal,
        KafkaError::Transaction(e) if e.is_fatal() || e.txn_requires_abort() => ErrorClass::Fatal,
        _ => ErrorClass::Retryable,
    }
}

/// A [`ConnectorError`] for an rdkafka error while doing `what`.
pub(crate) fn kafka_error(what: &str, error: &KafkaError) -> ConnectorError {
    let class = class_of(error);
    let hint = match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch) => {
            "; another producer initialised the same transactional id: another job (or another \
             sink of this job) uses the same sink.transactional-id-prefix, or a newer instance \
             of this job took over; give every job its own prefix"
        }
        Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed) => {
            "; the principal may not use this transactional id: grant it WRITE on the \
             transactional ids of the prefix"
        }
        Some(RDKafkaErrorCode::InvalidTransactionTimeout) => {
            "; transaction.timeout.ms is above the broker's transaction.max.timeout.ms: lower \
             properties.transaction.timeout.ms (it must still exceed the checkpoint interval)"
        }
        _ => "",
    };
    ConnectorError::external(what, class, format!("{error}{hint}"))
}
