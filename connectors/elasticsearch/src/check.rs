//! The connection check of `weir check`: the cluster answers (and accepts the credentials), its
//! health, and the index: it exists, or (for a sink) the cluster creates it on the first write.

use std::time::Duration;

use elasticsearch::http::headers::HeaderMap;
use elasticsearch::http::Method;
use elasticsearch::Elasticsearch;
use weir_connector_api::check::{CheckItem, CheckOutcome, ConnectorRole};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::factory::FactoryContext;

use crate::client::{error_chain, server_reason, tls_hint, Auth, ConnectionConfig};
use crate::config::{LookupOptions, SinkOptions};
use crate::index::IndexRouting;
use crate::sink::FailurePolicy;

/// Each check request gets at most this long.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// An answer: status and body; or why there was none.
type Answer = Result<(u16, Vec<u8>), String>;

async fn send(client: &Elasticsearch, method: Method, path: &str, timeout: Duration) -> Answer {
    let response = client
        .send(
            method,
            path,
            HeaderMap::new(),
            None::<&()>,
            None::<Vec<u8>>,
            Some(timeout),
        )
        .await
        .map_err(|e| {
            if e.is_timeout() {
                return format!("no answer within {timeout:?}");
            }
            let chain = error_chain(&e);
            match tls_hint(&chain) {
                Some(hint) => format!("{chain}: {hint}"),
                None => chain,
            }
        })?;
    let status = response.status_code().as_u16();
    let body = response.bytes().await.map_err(|e| error_chain(&e))?;
    Ok((status, body.to_vec()))
}

/// What a 401 / 403 means, as an outcome; `None` for other statuses.
fn refused(status: u16, body: &[u8], auth: &Auth, what: &str) -> Option<CheckOutcome> {
    match status {
        401 => Some(CheckOutcome::CredentialsRejected(format!(
            "the cluster refused {} (401: {}): check `username` / `password` or `api-key`",
            auth.describe(),
            server_reason(body)
        ))),
        403 => Some(CheckOutcome::Failed(format!(
            "{} may not {what} (403: {}): grant the privileges",
            auth.describe(),
            server_reason(body)
        ))),
        _ => None,
    }
}

/// Checks the connector in `role` with `config`.
pub(crate) async fn check(
    role: ConnectorRole,
    config: &ValidatedConfig,
    ctx: &FactoryContext<'_>,
) -> Vec<CheckItem> {
    let (connection, indices) = match role {
        ConnectorRole::Sink => match SinkOptions::from_config(config) {
            Ok(options) => {
                let mut indices = vec![sink_index(&options.index, ctx)];
                if let FailurePolicy::DeadLetterIndex(index) = &options.failure_policy {
                    indices.push(Target::Writable(index.clone(), "dead-letter index"));
                }
                (options.connection, indices)
            }
            Err(e) => {
                return vec![CheckItem::new(
                    "sink options",
                    CheckOutcome::Failed(e.to_string()),
                )]
            }
        },
        ConnectorRole::Lookup => {
            let options = LookupOptions::from_config(config);
            (options.connection, vec![Target::MustExist(options.index)])
        }
        _ => {
            return vec![CheckItem::new(
                format!("elasticsearch {role}"),
                CheckOutcome::Failed(format!(
                    "the elasticsearch connector has no {role}: use it as a sink or a lookup"
                )),
            )]
        }
    };
    let timeout = connection.request_timeout().min(CHECK_TIMEOUT);
    let client = match connection.client() {
        Ok(client) => client,
        Err(e) => {
            return vec![CheckItem::new(
                "client settings",
                CheckOutcome::Failed(e.to_string()),
            )]
        }
    };
    let mut items = Vec::new();
    let cluster = cluster_item(&client, &connection, timeout).await;
    let reachable = !matches!(
        cluster.outcome,
        CheckOutcome::Failed(_) | CheckOutcome::CredentialsRejected(_)
    );
    items.push(cluster);
    if !reachable {
        return items;
    }
    items.push(health_item(&client, &connection, timeout).await);
    for target in indices {
        items.push(index_item(&client, &connection, &target, timeout).await);
    }
    items
}

enum Target {
    /// A sink's fixed index (or the dead-letter index): exists, or can be created.
    Writable(String, &'static str),
    /// A sink's index pattern: indices are made on write.
    Pattern(String),
    /// A lookup's index: must exist.
    MustExist(String),
    /// The sink's index option is wrong for the rows.
    Invalid(String),
}

fn sink_index(index: &str, ctx: &FactoryContext<'_>) -> Target {
    match IndexRouting::parse(index, ctx.schema) {
        Ok(IndexRouting::Fixed(name)) => Target::Writable(name.to_string(), "index"),
        Ok(IndexRouting::Pattern(_)) => Target::Pattern(index.to_owned()),
        Err(e) => Target::Invalid(e),
    }
}

async fn cluster_item(
    client: &Elasticsearch,
    connection: &ConnectionConfig,
    timeout: Duration,
) -> CheckItem {
    let what = format!("cluster at {}", connection.describe_hosts());
    let outcome = match send(client, Method::Get, "/", timeout).await {
        Err(e) => CheckOutcome::Failed(format!(
            "no answer: {e}: check `hosts` and that the cluster runs and is reachable from here"
        )),
        Ok((status, body)) => match refused(
            status,
            &body,
            connection.credentials(),
            "read the cluster's info",
        ) {
            // A user without the `monitor` privilege may write all the same.
            Some(CheckOutcome::Failed(reason)) => {
                CheckOutcome::Ok(format!("reachable, credentials accepted ({reason})"))
            }
            Some(other) => other,
            None if (200..300).contains(&status) => {
                let info: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let text = |p: &str| {
                    info.pointer(p)
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("?")
                        .to_owned()
                };
                let product = if text("/version/distribution") == "opensearch" {
                    "OpenSearch"
                } else {
                    "Elasticsearch"
                };
                CheckOutcome::Ok(format!(
                    "{product} {} (cluster `{}`)",
                    text("/version/number"),
                    text("/cluster_name")
                ))
            }
            None => CheckOutcome::Failed(format!("{status}: {}", server_reason(&body))),
        },
    };
    CheckItem::new(what, outcome)
}

async fn health_item(
    client: &Elasticsearch,
    connection: &ConnectionConfig,
    timeout: Duration,
) -> CheckItem {
    let outcome = match send(client, Method::Get, "/_cluster/health", timeout).await {
        Err(e) => CheckOutcome::Failed(format!("no answer: {e}")),
        Ok((status, body)) => match refused(
            status,
            &body,
            connection.credentials(),
            "read the cluster's health",
        ) {
            Some(CheckOutcome::Failed(reason)) => {
                CheckOutcome::Ok(format!("not readable ({reason})"))
            }
            Some(other) => other,
            None if (200..300).contains(&status) => {
                let health: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let state = health
                    .get("status")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("unknown");
                let nodes = health
                    .get("number_of_nodes")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                if state == "red" {
                    CheckOutcome::Failed(format!(
                        "status red ({nodes} nodes): some primary shards are unassigned, writes to them fail"
                    ))
                } else {
                    CheckOutcome::Ok(format!("status {state}, {nodes} nodes"))
                }
            }
            None => CheckOutcome::Failed(format!("{status}: {}", server_reason(&body))),
        },
    };
    CheckItem::new("cluster health", outcome)
}

async fn index_item(
    client: &Elasticsearch,
    connection: &ConnectionConfig,
    target: &Target,
    timeout: Duration,
) -> CheckItem {
    let (name, label, must_exist) = match target {
        Target::Invalid(reason) => {
            return CheckItem::new("index", CheckOutcome::Failed(reason.clone()));
        }
        Target::Pattern(pattern) => {
            return CheckItem::new(
                format!("index pattern `{pattern}`"),
                CheckOutcome::Ok(
                    "indices are named per row and created on their first write (if the cluster \
                     creates indices automatically)"
                        .to_owned(),
                ),
            );
        }
        Target::Writable(name, label) => (name, *label, false),
        Target::MustExist(name) => (name, "index", true),
    };
    let what = format!("{label} `{name}`");
    let path = format!(
        "/{}",
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    );
    let outcome = match send(client, Method::Head, &path, timeout).await {
        Err(e) => CheckOutcome::Failed(format!("no answer: {e}")),
        Ok((status, body)) => match refused(
            status,
            &body,
            connection.credentials(),
            &format!("read index `{name}`"),
        ) {
            Some(outcome) => outcome,
            None if (200..300).contains(&status) => CheckOutcome::Ok("exists".to_owned()),
            None if status == 404 && must_exist => CheckOutcome::Failed(
                "does not exist: check `index` (a lookup reads an existing index)".to_owned(),
            ),
            None if status == 404 => auto_create(client, timeout).await,
            None => CheckOutcome::Failed(format!("{status}: {}", server_reason(&body))),
        },
    };
    CheckItem::new(what, outcome)
}

/// Whether the cluster creates a missing index on its first write.
async fn auto_create(client: &Elasticsearch, timeout: Duration) -> CheckOutcome {
    let path = "/_cluster/settings?include_defaults=true&flat_settings=true";
    let setting = match send(client, Method::Get, path, timeout).await {
        Ok((status, body)) if (200..300).contains(&status) => {
            let settings: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            ["transient", "persistent", "defaults"]
                .iter()
                .find_map(|scope| {
                    settings
                        .get(scope)
                        .and_then(|s| s.get("action.auto_create_index"))
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                })
        }
        _ => None,
    };
    match setting.as_deref() {
        Some("false") => CheckOutcome::Failed(
            "does not exist, and the cluster does not create indices automatically \
             (`action.auto_create_index` is false): create it first"
                .to_owned(),
        ),
        Some(patterns) if patterns != "true" => CheckOutcome::Ok(format!(
            "does not exist yet; the first write creates it if its name matches \
             `action.auto_create_index` ({patterns})"
        )),
        _ => CheckOutcome::Ok("does not exist yet; the first write creates it".to_owned()),
    }
}
