//! `weir check pipeline.toml` against real servers (noida-db for Kafka, SeaweedFS for S3) and
//! local paths: each connector's connection check with a reachable and an unreachable system,
//! and with credentials the server refuses. Also: the job's checkpoint interval reaches the
//! Kafka sink's factory (API 1.1 `JobContext`), so a too-short transaction timeout is refused
//! before the job runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::net::TcpListener;
use std::time::Duration;

use common::{run, weir};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use weir_testkit::servers::{NoidaDb, SeaweedS3};

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn kafka_pipeline(bootstrap: &str, source_topic: &str, sink_topic: &str) -> String {
    format!(
        r#"
[pipeline]
name = "check-kafka"

[[sources]]
name = "orders"
connector = "kafka"
format = "json"
schema = [{{ name = "id", type = "int64" }}]
options = {{ "properties.bootstrap.servers" = "{bootstrap}", topic = "{source_topic}", "scan.bounded.mode" = "latest-offset", "scan.startup.mode" = "earliest-offset" }}

[[sinks]]
name = "copy"
input = "orders"
connector = "kafka"
format = "json"
options = {{ "properties.bootstrap.servers" = "{bootstrap}", topic = "{sink_topic}" }}
"#
    )
}

fn create_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let results = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

#[test]
fn kafka_reachable_with_and_without_the_topics() {
    let server = NoidaDb::start().unwrap();
    let bootstrap = server.kafka_bootstrap();
    create_topic(&bootstrap, "orders");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");

    fs::write(&file, kafka_pipeline(&bootstrap, "orders", "orders")).unwrap();
    let (code, out, err) = run(weir().arg("check").arg(&file));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("source orders (kafka): ok: broker metadata: 1 broker(s)"),
        "{out}"
    );
    assert!(
        out.contains("source orders (kafka): ok: topic orders exists: 2 partition(s)"),
        "{out}"
    );
    assert!(
        out.contains("sink copy (kafka): ok: topic orders exists: 2 partition(s)"),
        "{out}"
    );
    assert!(out.contains("every check passed"), "{out}");

    fs::write(&file, kafka_pipeline(&bootstrap, "orders", "missing-topic")).unwrap();
    let (code, out, err) = run(weir().arg("check").arg(&file));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(
            "sink copy (kafka): FAILED: topic missing-topic exists: the brokers do not know it"
        ),
        "{out}"
    );
    assert!(err.contains("1 check failed"), "{err}");
}

#[test]
fn kafka_unreachable_says_where_it_looked() {
    let bootstrap = format!("127.0.0.1:{}", closed_port());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    fs::write(&file, kafka_pipeline(&bootstrap, "orders", "orders")).unwrap();
    let (code, out, err) = run(weir().arg("check").arg(&file));
    assert_eq!(code, 1, "{out}\n{err}");
    for role in ["source orders", "sink copy"] {
        assert!(
            out.contains(&format!(
                "{role} (kafka): FAILED: broker metadata: no broker metadata from {bootstrap}"
            )),
            "{out}"
        );
    }
    assert!(err.contains("2 checks failed"), "{err}");
}

fn files_pipeline(source_path: &str, sink_path: &str) -> String {
    format!(
        r#"
[pipeline]
name = "check-files"

[[sources]]
name = "in"
connector = "files"
schema = [{{ name = "id", type = "int64" }}]
options = {{ path = "{source_path}", format = "json" }}

[[sinks]]
name = "out"
input = "in"
connector = "files"
options = {{ path = "{sink_path}", format = "json" }}
"#
    )
}

#[test]
fn files_paths_readable_and_writable_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir_all(&input).unwrap();
    fs::write(input.join("a.json"), "{\"id\": 1}\n").unwrap();
    let output = dir.path().join("out");
    let file = dir.path().join("p.toml");

    fs::write(
        &file,
        files_pipeline(input.to_str().unwrap(), output.to_str().unwrap()),
    )
    .unwrap();
    let (code, out, err) = run(weir().arg("check").arg(&file));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("source in (files): ok: path"), "{out}");
    assert!(out.contains("1 file(s) under it"), "{out}");
    assert!(out.contains("sink out (files): ok: path"), "{out}");
    // The probe is gone: nothing is left in the output directory.
    let left: Vec<_> = fs::read_dir(&output).map_or_else(|_| Vec::new(), |d| d.flatten().collect());
    assert!(left.is_empty(), "the probe stayed: {left:?}");

    // A source path with nothing, and a sink path under a regular file (not a directory).
    let blocker = dir.path().join("blocker");
    fs::write(&blocker, "a file, not a directory").unwrap();
    fs::write(
        &file,
        files_pipeline(
            dir.path().join("nothing-here").to_str().unwrap(),
            blocker.join("out").to_str().unwrap(),
        ),
    )
    .unwrap();
    let (code, out, err) = run(weir().arg("check").arg(&file));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("source in (files): FAILED: path"), "{out}");
    assert!(out.contains("no file and no directory with files"), "{out}");
    assert!(
        out.contains("sink out (files): FAILED: path")
            && out.contains("cannot write a probe file there"),
        "{out}"
    );
}

#[test]
fn s3_bucket_writable_wrong_credentials_and_unreachable() {
    let server = SeaweedS3::start().unwrap();
    server.create_bucket("checked").unwrap();
    let c = server.credentials();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir_all(&input).unwrap();
    fs::write(input.join("a.json"), "{\"id\": 1}\n").unwrap();
    let file = dir.path().join("p.toml");
    // The checkpoint storage in the same bucket is checked too.
    let with_checkpoints = files_pipeline(input.to_str().unwrap(), "s3://checked/out").replace(
        "name = \"check-files\"\n",
        "name = \"check-files\"\n\n[checkpointing]\ninterval = \"1s\"\nstorage = \"s3://checked/cp\"\n",
    );
    assert!(with_checkpoints.contains("storage = \"s3://checked/cp\""));
    fs::write(&file, with_checkpoints).unwrap();
    let check = |endpoint: &str, secret: &str| {
        run(weir()
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", &c.region)
            .env("AWS_ACCESS_KEY_ID", &c.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .args(["check", "--timeout", "30"])
            .arg(&file))
    };

    let (code, out, err) = check(&server.endpoint(), &c.secret_access_key);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("sink out (files): ok: path s3://checked/out is writable: a probe file was written and deleted"),
        "{out}"
    );
    assert!(
        out.contains("checkpointing: ok: checkpoint storage s3://checked/cp is writable"),
        "{out}"
    );

    let (code, out, err) = check(&server.endpoint(), "not-the-secret");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("sink out (files): CREDENTIALS REJECTED: path s3://checked/out is writable"),
        "{out}"
    );
    assert!(
        out.contains("checkpointing: CREDENTIALS REJECTED: checkpoint storage s3://checked/cp"),
        "{out}"
    );

    let unreachable = format!("http://127.0.0.1:{}", closed_port());
    let (code, out, err) = check(&unreachable, &c.secret_access_key);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("sink out (files): FAILED: path s3://checked/out is writable: cannot write a probe file there"),
        "{out}"
    );
}

#[test]
fn the_checkpoint_interval_reaches_the_kafka_sink_factory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    let pipeline = |timeout_ms: u64| {
        format!(
            r#"
[pipeline]
name = "eos"

[checkpointing]
interval = "10s"

[[sources]]
name = "gen"
connector = "datagen"
schema = [{{ name = "id", type = "int64" }}]
options = {{ number-of-rows = 10 }}

[[sinks]]
name = "out"
input = "gen"
connector = "kafka"
format = "json"
options = {{ "properties.bootstrap.servers" = "127.0.0.1:9", topic = "t", "sink.delivery-guarantee" = "exactly-once", "sink.transactional-id-prefix" = "eos", "properties.transaction.timeout.ms" = "{timeout_ms}" }}
"#
        )
    };
    fs::write(&file, pipeline(5000)).unwrap();
    let (code, out, err) = run(weir().arg("validate").arg(&file));
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("transaction.timeout.ms (5000 ms) must be longer than the checkpoint interval (10000 ms)"),
        "{err}"
    );
    fs::write(&file, pipeline(60_000)).unwrap();
    let (code, out, err) = run(weir().arg("validate").arg(&file));
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn a_lookup_table_is_checked_too() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("customers.csv");
    let file = dir.path().join("p.toml");
    let pipeline = |path: &std::path::Path| {
        format!(
            r#"
[pipeline]
name = "check-lookup"

[[sources]]
name = "orders"
connector = "datagen"
schema = [{{ name = "customer", type = "int64", nullable = false }}]
options = {{ number-of-rows = 3 }}

[[transforms]]
name = "enriched"
input = "orders"

[transforms.lookup]
connector = "files"
schema = [{{ name = "id", type = "int64", nullable = false }}, {{ name = "name", type = "string" }}]
options = {{ path = "{}", format = "csv" }}
keys = {{ customer = "id" }}
cache = {{ type = "full", reload-interval = "1min" }}

[[sinks]]
name = "out"
input = "enriched"
connector = "blackhole"
"#,
            path.display()
        )
    };
    fs::write(&table, "id,name\n1,Ada\n").unwrap();
    fs::write(&file, pipeline(&table)).unwrap();
    let (code, out, err) = run(weir().arg("check").arg(&file));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("lookup enriched (files): ok: path"), "{out}");

    fs::write(&file, pipeline(&dir.path().join("gone.csv"))).unwrap();
    let (code, out, err) = run(weir().arg("check").arg(&file));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("lookup enriched (files): FAILED: path"),
        "{out}"
    );
}
