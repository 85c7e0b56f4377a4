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
use common::{files_under, repo, run, run_counts, weir};

/// The five fields of the jobs, generated with nulls, picks, ranges and a sequence.
pub(crate) const SCHEMA: &str = r#"schema = [
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
    assert_eq!(run_counts(&columns_err), run_counts(&rows_err));
    assert_eq!(
        run_counts(&columns_err),
        ["  records in   20000", "  records out  20000"]
    );
}

#[test]
fn datagen_to_blackhole_counts_rows_on_both_engines() {
    let pipeline = source(50_000, 2) + &sink("orders", "blackhole", "");
    let (_, rows_err, _d1) = run_on("rows", &pipeline);
    let (_, columns_err, _d2) = run_on("columns", &pipeline);
    assert_eq!(
        run_counts(&rows_err),
        ["  records in   50000", "  records out  50000"]
    );
    assert_eq!(run_counts(&columns_err), run_counts(&rows_err));
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
        assert_eq!(run_counts(&columns_err), run_counts(&rows_err));
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
    let headers = csv_on_both_engines(CSV_SINK);
    assert!(headers > 0, "every part file starts with the header");
}

/// CSV with record-wise compaction (which decodes the part files again): the sink takes the
/// chunks' rows, and the output is the row path's.
#[test]
fn csv_part_files_with_record_wise_compaction_write_the_same_rows() {
    csv_on_both_engines(&format!(
        "{CSV_SINK}compaction.enabled = true\ncompaction.file-size = \"1mb\"\n"
    ));
}

/// Job c's shape into CSV part files with the sink `options`, on both engines: the same rows
/// and counts. The header lines of the columnar run.
fn csv_on_both_engines(options: &str) -> usize {
    let pipeline = source(30_000, 2) + CHECKPOINTS + TRANSFORM + &sink("paid", "files", options);
    let (_, rows_err, rows_dir) = run_on("rows", &pipeline);
    let (_, columns_err, columns_dir) = run_on("columns", &pipeline);
    let (rows, _) = csv_lines(&rows_dir.path().join("out"));
    let (columns, headers) = csv_lines(&columns_dir.path().join("out"));
    assert!(rows.len() > 1_000, "{}", rows.len());
    assert!(rows == columns, "the CSV rows differ");
    assert_eq!(run_counts(&columns_err), run_counts(&rows_err));
    headers
}

/// Runs `pipeline` with `WEIR_PIPELINE_ENGINE=columns`, which must refuse it: its standard
/// error.
fn refused_on_columns(pipeline: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    let (code, _, err) = run(weir()
        .current_dir(dir.path())
        .env("WEIR_PIPELINE_ENGINE", "columns")
        .args(["run", "p.toml"]));
    assert_ne!(code, 0, "{err}");
    err
}

#[test]
fn a_pipeline_that_cannot_run_on_columns_says_why_when_columns_are_required() {
    // A union of a stream with event time and one without: a chunk of the union would have a
    // time for some rows only.
    let untimed = source(10, 1)
        .split("[[sources]]")
        .nth(1)
        .unwrap()
        .replace("name = \"orders\"", "name = \"more\"");
    let mixed = timed_source(10, 1, None)
        + "\n[[sources]]"
        + &untimed
        + "\n[[transforms]]\nname = \"both\"\ninput = [\"orders\", \"more\"]\n"
        + &sink("both", "blackhole", "");
    let err = refused_on_columns(&mixed);
    assert!(
        err.contains(
            "WEIR_PIPELINE_ENGINE=columns, but the pipeline cannot run on columns: transform \
             `both` unites streams with and without event time"
        ),
        "{err}"
    );
    // Auto runs it on rows, and says why.
    let (_, err, _) = run_on("auto", &mixed);
    assert!(
        err.contains("the pipeline runs on rows: transform `both` unites streams"),
        "{err}"
    );
}

/// A lookup join in a columnar pipeline: the chunks' rows are looked up, and the joined rows
/// become chunks again; the output is the row path's.
#[test]
fn the_lookup_example_prints_the_same_rows_on_both_engines() {
    let on = |engine: &str| {
        let (code, out, err) = run(weir()
            .current_dir(repo())
            .env("WEIR_PIPELINE_ENGINE", engine)
            .args(["run", "examples/lookup-enrich.toml", "--progress", "quiet"]));
        assert_eq!(code, 0, "{engine}: {err}");
        let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
        lines.sort_unstable();
        (lines, err)
    };
    let (rows, _) = on("rows");
    let (columns, err) = on("columns");
    assert!(
        err.contains("the pipeline runs on columns (0 of 1 sources read rows through the adapter)"),
        "{err}"
    );
    assert_eq!(rows.len(), 20, "{rows:?}");
    assert_eq!(columns, rows);
}

/// A Row source (here a rate-limited datagen, whose limiter counts rows) in a columnar
/// pipeline reads through the adapter: its rows become chunks, and what the sink gets is the
/// row path's.
#[test]
fn a_row_source_runs_on_columns_through_the_adapter() {
    let paced = source(300, 2).replace("seed = 18", "seed = 18\nrows-per-second = 3000")
        + "\n[[transforms]]\nname = \"paid\"\ninput = \"orders\"\n\
           filter = \"status = 'PAID' or amount > 400\"\nselect = [\"id\", \"status\", \"amount\"]\n"
        + &sink("paid", "print", "");
    let (rows, rows_err, _) = run_on("rows", &paced);
    let (columns, columns_err, _) = run_on("columns", &paced);
    assert!(
        columns_err.contains(
            "the pipeline runs on columns (1 of 1 sources read rows through the adapter)"
        ),
        "{columns_err}"
    );
    // Which subtask reads which split depends on the order of split requests: the lines
    // without their subtask prefix.
    let sorted = |out: &str| sorted_lines(out).join("\n");
    assert!(rows.lines().count() > 30, "{rows}");
    assert_eq!(sorted(&columns), sorted(&rows));
    assert_eq!(run_counts(&columns_err), run_counts(&rows_err));
    // Auto keeps it on rows: no sink takes columns, so there is nothing to gain.
    let (auto, auto_err, _) = run_on("auto", &paced);
    assert!(
        auto_err.contains("the pipeline runs on rows: source `orders`: it is rate limited")
            && auto_err.contains("and no sink takes columns"),
        "{auto_err}"
    );
    assert_eq!(sorted(&auto), sorted(&rows));
}

/// Job c (filter + select into CSV part files, exactly-once) killed and resumed across the
/// engines: the killed runs paced and on rows (`WEIR_PIPELINE_ENGINE=rows`, at most 6 × 1.2 s
/// × 4000 rows, less than the input), the final runs unpaced on columns; every id exactly once.
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
        .engines("rows", "columns")
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

/// Event time from `at`, as the quickstart has it.
const EVENT_TIME: &str =
    "watermark = { timestamp-field = \"at\", out-of-orderness = \"5s\", idleness = \"30s\" }\n";

/// `source` with event time: `at` random with nulls (which use processing time), or, with
/// `step`, a sequence from 2024-01-01 00:00 UTC, one order every `step` milliseconds.
fn timed_source(rows: u64, parallelism: u32, step: Option<u64>) -> String {
    let source = source(rows, parallelism).replace(
        "[sources.options]",
        &format!("{EVENT_TIME}\n[sources.options]"),
    );
    match step {
        None => source,
        Some(step) => source.replace(
            "fields.at.null-rate = 0.05",
            &format!(
                "fields.at.kind = \"sequence\"\nfields.at.start = 1704067200000\n\
                 fields.at.step = {step}"
            ),
        ),
    }
}

/// The rows of the committed Parquet or ORC files under `out`, as text, sorted, by bucket
/// directory, and the files' Arrow schemas (read with the `parquet` and `orc-rust` crates, not
/// the files connector).
fn columnar_rows(
    out: &Path,
    orc: bool,
) -> (
    std::collections::BTreeMap<String, Vec<String>>,
    Vec<arrow_schema::SchemaRef>,
) {
    use arrow_array::{
        Array, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
        TimestampNanosecondArray,
    };
    let mut buckets = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut schemas = Vec::new();
    for file in files_under(out) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let bucket = file.parent().unwrap().to_string_lossy().into_owned();
        let file = fs::File::open(out.join(&file)).unwrap();
        let batches: Vec<arrow_array::RecordBatch> = if orc {
            orc_rust::arrow_reader::ArrowReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .map(Result::unwrap)
                .collect()
        } else {
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        for batch in batches {
            schemas.push(batch.schema());
            let col = |i: usize| batch.column(i).as_any();
            let id = col(0).downcast_ref::<Int64Array>().unwrap();
            let amount = col(1).downcast_ref::<Float64Array>().unwrap();
            let status = col(2).downcast_ref::<StringArray>().unwrap();
            // ORC reads timestamps back in nanoseconds.
            let at: Vec<Option<i64>> = match col(3).downcast_ref::<TimestampMillisecondArray>() {
                Some(ms) => ms.iter().collect(),
                None => col(3)
                    .downcast_ref::<TimestampNanosecondArray>()
                    .unwrap()
                    .iter()
                    .map(|ns| ns.map(|ns| ns / 1_000_000))
                    .collect(),
            };
            let rows = buckets.entry(bucket.clone()).or_default();
            for (r, at) in at.iter().enumerate() {
                let opt = |null: bool, v: String| if null { "∅".to_owned() } else { v };
                rows.push(format!(
                    "{},{},{},{}",
                    id.value(r),
                    opt(amount.is_null(r), amount.value(r).to_string()),
                    opt(status.is_null(r), status.value(r).to_owned()),
                    at.map_or_else(|| "∅".to_owned(), |t| t.to_string()),
                ));
            }
        }
    }
    for rows in buckets.values_mut() {
        rows.sort_unstable();
    }
    (buckets, schemas)
}

/// The quickstart's shape: event time, filter and select, Parquet (and ORC) part files in
/// buckets named by the rows' `at` (the columnar path cuts each chunk at bucket boundaries and
/// writes the pieces as they are; null times go to the processing-time bucket on both).
#[test]
fn event_time_into_parquet_and_orc_buckets_writes_the_same_files_on_both_engines() {
    for (format, parallelism) in [("parquet", 1), ("parquet", 2), ("orc", 2)] {
        let options = format!(
            "[sinks.options]\npath = \"out\"\nformat = \"{format}\"\n\
             bucket.time-field = \"at\"\nbucket.date-time-format = \"%Y-%m-%d--%H\"\n"
        );
        let pipeline = timed_source(30_000, parallelism, None)
            + CHECKPOINTS
            + TRANSFORM
            + &sink("paid", "files", &options);
        let (_, rows_err, rows_dir) = run_on("rows", &pipeline);
        let (_, columns_err, columns_dir) = run_on("columns", &pipeline);
        let orc = format == "orc";
        let (rows, row_schemas) = columnar_rows(&rows_dir.path().join("out"), orc);
        let (columns, column_schemas) = columnar_rows(&columns_dir.path().join("out"), orc);
        // Random times within a day of 2024-01-01, in hourly buckets; the null times in the
        // bucket of the processing time (which may differ between the runs, so those rows
        // are compared without their bucket).
        let (rows, rows_now) = by_event_time(rows);
        let (columns, columns_now) = by_event_time(columns);
        assert!(rows.len() > 10, "{:?}", rows.keys());
        assert!(rows_now.len() > 100, "{}", rows_now.len());
        let context = format!("{format}, parallelism {parallelism}");
        assert!(rows == columns, "the rows differ ({context})");
        assert!(
            rows_now == columns_now,
            "the rows without a time differ ({context})"
        );
        // Every file of both runs has one schema: names and types (orc-rust reads a column
        // back as nullable only where a stripe holds a null).
        let shape = |s: &arrow_schema::SchemaRef| {
            s.fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone()))
                .collect::<Vec<_>>()
        };
        let first = shape(&row_schemas[0]);
        for schema in row_schemas.iter().chain(&column_schemas) {
            assert_eq!(shape(schema), first, "{context}");
        }
        assert_eq!(run_counts(&columns_err), run_counts(&rows_err), "{context}");
    }
}

/// The buckets of 2024 (event time), and the sorted rows of the others (processing time).
fn by_event_time(
    buckets: std::collections::BTreeMap<String, Vec<String>>,
) -> (std::collections::BTreeMap<String, Vec<String>>, Vec<String>) {
    let (event, now): (
        std::collections::BTreeMap<_, _>,
        std::collections::BTreeMap<_, _>,
    ) = buckets
        .into_iter()
        .partition(|(b, _)| b.starts_with("2024-"));
    let mut now: Vec<String> = now.into_values().flatten().collect();
    now.sort_unstable();
    (event, now)
}

/// Buckets cut inside chunks: one bucket per second of event time.
#[test]
fn chunks_are_cut_where_the_bucket_changes() {
    let parquet = "[sinks.options]\npath = \"out\"\nformat = \"parquet\"\n\
                   bucket.time-field = \"at\"\nbucket.date-time-format = \"%H-%M-%S\"\n";
    let pipeline =
        timed_source(5_000, 1, Some(10)) + CHECKPOINTS + &sink("orders", "files", parquet);
    let (_, _, rows_dir) = run_on("rows", &pipeline);
    let (_, _, columns_dir) = run_on("columns", &pipeline);
    let rows = parquet_ids(&rows_dir.path().join("out"));
    let columns = parquet_ids(&columns_dir.path().join("out"));
    // 5 000 orders 10 ms apart: 50 seconds, 100 orders each.
    assert_eq!(columns.len(), 50, "{:?}", columns.keys());
    assert!(columns.values().all(|ids| ids.len() == 100));
    assert!(rows == columns, "the buckets differ");
}

/// The ids of the committed Parquet files under `out` by bucket directory (any schema with
/// an int64 `id` first), sorted.
fn parquet_ids(out: &Path) -> std::collections::BTreeMap<String, Vec<i64>> {
    use arrow_array::{Array, Int64Array};
    let mut buckets = std::collections::BTreeMap::<String, Vec<i64>>::new();
    for file in files_under(out) {
        if file.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        let bucket = file.parent().unwrap().to_string_lossy().into_owned();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            fs::File::open(out.join(&file)).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let id = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            buckets
                .entry(bucket.clone())
                .or_default()
                .extend(id.iter().flatten());
        }
    }
    for ids in buckets.values_mut() {
        ids.sort_unstable();
    }
    buckets
}

/// A row sink whose rows need their event time gets it on columns too; one whose time field
/// a select dropped keeps the pipeline on rows, saying why.
#[test]
fn event_time_reaches_row_sinks_or_keeps_the_pipeline_on_rows() {
    let pipeline =
        timed_source(20_000, 2, None) + CHECKPOINTS + TRANSFORM + &sink("paid", "print", "");
    let (rows_out, _, _d1) = run_on("rows", &pipeline);
    let (columns_out, _, _d2) = run_on("columns", &pipeline);
    assert!(rows_out.lines().count() > 1_000);
    assert_eq!(sorted_lines(&columns_out), sorted_lines(&rows_out));

    let dropped = pipeline.replace(
        "select = [\"id\", \"amount\", \"status\", \"at\"]",
        "select = [\"id\", \"amount\", \"status\"]",
    );
    let err = refused_on_columns(&dropped);
    assert!(
        err.contains(
            "sink `out` gets rows with event time, but a select before it drops the time field"
        ),
        "{err}"
    );
}

/// Event time from a `timestamp(us, "UTC")` field (line 1.1's timestamp units): watermarks and
/// hourly buckets by the field's time, rounded down to the millisecond, the same files on both
/// engines, every row in the bucket of its own time.
#[test]
fn event_time_from_a_microsecond_timestamp_buckets_the_same_rows_on_both_engines() {
    // 3,000 orders a minute apart from 2024-01-01 00:00:00.000999 UTC: 50 hours of 60 rows.
    let pipeline = source(3_000, 2)
        .replace(
            r#"{ name = "at", type = "timestamp" }"#,
            r#"{ name = "at", type = 'timestamp(us, "UTC")' }"#,
        )
        .replace(
            "[sources.options]",
            &format!("{EVENT_TIME}\n[sources.options]"),
        )
        .replace(
            "fields.at.null-rate = 0.05",
            "fields.at.kind = \"sequence\"\nfields.at.start = 1704067200000999\n\
             fields.at.step = 60000000",
        )
        + CHECKPOINTS
        + &sink(
            "orders",
            "files",
            "[sinks.options]\npath = \"out\"\nformat = \"parquet\"\n\
             bucket.time-field = \"at\"\nbucket.date-time-format = \"%Y-%m-%d--%H\"\n",
        );
    let buckets = |dir: &Path| {
        let mut buckets = std::collections::BTreeMap::<String, usize>::new();
        for file in files_under(&dir.join("out")) {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let reader = parquet::file::reader::SerializedFileReader::new(
                fs::File::open(dir.join("out").join(&file)).unwrap(),
            )
            .unwrap();
            let rows = parquet::file::reader::FileReader::metadata(&reader)
                .file_metadata()
                .num_rows();
            let bucket = file.parent().unwrap().to_string_lossy().into_owned();
            *buckets.entry(bucket).or_default() += usize::try_from(rows).unwrap();
        }
        buckets
    };
    let (_, _, rows_dir) = run_on("rows", &pipeline);
    let (_, err, columns_dir) = run_on("columns", &pipeline);
    assert!(
        err.contains("the pipeline runs on columns (0 of 1 sources"),
        "{err}"
    );
    let rows = buckets(rows_dir.path());
    let expected: std::collections::BTreeMap<String, usize> = (0..50)
        .map(|hour| {
            (
                format!("2024-01-{:02}--{:02}", 1 + hour / 24, hour % 24),
                60,
            )
        })
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(buckets(columns_dir.path()), expected);
}
