//! Typed options with Flink's keys where Flink has them, for pipeline files and
//! [`SinkOptions::from_map`] / [`LookupOptions::from_config`]. The README's tables are generated
//! from [`sink_options`] and [`lookup_options`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use weir_connector_elasticsearch::config::SinkOptions;
//!
//! let input: BTreeMap<String, String> = [
//!     ("hosts", "http://localhost:9200"),
//!     ("index", "orders-{at|%Y-%m}"),
//!     ("document-id.fields", "id"),
//!     ("sink.failure-policy", "skip"),
//! ]
//! .into_iter()
//! .map(|(k, v)| (k.to_owned(), v.to_owned()))
//! .collect();
//! let options = SinkOptions::from_map(&input)?;
//! assert_eq!(options.id_fields, ["id"]);
//! assert_eq!(options.async_sink.max_batch_size(), 1000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use weir_connector_api::config::{
    non_empty, ConfigError, ConfigErrors, ConfigOption, MemorySize, OptionSet, ValidatedConfig,
};
use weir_connector_base::sink::{AsyncSinkConfig, CheckpointFlush, RetryPolicy};

use crate::client::{Auth, ConnectionConfig, TlsVerification};
use crate::lookup::LookupBy;
use crate::sink::{ActionKind, FailurePolicy, RefreshPolicy};

/// The option keys.
pub mod keys {
    /// `hosts`.
    pub const HOSTS: &str = "hosts";
    /// `username`.
    pub const USERNAME: &str = "username";
    /// `password`.
    pub const PASSWORD: &str = "password";
    /// `api-key`.
    pub const API_KEY: &str = "api-key";
    /// `tls.verification`.
    pub const TLS_VERIFICATION: &str = "tls.verification";
    /// `tls.ca-certificate`.
    pub const TLS_CA: &str = "tls.ca-certificate";
    /// `connection.timeout`.
    pub const CONNECTION_TIMEOUT: &str = "connection.timeout";
    /// `index`.
    pub const INDEX: &str = "index";
    /// `document-id.fields`.
    pub const ID_FIELDS: &str = "document-id.fields";
    /// `document-id.key-delimiter`.
    pub const KEY_DELIMITER: &str = "document-id.key-delimiter";
    /// `sink.action`.
    pub const ACTION: &str = "sink.action";
    /// `sink.refresh`.
    pub const REFRESH: &str = "sink.refresh";
    /// `sink.failure-policy`.
    pub const FAILURE_POLICY: &str = "sink.failure-policy";
    /// `sink.dead-letter.index`.
    pub const DEAD_LETTER_INDEX: &str = "sink.dead-letter.index";
    /// `sink.checkpoint-flush`.
    pub const CHECKPOINT_FLUSH: &str = "sink.checkpoint-flush";
    /// `lookup.by`.
    pub const LOOKUP_BY: &str = "lookup.by";
    /// `lookup.max-rows`.
    pub const LOOKUP_MAX_ROWS: &str = "lookup.max-rows";
    pub use weir_connector_base::sink::keys::{
        INITIAL_BACKOFF, MAX_BACKOFF, MAX_BATCH_SIZE, MAX_BATCH_SIZE_BYTES, MAX_BUFFERED_ENTRIES,
        MAX_IN_FLIGHT_REQUESTS, MAX_RETRIES, MAX_TIME_IN_BUFFER,
    };
}

/// `tls.verification` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// Check the certificate and the host name.
    Full,
    /// Check nothing (diagnostics only).
    None,
}

weir_connector_api::config_enum!(TlsMode { "full" => Full, "none" => None });

weir_connector_api::config_enum!(ActionKind {
    "index" => Index,
    "create" => Create,
    "update" => Update,
    "upsert" => Upsert,
    "delete" => Delete,
});

weir_connector_api::config_enum!(RefreshPolicy {
    "false" => None,
    "true" => Immediate,
    "wait-for" => WaitFor,
});

/// `sink.failure-policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailurePolicyName {
    /// Fail the job.
    Fail,
    /// Skip and count.
    Skip,
    /// Store in `sink.dead-letter.index`.
    DeadLetter,
}

weir_connector_api::config_enum!(FailurePolicyName {
    "fail" => Fail,
    "skip" => Skip,
    "dead-letter" => DeadLetter,
});

/// `sink.checkpoint-flush` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckpointFlushName {
    /// Wait for requests in flight; buffered actions go into the checkpoint.
    AwaitInFlight,
    /// Send everything buffered and wait for it.
    SendAll,
}

weir_connector_api::config_enum!(CheckpointFlushName {
    "await-in-flight" => AwaitInFlight,
    "send-all" => SendAll,
});

/// `lookup.by` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupByName {
    /// The key is the document id.
    Id,
    /// `term` queries on the key fields.
    Terms,
}

weir_connector_api::config_enum!(LookupByName { "id" => Id, "terms" => Terms });

/// `hosts`.
pub static HOSTS: LazyLock<ConfigOption<Vec<String>>> = LazyLock::new(|| {
    ConfigOption::new(keys::HOSTS)
        .description(
            "Cluster URLs, separated by `;`: `http://host:9200` or `https://host:9200`. \
             Requests go round-robin over them; a request that fails is retried (on the next).",
        )
        .validator(|hosts: &Vec<String>| {
            if hosts.is_empty() {
                return Err("name at least one host, e.g. `http://localhost:9200`".to_owned());
            }
            hosts
                .iter()
                .try_for_each(|h| crate::client::parse_host(h).map(drop))
        })
});
/// `username`.
pub static USERNAME: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new(keys::USERNAME)
        .optional()
        .description("User for basic authentication (with `password`).")
        .validator(non_empty())
});
/// `password`.
pub static PASSWORD: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new(keys::PASSWORD)
        .optional()
        .sensitive()
        .description("Password for basic authentication (with `username`).")
});
/// `api-key`.
pub static API_KEY: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new(keys::API_KEY)
        .optional()
        .sensitive()
        .description(
            "API key, encoded (the `encoded` field of `POST /_security/api_key`: base64 of \
             `id:api_key`). Excludes `username` / `password`.",
        )
});
/// `tls.verification`.
pub static TLS_VERIFICATION: LazyLock<ConfigOption<TlsMode>> = LazyLock::new(|| {
    ConfigOption::new(keys::TLS_VERIFICATION)
        .default_value(TlsMode::Full)
        .description(
            "How `https://` hosts are checked: `full` (certificate chain to a trusted root and \
             host name; roots: the built-in web PKI roots plus `tls.ca-certificate`), or `none` \
             (no check at all: diagnostics only).",
        )
});
/// `tls.ca-certificate`.
pub static TLS_CA: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new(keys::TLS_CA)
        .optional()
        .description(
            "A PEM file of CA certificates to trust (e.g. the cluster's own `http_ca.crt`).",
        )
        .validator(non_empty())
});
/// `connection.timeout`.
pub static CONNECTION_TIMEOUT: LazyLock<ConfigOption<Duration>> = LazyLock::new(|| {
    ConfigOption::new(keys::CONNECTION_TIMEOUT)
        .default_value(Duration::from_secs(30))
        .description("Timeout of every request; a timed-out bulk request is retried.")
        .validator(|d: &Duration| {
            if d.is_zero() {
                Err("must be longer than zero".to_owned())
            } else {
                Ok(())
            }
        })
});
/// `index`.
pub static INDEX: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new(keys::INDEX)
        .description(
            "The index. Sinks may build it from fields: `orders-{region}` inserts a field, \
             `orders-{at|%Y-%m-%d}` formats a timestamp (or int64 epoch milliseconds) field in \
             UTC with a strftime pattern; `{{` and `}}` are literal braces.",
        )
        .validator(non_empty())
});
/// `document-id.fields`.
pub static ID_FIELDS: LazyLock<ConfigOption<Vec<String>>> = LazyLock::new(|| {
    ConfigOption::new(keys::ID_FIELDS).optional().description(
        "Fields whose values, joined by `document-id.key-delimiter`, are the document id \
             (a replay then overwrites instead of duplicating). Needed for `-D` rows and the \
             `update`, `upsert` and `delete` actions. Without it Elasticsearch generates ids.",
    )
});
/// `document-id.key-delimiter`.
pub static KEY_DELIMITER: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new(keys::KEY_DELIMITER)
        .default_value("_".to_owned())
        .description("Between the values of a document id of several fields.")
});
/// `sink.action`.
pub static ACTION: LazyLock<ConfigOption<ActionKind>> = LazyLock::new(|| {
    ConfigOption::new(keys::ACTION)
        .default_value(ActionKind::Index)
        .description(
            "What `+I` and `+U` rows do: `index` (replace the document), `create` (only if \
             missing; an existing one counts as written), `update` (merge fields into an \
             existing document), `upsert` (merge, or create), `delete`. `-D` rows delete, `-U` \
             rows are skipped.",
        )
});
/// `sink.refresh`.
pub static REFRESH: LazyLock<ConfigOption<RefreshPolicy>> = LazyLock::new(|| {
    ConfigOption::new(keys::REFRESH)
        .default_value(RefreshPolicy::None)
        .description(
            "When written documents become searchable: `false` (on the index's refresh \
             schedule, fastest), `true` (refresh after every bulk request), `wait-for` (each \
             request waits for a refresh).",
        )
});
/// `sink.failure-policy`.
pub static FAILURE_POLICY: LazyLock<ConfigOption<FailurePolicyName>> = LazyLock::new(|| {
    ConfigOption::new(keys::FAILURE_POLICY)
        .default_value(FailurePolicyName::Fail)
        .description(
            "What happens to an action the cluster refuses for good (a mapping error, an \
             update of a missing document): `fail` the job with the index, id and reason; \
             `skip` it (counted in `numRecordsSkipped`, logged); or `dead-letter` it into \
             `sink.dead-letter.index`. Throttling (429), 502/503/504 and update conflicts are \
             always retried.",
        )
});
/// `sink.dead-letter.index`.
pub static DEAD_LETTER_INDEX: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new(keys::DEAD_LETTER_INDEX)
        .optional()
        .description(
            "For `dead-letter`: the index (same cluster) that receives one document per refused \
             action: `index`, `id`, `action`, `status`, `error_type`, `reason`, `document` (the \
             original, as text), `failed_at`.",
        )
        .validator(non_empty())
});
/// `sink.batch.max-size`.
pub static MAX_BATCH_SIZE: LazyLock<ConfigOption<usize>> = LazyLock::new(|| {
    ConfigOption::new(keys::MAX_BATCH_SIZE)
        .default_value(1000)
        .description("Most actions per bulk request.")
});
/// `sink.flush-buffer.size`.
pub static MAX_BATCH_BYTES: LazyLock<ConfigOption<MemorySize>> = LazyLock::new(|| {
    ConfigOption::new(keys::MAX_BATCH_SIZE_BYTES)
        .default_value(MemorySize::from_mebibytes(5))
        .description("Most bytes per bulk request (also the largest document).")
});
/// `sink.flush-buffer.timeout`.
pub static MAX_TIME_IN_BUFFER: LazyLock<ConfigOption<Duration>> = LazyLock::new(|| {
    ConfigOption::new(keys::MAX_TIME_IN_BUFFER)
        .default_value(Duration::from_secs(1))
        .description("Longest an action waits for its bulk request to fill.")
});
/// `sink.requests.max-inflight`.
pub static MAX_IN_FLIGHT: LazyLock<ConfigOption<usize>> = LazyLock::new(|| {
    ConfigOption::new(keys::MAX_IN_FLIGHT_REQUESTS)
        .default_value(4)
        .description(
            "Most bulk requests in flight per writer (fewer while AIMD congestion control \
             backs off after throttling).",
        )
});
/// `sink.requests.max-buffered`.
pub static MAX_BUFFERED: LazyLock<ConfigOption<usize>> = LazyLock::new(|| {
    ConfigOption::new(keys::MAX_BUFFERED_ENTRIES)
        .default_value(10_000)
        .description("Buffered actions at which the writer applies backpressure.")
});
/// `sink.retry.max-retries`.
pub static MAX_RETRIES: LazyLock<ConfigOption<u32>> = LazyLock::new(|| {
    ConfigOption::new(keys::MAX_RETRIES)
        .default_value(10)
        .description(
            "Retries of one action (throttled, 5xx, whole request failed) before the job fails \
             (and restarts from its last checkpoint).",
        )
});
/// `sink.retry.initial-backoff`.
pub static INITIAL_BACKOFF: LazyLock<ConfigOption<Duration>> = LazyLock::new(|| {
    ConfigOption::new(keys::INITIAL_BACKOFF)
        .default_value(Duration::from_millis(100))
        .description("Wait after a first retryable failure; doubles per failure.")
});
/// `sink.retry.max-backoff`.
pub static MAX_BACKOFF: LazyLock<ConfigOption<Duration>> = LazyLock::new(|| {
    ConfigOption::new(keys::MAX_BACKOFF)
        .default_value(Duration::from_secs(10))
        .description("Longest wait between retries.")
});
/// `sink.checkpoint-flush`.
pub static CHECKPOINT_FLUSH: LazyLock<ConfigOption<CheckpointFlushName>> = LazyLock::new(|| {
    ConfigOption::new(keys::CHECKPOINT_FLUSH)
        .default_value(CheckpointFlushName::AwaitInFlight)
        .description(
            "What a checkpoint waits for: `await-in-flight` (requests in flight; buffered \
             actions go into the checkpoint and are resent after a restore) or `send-all` \
             (every buffered action is acknowledged before the checkpoint completes).",
        )
});
/// `lookup.by`.
pub static LOOKUP_BY: LazyLock<ConfigOption<LookupByName>> = LazyLock::new(|| {
    ConfigOption::new(keys::LOOKUP_BY)
        .default_value(LookupByName::Id)
        .description(
            "How the join's keys find documents: `id` (the key values joined by \
             `document-id.key-delimiter` are the document id, as the sink makes them; a `GET` \
             per key) or `terms` (documents whose key fields equal the key, by `term` queries; \
             at most `lookup.max-rows`).",
        )
});
/// `lookup.max-rows`.
pub static LOOKUP_MAX_ROWS: LazyLock<ConfigOption<usize>> = LazyLock::new(|| {
    ConfigOption::new(keys::LOOKUP_MAX_ROWS)
        .default_value(100)
        .description("For `terms`: most rows per key.")
        .validator(|n: &usize| {
            if *n == 0 || *n > 10_000 {
                Err("must be between 1 and 10000 (a search's default window)".to_owned())
            } else {
                Ok(())
            }
        })
});

fn connection_options(set: OptionSet) -> OptionSet {
    set.option(&HOSTS)
        .option(&USERNAME)
        .option(&PASSWORD)
        .option(&API_KEY)
        .option(&TLS_VERIFICATION)
        .option(&TLS_CA)
        .option(&CONNECTION_TIMEOUT)
        .cross_validator(|c| {
            let mut errors = Vec::new();
            match (c.is_set(&USERNAME), c.is_set(&PASSWORD)) {
                (true, false) => errors.push(ConfigError::conflict(
                    [keys::USERNAME, keys::PASSWORD],
                    "basic authentication needs both: add `password`",
                )),
                (false, true) => errors.push(ConfigError::conflict(
                    [keys::PASSWORD, keys::USERNAME],
                    "basic authentication needs both: add `username`",
                )),
                _ => {}
            }
            if c.is_set(&API_KEY) && c.is_set(&USERNAME) {
                errors.push(ConfigError::conflict(
                    [keys::API_KEY, keys::USERNAME],
                    "choose one way to authenticate: an API key or a username and password",
                ));
            }
            if let Some(key) = c.get_optional(&API_KEY) {
                if let Some((_, reason)) = ConnectionConfig::new(["http://x"])
                    .auth(Auth::ApiKey(key))
                    .problems()
                    .into_iter()
                    .next()
                {
                    errors.push(ConfigError::conflict([keys::API_KEY], reason));
                }
            }
            if c.is_set(&TLS_CA) && c.get(&TLS_VERIFICATION) == TlsMode::None {
                errors.push(ConfigError::conflict(
                    [keys::TLS_CA, keys::TLS_VERIFICATION],
                    "with `tls.verification = none` no certificate is checked: remove the CA \
                     certificate or verify with `full`",
                ));
            }
            errors
        })
}

/// The options of the `elasticsearch` sink.
pub fn sink_options() -> OptionSet {
    connection_options(OptionSet::new("elasticsearch sink"))
        .option(&INDEX)
        .option(&ID_FIELDS)
        .option(&KEY_DELIMITER)
        .option(&ACTION)
        .option(&REFRESH)
        .option(&FAILURE_POLICY)
        .option(&DEAD_LETTER_INDEX)
        .option(&MAX_BATCH_SIZE)
        .option(&MAX_BATCH_BYTES)
        .option(&MAX_TIME_IN_BUFFER)
        .option(&MAX_IN_FLIGHT)
        .option(&MAX_BUFFERED)
        .option(&MAX_RETRIES)
        .option(&INITIAL_BACKOFF)
        .option(&MAX_BACKOFF)
        .option(&CHECKPOINT_FLUSH)
        .cross_validator(|c| {
            let mut errors = Vec::new();
            let policy = c.get(&FAILURE_POLICY);
            match (policy, c.is_set(&DEAD_LETTER_INDEX)) {
                (FailurePolicyName::DeadLetter, false) => errors.push(ConfigError::conflict(
                    [keys::FAILURE_POLICY, keys::DEAD_LETTER_INDEX],
                    "`dead-letter` needs the index to write refused actions to: set \
                     `sink.dead-letter.index`",
                )),
                (FailurePolicyName::Fail | FailurePolicyName::Skip, true) => {
                    errors.push(ConfigError::conflict(
                        [keys::DEAD_LETTER_INDEX, keys::FAILURE_POLICY],
                        "the dead-letter index is used only with `sink.failure-policy = \
                         dead-letter`",
                    ));
                }
                _ => {}
            }
            if c.get(&ACTION).needs_id() && c.get_optional(&ID_FIELDS).is_none_or(|f| f.is_empty())
            {
                errors.push(ConfigError::conflict(
                    [keys::ACTION, keys::ID_FIELDS],
                    format!(
                        "the `{}` action addresses documents by id: set `document-id.fields`",
                        c.get(&ACTION)
                    ),
                ));
            }
            if let Err(e) = async_sink_config(c) {
                errors.extend(e.into_errors());
            }
            errors
        })
}

/// The options of the `elasticsearch` lookup table.
pub fn lookup_options() -> OptionSet {
    connection_options(OptionSet::new("elasticsearch lookup"))
        .option(&INDEX)
        .option(&LOOKUP_BY)
        .option(&KEY_DELIMITER)
        .option(&LOOKUP_MAX_ROWS)
        .cross_validator(|c| {
            let mut errors = Vec::new();
            let index = c.get(&INDEX);
            if index.contains('{') || index.contains('}') {
                errors.push(ConfigError::conflict(
                    [keys::INDEX],
                    "a lookup reads one index: name it without `{field}` parts (an alias or a \
                     wildcard pattern such as `orders-*` works with `lookup.by = terms`)",
                ));
            }
            if c.get(&LOOKUP_BY) == LookupByName::Id && c.is_set(&LOOKUP_MAX_ROWS) {
                errors.push(ConfigError::conflict(
                    [keys::LOOKUP_MAX_ROWS, keys::LOOKUP_BY],
                    "a lookup by id finds at most one document per key: `lookup.max-rows` \
                     applies to `lookup.by = terms`",
                ));
            }
            errors
        })
}

/// The connection settings of validated options.
pub fn connection(c: &ValidatedConfig) -> ConnectionConfig {
    let auth = match (
        c.get_optional(&USERNAME),
        c.get_optional(&PASSWORD),
        c.get_optional(&API_KEY),
    ) {
        (_, _, Some(key)) => Auth::ApiKey(key),
        (Some(username), Some(password), None) => Auth::Basic { username, password },
        _ => Auth::None,
    };
    let tls = match (c.get(&TLS_VERIFICATION), c.get_optional(&TLS_CA)) {
        (TlsMode::None, _) => TlsVerification::Insecure,
        (TlsMode::Full, Some(path)) => TlsVerification::CaCertificate(PathBuf::from(path)),
        (TlsMode::Full, None) => TlsVerification::Default,
    };
    ConnectionConfig::new(c.get(&HOSTS))
        .auth(auth)
        .tls(tls)
        .timeout(c.get(&CONNECTION_TIMEOUT))
}

/// The AsyncSink settings of validated sink options.
pub fn async_sink_config(c: &ValidatedConfig) -> Result<AsyncSinkConfig, ConfigErrors> {
    let bytes = c.get(&MAX_BATCH_BYTES).bytes();
    AsyncSinkConfig::builder()
        .max_batch_size(c.get(&MAX_BATCH_SIZE))
        .max_batch_size_bytes(bytes)
        .max_record_size_bytes(bytes)
        .max_time_in_buffer(c.get(&MAX_TIME_IN_BUFFER))
        .max_in_flight_requests(c.get(&MAX_IN_FLIGHT))
        .max_buffered_entries(c.get(&MAX_BUFFERED))
        .retry(RetryPolicy {
            max_retries: c.get(&MAX_RETRIES),
            initial_backoff: c.get(&INITIAL_BACKOFF),
            max_backoff: c.get(&MAX_BACKOFF),
        })
        .checkpoint_flush(match c.get(&CHECKPOINT_FLUSH) {
            CheckpointFlushName::AwaitInFlight => CheckpointFlush::AwaitInFlight,
            CheckpointFlushName::SendAll => CheckpointFlush::SendAll,
        })
        .build()
}

/// Validated sink options, ready to build a sink of rows (with the rows' schema) or to read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SinkOptions {
    /// Where the cluster is.
    pub connection: ConnectionConfig,
    /// The index or index pattern (checked against the schema when the sink is built).
    pub index: String,
    /// The fields of the document id.
    pub id_fields: Vec<String>,
    /// Between id values.
    pub key_delimiter: String,
    /// What `+I` / `+U` rows do.
    pub action: ActionKind,
    /// `sink.refresh`.
    pub refresh: RefreshPolicy,
    /// `sink.failure-policy` (with the dead-letter index).
    pub failure_policy: FailurePolicy,
    /// Batching, concurrency and retries.
    pub async_sink: AsyncSinkConfig,
}

impl SinkOptions {
    /// From options already validated by [`sink_options`].
    pub fn from_config(c: &ValidatedConfig) -> Result<Self, ConfigErrors> {
        Ok(SinkOptions {
            connection: connection(c),
            index: c.get(&INDEX),
            id_fields: c.get_optional(&ID_FIELDS).unwrap_or_default(),
            key_delimiter: c.get(&KEY_DELIMITER),
            action: c.get(&ACTION),
            refresh: c.get(&REFRESH),
            failure_policy: match c.get(&FAILURE_POLICY) {
                FailurePolicyName::Fail => FailurePolicy::Fail,
                FailurePolicyName::Skip => FailurePolicy::Skip,
                FailurePolicyName::DeadLetter => FailurePolicy::DeadLetterIndex(
                    c.get_optional(&DEAD_LETTER_INDEX).unwrap_or_default(),
                ),
            },
            async_sink: async_sink_config(c)?,
        })
    }

    /// Validates `input` against [`sink_options`], reporting every problem at once.
    pub fn from_map(input: &BTreeMap<String, String>) -> Result<Self, ConfigErrors> {
        Self::from_config(&sink_options().validate(input)?)
    }
}

/// Validated lookup options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LookupOptions {
    /// Where the cluster is.
    pub connection: ConnectionConfig,
    /// The index (or alias, or wildcard pattern).
    pub index: String,
    /// How keys find documents (the fields of a `terms` lookup are the join's keys).
    pub by: LookupByName,
    /// Between id values.
    pub key_delimiter: String,
    /// For `terms`: most rows per key.
    pub max_rows: usize,
}

impl LookupOptions {
    /// From options already validated by [`lookup_options`].
    pub fn from_config(c: &ValidatedConfig) -> Self {
        LookupOptions {
            connection: connection(c),
            index: c.get(&INDEX),
            by: c.get(&LOOKUP_BY),
            key_delimiter: c.get(&KEY_DELIMITER),
            max_rows: c.get(&LOOKUP_MAX_ROWS),
        }
    }

    /// How the lookup finds the documents of keys made of `key_fields`.
    pub fn lookup_by(&self, key_fields: &[String]) -> LookupBy {
        match self.by {
            LookupByName::Id => LookupBy::Id {
                delimiter: self.key_delimiter.clone(),
            },
            LookupByName::Terms => LookupBy::Terms {
                fields: key_fields.to_vec(),
                max_rows: self.max_rows,
            },
        }
    }
}
