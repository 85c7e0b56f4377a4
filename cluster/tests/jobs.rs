//! One Weir job across three real OS processes on loopback (cluster mode): the test binary
//! starts itself again as the cluster's processes (the test `job_process`, which does nothing
//! unless `WEIR_CLUSTER_TEST` is set), each running the same job with its own process index.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[path = "jobs/job.rs"]
mod job;
mod support;

use support::{addresses, wait_all, Ended, Process, SCENARIO};

/// The entry point of the processes the tests start (a no-op in a normal test run).
#[test]
fn job_process() {
    if std::env::var(SCENARIO).is_err() {
        return;
    }
    std::process::exit(job::run());
}

/// Starts the cluster's `n` processes of generation `generation`.
fn start_cluster(
    n: usize,
    generation: u64,
    out: &Path,
    checkpoints: &Path,
    restore: bool,
) -> Result<Vec<Process>, String> {
    let addresses = addresses(n);
    let env = [
        (job::OUT, out.to_string_lossy().into_owned()),
        (job::CHECKPOINTS, checkpoints.to_string_lossy().into_owned()),
        (job::RESTORE, if restore { "latest" } else { "" }.to_owned()),
    ];
    (0..n)
        .map(|p| support::start("job_process", "job", p, &addresses, generation, &env))
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
    let job = job::job(out, checkpoints, weir_runtime::RestoreFrom::Nothing)?;
    let result = runtime.block_on(job.execute());
    if !result.is_finished() {
        return Err(format!("the embedded run ended {:?}", result.status));
    }
    job::committed(out)
}

#[test]
fn three_processes_run_one_exactly_once_job_whose_records_cross_processes() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out");
    let checkpoints = dir.path().join("checkpoints");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let processes = start_cluster(3, 0, &out, &checkpoints, false)?;
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
    println!("3 processes: {took:?}, {checkpoints_taken} checkpoints");
    Ok(())
}
