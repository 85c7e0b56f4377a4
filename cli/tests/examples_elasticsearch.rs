//! The Elasticsearch examples run for real with the `weir` binary, against one noida-db (its
//! Kafka protocol and its Elasticsearch API): the files are the examples themselves, with only
//! the addresses replaced, the sources bounded and the checkpoints shortened; the index is read
//! back with a plain HTTP client and compared with the input.
//!
//! - `examples/kafka-to-elasticsearch.toml`: JSON orders over three days → one index per day, ids
//!   from the order id; the third day's index was made with a mapping that refuses the orders'
//!   `customer` strings, so those orders land in the dead-letter index with the reason.
//! - `examples/cdc-to-elasticsearch.toml`: Debezium events (create, update, delete, re-create)
//!   keyed by id → the `customers` index equals the table's final state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use common::{repo, run, weir};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{json, Value as Json};
use weir_testkit::servers::{http, NoidaDb};

/// An example with its addresses replaced and `extra` applied (old → new pairs).
fn example(name: &str, server: &NoidaDb, extra: &[(&str, &str)]) -> String {
    let mut text = fs::read_to_string(repo().join("examples").join(name)).unwrap();
    for (old, new) in [
        ("localhost:9092".to_owned(), server.kafka_bootstrap()),
        (
            "http://localhost:9200".to_owned(),
            server.elasticsearch_url(),
        ),
        (
            "scan.startup.mode = \"earliest-offset\"".to_owned(),
            "scan.startup.mode = \"earliest-offset\"\nscan.bounded.mode = \"latest-offset\""
                .to_owned(),
        ),
        (
            "interval = \"10s\"".to_owned(),
            "interval = \"300ms\"".to_owned(),
        ),
    ]
    .into_iter()
    .chain(
        extra
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned())),
    ) {
        assert!(text.contains(&old), "{name} no longer contains {old:?}");
        text = text.replace(&old, &new);
    }
    text
}

fn produce(server: &NoidaDb, topic: &str, records: &[(String, String)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", server.kafka_bootstrap())
        .create()
        .unwrap();
    let created = futures::executor::block_on(admin.create_topics(
        &[NewTopic::new(topic, 2, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ))
    .unwrap();
    for r in created {
        r.unwrap();
    }
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", server.kafka_bootstrap())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for (key, value) in records {
        producer
            .send(BaseRecord::to(topic).key(key).payload(value))
            .map_err(|e| e.0)
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// `method path` with the JSON `body` on the server's Elasticsearch API: the status and the
/// answer (`null` if it is not JSON).
pub(crate) fn call(server: &NoidaDb, method: &str, path: &str, body: &Json) -> (u16, Json) {
    let r = http::request(
        server.elasticsearch_addr(),
        method,
        path,
        &[("Content-Type", "application/json".to_owned())],
        &serde_json::to_vec(body).unwrap(),
        Duration::from_secs(20),
    )
    .unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Json::Null),
    )
}

/// Every document of `index`, by id (after a refresh).
pub(crate) fn documents(server: &NoidaDb, index: &str) -> BTreeMap<String, Json> {
    call(server, "POST", &format!("/{index}/_refresh"), &Json::Null);
    let (status, answer) = call(
        server,
        "POST",
        &format!("/{index}/_search"),
        &json!({ "size": 10000, "query": { "match_all": {} } }),
    );
    assert_eq!(status, 200, "{index}: {answer}");
    answer["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["_id"].as_str().unwrap().to_owned(), h["_source"].clone()))
        .collect()
}

const DAY: i64 = 86_400_000;
const BASE: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn iso(ms: i64) -> String {
    let days = ms.div_euclid(DAY) - BASE / DAY;
    let rest = ms.rem_euclid(DAY);
    format!(
        "2026-01-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        days + 1,
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

#[test]
fn kafka_to_elasticsearch_indexes_by_day_and_dead_letters_refused_orders() {
    let server = NoidaDb::start().unwrap();
    // Orders 0..600 over three days; day 3's index refuses string customers.
    let (status, answer) = call(
        &server,
        "PUT",
        "/orders-2026-01-03",
        &json!({ "mappings": { "properties": { "customer": { "type": "long" } } } }),
    );
    assert_eq!(status, 200, "{answer}");
    let orders: Vec<(i64, String, f64, i64)> = (0..600)
        .map(|id| {
            (
                id,
                format!("customer-{}", id % 17),
                (id % 500) as f64 + 0.25,
                BASE + (id % 3) * DAY + id * 1000,
            )
        })
        .collect();
    let records: Vec<(String, String)> = orders
        .iter()
        .map(|(id, customer, amount, at)| {
            (
                id.to_string(),
                json!({ "id": id, "customer": customer, "amount": amount, "at": at }).to_string(),
            )
        })
        .collect();
    produce(&server, "orders", &records);

    let work = tempfile::tempdir().unwrap();
    fs::write(
        work.path().join("pipeline.toml"),
        example("kafka-to-elasticsearch.toml", &server, &[]),
    )
    .unwrap();
    let (code, out, err) = run(weir()
        .current_dir(work.path())
        .args(["run", "pipeline.toml"]));
    assert_eq!(code, 0, "weir run failed:\n{out}\n{err}");

    let mut expected: BTreeMap<String, BTreeMap<String, Json>> = BTreeMap::new();
    for (id, customer, amount, at) in &orders {
        let day = &iso(*at)[..10];
        expected.entry(day.to_owned()).or_default().insert(
            id.to_string(),
            json!({ "id": id, "customer": customer, "amount": amount, "at": iso(*at) }),
        );
    }
    assert_eq!(
        documents(&server, "orders-2026-01-01"),
        expected["2026-01-01"]
    );
    assert_eq!(
        documents(&server, "orders-2026-01-02"),
        expected["2026-01-02"]
    );
    assert!(documents(&server, "orders-2026-01-03").is_empty());
    let refused = documents(&server, "orders-refused");
    assert_eq!(refused.len(), expected["2026-01-03"].len());
    for (id, doc) in &expected["2026-01-03"] {
        let letter = &refused[&format!("orders-2026-01-03/{id}")];
        assert_eq!(letter["index"], json!("orders-2026-01-03"));
        assert_eq!(letter["status"], json!(400));
        assert!(
            letter["reason"].as_str().unwrap().contains("customer"),
            "{letter}"
        );
        let original: Json = serde_json::from_str(letter["document"].as_str().unwrap()).unwrap();
        assert_eq!(&original, doc);
    }
}

#[test]
fn cdc_to_elasticsearch_keeps_the_index_equal_to_the_table() {
    let server = NoidaDb::start().unwrap();
    let customer = |id: i64, version: &str| json!({ "id": id, "name": format!("name-{id}-{version}"), "email": format!("{id}@{version}.example"), "updated_at": BASE + id });
    let mut events = Vec::new();
    let mut table: BTreeMap<String, Json> = BTreeMap::new();
    let mut event = |id: i64, op: &str, before: Json, after: Json| {
        events.push((
            id.to_string(),
            json!({ "before": before, "after": after, "op": op }).to_string(),
        ));
    };
    for id in 0..200 {
        event(id, "c", Json::Null, customer(id, "v0"));
        table.insert(id.to_string(), customer(id, "v0"));
        if id % 3 == 0 {
            event(id, "u", customer(id, "v0"), customer(id, "v1"));
            table.insert(id.to_string(), customer(id, "v1"));
        }
        if id % 5 == 0 {
            event(id, "d", table[&id.to_string()].clone(), Json::Null);
            table.remove(&id.to_string());
        }
        if id % 15 == 0 {
            event(id, "c", Json::Null, customer(id, "v2"));
            table.insert(id.to_string(), customer(id, "v2"));
        }
    }
    produce(&server, "dbserver.inventory.customers", &events);

    let work = tempfile::tempdir().unwrap();
    fs::write(
        work.path().join("pipeline.toml"),
        example("cdc-to-elasticsearch.toml", &server, &[]),
    )
    .unwrap();
    let (code, out, err) = run(weir()
        .current_dir(work.path())
        .args(["run", "pipeline.toml"]));
    assert_eq!(code, 0, "weir run failed:\n{out}\n{err}");

    let expected: BTreeMap<String, Json> = table
        .into_iter()
        .map(|(id, mut row)| {
            let at = row["updated_at"].as_i64().unwrap();
            row["updated_at"] = json!(iso(at));
            (id, row)
        })
        .collect();
    assert_eq!(expected.len(), 200 - 40 + 14);
    assert_eq!(documents(&server, "customers"), expected);
}

/// A pipeline `lookup` transform with an `elasticsearch` table and a partial cache: generated
/// orders joined (left) with a customers index; every printed row matches the index.
#[test]
fn a_lookup_transform_enriches_rows_from_an_index() {
    use std::fmt::Write as _;

    use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
    use weir_connector_datagen::factory::RowGenerator;

    let server = NoidaDb::start().unwrap();
    let mut bulk = String::new();
    for id in 0..40 {
        let _ = writeln!(
            bulk,
            "{{\"index\":{{\"_index\":\"customers\",\"_id\":\"{id}\"}}}}\n{}",
            json!({ "id": id, "name": format!("customer-{id}"), "tier": if id % 10 == 0 { "gold" } else { "basic" } })
        );
    }
    let r = http::request(
        server.elasticsearch_addr(),
        "POST",
        "/_bulk?refresh=true",
        &[("Content-Type", "application/x-ndjson".to_owned())],
        bulk.as_bytes(),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let pipeline = format!(
        r#"
[pipeline]
name = "es-lookup"

[[sources]]
name = "orders"
connector = "datagen"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "customer", type = "int64", nullable = false }},
]
options = {{ number-of-rows = 300, fields.id.kind = "sequence", fields.customer.min = 0, fields.customer.max = 49 }}

[[transforms]]
name = "enriched"
input = "orders"

[transforms.lookup]
connector = "elasticsearch"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "name", type = "string" }},
  {{ name = "tier", type = "string" }},
]
options = {{ hosts = "{}", index = "customers" }}
keys = {{ customer = "id" }}
join = "left"
cache = {{ type = "partial", max-rows = 1000 }}

[[sinks]]
name = "out"
input = "enriched"
connector = "print"
"#,
        server.elasticsearch_url()
    );
    let work = tempfile::tempdir().unwrap();
    fs::write(work.path().join("pipeline.toml"), pipeline).unwrap();
    let (code, out, err) =
        run(weir()
            .current_dir(work.path())
            .args(["run", "pipeline.toml", "--progress", "quiet"]));
    assert_eq!(code, 0, "weir run failed:\n{out}\n{err}");

    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::Int64, false),
    ]);
    let options: BTreeMap<String, String> = [
        ("id.kind", "sequence"),
        ("customer.min", "0"),
        ("customer.max", "49"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut errors = Vec::new();
    let generator = RowGenerator::new(&schema, &options, 0, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let mut expected: Vec<String> = (0..300)
        .map(|n| {
            let order = generator.row(n);
            let Value::Int64(customer) = order.values[1] else {
                panic!("{order:?}")
            };
            let (name, tier) = if customer < 40 {
                (
                    Value::String(format!("customer-{customer}")),
                    Value::String(if customer % 10 == 0 { "gold" } else { "basic" }.to_owned()),
                )
            } else {
                (Value::Null, Value::Null)
            };
            weir_cli::print::render(&Row::insert(vec![
                order.values[0].clone(),
                order.values[1].clone(),
                name,
                tier,
            ]))
        })
        .collect();
    expected.sort();
    let mut printed: Vec<String> = out
        .lines()
        .filter(|l| l.contains("+I["))
        .map(|l| l.split_once("> ").map_or(l, |(_, rest)| rest).to_owned())
        .collect();
    printed.sort();
    assert_eq!(printed, expected);
    assert!(
        expected.iter().any(|r| r.contains("null")),
        "some orders have no customer"
    );
}

/// `weir check` on the Kafka → Elasticsearch example: one line per item of the sink's check
/// (cluster, health, the index pattern, the dead-letter index); with nothing listening where the
/// cluster should be, the check fails and says so.
#[test]
fn weir_check_reports_the_elasticsearch_sink() {
    let server = NoidaDb::start().unwrap();
    produce(&server, "orders", &[("1".to_owned(), "{}".to_owned())]);
    let work = tempfile::tempdir().unwrap();
    fs::write(
        work.path().join("pipeline.toml"),
        example("kafka-to-elasticsearch.toml", &server, &[]),
    )
    .unwrap();
    let (code, out, err) = run(weir()
        .current_dir(work.path())
        .args(["check", "pipeline.toml"]));
    assert_eq!(code, 0, "weir check failed:\n{out}\n{err}");
    let sink: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("(elasticsearch)"))
        .collect();
    let url = server.elasticsearch_url();
    for expected in [
        format!("ok: cluster at {url}: Elasticsearch 8.15.3"),
        "ok: cluster health: status".to_owned(),
        "ok: index pattern `orders-{at|%Y-%m-%d}`".to_owned(),
        "ok: dead-letter index `orders-refused`: does not exist yet; the first write creates it"
            .to_owned(),
    ] {
        assert!(
            sink.iter().any(|l| l.contains(&expected)),
            "no line with {expected:?} in:\n{out}"
        );
    }

    let closed = weir_testkit::servers::free_ports(1).unwrap()[0];
    let text = example("kafka-to-elasticsearch.toml", &server, &[])
        .replace(&url, &format!("http://127.0.0.1:{closed}"));
    fs::write(work.path().join("closed.toml"), text).unwrap();
    let (code, out, err) = run(weir()
        .current_dir(work.path())
        .args(["check", "closed.toml"]));
    assert_ne!(code, 0, "a check against nothing passed:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("(elasticsearch): FAILED: cluster at") && l.contains("no answer")),
        "{out}\n{err}"
    );
}
