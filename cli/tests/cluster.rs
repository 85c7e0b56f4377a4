//! Cluster mode with the `weir` binary: `weir cluster run -n 3` (the supervisor) runs a
//! datagen → CSV files pipeline across 3 processes on loopback — readers in every process, the
//! sink's 2 writers fed by a rebalance across processes, its committer in process 0 —
//! exactly-once with checkpoints every 200 ms. The committed rows are read back with the `csv`
//! crate: every id once, the same rows as an embedded `weir run`, and bytes crossed processes.
//! Then processes (the master included) are SIGKILLed at random moments: the supervisor
//! restarts all of them from the latest checkpoint, and still every id is committed once.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{files_under, run, weir};

fn pipeline(rows: u64, rate: Option<u64>) -> String {
    let rate = rate.map_or_else(String::new, |r| format!("rows-per-second = {r}\n"));
    format!(
        r#"[pipeline]
name = "cluster"
parallelism = 3

[checkpointing]
interval = "200ms"
mode = "exactly-once"
storage = "chk"

[[sources]]
name = "orders"
connector = "datagen"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "name", type = "string", nullable = false }},
  {{ name = "amount", type = "float64" }},
]

[sources.options]
number-of-rows = {rows}
seed = 11
{rate}fields.id.kind = "sequence"
fields.amount.null-rate = 0.1

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

/// The committed CSV rows under `dir/out` by id, each with how often it was committed.
pub(crate) fn committed(dir: &Path) -> BTreeMap<i64, (String, usize)> {
    let mut rows = BTreeMap::new();
    let out = dir.join("out");
    for file in files_under(&out) {
        if file.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(out.join(&file))
            .unwrap();
        for record in reader.records() {
            let record = record.unwrap();
            let id: i64 = record[0].parse().unwrap();
            let line = record.iter().collect::<Vec<_>>().join(",");
            rows.entry(id).or_insert((line, 0)).1 += 1;
        }
    }
    rows
}

pub(crate) fn assert_every_id_once(rows: &BTreeMap<i64, (String, usize)>, n: i64, context: &str) {
    let missing = (0..n).filter(|id| !rows.contains_key(id)).count();
    let repeated: Vec<_> = rows
        .iter()
        .filter(|(_, (_, c))| *c > 1)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(missing, 0, "{context}: {missing} ids missing");
    assert!(
        repeated.is_empty(),
        "{context}: ids committed twice: {:?}",
        &repeated[..repeated.len().min(10)]
    );
    assert_eq!(rows.len() as i64, n, "{context}: ids outside 0..{n}");
}

/// The bytes each process said it sent to the others.
pub(crate) fn bytes_sent(stderr: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("weir: process "))
        .filter_map(|l| l.split(" sent ").nth(1))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn three_processes_commit_every_row_once_and_the_rows_of_an_embedded_run() {
    let rows = 60_000;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.toml"), pipeline(rows, Some(40_000))).unwrap();
    let (code, _, err) = run(weir().current_dir(dir.path()).args([
        "cluster",
        "run",
        "-n",
        "3",
        "p.toml",
        "--progress",
        "quiet",
    ]));
    assert_eq!(code, 0, "{err}");
    let cluster = committed(dir.path());
    assert_every_id_once(&cluster, rows as i64, "3 processes");
    let sent = bytes_sent(&err);
    assert_eq!(sent.len(), 3, "{err}");
    assert!(
        sent.iter().all(|b| *b > 0),
        "every process sent bytes: {sent:?}"
    );
    // Readers fed writers in other processes: rows crossed, not only control messages. (How
    // many rows each reader reads depends on the order of split requests.)
    assert!(
        sent.iter().filter(|b| **b > 100_000).count() >= 2,
        "{sent:?}"
    );

    let embedded = tempfile::tempdir().unwrap();
    fs::write(embedded.path().join("p.toml"), pipeline(rows, None)).unwrap();
    let (code, _, err) =
        run(weir()
            .current_dir(embedded.path())
            .args(["run", "p.toml", "--progress", "quiet"]));
    assert_eq!(code, 0, "{err}");
    let embedded = committed(embedded.path());
    assert!(
        cluster == embedded,
        "the cluster's rows differ from the embedded run's"
    );
}

#[test]
fn cluster_options_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.toml"), pipeline(10, None)).unwrap();
    let (code, _, err) = run(weir().current_dir(dir.path()).args([
        "run",
        "p.toml",
        "--cluster-process",
        "2",
        "--cluster-addresses",
        "127.0.0.1:1,127.0.0.1:2",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--cluster-process 2 is not an index of the 2 --cluster-addresses (0 to 1)"),
        "{err}"
    );
    let (code, _, err) = run(weir().current_dir(dir.path()).args([
        "run",
        "p.toml",
        "--cluster-process",
        "0",
        "--cluster-addresses",
        "nonsense,127.0.0.1:2",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`nonsense`, is no host:port"), "{err}");
    let (code, _, err) = run(weir()
        .current_dir(dir.path())
        .args(["cluster", "run", "-n", "0", "p.toml"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("-n must be at least 1"), "{err}");
    // An invalid pipeline is said once and not restarted.
    fs::write(
        dir.path().join("bad.toml"),
        pipeline(10, None).replace("datagen", "datagenn"),
    )
    .unwrap();
    let (code, _, err) = run(weir()
        .current_dir(dir.path())
        .args(["cluster", "run", "-n", "2", "bad.toml"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("datagenn"), "{err}");
    assert!(!err.contains("generation 1"), "restarted: {err}");
    assert!(!dir.path().join("out").exists(), "nothing ran");
}

/// The pid of process `process` of the newest generation the supervisor announced.
fn newest_pid(log: &str, process: usize) -> Option<(u64, u32)> {
    log.lines()
        .filter_map(|l| l.strip_prefix("weir cluster run: generation "))
        .filter_map(|l| {
            let (generation, rest) = l.split_once(": process ")?;
            let (p, rest) = rest.split_once(" (pid ")?;
            let pid = rest.split(')').next()?;
            (p.parse::<usize>().ok()? == process)
                .then(|| Some((generation.parse().ok()?, pid.parse().ok()?)))?
        })
        .next_back()
}

/// Starts `weir cluster run -n 3 p.toml` in `dir` (with `envs`), its standard error (and its
/// processes') into `dir/<log>`: the supervisor and the log's path.
fn supervisor(dir: &Path, log: &str, envs: &[(String, String)]) -> (Child, std::path::PathBuf) {
    let log_path = dir.join(log);
    let child = weir()
        .current_dir(dir)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .args(["cluster", "run", "-n", "3", "p.toml", "--progress", "quiet"])
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    (child, log_path)
}

/// When a kill trial kills.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KillAt {
    /// This long after the supervisor started.
    After(Duration),
    /// As soon as a first checkpoint is complete in the local storage `dir/chk`.
    FirstCheckpoint,
}

/// Whether a checkpoint is complete in `dir/chk` (`chk-<id>/_metadata`).
fn checkpointed(dir: &Path) -> bool {
    fs::read_dir(dir.join("chk")).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().join("_metadata").exists())
    })
}

/// Runs the supervisor (3 processes, `dir/p.toml`, with `envs`), SIGKILLs process `victim`
/// once `at` says, waits for the end: its exit code and log.
pub(crate) fn kill_trial(
    dir: &Path,
    victim: usize,
    at: KillAt,
    envs: &[(String, String)],
) -> (i32, String) {
    let (mut supervisor, log_path) = supervisor(dir, "supervisor.log", envs);
    let started = Instant::now();
    let mut killed = false;
    let deadline = started + Duration::from_mins(4);
    loop {
        if let Some(status) = supervisor.try_wait().unwrap() {
            let text = fs::read_to_string(&log_path).unwrap();
            return (status.code().unwrap_or(-1), text);
        }
        assert!(
            Instant::now() < deadline,
            "the supervisor did not end: {}",
            fs::read_to_string(&log_path).unwrap()
        );
        let due = match at {
            KillAt::After(after) => started.elapsed() >= after,
            KillAt::FirstCheckpoint => checkpointed(dir),
        };
        if !killed && due {
            let text = fs::read_to_string(&log_path).unwrap();
            if let Some((_, pid)) = newest_pid(&text, victim) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                killed = true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many kill trials: `WEIR_CLUSTER_CLI_KILLS` (default 2: the master, then a worker).
fn trials() -> u64 {
    std::env::var("WEIR_CLUSTER_CLI_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

#[test]
fn a_killed_process_restarts_the_cluster_from_its_latest_checkpoint_and_loses_nothing() {
    let rows = 90_000;
    let seed: u64 = std::env::var("WEIR_CLUSTER_CLI_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    for trial in 0..trials() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("p.toml"), pipeline(rows, Some(30_000))).unwrap();
        // Process 0 (the master) first, then the others; a moment within the 3 s of input.
        let victim = (trial % 3) as usize;
        let mix = (seed ^ trial).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        let after = Duration::from_millis(700 + mix % 2_000);
        let (code, log) = kill_trial(dir.path(), victim, KillAt::After(after), &[]);
        let context =
            format!("trial {trial} (seed {seed}): process {victim} killed after {after:?}");
        assert_eq!(code, 0, "{context}\n{log}");
        let restarted =
            log.contains("restarting all 3 processes from the latest checkpoint (generation 1)");
        let rows_seen = committed(dir.path());
        assert_every_id_once(&rows_seen, rows as i64, &context);
        // A kill that came after the input ended finds no process: the run simply finished.
        assert!(
            restarted || log.matches("finished in").count() == 3,
            "{context}: neither restarted nor finished\n{log}"
        );
        let reader = BufReader::new(log.as_bytes());
        let generations = reader
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains(": process 0 (pid "))
            .count();
        eprintln!("{context}: {generations} generation(s), restarted: {restarted}");
    }
}

/// The job's savepoints under `dir/savepoints` (where a stop writes them by default).
fn savepoints(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = fs::read_dir(dir.join("savepoints"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

#[test]
fn ctrl_c_stops_with_a_savepoint_that_resumes_on_two_processes() {
    let rows = 120_000;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.toml"), pipeline(rows, Some(30_000))).unwrap();
    let (mut supervisor, log_path) = supervisor(dir.path(), "first.log", &[]);
    // Stop once a checkpoint completed (the job runs about 4 s).
    let deadline = Instant::now() + Duration::from_mins(2);
    while !checkpointed(dir.path()) {
        assert!(Instant::now() < deadline, "no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = supervisor.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = supervisor.wait().unwrap();
    let log = fs::read_to_string(&log_path).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("stopped with a savepoint"), "{log}");
    // Part files of a row format span checkpoints: the rows so far may still be in an
    // in-progress file that the savepoint holds.
    let first = committed(dir.path());
    assert!(
        (first.len() as u64) < rows,
        "stopped part way: {} rows",
        first.len()
    );
    let found = savepoints(dir.path());
    assert_eq!(found.len(), 1, "{found:?}\n{log}");

    // Resume on 2 processes: every id once over both runs.
    let savepoint = found[0].display().to_string();
    let (code, _, err) = run(weir().current_dir(dir.path()).args([
        "cluster",
        "run",
        "-n",
        "2",
        "p.toml",
        "--from-savepoint",
        &savepoint,
        "--progress",
        "quiet",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("restoring from savepoint"), "{err}");
    assert_every_id_once(&committed(dir.path()), rows as i64, "3 processes, then 2");
}

#[test]
fn a_sink_with_compaction_says_why_it_cannot_span_processes() {
    let dir = tempfile::tempdir().unwrap();
    let compacting = pipeline(1_000, None).replace(
        "format = \"csv\"\n",
        "format = \"csv\"\ncompaction.enabled = true\ncompaction.file-size = \"1mb\"\n",
    );
    fs::write(dir.path().join("p.toml"), compacting).unwrap();
    let (code, _, err) = run(weir().current_dir(dir.path()).args([
        "cluster",
        "run",
        "-n",
        "2",
        "p.toml",
        "--progress",
        "quiet",
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("compaction.enabled = false"), "{err}");
    assert!(
        !err.contains("generation 1"),
        "a job's own failure is not restarted: {err}"
    );
}

/// Whether process `pid` still runs (not a zombie).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn the_processes_of_a_supervisor_killed_with_sigkill_exit_too() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough to be running when the supervisor dies.
    fs::write(dir.path().join("p.toml"), pipeline(1_000_000, Some(20_000))).unwrap();
    let (mut supervisor, log_path) = supervisor(dir.path(), "supervisor.log", &[]);
    let deadline = Instant::now() + Duration::from_mins(1);
    let pids = loop {
        let log = fs::read_to_string(&log_path).unwrap();
        let pids: Vec<u32> = (0..3)
            .filter_map(|p| newest_pid(&log, p))
            .map(|(_, pid)| pid)
            .collect();
        if pids.len() == 3 && checkpointed(dir.path()) {
            break pids;
        }
        assert!(Instant::now() < deadline, "{log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    supervisor.kill().unwrap();
    supervisor.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|pid| alive(*pid)) {
        assert!(
            Instant::now() < deadline,
            "processes {pids:?} outlived their supervisor: {}",
            fs::read_to_string(&log_path).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("the supervisor (pid"), "{log}");
}
