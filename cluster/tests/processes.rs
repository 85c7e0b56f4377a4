//! Real OS processes on loopback, exchanging Weir channels through timely: the test binary
//! starts itself again as the cluster's processes (the test `cluster_process`, which does
//! nothing unless `WEIR_CLUSTER_TEST` names a scenario).

use std::time::{Duration, Instant};

#[path = "processes/scenarios.rs"]
mod scenarios;
mod support;

use support::{addresses, wait_all, ADDRESSES, GENERATION, PROCESS, SCENARIO};

/// Starts process `process` of a scenario.
fn start(
    scenario: &str,
    process: usize,
    addresses: &[String],
    generation: u64,
) -> Result<support::Process, String> {
    support::start(
        "cluster_process",
        scenario,
        process,
        addresses,
        generation,
        &[],
    )
}

fn start_all(scenario: &str, n: usize) -> Result<Vec<support::Process>, String> {
    support::start_all("cluster_process", scenario, n)
}

/// The entry point of the processes the tests start (a no-op in a normal test run).
#[test]
fn cluster_process() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let code = scenarios::run(&scenario);
    std::process::exit(code);
}

#[test]
fn three_processes_exchange_batches_and_every_event_in_order() -> Result<(), String> {
    let ended = wait_all(start_all("stream", 3)?, Duration::from_secs(60))?;
    for (p, e) in ended.iter().enumerate() {
        assert_eq!(e.code, Some(0), "process {p}: {}\n{:?}", e.stderr, e.lines);
        for q in (0..3).filter(|q| *q != p) {
            // What process q sent (the scenario's counts, checked element by element there).
            let expected = scenarios::stream_summary(q);
            assert!(
                e.lines
                    .iter()
                    .any(|l| *l == format!("from {q}: {expected}")),
                "process {p} from {q}: expected `{expected}`, got {:?}",
                e.lines
            );
        }
        assert!(
            e.lines.iter().any(|l| l.starts_with("crossed ")),
            "{:?}",
            e.lines
        );
    }
    Ok(())
}

#[test]
fn a_slow_receiver_bounds_what_is_in_flight_with_credits() -> Result<(), String> {
    let ended = wait_all(start_all("backpressure", 2)?, Duration::from_secs(60))?;
    for (p, e) in ended.iter().enumerate() {
        assert_eq!(e.code, Some(0), "process {p}: {}\n{:?}", e.stderr, e.lines);
    }
    assert!(
        ended[0]
            .lines
            .contains(&format!("sent before full: {}", scenarios::CAPACITY)),
        "{:?}",
        ended[0].lines
    );
    assert!(
        ended[1]
            .lines
            .contains(&format!("arrived while blocked: {}", scenarios::CAPACITY)),
        "{:?}",
        ended[1].lines
    );
    assert!(
        ended[1].lines.contains(&format!(
            "received in order: {}",
            scenarios::BACKPRESSURE_BATCHES
        )),
        "{:?}",
        ended[1].lines
    );
    Ok(())
}

#[test]
fn killing_a_process_makes_the_others_exit_with_a_clear_error() -> Result<(), String> {
    let mut processes = start_all("endless", 3)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = processes
        .iter()
        .enumerate()
        .try_for_each(|(p, process)| loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match process.lines.recv_timeout(left) {
                Ok(line) if line == "streaming" => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("process {p} never started streaming: {e}")),
            }
        });
    if let Err(e) = started {
        for p in &mut processes {
            let _ = p.child.kill();
        }
        return Err(e);
    }
    let _ = processes[1].child.kill();
    let ended = wait_all(processes, Duration::from_secs(30))?;
    for p in [0, 2] {
        let e = &ended[p];
        assert_eq!(e.code, Some(1), "process {p}: {}", e.stderr);
        assert!(
            e.stderr.contains("error: cross-process channel")
                && e.stderr.contains("the cluster's connections failed")
                && e.stderr.contains("the connection")
                && e.stderr.contains("fate-shares"),
            "process {p}: {}",
            e.stderr
        );
        assert!(!e.stderr.contains("panicked"), "process {p}: {}", e.stderr);
    }
    Ok(())
}

#[test]
fn a_process_of_another_generation_is_refused() -> Result<(), String> {
    let addresses = addresses(2);
    let processes = vec![
        start("straggler", 0, &addresses, 2)?,
        start("straggler", 1, &addresses, 1)?,
    ];
    let ended = wait_all(processes, Duration::from_secs(30))?;
    assert_eq!(ended[1].code, Some(1));
    assert!(
        ended[1].stderr.contains("was refused by process 0"),
        "{}",
        ended[1].stderr
    );
    assert_eq!(ended[0].code, Some(1));
    assert!(
        ended[0]
            .stderr
            .contains("no connection with process(es) [1]"),
        "{}",
        ended[0].stderr
    );
    Ok(())
}
