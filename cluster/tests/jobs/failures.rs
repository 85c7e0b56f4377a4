//! Failures of a job across processes: SIGKILL of any process and a restart of all from the
//! latest checkpoint (by hand and by the supervisor), restores on another number of processes,
//! a task failure in another process.

use std::path::Path;
use std::time::Duration;

use super::support::{self, addresses, wait_all};
use super::{check_exactly_once, job, start_cluster_env, start_cluster_with};

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
