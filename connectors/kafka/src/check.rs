//! The `kafka` connection check of `weir check` (API line 1.1): broker metadata with the
//! pipeline's client properties, then whether the topics exist (source: every listed topic, or
//! how many match the pattern; sink: the target topic). Credentials the broker refuses are named
//! as such.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use weir_connector_api::check::{CheckItem, CheckOutcome, ConnectionCheck, ConnectorRole};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::factory::FactoryContext;

use crate::config::{BOOTSTRAP_SERVERS, SINK_TOPIC, TOPICS, TOPIC_PATTERN};

/// How long the metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(8);

/// The `kafka` connection check.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KafkaCheck;

/// Client properties that only a producer or only a consumer understands; the check's consumer
/// leaves them out.
const PRODUCER_ONLY: [&str; 9] = [
    "transaction.timeout.ms",
    "transactional.id",
    "enable.idempotence",
    "acks",
    "linger.ms",
    "batch.size",
    "compression.type",
    "retries",
    "delivery.timeout.ms",
];

fn client(config: &ValidatedConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    for (key, value) in config.prefixed("properties.") {
        if key == "auto.offset.reset" || PRODUCER_ONLY.contains(&key.as_str()) {
            continue;
        }
        client.set(key, value);
    }
    client.set("bootstrap.servers", config.get(&BOOTSTRAP_SERVERS));
    client
}

fn is_credentials_error(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
        )
    )
}

fn metadata(config: &ValidatedConfig) -> Result<Metadata, CheckOutcome> {
    let servers = config.get(&BOOTSTRAP_SERVERS);
    let consumer: BaseConsumer = client(config).create().map_err(|e| {
        CheckOutcome::Failed(format!(
            "cannot create a Kafka client with these properties: {e}"
        ))
    })?;
    consumer
        .fetch_metadata(None, METADATA_TIMEOUT)
        .map_err(|e| {
            if is_credentials_error(&e) {
                CheckOutcome::CredentialsRejected(format!(
                    "the brokers at {servers} refused the client's credentials ({e}): check \
                     properties.sasl.* / properties.security.protocol"
                ))
            } else {
                CheckOutcome::Failed(format!(
                    "no broker metadata from {servers} within {} s ({e}): check \
                     properties.bootstrap.servers and that the brokers are reachable from here",
                    METADATA_TIMEOUT.as_secs()
                ))
            }
        })
}

fn topic_item(metadata: &Metadata, topic: &str) -> CheckItem {
    let what = format!("topic {topic} exists");
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    let outcome = match found {
        Some(t) if t.error().is_none() => {
            CheckOutcome::Ok(format!("{} partition(s)", t.partitions().len()))
        }
        Some(t) => CheckOutcome::Failed(format!(
            "the broker reports an error for it ({:?})",
            t.error()
        )),
        None => CheckOutcome::Failed(
            "the brokers do not know it: create it (or enable auto-creation on the brokers)"
                .to_owned(),
        ),
    };
    CheckItem::new(what, outcome)
}

#[async_trait::async_trait]
impl ConnectionCheck for KafkaCheck {
    async fn check(
        &self,
        role: ConnectorRole,
        config: &ValidatedConfig,
        _ctx: &FactoryContext<'_>,
    ) -> Vec<CheckItem> {
        let owned = config.clone();
        // librdkafka's metadata call blocks: keep it off the async worker.
        let fetched = tokio::task::spawn_blocking(move || metadata(&owned)).await;
        let metadata = match fetched {
            Ok(Ok(metadata)) => metadata,
            Ok(Err(outcome)) => return vec![CheckItem::new("broker metadata", outcome)],
            Err(e) => {
                return vec![CheckItem::new(
                    "broker metadata",
                    CheckOutcome::Failed(format!("the metadata request failed: {e}")),
                )]
            }
        };
        let brokers: Vec<String> = metadata
            .brokers()
            .iter()
            .map(|b| format!("{}:{}", b.host(), b.port()))
            .collect();
        let mut items = vec![CheckItem::new(
            "broker metadata",
            CheckOutcome::Ok(format!(
                "{} broker(s): {}",
                brokers.len(),
                brokers.join(", ")
            )),
        )];
        match role {
            ConnectorRole::Source => {
                if let Some(pattern) = config.get_optional(&TOPIC_PATTERN) {
                    let matching = regex_like_count(&metadata, &pattern);
                    items.push(CheckItem::new(
                        format!("topics matching {pattern}"),
                        match matching {
                            Ok(0) => CheckOutcome::Failed(
                                "no topic matches yet: the source will wait for one".to_owned(),
                            ),
                            Ok(n) => CheckOutcome::Ok(format!("{n} topic(s)")),
                            Err(e) => CheckOutcome::Failed(e),
                        },
                    ));
                } else {
                    for topic in config.get(&TOPICS) {
                        items.push(topic_item(&metadata, &topic));
                    }
                }
            }
            ConnectorRole::Sink => {
                if let Some(topic) = config.get_optional(&SINK_TOPIC) {
                    items.push(topic_item(&metadata, &topic));
                }
            }
            _ => {}
        }
        items
    }
}

/// How many topics the pattern matches (the source's own pattern syntax).
fn regex_like_count(metadata: &Metadata, pattern: &str) -> Result<usize, String> {
    let re = regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("`{pattern}` is not a valid pattern: {e}"))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| re.is_match(t.name()))
        .count())
}
