//! One Weir job across three real OS processes on loopback (cluster mode): the test binary
//! starts itself again as the cluster's processes (the test `job_process`, which does nothing
//! unless `WEIR_CLUSTER_TEST` is set), each running the same job with its own process index.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[path = "jobs/align.rs"]
mod align;
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

#[test]
fn a_task_failure_in_another_process_restarts_the_tasks_of_every_process() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out");
    let checkpoints = dir.path().join("checkpoints");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let processes = start_cluster_with(&addresses(3), 0, &out, &checkpoints, false, Some(1))?;
    let ended = wait_all(processes, Duration::from_secs(120))?;
    for (p, e) in ended.iter().enumerate() {
        assert_eq!(e.code, Some(0), "process {p}: {}\n{:?}", e.stderr, e.lines);
        // Every process ran both attempts of the job.
        assert!(
            e.lines.iter().any(|l| l.starts_with("attempts 2 ")),
            "process {p}: {:?}",
            e.lines
        );
    }
    check_exactly_once(&job::committed(&out)?)
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

/// `(wall-clock ms, highest fast event time, highest slow event time)` samples of a process.
fn samples(e: &Ended) -> Vec<(u128, i64, i64)> {
    e.lines
        .iter()
        .find_map(|l| l.strip_prefix("samples "))
        .map(|all| {
            all.split(',')
                .filter_map(|s| {
                    let mut parts = s.split(':');
                    Some((
                        parts.next()?.parse().ok()?,
                        parts.next()?.parse().ok()?,
                        parts.next()?.parse().ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The largest `fast - slow` event time over both processes while the slow source was going,
/// from every process's samples (one clock: the same machine).
fn drift(ended: &[Ended]) -> i64 {
    let all: Vec<Vec<(u128, i64, i64)>> = ended.iter().map(samples).collect();
    let mut times: Vec<u128> = all.iter().flatten().map(|s| s.0).collect();
    times.sort_unstable();
    let mut max = i64::MIN;
    for t in times {
        let at = |pick: fn(&(u128, i64, i64)) -> i64| {
            all.iter()
                .flatten()
                .filter(|s| s.0 <= t)
                .map(pick)
                .max()
                .unwrap_or(-1)
        };
        let (fast, slow) = (at(|s| s.1), at(|s| s.2));
        if slow >= 0 && slow < align::SLOW_N as i64 - 1 && fast >= 0 {
            max = max.max(fast - slow);
        }
    }
    max
}

/// Runs the alignment job on 2 processes; the drift and how long process 1's fast reader was
/// held back.
fn aligned_run(aligned: bool) -> Result<(i64, u64), String> {
    let addresses = addresses(2);
    let env = [(align::ALIGN, if aligned { "on" } else { "off" }.to_owned())];
    let processes = (0..2)
        .map(|p| support::start("job_process", "align", p, &addresses, 0, &env))
        .collect::<Result<Vec<_>, _>>()?;
    let ended = wait_all(processes, Duration::from_secs(60))?;
    for (p, e) in ended.iter().enumerate() {
        assert_eq!(e.code, Some(0), "process {p}: {}", e.stderr);
    }
    let paused = ended[1]
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("fast paused "))
        .and_then(|l| l.trim_end_matches(" ms").parse().ok())
        .ok_or_else(|| format!("process 1: {:?}", ended[1].lines.last()))?;
    Ok((drift(&ended), paused))
}

#[test]
fn two_aligned_sources_on_different_processes_stay_within_the_drift_bound() -> Result<(), String> {
    let (aligned, paused) = aligned_run(true)?;
    let (free, _) = aligned_run(false)?;
    // One update interval of a fast reader's progress, plus slack for batches, watermark
    // intervals, control messages and sampling.
    let bound =
        align::MAX_DRIFT_MS + (align::FAST_RATE * align::UPDATE_MS as f64 / 1000.0) as i64 + 250;
    println!("drift: aligned {aligned} ms (bound {bound}), without alignment {free} ms; the fast reader in process 1 was held back {paused} ms");
    assert!(
        aligned <= bound,
        "aligned drift {aligned} ms exceeds {bound}"
    );
    assert!(paused > 0, "process 1's fast reader was never held back");
    assert!(
        free > 3 * bound,
        "without alignment the fast source runs ahead: {free}"
    );
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

/// A supervisor of the job on `addresses`; `kill_in_generation_0` is killed (SIGKILL) 300 ms
/// after the first checkpoint of generation 0.
fn supervise(
    addresses: Vec<String>,
    out: &Path,
    checkpoints: &Path,
    env: &[(&'static str, String)],
    kill_in_generation_0: Option<usize>,
) -> Result<weir_cluster::Supervised, weir_cluster::SupervisorError> {
    let exe = std::env::current_exe().map_err(|source| weir_cluster::SupervisorError::Spawn {
        process: 0,
        generation: 0,
        source,
    })?;
    let pids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let killer = kill_in_generation_0.map(|victim| {
        let pids = std::sync::Arc::clone(&pids);
        let checkpoints = checkpoints.to_path_buf();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !has_checkpoint(&checkpoints) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(300));
            let pid = pids.lock().ok().and_then(
                |p: std::sync::MutexGuard<'_, Vec<(u64, usize, u32)>>| {
                    p.iter()
                        .find(|(g, p, _)| *g == 0 && *p == victim)
                        .map(|e| e.2)
                },
            );
            if let Some(pid) = pid {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        })
    });
    let supervised = weir_cluster::Supervisor::new(addresses)
        .max_restarts(2)
        .grace(Duration::from_secs(10))
        .run(|spec| {
            // From generation 1 on: the latest checkpoint, if one completed.
            let restore = if spec.generation > 0 && has_checkpoint(checkpoints) {
                "latest"
            } else {
                ""
            };
            let child = std::process::Command::new(&exe)
                .args(["job_process", "--exact", "--nocapture", "--test-threads=1"])
                .env(support::SCENARIO, "job")
                .env(support::PROCESS, spec.process.to_string())
                .env(support::ADDRESSES, spec.addresses.join(","))
                .env(support::GENERATION, spec.generation.to_string())
                .env(job::OUT, out)
                .env(job::CHECKPOINTS, checkpoints)
                .env(job::RESTORE, restore)
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()?;
            if let Ok(mut pids) = pids.lock() {
                pids.push((spec.generation, spec.process, child.id()));
            }
            Ok(child)
        });
    if let Some(killer) = killer {
        let _ = killer.join();
    }
    supervised
}

#[test]
fn the_supervisor_restarts_every_process_with_a_new_generation_when_one_dies() -> Result<(), String>
{
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out");
    let checkpoints = dir.path().join("checkpoints");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let supervised =
        supervise(addresses(3), &out, &checkpoints, &[], Some(1)).map_err(|e| e.to_string())?;
    println!("{supervised:?}");
    assert_eq!(supervised.generations, 2, "{supervised:?}");
    assert!(
        supervised.restarts[0].contains("generation 0: process 1 was killed"),
        "{supervised:?}"
    );
    check_exactly_once(&job::committed(&out)?)
}

#[test]
fn the_supervisor_does_not_restart_a_job_that_failed_for_good() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let no_codec = vec![(job::NO_CODEC, "1".to_owned())];
    let checkpoints = dir.path().join("checkpoints");
    match supervise(addresses(2), &out, &checkpoints, &no_codec, None) {
        Err(e @ weir_cluster::SupervisorError::Failed { generation: 0, .. }) => {
            assert!(e.to_string().contains("does not restart"), "{e}");
            Ok(())
        }
        other => Err(format!("expected a failure for good, got {other:?}")),
    }
}

/// Whether a completed checkpoint is in `checkpoints` (`chk-<id>/_metadata`).
fn has_checkpoint(checkpoints: &Path) -> bool {
    std::fs::read_dir(checkpoints).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.path().join("_metadata").exists())
    })
}

/// A small deterministic generator (xorshift), so a failing trial can be replayed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// One trial: kill process `victim` `delay` after the first checkpoint completed, expect the
/// others to exit with a clear error, restart all three from the latest checkpoint (a new
/// generation) and check that every number is committed exactly once.
fn kill_trial(trial: u64, victim: usize, delay: Duration) -> Result<String, String> {
    kill_and_restart(trial, (3, 3), victim, delay, Vec::new())
}

/// Like [`kill_trial`], on `before` processes, restarting on `after` processes.
fn kill_and_restart(
    trial: u64,
    (before, after): (usize, usize),
    victim: usize,
    delay: Duration,
    env: Vec<(&str, String)>,
) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out");
    let checkpoints = dir.path().join("checkpoints");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let what = format!(
        "trial {trial} (kill process {victim} of {before} {delay:?} after the first checkpoint, \
         restart on {after})"
    );
    let first = addresses(before);
    let mut processes = start_cluster_env(&first, 0, &out, &checkpoints, "", env.clone())?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !has_checkpoint(&checkpoints) {
        if std::time::Instant::now() > deadline {
            for p in &mut processes {
                let _ = p.child.kill();
            }
            return Err(format!("{what}: no checkpoint within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(delay);
    let _ = processes[victim].child.kill();
    let killed = std::time::Instant::now();
    let ended = wait_all(processes, Duration::from_secs(60))?;
    // How long the others took to notice and exit (20 ms polling).
    let stopped = killed.elapsed();
    let survivor = ended
        .iter()
        .enumerate()
        .filter(|(p, _)| *p != victim)
        .find_map(|(_, e)| e.stderr.lines().find(|l| l.starts_with("WEIR: error")))
        .unwrap_or("every other process had finished")
        .to_owned();
    let survivor = format!("all exited {stopped:?} after the kill; {survivor}");
    for (p, e) in ended.iter().enumerate().filter(|(p, _)| *p != victim) {
        assert!(
            !e.stderr.contains("panicked"),
            "{what}: process {p} panicked: {}",
            e.stderr
        );
        match e.code {
            // It had finished before the kill.
            Some(0) => {}
            // The cluster broke: restart every process (weir_cluster::exit_code).
            Some(weir_cluster::EXIT_RESTART) => assert!(
                e.stderr
                    .contains("WEIR: error: the job failed: the cluster failed: ")
                    && e.stderr.contains("restart every process"),
                "{what}: process {p}: {}",
                e.stderr
            ),
            other => {
                return Err(format!(
                    "{what}: process {p} exited with {other:?}: {}",
                    e.stderr
                ))
            }
        }
    }
    // The same addresses when the process count stays (what a supervisor does: the dead
    // processes' ports are free again), new ones otherwise.
    let second = if after == before {
        first
    } else {
        addresses(after)
    };
    let restarted = start_cluster_env(&second, 1, &out, &checkpoints, "latest", env)?;
    let ended = wait_all(restarted, Duration::from_secs(120))?;
    for (p, e) in ended.iter().enumerate() {
        assert_eq!(
            e.code,
            Some(0),
            "{what}: restarted process {p}: {}\n{:?}",
            e.stderr,
            e.lines
        );
    }
    check_exactly_once(&job::committed(&out)?).map_err(|e| format!("{what}: {e}"))?;
    Ok(survivor)
}

#[test]
fn a_killed_job_restores_its_latest_checkpoint_on_another_number_of_processes() -> Result<(), String>
{
    // 3 -> 2: the subtasks of process 2 move to processes 0 and 1 with their state.
    kill_and_restart(0, (3, 2), 2, Duration::from_millis(300), Vec::new())?;
    // 2 -> 3, killing the master.
    kill_and_restart(1, (2, 3), 0, Duration::from_millis(300), Vec::new())?;
    Ok(())
}

#[test]
fn with_unaligned_checkpoints_a_killed_job_restores_the_records_in_flight_between_processes(
) -> Result<(), String> {
    for (trial, victim) in [(0, 1), (1, 0), (2, 2)] {
        let unaligned = vec![(job::UNALIGNED, "1".to_owned())];
        kill_and_restart(trial, (3, 3), victim, Duration::from_millis(700), unaligned)?;
    }
    Ok(())
}

/// Trials of [`kill_trial`]: `WEIR_CLUSTER_KILL_TRIALS` of them (default 20), each killing a
/// process chosen at random (the master included) at a random moment; the seed is
/// `WEIR_CLUSTER_KILL_SEED` (default: the time).
#[test]
fn the_job_survives_sigkill_of_any_process_and_a_restart_of_all_from_the_latest_checkpoint(
) -> Result<(), String> {
    let trials: u64 = std::env::var("WEIR_CLUSTER_KILL_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("WEIR_CLUSTER_KILL_SEED")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    println!("kill trials: {trials}, seed {seed} (WEIR_CLUSTER_KILL_SEED replays them)");
    let mut rng = seed;
    let mut victims = [0_u32; 3];
    for trial in 0..trials {
        let victim = (next(&mut rng) % 3) as usize;
        let delay = Duration::from_millis(next(&mut rng) % 2_500);
        victims[victim] += 1;
        let started = std::time::Instant::now();
        let survivor = kill_trial(trial, victim, delay)?;
        println!(
            "trial {trial}: killed process {victim} {delay:?} after the first checkpoint; \
             restarted, exactly once ({:?}); {survivor}",
            started.elapsed()
        );
    }
    println!("victims per process: {victims:?}");
    Ok(())
}
