//! `files` sources on columns against rows: the same pipeline files run by the `weir` binary
//! with `WEIR_PIPELINE_ENGINE=rows` and `=columns` (which refuses to run unless the pipeline
//! really runs on columns), reading CSV, JSON lines, Parquet and ORC part files that a datagen
//! job wrote; the outputs compared row by row. And a CSV job killed on rows and resumed on
//! columns from the row reader's checkpoints (split positions inside files): every row once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::soak::{assert_exactly_once, kills_from_env, RunKind, Soak};
use common::{files_under, run, run_counts, weir};

/// The five fields of the orders, as `columnar.rs` generates them.
use super::columnar::SCHEMA;

const FORMATS: [&str; 4] = ["csv", "json", "parquet", "orc"];

/// A pipeline of `rows` generated orders (the source `orders`), checkpointed into `storage`.
fn datagen(rows: u64, storage: &str) -> String {
    format!(
        r#"[pipeline]
name = "datagen"

[[sources]]
name = "orders"
connector = "datagen"
{SCHEMA}

[sources.options]
number-of-rows = {rows}
seed = 18
fields.id.kind = "sequence"
fields.status.values = "NEW,PAID,SHIPPED,CANCELLED"
fields.status.null-rate = 0.1
fields.amount.min = -10
fields.amount.max = 500
fields.amount.null-rate = 0.2
fields.name.length = 6
fields.at.null-rate = 0.05

[checkpointing]
interval = "100ms"
mode = "exactly-once"
storage = "{storage}"
"#
    )
}

/// Writes `rows` generated orders into `dir/in/<format>/` part files, one directory per format.
fn write_inputs(dir: &Path, rows: u64, formats: &[&str]) {
    for format in formats {
        let pipeline = datagen(rows, &format!("chk-{format}"))
            + &format!(
                "\n[[sinks]]\nname = \"{format}\"\ninput = \"orders\"\nconnector = \"files\"\n\
                 [sinks.options]\npath = \"in/{format}\"\nformat = \"{format}\"\n"
            );
        fs::write(dir.join("inputs.toml"), pipeline).unwrap();
        let (code, _, err) = run(weir()
            .current_dir(dir)
            .env("WEIR_PIPELINE_ENGINE", "rows")
            .args(["run", "inputs.toml"]));
        assert_eq!(code, 0, "{err}");
    }
}

/// A pipeline reading `in/<format>` through `transform` into `sink`.
fn reading(format: &str, transform: &str, sink: &str) -> String {
    format!(
        r#"[pipeline]
name = "read-{format}"

[[sources]]
name = "orders"
connector = "files"
{SCHEMA}

[sources.options]
path = "in/{format}"
format = "{format}"
{transform}
{sink}"#
    )
}

/// Runs `pipeline` in `dir` on `engine`; returns (stdout, stderr). On `columns`, every source
/// must read columns natively (none through the adapter for Row sources).
fn run_on(dir: &Path, engine: &str, pipeline: &str) -> (String, String) {
    fs::write(dir.join("p.toml"), pipeline).unwrap();
    let (code, out, err) = run(weir()
        .current_dir(dir)
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
    (out, err)
}

const TRANSFORM: &str = r#"
[[transforms]]
name = "paid"
input = "orders"
filter = "(status = 'PAID' or status = 'SHIPPED') and amount >= 100 and not (name < 'c')"
select = ["id", "amount", "status", "at"]
"#;

fn print_sink(input: &str) -> String {
    format!("\n[[sinks]]\nname = \"out\"\ninput = \"{input}\"\nconnector = \"print\"\n")
}

#[test]
fn files_sources_print_the_same_rows_on_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rows = 20_000;
    write_inputs(dir, rows, &FORMATS);
    for format in FORMATS {
        // Every row as it is, then the filter and select of job b.
        let all = reading(format, "", &print_sink("orders"));
        let (rows_out, rows_err) = run_on(dir, "rows", &all);
        let (columns_out, columns_err) = run_on(dir, "columns", &all);
        assert_eq!(rows_out.lines().count(), rows as usize, "{format}");
        assert!(rows_out == columns_out, "{format}: the printed rows differ");
        assert_eq!(run_counts(&columns_err), run_counts(&rows_err), "{format}");
        let paid = reading(format, TRANSFORM, &print_sink("paid"));
        let (rows_out, rows_err) = run_on(dir, "rows", &paid);
        let (columns_out, columns_err) = run_on(dir, "columns", &paid);
        let kept = rows_out.lines().count();
        assert!(
            kept > 1_000 && kept < 15_000,
            "{format}: a selective filter: {kept}"
        );
        assert!(
            rows_out == columns_out,
            "{format}: the filtered rows differ"
        );
        assert_eq!(run_counts(&columns_err), run_counts(&rows_err), "{format}");
    }
}

#[test]
fn a_text_files_source_reads_rows_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir_all(dir.join("in/text")).unwrap();
    fs::write(dir.join("in/text/a.txt"), "a\nb\n").unwrap();
    let pipeline = r#"[pipeline]
name = "text"

[[sources]]
name = "lines"
connector = "files"
schema = [{ name = "line", type = "string" }]

[sources.options]
path = "in/text"
format = "text"

[[sinks]]
name = "out"
input = "lines"
connector = "print"
"#;
    // Auto: no sink takes columns, so the pipeline runs on rows, and says why.
    let (out, err) = run_on(dir, "auto", pipeline);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        err.contains("the pipeline runs on rows: source `lines`: it reads its format row by row"),
        "{err}"
    );
    // Columns: the text source's rows become chunks through the adapter; the same lines.
    // (Not `run_on`, which requires native columnar sources.)
    let (code, columns, err) = run(weir()
        .current_dir(dir)
        .env("WEIR_PIPELINE_ENGINE", "columns")
        .args(["run", "p.toml"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("the pipeline runs on columns (1 of 1 sources read rows through the adapter)"),
        "{err}"
    );
    let sorted = |text: &str| {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        lines.join("\n")
    };
    assert_eq!(sorted(&columns), sorted(&out));
}

/// The ids of the committed CSV part files under `out` (hidden in-progress files skipped).
fn csv_ids(out: &Path) -> Vec<i64> {
    let mut ids = Vec::new();
    for file in files_under(out) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        for line in fs::read_to_string(out.join(&file)).unwrap().lines() {
            if line.starts_with("id,") {
                continue; // the header
            }
            ids.push(line.split(',').next().unwrap().parse().unwrap());
        }
    }
    ids
}

/// CSV files read into CSV part files, exactly-once: the killed runs read on rows from a
/// continuously monitored directory (so they never end on their own), the end-of-input and
/// final runs on columns from the same directory, bounded, resuming the row reader's split
/// positions (inside files, when a kill came in the middle of one).
#[test]
fn csv_files_killed_on_rows_and_resumed_on_columns_write_every_row_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Enough rows that the killed runs are killed while reading (a debug build reads a few
    // hundred thousand rows a second on rows), so checkpoints hold positions inside the file.
    let rows: u64 = 400_000;
    write_inputs(dir, rows, &["csv"]);
    let started = std::time::Instant::now();
    let sink = "\n[[sinks]]\nname = \"out\"\ninput = \"orders\"\nconnector = \"files\"\n\
                [sinks.options]\npath = \"out\"\nformat = \"csv\"\n";
    let checkpoints = "\n[checkpointing]\ninterval = \"100ms\"\nmode = \"exactly-once\"\n\
                       storage = \"chk\"\n";
    let bounded = reading("csv", "", sink) + checkpoints;
    let monitored = bounded.replace(
        "path = \"in/csv\"\n",
        "path = \"in/csv\"\nsource.monitor-interval = \"200ms\"\n",
    );
    assert_ne!(monitored, bounded, "the monitored source");
    fs::write(dir.join("pipeline.toml"), &monitored).unwrap();
    fs::write(dir.join("final.toml"), &bounded).unwrap();
    let report = Soak::new("columnar-files-csv", dir, "pipeline.toml")
        .kills(kills_from_env().min(5))
        .end_of_input_kills(1)
        .kill_after(Duration::from_millis(300)..Duration::from_millis(1500))
        .final_pipeline("final.toml")
        .engines("rows", "columns")
        .run();
    report.assert_finished();
    let first_final = report
        .runs
        .iter()
        .find(|r| !r.kind.paced_run())
        .expect("a final run");
    assert_ne!(
        first_final.kind,
        RunKind::FinalFresh,
        "{}: no checkpoint completed before the final runs",
        report.context
    );
    assert_exactly_once(&report.context, &csv_ids(&dir.join("out")), 0..rows as i64);
    eprintln!("{}\n({:?})", report.summary(), started.elapsed());
}

/// The lines of the committed part files under `out`, sorted (part files are cut at
/// checkpoints, which come at other moments on each run).
fn part_lines(out: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for file in files_under(out) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            lines.extend(
                fs::read_to_string(out.join(&file))
                    .unwrap()
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
    lines.sort_unstable();
    lines
}

/// Job c's shape into `json` part files, from `format = "json"` and from the pipeline's
/// `format = { type = "json", ... }`: the same lines on both engines.
#[test]
fn json_part_files_are_the_same_on_both_engines() {
    for (format, rows) in [("format = \"json\"\n", 3_000), ("", 3_000)] {
        let own = if format.is_empty() {
            "format = { type = \"json\", timestamp-format = \"epoch-millis\" }\n"
        } else {
            ""
        };
        let pipeline = datagen(rows, "chk")
            + TRANSFORM
            + &format!(
                "\n[[sinks]]\nname = \"out\"\ninput = \"paid\"\nconnector = \"files\"\n{own}\
                 [sinks.options]\npath = \"out\"\n{format}"
            );
        let mut outputs = Vec::new();
        for engine in ["rows", "columns"] {
            let tmp = tempfile::tempdir().unwrap();
            let (_, err) = run_on(tmp.path(), engine, &pipeline);
            outputs.push((part_lines(&tmp.path().join("out")), run_counts(&err)));
        }
        let (rows_lines, rows_counts) = &outputs[0];
        let (columns_lines, columns_counts) = &outputs[1];
        assert!(rows_lines.len() > 100, "{}", rows_lines.len());
        assert!(rows_lines
            .first()
            .is_some_and(|l| l.starts_with("{\"id\":")));
        assert!(
            rows_lines == columns_lines,
            "{own}{format}: the JSON lines differ"
        );
        assert_eq!(columns_counts, rows_counts);
    }
}

/// Prints the change events `events` (a file of `format`) on both engines and checks that the
/// printed changelogs and the counts are the same; the rows printed, and the columnar run's log.
fn changelog_on_both_engines(dir: &Path, format: &str, events: &str) -> (String, String) {
    fs::create_dir_all(dir.join("in/cdc")).unwrap();
    fs::write(dir.join("in/cdc/events.json"), events).unwrap();
    let pipeline = format!(
        r#"[pipeline]
name = "cdc"

[[sources]]
name = "changes"
connector = "files"
format = {{ type = "{format}" }}
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "name", type = "string" }},
]

[sources.options]
path = "in/cdc"

[[sinks]]
name = "out"
input = "changes"
connector = "print"
"#
    );
    let (rows_out, rows_err) = run_on(dir, "rows", &pipeline);
    let (columns_out, columns_err) = run_on(dir, "columns", &pipeline);
    assert!(
        rows_out == columns_out,
        "{format}: the printed changelogs differ"
    );
    assert_eq!(run_counts(&columns_err), run_counts(&rows_err), "{format}");
    (rows_out, columns_err)
}

/// Debezium change events in a file (creates, updates, deletes, a tombstone line) printed on
/// both engines: the same changelog rows, kinds included.
#[test]
fn debezium_files_print_the_same_changelog_on_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut events = String::new();
    for i in 0..6_000 {
        let line = match i % 4 {
            0 => format!(r#"{{"before":null,"after":{{"id":{i},"name":"n{i}"}},"op":"c"}}"#),
            1 => format!(
                r#"{{"before":{{"id":{i},"name":"old"}},"after":{{"id":{i},"name":null}},"op":"u"}}"#
            ),
            2 => format!(r#"{{"before":{{"id":{i},"name":"gone"}},"after":null,"op":"d"}}"#),
            _ => "null".to_owned(),
        };
        events.push_str(&line);
        events.push('\n');
    }
    let (rows_out, columns_err) = changelog_on_both_engines(dir, "debezium-json", &events);
    // 1500 creates, 1500 updates (two rows each), 1500 deletes.
    assert_eq!(rows_out.lines().count(), 6_000, "{rows_out:.300}");
    assert!(columns_err.contains("runs on columns (0 of 1 sources read rows"));
    let kinds: std::collections::BTreeSet<&str> = rows_out
        .lines()
        .map(|l| l.split('(').next().unwrap_or(l))
        .collect();
    assert!(kinds.len() >= 4, "four kinds of rows: {kinds:?}");
}

/// Canal change events in a file (inserts and deletes of several rows, updates with their old
/// values, ids written as text, a DDL event) printed on both engines: the same changelog rows,
/// and the columnar engine reads the file on columns.
#[test]
fn canal_files_print_the_same_changelog_on_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut events = String::new();
    for i in 0..3_000 {
        let line = match i % 5 {
            0 => format!(
                r#"{{"data":[{{"id":{i},"name":"n{i}"}},{{"id":"{}","name":null}}],"type":"INSERT","table":"t"}}"#,
                i + 1
            ),
            1 => format!(
                r#"{{"data":[{{"id":{i},"name":"new"}}],"old":[{{"name":"old{i}"}}],"type":"UPDATE"}}"#
            ),
            2 => format!(r#"{{"data":[{{"id":{i},"name":"gone"}}],"type":"DELETE"}}"#),
            3 => r#"{"data":null,"type":"ALTER","isDdl":true,"sql":"alter table t"}"#.to_owned(),
            _ => format!(r#"{{"data":[{{"id":"{i}","name":"x"}}],"type":"INSERT"}}"#),
        };
        events.push_str(&line);
        events.push('\n');
    }
    let (rows_out, columns_err) = changelog_on_both_engines(dir, "canal-json", &events);
    // Per 5 events: 2 + 2 (update: before and after) + 1 + 0 + 1 rows.
    assert_eq!(rows_out.lines().count(), 3_600, "{rows_out:.300}");
    assert!(
        columns_err.contains("runs on columns (0 of 1 sources read rows"),
        "{columns_err}"
    );
    assert!(
        rows_out
            .lines()
            .any(|l| l.contains("old0") || l.contains("old1")),
        "an update's before row carries its old values: {rows_out:.400}"
    );
}
