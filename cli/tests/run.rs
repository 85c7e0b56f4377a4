//! `weir run` through the real binary: the quickstart jobs' output checked row by row (Parquet
//! files with compaction, and the blackhole job printing), Ctrl-C → savepoint → resume,
//! progress lines, the Prometheus endpoint, the summary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{files_under, repo, run, weir};
use weir_cli::print::render;
use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
use weir_connector_datagen::factory::RowGenerator;

/// Strips the `<subtask>> ` prefix of a printed row.
fn row_text(line: &str) -> &str {
    line.split_once("> ").map_or(line, |(_, rest)| rest)
}

/// The rows the quickstart's generators and transform produce from the first `rows` orders:
/// `[id, customer, amount, at]`, in id order.
fn quickstart_expected(rows: u64) -> Vec<Row> {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::String, false),
        Field::new("status", DataType::String, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("at", DataType::TimestampMillis, false),
    ]);
    let options: BTreeMap<String, String> = [
        ("id.kind", "sequence"),
        ("customer.length", "8"),
        ("status.values", "new,paid,shipped,cancelled"),
        ("amount.min", "1"),
        ("amount.max", "500"),
        ("at.kind", "sequence"),
        ("at.start", "1704067200000"),
        ("at.step", "10"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut errors = Vec::new();
    let generator = RowGenerator::new(&schema, &options, 42, &mut errors);
    assert!(errors.is_empty());
    let expected: Vec<Row> = (0..rows)
        .map(|n| generator.row(n))
        .filter(|r| matches!(&r.values[2], Value::String(s) if s == "paid" || s == "shipped"))
        .map(|r| {
            Row::insert(vec![
                r.values[0].clone(),
                r.values[1].clone(),
                r.values[3].clone(),
                r.values[4].clone(),
            ])
        })
        .collect();
    assert!(
        expected.len() > rows as usize / 3,
        "the filter keeps about half"
    );
    expected
}

#[test]
fn the_blackhole_quickstart_pipeline_output_is_checked_row_by_row() {
    let tmp = tempfile::tempdir().unwrap();
    let quickstart = fs::read_to_string(repo().join("examples/quickstart-blackhole.toml")).unwrap();
    // The same job, smaller, printing instead of discarding, checkpointing into the temp dir.
    let rows = 3_000;
    let text = quickstart
        .replace(
            "number-of-rows = 50_000_000",
            &format!("number-of-rows = {rows}"),
        )
        .replace("connector = \"blackhole\"", "connector = \"print\"")
        .replace("\"./out/checkpoints\"", "\"chk\"");
    assert_ne!(text, quickstart);
    fs::write(tmp.path().join("quickstart.toml"), &text).unwrap();
    let (code, out, err) = run(weir()
        .args(["run", "quickstart.toml", "--progress", "quiet"])
        .current_dir(tmp.path()));
    assert_eq!(code, 0, "{err}");

    let mut expected: Vec<String> = quickstart_expected(rows).iter().map(render).collect();
    let mut actual: Vec<String> = out.lines().map(|l| row_text(l).to_owned()).collect();
    expected.sort();
    actual.sort();
    assert_eq!(actual.len(), expected.len(), "every row exactly once");
    for (a, e) in actual.iter().zip(&expected) {
        assert_eq!(a, e);
    }
    assert!(
        err.contains("weir: job `quickstart-blackhole` finished in"),
        "{err}"
    );
    assert!(err.contains(&format!("  records in   {rows} (")), "{err}");
    assert!(
        err.contains(&format!("  records out  {}\n", expected.len())),
        "{err}"
    );
    assert!(err.contains("  attempts     1\n"), "{err}");
    assert!(tmp.path().join("chk").is_dir(), "checkpoints were written");
}

/// The rows of a Parquet file of the quickstart's output, read with the `parquet` crate.
fn read_quickstart_parquet(path: &Path) -> Vec<Row> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let builder = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path).unwrap()).unwrap();
    let fields: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| format!("{} {} {}", f.name(), f.data_type(), f.is_nullable()))
        .collect();
    assert_eq!(
        fields,
        [
            "id Int64 false",
            "customer Utf8 false",
            "amount Float64 false",
            "at Timestamp(ms, \"UTC\") false",
        ],
        "{}",
        path.display()
    );
    common::read_orders_parquet(path)
        .into_iter()
        .map(|(id, customer, amount, at)| {
            Row::insert(vec![
                Value::Int64(id),
                Value::String(customer),
                Value::Float64(amount),
                Value::TimestampMillis(at),
            ])
        })
        .collect()
}

#[test]
fn the_quickstart_job_writes_compacted_parquet_checked_row_by_row() {
    let tmp = tempfile::tempdir().unwrap();
    let quickstart = fs::read_to_string(repo().join("examples/quickstart.toml")).unwrap();
    // The same job, smaller and paced so that several checkpoints complete, into the temp dir.
    let rows = 30_000;
    let mut text = quickstart.clone();
    for (from, to) in [
        (
            "number-of-rows = 10_000_000".to_owned(),
            format!("number-of-rows = {rows}\nrows-per-second = 20_000"),
        ),
        (
            "interval = \"1s\"".to_owned(),
            "interval = \"200ms\"".to_owned(),
        ),
        ("\"./out/checkpoints\"".to_owned(), "\"chk\"".to_owned()),
        ("\"./out/orders\"".to_owned(), "\"orders\"".to_owned()),
    ] {
        assert!(text.contains(&from), "the quickstart has {from}");
        text = text.replace(&from, &to);
    }
    fs::write(tmp.path().join("quickstart.toml"), &text).unwrap();
    let (code, _, err) = run(weir()
        .args(["run", "quickstart.toml", "--progress", "quiet"])
        .current_dir(tmp.path()));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("weir: job `quickstart` finished in"), "{err}");
    let expected = quickstart_expected(rows);
    assert!(err.contains(&format!("  records in   {rows} (")), "{err}");
    assert!(
        err.contains(&format!("  records out  {}\n", expected.len())),
        "{err}"
    );
    let checkpoints: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("  checkpoints  "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no checkpoint count in:\n{err}"));

    // No hidden or in-progress file is left; one bucket per day of event time; every part file
    // of the writers (two per checkpoint, without compaction) became one compacted file, since
    // the data stays below `compaction.file-size`.
    let files = files_under(&tmp.path().join("orders"));
    assert!(!files.is_empty(), "no output");
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("compacted-part-") && name.ends_with(".parquet"),
            "{files:?}"
        );
    }
    let buckets: BTreeSet<&Path> = files.iter().filter_map(|f| f.parent()).collect();
    assert_eq!(
        buckets.into_iter().collect::<Vec<_>>(),
        [Path::new("2024-01-01")]
    );
    assert!(
        checkpoints >= 3,
        "several checkpoints, so that there were small files to compact: {err}"
    );
    assert_eq!(files.len(), 1, "{files:?} after {checkpoints} checkpoints");

    // Row by row: every order exactly once, with the generated values.
    let mut actual: Vec<Row> = files
        .iter()
        .flat_map(|f| read_quickstart_parquet(&tmp.path().join("orders").join(f)))
        .collect();
    actual.sort_by_key(|r| match r.values[0] {
        Value::Int64(id) => id,
        _ => i64::MIN,
    });
    assert_eq!(actual.len(), expected.len(), "every row exactly once");
    for (a, e) in actual.iter().zip(&expected) {
        assert_eq!(a, e);
    }
    assert!(tmp.path().join("chk").is_dir(), "checkpoints were written");
}

fn slow_pipeline(rows: u64, rate: u64) -> String {
    format!(
        r#"
[checkpointing]
interval = "200ms"
storage = "chk"

[[sources]]
name = "numbers"
connector = "datagen"
schema = [{{ name = "id", type = "int64", nullable = false }}]
options = {{ number-of-rows = {rows}, rows-per-second = {rate}, fields.id.kind = "sequence" }}

[[sinks]]
name = "out"
input = "numbers"
connector = "print"
"#
    )
}

fn ids(out: &str) -> Vec<i64> {
    out.lines()
        .filter_map(|l| {
            row_text(l)
                .strip_prefix("+I[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn ctrl_c_takes_a_savepoint_and_the_job_resumes_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = 1_500;
    fs::write(tmp.path().join("p.toml"), slow_pipeline(rows, 500)).unwrap();
    let mut child = weir()
        .args(["run", "p.toml", "--progress", "quiet"])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.lines().count() < 200 && Instant::now() < deadline {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        first.push_str(&line);
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    stdout.read_to_string(&mut first).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains("weir: Ctrl-C: stopping with a savepoint under savepoints"),
        "{err}"
    );
    assert!(err.contains("stopped with a savepoint after"), "{err}");
    let savepoint = err
        .lines()
        .find_map(|l| l.strip_prefix("  savepoint    "))
        .unwrap_or_else(|| panic!("no savepoint in:\n{err}"))
        .to_owned();
    assert!(err.contains(&format!(
        "  resume with  weir run p.toml --from-savepoint {savepoint}"
    )));
    let first_ids = ids(&first);
    assert!(first_ids.len() < rows as usize, "stopped mid-stream");

    let (code, second, err) = run(weir()
        .args(["run", "p.toml", "--progress", "quiet", "--from-savepoint"])
        .arg(&savepoint)
        .current_dir(tmp.path()));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("finished in"), "{err}");
    assert!(err.contains(", restored from "), "{err}");
    let second_ids = ids(&second);
    assert!(
        !second_ids.contains(&0),
        "the second run goes on where the first stopped"
    );
    let all: BTreeSet<i64> = first_ids.iter().chain(&second_ids).copied().collect();
    assert_eq!(
        all,
        (0..rows as i64).collect(),
        "every row, before or after the stop"
    );
}

#[test]
fn a_pipeline_with_unaligned_checkpoints_and_exchanges_prints_every_row_once() {
    // Two sources united (an exchange each) into a sink of parallelism 2 (a rebalance):
    // barriers overtake the rows in flight, which the pipeline's row serializer can store.
    let tmp = tempfile::tempdir().unwrap();
    let source = |name: &str, rows: u64, start: u64| {
        format!(
            r#"
[[sources]]
name = "{name}"
connector = "datagen"
schema = [{{ name = "id", type = "int64", nullable = false }}]
options = {{ number-of-rows = {rows}, rows-per-second = 20000, fields.id.kind = "sequence", fields.id.start = {start} }}
"#
        )
    };
    let text = format!(
        r#"
[checkpointing]
interval = "20ms"
storage = "chk"
alignment = "unaligned"
{}{}
[[transforms]]
name = "both"
input = ["a", "b"]
filter = "id >= 0"

[[sinks]]
name = "out"
input = "both"
connector = "print"
parallelism = 2
"#,
        source("a", 3_000, 0),
        source("b", 2_000, 3_000)
    );
    fs::write(tmp.path().join("p.toml"), text).unwrap();
    let (code, out, err) = run(weir()
        .args(["run", "p.toml", "--progress", "quiet"])
        .current_dir(tmp.path()));
    assert_eq!(code, 0, "{err}");
    let mut got = ids(&out);
    got.sort_unstable();
    assert_eq!(
        got,
        (0..5_000).collect::<Vec<i64>>(),
        "every row exactly once"
    );
    assert!(tmp.path().join("chk").is_dir(), "checkpoints were written");
}

#[test]
fn progress_lines_and_the_prometheus_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("p.toml"), slow_pipeline(1_200, 600)).unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let child = weir()
        .args([
            "run",
            "p.toml",
            "--progress",
            "log",
            "--log-interval",
            "0.3",
            "--metrics-addr",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Scrape the endpoint while the job runs (bounded: 40 tries over ~2 s).
    let mut scraped = String::new();
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut body = String::new();
            let _ = stream.read_to_string(&mut body);
            if body.contains("weir_numRecordsOut") {
                scraped = body;
                break;
            }
        }
    }
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        scraped.contains("weir_numRecordsOut{"),
        "the endpoint serves the runtime's metrics:\n{scraped}"
    );
    assert!(
        err.contains(&format!(
            "weir: serving Prometheus metrics at http://127.0.0.1:{port}/metrics"
        )),
        "{err}"
    );
    let progress: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("weir: [") && l.contains("records in"))
        .collect();
    assert!(progress.len() >= 2, "log lines while it runs:\n{err}");
    assert!(progress.iter().any(|l| l.contains("checkpoints")), "{err}");
    assert!(err.contains("  records in   1200 ("), "{err}");
}

#[test]
fn an_invalid_file_is_not_run() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("p.toml"), "[[sources]]\nname = 1\n").unwrap();
    let (code, out, err) = run(weir().args(["run", "p.toml"]).current_dir(tmp.path()));
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert!(
        err.ends_with("weir: p.toml is not a valid pipeline (4 errors); nothing was run\n"),
        "{err}"
    );
    let (code, _, err) = run(weir().args(["run", "nowhere.toml"]).current_dir(tmp.path()));
    assert_eq!(code, 2);
    assert!(err.starts_with("weir: cannot read nowhere.toml: "), "{err}");
}
