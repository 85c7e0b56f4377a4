//! Kafka pipelines run by the `weir` binary on both engines: Kafka → filter → Kafka with
//! `WEIR_PIPELINE_ENGINE=columns`, where the Kafka source reads chunks natively (the run logs
//! that no source reads rows through the adapter) and the Kafka sink writes them column by
//! column, commits the row engine's records (keys and values, byte for byte); and Kafka → CSV
//! part files killed on rows and resumed on columns from the row engine's checkpoints writes
//! every row once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use weir_testkit::servers::NoidaDb;

use common::soak::{assert_exactly_once, kills_from_env, RunKind, Soak};
use common::{files_under, run, weir};

const PARTITIONS: i32 = 3;

fn create_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let results = futures::executor::block_on(admin.create_topics(
        &[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ))
    .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// `n` orders as `json` records, round robin over the partitions.
fn produce_orders(bootstrap: &str, topic: &str, n: i64) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let statuses = ["NEW", "PAID", "SHIPPED", "CANCELLED"];
    for i in 0..n {
        let status = statuses[usize::try_from(i).unwrap() % 4];
        let amount = if i % 9 == 0 {
            "null".to_owned()
        } else {
            format!("{}", (i % 600) as f64 - 10.5)
        };
        let value = format!(r#"{{"id":{i},"status":"{status}","amount":{amount}}}"#);
        let partition = i32::try_from(i % i64::from(PARTITIONS)).unwrap();
        let mut record = BaseRecord::<(), String>::to(topic)
            .payload(&value)
            .partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Every committed record of `topic` as (key, value), sorted.
fn committed(bootstrap: &str, topic: &str, expected: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("isolation.level", "read_committed")
        .set("group.id", "weir-columnar-kafka-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut records = Vec::with_capacity(expected);
    let mut last = Instant::now();
    // Until nothing came for 3 s after the expected count (more would be a finding).
    while last.elapsed() < Duration::from_secs(if records.len() < expected { 20 } else { 3 }) {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            records.push((
                m.key().unwrap_or_default().to_vec(),
                m.payload().unwrap_or_default().to_vec(),
            ));
            last = Instant::now();
        }
    }
    records.sort();
    records
}

fn pipeline(bootstrap: &str, out: &str) -> String {
    format!(
        r#"[pipeline]
name = "kafka-columns"
parallelism = 2

[checkpointing]
interval = "200ms"
mode = "exactly-once"
storage = "chk"

[[sources]]
name = "orders"
connector = "kafka"
format = "json"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "status", type = "string" }},
  {{ name = "amount", type = "float64" }},
]

[sources.options]
properties.bootstrap.servers = "{bootstrap}"
topic = "orders"
scan.startup.mode = "earliest-offset"
scan.bounded.mode = "latest-offset"

[[transforms]]
name = "paid"
input = "orders"
filter = "(status = 'PAID' or status = 'SHIPPED') and amount >= 100"
select = ["id", "amount", "status"]

[[sinks]]
name = "out"
input = "paid"
connector = "kafka"
format = "json"

[sinks.options]
properties.bootstrap.servers = "{bootstrap}"
topic = "{out}"
key.fields = "id"
sink.delivery-guarantee = "exactly-once"
sink.transactional-id-prefix = "{out}-tx"
"#
    )
}

#[test]
fn kafka_to_kafka_runs_on_columns_natively_and_writes_the_row_engines_records() {
    let server = NoidaDb::start().expect("noida-db starts (run `cargo xtask deps`)");
    let bootstrap = server.kafka_bootstrap();
    let n = 30_000;
    create_topic(&bootstrap, "orders");
    produce_orders(&bootstrap, "orders", n);
    // The rows the filter keeps, computed here.
    let expected = (0..n)
        .filter(|i| matches!(i % 4, 1 | 2) && i % 9 != 0 && (i % 600) as f64 - 10.5 >= 100.0)
        .count();
    let mut outputs = Vec::new();
    let mut records_in = Vec::new();
    for engine in ["rows", "columns"] {
        let out = format!("out-{engine}");
        create_topic(&bootstrap, &out);
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("p.toml"), pipeline(&bootstrap, &out)).unwrap();
        let (code, _, err) = run(weir()
            .current_dir(dir.path())
            .env("WEIR_PIPELINE_ENGINE", engine)
            .args(["run", "p.toml"]));
        assert_eq!(code, 0, "{engine}: {err}");
        if engine == "columns" {
            assert!(
                err.contains(
                    "the pipeline runs on columns (0 of 1 sources read rows through the adapter)"
                ),
                "{err}"
            );
        }
        // The sources' rows (`numRecordsOut`): one per record on both engines, whether a chunk
        // holds many.
        records_in.push(
            err.lines()
                .find_map(|l| l.trim_start().strip_prefix("records in"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse::<i64>().ok()),
        );
        outputs.push(committed(&bootstrap, &out, expected));
    }
    assert_eq!(records_in, [Some(n), Some(n)], "records in (rows, columns)");
    assert_eq!(outputs[0].len(), expected);
    assert!(
        outputs[0] == outputs[1],
        "the committed records differ between the engines ({} and {} records)",
        outputs[0].len(),
        outputs[1].len()
    );
}

/// Kafka (bounded) → a filter that keeps every row → CSV part files, exactly-once.
fn to_csv_pipeline(bootstrap: &str) -> String {
    pipeline(bootstrap, "unused")
        .replace(
            "filter = \"(status = 'PAID' or status = 'SHIPPED') and amount >= 100\"",
            "filter = \"id >= 0\"",
        )
        .split("[[sinks]]")
        .next()
        .unwrap()
        .to_owned()
        + "[[sinks]]\nname = \"out\"\ninput = \"paid\"\nconnector = \"files\"\n\
           [sinks.options]\npath = \"out\"\nformat = \"csv\"\n"
}

/// The Kafka source killed while it reads on rows (`WEIR_PIPELINE_ENGINE=rows`), then resumed
/// on columns from the row engine's checkpoints (its split state read by the columnar source),
/// killed again at the end of the input and left to finish: every id once in the part files.
#[test]
fn kafka_killed_on_rows_and_resumed_on_columns_writes_every_row_once() {
    let server = NoidaDb::start().expect("noida-db starts (run `cargo xtask deps`)");
    let bootstrap = server.kafka_bootstrap();
    let n = 300_000;
    create_topic(&bootstrap, "orders");
    produce_orders(&bootstrap, "orders", n);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pipeline = to_csv_pipeline(&bootstrap);
    assert!(pipeline.contains("filter = \"id >= 0\""), "{pipeline}");
    fs::write(dir.join("pipeline.toml"), &pipeline).unwrap();
    let report = Soak::new("kafka-rows-then-columns", dir, "pipeline.toml")
        .engines("rows", "columns")
        .kills(kills_from_env().min(3))
        .end_of_input_kills(1)
        .kill_after(Duration::from_millis(400)..Duration::from_millis(1500))
        .run();
    report.assert_finished();
    let first_final = report
        .runs
        .iter()
        .find(|r| !r.kind.paced_run())
        .expect("a run on columns");
    assert_ne!(
        first_final.kind,
        RunKind::FinalFresh,
        "{}: no checkpoint completed on rows before the runs on columns",
        report.context
    );
    let out = dir.join("out");
    let mut ids = Vec::new();
    for file in files_under(&out) {
        if file.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        for line in fs::read_to_string(out.join(&file)).unwrap().lines() {
            if line.starts_with("id,") {
                continue; // a header
            }
            ids.push(line.split(',').next().unwrap().parse::<i64>().unwrap());
        }
    }
    assert_exactly_once(&report.context, &ids, 0..n);
}
