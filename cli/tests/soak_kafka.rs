//! Process-kill soak of the real `weir` binary writing to Kafka exactly-once (issue 13, item 6).
//!
//! Each pipeline (datagen → Kafka and the `files-to-kafka.toml` example made bounded, both with
//! 500 ms checkpoints) is started, SIGKILLed at a random moment and resumed with
//! `--from-latest-checkpoint`, `WEIR_SOAK_KILLS` times (default 20) while paced; then, unpaced,
//! a quarter as many times again a random moment (0–600 ms) after its first task finished its
//! input (seen in the runtime's debug log), so that kills land while the other subtasks finish,
//! during the final checkpoint, between it and its commits, during and after them; then it is
//! left to finish. A finished job is then resumed once more (as a user who does not know
//! whether the last run finished would), which must end at once and add nothing.
//!
//! The topic is then read by an independent `read_committed` rdkafka consumer with a timeout,
//! so a transaction left open shows as missing records, not as a hang: every id must be there
//! exactly once. And the broker itself must say that no transaction is open on the topic: the
//! read_committed high watermark (the last stable offset) of every partition equals its
//! read_uncommitted one. `an_open_transaction_holds_back_the_last_stable_offset` proves the
//! broker (noida-db, which never times transactions out) really reports that.
//!
//! The kill/resume loop is this file's own (the shared one in `common/soak.rs` has no
//! end-of-input phase and no resume after the finish); it takes the kill count, the seed, the
//! random generator and the exactly-once check from `common/soak.rs`, and starts a run fresh
//! while no checkpoint has completed yet.
//!
//! Heavier runs: `WEIR_SOAK_KILLS=200 cargo test -p weir-cli --test integration soak_kafka::`; replay a
//! failure with the `WEIR_SOAK_SEED` its message prints; `WEIR_SOAK_BIN=<path>` soaks another
//! `weir` binary (e.g. a build from before a fix, to see the failure it had).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use weir_testkit::servers::NoidaDb;

use common::soak::{assert_exactly_once, kills_from_env, seed_from_env, KillOnDrop, SoakRng};
use common::{repo, weir};

/// Partitions of the output topic.
const PARTITIONS: i32 = 3;
/// Kill moments of the paced runs, after each start.
const PACED_KILL_AFTER: Range<Duration> = Duration::ZERO..Duration::from_millis(1500);
/// Kill moments of the end-of-input runs, after the first task finished its input: drawn
/// log-uniformly from 1 ms to 600 ms, as the end can take from ~20 ms (an idle machine) to
/// seconds.
const END_OF_INPUT_KILL_AFTER: Range<Duration> =
    Duration::from_millis(1)..Duration::from_millis(600);
/// What the runtime logs (at debug level) when a task finished its input.
const END_OF_INPUT_LOG: &str = "finished task=";
/// How long the read_committed reader waits for a record before it gives up.
const READ_IDLE: Duration = Duration::from_secs(15);

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Killed,
    Exited(i32),
}

/// When a run is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// This long after its start.
    After(Duration),
    /// This long after the first task finished its input.
    AfterEndOfInput(Duration),
    /// Not: it must finish.
    Never,
}

/// Which pipeline file a run uses and how long it may live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The paced pipeline, killed at a random moment; must not reach the end of the input.
    Paced,
    /// The unpaced pipeline, killed a random moment after a task finished its input, unless
    /// the job finishes first.
    EndOfInput,
    /// The unpaced pipeline, left to finish.
    Final,
    /// The unpaced pipeline resumed after the job finished: must finish at once, adding nothing.
    AfterFinish,
}

/// The kill/resume loop of one pipeline.
struct Soak {
    name: String,
    dir: PathBuf,
    paced: String,
    unpaced: String,
    paced_kill_after: Range<Duration>,
    kills: u32,
    seed: u64,
    rng: SoakRng,
    runs: usize,
    log: String,
}

/// What the loop did.
#[derive(Debug)]
struct Report {
    paced_kills: u32,
    end_of_input_kills: u32,
    /// Whether an end-of-input run logged that a task finished its input.
    saw_end_of_input: bool,
    fresh_starts: u32,
    elapsed: Duration,
}

impl Soak {
    fn new(
        name: &str,
        dir: &Path,
        (paced, unpaced): (&str, &str),
        paced_kill_after: Range<Duration>,
    ) -> Soak {
        let seed = seed_from_env();
        Soak {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            paced: paced.to_owned(),
            unpaced: unpaced.to_owned(),
            paced_kill_after,
            kills: kills_from_env(),
            seed,
            rng: SoakRng::new(seed),
            runs: 0,
            log: String::new(),
        }
    }

    fn context(&self) -> String {
        format!(
            "soak `{}` in {} (replay with WEIR_SOAK_SEED={} WEIR_SOAK_KILLS={}); runs:\n{}",
            self.name,
            self.dir.display(),
            self.seed,
            self.kills,
            self.log
        )
    }

    /// Whether a checkpoint has completed (a `_metadata` file under `chk/`).
    fn has_checkpoint(&self) -> bool {
        fn any_metadata(dir: &Path) -> bool {
            let Ok(entries) = fs::read_dir(dir) else {
                return false;
            };
            entries.flatten().any(|e| {
                let path = e.path();
                if path.is_dir() {
                    any_metadata(&path)
                } else {
                    path.file_name().is_some_and(|n| n == "_metadata")
                }
            })
        }
        any_metadata(&self.dir.join("chk"))
    }

    /// Runs once and kills it as `kill` says, unless it ends first.
    fn run(&mut self, phase: Phase, kill: Kill) -> (End, bool) {
        let index = self.runs;
        self.runs += 1;
        let logs = self.dir.join("soak-logs");
        fs::create_dir_all(&logs).unwrap();
        let err_path = logs.join(format!("run-{index:03}.err"));
        let file = match phase {
            Phase::Paced => &self.paced,
            _ => &self.unpaced,
        };
        let fresh = !self.has_checkpoint();
        let mut cmd = match std::env::var_os("WEIR_SOAK_BIN") {
            Some(bin) => std::process::Command::new(bin),
            None => weir(),
        };
        cmd.current_dir(&self.dir)
            .args(["run", file, "--progress", "quiet"]);
        if !fresh {
            cmd.arg("--from-latest-checkpoint");
        }
        // The runtime logs checkpoints and each task that finished its input at debug level
        // (the end-of-input kills wait for the latter); the logs stay with WEIR_SOAK_KEEP.
        cmd.env("RUST_LOG", "info,weir_runtime=debug");
        cmd.stdout(Stdio::null())
            .stderr(Stdio::from(fs::File::create(&err_path).unwrap()));
        let started = Instant::now();
        let mut child = KillOnDrop(Some(cmd.spawn().expect("weir starts")));
        let timeout = Duration::from_mins(5);
        let mut kill_at = match kill {
            Kill::After(d) => Some(d),
            Kill::AfterEndOfInput(_) | Kill::Never => None,
        };
        let end = loop {
            if let Some(status) = child.0.as_mut().unwrap().try_wait().unwrap() {
                child.0 = None;
                break End::Exited(status.code().unwrap_or(-1));
            }
            let ran = started.elapsed();
            if let (Kill::AfterEndOfInput(delay), None) = (kill, kill_at) {
                let log = fs::read_to_string(&err_path).unwrap_or_default();
                if log.contains(END_OF_INPUT_LOG) {
                    kill_at = Some(ran + delay);
                }
            }
            if kill_at.is_some_and(|k| ran >= k) {
                child.kill();
                break End::Killed;
            }
            assert!(
                ran < timeout,
                "{}: run {index} ({phase:?}) still running after {timeout:?}",
                self.context()
            );
            let left = kill_at.map_or(Duration::from_millis(5), |k| k.saturating_sub(ran));
            std::thread::sleep(left.min(Duration::from_millis(5)));
        };
        let _ = writeln!(
            self.log,
            "  run {index:3} {phase:?}{} {end:?} after {:.2} s{}",
            if fresh { " (fresh)" } else { "" },
            started.elapsed().as_secs_f64(),
            match (kill, end) {
                (Kill::AfterEndOfInput(d), End::Killed) =>
                    format!(", {} ms after a task finished its input", d.as_millis()),
                _ => String::new(),
            }
        );
        if let End::Exited(code) = end {
            if code != 0 {
                let text = fs::read_to_string(&err_path).unwrap_or_default();
                panic!(
                    "{}: run {index} ({phase:?}) failed with exit code {code}:\n{text}",
                    self.context()
                );
            }
        }
        (end, fresh)
    }

    /// The stderr of the last run.
    fn last_log(&self) -> String {
        let index = self.runs.saturating_sub(1);
        fs::read_to_string(self.dir.join(format!("soak-logs/run-{index:03}.err")))
            .unwrap_or_default()
    }

    /// The whole soak: paced kills, kills at the end of the input, the final run, and one
    /// resume after the finish.
    fn run_all(mut self) -> (Report, String) {
        eprintln!(
            "soak `{}`: seed {} (replay with WEIR_SOAK_SEED={}), {} paced kills",
            self.name, self.seed, self.seed, self.kills
        );
        let started = Instant::now();
        let mut report = Report {
            paced_kills: 0,
            end_of_input_kills: 0,
            saw_end_of_input: false,
            fresh_starts: 0,
            elapsed: Duration::ZERO,
        };
        for _ in 0..self.kills {
            let delay = self.rng.duration(&self.paced_kill_after.clone());
            let (end, fresh) = self.run(Phase::Paced, Kill::After(delay));
            report.fresh_starts += u32::from(fresh);
            assert_eq!(
                end,
                End::Killed,
                "{}: a paced run reached the end of the input: give the soak more input",
                self.context()
            );
            report.paced_kills += 1;
        }
        // Each of these reads the rest of the input and is killed when a task has finished
        // its input: while the other subtasks finish, during the final checkpoint, between
        // it and its commits, during them, or after them.
        let mut finished = false;
        for _ in 0..self.kills.div_ceil(4) {
            let delay = log_uniform(&mut self.rng, &END_OF_INPUT_KILL_AFTER);
            let (end, fresh) = self.run(Phase::EndOfInput, Kill::AfterEndOfInput(delay));
            report.fresh_starts += u32::from(fresh);
            report.saw_end_of_input |= self.last_log().contains(END_OF_INPUT_LOG);
            if end == End::Killed {
                report.end_of_input_kills += 1;
            } else {
                finished = true;
                break;
            }
        }
        if !finished {
            self.run(Phase::Final, Kill::Never);
        }
        // Resumed after the finish: restores the final checkpoint and must end at once.
        self.run(Phase::AfterFinish, Kill::Never);
        report.elapsed = started.elapsed();
        eprintln!(
            "soak `{}`: {} paced + {} end-of-input kills, {} fresh starts, {:.1} s; seed {}",
            self.name,
            report.paced_kills,
            report.end_of_input_kills,
            report.fresh_starts,
            report.elapsed.as_secs_f64(),
            self.seed
        );
        eprintln!("{}", self.log);
        let context = self.context();
        assert!(
            report.saw_end_of_input,
            "{context}: no end-of-input run logged `{END_OF_INPUT_LOG}` at debug level, so the \
             kills aimed at the end of the input cannot find it"
        );
        (report, context)
    }
}

/// A duration drawn log-uniformly from `range` (whose start must not be zero).
fn log_uniform(rng: &mut SoakRng, range: &Range<Duration>) -> Duration {
    let (lo, hi) = (range.start.as_secs_f64(), range.end.as_secs_f64());
    let unit = (rng.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
    Duration::from_secs_f64(lo * (hi / lo).powf(unit))
}

/// The soak's directory: removed afterwards unless `WEIR_SOAK_KEEP` is set (its logs and
/// checkpoints then stay for a post-mortem).
fn soak_dir() -> tempfile::TempDir {
    let mut builder = tempfile::Builder::new();
    builder.prefix("weir-soak-kafka-");
    if std::env::var_os("WEIR_SOAK_KEEP").is_some() {
        builder.disable_cleanup(true);
    }
    builder.tempdir().unwrap()
}

/// Creates `topic` with [`PARTITIONS`] partitions.
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

fn consumer(bootstrap: &str, isolation: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("isolation.level", isolation)
        .set("group.id", "weir-soak-reader")
        .set("enable.auto.commit", "false")
        // noida-db answers a fetch with up to ~120 MB whatever fetch.max.bytes says; librdkafka
        // refuses answers above receive.message.max.bytes (100 MB by default) as "Bad message
        // format" (seen reading the 1.2 M records of the 200-kill files soak).
        .set("fetch.max.bytes", "10485760")
        .set("receive.message.max.bytes", "1000000000")
        .create()
        .unwrap()
}

/// The high watermark of every partition as a consumer of `isolation` sees it: for
/// read_committed that is the last stable offset, held back by the first open transaction.
fn high_watermarks(bootstrap: &str, topic: &str, isolation: &str) -> BTreeMap<i32, i64> {
    let c = consumer(bootstrap, isolation);
    (0..PARTITIONS)
        .map(|p| {
            let (_, high) = c
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            (p, high)
        })
        .collect()
}

/// Asserts that no transaction is open on `topic`: every partition's last stable offset is
/// its high watermark.
fn assert_no_open_transaction(context: &str, bootstrap: &str, topic: &str) {
    let stable = high_watermarks(bootstrap, topic, "read_committed");
    let high = high_watermarks(bootstrap, topic, "read_uncommitted");
    assert_eq!(
        stable, high,
        "{context}: transactions are still open on {topic}: last stable offsets (read_committed \
         high watermarks) per partition {stable:?} are behind the high watermarks {high:?}"
    );
}

/// The `id` of every record read with read_committed, until `expected` were read or none came
/// for [`READ_IDLE`].
fn read_committed_ids(bootstrap: &str, topic: &str, expected: usize) -> Vec<i64> {
    let c = consumer(bootstrap, "read_committed");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut ids = Vec::with_capacity(expected);
    let mut last = Instant::now();
    while ids.len() < expected && last.elapsed() < READ_IDLE {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let value = m.payload().expect("a value");
                let v: serde_json::Value = serde_json::from_slice(value).unwrap_or_else(|e| {
                    panic!("{}: {e}", String::from_utf8_lossy(value));
                });
                ids.push(v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}")));
                last = Instant::now();
            }
            Some(Err(e)) => {
                let positions = c.position().map(|p| format!("{p:?}")).unwrap_or_default();
                panic!(
                    "reading {topic} after {} records: {e}; positions {positions}; a fresh \
                     reader from the start: {}",
                    ids.len(),
                    reread_outcome(bootstrap, topic)
                );
            }
            None => {}
        }
    }
    // A little longer, for duplicates beyond the expected count.
    let extra = Instant::now();
    while extra.elapsed() < Duration::from_millis(500) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            ids.push(v["id"].as_i64().unwrap());
        }
    }
    ids
}

/// For a failure message: how far fresh readers of each partition and isolation level get
/// from the start of `topic` (whether a read error is in the log for good, and where).
fn reread_outcome(bootstrap: &str, topic: &str) -> String {
    let mut out = String::new();
    for isolation in ["read_committed", "read_uncommitted"] {
        for p in 0..PARTITIONS {
            let c = consumer(bootstrap, isolation);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
            c.assign(&tpl).unwrap();
            let (mut read, mut last_offset, mut last) = (0_u64, -1_i64, Instant::now());
            let outcome = loop {
                if last.elapsed() > Duration::from_secs(3) {
                    break "no error".to_owned();
                }
                match c.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        read += 1;
                        last_offset = m.offset();
                        last = Instant::now();
                    }
                    Some(Err(e)) => break format!("then {e}"),
                    None => {}
                }
            };
            let _ = write!(
                out,
                "[{isolation} partition {p}: {read} records up to offset {last_offset}, {outcome}] "
            );
        }
    }
    out
}

/// Reads the topic back and checks it: every id once, no transaction open.
fn check_output(context: &str, bootstrap: &str, topic: &str, rows: u64) {
    let ids = read_committed_ids(bootstrap, topic, rows as usize);
    let stable = high_watermarks(bootstrap, topic, "read_committed");
    let high = high_watermarks(bootstrap, topic, "read_uncommitted");
    let context = format!("{context}last stable offsets {stable:?}, high watermarks {high:?}");
    assert_exactly_once(&context, &ids, 0..rows as i64);
    assert_no_open_transaction(&context, bootstrap, topic);
}

/// The Kafka sink of both pipelines: exactly-once JSON keyed by id into `topic`.
fn kafka_sink(bootstrap: &str, prefix: &str, pacing: &str) -> String {
    format!(
        r#"[[sinks]]
name = "topic"
input = "orders"
connector = "kafka"
format = "json"

[sinks.options]
topic = "out"
properties.bootstrap.servers = "{bootstrap}"
sink.delivery-guarantee = "exactly-once"
sink.transactional-id-prefix = "{prefix}"
key.fields = "id"
{pacing}"#
    )
}

/// Rows per second of the paced datagen runs.
const DATAGEN_RATE: u64 = 2_000;

fn datagen_pipeline(bootstrap: &str, rows: u64, paced: bool) -> String {
    let rate = if paced {
        format!("rows-per-second = {DATAGEN_RATE}\n")
    } else {
        String::new()
    };
    format!(
        r#"[pipeline]
name = "soak-datagen-kafka"
parallelism = 2

[checkpointing]
interval = "500ms"
mode = "exactly-once"
storage = "chk"

[[sources]]
name = "orders"
connector = "datagen"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "customer", type = "string", nullable = false }},
]

[sources.options]
number-of-rows = {rows}
{rate}seed = 7
fields.id.kind = "sequence"
fields.customer.length = 8

{}"#,
        kafka_sink(bootstrap, "soak-datagen", "")
    )
}

#[test]
fn datagen_to_kafka_exactly_once_survives_kills() {
    let server = NoidaDb::start().expect("noida-db starts (run `cargo xtask deps`)");
    let bootstrap = server.kafka_bootstrap();
    create_topic(&bootstrap, "out");
    let tmp = soak_dir();
    let dir = tmp.path();
    let kills = kills_from_env();
    // The paced runs cannot reach the end: each emits at most RATE × 1.5 s rows.
    let rows = u64::from(kills.max(1)) * DATAGEN_RATE * 3 / 2 + 20_000;
    fs::write(
        dir.join("paced.toml"),
        datagen_pipeline(&bootstrap, rows, true),
    )
    .unwrap();
    fs::write(
        dir.join("unpaced.toml"),
        datagen_pipeline(&bootstrap, rows, false),
    )
    .unwrap();
    let (report, context) = Soak::new(
        "datagen-kafka",
        dir,
        ("paced.toml", "unpaced.toml"),
        PACED_KILL_AFTER,
    )
    .run_all();
    assert!(report.paced_kills >= kills, "{context}");
    check_output(&context, &bootstrap, "out", rows);
}

/// Producer settings that pace the killed files → Kafka runs at no more than about 2 000
/// records per second (the files source has no rate limit): a queue of 100 records, sent
/// every 50 ms.
const FILES_PACING: &str =
    "properties.queue.buffering.max.messages = \"100\"\nproperties.linger.ms = \"50\"\n";
/// Records per second the paced files runs reach at most.
const FILES_RATE: u64 = 2_000;
/// Rows per input file: small files keep the source's batches, and so the time a barrier
/// waits behind one, small.
const FILE_ROWS: u64 = 1_000;
/// Kill moments of the paced files runs: a debug `weir` under load needs one to two seconds to
/// its first completed checkpoint.
const FILES_KILL_AFTER: Range<Duration> = Duration::ZERO..Duration::from_secs(3);

/// The `files-to-kafka.toml` example made bounded, with 500 ms checkpoints, the test broker and
/// `pacing` added to the sink options.
fn files_pipeline(bootstrap: &str, pacing: &str) -> String {
    let mut text = fs::read_to_string(repo().join("examples/files-to-kafka.toml")).unwrap();
    for (old, new) in [
        ("localhost:9092", bootstrap),
        ("source.monitor-interval = \"10s\"\n", ""),
        ("interval = \"5s\"", "interval = \"500ms\""),
        ("topic = \"orders\"", "topic = \"out\""),
        ("storage = \"./out/checkpoints\"", "storage = \"chk\""),
    ] {
        assert!(
            text.contains(old),
            "files-to-kafka.toml no longer contains {old:?}"
        );
        text = text.replace(old, new);
    }
    text.push_str(pacing);
    text
}

/// Writes `in/orders/part-<n>.csv` with the orders of ids `ids` (header line first).
fn write_orders(dir: &Path, n: u64, ids: Range<u64>) {
    let base = 1_767_225_600_000_i64; // 2026-01-01T00:00:00Z
    let mut csv = String::from("id,customer,amount,at\n");
    for id in ids {
        writeln!(
            csv,
            "{id},customer-{},{}.25,{}",
            id % 17,
            id % 500,
            base + id as i64 * 1000
        )
        .unwrap();
    }
    fs::write(dir.join(format!("in/orders/part-{n:04}.csv")), csv).unwrap();
}

#[test]
fn files_to_kafka_exactly_once_survives_kills() {
    let server = NoidaDb::start().expect("noida-db starts (run `cargo xtask deps`)");
    let bootstrap = server.kafka_bootstrap();
    create_topic(&bootstrap, "out");
    let tmp = soak_dir();
    let dir = tmp.path();
    let kills = kills_from_env();
    // The paced runs cannot reach the end: each sends at most FILES_RATE × 3 s records.
    let files = (u64::from(kills.max(1)) * FILES_RATE * 3 + 5_000).div_ceil(FILE_ROWS);
    fs::create_dir_all(dir.join("in/orders")).unwrap();
    for n in 0..files {
        write_orders(dir, n, n * FILE_ROWS..(n + 1) * FILE_ROWS);
    }
    // A last file ten times larger: one reader reads it while the other has finished its
    // input, which widens the end of the input for the kills aimed at it.
    let rows = (files + 10) * FILE_ROWS;
    write_orders(dir, files, files * FILE_ROWS..rows);
    fs::write(
        dir.join("paced.toml"),
        files_pipeline(&bootstrap, FILES_PACING),
    )
    .unwrap();
    fs::write(dir.join("unpaced.toml"), files_pipeline(&bootstrap, "")).unwrap();
    let (report, context) = Soak::new(
        "files-kafka",
        dir,
        ("paced.toml", "unpaced.toml"),
        FILES_KILL_AFTER,
    )
    .run_all();
    assert!(report.paced_kills >= kills, "{context}");
    check_output(&context, &bootstrap, "out", rows);
}

/// The soak's "no open transaction" check can fail: on this broker an open transaction holds
/// the read_committed high watermark (the last stable offset) back until it ends.
#[test]
fn an_open_transaction_holds_back_the_last_stable_offset() {
    let server = NoidaDb::start().expect("noida-db starts (run `cargo xtask deps`)");
    let bootstrap = server.kafka_bootstrap();
    create_topic(&bootstrap, "out");
    let producer = |id: &str| -> ThreadedProducer<DefaultProducerContext> {
        let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("transactional.id", id)
            .create()
            .unwrap();
        p.init_transactions(Duration::from_secs(10)).unwrap();
        p
    };
    let committed = producer("probe-committed");
    committed.begin_transaction().unwrap();
    for p in 0..PARTITIONS {
        let record = BaseRecord::<(), str>::to("out")
            .payload(r#"{"id":0}"#)
            .partition(p);
        committed.send(record).map_err(|e| e.0).unwrap();
    }
    committed
        .commit_transaction(Duration::from_secs(10))
        .unwrap();
    assert_no_open_transaction("after a commit", &bootstrap, "out");

    let open = producer("probe-open");
    open.begin_transaction().unwrap();
    let record = BaseRecord::<(), str>::to("out")
        .payload(r#"{"id":1}"#)
        .partition(1);
    open.send(record).map_err(|e| e.0).unwrap();
    open.flush(Duration::from_secs(10)).unwrap();
    // A crash: the transaction stays open.
    std::mem::forget(open);
    let stable = high_watermarks(&bootstrap, "out", "read_committed");
    let high = high_watermarks(&bootstrap, "out", "read_uncommitted");
    // Partition 1 holds the committed record, its commit marker and the open record.
    assert_eq!(high[&1], 3, "{high:?}");
    assert_eq!(
        stable[&1], 2,
        "the open transaction holds partition 1 back: {stable:?}"
    );
    assert_eq!((stable[&0], stable[&2]), (high[&0], high[&2]));
    assert_eq!(read_committed_ids(&bootstrap, "out", 3).len(), 3);

    // Initialising its id again aborts it; then nothing is open.
    drop(producer("probe-open"));
    assert_no_open_transaction("after the id was initialised again", &bootstrap, "out");
}
