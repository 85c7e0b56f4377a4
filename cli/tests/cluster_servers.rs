//! Cluster mode against real servers, with the `weir` binary's supervisor (`weir cluster run
//! -n 3`) and a SIGKILL of one process at a random moment in each run:
//! - checkpoints in S3 (SeaweedFS) and an S3 file sink: every id committed once in the bucket;
//! - a Kafka (noida-db) source whose readers are spread over the 3 processes (3 partitions)
//!   into CSV part files: every record committed once.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use weir_connector_files::fs::FileSystem;
use weir_testkit::servers::{NoidaDb, SeaweedS3};

use super::cluster::{assert_every_id_once, bytes_sent, kill_trial, KillAt};

/// A moment within the first seconds of a run (0.6 to 2.1 s), from `WEIR_CLUSTER_CLI_SEED` (default 7).
fn moment(salt: u64) -> Duration {
    let seed: u64 = std::env::var("WEIR_CLUSTER_CLI_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let mix = (seed ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    Duration::from_millis(600 + mix % 1_500)
}

fn s3_pipeline(rows: u64) -> String {
    format!(
        r#"[pipeline]
name = "cluster-s3"
parallelism = 3

[checkpointing]
interval = "200ms"
mode = "exactly-once"
storage = "s3://cluster/jobs/cluster-s3"

[[sources]]
name = "numbers"
connector = "datagen"
schema = [{{ name = "id", type = "int64", nullable = false }}]
options = {{ number-of-rows = {rows}, rows-per-second = 30000, fields.id.kind = "sequence" }}

[[sinks]]
name = "out"
input = "numbers"
connector = "files"
parallelism = 2
options = {{ path = "s3://cluster/data/numbers", format = "json" }}
"#
    )
}

#[test]
fn s3_checkpoints_and_an_s3_sink_survive_a_killed_process() {
    // 3 s of input at 30 000 rows/s: the kill (0.6 to 2.1 s in) comes while it runs.
    let rows = 90_000;
    let server = SeaweedS3::start().unwrap();
    server.create_bucket("cluster").unwrap();
    let c = server.credentials();
    let envs = [
        ("AWS_ENDPOINT_URL", server.endpoint()),
        ("AWS_REGION", c.region.clone()),
        ("AWS_ACCESS_KEY_ID", c.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key.clone()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.toml"), s3_pipeline(rows)).unwrap();
    let after = moment(1);
    let (code, log) = kill_trial(dir.path(), 1, KillAt::After(after), &envs);
    let context = format!("process 1 killed after {after:?}");
    assert_eq!(code, 0, "{context}\n{log}");
    assert!(
        log.contains("(generation 1)"),
        "{context}: no restart\n{log}"
    );

    let s3 = weir_connector_s3::S3Options::new(
        Some(&server.endpoint()),
        &c.region,
        &c.access_key_id,
        &c.secret_access_key,
    )
    .filesystem("cluster")
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let metadata = rt.block_on(s3.list_files("jobs/cluster-s3")).unwrap();
    assert!(
        metadata.iter().any(|f| f.path.ends_with("/_metadata")),
        "{context}: no checkpoint in the bucket"
    );
    let mut committed = BTreeMap::<i64, (String, usize)>::new();
    for part in rt.block_on(s3.list_files("data/numbers")).unwrap() {
        let name = part.path.rsplit('/').next().unwrap();
        assert!(
            !name.starts_with('.'),
            "{context}: {} is visible",
            part.path
        );
        let text = rt.block_on(s3.read_all(&part.path)).unwrap();
        for line in std::str::from_utf8(&text).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = v["id"].as_i64().unwrap();
            committed.entry(id).or_insert((line.to_owned(), 0)).1 += 1;
        }
    }
    assert_every_id_once(&committed, rows as i64, &context);
}

fn kafka_pipeline(bootstrap: &str, topic: &str) -> String {
    format!(
        r#"[pipeline]
name = "cluster-kafka"
parallelism = 3

[checkpointing]
interval = "200ms"
mode = "exactly-once"
storage = "chk"

[[sources]]
name = "orders"
connector = "kafka"
format = "json"
schema = [{{ name = "id", type = "int64", nullable = false }}, {{ name = "name", type = "string" }}]
options = {{ "properties.bootstrap.servers" = "{bootstrap}", topic = "{topic}", "scan.bounded.mode" = "latest-offset", "scan.startup.mode" = "earliest-offset" }}

[[sinks]]
name = "out"
input = "orders"
connector = "files"
parallelism = 2

[sinks.options]
path = "out"
format = "csv"
"#
    )
}

/// Creates `topic` with `partitions` partitions and writes records `{{"id": i, "name": ...}}`.
fn produce(bootstrap: &str, topic: &str, partitions: i32, records: i64) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let created = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .unwrap();
    for r in created {
        r.unwrap();
    }
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for id in 0..records {
        let payload = format!(r#"{{"id":{id},"name":"n{}"}}"#, id % 97);
        let partition = (id % i64::from(partitions)) as i32;
        let mut record = BaseRecord::<(), String>::to(topic)
            .payload(&payload)
            .partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

#[test]
fn a_kafka_source_read_by_three_processes_survives_a_killed_process() {
    let records = 150_000;
    let server = NoidaDb::start().unwrap();
    let bootstrap = server.kafka_bootstrap();
    produce(&bootstrap, "orders", 3, records);
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("p.toml"),
        kafka_pipeline(&bootstrap, "orders"),
    )
    .unwrap();
    let (code, log) = kill_trial(dir.path(), 2, KillAt::FirstCheckpoint, &[]);
    let context = "process 2 killed after the first checkpoint";
    assert_eq!(code, 0, "{context}\n{log}");
    assert!(
        log.contains("(generation 1)"),
        "{context}: no restart\n{log}"
    );
    assert!(
        log.contains("restoring from checkpoint"),
        "{context}: no restore\n{log}"
    );
    // Rows crossed processes: the readers sent them to the sink's writers elsewhere. Control
    // traffic (barriers, acknowledgements) is a few KB per process; how the rows split between
    // the processes and generations depends on where the kill lands (the killed process reports
    // nothing), so the total is what is checked.
    let sent = bytes_sent(&log);
    assert!(
        sent.iter().sum::<u64>() > 100_000,
        "{context}: bytes sent per process {sent:?}"
    );
    let committed = super::cluster::committed(dir.path());
    assert_every_id_once(&committed, records, context);
    assert!(
        committed.values().all(|(line, _)| line.contains(",n")),
        "{context}: every row has its name"
    );
}
