//! The Kafka examples run for real: `examples/files-to-kafka.toml` copies CSV files into a topic
//! of a real broker (noida-db, exactly-once), then `examples/kafka-to-files.toml` copies that
//! topic into Parquet files. The files are the examples themselves, with only the broker
//! address replaced and both sources made bounded, run by the `weir` binary; the Parquet output
//! is read back with the `parquet` crate and compared with the CSV input row by row.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use common::{files_under, read_orders_parquet, repo, run, weir};

/// An example with its broker address replaced and `extra` applied (old → new pairs).
fn example(name: &str, bootstrap: &str, extra: &[(&str, &str)]) -> String {
    let mut text = fs::read_to_string(repo().join("examples").join(name)).unwrap();
    assert!(text.contains("localhost:9092"), "{name} names no broker");
    text = text.replace("localhost:9092", bootstrap);
    for (old, new) in extra {
        assert!(text.contains(old), "{name} no longer contains {old:?}");
        text = text.replace(old, new);
    }
    text
}

#[test]
fn files_to_kafka_then_kafka_to_files_copies_every_row_exactly_once() {
    let server = weir_testkit::servers::NoidaDb::start().unwrap();
    let bootstrap = server.kafka_bootstrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();

    // Input: three CSV files of orders, with header lines (the files connector's default).
    let base = 1_767_225_600_000_i64; // 2026-01-01T00:00:00Z
    let mut expected = Vec::new();
    fs::create_dir_all(dir.join("in/orders")).unwrap();
    for file in 0..3_i64 {
        let mut csv = String::from("id,customer,amount,at\n");
        for i in 0..400_i64 {
            let id = file * 1000 + i;
            let row = (
                id,
                format!("customer-{}", id % 17),
                (id % 500) as f64 + 0.25,
                base + id * 1000,
            );
            writeln!(csv, "{},{},{},{}", row.0, row.1, row.2, row.3).unwrap();
            expected.push(row);
        }
        fs::write(dir.join(format!("in/orders/part-{file}.csv")), csv).unwrap();
    }

    // files → Kafka, bounded (no monitoring), exactly-once.
    let to_kafka = example(
        "files-to-kafka.toml",
        &bootstrap,
        &[
            ("source.monitor-interval = \"10s\"\n", ""),
            ("interval = \"5s\"", "interval = \"200ms\""),
        ],
    );
    fs::write(dir.join("files-to-kafka.toml"), to_kafka).unwrap();
    let (code, out, err) = run(weir().current_dir(dir).args(["run", "files-to-kafka.toml"]));
    assert_eq!(code, 0, "files-to-kafka failed:\n{out}\n{err}");

    // Kafka → Parquet, bounded at the offsets at start.
    let to_files = example(
        "kafka-to-files.toml",
        &bootstrap,
        &[
            (
                "scan.startup.mode = \"earliest-offset\"",
                "scan.startup.mode = \"earliest-offset\"\nscan.bounded.mode = \"latest-offset\"",
            ),
            ("interval = \"10s\"", "interval = \"200ms\""),
            (
                "storage = \"./out/checkpoints\"",
                "storage = \"./out2/checkpoints\"",
            ),
        ],
    );
    fs::write(dir.join("kafka-to-files.toml"), to_files).unwrap();
    let (code, out, err) = run(weir().current_dir(dir).args(["run", "kafka-to-files.toml"]));
    assert_eq!(code, 0, "kafka-to-files failed:\n{out}\n{err}");

    let out = dir.join("out/orders");
    let files: Vec<PathBuf> = files_under(&out).iter().map(|f| out.join(f)).collect();
    assert!(!files.is_empty(), "no output under out/orders");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(
            !name.starts_with('.'),
            "a hidden in-progress file was left behind: {}",
            f.display()
        );
    }
    let mut got: Vec<(i64, String, f64, i64)> =
        files.iter().flat_map(|f| read_orders_parquet(f)).collect();
    got.sort_by_key(|r| r.0);
    expected.sort_by_key(|r| r.0);
    let missing: Vec<i64> = expected
        .iter()
        .filter(|e| !got.iter().any(|g| g.0 == e.0))
        .map(|e| e.0)
        .collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "rows in the Parquet output; missing ids {missing:?}"
    );
    assert_eq!(got, expected);
}
