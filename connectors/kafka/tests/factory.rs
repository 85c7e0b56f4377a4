//! The `kafka` pipeline factory against the real broker: rows written by the factory's
//! exactly-once sink (JSON values, keys from `key.fields`) are in the topic exactly once, and
//! the factory's bounded source reads them back as the same rows; changelog formats emit every
//! row a record decodes into; bad options and a missing format are reported.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Kafka;
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::error::Result;
use weir_connector_api::factory::{find_connector, FactoryContext};
use weir_connector_api::format::find_format;
use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, Value};
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::{CheckpointConfig, JobConfig, StreamEnvironment};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
    ])
}

fn row(n: u64) -> Row {
    Row::insert(vec![
        Value::Int64(i64::try_from(n).unwrap()),
        Value::String(format!("name-{n}")),
    ])
}

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn format(id: &str) -> ValidatedConfig {
    weir_formats::link();
    find_format(id)
        .unwrap()
        .options()
        .validate(&BTreeMap::new())
        .unwrap()
}

/// A fake sink (in memory) that keeps every row it is given, for reading a bounded job's output.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Row>>>);

struct CollectWriter(Arc<Mutex<Vec<Row>>>);

#[async_trait::async_trait]
impl SinkWriter<Row> for CollectWriter {
    fn write(&mut self, row: Row, _: &WriteContext) -> Result<()> {
        self.0.lock().unwrap().push(row);
        Ok(())
    }
    async fn flush(&mut self, _: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl Sink<Row> for Collect {
    type Writer = CollectWriter;
    fn create_writer(&self, _: &dyn InitContext) -> Result<CollectWriter> {
        Ok(CollectWriter(Arc::clone(&self.0)))
    }
}

async fn read_rows(kafka: &Kafka, topic: &str, format_id: &str, schema: &Schema) -> Vec<Row> {
    let factory = find_connector("kafka").unwrap().as_source().unwrap();
    let config = factory
        .source_options()
        .validate(&options(&[
            ("properties.bootstrap.servers", &kafka.bootstrap()),
            ("topic", topic),
            ("scan.startup.mode", "earliest-offset"),
            ("scan.bounded.mode", "latest-offset"),
            ("properties.isolation.level", "read_committed"),
        ]))
        .unwrap();
    let format = format(format_id);
    let source = factory
        .create_source(
            &config,
            &FactoryContext {
                name: "in",
                schema,
                format: Some((format_id, &format)),
            },
        )
        .unwrap();
    let out = Collect::default();
    let env = StreamEnvironment::new(JobConfig::new("read").parallelism(2));
    env.from_source(source, WatermarkStrategy::no_watermarks(), "in")
        .sink_to(out.clone());
    let result = env.build().unwrap().start().wait().await;
    assert!(result.is_finished(), "{:?}", result.status);
    let rows = out.0.lock().unwrap().clone();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_go_through_a_topic_exactly_once_and_come_back_equal() {
    let kafka = Kafka::start();
    kafka.create_topic("rows", 3).await;
    let factory = find_connector("kafka").unwrap().as_sink().unwrap();
    let config = factory
        .sink_options()
        .validate(&options(&[
            ("properties.bootstrap.servers", &kafka.bootstrap()),
            ("topic", "rows"),
            ("sink.delivery-guarantee", "exactly-once"),
            ("sink.transactional-id-prefix", "factory-test"),
            ("key.fields", "id"),
        ]))
        .unwrap();
    let json = format("json");
    let schema = schema();
    let sink = factory
        .create_sink(
            &config,
            &FactoryContext {
                name: "out",
                schema: &schema,
                format: Some(("json", &json)),
            },
        )
        .unwrap();
    let count = 3000;
    let env = StreamEnvironment::new(
        JobConfig::new("write")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(50))),
    );
    env.from_source(
        DataGeneratorSource::new(row, Some(count), RateLimiterStrategy::per_second(20_000.0)),
        WatermarkStrategy::no_watermarks(),
        "rows",
    )
    .sink_to(sink);
    let result = env.build().unwrap().start().wait().await;
    assert!(result.is_finished(), "{:?}", result.status);

    // Raw records: each key is the JSON of the key field, each value the JSON of the row.
    let records = kafka.read_committed("rows");
    assert_eq!(records.len(), usize::try_from(count).unwrap());
    let mut seen = std::collections::BTreeSet::new();
    for (_, _, value) in &records {
        let v: serde_json::Value = serde_json::from_slice(value).unwrap();
        let id = v["id"].as_u64().unwrap();
        assert_eq!(v["name"], format!("name-{id}"));
        assert!(seen.insert(id), "id {id} twice");
    }
    assert_eq!(seen.len(), usize::try_from(count).unwrap());
    let keyed = kafka.read_committed_keys("rows");
    for (key, value) in keyed.iter().take(50) {
        let k: serde_json::Value = serde_json::from_slice(key).unwrap();
        let v: serde_json::Value = serde_json::from_slice(value).unwrap();
        assert_eq!(k, serde_json::json!({ "id": v["id"] }));
    }

    // The factory's source reads the same rows back.
    let mut rows = read_rows(&kafka, "rows", "json", &schema).await;
    rows.sort_by_key(|r| match r.get(0) {
        Some(Value::Int64(n)) => *n,
        _ => -1,
    });
    let expected: Vec<Row> = (0..count).map(row).collect();
    assert_eq!(rows, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_record_becomes_every_row_it_holds() {
    let kafka = Kafka::start();
    kafka.create_topic("cdc", 1).await;
    let update = br#"{"before":{"id":1,"name":"a"},"after":{"id":1,"name":"b"},"op":"u"}"#;
    let insert = br#"{"before":null,"after":{"id":2,"name":"c"},"op":"c"}"#;
    kafka.produce("cdc", 0, &[update.to_vec(), insert.to_vec()]);
    let rows = read_rows(&kafka, "cdc", "debezium-json", &schema()).await;
    let kinds: Vec<(RowKind, Option<Value>)> =
        rows.iter().map(|r| (r.kind, r.get(1).cloned())).collect();
    assert_eq!(
        kinds,
        vec![
            (RowKind::UpdateBefore, Some(Value::String("a".into()))),
            (RowKind::UpdateAfter, Some(Value::String("b".into()))),
            (RowKind::Insert, Some(Value::String("c".into()))),
        ]
    );
}

#[test]
fn mistakes_are_reported_together_and_a_format_is_required() {
    let factory = find_connector("kafka").unwrap();
    let sink = factory.as_sink().unwrap();
    let errors = sink
        .sink_options()
        .validate(&options(&[
            ("topic", "t"),
            ("sink.delivery-guarantee", "exactly-once"),
            ("sink.partitoner", "fixed"),
        ]))
        .unwrap_err()
        .to_string();
    for expected in [
        "properties.bootstrap.servers",
        "sink.transactional-id-prefix",
        "did you mean `sink.partitioner`",
    ] {
        assert!(errors.contains(expected), "{expected} missing in: {errors}");
    }
    let config = sink
        .sink_options()
        .validate(&options(&[("properties.bootstrap.servers", "localhost:1")]))
        .unwrap();
    let schema = schema();
    let no_format = sink
        .create_sink(
            &config,
            &FactoryContext {
                name: "out",
                schema: &schema,
                format: None,
            },
        )
        .err()
        .unwrap()
        .to_string();
    assert!(no_format.contains("format = \"json\""), "{no_format}");
    let config = sink
        .sink_options()
        .validate(&options(&[
            ("properties.bootstrap.servers", "localhost:1"),
            ("key.fields", "id;nope"),
        ]))
        .unwrap();
    let json = format("json");
    let bad_key = sink
        .create_sink(
            &config,
            &FactoryContext {
                name: "out",
                schema: &schema,
                format: Some(("json", &json)),
            },
        )
        .err()
        .unwrap()
        .to_string();
    assert!(
        bad_key.contains("`nope` is not a field") && bad_key.contains("id, name"),
        "{bad_key}"
    );
}
