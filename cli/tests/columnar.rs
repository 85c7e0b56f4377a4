//! Columnar pipeline jobs against row jobs: the same pipeline files run by the `weir` binary
//! with `WEIR_PIPELINE_ENGINE=rows` and `=columns` (which refuses to run unless the pipeline
//! really runs on columns), outputs compared row by row: datagen → print (job a's shape),
//! datagen → filter + select → print and → CSV part files with exactly-once checkpoints (jobs b
//! and c), and job c killed and resumed across the engines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::soak::{assert_exactly_once, kills_from_env, RunKind, Soak};
use common::{files_under, run, weir};

/// The five fields of the jobs, generated with nulls, picks, ranges and a sequence.
const SCHEMA: &str = r#"schema = [
  { name = "id", type = "int64", nullable = false },
  { name = "status", type = "string" },
  { name = "amount", type = "float64" },
  { name = "name", type = "string" },
  { name = "at", type = "timestamp" },
]"#;

fn source(rows: u64, parallelism: u32) -> String {
    format!(
        r#"[pipeline]
name = "columnar"
parallelism = {parallelism}

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
"#
    )
}

const CHECKPOINTS: &str = r#"
[checkpointing]
interval = "100ms"
mode = "exactly-once"
storage = "chk"
"#;

const TRANSFORM: &str = r#"
[[transforms]]
name = "paid"
input = "orders"
filter = "(status = 'PAID' or status = 'SHIPPED') and amount >= 100 and not (name < 'c')"
select = ["id", "amount", "status", "at"]
"#;

fn sink(input: &str, connector: &str, options: &str) -> String {
    format!(
        "\n[[sinks]]\nname = \"out\"\ninput = \"{input}\"\nconnector = \"{connector}\"\n{options}\n"
    )
}

/// Runs `pipeline` in a fresh directory on `engine`; returns (stdout, stderr, directory).
fn run_on(engine: &str, pipeline: &str) -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    let (code, out, err) = run(weir()
        .current_dir(dir.path())
        .env("WEIR_PIPELINE_ENGINE", engine)
        .args(["run", "p.toml"]));
    assert_eq!(code, 0, "{engine}: {err}");
    (out, err, dir)
}

/// The `records in` and `records out` lines of the run summary.
fn counts(err: &str) -> Vec<String> {
    err.lines()
        .filter(|l| l.starts_with("  records in") || l.starts_with("  records out"))
        .map(|l| l.split(" (").next().unwrap_or(l).to_owned())
        .collect()
}

/// The lines without their subtask prefix (`2> `: which subtask reads which split depends on
/// the order of split requests), sorted.
fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text
        .lines()
        .map(|l| l.split_once("> ").map_or(l, |(_, row)| row))
        .collect();
    lines.sort_unstable();
    lines
}

#[test]
fn datagen_to_print_prints_the_same_lines_on_both_engines() {
    let pipeline = source(20_000, 1) + &sink("orders", "print", "");
    let (rows_out, rows_err, _d1) = run_on("rows", &pipeline);
    let (columns_out, columns_err, _d2) = run_on("columns", &pipeline);
    assert_eq!(rows_out.lines().count(), 20_000);
    assert!(rows_out == columns_out, "the printed rows differ");
    assert_eq!(counts(&columns_err), counts(&rows_err));
    assert_eq!(
        counts(&columns_err),
        ["  records in   20000", "  records out  20000"]
    );
}

#[test]
fn datagen_to_blackhole_counts_rows_on_both_engines() {
    let pipeline = source(50_000, 2) + &sink("orders", "blackhole", "");
    let (_, rows_err, _d1) = run_on("rows", &pipeline);
    let (_, columns_err, _d2) = run_on("columns", &pipeline);
    assert_eq!(
        counts(&rows_err),
        ["  records in   50000", "  records out  50000"]
    );
    assert_eq!(counts(&columns_err), counts(&rows_err));
}

#[test]
fn filter_and_select_with_exactly_once_checkpoints_print_the_same_rows() {
    for parallelism in [1, 2] {
        let pipeline =
            source(30_000, parallelism) + CHECKPOINTS + TRANSFORM + &sink("paid", "print", "");
        let (rows_out, rows_err, _d1) = run_on("rows", &pipeline);
        let (columns_out, columns_err, _d2) = run_on("columns", &pipeline);
        let kept = rows_out.lines().count();
        assert!(kept > 1_000 && kept < 15_000, "a selective filter: {kept}");
        if parallelism == 1 {
            assert!(rows_out == columns_out, "the printed rows differ");
        } else {
            // Two subtasks print interleaved: the same lines, in another order.
            assert_eq!(sorted_lines(&columns_out), sorted_lines(&rows_out));
        }
        assert_eq!(counts(&columns_err), counts(&rows_err));
    }
}

/// The committed CSV part files' lines, sorted (part files are cut at checkpoints, which
/// come at other moments on each run), with the header lines counted.
fn csv_lines(out: &Path) -> (Vec<String>, usize) {
    let mut lines = Vec::new();
    let mut headers = 0;
    for file in files_under(out) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        for line in fs::read_to_string(out.join(&file)).unwrap().lines() {
            if line == "id,amount,status,at" {
                headers += 1;
            } else {
                lines.push(line.to_owned());
            }
        }
    }
    lines.sort_unstable();
    (lines, headers)
}

const CSV_SINK: &str = "[sinks.options]\npath = \"out\"\nformat = \"csv\"\n";

#[test]
fn filter_and_select_into_csv_part_files_write_the_same_rows() {
    let pipeline = source(30_000, 2) + CHECKPOINTS + TRANSFORM + &sink("paid", "files", CSV_SINK);
    let (_, rows_err, rows_dir) = run_on("rows", &pipeline);
    let (_, columns_err, columns_dir) = run_on("columns", &pipeline);
    let (rows, _) = csv_lines(&rows_dir.path().join("out"));
    let (columns, headers) = csv_lines(&columns_dir.path().join("out"));
    assert!(rows.len() > 1_000, "{}", rows.len());
    assert!(headers > 0, "every part file starts with the header");
    assert!(rows == columns, "the CSV rows differ");
    assert_eq!(counts(&columns_err), counts(&rows_err));
}

#[test]
fn a_pipeline_that_cannot_run_on_columns_says_why_when_columns_are_required() {
    let paced = source(10, 1).replace("seed = 18", "seed = 18\nrows-per-second = 1000")
        + &sink("orders", "blackhole", "");
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.toml"), &paced).unwrap();
    let (code, _, err) = run(weir()
        .current_dir(dir.path())
        .env("WEIR_PIPELINE_ENGINE", "columns")
        .args(["run", "p.toml"]));
    assert_ne!(code, 0);
    assert!(
        err.contains("WEIR_PIPELINE_ENGINE=columns, but the pipeline cannot run on columns: source `orders` is rate limited"),
        "{err}"
    );
    // Auto runs it on rows.
    let (code, _, err) = run(weir()
        .current_dir(dir.path())
        .env("WEIR_PIPELINE_ENGINE", "auto")
        .args(["run", "p.toml"]));
    assert_eq!(code, 0, "{err}");
}

/// Job c (filter + select into CSV part files, exactly-once) killed and resumed across the
/// engines: the killed runs paced (a rate-limited source stays on rows, at most 6 × 1.2 s ×
/// 4000 rows, less than the input), the final runs unpaced (columns); every id exactly once.
/// (The other direction, a checkpoint of the columnar reader restored on the row reader, is
/// `checkpoints_restore_across_per_run_and_per_number_readers` in the datagen crate: a debug
/// build on a loaded machine completes no checkpoint in the first second of an unpaced run,
/// so a kill soak of it here would need minutes.)
fn soak_job_c(name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rows: u64 = 40_000;
    let kills = kills_from_env().min(6);
    // Every row passes (`amount` is at least -10 or null), through three-valued logic.
    let transform = "\n[[transforms]]\nname = \"paid\"\ninput = \"orders\"\n\
                     filter = \"id >= 0 and (amount >= -10 or amount is null)\"\n\
                     select = [\"id\", \"amount\", \"status\", \"at\"]\n";
    let base = source(rows, 2) + CHECKPOINTS + transform + &sink("paid", "files", CSV_SINK);
    let with_rate = |rate: &str| base.replace("seed = 18", &format!("seed = 18\n{rate}"));
    fs::write(
        dir.join("pipeline.toml"),
        with_rate("rows-per-second = 4000"),
    )
    .unwrap();
    fs::write(dir.join("final.toml"), &base).unwrap();
    let report = Soak::new(name, dir, "pipeline.toml")
        .kills(kills)
        .end_of_input_kills(1)
        .kill_after(Duration::from_millis(300)..Duration::from_millis(1200))
        .final_pipeline("final.toml")
        .run();
    report.assert_finished();
    // The first run of the final pipeline resumed from a checkpoint of the other engine.
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
    let (lines, _) = csv_lines(&dir.join("out"));
    let ids: Vec<i64> = lines
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_exactly_once(&report.context, &ids, 0..rows as i64);
}

#[test]
fn job_c_killed_on_rows_and_resumed_on_columns_writes_every_row_once() {
    soak_job_c("columnar-csv");
}
