//! The dashboard's JSON API on a real running job: the embedded runtime's server (graph, rates
//! that move, a refused checkpoint with its reason, a failover with its root cause, read-only,
//! loopback-only names) and `weir run --metrics-addr` serving the dashboard next to /metrics,
//! with `--checkpoints-on-cancel delete`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::dashboard_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use dashboard_support::{
    get, refused, sink_failovers, source_records, DashboardJob, MARKUP_NAME, REFUSAL, SINK_FAILURE,
};
use weir_testkit::servers::http::request;

#[test]
fn the_api_shows_the_running_job_its_history_and_moving_rates() {
    let job = DashboardJob::start();
    let first = job.job_until("a sampled rate", |j| {
        j["subtasks"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["records_in_per_second"].as_f64() > Some(0.0))
        })
    });
    assert_eq!(first["api_version"], 1);
    assert_eq!(first["job"]["name"], "dashboard-test");
    // The graph: the source task (named with markup, as given), the writer after a rebalance,
    // and the committer-less sink has no more tasks.
    let tasks = first["graph"]["tasks"].as_array().unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tasks.len(), 2, "{names:?}");
    assert!(names[0].starts_with(MARKUP_NAME), "{names:?}");
    assert_eq!(tasks[0]["id"], "orders");
    assert_eq!(tasks[0]["role"], "source");
    assert_eq!(tasks[0]["parallelism"], 2);
    assert!(tasks[1]["operators"]
        .as_array()
        .unwrap()
        .contains(&"checked-sink".into()));
    let edges = first["graph"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["from"], "orders");
    assert_eq!(edges[0]["partitioning"], "rebalance");
    assert_eq!(
        first["subtasks"].as_array().unwrap().len(),
        4,
        "2 + 2 subtasks"
    );
    assert!(first["config"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["key"] == "checkpointing.interval" && c["value"] == "200ms"));

    // A refused checkpoint shows with its reason, the sink's failure as a failover.
    let later = job.job_until("the refused checkpoint and the failover", |j| {
        !refused(j).is_empty() && !sink_failovers(j).is_empty() && j["job"]["state"] == "running"
    });
    let checkpoint = refused(&later)[0];
    assert_eq!(checkpoint["id"], 3);
    assert!(checkpoint["duration_millis"].is_number());
    let failover = sink_failovers(&later)[0];
    assert_eq!(failover["attempt"], 0);
    assert!(
        failover["task"].as_str().unwrap().contains("checked-sink"),
        "{failover}"
    );
    assert!(failover["root_cause"]
        .as_str()
        .unwrap()
        .contains(SINK_FAILURE));
    assert!(later["job"]["attempt"].as_u64() >= Some(1));
    let completed = later["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "completed")
        .expect("a completed checkpoint");
    assert!(completed["size_bytes"].as_u64() > Some(0));
    assert!(completed["alignment_millis"].is_number());
    assert!(!completed["subtasks"].as_array().unwrap().is_empty());

    // Rates move: the restarted attempt reads on.
    let before = source_records(&later);
    let after = job.job_until("more records", |j| source_records(j) > before + 500);
    assert!(after["job"]["taken_at_millis"].as_u64() > later["job"]["taken_at_millis"].as_u64());
    // A restored attempt names what it started from.
    if later["job"]["attempt"] == 1 {
        assert!(
            after["restored_from"]["checkpoint_id"].is_u64(),
            "{after:#}"
        );
    }

    // The narrower endpoints carry the same parts.
    let failovers: serde_json::Value =
        serde_json::from_slice(&job.get("/api/v1/job/failovers").body).unwrap();
    assert!(failovers["failovers"][0]["root_cause"]
        .as_str()
        .unwrap()
        .contains(SINK_FAILURE));
    let checkpoints = job.get("/api/v1/job/checkpoints").text();
    assert!(checkpoints.contains(REFUSAL), "{checkpoints}");
    let metrics: serde_json::Value =
        serde_json::from_slice(&job.get("/api/v1/job/metrics").body).unwrap();
    assert!(metrics["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "dashboard-test.orders.0.busyTimeMsPerSecond"));
}

#[test]
fn the_server_is_read_only_and_answers_loopback_names_only() {
    let job = DashboardJob::start();
    let addr = job.addr();
    let post = request(
        addr,
        "POST",
        "/api/v1/job",
        &[],
        b"{}",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let delete = request(
        addr,
        "DELETE",
        "/api/v1/job",
        &[],
        &[],
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(delete.status, 405);
    // A web page reaching it through DNS rebinding names it by its own host name.
    let rebound = raw_get(addr, "attacker.example:8081");
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(raw_get(addr, &format!("localhost:{}", addr.port())).starts_with("HTTP/1.1 200"));
    assert!(raw_get(addr, &addr.to_string()).starts_with("HTTP/1.1 200"));
    // Two Host headers are refused (the first must not decide).
    let twice = request(
        addr,
        "GET",
        "/api/v1/job",
        &[("Host", "attacker.example".to_owned())],
        &[],
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(twice.status, 400, "{}", twice.text());
    let page = job.get("/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(job.get("/app.js").text().contains("textContent"));
    assert_eq!(job.get("/nothing-here").status, 404);
    assert_eq!(job.get("/api/v1/job/nothing").status, 404);
    assert_eq!(
        job.get("/metrics").status,
        404,
        "no Prometheus text on this server"
    );
    let index: serde_json::Value = serde_json::from_slice(&job.get("/api/v1").body).unwrap();
    assert!(index["endpoints"].as_array().unwrap().len() >= 7);
}

/// `GET /api/v1/job` with exactly one Host header, `host`; the raw answer.
fn raw_get(addr: std::net::SocketAddr, host: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /api/v1/job HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_server_without_a_job_says_so() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(weir_runtime::dashboard::DashboardServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            None,
        ))
        .unwrap();
    let response = get(server.local_addr(), "/api/v1/job");
    assert_eq!(response.status, 503);
    assert!(response.text().contains("no job"), "{}", response.text());
    // Another server on the same address is refused with what to do.
    let taken = rt.block_on(weir_runtime::dashboard::DashboardServer::bind(
        server.local_addr(),
        None,
    ));
    let message = taken.unwrap_err().to_string();
    assert!(message.contains("pick another address"), "{message}");
}

const PIPELINE: &str = r#"
[pipeline]
name = "dashboard-run"
parallelism = 1

[checkpointing]
interval = "200ms"
storage = "./checkpoints"

[[sources]]
name = "numbers"
connector = "datagen"
schema = [{ name = "id", type = "int64", nullable = false }]

[sources.options]
rows-per-second = 2000
fields.id.kind = "sequence"

[[sinks]]
name = "out"
input = "numbers"
connector = "blackhole"
"#;

#[test]
fn weir_run_serves_the_dashboard_next_to_its_metrics_and_deletes_checkpoints_on_cancel() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("p.toml"), PIPELINE).unwrap();
    let mut child = common::weir()
        .args([
            "run",
            "p.toml",
            "--progress",
            "quiet",
            "--metrics-addr",
            "127.0.0.1:0",
            "--on-sigterm",
            "cancel",
            "--checkpoints-on-cancel",
            "delete",
        ])
        .current_dir(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("weir: dashboard at http://") {
                let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr: std::net::SocketAddr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("weir prints the dashboard's address")
        .parse()
        .unwrap();
    // The job shows, and checkpoints complete.
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let response = get(addr, "/api/v1/job");
        if response.status == 200 {
            let job: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            let completed = job["checkpoints"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["status"] == "completed");
            let read: u64 = job["subtasks"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|s| s["records_in"].as_u64())
                .sum();
            if completed && read > 0 {
                break job;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no completed checkpoint and no records in 30 s: {}",
            response.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(job["job"]["name"], "dashboard-run");
    assert!(job["config"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["key"] == "checkpointing.on-cancel" && c["value"] == "delete"));
    assert!(!std::fs::read_dir(tmp.path().join("checkpoints"))
        .unwrap()
        .collect::<Vec<_>>()
        .is_empty());
    let metrics = get(addr, "/metrics").text();
    assert!(metrics.contains("weir_numRecordsOut"), "{metrics}");
    assert!(get(addr, "/").text().contains("/app.js"));

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let err = reader.join().unwrap();
    assert_eq!(exit.code(), Some(130), "cancelled: {err}");
    assert!(err.contains("its checkpoints are deleted"), "{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("checkpoints"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("chk-"))
        .collect();
    assert!(left.is_empty(), "deleted on cancel: {left:?}");
}
