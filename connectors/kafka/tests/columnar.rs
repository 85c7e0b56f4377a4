//! The `kafka` connector's columnar source and sink (API line 1.1) against its Row source and
//! sink on the real broker: the same rows read (json, csv, debezium-json, canal-json; tombstones and
//! malformed records on both paths), the same records written (values and `key.fields` keys,
//! exactly-once), a checkpoint taken on rows restored on columns and back, and the options
//! that keep a pipeline on rows.

// The Arrow factory contract is API line 1.1's (`build.rs` sets `weir_api_1_1`).
#![cfg(weir_api_1_1)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Kafka;
use weir_connector_api::columnar::{Chunk, Columnar};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::error::Result;
use weir_connector_api::factory::{find_connector, FactoryContext, JobContext};
use weir_connector_api::format::find_format;
use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_runtime::{
    CheckpointConfig, JobConfig, JobHandle, RestoreFrom, StopMode, StreamEnvironment,
};
use weir_testkit::columnar::{check_chunk_sink, check_chunk_source, Node};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
        Field::new("amount", DataType::Float64, true),
    ])
}

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A bounded read of `topic` from the earliest to the latest offset.
fn source_node(kafka: &Kafka, topic: &str, format: &str, extra: &[(&str, &str)]) -> Node {
    weir_formats::link();
    let mut o = options(&[
        ("properties.bootstrap.servers", &kafka.bootstrap()),
        ("topic", topic),
        ("scan.startup.mode", "earliest-offset"),
        ("scan.bounded.mode", "latest-offset"),
    ]);
    o.extend(options(extra));
    Node::new("kafka", o, schema()).format(format, BTreeMap::new())
}

/// Row `i` as a `json` message (every seventh name null, every fifth amount null).
fn json(i: i64) -> Vec<u8> {
    let name = if i % 7 == 0 {
        "null".to_owned()
    } else {
        format!("\"n-{i}\"")
    };
    let amount = if i % 5 == 0 {
        "null".to_owned()
    } else {
        format!("{}", i as f64 * 0.25)
    };
    format!(r#"{{"id":{i},"name":{name},"amount":{amount}}}"#).into_bytes()
}

/// Produces `range` as `json` messages round robin over `partitions` partitions.
fn produce_json(kafka: &Kafka, topic: &str, partitions: i32, range: std::ops::Range<i64>) {
    for p in 0..partitions {
        let values: Vec<Vec<u8>> = range
            .clone()
            .filter(|i| i.rem_euclid(i64::from(partitions)) == i64::from(p))
            .map(json)
            .collect();
        kafka.produce(topic, p, &values);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chunk_source_reads_the_row_sources_rows_in_json_csv_debezium_and_canal() {
    let kafka = Kafka::start();
    // json over three partitions, with tombstones between the records of partition 0.
    kafka.create_topic("json", 3).await;
    produce_json(&kafka, "json", 3, 0..9_000);
    kafka.produce_tombstones("json", 0, 3);
    produce_json(&kafka, "json", 1, 9_000..9_100);
    let rows = check_chunk_source(&source_node(&kafka, "json", "json", &[]))
        .await
        .unwrap();
    assert_eq!(rows, 9_100);
    // Specific starting and stopping offsets: the same records on both.
    let between = source_node(
        &kafka,
        "json",
        "json",
        &[
            ("scan.startup.mode", "specific-offsets"),
            (
                "scan.startup.specific-offsets",
                "partition:0,offset:100;partition:1,offset:7;partition:2,offset:0",
            ),
            ("scan.bounded.mode", "specific-offsets"),
            (
                "scan.bounded.specific-offsets",
                "partition:0,offset:2500;partition:1,offset:1007;partition:2,offset:1",
            ),
        ],
    );
    let rows = check_chunk_source(&between).await.unwrap();
    assert_eq!(rows, 2_400 + 1_000 + 1);

    kafka.create_topic("csv", 2).await;
    for p in 0..2 {
        let values: Vec<Vec<u8>> = (0..3_000)
            .map(|i| format!("{i}, n-{p}-{i},{}", f64::from(i) / 8.0).into_bytes())
            .collect();
        kafka.produce("csv", p, &values);
    }
    let rows = check_chunk_source(&source_node(&kafka, "csv", "csv", &[]))
        .await
        .unwrap();
    assert_eq!(rows, 6_000);

    // A changelog: creates, updates (-U and +U) and deletes.
    kafka.create_topic("cdc", 2).await;
    let image = |i: i64, name: &str| format!(r#"{{"id":{i},"name":"{name}","amount":{i}.5}}"#);
    for p in 0..2 {
        let values: Vec<Vec<u8>> = (0..1_500)
            .map(|i| match i % 3 {
                0 => format!(r#"{{"before":null,"after":{},"op":"c"}}"#, image(i, "a")),
                1 => format!(
                    r#"{{"before":{},"after":{},"op":"u"}}"#,
                    image(i, "a"),
                    image(i, "b")
                ),
                _ => format!(r#"{{"before":{},"after":null,"op":"d"}}"#, image(i, "b")),
            })
            .map(String::into_bytes)
            .collect();
        kafka.produce("cdc", p, &values);
    }
    let rows = check_chunk_source(&source_node(&kafka, "cdc", "debezium-json", &[]))
        .await
        .unwrap();
    // Each update is two rows.
    assert_eq!(rows, 2 * (500 + 2 * 500 + 500));

    // Canal: an event of several rows, updates with their old values, deletes.
    kafka.create_topic("canal", 2).await;
    for p in 0..2 {
        let values: Vec<Vec<u8>> = (0..1_000)
            .map(|i| match i % 3 {
                0 => format!(
                    r#"{{"data":[{{"id":{i},"name":"a","amount":1.5}},{{"id":{},"name":null,"amount":null}}],"type":"INSERT"}}"#,
                    i + 100_000
                ),
                1 => format!(
                    r#"{{"data":[{{"id":{i},"name":"b","amount":2.5}}],"old":[{{"name":"a"}}],"type":"UPDATE"}}"#
                ),
                _ => format!(r#"{{"data":[{{"id":{i},"name":"b","amount":2.5}}],"type":"DELETE"}}"#),
            })
            .map(String::into_bytes)
            .collect();
        kafka.produce("canal", p, &values);
    }
    let rows = check_chunk_source(&source_node(&kafka, "canal", "canal-json", &[]))
        .await
        .unwrap();
    // Inserts of two rows, updates of two (-U, +U), deletes of one.
    assert_eq!(rows, 2 * (334 * 2 + 333 * 2 + 333));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_skipped_or_fail_as_on_rows() {
    let kafka = Kafka::start();
    kafka.create_topic("bad", 2).await;
    for p in 0..2 {
        let values: Vec<Vec<u8>> = (0..2_000)
            .map(|i| match i % 97 {
                13 => b"{not json".to_vec(),
                14 => br#"{"id":"text"}"#.to_vec(),
                _ => json(i),
            })
            .collect();
        kafka.produce("bad", p, &values);
    }
    let skip = source_node(&kafka, "bad", "json", &[("scan.malformed-records", "skip")]);
    let rows = check_chunk_source(&skip).await.unwrap();
    let bad = (0..2_000).filter(|i| matches!(i % 97, 13 | 14)).count();
    assert_eq!(rows, 2 * (2_000 - bad));

    // Failing: the columnar source names the first malformed record of a partition, as the
    // row source does.
    let fail = source_node(&kafka, "bad", "json", &[]);
    for chunks in [false, true] {
        let ids = Ids::default();
        let result = start_reading(&fail, chunks, RestoreFrom::Nothing, &ids)
            .wait()
            .await;
        let status = format!("{:?}", result.status);
        assert!(
            !result.is_finished()
                && status.contains("offset 13")
                && status.contains("scan.malformed-records"),
            "chunks: {chunks}: {status}"
        );
    }
}

/// The options of a sink writing `topic`.
fn sink_node(kafka: &Kafka, topic: &str, format: &str, extra: &[(&str, &str)]) -> Node {
    weir_formats::link();
    let mut o = options(&[
        ("properties.bootstrap.servers", &kafka.bootstrap()),
        ("topic", topic),
    ]);
    o.extend(options(extra));
    Node::new("kafka", o, schema()).format(format, BTreeMap::new())
}

fn rows(n: i64) -> Vec<Row> {
    (0..n)
        .map(|i| {
            Row::insert(vec![
                Value::Int64(i),
                if i % 7 == 0 {
                    Value::Null
                } else {
                    // A comma, a quote and a line break: csv quotes them, json escapes them.
                    Value::String(if i % 11 == 0 {
                        format!("n-{i}, \"q\"\nline")
                    } else {
                        format!("n-{i}")
                    })
                },
                if i % 5 == 0 {
                    Value::Null
                } else {
                    Value::Float64(i as f64 * 0.25)
                },
            ])
        })
        .collect()
}

/// The committed records of `topic` as (key, value) pairs, sorted.
fn records(kafka: &Kafka, topic: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut records = kafka.read_committed_keys(topic);
    records.sort();
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chunk_sink_writes_the_row_sinks_records_exactly_once() {
    let kafka = Kafka::start();
    let input = rows(7_000);
    for (format, keyed) in [("json", true), ("csv", false), ("csv", true)] {
        let (a, b) = (
            format!("{format}-{keyed}-rows"),
            format!("{format}-{keyed}-chunks"),
        );
        kafka.create_topic(&a, 3).await;
        kafka.create_topic(&b, 3).await;
        let mut extra = vec![("sink.delivery-guarantee", "exactly-once")];
        if keyed {
            extra.push(("key.fields", "id;name"));
        }
        let node = |topic: &str, prefix: &str| {
            let mut e = extra.clone();
            e.push(("sink.transactional-id-prefix", prefix));
            sink_node(&kafka, topic, format, &e)
        };
        let row_node = node(&a, &format!("{a}-tx"));
        let chunk_node = node(&b, &format!("{b}-tx"));
        let written = check_chunk_sink(&row_node, &chunk_node, &input, |n| {
            let topic = n.options.get("topic").cloned().unwrap();
            source_node(
                &kafka,
                &topic,
                format,
                &[("properties.isolation.level", "read_committed")],
            )
        })
        .await
        .unwrap();
        assert_eq!(written, input.len());
        // Byte for byte the same records, keys included (csv: one with a line break in a
        // cell, which the column encoder refuses, went through the row encoder).
        let (from_rows, from_chunks) = (records(&kafka, &a), records(&kafka, &b));
        assert_eq!(from_rows.len(), input.len());
        assert_eq!(from_rows.iter().any(|(k, _)| !k.is_empty()), keyed);
        assert!(
            from_rows == from_chunks,
            "{format} (keyed: {keyed}): the records differ"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_without_columnar_codecs_keep_rows_with_a_reason() {
    let kafka = Kafka::start();
    let factory = find_connector("kafka").unwrap();
    let source = source_node(&kafka, "t", "raw", &[]);
    let raw = format_config("raw");
    let one = Schema::new(vec![Field::new("line", DataType::String, true)]);
    let ctx = FactoryContext {
        name: "in",
        schema: &one,
        format: Some(("raw", &raw)),
    };
    let config = factory
        .as_source()
        .unwrap()
        .source_options()
        .validate(&source.options)
        .unwrap();
    match factory
        .as_chunk_source()
        .unwrap()
        .create_chunk_source(&config, &ctx, &JobContext::new())
        .unwrap()
    {
        Columnar::RowsOnly(why) => assert!(why.contains("`raw` has no columnar decoder"), "{why}"),
        _ => panic!("expected rows for `raw`"),
    }
    let sink = sink_node(&kafka, "t", "debezium-json", &[]);
    let cdc = format_config("debezium-json");
    let schema = schema();
    let ctx = FactoryContext {
        name: "out",
        schema: &schema,
        format: Some(("debezium-json", &cdc)),
    };
    let config = factory
        .as_sink()
        .unwrap()
        .sink_options()
        .validate(&sink.options)
        .unwrap();
    match factory
        .as_chunk_sink()
        .unwrap()
        .create_chunk_sink(&config, &ctx, &JobContext::new())
        .unwrap()
    {
        Columnar::RowsOnly(why) => assert!(why.contains("`debezium-json` encodes rows"), "{why}"),
        other => panic!("expected rows: {other:?}"),
    }
}

fn format_config(id: &str) -> ValidatedConfig {
    weir_formats::link();
    find_format(id)
        .unwrap()
        .options()
        .validate(&BTreeMap::new())
        .unwrap()
}

/// Ids seen by a job's sink: rows, or the rows of chunks (and how many chunks).
#[derive(Clone, Default)]
struct Ids(Arc<Mutex<Vec<i64>>>, Arc<Mutex<usize>>);

impl Ids {
    fn push(&self, row: &Row) {
        if let Some(Value::Int64(id)) = row.get(0) {
            self.0.lock().unwrap().push(*id);
        }
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn take(&self) -> Vec<i64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct IdsWriter(Ids);

#[async_trait::async_trait]
impl SinkWriter<Row> for IdsWriter {
    fn write(&mut self, row: Row, _: &WriteContext) -> Result<()> {
        self.0.push(&row);
        Ok(())
    }
    async fn flush(&mut self, _: FlushMode) -> Result<()> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl SinkWriter<Chunk> for IdsWriter {
    fn write(&mut self, chunk: Chunk, _: &WriteContext) -> Result<()> {
        *self.0 .1.lock().unwrap() += 1;
        for row in chunk.to_rows().unwrap() {
            self.0.push(&row);
        }
        Ok(())
    }
    async fn flush(&mut self, _: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl Sink<Row> for Ids {
    type Writer = IdsWriter;
    fn create_writer(&self, _: &dyn InitContext) -> Result<IdsWriter> {
        Ok(IdsWriter(self.clone()))
    }
}

impl Sink<Chunk> for Ids {
    type Writer = IdsWriter;
    fn create_writer(&self, _: &dyn InitContext) -> Result<IdsWriter> {
        Ok(IdsWriter(self.clone()))
    }
}

/// Starts a `json` read of `node` on rows or on chunks, restored from `restore`.
fn start_reading(node: &Node, chunks: bool, restore: RestoreFrom, ids: &Ids) -> JobHandle {
    let factory = find_connector("kafka").unwrap();
    let config = factory
        .as_source()
        .unwrap()
        .source_options()
        .validate(&node.options)
        .unwrap();
    let json = format_config("json");
    let ctx = FactoryContext {
        name: "in",
        schema: &node.schema,
        format: Some(("json", &json)),
    };
    let env = StreamEnvironment::new(
        JobConfig::new("restore")
            .parallelism(2)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(200)))
            .restore(restore),
    );
    if chunks {
        let source = match factory
            .as_chunk_source()
            .unwrap()
            .create_chunk_source(&config, &ctx, &JobContext::new())
            .unwrap()
        {
            Columnar::Chunks(source) => source,
            Columnar::RowsOnly(why) => panic!("expected chunks: {why}"),
            _ => panic!("expected chunks"),
        };
        env.from_source(source, WatermarkStrategy::no_watermarks(), "in")
            .uid("in")
            .sink_to(ids.clone());
    } else {
        let source = factory
            .as_source()
            .unwrap()
            .create_source(&config, &ctx)
            .unwrap();
        env.from_source(source, WatermarkStrategy::no_watermarks(), "in")
            .uid("in")
            .sink_to(ids.clone());
    }
    env.build().unwrap().start()
}

/// Waits until `ids` holds `n` ids (or fails after a minute).
async fn wait_for(ids: &Ids, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.len() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} records read",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savepoint_taken_on_rows_restores_on_chunks_and_back() {
    let kafka = Kafka::start();
    kafka.create_topic("resume", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let mut restore = RestoreFrom::Nothing;
    let mut expected_start = 0;
    // Rows, then chunks, then rows: each run reads exactly what was produced after the last
    // savepoint (no record again, none lost).
    for (run, chunks) in [false, true, false].into_iter().enumerate() {
        let end = expected_start + 3_000;
        produce_json(&kafka, "resume", 3, expected_start..end);
        let ids = Ids::default();
        let node = source_node(
            &kafka,
            "resume",
            "json",
            &[("scan.bounded.mode", "unbounded")],
        );
        let job = start_reading(&node, chunks, restore, &ids);
        wait_for(&ids, 3_000).await;
        // Let a few polls pass: a source that re-read would show more.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let savepoint: PathBuf = job
            .stop_with_savepoint(dir.path().join(format!("sp-{run}")), StopMode::NoDrain)
            .await
            .unwrap()
            .to_path();
        job.wait().await;
        if chunks {
            // Many records per chunk: a fetch's records of a partition at once.
            let n = *ids.1.lock().unwrap();
            assert!((1..=300).contains(&n), "{n} chunks for 3000 records");
        }
        let mut seen = ids.take();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (expected_start..end).collect::<Vec<_>>(),
            "run {run} (on {})",
            if chunks { "chunks" } else { "rows" }
        );
        restore = RestoreFrom::Savepoint(savepoint);
        expected_start = end;
    }
}
