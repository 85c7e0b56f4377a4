//! Process-kill soak of the real `weir` binary with file outputs: each pipeline is started,
//! SIGKILLed at a random moment, resumed with `--from-latest-checkpoint`, `WEIR_SOAK_KILLS`
//! times (default 20), then left to finish; the committed files are then read with the
//! `parquet`, `orc-rust`, `csv` and `serde_json` crates (not with Weir) and every id must be
//! there exactly once, with no hidden or in-progress file left.
//!
//! Heavier runs: `WEIR_SOAK_KILLS=200 cargo test -p weir-cli --test integration soak::`; replay a failure with
//! the `WEIR_SOAK_SEED` its message prints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::files_under;
use common::soak::{assert_exactly_once, kills_from_env, Soak, SoakReport};

/// Rows per second of the killed runs (the final run is not paced).
const RATE: u64 = 2_000;
/// Kill moments after each start.
const KILL_AFTER: std::ops::Range<Duration> = Duration::ZERO..Duration::from_millis(1500);
/// Kill moments after a task finished its input: these jobs finish ~100 ms later (debug build).
const END_OF_INPUT_KILL_AFTER: std::ops::Range<Duration> =
    Duration::ZERO..Duration::from_millis(150);

/// Enough rows that the paced killed runs cannot reach the end: each run emits at most
/// `RATE × 1.5 s` rows.
fn rows_for(kills: u32) -> u64 {
    u64::from(kills.max(1)) * RATE * KILL_AFTER.end.as_millis() as u64 / 1000
}

/// How a soaked job's barriers travel.
#[derive(Clone, Copy)]
enum Barriers {
    /// Aligned (the default); source and sink chained, no channel between them.
    Aligned,
    /// Unaligned, into a sink of parallelism 3 (a channel from each source subtask to each
    /// writer): barriers overtake the rows queued there, which checkpoints store and restores
    /// replay (the paced source keeps queues short, so a checkpoint holds few or none).
    UnalignedThroughAnExchange,
}

/// A datagen → files job: `rows` orders with ids `0..rows`, two subtasks, exactly-once
/// checkpoints every 300 ms; `sink` holds the sink's format options.
fn datagen_pipeline(name: &str, rows: u64, paced: bool, sink: &str) -> String {
    datagen_pipeline_with(name, rows, paced, sink, Barriers::Aligned)
}

fn datagen_pipeline_with(
    name: &str,
    rows: u64,
    paced: bool,
    sink: &str,
    barriers: Barriers,
) -> String {
    let rate = if paced {
        format!("rows-per-second = {RATE}\n")
    } else {
        String::new()
    };
    let (alignment, sink_parallelism) = match barriers {
        Barriers::Aligned => ("", ""),
        Barriers::UnalignedThroughAnExchange => {
            ("alignment = \"unaligned\"\n", "parallelism = 3\n")
        }
    };
    format!(
        r#"[pipeline]
name = "{name}"
parallelism = 2

[checkpointing]
interval = "300ms"
mode = "exactly-once"
storage = "chk"
{alignment}
[[sources]]
name = "orders"
connector = "datagen"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "customer", type = "string", nullable = false }},
  {{ name = "amount", type = "float64", nullable = false }},
]

[sources.options]
number-of-rows = {rows}
{rate}seed = 7
fields.id.kind = "sequence"
fields.customer.length = 8
fields.amount.min = 1
fields.amount.max = 500

[[sinks]]
name = "out"
input = "orders"
connector = "files"
{sink_parallelism}
[sinks.options]
path = "out"
{sink}
"#
    )
}

/// Every committed file under `out`, after checking what hidden files are left: no empty one
/// (the start-up sweep removes them), and non-empty ones only from runs that never completed a
/// checkpoint, older than the last fresh start (a fresh start cannot tell those from files a
/// checkpoint or savepoint of an earlier run needs, so it keeps them; they are hidden and never
/// read). Prints how many such leftovers there are.
fn soaked_files(report: &SoakReport, out: &Path) -> Vec<PathBuf> {
    let context = &report.context;
    let mut leftovers = 0;
    for f in files_under(out) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            continue;
        }
        let meta = fs::metadata(out.join(&f)).unwrap();
        assert!(
            meta.len() > 0,
            "{context}: an empty hidden file is left: {}",
            f.display()
        );
        let before_last_fresh_start = report
            .last_fresh_start()
            .is_some_and(|t| meta.modified().unwrap() < t);
        assert!(
            name.contains(".inprogress.") && before_last_fresh_start,
            "{context}: a hidden file is left that a run after the last fresh start wrote (or \
             one that is no in-progress file): {}",
            f.display()
        );
        leftovers += 1;
    }
    eprintln!(
        "soak `{}`: {leftovers} non-empty hidden in-progress files left by runs killed before \
         their first checkpoint",
        report.name
    );
    let files: Vec<PathBuf> = files_under(out)
        .into_iter()
        .filter(|f| !f.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        !files.is_empty(),
        "{context}: no output under {}",
        out.display()
    );
    files.iter().map(|f| out.join(f)).collect()
}

/// Every committed file under `out`, after checking that no hidden or in-progress file is left.
fn committed_files(context: &str, out: &Path) -> Vec<PathBuf> {
    let files = files_under(out);
    let hidden: Vec<&PathBuf> = files
        .iter()
        .filter(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    assert!(
        hidden.is_empty(),
        "{context}: hidden or in-progress files left behind: {hidden:?}"
    );
    assert!(
        !files.is_empty(),
        "{context}: no output under {}",
        out.display()
    );
    files.iter().map(|f| out.join(f)).collect()
}

fn int64_column(batch: &arrow_array::RecordBatch, name: &str) -> Vec<i64> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    let column = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", batch.schema()));
    column.as_primitive::<Int64Type>().values().to_vec()
}

fn parquet_ids(path: &Path) -> Vec<i64> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .build()
        .unwrap();
    reader
        .flat_map(|b| int64_column(&b.unwrap(), "id"))
        .collect()
}

fn orc_ids(path: &Path) -> Vec<i64> {
    let reader = orc_rust::arrow_reader::ArrowReaderBuilder::try_new(fs::File::open(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .build();
    reader
        .flat_map(|b| int64_column(&b.unwrap(), "id"))
        .collect()
}

fn csv_ids(path: &Path) -> Vec<i64> {
    csv_ids_checked(path, &["id", "customer", "amount"], |_| {})
}

/// The `id`s (first column) of a CSV part file with `headers`; `check` sees every record.
fn csv_ids_checked(path: &Path, headers: &[&str], check: impl Fn(&csv::StringRecord)) -> Vec<i64> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .unwrap();
    let found = reader.headers().unwrap().clone();
    assert_eq!(
        found.iter().collect::<Vec<_>>(),
        headers,
        "{}",
        path.display()
    );
    reader
        .records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            check(&r);
            r[0].parse()
                .unwrap_or_else(|e| panic!("{}: id {:?}: {e}", path.display(), &r[0]))
        })
        .collect()
}

fn json_ids(path: &Path) -> Vec<i64> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: {l:?}: {e}", path.display()));
            v["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{}: no id in {l}", path.display()))
        })
        .collect()
}

/// Soaks a datagen → files job whose sink has `sink` options and reads its output with `read`.
fn soak_datagen_to_files(name: &str, sink: &str, read: fn(&Path) -> Vec<i64>) {
    soak_datagen_to_files_with(name, sink, read, Barriers::Aligned);
}

fn soak_datagen_to_files_with(
    name: &str,
    sink: &str,
    read: fn(&Path) -> Vec<i64>,
    barriers: Barriers,
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let kills = kills_from_env();
    let rows = rows_for(kills);
    fs::write(
        dir.join("pipeline.toml"),
        datagen_pipeline_with(name, rows, true, sink, barriers),
    )
    .unwrap();
    fs::write(
        dir.join("final.toml"),
        datagen_pipeline_with(name, rows, false, sink, barriers),
    )
    .unwrap();
    let report = Soak::new(name, dir, "pipeline.toml")
        .kills(kills)
        .kill_after(KILL_AFTER)
        .end_of_input_kill_after(END_OF_INPUT_KILL_AFTER)
        .final_pipeline("final.toml")
        .run();
    report.assert_finished();
    let files = soaked_files(&report, &dir.join("out"));
    let ids: Vec<i64> = files.iter().flat_map(|f| read(f)).collect();
    assert_exactly_once(&report.context, &ids, 0..rows as i64);
}

#[test]
fn datagen_to_parquet_with_compaction_survives_kills() {
    soak_datagen_to_files(
        "soak-parquet",
        "format = \"parquet\"\ncompaction.enabled = true\ncompaction.every-checkpoints = 3",
        parquet_ids,
    );
}

#[test]
fn datagen_to_csv_through_an_exchange_with_unaligned_checkpoints_survives_kills() {
    soak_datagen_to_files_with(
        "soak-unaligned",
        "format = \"csv\"",
        csv_ids,
        Barriers::UnalignedThroughAnExchange,
    );
}

/// A datagen → lookup join → CSV files job: orders of customers 1..=5 joined (inner) with
/// `customers.csv` through a full cache, exactly-once checkpoints every 300 ms.
fn lookup_pipeline(rows: u64, paced: bool) -> String {
    let rate = if paced {
        format!(", rows-per-second = {RATE}")
    } else {
        String::new()
    };
    format!(
        r#"[pipeline]
name = "soak-lookup"
parallelism = 2

[checkpointing]
interval = "300ms"
mode = "exactly-once"
storage = "chk"

[[sources]]
name = "orders"
connector = "datagen"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "customer", type = "int64", nullable = false }},
]
options = {{ number-of-rows = {rows}{rate}, seed = 7, fields.id.kind = "sequence", fields.customer.min = 1, fields.customer.max = 5 }}

[[transforms]]
name = "enriched"
input = "orders"
select = ["id", "customer", "name"]

[transforms.lookup]
connector = "files"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "name", type = "string" }},
]
options = {{ path = "customers.csv", format = "csv" }}
keys = {{ customer = "id" }}
join = "inner"
cache = {{ type = "full", reload-interval = "1h" }}

[[sinks]]
name = "out"
input = "enriched"
connector = "files"
options = {{ path = "out", format = "csv" }}
"#
    )
}

/// The ids of a joined CSV part file; every row's name is its customer's.
fn joined_ids(path: &Path) -> Vec<i64> {
    csv_ids_checked(path, &["id", "customer", "name"], |r| {
        assert_eq!(
            &r[2],
            format!("customer {}", &r[1]),
            "{}: {r:?}",
            path.display()
        );
    })
}

#[test]
fn datagen_joined_with_a_lookup_table_survives_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let kills = kills_from_env();
    let rows = rows_for(kills);
    let customers: Vec<String> = (1..=5).map(|c| format!("{c},customer {c}")).collect();
    fs::write(
        dir.join("customers.csv"),
        format!("id,name\n{}\n", customers.join("\n")),
    )
    .unwrap();
    fs::write(dir.join("pipeline.toml"), lookup_pipeline(rows, true)).unwrap();
    fs::write(dir.join("final.toml"), lookup_pipeline(rows, false)).unwrap();
    let report = Soak::new("soak-lookup", dir, "pipeline.toml")
        .kills(kills)
        .kill_after(KILL_AFTER)
        .end_of_input_kill_after(END_OF_INPUT_KILL_AFTER)
        .final_pipeline("final.toml")
        .run();
    report.assert_finished();
    let files = soaked_files(&report, &dir.join("out"));
    let ids: Vec<i64> = files.iter().flat_map(|f| joined_ids(f)).collect();
    assert_exactly_once(&report.context, &ids, 0..rows as i64);
}

#[test]
fn datagen_to_orc_survives_kills() {
    soak_datagen_to_files("soak-orc", "format = \"orc\"", orc_ids);
}

#[test]
fn datagen_to_csv_with_compaction_survives_kills() {
    soak_datagen_to_files(
        "soak-csv",
        "format = \"csv\"\ncompaction.enabled = true\ncompaction.every-checkpoints = 2",
        csv_ids,
    );
}

#[test]
fn datagen_to_json_rolling_in_progress_files_survives_kills() {
    // Small part files roll between checkpoints; the open one is resumed after each restore.
    soak_datagen_to_files(
        "soak-json",
        "format = \"json\"\nsink.rolling-policy.file-size = \"64kb\"",
        json_ids,
    );
}

/// Starts `weir run pipeline.toml` in `dir` and SIGKILLs it as soon as the sink has opened an
/// in-progress file (no checkpoint can complete before: the interval is an hour).
fn kill_once_files_are_open(dir: &Path) {
    let out = dir.join("out");
    let in_progress = |out: &Path| -> Vec<PathBuf> {
        if !out.is_dir() {
            return Vec::new();
        }
        files_under(out)
            .into_iter()
            .filter(|f| {
                f.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(".inprogress."))
            })
            .collect()
    };
    let before = in_progress(&out);
    let mut child = common::weir()
        .current_dir(dir)
        .args(["run", "pipeline.toml", "--progress", "quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let open = loop {
        let hidden = in_progress(&out).iter().any(|f| !before.contains(f));
        if hidden || started.elapsed() > Duration::from_mins(1) {
            break hidden;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("weir ended before it was killed: {status}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(open, "the sink opened no in-progress file within a minute");
}

/// Item 9 of issue 13: a job killed before its first checkpoint left its (empty) hidden
/// in-progress files behind for good, since the next start (a fresh one: there is no
/// checkpoint to restore) removed nothing. Now every start removes its subtasks' empty ones.
#[test]
fn a_kill_before_the_first_checkpoint_leaves_no_hidden_files_after_the_next_run() {
    for (name, sink, read) in [
        (
            "json",
            "format = \"json\"",
            json_ids as fn(&Path) -> Vec<i64>,
        ),
        (
            "parquet-compacted",
            "format = \"parquet\"\ncompaction.enabled = true\ncompaction.every-checkpoints = 1",
            parquet_ids,
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let rows = 4_000;
        let paced = datagen_pipeline(name, rows, true, sink).replace("\"300ms\"", "\"1h\"");
        fs::write(dir.join("pipeline.toml"), paced).unwrap();
        for _ in 0..2 {
            kill_once_files_are_open(dir);
        }
        // No checkpoint to resume from: the job starts again, as a user would.
        fs::write(
            dir.join("pipeline.toml"),
            datagen_pipeline(name, rows, false, sink),
        )
        .unwrap();
        let (code, _, err) = common::run(common::weir().current_dir(dir).args([
            "run",
            "pipeline.toml",
            "--progress",
            "quiet",
        ]));
        assert_eq!(code, 0, "{name}: {err}");
        let files = committed_files(name, &dir.join("out"));
        let ids: Vec<i64> = files.iter().flat_map(|f| read(f)).collect();
        assert_exactly_once(name, &ids, 0..rows as i64);
    }
}

/// Partitions of the Kafka soak's input topic.
const KAFKA_PARTITIONS: i32 = 2;
/// Ids produced before each run of the Kafka soak.
const KAFKA_CHUNK: u64 = 1_000;

/// A Kafka → Parquet files job (the `kafka-to-files.toml` example's shape): the source stops at
/// `end` per partition, so it cannot finish before the last chunk was produced.
fn kafka_pipeline(bootstrap: &str, topic: &str, end: u64) -> String {
    let offsets: Vec<String> = (0..KAFKA_PARTITIONS)
        .map(|p| format!("partition:{p},offset:{end}"))
        .collect();
    format!(
        r#"[pipeline]
name = "soak-kafka-files"
parallelism = 2

[checkpointing]
interval = "300ms"
mode = "exactly-once"
storage = "chk"

[[sources]]
name = "orders"
connector = "kafka"
format = {{ type = "json", ignore-parse-errors = false }}
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "customer", type = "string" }},
  {{ name = "amount", type = "float64" }},
]

[sources.options]
topic = "{topic}"
properties.bootstrap.servers = "{bootstrap}"
properties.group.id = "weir-soak-kafka-files"
scan.startup.mode = "earliest-offset"
scan.bounded.mode = "specific-offsets"
scan.bounded.specific-offsets = "{offsets}"

[[sinks]]
name = "lake"
input = "orders"
connector = "files"

[sinks.options]
path = "out"
format = "parquet"
compaction.enabled = true
compaction.every-checkpoints = 2
"#,
        offsets = offsets.join(";")
    )
}

/// Produces ids `ids` to `topic`, id `i` to partition `i % KAFKA_PARTITIONS` (so every partition
/// gets consecutive offsets), and waits until the broker has them all.
fn produce(producer: &rdkafka::producer::BaseProducer, topic: &str, ids: std::ops::Range<u64>) {
    use rdkafka::producer::{BaseRecord, Producer};
    for id in ids {
        let value = format!(
            r#"{{"id":{id},"customer":"customer-{}","amount":{}.25}}"#,
            id % 17,
            id % 500
        );
        let key = id.to_string();
        let partition = (id % KAFKA_PARTITIONS as u64) as i32;
        let mut record = BaseRecord::to(topic)
            .partition(partition)
            .key(&key)
            .payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "producing id {id}: {e}"
                    );
                    producer.poll(Duration::from_millis(10));
                    record = r;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

#[test]
fn kafka_to_parquet_files_survives_kills() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;

    let server = weir_testkit::servers::NoidaDb::start().unwrap();
    let bootstrap = server.kafka_bootstrap();
    let topic = "soak-orders";
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let created = futures::executor::block_on(admin.create_topics(
        &[NewTopic::new(
            topic,
            KAFKA_PARTITIONS,
            TopicReplication::Fixed(1),
        )],
        &AdminOptions::new(),
    ))
    .unwrap();
    for r in created {
        r.unwrap();
    }
    let producer: rdkafka::producer::BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();

    // One chunk before every paced run, the last before the end of the input: the source stops
    // at the offsets of all chunks, so no run can finish before the last one.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let kills = kills_from_env();
    let chunks = u64::from(kills) + 1;
    let rows = chunks * KAFKA_CHUNK;
    let per_partition = rows / KAFKA_PARTITIONS as u64;
    fs::write(
        dir.join("pipeline.toml"),
        kafka_pipeline(&bootstrap, topic, per_partition),
    )
    .unwrap();
    let mut produced = 0;
    let report = Soak::new("soak-kafka-parquet", &dir, "pipeline.toml")
        .kills(kills)
        .kill_after(KILL_AFTER)
        .end_of_input_kill_after(END_OF_INPUT_KILL_AFTER)
        .before_run(move |_, kind| {
            if produced < chunks && (kind.paced_run() || produced + 1 == chunks) {
                let from = produced * KAFKA_CHUNK;
                produce(&producer, topic, from..from + KAFKA_CHUNK);
                produced += 1;
            }
        })
        .run();
    report.assert_finished();
    let files = soaked_files(&report, &dir.join("out"));
    let ids: Vec<i64> = files.iter().flat_map(|f| parquet_ids(f)).collect();
    assert_exactly_once(&report.context, &ids, 0..rows as i64);
}

/// What the runtime logs (at debug level) when a committer commits the end-of-input
/// committables.
const END_OF_INPUT_COMMIT_LOG: &str = "checkpoint=end-of-input";

/// Runs `pipeline.toml` in `dir` with debug logs and SIGKILLs it as soon as a committer logged
/// its end-of-input commit. Returns whether the kill landed (the job had not exited yet).
fn kill_right_after_the_end_of_input_commit(dir: &Path) -> bool {
    let log = dir.join("eoi.err");
    let mut child = common::weir()
        .current_dir(dir)
        .args(["run", "pipeline.toml", "--progress", "quiet"])
        .env("RUST_LOG", "info,weir_runtime=debug")
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let committed = text
            .lines()
            .any(|l| l.contains("commit") && l.contains(END_OF_INPUT_COMMIT_LOG));
        if committed {
            let landed = child.try_wait().unwrap().is_none();
            child.kill().unwrap();
            child.wait().unwrap();
            return landed;
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{}", text);
            panic!("the job ended without logging `{END_OF_INPUT_COMMIT_LOG}`:\n{text}");
        }
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "no end-of-input commit within a minute:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A committer committed the end-of-input committables when a checkpoint whose barrier it had
/// received *before* its end of input completed. A kill right after that commit (before the
/// final checkpoint completed) then resumed from that earlier checkpoint: its in-progress
/// files were already published ("recovering the in-progress file … is gone", the job failed
/// for good) and the input after it was replayed (duplicates for bulk formats). Now only a
/// checkpoint taken after the end of input commits them.
#[test]
fn a_kill_right_after_the_end_of_input_commit_loses_and_duplicates_nothing() {
    for (name, sink, read) in [
        (
            "eoi-json",
            "format = \"json\"",
            json_ids as fn(&Path) -> Vec<i64>,
        ),
        ("eoi-parquet", "format = \"parquet\"", parquet_ids),
    ] {
        let rows = 20_000;
        let mut landed = 0;
        for _ in 0..5 {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            // Checkpoints every 20 ms over half a second of input: one is in flight when the
            // input ends.
            let text = datagen_pipeline(name, rows, true, sink)
                .replace("\"300ms\"", "\"20ms\"")
                .replace(
                    &format!("rows-per-second = {RATE}"),
                    "rows-per-second = 40000",
                );
            fs::write(dir.join("pipeline.toml"), text).unwrap();
            if !kill_right_after_the_end_of_input_commit(dir) {
                continue; // it exited first: nothing was tested
            }
            landed += 1;
            let (code, _, err) = common::run(common::weir().current_dir(dir).args([
                "run",
                "pipeline.toml",
                "--from-latest-checkpoint",
                "--progress",
                "quiet",
            ]));
            assert_eq!(code, 0, "{name}: the resume failed:\n{err}");
            let files = committed_files(name, &dir.join("out"));
            let ids: Vec<i64> = files.iter().flat_map(|f| read(f)).collect();
            assert_exactly_once(name, &ids, 0..rows as i64);
            if landed == 2 {
                break;
            }
        }
        assert!(landed > 0, "{name}: no kill landed before the job exited");
    }
}
