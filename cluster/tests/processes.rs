//! Real OS processes on loopback, exchanging Weir channels through timely: the test binary
//! starts itself again as the cluster's processes (the test `cluster_process`, which does
//! nothing unless `WEIR_CLUSTER_TEST` names a scenario).

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "processes/scenarios.rs"]
mod scenarios;

const SCENARIO: &str = "WEIR_CLUSTER_TEST";
const PROCESS: &str = "WEIR_CLUSTER_PROCESS";
const ADDRESSES: &str = "WEIR_CLUSTER_ADDRESSES";
const GENERATION: &str = "WEIR_CLUSTER_GENERATION";

/// The entry point of the processes the tests start (a no-op in a normal test run).
#[test]
fn cluster_process() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let code = scenarios::run(&scenario);
    std::process::exit(code);
}

/// `n` free loopback addresses.
fn addresses(n: usize) -> Vec<String> {
    let listeners: Vec<TcpListener> = (0..n)
        .filter_map(|_| TcpListener::bind("127.0.0.1:0").ok())
        .collect();
    listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect()
}

/// A process of a test cluster: its lines of output arrive on `lines` as they are printed.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: std::thread::JoinHandle<()>,
    stderr: std::thread::JoinHandle<String>,
}

fn start(
    scenario: &str,
    process: usize,
    addresses: &[String],
    generation: u64,
) -> Result<Process, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args([
            "cluster_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO, scenario)
        .env(PROCESS, process.to_string())
        .env(ADDRESSES, addresses.join(","))
        .env(GENERATION, generation.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start process {process}: {e}"))?;
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take();
    let stdout = std::thread::spawn(move || {
        if let Some(stdout) = stdout {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The test harness may print before a line without ending its own.
                if let Some((_, line)) = line.split_once("WEIR: ") {
                    let _ = tx.send(line.to_owned());
                }
            }
        }
    });
    let mut stderr = child.stderr.take();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_string(&mut text);
        }
        text
    });
    Ok(Process {
        child,
        lines,
        stdout,
        stderr,
    })
}

fn start_all(scenario: &str, n: usize) -> Result<Vec<Process>, String> {
    let addresses = addresses(n);
    (0..n).map(|p| start(scenario, p, &addresses, 0)).collect()
}

/// How a process ended: its exit code, its `WEIR:` lines, its standard error.
struct Ended {
    code: Option<i32>,
    lines: Vec<String>,
    stderr: String,
}

/// Waits for every process to end, killing all of them if one takes longer than `within`.
fn wait_all(processes: Vec<Process>, within: Duration) -> Result<Vec<Ended>, String> {
    let deadline = Instant::now() + within;
    let mut processes = processes;
    let mut codes = vec![None; processes.len()];
    let mut done = vec![false; processes.len()];
    while done.iter().any(|d| !d) {
        for (i, p) in processes.iter_mut().enumerate() {
            if !done[i] {
                if let Ok(Some(status)) = p.child.try_wait() {
                    codes[i] = status.code();
                    done[i] = true;
                }
            }
        }
        if Instant::now() > deadline {
            for p in &mut processes {
                let _ = p.child.kill();
            }
            return Err(format!(
                "the cluster's processes did not end within {within:?}: a hang"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(processes
        .into_iter()
        .zip(codes)
        .map(|(p, code)| {
            let _ = p.stdout.join();
            Ended {
                code,
                lines: p.lines.try_iter().collect(),
                stderr: p.stderr.join().unwrap_or_default(),
            }
        })
        .collect())
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
