//! One Weir job across three real OS processes on loopback (cluster mode): the test binary
//! starts itself again as the cluster's processes (the test `job_process`, which does nothing
//! unless `WEIR_CLUSTER_TEST` is set), each running the same job with its own process index.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[path = "jobs/align.rs"]
mod align;
#[path = "jobs/alignment_tests.rs"]
mod alignment_tests;
#[path = "jobs/failures.rs"]
mod failures;
#[path = "jobs/job.rs"]
mod job;
mod support;

use support::{addresses, wait_all, Ended, Process, SCENARIO};

/// The entry point of the processes the tests start (a no-op in a normal test run).
#[test]
fn job_process() {
    match std::env::var(SCENARIO).as_deref() {
        Err(_) => {}
        Ok("align") => std::process::exit(align::run()),
        Ok(_) => std::process::exit(job::run()),
    }
}

/// Starts a cluster of generation `generation`, one process per address, restoring the latest
/// checkpoint or nothing, with a sink writer of process `fail_in` failing once.
fn start_cluster_with(
    addresses: &[String],
    generation: u64,
    out: &Path,
    checkpoints: &Path,
    restore: bool,
    fail_in: Option<usize>,
) -> Result<Vec<Process>, String> {
    let restore = if restore { "latest" } else { "" };
    let mut extra = Vec::new();
    if let Some(p) = fail_in {
        extra.push((job::FAIL_IN, p.to_string()));
    }
    start_cluster_env(addresses, generation, out, checkpoints, restore, extra)
}

/// Starts a cluster of generation `generation`, one process per address, with a restore
/// (`latest`, `savepoint:<path>` or nothing) and more environment.
fn start_cluster_env(
    addresses: &[String],
    generation: u64,
    out: &Path,
    checkpoints: &Path,
    restore: &str,
    extra: Vec<(&str, String)>,
) -> Result<Vec<Process>, String> {
    let mut env = vec![
        (job::OUT, out.to_string_lossy().into_owned()),
        (job::CHECKPOINTS, checkpoints.to_string_lossy().into_owned()),
        (job::RESTORE, restore.to_owned()),
    ];
    env.extend(extra);
    (0..addresses.len())
        .map(|p| support::start("job_process", "job", p, addresses, generation, &env))
        .collect()
}

/// `(bytes out, bytes in)` from a process's `crossed` line.
fn crossed(e: &Ended) -> Option<(u64, u64)> {
    let line = e.lines.iter().find(|l| l.starts_with("crossed "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    // crossed F frames B bytes out, F frames B bytes in
    Some((words.get(3)?.parse().ok()?, words.get(8)?.parse().ok()?))
}

/// Every number of the job exactly once.
fn check_exactly_once(counts: &BTreeMap<u64, usize>) -> Result<(), String> {
    let missing: Vec<u64> = (0..job::COUNT)
        .filter(|n| !counts.contains_key(n))
        .take(10)
        .collect();
    let duplicated: Vec<(u64, usize)> = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, c)| (*n, *c))
        .take(10)
        .collect();
    let unexpected: Vec<u64> = counts
        .keys()
        .filter(|n| **n >= job::COUNT)
        .copied()
        .collect();
    if missing.is_empty() && duplicated.is_empty() && unexpected.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} numbers committed of {}; missing (first 10) {missing:?}, duplicated {duplicated:?}, \
             unexpected {unexpected:?}",
            counts.len(),
            job::COUNT
        ))
    }
}

/// The same job in one process (no cluster), for comparison.
fn embedded_run(out: &Path, checkpoints: &Path) -> Result<BTreeMap<u64, usize>, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let job = job::job(out, checkpoints, weir_runtime::RestoreFrom::Nothing, false)?;
    let result = runtime.block_on(job.execute());
    if !result.is_finished() {
        return Err(format!("the embedded run ended {:?}", result.status));
    }
    job::committed(out)
}

#[test]
fn three_processes_run_one_exactly_once_job_whose_records_cross_processes() -> Result<(), String> {
    three_processes(false)
}

#[test]
fn three_processes_with_unaligned_checkpoints() -> Result<(), String> {
    three_processes(true)
}

/// The job on 3 processes, checked against an embedded run.
fn three_processes(unaligned: bool) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out");
    let checkpoints = dir.path().join("checkpoints");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let extra = if unaligned {
        vec![(job::UNALIGNED, "1".to_owned())]
    } else {
        Vec::new()
    };
    let processes = start_cluster_env(&addresses(3), 0, &out, &checkpoints, "", extra)?;
    let ended = wait_all(processes, Duration::from_secs(120))?;
    let took = started.elapsed();
    for (p, e) in ended.iter().enumerate() {
        assert_eq!(e.code, Some(0), "process {p}: {}\n{:?}", e.stderr, e.lines);
        assert!(e.lines.iter().any(|l| l == "finished"), "{:?}", e.lines);
        let (out_bytes, in_bytes) =
            crossed(e).ok_or_else(|| format!("process {p}: no byte counts in {:?}", e.lines))?;
        // Each reader emits a third of the numbers and key_by sends about two thirds of those
        // to the other processes: at least 8 bytes each, far more than control messages.
        assert!(
            out_bytes > job::COUNT && in_bytes > job::COUNT,
            "process {p}: {out_bytes} bytes out, {in_bytes} in"
        );
        println!("process {p}: {:?}", e.lines);
    }
    let counts = job::committed(&out)?;
    check_exactly_once(&counts)?;
    // Process 0's result counts over every process (the others sent it their metrics); each
    // other process counts its own writer.
    let sunk = |e: &Ended| {
        e.lines
            .iter()
            .find_map(|l| l.strip_prefix("sink records in "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(sunk(&ended[0]), job::COUNT, "{:?}", ended[0].lines);
    // Process 0's monitor showed every reader and writer subtask reading records, the ones in
    // other processes included (their processes report what they measure).
    let monitored = ended[0]
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("monitor saw records in "))
        .unwrap_or_default();
    for task in ["numbers", "files"] {
        for subtask in 0..3 {
            assert!(
                monitored
                    .split(' ')
                    .any(|t| t == format!("{task}#{subtask}")),
                "{task} subtask {subtask} not in {monitored}"
            );
        }
    }
    for e in &ended[1..] {
        assert!(sunk(e) > 0 && sunk(e) < job::COUNT, "{:?}", e.lines);
    }
    let checkpoints_taken = ended[0]
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("attempts 1 checkpoints "))
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| format!("process 0: {:?}", ended[0].lines))?;
    assert!(checkpoints_taken >= 2, "{checkpoints_taken} checkpoints");
    // The same job in one process commits the same output.
    let embedded_out = dir.path().join("embedded");
    std::fs::create_dir_all(&embedded_out).map_err(|e| e.to_string())?;
    let embedded = embedded_run(&embedded_out, &dir.path().join("embedded-checkpoints"))?;
    assert_eq!(embedded, counts, "the embedded run's output differs");
    if unaligned {
        // The barriers overtook records: snapshots of subtasks that read channels (from other
        // processes too) were unaligned.
        let snapshots = ended[0]
            .lines
            .iter()
            .find_map(|l| l.strip_prefix("unaligned snapshots "))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        assert!(snapshots > 0, "{:?}", ended[0].lines);
    }
    println!("3 processes (unaligned: {unaligned}): {took:?}, {checkpoints_taken} checkpoints");
    Ok(())
}

/// Stops a job on `before` processes with a savepoint, then runs it from the savepoint on
/// `after` processes to its end.
fn stop_and_resume(before: usize, after: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out");
    let checkpoints = dir.path().join("checkpoints");
    let savepoints = dir.path().join("savepoints");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let stop = vec![(job::STOP_INTO, savepoints.to_string_lossy().into_owned())];
    let processes = start_cluster_env(&addresses(before), 0, &out, &checkpoints, "", stop)?;
    let ended = wait_all(processes, Duration::from_secs(120))?;
    for (p, e) in ended.iter().enumerate() {
        assert_eq!(e.code, Some(0), "process {p}: {}\n{:?}", e.stderr, e.lines);
    }
    let savepoint = ended[0]
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("savepoint "))
        .ok_or_else(|| format!("process 0 took no savepoint: {:?}", ended[0].lines))?
        .to_owned();
    // Every process learned that the job stopped with the savepoint.
    for (p, e) in ended.iter().enumerate() {
        assert!(
            e.lines
                .contains(&format!("stopped with savepoint {savepoint}")),
            "process {p}: {:?}",
            e.lines
        );
    }
    let stopped = job::committed(&out)?.len();
    assert!(
        (stopped as u64) < job::COUNT,
        "the job finished before it stopped"
    );
    let restore = format!("savepoint:{savepoint}");
    let processes = start_cluster_env(
        &addresses(after),
        1,
        &out,
        &checkpoints,
        &restore,
        Vec::new(),
    )?;
    let ended = wait_all(processes, Duration::from_secs(120))?;
    for (p, e) in ended.iter().enumerate() {
        assert_eq!(e.code, Some(0), "process {p}: {}\n{:?}", e.stderr, e.lines);
        assert!(e.lines.iter().any(|l| l == "finished"), "{:?}", e.lines);
    }
    // The master restored the savepoint (a fresh start would also commit every number once).
    assert!(
        ended[0]
            .lines
            .iter()
            .any(|l| l.starts_with("restored from ")),
        "{:?}",
        ended[0].lines
    );
    println!("{before} -> {after} processes: {stopped} numbers committed before the stop");
    check_exactly_once(&job::committed(&out)?)
}

#[test]
fn a_job_stopped_with_a_savepoint_resumes_on_fewer_or_more_processes() -> Result<(), String> {
    stop_and_resume(3, 2)?;
    stop_and_resume(2, 3)
}

#[test]
fn a_stream_without_codec_between_processes_fails_the_job_naming_the_edge() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let no_codec = vec![(job::NO_CODEC, "1".to_owned())];
    let processes = start_cluster_env(
        &addresses(2),
        0,
        &out,
        &dir.path().join("checkpoints"),
        "",
        no_codec,
    )?;
    let ended = wait_all(processes, Duration::from_secs(60))?;
    for (p, e) in ended.iter().enumerate() {
        assert_eq!(e.code, Some(1), "process {p}: {:?}", e.lines);
        assert!(
            e.stderr
                .contains("edge 0 (numbers (exchange) -> numbers (writer))")
                && e.stderr
                    .contains("crosses processes, but its stream has no record codec")
                && e.stderr.contains("DataStream::channel_state_serializer"),
            "process {p}: {}",
            e.stderr
        );
        assert!(!e.stderr.contains("panicked"), "process {p}: {}", e.stderr);
        println!("process {p}: {}", e.stderr.trim());
    }
    Ok(())
}

#[test]
fn a_drain_stop_ends_the_readers_of_every_process_and_commits_what_they_read() -> Result<(), String>
{
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let stop = vec![
        (
            job::STOP_INTO,
            dir.path().join("savepoints").to_string_lossy().into_owned(),
        ),
        (job::DRAIN, "1".to_owned()),
    ];
    let processes = start_cluster_env(
        &addresses(3),
        0,
        &out,
        &dir.path().join("checkpoints"),
        "",
        stop,
    )?;
    let ended = wait_all(processes, Duration::from_secs(120))?;
    for (p, e) in ended.iter().enumerate() {
        assert_eq!(e.code, Some(0), "process {p}: {}\n{:?}", e.stderr, e.lines);
        assert!(
            e.lines
                .iter()
                .any(|l| l.starts_with("stopped with savepoint ")),
            "process {p}: {:?}",
            e.lines
        );
    }
    // The final savepoint committed everything the readers had emitted, each number once,
    // and the drain came before the input's end.
    let counts = job::committed(&out)?;
    let emitted = ended[0]
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("sink records in "))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    assert!(counts.values().all(|c| *c == 1), "a number committed twice");
    assert_eq!(counts.len(), emitted, "committed vs written by the sinks");
    assert!(emitted > 0 && (emitted as u64) < job::COUNT, "{emitted}");
    Ok(())
}
