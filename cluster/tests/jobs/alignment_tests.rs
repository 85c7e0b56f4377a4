//! Watermark alignment across processes: the test, on the job of `align.rs`.

use std::time::Duration;

use super::align;
use super::support::{self, addresses, wait_all, Ended};

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
