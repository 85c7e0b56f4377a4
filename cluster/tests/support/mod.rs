//! Test clusters of real OS processes on loopback: the test binary starts itself again as the
//! cluster's processes (an entry test that does nothing unless `WEIR_CLUSTER_TEST` names a
//! scenario), and collects their `WEIR:` lines and exit codes.
#![allow(dead_code)] // each test binary uses a part

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The scenario a process runs.
pub(crate) const SCENARIO: &str = "WEIR_CLUSTER_TEST";
/// The process's index.
pub(crate) const PROCESS: &str = "WEIR_CLUSTER_PROCESS";
/// Every process's address, comma-separated.
pub(crate) const ADDRESSES: &str = "WEIR_CLUSTER_ADDRESSES";
/// The cluster's generation.
pub(crate) const GENERATION: &str = "WEIR_CLUSTER_GENERATION";

/// `n` free loopback addresses.
pub(crate) fn addresses(n: usize) -> Vec<String> {
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
pub(crate) struct Process {
    /// The OS process.
    pub(crate) child: Child,
    /// Its `WEIR:` lines, as they are printed.
    pub(crate) lines: mpsc::Receiver<String>,
    stdout: std::thread::JoinHandle<()>,
    stderr: std::thread::JoinHandle<String>,
}

pub(crate) fn start(
    entry: &str,
    scenario: &str,
    process: usize,
    addresses: &[String],
    generation: u64,
    env: &[(&str, String)],
) -> Result<Process, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args([entry, "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, scenario)
        .env(PROCESS, process.to_string())
        .env(ADDRESSES, addresses.join(","))
        .env(GENERATION, generation.to_string())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
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

pub(crate) fn start_all(entry: &str, scenario: &str, n: usize) -> Result<Vec<Process>, String> {
    let addresses = addresses(n);
    (0..n)
        .map(|p| start(entry, scenario, p, &addresses, 0, &[]))
        .collect()
}

/// How a process ended: its exit code, its `WEIR:` lines, its standard error.
pub(crate) struct Ended {
    /// The exit code.
    pub(crate) code: Option<i32>,
    /// Its `WEIR:` lines.
    pub(crate) lines: Vec<String>,
    /// Its standard error.
    pub(crate) stderr: String,
}

/// Waits for every process to end, killing all of them if one takes longer than `within`.
pub(crate) fn wait_all(processes: Vec<Process>, within: Duration) -> Result<Vec<Ended>, String> {
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
