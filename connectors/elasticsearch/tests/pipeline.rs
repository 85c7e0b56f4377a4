//! The `elasticsearch` pipeline factory against the real servers: a changelog stream (inserts,
//! updates with their `-U` rows, deletes, re-inserts) ends as the right final documents, also
//! when items are throttled and resent; index names built from fields and dates; every bad
//! option reported at once; bad credentials named (behind a fake proxy that demands them —
//! neither test server checks credentials); the connection check of `weir check`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::fake_proxy::{FakeProxy, ProxyConfig};
use common::{index_name, Server};
use serde_json::{json, Value as Json};
use weir_connector_api::check::{CheckItem, CheckOutcome, ConnectorRole};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::erased::BoxedSink;
use weir_connector_api::factory::{find_connector, FactoryContext};
use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, Value};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::{CheckpointConfig, JobConfig, JobResult, StreamEnvironment};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
        Field::new("region", DataType::String, true),
        Field::new("at", DataType::TimestampMillis, true),
    ])
}

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn validate(pairs: &[(&str, &str)]) -> ValidatedConfig {
    find_connector("elasticsearch")
        .unwrap()
        .as_sink()
        .unwrap()
        .sink_options()
        .validate(&options(pairs))
        .unwrap()
}

fn create_sink(pairs: &[(&str, &str)]) -> weir_connector_api::error::Result<BoxedSink<Row>> {
    let schema = schema();
    find_connector("elasticsearch")
        .unwrap()
        .as_sink()
        .unwrap()
        .create_sink(
            &validate(pairs),
            &FactoryContext {
                name: "search",
                schema: &schema,
                format: None,
            },
        )
}

/// Runs `rows` in order (parallelism 1) into `sink`.
async fn run_rows(rows: Vec<Row>, sink: BoxedSink<Row>) -> JobResult {
    let rows = Arc::new(rows);
    let count = rows.len() as u64;
    let env = StreamEnvironment::new(
        JobConfig::new("changelog")
            .parallelism(1)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(100))),
    );
    env.from_source(
        DataGeneratorSource::new(
            move |n| rows[usize::try_from(n).unwrap()].clone(),
            Some(count),
            RateLimiterStrategy::no_op(),
        ),
        WatermarkStrategy::no_watermarks(),
        "rows",
    )
    .sink_to(sink);
    env.build().unwrap().start().wait().await
}

const BASE: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn row(kind: RowKind, id: i64, name: &str) -> Row {
    Row::with_kind(
        kind,
        vec![
            Value::Int64(id),
            Value::String(name.to_owned()),
            Value::String(if id % 2 == 0 { "eu" } else { "us" }.to_owned()),
            Value::TimestampMillis(BASE + (id % 3) * 86_400_000 + id),
        ],
    )
}

/// A changelog over 300 keys: inserts; updates (`-U` then `+U`) of every third key; deletes of
/// every fifth; re-inserts of every fifteenth. `by_key`: each key's changes one after another
/// (so several land in one bulk request); else phase by phase over all keys.
fn changelog(by_key: bool) -> (Vec<Row>, BTreeMap<String, Row>) {
    let changes = |id: i64| {
        let mut rows = vec![row(RowKind::Insert, id, "v0")];
        if id % 3 == 0 {
            rows.push(row(RowKind::UpdateBefore, id, "v0"));
            rows.push(row(RowKind::UpdateAfter, id, "v1"));
        }
        if id % 5 == 0 {
            rows.push(row(RowKind::Delete, id, "gone"));
        }
        if id % 15 == 0 {
            rows.push(row(RowKind::Insert, id, "v2"));
        }
        rows
    };
    let rows: Vec<Row> = if by_key {
        (0..300).flat_map(changes).collect()
    } else {
        let per_key: Vec<Vec<Row>> = (0..300).map(changes).collect();
        let phases = per_key.iter().map(Vec::len).max().unwrap_or(0);
        (0..phases)
            .flat_map(|phase| {
                per_key
                    .iter()
                    .filter_map(move |rows| rows.get(phase).cloned())
            })
            .collect()
    };
    let mut state = BTreeMap::new();
    for r in &rows {
        let Some(Value::Int64(id)) = r.get(0) else {
            unreachable!()
        };
        match r.kind {
            RowKind::Insert | RowKind::UpdateAfter => {
                state.insert(id.to_string(), r.clone());
            }
            RowKind::Delete => {
                state.remove(&id.to_string());
            }
            RowKind::UpdateBefore => {}
        }
    }
    (rows, state)
}

/// The document the sink writes for a row.
fn document(r: &Row) -> Json {
    let (
        Some(Value::Int64(id)),
        Some(Value::String(name)),
        Some(Value::String(region)),
        Some(Value::TimestampMillis(at)),
    ) = (r.get(0), r.get(1), r.get(2), r.get(3))
    else {
        unreachable!()
    };
    let at = chrono::DateTime::from_timestamp_millis(*at)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    json!({ "id": id, "name": name, "region": region, "at": at })
}

fn assert_final_state(server: &Server, index: &str, expected: &BTreeMap<String, Row>) {
    let docs = server.rest().documents(index);
    let want: BTreeMap<String, Json> = expected
        .iter()
        .map(|(id, r)| (id.clone(), document(r)))
        .collect();
    assert_eq!(docs.len(), want.len(), "{}: documents", server.name());
    assert_eq!(docs, want, "{}", server.name());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_ends_as_the_final_state_of_every_key() {
    let (rows, expected) = changelog(false);
    assert_eq!(expected.len(), 300 - 60 + 20);
    for server in Server::both() {
        let index = index_name("changelog");
        let sink = create_sink(&[
            ("hosts", &server.url()),
            ("index", &index),
            ("document-id.fields", "id"),
        ])
        .unwrap();
        let result = run_rows(rows.clone(), sink).await;
        assert!(
            result.is_finished(),
            "{}: {:?}",
            server.name(),
            result.status
        );
        assert_final_state(&server, &index, &expected);
        server.rest().delete_index(&index);
    }
}

/// Throttled items are resent; with one request in flight and the actions after a retried one
/// on the same document resent behind it, the order per document holds: the final state is
/// still exact (a delete overtaken by the resent insert of its row would resurrect the row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_keeps_its_order_per_document_when_items_are_resent() {
    let (rows, expected) = changelog(true);
    let server = Server::noida();
    let proxy = FakeProxy::start(
        server.addr(),
        ProxyConfig {
            throttle_every: 5,
            max_throttles_per_action: 2,
            ..ProxyConfig::default()
        },
    )
    .await;
    let index = index_name("changelog-throttled");
    let sink = create_sink(&[
        ("hosts", &proxy.url()),
        ("index", &index),
        ("document-id.fields", "id"),
        ("sink.action", "upsert"),
        ("sink.batch.max-size", "40"),
        ("sink.requests.max-inflight", "1"),
        ("sink.retry.initial-backoff", "5ms"),
        ("sink.retry.max-backoff", "50ms"),
    ])
    .unwrap();
    let result = run_rows(rows, sink).await;
    assert!(result.is_finished(), "{:?}", result.status);
    let throttled = proxy
        .stats()
        .throttled_actions
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(throttled > 50, "only {throttled} throttled");
    assert_final_state(&server, &index, &expected);
    server.rest().delete_index(&index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_names_come_from_fields_and_dates() {
    for server in Server::both() {
        let prefix = index_name("routed");
        let pattern = format!("{prefix}-{{region}}-{{at|%Y.%m.%d}}");
        let sink = create_sink(&[
            ("hosts", &server.url()),
            ("index", &pattern),
            ("document-id.fields", "id"),
        ])
        .unwrap();
        let rows: Vec<Row> = (0..60).map(|id| row(RowKind::Insert, id, "x")).collect();
        let result = run_rows(rows.clone(), sink).await;
        assert!(
            result.is_finished(),
            "{}: {:?}",
            server.name(),
            result.status
        );
        let mut expected: BTreeMap<String, BTreeMap<String, Json>> = BTreeMap::new();
        for r in &rows {
            let doc = document(r);
            let day = &doc["at"].as_str().unwrap()[..10].replace('-', ".");
            let index = format!("{prefix}-{}-{day}", doc["region"].as_str().unwrap());
            expected
                .entry(index)
                .or_default()
                .insert(doc["id"].to_string(), doc);
        }
        assert_eq!(expected.len(), 6, "2 regions × 3 days");
        for (index, docs) in &expected {
            assert_eq!(
                &server.rest().documents(index),
                docs,
                "{}: {index}",
                server.name()
            );
            server.rest().delete_index(index);
        }
    }
}

#[test]
fn bad_options_are_all_reported_at_once() {
    let set = find_connector("elasticsearch")
        .unwrap()
        .as_sink()
        .unwrap()
        .sink_options();
    let errors = set
        .validate(&options(&[
            ("hosts", "localhost:9200"),
            ("indx", "orders"),
            ("username", "weir"),
            ("sink.action", "replace"),
            ("sink.failure-policy", "dead-letter"),
            ("sink.batch.max-size", "0"),
        ]))
        .unwrap_err();
    let text = errors.to_string();
    for part in [
        "`localhost:9200`",      // not a URL with a scheme
        "unknown option `indx`", // with a suggestion
        "did you mean `index`",
        "missing required option `index`",
        "add `password`",
        "invalid value `replace` for option `sink.action`",
    ] {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
    // An action that needs ids, a policy without its index, a batch of 0: together.
    let errors = set
        .validate(&options(&[
            ("hosts", "http://localhost:9200"),
            ("index", "orders"),
            ("sink.action", "upsert"),
            ("sink.failure-policy", "dead-letter"),
            ("sink.batch.max-size", "0"),
        ]))
        .unwrap_err();
    let text = errors.to_string();
    for part in [
        "`upsert` action addresses documents by id: set `document-id.fields`",
        "set `sink.dead-letter.index`",
        "sink.batch.max-size",
    ] {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
    assert_eq!(errors.len(), 3, "{text}");
}

#[test]
fn options_that_depend_on_the_rows_are_checked_when_the_sink_is_made() {
    for (index, fields, expect) in [
        (
            "orders-{day}",
            "id",
            "names field `day`, which the rows do not have",
        ),
        ("orders-{at|%Q}", "id", "is not a valid date format"),
        (
            "orders-{at|%Y %m}",
            "id",
            "characters an index name may not have",
        ),
        (
            "orders-{name|%Y}",
            "id",
            "formats a time, but `name` is string",
        ),
        ("Orders", "id", "which an index name may not contain"),
        (
            "orders",
            "order_id",
            "`order_id` is not a field of the sink's input",
        ),
    ] {
        let error = create_sink(&[
            ("hosts", "http://127.0.0.1:9"),
            ("index", index),
            ("document-id.fields", fields),
        ])
        .err()
        .unwrap_or_else(|| panic!("{index} / {fields} was accepted"));
        let text = error.to_string();
        assert!(text.contains(expect), "{expect:?} not in: {text}");
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_sent_and_a_refusal_is_named() {
    let server = Server::noida();
    let proxy = FakeProxy::start(
        server.addr(),
        ProxyConfig {
            require_authorization: Some(basic("weir", "right")),
            ..ProxyConfig::default()
        },
    )
    .await;
    let index = index_name("credentials");
    let rows: Vec<Row> = (0..20).map(|id| row(RowKind::Insert, id, "x")).collect();

    let wrong = create_sink(&[
        ("hosts", &proxy.url()),
        ("index", &index),
        ("username", "weir"),
        ("password", "wrong"),
    ])
    .unwrap();
    let result = run_rows(rows.clone(), wrong).await;
    assert!(!result.is_finished(), "wrong credentials must fail the job");
    let message = result.failures.join("\n");
    assert!(
        message.contains("401 unauthorized: the cluster refused user `weir` (basic authentication): check the credentials"),
        "{message}"
    );
    assert!(!message.contains("wrong"), "the password leaked: {message}");

    let right = create_sink(&[
        ("hosts", &proxy.url()),
        ("index", &index),
        ("username", "weir"),
        ("password", "right"),
    ])
    .unwrap();
    let result = run_rows(rows, right).await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(server.rest().count(&index), 20);
    server.rest().delete_index(&index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_is_sent_as_elasticsearch_expects_it() {
    let server = Server::osmem();
    let key = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==";
    let proxy = FakeProxy::start(
        server.addr(),
        ProxyConfig {
            require_authorization: Some(format!("ApiKey {key}")),
            ..ProxyConfig::default()
        },
    )
    .await;
    let index = index_name("api-key");
    let sink =
        create_sink(&[("hosts", &proxy.url()), ("index", &index), ("api-key", key)]).unwrap();
    let rows: Vec<Row> = (0..20).map(|id| row(RowKind::Insert, id, "x")).collect();
    let result = run_rows(rows, sink).await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(server.rest().count(&index), 20);
    assert_eq!(
        proxy
            .stats()
            .rejected_credentials
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    server.rest().delete_index(&index);
    // A key that cannot travel in a header is refused before anything is sent.
    let errors = find_connector("elasticsearch")
        .unwrap()
        .as_sink()
        .unwrap()
        .sink_options()
        .validate(&options(&[
            ("hosts", "http://x:9200"),
            ("index", "i"),
            ("api-key", "id:key\nX"),
        ]))
        .unwrap_err();
    assert!(
        errors.to_string().contains("visible ASCII characters only"),
        "{errors}"
    );
    assert!(
        !errors.to_string().contains("id:key"),
        "the key leaked: {errors}"
    );
}

async fn check(role: ConnectorRole, pairs: &[(&str, &str)]) -> Vec<CheckItem> {
    let factory = find_connector("elasticsearch").unwrap();
    let set = match role {
        ConnectorRole::Lookup => factory.as_lookup().unwrap().lookup_options(),
        _ => factory.as_sink().unwrap().sink_options(),
    };
    let config = set.validate(&options(pairs)).unwrap();
    let schema = schema();
    factory
        .as_connection_check()
        .unwrap()
        .check(
            role,
            &config,
            &FactoryContext {
                name: "search",
                schema: &schema,
                format: None,
            },
        )
        .await
}

fn show(items: &[CheckItem]) -> String {
    items
        .iter()
        .map(|i| format!("{}: {:?}", i.what, i.outcome))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_check_says_what_works_and_what_does_not() {
    for server in Server::both() {
        let existing = index_name("check");
        server.rest().create_index(&existing, &json!({}));
        let url = server.url();

        // A sink to an existing index and to one the first write creates: all fine.
        let items = check(
            ConnectorRole::Sink,
            &[("hosts", &url), ("index", &existing)],
        )
        .await;
        assert!(
            items.iter().all(|i| i.outcome.is_ok()),
            "{}:\n{}",
            server.name(),
            show(&items)
        );
        assert_eq!(items.len(), 3, "{}", show(&items));
        assert!(
            matches!(&items[2].outcome, CheckOutcome::Ok(t) if t == "exists"),
            "{}",
            show(&items)
        );
        let items = check(
            ConnectorRole::Sink,
            &[("hosts", &url), ("index", "weir-not-yet")],
        )
        .await;
        assert!(
            matches!(&items[2].outcome, CheckOutcome::Ok(t) if t.contains("does not exist yet")),
            "{}",
            show(&items)
        );

        // A lookup of a missing index fails.
        let items = check(
            ConnectorRole::Lookup,
            &[("hosts", &url), ("index", "weir-missing")],
        )
        .await;
        assert!(
            matches!(&items[2].outcome, CheckOutcome::Failed(t) if t.contains("does not exist")),
            "{}",
            show(&items)
        );
        server.rest().delete_index(&existing);
    }

    // Nothing listens: one failed item that says so.
    let free = weir_testkit::servers::free_ports(1).unwrap()[0];
    let items = check(
        ConnectorRole::Sink,
        &[
            ("hosts", &format!("http://127.0.0.1:{free}")),
            ("index", "orders"),
        ],
    )
    .await;
    assert_eq!(items.len(), 1, "{}", show(&items));
    assert!(
        matches!(&items[0].outcome, CheckOutcome::Failed(t) if t.contains("no answer") && t.contains("check `hosts`")),
        "{}",
        show(&items)
    );

    // Refused credentials are named as such.
    let server = Server::noida();
    let proxy = FakeProxy::start(
        server.addr(),
        ProxyConfig {
            require_authorization: Some(basic("weir", "right")),
            ..ProxyConfig::default()
        },
    )
    .await;
    let items = check(
        ConnectorRole::Sink,
        &[
            ("hosts", &proxy.url()),
            ("index", "orders"),
            ("username", "weir"),
            ("password", "nope"),
        ],
    )
    .await;
    assert!(
        matches!(&items[0].outcome, CheckOutcome::CredentialsRejected(t) if t.contains("user `weir`")),
        "{}",
        show(&items)
    );
}

/// The README's options tables are generated: `WEIR_REGENERATE_README=1` rewrites them.
#[test]
fn readme_contains_exactly_the_generated_options_tables() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let mut readme = std::fs::read_to_string(path).unwrap();
    let factory = find_connector("elasticsearch").unwrap();
    let mut stale = Vec::new();
    for (name, table) in [
        (
            "sink-options",
            factory.as_sink().unwrap().sink_options().to_markdown(),
        ),
        (
            "lookup-options",
            factory.as_lookup().unwrap().lookup_options().to_markdown(),
        ),
    ] {
        let start = format!("<!-- {name}:start -->\n");
        let end = format!("<!-- {name}:end -->");
        let from = readme.find(&start).expect("start marker") + start.len();
        let to = readme.find(&end).expect("end marker");
        if readme[from..to] != table {
            stale.push(name);
            readme = format!("{}{table}{}", &readme[..from], &readme[to..]);
        }
    }
    if stale.is_empty() {
        return;
    }
    if std::env::var_os("WEIR_REGENERATE_README").is_some() {
        std::fs::write(path, readme).unwrap();
        return;
    }
    panic!("README tables out of date: {stale:?}; run with WEIR_REGENERATE_README=1");
}

/// TLS through rustls: a fake HTTPS proxy with a certificate of a CA made for the test. With
/// the CA in `tls.ca-certificate` every document arrives; without it the job fails at once
/// with a message that names the untrusted certificate and the option (not after retries);
/// `tls.verification = none` writes without checking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_ca_certificate_works_and_an_untrusted_one_is_named() {
    use common::fake_proxy::TestCertificates;

    let server = Server::noida();
    let certificates = TestCertificates::generate();
    let proxy = FakeProxy::start_tls(server.addr(), ProxyConfig::default(), &certificates).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &certificates.ca_pem).unwrap();
    let rows: Vec<Row> = (0..30).map(|id| row(RowKind::Insert, id, "x")).collect();

    let index = index_name("tls");
    let trusted = create_sink(&[
        ("hosts", &proxy.https_url()),
        ("index", &index),
        ("document-id.fields", "id"),
        ("tls.ca-certificate", ca.to_str().unwrap()),
    ])
    .unwrap();
    let result = run_rows(rows.clone(), trusted).await;
    assert!(result.is_finished(), "{:?}", result.status);
    assert_eq!(server.rest().count(&index), 30);

    let untrusted = create_sink(&[("hosts", &proxy.https_url()), ("index", &index)]).unwrap();
    let started = std::time::Instant::now();
    let result = run_rows(rows.clone(), untrusted).await;
    assert!(
        !result.is_finished(),
        "an untrusted certificate was accepted"
    );
    let message = result.failures.join("\n");
    assert!(
        message.contains("certificate is not trusted") && message.contains("tls.ca-certificate"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed only after retries"
    );

    let unchecked = create_sink(&[
        ("hosts", &proxy.https_url()),
        ("index", &index),
        ("document-id.fields", "id"),
        ("tls.verification", "none"),
    ])
    .unwrap();
    assert!(run_rows(rows, unchecked).await.is_finished());
    server.rest().delete_index(&index);

    // A CA file that is not PEM is refused when the sink is made.
    std::fs::write(&ca, "not a certificate").unwrap();
    let error = create_sink(&[
        ("hosts", &proxy.https_url()),
        ("index", &index),
        ("tls.ca-certificate", ca.to_str().unwrap()),
    ])
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("tls.ca-certificate"), "{error}");
}
