//! What an operator does to a running pipeline, on the real `weir` binary: restore into a changed
//! pipeline, resume without a checkpoint, stop with Ctrl-C or SIGTERM (twice into one savepoint
//! directory, drained, cancelled), and the log lines that tell what happened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{files_under, run, weir};

/// A bounded job: `rows` sequence ids at `rate` per second into JSON part files under `out`,
/// exactly-once with 200 ms checkpoints into `chk`. `job`, `source` and `sink` name things, so
/// a test can rename them; `fields` adds schema fields after `id`.
fn pipeline(job: &str, source: &str, sink: &str, rows: u64, rate: u64, fields: &str) -> String {
    format!(
        r#"
[pipeline]
name = "{job}"

[checkpointing]
interval = "200ms"
storage = "chk"

[[sources]]
name = "{source}"
connector = "datagen"
schema = [{{ name = "id", type = "int64", nullable = false }}{fields}]
options = {{ number-of-rows = {rows}, rows-per-second = {rate}, fields.id.kind = "sequence" }}

[[sinks]]
name = "{sink}"
input = "{source}"
connector = "files"
options = {{ path = "out", format = "json" }}
"#
    )
}

/// Every `id` in the visible (committed) JSON part files under `dir`.
fn committed_ids(dir: &Path) -> Vec<i64> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut ids = Vec::new();
    for file in files_under(dir) {
        let hidden = file
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        for line in fs::read_to_string(dir.join(&file)).unwrap().lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            ids.push(value["id"].as_i64().unwrap());
        }
    }
    ids.sort_unstable();
    ids
}

fn weir_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(weir().args(args).current_dir(dir))
}

/// Runs `p.toml` in `dir` to its end, then checks every id is there once.
fn finish_first_run(dir: &Path, rows: u64) {
    let (code, _, err) = weir_in(dir, &["run", "p.toml", "--progress", "quiet"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        committed_ids(&dir.join("out")),
        (0..rows as i64).collect::<Vec<_>>()
    );
}

/// Rewrites `p.toml` in `dir` as `pipeline` and runs it with `--from-latest-checkpoint` and
/// `flags`; returns the exit code and standard error.
fn resume(dir: &Path, pipeline: &str, flags: &[&str]) -> (i32, String) {
    fs::write(dir.join("p.toml"), pipeline).unwrap();
    let mut args = vec![
        "run",
        "p.toml",
        "--progress",
        "quiet",
        "--from-latest-checkpoint",
    ];
    args.extend(flags);
    let (code, _, err) = weir_in(dir, &args);
    (code, err)
}

#[test]
fn a_restore_into_a_renamed_sink_or_source_is_refused_until_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = pipeline("orders", "numbers", "json", 300, 100_000, "");
    fs::write(dir.join("p.toml"), first).unwrap();
    finish_first_run(dir, 300);

    // The sink renamed: its state (pending files) would be lost without a word.
    let renamed_sink = pipeline("orders", "numbers", "json-out", 300, 100_000, "");
    let (code, err) = resume(dir, &renamed_sink, &[]);
    assert_eq!(code, 2, "refused, as invalid input: {err}");
    assert!(
        err.contains("state of `json` matches no operator of this job (closest: `json-out`"),
        "{err}"
    );
    assert!(err.contains("--allow-non-restored-state"), "{err}");
    assert!(!err.contains("finished in"), "nothing ran: {err}");

    // The source renamed: it would re-read everything (duplicates).
    let renamed_source = pipeline("orders", "numbers-v2", "json", 300, 100_000, "");
    let (code, err) = resume(dir, &renamed_source, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("state of `numbers` matches no operator of this job (closest: `numbers-v2`"),
        "{err}"
    );
    assert_eq!(
        committed_ids(&dir.join("out")).len(),
        300,
        "nothing was re-read"
    );

    // Allowing unmatched state does not let the renamed source re-read its input into the sink
    // whose input had ended (FLIP-147): those rows would never be written.
    let (code, err) = resume(dir, &renamed_source, &["--allow-non-restored-state"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("source `numbers-v2` is new, but it is upstream of `json`"),
        "{err}"
    );

    // Allowed explicitly for the renamed sink: the unmatched state is dropped, with a warning
    // on standard error.
    let (code, err) = resume(dir, &renamed_sink, &["--allow-non-restored-state"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("its state is dropped (non-restored state allowed)"),
        "{err}"
    );
    assert_eq!(
        committed_ids(&dir.join("out")).len(),
        300,
        "nothing re-read"
    );
}

#[test]
fn a_snapshot_of_another_job_and_a_changed_source_schema_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let note = r#", { name = "note", type = "string" }"#;
    fs::write(
        dir.join("p.toml"),
        pipeline("orders", "numbers", "json", 200, 100_000, note),
    )
    .unwrap();
    finish_first_run(dir, 200);

    let renamed_job = pipeline("payments", "numbers", "json", 200, 100_000, note);
    let (code, err) = resume(dir, &renamed_job, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("it was taken by job `orders`, not by this job `payments`"),
        "{err}"
    );
    let (code, err) = resume(dir, &renamed_job, &["--allow-other-job"]);
    assert_eq!(code, 0, "{err}");

    // The job is `payments` from now on. A field changed its type: refused even with every
    // allowance.
    let changed = r#", { name = "note", type = "int64" }"#;
    let (code, err) = resume(
        dir,
        &pipeline("payments", "numbers", "json", 200, 100_000, changed),
        &["--allow-other-job", "--allow-non-restored-state"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "source `numbers` no longer has these fields of the snapshot's schema: note string \
             (it has instead: note int64)"
        ),
        "{err}"
    );
    // A field added is fine.
    let added = r#", { name = "note", type = "string" }, { name = "more", type = "float64" }"#;
    let (code, err) = resume(
        dir,
        &pipeline("payments", "numbers", "json", 200, 100_000, added),
        &[],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_restore_adding_a_source_into_a_sink_that_had_finished_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = pipeline("orders", "numbers", "json", 200, 100_000, "");
    fs::write(dir.join("p.toml"), &first).unwrap();
    finish_first_run(dir, 200);

    // A second source unioned into the sink, whose input had ended (FLIP-147): its rows would
    // never be written, so the restore is refused, whatever is allowed.
    let more = r#"
[[sources]]
name = "more"
connector = "datagen"
schema = [{ name = "id", type = "int64", nullable = false }]
options = { number-of-rows = 50, fields.id.kind = "sequence" }
"#;
    let widened = first.replace(r#"input = "numbers""#, r#"input = ["numbers", "more"]"#) + more;
    let (code, err) = resume(dir, &widened, &["--allow-non-restored-state"]);
    assert_eq!(code, 2, "refused, as invalid input: {err}");
    assert!(
        err.contains(
            "source `more` is new, but it is upstream of `json`, which had finished in the \
             snapshot"
        ),
        "{err}"
    );
    assert!(err.contains("takes no more input"), "{err}");
    assert_eq!(
        committed_ids(&dir.join("out")),
        (0..200).collect::<Vec<_>>(),
        "nothing ran"
    );
}

#[test]
fn from_latest_checkpoint_without_a_checkpoint_fails_and_says_where_it_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = pipeline("orders", "numbers", "json", 100, 100_000, "");
    let (code, err) = resume(dir, &first, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("there is no checkpoint to restore from in chk"),
        "{err}"
    );
    assert!(committed_ids(&dir.join("out")).is_empty(), "nothing ran");
}

#[test]
fn the_start_says_what_was_restored_and_log_levels_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = pipeline("orders", "numbers", "json", 100, 100_000, "");
    fs::write(dir.join("p.toml"), &first).unwrap();
    finish_first_run(dir, 100);
    let (code, err) = resume(dir, &first, &[]);
    assert_eq!(code, 0, "{err}");
    let restoring = err
        .find("restoring from checkpoint")
        .unwrap_or_else(|| panic!("no restore line in:\n{err}"));
    let summary = err.find("weir: job `orders`").unwrap();
    assert!(restoring < summary, "said at the start:\n{err}");

    let (code, err) = resume(dir, &first, &["--log-level", "warn"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("restoring from checkpoint"), "{err}");

    let (code, _, err) = run(weir()
        .args([
            "run",
            "p.toml",
            "--progress",
            "quiet",
            "--from-latest-checkpoint",
        ])
        .env("RUST_LOG", "error")
        .current_dir(dir));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("restoring from checkpoint"), "{err}");

    let (code, _, err) = weir_in(dir, &["--log-level", "verbose", "validate", "p.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--log-level"), "{err}");
}

/// A slow job under `dir`, started; returns once a checkpoint completed.
fn start_slow(dir: &Path, extra: &[&str]) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut child = weir()
        .args([
            "run",
            "p.toml",
            "--progress",
            "log",
            "--log-interval",
            "0.1",
        ])
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_mins(1);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "weir ended before a checkpoint"
        );
        if line.contains("checkpoints ") && !line.contains("checkpoints 0 ") {
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint within 60 s");
    }
    (child, stderr)
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child and returns its exit code and the rest of its standard error.
fn finish(mut child: Child, mut stderr: BufReader<std::process::ChildStderr>) -> (i32, String) {
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), rest)
}

fn savepoint_of(err: &str) -> String {
    err.lines()
        .find_map(|l| l.strip_prefix("  savepoint    "))
        .unwrap_or_else(|| panic!("no savepoint in:\n{err}"))
        .to_owned()
}

#[cfg(unix)]
#[test]
fn every_stop_gets_its_own_savepoint_directory_and_sigterm_stops_like_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rows = 50_000;
    fs::write(
        dir.join("p.toml"),
        pipeline("orders", "numbers", "json", rows, 2_000, ""),
    )
    .unwrap();
    let sp_dir = ["--savepoint-dir", "sp"];

    let (child, stderr) = start_slow(dir, &sp_dir);
    signal(&child, "-INT");
    let (code, err) = finish(child, stderr);
    assert_eq!(code, 0, "{err}");
    let first = savepoint_of(&err);
    assert!(
        err.contains("resume with  weir run p.toml --from-savepoint"),
        "{err}"
    );

    // Into the same savepoint directory, by SIGTERM this time.
    let mut args = sp_dir.to_vec();
    args.extend(["--from-savepoint", &first]);
    let (child, stderr) = start_slow(dir, &args);
    signal(&child, "-TERM");
    let (code, err) = finish(child, stderr);
    assert_eq!(code, 0, "SIGTERM stops with a savepoint: {err}");
    assert!(err.contains("SIGTERM: stopping with a savepoint"), "{err}");
    let second = savepoint_of(&err);
    assert_ne!(first, second, "a new directory for each savepoint");
    assert!(
        Path::new(&dir.join(&second)).join("_metadata").is_file()
            || Path::new(&second).join("_metadata").is_file()
    );
    let ids = committed_ids(&dir.join("out"));
    assert!((ids.len() as u64) < rows, "stopped mid-way");

    // The rest, from the second savepoint: every id exactly once in the end.
    let (code, _, err) = weir_in(
        dir,
        &[
            "run",
            "p.toml",
            "--progress",
            "quiet",
            "--from-savepoint",
            &second,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let ids = committed_ids(&dir.join("out"));
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "no duplicates");
    assert_eq!(unique, (0..rows as i64).collect(), "nothing lost");
}

#[cfg(unix)]
#[test]
fn a_drained_stop_says_the_savepoint_reads_no_more_and_sigterm_can_cancel() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(
        dir.join("p.toml"),
        pipeline("orders", "numbers", "json", 50_000, 2_000, ""),
    )
    .unwrap();
    let (child, stderr) = start_slow(dir, &["--drain"]);
    signal(&child, "-INT");
    let (code, err) = finish(child, stderr);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stopped after draining"), "{err}");
    assert!(err.contains("reads no more of it"), "{err}");
    assert!(
        !err.contains("resume with"),
        "no resume hint after a drain: {err}"
    );

    let (child, stderr) = start_slow(dir, &["--on-sigterm", "cancel"]);
    signal(&child, "-TERM");
    let (code, err) = finish(child, stderr);
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("cancelling without a savepoint"), "{err}");
    assert!(!err.contains("  savepoint    "), "{err}");
}

#[test]
fn failures_are_logged_when_they_happen_and_listed_with_time_task_and_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir(dir.join("in")).unwrap();
    fs::write(dir.join("in/a.json"), "{\"id\": 1}\nnot json\n").unwrap();
    fs::write(
        dir.join("p.toml"),
        r#"
[restart]
strategy = "fixed-delay"
attempts = 1
delay = "10ms"

[[sources]]
name = "rows"
connector = "files"
format = "json"
schema = [{ name = "id", type = "int64" }]
options = { path = "in" }

[[sinks]]
name = "out"
input = "rows"
connector = "blackhole"
"#,
    )
    .unwrap();
    let (code, _, err) = weir_in(dir, &["run", "p.toml", "--progress", "quiet"]);
    assert_eq!(code, 1, "{err}");
    let warned = err
        .find("job attempt failed: rows (subtask 0): malformed record")
        .unwrap_or_else(|| panic!("no warning when the attempt failed:\n{err}"));
    let summary = err.find("weir: job `p` failed").unwrap();
    assert!(warned < summary, "{err}");
    for attempt in [1, 2] {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("  failure      attempt {attempt} at 20")))
            .unwrap_or_else(|| panic!("no failure line for attempt {attempt}:\n{err}"));
        assert!(
            line.contains("Z in rows (subtask 0): ") && line.contains("malformed record"),
            "{line}"
        );
    }
}
